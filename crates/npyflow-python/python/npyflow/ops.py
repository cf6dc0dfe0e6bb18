"""Built-in ops that ``Dataset.map`` runs in Rust, with no Python and no GIL.

Each op applies to every tensor of an element or, with ``component=`` (a tuple index or a
dict key), to one part of it::

    ds = ds.map(ops.cast("float32", component=0)).map(ops.scale(1 / 255, component=0))

Consecutive ``map`` calls of ops fuse into one pass, and elementwise ones (cast, scale,
normalize) into a following ``batch``, whose buffers they write directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn, Optional, Sequence, Tuple, Union

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "Op",
    "cast",
    "scale",
    "normalize",
    "one_hot",
    "reshape",
    "transpose",
    "random_flip",
    "random_crop",
]

Component = Optional[Union[int, str]]


class Op:
    """A built-in op. Make one with :func:`cast`, :func:`scale`, ... and pass it to ``map``."""

    __slots__ = ("_kind", "_params", "_component")

    def __init__(self, kind: str, params: Tuple[Any, ...], component: Component = None) -> None:
        if component is not None and not isinstance(component, (int, str)):
            raise TypeError(
                f"component must be a tuple index (int) or a dict key (str), got {component!r}"
            )
        if isinstance(component, bool):
            raise TypeError("component must be a tuple index (int) or a dict key (str), got a bool")
        self._kind = kind
        self._params = params
        self._component = component

    def _spec(self) -> Tuple[str, Tuple[Any, ...], Component]:
        return (self._kind, self._params, self._component)

    def __call__(self, *args: Any) -> NoReturn:
        raise TypeError(f"{self!r} is run by Dataset.map, not called")

    def __repr__(self) -> str:
        params = ", ".join(repr(p) for p in self._params)
        if self._component is not None:
            params += f", component={self._component!r}"
        return f"ops.{self._kind}({params})"


def cast(dtype: npt.DTypeLike, component: Component = None) -> Op:
    """``x.astype(dtype)`` for numeric tensors (NumPy's unsafe casting: integers wrap,
    floats truncate toward zero; NaN and out-of-range floats saturate into integers)."""
    return Op("cast", (np.dtype(dtype),), component)


def scale(factor: float, offset: float = 0.0, component: Component = None) -> Op:
    """``x * factor + offset`` for float tensors, computed in float64 and rounded once to the
    tensor's dtype (so ``scale(1 / 255)`` matches NumPy's ``x / 255``). Cast integers first."""
    return Op("scale", (float(factor), float(offset)), component)


def normalize(mean: npt.ArrayLike, std: npt.ArrayLike, component: Component = None) -> Op:
    """``(x - mean) / std`` per channel of the last axis (one value: every element), for float
    tensors."""
    means = tuple(float(m) for m in np.atleast_1d(mean))
    stds = tuple(float(s) for s in np.atleast_1d(std))
    return Op("normalize", (means, stds), component)


def one_hot(depth: int, component: Component = None) -> Op:
    """Integer class ids to float32 one-hot vectors of ``depth`` (a new last axis); ids
    outside ``[0, depth)`` give all zeros, as ``tf.one_hot``."""
    return Op("one_hot", (int(depth),), component)


def reshape(shape: Sequence[int], component: Component = None) -> Op:
    """Each tensor (of one element, not the batch) in another shape; one dimension may be -1."""
    return Op("reshape", (tuple(int(d) for d in shape),), component)


def transpose(perm: Sequence[int], component: Component = None) -> Op:
    """Each tensor's axes permuted: output axis i is input axis ``perm[i]``."""
    return Op("transpose", (tuple(int(p) for p in perm),), component)


def random_flip(axis: int, seed: int = 0, component: Component = None) -> Op:
    """Reverses ``axis`` of half the elements, chosen by ``seed`` and each element's position
    (so the same on every run and for any number of threads)."""
    return Op("random_flip", (int(axis), int(seed)), component)


def random_crop(size: Sequence[int], seed: int = 0, component: Component = None) -> Op:
    """A window of ``size`` (one length per axis) at an offset drawn from ``seed`` and each
    element's position."""
    return Op("random_crop", (tuple(int(d) for d in size), int(seed)), component)
