"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/scan_test.py (commit
123f139b)."""

import itertools

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import (
    PORTED, SPARSE, TF_OPS, assert_produces, assert_restores, left_out, outputs,
)

D = tf.data.Dataset
TF_FILE = "scan_test.py"
TF_TESTS = {
    "ScanTest.testCount": PORTED,
    "ScanTest.testFibonacci": PORTED,
    "ScanTest.testSparseCount": left_out(SPARSE),
    "ScanTest.testTensorArraySimple": left_out(TF_OPS),
    "ScanTest.testTensorArrayWithCondReset": left_out(TF_OPS),
    "ScanTest.testTensorArrayWithCondResetByExternalCaptureBreaks": left_out(TF_OPS),
    "ScanTest.testChangingStateShape": PORTED,
    "ScanTest.testIncorrectStateType": PORTED,
    "ScanTest.testIncorrectReturnType": PORTED,
    "ScanTest.testPreserveCardinality": PORTED,
    "ScanTest.testUseDefaultDevice": left_out(TF_OPS),
    "ScanTest.testName": PORTED,
    "ScanCheckpointTest.test": PORTED,
}


@pytest.mark.parametrize(
    "start, step, take", [(0, 1, 10), (0, 1, 0), (10, 1, 10), (10, 2, 10), (10, -1, 10), (10, -2, 10)]
)
def test_ScanTest_testCount(start, step, take):
    ds = D.from_tensors(0).repeat().scan(np.int32(start), lambda s, _: (s + np.int32(step), s))
    expected = [x for x, _ in zip(itertools.count(start, step), range(take))]
    assert_produces(ds.take(take), expected)


def test_ScanTest_testFibonacci():
    ds = D.from_tensors(1).repeat(None).scan(
        [0, 1], lambda a, _: ([a[1], a[0] + a[1]], a[1])
    )
    assert outputs(ds.take(6)) == [1, 1, 2, 3, 5, 8]


def test_ScanTest_testChangingStateShape():
    def scan_fn(state, value):
        longer = np.concatenate([state[0], state[0]], 0)
        larger_rank = np.expand_dims(state[1], 0)
        return (longer, larger_rank), (state, value)

    ds = D.from_tensors(0).repeat(5).scan((np.array([0], np.int32), np.int32(1)), scan_fn)
    spec = ds.element_spec
    assert list(spec[0][0].shape) == [None]
    assert spec[0][1].shape is None  # the rank is not known
    assert list(spec[1].shape) == []
    for i, ((longer, larger), _) in enumerate(ds.as_numpy_iterator()):
        np.testing.assert_array_equal(longer, [0] * 2**i)
        np.testing.assert_array_equal(larger, np.array(1, ndmin=i))
    assert i == 4


def test_ScanTest_testIncorrectStateType():
    with pytest.raises(TypeError, match="initial state"):
        D.range(10).scan(np.int32(1), lambda state, _: (np.int64(1), state))


def test_ScanTest_testIncorrectReturnType():
    with pytest.raises(TypeError, match="pair"):
        D.range(10).scan(np.int32(1), lambda state, _: np.int64(1))


def test_ScanTest_testPreserveCardinality():
    # A StopIteration raised by the function must not end the dataset quietly: TF raises
    # InvalidArgumentError; npyflow raises RuntimeError (as PEP 479 does for generators).
    def scan_fn(state, val):
        if state is not None:
            raise StopIteration()
        return state, val

    with pytest.raises((RuntimeError, StopIteration)):
        outputs(D.from_tensors(0).scan(np.int32(1), scan_fn))


def test_ScanCheckpointTest_test():
    def build():
        return D.from_tensors(1).repeat(10).scan([0, 1], lambda a, _: ([a[1], a[0] + a[1]], a[1]))

    assert_restores(build, 10)
    assert_produces(build(), [1, 1, 2, 3, 5, 8, 13, 21, 34, 55])


def test_ScanTest_testName():
    # name= names the op in TF's graph; npyflow takes it and ignores it.
    assert_produces(D.from_tensors(42).scan(0, lambda x, y: (y, y), name='scan'), [42])
