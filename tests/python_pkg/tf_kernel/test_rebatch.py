"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/rebatch_test.py (commit
03049341)."""

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import PORTED, RAGGED, assert_produces, assert_restores, assert_shapes, left_out, outputs

D = tf.data.Dataset
TF_FILE = "rebatch_test.py"
TF_TESTS = {
    "RebatchTest.testShapeInferenceNotAllBatchSizesEqual": PORTED,
    "RebatchTest.testShapeInferenceInputBatchDimDivisible": PORTED,
    "RebatchTest.testShapeInferenceInputBatchDimUnknown": PORTED,
    "RebatchTest.testShapeInferenceInputBatchDimUnknownWithDropRemainder": PORTED,
    "RebatchTest.testShapeInferenceInputBatchDimIndivisible": PORTED,
    "RebatchTest.testShapeInferenceInputBatchDimIndivisibleWithDropRemainder": PORTED,
    "RebatchTest.testBasic": PORTED,
    "RebatchTest.testPartialBatch": PORTED,
    "RebatchTest.testPartialBatchWithDropRemainder": PORTED,
    "RebatchTest.testBatchSizeGreaterThanOriginal": PORTED,
    "RebatchTest.testBatchSizeEqualToOriginal": PORTED,
    "RebatchTest.testEmptySplits": PORTED,
    "RebatchTest.testEmptyFirstSplits": PORTED,
    "RebatchTest.testEmptyLastSplits": PORTED,
    "RebatchTest.testEmptyTensors": PORTED,
    "RebatchTest.testScalarBatchSizeInput": PORTED,
    "RebatchTest.testMultipleBatches": PORTED,
    "RebatchTest.testNestedDictionaryOutput": PORTED,
    "RebatchTest.testRaggedDataset": left_out(RAGGED),
    "RebatchTest.testNoneDataset": PORTED,
    "RebatchDatasetCheckpointTest.test": PORTED,
}


def batched(n, size, drop):
    return D.range(n).batch(size, drop_remainder=drop)


def test_RebatchTest_testShapeInferenceNotAllBatchSizesEqual():
    assert_shapes(batched(8, 4, True).rebatch([2, 1, 1]), [None])


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_RebatchTest_testShapeInferenceInputBatchDimDivisible(drop_remainder):
    assert_shapes(batched(8, 4, True).rebatch([2, 2], drop_remainder=drop_remainder), [2])


def test_RebatchTest_testShapeInferenceInputBatchDimUnknown():
    assert_shapes(batched(8, 4, False).rebatch([2, 2], drop_remainder=False), [None])


def test_RebatchTest_testShapeInferenceInputBatchDimUnknownWithDropRemainder():
    assert_shapes(batched(8, 4, False).rebatch([2, 2], drop_remainder=True), [2])


def test_RebatchTest_testShapeInferenceInputBatchDimIndivisible():
    assert_shapes(batched(10, 5, True).rebatch([2, 2], drop_remainder=False), [None])


def test_RebatchTest_testShapeInferenceInputBatchDimIndivisibleWithDropRemainder():
    assert_shapes(batched(10, 5, True).rebatch([2, 2], drop_remainder=True), [2])


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_RebatchTest_testBasic(drop_remainder):
    ds = batched(8, 4, True).rebatch([2, 2], drop_remainder=drop_remainder)
    assert_shapes(ds, [2])
    assert_produces(ds, [[0, 1], [2, 3], [4, 5], [6, 7]])


def test_RebatchTest_testPartialBatch():
    ds = batched(5, 4, False).rebatch([2, 2], drop_remainder=False)
    assert_shapes(ds, [None])
    assert_produces(ds, [[0, 1], [2, 3], [4]])


def test_RebatchTest_testPartialBatchWithDropRemainder():
    ds = batched(5, 4, False).rebatch([2, 2], drop_remainder=True)
    assert_shapes(ds, [2])
    assert_produces(ds, [[0, 1], [2, 3]])


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_RebatchTest_testBatchSizeGreaterThanOriginal(drop_remainder):
    ds = batched(12, 4, False).rebatch([6], drop_remainder=drop_remainder)
    assert_produces(ds, [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])


@pytest.mark.parametrize("batch_size", [2, 3, 4])
@pytest.mark.parametrize("drop_remainder", [True, False])
def test_RebatchTest_testBatchSizeEqualToOriginal(batch_size, drop_remainder):
    ds = batched(11, batch_size, drop_remainder)
    assert_produces(ds.rebatch(batch_size, drop_remainder=False), outputs(ds))


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_RebatchTest_testEmptySplits(drop_remainder):
    ds = batched(8, 4, True).rebatch([1, 1, 1, 1, 0], drop_remainder=drop_remainder)
    assert_shapes(ds, [None])
    assert_produces(ds, [[0], [1], [2], [3], [], [4], [5], [6], [7], []])


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_RebatchTest_testEmptyFirstSplits(drop_remainder):
    ds = batched(8, 4, True).rebatch([0, 1], drop_remainder=drop_remainder)
    assert_shapes(ds, [None])
    expected = []
    for i in range(8):
        expected += [[], [i]]
    assert_produces(ds, expected + [[]])


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_RebatchTest_testEmptyLastSplits(drop_remainder):
    ds = batched(8, 4, True).rebatch([1, 0], drop_remainder=drop_remainder)
    assert_shapes(ds, [None])
    expected = []
    for i in range(8):
        expected += [[i], []]
    assert_produces(ds, expected)


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_RebatchTest_testEmptyTensors(drop_remainder):
    ds = D.range(8).map(lambda x: np.zeros((5, 0), np.float32)).batch(2)
    ds = ds.rebatch(4, drop_remainder=drop_remainder)
    got = list(ds.as_numpy_iterator())
    assert [g.shape for g in got] == [(4, 5, 0)] * 2


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_RebatchTest_testScalarBatchSizeInput(drop_remainder):
    ds = batched(8, 4, True).rebatch(2, drop_remainder=drop_remainder)
    assert_shapes(ds, [2])
    assert_produces(ds, [[0, 1], [2, 3], [4, 5], [6, 7]])


def test_RebatchTest_testMultipleBatches():
    ds = D.range(16).batch(2, drop_remainder=True).batch(4, drop_remainder=True)
    assert_shapes(ds, [4, 2])
    ds = ds.rebatch([2, 2])
    assert_shapes(ds, [2, 2])
    assert_produces(
        ds, [[[0, 1], [2, 3]], [[4, 5], [6, 7]], [[8, 9], [10, 11]], [[12, 13], [14, 15]]]
    )


def test_RebatchTest_testNestedDictionaryOutput():
    ds = D.range(8).map(lambda x: {"a": x, "b": {"c": x + 1}}).batch(4, drop_remainder=True)
    ds = ds.rebatch([2, 2])
    assert_shapes(ds, {"a": [2], "b": {"c": [2]}})
    assert_produces(
        ds,
        [{"a": [2 * i, 2 * i + 1], "b": {"c": [2 * i + 1, 2 * i + 2]}} for i in range(4)],
    )


def test_RebatchTest_testNoneDataset():
    ds = D.range(4).map(lambda x: (x, None)).batch(4, drop_remainder=True)
    ds.rebatch(batch_size=[2, 2])


def test_RebatchDatasetCheckpointTest_test():
    assert_restores(lambda: D.range(64).batch(16, drop_remainder=True).rebatch([8, 8]), 8)
