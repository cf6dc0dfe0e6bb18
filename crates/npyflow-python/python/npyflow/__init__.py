"""npyflow: tf.data's dataset API over NumPy arrays and ``.npy``/``.npz`` files, run in Rust.

Write the tf.data code you know, with ``import npyflow as tfd`` in place of TensorFlow::

    import numpy as np
    import npyflow as tfd

    images = np.random.rand(10, 3, 3, 3)
    ds = tfd.Dataset.from_tensor_slices(images).map(lambda x: x.astype(np.float32) / 255).batch(2)
    for batch in ds:
        print(batch.shape)  # (2, 3, 3, 3), five times

Elements are NumPy arrays (NumPy scalars for 0-d tensors), in the tuples and dicts they were
given in. Iterating yields them as ``npyflow.Tensor`` (an ``np.ndarray`` subclass, a zero-copy
view, with tf's ``.numpy()``) and 0-d ones as NumPy scalars with ``.numpy()``;
``as_numpy_iterator()`` yields plain NumPy. Arrays are shared, not copied, both ways: a dataset made from an array reads that
array's memory (so changing the array changes the elements), rows of a memory-mapped ``.npy``
file are views of the map, and an array npyflow hands out shows npyflow's memory (read-only
when that memory is shared, writable when it is a fresh batch no one else sees). An array you
keep stays valid after the iterator moves on.

``import npyflow as tf`` runs tf.data code unchanged where it uses the names npyflow has:
``tf.data``, ``tf.TensorSpec``, ``tf.AUTOTUNE``, the dtypes (NumPy dtypes: ``x.dtype ==
tf.float32`` holds), array ops (``cast``, ``constant``, ``convert_to_tensor``, ``reshape``,
``transpose``, ``reverse``, ``expand_dims``, ``squeeze``, ``concat``, ``stack``, ``one_hot``,
``fill``, ``zeros_like``, ``ones_like``, ``where``, ...), math (``clip_by_value``,
``maximum``, ``minimum``, ``abs``, ``sqrt``, ``exp``, the ``reduce_*`` family and
``npyflow.math``), ``numpy_function``/``py_function``, ``npyflow.image`` and
``npyflow.random``. They run eagerly on NumPy values (so also inside ``map`` and ``filter``),
give TensorFlow's results and dtypes, and return Tensors. Random ops draw from npyflow's own
seeded NumPy generators, not TensorFlow's values. A tf name npyflow lacks raises an
AttributeError saying so and what to use instead.

Differences from tf.data: functions given to ``map``, ``filter`` and the others are Python
over NumPy arrays. ``map`` and ``filter`` trace them into native op graphs where NumPy's
results can be reproduced exactly, and call them per element otherwise (see
``Dataset.map``); an untraced ``map`` function's output structure comes from
``output_signature`` or from its first element, as ``flat_map``'s and ``interleave``'s do. Strings are NumPy ``S`` (bytes) or ``U``
arrays rather than object arrays of bytes; a spec's ``tf.string`` (``S0``) is a string of any
width, and a batch stacks strings at the widest, as ``np.stack`` does.
Random orders (``shuffle``, ``sample_from_datasets``, ``list_files``) are npyflow's own: a
seed gives another permutation than it gives in TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import data, image, math, ops, random
from ._constants import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from ._dataset import Dataset
from ._distributed import WorkerInfo, worker_info
from ._io import load, save, savez, savez_compressed
from ._profile import ProfileReport, profile
from ._specs import DatasetSpec, TensorSpec
from ._tensor import Tensor
from ._tf._array import (
    cast, concat, constant, convert_to_tensor, expand_dims, fill, gather, identity, one_hot,
    ones, ones_like, rank, reshape, reverse, shape, size, squeeze, stack, tile, transpose,
    unstack, where, zeros, zeros_like,
)
from ._tf._array import range_ as range
from ._tf._dtypes import (
    StringDType, as_dtype, complex64, complex128, double, float16, float32, float64, half, int8, int16,
    int32, int64, string, uint8, uint16, uint32, uint64,
)
from ._tf._dtypes import bool_ as bool
from ._tf._functions import numpy_function, py_function
from ._tf._math import (
    abs, add, argmax, argmin, clip_by_value, cos, cumsum, divide, equal, exp, floor,
    floordiv, greater, greater_equal, less, less_equal, logical_and, logical_not, logical_or,
    maximum, minimum, multiply, negative, not_equal, pow, reduce_all, reduce_any,
    reduce_logsumexp, reduce_max, reduce_mean, reduce_min, reduce_prod, reduce_std,
    reduce_sum, reduce_variance, round, sign, sin, sqrt, square, subtract, tanh, truediv,
)
from ._tf._missing import missing as _missing

if TYPE_CHECKING:
    # The type of ``iter(dataset)``, for annotations (the stubs named it here before).
    from ._npyflow import DatasetIterator as DatasetIterator

__all__ = [
    "AUTOTUNE",
    "INFINITE_CARDINALITY",
    "UNKNOWN_CARDINALITY",
    "Dataset",
    "DatasetSpec",
    "ProfileReport",
    "Tensor",
    "TensorSpec",
    "WorkerInfo",
    "data",
    "image",
    "load",
    "math",
    "ops",
    "profile",
    "random",
    "save",
    "savez",
    "savez_compressed",
    "worker_info",
    # tf's names (npyflow._tf), on NumPy values
    "StringDType", "abs", "add", "argmax", "argmin", "as_dtype", "bool", "cast", "clip_by_value",
    "complex64", "complex128", "concat", "constant", "convert_to_tensor", "cos", "cumsum",
    "divide", "double", "equal", "exp", "expand_dims", "fill", "float16", "float32",
    "float64", "floor", "floordiv", "gather", "greater", "greater_equal", "half",
    "identity", "int8", "int16", "int32", "int64", "less", "less_equal", "logical_and",
    "logical_not", "logical_or", "maximum", "minimum", "multiply", "negative", "not_equal",
    "numpy_function", "one_hot", "ones", "ones_like", "pow", "py_function", "range", "rank",
    "reduce_all", "reduce_any", "reduce_logsumexp", "reduce_max", "reduce_mean",
    "reduce_min", "reduce_prod", "reduce_std", "reduce_sum", "reduce_variance", "reshape",
    "reverse", "round", "shape", "sign", "sin", "size", "sqrt", "square", "squeeze", "stack",
    "string", "subtract", "tanh", "tile", "transpose", "truediv", "uint8", "uint16",
    "uint32", "uint64", "unstack", "where", "zeros", "zeros_like",
]


def __getattr__(name: str) -> object:
    """A tf name npyflow does not have: an AttributeError that says so and what to use."""
    if name.startswith("__"):
        raise AttributeError(f"module 'npyflow' has no attribute {name!r}")
    raise _missing("npyflow", name)
