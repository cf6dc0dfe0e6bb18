"""``npyflow.profile``: one pass of a dataset traced, the trace written to a file, and a short
report on where the time went."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from . import _npyflow
from ._args import PathLike, as_path

if TYPE_CHECKING:
    from ._dataset import Dataset


@dataclass(frozen=True)
class ProfileReport:
    """What :func:`profile` found. ``str(report)`` is the report in words.

    Attributes:
        bottleneck: the name of the stage with the most time of its own (``"Map"``,
            ``"Batch"``, ...), or None when nothing ran.
        depth: how many stages are above it (0: the last stage of the pipeline).
        own_seconds: its time of its own (summed over threads).
        share: its share of the time of its own of all stages, from 0 to 1.
        advice: what to change, in words.
        elements: elements the pass handed out.
        events: events written to the trace; ``dropped``: events past its cap, ``cap``.
    """

    text: str
    bottleneck: Optional[str]
    depth: Optional[int]
    own_seconds: float
    share: float
    advice: str
    elements: int
    events: int
    dropped: int
    cap: int

    def __str__(self) -> str:
        return self.text


def profile(
    dataset: Dataset, path: PathLike, steps: Optional[int] = None, *, max_events: Optional[int] = None
) -> ProfileReport:
    """Iterates ``dataset`` once (its first ``steps`` elements, or all of them), writes a trace
    of that pass to ``path`` and returns a report naming the bottleneck stage.

    The trace is in the Chrome trace-event format: open it in Perfetto (ui.perfetto.dev) or
    ``chrome://tracing``. It has a track per thread with a span for every element or batch
    each stage made (nested as the stages call each other) and counters of the buffers of
    parallel stages and ``prefetch``. It keeps at most ``max_events`` events (1,048,576 by
    default, 32 MiB at most) and counts the rest as dropped. Counting every element costs
    time of its own, so time a pipeline without ``profile``.

    Unlike TensorBoard's input-pipeline analyzer, which samples a TensorFlow job through the
    profiler, this records every call of every stage of one pass and needs nothing but the
    file.

    >>> import npyflow as tfd
    >>> ds = tfd.Dataset.range(100).map(lambda x: x * 2).batch(10)
    >>> report = tfd.profile(ds, "/tmp/trace.json")  # doctest: +SKIP
    >>> print(report)  # doctest: +SKIP
    bottleneck: Map (depth 1), 1.2 ms of its own, 80% of all stages'; raise the map's ...
    """
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
        raise ValueError(f"steps must be a non-negative int or None, got {steps!r}")
    if max_events is not None and (
        isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 0
    ):
        raise ValueError(f"max_events must be a non-negative int or None, got {max_events!r}")
    core = getattr(dataset, "_ds", None)
    if not isinstance(core, _npyflow.CoreDataset):
        raise TypeError(f"profile needs an npyflow.Dataset, got {type(dataset).__name__}")
    found = _npyflow.profile(core, as_path(path), steps, max_events)
    return ProfileReport(**found)
