"""``tf.data.Options``: the options a whole dataset carries (``Dataset.with_options``).

npyflow honours ``deterministic``, ``autotune.enabled``, ``autotune.cpu_budget``,
``autotune.ram_budget`` and ``experimental_optimization.map_parallelization``; every other option tf.data has is accepted, checked for
its type as tf.data checks it, kept (``options()`` gives it back) and listed by
``Options.ignored_options()``. ``with_options`` warns once per process for each ignored
option a program sets."""

from __future__ import annotations

import enum
import warnings
from typing import Any, Dict, List, Optional, Set, Tuple, Type


class AutoShardPolicy(enum.IntEnum):
    """``tf.data.experimental.AutoShardPolicy`` (npyflow does not shard automatically: use
    ``Dataset.shard``)."""

    OFF = -1
    AUTO = 0
    FILE = 1
    DATA = 2
    HINT = 3


class ExternalStatePolicy(enum.IntEnum):
    """``tf.data.experimental.ExternalStatePolicy`` (accepted, ignored)."""

    WARN = 0
    IGNORE = 1
    FAIL = 2


class AutotuneAlgorithm(enum.IntEnum):
    """``tf.data.experimental.AutotuneAlgorithm`` (accepted, ignored)."""

    DEFAULT = 0
    HILL_CLIMB = 1
    GRADIENT_DESCENT = 2
    MAX_PARALLELISM = 3
    STAGE_BASED = 4


#: The options npyflow honours (dotted names); the rest are kept and ignored.
HONOURED = frozenset(
    {
        "deterministic",
        "autotune.enabled",
        "autotune.cpu_budget",
        "autotune.ram_budget",
        "experimental_optimization.map_parallelization",
    }
)

_WARNED: Set[str] = set()


class _OptionsGroup:
    """A group of options: each is unset (None, or its default) until a program sets it to a
    value of its type."""

    #: name -> (type, default)
    _fields: Dict[str, Tuple[Type[Any], Any]] = {}
    #: name -> group class
    _groups: Dict[str, Type[_OptionsGroup]] = {}
    #: tf.data's old names -> the names they stand for
    _aliases: Dict[str, str] = {}
    __slots__ = ("_values", "_frozen")

    def __init__(self) -> None:
        values: Dict[str, Any] = {name: default for name, (_, default) in self._fields.items()}
        values.update({name: group() for name, group in self._groups.items()})
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_frozen", False)

    def _freeze(self) -> None:
        """Refuses changes from now on, here and in the groups inside (what
        ``Dataset.options()`` returns: changing it would change no dataset)."""
        object.__setattr__(self, "_frozen", True)
        for name in self._groups:
            self._values[name]._freeze()

    def __getattr__(self, name: str) -> Any:
        name = self._aliases.get(name, name)
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__} has no option {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if object.__getattribute__(self, "_frozen"):
            raise ValueError(
                "Mutating `tf.data.Options()` returned by `tf.data.Dataset.options()` has no "
                "effect. Use `tf.data.Dataset.with_options(options)` to set or update dataset "
                "options."
            )
        name = self._aliases.get(name, name)
        if name in self._groups:
            if not isinstance(value, self._groups[name]):
                raise TypeError(
                    f'Property "{name}" must be of type {self._groups[name]!r}, got: {value!r} '
                    f"(type: {type(value)!r})"
                )
            self._values[name] = value
            return
        if name not in self._fields:
            raise AttributeError(f"Cannot set the property {name} on {type(self).__name__}.")
        kind, _ = self._fields[name]
        ok = value is None or (
            isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        )
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            raise TypeError(
                f'Property "{name}" must be of type {kind!r}, got: {value!r} (type: {type(value)!r})'
            )
        self._values[name] = value

    def _set(self, prefix: str = "") -> Dict[str, Any]:
        """The options set to other than their defaults, by dotted name."""
        out: Dict[str, Any] = {}
        for name, value in self._values.items():
            if name in self._groups:
                out.update(value._set(f"{prefix}{name}."))
            elif value != self._fields[name][1]:
                out[prefix + name] = value
        return out

    def _assign(self, dotted: str, value: Any) -> None:
        head, _, rest = dotted.partition(".")
        if rest:
            self._values[head]._assign(rest, value)
        else:
            self._values[head] = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _OptionsGroup) and type(other) is type(self) and self._set() == other._set()

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in sorted(self._set().items()))
        return f"{type(self).__name__}({body})"


class AutotuneOptions(_OptionsGroup):
    """``tf.data.experimental.AutotuneOptions``. npyflow honours ``enabled`` (False: AUTOTUNE
    stages run ``cpu_budget`` threads, prefetch buffers keep their first size), ``cpu_budget``
    (the most threads an AUTOTUNE stage gets and the cores' worth of CPU the tuned stages may
    use together; the cores by default) and ``ram_budget`` (the most bytes the tuned stages'
    buffers may hold together, half the memory by default): AUTOTUNE stages start with one
    thread and are given threads and buffer while the pipeline runs, where their consumer
    waits for them. 0 means the default for both budgets, as in tf.data; a negative budget is
    refused (ValueError). ``autotune_algorithm``, ``initial_parallelism`` and
    ``min_parallelism`` are kept and ignored."""

    __slots__ = ()
    _fields = {
        "enabled": (bool, None),
        "cpu_budget": (int, None),
        "ram_budget": (int, None),
        "autotune_algorithm": (AutotuneAlgorithm, None),
        "initial_parallelism": (int, None),
        "min_parallelism": (int, None),
    }
    _groups = {}


