"""How tf converts Python values to tensors, in one place for the dataset sources and the tf
names: Python numbers and strings (and nested lists of them) take tf's dtypes (int32 when
the integers fit, float32, UTF-8 bytes), not NumPy's (int64, float64, str)."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_python(value: Any) -> bool:
    """Whether ``value`` is a Python number or string, or a (nested) list or tuple of them."""
    while isinstance(value, (list, tuple)) and len(value) > 0:
        value = value[0]
    return isinstance(value, (bool, int, float, complex, str, bytes)) and not isinstance(
        value, np.generic
    )


def with_tf_dtype(value: Any, arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``arr`` (made from ``value`` by ``np.asarray``) in the dtype tf gives ``value``: for a
    Python value, int32 when its integers fit, float32, UTF-8 bytes; otherwise unchanged."""
    if not is_python(value):
        return arr
    if arr.dtype.kind == "i":
        info = np.iinfo(np.int32)
        if arr.size == 0 or (arr.min() >= info.min and arr.max() <= info.max):
            return arr.astype(np.int32)
    elif arr.dtype.kind == "f":
        return arr.astype(np.float32)
    elif arr.dtype.kind == "U":
        return np.char.encode(arr, "utf-8")
    return arr
