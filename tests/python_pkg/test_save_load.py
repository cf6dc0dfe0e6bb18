"""Dataset.save / Dataset.load against NumPy: round trips of every dtype and of nested
structures, empty datasets, shard_func, saves in parts by several processes, a saving process
killed midway, damaged files, and tf.data's keywords."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import npyflow

DTYPES = ["?", "i1", "<i2", ">i4", "<i8", "u1", "<u2", "<u4", ">u8", "<f2", "<f4", ">f8",
          "<c8", "<c16", "S4", "<U3", "<M8[s]", ">m8[10ms]"]


def sample(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "U":
        return rng.choice(["", "a", "bc", "xyz"], size=shape).astype(dt)
    if dt.kind == "S":
        return rng.choice([b"", b"a", b"bcd", b"wxyz"], size=shape).astype(dt)
    if dt.kind == "b":
        return rng.integers(0, 2, size=shape).astype(dt)
    if dt.kind in "fc":
        return rng.standard_normal(size=shape).astype(dt)
    return rng.integers(-100, 100, size=shape).astype(dt)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_nested(tmp_path, dtype):
    x = sample(dtype, (9, 2, 3), 1)
    y = sample(dtype, (9,), 2)
    labels = np.arange(9, dtype=np.int64)
    ds = npyflow.Dataset.from_tensor_slices((x, {"y": y, "label": labels}))
    assert ds.save(tmp_path / "d") is True
    back = npyflow.Dataset.load(tmp_path / "d")
    assert back.element_spec == ds.element_spec
    assert len(back) == 9
    rows = list(back)
    for i, (a, d) in enumerate(rows):
        np.testing.assert_array_equal(a, x[i])
        np.testing.assert_array_equal(d["y"], y[i])
        assert d["label"] == i
    # The shard files are NumPy's: the stacked component, as np.load reads it.
    gen = next(p for p in (tmp_path / "d").iterdir() if p.name.startswith("g-"))
    first = sorted(gen.glob("*-c000-*.npy"))
    assert len(first) == 1
    np.testing.assert_array_equal(np.load(first[0]), x)


def test_empty_datasets_keep_their_spec(tmp_path):
    ds = npyflow.Dataset.from_tensor_slices((np.zeros((0, 3), np.float32), np.zeros(0, "U2")))
    ds.save(tmp_path / "e")
    back = npyflow.Dataset.load(tmp_path / "e")
    assert back.element_spec == ds.element_spec
    assert len(back) == 0
    assert list(back) == []


def test_a_loaded_dataset_is_random_access(tmp_path):
    x = np.arange(500 * 4, dtype=np.float32).reshape(500, 4)
    ds = npyflow.Dataset.from_tensor_slices(x)
    ds.save(tmp_path / "r", max_shard_bytes=1000)  # many shards
    back = npyflow.Dataset.load(tmp_path / "r")
    shuffled = back.global_shuffle(seed=1, reshuffle_each_iteration=False).batch(32)
    batches = list(shuffled)
    seen = np.concatenate(batches)
    np.testing.assert_array_equal(np.sort(seen[:, 0]), x[:, 0])
    it = iter(shuffled)
    for _ in range(3):
        next(it)
    state = it.get_state()
    assert len(state) < 256
    again = iter(shuffled)
    again.set_state(state)
    np.testing.assert_array_equal(next(again), batches[3])
    # Many hosts: each worker's distributed batches together hold every row once.
    got = []
    for w in range(3):
        for b in back.distributed_batch(16, num_workers=3, worker_index=w):
            got.extend(b[:, 0].tolist())
    assert sorted(got) == x[:, 0].tolist()


def test_shard_func_and_the_tf_keywords(tmp_path):
    x = np.arange(20, dtype=np.int64)
    ds = npyflow.Dataset.from_tensor_slices((x, x * 10))
    ds.save(tmp_path / "f", shard_func=lambda a, b: a % 4)
    got = [int(a) for a, _ in npyflow.Dataset.load(tmp_path / "f")]
    assert got == [v for r in range(4) for v in x.tolist() if v % 4 == r]
    with pytest.raises(ValueError, match="compression"):
        ds.save(tmp_path / "g", compression="GZIP")
    with pytest.raises(ValueError, match="checkpoint_args"):
        ds.save(tmp_path / "g", checkpoint_args=object())
    with pytest.raises(ValueError, match="reader_func"):
        npyflow.Dataset.load(tmp_path / "f", reader_func=lambda d: d)
    with pytest.raises(ValueError, match="element_spec"):
        npyflow.Dataset.load(tmp_path / "f", element_spec=npyflow.TensorSpec((), np.int64))
    assert npyflow.Dataset.load(tmp_path / "f", element_spec=ds.element_spec).element_spec == ds.element_spec
    with pytest.raises(ValueError, match="negative"):
        ds.save(tmp_path / "h", shard_func=lambda a, b: -1)
    with pytest.raises(FileNotFoundError, match="no saved dataset"):
        npyflow.Dataset.load(tmp_path / "nothing")
    # Elements of changing shapes (a short last batch, ragged rows) round trip too.
    ragged = npyflow.Dataset.range(7).map(lambda i: np.full(int(i) // 3, i, np.int8))
    ragged.save(tmp_path / "v")
    got = list(npyflow.Dataset.load(tmp_path / "v"))
    assert [g.tolist() for g in got] == [[i] * (i // 3) for i in range(7)]


def test_a_damaged_shard_is_named(tmp_path):
    ds = npyflow.Dataset.from_tensor_slices(np.arange(100, dtype=np.float64))
    ds.save(tmp_path / "c")
    gen = next(p for p in (tmp_path / "c").iterdir() if p.name.startswith("g-"))
    shard = next(gen.glob("*.npy"))
    data = bytearray(shard.read_bytes())
    data[-3] ^= 1
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=str(shard.name)):
        npyflow.Dataset.load(tmp_path / "c")
    assert len(npyflow.Dataset.load(tmp_path / "c", verify=False)) == 100


SLOW_SAVE = """
import pathlib, sys, time
import numpy as np
import npyflow
path, marker = sys.argv[1], sys.argv[2]
def gen():
    for i in range(1_000_000):
        if i == 200:
            pathlib.Path(marker).write_text("written")
        if i >= 200:
            time.sleep(0.01)  # never finishes before it is killed
        yield np.full(256, i, np.int64)
