"""The way into the training frameworks: ``Dataset.to_keras()``, ``to_torch()`` and
``to_jax()``.

Each imports its framework when it is called, never before: npyflow depends on NumPy alone.
All three read the pipeline with npyflow's own threads in this process (no worker processes,
no copy of the dataset in each), hand out the arrays npyflow made without copying them on
the CPU, and save and restore the position of the pass in progress with npyflow's iterator
state (``get_state()``/``set_state()``; torch's spelling ``state_dict()``/
``load_state_dict()`` too).
"""

from __future__ import annotations

import collections
import importlib
import threading
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Iterator, Optional

import numpy as np

from ._constants import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY

if TYPE_CHECKING:
    from ._dataset import Dataset


def _import(module: str, what: str, install: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{what} needs {module}, which is not installed ({install})") from e


def map_structure(f: Callable[[Any], Any], value: Any) -> Any:
    """``f`` on every array of an element, keeping its tuples and dicts."""
    if isinstance(value, tuple):
        return tuple(map_structure(f, v) for v in value)
    if isinstance(value, list):
        return [map_structure(f, v) for v in value]
    if isinstance(value, dict):
        return {k: map_structure(f, v) for k, v in value.items()}
    return f(value)


def _numeric(value: Any) -> bool:
    kind = getattr(getattr(value, "dtype", None), "kind", "")
    return kind in "biufc" and kind != ""


class _Passes:
    """Passes over a dataset, one after another, with the state of the one in progress.

    ``set_state`` keeps a state for the next pass to start from (a pass in progress is
    dropped). ``get_state`` gives the state of the pass in progress: of the last element
    handed out, and an ended state when the pass ended; before any pass, the state kept
    for the next one, if any.
    """

    def __init__(self, dataset: "Dataset") -> None:
        self.dataset = dataset
        self.current: Optional[Any] = None
        self.pending: Optional[bytes] = None
        self.lock = threading.Lock()

    def start(self) -> Any:
        with self.lock:
            it = iter(self.dataset)
            if self.pending is not None:
                it.set_state(self.pending)
                self.pending = None
            self.current = it
            return it

    def get_state(self) -> bytes:
        with self.lock:
            if self.current is not None:
                state: bytes = self.current.get_state()
                return state
            if self.pending is not None:
                return self.pending
            return iter(self.dataset).get_state()

    def set_state(self, state: bytes) -> None:
        if not isinstance(state, (bytes, bytearray, memoryview)):
            raise TypeError(f"set_state takes the bytes get_state gave, got {type(state).__name__}")
        # Checked now, against this pipeline, so that a wrong state fails here and not at the
        # next epoch.
        iter(self.dataset).set_state(bytes(state))
        with self.lock:
            self.pending = bytes(state)
            self.current = None


def _known_length(dataset: "Dataset", what: str) -> Optional[int]:
    n = int(dataset._ds.cardinality())
    if n == UNKNOWN_CARDINALITY:
        raise ValueError(
            f"{what}: the number of batches of this dataset is unknown, and Keras needs it to "
            "count the steps of an epoch; use assert_cardinality(n) when you know it, or "
            "repeat() and fit(steps_per_epoch=...)"
        )
    return None if n == INFINITE_CARDINALITY else n


# ---- Keras ---------------------------------------------------------------------------------

_KERAS_CLASS: Dict[str, type] = {}


def _keras_class() -> type:
    if "cls" in _KERAS_CLASS:
        return _KERAS_CLASS["cls"]
    keras = _import("keras", "Dataset.to_keras()", "pip install keras, and a backend: jax, tensorflow or torch")

    class KerasDataset(keras.utils.PyDataset):  # type: ignore[misc,name-defined]
        """An npyflow dataset as a ``keras.utils.PyDataset`` (see ``Dataset.to_keras``)."""

        def __init__(self, dataset: "Dataset") -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self._length = _known_length(dataset, "Dataset.to_keras()")
            self._passes = _Passes(dataset)
            self._it: Optional[Any] = None
            self._served = 0
            self._restored = False
            self._epochs_begun = 0

        @property
        def num_batches(self) -> Optional[int]:
            return self._length

        def __len__(self) -> int:
            if self._length is None:
                raise TypeError("the dataset is infinite: pass steps_per_epoch to fit")
            return self._length

        def __getitem__(self, index: int) -> Any:
            # Keras asks for batches by index, in a shuffled order when fit(shuffle=True) (its
            # default): the pipeline has its own order, so the index is not used. The n-th
            # call of a pass gets the pass's n-th batch, and a pass ends after the dataset's
            # number of batches (Keras asks that many in each epoch): each epoch is a pass.
            # A pass restored with set_state gives the rest of its batches, then a new pass
            # starts.
            if self._it is None or (
                not self._restored and self._length is not None and self._served >= self._length
            ):
                self._start()
            assert self._it is not None
            try:
                batch = next(self._it)
            except StopIteration:
                if not self._restored:
                    raise IndexError(
                        f"the npyflow dataset ended after {self._served} batches, before the "
                        f"{self._length} its cardinality promised"
                    ) from None
                self._start()
                batch = next(self._it)
            self._served += 1
            if isinstance(batch, list):
                batch = tuple(batch)
            return batch

        def _start(self) -> None:
            self._restored = self._passes.pending is not None
            self._it = self._passes.start()
            self._served = 0

        def on_epoch_begin(self) -> None:
            # Batches asked before the first epoch are Keras looking at their shapes (the
            # TensorFlow backend does): the first epoch starts a pass of its own.
            if self._epochs_begun == 0 and self._it is not None and not self._restored:
                self._it = None
            self._epochs_begun += 1

        def get_state(self) -> bytes:
            """The state of the pass in progress, as ``iter(dataset).get_state()`` gives it:
            with it, ``set_state`` makes the next batch Keras asks for the one after the last
            it got (when Keras reads ahead, as the TensorFlow backend does, the state is
            that of the last batch read, not of the last one trained on)."""
            return self._passes.get_state()

        def set_state(self, state: bytes) -> None:
            """Continues from ``state`` at the next batch Keras asks for: the rest of the
            saved pass, then new passes."""
            self._passes.set_state(state)
            self._it = None

    _KERAS_CLASS["cls"] = KerasDataset
    return KerasDataset


def to_keras(dataset: "Dataset") -> Any:
    cls = _keras_class()
    return cls(dataset)


# ---- torch ---------------------------------------------------------------------------------

_TORCH_CLASS: Dict[str, type] = {}


def _torch_converter(torch: Any) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, np.ndarray) and _numeric(value):
            if value.ndim == 0:
                return torch.as_tensor(value[()])
            try:
                # DLPack hands torch npyflow's memory (no copy; read-only arrays too, without
                # torch.from_numpy's warning about them: do not write into such a tensor).
                return torch.from_dlpack(value.view(np.ndarray))
            except (BufferError, RuntimeError, TypeError):
                # A dtype torch has no DLPack code for: a copy.
                return torch.as_tensor(np.array(value))
        if isinstance(value, np.generic) and _numeric(value):
            return torch.as_tensor(value)
        return value

    return convert


