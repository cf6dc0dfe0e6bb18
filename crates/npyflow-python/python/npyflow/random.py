"""``tf.random`` for ``import npyflow as tf``, with npyflow's own draws (NumPy generators):
``uniform``, ``normal``, ``shuffle``, ``set_seed``. A seed makes the sequence repeatable but
gives other numbers than TensorFlow's. See ``npyflow._tf._random`` for the seeding rules."""

from __future__ import annotations

from typing import Any

from ._tf._missing import missing
from ._tf._random import normal, set_seed, shuffle, uniform

__all__ = ["normal", "set_seed", "shuffle", "uniform"]


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise missing("npyflow.random", name)
