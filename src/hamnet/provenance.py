"""Where a number came from: file fingerprints and the software that produced it.

Every run folder (``run.json``) and every result JSON records these, so a table can be
traced back to its inputs and a resumed run can tell that its data changed.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import hamnet

CHUNK = 1 << 20


def file_fingerprint(path: str | Path) -> dict:
    """Path, size and SHA-256 of one file (read in chunks: fine for small metadata files)."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return {"path": str(path.resolve()), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def software_versions() -> dict:
    """hamnet (and its git commit when run from a checkout), Python, torch, numpy, CUDA."""
    import numpy
    import torch

    versions = {
        "hamnet": hamnet.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.version.cuda,
    }
    commit = git_commit()
    if commit:
        versions["git_commit"] = commit
    return versions


def git_commit() -> str | None:
    """The commit of the checkout hamnet is imported from, or None when not in one."""
    source = Path(hamnet.__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else None


def command_line() -> list[str]:
    return list(sys.argv)


def sampled_fingerprint(path: str | Path, blocks: int = 16, block_size: int = 1 << 16) -> dict:
    """Size and SHA-256 of ``blocks`` evenly spaced blocks (first and last included).

    For the big feature files: reading 1 MiB tells a swapped or rewritten file from the
    original without reading 10 GB; a single flipped value is left to per-video checks.
    """
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if size <= blocks * block_size:
            digest.update(handle.read())
        else:
            step = (size - block_size) / (blocks - 1)
            for i in range(blocks):
                handle.seek(int(i * step))
                digest.update(handle.read(block_size))
    return {"path": str(path.resolve()), "bytes": size, "sampled_sha256": digest.hexdigest()}


def dataset_fingerprint(root: str | Path) -> dict:
    """What identifies a dataset root: its annotation files and GT JSON in full, the
    feature index in full and the feature data by size and sampled blocks."""
    from hamnet.data.features import DATA_FILE, INDEX_FILE
    from hamnet.data.layout import find_dataset

    files = find_dataset(Path(root))
    folder = files.annotations_dir  # None in a converted root: the GT JSON holds them
    listed = sorted(p for p in folder.iterdir() if p.is_file()) if folder is not None else []
    annotations = {p.name: file_fingerprint(p) for p in listed}
    found = {"name": files.name, "annotations": annotations}
    if files.gt_json is not None:
        found["gt_json"] = file_fingerprint(files.gt_json)
    found["features"] = _features_fingerprint(files.features_kind, files.features_path)
    if files.features_kind == "packed":
        found["features"]["index"] = file_fingerprint(files.features_path / INDEX_FILE)
        found["features"]["data"] = sampled_fingerprint(files.features_path / DATA_FILE)
    return found


def _features_fingerprint(kind: str | None, path: Path | None) -> dict:
    found: dict = {"kind": kind, "path": str(path.resolve()) if path else None}
    if kind == "released":
        found["data"] = sampled_fingerprint(path)
    elif kind == "npy":
        listing = sorted((p.name, p.stat().st_size) for p in path.glob("*.npy"))
        text = "".join(f"{name}\t{size}\n" for name, size in listing)
        found["files"] = len(listing)
        found["bytes"] = sum(size for _, size in listing)
        found["listing_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    return found


def without_paths(tree):
    """``tree`` minus every "path" entry: what must match when a folder is moved."""
    if isinstance(tree, dict):
        return {k: without_paths(v) for k, v in tree.items() if k != "path"}
    if isinstance(tree, list):
        return [without_paths(v) for v in tree]
    return tree


def first_difference(saved, current, where: str = "") -> str | None:
    """The dotted key of the first difference between two fingerprints (None: equal)."""
    if isinstance(saved, dict) and isinstance(current, dict):
        for key in sorted(set(saved) | set(current)):
            found = first_difference(saved.get(key), current.get(key), f"{where}.{key}")
            if found:
                return found
        return None
    return None if saved == current else where.lstrip(".") or "root"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def data_record(data_root: Path) -> dict:
    return {"root": str(Path(data_root).resolve()), "fingerprint": dataset_fingerprint(data_root)}
