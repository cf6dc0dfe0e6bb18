"""Ported from TensorFlow's tensorflow/python/data/experimental/kernel_tests/snapshot_test.py
(commit 00f0938a): ``Dataset.snapshot`` and ``tf.data.experimental.snapshot``."""

import os

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import PORTED, assert_produces, differs, left_out, outputs

D = tf.data.Dataset
E = tf.data.experimental
TF_FILE = "snapshot_test.py"

LAYOUT = (
    "npyflow writes a snapshot as one file, path/<fingerprint>/elements.npyflow-cache (and a "
    "recipe.txt), not TF's runs of shards with a snapshot.metadata: the port asserts the "
    "fingerprint directories and that file where TF counts runs and shards"
)
SOURCE_FILES = (
    "npyflow's fingerprint holds the size and time of the files a pipeline's arguments name, "
    "so a snapshot is not replayed once they are removed (TF's holds file names only); the "
    "port keeps the files and checks that the second pipeline reads the snapshot, not them. "
    "The records are .npy files of strings rather than TFRecords. " + LAYOUT
)
LEGACY = (
    "legacy_snapshot: TF's older snapshot with modes, names, shard sizes, reader and writer "
    "threads and expiry, which TF 2.21 no longer exports; npyflow has Dataset.snapshot only"
)
LEGACY_PORTED = "ported onto Dataset.snapshot (legacy_snapshot is not exported by TF 2.21). " + LAYOUT

TF_TESTS = {
    "SnapshotDatasetTest.testCreateSnapshotDataset": PORTED,
    "SnapshotDatasetTest.testReadSnapshotDatasetDefault": differs(SOURCE_FILES),
    "SnapshotDatasetTest.testReadSnapshotDatasetCustomShardFn": differs(
        "shard_func is accepted and not called: there is one file. " + SOURCE_FILES
    ),
    "SnapshotDatasetTest.testReadSnapshotDatasetCustomReaderFn": differs(SOURCE_FILES),
    "SnapshotDatasetTest.testSnapshotDatasetInvalidShardFn": differs(
        "npyflow never calls shard_func (one file), so one that returns a string is not "
        "noticed: the elements come through where TF raises TypeError"
    ),
    "SnapshotDatasetTest.testSnapshotDatasetInvalidReaderFn": PORTED,
    "SnapshotDatasetTest.testWriteSnapshotDatasetSimple": differs(LAYOUT),
    "SnapshotDatasetTest.testWriteSnapshotDatasetMultipleFingerprints": differs(LAYOUT),
    "SnapshotDatasetTest.testWriteSnapshotDatasetSameFingerprintMultipleCompleteRuns": differs(LAYOUT),
    "SnapshotDatasetTest.testWriteSnapshotDatasetSameFingerprintIncompleteRunRestart": differs(
        "two passes of one process writing one snapshot at once: npyflow's first writes it and "
        "the second passes its elements through (TF writes two runs). " + LAYOUT
    ),
    "SnapshotDatasetTest.testWriteSnapshotCustomShardFunction": differs(LAYOUT),
    "SnapshotDatasetTest.testWriteSnapshotDatasetWithTuples": differs(LAYOUT),
    "LegacySnapshotDatasetTest.testWriteDifferentPipelinesInOneDirectory": differs(LEGACY_PORTED),
    "LegacySnapshotDatasetTest.testWriteSnapshotMultipleSimultaneous": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testGetNextCreatesDir": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testWriteSnapshotSimpleSuccessful": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testWriteSnapshotRepeatAfterwards": differs(LEGACY_PORTED),
    "LegacySnapshotDatasetTest.testWriteSnapshotMixTypes": differs(LEGACY_PORTED),
    "LegacySnapshotDatasetTest.testSpecifySnapshotNameWriteAndRead": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testForcePassthroughMode": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testForceWriteMode": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testForceReadMode": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testForceReadNonexistentSnapshot": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testForceReadNonexistentNamedSnapshot": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testReadSnapshotBackAfterWrite": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testReadShuffledSnapshotAfterWrite": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testReadShuffledSnapshotWithSeedAfterWrite": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testReadSnapshotParallelAfterWrite": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testReadSnapshotBackAfterMultiThreadedWrite": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testSameFingerprintWithDifferentInitializationOrder": differs(LEGACY_PORTED),
    "LegacySnapshotDatasetTest.testExpiredSnapshotRewrite": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testSnapshotArgsCreateNewSnapshot": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testSpecifyShardSize": left_out(LEGACY),
    "LegacySnapshotDatasetTest.testAdditionalOperationsAfterReadBack": left_out(LEGACY),
}


