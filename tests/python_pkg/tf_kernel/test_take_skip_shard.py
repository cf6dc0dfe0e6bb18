"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/take_test.py, skip_test.py
and shard_test.py (commit 03049341)."""

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import (
    PORTED, RANDOM_ACCESS, assert_produces, assert_restores, assert_shapes, differs,
    left_out, outputs,
)

D = tf.data.Dataset
TF_FILE = ["take_test.py", "skip_test.py", "shard_test.py"]
TF_TESTS = {
    # take_test.py
    "TakeTest.testBasic": PORTED,
    "TakeTest.testName": PORTED,
    "TakeDatasetCheckpointTest.test": PORTED,
    "TakeRandomAccessTest.testInvalidIndex": left_out(RANDOM_ACCESS),
    "TakeRandomAccessTest.testEmptyDataset": left_out(RANDOM_ACCESS),
    "TakeRandomAccessTest.testBasic": left_out(RANDOM_ACCESS),
    "TakeGlobalShuffleTest.test": PORTED,
    "TakeGlobalShuffleCheckpointTest.test": PORTED,
    # skip_test.py
    "SkipTest.testBasic": PORTED,
    "SkipTest.testName": PORTED,
    "SkipDatasetCheckpointTest.test": PORTED,
    "SkipRandomAccessTest.testInvalidIndex": left_out(RANDOM_ACCESS),
    "SkipRandomAccessTest.testEmptyDataset": left_out(RANDOM_ACCESS),
    "SkipRandomAccessTest.testBasic": left_out(RANDOM_ACCESS),
    "SkipRandomAccessTest.testNegativeSkip": left_out(RANDOM_ACCESS),
    "SkipRandomAccessTest.testSkipGreaterThanNumElements": left_out(RANDOM_ACCESS),
    "SkipRandomAccessTest.testMultipleCombinations": left_out(RANDOM_ACCESS),
    "SkipGlobalShuffleTest.testSkip": PORTED,
    "SkipGlobalShuffleTest.testNegativeSkip": differs(
        "npyflow's global_shuffle takes skip(-1) (an empty dataset) where TF refuses it "
        "(FailedPreconditionError); npyflow refuses only what has no random access"
    ),
    "SkipGlobalShuffleCheckpointTest.testSkip": PORTED,
    # shard_test.py
    "ShardTest.testSimpleCase": PORTED,
    "ShardTest.testNestedData": PORTED,
    "ShardTest.testOffsetZero": PORTED,
    "ShardTest.testOffsetGreaterNumShards": PORTED,
    "ShardTest.testNegativeOffset": PORTED,
    "ShardTest.testNegativeNumShards": PORTED,
    "ShardTest.testZeroNumShards": PORTED,
    "ShardTest.testIteratorEndsBeforeFirstElem": PORTED,
    "ShardTest.testLargerWorkerPool": PORTED,
    "ShardTest.testIndexEqualsNumShards": PORTED,
    "ShardTest.testIndexEqualsNumShards2": PORTED,
    "ShardTest.testNumShardsLargerThanDataset": PORTED,
    "ShardTest.testName": PORTED,
    "ShardCheckpointTest.test": PORTED,
    "ShardRandomAccessTest.testInvalidIndex": left_out(RANDOM_ACCESS),
    "ShardRandomAccessTest.testEmptyDataset": left_out(RANDOM_ACCESS),
    "ShardRandomAccessTest.testNumShardsAndIndexLessThanNumElements": left_out(RANDOM_ACCESS),
    "ShardRandomAccessTest.testNumShardsGreaterThanNumElementsIndexLess": left_out(RANDOM_ACCESS),
    "ShardRandomAccessTest.testNumShardsAndIndexGreaterThanNumElements": left_out(RANDOM_ACCESS),
    "ShardRandomAccessTest.testMultipleCombinations": left_out(RANDOM_ACCESS),
    "ShardGlobalShuffleTest.testShard": PORTED,
    "ShardGlobalShuffleCheckpointTest.testShard": PORTED,
}


@pytest.mark.parametrize("count", [-1, 0, 4, 10, 25])
def test_TakeTest_testBasic(count):
    components = (np.arange(10),)
    ds = D.from_tensor_slices(components).take(count)
    assert_shapes(ds, ([],))
    n = min(count, 10) if count != -1 else 10
    assert_produces(ds, [(i,) for i in range(n)])


@pytest.mark.parametrize("count, num_outputs", [(50, 50), (200, 100), (100, 100), (-1, 100), (0, 0)])
def test_TakeDatasetCheckpointTest_test(count, num_outputs):
    assert_restores(lambda: D.range(100).take(count), num_outputs)



@pytest.mark.parametrize("count", [20, 200])
@pytest.mark.parametrize("repetitions", [1, 2])
@pytest.mark.parametrize("seed", [None, 42])
@pytest.mark.parametrize("reshuffle", [True, False])
def test_TakeGlobalShuffleTest_test(count, repetitions, seed, reshuffle):
    def make():
        ds = D.range(100).take(count).prefetch(tf.data.AUTOTUNE)
        return ds.repeat(repetitions) if repetitions > 1 else ds

    ds = make().global_shuffle(seed=seed, reshuffle_each_iteration=reshuffle)
    expected = list(range(min(count, 100))) * repetitions
    got = outputs(ds)
    assert sorted(got) == sorted(expected) and got != expected
    assert len(got) == ds.cardinality()


@pytest.mark.parametrize("count", [2, 20])
@pytest.mark.parametrize("repetitions", [1, 2])
@pytest.mark.parametrize("reshuffle", [True, False])
def test_TakeGlobalShuffleCheckpointTest_test(count, repetitions, reshuffle):
    def build():
        ds = D.range(10).take(count).prefetch(tf.data.AUTOTUNE)
        if repetitions > 1:
            ds = ds.repeat(repetitions)
        return ds.global_shuffle(seed=42, reshuffle_each_iteration=reshuffle)

    assert_restores(build, min(count, 10) * repetitions)


@pytest.mark.parametrize("count", [-1, 0, 4, 10, 25])
def test_SkipTest_testBasic(count):
    ds = D.from_tensor_slices((np.arange(10),)).skip(count)
    assert_shapes(ds, ([],))
    start = min(count, 10) if count != -1 else 10
    assert_produces(ds, [(i,) for i in range(start, 10)])


@pytest.mark.parametrize("count, num_outputs", [(50, 50), (200, 0), (100, 0), (-1, 0), (0, 100)])
def test_SkipDatasetCheckpointTest_test(count, num_outputs):
    assert_restores(lambda: D.range(100).skip(count), num_outputs)


@pytest.mark.parametrize("count", [0, 2])
@pytest.mark.parametrize("repetitions", [1, 2])
@pytest.mark.parametrize("seed", [None, 42])
@pytest.mark.parametrize("reshuffle", [True, False])
def test_SkipGlobalShuffleTest_testSkip(count, repetitions, seed, reshuffle):
    ds = D.range(10).skip(count).prefetch(tf.data.AUTOTUNE)
    if repetitions > 1:
        ds = ds.repeat(repetitions)
    ds = ds.global_shuffle(seed=seed, reshuffle_each_iteration=reshuffle)
    expected = list(range(count, 10)) * repetitions
    got = outputs(ds)
    assert sorted(got) == sorted(expected) and got != expected
    assert len(got) == ds.cardinality()


@pytest.mark.parametrize("skip", [-2, -1])
def test_SkipGlobalShuffleTest_testNegativeSkip(skip):
    assert outputs(D.range(10).skip(skip).global_shuffle()) == []


@pytest.mark.parametrize("count", [0, 2])
@pytest.mark.parametrize("repetitions", [1, 2])
@pytest.mark.parametrize("reshuffle", [True, False])
def test_SkipGlobalShuffleCheckpointTest_testSkip(count, repetitions, reshuffle):
    def build():
        ds = D.range(10).skip(count).prefetch(tf.data.AUTOTUNE)
        if repetitions > 1:
            ds = ds.repeat(repetitions)
        return ds.global_shuffle(seed=42, reshuffle_each_iteration=reshuffle)

    assert_restores(build, (10 - count) * repetitions)


def test_ShardTest_testSimpleCase():
    assert_produces(D.range(10).shard(5, 2), [2, 7])


def test_ShardTest_testNestedData():
    ds = D.zip((D.range(10), D.range(10, 0, -1))).shard(5, 2)
    assert_produces(ds, [(2, 8), (7, 3)])


def test_ShardTest_testOffsetZero():
    assert_produces(D.range(10).shard(5, 0), [0, 5])


# TF raises InvalidArgumentError at the first element; npyflow raises ValueError when the
# dataset is made.
def test_ShardTest_testOffsetGreaterNumShards():
    with pytest.raises(ValueError):
        D.range(10).shard(5, 7)


def test_ShardTest_testNegativeOffset():
    with pytest.raises(ValueError):
        D.range(10).shard(5, -3)


def test_ShardTest_testNegativeNumShards():
    with pytest.raises(ValueError):
        D.range(10).shard(-3, 1)


def test_ShardTest_testZeroNumShards():
    with pytest.raises(ValueError):
        D.range(10).shard(0, 1)


def test_ShardTest_testIteratorEndsBeforeFirstElem():
    assert_produces(D.range(1).shard(5, 2), [])


def test_ShardTest_testLargerWorkerPool():
    assert_produces(D.range(10).shard(7, 5), [5])


def test_ShardTest_testIndexEqualsNumShards():
    assert_produces(D.range(10).shard(5, 4), [4, 9])


def test_ShardTest_testIndexEqualsNumShards2():
    assert_produces(D.range(10).shard(4, 3), [3, 7])


def test_ShardTest_testNumShardsLargerThanDataset():
    assert_produces(D.range(10).shard(20, 5), [5])


@pytest.mark.parametrize("elems", [10, 100])
@pytest.mark.parametrize("num_shards", [2, 5])
@pytest.mark.parametrize("index", [0, 1])
def test_ShardCheckpointTest_test(elems, num_shards, index):
    assert_restores(lambda: D.range(elems).shard(num_shards, index), elems // num_shards)


@pytest.mark.parametrize("num_shards", [1, 3, 5])
@pytest.mark.parametrize("shard_index", [0, 1, 2, 4])
@pytest.mark.parametrize("seed", [None, 42])
@pytest.mark.parametrize("reshuffle", [True, False])
def test_ShardGlobalShuffleTest_testShard(num_shards, shard_index, seed, reshuffle):
    if shard_index >= num_shards:
        return
    ds = D.range(100).shard(num_shards, shard_index).prefetch(tf.data.AUTOTUNE)
    ds = ds.global_shuffle(seed=seed, reshuffle_each_iteration=reshuffle)
    expected = list(range(shard_index, 100, num_shards))
    got = outputs(ds)
    assert sorted(got) == expected and got != expected


@pytest.mark.parametrize("num_shards", [1, 3])
@pytest.mark.parametrize("shard_index", [0, 1, 2])
@pytest.mark.parametrize("reshuffle", [True, False])
def test_ShardGlobalShuffleCheckpointTest_testShard(num_shards, shard_index, reshuffle):
    if shard_index >= num_shards:
        return

    def build():
        ds = D.range(10).shard(num_shards, shard_index).prefetch(tf.data.AUTOTUNE)
        return ds.global_shuffle(seed=42, reshuffle_each_iteration=reshuffle)

    assert_restores(build, len(range(shard_index, 10, num_shards)))


def test_TakeTest_testName():
    # name= names the op in TF's graph; npyflow takes it and ignores it.
    assert_produces(D.from_tensors(42).take(1, name='take'), [42])


def test_SkipTest_testName():
    # name= names the op in TF's graph; npyflow takes it and ignores it.
    assert_produces(D.from_tensors(42).skip(0, name='skip'), [42])


def test_ShardTest_testName():
    # name= names the op in TF's graph; npyflow takes it and ignores it.
    assert_produces(D.from_tensors(42).shard(1, 0, name='shard'), [42])
