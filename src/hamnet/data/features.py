"""Feature stores: per-video snippet features [T, D] behind one interface.

Back ends: the packed store (one contiguous ``features.bin`` read through ``np.memmap`` plus
``index.json``; preferred), a folder of ``<video>.npy`` files, and the released pickled object
array ``<Name>-I3D-JOINTFeatures.npy``, read with the restricted unpickler of
:mod:`hamnet.data.safe_npy` (numpy arrays only: nothing in the file can run code);
converting it once with ``hamnet convert`` gives a packed store that needs no pickle.
"""

from __future__ import annotations

import hashlib
import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hamnet.data.annotations import check_video_name
from hamnet.data.safe_npy import load_npy
from hamnet.errors import DataError
from hamnet.io import atomic_write_json, parse_json

log = logging.getLogger(__name__)

PACKED_FORMAT, PACKED_VERSION = "hamnet-packed", 1
PACKED_DTYPES = ("float32", "float16")
INDEX_FILE, DATA_FILE = "index.json", "features.bin"
PICKLE_HINT = (
    "it looks like the released multi-video feature file (a pickled object array); "
    "open it as part of its dataset root, or convert it with `hamnet convert`"
)


class FeatureStore(ABC):
    """Per-video features: ``read(name)`` gives float32 [T, D], checked finite and T > 0."""

    path: Path

    @property
    @abstractmethod
    def names(self) -> list[str]: ...

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @abstractmethod
    def length(self, name: str) -> int:
        """Number of snippets T of a video, without reading its features."""

    @abstractmethod
    def _raw(self, name: str) -> np.ndarray:
        """The stored array [T, D] of a known video (any float dtype, may be a view)."""

    def __contains__(self, name: object) -> bool:
        if not hasattr(self, "_name_set"):
            self._name_set = set(self.names)
        return name in self._name_set

    def __len__(self) -> int:
        return len(self.names)

    def read(self, name: str) -> np.ndarray:
        """Float32 [T, D] copy of one video's features (float16 storage is upcast)."""
        if name not in self:
            raise DataError(f"{self.path}: no features for video {name!r}")
        return checked_features(self._raw(name), self.path, name, self.dim)


def checked_features(raw: Any, path: Path, name: str, dim: int) -> np.ndarray:
    """Float32 copy of ``raw`` [T, D]; DataError on a wrong shape, T == 0 or NaN/inf."""
    where = f"{path}: video {name!r}"
    if not isinstance(raw, np.ndarray) or raw.ndim != 2 or raw.dtype.kind not in "fiu":
        shape = getattr(raw, "shape", None)
        raise DataError(f"{where}: features are not a 2-D numeric array [T, D] (shape {shape})")
    if raw.shape[1] != dim:
        raise DataError(f"{where}: features are {raw.shape[1]} wide, the store's width is {dim}")
    if raw.shape[0] == 0:
        raise DataError(f"{where}: empty video (0 snippets)")
    features = np.array(raw, dtype=np.float32, order="C")
    finite = np.isfinite(features).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise DataError(f"{where}: features contain NaN or inf (first at snippet {row})")
    return features


class PackedFeatureStore(FeatureStore):
    """A directory with ``features.bin`` ([N_total, D], C order) and ``index.json``.

    Each read maps only the rows of one video and unmaps them afterwards, so the pages of
    a whole epoch never accumulate in the process's resident set (a long-lived memmap of
    the whole file would count every page read into the RSS).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        index = read_packed_index(self.path)
        self.dtype = np.dtype(index["dtype"])
        self._dim = int(index["dim"])
        self.recipe = index.get("recipe")
        self._videos = {v["name"]: (int(v["offset"]), int(v["length"])) for v in index["videos"]}
        # per-video SHA-256 of the stored bytes (absent in stores of hamnet <= 0.1.0)
        self.checksums = {v["name"]: v["sha256"] for v in index["videos"] if "sha256" in v}
        self._verified: set[str] = set()
        check_layout(self.path, self._videos, self._dim * self.dtype.itemsize)

    @property
    def names(self) -> list[str]:
        return list(self._videos)

    @property
    def dim(self) -> int:
        return self._dim

    def length(self, name: str) -> int:
        if name not in self._videos:
            raise DataError(f"{self.path}: no features for video {name!r}")
        return self._videos[name][1]

    def _raw(self, name: str) -> np.ndarray:
        rows = self._map(name)
        if name not in self._verified:  # once per video and process: about 1.5 GB/s
            self.verify(name, rows)
        return rows

    def _map(self, name: str) -> np.ndarray:
        offset, length = self._videos[name]
        if length == 0:
            return np.zeros((0, self._dim), dtype=self.dtype)
        row_bytes = self._dim * self.dtype.itemsize
        return np.memmap(
            self.path / DATA_FILE,
            dtype=self.dtype,
            mode="r",
            offset=offset * row_bytes,
            shape=(length, self._dim),
        )

    def verify(self, name: str, rows: np.ndarray | None = None) -> bool:
        """Check one video's bytes against its stored checksum (False: none stored)."""
        expected = self.checksums.get(name)
        if expected is None:
            return False
        if rows_digest(self._map(name) if rows is None else rows) != expected:
            raise DataError(
                f"{self.path / DATA_FILE}: video {name!r}: checksum mismatch (the features "
                f"are corrupt or index.json was edited); re-create the store"
            )
        self._verified.add(name)
        return True


