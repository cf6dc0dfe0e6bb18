"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/repeat_test.py,
enumerate_test.py (commit 03049341) and range_test.py (commit 246a7a90)."""

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import (
    PORTED, RANDOM_ACCESS, assert_produces, assert_restores, assert_shapes, differs,
    left_out, outputs,
)

D = tf.data.Dataset
TF_FILE = ["repeat_test.py", "enumerate_test.py", "range_test.py"]
TF_TESTS = {
    "RepeatTest.testFiniteRepeat": PORTED,
    "RepeatTest.testInfiniteRepeat": PORTED,
    "RepeatTest.testRepeatRepeat": PORTED,
    "RepeatTest.testName": PORTED,
    "RepeatDatasetCheckpointTest.testFiniteRepeat": PORTED,
    "RepeatDatasetCheckpointTest.testEmptyRepeat": PORTED,
    "RepeatDatasetCheckpointTest.testInfiniteRepeat": PORTED,
    "RepeatDatasetCheckpointTest.testInfiniteEmptyRepeat": PORTED,
    "RepeatRandomAccessTest.testInvalidIndex": left_out(RANDOM_ACCESS),
    "RepeatRandomAccessTest.testEmptyDataset": left_out(RANDOM_ACCESS),
    "RepeatRandomAccessTest.testFiniteRepeat": left_out(RANDOM_ACCESS),
    "RepeatRandomAccessTest.testRepeatRepeat": left_out(RANDOM_ACCESS),
    "RepeatRandomAccessTest.testInfiniteRepeat": left_out(RANDOM_ACCESS),
    "RepeatGlobalShuffleTest.testRepeat": PORTED,
    "RepeatGlobalShuffleTest.testInvalidDataset": differs(
        "npyflow's global_shuffle refuses repeat() (endless) with ValueError, as TF does "
        "(FailedPreconditionError), but shuffles repeat(0) (an empty dataset) where TF refuses it"
    ),
    "RepeatGlobalShuffleCheckpointTest.testRepeat": PORTED,
    "EnumerateTest.testEnumerate": PORTED,
    "EnumerateCheckpointTest.test": PORTED,
    "RangeTest.testStop": PORTED,
    "RangeTest.testStartStop": PORTED,
    "RangeTest.testStartStopStep": PORTED,
    "RangeTest.testZeroStep": PORTED,
    "RangeTest.testNegativeStep": PORTED,
    "RangeTest.testStopLessThanStart": PORTED,
    "RangeTest.testStopLessThanStartWithPositiveStep": PORTED,
    "RangeTest.testStopLessThanStartWithNegativeStep": PORTED,
    "RangeTest.testOutputType": PORTED,
}

COMPONENTS = (np.array(1), np.array([1, 2, 3]), np.array(37.0))


@pytest.mark.parametrize("count", [0, 3, 7])
def test_RepeatTest_testFiniteRepeat(count):
    ds = D.from_tensors(COMPONENTS).repeat(count)
    assert_shapes(ds, ([], [3], []))
    assert_produces(ds, [COMPONENTS] * count)


def test_RepeatTest_testInfiniteRepeat():
    ds = D.from_tensors(COMPONENTS).repeat(-1)
    assert_shapes(ds, ([], [3], []))
    got = outputs(ds, limit=17)
    assert len(got) == 17
    for g in got:
        for c, r in zip(COMPONENTS, g):
            np.testing.assert_array_equal(c, r)


def test_RepeatTest_testRepeatRepeat():
    ds = D.from_tensors(COMPONENTS).repeat(7).repeat(14)
    assert_produces(ds, [COMPONENTS] * (7 * 14))


def test_RepeatDatasetCheckpointTest_testFiniteRepeat():
    assert_restores(lambda: D.range(10).repeat(10), 100)


def test_RepeatDatasetCheckpointTest_testEmptyRepeat():
    assert_restores(lambda: D.range(10).repeat(0), 0)


def test_RepeatDatasetCheckpointTest_testInfiniteRepeat():
    assert_restores(lambda: D.zip((D.range(10).repeat(-1), D.range(100))), 100)


def test_RepeatDatasetCheckpointTest_testInfiniteEmptyRepeat():
    assert_restores(lambda: D.range(0).repeat(-1), 0)


@pytest.mark.parametrize("repetitions", [1, 27])
@pytest.mark.parametrize("seed", [None, 19])
@pytest.mark.parametrize("reshuffle", [True, False])
def test_RepeatGlobalShuffleTest_testRepeat(repetitions, seed, reshuffle):
    ds = D.range(41).repeat(repetitions).prefetch(tf.data.AUTOTUNE)
    ds = ds.global_shuffle(seed=seed, reshuffle_each_iteration=reshuffle)
    got = outputs(ds)
    expected = list(range(41)) * repetitions
    assert sorted(got) == sorted(expected) and got != expected
    per_pass = [got[i : i + 41] for i in range(0, len(got), 41)]
    for i in range(1, repetitions):
        assert per_pass[i] != list(range(41))
        assert per_pass[i] != per_pass[i - 1]


def test_RepeatGlobalShuffleTest_testInvalidDataset():
    with pytest.raises(ValueError):
        outputs(D.range(10).repeat(None).prefetch(tf.data.AUTOTUNE).global_shuffle())
    assert outputs(D.range(10).repeat(0).prefetch(tf.data.AUTOTUNE).global_shuffle()) == []


@pytest.mark.parametrize("repetitions", [1, 27])
@pytest.mark.parametrize("reshuffle", [True, False])
def test_RepeatGlobalShuffleCheckpointTest_testRepeat(repetitions, reshuffle):
    def build():
        ds = D.range(41).repeat(repetitions).prefetch(tf.data.AUTOTUNE)
        return ds.global_shuffle(seed=42, reshuffle_each_iteration=reshuffle)

    assert_restores(build, 41 * repetitions)


def test_EnumerateTest_testEnumerate():
    components = (["a", "b"], [1, 2], [37.0, 38])
    ds = D.from_tensor_slices(components).enumerate(np.int64(20))
    assert ds.element_spec[0].dtype == np.int64
    assert_shapes(ds, ([], ([], [], [])))
    assert_produces(ds, [(20, (b"a", 1, 37.0)), (21, (b"b", 2, 38.0))])


def test_EnumerateCheckpointTest_test():
    assert_restores(lambda: D.range(2, 10).enumerate(), 8)


def test_RangeTest_testStop():
    assert_produces(D.range(5), range(5))


def test_RangeTest_testStartStop():
    assert_produces(D.range(2, 5), range(2, 5))


def test_RangeTest_testStartStopStep():
    assert_produces(D.range(2, 10, 2), range(2, 10, 2))


def test_RangeTest_testZeroStep():
    with pytest.raises(ValueError):  # TF: InvalidArgumentError
        D.range(2, 10, 0)


def test_RangeTest_testNegativeStep():
    assert_produces(D.range(2, 10, -1), range(2, 10, -1))


def test_RangeTest_testStopLessThanStart():
    assert_produces(D.range(10, 2), range(10, 2))


def test_RangeTest_testStopLessThanStartWithPositiveStep():
    assert_produces(D.range(10, 2, 2), range(10, 2, 2))


def test_RangeTest_testStopLessThanStartWithNegativeStep():
    assert_produces(D.range(10, 2, -1), range(10, 2, -1))


def test_RangeTest_testOutputType():
    # The stored test passes the dtype by position, which TensorFlow 2.21 itself refuses
    # ("Attempt to convert a value (tf.int32) ... to a Tensor"); output_type= is its intent.
    ds = D.range(5, output_type=np.int32)
    assert_produces(ds, range(5))
    assert ds.element_spec.dtype == np.int32


def test_RepeatTest_testName():
    # name= names the op in TF's graph; npyflow takes it and ignores it.
    assert_produces(D.from_tensors(42).repeat(1, name='repeat'), [42])
