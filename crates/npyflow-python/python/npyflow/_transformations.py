"""tf.data's transformations: the methods of ``npyflow.Dataset`` that make a new dataset
from one. Each normalizes tf.data's arguments and calls the native dataset, which checks
them and builds the core's pipeline."""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence, Union, cast

import numpy as np

from . import _trace, ops
from ._args import (
    PathLike,
    as_index,
    as_path,
    as_seed,
    check_parallel_calls,
    require_compatible,
)
from ._constants import UNKNOWN_CARDINALITY
from ._specs import ElementSpec, TensorSpec, padding
from ._structure import Capture, Template, repack, template_of, with_inputs

if TYPE_CHECKING:
    from ._dataset import Dataset
    from ._fingerprint import Recipe
    from ._npyflow import CoreDataset
    from ._options import Options


def _write_once(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` unless the file is there: under a temporary name, renamed
    when written, so that processes racing to write it leave one whole file."""
    if os.path.exists(path):
        return
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".recipe-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _struct_of_dataset(value: Any) -> Template:
    """The namedtuple template of the dataset a function returned (flat_map, interleave)."""
    return getattr(value, "_struct", None)


def _struct_of_output(value: Any) -> Template:
    """The template of the output element in what a scan function returned."""
    if isinstance(value, tuple) and len(value) == 2:
        return template_of(value[1])
    return None


def _fits(signature: Any, spec: Any) -> bool:
    """Whether a traced output spec agrees with a declared ``output_signature`` (the same
    structure and dtypes, shapes compatible)."""
    if isinstance(signature, (tuple, list)):
        return (
            isinstance(spec, tuple)
            and len(spec) == len(signature)
            and all(_fits(a, b) for a, b in zip(signature, spec))
        )
    if isinstance(signature, dict):
        return (
            isinstance(spec, dict)
            and spec.keys() == signature.keys()
            and all(_fits(signature[k], spec[k]) for k in signature)
        )
    return (
        hasattr(signature, "is_compatible_with")
        and getattr(signature, "dtype", None) == getattr(spec, "dtype", object())
        and bool(signature.is_compatible_with(spec))
    )


class DatasetTransformations:
    """The transformations of :class:`npyflow.Dataset` (a base class of it, not used
    alone)."""

    __slots__ = ()

    if TYPE_CHECKING:
        _ds: CoreDataset
        _threaded: bool
        _options: Optional[Options]
        _struct: Template
        _recipe: Optional[Recipe]

        @property
        def element_spec(self) -> ElementSpec: ...

        def _derive(
            self, core: CoreDataset, threaded: bool = False, struct: Any = "same"
        ) -> Dataset: ...

        def _deterministic(self, deterministic: Optional[bool]) -> Optional[bool]: ...

        def with_options(self, options: Options, name: Optional[str] = None) -> Dataset: ...

    def map(
        self,
        map_func: Union[Callable[..., Any], ops.Op],
        num_parallel_calls: Optional[int] = None,
        deterministic: Optional[bool] = None,
        synchronous: Optional[bool] = None,
        use_unbounded_threadpool: bool = False,
        name: Optional[str] = None,
        *,
        output_signature: ElementSpec = None,
        trace: bool = True,
    ) -> Dataset:
        """``map_func`` applied to every element. A tuple element's parts are its positional
        arguments; tensors arrive as NumPy arrays (0-d arrays for scalars). A 0-d string
        arrives as iteration yields it: ``bytes`` (``str`` for a unicode dtype) with
        ``.numpy()``, so ``s.decode()`` works, where tf.data passes a symbolic string tensor
        that only ``tf.strings`` reads. A list returned is taken as a tuple, as in tf.data.
        ``map_func`` may also be an op of ``npyflow.ops``, which runs in Rust without the GIL.

        **Tracing.** As tf.data does, ``map`` first traces ``map_func``: it calls it once, when
        the dataset is made, on traced values that carry the element's dtypes and shapes and
        record what is done to them. When the function uses only what npyflow reproduces
        exactly (NumPy's operators and comparisons with scalars and broadcast arrays,
        ``astype``, basic indexing and slicing with steps, ``reshape``, ``transpose``, flips,
        ``clip``, ``where``, ``minimum``/``maximum``, ``abs``, ``sqrt``, ``floor``/``ceil``/
        ``rint``, integer sums and products, ``max``/``min``/``any``/``all`` over axes,
        ``concatenate``/``stack``, tuple and dict outputs, and the tf names built on them), it
        becomes a native op graph that runs on the pipeline's threads without the GIL and
        fuses with a following ``batch``; the dataset's repr and the stats then name the stage
        ``TracedMap``. The results are NumPy 2's own, bit for bit: its dtype promotion (NEP 50
        for Python scalars), integer wrap-around, division by zero, NaN (a NaN made from two
        NaNs may carry either one's sign: Rust and C leave that to the compiler). Anything else (an
        ``if`` on a value, ``np.random``, ``time``, files, functions NumPy computes with its
        own SIMD code such as ``exp``/``log``/``tanh``, float ``sum``/``mean``, in-place
        writes, advanced indexing) makes the function run per element, as ``trace=False``
        asks. Python side effects of a traced function (appending to a list, printing,
        counting calls) happen once, while tracing, and never per element, as in tf.data; pass
        ``trace=False`` for a function whose side effects must run per element.

        **Output spec.** A traced function's output spec comes from its trace. Otherwise it
        comes from ``output_signature`` (TensorSpecs, as for ``from_generator``), or from
        calling ``map_func`` on the first element of the input when the dataset is made (one
        call on a real element; its dimensions are unknown where the input's are). Nothing is
        ever called on made-up values.

        With ``num_parallel_calls`` (a positive int or ``AUTOTUNE``) elements are mapped on
        that many threads; with ``deterministic`` (the default) the output is the same as on
        one thread. ``deterministic=None`` takes the dataset's ``Options().deterministic``
        (``with_options``) where one was set before this call, as ``interleave`` and
        ``batch`` do. Traced functions and ops use every thread fully. An untraced Python
        function holds the GIL while it runs, so threads gain only where it releases the GIL
        (NumPy's larger operations, I/O). With ``AUTOTUNE``, npyflow measures it: it calls
        the function one element at a time for its first half second, timing the calls,
        then by every thread for a short window, and lets every thread call at once only
        where that was at least 15% faster (measuring again every 4096 calls or 2 seconds;
        a pass shorter than half a second calls it one at a time throughout; a trace from ``npyflow.profile`` shows the threads it lets
        run in the map's counters). The threads held back wait before they take an
        element, so the one that calls goes on from element to element without handing the
        GIL over, and a GIL-bound function runs at one thread's speed. tf.data runs such
        functions (``tf.py_function``) on every thread AUTOTUNE gives the stage.

        ``synchronous`` and ``use_unbounded_threadpool`` are taken as tf.data takes them and
        change nothing: npyflow never parallelizes a map that did not ask for it (so every
        map without ``num_parallel_calls`` is synchronous), and its threads are its own.
        As in tf.data, ``synchronous=True`` with ``num_parallel_calls`` is a ValueError.
        """
        check_parallel_calls(num_parallel_calls)
        if synchronous and num_parallel_calls is not None:
            raise ValueError(
                "map: `synchronous` is not supported with `num_parallel_calls`, but "
                f"`num_parallel_calls` was set to {num_parallel_calls!r}"
            )
        deterministic = self._deterministic(deterministic)
        threaded = num_parallel_calls is not None
        if isinstance(map_func, ops.Op):
            if output_signature is not None:
                raise TypeError("output_signature is for Python functions, not ops")
            op_map = self._ds.map_ops([map_func._spec()], num_parallel_calls, deterministic)
            return self._derive(op_map, threaded)
        if not callable(map_func):
            raise TypeError(f"map_func must be callable, got {map_func!r}")
        if trace and self._struct is None:
            # Elements rebuilt as namedtuples are given to the function itself (not traced).
            seen: Dict[str, Template] = {}
            traced = _trace.trace(
                map_func, self.element_spec, on_result=lambda r: seen.update(t=template_of(r))
            )
            if traced is not None:
                core: Optional[CoreDataset]
                try:
                    core = self._ds.map_graph(
                        traced[0], traced[1], map_func, num_parallel_calls, deterministic
                    )
                except (ValueError, TypeError):
                    core = None  # a graph the core does not take: the function runs instead
                if core is not None and (
                    output_signature is None or _fits(output_signature, core.element_spec)
                ):
                    struct = (
                        template_of(output_signature)
                        if output_signature is not None
                        else seen.get("t")
                    )
                    return self._derive(core, threaded, struct)
        capture = Capture(with_inputs(map_func, self._struct))
        core_map = self._ds.map(capture, output_signature, num_parallel_calls, deterministic)
        struct = template_of(output_signature) if output_signature is not None else capture.done()
        capture.done()
        return self._derive(core_map, threaded, struct)

    def filter(
        self, predicate: Callable[..., Any], name: Optional[str] = None, *, trace: bool = True
    ) -> Dataset:
        """The elements for which ``predicate`` returns True (a bool scalar). Traced as
        ``map``'s functions are (``trace=False`` to call it on each element instead)."""
        if trace and callable(predicate) and self._struct is None:
            traced = _trace.trace(predicate, self.element_spec)
            if traced is not None:
                try:
                    return self._derive(self._ds.filter_graph(traced[0], traced[1], predicate))
                except (ValueError, TypeError):
                    pass
        return self._derive(self._ds.filter(with_inputs(predicate, self._struct)))

    def flat_map(self, map_func: Callable[..., Dataset], name: Optional[str] = None) -> Dataset:
        """The elements of the datasets ``map_func`` returns for each element, in order.
        The output's structure is that of the dataset made for the first element (its
        strings of any width): building the dataset calls ``map_func`` on that element, never
        on made-up values, as ``map`` does."""
        capture = Capture(with_inputs(map_func, self._struct), _struct_of_dataset)
        core = self._ds.flat_map(capture)
        return self._derive(core, struct=capture.done())

    def interleave(
        self,
        map_func: Callable[..., Dataset],
        cycle_length: Optional[int] = None,
        block_length: Optional[int] = None,
        num_parallel_calls: Optional[int] = None,
        deterministic: Optional[bool] = None,
        name: Optional[str] = None,
    ) -> Dataset:
        """The datasets ``map_func`` returns, ``cycle_length`` at a time, ``block_length``
        elements from each in turn. ``cycle_length`` None or AUTOTUNE is tf.data's: the number
        of CPUs, ``min(num_parallel_calls, CPUs)`` with a number of parallel calls, a third of
        the CPUs (rounded up) with ``num_parallel_calls=AUTOTUNE``. The output's structure
        comes from the dataset made for the first element, as in ``flat_map``."""
        check_parallel_calls(num_parallel_calls)
        deterministic = self._deterministic(deterministic)
        cycle = None if cycle_length is None else as_index(cycle_length, "cycle_length")
        block = None if block_length is None else as_index(block_length, "block_length")
        capture = Capture(with_inputs(map_func, self._struct), _struct_of_dataset)
        core = self._ds.interleave(capture, cycle, block, num_parallel_calls, deterministic)
        return self._derive(core, num_parallel_calls is not None, capture.done())

    def batch(
        self,
        batch_size: int,
        drop_remainder: bool = False,
        num_parallel_calls: Optional[int] = None,
        deterministic: Optional[bool] = None,
        name: Optional[str] = None,
    ) -> Dataset:
        """``batch_size`` consecutive elements stacked on a new first axis; the last batch is
        smaller unless ``drop_remainder``."""
        check_parallel_calls(num_parallel_calls)
        deterministic = self._deterministic(deterministic)
        return self._derive(
            self._ds.batch(
                as_index(batch_size, "batch_size"),
                bool(drop_remainder),
                num_parallel_calls,
                deterministic,
            ),
            num_parallel_calls is not None,
        )

    def padded_batch(
        self,
        batch_size: int,
        padded_shapes: Any = None,
        padding_values: Any = None,
        drop_remainder: bool = False,
        name: Optional[str] = None,
    ) -> Dataset:
        """Like ``batch``, each tensor first padded at the end of its axes: to
        ``padded_shapes`` (None or -1 dimensions: to the longest in the batch), with
        ``padding_values`` (zeros and empty strings by default). Both mirror the element's
        structure; one padding value may be given for every tensor."""
        shapes, values = padding(self.element_spec, padded_shapes, padding_values)
        return self._derive(
            self._ds.padded_batch(as_index(batch_size, "batch_size"), shapes, values, bool(drop_remainder))
        )

    def ragged_batch(
        self,
        batch_size: int,
        drop_remainder: bool = False,
        row_splits_dtype: Any = None,
        name: Optional[str] = None,
    ) -> Dataset:
        """``batch_size`` consecutive elements of different lengths in one batch. npyflow has
        no ragged tensors: this is ``padded_batch(batch_size, drop_remainder=...)``, each
        tensor padded with zeros (empty strings) at the end of its axes to the longest in its
        batch, where tf.data gives a ``tf.RaggedTensor``. Keep the lengths in the element
        (``map`` them to a ``(x, len(x))`` pair first) to recover the rows.
        ``row_splits_dtype`` is accepted and ignored."""
        return self.padded_batch(batch_size, drop_remainder=drop_remainder)

    def unbatch(self, name: Optional[str] = None) -> Dataset:
        """Each element split along its first axis into rows (which share its memory)."""
        return self._derive(self._ds.unbatch())

    def rebatch(
        self,
        batch_size: Union[int, Sequence[int]],
        drop_remainder: bool = False,
        name: Optional[str] = None,
    ) -> Dataset:
        """The rows of a batched dataset regrouped into batches of ``batch_size`` (an int, or
        a list of sizes used in turn)."""
        sizes = [batch_size] if isinstance(batch_size, (int, np.integer)) else list(batch_size)
        return self._derive(self._ds.rebatch([as_index(s, "batch_size") for s in sizes], bool(drop_remainder)))

    def shuffle(
        self,
        buffer_size: int,
        seed: Optional[int] = None,
        reshuffle_each_iteration: Optional[bool] = None,
        name: Optional[str] = None,
    ) -> Dataset:
        """Elements drawn at random from a buffer of the next ``buffer_size``; a new order on
        each pass unless ``reshuffle_each_iteration=False``. ``buffer_size`` may be
        ``UNKNOWN_CARDINALITY`` (-2), as in tf.data: a buffer as large as the input, so each
        pass reads the whole input before its first element (and holds it all in memory)."""
        reshuffle = True if reshuffle_each_iteration is None else bool(reshuffle_each_iteration)
        size = as_index(buffer_size, "buffer_size")
        if size == UNKNOWN_CARDINALITY:
            size = 2**63 - 1  # the buffer is allocated as it fills
        elif size <= 0:
            raise ValueError(
                "shuffle: buffer_size must be greater than zero or UNKNOWN_CARDINALITY (-2, "
                f"a buffer as large as the input), got {size}"
            )
        return self._derive(self._ds.shuffle(size, as_seed(seed), reshuffle))

    def global_shuffle(self, seed: Optional[int] = None, reshuffle_each_iteration: bool = True) -> Dataset:
        """A uniform shuffle of a random-access dataset (array slices, ``.npy`` rows, and maps,
        takes, shards and zips of them) with no buffer: a seeded permutation of the indices,
        a new one each pass unless ``reshuffle_each_iteration=False``. Not in tf.data, whose
        ``shuffle`` needs a buffer as large as the data for the same result; other datasets
        raise ValueError (use ``shuffle``)."""
        return self._derive(self._ds.global_shuffle(as_seed(seed), bool(reshuffle_each_iteration)))

    def block_shuffle(
        self,
        block_size: int,
        window: int = 16,
        seed: Optional[int] = None,
        reshuffle_each_iteration: bool = True,
    ) -> Dataset:
        """A shuffle whose reads stay in large contiguous pieces, for data read by range
        (``from_npy("s3://...")``): the elements are cut into blocks of ``block_size``
        consecutive elements, the blocks put in a random order, and the elements of each run
        of ``window`` blocks shuffled among themselves. Every element comes once per pass;
        seeded, a new order each pass unless ``reshuffle_each_iteration=False``; resumable
        like ``global_shuffle`` (the state is a position and a seed). A source on object
        storage is told which blocks come next and fetches each once, ahead of the consumer.

        Quality: not a uniform permutation. Elements of one block always land within
        ``window * block_size`` consecutive positions; a batch of ``b`` holds about
        ``b / window`` elements from the same block as any one of its elements (a uniform
        shuffle: about ``b * block_size / n``). Raise ``window`` or shrink ``block_size`` if
        neighbouring elements are alike, or use ``global_shuffle``. For a remote ``.npy``,
        ``block_size`` = ``block_bytes`` (storage option, 8 MiB) / the row's bytes makes each
        block one request. Not in tf.data."""
        return self._derive(
            self._ds.block_shuffle(
                as_index(block_size, "block_size"), as_index(window, "window"), as_seed(seed), bool(reshuffle_each_iteration)
            )
        )

    def repeat(self, count: Optional[int] = None, name: Optional[str] = None) -> Dataset:
        """The dataset ``count`` times, or forever when ``count`` is None or -1."""
        return self._derive(self._ds.repeat(None if count is None else as_index(count, "count")))

    def take(self, count: int, name: Optional[str] = None) -> Dataset:
        """The first ``count`` elements (all of them when ``count`` is -1)."""
        return self._derive(self._ds.take(as_index(count, "count")))

    def skip(self, count: int, name: Optional[str] = None) -> Dataset:
        """All but the first ``count`` elements (none when ``count`` is -1)."""
        return self._derive(self._ds.skip(as_index(count, "count")))

    def distributed_batch(
        self,
        batch_size: int,
        num_workers: Optional[int] = None,
        worker_index: Optional[int] = None,
    ) -> Dataset:
        """The batches of worker ``worker_index`` of ``num_workers`` in data-parallel
        training, from a random-access dataset every worker builds alike (the same
        ``global_shuffle`` seed): together the workers read every element exactly once per
        epoch, and each gets the same number of batches. Steps of ``num_workers *
        batch_size`` elements give each worker ``batch_size``; the last, smaller step is split
        as evenly as it can be (sizes differ by at most one; a worker's last batch has no rows
        when fewer elements remain than workers). Not in tf.data.

        ``num_workers`` and ``worker_index`` not given come from ``npyflow.worker_info()``:
        ``torch.distributed`` when initialized, torchrun's ``RANK``/``WORLD_SIZE``, JAX after
        ``jax.distributed.initialize``, else one worker.

        The global order (step by step, worker 0's rows first) depends on the global batch
        size ``num_workers * batch_size`` only, and an iterator's state is the same bytes on
        every worker at the same step: a state saved on 2 workers restores on 3 (or 1) with
        the same global batch size (``batch_size`` 6, 4, 12) and the job goes on with no
        element repeated or skipped. A state restored with another global batch size is
        refused with ValueError naming both sizes.

        >>> import npyflow
        >>> ds = npyflow.Dataset.range(10)
        >>> [b.tolist() for b in ds.distributed_batch(3, num_workers=2, worker_index=1)]
        [[3, 4, 5], [8, 9]]
        """
        from ._distributed import worker_info

        info = worker_info(num_workers, worker_index)
        return self._derive(
            self._ds.distributed_batch(as_index(batch_size, "batch_size"), info.num_workers, info.worker_index)
        )

    def shard(self, num_shards: int, index: int, name: Optional[str] = None) -> Dataset:
        """The elements whose position is ``index`` modulo ``num_shards``."""
        return self._derive(self._ds.shard(as_index(num_shards, "num_shards"), as_index(index, "index")))

    def assert_cardinality(self, expected_cardinality: int) -> Dataset:
        """The elements, with ``cardinality()`` ``expected_cardinality`` (-1: infinite), and an
        error (ValueError with tf.data's message, "Input dataset was expected to contain 3
        elements but contained at least 4 elements.", where tf.data raises
        FailedPreconditionError) where the dataset is found to have more or fewer. tf.data
        has it as ``tf.data.experimental.assert_cardinality`` only; both are here. The
        result is read in order (not random-access: ``global_shuffle`` before it)."""
        n = as_index(expected_cardinality, "expected_cardinality")
        return self._derive(self._ds.assert_cardinality(n))

    def snapshot(
        self,
        path: PathLike,
        compression: Optional[str] = "AUTO",
        reader_func: Optional[Callable[[Dataset], Dataset]] = None,
        shard_func: Optional[Callable[..., Any]] = None,
        name: Optional[str] = None,
    ) -> Dataset:
        """tf.data's ``snapshot``: this dataset's elements, written to a file under the
        directory ``path`` by the first pass that runs to its end, and read from that file
        by every later pass, in this program and in later ones, instead of running the
        pipeline again.

        The file is ``path/<fingerprint>/elements.npyflow-cache``. The fingerprint is a
        digest of how this dataset was built: each call that made it with its arguments,
        arrays by content, files by name, size and time of last change, ``list_files`` by
        the files it lists now, Python functions by their code, defaults, captured values
        and the module globals they name (the ``npyflow._fingerprint`` module says what
        counts and what it cannot see). So a pipeline that is built again the same way
        replays the snapshot, and one whose function, constant, array or file changed writes
        a new one beside it, as tf.data does; tf.data's fingerprint does not look into
        Python functions, npyflow's does. The fingerprint is made when ``snapshot`` is
        called (a large in-memory array is read once then, at about 1 GB/s), and
        ``path/<fingerprint>/recipe.txt`` says in words what the pipeline was.

        A pass that stops early or meets an error keeps nothing: the next pass writes again,
        to a temporary file renamed when it is complete, so a reader never sees part of a
        snapshot. Passes that run at once share the work as they can: in one process, a pass
        that finds another writing the snapshot passes its elements through without
        writing; separate processes each write, and the last to finish replaces the file
        with the same elements.

        Where this differs from tf.data: a snapshot is one uncompressed file in npyflow's
        cache format (mapped, not copied, when read), so ``compression`` ``"GZIP"`` and
        ``"SNAPPY"`` are accepted and ignored with a warning (``"AUTO"`` and None are the
        same: uncompressed). ``shard_func`` is accepted and not called: there is one file.
        ``reader_func``, given a dataset with that one file's dataset as its element, makes
        the result, in the pass that writes as in those that read (tf.data applies it to the
        shards only when reading). Elements are replayed in the order they were written (the
        default ``reader_func`` of tf.data interleaves shards). Snapshots live on a local
        file system: ``path`` cannot be a URL. Building the snapshot's input from npyflow's
        sources and transformations is needed for its fingerprint (a dataset made inside a
        running pipeline has none: ValueError)."""
        from ._dataset import Dataset
        from ._fingerprint import fingerprint, recipe_text

        if compression not in ("AUTO", "GZIP", "SNAPPY", "", None):
            raise ValueError(
                f"snapshot: compression must be 'AUTO', 'GZIP', 'SNAPPY' or None, got {compression!r}"
            )
        if compression in ("GZIP", "SNAPPY"):
            warnings.warn(
                f"snapshot: compression={compression!r} is ignored: npyflow writes a snapshot "
                "uncompressed, as one file that later passes map without a copy",
                stacklevel=2,
            )
        for arg, value in (("reader_func", reader_func), ("shard_func", shard_func)):
            if value is not None and not callable(value):
                raise TypeError(f"snapshot: {arg} must be a function, got {type(value).__name__}")
        root = os.fsdecode(as_path(path))
        if not root:
            raise ValueError("snapshot: path must name a directory, got an empty path")
        if "://" in root:
            raise ValueError(
                f"snapshot: path {root!r} is a URL; a snapshot is written to a local directory "
                "(use Dataset.save to write a dataset to object storage)"
            )
        this = cast(Dataset, self)
        directory = os.path.join(root, fingerprint(this))
        os.makedirs(directory, exist_ok=True)
        _write_once(os.path.join(directory, "recipe.txt"), recipe_text(this))
        out = self._derive(self._ds.cache(os.path.join(directory, "elements.npyflow-cache"), shared=True))
        if reader_func is None:
            return out
        read = reader_func(Dataset.from_tensor_slices([out]))
        if not isinstance(read, Dataset):
            raise TypeError(f"snapshot: reader_func must return a Dataset, got {type(read).__name__}")
        return read

    def enumerate(self, start: int = 0, name: Optional[str] = None) -> Dataset:
        """``(i, element)`` pairs, ``i`` an int64 counting from ``start``."""
        struct = None if self._struct is None else ("tuple", [None, self._struct])
        return self._derive(self._ds.enumerate(as_index(start, "start")), struct=struct)

    def window(
        self,
        size: int,
        shift: Optional[int] = None,
        stride: int = 1,
        drop_remainder: bool = False,
        name: Optional[str] = None,
    ) -> Dataset:
        """Windows of ``size`` elements, every ``shift`` (default ``size``) elements, taking
        every ``stride``-th; each window is a dataset (flat_map it to batches)."""
        return self._derive(
            self._ds.window(
                as_index(size, "size"),
                None if shift is None else as_index(shift, "shift"),
                as_index(stride, "stride"),
                bool(drop_remainder),
            ),
            struct=None,
        )

    def scan(
        self, initial_state: Any, scan_func: Callable[[Any, Any], Any], name: Optional[str] = None
    ) -> Dataset:
        """``scan_func(state, element)`` returns ``(new_state, output_element)``; the outputs
        are the elements. The state keeps the initial state's structure and dtypes."""
        element = self._struct
        func = scan_func
        if element is not None:

            def func(state: Any, x: Any) -> Any:
                return scan_func(state, repack(x, element))

        capture = Capture(func, _struct_of_output)
        core = self._ds.scan(initial_state, capture)
        return self._derive(core, struct=capture.done())

    def take_while(self, predicate: Callable[..., Any], name: Optional[str] = None) -> Dataset:
        """Elements up to (not including) the first for which ``predicate`` is False."""
        return self._derive(self._ds.take_while(with_inputs(predicate, self._struct)))

    def unique(self, name: Optional[str] = None) -> Dataset:
        """Each distinct element once (integer or string tensors). Other element types
        raise TypeError, as in tf.data."""
        spec = self.element_spec
        if not isinstance(spec, TensorSpec):
            raise TypeError(
                "`Dataset.unique()` only supports inputs with a single tensor component, got "
                f"{spec!r}"
            )
        if spec.dtype.kind not in "iuS":
            raise TypeError(
                f"`Dataset.unique()` does not support type {spec.dtype}: only integers and "
                "byte strings are supported"
            )
        return self._derive(self._ds.unique())

    def group_by_window(
        self,
        key_func: Callable[..., Any],
        reduce_func: Callable[[Any, Dataset], Dataset],
        window_size: Optional[int] = None,
        window_size_func: Optional[Callable[[Any], Any]] = None,
        name: Optional[str] = None,
    ) -> Dataset:
        """Elements grouped by ``key_func`` (an int64); each full group of ``window_size`` (or
        ``window_size_func(key)``) becomes ``reduce_func(key, window_dataset)``."""
        capture = Capture(reduce_func, _struct_of_dataset)
        core = self._ds.group_by_window(
            with_inputs(key_func, self._struct),
            capture,
            None if window_size is None else as_index(window_size, "window_size"),
            window_size_func,
        )
        return self._derive(core, struct=capture.done())

    def bucket_by_sequence_length(
        self,
        element_length_func: Callable[..., Any],
        bucket_boundaries: Sequence[int],
        bucket_batch_sizes: Sequence[int],
        padded_shapes: Any = None,
        padding_values: Any = None,
        pad_to_bucket_boundary: bool = False,
        no_padding: bool = False,
        drop_remainder: bool = False,
        name: Optional[str] = None,
    ) -> Dataset:
        """Elements batched (and padded) with others of similar length, one batch size per
        bucket between ``bucket_boundaries``."""
        shapes, values = padding(self.element_spec, padded_shapes, padding_values)
        return self._derive(
            self._ds.bucket_by_sequence_length(
                with_inputs(element_length_func, self._struct),
                [as_index(b, "bucket_boundaries") for b in bucket_boundaries],
                [as_index(b, "bucket_batch_sizes") for b in bucket_batch_sizes],
                shapes,
                values,
                bool(pad_to_bucket_boundary),
                bool(no_padding),
                bool(drop_remainder),
            )
        )

    def cache(self, filename: PathLike = "", name: Optional[str] = None) -> Dataset:
        """The first complete pass, kept in memory (``filename=""``) or in a file, and
        replayed by later passes."""
        path = as_path(filename)
        return self._derive(self._ds.cache(path if path else None))

    def prefetch(self, buffer_size: int, name: Optional[str] = None) -> Dataset:
        """Elements made ahead on a background thread, up to ``buffer_size`` (AUTOTUNE: npyflow
        chooses)."""
        return self._derive(self._ds.prefetch(as_index(buffer_size, "buffer_size")), threaded=True)

    def ignore_errors(self, log_warning: bool = False, name: Optional[str] = None) -> Dataset:
        """The elements that are not errors."""
        return self._derive(self._ds.ignore_errors(bool(log_warning)))

    def concatenate(self, dataset: Dataset, name: Optional[str] = None) -> Dataset:
        """This dataset's elements, then ``dataset``'s."""
        require_compatible("concatenate", [self, dataset])
        out = self._derive(self._ds.concatenate(dataset._ds), dataset._threaded)
        if dataset._options is not None:
            out = out.with_options(dataset._options)
        return out
