"""Crafted and mutated ``.npy`` files never crash the reader: each is loaded in a child
process, which must end normally with either the array or one ``DataError`` line."""

from __future__ import annotations

import json
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "thumos14"
RECONSTRUCT = (
    np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
)
CHILD = """
import json, sys
from hamnet.data.safe_npy import load_npy
from hamnet.errors import DataError
for path in sys.argv[1:]:
    try:
        array = load_npy(path)
        print(json.dumps(["ok", path, type(array).__name__]), flush=True)
    except DataError as error:
        print(json.dumps(["error", path, str(error)]), flush=True)
"""


class _State:
    """Pickles as numpy does for an array, with a state of our choosing."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return RECONSTRUCT, (np.ndarray, (0,), b"b"), self.state


class _Dtype:
    def __init__(self, spec, state):
        self.spec, self.state = spec, state

    def __reduce__(self):
        return np.dtype, (self.spec, False, True), self.state


class _Direct:
    def __reduce__(self):  # numpy.ndarray(shape, dtype, buffer, offset, strides)
        return np.ndarray, ((4,), np.dtype("f8"), b"\0" * 8, 0, (1 << 40,))


def _write(path: Path, obj, shape=(3,)) -> Path:
    with open(path, "wb") as handle:
        npy_format.write_array_header_1_0(
            handle, {"descr": "|O", "fortran_order": False, "shape": shape}
        )
        pickle.dump(obj, handle, protocol=2)
    return path


def _nested(depth: int):
    obj = _State((1, (1,), np.dtype("O"), False, [1]))
    for _ in range(depth):
        obj = _State((1, (1,), np.dtype("O"), False, [obj]))
    return obj


OBJ = np.dtype("O")
CRAFTED = {
    "more_items_than_carried": _State((1, (100000,), OBJ, False, [1, 2, 3])),
    "more_bytes_than_carried": _State((1, (1 << 20,), np.dtype("f8"), False, b"\0" * 8)),
    "inner_array_short": _State(
        (1, (2,), OBJ, False, [_State((1, (50000, 2048), np.dtype("f4"), False, b"\0" * 16)), 1])
    ),
    "negative_size": _State((1, (-5,), OBJ, False, [])),
    "huge_size": _State((1, (1 << 40, 1 << 40), OBJ, False, [])),
    "shape_not_ints": _State((1, ("a",), OBJ, False, ["x"])),
    "bytes_for_objects": _State((1, (4,), OBJ, False, b"\xff" * 32)),
    "state_not_tuple": _State([1, (3,), OBJ, False, [1, 2, 3]]),
    "nested_deep": _nested(40),
    "dtype_itemsize_lie": _State(
        (1, (4,), _Dtype("U1", (3, "<", None, None, None, 1 << 20, 4, 8)), False, b"a" * 16)
    ),
    "dtype_with_fields": _State(
        (1, (1,), _Dtype("V8", (3, "|", None, ("a",), {"a": (OBJ, 0)}, 8, 1, 27)), False, b"\0" * 8)
    ),
    "ndarray_called_directly": _Direct(),
    "state_none": _State(None),
}


def _run_child(paths: list[Path]) -> list[list[str]]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, paths)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, (
        f"child ended with {done.returncode} (negative: killed by a signal) after "
        f"{len(done.stdout.splitlines())} of {len(paths)} files: {done.stderr[-2000:]}"
    )
    assert done.stderr == ""
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == len(paths)
    for kind, path, message in rows:
        assert kind == "ok" or (kind == "error" and "\n" not in message and path in message)
    return rows


def test_crafted_states_are_one_error_line(tmp_path):
    paths = [_write(tmp_path / f"{name}.npy", obj) for name, obj in CRAFTED.items()]
    for path in paths:  # one child each: a crash names the file
        ((kind, _, message),) = _run_child([path])
        assert kind == "error", f"{path.name} was accepted"
        assert message.startswith(str(path))


def test_the_crafted_file_is_live_under_plain_numpy(tmp_path):
    """The first case really is a crash under numpy's own loader (so the test means something)."""
    path = _write(tmp_path / "bad.npy", CRAFTED["more_items_than_carried"], shape=(100000,))
    code = (
        "import numpy, sys; a = numpy.load(sys.argv[1], allow_pickle=True); "
        "print(sum(1 for x in a if x is not None))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=120)
    assert done.returncode < 0  # SIGSEGV


def _sources(tmp_path: Path) -> list[Path]:
    from hamnet.data.synthetic import make_synthetic

    root = make_synthetic(
        tmp_path / "syn", num_classes=2, num_videos=4, feature_dim=4, seed=1, progress=False
    )
    real = [
        REAL / f"{n}.npy" for n in ("segments", "labels", "videoname", "duration", "labels_all")
    ]
    return [p for p in real if p.is_file()] + sorted(root.glob("*.npy"))


def _mutate(data: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(("flip", "flip", "truncate", "overwrite", "duplicate"))
    buffer = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del buffer[rng.randrange(len(buffer)) :]
    elif kind == "overwrite":
        at = rng.randrange(len(buffer))
        buffer[at : at + 4] = rng.randbytes(4)
    else:
        at, size = rng.randrange(len(buffer)), rng.randint(1, 64)
        buffer[at:at] = buffer[at : at + size]
    return bytes(buffer)


@pytest.mark.parametrize("seed", range(4))
def test_mutated_files_never_crash(tmp_path, seed):
    rng = random.Random(seed)
    sources = _sources(tmp_path)
    assert len(sources) >= 2
    paths = []
    for i in range(60):
        source = sources[i % len(sources)]
        path = tmp_path / f"m{i}-{source.name}"
        path.write_bytes(_mutate(source.read_bytes(), rng))
        paths.append(path)
    rows = _run_child(paths)
    assert any(kind == "error" for kind, _, _ in rows)
