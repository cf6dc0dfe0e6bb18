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

import atexit
import operator
import os
import warnings
from typing import Any, Callable, Iterator, Optional

import numpy as np

from . import _npyflow, ops

__all__ = [
    "AUTOTUNE",
    "INFINITE_CARDINALITY",
    "UNKNOWN_CARDINALITY",
    "Dataset",
    "DatasetSpec",
    "TensorSpec",
    "data",
    "load",
    "ops",
    "save",
    "savez",
    "savez_compressed",
]

#: Let npyflow choose a parallelism or buffer size (``tf.data.AUTOTUNE``).
AUTOTUNE: int = -1
#: ``cardinality()`` of a dataset that never ends (``tf.data.INFINITE_CARDINALITY``).
INFINITE_CARDINALITY: int = -1
#: ``cardinality()`` of a dataset whose size only iterating would tell.
UNKNOWN_CARDINALITY: int = -2


def _shape_tuple(shape, what="shape"):
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        raise TypeError(f"{what} must be a sequence of dimensions or None, got {shape!r}")
    dims = []
    for d in shape:
        if d is None:
            dims.append(None)
            continue
        d = int(d)
        if d < 0:
            raise ValueError(f"{what}: a dimension must be >= 0 or None, got {d}")
        dims.append(d)
    return tuple(dims)


def _shape_str(shape):
    if shape is None:
        return "<unknown>"
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


class TensorSpec:
    """The dtype and shape of one tensor of an element, like ``tf.TensorSpec``.

    ``shape`` is a tuple whose unknown dimensions are ``None``, or ``None`` when even the rank
    is unknown; ``dtype`` is a NumPy dtype.
    """

    __slots__ = ("_shape", "_dtype", "_name")

    def __init__(self, shape, dtype=np.float32, name: Optional[str] = None):
        self._shape = _shape_tuple(shape)
        self._dtype = np.dtype(dtype)
        self._name = name

    @property
    def shape(self):
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def name(self) -> Optional[str]:
        return self._name

    def is_compatible_with(self, other) -> bool:
        """Whether ``other`` (a TensorSpec or an array) fits this spec."""
        if isinstance(other, TensorSpec):
            shape, dtype = other.shape, other.dtype
        else:
            arr = np.asarray(other)
            shape, dtype = arr.shape, arr.dtype
        if dtype != self._dtype:
            return False
        if self._shape is None or shape is None:
            return True
        return len(shape) == len(self._shape) and all(
            a is None or b is None or a == b for a, b in zip(self._shape, shape)
        )

    def __eq__(self, other):
        if not isinstance(other, TensorSpec):
            return NotImplemented
        return (self._shape, self._dtype, self._name) == (other._shape, other._dtype, other._name)

    def __hash__(self):
        return hash((self._shape, self._dtype, self._name))

    def __repr__(self):
        return f"TensorSpec(shape={_shape_str(self._shape)}, dtype={self._dtype}, name={self._name!r})"


class DatasetSpec:
    """The spec of an element that is itself a dataset (a window), like ``tf.data.DatasetSpec``."""

    __slots__ = ("_element_spec",)

    def __init__(self, element_spec):
        self._element_spec = element_spec

    @property
    def element_spec(self):
        return self._element_spec

    def __eq__(self, other):
        if not isinstance(other, DatasetSpec):
            return NotImplemented
        return self._element_spec == other._element_spec

    def __hash__(self):
        return hash(repr(self))

    def __repr__(self):
        return f"DatasetSpec({self._element_spec!r})"


def _is_python_value(value) -> bool:
    """Whether ``value`` is a Python number or string, or a (nested) list of them: what tf
    converts with its own dtypes (int32, float32, string) rather than NumPy's."""
    while isinstance(value, (list, tuple)) and len(value) > 0:
        value = value[0]
    return isinstance(value, (bool, int, float, complex, str, bytes)) and not isinstance(
        value, np.generic
    )


def _to_array(value) -> np.ndarray:
    """A leaf of an element as an array, with tf's conversion rules for Python values."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    if isinstance(value, Dataset):
        raise TypeError("a Dataset cannot be a tensor here")
    arr = np.asarray(value)
    if arr.dtype == object:
        raise TypeError(
            f"cannot convert {type(value).__name__} {value!r:.80} to a tensor: it is not a "
            "number, a string, or a rectangular sequence of them"
        )
    if _is_python_value(value):
        if arr.dtype.kind == "i":
            info = np.iinfo(np.int32)
            if arr.size == 0 or (arr.min() >= info.min and arr.max() <= info.max):
                arr = arr.astype(np.int32)
        elif arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        elif arr.dtype.kind == "U":
            arr = np.char.encode(arr, "utf-8")
    return arr


def _native_copy(arr: np.ndarray) -> np.ndarray:
    """One copy of ``arr`` in C order and the machine's byte order."""
    return np.array(arr, dtype=arr.dtype.newbyteorder("="), order="C", copy=True)


