"""``Dataset.snapshot``: written by the first complete pass, replayed by later passes and
later programs, and keyed by a fingerprint of how the pipeline was built, so that a change of
its code, constants, arrays or files never replays a stale snapshot."""

import functools
import json
import os
import sys
import textwrap

import numpy as np
import pytest

import npyflow as tf
from npyflow._fingerprint import fingerprint
from procs import run_workers

D = tf.data.Dataset
E = tf.data.experimental


def _snapshot_dirs(root):
    return sorted(d for d in os.listdir(root) if not d.startswith("."))


def _rows(ds):
    return [tuple(np.asarray(v).tolist() for v in e) if isinstance(e, tuple) else np.asarray(e).tolist()
            for e in ds.as_numpy_iterator()]


def test_the_first_complete_pass_writes_and_later_passes_replay(tmp_path):
    calls = []

    def scale(x, name):
        calls.append(int(x))
        return x * 2, name

    x = np.arange(10)
    names = np.array([f"n{i}".encode() for i in range(10)])
    plain = D.from_tensor_slices((x, names)).map(scale, trace=False).batch(3)
    expected = _rows(plain)
    ds = D.from_tensor_slices((x, names)).map(scale, trace=False).batch(3).snapshot(tmp_path / "snap")

    (digest,) = _snapshot_dirs(tmp_path / "snap")
    assert len(digest) == 32 and int(digest, 16) >= 0
    recipe = (tmp_path / "snap" / digest / "recipe.txt").read_text()
    assert recipe.splitlines() == [
        "from_tensor_slices((<array int64 (10,)>, <array |S2 (10,)>))",
        f".map(<function {scale.__qualname__}>, trace=False)",
        ".batch(3)",
    ]
    calls.clear()
    assert _rows(ds) == expected
    assert sorted(calls) == list(range(10))
    assert os.path.exists(tmp_path / "snap" / digest / "elements.npyflow-cache")
    calls.clear()
    assert _rows(ds) == expected and _rows(ds) == expected
    assert calls == []  # replayed: the map did not run again


def test_a_pass_that_stops_early_keeps_nothing(tmp_path):
    ds = D.range(100).map(lambda x: x + 1).snapshot(tmp_path)
    (digest,) = _snapshot_dirs(tmp_path)
    for i, _ in enumerate(ds):
        if i == 10:
            break
    assert sorted(os.listdir(tmp_path / digest)) == ["recipe.txt"]
    assert _rows(ds) == list(range(1, 101))
    assert sorted(os.listdir(tmp_path / digest)) == ["elements.npyflow-cache", "recipe.txt"]
    assert _rows(ds) == list(range(1, 101))


def test_an_iterator_state_saved_while_writing_restores_and_completes_the_snapshot(tmp_path):
    ds = D.range(50).map(lambda x: x * 3).snapshot(tmp_path)
    (digest,) = _snapshot_dirs(tmp_path)
    it = iter(ds)
    head = [int(next(it)) for _ in range(20)]
    state = it.get_state()
    del it  # the writing pass ends unfinished: nothing is kept
    assert sorted(os.listdir(tmp_path / digest)) == ["recipe.txt"]
    again = iter(ds)
    again.set_state(state)
    tail = [int(v) for v in again]
    assert head + tail == [3 * i for i in range(50)]
    # The restored pass wrote the elements before its position again: the file is whole.
    assert sorted(os.listdir(tmp_path / digest)) == ["elements.npyflow-cache", "recipe.txt"]
    assert _rows(ds) == [3 * i for i in range(50)]


CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import npyflow as tf

    SCALE = int(sys.argv[2])
    calls = 0

    def scaled(x):
        global calls
        calls += 1
        return x * SCALE

    ds = tf.data.Dataset.range(8).map(scaled, trace=False).snapshot(sys.argv[1])
    before = calls
    values = [int(v) for v in ds.as_numpy_iterator()]
    print(json.dumps({"values": values, "calls": calls - before}))
    """
)


def test_a_later_program_replays_the_snapshot_and_a_changed_one_writes_its_own(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    root = tmp_path / "snap"

    def run(scale):
        (out,) = run_workers([str(script), str(root), str(scale)], [{}], timeout=120)
        return out

    first = run(3)
    assert first == {"values": [3 * i for i in range(8)], "calls": 8}
    assert len(_snapshot_dirs(root)) == 1
    again = run(3)
    assert again == {"values": first["values"], "calls": 0}  # read from the file
    changed = run(5)  # the constant the function reads changed: a new snapshot
    assert changed == {"values": [5 * i for i in range(8)], "calls": 8}
    assert len(_snapshot_dirs(root)) == 2


def _const_global(x):
    return x * _FACTOR


_FACTOR = 2


def _builders():
    """Pairs of pipelines that differ in one thing a snapshot must notice."""
    arr = np.arange(12.0).reshape(4, 3)

    def with_default(k=1):
        return lambda x: x + k

    def closing_over(k):
        return lambda x: x * k

    class Scaler:
        def __init__(self, k):
            self.k = k

        def __call__(self, x):
            return x * self.k

    return {
        "function code": (lambda: D.range(4).map(lambda x: x + 1), lambda: D.range(4).map(lambda x: x - 1)),
        "closure value": (lambda: D.range(4).map(closing_over(2)), lambda: D.range(4).map(closing_over(3))),
        "default": (lambda: D.range(4).map(with_default()), lambda: D.range(4).map(with_default(2))),
        "array content": (
            lambda: D.from_tensor_slices(arr),
            lambda: D.from_tensor_slices(np.where(arr == 5.0, -1.0, arr)),
        ),
        "array dtype": (lambda: D.from_tensor_slices(arr), lambda: D.from_tensor_slices(arr.astype(np.float32))),
        "non-contiguous view": (
            lambda: D.from_tensor_slices(arr[:, ::2]),
            lambda: D.from_tensor_slices(arr[:, 1:]),
        ),
        "batch size": (lambda: D.range(9).batch(2), lambda: D.range(9).batch(3)),
        "shuffle seed": (lambda: D.range(9).shuffle(9, seed=1), lambda: D.range(9).shuffle(9, seed=2)),
        "op parameter": (
            lambda: D.range(4).map(tf.ops.cast(np.float32)),
            lambda: D.range(4).map(tf.ops.cast(np.float16)),
        ),
        "partial arguments": (
            lambda: D.range(4).map(functools.partial(np.add, 1)),
            lambda: D.range(4).map(functools.partial(np.add, 2)),
        ),
        "library function": (lambda: D.range(4).map(np.negative), lambda: D.range(4).map(np.positive)),
        "callable object's state": (lambda: D.range(4).map(Scaler(2)), lambda: D.range(4).map(Scaler(3))),
        "zip order": (
            lambda: D.zip((D.range(3), D.range(4))),
            lambda: D.zip((D.range(4), D.range(3))),
        ),
    }


@pytest.mark.parametrize("what", list(_builders()))
def test_the_fingerprint_changes_with_what_the_pipeline_is_built_from(what):
    one, other = _builders()[what]
    a, a_again = fingerprint(one()), fingerprint(one())
    b = fingerprint(other())
    assert a == a_again, f"{what}: the same pipeline built twice gave two fingerprints"
    assert a != b, f"{what}: a change gave the same fingerprint"


def test_the_fingerprint_follows_globals_files_and_listings(tmp_path):
    global _FACTOR
    before = fingerprint(D.range(4).map(_const_global))
    _FACTOR = 3
    try:
        assert fingerprint(D.range(4).map(_const_global)) != before
    finally:
        _FACTOR = 2
    assert fingerprint(D.range(4).map(_const_global)) == before

    path = tmp_path / "x.npy"
    np.save(path, np.arange(4))
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    stamped = fingerprint(D.from_npy(path))
    np.save(path, np.arange(4)[::-1])  # same size, new content and time
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert fingerprint(D.from_npy(path)) != stamped

    (tmp_path / "parts").mkdir()
    np.save(tmp_path / "parts" / "0.npy", np.arange(3))
    listed = fingerprint(D.list_files(str(tmp_path / "parts" / "*.npy"), shuffle=False))
    np.save(tmp_path / "parts" / "1.npy", np.arange(3))
    assert fingerprint(D.list_files(str(tmp_path / "parts" / "*.npy"), shuffle=False)) != listed


def test_an_edited_function_never_replays_a_stale_snapshot(tmp_path):
    first = D.range(5).map(lambda x: x * 10).snapshot(tmp_path)
    assert _rows(first) == [0, 10, 20, 30, 40]
    edited = D.range(5).map(lambda x: x * 100).snapshot(tmp_path)
    assert _rows(edited) == [0, 100, 200, 300, 400]
    assert len(_snapshot_dirs(tmp_path)) == 2
    assert _rows(D.range(5).map(lambda x: x * 10).snapshot(tmp_path)) == [0, 10, 20, 30, 40]


def test_deep_pipelines_and_recursive_functions_fingerprint(tmp_path):
    ds = D.range(3)
    for _ in range(3000):  # far deeper than Python's recursion limit
        ds = ds.map(lambda x: x + 1)
    assert fingerprint(ds) == fingerprint(ds)

    def countdown(n):
        return n if n < 1 else countdown(n - 1)

    looped = {"self": None}
    looped["self"] = looped  # a cycle among captured values
    assert fingerprint(D.range(3).map(lambda x: countdown(x) if looped else x)) == fingerprint(
        D.range(3).map(lambda x: countdown(x) if looped else x)
    )


def test_arguments_nested_too_deeply_are_refused_with_a_clear_error(tmp_path):
    nested = []
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(ValueError, match="nest too deeply"):
        D.range(3).map(lambda x: x if nested else x).snapshot(tmp_path)


def test_tf_data_arguments(tmp_path):
    base = D.range(6).map(lambda x: x * 2)
    with pytest.warns(UserWarning, match="compression='GZIP' is ignored"):
        gz = base.snapshot(tmp_path / "a", compression="GZIP")
    assert _rows(gz) == [0, 2, 4, 6, 8, 10]
    with pytest.raises(ValueError, match="compression must be"):
        base.snapshot(tmp_path / "b", compression="ZSTD")
    with pytest.raises(TypeError, match="shard_func must be a function"):
        base.snapshot(tmp_path / "b", shard_func=3)
    with pytest.raises(ValueError, match="is a URL"):
        base.snapshot("s3://bucket/snap")

    sharded = base.snapshot(tmp_path / "c", shard_func=lambda x: x % 2)
    assert _rows(sharded) == _rows(sharded) == [0, 2, 4, 6, 8, 10]

    read = base.snapshot(tmp_path / "d", reader_func=lambda shards: shards.interleave(lambda s: s.map(lambda v: -v)))
    assert _rows(read) == _rows(read) == [0, -2, -4, -6, -8, -10]
    with pytest.raises(TypeError, match="reader_func must return a Dataset"):
        base.snapshot(tmp_path / "e", reader_func=lambda shards: 3)

    applied = base.apply(E.snapshot(str(tmp_path / "f"), compression=None))
    assert _rows(applied) == _rows(applied) == [0, 2, 4, 6, 8, 10]
    assert _snapshot_dirs(tmp_path / "f") == _snapshot_dirs(tmp_path / "a")  # same pipeline


def test_a_dataset_made_inside_a_pipeline_is_refused(tmp_path):
    window = next(iter(D.range(4).window(2)))
    with pytest.raises(ValueError, match=r"cannot fingerprint .*use Dataset.cache\(filename\)"):
        window.snapshot(tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_snapshot_path_that_is_a_file_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError) as e:
        D.range(3).snapshot(blocker)
    assert str(blocker) in str(e.value)
