"""``tf.math`` for ``import npyflow as tf``: elementwise math, comparisons and reductions on
NumPy values (see ``npyflow._tf``)."""

from __future__ import annotations

from typing import Any

from ._tf._math import (
    abs, add, argmax, argmin, ceil, clip_by_value, cos, cumsum, divide, equal, exp, floor,
    floordiv, floormod, greater, greater_equal, is_finite, is_inf, is_nan, less, less_equal,
    log, log1p, logical_and, logical_not, logical_or, logical_xor, maximum, minimum, mod,
    multiply, negative, not_equal, pow, reciprocal, reduce_all, reduce_any, reduce_logsumexp,
    reduce_max, reduce_mean, reduce_min, reduce_prod, reduce_std, reduce_sum, reduce_variance,
    round, rsqrt, sigmoid, sign, sin, sqrt, square, subtract, tanh, truediv,
)
from ._tf._missing import missing

__all__ = [
    "abs", "add", "argmax", "argmin", "ceil", "clip_by_value", "cos", "cumsum", "divide",
    "equal", "exp", "floor", "floordiv", "floormod", "greater", "greater_equal", "is_finite",
    "is_inf", "is_nan", "less", "less_equal", "log", "log1p", "logical_and", "logical_not",
    "logical_or", "logical_xor", "maximum", "minimum", "mod", "multiply", "negative",
    "not_equal", "pow", "reciprocal", "reduce_all", "reduce_any", "reduce_logsumexp",
    "reduce_max", "reduce_mean", "reduce_min", "reduce_prod", "reduce_std", "reduce_sum",
    "reduce_variance", "round", "rsqrt", "sigmoid", "sign", "sin", "sqrt", "square",
    "subtract", "tanh", "truediv",
]


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise missing("npyflow.math", name)