ds = npyflow.Dataset.from_generator(gen, output_signature=npyflow.TensorSpec((256,), np.int64))
ds.save(path, max_shard_bytes=64 * 1024)
"""


def test_a_killed_save_leaves_the_previous_dataset_or_nothing(tmp_path):
    path = tmp_path / "k"
    old = np.arange(30, dtype=np.int64)
    npyflow.Dataset.from_tensor_slices(old).save(path)
    for target in (path, tmp_path / "fresh"):
        marker = tmp_path / ("marker-" + target.name)
        child = subprocess.Popen([sys.executable, "-c", SLOW_SAVE, str(target), str(marker)])
        try:
            deadline = time.monotonic() + 120
            while not marker.exists():
                assert child.poll() is None, "the saving process ended early"
                assert time.monotonic() < deadline, "the saving process wrote nothing"
                time.sleep(0.02)
            # Its shard files are there, half the dataset in them.
            written = [p for g in target.glob("g-*") for p in g.glob("*.npy")]
            assert len(written) >= 2
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        if target == path:
            np.testing.assert_array_equal(np.array(list(npyflow.Dataset.load(path))), old)
        else:
            with pytest.raises(FileNotFoundError):
                npyflow.Dataset.load(target)
    # A later save over the killed one works, and leaves the new dataset only.
    npyflow.Dataset.range(5).save(path)
    assert [int(v) for v in npyflow.Dataset.load(path)] == list(range(5))


PART_SAVE = """
import sys
import npyflow
path, part = sys.argv[1], int(sys.argv[2])
ds = npyflow.Dataset.range(1000).shard(4, part).map(lambda i: (i, i * 2))
print(ds.save(path, part=part, num_parts=4, save_id="job-1"))
"""


def test_parts_saved_by_several_processes_appear_with_the_last(tmp_path):
    path = tmp_path / "parts"
    procs = [
        subprocess.Popen([sys.executable, "-c", PART_SAVE, str(path), str(i)],
                         stdout=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert "True" in outs, outs
    got = [(int(a), int(b)) for a, b in npyflow.Dataset.load(path)]
    want = [(v, 2 * v) for part in range(4) for v in range(part, 1000, 4)]
    assert got == want
    with pytest.raises(ValueError, match="part, num_parts and save_id"):
        npyflow.Dataset.range(3).save(tmp_path / "x", part=0, num_parts=2)
