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
NUMPY_MODULES = {"numpy.core.multiarray": "numpy._core.multiarray"}


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
        if hasattr(np, "_core"):  # numpy 2: import the real module, not the shim
            module = NUMPY_MODULES.get(module, module)
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
    except DataError:
        raise
    except Exception as error:  # noqa: BLE001 - a corrupt pickle can raise almost anything
        problem = f"{type(error).__name__}: {error}"
        raise DataError(f"{path}: not a readable .npy file ({problem})") from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path}: the pickle does not hold a numpy array ({type(array).__name__})")
    return array


def _check_size(path: Path, handle, shape: tuple, dtype: np.dtype) -> None:
    """A header that promises more data than the file holds is refused before reading."""
    needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    present = path.stat().st_size - handle.tell()
    if needed != present:
        raise DataError(
            f"{path}: the header promises shape {list(shape)} ({needed} bytes) but the "
            f"file holds {present} bytes of data"
        )


def _read_header(path: Path, handle, version: tuple[int, int]):
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(handle)
    raise DataError(f"{path}: .npy format version {version} is not supported (1.0 or 2.0)")
