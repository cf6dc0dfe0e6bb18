"""Element specs (``TensorSpec``, ``DatasetSpec``) and the structure helpers that walk them:
shapes, the tensors of a structure in order, padding arguments flattened to the tensors."""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Tuple, TypeVar

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

#: A shape: a tuple whose unknown dimensions are None, or None when the rank is unknown.
Shape = Optional[Tuple[Optional[int], ...]]
#: A structure of TensorSpec and DatasetSpec in tuples and dicts, mirroring an element.
ElementSpec = Any


def shape_tuple(shape: Optional[Sequence[Optional[int]]], what: str = "shape") -> Shape:
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        raise TypeError(f"{what} must be a sequence of dimensions or None, got {shape!r}")
    dims: List[Optional[int]] = []
    for d in shape:
        if d is None:
            dims.append(None)
            continue
        try:
            d = operator.index(d)
        except TypeError:
            # tf.TensorShape's own words.
            raise TypeError(f"{what}: Dimension value must be integer or None, got {d!r}") from None
        if d < 0:
            raise ValueError(f"{what}: a dimension must be >= 0 or None, got {d}")
        dims.append(d)
    return tuple(dims)


def shape_str(shape: Shape) -> str:
    if shape is None:
        return "<unknown>"
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _any_width_admits(spec: np.dtype[Any], dtype: np.dtype[Any]) -> bool:
    """Whether ``spec`` is a string dtype of any width (``S0``, ``U0``) and ``dtype`` a string
    of its kind."""
    return spec.kind in "SU" and spec.itemsize == 0 and dtype.kind == spec.kind


class TensorSpec:
    """The dtype and shape of one tensor of an element, like ``tf.TensorSpec``.

    ``shape`` is a tuple whose unknown dimensions are ``None``, or ``None`` when even the rank
    is unknown; ``dtype`` is a NumPy dtype. A string dtype without a width (``tf.string``,
    NumPy's ``S`` or ``U``, shown as ``|S0`` or ``<U0``) is a string of any width, as
    ``tf.string`` is: the spec a ``map`` infers from its function's output has its strings
    so, and each element keeps its own width (a ``batch`` stacks them at the widest). A
    width, ``S16`` say, admits that width only, and a ``map`` declaring it widens shorter
    strings to it.
    """

    __module__ = "npyflow"  # where users find it (and pickles look for it)
    __slots__ = ("_shape", "_dtype", "_name")

    def __init__(
        self,
        shape: Optional[Sequence[Optional[int]]],
        dtype: npt.DTypeLike = np.float32,
        name: Optional[str] = None,
    ) -> None:
        self._shape = shape_tuple(shape)
        # tf.string (npyflow.string) stands for NumPy's bytes dtype
        self._dtype: np.dtype[Any] = np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
        self._name = name

    @property
    def shape(self) -> Shape:
        return self._shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._dtype

    @property
    def name(self) -> Optional[str]:
        return self._name

    def is_compatible_with(self, other: Any) -> bool:
        """Whether ``other`` (a TensorSpec or an array) fits this spec."""
        shape: Shape
        if isinstance(other, TensorSpec):
            shape, dtype = other.shape, other.dtype
        else:
            arr = np.asarray(other)
            shape, dtype = arr.shape, arr.dtype
        if dtype != self._dtype and not _any_width_admits(self._dtype, dtype):
            return False
        if self._shape is None or shape is None:
            return True
        return len(shape) == len(self._shape) and all(
            a is None or b is None or a == b for a, b in zip(self._shape, shape)
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TensorSpec):
            return NotImplemented
        return (self._shape, self._dtype, self._name) == (other._shape, other._dtype, other._name)

    def __hash__(self) -> int:
        return hash((self._shape, self._dtype, self._name))

    def __repr__(self) -> str:
        return f"TensorSpec(shape={shape_str(self._shape)}, dtype={self._dtype}, name={self._name!r})"


class DatasetSpec:
    """The spec of an element that is itself a dataset (a window), like ``tf.data.DatasetSpec``."""

    __module__ = "npyflow"  # where users find it (and pickles look for it)
    __slots__ = ("_element_spec",)

    def __init__(self, element_spec: ElementSpec) -> None:
        self._element_spec = element_spec

    @property
    def element_spec(self) -> ElementSpec:
        return self._element_spec

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DatasetSpec):
            return NotImplemented
        return bool(self._element_spec == other._element_spec)

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        return f"DatasetSpec({self._element_spec!r})"


def tensor_specs(spec: ElementSpec) -> List[TensorSpec]:
    """The TensorSpecs of a structure, in the element's order (windows have none)."""
    if isinstance(spec, TensorSpec):
        return [spec]
    if isinstance(spec, tuple):
        return [s for x in spec for s in tensor_specs(x)]
    if isinstance(spec, dict):
        return [s for x in spec.values() for s in tensor_specs(x)]
    return []


def structure_dtypes(spec: ElementSpec) -> Any:
    """The element structure with each tensor's dtype (shapes left out; strings by their
    kind, as their widths may differ: ``tf.string`` is one dtype)."""
    if isinstance(spec, TensorSpec):
        return f"string {spec.dtype.kind}" if spec.dtype.kind in "SU" else spec.dtype
    if isinstance(spec, DatasetSpec):
        return ("dataset", structure_dtypes(spec.element_spec))
    if isinstance(spec, tuple):
        return tuple(structure_dtypes(s) for s in spec)
    if isinstance(spec, dict):
        return {k: structure_dtypes(s) for k, s in spec.items()}
    return spec


