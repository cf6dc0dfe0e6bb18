"""``tf.math`` on NumPy values: elementwise math, comparisons and the ``reduce_*`` family."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from ._dtypes import to_numpy

from ._convert import axes, out, pair, to_array


def _unary(f: Callable[..., Any], doc: str) -> Callable[..., Any]:
    def op(x: Any, name: Optional[str] = None) -> Any:
        with np.errstate(all="ignore"):  # tf warns of nothing: NaN and inf are values
            return out(f(to_array(x)))

    op.__doc__ = doc
    return op


def _binary(f: Callable[..., Any], doc: str) -> Callable[..., Any]:
    def op(x: Any, y: Any, name: Optional[str] = None) -> Any:
        a, b = pair(x, y)
        with np.errstate(all="ignore"):
            return out(f(a, b))

    op.__doc__ = doc
    return op


abs = _unary(np.abs, "``tf.abs``")
sqrt = _unary(np.sqrt, "``tf.sqrt``")
exp = _unary(np.exp, "``tf.exp``")
log = _unary(np.log, "``tf.math.log``")
log1p = _unary(np.log1p, "``tf.math.log1p``")
square = _unary(np.square, "``tf.square``")
negative = _unary(np.negative, "``tf.negative``")
sign = _unary(np.sign, "``tf.sign``")
floor = _unary(np.floor, "``tf.floor``")
ceil = _unary(np.ceil, "``tf.math.ceil``")
round = _unary(np.rint, "``tf.round`` (half to even)")
tanh = _unary(np.tanh, "``tf.tanh``")
sin = _unary(np.sin, "``tf.sin``")
cos = _unary(np.cos, "``tf.cos``")
logical_not = _unary(np.logical_not, "``tf.logical_not``")
is_nan = _unary(np.isnan, "``tf.math.is_nan``")
is_inf = _unary(np.isinf, "``tf.math.is_inf``")
is_finite = _unary(np.isfinite, "``tf.math.is_finite``")


def rsqrt(x: Any, name: Optional[str] = None) -> Any:
    a = to_array(x)
    return out(np.asarray(1, dtype=a.dtype) / np.sqrt(a))


def reciprocal(x: Any, name: Optional[str] = None) -> Any:
    a = to_array(x)
    return out(np.asarray(1, dtype=a.dtype) / a)


def sigmoid(x: Any, name: Optional[str] = None) -> Any:
    a = to_array(x)
    one = np.asarray(1, dtype=a.dtype)
    return out(one / (one + np.exp(-a)))


maximum = _binary(np.maximum, "``tf.maximum`` (NaN propagates)")
minimum = _binary(np.minimum, "``tf.minimum`` (NaN propagates)")
equal = _binary(np.equal, "``tf.equal``")
not_equal = _binary(np.not_equal, "``tf.not_equal``")
less = _binary(np.less, "``tf.less``")
less_equal = _binary(np.less_equal, "``tf.less_equal``")
greater = _binary(np.greater, "``tf.greater``")
greater_equal = _binary(np.greater_equal, "``tf.greater_equal``")
add = _binary(np.add, "``tf.add``")
subtract = _binary(np.subtract, "``tf.subtract``")
multiply = _binary(np.multiply, "``tf.multiply``")
floordiv = _binary(np.floor_divide, "``tf.math.floordiv``")
floormod = _binary(np.mod, "``tf.math.floormod``")
mod = floormod
pow = _binary(np.power, "``tf.pow``")
logical_and = _binary(np.logical_and, "``tf.logical_and``")
logical_or = _binary(np.logical_or, "``tf.logical_or``")
logical_xor = _binary(np.logical_xor, "``tf.math.logical_xor``")

# tf's truediv casts small integers to float32 and 32/64-bit ones to float64.
_TRUEDIV = {1: np.float32, 2: np.float32, 4: np.float64, 8: np.float64}


def divide(x: Any, y: Any, name: Optional[str] = None) -> Any:
    """``tf.divide`` / ``tf.math.truediv``: integers divide as floats (float32 for 8 and
    16 bits, float64 for 32 and 64), as tf does."""
    a, b = pair(x, y)
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        d = _TRUEDIV[max(a.dtype.itemsize, b.dtype.itemsize)]
        return out(np.true_divide(a.astype(d), b.astype(d)))
    return out(np.true_divide(a, b))


truediv = divide


def _reduce(f: Callable[..., Any], doc: str) -> Callable[..., Any]:
    def op(input_tensor: Any, axis: Any = None, keepdims: bool = False, name: Optional[str] = None) -> Any:
        return out(f(to_array(input_tensor), axes(axis), bool(keepdims)))

    op.__doc__ = doc
    return op


def _sum(a: Any, ax: Any, keep: bool) -> Any:
    return np.sum(a, axis=ax, keepdims=keep, dtype=a.dtype if a.dtype.kind != "b" else None)


def _prod(a: Any, ax: Any, keep: bool) -> Any:
    return np.prod(a, axis=ax, keepdims=keep, dtype=a.dtype if a.dtype.kind != "b" else None)


def _count(a: Any, ax: Any) -> int:
    if ax is None:
        return int(a.size)
    dims = (ax,) if isinstance(ax, int) else ax
    return int(np.prod([a.shape[d] for d in dims]))


def _mean(a: Any, ax: Any, keep: bool) -> Any:
    if a.dtype.kind in "iu":
        # tf's integer mean: the sum (without overflow for the small types), divided
        # truncating toward zero, in the input's dtype.
        wide = np.int64 if a.dtype.kind == "i" else np.uint64
        s = np.sum(a, axis=ax, keepdims=keep, dtype=wide)
        n = max(_count(a, ax), 1)
        q = np.sign(s) * (np.abs(s) // n) if a.dtype.kind == "i" else s // np.uint64(n)
        return np.asarray(q).astype(a.dtype)
    return np.mean(a, axis=ax, keepdims=keep, dtype=a.dtype)


def _extreme(f: Callable[..., Any], lowest: bool) -> Callable[..., Any]:
    def red(a: Any, ax: Any, keep: bool) -> Any:
        if a.size == 0:
            if a.dtype.kind == "f":
                init = -np.inf if lowest else np.inf
            elif a.dtype.kind == "b":
                init = not lowest
            else:
                info = np.iinfo(a.dtype)
                init = info.min if lowest else info.max
            return f(a, axis=ax, keepdims=keep, initial=init)
        return f(a, axis=ax, keepdims=keep)

    return red


def _variance(a: Any, ax: Any, keep: bool) -> Any:
    return np.var(a, axis=ax, keepdims=keep, dtype=a.dtype)


def _std(a: Any, ax: Any, keep: bool) -> Any:
    return np.std(a, axis=ax, keepdims=keep, dtype=a.dtype)


def _logsumexp(a: Any, ax: Any, keep: bool) -> Any:
    m = np.max(a, axis=ax, keepdims=True)
    m = np.where(np.isfinite(m), m, np.zeros_like(m))
    res = np.log(np.sum(np.exp(a - m), axis=ax, keepdims=True)) + m
    return res if keep else np.squeeze(res, axis=ax)


reduce_sum = _reduce(_sum, "``tf.reduce_sum`` (in the input's dtype)")
reduce_prod = _reduce(_prod, "``tf.reduce_prod``")
reduce_mean = _reduce(_mean, "``tf.reduce_mean`` (integers: truncated, as tf's)")
reduce_max = _reduce(_extreme(np.max, True), "``tf.reduce_max``")
reduce_min = _reduce(_extreme(np.min, False), "``tf.reduce_min``")
reduce_all = _reduce(lambda a, ax, k: np.all(a, axis=ax, keepdims=k), "``tf.reduce_all``")
reduce_any = _reduce(lambda a, ax, k: np.any(a, axis=ax, keepdims=k), "``tf.reduce_any``")
reduce_variance = _reduce(_variance, "``tf.math.reduce_variance`` (population)")
reduce_std = _reduce(_std, "``tf.math.reduce_std`` (population)")
reduce_logsumexp = _reduce(_logsumexp, "``tf.reduce_logsumexp``")


def argmax(input: Any, axis: Any = None, output_type: Any = np.int64, name: Optional[str] = None) -> Any:
    return out(np.argmax(to_array(input), axis=0 if axis is None else int(axis)).astype(to_numpy(output_type)))


def argmin(input: Any, axis: Any = None, output_type: Any = np.int64, name: Optional[str] = None) -> Any:
    return out(np.argmin(to_array(input), axis=0 if axis is None else int(axis)).astype(to_numpy(output_type)))


def cumsum(x: Any, axis: int = 0, exclusive: bool = False, reverse: bool = False, name: Optional[str] = None) -> Any:
    a = to_array(x)
    if reverse:
        a = np.flip(a, axis)
    res = np.cumsum(a, axis=int(axis), dtype=a.dtype)
    if exclusive:
        res = np.concatenate([np.zeros_like(np.take(res, [0], axis=axis)), np.delete(res, -1, axis=axis)], axis=axis)
    if reverse:
        res = np.flip(res, axis)
    return out(res)


def clip_by_value(t: Any, clip_value_min: Any, clip_value_max: Any, name: Optional[str] = None) -> Any:
    """``tf.clip_by_value``: ``minimum(t, max)`` then ``maximum(.., min)``, in ``t``'s dtype."""
    a = to_array(t)
    lo = to_array(clip_value_min, a.dtype)
    hi = to_array(clip_value_max, a.dtype)
    return out(np.maximum(np.minimum(a, hi), lo))
