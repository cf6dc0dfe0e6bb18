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


class StringDType:
    """``tf.string``: npyflow's strings are NumPy bytes arrays (``S1``, ``S7``, ... sized to
    their longest value), so ``x.dtype == tf.string`` holds for any of them. npyflow's
    functions and ``TensorSpec`` take it as NumPy's ``S`` (``S0``): in a spec, a string of any
    width, each element at its own."""

    __slots__ = ()
    name = "string"
    kind = "S"
    #: the NumPy dtype npyflow uses for it (as tf's ``DType.as_numpy_dtype``)
    as_numpy_dtype: np.dtype[Any] = np.dtype("S")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StringDType):
            return True
        try:
            return bool(np.dtype(other).kind == "S")  # type: ignore[call-overload]
        except TypeError:
            return False

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(np.dtype("S"))

    def __repr__(self) -> str:
        return "tf.string"


#: tf.string (see StringDType).
string = StringDType()


def to_numpy(dtype: Any) -> Any:
    """A dtype argument as NumPy takes it (``tf.string`` as ``S``; None stays None)."""
    if dtype is None:
        return None
    if isinstance(dtype, StringDType):
        return dtype.as_numpy_dtype
    return np.dtype(dtype)


def as_dtype(type_value: Any) -> Any:
    """``tf.as_dtype``: the NumPy dtype of ``type_value`` (``tf.string`` for bytes)."""
    d = to_numpy(type_value)
    return string if d.kind == "S" else d


DTYPE_NAMES = {
    "float16": float16, "half": half, "float32": float32, "float64": float64, "double": double,
    "int8": int8, "int16": int16, "int32": int32, "int64": int64, "uint8": uint8,
    "uint16": uint16, "uint32": uint32, "uint64": uint64, "bool": bool_,
    "complex64": complex64, "complex128": complex128, "string": string,
}