def rows_digest(rows: np.ndarray) -> str:
    """SHA-256 of a video's stored rows (C order, stored dtype)."""
    return hashlib.sha256(np.ascontiguousarray(rows).data).hexdigest()


def check_layout(path: Path, videos: dict[str, tuple[int, int]], row_bytes: int) -> None:
    """Offsets/lengths of the index against each other and the data file's size."""
    index_path, data_path = path / INDEX_FILE, path / DATA_FILE
    for name, (offset, length) in videos.items():
        if offset < 0 or length < 0:
            raise DataError(
                f"{index_path}: video {name!r}: negative offset or length ({offset}, {length})"
            )
    spans = sorted((o, o + n, name) for name, (o, n) in videos.items() if n > 0)
    for (_, end, first), (start, _, second) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise DataError(f"{index_path}: videos {first!r} and {second!r} overlap")
    rows = spans[-1][1] if spans else 0
    size = data_path.stat().st_size
    if size < rows * row_bytes:
        raise DataError(
            f"{data_path}: truncated ({size} bytes, index.json needs {rows} rows of "
            f"{row_bytes} bytes)"
        )


def read_packed_index(path: Path) -> dict:
    """The validated ``index.json`` of a packed store directory."""
    index_path, data_path = path / INDEX_FILE, path / DATA_FILE
    if not index_path.is_file() or not data_path.is_file():
        raise DataError(f"{path}: not a packed feature store (needs {INDEX_FILE} and {DATA_FILE})")
    index = parse_json(index_path.read_bytes(), str(index_path), DataError)
    if not isinstance(index, dict) or index.get("format") != PACKED_FORMAT:
        raise DataError(f"{index_path}: not a {PACKED_FORMAT!r} index")
    if index.get("version") != PACKED_VERSION:
        raise DataError(f"{index_path}: unsupported version {index.get('version')!r}")
    if index.get("dtype") not in PACKED_DTYPES:
        raise DataError(f"{index_path}: dtype {index.get('dtype')!r} not in {PACKED_DTYPES}")
    try:
        dim = int(index["dim"])
        for video in index["videos"]:
            _check_index_entry(index_path, video)
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"{index_path}: malformed field ({error!r})") from None
    if dim <= 0:
        raise DataError(f"{index_path}: dim {dim} is not positive")
    names = [video["name"] for video in index["videos"]]
    if len(set(names)) != len(names):
        raise DataError(f"{index_path}: a video is listed twice")
    return index


def _check_index_entry(index_path: Path, video: dict) -> None:
    check_video_name(video["name"], str(index_path))
    for key in ("offset", "length"):
        if isinstance(video[key], bool) or not isinstance(video[key], int):
            raise DataError(f"{index_path}: video {video['name']!r}: {key} is not an integer")
    digest = video.get("sha256")
    if digest is not None and (not isinstance(digest, str) or len(digest) != 64):
        raise DataError(f"{index_path}: video {video['name']!r}: malformed sha256")


