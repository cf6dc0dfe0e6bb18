"""Iterator state from Python: get_state() gives bytes, and set_state() on a new iterator of
the same pipeline, here or in a restarted interpreter, continues exactly where it was."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import npyflow


def pipeline(seed=None):
    x = np.arange(200, dtype=np.int64)
    y = x * 10
    return (
        npyflow.Dataset.from_tensor_slices((x, y))
        .shuffle(16, seed=seed)
        .map(lambda a, b: (a + 1, b), num_parallel_calls=3)
        .batch(7)
        .prefetch(2)
    )


def values(it):
    return [(a.tolist(), b.tolist()) for a, b in it]


@pytest.mark.parametrize("stop", [0, 1, 5, 28, 29])
def test_restore_continues_in_the_same_process(stop):
    ds = pipeline(seed=5)
    it = iter(ds)
    for _ in range(stop):
        next(it)
    state = it.get_state()
    assert isinstance(state, bytes)
    rest = values(it)
    again = iter(pipeline(seed=5))
    again.set_state(state)
    assert values(again) == rest


def test_restore_in_a_restarted_interpreter_with_a_drawn_seed(tmp_path):
    # seed=None draws a seed per dataset: the state carries it, so a restarted program
    # (which draws another) still continues the saved order.
    ds = pipeline(seed=None)
    it = iter(ds)
    for _ in range(9):
        next(it)
    (tmp_path / "state.bin").write_bytes(it.get_state())
    expected = values(it)
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r})
        from test_state import pipeline, values
        it = iter(pipeline(seed=None))
        it.set_state(open({str(tmp_path / 'state.bin')!r}, 'rb').read())
        print(json.dumps(values(it)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    import json

    assert [tuple(v) for v in json.loads(out)] == expected


def test_a_state_from_another_pipeline_is_refused():
    it = iter(npyflow.Dataset.range(10).batch(2))
    next(it)
    state = it.get_state()
    other = iter(npyflow.Dataset.range(10).batch(3))
    with pytest.raises(ValueError, match="does not fit this pipeline"):
        other.set_state(state)
    assert next(other).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="not an npyflow iterator state"):
        other.set_state(b"\x00" * 40)


def test_state_of_a_global_shuffle_is_small():
    x = np.arange(100_000, dtype=np.float32).reshape(-1, 4)
    ds = npyflow.Dataset.from_tensor_slices(x).global_shuffle(seed=3).batch(32)
    it = iter(ds)
    for _ in range(100):
        next(it)
    state = it.get_state()
    assert len(state) < 256
    nxt = next(it)
    again = iter(ds)
    again.set_state(state)
    np.testing.assert_array_equal(next(again), nxt)


def test_distributed_batch_splits_an_epoch_among_workers():
    n, workers, batch = 103, 4, 8
    seen = []
    steps = set()
    for i in range(workers):
        ds = (
            npyflow.Dataset.range(n)
            .global_shuffle(seed=9)
            .distributed_batch(batch, num_workers=workers, worker_index=i)
        )
        batches = list(ds)
        steps.add(len(batches))
        for b in batches:
            assert len(b) <= batch
            seen.extend(b.tolist())
    assert steps == {-(-n // (workers * batch))}
    assert sorted(seen) == list(range(n))
    with pytest.raises(ValueError, match="worker_index"):
        npyflow.Dataset.range(n).distributed_batch(batch, num_workers=2, worker_index=2)


def test_an_ended_iterator_saves_an_ended_state():
    ds = npyflow.Dataset.range(5).prefetch(1)
    it = iter(ds)
    assert [int(v) for v in it] == [0, 1, 2, 3, 4]
    state = it.get_state()
    again = iter(ds)
    again.set_state(state)
    assert list(again) == []
