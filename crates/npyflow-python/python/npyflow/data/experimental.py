"""``tf.data.experimental``: the old names input pipelines still use, as npyflow's.

The names tf.data moved onto ``Dataset`` are functions that return a transformation for
``ds.apply(...)``, as in tf.data (``ds.apply(tf.data.experimental.unbatch())``);
``cardinality``, ``get_single_element``, ``sample_from_datasets`` and
``choose_from_datasets`` take datasets, as in tf.data. A name npyflow does not have raises
an AttributeError that says what to use instead."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence

from .._constants import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from .._dataset import Dataset
from .._options import (
    AutoShardPolicy,
    AutotuneAlgorithm,
    AutotuneOptions,
    DistributeOptions,
    ExternalStatePolicy,
    OptimizationOptions,
    ServiceOptions,
    ThreadingOptions,
)
from .._tf._missing import missing

__all__ = [
    "AUTOTUNE",
    "INFINITE_CARDINALITY",
    "UNKNOWN_CARDINALITY",
    "AutoShardPolicy",
    "AutotuneAlgorithm",
    "AutotuneOptions",
    "DistributeOptions",
    "ExternalStatePolicy",
    "OptimizationOptions",
    "ServiceOptions",
    "ThreadingOptions",
    "assert_cardinality",
    "cardinality",
    "choose_from_datasets",
    "dense_to_ragged_batch",
    "enumerate_dataset",
    "get_single_element",
    "ignore_errors",
    "map_and_batch",
    "parallel_interleave",
    "sample_from_datasets",
    "shuffle_and_repeat",
    "unbatch",
    "scan",
    "take_while",
    "unique",
    "snapshot",
    "save",
    "load",
    "group_by_window",
    "bucket_by_sequence_length",
]

Transformation = Callable[[Dataset], Dataset]


def cardinality(dataset: Dataset) -> Any:
    """``dataset.cardinality()``."""
    return dataset.cardinality()


def get_single_element(dataset: Dataset) -> Any:
    """``dataset.get_single_element()``."""
    if not isinstance(dataset, Dataset):
        raise TypeError(f"`dataset` must be a `tf.data.Dataset` object, got {type(dataset).__name__}")
    return dataset.get_single_element()


def sample_from_datasets(
    datasets: Iterable[Dataset],
    weights: Optional[Sequence[float]] = None,
    seed: Optional[int] = None,
    stop_on_empty_dataset: bool = False,
) -> Dataset:
    """``Dataset.sample_from_datasets``."""
    return Dataset.sample_from_datasets(datasets, weights, seed, stop_on_empty_dataset)


def choose_from_datasets(
    datasets: Iterable[Dataset], choice_dataset: Dataset, stop_on_empty_dataset: bool = True
) -> Dataset:
    """``Dataset.choose_from_datasets``."""
    return Dataset.choose_from_datasets(datasets, choice_dataset, stop_on_empty_dataset)


def ignore_errors(log_warning: bool = False) -> Transformation:
    """``ds.ignore_errors(log_warning)``, for ``ds.apply``."""
    return lambda ds: ds.ignore_errors(log_warning)


def unbatch() -> Transformation:
    """``ds.unbatch()``, for ``ds.apply``."""
    return lambda ds: ds.unbatch()


def assert_cardinality(expected_cardinality: int) -> Transformation:
    """``ds.assert_cardinality(expected_cardinality)``, for ``ds.apply``: a real check, made
    as the elements are read (ValueError with tf.data's message, where tf.data raises
    FailedPreconditionError)."""
    return lambda ds: ds.assert_cardinality(expected_cardinality)


def enumerate_dataset(start: int = 0) -> Transformation:
    """``ds.enumerate(start)``, for ``ds.apply``."""
    return lambda ds: ds.enumerate(start)


def dense_to_ragged_batch(
    batch_size: int, drop_remainder: bool = False, row_splits_dtype: Any = None
) -> Transformation:
    """``ds.ragged_batch(...)``, for ``ds.apply``: in npyflow a ``padded_batch`` (zeros at
    the end of each tensor's axes, to the longest in its batch), where tf.data makes
    ``tf.RaggedTensor`` batches."""
    return lambda ds: ds.ragged_batch(batch_size, drop_remainder, row_splits_dtype)


def shuffle_and_repeat(
    buffer_size: int, count: Optional[int] = None, seed: Optional[int] = None
) -> Transformation:
    """``ds.shuffle(buffer_size, seed).repeat(count)``, for ``ds.apply``: each repetition a
    new order, as in tf.data."""
    return lambda ds: ds.shuffle(buffer_size, seed).repeat(count)


def parallel_interleave(
    map_func: Callable[..., Dataset],
    cycle_length: int,
    block_length: int = 1,
    sloppy: Optional[bool] = False,
    buffer_output_elements: Optional[int] = None,
    prefetch_input_elements: Optional[int] = None,
) -> Transformation:
    """``ds.interleave(map_func, cycle_length, block_length, num_parallel_calls=cycle_length,
    deterministic=not sloppy)``, for ``ds.apply``. The buffer sizes are accepted and
    ignored."""
    deterministic = None if sloppy is None else not sloppy
    return lambda ds: ds.interleave(
        map_func, cycle_length, block_length, num_parallel_calls=cycle_length, deterministic=deterministic
    )


def map_and_batch(
    map_func: Callable[..., Any],
    batch_size: int,
    num_parallel_batches: Optional[int] = None,
    drop_remainder: bool = False,
    num_parallel_calls: Optional[int] = None,
) -> Transformation:
    """``ds.map(map_func, num_parallel_calls).batch(batch_size, drop_remainder)``, for
    ``ds.apply`` (``num_parallel_batches`` *n* means ``num_parallel_calls=n * batch_size``,
    as in tf.data; npyflow fuses a map of ops with the batch after it anyway)."""
    if num_parallel_batches is not None and num_parallel_calls is not None:
        raise ValueError(
            "`map_and_batch` allows only one of `num_parallel_batches` and "
            "`num_parallel_calls` to be set."
        )
    calls = num_parallel_calls
    if num_parallel_batches is not None:
        calls = num_parallel_batches * batch_size
    return lambda ds: ds.map(map_func, num_parallel_calls=calls).batch(batch_size, drop_remainder)


def scan(initial_state: Any, scan_func: Callable[[Any, Any], Any]) -> Transformation:
    """``ds.scan(initial_state, scan_func)``, for ``ds.apply``."""
    return lambda ds: ds.scan(initial_state, scan_func)


def take_while(predicate: Callable[..., Any]) -> Transformation:
    """``ds.take_while(predicate)``, for ``ds.apply``."""
    return lambda ds: ds.take_while(predicate)


def unique() -> Transformation:
    """``ds.unique()``, for ``ds.apply``."""
    return lambda ds: ds.unique()


def snapshot(
    path: str,
    compression: Optional[str] = "AUTO",
    reader_func: Optional[Callable[[Dataset], Dataset]] = None,
    shard_func: Optional[Callable[..., Any]] = None,
) -> Transformation:
    """``ds.snapshot(path, ...)`` (see ``Dataset.snapshot``), for ``ds.apply``."""
    return lambda ds: ds.snapshot(path, compression, reader_func, shard_func)


def save(
    dataset: Dataset,
    path: str,
    compression: Optional[str] = None,
    shard_func: Optional[Callable[..., Any]] = None,
    checkpoint_args: Optional[Any] = None,
) -> None:
    """``dataset.save(path, ...)`` (see ``Dataset.save``), as tf.data's older name for it."""
    dataset.save(path, compression, shard_func, checkpoint_args)


def load(
    path: str,
    element_spec: Optional[Any] = None,
    compression: Optional[str] = None,
    reader_func: Optional[Callable[..., Any]] = None,
) -> Dataset:
    """``Dataset.load(path, ...)``, as tf.data's older name for it."""
    return Dataset.load(path, element_spec, compression, reader_func)


def group_by_window(
    key_func: Callable[..., Any],
    reduce_func: Callable[[Any, Dataset], Dataset],
    window_size: Optional[int] = None,
    window_size_func: Optional[Callable[[Any], Any]] = None,
) -> Transformation:
    """``ds.group_by_window(...)``, for ``ds.apply``."""
    return lambda ds: ds.group_by_window(key_func, reduce_func, window_size, window_size_func)


def bucket_by_sequence_length(
    element_length_func: Callable[..., Any], *args: Any, **kwargs: Any
) -> Transformation:
    """``ds.bucket_by_sequence_length(element_length_func, ...)`` (the same arguments), for
    ``ds.apply``."""
    return lambda ds: ds.bucket_by_sequence_length(element_length_func, *args, **kwargs)


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise missing("npyflow.data.experimental", name)
