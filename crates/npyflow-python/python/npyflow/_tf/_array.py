"""tf's array ops on NumPy values: ``cast``, ``constant``, ``reshape``, ``one_hot``, ..."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ._dtypes import to_numpy

from .._values import is_python
from ._convert import axes, out, pair, to_array


def cast(x: Any, dtype: Any, name: Optional[str] = None) -> Any:
    """``tf.cast``: ``x`` as ``dtype`` (floats to integers truncate toward zero)."""
    arr = to_array(x)
    d = to_numpy(dtype)
    if arr.dtype.kind == "c" and d.kind != "c":
        arr = arr.real
    return out(arr.astype(d, copy=False))


def constant(value: Any, dtype: Any = None, shape: Optional[Sequence[int]] = None, name: Optional[str] = None) -> Any:
    """``tf.constant``: ``value`` as a tensor (Python ints int32, floats float32, str bytes),
    of ``dtype`` and broadcast to ``shape`` when given."""
    arr = to_array(value, dtype)
    if shape is not None:
        shape_t = tuple(int(s) for s in shape)
        arr = np.reshape(arr, shape_t) if arr.size == int(np.prod(shape_t)) else np.broadcast_to(arr, shape_t).copy()
    return out(arr)


def convert_to_tensor(value: Any, dtype: Any = None, dtype_hint: Any = None, name: Optional[str] = None) -> Any:
    """``tf.convert_to_tensor``: arrays as they are (no copy), Python values as tf converts
    them (``dtype_hint`` applies to Python values)."""
    if dtype is None and dtype_hint is not None and is_python(value):
        dtype = dtype_hint
    return out(to_array(value, dtype))


def identity(input: Any, name: Optional[str] = None) -> Any:
    return out(to_array(input))


def reshape(tensor: Any, shape: Any, name: Optional[str] = None) -> Any:
    return out(np.reshape(to_array(tensor), tuple(int(s) for s in np.asarray(shape).ravel())))


def transpose(a: Any, perm: Any = None, conjugate: bool = False, name: Optional[str] = None) -> Any:
    arr = to_array(a)
    res = np.transpose(arr, None if perm is None else tuple(int(p) for p in np.asarray(perm).ravel()))
    return out(np.conj(res) if conjugate else res)


def reverse(tensor: Any, axis: Any, name: Optional[str] = None) -> Any:
    return out(np.flip(to_array(tensor), axis=axes(axis)))


def expand_dims(input: Any, axis: int, name: Optional[str] = None) -> Any:
    return out(np.expand_dims(to_array(input), int(axis)))


def squeeze(input: Any, axis: Any = None, name: Optional[str] = None) -> Any:
    return out(np.squeeze(to_array(input), axis=axes(axis)))


def concat(values: Sequence[Any], axis: int, name: str = "concat") -> Any:
    return out(np.concatenate([to_array(v) for v in values], axis=int(axis)))


def stack(values: Sequence[Any], axis: int = 0, name: str = "stack") -> Any:
    return out(np.stack([to_array(v) for v in values], axis=int(axis)))


def unstack(value: Any, num: Optional[int] = None, axis: int = 0, name: str = "unstack") -> Any:
    arr = np.moveaxis(to_array(value), int(axis), 0)
    return [out(a) for a in arr]


def tile(input: Any, multiples: Any, name: Optional[str] = None) -> Any:
    return out(np.tile(to_array(input), tuple(int(m) for m in np.asarray(multiples).ravel())))


def gather(params: Any, indices: Any, axis: Optional[int] = None, batch_dims: int = 0, name: Optional[str] = None) -> Any:
    if batch_dims:
        raise NotImplementedError("npyflow.gather: batch_dims is not supported; use NumPy indexing")
    return out(np.take(to_array(params), to_array(indices), axis=0 if axis is None else int(axis)))


def one_hot(
    indices: Any,
    depth: int,
    on_value: Any = None,
    off_value: Any = None,
    axis: Optional[int] = None,
    dtype: Any = None,
    name: Optional[str] = None,
) -> Any:
    """``tf.one_hot``: float32 unless ``dtype`` or the on/off values say otherwise; indices
    outside ``[0, depth)`` give a row of ``off_value``."""
    idx = to_array(indices)
    if dtype is None:
        given = on_value if on_value is not None else off_value
        dtype = to_array(given).dtype if given is not None else np.float32
    d = to_numpy(dtype)
    on = np.asarray(1 if on_value is None else to_array(on_value), dtype=d)
    off = np.asarray(0 if off_value is None else to_array(off_value), dtype=d)
    hot = idx[..., np.newaxis] == np.arange(int(depth), dtype=idx.dtype if idx.dtype.kind in "iu" else np.int64)
    res = np.where(hot, on, off).astype(d, copy=False)
    if axis is not None and int(axis) != -1:
        res = np.moveaxis(res, -1, int(axis))
    return out(res)


def fill(dims: Any, value: Any, name: Optional[str] = None) -> Any:
    v = to_array(value)
    return out(np.full(tuple(int(s) for s in np.asarray(dims).ravel()), v, dtype=v.dtype))


def zeros(shape: Any, dtype: Any = np.float32, name: Optional[str] = None) -> Any:
    return out(np.zeros(tuple(int(s) for s in np.asarray(shape).ravel()), dtype=to_numpy(dtype)))


def ones(shape: Any, dtype: Any = np.float32, name: Optional[str] = None) -> Any:
    return out(np.ones(tuple(int(s) for s in np.asarray(shape).ravel()), dtype=to_numpy(dtype)))


def zeros_like(input: Any, dtype: Any = None, name: Optional[str] = None) -> Any:
    return out(np.zeros_like(to_array(input), dtype=to_numpy(dtype)))


def ones_like(input: Any, dtype: Any = None, name: Optional[str] = None) -> Any:
    return out(np.ones_like(to_array(input), dtype=to_numpy(dtype)))


def where(condition: Any, x: Any = None, y: Any = None, name: Optional[str] = None) -> Any:
    """``tf.where``: with ``x`` and ``y``, elements chosen by ``condition`` (broadcast);
    alone, the int64 coordinates of its true elements, one row each."""
    cond = to_array(condition)
    if x is None and y is None:
        return out(np.argwhere(cond).astype(np.int64))
    if x is None or y is None:
        raise ValueError("tf.where needs both x and y, or neither")
    a, b = pair(x, y)
    return out(np.where(cond.astype(bool, copy=False), a, b))


def shape(input: Any, out_type: Any = np.int32, name: Optional[str] = None) -> Any:
    return out(np.asarray(to_array(input).shape, dtype=to_numpy(out_type)))


def size(input: Any, out_type: Any = np.int32, name: Optional[str] = None) -> Any:
    return out(np.asarray(to_array(input).size, dtype=to_numpy(out_type)))


def rank(input: Any, name: Optional[str] = None) -> Any:
    return out(np.int32(to_array(input).ndim))


def range_(start: Any, limit: Any = None, delta: Any = 1, dtype: Any = None, name: str = "range") -> Any:
    """``tf.range``: int32 for Python ints, float32 for Python floats (or ``dtype``)."""
    if limit is None:
        start, limit = 0, start
    if dtype is None:
        dtype = np.result_type(*[to_array(v).dtype for v in (start, limit, delta)])
    return out(np.arange(start, limit, delta).astype(to_numpy(dtype)))
