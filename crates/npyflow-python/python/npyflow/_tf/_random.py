"""``tf.random`` with npyflow's own draws.

Values come from NumPy generators (``np.random.default_rng``), not from TensorFlow's
algorithms, so a seed gives other numbers than it gives in TF. As in TF, an op-level ``seed``
makes a sequence repeatable: the first call with seed ``s`` starts a generator seeded with
``(global seed, s)`` and later calls with ``s`` continue it; ``set_seed`` resets all of them.
Calls from ``map`` functions running on several threads draw in the order the threads call.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ._dtypes import to_numpy

from ._convert import out, to_array

_lock = threading.Lock()
_global_seed: Optional[int] = None
_streams: Dict[Tuple[Optional[int], Optional[int]], np.random.Generator] = {}


def set_seed(seed: Optional[int]) -> None:
    """``tf.random.set_seed``: the global seed; restarts every seeded stream."""
    global _global_seed
    with _lock:
        _global_seed = None if seed is None else int(seed)
        _streams.clear()


def generator(seed: Optional[int]) -> np.random.Generator:
    """The NumPy generator an op with ``seed`` draws from (see the module's docstring)."""
    key = (_global_seed, None if seed is None else int(seed))
    with _lock:
        g = _streams.get(key)
        if g is None:
            if key == (None, None):
                g = np.random.default_rng()
            else:
                g = np.random.default_rng([0 if k is None else k & (2**63 - 1) for k in key])
            _streams[key] = g
        return g


def _shape(shape: Any) -> Tuple[int, ...]:
    return tuple(int(s) for s in np.asarray(shape).ravel())


def uniform(
    shape: Any,
    minval: Any = 0,
    maxval: Any = None,
    dtype: Any = np.float32,
    seed: Optional[int] = None,
    name: Optional[str] = None,
) -> Any:
    """``tf.random.uniform``: floats in ``[minval, maxval)`` (maxval 1 by default); integers
    need ``maxval``."""
    d = to_numpy(dtype)
    g = generator(seed)
    if d.kind in "iu":
        if maxval is None:
            raise ValueError("Must specify maxval for integer dtype " + d.name)
        return out(g.integers(int(minval), int(maxval), size=_shape(shape), dtype=d))
    lo = float(to_array(minval))
    hi = 1.0 if maxval is None else float(to_array(maxval))
    u = g.random(size=_shape(shape), dtype=np.float64 if d == np.float64 else np.float32)
    return out((u * (hi - lo) + lo).astype(d))


def normal(
    shape: Any,
    mean: Any = 0.0,
    stddev: Any = 1.0,
    dtype: Any = np.float32,
    seed: Optional[int] = None,
    name: Optional[str] = None,
) -> Any:
    """``tf.random.normal``."""
    d = to_numpy(dtype)
    z = generator(seed).standard_normal(size=_shape(shape))
    return out((z * float(to_array(stddev)) + float(to_array(mean))).astype(d))


def shuffle(value: Any, seed: Optional[int] = None, name: Optional[str] = None) -> Any:
    """``tf.random.shuffle``: the rows of ``value`` in a random order (a copy)."""
    return out(generator(seed).permutation(to_array(value)))