def assert_snapshots(root, fingerprints):
    """``root`` holds ``fingerprints`` snapshot directories, each a complete snapshot."""
    dirs = sorted(os.listdir(root))
    assert len(dirs) == fingerprints, dirs
    for d in dirs:
        assert sorted(os.listdir(os.path.join(root, d))) == ["elements.npyflow-cache", "recipe.txt"]


def record_files(tmp_path, files=10, records=100):
    """``files`` .npy files of ``records`` strings each, "Record r of file f", and the
    records in order."""
    names = []
    for f in range(files):
        path = tmp_path / f"records-{f}.npy"
        np.save(path, np.array([b"Record %d of file %d" % (r, f) for r in range(records)]))
        names.append(str(path))
    return names, [b"Record %d of file %d" % (r, f) for f in range(files) for r in range(records)]


def records(names, reads):
    """The records of the files ``names``, each file read by a call that counts itself in
    ``reads`` (so a pass that replays a snapshot reads none)."""

    def read(path):
        reads.append(path)
        return np.load(path.decode())

    return D.from_tensor_slices(names).map(lambda p: tf.numpy_function(read, [p], tf.string)).unbatch()


@pytest.fixture
def snap(tmp_path):
    path = tmp_path / "snapshot"
    path.mkdir()
    return str(path)


def test_SnapshotDatasetTest_testCreateSnapshotDataset(snap):
    D.from_tensors([1, 2, 3]).apply(E.snapshot(snap))


def test_SnapshotDatasetTest_testReadSnapshotDatasetDefault(tmp_path, snap):
    names, expected = record_files(tmp_path)
    reads = []
    assert_produces(records(names, reads).apply(E.snapshot(snap)), expected)
    assert_snapshots(snap, 1)
    # ``reads`` as when the first was built (the fingerprint holds what functions capture).
    reads.clear()
    again = records(names, reads).apply(E.snapshot(snap))
    reads.clear()  # the map's output spec comes from its first element, read when built
    assert_produces(again, expected)
    assert reads == []


def test_SnapshotDatasetTest_testReadSnapshotDatasetCustomShardFn(tmp_path, snap):
    names, expected = record_files(tmp_path)
    reads = []
    assert_produces(records(names, reads).apply(E.snapshot(snap, shard_func=lambda _: np.int64(0))), expected)
    assert_snapshots(snap, 1)
    reads.clear()
    again = records(names, reads).apply(E.snapshot(snap, shard_func=lambda _: 0))
    reads.clear()
    assert_produces(again, expected)
    assert reads == []


def test_SnapshotDatasetTest_testReadSnapshotDatasetCustomReaderFn(tmp_path, snap):
    names, expected = record_files(tmp_path)
    reads = []

    def reader(shards):
        return shards.interleave(lambda x: x, cycle_length=4, num_parallel_calls=4)

    assert_produces(records(names, reads).apply(E.snapshot(snap, reader_func=reader)), expected)
    assert_snapshots(snap, 1)
    reads.clear()
    again = records(names, reads).apply(E.snapshot(snap, reader_func=reader))
    reads.clear()
    assert sorted(outputs(again)) == sorted(expected)
    assert reads == []


def test_SnapshotDatasetTest_testSnapshotDatasetInvalidShardFn(snap):
    ds = D.range(1000).apply(E.snapshot(snap, shard_func=lambda _: "invalid_fn"))
    assert_produces(ds, range(1000))


