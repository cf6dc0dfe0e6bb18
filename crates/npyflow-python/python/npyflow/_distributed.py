"""Which worker of a data-parallel job this process is: ``npyflow.worker_info()``.

A data-parallel pipeline (``Dataset.distributed_batch``) needs this process's index and the
number of processes. They come, first found first, from:

1. the arguments, when given;
2. ``torch.distributed``, when it is initialized (``get_rank()``, ``get_world_size()``);
3. torchrun's environment: ``RANK`` and ``WORLD_SIZE`` (``LOCAL_RANK`` is this process's
   index on its host, which ``to_torch(device="cuda")`` uses to pick its GPU);
4. JAX, when ``jax.distributed.initialize`` has run (``jax.process_index()``,
   ``jax.process_count()``);
5. otherwise one worker, index 0.

npyflow never imports torch or JAX to find out: it asks them only when the program has
imported them already.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple, Optional

from ._args import as_index


class WorkerInfo(NamedTuple):
    """This process's place in a data-parallel job (see ``npyflow.worker_info``)."""

    #: This worker's index, in ``[0, num_workers)``.
    worker_index: int
    #: The number of workers.
    num_workers: int
    #: Where the numbers came from: ``"arguments"``, ``"torch.distributed"``,
    #: ``"environment"`` (torchrun's ``RANK``/``WORLD_SIZE``), ``"jax"`` or ``"default"``.
    source: str
    #: This process's index on its host (torchrun's ``LOCAL_RANK``; JAX's and the default:
    #: 0), or None when not known.
    local_index: Optional[int] = None


def _env_int(name: str) -> Optional[int]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(
            f"the environment variable {name}={raw!r} is not an integer (torchrun sets it "
            "to this process's rank or the number of processes); fix or unset it"
        ) from None


def _from_torch() -> Optional[WorkerInfo]:
    torch: Any = sys.modules.get("torch")
    if torch is None:
        return None
    dist = getattr(torch, "distributed", None)
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return WorkerInfo(dist.get_rank(), dist.get_world_size(), "torch.distributed", _env_int("LOCAL_RANK"))


def _from_env() -> Optional[WorkerInfo]:
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    if rank is None and world is None:
        return None
    if rank is None or world is None:
        missing = "RANK" if rank is None else "WORLD_SIZE"
        raise ValueError(
            f"the environment sets one of RANK and WORLD_SIZE but not {missing}: set both "
            "(torchrun does) or pass num_workers and worker_index"
        )
    return WorkerInfo(rank, world, "environment", _env_int("LOCAL_RANK"))


def _from_jax() -> Optional[WorkerInfo]:
    jax: Any = sys.modules.get("jax")
    if jax is None:
        return None
    initialized = getattr(getattr(jax, "distributed", None), "is_initialized", None)
    if initialized is None or not initialized():
        # Asking process_count() before jax.distributed.initialize would start JAX's
        # backend and make a later initialize fail.
        return None
    return WorkerInfo(jax.process_index(), jax.process_count(), "jax", None)


def worker_info(num_workers: Optional[int] = None, worker_index: Optional[int] = None) -> WorkerInfo:
    """This process's index and the number of workers in a data-parallel job.

    The arguments win where given; what is not given comes from ``torch.distributed`` (when
    initialized), then torchrun's ``RANK``/``WORLD_SIZE``, then JAX (after
    ``jax.distributed.initialize``), else one worker, index 0. npyflow imports neither torch
    nor JAX for this.

    >>> import os, npyflow
    >>> npyflow.worker_info(4, 1)
    WorkerInfo(worker_index=1, num_workers=4, source='arguments', local_index=None)
    >>> os.environ.update(RANK="2", WORLD_SIZE="3", LOCAL_RANK="0")
    >>> npyflow.worker_info()
    WorkerInfo(worker_index=2, num_workers=3, source='environment', local_index=0)
    >>> for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"): del os.environ[k]

    Raises ValueError when the numbers do not make a worker (an index outside ``[0,
    count)``, a count that is not positive, an environment that sets only one of ``RANK``
    and ``WORLD_SIZE``).
    """
    count = None if num_workers is None else as_index(num_workers, "num_workers")
    index = None if worker_index is None else as_index(worker_index, "worker_index")
    if count is not None and index is not None:
        found = WorkerInfo(index, count, "arguments")
    else:
        found = _from_torch() or _from_env() or _from_jax() or WorkerInfo(0, 1, "default", 0)
        if count is not None and count != found.num_workers and index is None:
            raise ValueError(
                f"num_workers={count} was given without worker_index, and {found.source} says "
                f"there are {found.num_workers} workers: pass worker_index too"
            )
        found = WorkerInfo(
            found.worker_index if index is None else index,
            found.num_workers if count is None else count,
            found.source if index is None and count is None else "arguments",
            found.local_index,
        )
    if found.num_workers <= 0:
        raise ValueError(f"num_workers must be positive, got {found.num_workers} (from {found.source})")
    if not 0 <= found.worker_index < found.num_workers:
        raise ValueError(
            f"worker_index must be in [0, {found.num_workers}), got {found.worker_index} "
            f"(from {found.source})"
        )
    return found