class OptimizationOptions(_OptionsGroup):
    """``tf.data.experimental.OptimizationOptions``. npyflow honours ``map_parallelization``
    (on unless set to False, as in tf.data, for the whole pipeline wherever
    ``with_options`` is): a ``map`` that runs natively (a traced function or
    ``npyflow.ops``) and is followed by ``batch``, with neither given
    ``num_parallel_calls``, makes its batches on AUTOTUNE threads, in order. The
    function's values do not depend on the thread, so only the speed changes. tf.data
    parallelizes every map of a function without state; npyflow does not parallelize a
    Python function it could not trace (it holds the GIL), nor a native map without a
    ``batch`` after it (one element is too little work to share out). The other options
    are accepted and ignored: npyflow fuses maps and batches of ops always."""

    __slots__ = ()
    _fields = {
        name: (bool, None)
        for name in (
            "apply_default_optimizations",
            "filter_fusion",
            "filter_parallelization",
            "inject_prefetch",
            "map_and_batch_fusion",
            "map_and_filter_fusion",
            "map_fusion",
            "map_parallelization",
            "noop_elimination",
            "parallel_batch",
            "seq_interleave_prefetch",
            "shuffle_and_repeat_fusion",
        )
    }
    _groups = {}


class ThreadingOptions(_OptionsGroup):
    """``tf.data.ThreadingOptions`` (accepted, ignored: npyflow's stages have their own
    threads, ``num_parallel_calls`` of them)."""

    __slots__ = ()
    _fields = {"max_intra_op_parallelism": (int, None), "private_threadpool_size": (int, None)}
    _groups = {}


class DistributeOptions(_OptionsGroup):
    """``tf.data.experimental.DistributeOptions`` (accepted, ignored: use ``Dataset.shard``
    or ``distributed_batch``)."""

    __slots__ = ()
    _fields = {"auto_shard_policy": (AutoShardPolicy, AutoShardPolicy.AUTO), "num_devices": (int, None)}
    _groups = {}


class ServiceOptions(_OptionsGroup):
    """``tf.data.experimental.ServiceOptions`` (accepted, ignored: npyflow has no service)."""

    __slots__ = ()
    _fields = {"pinned": (bool, None)}
    _groups = {}


class Options(_OptionsGroup):
    """``tf.data.Options``: options for a whole dataset, given to ``Dataset.with_options``.

    npyflow honours ``autotune.enabled``, ``autotune.cpu_budget`` and ``autotune.ram_budget``
    (see ``AutotuneOptions``; for the whole pipeline, as in tf.data),
    ``experimental_optimization.map_parallelization`` (see ``OptimizationOptions``; for the
    whole pipeline too) and ``deterministic``
    (``experimental_deterministic`` is its old name, and
    ``experimental_threading`` that of ``threading``, as in tf.data): it is
    the ``deterministic`` of the parallel stages (``map``, ``interleave``, ``batch`` with
    ``num_parallel_calls``) built *after* ``with_options`` whose own ``deterministic`` is
    None. tf.data applies it to the stages before too; npyflow builds each stage when its
    method is called, so set options on the source (or early) for the same effect.

    Every other option is accepted, checked for its type and kept, and does nothing:
    ``Options.ignored_options()`` lists those a program set, and ``with_options`` warns once
    per process for each."""

    __slots__ = ()
    _fields = {
        "deterministic": (bool, None),
        "dataset_name": (str, None),
        "experimental_external_state_policy": (ExternalStatePolicy, None),
        "experimental_slack": (bool, None),
        "experimental_symbolic_checkpoint": (bool, None),
        "experimental_warm_start": (bool, None),
        "framework_type": (list, None),
    }
    _groups = {
        "autotune": AutotuneOptions,
        "experimental_optimization": OptimizationOptions,
        "threading": ThreadingOptions,
        "experimental_distribute": DistributeOptions,
        "experimental_service": ServiceOptions,
    }
    _aliases = {"experimental_deterministic": "deterministic", "experimental_threading": "threading"}

    def ignored_options(self) -> List[str]:
        """The options set here that npyflow ignores, by dotted name
        (``"threading.private_threadpool_size"``), sorted."""
        return sorted(k for k in self._set() if k not in HONOURED)

    def merge(self, options: Optional[Options]) -> Options:
        """These options with those set in ``options`` on top (as tf.data merges a dataset's
        options: the later ones win where both set an option, except ``framework_type``, a
        list, whose lists are joined)."""
        out = Options()
        for source in (self, options):
            if source is not None:
                for name, value in source._set().items():
                    if name == "framework_type" and out.framework_type:
                        value = list(out.framework_type) + list(value)
                    out._assign(name, value)
        return out

    def _deterministic(self) -> Optional[bool]:
        d: Optional[bool] = self._values["deterministic"]
        return d


def warn_ignored(options: Options) -> None:
    """One warning per process for each ignored option ``options`` sets."""
    new = [name for name in options.ignored_options() if name not in _WARNED]
    if new:
        _WARNED.update(new)
        warnings.warn(
            "npyflow ignores these tf.data options (kept, with no effect): " + ", ".join(new),
            UserWarning,
            stacklevel=3,
        )
