"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/take_while_test.py (commit
153ddf8e), unique_test.py (commit 03049341) and concatenate_test.py (commit 010f3edc)."""

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import (
    PORTED, assert_produces, assert_restores, assert_shapes,
)

D = tf.data.Dataset
TF_FILE = ["take_while_test.py", "unique_test.py", "concatenate_test.py"]
TF_TESTS = {
    "TakeWhileTest.testTakeWhileDataset": PORTED,
    "TakeWhileTest.testTakeWhileDatasetRange": PORTED,
    "TakeWhileTest.testTakeWhileDatasetString": PORTED,
    "TakeWhileTest.testTakewhileDatasetShortCircuit": PORTED,
    "TakeWhileTest.testTakeWhileDatasetWithRepeat": PORTED,
    "TakeWhileCheckpointTest.test": PORTED,
    "UniqueTest.testSimpleInt": PORTED,
    "UniqueTest.testSimpleString": PORTED,
    "UniqueTest.testUnsupportedTypes": PORTED,
    "UniqueTest.testName": PORTED,
    "UniqueCheckpointTest.test": PORTED,
    "ConcatenateTest.testConcatenateDataset": PORTED,
    "ConcatenateTest.testConcatenateDatasetDifferentShape": PORTED,
    "ConcatenateTest.testConcatenateDatasetDifferentStructure": PORTED,
    "ConcatenateTest.testConcatenateDatasetDifferentKeys": PORTED,
    "ConcatenateTest.testConcatenateDatasetDifferentType": PORTED,
    "ConcatenateCheckpointTest.testConcatenateCore": PORTED,
}


@pytest.mark.parametrize("num_elements, window_size", [(14, 2), (15, 2), (100, 3)])
def test_TakeWhileTest_testTakeWhileDataset(num_elements, window_size):
    ds = D.range(num_elements).batch(window_size)
    ds = ds.take_while(lambda elem: np.shape(elem)[0] > window_size - 1)
    ds = ds.flat_map(D.from_tensor_slices)
    assert_produces(ds, np.arange(num_elements // window_size * window_size))


@pytest.mark.parametrize(
    "num_elements, upper_bound", [(10, 2), (16, 7), (100, 99), (100, 101), (0, 1)]
)
def test_TakeWhileTest_testTakeWhileDatasetRange(num_elements, upper_bound):
    ds = D.range(num_elements).take_while(lambda x: x < upper_bound)
    assert_produces(ds, np.arange(min(num_elements, upper_bound)))


def test_TakeWhileTest_testTakeWhileDatasetString():
    strings = ["this", "is", "the", "test", "for", "strings"]
    ds = D.from_tensor_slices(strings).take_while(lambda x: x != b"test")
    assert_produces(ds, [b"this", b"is", b"the"])


@pytest.mark.parametrize("size, index", [(5, 3), (10, 0), (100, 5), (8, 7)])
def test_TakeWhileTest_testTakewhileDatasetShortCircuit(size, index):
    flags = [True] * size
    flags[index] = False
    ds = D.from_tensor_slices(flags).take_while(lambda x: x)
    assert_produces(ds, [True] * index)


def test_TakeWhileTest_testTakeWhileDatasetWithRepeat():
    ds = D.range(10).take_while(lambda x: x < 2).repeat(5)
    assert_produces(ds, np.tile([0, 1], 5))


@pytest.mark.parametrize("num_elements", [10, 23])
@pytest.mark.parametrize("upper_bound", [10, 23])
def test_TakeWhileCheckpointTest_test(num_elements, upper_bound):
    assert_restores(
        lambda: D.range(num_elements).take_while(lambda x: x < upper_bound),
        min(num_elements, upper_bound),
    )


def unique_of(values, spec):
    return D.from_generator(lambda: iter(values), output_signature=spec).unique()


INT_CASES = [
    ([], []),
    ([1], [1]),
    ([1, 1, 1, 1, 1, 1, 1], [1]),
    ([1, 1, 1, 1, 0], [1, 0]),
    ([1, 2, 3, 4], [1, 2, 3, 4]),
    ([1, 2, 4, 3, 2, 1, 2, 3, 4], [1, 2, 4, 3]),
    ([[1], [1, 1], [1, 1, 1]], [[1], [1, 1], [1, 1, 1]]),
    ([[1, 1], [1, 1], [2, 2], [3, 3], [1, 1]], [[1, 1], [2, 2], [3, 3]]),
]


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("values, expected", INT_CASES)
def test_UniqueTest_testSimpleInt(dtype, values, expected):
    # TF's helper builds from_generator(values, dtype): a spec of unknown shape.
    assert_produces(unique_of(values, tf.TensorSpec(None, dtype)), expected)


@pytest.mark.parametrize(
    "values, expected",
    [
        ([], []),
        (["hello"], ["hello"]),
        (["hello", "hello", "hello"], ["hello"]),
        (["hello", "world"], ["hello", "world"]),
        (["foo", "bar", "baz", "baz", "bar", "foo"], ["foo", "bar", "baz"]),
    ],
)
def test_UniqueTest_testSimpleString(values, expected):
    ds = unique_of(values, tf.TensorSpec((), "S16"))
    assert_produces(ds, [v.encode() for v in expected])


@pytest.mark.parametrize("dtype", [np.bool_, np.float64, np.complex64, np.float32])
def test_UniqueTest_testUnsupportedTypes(dtype):
    with pytest.raises(TypeError):
        D.from_generator(lambda: iter([]), output_signature=tf.TensorSpec((), dtype)).unique()


def test_UniqueCheckpointTest_test():
    assert_restores(lambda: D.range(200).map(lambda x: x % 100).unique(), 100)


IN = (
    np.tile(np.array([[1], [2], [3], [4]]), 20),
    np.tile(np.array([[12], [13], [14], [15]]), 15),
    np.array([37.0, 38.0, 39.0, 40.0]),
)
MORE = (
    np.tile(np.array([[1], [2], [3], [4], [5]]), 20),
    np.tile(np.array([[12], [13], [14], [15], [16]]), 15),
    np.array([37.0, 38.0, 39.0, 40.0, 41.0]),
)


def test_ConcatenateTest_testConcatenateDataset():
    ds = D.from_tensor_slices(IN).concatenate(D.from_tensor_slices(MORE))
    assert_shapes(ds, ([20], [15], []))
    expected = [tuple(c[i] for c in IN) for i in range(4)]
    expected += [tuple(c[i] for c in MORE) for i in range(5)]
    assert_produces(ds, expected)


def test_ConcatenateTest_testConcatenateDatasetDifferentShape():
    a = (np.tile(np.array([[1], [2], [3], [4]]), 20), np.tile(np.array([[12], [13], [14], [15]]), 4))
    b = (MORE[0], MORE[1])
    ds = D.from_tensor_slices(a).concatenate(D.from_tensor_slices(b))
    assert_shapes(ds, ([20], [None]))
    expected = [tuple(c[i] for c in a) for i in range(4)] + [tuple(c[i] for c in b) for i in range(5)]
    assert_produces(ds, expected)


def test_ConcatenateTest_testConcatenateDatasetDifferentStructure():
    a = (np.tile(np.array([[1], [2], [3], [4]]), 5), np.tile(np.array([[12], [13], [14], [15]]), 4))
    with pytest.raises(TypeError):
        D.from_tensor_slices(a).concatenate(D.from_tensor_slices(MORE))


def test_ConcatenateTest_testConcatenateDatasetDifferentKeys():
    a = {"foo": np.array([[1], [2], [3], [4]]), "bar": np.array([[12], [13], [14], [15]])}
    b = {"foo": np.array([[1], [2], [3], [4]]), "baz": np.array([[5], [6], [7], [8]])}
    with pytest.raises(TypeError):
        D.from_tensor_slices(a).concatenate(D.from_tensor_slices(b))


def test_ConcatenateTest_testConcatenateDatasetDifferentType():
    a = (np.tile(np.array([[1], [2], [3], [4]]), 5), np.tile(np.array([[12], [13], [14], [15]]), 4))
    b = (np.tile(np.array([[1.0], [2.0], [3.0], [4.0]]), 5), np.tile(np.array([[12], [13], [14], [15]]), 15))
    with pytest.raises(TypeError):
        D.from_tensor_slices(a).concatenate(D.from_tensor_slices(b))


def test_ConcatenateCheckpointTest_testConcatenateCore():
    def build():
        a = (np.tile(np.array([[1], [2], [3], [4]]), 20), np.tile(np.array([[12], [13], [14], [15]]), 4))
        b = (np.tile(np.array([[5], [6], [7], [8], [9]]), 20), np.tile(np.array([[16], [17], [18], [19], [20]]), 15))
        return D.from_tensor_slices(a).concatenate(D.from_tensor_slices(b))

    assert_restores(build, 9)


def test_UniqueTest_testName():
    # name= names the op in TF's graph; npyflow takes it and ignores it.
    assert_produces(D.from_tensors(42).unique(name='unique'), [42])
