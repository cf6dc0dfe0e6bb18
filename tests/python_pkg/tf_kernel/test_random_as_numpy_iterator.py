"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/random_test.py and
as_numpy_iterator_test.py (commit a3f2a79d).

``Dataset.random``'s numbers are npyflow's own (not TensorFlow's for the same seed): the
ports check when they repeat, never the values."""

import collections

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import (
    GRAPH_ONLY, PORTED, RAGGED, SPARSE, assert_produces, assert_restores, differs, left_out,
    outputs,
)

D = tf.data.Dataset
TF_FILE = ["random_test.py", "as_numpy_iterator_test.py"]
TF_TESTS = {
    "RandomTest.testDeterminism": differs(
        "a dataset's seed is its seed argument only: tf.random.set_seed (TF's global seed) "
        "does not reach datasets, so with a global seed and no seed of its own each "
        "Dataset.random draws another sequence where TF repeats one"
    ),
    "RandomTest.testRerandomizeEachIterationEpochsIgnored": left_out(GRAPH_ONLY),
    "RandomTest.testRerandomizeEachIterationEpochs": PORTED,
    "RandomTest.testRerandomizeRepeatEpochs": PORTED,
    "RandomTest.testRerandomizeInsideFunction": left_out("tf.function: npyflow has none"),
    "RandomTest.testName": PORTED,
    "RandomCheckpointTest.test": PORTED,
    "AsNumpyIteratorTest.testBasic": PORTED,
    "AsNumpyIteratorTest.testImmutable": PORTED,
    "AsNumpyIteratorTest.testNestedStructure": PORTED,
    "AsNumpyIteratorTest.testNonEager": left_out(GRAPH_ONLY),
    "AsNumpyIteratorTest.testSparseElement": left_out(SPARSE),
    "AsNumpyIteratorTest.testRaggedElement": left_out(RAGGED),
    "AsNumpyIteratorTest.testDatasetElement": differs(
        "npyflow's as_numpy_iterator yields a dataset element as the dataset itself, where "
        "TF refuses it (TypeError 'is not supported for datasets that produce values of "
        "type DatasetSpec')"
    ),
    "AsNumpyIteratorTest.testNestedNonTensorElement": differs(
        "as for testDatasetElement: the dataset inside a tuple element is yielded as it is"
    ),
    "AsNumpyIteratorTest.testNoneElement": PORTED,
    "AsNumpyIteratorTest.testCompatibleWithCheckpoint": PORTED,
}


@pytest.mark.parametrize("local_seed", [None, 20])
@pytest.mark.parametrize("global_seed", [None, 10])
def test_RandomTest_testDeterminism(global_seed, local_seed):
    tf.random.set_seed(global_seed)
    try:
        # TF builds the dataset again from its graph; npyflow builds it again.
        first = outputs(D.random(seed=local_seed).take(10))
        second = outputs(D.random(seed=local_seed).take(10))
    finally:
        tf.random.set_seed(None)
    assert len(first) == 10 and all(0 <= v < 2**32 for v in first)
    # TF: the same numbers where either seed is set. npyflow: where the dataset's is.
    assert (first == second) == (local_seed is not None)


@pytest.mark.parametrize("rerandomize", [None, True, False])
def test_RandomTest_testRerandomizeEachIterationEpochs(rerandomize):
    ds = D.random(seed=42, rerandomize_each_iteration=rerandomize, name="random").take(10)
    first, second = outputs(ds), outputs(ds)
    assert (first == second) == (not rerandomize)


@pytest.mark.parametrize("rerandomize", [None, True, False])
def test_RandomTest_testRerandomizeRepeatEpochs(rerandomize):
    ds = D.random(seed=42, rerandomize_each_iteration=rerandomize, name="random").take(10)
    got = outputs(ds.repeat(2))
    assert (got[:10] == got[10:]) == (not rerandomize)


def test_RandomTest_testName():
    assert_produces(D.random(seed=42, name="random").take(1).map(lambda _: 42), [42])


@pytest.mark.parametrize("rerandomize", [True, False])
def test_RandomCheckpointTest_test(rerandomize):
    assert_restores(lambda: D.random(seed=55, rerandomize_each_iteration=rerandomize).take(10), 10)


def test_AsNumpyIteratorTest_testBasic():
    assert list(D.range(3).as_numpy_iterator()) == [0, 1, 2]


def test_AsNumpyIteratorTest_testImmutable():
    arr = next(D.from_tensors([1, 2, 3]).as_numpy_iterator())
    with pytest.raises(ValueError, match="read-only"):
        arr[0] = 0


def test_AsNumpyIteratorTest_testNestedStructure():
    Point = collections.namedtuple("Point", ["x", "y"])
    ds = D.from_tensor_slices({"a": ([1, 2], [3, 4]), "b": [5, 6], "c": Point([7, 8], [9, 10])})
    got = list(ds.as_numpy_iterator())
    assert got == [
        {"a": (1, 3), "b": 5, "c": Point(7, 9)},
        {"a": (2, 4), "b": 6, "c": Point(8, 10)},
    ]
    assert isinstance(got[0]["c"], Point)


def test_AsNumpyIteratorTest_testDatasetElement():
    (element,) = list(D.from_tensors(D.range(3)).as_numpy_iterator())
    assert isinstance(element, D)  # TF: TypeError
    assert outputs(element) == [0, 1, 2]


def test_AsNumpyIteratorTest_testNestedNonTensorElement():
    ((values, inner),) = list(D.from_tensors((tf.constant([1, 2, 3]), D.range(3))).as_numpy_iterator())
    np.testing.assert_array_equal(values, [1, 2, 3])
    assert outputs(inner) == [0, 1, 2]  # TF: TypeError


def test_AsNumpyIteratorTest_testNoneElement():
    assert list(D.from_tensors((2, None)).as_numpy_iterator()) == [(2, None)]


def test_AsNumpyIteratorTest_testCompatibleWithCheckpoint():
    # TF saves the iterator with tf.train.Checkpoint; npyflow with get_state/set_state.
    ds = D.range(10)
    it = ds.as_numpy_iterator()
    for _ in range(5):
        next(it)
    state = it.get_state()
    assert next(it) == 5 and next(it) == 6
    restored = ds.as_numpy_iterator()
    restored.set_state(state)
    assert next(restored) == 5
