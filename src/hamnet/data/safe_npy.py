"""Reading the released ``.npy`` files without running code stored in them.

The W-TALC annotation files and the released feature file are numpy object arrays, i.e.
pickles. A pickle names the functions it calls, so an unpickler that resolves only the
few names these files need (numpy's array reconstruction, ``dtype``, ``ndarray``, and
``_codecs.encode`` that Python 2 pickles use for ``bytes``) can read them and refuses
anything else before it is called. Plain (non-object) arrays are read with
``allow_pickle=False`` as usual.
"""

from __future__ import annotations

import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np

from hamnet.errors import DataError

# (module, name) pairs the released files use; numpy 1.x pickles say "numpy.core".
# ``ndarray.__setstate__`` refuses raw bytes for an object array, so these cannot
# conjure a pointer either.
ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)
MAX_ITEMS = 1 << 31  # per array; the largest released file holds 2 * 10^4 entries
MAX_DIMENSIONS = 8
MAX_NESTING = 8  # arrays inside object arrays; the released files nest two deep


class RefusedGlobal(DataError):
    """A pickle asked for a function or class outside the allowed set."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, handle, path: Path):
        super().__init__(handle, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise RefusedGlobal(
                f"{self.path}: refusing to unpickle global '{module}.{name}' (a released "
                f".npy holds only numpy arrays, lists, strings and numbers; this file may "
                f"try to run code)"
            )
        if name == "ndarray":
            return _CheckedArray
        if name == "dtype":
            return _DtypeSpec
        if name == "_reconstruct":
            return _checked_reconstruct
        return super().find_class(module, name)

    def persistent_load(self, pid):
        raise RefusedGlobal(f"{self.path}: refusing a persistent id in the pickle ({pid!r})")


def load_npy(path: Path) -> np.ndarray:
    """An array from a ``.npy`` file; object arrays go through the restricted unpickler.

    Any problem (missing, truncated, garbage, refused global) is one DataError naming
    the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            shape, _, dtype = _read_header(path, handle, version)
            if not dtype.hasobject:
                _check_size(path, handle, shape, dtype)
                return np.load(path, allow_pickle=False)
            array = _RestrictedUnpickler(handle, path).load()
    except CraftedState as error:
        raise DataError(f"{path}: crafted or corrupt array in the pickle ({error})") from None
    except DataError:
        raise
    except Exception as error:  # noqa: BLE001 - a corrupt pickle can raise almost anything
        problem = f"{type(error).__name__}: {error}"
        raise DataError(f"{path}: not a readable .npy file ({problem})") from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path}: the pickle does not hold a numpy array ({type(array).__name__})")
    if not getattr(array, "_checked", False):
        raise DataError(f"{path}: the pickle's array was never given its state")
    return _plain(array)


def _check_size(path: Path, handle, shape: tuple, dtype: np.dtype) -> None:
    """A header that promises more data than the file holds is refused before reading."""
    _check_promise(str(path), shape, dtype, path.stat().st_size - handle.tell())


def _check_promise(where: str, shape: tuple, dtype: np.dtype, present: int) -> None:
    needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if needed != present:
        raise DataError(
            f"{where}: the header promises shape {list(shape)} ({needed} bytes) but the "
            f"file holds {present} bytes of data"
        )


# deflate expands at most ~1032:1; a member declaring more than that is crafted
MAX_DEFLATE_RATIO = 1100


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of a ``.npz`` (no pickle), each header checked against its member's
    size before numpy allocates it: a crafted header claiming 2 * 10^9 entries is one
    DataError naming the file, not a memory error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with zipfile.ZipFile(path) as archive:
            return {
                info.filename.removesuffix(".npy"): _npz_member(path, archive, info)
                for info in archive.infolist()
            }
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"{path}: not a readable .npz file ({error})") from None


def _npz_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    where = f"{path}[{info.filename}]"
    limit = info.compress_size * MAX_DEFLATE_RATIO + 4096
    if info.compress_type == zipfile.ZIP_STORED:
        limit = info.compress_size
    if info.file_size > limit:
        raise DataError(f"{where}: declares {info.file_size} bytes, more than its data can hold")
    with archive.open(info) as handle:
        version = np.lib.format.read_magic(handle)
        shape, fortran, dtype = _read_header(path, handle, version)
        if dtype.hasobject:
            raise DataError(f"{where}: not a readable .npz member (an object array, i.e. a pickle)")
        _check_promise(where, shape, dtype, info.file_size - handle.tell())
        data = handle.read()
    _check_promise(where, shape, dtype, len(data))
    order = "F" if fortran else "C"
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy()


def _read_header(path: Path, handle, version: tuple[int, int]):
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(handle)
    raise DataError(f"{path}: .npy format version {version} is not supported (1.0 or 2.0)")


class CraftedState(Exception):
    """An array or dtype state that numpy would trust but that does not hold together."""


