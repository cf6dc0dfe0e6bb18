"""``npyflow.Dataset``: its sources and what a dataset is (its transformations are in
``_transformations``), and the conversions of values the native module calls back."""

from __future__ import annotations

import atexit
import functools
import inspect
import os
import warnings
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _npyflow, ops
from ._args import PathLike, as_index, as_path, as_seed, require_compatible, storage_options_arg
from ._constants import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from ._options import Options, warn_ignored
from ._specs import DatasetSpec, ElementSpec, TensorSpec, signature_from_types
from ._structure import Repacking, Template, is_namedtuple, repack, template_of
from ._tensor import wrap
from ._transformations import DatasetTransformations
from ._values import with_tf_dtype

if TYPE_CHECKING:
    import numpy.typing as npt


class Dataset(DatasetTransformations):
    """A lazy pipeline of elements, like ``tf.data.Dataset``.

    Make one with a source (``from_tensor_slices``, ``range``, ``from_npy``, ...) and chain
    transformations (``map``, ``shuffle``, ``batch``, ...). Nothing runs until it is
    iterated; every ``for`` loop is a new pass.
    """

    __module__ = "npyflow"  # where users find it (and pickles look for it)
    # ``_recipe``: the recorded call that made this dataset (see ``_record_calls``), for the
    # fingerprint of ``snapshot``; None for datasets made inside a running pipeline.
    __slots__ = ("_ds", "_threaded", "_options", "_struct", "_recipe")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "make a Dataset with a source such as Dataset.from_tensor_slices or Dataset.range"
        )

    @classmethod
    def _from_core(
        cls,
        core: _npyflow.CoreDataset,
        threaded: bool = False,
        options: Optional[Options] = None,
        struct: Template = None,
    ) -> Dataset:
        ds = object.__new__(cls)
        ds._ds = core
        ds._threaded = threaded
        ds._options = options
        ds._struct = struct
        ds._recipe = None
        return ds

    def _derive(
        self, core: _npyflow.CoreDataset, threaded: bool = False, struct: Any = "same"
    ) -> Dataset:
        """A dataset made from this one: its elements keep this one's namedtuples unless
        ``struct`` gives their new template (see ``_structure``)."""
        kept = self._struct if struct == "same" else struct
        return Dataset._from_core(core, self._threaded or threaded, self._options, kept)

    def _deterministic(self, deterministic: Optional[bool]) -> Optional[bool]:
        """A stage's ``deterministic``: its own, else the dataset's ``Options``'."""
        if deterministic is not None or self._options is None:
            return deterministic
        return self._options._deterministic()

    # ---- sources -------------------------------------------------------------------

    @staticmethod
    def from_tensor_slices(tensors: Any, name: Optional[str] = None) -> Dataset:
        """One element per row of ``tensors`` (an array, or a tuple or dict of arrays sharing
                their first dimension). Rows share the arrays' memory: nothing is copied. A list of
        datasets gives one
        dataset per element (so does a part of the structure that is one); a dataset whose
        elements are datasets (a batch of datasets, as ``batch`` makes) gives them back."""
        if isinstance(tensors, Dataset) and isinstance(tensors.element_spec, DatasetSpec):
            return tensors
        if _holds_dataset_list(tensors):
            return _slices_with_datasets(tensors)
        return Dataset._from_core(
            _npyflow.from_tensor_slices(tensors), struct=template_of(tensors)
        )

    @staticmethod
    def from_tensors(tensors: Any, name: Optional[str] = None) -> Dataset:
        """A dataset of one element, ``tensors`` itself."""
        return Dataset._from_core(_npyflow.from_tensors(tensors), struct=template_of(tensors))

    @staticmethod
    def range(*args: int, output_type: npt.DTypeLike = np.int64, name: Optional[str] = None) -> Dataset:
        """``range(stop)``, ``range(start, stop)`` or ``range(start, stop, step)``: int64
        scalars (or ``output_type``), as Python's ``range``."""
        if not 1 <= len(args) <= 3:
            raise TypeError(f"range takes 1 to 3 positional arguments ({len(args)} given)")
        ints = [as_index(a, "range argument") for a in args]
        start, stop, step = (0, ints[0], 1) if len(ints) == 1 else (ints + [1])[:3]
        ds = Dataset._from_core(_npyflow.range(start, stop, step))
        if np.dtype(output_type) != np.int64:
            ds = ds.map(ops.cast(output_type))
        return ds

    @staticmethod
    def counter(
        start: int = 0, step: int = 1, dtype: npt.DTypeLike = np.int64, name: Optional[str] = None
    ) -> Dataset:
        """``start, start + step, ...`` without end, as int64 scalars (or ``dtype``)."""
        ds = Dataset._from_core(_npyflow.counter(as_index(start, "start"), as_index(step, "step")))
        if np.dtype(dtype) != np.int64:
            ds = ds.map(ops.cast(dtype))
        return ds

    @staticmethod
    def random(
        seed: Optional[int] = None,
        rerandomize_each_iteration: Optional[bool] = None,
        name: Optional[str] = None,
    ) -> Dataset:
        """Random int64 scalars in ``[0, 2**32)`` without end, as tf.data's. npyflow's own
        draws, not TensorFlow's numbers: element *i* of a pass is keyed by (seed, pass, *i*),
        so an iterator's saved state restores the same numbers. ``seed=None`` draws a seed
        when the dataset is made; every pass gives the same numbers unless
        ``rerandomize_each_iteration``, as in tf.data."""
        return Dataset._from_core(_npyflow.random(as_seed(seed), bool(rerandomize_each_iteration)))

    @staticmethod
    def zip(*args: Any, datasets: Any = None, name: Optional[str] = None) -> Dataset:
        """Elements of several datasets side by side, ending with the shortest:
        ``zip(a, b)``, ``zip((a, b))``, ``zip({"x": a, "y": b})`` or nested structures."""
        if datasets is not None and args:
            raise TypeError("give the datasets either as arguments or as datasets=, not both")
        if datasets is None:
            if not args:
                raise TypeError("zip needs at least one dataset")
            datasets = args[0] if len(args) == 1 else args

        def build(s: Any) -> Dataset:
            if isinstance(s, Dataset):
                return s
            if isinstance(s, (tuple, list)):
                parts = [build(x) for x in s]
                inner = [p._struct for p in parts]
                struct: Template = None
                if is_namedtuple(s):
                    struct = ("nt", type(s), inner)
                elif any(t is not None for t in inner):
                    struct = ("tuple", inner)
                return Dataset._from_core(
                    _npyflow.zip([p._ds for p in parts]),
                    any(p._threaded for p in parts),
                    merged_options(parts),
                    struct,
                )
            if isinstance(s, dict):
                named = {k: build(v) for k, v in s.items()}
                for k in named:
                    if not isinstance(k, str):
                        raise TypeError(f"zip: dict keys must be str, got {k!r}")
                items = {k: p._struct for k, p in named.items()}
                return Dataset._from_core(
                    _npyflow.zip_dict([(k, p._ds) for k, p in named.items()]),
                    any(p._threaded for p in named.values()),
                    merged_options(list(named.values())),
                    ("dict", items) if any(t is not None for t in items.values()) else None,
                )
            raise TypeError(
                f"The argument to `Dataset.zip()` must be a (nested) structure of `Dataset` objects, got {s!r}"
            )

        return build(datasets)

    @staticmethod
    def from_generator(
        generator: Callable[..., Any],
        output_types: Any = None,
        output_shapes: Any = None,
        args: Optional[Sequence[Any]] = None,
        output_signature: ElementSpec = None,
        name: Optional[str] = None,
    ) -> Dataset:
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
            output_signature = signature_from_types(output_types, output_shapes)
        elif output_types is not None or output_shapes is not None:
            raise TypeError("give output_signature, or output_types and output_shapes, not both")
        call_args = tuple(args) if args is not None else ()
        return Dataset._from_core(
            _npyflow.from_generator(generator, call_args, output_signature, _generator_value),
            struct=template_of(output_signature),
        )

    @staticmethod
    def list_files(
        file_pattern: Union[PathLike, bytes, Iterable[Union[PathLike, bytes]]],
        shuffle: Optional[bool] = None,
        seed: Optional[int] = None,
        name: Optional[str] = None,
        storage_options: Optional[Mapping[str, str]] = None,
    ) -> Dataset:
        """The paths matching a glob pattern (or any of a list of them), as bytes scalars,
        sorted; shuffled on each pass unless ``shuffle=False``.

        A URL pattern (``s3://bucket/train/*.npy``, ``gs://``, ``az://``, ``file://``) lists
        the object store once; ``*`` does not cross ``/``, ``**`` does. ``storage_options``
        (credentials, endpoint, ...) override the environment variables the clouds' tools
        read; see ``from_npy``."""
        so = storage_options_arg(storage_options)
        shuffled = True if shuffle is None else bool(shuffle)
        given = [file_pattern] if isinstance(file_pattern, (str, bytes, os.PathLike)) else list(file_pattern)
        patterns = [os.fsdecode(p) for p in given]
        if len(patterns) == 1:
            return Dataset._from_core(_npyflow.list_files(patterns[0], shuffled, as_seed(seed), so))
        # Each pattern's matches (refused where it has none), in the order of the patterns,
        # as one list: its strings padded to one width, as a single pattern's are.
        names = [
            bytes(name)
            for p in patterns
            for name in Dataset._from_core(_npyflow.list_files(p, False, None, so)).as_numpy_iterator()
        ]
        ds = Dataset.from_tensor_slices(np.array(names, dtype=np.bytes_))
        if shuffled:
            ds = ds.shuffle(max(len(ds), 1), seed=seed)
        return ds

    @staticmethod
    def sample_from_datasets(
        datasets: Iterable[Dataset],
        weights: Union[Sequence[float], Dataset, None] = None,
        seed: Optional[int] = None,
        stop_on_empty_dataset: bool = False,
        rerandomize_each_iteration: Optional[bool] = None,
    ) -> Dataset:
        """Elements drawn at random from ``datasets``, with probabilities proportional to
        ``weights``: floats (equal when None), or a dataset of float vectors, one vector per
        element drawn. ``seed=None`` draws a seed when the dataset is made. As in tf.data,
        every pass draws the same sequence unless ``rerandomize_each_iteration``."""
        inputs = list(datasets)
        if not inputs:
            raise ValueError("Invalid `datasets`. `datasets` should not be empty.")
        require_compatible("sample_from_datasets", inputs)
        rerandomize = bool(rerandomize_each_iteration)
        if isinstance(weights, Dataset):
            return _sample_by_weight_dataset(
                inputs, weights, seed, bool(stop_on_empty_dataset), rerandomize
            )
        probabilities = None
        if weights is not None:
            given = np.asarray(weights)
            if given.dtype.kind != "f":
                raise TypeError(
                    "Invalid `weights`. `weights` type must be either float32 or float64 but "
                    f"is {given.dtype} (give them as floats, e.g. [1.0, 2.0])"
                )
            if given.ndim != 1 or len(given) != len(inputs):
                raise ValueError(
                    "Invalid `weights`. `weights` should have the same length as `datasets` "
                    f"but got `len(weights)={given.size}` vs. `len(datasets)={len(inputs)}`."
                )
            probabilities = [float(w) for w in given.astype(np.float64)]
        return Dataset._from_core(
            _npyflow.sample_from_datasets(
                [d._ds for d in inputs],
                probabilities,
                as_seed(seed),
                bool(stop_on_empty_dataset),
                rerandomize,
            ),
            any(d._threaded for d in inputs),
            merged_options(inputs),
            inputs[0]._struct,
        )

    @staticmethod
    def choose_from_datasets(
        datasets: Iterable[Dataset], choice_dataset: Dataset, stop_on_empty_dataset: bool = True
    ) -> Dataset:
        """Element *i* from ``datasets[choice_dataset[i]]`` (choices are int64 scalars)."""
        inputs = list(datasets)
        if not inputs:
            raise ValueError("Invalid `datasets`. `datasets` should not be empty.")
        if not isinstance(choice_dataset, Dataset):
            raise TypeError(
                "Invalid `choice_dataset`. `choice_dataset` should be a `Dataset` of int64 "
                f"scalars, got {type(choice_dataset).__name__}"
            )
        choice = choice_dataset.element_spec
        if not isinstance(choice, TensorSpec) or choice.dtype != np.int64 or choice.shape != ():
            raise TypeError(
                "Invalid `choice_dataset`. Elements of `choice_dataset` must be scalar int64 "
                f"tensors (tf.int64 scalars), got {choice!r}"
            )
        require_compatible("choose_from_datasets", inputs)
        return Dataset._from_core(
            _npyflow.choose_from_datasets(
                [d._ds for d in inputs], choice_dataset._ds, bool(stop_on_empty_dataset)
            ),
            any(d._threaded for d in inputs) or choice_dataset._threaded,
            merged_options(inputs),
            inputs[0]._struct if inputs else None,
        )

    @staticmethod
    def from_npy(
        path: Union[PathLike, Iterable[PathLike]],
        storage_options: Optional[Mapping[str, str]] = None,
    ) -> Dataset:
        """The rows of a ``.npy`` file, or of several read as one array, memory-mapped: no
        copy is made of data that is native-endian, C-order and aligned.

        A file truncated by another process while it is mapped does not crash Python (as a
        SIGBUS would): rows past its new end raise ``OSError`` naming the file ("the file
        was truncated while memory-mapped ..."). Rows handed out before the truncation are
        views of the map and read zeros from its lost part.

        A URL (``s3://bucket/x.npy``, ``gs://``, ``az://``, ``http(s)://``, ``file://``) is
        read by range, never downloaded whole: the header by one ranged GET now, rows by
        ranged GETs in blocks (``block_bytes``, 8 MiB) read ahead of the consumer within
        ``read_ahead_bytes`` (128 MiB: half for blocks in use, half for blocks fetched
        ahead; for ``block_shuffle``, make it hold two windows); a batch of scattered rows by few coalesced requests
        in flight together. Credentials and endpoints come from the environment
        (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
        ``AWS_ENDPOINT_URL``, ``AWS_ALLOW_HTTP``, and the GCS and Azure equivalents);
        ``storage_options`` overrides them by the same names in lower case
        (``{"aws_endpoint_url": ..., "allow_http": "true"}``) and sets ``max_retries`` (10),
        ``retry_timeout`` (120 s), ``max_in_flight`` (16), ``timeout``, and ``cache_dir``
        with ``cache_max_bytes`` (10 GiB): a local directory through which every range read
        goes (a batch's few rows of a block it does not hold are read as that whole block),
        so that later epochs, datasets and processes sharing it read from disk and make no
        data request; each pass checks the object's ETag by one HEAD, and a replaced object
        raises ``OSError`` instead of being served from its old copies. The directory's files
        never exceed ``cache_max_bytes`` (least recently used out first, across processes),
        are written by rename and checked by length and CRC-32 on every read (a damaged one is
        read again from the store). tf.data has no such cache for remote files; its
        ``cache()`` keeps a pipeline's elements, this keeps bytes of objects. Credentials
        never appear in messages. A row that cannot be read after the retries raises ``OSError``
        at its element, naming the URL and byte range; an object replaced while it is read
        is an error, never a mix of two versions."""
        paths = [path] if isinstance(path, (str, bytes, os.PathLike)) else list(path)
        return Dataset._from_core(
            _npyflow.from_npy([as_path(p) for p in paths], storage_options_arg(storage_options))
        )

    @staticmethod
    def from_npz(
        path: PathLike,
        keys: Optional[Union[str, Iterable[str]]] = None,
        storage_options: Optional[Mapping[str, str]] = None,
    ) -> Dataset:
        """The rows of members of an ``.npz`` archive as dicts keyed by member name (every
        member, in archive order, when ``keys`` is None).

        A URL is read by range: the directory and headers from the archive's end, each
        stored member by one ranged GET, each deflated member streamed through the
        inflater (``storage_options`` as for ``from_npy``)."""
        if isinstance(keys, str):
            keys = [keys]
        return Dataset._from_core(
            _npyflow.from_npz(
                as_path(path), None if keys is None else list(keys), storage_options_arg(storage_options)
            )
        )

    @staticmethod
    def from_npy_patches(
        path: PathLike,
        size: Union[int, Sequence[int]],
        strides: Optional[Union[int, Sequence[int]]] = None,
        num_parallel_reads: Optional[int] = None,
    ) -> Dataset:
        """Patches of one large ``.npy`` array: the windows of ``size`` over its leading axes
        on a grid of ``strides`` (``size`` itself when None; one int steps every windowed
        axis alike), in C order of their positions.
        A cube ``(H, W, bands)`` with ``size=(h, w)`` gives patches ``(h, w, bands)``; windows
        that would cross the array's end are left out (tf's ``padding="VALID"``).

        Patch *i* equals ``cube[r:r + h, c:c + w]`` for the *i*-th grid position ``(r, c)``
        (``r`` in ``range(0, H - h + 1, sh)``, ``c`` the faster). The file is memory-mapped
        and patches are copied from the map when read, so memory does not grow with the
        array; a ``batch`` right after (or after ``global_shuffle``) copies its patches
        straight into the batch, with ``num_parallel_reads`` threads (``AUTOTUNE``: one per
        core; None: one). The dataset is random-access: ``global_shuffle``, ``get``,
        ``shard`` and small iterator states work as for ``from_npy``.

        tf.data has no counterpart. ``tf.image.extract_patches`` takes images already in
        memory (4-D, windows over two axes) and returns every patch at once, each flattened
        into the depth axis, so its output is the image times the overlap; it has dilation
        (``rates``) and ``padding="SAME"``, which this does not."""
        sizes = [size] if isinstance(size, int) else list(size)
        steps = None if strides is None else ([strides] * len(sizes) if isinstance(strides, int) else list(strides))
        return Dataset._from_core(
            _npyflow.from_npy_patches(as_path(path), sizes, steps, num_parallel_reads)
        )

    # ---- what a dataset is ---------------------------------------------------------

    @property
    def element_spec(self) -> ElementSpec:
        """The structure, dtypes and shapes of the elements: TensorSpecs in tuples (and the
        namedtuples the elements were made of) and dicts."""
        return repack(self._ds.element_spec, self._struct)

    def cardinality(self) -> Any:
        """The number of elements; ``INFINITE_CARDINALITY`` (-1) or ``UNKNOWN_CARDINALITY``
        (-2) where tf.data says so. An ``np.int64`` (a subclass of it with tf's
        ``.numpy()``, so ``ds.cardinality().numpy()`` works)."""
        return wrap(np.int64(self._ds.cardinality()))

    def __len__(self) -> int:
        n = self._ds.cardinality()
        if n == INFINITE_CARDINALITY:
            raise TypeError("The dataset is infinite.")
        if n == UNKNOWN_CARDINALITY:
            raise TypeError("The dataset length is unknown.")
        return n

    def __bool__(self) -> bool:
        return True

    def __iter__(self) -> _npyflow.DatasetIterator:
        """A new pass, yielding ``npyflow.Tensor`` arrays (zero-copy views: NumPy arrays that
        also have tf's ``.numpy()``) and, for 0-d tensors, NumPy scalars with ``.numpy()``,
        in the element's tuples and dicts."""
        it = self._ds.iter(self._threaded, True)
        return it if self._struct is None else Repacking(it, self._struct)  # type: ignore[return-value]

    def as_numpy_iterator(self) -> _npyflow.DatasetIterator:
        """A new pass yielding plain NumPy values (arrays, and NumPy scalars for 0-d
        tensors)."""
        it = self._ds.iter(self._threaded)
        return it if self._struct is None else Repacking(it, self._struct)  # type: ignore[return-value]

    # ---- into the training frameworks ----------------------------------------------

    def to_keras(self) -> Any:
        """The dataset as a ``keras.utils.PyDataset`` (the type Keras 3 documents for custom
        data), for ``model.fit(ds.to_keras(), validation_data=val.to_keras(), epochs=...)``
        with the JAX, TensorFlow or torch backend. Elements must be what Keras takes: a
        tuple ``(inputs, targets)`` or ``(inputs, targets, sample_weights)``, or a dict.

        Steps per epoch come from ``cardinality()`` (an unknown one raises ValueError: use
        ``assert_cardinality``, or ``repeat()`` and ``fit(steps_per_epoch=...)``); each epoch
        is a new pass, so ``global_shuffle``/``shuffle`` give a new order each epoch. Keras's
        ``shuffle=True`` shuffles the indices it asks for: npyflow's order is the
        pipeline's, and the index is not used. ``get_state()``/``set_state()`` save and
        restore the pass in progress. Imports keras when called (npyflow does not depend on
        it).

        >>> import os; os.environ.setdefault("KERAS_BACKEND", "jax")  # doctest: +SKIP
        >>> import keras, numpy as np, npyflow
        >>> x = np.random.rand(64, 3).astype("float32"); y = x.sum(axis=1, keepdims=True)
        >>> train = npyflow.Dataset.from_tensor_slices((x, y)).global_shuffle(seed=0).batch(16)
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        >>> model.compile("sgd", "mse")
        >>> history = model.fit(train.to_keras(), validation_data=train.to_keras(), epochs=2, verbose=0)
        >>> sorted(history.history)
        ['loss', 'val_loss']
        """
        from ._frameworks import to_keras

        return to_keras(self)

    def to_torch(self, device: Any = None, prefetch: int = 2) -> Any:
        """The dataset as a ``torch.utils.data.IterableDataset`` of torch tensors that share
        npyflow's memory (no copy on the CPU; 0-d elements become 0-d tensors, strings stay
        NumPy), in the element's tuples and dicts. Iterate it directly, or give it to
        ``DataLoader(ds.to_torch(), batch_size=None, pin_memory=...)`` with
        ``num_workers=0``: npyflow's own threads do the work (set ``num_parallel_calls``),
        so no worker process holds a copy of the pipeline; more than one worker raises
        RuntimeError, as each would give every element again.

        ``device="cuda"`` (or ``"cuda:1"``) gives tensors on that GPU, copied from pinned
        staging buffers on a side stream ``prefetch`` batches ahead (``"cuda"`` alone is
        torchrun's ``LOCAL_RANK`` GPU when set); without CUDA it raises RuntimeError.
        ``get_state()``/``set_state()`` (and torch's ``state_dict()``/``load_state_dict()``)
        save and restore the pass in progress. Imports torch when called.

        >>> import numpy as np, npyflow, torch  # doctest: +SKIP
        >>> ds = npyflow.Dataset.from_tensor_slices(np.arange(6.0)).batch(4)  # doctest: +SKIP
        >>> loader = torch.utils.data.DataLoader(ds.to_torch(), batch_size=None)  # doctest: +SKIP
        >>> [t.tolist() for t in loader]  # doctest: +SKIP
        [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0]]
        """
        from ._frameworks import to_torch

        return to_torch(self, device, as_index(prefetch, "prefetch"))

    def to_jax(self, sharding: Any = None, prefetch: int = 2) -> Any:
        """An iterable of the dataset's elements as JAX arrays: on the default device, or,
        given a ``jax.sharding.Sharding``, global arrays made from this process's batches
        (``jax.make_array_from_process_local_data``: each process passes its part, as
        ``distributed_batch`` gives it). ``prefetch`` batches are sent to the devices ahead
        of the one handed out. Each ``iter()`` is a pass; strings stay NumPy.
        ``get_state()``/``set_state()`` save and restore the pass in progress (after the
        batches read ahead). Imports jax when called.

        >>> import numpy as np, npyflow
        >>> ds = npyflow.Dataset.from_tensor_slices(np.arange(6.0, dtype=np.float32)).batch(4)
        >>> [type(b).__name__ for b in ds.to_jax()]  # doctest: +SKIP
        ['ArrayImpl', 'ArrayImpl']
        >>> [b.tolist() for b in ds.to_jax()]
        [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0]]
        """
        from ._frameworks import to_jax

        return to_jax(self, sharding, as_index(prefetch, "prefetch"))

    def __repr__(self) -> str:
        return f"<{self._ds.name}Dataset element_spec={self.element_spec!r}>"

    def apply(self, transformation_func: Callable[[Dataset], Dataset]) -> Dataset:
        """``transformation_func(self)``, to keep a chain reading left to right."""
        out = transformation_func(self)
        if not isinstance(out, Dataset):
            raise TypeError(f"`transformation_func` must return a Dataset, got {type(out).__name__}")
        return out

    def save(
        self,
        path: PathLike,
        compression: Optional[str] = None,
        shard_func: Optional[Callable[..., Any]] = None,
        checkpoint_args: Optional[Any] = None,
        *,
        part: Optional[int] = None,
        num_parts: Optional[int] = None,
        save_id: Optional[str] = None,
        max_shard_bytes: Optional[int] = None,
        storage_options: Optional[Mapping[str, str]] = None,
    ) -> bool:
        """tf.data's ``save``: writes the elements to the directory ``path`` as sharded
        ``.npy`` files (one per component per shard) and a small index (``index.json``: the
        element spec, the shards' sizes and checksums), for ``Dataset.load``. ``path`` may be
        a URL (``s3://bucket/prefix``, ``gs://``, ``az://``, ``file://``; ``storage_options``
        as for ``from_npy``): each shard is then held in memory until it is put whole, so
        ``max_shard_bytes`` bounds that memory.

        Atomic: the index is replaced in one step once every file is written, so a save
        that fails or is killed midway leaves the dataset that was there before (or
        nothing). Several processes can save parts of one dataset: each passes its
        ``part`` (0 to ``num_parts - 1``) and the same ``num_parts`` and ``save_id``, and the
        dataset appears when the last part is written, parts in order. Returns whether the
        saved dataset is now visible (always, without parts).

        ``shard_func(element) -> int`` chooses each element's shard, as in tf.data; shards
        are read back in the order of their numbers. Without it, shards are cut every
        ``max_shard_bytes`` (1 GiB) in order, so a load gives the saved order (tf.data's load
        interleaves shards). A shard holds rows of one shape per component (each is one
        ``.npy`` array), so an element of another shape (a short last batch) starts a new
        shard.

        Where this differs from tf.data: the files are NumPy's ``.npy`` (not TensorFlow's
        snapshot format), so any tool reads them and ``load`` maps them; they are not
        compressed (``compression`` other than None is refused: a compressed shard could not
        be mapped); there is no ``checkpoint_args`` (a killed save restarts; parts are the
        unit of work to redo)."""
        if compression not in (None, ""):
            raise ValueError(
                f"save: compression={compression!r} is not supported: shards are plain .npy "
                "files so that load can memory-map them; use compression=None"
            )
        if checkpoint_args is not None:
            raise ValueError(
                "save: checkpoint_args is not supported: an interrupted save leaves the "
                "previous dataset and starts again; split a long save into parts "
                "(part=, num_parts=, save_id=) to redo only the part that failed"
            )
        func = None
        if shard_func is not None:
            user = shard_func

            def func(element: Any) -> int:
                out = user(*element) if isinstance(element, tuple) else user(element)
                return int(np.asarray(out))

        _, _, complete = _npyflow.save_dataset(
            self._ds,
            as_path(path),
            func,
            part,
            num_parts,
            save_id,
            max_shard_bytes,
            storage_options_arg(storage_options),
        )
        return complete

    @staticmethod
    def load(
        path: PathLike,
        element_spec: Optional[Any] = None,
        compression: Optional[str] = None,
        reader_func: Optional[Callable[..., Any]] = None,
        *,
        verify: bool = True,
        storage_options: Optional[Mapping[str, str]] = None,
    ) -> Dataset:
        """tf.data's ``load``: the dataset ``save`` wrote at ``path``, random-access over its
        memory-mapped shard files (``global_shuffle``, ``shard``, small iterator states work
        as for ``from_npy``), elements in the saved order, shard by shard.

        Every shard file's size and CRC-32 are checked against the index first (``verify``);
        a file that differs raises ``ValueError`` naming it. ``element_spec``, when given,
        must equal the saved one. No save at ``path`` raises ``FileNotFoundError``. Unlike
        tf.data there is no ``reader_func`` (the dataset is random-access: shuffle or
        interleave it with the usual transformations) and no ``compression``. From a URL
        (``storage_options`` as for ``from_npy``) rows are read by range, and the shards of
        each component must share one row shape."""
        if compression not in (None, ""):
            raise ValueError(f"load: compression={compression!r} is not supported: saved shards are plain .npy files")
        if reader_func is not None:
            raise ValueError(
                "load: reader_func is not supported: a loaded dataset is random-access; apply "
                "global_shuffle, shard or interleave to it instead"
            )
        return Dataset._from_core(
            _npyflow.load_dataset(as_path(path), element_spec, verify, storage_options_arg(storage_options))
        )

    def get_single_element(self, name: Optional[str] = None) -> Any:
        """The dataset's one element (as iteration yields it). A dataset with no element or
        more than one raises ValueError with tf.data's message ("Dataset was empty." /
        "Dataset had more than one element."), where tf.data raises InvalidArgumentError;
        npyflow reads at most two elements to tell."""
        it = iter(self)
        try:
            element = next(it)
        except StopIteration:
            raise ValueError("Dataset was empty.") from None
        for _ in it:
            raise ValueError("Dataset had more than one element.")
        return element

    def options(self) -> Options:
        """The ``Options`` set on this dataset and the datasets it was made from (merged as
        tf.data merges them: later ``with_options`` win; a ``zip`` or ``concatenate`` merges
        its inputs' in order). A fresh ``Options()`` when none were set. As in tf.data, the
        object returned cannot be changed (ValueError): give changes to ``with_options``."""
        options = Options().merge(self._options)
        options._freeze()
        return options

    def with_options(self, options: Options, name: Optional[str] = None) -> Dataset:
        """This dataset with ``options`` merged into its options (see ``Options`` for those
        npyflow honours: ``deterministic``, for the parallel stages built after this call,
        and ``autotune.enabled``/``cpu_budget``/``ram_budget`` and
        ``experimental_optimization.map_parallelization``, for the whole pipeline; the
        others are kept and ignored, with one warning per process for each)."""
        if not isinstance(options, Options):
            raise TypeError(f"options must be a npyflow.data.Options, got {type(options).__name__}")
        warn_ignored(options)
        core = self._ds
        autotune = options.autotune
        if (autotune.enabled, autotune.cpu_budget, autotune.ram_budget) != (None, None, None):
            # The core merges the autotune options of the whole pipeline at iteration, later
            # on top, as tf.data does.
            core = core.with_autotune(autotune.enabled, autotune.cpu_budget, autotune.ram_budget)
        map_parallelization = options.experimental_optimization.map_parallelization
        if map_parallelization is not None:
            core = core.with_map_parallelization(map_parallelization)
        return Dataset._from_core(core, self._threaded, self.options().merge(options), self._struct)

    def reduce(self, initial_state: Any, reduce_func: Callable[[Any, Any], Any]) -> Any:
        """Every element folded into a state: ``reduce_func(state, element)`` returns the new
        state. The result is NumPy values with tf's ``.numpy()`` (as iteration's are)."""
        if self._struct is not None:
            element = self._struct
            inner = reduce_func
            reduce_func = lambda state, e: inner(state, repack(e, element))  # noqa: E731
        return wrap(self._ds.reduce(initial_state, reduce_func))