def test_SnapshotDatasetTest_testSnapshotDatasetInvalidReaderFn(snap):
    with pytest.raises(TypeError):
        ds = D.range(1000).apply(E.snapshot(snap, reader_func=lambda x: x + 1))
        next(iter(ds))


def test_SnapshotDatasetTest_testWriteSnapshotDatasetSimple(snap):
    assert_produces(D.range(1000).apply(E.snapshot(snap)), range(1000))
    assert_snapshots(snap, 1)


def test_SnapshotDatasetTest_testWriteSnapshotDatasetMultipleFingerprints(snap):
    assert_produces(D.range(1000).apply(E.snapshot(snap)), range(1000))
    assert_produces(D.range(2000).apply(E.snapshot(snap)), range(2000))
    assert_snapshots(snap, 2)


def test_SnapshotDatasetTest_testWriteSnapshotDatasetSameFingerprintMultipleCompleteRuns(snap):
    assert_produces(D.range(1000).apply(E.snapshot(snap)), range(1000))
    assert_produces(D.range(1000).apply(E.snapshot(snap)), range(1000))
    assert_snapshots(snap, 1)


def test_SnapshotDatasetTest_testWriteSnapshotDatasetSameFingerprintIncompleteRunRestart(snap):
    first = iter(D.range(1000).apply(E.snapshot(snap)))
    for i in range(500):
        assert next(first) == i
    second = iter(D.range(1000).apply(E.snapshot(snap)))
    for i in range(500):
        assert next(second) == i
    for i in range(500, 1000):
        assert next(first) == i
        assert next(second) == i
    for it in (first, second):
        with pytest.raises(StopIteration):
            next(it)
    assert_snapshots(snap, 1)


def test_SnapshotDatasetTest_testWriteSnapshotCustomShardFunction(snap):
    ds = D.range(1000).enumerate().apply(E.snapshot(snap, shard_func=lambda i, _: i % 2))
    assert_produces(ds.map(lambda _, elem: elem), range(1000))
    assert_snapshots(snap, 1)


def test_SnapshotDatasetTest_testWriteSnapshotDatasetWithTuples(snap):
    parts = [D.range(k * 1000, (k + 1) * 1000) for k in range(4)]
    it = iter(D.zip(tuple(parts)).apply(E.snapshot(snap)))
    for i in range(1000):
        assert tuple(int(v) for v in next(it)) == (i, i + 1000, i + 2000, i + 3000)
    assert_snapshots(snap, 1)


def test_LegacySnapshotDatasetTest_testWriteDifferentPipelinesInOneDirectory(snap):
    assert_produces(D.range(1000).snapshot(snap), range(1000))
    assert_produces(D.range(1001).snapshot(snap), range(1001))
    assert_snapshots(snap, 2)


def test_LegacySnapshotDatasetTest_testWriteSnapshotRepeatAfterwards(snap):
    assert_produces(D.range(10).snapshot(snap).repeat(10), list(range(10)) * 10)
    assert_snapshots(snap, 1)


def test_LegacySnapshotDatasetTest_testWriteSnapshotMixTypes(snap):
    def mixed(x):
        return x, str(int(x)).encode(), str(2 * int(x)).encode(), 2 * x

    ds = D.range(10).map(mixed).snapshot(snap).repeat(10)
    expected = [(i, str(i).encode(), str(2 * i).encode(), 2 * i) for i in range(10)]
    assert_produces(ds, expected * 10)
    assert_snapshots(snap, 1)


def test_LegacySnapshotDatasetTest_testSameFingerprintWithDifferentInitializationOrder(snap):
    a, b, c = D.range(0, 100), D.range(100, 200), D.range(200, 300)
    assert_produces(a.concatenate(b).concatenate(c).snapshot(snap), range(300))
    c2, b2, a2 = D.range(200, 300), D.range(100, 200), D.range(0, 100)
    assert_produces(a2.concatenate(b2).concatenate(c2).snapshot(snap), range(300))
    assert_snapshots(snap, 1)
