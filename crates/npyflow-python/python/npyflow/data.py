"""``tf.data``'s namespace, for code written as ``tf.data.Dataset``: with
``import npyflow as tf``, ``tf.data.Dataset`` and ``tf.data.AUTOTUNE`` are npyflow's."""

from __future__ import annotations

from ._constants import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from ._dataset import Dataset
from ._specs import DatasetSpec, TensorSpec

__all__ = [
    "AUTOTUNE",
    "INFINITE_CARDINALITY",
    "UNKNOWN_CARDINALITY",
    "Dataset",
    "DatasetSpec",
    "TensorSpec",
]