def _generator_value(value, signature):
    """A value a generator yielded, checked against ``output_signature`` and cast to its
    dtypes, as tf.data's ``from_generator`` does. Arrays the generator could still change
    are copied."""
    if isinstance(signature, TensorSpec):
        try:
            if signature.dtype.kind == "S" and isinstance(value, str):
                value = value.encode("utf-8")
            arr = np.asarray(value, dtype=signature.dtype)
        except (TypeError, ValueError) as e:
            raise TypeError(
                "`generator` yielded an element that could not be converted to the expected "
                f"type. The expected type was {signature.dtype}, but the yielded element was "
                f"{value!r:.100}."
            ) from e
        if arr is value and arr.flags.writeable:
            arr = arr.copy()
        return arr
    if isinstance(signature, DatasetSpec):
        if not isinstance(value, Dataset):
            raise TypeError(f"`generator` yielded {value!r:.100} where a Dataset was expected.")
        return value
    mismatch = TypeError(
        "`generator` yielded an element that did not match the expected structure. The "
        f"expected structure was {signature!r}, but the yielded element was {value!r:.100}."
    )
    if isinstance(signature, (tuple, list)):
        if not isinstance(value, (tuple, list)) or len(value) != len(signature):
            raise mismatch
        return tuple(_generator_value(v, s) for v, s in zip(value, signature))
    if isinstance(signature, dict):
        if not isinstance(value, dict) or set(value) != set(signature):
            raise mismatch
        return {k: _generator_value(value[k], s) for k, s in signature.items()}
    raise TypeError(f"output_signature must hold TensorSpecs, got {signature!r}")


def _flatten_up_to(spec, value, leaf, what):
    """The leaves of ``value`` (padded shapes or padding values) at the places of ``spec``'s
    tensors, in the element's order; a single leaf for a whole element is used for all."""
    if isinstance(spec, TensorSpec):
        return [leaf(spec, value)]
    if isinstance(spec, DatasetSpec):
        return []
    if isinstance(spec, tuple):
        if not isinstance(value, (tuple, list)) or len(value) != len(spec):
            raise ValueError(f"{what} {value!r} does not match the element structure {spec!r}")
        return [x for s, v in zip(spec, value) for x in _flatten_up_to(s, v, leaf, what)]
    if isinstance(spec, dict):
        if not isinstance(value, dict) or set(value) != set(spec):
            raise ValueError(f"{what} {value!r} does not match the element structure {spec!r}")
        return [x for k, s in spec.items() for x in _flatten_up_to(s, value[k], leaf, what)]
    raise TypeError(f"unexpected spec {spec!r}")


def _padded_shape_leaf(spec, value):
    if value is None:
        return spec.shape
    if isinstance(value, (int, np.integer)):
        value = [value]
    return tuple(None if d is None or int(d) < 0 else int(d) for d in value)


def _padding_value_leaf(spec, value):
    if spec.dtype.kind == "S" and isinstance(value, str):
        value = value.encode("utf-8")
    arr = np.asarray(value, dtype=spec.dtype)
    if arr.ndim != 0:
        raise ValueError(f"a padding value must be a scalar, got shape {arr.shape}")
    return arr


def _padding(spec, padded_shapes, padding_values):
    shapes = None
    if padded_shapes is not None:
        shapes = _flatten_up_to(spec, padded_shapes, _padded_shape_leaf, "padded_shapes")
    values = None
    if padding_values is not None:
        if not isinstance(padding_values, (tuple, list, dict)) and not isinstance(
            spec, TensorSpec
        ):
            # One scalar for every tensor.
            values = [_padding_value_leaf(s, padding_values) for s in _tensor_specs(spec)]
        else:
            values = _flatten_up_to(spec, padding_values, _padding_value_leaf, "padding_values")
    return shapes, values