def signature_from_types(output_types: Any, output_shapes: Any) -> ElementSpec:
    """The ``output_signature`` that tf.data's deprecated ``output_types`` and
    ``output_shapes`` stand for."""

    def build(types: Any, shapes: Any) -> ElementSpec:
        if isinstance(types, list):
            # tf.data's structures are tuples and dicts; a list is one value, which is no dtype.
            raise TypeError(
                f"Cannot convert the argument `type_value`: {types!r} to a dtype "
                "(give several components' types as a tuple)"
            )
        if isinstance(types, tuple):
            shapes = shapes if shapes is not None else [None] * len(types)
            return tuple(build(t, s) for t, s in zip(types, shapes))
        if isinstance(types, dict):
            shapes = shapes if shapes is not None else {}
            return {k: build(t, shapes.get(k)) for k, t in types.items()}
        return TensorSpec(shapes, types)

    return build(output_types, output_shapes)


# ---- padding arguments, flattened to the element's tensors ---------------------------

_T = TypeVar("_T")


def _flatten_up_to(
    spec: ElementSpec, value: Any, leaf: Callable[[TensorSpec, Any], _T], what: str
) -> List[_T]:
    """The leaves of ``value`` (padded shapes or padding values) at the places of ``spec``'s
    tensors, in the element's order; a single leaf for a whole element is used for all."""
    if isinstance(spec, TensorSpec):
        return [leaf(spec, value)]
    if isinstance(spec, DatasetSpec) or spec is None:
        # A None component has no tensors, so nothing to pad (tf.data wants None there).
        return []
    if value is None:
        # None for a part of the structure: the default for each of its tensors, as tf.data.
        return [leaf(s, None) for s in tensor_specs(spec)]
    if isinstance(spec, tuple):
        if not isinstance(value, (tuple, list)) or len(value) != len(spec):
            raise ValueError(f"{what} {value!r} does not match the element structure {spec!r}")
        return [x for s, v in zip(spec, value) for x in _flatten_up_to(s, v, leaf, what)]
    if isinstance(spec, dict):
        if not isinstance(value, dict) or set(value) != set(spec):
            raise ValueError(f"{what} {value!r} does not match the element structure {spec!r}")
        return [x for k, s in spec.items() for x in _flatten_up_to(s, value[k], leaf, what)]
    raise TypeError(f"unexpected spec {spec!r}")


def _padded_shape_leaf(spec: TensorSpec, value: Any) -> Shape:
    """A padded shape as tf.data checks it: ints (-1 or None: the longest in the batch),
    TypeError for other types, ValueError for a dimension below -1, a shape that is not a
    vector, or one whose rank is not the component's."""
    if value is None:
        if spec.shape is None:
            raise ValueError(
                "You must provide `padded_shapes` argument because a component has unknown "
                f"rank ({spec!r})"
            )
        return spec.shape
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = [value]
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"Padded shape {value!r} must be a vector of ints (or None), one per axis")
    dims: List[Optional[int]] = []
    for d in value:
        if d is None:
            dims.append(None)
            continue
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)):
            raise TypeError(
                f"Padded shape {list(value)!r} must be a vector of ints, but it holds "
                f"{d!r} ({type(d).__name__})"
            )
        if d < -1:
            raise ValueError(f"Dimension {int(d)} must be >= 0 (or -1 or None: the longest in the batch)")
        dims.append(None if d == -1 else int(d))
    if spec.shape is not None and len(dims) != len(spec.shape):
        raise ValueError(
            f"The padded shape {tuple(dims)} is not compatible with the shape {spec.shape} of "
            "the corresponding input component."
        )
    return tuple(dims)


def _padding_value_leaf(spec: TensorSpec, value: Any) -> np.ndarray[Any, Any]:
    if value is None:
        return np.zeros((), dtype=spec.dtype)  # zeros, and empty strings
    if spec.dtype.kind == "S" and isinstance(value, str):
        value = value.encode("utf-8")
    arr = np.asarray(value, dtype=spec.dtype)
    if arr.ndim != 0:
        raise ValueError(f"a padding value must be a scalar, got shape {arr.shape}")
    return arr


def padding(
    spec: ElementSpec, padded_shapes: Any, padding_values: Any
) -> Tuple[Optional[List[Shape]], Optional[List[np.ndarray[Any, Any]]]]:
    """``padded_shapes`` and ``padding_values`` (each None, or mirroring the element's
    structure; one padding value may stand for every tensor) as one entry per tensor."""
    shapes = None
    if padded_shapes is not None:
        shapes = _flatten_up_to(spec, padded_shapes, _padded_shape_leaf, "padded_shapes")
    else:
        for i, s in enumerate(tensor_specs(spec)):
            if s.shape is None:
                raise ValueError(
                    "You must provide `padded_shapes` argument because component "
                    f"{i} has unknown rank."
                )
    values = None
    if padding_values is not None:
        if not isinstance(padding_values, (tuple, list, dict)) and not isinstance(
            spec, TensorSpec
        ):
            # One scalar for every tensor.
            values = [_padding_value_leaf(s, padding_values) for s in tensor_specs(spec)]
        else:
            values = _flatten_up_to(spec, padding_values, _padding_value_leaf, "padding_values")
    return shapes, values

