"""npyflow: tf.data's dataset API over NumPy arrays and ``.npy``/``.npz`` files, run in Rust.

Write the tf.data code you know, with ``import npyflow as tfd`` in place of TensorFlow::

    import numpy as np
    import npyflow as tfd

    images = np.random.rand(10, 3, 3, 3)
    ds = tfd.Dataset.from_tensor_slices(images).map(lambda x: x.astype(np.float32) / 255).batch(2)
    for batch in ds:
        print(batch.shape)  # (2, 3, 3, 3), five times

Elements are NumPy arrays (NumPy scalars for 0-d tensors), in the tuples and dicts they were
given in. Arrays are shared, not copied, both ways: a dataset made from an array reads that
array's memory (so changing the array changes the elements), rows of a memory-mapped ``.npy``
file are views of the map, and an array npyflow hands out shows npyflow's memory (read-only
when that memory is shared, writable when it is a fresh batch no one else sees). An array you
keep stays valid after the iterator moves on.

Differences from tf.data: functions given to ``map``, ``filter`` and the others are plain
Python over NumPy arrays, not traced graphs; ``map`` finds its output structure by calling the
function on two placeholder elements (one of zeros, one of ones), unless ``output_signature``
is given. Strings are NumPy ``S`` (bytes) or ``U`` arrays rather than object arrays of bytes.
Random orders (``shuffle``, ``sample_from_datasets``, ``list_files``) are npyflow's own: a
seed gives another permutation than it gives in TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import data, ops
from ._constants import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from ._dataset import Dataset
from ._io import load, save, savez, savez_compressed
from ._profile import ProfileReport, profile
from ._specs import DatasetSpec, TensorSpec

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
    "TensorSpec",
    "data",
    "load",
    "ops",
    "profile",
    "save",
    "savez",
    "savez_compressed",
]