def _tensor_specs(spec):
    if isinstance(spec, TensorSpec):
        return [spec]
    if isinstance(spec, tuple):
        return [s for x in spec for s in _tensor_specs(x)]
    if isinstance(spec, dict):
        return [s for x in spec.values() for s in _tensor_specs(x)]
    return []


def _structure_dtypes(spec):
    """The element structure with each tensor's dtype (shapes left out)."""
    if isinstance(spec, TensorSpec):
        return spec.dtype
    if isinstance(spec, DatasetSpec):
        return ("dataset", _structure_dtypes(spec.element_spec))
    if isinstance(spec, tuple):
        return tuple(_structure_dtypes(s) for s in spec)
    if isinstance(spec, dict):
        return {k: _structure_dtypes(s) for k, s in spec.items()}
    return spec


def _require_compatible(op, datasets):
    """tf.data's TypeError for datasets whose elements differ in structure or dtypes."""
    first = _structure_dtypes(datasets[0].element_spec)
    for i, d in enumerate(datasets[1:], 1):
        if _structure_dtypes(d.element_spec) != first:
            raise TypeError(
                f"{op}: incompatible dataset elements: dataset 0 has "
                f"{datasets[0].element_spec!r}, dataset {i} has {d.element_spec!r}"
            )


def _check_parallel(num_parallel_calls, deterministic):
    if num_parallel_calls is not None:
        if isinstance(num_parallel_calls, bool) or not isinstance(
            num_parallel_calls, (int, np.integer)
        ):
            raise TypeError(f"num_parallel_calls must be an int or AUTOTUNE, got {num_parallel_calls!r}")
        if num_parallel_calls != AUTOTUNE and num_parallel_calls <= 0:
            raise ValueError(
                f"num_parallel_calls must be positive or AUTOTUNE (-1), got {num_parallel_calls}"
            )
    if deterministic is not None and not isinstance(deterministic, (bool, np.bool_)):
        raise TypeError(f"deterministic must be None or a bool, got {deterministic!r}")


def _index(value, what) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be an int, got a bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, got {type(value).__name__}") from None


def _seed(seed):
    return None if seed is None else _index(seed, "seed")


def _path(p) -> str:
    return os.fspath(p)


