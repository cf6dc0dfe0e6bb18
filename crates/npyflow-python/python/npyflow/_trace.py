"""Tracing of ``map`` and ``filter`` functions into native op graphs.

``trace(f, spec)`` calls ``f`` once on symbolic values (:class:`Symbol`) that carry the
element's dtypes and shapes and record what is done to them: NumPy's operators, ufuncs and
functions (through ``__array_ufunc__`` and ``__array_function__``), array methods, basic
indexing, and the tf names built on them. When every step is one the graph runs exactly as
NumPy does, the result is the graph's nodes and output structure, which the extension turns
into an ``npyflow.ops.graph`` op run in Rust with no GIL. Anything else (the truth value of
a symbol, as Python's ``if`` asks; conversion to an ndarray, as ``np.random`` or I/O would
need; an in-place write; a function or dtype not listed here) raises :class:`Untraceable`
inside the trace, and ``map`` calls the function per element instead.

Result dtypes are NumPy's own: each ufunc's loop dtypes come from ``ufunc.resolve_dtypes``
(NEP 50's weak Python scalars included) and each result dtype from running NumPy on 0-d
stand-ins of the operands' dtypes (not the user's function), so promotion is never guessed.
Math whose NumPy result is not bit-for-bit reproducible here (``exp``, ``log``, ``tanh``, ...
use NumPy's own SIMD code; float ``sum``/``mean`` use NumPy's pairwise order) is
untraceable, so such functions keep running in Python.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._specs import TensorSpec

__all__ = ["Symbol", "Untraceable", "trace"]

_SUPPORTED = {
    np.dtype(t)
    for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
        np.uint64, np.float32, np.float64,
    )
}

Shape = Tuple[Optional[int], ...]
Node = Tuple[str, Tuple[Any, ...]]


class Untraceable(Exception):
    """Raised inside a trace where the function does something the graph cannot do."""


class _Graph:
    def __init__(self) -> None:
        self.nodes: List[Node] = []

    def add(self, kind: str, args: Tuple[Any, ...], dtype: np.dtype[Any], shape: Shape) -> "Symbol":
        if dtype not in _SUPPORTED:
            raise Untraceable(f"{dtype} values")
        self.nodes.append((kind, args))
        return Symbol(self, len(self.nodes) - 1, dtype, shape)


def _stand_in(v: Any) -> Any:
    """A 0-d value of ``v``'s dtype (Python scalars as they are), for asking NumPy a result
    dtype."""
    if isinstance(v, Symbol):
        return np.ones((), v.dtype)
    return v


def _numpy_result(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            try:
                return f(*args, **kwargs)
            except Exception as e:  # NumPy refuses: so will the per-element call
                raise Untraceable(f"NumPy refuses it: {e}") from None


def _known(shape: Shape) -> Tuple[int, ...]:
    """A shape with every dimension known."""
    if any(d is None for d in shape):
        raise Untraceable("an unknown dimension")
    return tuple(int(d) for d in shape if d is not None)


def _broadcast(*shapes: Shape) -> Shape:
    rank = max((len(s) for s in shapes), default=0)
    out: List[Optional[int]] = [1] * rank
    for s in shapes:
        for i, d in enumerate(s):
            j = rank - len(s) + i
            o = out[j]
            if o == 1:
                out[j] = d
            elif d == 1:
                pass
            elif o is None or d is None:
                out[j] = o if d is None else d
            elif o != d:
                raise Untraceable(f"shapes {shapes} do not broadcast")
    return tuple(out)


class _Const:
    """A constant operand: an ndarray of a supported dtype."""

    __slots__ = ("arr",)

    def __init__(self, arr: np.ndarray[Any, Any]) -> None:
        self.arr = arr


Operand = Union["Symbol", _Const, bool, int, float]


def _operand(g: _Graph, v: Any) -> Operand:
    if isinstance(v, Symbol):
        if v._g is not g:
            raise Untraceable("a value of another trace")
        return v
    if type(v) in (bool, int, float):
        return v  # type: ignore[no-any-return]
    if isinstance(v, (np.ndarray, np.generic, list, tuple)):
        if isinstance(v, (list, tuple)) and any(isinstance(x, Symbol) for x in np.ravel(np.array(v, dtype=object))):
            raise Untraceable("a list of traced values")
        arr = np.asarray(v)
        if arr.dtype not in _SUPPORTED:
            raise Untraceable(f"a constant of {arr.dtype}")
        return _Const(arr.view(np.ndarray) if isinstance(arr, np.ndarray) else arr)
    raise Untraceable(f"an operand of type {type(v).__name__}")


def _descr(v: Operand) -> Any:
    """What ``ufunc.resolve_dtypes`` takes for an operand: a dtype, or a Python scalar's type
    (a weak scalar, NEP 50)."""
    if isinstance(v, Symbol):
        return v.dtype
    if isinstance(v, _Const):
        return v.arr.dtype
    if type(v) is bool:
        return np.dtype(np.bool_)
    return type(v)


def _example(v: Operand) -> Any:
    if isinstance(v, Symbol):
        return np.ones((), v.dtype)
    if isinstance(v, _Const):
        return v.arr
    return v


def _as(g: _Graph, v: Operand, dtype: np.dtype[Any]) -> "Symbol":
    """``v`` as a node of ``dtype``: a cast node for a symbol, a constant for the others."""
    if isinstance(v, Symbol):
        return v if v.dtype == dtype else v.astype(dtype)
    if isinstance(v, _Const):
        arr = v.arr.astype(dtype) if v.arr.dtype != dtype else v.arr
        return _const(g, arr)
    # A Python scalar in the loop's dtype, as NumPy converts it (NEP 50).
    if dtype.kind in "iu" and type(v) is int:
        info = np.iinfo(dtype)
        if not info.min <= v <= info.max:
            raise Untraceable(f"{v} does not fit {dtype}")
    if dtype.kind in "iub" and type(v) is float:
        raise Untraceable(f"a float in a {dtype} loop")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            arr = np.asarray(v, dtype=dtype)
        except Exception:
            raise Untraceable(f"{v!r} as {dtype}") from None
    if dtype.kind == "f" and not np.isfinite(arr) and np.isfinite(v):
        raise Untraceable(f"{v!r} overflows {dtype}")
    return _const(g, arr)


def _const(g: _Graph, arr: np.ndarray[Any, Any]) -> "Symbol":
    arr = np.array(arr, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    return g.add("const", (arr,), arr.dtype, tuple(arr.shape))


_UNARY = {
    np.negative: "negative", np.absolute: "abs", np.square: "square", np.sqrt: "sqrt",
    np.floor: "floor", np.ceil: "ceil", np.trunc: "trunc", np.rint: "rint",
    np.reciprocal: "reciprocal", np.sign: "sign", np.isnan: "isnan", np.isinf: "isinf",
    np.isfinite: "isfinite", np.logical_not: "logical_not", np.invert: "invert",
    np.positive: "positive", np.fabs: "abs",
}
_BINARY = {
    np.add: "add", np.subtract: "subtract", np.multiply: "multiply", np.true_divide: "divide",
    np.floor_divide: "floor_divide", np.remainder: "remainder", np.maximum: "maximum",
    np.minimum: "minimum", np.bitwise_and: "bitwise_and", np.bitwise_or: "bitwise_or",
    np.bitwise_xor: "bitwise_xor", np.logical_and: "logical_and", np.logical_or: "logical_or",
    np.logical_xor: "logical_xor", np.equal: "equal", np.not_equal: "not_equal",
    np.less: "less", np.less_equal: "less_equal", np.greater: "greater",
    np.greater_equal: "greater_equal",
}
# Bool loops of arithmetic ufuncs are logical ones.
_BOOL_AS = {"add": "logical_or", "multiply": "logical_and", "maximum": "logical_or",
            "minimum": "logical_and"}
# Unary ops run only on these kinds (others: untraceable, e.g. integer reciprocal).
_UNARY_KINDS = {
    "sqrt": "f", "floor": "f", "ceil": "f", "trunc": "f", "rint": "f", "reciprocal": "f",
    "negative": "iuf", "abs": "iuf", "square": "iuf", "sign": "iuf", "invert": "iub",
    "isnan": "biuf", "isinf": "biuf", "isfinite": "biuf", "logical_not": "biuf",
    "positive": "iuf",
}


def _unary(g: _Graph, ufunc: Any, x: Any) -> "Symbol":
    name = _UNARY[ufunc]
    x = _operand(g, x)
    if not isinstance(x, Symbol):
        raise Untraceable("a ufunc of constants")
    out = _numpy_result(ufunc, np.ones((), x.dtype))
    loop_in, loop_out = ufunc.resolve_dtypes((x.dtype, None))
    if np.dtype(out.dtype) != loop_out or loop_in.kind not in _UNARY_KINDS[name]:
        raise Untraceable(f"{ufunc.__name__} of {x.dtype}")
    xs = _as(g, x, loop_in)
    if name == "positive":
        return xs
    if name == "abs" and loop_in.kind == "b":
        return xs
    return g.add("unary", (name, xs._id), loop_out, xs.shape)


def _binary(g: _Graph, ufunc: Any, a: Any, b: Any) -> "Symbol":
    name = _BINARY[ufunc]
    x, y = _operand(g, a), _operand(g, b)
    if not isinstance(x, Symbol) and not isinstance(y, Symbol):
        raise Untraceable("a ufunc of constants")
    out = _numpy_result(ufunc, _example(x), _example(y))
    try:
        la, lb, lo = ufunc.resolve_dtypes((_descr(x), _descr(y), None))
    except Exception:
        raise Untraceable(f"{ufunc.__name__} has no loop for these dtypes") from None
    if la != lb or np.dtype(out.dtype) != lo:
        raise Untraceable(f"{ufunc.__name__} of {la} and {lb}")
    if la.kind == "b" and name in _BOOL_AS:
        name = _BOOL_AS[name]
    elif la.kind == "b" and name in ("subtract", "floor_divide", "remainder", "divide"):
        raise Untraceable(f"{name} of bools")
    if name == "divide" and la.kind != "f":
        raise Untraceable("divide in an integer loop")
    if name.startswith("bitwise") and la.kind == "f":
        raise Untraceable("bitwise op of floats")
    xs, ys = _as(g, x, la), _as(g, y, lb)
    shape = _broadcast(xs.shape, ys.shape)
    return g.add("binary", (name, xs._id, ys._id), lo, shape)


def _power(g: _Graph, a: Any, b: Any) -> "Symbol":
    """``a ** b`` for a traced ``a`` and a constant exponent of 1, 2 or -1 (which NumPy
    computes exactly: a copy, a square, a reciprocal)."""
    x, y = _operand(g, a), _operand(g, b)
    if not isinstance(x, Symbol) or isinstance(y, Symbol):
        raise Untraceable("a power of a traced exponent")
    e = y.arr if isinstance(y, _Const) else y
    if np.ndim(e) != 0 or float(e) not in (1.0, 2.0, -1.0):
        raise Untraceable("a power other than 1, 2 or -1")
    out = _numpy_result(np.power, _example(x), _example(y))
    la, lb, lo = np.power.resolve_dtypes((_descr(x), _descr(y), None))
    if la != lo or np.dtype(out.dtype) != lo:
        raise Untraceable("a power with a mixed loop")
    xs = _as(g, x, la)
    if float(e) == 1.0:
        return xs
    if float(e) == 2.0:
        if la.kind == "b":
            raise Untraceable("a power of bools")
        return g.add("unary", ("square", xs._id), lo, xs.shape)
    if la.kind != "f":
        raise Untraceable("a negative power of integers")
    return g.add("unary", ("reciprocal", xs._id), lo, xs.shape)


def _axes(axis: Any, ndim: int) -> Tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        axis = (axis,)
    if not isinstance(axis, (tuple, list)):
        raise Untraceable("an axis that is not an int or a tuple")
    out = []
    for a in axis:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise Untraceable("a non-integer axis")
        a = int(a)
        if not -ndim <= a < ndim:
            raise Untraceable(f"axis {a} of rank {ndim}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise Untraceable("repeated axes")
    return tuple(out)


def _reduce(x: "Symbol", op: str, axis: Any = None, keepdims: bool = False, **kw: Any) -> "Symbol":
    if any(v is not None and v is not getattr(np, "_NoValue", None) for v in kw.values()):
        raise Untraceable(f"{op} with {sorted(kw)}")
    g = x._g
    axes = _axes(axis, x.ndim)
    reductions: Dict[str, Callable[..., Any]] = {
        "sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min, "any": np.any,
        "all": np.all,
    }
    np_f = reductions[op]
    out_dtype = np.dtype(_numpy_result(np_f, np.ones((1,) * x.ndim, x.dtype), axis=axes).dtype)
    if op in ("any", "all"):
        src = x.astype(np.bool_)
    elif op in ("sum", "prod"):
        if out_dtype.kind not in "iu":
            raise Untraceable(f"a {op} of {x.dtype} (NumPy's pairwise order is not reproduced)")
        src = x.astype(out_dtype)
    else:
        if x.dtype.kind == "b" or out_dtype != x.dtype:
            raise Untraceable(f"a {op} of {x.dtype}")
        src = x
        for a in axes:
            if x.shape[a] == 0:
                raise Untraceable("a max or min over an empty axis")
    shape = tuple(
        (1 if i in axes else d) for i, d in enumerate(x.shape) if keepdims or i not in axes
    )
    return g.add("reduce", (op, src._id, list(axes), bool(keepdims)), out_dtype, shape)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _index(x: "Symbol", key: Any) -> "Symbol":
    if not isinstance(key, tuple):
        key = (key,)
    n_axes = sum(1 for k in key if k is not None and k is not Ellipsis)
    if sum(1 for k in key if k is Ellipsis) > 1:
        raise Untraceable("two ellipses")
    if n_axes > x.ndim:
        raise Untraceable("too many indices")
    entries: List[Tuple[Any, ...]] = []
    shape: List[Optional[int]] = []
    axis = 0
    expanded: List[Any] = []
    for k in key:
        if k is Ellipsis:
            expanded.extend([slice(None)] * (x.ndim - n_axes))
        else:
            expanded.append(k)
    if Ellipsis not in key:
        expanded.extend([slice(None)] * (x.ndim - n_axes))
    for k in expanded:
        if k is None:
            entries.append(("new",))
            shape.append(1)
        elif _is_int(k):
            n = x.shape[axis]
            k = int(k)
            if n is not None and not -n <= k < n:
                raise Untraceable("an index out of bounds")
            entries.append(("at", k))
            axis += 1
        elif isinstance(k, slice):
            parts = (k.start, k.stop, k.step)
            if not all(p is None or _is_int(p) for p in parts):
                raise Untraceable("a slice of non-integers")
            step = 1 if k.step is None else int(k.step)
            if step == 0:
                raise Untraceable("a zero step")
            start = None if k.start is None else int(k.start)
            stop = None if k.stop is None else int(k.stop)
            n = x.shape[axis]
            shape.append(None if n is None else len(range(*slice(start, stop, step).indices(n))))
            entries.append(("range", start, stop, step))
            axis += 1
        else:
            raise Untraceable(f"an index of type {type(k).__name__} (advanced indexing)")
    return x._g.add("slice", (x._id, entries), x.dtype, tuple(shape))


def _reshape(x: "Symbol", shape: Any) -> "Symbol":
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(_is_int(d) for d in shape):
        raise Untraceable("a reshape to a non-integer shape")
    dims = [int(d) for d in shape]
    if any(d is None for d in x.shape):
        raise Untraceable("a reshape of an unknown shape")
    size = int(np.prod(_known(x.shape), dtype=np.int64))
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise Untraceable("a bad reshape")
    known = int(np.prod([d for d in dims if d != -1], dtype=np.int64))
    if -1 in dims:
        if known == 0 or size % known:
            raise Untraceable("a reshape that does not fit")
        dims[dims.index(-1)] = size // known
    elif known != size:
        raise Untraceable("a reshape that does not fit")
    return x._g.add("reshape", (x._id, dims), x.dtype, tuple(dims))


def _transpose(x: "Symbol", axes: Any = None) -> "Symbol":
    perm = tuple(reversed(range(x.ndim))) if axes is None else _axes(tuple(axes), x.ndim)
    if len(perm) != x.ndim:
        raise Untraceable("a transpose of the wrong rank")
    if perm == tuple(range(x.ndim)):
        return x
    return x._g.add("transpose", (x._id, list(perm)), x.dtype, tuple(x.shape[p] for p in perm))


def _flip(x: "Symbol", axis: Any = None) -> "Symbol":
    axes = _axes(axis, x.ndim)
    key = tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim))
    return _index(x, key)


def _squeeze(x: "Symbol", axis: Any = None) -> "Symbol":
    if axis is None:
        if any(d is None for d in x.shape):
            raise Untraceable("a squeeze of an unknown shape")
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = _axes(axis, x.ndim)
        if any(x.shape[a] != 1 for a in axes):
            raise Untraceable("a squeeze of an axis not of length 1")
    return _index(x, tuple(0 if i in axes else slice(None) for i in range(x.ndim)))


def _expand_dims(x: "Symbol", axis: Any) -> "Symbol":
    axes = (axis,) if _is_int(axis) else tuple(axis)
    nd = x.ndim + len(axes)
    norm = sorted(int(a) % nd for a in axes)
    key: List[Any] = []
    it = 0
    for i in range(nd):
        if i in norm:
            key.append(None)
        else:
            key.append(slice(None))
            it += 1
    return _index(x, tuple(key))


def _concat(g: _Graph, values: Sequence[Any], axis: Any = 0, stack: bool = False, **kw: Any) -> "Symbol":
    if any(v is not None for v in kw.values()):
        raise Untraceable(f"concatenate with {sorted(kw)}")
    if not isinstance(values, (list, tuple)) or not values:
        raise Untraceable("concatenate of a non-sequence")
    ops = [_operand(g, v) for v in values]
    if not any(isinstance(o, Symbol) for o in ops):
        raise Untraceable("concatenate of constants")
    f = np.stack if stack else np.concatenate
    examples: List[Any] = []
    for o in ops:
        if isinstance(o, Symbol):
            if any(d is None for d in o.shape):
                raise Untraceable("concatenate of unknown shapes")
            examples.append(np.ones(_known(o.shape), o.dtype))
        elif isinstance(o, _Const):
            examples.append(o.arr)
        else:
            examples.append(o)
    if axis is None or not _is_int(axis):
        raise Untraceable("concatenate with no axis")
    res = _numpy_result(f, examples, axis=int(axis))
    dt = np.dtype(res.dtype)
    syms = [_as(g, o, dt) for o in ops]
    ax = int(axis) % res.ndim
    if stack:
        syms = [_index(s, tuple([slice(None)] * ax + [None])) for s in syms]
    return g.add("concat", ([s._id for s in syms], ax), dt, tuple(res.shape))


def _where(g: _Graph, cond: Any, a: Any, b: Any) -> "Symbol":
    c, x, y = _operand(g, cond), _operand(g, a), _operand(g, b)
    res = _numpy_result(np.where, _example(c), _example(x), _example(y))
    dt = np.dtype(res.dtype)
    cs, xs, ys = _as(g, c, np.dtype(np.bool_)), _as(g, x, dt), _as(g, y, dt)
    shape = _broadcast(cs.shape, xs.shape, ys.shape)
    return g.add("select", (cs._id, xs._id, ys._id), dt, shape)


def _clip(x: Any, lo: Any = None, hi: Any = None, **kw: Any) -> Any:
    if any(v is not None for v in kw.values()):
        raise Untraceable(f"clip with {sorted(kw)}")
    if lo is None and hi is None:
        raise Untraceable("a clip with no bounds")
    # NumPy's clip is minimum(maximum(x, lo), hi), with the dtype of the whole expression.
    g = _graph_of(x, lo, hi)
    res = _numpy_result(np.clip, *(_example(_operand(g, v)) if v is not None else None for v in (x, lo, hi)))
    out = x
    if lo is not None:
        out = _binary(g, np.maximum, out, lo)
    if hi is not None:
        out = _binary(g, np.minimum, out, hi)
    if not isinstance(out, Symbol) or out.dtype != np.dtype(res.dtype):
        raise Untraceable("a clip whose dtype differs from its parts'")
    return out


def _graph_of(*values: Any) -> _Graph:
    for v in values:
        if isinstance(v, Symbol):
            return v._g
    raise Untraceable("no traced value")


def _full_like(x: Any, fill: Any, dtype: Any = None, shape: Any = None, **kw: Any) -> "Symbol":
    if not isinstance(x, Symbol) or shape is not None or any(v is not None for v in kw.values()):
        raise Untraceable("full_like with these arguments")
    if any(d is None for d in x.shape):
        raise Untraceable("full_like of an unknown shape")
    arr = np.full_like(np.empty(_known(x.shape), x.dtype), fill, dtype=dtype)
    return _const(x._g, arr)


def _func(name: str) -> Callable[..., Any]:
    return getattr(np, name)  # type: ignore[no-any-return]


def _array_function(func: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    name = getattr(func, "__name__", "")
    if func is np.where:
        if len(args) + len(kwargs) != 3:
            raise Untraceable("where with one argument")
        cond, a, b = (list(args) + [kwargs.get(k) for k in ("x", "y")][len(args) - 1:])[:3]
        return _where(_graph_of(cond, a, b), cond, a, b)
    if func is np.clip:
        return _clip(*args, **kwargs)
    if func in (np.concatenate, np.stack):
        seq = args[0] if args else kwargs.pop("arrays")
        axis = args[1] if len(args) > 1 else kwargs.pop("axis", 0)
        g = _graph_of(*seq)
        return _concat(g, seq, axis, stack=func is np.stack, **kwargs)
    if func in (np.zeros_like, np.ones_like):
        return _full_like(args[0], 0 if func is np.zeros_like else 1, *args[1:], **kwargs)
    if func is np.full_like:
        return _full_like(*args, **kwargs)
    x = args[0] if args else None
    if not isinstance(x, Symbol):
        raise Untraceable(f"np.{name} of a non-traced first argument")
    rest = args[1:]
    if name in ("sum", "prod", "max", "min", "amax", "amin", "any", "all"):
        op = {"amax": "max", "amin": "min"}.get(name, name)
        return _reduce(x, op, *rest, **kwargs)
    if name == "reshape":
        shape = rest[0] if rest else kwargs.pop("shape", kwargs.pop("newshape", None))
        if kwargs.get("order", "C") != "C":
            raise Untraceable("a reshape in Fortran order")
        return _reshape(x, shape)
    if name == "transpose":
        return _transpose(x, rest[0] if rest else kwargs.get("axes"))
    if name == "flip":
        return _flip(x, rest[0] if rest else kwargs.get("axis"))
    if name == "fliplr":
        return _flip(x, 1)
    if name == "flipud":
        return _flip(x, 0)
    if name == "squeeze":
        return _squeeze(x, rest[0] if rest else kwargs.get("axis"))
    if name == "expand_dims":
        return _expand_dims(x, rest[0] if rest else kwargs["axis"])
    if name == "swapaxes":
        a, b = (int(v) % x.ndim for v in (rest + (kwargs.get("axis1"), kwargs.get("axis2")))[:2])
        perm = list(range(x.ndim))
        perm[a], perm[b] = perm[b], perm[a]
        return _transpose(x, perm)
    if name == "moveaxis":
        src, dst = rest[0] if rest else kwargs["source"], rest[1] if len(rest) > 1 else kwargs["destination"]
        perm = [i for i in range(x.ndim) if i != int(src) % x.ndim]
        perm.insert(int(dst) % x.ndim, int(src) % x.ndim)
        return _transpose(x, perm)
    if name in ("ravel",):
        return _reshape(x, (-1,))
    if name == "copy":
        return x
    if name == "astype":
        return x.astype(*rest, **kwargs)
    if name in ("round", "around"):
        decimals = rest[0] if rest else kwargs.get("decimals", 0)
        if decimals != 0:
            raise Untraceable("round to decimals")
        if x.dtype.kind in "iub":
            return x
        return _unary(x._g, np.rint, x)
    if name in ("shape", "ndim", "size"):
        return getattr(x, name)
    if name == "result_type":
        raise Untraceable("result_type of a traced value")
    raise Untraceable(f"np.{name}")


class Symbol:
    """A value inside a trace: a dtype and a shape (None where unknown), and the node that
    computes it. It answers what an ndarray answers; anything that needs the numbers raises
    :class:`Untraceable`."""

    __slots__ = ("_g", "_id", "dtype", "shape")
    __array_priority__ = 1000.0

    def __init__(self, g: _Graph, id: int, dtype: np.dtype[Any], shape: Shape) -> None:
        self._g = g
        self._id = id
        self.dtype = dtype
        self.shape = shape

    def __repr__(self) -> str:
        return f"<traced {self.dtype} value of shape {self.shape}>"

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        if any(d is None for d in self.shape):
            raise Untraceable("the size of an unknown shape")
        return int(np.prod(_known(self.shape), dtype=np.int64))

    @property
    def T(self) -> "Symbol":
        return _transpose(self)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object")
        if self.shape[0] is None:
            raise Untraceable("the length of an unknown dimension")
        return self.shape[0]

    def __iter__(self) -> Any:
        n = len(self)
        if n > 256:
            raise Untraceable("iteration over a long axis")
        return iter([self[i] for i in range(n)])

    # Anything that needs the values ends the trace.
    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise Untraceable("converted to a NumPy array")

    def __bool__(self) -> bool:
        raise Untraceable("its truth value was asked (Python branching on a value)")

    def _no_value(self, *args: Any) -> Any:
        raise Untraceable("its value was asked")

    __int__ = __float__ = __index__ = __complex__ = _no_value
    tolist = item = tobytes = view = numpy = _no_value

    def __setitem__(self, key: Any, value: Any) -> None:
        raise Untraceable("an in-place write")

    def _in_place(self, other: Any) -> Any:
        raise Untraceable("an in-place operator")

    __iadd__ = __isub__ = __imul__ = __itruediv__ = __ifloordiv__ = __imod__ = _in_place
    __ipow__ = __iand__ = __ior__ = __ixor__ = _in_place
    __hash__ = object.__hash__

    # NumPy entry points.
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method != "__call__" or kwargs:
            raise Untraceable(f"{ufunc.__name__}.{method} with {sorted(kwargs)}")
        if ufunc in _UNARY and len(inputs) == 1:
            return _unary(self._g, ufunc, inputs[0])
        if ufunc in _BINARY and len(inputs) == 2:
            return _binary(self._g, ufunc, *inputs)
        if ufunc is np.power and len(inputs) == 2:
            return _power(self._g, *inputs)
        raise Untraceable(f"np.{ufunc.__name__} (not reproduced bit for bit here)")

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _array_function(func, tuple(args), dict(kwargs))

    # Operators.
    def __add__(self, o: Any) -> "Symbol": return _binary(self._g, np.add, self, o)
    def __radd__(self, o: Any) -> "Symbol": return _binary(self._g, np.add, o, self)
    def __sub__(self, o: Any) -> "Symbol": return _binary(self._g, np.subtract, self, o)
    def __rsub__(self, o: Any) -> "Symbol": return _binary(self._g, np.subtract, o, self)
    def __mul__(self, o: Any) -> "Symbol": return _binary(self._g, np.multiply, self, o)
    def __rmul__(self, o: Any) -> "Symbol": return _binary(self._g, np.multiply, o, self)
    def __truediv__(self, o: Any) -> "Symbol": return _binary(self._g, np.true_divide, self, o)
    def __rtruediv__(self, o: Any) -> "Symbol": return _binary(self._g, np.true_divide, o, self)
    def __floordiv__(self, o: Any) -> "Symbol": return _binary(self._g, np.floor_divide, self, o)
    def __rfloordiv__(self, o: Any) -> "Symbol": return _binary(self._g, np.floor_divide, o, self)
    def __mod__(self, o: Any) -> "Symbol": return _binary(self._g, np.remainder, self, o)
    def __rmod__(self, o: Any) -> "Symbol": return _binary(self._g, np.remainder, o, self)
    def __pow__(self, o: Any) -> "Symbol": return _power(self._g, self, o)
    def __and__(self, o: Any) -> "Symbol": return _binary(self._g, np.bitwise_and, self, o)
    def __rand__(self, o: Any) -> "Symbol": return _binary(self._g, np.bitwise_and, o, self)
    def __or__(self, o: Any) -> "Symbol": return _binary(self._g, np.bitwise_or, self, o)
    def __ror__(self, o: Any) -> "Symbol": return _binary(self._g, np.bitwise_or, o, self)
    def __xor__(self, o: Any) -> "Symbol": return _binary(self._g, np.bitwise_xor, self, o)
    def __rxor__(self, o: Any) -> "Symbol": return _binary(self._g, np.bitwise_xor, o, self)
    def __lt__(self, o: Any) -> "Symbol": return _binary(self._g, np.less, self, o)
    def __le__(self, o: Any) -> "Symbol": return _binary(self._g, np.less_equal, self, o)
    def __gt__(self, o: Any) -> "Symbol": return _binary(self._g, np.greater, self, o)
    def __ge__(self, o: Any) -> "Symbol": return _binary(self._g, np.greater_equal, self, o)
    def __eq__(self, o: Any) -> "Symbol": return _binary(self._g, np.equal, self, o)  # type: ignore[override]
    def __ne__(self, o: Any) -> "Symbol": return _binary(self._g, np.not_equal, self, o)  # type: ignore[override]
    def __neg__(self) -> "Symbol": return _unary(self._g, np.negative, self)
    def __pos__(self) -> "Symbol": return _unary(self._g, np.positive, self)
    def __abs__(self) -> "Symbol": return _unary(self._g, np.absolute, self)
    def __invert__(self) -> "Symbol": return _unary(self._g, np.invert, self)
    def __getitem__(self, key: Any) -> "Symbol": return _index(self, key)

    # Array methods.
    def astype(self, dtype: Any, order: str = "K", casting: str = "unsafe", subok: bool = True,
               copy: bool = True) -> "Symbol":
        if casting != "unsafe":
            raise Untraceable("astype with a casting rule")
        d = np.dtype(dtype)
        if d not in _SUPPORTED:
            raise Untraceable(f"a cast to {d}")
        if d == self.dtype:
            return self
        return self._g.add("cast", (self._id, d.name), d, self.shape)

    def reshape(self, *shape: Any, order: str = "C") -> "Symbol":
        if order != "C":
            raise Untraceable("a reshape in Fortran order")
        return _reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes: Any) -> "Symbol":
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            return _transpose(self, axes[0])
        return _transpose(self, axes or None)

    def swapaxes(self, a: int, b: int) -> "Symbol":
        return _array_function(np.swapaxes, (self, a, b), {})  # type: ignore[no-any-return]

    def flatten(self, order: str = "C") -> "Symbol":
        return self.reshape(-1, order=order)

    def ravel(self, order: str = "C") -> "Symbol":
        return self.reshape(-1, order=order)

    def squeeze(self, axis: Any = None) -> "Symbol":
        return _squeeze(self, axis)

    def copy(self, order: str = "C") -> "Symbol":
        return self

    def clip(self, min: Any = None, max: Any = None, **kw: Any) -> Any:
        return _clip(self, min, max, **kw)

    def sum(self, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False, **kw: Any) -> "Symbol":
        return _reduce(self, "sum", axis, keepdims, dtype=dtype, out=out, **kw)

    def prod(self, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False, **kw: Any) -> "Symbol":
        return _reduce(self, "prod", axis, keepdims, dtype=dtype, out=out, **kw)

    def max(self, axis: Any = None, out: Any = None, keepdims: bool = False, **kw: Any) -> "Symbol":
        return _reduce(self, "max", axis, keepdims, out=out, **kw)

    def min(self, axis: Any = None, out: Any = None, keepdims: bool = False, **kw: Any) -> "Symbol":
        return _reduce(self, "min", axis, keepdims, out=out, **kw)

    def any(self, axis: Any = None, out: Any = None, keepdims: bool = False, **kw: Any) -> "Symbol":
        return _reduce(self, "any", axis, keepdims, out=out, **kw)

    def all(self, axis: Any = None, out: Any = None, keepdims: bool = False, **kw: Any) -> "Symbol":
        return _reduce(self, "all", axis, keepdims, out=out, **kw)


def _symbols(g: _Graph, spec: Any, path: Tuple[Union[int, str], ...]) -> Any:
    if isinstance(spec, TensorSpec):
        dtype = np.dtype(spec.dtype)
        if spec.shape is None or dtype not in _SUPPORTED:
            raise Untraceable(f"an element of {spec}")
        shape = tuple(None if d is None else int(d) for d in spec.shape)
        return g.add("input", (list(path),), dtype, shape)
    if isinstance(spec, tuple):
        return tuple(_symbols(g, s, path + (i,)) for i, s in enumerate(spec))
    if isinstance(spec, dict):
        if not all(isinstance(k, str) for k in spec):
            raise Untraceable("a dict with non-string keys")
        return {k: _symbols(g, s, path + (k,)) for k, s in spec.items()}
    raise Untraceable(f"an element of {spec!r}")


def _output(g: _Graph, value: Any, top: bool = True) -> Any:
    if isinstance(value, Symbol):
        if value._g is not g:
            raise Untraceable("a value of another trace")
        return ("value", value._id)
    # A list is a tuple only where the function returns it; inside the result it is one
    # tensor (tf.data's rule), which the per-element call makes.
    if isinstance(value, tuple) or (top and isinstance(value, list)):
        return ("tuple", [_output(g, v, False) for v in value])
    if isinstance(value, list):
        raise Untraceable("a list inside the result (one tensor in tf.data)")
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise Untraceable("a dict with non-string keys")
        return ("dict", [(k, _output(g, v, False)) for k, v in value.items()])
    raise Untraceable(f"a returned {type(value).__name__} that does not come from the element")


# Modules whose functions give a value that differs per call (random numbers, clocks) or
# comes from outside (files): a function calling them is not traced, since the graph would
# keep the value of the one call made while tracing.
_IMPURE_MODULES = ("numpy.random", "random", "_random", "time", "numpy.lib._npyio_impl",
                   "numpy.lib.npyio", "io", "_io", "os", "posix", "secrets", "uuid")
_IMPURE_BUILTINS = {"open", "input"}


def _impure(func: Any) -> bool:
    """Whether a called function (a builtin or a Python function's code) is impure."""
    owner = getattr(func, "__self__", None)
    if owner is not None and type(owner).__module__.startswith(("numpy.random", "random")):
        return True
    if getattr(func, "__name__", None) in _IMPURE_BUILTINS and getattr(func, "__module__", None) == "builtins":
        return True
    module = getattr(func, "__module__", None) or ""
    return module.split(".")[0] in ("random", "_random", "time", "secrets", "uuid", "io", "_io", "posix") or module.startswith(_IMPURE_MODULES)


class _Watch:
    """A profile hook that notes calls into impure modules while a function is traced."""

    def __init__(self) -> None:
        self.seen: Optional[str] = None

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if self.seen is not None:
            return
        if event == "c_call" and _impure(arg):
            self.seen = getattr(arg, "__qualname__", repr(arg))
        elif event == "call":
            name = frame.f_globals.get("__name__", "") or ""
            if name.startswith(_IMPURE_MODULES):
                self.seen = f"{name}.{frame.f_code.co_name}"


def _generators(f: Any) -> List[Any]:
    """NumPy random generators ``f`` can reach without a call (its globals, closure,
    defaults and bound object, one level deep) and NumPy's global one: their draws are done
    in Cython, which no profile hook sees, so a trace compares their states instead."""
    kinds = (np.random.Generator, np.random.RandomState, np.random.BitGenerator)
    found: List[Any] = [np.random.mtrand._rand]
    seen_ids = {id(found[0])}

    def look(v: Any, depth: int) -> None:
        if isinstance(v, kinds):
            if id(v) not in seen_ids:
                seen_ids.add(id(v))
                found.append(v)
        elif depth > 0 and hasattr(v, "__dict__") and not isinstance(v, type):
            for w in list(vars(v).values()):
                look(w, depth - 1)
        elif depth > 0 and isinstance(v, (list, tuple)):
            for w in v[:64]:
                look(w, depth - 1)

    code = getattr(f, "__code__", None)
    names = set(code.co_names) if code is not None else set()
    for k, v in (getattr(f, "__globals__", None) or {}).items():
        if k in names:
            look(v, 1)
    for cell in getattr(f, "__closure__", None) or ():
        try:
            look(cell.cell_contents, 1)
        except ValueError:
            pass
    for v in getattr(f, "__defaults__", None) or ():
        look(v, 1)
    owner = getattr(f, "__self__", None)
    if owner is not None:
        look(owner, 2)
    return found


def _state(gen: Any) -> Any:
    bitgen = gen if isinstance(gen, np.random.BitGenerator) else getattr(gen, "bit_generator", None)
    if bitgen is None:
        bitgen = gen._bit_generator
    return repr(bitgen.state)


def trace(
    f: Callable[..., Any], spec: Any, on_result: Optional[Callable[[Any], Any]] = None
) -> Optional[Tuple[List[Node], Any]]:
    """The graph of ``f`` over elements of ``spec`` as ``(nodes, output)``, or None where
    ``f`` cannot be traced. ``f`` is called once, on symbols (a tuple element's parts as its
    positional arguments, as map passes them); ``on_result`` sees what it returned (map
    keeps the namedtuples in it)."""
    g = _Graph()
    watch = _Watch()
    generators = _generators(f)
    states = [_state(gen) for gen in generators]
    before = sys.getprofile()
    sys.setprofile(watch)
    try:
        args = _symbols(g, spec, ())
        result = f(*args) if isinstance(spec, tuple) else f(args)
        if on_result is not None:
            on_result(result)
        out = _output(g, result)
    except Untraceable:
        return None
    except Exception:
        # Whatever else the function does on symbols (a NumPy call that refuses them, an
        # attribute an ndarray has and a symbol lacks) is for the per-element call to meet.
        return None
    finally:
        sys.setprofile(before)
    if watch.seen is not None or [_state(gen) for gen in generators] != states:
        return None
    return g.nodes, out

