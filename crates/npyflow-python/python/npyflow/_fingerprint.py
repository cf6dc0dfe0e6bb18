"""Fingerprints of pipelines, for ``Dataset.snapshot``: a digest of how a dataset was built,
so that a snapshot written by one pipeline is replayed only into a pipeline built the same
way, from the same data, with the same code.

Every public call that makes a dataset records itself on its result (``Dataset._recipe``:
the call's name, its arguments, and so the datasets it was made from). The fingerprint
digests that record, and in it:

- arrays and other values by content (an array's dtype, shape and bytes);
- a string (or ``os.PathLike``) that names an existing file by its name, size and time of
  last change, and a directory by its name and time of last change; ``list_files`` by the
  names it lists now, each as a file;
- a Python function by its code (bytecode, constants, names), its defaults, the values its
  closure captured and the module globals its code names, each by these same rules, so an
  edit of a ``map`` function, or of a constant it reads, gives another fingerprint;
- functions, classes and objects of installed libraries (the standard library, site-packages,
  npyflow) by their qualified name and the library's version, and their instances by what
  ``pickle`` would save of them; an object that cannot be pickled (a lock, an open file) by
  its type alone.

Values are digested as they are when ``snapshot`` is called: a function that changes what it
captured as it runs (appends to a list, counts calls) gives another fingerprint once it has
run. What it cannot see: a file a function reads by a name it builds itself, a database, the
network. Such a pipeline gives the same fingerprint after its data changed; delete the
snapshot or give ``snapshot`` another path then (tf.data's snapshots have the same blind
spot, and more: they do not look into Python functions at all).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import stat
import sys
import sysconfig
import types
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

import numpy as np

if TYPE_CHECKING:
    from ._dataset import Dataset

# What a dataset records of the call that made it: the method's name, its positional
# arguments (a method's first is the dataset it was called on), its keyword arguments.
Recipe = Tuple[str, Tuple[Any, ...], Dict[str, Any]]

# The folders installed libraries live in: what is there is named, not read.
_LIBRARY_DIRS: Tuple[str, ...] = tuple(
    sorted(
        {
            os.path.realpath(p)
            for p in (
                *(sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")),
                os.path.dirname(os.path.abspath(__file__)),
            )
            if p
        }
    )
)

# How many objects one fingerprint may visit: a bound on the time it takes, far above any
# pipeline's arguments (a list of a million file names is one million).
_MAX_OBJECTS = 20_000_000

# The longest string that is looked up as a path (longer ones are not names of files).
_MAX_PATH = 4096


# Attributes of a class that Python fills in as it is used (``__slotnames__`` when an instance
# is first pickled, ``_abc_impl`` as an abstract class learns its subclasses): not what the
# class is.
_CLASS_CACHES = frozenset({"__dict__", "__weakref__", "__doc__", "__slotnames__", "_abc_impl"})


class FingerprintError(ValueError):
    """A dataset whose fingerprint cannot be made (one that no recorded call built)."""


def fingerprint(dataset: Dataset) -> str:
    """The hex digest (32 characters) of how ``dataset`` was built: see the module's doc."""
    h = _Hasher()
    h.feed(b"npyflow snapshot fingerprint 1", _npyflow_version().encode())
    try:
        h.value(dataset)
    except RecursionError:
        raise FingerprintError(
            "snapshot: the pipeline's arguments nest too deeply to fingerprint (objects "
            "inside objects, thousands deep); pass such data as NumPy arrays, or use "
            "Dataset.cache(filename) with a file name of your own"
        ) from None
    return h.hexdigest()


def _npyflow_version() -> str:
    """The installed npyflow's version: a snapshot written by another version is written
    again (a fix in an operation changes what it holds)."""
    try:
        return importlib.metadata.version("npyflow")
    except importlib.metadata.PackageNotFoundError:
        return ""