class Dataset:
    """A lazy pipeline of elements, like ``tf.data.Dataset``.

    Make one with a source (``from_tensor_slices``, ``range``, ``from_npy``, ...) and chain
    transformations (``map``, ``shuffle``, ``batch``, ...). Nothing runs until it is
    iterated; every ``for`` loop is a new pass.
    """

    __slots__ = ("_ds", "_threaded")

    def __init__(self, *args, **kwargs):
        raise TypeError(
            "make a Dataset with a source such as Dataset.from_tensor_slices or Dataset.range"
        )

    @classmethod
    def _from_core(cls, core, threaded: bool = False) -> "Dataset":
        ds = object.__new__(cls)
        ds._ds = core
        ds._threaded = threaded
        return ds

    def _derive(self, core, threaded: bool = False) -> "Dataset":
        return Dataset._from_core(core, self._threaded or threaded)

    # ---- sources -------------------------------------------------------------------

    @staticmethod
    def from_tensor_slices(tensors, name: Optional[str] = None) -> "Dataset":
        """One element per row of ``tensors`` (an array, or a tuple or dict of arrays sharing
        their first dimension). Rows share the arrays' memory: nothing is copied."""
        return Dataset._from_core(_npyflow.from_tensor_slices(tensors))

    @staticmethod
    def from_tensors(tensors, name: Optional[str] = None) -> "Dataset":
        """A dataset of one element, ``tensors`` itself."""
        return Dataset._from_core(_npyflow.from_tensors(tensors))

    @staticmethod
    def range(*args, output_type=np.int64, name: Optional[str] = None) -> "Dataset":
        """``range(stop)``, ``range(start, stop)`` or ``range(start, stop, step)``: int64
        scalars (or ``output_type``), as Python's ``range``."""
        if not 1 <= len(args) <= 3:
            raise TypeError(f"range takes 1 to 3 positional arguments ({len(args)} given)")
        args = [_index(a, "range argument") for a in args]
        start, stop, step = (0, args[0], 1) if len(args) == 1 else (args + [1])[:3]
        ds = Dataset._from_core(_npyflow.range(start, stop, step))
        if np.dtype(output_type) != np.int64:
            ds = ds.map(ops.cast(output_type))
        return ds

    @staticmethod
    def counter(start: int = 0, step: int = 1, dtype=np.int64, name: Optional[str] = None) -> "Dataset":
        """``start, start + step, ...`` without end, as int64 scalars (or ``dtype``)."""
        ds = Dataset._from_core(_npyflow.counter(_index(start, "start"), _index(step, "step")))
        if np.dtype(dtype) != np.int64:
            ds = ds.map(ops.cast(dtype))
        return ds

    @staticmethod
    def zip(*args, datasets=None, name: Optional[str] = None) -> "Dataset":
        """Elements of several datasets side by side, ending with the shortest:
        ``zip(a, b)``, ``zip((a, b))``, ``zip({"x": a, "y": b})`` or nested structures."""
        if datasets is not None and args:
            raise TypeError("give the datasets either as arguments or as datasets=, not both")
        if datasets is None:
            if not args:
                raise TypeError("zip needs at least one dataset")
            datasets = args[0] if len(args) == 1 else args

        def build(s):
            if isinstance(s, Dataset):
                return s
            if isinstance(s, (tuple, list)):
                parts = [build(x) for x in s]
                return Dataset._from_core(
                    _npyflow.zip([p._ds for p in parts]), any(p._threaded for p in parts)
                )
            if isinstance(s, dict):
                parts = {k: build(v) for k, v in s.items()}
                for k in parts:
                    if not isinstance(k, str):
                        raise TypeError(f"zip: dict keys must be str, got {k!r}")
                return Dataset._from_core(
                    _npyflow.zip_dict([(k, p._ds) for k, p in parts.items()]),
                    any(p._threaded for p in parts.values()),
                )
            raise TypeError(
                f"The argument to `Dataset.zip()` must be a (nested) structure of `Dataset` objects, got {s!r}"
            )

        return build(datasets)

    @staticmethod
    def from_generator(
        generator: Callable[..., Any],
        output_types=None,
        output_shapes=None,
        args=None,
        output_signature=None,
        name: Optional[str] = None,
    ) -> "Dataset":
        """Elements from ``generator(*args)``, called anew for each pass. ``output_signature``
        (TensorSpecs in the element's structure) declares the elements; yielded values are
        cast to its dtypes, and one that does not fit it is an error at its place."""
        if not callable(generator):
            raise TypeError("`generator` must be a Python callable.")
        if output_signature is None:
            if output_types is None:
                raise TypeError("from_generator needs output_signature (or output_types)")
            warnings.warn(
                "output_types and output_shapes are deprecated in tf.data; use output_signature",
                DeprecationWarning,
                stacklevel=2,
            )
            output_signature = _signature_from_types(output_types, output_shapes)
        elif output_types is not None or output_shapes is not None:
            raise TypeError("give output_signature, or output_types and output_shapes, not both")
        args = tuple(args) if args is not None else ()
        return Dataset._from_core(
            _npyflow.from_generator(generator, args, output_signature, _generator_value)
        )

    @staticmethod
    def list_files(file_pattern, shuffle: Optional[bool] = None, seed=None, name: Optional[str] = None) -> "Dataset":
        """The paths matching a glob pattern (or any of a list of them), as bytes scalars,
        sorted; shuffled on each pass unless ``shuffle=False``."""
        shuffle = True if shuffle is None else bool(shuffle)
        patterns = [file_pattern] if isinstance(file_pattern, (str, bytes, os.PathLike)) else list(file_pattern)
        patterns = [os.fsdecode(p) for p in patterns]
        if len(patterns) == 1:
            return Dataset._from_core(_npyflow.list_files(patterns[0], shuffle, _seed(seed)))
        parts = [Dataset._from_core(_npyflow.list_files(p, False, None)) for p in patterns]
        ds = parts[0]
        for p in parts[1:]:
            ds = ds.concatenate(p)
        if shuffle:
            ds = ds.shuffle(max(len(ds), 1), seed=seed)
        return ds

    @staticmethod
    def sample_from_datasets(
        datasets,
        weights=None,
        seed=None,
        stop_on_empty_dataset: bool = False,
        rerandomize_each_iteration=None,
    ) -> "Dataset":
        """Elements drawn at random from ``datasets``, with probabilities proportional to
        ``weights`` (equal when None). Each pass draws a new sequence."""
        datasets = list(datasets)
        if datasets:
            _require_compatible("sample_from_datasets", datasets)
        if isinstance(weights, Dataset):
            raise TypeError("weights must be a list of numbers; a Dataset of weights is not supported")
        if weights is not None:
            weights = [float(w) for w in np.asarray(weights, dtype=np.float64).ravel()]
        return Dataset._from_core(
            _npyflow.sample_from_datasets(
                [d._ds for d in datasets], weights, _seed(seed), bool(stop_on_empty_dataset)
            ),
            any(d._threaded for d in datasets),
        )

    @staticmethod
    def choose_from_datasets(datasets, choice_dataset: "Dataset", stop_on_empty_dataset: bool = True) -> "Dataset":
        """Element *i* from ``datasets[choice_dataset[i]]`` (choices are int64 scalars)."""
        datasets = list(datasets)
        if datasets:
            _require_compatible("choose_from_datasets", datasets)
        return Dataset._from_core(
            _npyflow.choose_from_datasets(
                [d._ds for d in datasets], choice_dataset._ds, bool(stop_on_empty_dataset)
            ),
            any(d._threaded for d in datasets) or choice_dataset._threaded,
        )

    @staticmethod
    def from_npy(path) -> "Dataset":
        """The rows of a ``.npy`` file, or of several read as one array, memory-mapped: no
        copy is made of data that is native-endian, C-order and aligned.

        A file truncated by another process while it is mapped does not crash Python (as a
        SIGBUS would): rows past its new end raise ``OSError`` naming the file ("the file
        was truncated while memory-mapped ..."). Rows handed out before the truncation are
        views of the map and read zeros from its lost part."""
        paths = [path] if isinstance(path, (str, bytes, os.PathLike)) else list(path)
        return Dataset._from_core(_npyflow.from_npy([_path(p) for p in paths]))

    @staticmethod
    def from_npz(path, keys=None) -> "Dataset":
        """The rows of members of an ``.npz`` archive as dicts keyed by member name (every
        member, in archive order, when ``keys`` is None)."""
        if isinstance(keys, str):
            keys = [keys]
        return Dataset._from_core(_npyflow.from_npz(_path(path), None if keys is None else list(keys)))

    # ---- what a dataset is ---------------------------------------------------------

    @property
    def element_spec(self):
        """The structure, dtypes and shapes of the elements: TensorSpecs in tuples and dicts."""
        return self._ds.element_spec

    def cardinality(self) -> int:
        """The number of elements; ``INFINITE_CARDINALITY`` (-1) or ``UNKNOWN_CARDINALITY``
        (-2) where tf.data says so."""
        return self._ds.cardinality()

    def __len__(self) -> int:
        n = self.cardinality()
        if n == INFINITE_CARDINALITY:
            raise TypeError("The dataset is infinite.")
        if n == UNKNOWN_CARDINALITY:
            raise TypeError("The dataset length is unknown.")
        return n

    def __bool__(self) -> bool:
        return True

    def __iter__(self) -> Iterator:
        """A new pass, yielding NumPy arrays (NumPy scalars for 0-d tensors) in the element's
        tuples and dicts."""
        return self._ds.iter(self._threaded)

    def as_numpy_iterator(self) -> Iterator:
        """The same as iterating: elements as NumPy values."""
        return self._ds.iter(self._threaded)

    def __repr__(self) -> str:
        return f"<{self._ds.name}Dataset element_spec={self.element_spec!r}>"

    # ---- transformations -----------------------------------------------------------

    def map(
        self,
        map_func,
        num_parallel_calls: Optional[int] = None,
        deterministic: Optional[bool] = None,
        name: Optional[str] = None,
        *,
        output_signature=None,
    ) -> "Dataset":
        """``map_func`` applied to every element. A tuple element's parts are its positional
        arguments; tensors arrive as NumPy arrays (0-d arrays for scalars). A list returned is
        taken as a tuple, as in tf.data. ``map_func`` may also be an op of ``npyflow.ops``,
        which runs in Rust without the GIL.

        The output structure is found by calling ``map_func`` on placeholder elements (of
        zeros, ones and sevens) when the dataset is made; give ``output_signature``
        (TensorSpecs, as for ``from_generator``) to declare it instead.

        With ``num_parallel_calls`` (a positive int or ``AUTOTUNE``: one thread per core)
        elements are mapped on that many threads; with ``deterministic`` (the default) the
        output is the same as on one thread. Python functions hold the GIL while they run,
        so they gain from threads only where they release it (NumPy's larger operations do);
        ops run in Rust without it.
        """
        _check_parallel(num_parallel_calls, deterministic)
        threaded = num_parallel_calls is not None
        if isinstance(map_func, ops.Op):
            if output_signature is not None:
                raise TypeError("output_signature is for Python functions, not ops")
            core = self._ds.map_ops([map_func._spec()], num_parallel_calls, deterministic)
            return self._derive(core, threaded)
        if not callable(map_func):
            raise TypeError(f"map_func must be callable, got {map_func!r}")
        return self._derive(
            self._ds.map(map_func, output_signature, num_parallel_calls, deterministic), threaded
        )

    def filter(self, predicate, name: Optional[str] = None) -> "Dataset":
        """The elements for which ``predicate`` returns True (a bool scalar)."""
        return self._derive(self._ds.filter(predicate))

    def flat_map(self, map_func, name: Optional[str] = None) -> "Dataset":
        """The elements of the datasets ``map_func`` returns for each element, in order."""
        return self._derive(self._ds.flat_map(map_func))

    def interleave(
        self,
        map_func,
        cycle_length: Optional[int] = None,
        block_length: Optional[int] = None,
        num_parallel_calls: Optional[int] = None,
        deterministic: Optional[bool] = None,
        name: Optional[str] = None,
    ) -> "Dataset":
        """The datasets ``map_func`` returns, ``cycle_length`` at a time (AUTOTUNE: the number
        of CPUs), ``block_length`` elements from each in turn."""
        _check_parallel(num_parallel_calls, deterministic)
        cycle = AUTOTUNE if cycle_length is None else _index(cycle_length, "cycle_length")
        block = 1 if block_length is None else _index(block_length, "block_length")
        return self._derive(
            self._ds.interleave(map_func, cycle, block, num_parallel_calls),
            num_parallel_calls is not None,
        )

    def batch(
        self,
        batch_size: int,
        drop_remainder: bool = False,
        num_parallel_calls: Optional[int] = None,
        deterministic: Optional[bool] = None,
        name: Optional[str] = None,
    ) -> "Dataset":
        """``batch_size`` consecutive elements stacked on a new first axis; the last batch is
        smaller unless ``drop_remainder``."""
        _check_parallel(num_parallel_calls, deterministic)
        return self._derive(
            self._ds.batch(
                _index(batch_size, "batch_size"),
                bool(drop_remainder),
                num_parallel_calls,
                deterministic,
            ),
            num_parallel_calls is not None,
        )

    def padded_batch(
        self,
        batch_size: int,
        padded_shapes=None,
        padding_values=None,
        drop_remainder: bool = False,
        name: Optional[str] = None,
    ) -> "Dataset":
        """Like ``batch``, each tensor first padded at the end of its axes: to
        ``padded_shapes`` (None or -1 dimensions: to the longest in the batch), with
        ``padding_values`` (zeros and empty strings by default). Both mirror the element's
        structure; one padding value may be given for every tensor."""
        shapes, values = _padding(self.element_spec, padded_shapes, padding_values)
        return self._derive(
            self._ds.padded_batch(_index(batch_size, "batch_size"), shapes, values, bool(drop_remainder))
        )

    def unbatch(self, name: Optional[str] = None) -> "Dataset":
        """Each element split along its first axis into rows (which share its memory)."""
        return self._derive(self._ds.unbatch())

    def rebatch(self, batch_size, drop_remainder: bool = False, name: Optional[str] = None) -> "Dataset":
        """The rows of a batched dataset regrouped into batches of ``batch_size`` (an int, or
        a list of sizes used in turn)."""
        sizes = [batch_size] if isinstance(batch_size, (int, np.integer)) else list(batch_size)
        return self._derive(self._ds.rebatch([_index(s, "batch_size") for s in sizes], bool(drop_remainder)))

    def shuffle(
        self,
        buffer_size: int,
        seed=None,
        reshuffle_each_iteration: Optional[bool] = None,
        name: Optional[str] = None,
    ) -> "Dataset":
        """Elements drawn at random from a buffer of the next ``buffer_size``; a new order on
        each pass unless ``reshuffle_each_iteration=False``."""
        reshuffle = True if reshuffle_each_iteration is None else bool(reshuffle_each_iteration)
        return self._derive(self._ds.shuffle(_index(buffer_size, "buffer_size"), _seed(seed), reshuffle))

    def global_shuffle(self, seed=None, reshuffle_each_iteration: bool = True) -> "Dataset":
        """A uniform shuffle of a random-access dataset (array slices, ``.npy`` rows, and maps,
        takes, shards and zips of them) with no buffer: a seeded permutation of the indices,
        a new one each pass unless ``reshuffle_each_iteration=False``. Not in tf.data, whose
        ``shuffle`` needs a buffer as large as the data for the same result; other datasets
        raise ValueError (use ``shuffle``)."""
        return self._derive(self._ds.global_shuffle(_seed(seed), bool(reshuffle_each_iteration)))

    def repeat(self, count: Optional[int] = None, name: Optional[str] = None) -> "Dataset":
        """The dataset ``count`` times, or forever when ``count`` is None or -1."""
        return self._derive(self._ds.repeat(None if count is None else _index(count, "count")))

    def take(self, count: int, name: Optional[str] = None) -> "Dataset":
        """The first ``count`` elements (all of them when ``count`` is -1)."""
        return self._derive(self._ds.take(_index(count, "count")))

    def skip(self, count: int, name: Optional[str] = None) -> "Dataset":
        """All but the first ``count`` elements (none when ``count`` is -1)."""
        return self._derive(self._ds.skip(_index(count, "count")))

    def distributed_batch(
        self, batch_size: int, num_workers: int, worker_index: int
    ) -> "Dataset":
        """The batches of worker ``worker_index`` of ``num_workers`` in data-parallel
        training, from a random-access dataset every worker builds alike (the same
        ``global_shuffle`` seed): together the workers read every element exactly once per
        epoch, and each gets the same number of batches. Steps of ``num_workers *
        batch_size`` elements give each worker ``batch_size``; the last, smaller step is split
        as evenly as it can be (sizes differ by at most one; a worker's last batch has no rows
        when fewer elements remain than workers). Not in tf.data."""
        return self._derive(
            self._ds.distributed_batch(
                _index(batch_size, "batch_size"),
                _index(num_workers, "num_workers"),
                _index(worker_index, "worker_index"),
            )
        )

    def shard(self, num_shards: int, index: int, name: Optional[str] = None) -> "Dataset":
        """The elements whose position is ``index`` modulo ``num_shards``."""
        return self._derive(self._ds.shard(_index(num_shards, "num_shards"), _index(index, "index")))

    def enumerate(self, start: int = 0, name: Optional[str] = None) -> "Dataset":
        """``(i, element)`` pairs, ``i`` an int64 counting from ``start``."""
        return self._derive(self._ds.enumerate(_index(start, "start")))

    def window(
        self,
        size: int,
        shift: Optional[int] = None,
        stride: int = 1,
        drop_remainder: bool = False,
        name: Optional[str] = None,
    ) -> "Dataset":
        """Windows of ``size`` elements, every ``shift`` (default ``size``) elements, taking
        every ``stride``-th; each window is a dataset (flat_map it to batches)."""
        return self._derive(
            self._ds.window(
                _index(size, "size"),
                None if shift is None else _index(shift, "shift"),
                _index(stride, "stride"),
                bool(drop_remainder),
            )
        )

    def scan(self, initial_state, scan_func, name: Optional[str] = None) -> "Dataset":
        """``scan_func(state, element)`` returns ``(new_state, output_element)``; the outputs
        are the elements. The state keeps the initial state's structure and dtypes."""
        return self._derive(self._ds.scan(initial_state, scan_func))

    def take_while(self, predicate, name: Optional[str] = None) -> "Dataset":
        """Elements up to (not including) the first for which ``predicate`` is False."""
        return self._derive(self._ds.take_while(predicate))

    def unique(self, name: Optional[str] = None) -> "Dataset":
        """Each distinct element once (integer or string scalars)."""
        return self._derive(self._ds.unique())

    def group_by_window(
        self,
        key_func,
        reduce_func,
        window_size: Optional[int] = None,
        window_size_func=None,
        name: Optional[str] = None,
    ) -> "Dataset":
        """Elements grouped by ``key_func`` (an int64); each full group of ``window_size`` (or
        ``window_size_func(key)``) becomes ``reduce_func(key, window_dataset)``."""
        return self._derive(
            self._ds.group_by_window(
                key_func,
                reduce_func,
                None if window_size is None else _index(window_size, "window_size"),
                window_size_func,
            )
        )

    def bucket_by_sequence_length(
        self,
        element_length_func,
        bucket_boundaries,
        bucket_batch_sizes,
        padded_shapes=None,
        padding_values=None,
        pad_to_bucket_boundary: bool = False,
        no_padding: bool = False,
        drop_remainder: bool = False,
        name: Optional[str] = None,
    ) -> "Dataset":
        """Elements batched (and padded) with others of similar length, one batch size per
        bucket between ``bucket_boundaries``."""
        shapes, values = _padding(self.element_spec, padded_shapes, padding_values)
        return self._derive(
            self._ds.bucket_by_sequence_length(
                element_length_func,
                [_index(b, "bucket_boundaries") for b in bucket_boundaries],
                [_index(b, "bucket_batch_sizes") for b in bucket_batch_sizes],
                shapes,
                values,
                bool(pad_to_bucket_boundary),
                bool(no_padding),
                bool(drop_remainder),
            )
        )

    def cache(self, filename: str = "", name: Optional[str] = None) -> "Dataset":
        """The first complete pass, kept in memory (``filename=""``) or in a file, and
        replayed by later passes."""
        path = _path(filename)
        return self._derive(self._ds.cache(path if path else None))

    def prefetch(self, buffer_size: int, name: Optional[str] = None) -> "Dataset":
        """Elements made ahead on a background thread, up to ``buffer_size`` (AUTOTUNE: npyflow
        chooses)."""
        return self._derive(self._ds.prefetch(_index(buffer_size, "buffer_size")), threaded=True)

    def ignore_errors(self, log_warning: bool = False, name: Optional[str] = None) -> "Dataset":
        """The elements that are not errors."""
        return self._derive(self._ds.ignore_errors(bool(log_warning)))

    def concatenate(self, dataset: "Dataset", name: Optional[str] = None) -> "Dataset":
        """This dataset's elements, then ``dataset``'s."""
        _require_compatible("concatenate", [self, dataset])
        return self._derive(self._ds.concatenate(dataset._ds), dataset._threaded)

    def apply(self, transformation_func: Callable[["Dataset"], "Dataset"]) -> "Dataset":
        """``transformation_func(self)``, to keep a chain reading left to right."""
        out = transformation_func(self)
        if not isinstance(out, Dataset):
            raise TypeError(f"`transformation_func` must return a Dataset, got {type(out).__name__}")
        return out

    def reduce(self, initial_state, reduce_func):
        """Every element folded into a state: ``reduce_func(state, element)`` returns the new
        state. The result is NumPy values."""
        return self._ds.reduce(initial_state, reduce_func)


