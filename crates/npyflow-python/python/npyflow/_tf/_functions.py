"""``tf.numpy_function`` and ``tf.py_function``: call Python on the values. In npyflow every
function already runs in Python on NumPy values, so these only convert the outputs."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from ._dtypes import to_numpy

from .._tensor import wrap
from ._convert import out, to_array


def _outputs(result: Any, Tout: Any) -> Any:
    if isinstance(Tout, (list, tuple)):
        if not isinstance(result, (list, tuple)) or len(result) != len(Tout):
            raise ValueError(f"the function returned {result!r:.80}, expected {len(Tout)} values")
        return [out(to_array(r, None if t is None else to_numpy(t))) for r, t in zip(result, Tout)]
    if Tout is None:
        return out(to_array(result)) if result is not None else None
    return out(to_array(result, to_numpy(Tout)))


def _numpy_arg(value: Any) -> Any:
    """A value as tf.data's ``map`` hands it to a ``numpy_function``: an array as a plain
    ndarray, a 0-d value as a NumPy scalar, and a 0-d string as Python ``bytes`` (``str``
    for a NumPy unicode string), so that ``path.decode()`` works as under TensorFlow."""
    arr = to_array(value)
    if not isinstance(arr, np.ndarray) or arr.ndim:
        return arr  # an array, or a traced value inside a traced map
    scalar = arr[()]
    if isinstance(scalar, np.bytes_):
        return bytes(scalar)
    if isinstance(scalar, np.str_):
        return str(scalar)
    return scalar


def numpy_function(func: Callable[..., Any], inp: Any, Tout: Any, stateful: bool = True, name: Optional[str] = None) -> Any:
    """``func(*inp)`` on plain NumPy values, its results cast to ``Tout``. As inside
    tf.data's ``map``, arrays arrive as ndarrays, 0-d values as NumPy scalars and 0-d strings
    as ``bytes``. Differs from TensorFlow outside a dataset function, where TensorFlow passes
    0-d arrays (strings as 0-d arrays of objects): npyflow passes the same values in both."""
    args = [_numpy_arg(v) for v in inp]
    return _outputs(func(*args), Tout)


def py_function(func: Callable[..., Any], inp: Any, Tout: Any, name: Optional[str] = None) -> Any:
    """``func(*inp)`` on Tensors (arrays with ``.numpy()``), its results cast to ``Tout``."""
    args = [wrap(to_array(v)) for v in inp]
    return _outputs(func(*args), Tout)