class PackedFeatureWriter:
    """Appends videos to a packed store; only committed videos are visible to readers.

    ``resume=True`` reopens a store, drops rows written after its last commit and checks
    that ``dim``, ``dtype`` and ``recipe`` match; ``names`` then lists the videos to skip.
    As a context manager it commits on a clean exit (not after an exception).
    """

    def __init__(
        self,
        path: Path,
        dim: int,
        dtype: str = "float32",
        recipe: dict | None = None,
        resume: bool = False,
    ):
        self.path = Path(path)
        if dtype not in PACKED_DTYPES:
            raise DataError(f"{self.path}: dtype {dtype!r} not in {PACKED_DTYPES}")
        self.dim, self.dtype, self.recipe = int(dim), np.dtype(dtype), recipe
        self._videos: list[dict] = []
        self._rows = 0
        if (self.path / INDEX_FILE).exists():
            if not resume:
                raise DataError(
                    f"{self.path}: a packed store already exists (resume it or delete it)"
                )
            self._reopen()
        self.path.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path / DATA_FILE, "r+b" if self._videos else "wb")  # noqa: SIM115
        self._file.truncate(self._rows * self.dim * self.dtype.itemsize)
        self._file.seek(0, os.SEEK_END)
        self._names = {v["name"] for v in self._videos}
        if not self._videos:
            self.commit()

    def _reopen(self) -> None:
        index = read_packed_index(self.path)
        found = (int(index["dim"]), index["dtype"], index.get("recipe"))
        wanted = (self.dim, self.dtype.name, self.recipe)
        if found != wanted:
            raise DataError(
                f"{self.path}: cannot resume, the store has (dim, dtype, recipe) = {found} "
                f"but this run uses {wanted}"
            )
        self._videos = [dict(v) for v in index["videos"]]
        self._rows = max((v["offset"] + v["length"] for v in self._videos), default=0)

    @property
    def names(self) -> list[str]:
        return [v["name"] for v in self._videos]

    def add(self, name: str, array: np.ndarray, commit: bool = False) -> None:
        """Append one video's features [T, dim]; ``commit=True`` makes it durable now."""
        if name in self._names:
            raise DataError(f"{self.path}: video {name!r} is already in the store")
        check_video_name(name, str(self.path))
        rows = checked_features(np.asarray(array), self.path, name, self.dim)
        stored = np.ascontiguousarray(rows.astype(self.dtype, copy=False))
        self._file.write(stored.tobytes(order="C"))
        entry = {"name": name, "offset": self._rows, "length": len(rows)}
        self._videos.append({**entry, "sha256": rows_digest(stored)})
        self._names.add(name)
        self._rows += len(rows)
        if commit:
            self.commit()

    def commit(self) -> None:
        """Flush the rows to disk, then publish the index atomically."""
        self._file.flush()
        os.fsync(self._file.fileno())
        index = {
            "format": PACKED_FORMAT,
            "version": PACKED_VERSION,
            "dtype": self.dtype.name,
            "dim": self.dim,
            "videos": self._videos,
            "recipe": self.recipe,
        }
        atomic_write_json(self.path / INDEX_FILE, index)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> PackedFeatureWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        self.close()


class ReleasedFeatureStore(FeatureStore):
    """The released ``<Name>-I3D-JOINTFeatures.npy``: an object array of [T_i, D] arrays.

    It is aligned with ``videoname.npy``, so ``names`` come from the annotations. The
    whole file is unpickled into memory (pickles cannot be memory-mapped): convert it to
    the packed store for large datasets.
    """

    def __init__(self, path: Path, names: list[str], allow_pickle: bool = True):
        # allow_pickle is accepted for compatibility and ignored: the restricted
        # unpickler makes the file safe to read without an opt-in.
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: feature file not found")
        array = load_npy(self.path)
        if array.ndim < 1 or len(array) != len(names):
            raise DataError(
                f"{self.path}: holds {len(array) if array.ndim else 0} videos but the "
                f"annotations list {len(names)} (the file is aligned with videoname.npy)"
            )
        self._arrays = dict(zip(names, array, strict=True))
        first = next((a for a in self._arrays.values() if getattr(a, "ndim", 0) == 2), None)
        if first is None:
            raise DataError(f"{self.path}: no 2-D feature array [T, D] in the file")
        self._dim = int(first.shape[1])

    @property
    def names(self) -> list[str]:
        return list(self._arrays)

    @property
    def dim(self) -> int:
        return self._dim

    def length(self, name: str) -> int:
        if name not in self._arrays:
            raise DataError(f"{self.path}: no features for video {name!r}")
        shape = np.shape(self._arrays[name])
        if len(shape) != 2:
            raise DataError(
                f"{self.path}: video {name!r}: features are not a 2-D array [T, D] "
                f"(shape {list(shape)})"
            )
        return int(shape[0])

    def _raw(self, name: str) -> np.ndarray:
        return self._arrays[name]


