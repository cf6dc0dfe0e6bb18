"""tf's dtype names as NumPy dtypes: ``x.dtype == tf.float32`` holds for a float32 array."""

from __future__ import annotations

from typing import Any

import numpy as np

float16: np.dtype[Any] = np.dtype("float16")
half = float16
float32: np.dtype[Any] = np.dtype("float32")
float64: np.dtype[Any] = np.dtype("float64")
double = float64
int8: np.dtype[Any] = np.dtype("int8")
int16: np.dtype[Any] = np.dtype("int16")
int32: np.dtype[Any] = np.dtype("int32")
int64: np.dtype[Any] = np.dtype("int64")
uint8: np.dtype[Any] = np.dtype("uint8")
uint16: np.dtype[Any] = np.dtype("uint16")
uint32: np.dtype[Any] = np.dtype("uint32")
uint64: np.dtype[Any] = np.dtype("uint64")
bool_: np.dtype[Any] = np.dtype("bool")
complex64: np.dtype[Any] = np.dtype("complex64")
complex128: np.dtype[Any] = np.dtype("complex128")
#: tf.string: bytes, as NumPy's ``S`` dtype (npyflow's strings are fixed-width bytes arrays).
string: np.dtype[Any] = np.dtype("S")


def as_dtype(type_value: Any) -> np.dtype[Any]:
    """``tf.as_dtype``: the NumPy dtype of ``type_value``."""
    d: np.dtype[Any] = np.dtype(type_value)
    return d


DTYPE_NAMES = {
    "float16": float16, "half": half, "float32": float32, "float64": float64, "double": double,
    "int8": int8, "int16": int16, "int32": int32, "int64": int64, "uint8": uint8,
    "uint16": uint16, "uint32": uint32, "uint64": uint64, "bool": bool_,
    "complex64": complex64, "complex128": complex128, "string": string,
}
