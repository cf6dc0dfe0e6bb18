"""Python structure that npyflow's core does not keep: namedtuples.

The core's elements are tensors in tuples and dicts. A dataset made from namedtuples (by
``zip``, ``from_tensor_slices``, ``from_tensors``, ``from_generator``'s signature, or a
function that returns one) keeps a *template* of where they were, and its elements, its
``element_spec`` and the elements its functions receive are rebuilt as those namedtuples,
as tf.data gives them. A template is None (take the element as the core gives it), or
``("nt", cls, [templates])``, ``("tuple", [templates])`` or ``("dict", {key: template})``
around a namedtuple somewhere inside.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, Optional, Tuple

Template = Optional[Tuple[Any, ...]]


def is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def template_of(value: Any) -> Template:
    """The template of a Python structure (a value, a spec or a signature); None when it
    holds no namedtuple."""
    if is_namedtuple(value):
        return ("nt", type(value), [template_of(v) for v in value])
    if isinstance(value, tuple):
        parts = [template_of(v) for v in value]
        return ("tuple", parts) if any(p is not None for p in parts) else None
    if isinstance(value, dict):
        items: Dict[Any, Template] = {k: template_of(v) for k, v in value.items()}
        return ("dict", items) if any(t is not None for t in items.values()) else None
    return None


def repack(value: Any, template: Template) -> Any:
    """``value`` (as the core gives it) with the template's namedtuples rebuilt. A value
    whose structure does not fit the template is left as it is."""
    if template is None:
        return value
    kind = template[0]
    if kind == "nt":
        parts = template[2]
        if isinstance(value, tuple) and len(value) == len(parts):
            return template[1](*[repack(v, t) for v, t in zip(value, parts)])
        return value
    if kind == "tuple":
        parts = template[1]
        if isinstance(value, tuple) and len(value) == len(parts):
            return tuple(repack(v, t) for v, t in zip(value, parts))
        return value
    if isinstance(value, dict):
        items = template[1]
        return {k: repack(v, items.get(k)) for k, v in value.items()}
    return value


def with_inputs(f: Callable[..., Any], template: Template) -> Callable[..., Any]:
    """``f`` called with its element rebuilt by ``template``. The core passes a tuple
    element's parts as positional arguments; a namedtuple element is one argument, as in
    tf.data."""
    if template is None:
        return f
    if template[0] == "nt":

        def call_nt(*args: Any) -> Any:
            return f(repack(tuple(args), template))

        return call_nt
    if template[0] == "tuple":
        parts = template[1]

        def call_tuple(*args: Any) -> Any:
            if len(args) == len(parts):
                return f(*[repack(a, t) for a, t in zip(args, parts)])
            return f(*args)

        return call_tuple

    def call_one(*args: Any) -> Any:
        if len(args) == 1:
            return f(repack(args[0], template))
        return f(*args)

    return call_one


class Capture:
    """Wraps a user function and keeps the template of what it returns while the dataset is
    being made (when npyflow calls it to find its output spec). It looks like the function
    it wraps (``functools.update_wrapper``: its name, and ``__wrapped__``)."""

    def __init__(self, f: Callable[..., Any], of: Callable[[Any], Template] = template_of) -> None:
        self.f = f
        self.template: Template = None
        self.active = True
        self.of = of
        try:
            functools.update_wrapper(self, f)
        except (AttributeError, TypeError):
            pass

    def __call__(self, *args: Any) -> Any:
        out = self.f(*args)
        if self.active:
            self.template = self.of(out)
        return out

    def done(self) -> Template:
        self.active = False
        return self.template


class Repacking:
    """An iterator over a dataset's elements with its namedtuples rebuilt; saves and restores
    as the iterator it wraps."""

    __slots__ = ("_it", "_template")

    def __init__(self, it: Any, template: Template) -> None:
        self._it = it
        self._template = template

    def __iter__(self) -> "Repacking":
        return self

    def __next__(self) -> Any:
        return repack(next(self._it), self._template)

    def get_state(self) -> bytes:
        return self._it.get_state()  # type: ignore[no-any-return]

    def set_state(self, state: bytes) -> None:
        self._it.set_state(state)


__all__: List[str] = ["template_of", "repack", "with_inputs", "Capture", "Repacking"]
