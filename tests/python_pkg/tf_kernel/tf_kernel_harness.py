"""What the ports of TensorFlow's tf.data kernel tests share (tests/python_pkg/tf_kernel).

Each ported module names the TensorFlow test file it comes from (``TF_FILE``) and lists
every test method of that file in ``TF_TESTS``, as ``"Class.method": status``:

- ``PORTED``: ported here as ``test_<Class>_<method>``, expected values as TensorFlow's test
  states them (or as TensorFlow 2.21 gives them, where the test computes them);
- ``differs(reason)``: ported, but asserting npyflow's documented, deliberate difference;
- ``left_out(reason)``: not ported, and why (graph mode, sparse or ragged tensors, TF's
  internal APIs, ...).

``test_manifest.py`` checks that the lists and the test functions agree, and that the
README's counts are these.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

import numpy as np

PORTED = "ported"


class Differs:
    def __init__(self, reason: str) -> None:
        self.reason = reason


class LeftOut:
    def __init__(self, reason: str) -> None:
        self.reason = reason


def differs(reason: str) -> Differs:
    return Differs(reason)


def left_out(reason: str) -> LeftOut:
    return LeftOut(reason)


# Reasons shared by many files.
CHECKPOINT_OPTIONS = (
    "the symbolic_checkpoint option and TF's checkpoint machinery; the restore itself is "
    "ported with get_state/set_state"
)
RANDOM_ACCESS = (
    "random_access.at, TF's internal per-index read; npyflow has no per-index read from "
    "Python (global_shuffle uses its random access)"
)
GRAPH_ONLY = "graph mode (placeholders, sessions): npyflow is eager only"
SPARSE = "sparse tensors: npyflow has none"
RAGGED = "ragged tensors: npyflow has none"
TF_OPS = "needs TensorFlow ops or objects with no NumPy counterpart (variables, TensorArray, py_func, devices)"


def to_py(x: Any) -> Any:
    """An element as plain Python values (lists for arrays, bytes for strings), for
    comparing with the values TensorFlow's tests state."""
    if isinstance(x, dict):
        return {k: to_py(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(to_py(v) for v in x)
    if isinstance(x, list):
        return [to_py(v) for v in x]
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x).tolist()
    return x


def outputs(ds: Any, limit: Optional[int] = None) -> List[Any]:
    out = []
    for i, x in enumerate(ds.as_numpy_iterator()):
        if limit is not None and i >= limit:
            break
        out.append(to_py(x))
    return out


def assert_produces(ds: Any, expected: Any) -> None:
    """TensorFlow's assertDatasetProduces: every element, in order, and then the end."""
    got = outputs(ds)
    want = [to_py(e) for e in expected]
    assert len(got) == len(want), (len(got), len(want), got[:10], want[:10])
    for i, (g, w) in enumerate(zip(got, want)):
        assert_equal(g, w, f"element {i}")


def assert_equal(g: Any, w: Any, where: str = "") -> None:
    if isinstance(w, dict):
        assert isinstance(g, dict) and set(g) == set(w), (where, g, w)
        for k in w:
            assert_equal(g[k], w[k], f"{where}[{k!r}]")
    elif isinstance(w, (tuple, list)) and isinstance(g, (tuple, list)) and not _numeric(w):
        assert len(g) == len(w), (where, g, w)
        for i, (a, b) in enumerate(zip(g, w)):
            assert_equal(a, b, f"{where}[{i}]")
    else:
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w), err_msg=where)


def _numeric(v: Any) -> bool:
    try:
        arr = np.asarray(v)
    except ValueError:
        return False
    return arr.dtype != object


def assert_shapes(ds: Any, expected: Any) -> None:
    """The element spec's shapes (TensorFlow's get_legacy_output_shapes), None unknown."""

    def shapes(spec: Any) -> Any:
        if isinstance(spec, dict):
            return {k: shapes(v) for k, v in spec.items()}
        if isinstance(spec, tuple):
            return tuple(shapes(v) for v in spec)
        return None if spec.shape is None else list(spec.shape)

    assert shapes(ds.element_spec) == expected, (shapes(ds.element_spec), expected)


def assert_restores(build: Callable[[], Any], num_outputs: int) -> None:
    """What TensorFlow's checkpoint tests verify, with npyflow's get_state/set_state: an
    iterator saved after k elements and restored into a new iterator of a freshly built
    pipeline goes on with the same elements, for k at the start, the middle and the end."""
    full = outputs(build(), limit=num_outputs + 1)
    assert len(full) == num_outputs, (len(full), num_outputs)
    for k in sorted({0, 1, num_outputs // 2, max(num_outputs - 1, 0), num_outputs}):
        if k > num_outputs:
            continue
        it = build().as_numpy_iterator()
        head = [to_py(next(it)) for _ in range(k)]
        state = it.get_state()
        again = build().as_numpy_iterator()
        again.set_state(state)
        rest = []
        for x in again:
            rest.append(to_py(x))
            if len(rest) > num_outputs - k:
                break
        for i, (g, w) in enumerate(zip(head + rest, full)):
            assert_equal(g, w, f"restored after {k}: element {i}")
        assert len(head + rest) == num_outputs, (k, len(head + rest), num_outputs)
