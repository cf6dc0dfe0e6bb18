"""The type stub of the native module (``npyflow/_npyflow.pyi``, the one place its types are
written) declares what the extension exports: the same functions, classes, methods and
properties, with the same parameters and the same defaults."""

import ast
import inspect
from pathlib import Path

import npyflow
from npyflow import _npyflow

STUB = Path(npyflow.__file__).parent / "_npyflow.pyi"


def _stub():
    return ast.parse(STUB.read_text(encoding="utf-8"))


def _params(fn: ast.FunctionDef):
    """(name, has_default) of a stub function's parameters, without self."""
    args = fn.args
    positional = args.posonlyargs + args.args
    defaults = [False] * (len(positional) - len(args.defaults)) + [True] * len(args.defaults)
    out = [(a.arg, d) for a, d in zip(positional, defaults)]
    out += [(a.arg, d is not None) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    return [p for p in out if p[0] != "self"]


def _runtime_params(obj):
    sig = inspect.signature(obj)
    return [
        (p.name, p.default is not inspect.Parameter.empty)
        for p in sig.parameters.values()
        if p.name not in ("self", "$self")
    ]


def _is_property(fn: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "property" for d in fn.decorator_list)


def test_the_stub_declares_every_function_and_class_of_the_extension_and_no_other():
    tree = _stub()
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    constants = {
        n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and not n.target.id.startswith("_")
    }
    public = {k: v for k, v in vars(_npyflow).items() if not k.startswith("__")}
    assert functions == {k for k, v in public.items() if callable(v) and not isinstance(v, type)}
    assert classes == {k for k, v in public.items() if isinstance(v, type)}
    assert constants == {k for k, v in public.items() if isinstance(v, int)}


def test_the_stub_gives_each_function_and_method_its_parameters_and_defaults():
    checked = 0
    for node in _stub().body:
        if isinstance(node, ast.FunctionDef):
            assert _params(node) == _runtime_params(getattr(_npyflow, node.name)), node.name
            checked += 1
        elif isinstance(node, ast.ClassDef):
            cls = getattr(_npyflow, node.name)
            declared = set()
            for fn in node.body:
                if not isinstance(fn, ast.FunctionDef):
                    continue
                declared.add(fn.name)
                attr = inspect.getattr_static(cls, fn.name)
                where = f"{node.name}.{fn.name}"
                if _is_property(fn):
                    assert inspect.isgetsetdescriptor(attr), where
                elif not fn.name.startswith("__"):
                    assert _params(fn) == _runtime_params(getattr(cls, fn.name)), where
                checked += 1
            runtime = {
                k for k in vars(cls) if not k.startswith("__") or k in ("__iter__", "__next__")
            }
            assert runtime <= declared, f"{node.name}: not in the stub: {runtime - declared}"
    assert checked > 40