class NpyFolderStore(FeatureStore):
    """A folder of ``<video>.npy`` float arrays [T, D], loaded without pickle (mmap).

    A single ``<video>.npy`` file is accepted too: a store of that one video.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        if self.path.is_file():
            self._files = {self.path.stem: self.path}
        elif self.path.is_dir():
            self._files = {p.stem: p for p in sorted(self.path.glob("*.npy"))}
        else:
            raise DataError(f"{self.path}: feature file or folder not found")
        if not self._files:
            raise DataError(f"{self.path}: no <video>.npy feature files in this folder")
        first = next(iter(self._files.values()))
        shape = _npy_shape(first)
        if len(shape) != 2:
            hint = (
                f"; if it is the released multi-video file, {PICKLE_HINT}"
                if len(shape) == 1
                else ""
            )
            raise DataError(f"{first}: expected a 2-D array [T, D], got shape {list(shape)}{hint}")
        self._dim = int(shape[1])

    @property
    def names(self) -> list[str]:
        return list(self._files)

    @property
    def dim(self) -> int:
        return self._dim

    def length(self, name: str) -> int:
        if name not in self._files:
            raise DataError(f"{self.path}: no features for video {name!r}")
        return int(_npy_shape(self._files[name])[0])

    def _raw(self, name: str) -> np.ndarray:
        path = self._files[name]
        try:
            if _npy_shape(path)[0] == 0:
                return np.load(path, allow_pickle=False)
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as error:
            raise DataError(f"{path}: not a plain numeric .npy array ({error})") from None


def _npy_shape(path: Path) -> tuple[int, ...]:
    """The array shape from a .npy header, reading no data (works for 0-row arrays)."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, _ = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, _, _ = np.lib.format.read_array_header_2_0(handle)
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: not a readable .npy file ({error})") from None
    return tuple(shape)


def open_feature_store(
    path: Path, *, names: list[str] | None = None, allow_pickle: bool = False
) -> FeatureStore:
    """Open whatever ``path`` is: packed store dir, npy folder, or a .npy file.

    A file with ``names`` (the annotations' video order) is the released multi-video
    file; without them, one video's plain [T, D] array.
    """
    path = Path(path)
    if path.is_dir():
        if (path / INDEX_FILE).is_file():
            return PackedFeatureStore(path)
        return NpyFolderStore(path)
    if path.is_file():
        if names is None:
            return NpyFolderStore(path)
        return ReleasedFeatureStore(path, names, allow_pickle)
    raise DataError(f"{path}: feature file or folder not found")


def convert_to_packed(
    store: FeatureStore,
    out: Path,
    *,
    dtype: str = "float32",
    names: list[str] | None = None,
    progress: bool = True,
) -> PackedFeatureStore:
    """Copy ``store`` (or the videos ``names``) into a new packed store, video by video."""
    chosen = store.names if names is None else list(names)
    with PackedFeatureWriter(out, store.dim, dtype=dtype) as writer:
        for name in tqdm(chosen, desc="packing features", unit="video", disable=not progress):
            writer.add(name, store.read(name))
    return PackedFeatureStore(out)


def check_store(store: FeatureStore, progress: bool = False) -> tuple[int, int]:
    """Read every video (checksum where stored, shape, finiteness); DataError at the first
    bad one. Returns (videos read, videos whose checksum was verified)."""
    verified = 0
    for name in tqdm(store.names, desc="checking features", unit="video", disable=not progress):
        store.read(name)
        verified += int(getattr(store, "checksums", {}).get(name) is not None)
    return len(store.names), verified


def verify_packed(source: FeatureStore, packed: PackedFeatureStore) -> None:
    """Raise DataError at the first video whose packed copy differs from the source.

    Exact equality: against the source itself for float32, against the source rounded to
    float16 for a float16 store.
    """
    missing = [name for name in packed.names if name not in source]
    if missing:
        raise DataError(f"{packed.path}: video {missing[0]!r} is not in {source.path}")
    for name in packed.names:
        expected = source.read(name)
        if packed.dtype != np.float32:
            expected = expected.astype(packed.dtype).astype(np.float32)
        if not np.array_equal(packed.read(name), expected):
            raise DataError(f"{packed.path}: video {name!r} differs from {source.path}")