def _is_library(obj: Any) -> bool:
    """Whether ``obj`` (a function or class) belongs to an installed library, rather than to
    the user's code (a script, a notebook, a project outside the library folders)."""
    name = getattr(obj, "__module__", None) or ""
    if name in sys.builtin_module_names:
        return True
    path = getattr(sys.modules.get(name), "__file__", None)
    if not path:
        return False  # __main__ of a notebook or of ``python -c``: the user's code
    real = os.path.realpath(path)
    return any(real.startswith(d + os.sep) for d in _LIBRARY_DIRS)


def _library_version(obj: Any) -> str:
    """The version of the top-level package ``obj`` comes from, or ``""``."""
    top = (getattr(obj, "__module__", None) or getattr(obj, "__name__", "") or "").split(".")[0]
    package = sys.modules.get(top)
    return str(getattr(package, "__version__", ""))


class _Hasher:
    """A digest of values fed in order, each framed by a tag and its length, so that two
    different sequences never feed the same bytes."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        # Objects seen, by id, with the order they were first seen in: a second visit feeds
        # a reference, so shared and cyclic structures are digested once. They are kept
        # alive, so that an id is not reused by a temporary object during the digest.
        self._seen: Dict[int, int] = {}
        self._alive: List[Any] = []

    def hexdigest(self) -> str:
        return self._h.hexdigest()[:32]

    def feed(self, tag: bytes, data: bytes) -> None:
        self._h.update(len(tag).to_bytes(2, "little") + tag + len(data).to_bytes(8, "little"))
        self._h.update(data)

    def _first_visit(self, obj: Any) -> bool:
        key = id(obj)
        if key in self._seen:
            self.feed(b"ref", self._seen[key].to_bytes(8, "little"))
            return False
        if len(self._seen) >= _MAX_OBJECTS:
            raise FingerprintError(
                f"snapshot: the pipeline's arguments hold more than {_MAX_OBJECTS:,} objects, too "
                "many to fingerprint; pass large data as NumPy arrays, or use "
                "Dataset.cache(filename) with a file name of your own"
            )
        self._seen[key] = len(self._seen)
        self._alive.append(obj)
        return True

    def value(self, obj: Any) -> None:  # noqa: C901 (one dispatch over the kinds of values)
        from ._dataset import Dataset

        if obj is None or isinstance(obj, (bool, int, float, complex)):
            self.feed(type(obj).__name__.encode(), repr(obj).encode())
        elif isinstance(obj, (str, bytes, os.PathLike)):
            self._string(obj)
        elif isinstance(obj, np.generic):
            self.feed(b"np.generic", obj.dtype.str.encode() + b"|" + np.asarray(obj).tobytes())
        elif isinstance(obj, np.dtype):
            self.feed(b"np.dtype", str(obj.descr).encode())
        elif not self._first_visit(obj):
            return
        elif isinstance(obj, Dataset):
            self._dataset(obj)
        elif isinstance(obj, np.ndarray):
            self._array(obj)
        elif isinstance(obj, (tuple, list)):
            self.feed(type(obj).__name__.encode(), len(obj).to_bytes(8, "little"))
            for item in obj:
                self.value(item)
        elif isinstance(obj, dict):
            self.feed(b"dict", len(obj).to_bytes(8, "little"))
            for k, v in obj.items():
                self.value(k)
                self.value(v)
        elif isinstance(obj, (set, frozenset)):
            # Unordered: each item digested alone, the digests sorted.
            parts = sorted(_digest_alone(item) for item in obj)
            self.feed(b"set", b"".join(parts))
        elif isinstance(obj, types.FunctionType):
            self._function(obj)
        elif isinstance(obj, types.MethodType):
            self.feed(b"method", b"")
            self.value(obj.__func__)
            self.value(obj.__self__)
        elif isinstance(obj, types.CodeType):
            self._code(obj)
        elif isinstance(obj, types.ModuleType):
            self.feed(b"module", obj.__name__.encode() + b"|" + _library_version(obj).encode())
        elif isinstance(obj, type):
            self._class(obj)
        elif isinstance(obj, types.CellType):
            try:
                content = obj.cell_contents
            except ValueError:  # a cell not filled yet
                self.feed(b"cell", b"empty")
            else:
                self.feed(b"cell", b"")
                self.value(content)
        else:
            self._object(obj)

    def _string(self, obj: Any) -> None:
        text = os.fspath(obj) if isinstance(obj, os.PathLike) else obj
        tag = b"bytes" if isinstance(text, bytes) else b"str"
        self.feed(tag, text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        self._file(text)

    def _file(self, name: Any) -> None:
        """Adds the state of the file or directory ``name`` names, where it names one."""
        if not name or len(name) > _MAX_PATH or (b"\0" if isinstance(name, bytes) else "\0") in name:
            return
        try:
            st = os.stat(name)
        except (OSError, ValueError):
            return
        if stat.S_ISDIR(st.st_mode):
            self.feed(b"dir", st.st_mtime_ns.to_bytes(16, "little", signed=True))
        else:
            self.feed(
                b"file",
                st.st_size.to_bytes(8, "little") + st.st_mtime_ns.to_bytes(16, "little", signed=True),
            )

    def _array(self, a: np.ndarray) -> None:
        self.feed(b"ndarray", a.dtype.str.encode() + b"|" + repr(a.shape).encode())
        if a.dtype.hasobject:
            for item in a.ravel(order="C"):
                self.value(item)
            return
        if a.dtype.fields is not None:
            self.feed(b"fields", str(a.dtype.descr).encode())
        self._array_bytes(a)

    def _array_bytes(self, a: np.ndarray) -> None:
        """The bytes of ``a`` in C order; one row at a time where ``a`` is not contiguous, so
        that a large view is not copied whole."""
        if a.flags.c_contiguous or a.ndim <= 1:
            flat = np.ascontiguousarray(a).reshape(-1)
            if flat.dtype.itemsize:
                self._h.update(flat.view(np.uint8).data)
        else:
            for row in a:
                self._array_bytes(row)

    def _dataset(self, ds: Dataset) -> None:
        # The chain of datasets each made from the one before (a method's ``self``), walked
        # without recursion so that a pipeline of thousands of stages is no deeper a call;
        # digested from its source on.
        from ._dataset import Dataset

        chain = [ds]
        while True:
            args = _recipe_of(chain[-1])[1]
            before = args[0] if args and isinstance(args[0], Dataset) else None
            if before is None or id(before) in self._seen:
                break
            self._first_visit(before)
            chain.append(before)
        for i, d in enumerate(reversed(chain)):
            name, args, kwargs = _recipe_of(d)
            self.feed(b"dataset", name.encode())
            if i == 0:
                self.value(args)
            else:  # args[0] is the dataset digested just before
                self.value(args[1:])
            self.value(kwargs)
            if name == "list_files":
                # The files it lists now, each by its state: a new or changed file is new data.
                names = sorted(bytes(n) for n in d.as_numpy_iterator())
                self.feed(b"listed", len(names).to_bytes(8, "little"))
                for n in names:
                    self._string(n)

    def _code(self, code: types.CodeType) -> None:
        self.feed(
            b"code",
            code.co_code
            + repr(
                (code.co_argcount, code.co_kwonlyargcount, code.co_flags, code.co_names,
                 code.co_varnames, code.co_freevars, code.co_cellvars)
            ).encode(),
        )
        self.feed(b"consts", len(code.co_consts).to_bytes(8, "little"))
        for c in code.co_consts:
            self.value(c)

    def _function(self, f: types.FunctionType) -> None:
        if _is_library(f):
            self.feed(b"library function", f"{f.__module__}.{f.__qualname__}|{_library_version(f)}".encode())
            return
        self.feed(b"function", f.__qualname__.encode())
        self._code(f.__code__)
        self.value(f.__defaults__)
        self.value(f.__kwdefaults__)
        self.value(f.__closure__ or ())
        # The module globals its code (and the code nested in it) names: a constant or a
        # helper function of the module that the function reads.
        names = sorted(_global_names(f.__code__))
        for n in names:
            if n in f.__globals__:
                self.feed(b"global", n.encode())
                self.value(f.__globals__[n])

    def _class(self, cls: type) -> None:
        if _is_library(cls):
            self.feed(b"library class", f"{cls.__module__}.{cls.__qualname__}|{_library_version(cls)}".encode())
            return
        self.feed(b"class", cls.__qualname__.encode())
        self.value(cls.__bases__)
        members = {k: v for k, v in vars(cls).items() if k not in _CLASS_CACHES}
        for k in sorted(members):
            v = members[k]
            if isinstance(v, (staticmethod, classmethod)):
                v = v.__func__
            if isinstance(v, property):
                v = (v.fget, v.fset, v.fdel)
            self.feed(b"member", k.encode())
            self.value(v)

    def _object(self, obj: Any) -> None:
        """Any other object: its class, then what pickle would save of it."""
        self.value(type(obj))
        try:
            reduced = obj.__reduce_ex__(4)
        except Exception:  # noqa: BLE001 (no way to look inside: its type and name stand for it)
            name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
            self.feed(b"opaque", f"{getattr(obj, '__module__', '')}.{name}".encode() if name else b"")
            return
        if isinstance(reduced, str):  # a global that pickle names
            self.feed(b"global object", reduced.encode())
            return
        self.feed(b"reduced", len(reduced).to_bytes(8, "little"))
        for part in reduced[:3]:
            self.value(part)
        # The items of a list or dict subclass, where pickle would add them one by one.
        for extra in reduced[3:5]:
            self.value(None if extra is None else list(extra))


def _recipe_of(ds: Dataset) -> Recipe:
    recipe: Optional[Recipe] = ds._recipe
    if recipe is None:
        raise FingerprintError(
            f"snapshot: cannot fingerprint {ds!r}: it was not made by a call npyflow "
            "records (a dataset made inside a running pipeline, or by an adapter); build "
            "the snapshot's input from npyflow's sources and transformations, or use "
            "Dataset.cache(filename) with a file name of your own"
        )
    return recipe


def _global_names(code: types.CodeType) -> Set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _global_names(c)
    return names


def _digest_alone(item: Any) -> bytes:
    h = _Hasher()
    h.value(item)
    return bytes.fromhex(h.hexdigest())


def recipe_text(dataset: Dataset, limit: int = 8000) -> str:
    """The calls that built ``dataset`` in words, one per line from its source on (a
    dataset argument shown as the last call that made it): what a snapshot's
    ``recipe.txt`` tells a reader about the directory. It is not what the fingerprint
    digests: values are abbreviated here."""
    from ._dataset import Dataset

    def describe(value: Any) -> str:
        if isinstance(value, Dataset):
            recipe = value._recipe
            return f"<dataset made by {recipe[0]}>" if recipe else "<dataset>"
        if isinstance(value, np.ndarray):
            return f"<array {value.dtype} {value.shape}>"
        if isinstance(value, (tuple, list)) and len(value) <= 8:
            inner = ", ".join(describe(v) for v in value)
            return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
        if isinstance(value, dict) and len(value) <= 8:
            return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in value.items()) + "}"
        if callable(value) and hasattr(value, "__qualname__"):
            return f"<{type(value).__name__} {value.__qualname__}>"
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."

    lines: List[str] = []
    current: Optional[Dataset] = dataset
    while current is not None and current._recipe is not None:
        name, args, kwargs = current._recipe
        current = args[0] if args and isinstance(args[0], Dataset) else None
        shown = args[1:] if current is not None else args
        parts = [describe(a) for a in shown] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
        lines.append(f"{'.' if current is not None else ''}{name}({', '.join(parts)})")
    text = "\n".join(reversed(lines)) + "\n"
    return text if len(text) <= limit else text[: limit - 4] + "...\n"
