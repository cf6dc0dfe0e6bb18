"""``tf.data``'s namespace, for code written as ``tf.data.Dataset``: with
``import npyflow as tf``, ``tf.data.Dataset`` and ``tf.data.AUTOTUNE`` are npyflow's, as
are ``tf.data.Options`` (see ``Options`` for the ones npyflow honours) and
``tf.data.experimental``'s aliases."""

from __future__ import annotations

from typing import Any

from .._constants import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from .._dataset import Dataset
from .._options import Options, ThreadingOptions
from .._specs import DatasetSpec, TensorSpec
from .._tf._missing import missing
from . import experimental

__all__ = [
    "AUTOTUNE",
    "INFINITE_CARDINALITY",
    "UNKNOWN_CARDINALITY",
    "Dataset",
    "DatasetSpec",
    "Options",
    "TensorSpec",
    "ThreadingOptions",
    "experimental",
]


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise missing("npyflow.data", name)
