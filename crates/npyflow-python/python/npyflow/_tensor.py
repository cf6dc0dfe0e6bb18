"""The values iteration hands out: NumPy arrays and scalars that also answer ``.numpy()``.

``Tensor`` is an ``np.ndarray`` subclass: iteration's native code makes each array as a
Tensor over npyflow's memory (as it made ndarrays, no copy; about 0.1 us), and ``wrap`` makes
zero-copy views for tf's ops and ``reduce``. It is a NumPy array everywhere (ufuncs, indexing, ``np.*`` functions, ``.shape``
as a tuple, ``.dtype`` a NumPy dtype) and also has tf's ``.numpy()``, which gives the plain
ndarray (the same memory, no copy). A 0-d element is a NumPy scalar of a subclass of its
NumPy scalar type (``np.int64``, ``np.float32``, ...): it prints, hashes and compares as the
scalar does, and its ``.numpy()`` is the plain NumPy scalar, as TF's ``element.numpy()`` on a
scalar tensor is. NumPy's bools (two singletons) and datetimes cannot be subclassed: such a 0-d
element is a 0-d Tensor (it prints and compares as the scalar; ``.numpy()`` is the scalar;
unlike the scalar it is not hashable).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

import numpy as np

from . import _npyflow


class Tensor(np.ndarray):  # type: ignore[type-arg,unused-ignore]
    """A NumPy array with tf's tensor method ``numpy()`` (see the module's docstring).

    Results of NumPy operations on a Tensor are Tensors (NumPy keeps the subclass); reductions
    to a scalar give plain NumPy scalars.
    """

    __module__ = "npyflow"

    def numpy(self) -> Any:
        """The value as plain NumPy: the same memory as an ``np.ndarray`` (a NumPy scalar
        when 0-d), no copy."""
        if self.ndim == 0:
            return self.view(np.ndarray)[()]
        return self.view(np.ndarray)

    def __array_wrap__(self, arr: Any, context: Any = None, return_scalar: bool = False) -> Any:
        # NumPy 2 asks for a scalar where a plain array would give one (reductions to 0-d);
        # NumPy 1 passes two arguments only.
        if return_scalar:
            return np.asarray(arr)[()]
        return super().__array_wrap__(arr, context)

    def __repr__(self) -> str:
        return repr(self.view(np.ndarray))

    def __reduce__(self) -> Any:
        # Unpickled as a plain array: a Tensor is only a view with one more method.
        return self.view(np.ndarray).__reduce__()


_SCALAR_TYPES: Dict[Type[Any], Optional[Type[Any]]] = {}


def _scalar_type(base: Type[Any]) -> Optional[Type[Any]]:
    """The subclass of the NumPy scalar type ``base`` with ``numpy()``, made once (None for
    a type that cannot have one)."""
    if base in _SCALAR_TYPES:
        return _SCALAR_TYPES[base]
    sub: Optional[Type[Any]]
    body: Dict[str, Any] = {
        "__module__": "npyflow",
        "__slots__": (),
        "numpy": lambda self, _b=base: _b(self),
        "__repr__": lambda self, _b=base: repr(_b(self)),
        "__reduce__": lambda self, _b=base: _b(self).__reduce__(),
        "__doc__": f"A {base.__name__} scalar with tf's ``numpy()`` (the plain scalar).",
    }
    if issubclass(base, (np.bytes_, np.str_)):
        # A string an element gave keeps its tensor's dtype (NumPy's scalar has only its own
        # length), so that a function returning it unchanged returns the element's width.
        del body["__slots__"]
        body["_npyflow_dtype"] = None
    try:
        sub = type(f"{base.__name__}_tensor", (base,), body)
    except TypeError:  # a type NumPy does not let be subclassed
        sub = None
    if sub is not None and type(sub(base())) is not sub:  # np.bool_: two singletons
        sub = None
    _SCALAR_TYPES[base] = sub
    return sub


def wrap(value: Any) -> Any:
    """``value`` (an array, a NumPy scalar, or tuples and dicts of them) with ``numpy()`` on
    every leaf. Arrays become Tensor views (no copy)."""
    tp = type(value)
    if tp is np.ndarray:
        return value.view(Tensor) if value.ndim else wrap(value[()])
    if tp in _SCALAR_TYPES:  # a NumPy scalar type seen before (the common case first)
        sub = _SCALAR_TYPES[tp]
        return np.asarray(value).view(Tensor) if sub is None else sub(value)
    if tp is tuple:
        return tuple([wrap(v) for v in value])
    if tp is dict:
        return {k: wrap(v) for k, v in value.items()}
    if tp is Tensor or hasattr(value, "numpy"):
        return value
    if isinstance(value, np.ndarray):  # another subclass
        return wrap(value.view(np.ndarray))
    if isinstance(value, np.generic):
        _scalar_type(tp)
        return wrap(value)
    if isinstance(value, list):
        return [wrap(v) for v in value]
    if isinstance(value, tuple):
        return tuple([wrap(v) for v in value])
    if isinstance(value, dict):
        return {k: wrap(v) for k, v in value.items()}
    return value


def _wrap_scalar(value: Any) -> Any:
    """A NumPy scalar with ``numpy()`` (what the native iterator calls for 0-d tensors)."""
    sub = _SCALAR_TYPES[type(value)] if type(value) in _SCALAR_TYPES else _scalar_type(type(value))
    return np.asarray(value).view(Tensor) if sub is None else sub(value)


# Iteration (``CoreDataset.iter(threaded, tensors=True)``) makes Tensors natively: arrays as
# instances of Tensor (no view, no Python call), 0-d tensors by calling their type's subclass
# in _SCALAR_TYPES (through _wrap_scalar the first time, which makes it).
_npyflow._register_tensor(Tensor, _wrap_scalar, _SCALAR_TYPES)
