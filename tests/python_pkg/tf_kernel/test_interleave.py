"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/interleave_test.py (commit
04e95d6b)."""

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import GRAPH_ONLY, PORTED, SPARSE, assert_produces, left_out

D = tf.data.Dataset
TF_FILE = "interleave_test.py"
TF_TESTS = {
    "InterleaveTest.testPythonImplementation": PORTED,
    "InterleaveTest.testInterleaveDataset": PORTED,
    "InterleaveTest.testInterleaveDatasetError": PORTED,
    "InterleaveTest.testInterleaveSparse": left_out(SPARSE),
    "InterleaveTest.testSkipEagerSloppyInterleaveInOrder": left_out(GRAPH_ONLY),
    "InterleaveTest.testSkipEagerSloppyInterleaveOutOfOrder": left_out(GRAPH_ONLY),
}


def reference_interleave(lists, cycle_length, block_length):
    """What interleave yields, written out: ``cycle_length`` open inputs taken in turn,
    ``block_length`` elements from each, an ended input replaced by the next one."""
    pending = [iter(x) for x in lists]
    slots = [pending.pop(0) if pending else None for _ in range(cycle_length)]
    while any(s is not None for s in slots) or pending:
        for i in range(cycle_length):
            if slots[i] is None:
                if not pending:
                    continue
                slots[i] = pending.pop(0)
            for _ in range(block_length):
                try:
                    yield next(slots[i])
                except StopIteration:
                    slots[i] = None
                    break


def repeated(values, count):
    return [[v] * v for v in np.tile(values, count)]


@pytest.mark.parametrize(
    "values, cycle, block, expected",
    [
        ([4, 5, 6], 1, 1, [4] * 4 + [5] * 5 + [6] * 6 + [4] * 4 + [5] * 5 + [6] * 6),
        ([4, 5, 6], 2, 1, [4, 5, 4, 5, 4, 5, 4, 5, 5, 6, 6, 4, 6, 4, 6, 4, 6, 4, 6, 5, 6, 5, 6, 5, 6, 5, 6, 5, 6, 6]),
        ([4, 5, 6], 2, 3, [4, 4, 4, 5, 5, 5, 4, 5, 5, 6, 6, 6, 4, 4, 4, 6, 6, 6, 4, 5, 5, 5, 6, 6, 6, 5, 5, 6, 6, 6]),
        ([4, 5, 6], 7, 2, [4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6, 5, 6, 6, 5, 6, 6]),
        ([4, 0, 6], 2, 1, [4, 4, 6, 4, 6, 4, 6, 6, 4, 6, 4, 6, 4, 4, 6, 6, 6, 6, 6, 6]),
    ],
)
def test_InterleaveTest_testPythonImplementation(values, cycle, block, expected):
    assert list(reference_interleave(repeated(values, 2), cycle, block)) == expected


@pytest.mark.parametrize(
    "values, cycle, block, parallel",
    [
        ([4, 5, 6], 1, 3, None), ([4, 5, 6], 1, 3, 1), ([4, 5, 6], 2, 1, None),
        ([4, 5, 6], 2, 1, 1), ([4, 5, 6], 2, 1, 2), ([4, 5, 6], 2, 3, None),
        ([4, 5, 6], 2, 3, 1), ([4, 5, 6], 2, 3, 2), ([4, 5, 6], 7, 2, None),
        ([4, 5, 6], 7, 2, 1), ([4, 5, 6], 7, 2, 3), ([4, 5, 6], 7, 2, 5),
        ([4, 5, 6], 7, 2, 7), ([], 2, 3, None), ([0, 0, 0], 2, 3, None),
        ([4, 0, 6], 2, 3, None), ([4, 0, 6], 2, 3, 1), ([4, 0, 6], 2, 3, 2),
    ],
)
def test_InterleaveTest_testInterleaveDataset(values, cycle, block, parallel):
    ds = D.from_tensor_slices(np.array(values, dtype=np.int64)).repeat(2)
    ds = ds.interleave(lambda x: D.from_tensors(x).repeat(x), cycle, block, parallel)
    assert_produces(ds, list(reference_interleave(repeated(values, 2), cycle, block)))


def check_numerics(x):
    if np.isnan(x):
        raise ValueError("message")  # tf.debugging.check_numerics's error
    return x


@pytest.mark.parametrize(
    "cycle, block, parallel",
    [(1, 3, None), (1, 3, 1), (2, 1, None), (2, 1, 1), (2, 1, 2), (2, 3, None), (2, 3, 1),
     (2, 3, 2), (7, 2, None), (7, 2, 1), (7, 2, 3), (7, 2, 5), (7, 2, 7)],
)
def test_InterleaveTest_testInterleaveDatasetError(cycle, block, parallel):
    values = np.float32([1.0, np.nan, 2.0, np.nan, 3.0])
    ds = D.from_tensor_slices(values).map(check_numerics).interleave(
        D.from_tensors, cycle, block, parallel
    )
    it = ds.as_numpy_iterator()
    for value in values:
        if np.isnan(value):
            with pytest.raises(ValueError):  # TF: InvalidArgumentError
                next(it)
        else:
            assert next(it) == value
    with pytest.raises(StopIteration):
        next(it)
