"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/reduce_test.py (commit
0db332dc) and get_single_element_test.py (commit 03049341)."""

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import GRAPH_ONLY, PORTED, SPARSE, TF_OPS, assert_produces, left_out

D = tf.data.Dataset
TF_FILE = ["reduce_test.py", "get_single_element_test.py"]
TF_TESTS = {
    "ReduceTest.testSum": PORTED,
    "ReduceTest.testSumTuple": PORTED,
    "ReduceTest.testSumAndCount": PORTED,
    "ReduceTest.testSkipEagerSquareUsingPlaceholder": left_out(GRAPH_ONLY),
    "ReduceTest.testSparse": left_out(SPARSE),
    "ReduceTest.testNested": left_out(SPARSE + " (the state holds one)"),
    "GetSingleElementTest.testBasic": PORTED,
    "GetSingleElementTest.testWindow": PORTED,
    "GetSingleElementTest.testSideEffect": left_out(TF_OPS + " (a variable in a tf.function)"),
    "GetSingleElementTest.testAutomaticControlDependencies": left_out(
        TF_OPS + " (tf.function's control dependencies)"
    ),
    "GetSingleElementTest.testName": PORTED,
}


@pytest.mark.parametrize("i", range(10))
def test_ReduceTest_testSum(i):
    assert D.range(1, i + 1).reduce(np.int64(0), lambda x, y: x + y) == (i + 1) * i // 2


@pytest.mark.parametrize("i", range(10))
def test_ReduceTest_testSumTuple(i):
    ds = D.range(1, i + 1)
    result = D.zip((ds, ds)).reduce(np.int64(0), lambda state, value: state + value[0] + value[1])
    assert result == (i + 1) * i


@pytest.mark.parametrize("i", range(10))
def test_ReduceTest_testSumAndCount(i):
    s, c = D.range(1, i + 1).reduce(
        (np.int64(0), np.int64(0)), lambda state, value: (state[0] + value, state[1] + 1)
    )
    assert s == (i + 1) * i // 2 and c == i


@pytest.mark.parametrize(
    "skip, take, error", [(0, 1, None), (5, 1, None), (10, 1, None), (100, 1, "Dataset was empty."), (0, 2, "Dataset had more than one element.")]
)
def test_GetSingleElementTest_testBasic(skip, take, error):
    # TF's element also holds a sparse tensor of x; the dense part is ported.
    ds = D.range(100).skip(skip).map(lambda x: (x * x, np.reshape(x, [1]))).take(take)
    if error is None:
        dense, vector = ds.get_single_element()
        assert dense == skip * skip and vector.tolist() == [skip]
    else:
        # TF: InvalidArgumentError with this message; npyflow: ValueError with it.
        with pytest.raises(ValueError, match=error):
            ds.get_single_element()


def test_GetSingleElementTest_testWindow():
    def flat_map_func(ds):
        return D.from_tensors(ds.batch(2).get_single_element())

    assert_produces(D.range(10).window(2).flat_map(flat_map_func), [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]])


def test_GetSingleElementTest_testName():
    assert D.from_tensors(42).get_single_element(name="get_single_element") == 42
