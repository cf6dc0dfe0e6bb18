"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/from_tensor_slices_test.py
(commit 03049341)."""

import collections

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import (
    PORTED, RAGGED, RANDOM_ACCESS, SPARSE, assert_produces, assert_restores,
    assert_shapes, left_out, outputs,
)

D = tf.data.Dataset
TF_FILE = "from_tensor_slices_test.py"
TF_TESTS = {
    "FromTensorSlicesTest.testFromTensorSlicesEmptyComponent": PORTED,
    "FromTensorSlicesTest.testFromTensorSlices": PORTED,
    "FromTensorSlicesTest.testFromTensorSlicesDataset": PORTED,
    "FromTensorSlicesTest.testFromTensorSlicesDatasetOfOrderedDict": PORTED,
    "FromTensorSlicesTest.testFromTensorSlicesDatasetInFunction": PORTED,
    "FromTensorSlicesTest.testFromTensorSlicesSparse": left_out(SPARSE),
    "FromTensorSlicesTest.testFromTensorSlicesMixed": left_out(SPARSE),
    "FromTensorSlicesTest.testFromTensorSlicesWithDict": PORTED,
    "FromTensorSlicesTest.testFromTensorSlicesRagged": left_out(RAGGED),
    "FromTensorSlicesTest.testFromTensorSlicesMixedRagged": left_out(RAGGED),
    "FromTensorSlicesTest.testFromTensorSlicesWithUintDtypes": PORTED,
    "FromTensorSlicesRandomAccessTest.testInvalidIndex": left_out(RANDOM_ACCESS),
    "FromTensorSlicesRandomAccessTest.testOneDimensionalArray": left_out(RANDOM_ACCESS),
    "FromTensorSlicesRandomAccessTest.testTwoDimensionalArray": left_out(RANDOM_ACCESS),
    "FromTensorSlicesRandomAccessTest.testMultipleComponents": left_out(RANDOM_ACCESS),
    "FromTensorSlicesRandomAccessTest.testDictionary": left_out(RANDOM_ACCESS),
    "FromTensorSlicesRandomAccessTest.testNumpy": left_out(RANDOM_ACCESS),
    "FromTensorSlicesRandomAccessTest.testName": PORTED,
    "FromTensorSlicesCheckpointTest.test": PORTED,
    "FromTensorSlicesCheckpointTest.testDict": PORTED,
    "FromTensorSlicesGlobalShuffleTest.testGlobalShuffleTensorSlicesDataset": PORTED,
    "FromTensorSlicesGlobalShuffleCheckpointTest.testGlobalShuffleTensorSlicesDataset": PORTED,
}

COMPONENTS = (
    np.tile(np.array([[1], [2], [3], [4]]), 20),
    np.tile(np.array([[12], [13], [14], [15]]), 22),
    np.array([37.0, 38.0, 39.0, 40.0]),
)


def test_FromTensorSlicesTest_testFromTensorSlicesEmptyComponent():
    with pytest.raises(ValueError):
        D.from_tensor_slices(())


def test_FromTensorSlicesTest_testFromTensorSlices():
    ds = D.from_tensor_slices(COMPONENTS)
    assert_shapes(ds, tuple(list(c.shape[1:]) for c in COMPONENTS))
    assert_produces(ds, [tuple(c[i] for c in COMPONENTS) for i in range(4)])


def test_FromTensorSlicesTest_testFromTensorSlicesDataset():
    dss = [D.range(10) for _ in range(10)]
    assert_produces(D.from_tensor_slices(dss).flat_map(lambda x: x), list(range(10)) * 10)


def test_FromTensorSlicesTest_testFromTensorSlicesDatasetOfOrderedDict():
    dss = [D.range(10).map(lambda x: collections.OrderedDict([("x", x)])) for _ in range(10)]
    ds = D.from_tensor_slices(dss).flat_map(lambda x: x)
    assert_produces(ds, [collections.OrderedDict([("x", x)]) for x in list(range(10)) * 10])


def test_FromTensorSlicesTest_testFromTensorSlicesDatasetInFunction():
    dss = [D.range(10) for _ in range(10)]
    ds = D.from_tensors(dss).flat_map(D.from_tensor_slices).flat_map(lambda x: x)
    assert_produces(ds, list(range(10)) * 10)


def test_FromTensorSlicesTest_testFromTensorSlicesWithDict():
    components = {"foo": [1, 2, 3], "bar": [[4.0], [5.0], [6.0]]}
    ds = D.from_tensor_slices(components)
    assert ds.element_spec["foo"].dtype == np.int32
    assert ds.element_spec["bar"].dtype == np.float32
    assert_shapes(ds, {"foo": [], "bar": [1]})
    assert_produces(ds, [{"foo": components["foo"][i], "bar": components["bar"][i]} for i in range(3)])


def test_FromTensorSlicesTest_testFromTensorSlicesWithUintDtypes():
    components = (
        np.tile(np.array([[0], [1]], dtype=np.uint8), 2),
        np.tile(np.array([[2], [256]], dtype=np.uint16), 2),
        np.tile(np.array([[4], [65536]], dtype=np.uint32), 2),
        np.tile(np.array([[8], [4294967296]], dtype=np.uint64), 2),
    )
    ds = D.from_tensor_slices(components)
    assert tuple(s.dtype for s in ds.element_spec) == (np.uint8, np.uint16, np.uint32, np.uint64)
    assert_produces(ds, [tuple(c[i] for c in components) for i in range(2)])


def test_FromTensorSlicesCheckpointTest_test():
    assert_restores(lambda: D.from_tensor_slices(COMPONENTS), 4)


def test_FromTensorSlicesCheckpointTest_testDict():
    components = {"foo": [1, 2, 3], "bar": [[4.0], [5.0], [6.0]]}
    assert_restores(lambda: D.from_tensor_slices(components), 3)


@pytest.mark.parametrize("dataset_range", [10, 100])
@pytest.mark.parametrize("repetitions", [1, 3])
@pytest.mark.parametrize("seed", [None, 19])
@pytest.mark.parametrize("reshuffle_each_iteration", [True, False])
def test_FromTensorSlicesGlobalShuffleTest_testGlobalShuffleTensorSlicesDataset(
    dataset_range, repetitions, seed, reshuffle_each_iteration
):
    ds = D.from_tensor_slices(list(range(dataset_range)))
    if repetitions > 1:
        ds = ds.repeat(repetitions)
    ds = ds.global_shuffle(seed=seed, reshuffle_each_iteration=reshuffle_each_iteration)
    got = outputs(ds)
    expected = list(range(dataset_range)) * repetitions
    assert sorted(got) == sorted(expected)
    assert got != expected
    assert len(expected) == ds.cardinality()


@pytest.mark.parametrize("repetitions", [1, 3])
@pytest.mark.parametrize("reshuffle_each_iteration", [True, False])
def test_FromTensorSlicesGlobalShuffleCheckpointTest_testGlobalShuffleTensorSlicesDataset(
    repetitions, reshuffle_each_iteration
):
    def build():
        ds = D.from_tensor_slices(list(range(10)))
        if repetitions > 1:
            ds = ds.repeat(repetitions)
        return ds.global_shuffle(seed=42, reshuffle_each_iteration=reshuffle_each_iteration)

    assert_restores(build, 10 * repetitions)


def test_FromTensorSlicesRandomAccessTest_testName():
    # name= names the op in TF's graph; npyflow takes it and ignores it.
    assert_produces(D.from_tensor_slices([42], name='from_tensor_slices'), [42])
