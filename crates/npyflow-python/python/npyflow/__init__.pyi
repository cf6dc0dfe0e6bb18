"""Type stubs of the npyflow package: tf.data's dataset API over NumPy arrays."""

from os import PathLike
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np
import numpy.typing as npt

from . import data as data
from . import ops as ops
from ._npyflow import DatasetIterator as DatasetIterator

AUTOTUNE: int
INFINITE_CARDINALITY: int
UNKNOWN_CARDINALITY: int

_Path = Union[str, PathLike[str]]
_Shape = Optional[Tuple[Optional[int], ...]]
# An element: arrays (NumPy scalars for 0-d tensors) in tuples and dicts, or a Dataset (a
# window).
Element = Any
# A structure of TensorSpec and DatasetSpec in tuples and dicts, mirroring an element.
ElementSpec = Any

class TensorSpec:
    def __init__(
        self,
        shape: Optional[Sequence[Optional[int]]],
        dtype: npt.DTypeLike = ...,
        name: Optional[str] = None,
    ) -> None: ...
    @property
    def shape(self) -> _Shape: ...
    @property
    def dtype(self) -> np.dtype: ...
    @property
    def name(self) -> Optional[str]: ...
    def is_compatible_with(self, other: Any) -> bool: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class DatasetSpec:
    def __init__(self, element_spec: ElementSpec) -> None: ...
    @property
    def element_spec(self) -> ElementSpec: ...