class _Staged:
    """A tensor on its way to the device: its staging buffer and the device tensor."""

    __slots__ = ("buf", "key", "out")

    def __init__(self, buf: Any, key: Any, out: Any) -> None:
        self.buf, self.key, self.out = buf, key, out


class _CudaFeeder:
    """Copies batches to a CUDA device ahead of use: each tensor goes into a pinned staging
    buffer, then to the device on a side stream, ``depth`` batches ahead of the one the
    consumer takes; the consumer's stream waits for the copy of its batch (the host does
    not). A staging buffer is used again once the copy out of it is done."""

    def __init__(self, torch: Any, device: Any, depth: int) -> None:
        self.torch = torch
        self.device = device
        self.depth = depth
        self.stream = torch.cuda.Stream(device=device)
        # Staging buffers by (shape, dtype), each with the event after its last copy.
        self.used: Dict[Any, Deque[Any]] = collections.defaultdict(collections.deque)

    def _buffer(self, key: Any) -> Any:
        torch = self.torch
        used = self.used[key]
        if used and (len(used) > self.depth or used[0][1].query()):
            buf, event = used.popleft()
            event.synchronize()
            return buf
        return torch.empty(key[0], dtype=key[1], pin_memory=True)

    def _stage(self, t: Any) -> Any:
        torch = self.torch
        if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
            return t
        key = (tuple(t.shape), t.dtype)
        buf = self._buffer(key)
        buf.copy_(t)
        with torch.cuda.stream(self.stream):
            out = buf.to(self.device, non_blocking=True)
        return _Staged(buf, key, out)

    def __call__(self, elements: Iterator[Any]) -> Iterator[Any]:
        torch = self.torch
        inflight: Deque[Any] = collections.deque()
        for element in elements:
            staged = map_structure(self._stage, element)
            event = torch.cuda.Event()
            event.record(self.stream)
            for leaf in _leaves(staged):
                if isinstance(leaf, _Staged):
                    self.used[leaf.key].append((leaf.buf, event))
            inflight.append((staged, event))
            if len(inflight) > self.depth:
                yield self._finish(*inflight.popleft())
        while inflight:
            yield self._finish(*inflight.popleft())

    def _finish(self, staged: Any, event: Any) -> Any:
        current = self.torch.cuda.current_stream(self.device)
        current.wait_event(event)

        def take(leaf: Any) -> Any:
            if not isinstance(leaf, _Staged):
                return leaf
            # The tensor was made on the side stream and is used on the consumer's.
            leaf.out.record_stream(current)
            return leaf.out

        return map_structure(take, staged)


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, (tuple, list)):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    else:
        yield value


