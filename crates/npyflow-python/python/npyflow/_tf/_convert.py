"""Values into arrays with tf's rules (Python ints int32, floats float32, str bytes), and
results out as Tensors."""

from __future__ import annotations

from typing import Any, Optional, Tuple, cast

import numpy as np

from .._tensor import wrap
from .._trace import Symbol
from .._values import is_python, with_tf_dtype
from ._dtypes import to_numpy


def to_array(value: Any, dtype: Any = None) -> np.ndarray[Any, Any]:
    """``value`` as a plain ndarray (no copy for arrays), converted as tf converts it. Inside a
    traced ``map`` function, a traced value stays one (cast when ``dtype`` asks)."""
    if isinstance(value, Symbol):
        traced: Any = value if dtype is None else value.astype(to_numpy(dtype))
        return cast("np.ndarray[Any, Any]", traced)
    if isinstance(value, np.ndarray):
        arr = value.view(np.ndarray) if type(value) is not np.ndarray else value
        return arr if dtype is None or arr.dtype == to_numpy(dtype) else arr.astype(to_numpy(dtype))
    if isinstance(value, np.generic):
        arr = np.asarray(value)
        return arr if dtype is None else arr.astype(to_numpy(dtype))
    if isinstance(value, (list, tuple)) and any(isinstance(v, np.ndarray) for v in value):
        arr = np.stack([to_array(v) for v in value])
        return arr if dtype is None else arr.astype(to_numpy(dtype))
    if dtype is not None:
        d = to_numpy(dtype)
        if d.kind == "S" and is_python(value):
            return np.char.encode(np.asarray(value), "utf-8") if _has_str(value) else np.asarray(value, dtype="S")
        return np.asarray(value, dtype=d)
    arr = np.asarray(value)
    if arr.dtype == object:
        raise TypeError(f"cannot convert {value!r:.80} to a tensor")
    return with_tf_dtype(value, arr)


def _has_str(value: Any) -> bool:
    while isinstance(value, (list, tuple)) and len(value) > 0:
        value = value[0]
    return isinstance(value, str)


def pair(x: Any, y: Any) -> Tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Two operands of a binary op: a Python value takes the other operand's dtype, as tf
    converts it."""
    if is_python(x) and not is_python(y):
        b = to_array(y)
        return to_array(x, b.dtype), b
    if is_python(y) and not is_python(x):
        a = to_array(x)
        return a, to_array(y, a.dtype)
    return to_array(x), to_array(y)


def out(value: Any) -> Any:
    """A result as tf hands it out: a Tensor (NumPy scalar with ``.numpy()`` when 0-d)."""
    return wrap(value)


def axes(axis: Any) -> Optional[Any]:
    """An axis argument (None, an int, or a list or array of ints) as NumPy takes it."""
    if axis is None:
        return None
    a = np.asarray(axis)
    if a.ndim == 0:
        return int(a)
    return tuple(int(v) for v in a.ravel())
