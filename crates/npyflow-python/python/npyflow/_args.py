"""The argument checks and conversions that only the Python layer makes.

The native module refuses most bad arguments itself (ints that are not ints, sizes that are
not positive, a ``num_parallel_calls`` that is neither positive nor AUTOTUNE, ...); these are
the checks it does not make, or makes with another exception type than tf.data's.
"""

from __future__ import annotations

import operator
import os
from typing import Any, Optional, Protocol, Sequence, Union

import numpy as np

from ._specs import ElementSpec, structure_dtypes

#: A file name: a str or an ``os.PathLike`` (``pathlib.Path``).
PathLike = Union[str, os.PathLike[str]]


def as_index(value: Any, what: str) -> int:
    """``value`` as an int, refusing bools (which the native module would take as 0 and 1)
    with a TypeError that names the argument."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be an int, got a bool")
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, got {type(value).__name__}") from None
    if not _INT64_MIN <= n <= _INT64_MAX:
        # tf.data converts it to an int64 tensor, and raises ValueError where it does not fit.
        raise ValueError(f"{what} must fit in a 64-bit signed integer (int64), got {n}")
    return n


_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def as_seed(seed: Optional[int]) -> Optional[int]:
    return None if seed is None else as_index(seed, "seed")


def as_path(p: PathLike) -> str:
    return os.fspath(p)


def check_parallel_calls(num_parallel_calls: Optional[int]) -> None:
    """Refuses a bool for ``num_parallel_calls``, which the native module would take as 1
    (a NumPy bool too, where NumPy still lets it be an index). The native module refuses
    other non-ints (TypeError) and values that are neither positive nor AUTOTUNE
    (ValueError) itself."""
    if isinstance(num_parallel_calls, (bool, np.bool_)):
        raise TypeError(f"num_parallel_calls must be an int or AUTOTUNE, got {num_parallel_calls!r}")


class _HasElementSpec(Protocol):
    @property
    def element_spec(self) -> ElementSpec: ...


def require_compatible(op: str, datasets: Sequence[_HasElementSpec]) -> None:
    """tf.data's TypeError for datasets whose elements differ in structure or dtypes (the
    core refuses them too, with a ValueError)."""
    first = structure_dtypes(datasets[0].element_spec)
    for i, d in enumerate(datasets[1:], 1):
        if structure_dtypes(d.element_spec) != first:
            raise TypeError(
                f"{op}: incompatible dataset elements: dataset 0 has "
                f"{datasets[0].element_spec!r}, dataset {i} has {d.element_spec!r}"
            )