def _torch_class(torch: Any) -> type:
    if "cls" in _TORCH_CLASS:
        return _TORCH_CLASS["cls"]

    class TorchDataset(torch.utils.data.IterableDataset):  # type: ignore[misc]
        """An npyflow dataset as a ``torch.utils.data.IterableDataset`` (see
        ``Dataset.to_torch``)."""

        def __init__(self, dataset: "Dataset", device: Any, prefetch: int) -> None:
            super().__init__()
            self._passes = _Passes(dataset)
            self._convert = _torch_converter(torch)
            self._device = device
            self._prefetch = prefetch
            n = int(dataset._ds.cardinality())
            self._length = None if n < 0 else n

        def __len__(self) -> int:
            if self._length is None:
                raise TypeError("the npyflow dataset's length is infinite or unknown")
            return self._length

        def __iter__(self) -> Iterator[Any]:
            info = torch.utils.data.get_worker_info()
            if info is not None and info.num_workers > 1:
                raise RuntimeError(
                    f"to_torch(): a DataLoader with num_workers={info.num_workers} would run "
                    "the whole npyflow pipeline in each worker process and give every element "
                    f"{info.num_workers} times; npyflow reads with threads of its own: use "
                    "num_workers=0 (its map and batch stages take num_parallel_calls)"
                )
            it = self._passes.start()
            elements = (map_structure(self._convert, e) for e in it)
            if self._device is None:
                return elements
            return _CudaFeeder(torch, self._device, self._prefetch)(elements)

        def get_state(self) -> bytes:
            """The npyflow state of the pass in progress (of the last element it handed
            out); ``set_state`` makes the next pass continue from it."""
            return self._passes.get_state()

        def set_state(self, state: bytes) -> None:
            """The next ``iter()`` continues from ``state`` instead of starting a pass."""
            self._passes.set_state(state)

        def state_dict(self) -> Dict[str, bytes]:
            """``get_state()`` in torch's form (torchdata's ``StatefulDataLoader`` asks a
            dataset for it)."""
            return {"npyflow_state": self.get_state()}

        def load_state_dict(self, state_dict: Dict[str, bytes]) -> None:
            """``set_state`` from what ``state_dict()`` gave."""
            if not isinstance(state_dict, dict) or "npyflow_state" not in state_dict:
                raise ValueError("load_state_dict takes the dict state_dict() gave (with 'npyflow_state')")
            self.set_state(state_dict["npyflow_state"])

    _TORCH_CLASS["cls"] = TorchDataset
    return TorchDataset


def to_torch(dataset: "Dataset", device: Any, prefetch: int) -> Any:
    torch = _import("torch", "Dataset.to_torch()", "see https://pytorch.org for the wheel of your platform")
    if prefetch < 1:
        raise ValueError(f"to_torch: prefetch must be at least 1, got {prefetch}")
    dev = None
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cpu":
            dev = None
        elif dev.type != "cuda":
            raise ValueError(f"to_torch: device must be 'cpu' or a CUDA device, got {device!r}")
        elif not torch.cuda.is_available():
            raise RuntimeError(
                f"to_torch(device={device!r}): CUDA is not available in this process; leave "
                "device out to get CPU tensors"
            )
        elif dev.index is None:
            from ._distributed import worker_info

            local = worker_info().local_index
            dev = torch.device("cuda", local if local is not None else torch.cuda.current_device())
    return _torch_class(torch)(dataset, dev, prefetch)


# ---- JAX -----------------------------------------------------------------------------------


class JaxBatches:
    """Batches of an npyflow dataset placed on JAX devices (see ``Dataset.to_jax``): each
    ``iter()`` is a pass, ``prefetch`` batches ahead on the devices."""

    def __init__(self, dataset: "Dataset", sharding: Any, prefetch: int) -> None:
        self._jax = _import("jax", "Dataset.to_jax()", "pip install jax")
        self._passes = _Passes(dataset)
        self._sharding = sharding
        self._prefetch = prefetch
        n = int(dataset._ds.cardinality())
        self._length = None if n < 0 else n

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError("the npyflow dataset's length is infinite or unknown")
        return self._length

    def _place(self, value: Any) -> Any:
        if not isinstance(value, (np.ndarray, np.generic)) or not _numeric(value):
            return value
        arr = np.asarray(value)
        if self._sharding is None:
            return self._jax.device_put(arr)
        return self._jax.make_array_from_process_local_data(self._sharding, arr)

    def __iter__(self) -> Iterator[Any]:
        it = self._passes.start()
        ahead: Deque[Any] = collections.deque()
        for element in it:
            # device_put returns at once and copies in the background: the batches in
            # `ahead` are on their way to the devices while the caller computes.
            ahead.append(map_structure(self._place, element))
            if len(ahead) > self._prefetch:
                yield ahead.popleft()
        while ahead:
            yield ahead.popleft()

    def get_state(self) -> bytes:
        """The npyflow state of the pass in progress. With prefetch, it is the state after
        the batches read ahead, not after the last one the caller took: use ``prefetch=0``
        where a checkpoint must fall exactly on a step."""
        return self._passes.get_state()

    def set_state(self, state: bytes) -> None:
        """The next ``iter()`` continues from ``state`` instead of starting a pass."""
        self._passes.set_state(state)


def to_jax(dataset: "Dataset", sharding: Any, prefetch: int) -> JaxBatches:
    if prefetch < 0:
        raise ValueError(f"to_jax: prefetch must be 0 or more, got {prefetch}")
    return JaxBatches(dataset, sharding, prefetch)
