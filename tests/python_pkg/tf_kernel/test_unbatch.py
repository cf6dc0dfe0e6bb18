"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/unbatch_test.py (commit
03049341)."""

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import (
    GRAPH_ONLY, PORTED, RAGGED, RANDOM_ACCESS, SPARSE, assert_produces, assert_restores,
    left_out,
)

D = tf.data.Dataset
TF_FILE = "unbatch_test.py"
TF_TESTS = {
    "UnbatchTest.testUnbatchWithUnknownRankInput": PORTED,
    "UnbatchTest.testUnbatchScalarDataset": PORTED,
    "UnbatchTest.testUnbatchNestedDataset": PORTED,
    "UnbatchTest.testUnbatchDatasetWithStrings": PORTED,
    "UnbatchTest.testUnbatchDatasetWithSparseTensor": left_out(SPARSE),
    "UnbatchTest.testUnbatchDatasetWithDenseSparseAndRaggedTensor": left_out(SPARSE),
    "UnbatchTest.testUnbatchDatasetWithRaggedTensor": left_out(RAGGED),
    "UnbatchTest.testUnbatchSingleElementTupleDataset": PORTED,
    "UnbatchTest.testUnbatchMultiElementTupleDataset": PORTED,
    "UnbatchTest.testUnbatchEmpty": PORTED,
    "UnbatchTest.testUnbatchStaticShapeMismatch": PORTED,
    "UnbatchTest.testUnbatchDynamicShapeMismatch": left_out(GRAPH_ONLY),
    "UnbatchTest.testUnbatchDatasetWithUintDtypes": PORTED,
    "UnbatchTest.testNoneComponent": PORTED,
    "UnbatchTest.testName": PORTED,
    "UnbatchCheckpointTest.test": PORTED,
    "UnbatchRandomAccessTest.test": left_out(RANDOM_ACCESS),
    "UnbatchRandomAccessTest.testNotDropRemainder": left_out(RANDOM_ACCESS),
    "UnbatchRandomAccessTest.testInvalidIndex": left_out(RANDOM_ACCESS),
}


def test_UnbatchTest_testUnbatchWithUnknownRankInput():
    assert_produces(D.from_tensors([0, 1, 2, 3]).unbatch(), range(4))


def test_UnbatchTest_testUnbatchScalarDataset():
    data = D.from_tensor_slices(tuple(np.arange(10, dtype=np.int32) for _ in range(3)))
    data = data.batch(2)
    assert tuple(s.dtype for s in data.element_spec) == (np.int32,) * 3
    data = data.unbatch()
    assert tuple(s.dtype for s in data.element_spec) == (np.int32,) * 3
    assert_produces(data, [(i,) * 3 for i in range(10)])


def test_UnbatchTest_testUnbatchNestedDataset():
    data = D.from_tensors([D.range(10) for _ in range(10)])
    assert_produces(data.unbatch().flat_map(lambda x: x), list(range(10)) * 10)


def test_UnbatchTest_testUnbatchDatasetWithStrings():
    data = D.from_tensor_slices(tuple(np.arange(10, dtype=np.int32) for _ in range(3)))
    # TF maps y with tf.strings.as_string; NumPy's str of the value is the same text.
    data = data.map(lambda x, y, z: (x, np.bytes_(str(int(y))), z))
    data = data.batch(2).unbatch()
    assert data.element_spec[1].dtype == tf.string
    assert_produces(data, [(i, str(i).encode(), i) for i in range(10)])


def test_UnbatchTest_testUnbatchSingleElementTupleDataset():
    data = D.from_tensor_slices(tuple((np.arange(10, dtype=np.int32),) for _ in range(3)))
    data = data.batch(2).unbatch()
    assert tuple(tuple(s.dtype for s in part) for part in data.element_spec) == (
        (np.int32,),
    ) * 3
    assert_produces(data, [((i,),) * 3 for i in range(10)])


def test_UnbatchTest_testUnbatchMultiElementTupleDataset():
    data = D.from_tensor_slices(
        tuple((np.arange(10 * i, 10 * i + 10, dtype=np.int32), np.full([10], b"hi")) for i in range(3))
    )
    data = data.batch(2).unbatch()
    assert_produces(data, [((i, b"hi"), (10 + i, b"hi"), (20 + i, b"hi")) for i in range(10)])


def test_UnbatchTest_testUnbatchEmpty():
    data = D.from_tensors(
        (np.zeros([0], np.float32), np.zeros([0, 4], np.float32), np.zeros([0, 4, 0], np.float32))
    )
    assert_produces(data.unbatch(), [])


def test_UnbatchTest_testUnbatchStaticShapeMismatch():
    data = D.from_tensors((np.arange(7), np.arange(8), np.arange(9)))
    with pytest.raises(ValueError):
        data.unbatch()


def test_UnbatchTest_testUnbatchDatasetWithUintDtypes():
    components = (
        np.tile(np.array([[0], [1], [2], [3]], dtype=np.uint8), 2),
        np.tile(np.array([[1], [2], [3], [256]], dtype=np.uint16), 2),
        np.tile(np.array([[2], [3], [4], [65536]], dtype=np.uint32), 2),
        np.tile(np.array([[3], [4], [5], [4294967296]], dtype=np.uint64), 2),
    )
    data = D.from_tensor_slices(components).batch(2)
    want_types = (np.uint8, np.uint16, np.uint32, np.uint64)
    assert tuple(s.dtype for s in data.element_spec) == want_types
    data = data.unbatch()
    assert tuple(s.dtype for s in data.element_spec) == want_types
    assert_produces(data, [tuple(c[i] for c in components) for i in range(4)])


def test_UnbatchTest_testNoneComponent():
    ds = D.from_tensors((list(range(10)), None)).unbatch().map(lambda x, y: x)
    assert_produces(ds, range(10))


def test_UnbatchCheckpointTest_test():
    def build():
        n = 8
        components = (
            np.arange(n),
            np.array([[1, 2, 3]]) * np.arange(n)[:, np.newaxis],
            np.array(15.0) * np.arange(n),
        )
        return D.from_tensor_slices(components).batch(2).unbatch()

    assert_restores(build, 8)


def test_UnbatchTest_testName():
    # name= names the op in TF's graph; npyflow takes it and ignores it.
    assert_produces(D.from_tensors([42]).unbatch(name='unbatch'), [42])