class Dataset:
    # Sources.
    @staticmethod
    def from_tensor_slices(tensors: Any, name: Optional[str] = None) -> Dataset: ...
    @staticmethod
    def from_tensors(tensors: Any, name: Optional[str] = None) -> Dataset: ...
    @staticmethod
    def range(*args: int, output_type: npt.DTypeLike = ..., name: Optional[str] = None) -> Dataset: ...
    @staticmethod
    def counter(
        start: int = 0, step: int = 1, dtype: npt.DTypeLike = ..., name: Optional[str] = None
    ) -> Dataset: ...
    @staticmethod
    def zip(*args: Any, datasets: Any = None, name: Optional[str] = None) -> Dataset: ...
    @staticmethod
    def from_generator(
        generator: Callable[..., Any],
        output_types: Any = None,
        output_shapes: Any = None,
        args: Optional[Sequence[Any]] = None,
        output_signature: ElementSpec = None,
        name: Optional[str] = None,
    ) -> Dataset: ...
    @staticmethod
    def list_files(
        file_pattern: Union[_Path, Sequence[_Path]],
        shuffle: Optional[bool] = None,
        seed: Optional[int] = None,
        name: Optional[str] = None,
    ) -> Dataset: ...
    @staticmethod
    def sample_from_datasets(
        datasets: Sequence[Dataset],
        weights: Optional[Sequence[float]] = None,
        seed: Optional[int] = None,
        stop_on_empty_dataset: bool = False,
        rerandomize_each_iteration: Optional[bool] = None,
    ) -> Dataset: ...
    @staticmethod
    def choose_from_datasets(
        datasets: Sequence[Dataset], choice_dataset: Dataset, stop_on_empty_dataset: bool = True
    ) -> Dataset: ...
    @staticmethod
    def from_npy(path: Union[_Path, Sequence[_Path]]) -> Dataset: ...
    @staticmethod
    def from_npz(path: _Path, keys: Optional[Union[str, Sequence[str]]] = None) -> Dataset: ...
    # What a dataset is.
    @property
    def element_spec(self) -> ElementSpec: ...
    def cardinality(self) -> int: ...
    def __len__(self) -> int: ...
    def __bool__(self) -> bool: ...
    def __iter__(self) -> DatasetIterator: ...
    def as_numpy_iterator(self) -> DatasetIterator: ...
    # Transformations.
    def map(
        self,
        map_func: Union[Callable[..., Any], ops.Op],
        num_parallel_calls: Optional[int] = None,
        deterministic: Optional[bool] = None,
        name: Optional[str] = None,
        *,
        output_signature: ElementSpec = None,
    ) -> Dataset: ...
    def filter(self, predicate: Callable[..., Any], name: Optional[str] = None) -> Dataset: ...
    def flat_map(self, map_func: Callable[..., Dataset], name: Optional[str] = None) -> Dataset: ...
    def interleave(
        self,
        map_func: Callable[..., Dataset],
        cycle_length: Optional[int] = None,
        block_length: Optional[int] = None,
        num_parallel_calls: Optional[int] = None,
        deterministic: Optional[bool] = None,
        name: Optional[str] = None,
    ) -> Dataset: ...
    def batch(
        self,
        batch_size: int,
        drop_remainder: bool = False,
        num_parallel_calls: Optional[int] = None,
        deterministic: Optional[bool] = None,
        name: Optional[str] = None,
    ) -> Dataset: ...
    def padded_batch(
        self,
        batch_size: int,
        padded_shapes: Any = None,
        padding_values: Any = None,
        drop_remainder: bool = False,
        name: Optional[str] = None,
    ) -> Dataset: ...
    def unbatch(self, name: Optional[str] = None) -> Dataset: ...
    def rebatch(
        self, batch_size: Union[int, Sequence[int]], drop_remainder: bool = False, name: Optional[str] = None
    ) -> Dataset: ...
    def shuffle(
        self,
        buffer_size: int,
        seed: Optional[int] = None,
        reshuffle_each_iteration: Optional[bool] = None,
        name: Optional[str] = None,
    ) -> Dataset: ...
    def global_shuffle(
        self, seed: Optional[int] = None, reshuffle_each_iteration: bool = True
    ) -> Dataset: ...
    def repeat(self, count: Optional[int] = None, name: Optional[str] = None) -> Dataset: ...
    def take(self, count: int, name: Optional[str] = None) -> Dataset: ...
    def skip(self, count: int, name: Optional[str] = None) -> Dataset: ...
    def distributed_batch(self, batch_size: int, num_workers: int, worker_index: int) -> Dataset: ...
    def shard(self, num_shards: int, index: int, name: Optional[str] = None) -> Dataset: ...
    def enumerate(self, start: int = 0, name: Optional[str] = None) -> Dataset: ...
    def window(
        self,
        size: int,
        shift: Optional[int] = None,
        stride: int = 1,
        drop_remainder: bool = False,
        name: Optional[str] = None,
    ) -> Dataset: ...
    def scan(
        self, initial_state: Any, scan_func: Callable[[Any, Any], Any], name: Optional[str] = None
    ) -> Dataset: ...
    def take_while(self, predicate: Callable[..., Any], name: Optional[str] = None) -> Dataset: ...
    def unique(self, name: Optional[str] = None) -> Dataset: ...
    def group_by_window(
        self,
        key_func: Callable[..., Any],
        reduce_func: Callable[[Any, Dataset], Dataset],
        window_size: Optional[int] = None,
        window_size_func: Optional[Callable[[Any], Any]] = None,
        name: Optional[str] = None,
    ) -> Dataset: ...
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
    ) -> Dataset: ...
    def cache(self, filename: _Path = "", name: Optional[str] = None) -> Dataset: ...
    def prefetch(self, buffer_size: int, name: Optional[str] = None) -> Dataset: ...
    def ignore_errors(self, log_warning: bool = False, name: Optional[str] = None) -> Dataset: ...
    def concatenate(self, dataset: Dataset, name: Optional[str] = None) -> Dataset: ...
    def apply(self, transformation_func: Callable[[Dataset], Dataset]) -> Dataset: ...
    def reduce(self, initial_state: Any, reduce_func: Callable[[Any, Any], Any]) -> Any: ...

def load(file: _Path) -> Union[np.ndarray, Dict[str, np.ndarray]]: ...
def save(file: _Path, arr: npt.ArrayLike) -> None: ...
def savez(file: _Path, *args: npt.ArrayLike, **kwds: npt.ArrayLike) -> None: ...
def savez_compressed(file: _Path, *args: npt.ArrayLike, **kwds: npt.ArrayLike) -> None: ...