def _signature_from_types(output_types, output_shapes):
    def build(types, shapes):
        if isinstance(types, (tuple, list)):
            shapes = shapes if shapes is not None else [None] * len(types)
            return tuple(build(t, s) for t, s in zip(types, shapes))
        if isinstance(types, dict):
            shapes = shapes if shapes is not None else {}
            return {k: build(t, shapes.get(k)) for k, t in types.items()}
        return TensorSpec(shapes, types)

    return build(output_types, output_shapes)


# ---- files ---------------------------------------------------------------------------


def load(file):
    """A ``.npy`` file as an array, or an ``.npz`` archive as a dict of arrays (archive
    order). Data that can be used in place is memory-mapped and read-only, as with
    ``np.load(file, mmap_mode="r")``; other data is converted once."""
    return _npyflow.load(_path(file))


def save(file, arr) -> None:
    """Writes ``arr`` as a ``.npy`` file (``.npy`` is added to a name without it, as
    ``np.save`` does). The array is written in C order."""
    path = _path(file)
    if not path.endswith(".npy"):
        path += ".npy"
    _npyflow.save(path, arr)


def _savez(file, args, kwds, compressed):
    path = _path(file)
    if not path.endswith(".npz"):
        path += ".npz"
    named = [(f"arr_{i}", a) for i, a in enumerate(args)]
    for k, v in kwds.items():
        if k in dict(named):
            raise ValueError(f"Cannot use un-named variables and keyword {k}")
        named.append((k, v))
    _npyflow.savez(path, named, compressed)


def savez(file, *args, **kwds) -> None:
    """Writes arrays into an uncompressed ``.npz`` archive, as ``np.savez``; npyflow aligns
    members so that they can be memory-mapped when read back."""
    _savez(file, args, kwds, False)


def savez_compressed(file, *args, **kwds) -> None:
    """Writes arrays into a deflated ``.npz`` archive, as ``np.savez_compressed``."""
    _savez(file, args, kwds, True)


_npyflow._register(TensorSpec, DatasetSpec, Dataset, _to_array, _native_copy, np.bool_)
# npyflow's threads that end while Python shuts down must not wait for the GIL.
atexit.register(_npyflow._shutting_down)

from . import data  # noqa: E402  (tf.data's namespace: needs Dataset defined above)