def _is_dataset_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(isinstance(v, Dataset) for v in value)


def _holds_dataset_list(value: Any) -> bool:
    """Whether a structure given to ``from_tensor_slices`` has a list of datasets in it."""
    if _is_dataset_list(value):
        return True
    if isinstance(value, tuple):
        return any(_holds_dataset_list(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_dataset_list(v) for v in value.values())
    return False


def _slices_with_datasets(value: Any) -> Dataset:
    """``from_tensor_slices`` of a structure holding lists of datasets: each part sliced on
    its own (a list of datasets gives one dataset per element), zipped back together; the
    parts must have as many elements as each other, as tf.data requires."""
    sizes = set()

    def build(v: Any) -> Any:
        if _is_dataset_list(v):
            sizes.add(len(v))
            return Dataset._from_core(_npyflow.from_tensors(v)).unbatch()
        if isinstance(v, tuple):
            return tuple(build(x) for x in v)
        if isinstance(v, dict):
            return {k: build(x) for k, x in v.items()}
        d = Dataset.from_tensor_slices(v)
        sizes.add(len(d))
        return d

    structure = build(value)
    if len(sizes) > 1:
        raise ValueError(
            "all components must have the same size in their first dimension, got "
            f"{sorted(sizes)}"
        )
    return Dataset.zip(structure)


def _sample_by_weight_dataset(
    inputs: List[Dataset], weights: Dataset, seed: Optional[int], stop: bool, rerandomize: bool
) -> Dataset:
    """``sample_from_datasets`` with weights from a dataset, as tf.data makes it: element
    *i* of ``weights`` (a float vector, one weight per input) and a random draw choose the
    input of element *i* (``choose_from_datasets``); it ends with ``weights``."""
    spec = weights.element_spec
    n = len(inputs)
    if not isinstance(spec, TensorSpec) or spec.dtype.kind != "f":
        raise TypeError(
            "Invalid `weights`. A `weights` dataset must have float32 or float64 vectors as "
            f"elements, got {spec!r}"
        )
    if spec.shape is not None and (len(spec.shape) != 1 or spec.shape[0] not in (None, n)):
        raise ValueError(
            f"Invalid `weights`. The vectors of a `weights` dataset must have one weight per "
            f"dataset ({n}), got elements of shape {spec.shape}"
        )

    def choose(w: Any, draw: Any) -> Any:
        cumulative = np.cumsum(np.asarray(w, dtype=np.float64))
        if cumulative.shape != (n,) or not np.isfinite(cumulative[-1]) or cumulative[-1] <= 0:
            raise ValueError(
                f"sample_from_datasets: each weights vector must hold {n} non-negative "
                f"weights with a positive sum, got {np.asarray(w)!r}"
            )
        u = float(draw) / 2.0**32 * cumulative[-1]
        return np.int64(min(int(np.searchsorted(cumulative, u, side="right")), n - 1))

    draws = Dataset.random(seed, rerandomize_each_iteration=rerandomize)
    choice = Dataset.zip((weights, draws)).map(
        choose, output_signature=TensorSpec((), np.int64)
    )
    return Dataset.choose_from_datasets(inputs, choice, stop_on_empty_dataset=stop)


def merged_options(datasets: Sequence[Dataset]) -> Optional[Options]:
    """The options of a dataset made from ``datasets``: theirs, merged in order."""
    out: Optional[Options] = None
    for d in datasets:
        if d._options is not None:
            out = d._options if out is None else out.merge(d._options)
    return out


# ---- values the native module hands back to be converted ---------------------------


def _to_array(value: Any) -> np.ndarray[Any, Any]:
    """A leaf of an element as an array, with tf's conversion rules for Python values."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        if isinstance(value, (np.bytes_, np.str_)):
            # A string as an element gave it: at the element's width (see _tensor.py).
            dtype = getattr(value, "_npyflow_dtype", None)
            if dtype is not None:
                return np.asarray(value, dtype=dtype)
        return np.asarray(value)
    if isinstance(value, Dataset):
        raise TypeError("a Dataset cannot be a tensor here")
    arr = np.asarray(value)
    if arr.dtype == object:
        raise TypeError(
            f"cannot convert {type(value).__name__} {value!r:.80} to a tensor: it is not a "
            "number, a string, or a rectangular sequence of them"
        )
    return with_tf_dtype(value, arr)


def _native_copy(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """One copy of ``arr`` in C order and the machine's byte order."""
    return np.array(arr, dtype=arr.dtype.newbyteorder("="), order="C", copy=True)


def _generator_value(value: Any, signature: ElementSpec) -> Any:
    """A value a generator yielded, checked against ``output_signature`` and cast to its
    dtypes, as tf.data's ``from_generator`` does. Arrays the generator could still change
    are copied."""
    if isinstance(signature, TensorSpec):
        try:
            if signature.dtype.kind == "S" and isinstance(value, str):
                value = value.encode("utf-8")
            elif signature.dtype.kind == "S" and isinstance(value, (list, tuple)):
                given = np.asarray(value)
                if given.dtype.kind == "U":  # str values, as UTF-8 bytes (tf.string's)
                    value = np.char.encode(given, "utf-8")
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


def _record_calls(cls: type) -> None:
    """Makes every public source and transformation of ``cls`` (each method annotated to
    return a ``Dataset``) record on its result the call that made it: its name and
    arguments, the datasets it was made from among them. ``snapshot`` digests these records
    (``_fingerprint``). The outermost call is recorded: a source built from other calls
    (``range`` with ``output_type`` maps a cast) is recorded as the user wrote it."""
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        kind = type(attr) if isinstance(attr, (staticmethod, classmethod)) else None
        fn = attr.__func__ if kind is not None else attr
        if not inspect.isfunction(fn) or fn.__annotations__.get("return") != "Dataset":
            continue
        recorded = _recording(name, fn)
        setattr(cls, name, kind(recorded) if kind is not None else recorded)


def _recording(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        # A call that gives back one of its arguments (``from_tensor_slices`` of a dataset
        # of datasets) made nothing new: that dataset keeps its own record.
        if isinstance(out, Dataset) and not any(out is a for a in (*args, *kwargs.values())):
            out._recipe = (name, args, kwargs)
        return out

    return call


_record_calls(Dataset)
_npyflow._register(TensorSpec, DatasetSpec, Dataset, _to_array, _native_copy, np.bool_)
# npyflow's threads that end while Python shuts down must not wait for the GIL.
atexit.register(_npyflow._shutting_down)
