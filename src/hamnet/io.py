"""Atomic file output: a reader never sees a half-written file, a kill never loses the old one."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hamnet.errors import HamnetError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one step.

    Only a regular file (or nothing) is replaced. A character device or a FIFO
    (``/dev/stdout``, ``/dev/null``, a pipe) is written into, since that is the point of
    naming one; a folder, a block device or a socket is refused with one line.
    """
    target = Path(path)
    stream = writable_stream(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=_tmp_dir(target))
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if stream:
            _copy_into(tmp_path, target)
            return
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, target)
    except OSError as error:
        if error.filename is None:  # e.g. a full disk during write(): name the file
            raise OSError(error.errno, error.strerror or str(error), str(target)) from error
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


class OutputError(HamnetError):
    """An output path that would destroy something: an input, a folder, a device."""


def writable_stream(target: Path) -> bool:
    """True for a character device or FIFO (written into); False for a regular file or
    nothing (replaced); anything else is refused."""
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return False
    except OSError:
        return False  # e.g. a parent that is a file: the write names the problem
    if stat.S_ISREG(mode) and not _names_a_descriptor(target):
        return False
    if stat.S_ISREG(mode):
        return True  # /dev/stdout redirected to a file: write where the shell points it
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return True
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    raise OutputError(f"{target}: is {kind}; refusing to replace it (name a file to write)")


_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def _names_a_descriptor(target: Path) -> bool:
    return str(target).startswith(("/dev/", "/proc/self/fd/")) and os.path.islink(target)


def _tmp_dir(target: Path) -> Path:
    return Path(tempfile.gettempdir()) if writable_stream(target) else target.parent


def _copy_into(source: Path, target: Path) -> None:
    """Append: /dev/stdout redirected to a file keeps what was printed before."""
    sys.stdout.flush()
    with open(source, "rb") as reader, open(target, "ab") as writer:
        while chunk := reader.read(1 << 20):
            writer.write(chunk)


def refuse_overwriting_inputs(
    outputs: Iterable[str | os.PathLike | None],
    inputs: Iterable[str | os.PathLike | None],
) -> None:
    """Stop before writing when an output is one of the inputs (the same file by device
    and inode, so through symlinks and hard links too). Folders among the inputs are
    compared as folders: an output may not be an input folder itself."""
    seen = {}
    for item in inputs:
        identity = _identity(item)
        if identity is not None:
            seen.setdefault(identity, Path(item))
    for item in outputs:
        identity = _identity(item)
        if identity is not None and identity in seen and not _is_stream(item):
            raise OutputError(
                f"{item}: is the input {seen[identity]} (same file); refusing to overwrite "
                f"an input, choose another output"
            )


def input_files(*roots: str | os.PathLike | None, depth: int = 2) -> list[Path]:
    """Each root and every file and folder under it to ``depth`` levels (a dataset root's
    GT, annotation and feature files; a run folder's last.pt, metrics.jsonl, config)."""
    found = []
    for root in roots:
        if root is None:
            continue
        found.append(Path(root))
        level = [Path(root)] if Path(root).is_dir() else []
        for _ in range(depth):
            level = [child for folder in level for child in _children(folder)]
            found.extend(level)
            level = [child for child in level if child.is_dir() and not child.is_symlink()]
    return found


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _identity(item) -> tuple[int, int] | None:
    if item is None:
        return None
    try:
        info = os.stat(item)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _is_stream(item) -> bool:
    mode = os.stat(item).st_mode
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = None) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


def read_json(path: str | os.PathLike, error: type[Exception]) -> Any:
    """Parse a JSON file; a missing, malformed or ambiguous file raises ``error`` naming it."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{path}: is a folder, not a JSON file")
    if not path.is_file():
        raise error(f"{path}: file not found")
    return parse_json(path.read_bytes(), str(path), error)


@contextlib.contextmanager
def no_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector paused, for code that makes large containers and no
    reference cycles: each collection of the young generation would traverse them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_json(text: str | bytes, source: str, error: type[Exception]) -> Any:
    """The one JSON parser for inputs: a key given twice in one object, nesting too deep,
    an integer too long, bad UTF-8 or syntax are one ``error`` naming ``source``."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except DuplicateKey as duplicate:
        raise error(f"{source}: key {duplicate.key!r} appears twice in one object") from None
    except RecursionError:
        raise error(f"{source}: malformed JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as problem:  # JSONDecodeError, int too long
        raise error(f"{source}: malformed JSON ({_first_line(problem)})") from None


def parse_yaml(text: str, source: str, error: type[Exception]) -> Any:
    """The one YAML parser for inputs: safe tags only; duplicate keys, nesting too deep
    and malformed text are one ``error`` naming ``source``."""
    import yaml

    try:
        return yaml.load(text, Loader=_strict_yaml_loader())  # noqa: S506 - a SafeLoader
    except DuplicateKey as duplicate:
        raise error(f"{source}: key {duplicate.key!r} appears twice in one mapping") from None
    except RecursionError:
        raise error(f"{source}: malformed YAML (nested too deeply)") from None
    except yaml.YAMLError as problem:
        raise error(f"{source}: malformed YAML ({_first_line(problem)})") from None
    except ValueError as problem:  # e.g. an integer past Python's digit limit
        raise error(f"{source}: malformed YAML ({_first_line(problem)})") from None


class DuplicateKey(Exception):
    def __init__(self, key: object):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # C speed; a key given twice makes it shorter than the pairs
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen.add(key)
    return result


_YAML_LOADER = None


def _strict_yaml_loader():
    """A SafeLoader whose mappings refuse a key given twice (PyYAML keeps the last)."""
    global _YAML_LOADER
    if _YAML_LOADER is None:
        import yaml

        class StrictLoader(yaml.SafeLoader):
            def construct_mapping(self, node, deep=False):
                if isinstance(node, yaml.MappingNode):
                    seen = set()
                    for key_node, _ in node.value:
                        if key_node.tag == "tag:yaml.org,2002:merge":
                            continue  # '<<' may be overridden by the mapping's own keys
                        key = self.construct_object(key_node, deep=True)
                        if isinstance(key, (str, int, float, bool)) or key is None:
                            if key in seen:
                                raise DuplicateKey(key)
                            seen.add(key)
                return super().construct_mapping(node, deep=deep)

        _YAML_LOADER = StrictLoader
    return _YAML_LOADER


def _first_line(problem: Exception) -> str:
    text = str(problem).strip()
    return text.splitlines()[0] if text else type(problem).__name__


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
