"""``.npy`` and ``.npz`` files: ``load``, ``save``, ``savez`` and ``savez_compressed``, with
NumPy's signatures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Tuple, Union

import numpy as np

from . import _npyflow
from ._args import PathLike, as_path

if TYPE_CHECKING:
    import numpy.typing as npt


def load(file: PathLike) -> Union[np.ndarray[Any, Any], Dict[str, np.ndarray[Any, Any]]]:
    """A ``.npy`` file as an array, or an ``.npz`` archive as a dict of arrays (archive
    order). Data that can be used in place is memory-mapped and read-only, as with
    ``np.load(file, mmap_mode="r")``; other data is converted once."""
    return _npyflow.load(as_path(file))


def save(file: PathLike, arr: npt.ArrayLike) -> None:
    """Writes ``arr`` as a ``.npy`` file (``.npy`` is added to a name without it, as
    ``np.save`` does). The array is written in C order."""
    path = as_path(file)
    if not path.endswith(".npy"):
        path += ".npy"
    _npyflow.save(path, arr)


def _savez(
    file: PathLike, args: Tuple[npt.ArrayLike, ...], kwds: Dict[str, npt.ArrayLike], compressed: bool
) -> None:
    path = as_path(file)
    if not path.endswith(".npz"):
        path += ".npz"
    # A keyword named like a positional array's member (arr_0, ...) is refused by the
    # native module (ValueError, nothing written).
    named = [(f"arr_{i}", a) for i, a in enumerate(args)] + list(kwds.items())
    _npyflow.savez(path, named, compressed)


def savez(file: PathLike, *args: npt.ArrayLike, **kwds: npt.ArrayLike) -> None:
    """Writes arrays into an uncompressed ``.npz`` archive, as ``np.savez``; npyflow aligns
    members so that they can be memory-mapped when read back."""
    _savez(file, args, kwds, False)


def savez_compressed(file: PathLike, *args: npt.ArrayLike, **kwds: npt.ArrayLike) -> None:
    """Writes arrays into a deflated ``.npz`` archive, as ``np.savez_compressed``."""
    _savez(file, args, kwds, True)
