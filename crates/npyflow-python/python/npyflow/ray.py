"""Ray Data on npyflow pipelines: ``npyflow.ray.read(build)`` is a ``ray.data.Dataset`` whose
read tasks each run the npyflow pipeline ``build()`` makes over a range of its rows.

Use it where preprocessing needs more CPUs than the trainer's host has: Ray spreads the
read tasks over its cluster, and ``map_batches``, ``streaming_split`` and Ray Train work on
the result as on any Ray dataset. Imports ray when called (npyflow does not depend on it).

What holds, and whose guarantee it is:

- npyflow's: each task builds the same pipeline and reads rows ``[start, stop)`` of it, so
  the tasks together read every row exactly once, as long as ``build()`` gives the same
  rows in every process. Give every random stage a seed (``global_shuffle(seed=...)``):
  with ``seed=None`` each task would draw its own order. ``build()`` must give a
  random-access dataset (array or ``.npy`` sources, ``map``, ``global_shuffle``, ...).
- Ray's: which task runs where and when, the order blocks reach consumers (set
  ``DataContext.get_current().execution_options.preserve_order = True`` to keep the order of
  the ranges), how ``streaming_split`` shares blocks among consumers (a consumer that lags
  holds the others back), and retries of failed tasks (a retried task reads its range again
  from its start, so its rows are not repeated downstream). Ray Data has no mid-epoch resume:
  npyflow's iterator state does not apply across Ray's tasks.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ._dataset import Dataset
from ._frameworks import _import


def _columns(element: Any) -> Dict[str, np.ndarray[Any, Any]]:
    """A batch as Ray's columns: a dict's keys, ``"0"``, ``"1"``, ... for a tuple, ``"item"``
    for a single array (as ``ray.data.from_numpy`` names it)."""
    if isinstance(element, dict):
        return {str(k): np.asarray(v) for k, v in element.items()}
    if isinstance(element, (tuple, list)):
        return {str(i): np.asarray(v) for i, v in enumerate(element)}
    return {"item": np.asarray(element)}


def _read_range(build: Callable[[], Dataset], start: int, stop: int, block_rows: int) -> Iterator[Any]:
    accessor = _import("ray.data.block", "npyflow.ray", "pip install 'ray[data]'").BlockAccessor
    ds = build()
    for batch in ds.skip(start).take(stop - start).batch(block_rows).as_numpy_iterator():
        yield accessor.batch_to_block(_columns(batch))


def _ranges(n: int, parts: int) -> List[Tuple[int, int]]:
    parts = max(1, min(parts, n))
    return [(n * i // parts, n * (i + 1) // parts) for i in range(parts) if n * i // parts < n * (i + 1) // parts]


def datasource(build: Callable[[], Dataset], block_rows: int = 1024) -> Any:
    """The ``ray.data.Datasource`` that ``read`` reads (for ``ray.data.read_datasource``).

    ``build`` is a function that returns the npyflow pipeline; Ray pickles it (with
    cloudpickle) into every read task, so it should build from files or from small arrays.
    """
    ray_data = _import("ray.data", "npyflow.ray", "pip install 'ray[data]'")
    block_metadata = _import("ray.data.block", "npyflow.ray", "pip install 'ray[data]'").BlockMetadata

    if not callable(build):
        raise TypeError(f"npyflow.ray: build must be a function returning an npyflow Dataset, got {type(build).__name__}")
    if block_rows < 1:
        raise ValueError(f"npyflow.ray: block_rows must be positive, got {block_rows}")
    probe = build()
    if not isinstance(probe, Dataset):
        raise TypeError(f"npyflow.ray: build() must return an npyflow Dataset, got {type(probe).__name__}")
    if not probe._ds.is_random_access():
        raise ValueError(
            "npyflow.ray: build() must give a random-access dataset (array or .npy sources, "
            "map, global_shuffle, ...), so that each read task can start at its range; a "
            f"{probe._ds.name} dataset is not one"
        )
    n = int(probe._ds.cardinality())
    if n < 0:
        raise ValueError("npyflow.ray: build() gave an infinite dataset; Ray reads finite ones")
    row_bytes = 0
    for spec in _leaf_specs(probe.element_spec):
        dims = [d for d in spec.shape if d is not None]
        row_bytes += int(np.prod(dims, dtype=np.int64)) * np.dtype(spec.dtype).itemsize

    class NpyflowDatasource(ray_data.Datasource):  # type: ignore[misc,name-defined]
        def estimate_inmemory_data_size(self) -> Optional[int]:
            return n * row_bytes

        def get_read_tasks(
            self, parallelism: int, per_task_row_limit: Optional[int] = None, **later: Any
        ) -> List[Any]:
            # `later`: what newer Rays pass (data_context in 2.60), not needed here.
            tasks = []
            for start, stop in _ranges(n, parallelism):
                meta = block_metadata(
                    num_rows=stop - start,
                    size_bytes=(stop - start) * row_bytes,
                    input_files=None,
                    exec_stats=None,
                )
                extra = {} if per_task_row_limit is None else {"per_task_row_limit": per_task_row_limit}
                tasks.append(ray_data.ReadTask(
                    lambda a=start, b=stop: _read_range(build, a, b, block_rows), meta, **extra
                ))
            return tasks

        def get_name(self) -> str:
            return "Npyflow"

    return NpyflowDatasource()


def _leaf_specs(spec: Any) -> Iterator[Any]:
    if isinstance(spec, dict):
        for v in spec.values():
            yield from _leaf_specs(v)
    elif isinstance(spec, (tuple, list)):
        for v in spec:
            yield from _leaf_specs(v)
    else:
        yield spec


def read(build: Callable[[], Dataset], *, block_rows: int = 1024, override_num_blocks: Optional[int] = None) -> Any:
    """A ``ray.data.Dataset`` of the rows of the npyflow pipeline ``build()`` makes, read by
    Ray tasks over ranges of rows (see the module's docstring for what is guaranteed and by
    whom). Columns are a dict element's keys, ``"0"``, ``"1"``, ... for a tuple, ``"item"``
    for a single array.

    >>> import numpy as np, ray, npyflow.ray  # doctest: +SKIP
    >>> ray.init(num_cpus=2)  # doctest: +SKIP
    >>> def build():
    ...     x = np.arange(10, dtype=np.float32)
    ...     return npyflow.Dataset.from_tensor_slices({"x": x}).global_shuffle(seed=0)
    >>> rows = npyflow.ray.read(build, override_num_blocks=2)  # doctest: +SKIP
    >>> sorted(r["x"] for r in rows.iter_rows())  # doctest: +SKIP
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    """
    ray_data = _import("ray.data", "npyflow.ray", "pip install 'ray[data]'")
    return ray_data.read_datasource(datasource(build, block_rows), override_num_blocks=override_num_blocks)