def _checked_reconstruct(subtype, shape, dtype):
    """``numpy``'s ``_reconstruct`` for the one call a pickled array makes: an empty
    array of our checked class, whose state is checked before numpy reads it."""
    if subtype is not _CheckedArray or shape != (0,) or dtype not in (b"b", "b"):
        raise CraftedState(f"unexpected array reconstruction {subtype!r}, {shape!r}, {dtype!r}")
    return np.ndarray.__new__(_CheckedArray, (0,), np.uint8)


class _CheckedArray(np.ndarray):
    """Arrays built by the unpickler: ``__setstate__`` checks the state first."""

    def __new__(cls, *args, **kwargs):  # the pickle may only reconstruct, never construct
        raise CraftedState("the pickle calls numpy.ndarray directly")

    def __setstate__(self, state):
        shape, dtype, fortran, payload, depth = _check_array_state(state)
        np.ndarray.__setstate__(self, (1, shape, dtype, fortran, payload))
        self._depth = depth
        self._checked = True


class _DtypeSpec:
    """Stands in for ``numpy.dtype(spec, align, copy)`` until its state is checked."""

    def __init__(self, spec, align=False, copy=True):
        if isinstance(spec, bytes):
            spec = spec.decode("latin-1")
        if not isinstance(spec, str) or len(spec) > 16:
            raise CraftedState(f"dtype spec {spec!r} is not a short type code")
        try:
            self.dtype = np.dtype(spec)
        except TypeError as error:
            raise CraftedState(f"dtype spec {spec!r}: {error}") from None
        if self.dtype.fields is not None or self.dtype.subdtype is not None:
            raise CraftedState(f"dtype {spec!r} is structured (the released files use none)")
        self.state_set = False

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise CraftedState(f"dtype state {state!r:.80} is not a plain dtype's")
        order, subarray, names, fields, elsize, alignment = state[1:7]
        if subarray is not None or names is not None or fields is not None:
            raise CraftedState("dtype state declares fields or a subarray")
        if elsize not in (-1, self.dtype.itemsize) or alignment not in (-1, self.dtype.alignment):
            raise CraftedState(f"dtype state's item size {elsize!r} disagrees with {self.dtype}")
        order = order.decode("latin-1") if isinstance(order, bytes) else order
        if order not in ("<", ">", "|", "="):
            raise CraftedState(f"dtype state's byte order {order!r}")
        if order in "<>" and self.dtype.itemsize > 1 and not self.dtype.hasobject:
            self.dtype = self.dtype.newbyteorder(order)
        self.state_set = True


def _check_array_state(state):
    """(shape, dtype, fortran, payload, depth) once every field fits the others."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise CraftedState(f"array state is a {type(state).__name__}, not a 4- or 5-tuple")
    shape, spec, fortran, payload = state[-4:]
    if not isinstance(spec, _DtypeSpec) or not isinstance(fortran, bool):
        raise CraftedState("array state's dtype or order flag has the wrong type")
    if not isinstance(shape, tuple) or len(shape) > MAX_DIMENSIONS:
        raise CraftedState(f"array shape {shape!r:.80} is not a tuple of <= 8 sizes")
    if not all(type(n) is int and 0 <= n <= MAX_ITEMS for n in shape):
        raise CraftedState(f"array shape {shape!r:.80} holds a negative or huge size")
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if count > MAX_ITEMS:
        raise CraftedState(f"array shape {list(shape)} declares {count} items")
    dtype = spec.dtype
    if dtype.hasobject:
        return shape, dtype, fortran, _object_items(payload, count), _nesting(payload)
    if isinstance(payload, str):
        payload = payload.encode("latin-1")  # Python 2 pickles read with encoding='bytes'
    if not isinstance(payload, bytes) or len(payload) != count * dtype.itemsize:
        size = len(payload) if isinstance(payload, (bytes, list)) else type(payload).__name__
        raise CraftedState(
            f"array shape {list(shape)} of {dtype} needs {count * dtype.itemsize} bytes, "
            f"the state carries {size}"
        )
    return shape, dtype, fortran, payload, 1


def _object_items(payload, count: int) -> list:
    if not isinstance(payload, list) or len(payload) != count:
        size = len(payload) if isinstance(payload, list) else type(payload).__name__
        raise CraftedState(f"object array declares {count} items, the state carries {size}")
    for item in payload:
        if isinstance(item, _CheckedArray) and not getattr(item, "_checked", False):
            raise CraftedState("object array holds an array that was never given its state")
    return payload


def _nesting(items: list) -> int:
    depth = 1 + max(
        (getattr(x, "_depth", 0) for x in items if isinstance(x, _CheckedArray)), default=0
    )
    if depth > MAX_NESTING:
        raise CraftedState(f"arrays nested more than {MAX_NESTING} deep")
    return depth


def _plain(array: np.ndarray) -> np.ndarray:
    """Plain ndarrays throughout (the checked class lives only while unpickling)."""
    array = array.view(np.ndarray)
    if array.dtype.hasobject:
        for index in np.ndindex(array.shape):
            if isinstance(array[index], _CheckedArray):
                array[index] = _plain(array[index])
    return array
