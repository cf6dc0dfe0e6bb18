"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/flat_map_test.py and
padded_batch_test.py (commit 010f3edc)."""

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import (
    GRAPH_ONLY, PORTED, RAGGED, SPARSE, TF_OPS, assert_produces, assert_restores,
    differs, left_out, outputs,
)

D = tf.data.Dataset
TF_FILE = ["flat_map_test.py", "padded_batch_test.py"]
TF_TESTS = {
    "FlatMapTest.testFlatMapDataset": PORTED,
    "FlatMapTest.testNestedFlatMapDataset": PORTED,
    "FlatMapTest.testSharedResourceNestedFlatMapDataset": left_out(GRAPH_ONLY),
    "FlatMapTest.testMapDict": PORTED,
    "FlatMapTest.testSparse": left_out(SPARSE),
    "FlatMapTest.testTensorArray": left_out(TF_OPS),
    "FlatMapTest.testRagged": left_out(RAGGED),
    "FlatMapCheckpointTest.testCore": PORTED,
    "FlatMapCheckpointTest.testMapThenFlatMap": PORTED,
    "FlatMapCheckpointTest.testCaptureDefunInMapFn": left_out(TF_OPS),
    "FlatMapCheckpointTest.testDisallowVariableCapture": left_out(TF_OPS),
    "FlatMapCheckpointTest.testDisallowCapturingStatefulOps": left_out(TF_OPS),
    "FlatMapCheckpointTest.testSparseCore": left_out(SPARSE),
    "PaddedBatchTest.testPaddedBatchDataset": PORTED,
    "PaddedBatchTest.testPaddedBatchShortPadding": PORTED,
    "PaddedBatchTest.testPaddedBatchEmptyTensors": PORTED,
    "PaddedBatchTest.testDefaultPaddedShapes": PORTED,
    "PaddedBatchTest.testNestedDefaultPaddedShapes": PORTED,
    "PaddedBatchTest.testPaddedBatchDatasetNonDefaultPadding": PORTED,
    "PaddedBatchTest.testPaddedBatchDatasetUnicode": PORTED,
    "PaddedBatchTest.testPaddedBatchDatasetShapeSpecifications": left_out(GRAPH_ONLY),
    "PaddedBatchTest.testPaddedBatchSparseError": left_out(SPARSE),
    "PaddedBatchTest.testPaddedBatchRaggedError": left_out(RAGGED),
    "PaddedBatchTest.testPaddedBatchShapeErrorWrongRank": PORTED,
    "PaddedBatchTest.testPaddedBatchShapeErrorTooSmall": PORTED,
    "PaddedBatchTest.testPaddedBatchShapeErrorShapeNotRank1": PORTED,
    "PaddedBatchTest.testPaddedBatchShapeErrorShapeNotInt": PORTED,
    "PaddedBatchTest.testPaddedBatchShapeErrorWrongRankFromTensor": PORTED,
    "PaddedBatchTest.testPaddedBatchShapeErrorDefaultShapeWithUnknownRank": PORTED,
    "PaddedBatchTest.testPaddedBatchShapeErrorPlaceholder": left_out(GRAPH_ONLY),
    "PaddedBatchTest.testPaddedBatchBfloat16": left_out(
        "bfloat16: NumPy has no such dtype, so npyflow has none"
    ),
    "PaddedBatchTest.testDefaultPaddedValueShapes": PORTED,
    "PaddedBatchCheckpointTest.testPaddedBatch": PORTED,
    "PaddedBatchCheckpointTest.testPaddedBatchNonDefaultPadding": PORTED,
}


def test_FlatMapTest_testFlatMapDataset():
    repeats = [1, 2, 3, 4, 5, 0, 1]
    ds = D.from_tensor_slices(np.array(repeats, dtype=np.int64))
    ds = ds.flat_map(lambda x: D.from_tensors([x]).repeat(x))
    assert_produces(ds, [[i] for i in repeats for _ in range(i)])


def test_FlatMapTest_testNestedFlatMapDataset():
    repeats = [[1, 2], [3, 4], [5, 0], [1, 7]]
    ds = D.from_tensor_slices(np.array(repeats, dtype=np.int64)).flat_map(
        lambda x: D.from_tensor_slices(x).flat_map(lambda y: D.from_tensors(y).repeat(y))
    )
    assert_produces(ds, [i for row in repeats for i in row for _ in range(i)])


def test_FlatMapTest_testMapDict():
    ds = D.range(10).map(lambda x: {"foo": x * 2, "bar": x**2})
    ds = ds.flat_map(lambda d: D.from_tensors(d["foo"]).repeat(d["bar"]))
    assert_produces(ds, [i * 2 for i in range(10) for _ in range(i**2)])


def test_FlatMapCheckpointTest_testCore():
    def build(start):
        return D.range(start, start + 5 * 5, 5).flat_map(lambda x: D.range(x, x + 5))

    assert_restores(lambda: build(0), 25)
    assert_produces(build(0), range(25))


def test_FlatMapCheckpointTest_testMapThenFlatMap():
    def build():
        return D.range(5).flat_map(lambda _: D.range(100).map(lambda y: 10 * y.astype(np.int32)))

    assert_restores(build, 500)


def fill(x):
    return np.full([x], x)


@pytest.mark.parametrize("count", [32, 34])
@pytest.mark.parametrize("padded_shapes", [[None], [25]])
@pytest.mark.parametrize("drop_remainder", [True, False])
def test_PaddedBatchTest_testPaddedBatchDataset(count, padded_shapes, drop_remainder):
    seq_lens = np.random.default_rng(count).integers(20, size=(count,)).astype(np.int32)
    ds = D.from_tensor_slices(seq_lens).map(fill).padded_batch(
        4, drop_remainder=drop_remainder, padded_shapes=padded_shapes
    )
    got = outputs(ds)
    full = count // 4
    assert len(got) == full + (0 if drop_remainder or count % 4 == 0 else 1)
    for i, batch in enumerate(np.asarray(b) for b in got):
        rows = seq_lens[i * 4 : i * 4 + 4]
        padded = padded_shapes[0] if padded_shapes[0] is not None else (int(np.max(batch)) if batch.size else 0)
        assert batch.shape == (len(rows), padded)
        for j, n in enumerate(rows):
            assert batch[j, :n].tolist() == [n] * n
            assert batch[j, n:].tolist() == [0] * (padded - n)


def test_PaddedBatchTest_testPaddedBatchShortPadding():
    ds = D.from_tensor_slices([6, 5, 5, 5, 5]).map(fill).padded_batch(4, padded_shapes=[5])
    with pytest.raises(ValueError):  # TF: DataLossError
        outputs(ds)


def test_PaddedBatchTest_testPaddedBatchEmptyTensors():
    ds = D.from_tensor_slices([0, 0, 0, 0]).map(fill).padded_batch(4, padded_shapes=[-1])
    got = list(ds.as_numpy_iterator())
    assert len(got) == 1 and got[0].shape == (4, 0)


def test_PaddedBatchTest_testDefaultPaddedShapes():
    ds = D.from_tensor_slices([1, 2, 3, 4]).map(fill).padded_batch(2)
    assert_produces(ds, [[[1, 0], [2, 2]], [[3, 3, 3, 0], [4, 4, 4, 4]]])


def test_PaddedBatchTest_testNestedDefaultPaddedShapes():
    ds = D.from_tensor_slices([1, 2, 3, 4]).map(lambda x: (x, fill(x))).padded_batch(2)
    assert_produces(
        ds, [([1, 2], [[1, 0], [2, 2]]), ([3, 4], [[3, 3, 3, 0], [4, 4, 4, 4]])]
    )


def as_string(x):
    """TF's tf.strings.as_string of an int vector: each as its decimal bytes."""
    return np.array([str(int(v)).encode() for v in x], dtype="S8").reshape(np.shape(x))


@pytest.mark.parametrize("padding_values", [(-1, "<end>", {"structure": ""}), (-1, "<end>", None)])
def test_PaddedBatchTest_testPaddedBatchDatasetNonDefaultPadding(padding_values):
    def fill_tuple(x):
        filled = fill(x)
        return filled, as_string(filled), {"structure": as_string(filled)}

    seq_lens = np.random.default_rng(7).integers(20, size=(32,)).astype(np.int32)
    ds = D.from_tensor_slices(seq_lens).map(fill_tuple).padded_batch(
        4, padded_shapes=([-1], [-1], {"structure": [-1]}), padding_values=padding_values
    )
    got = list(ds.as_numpy_iterator())
    assert len(got) == 8
    for i, (a, b, c) in enumerate(got):
        padded = int(np.max(a))
        assert a.shape == b.shape == c["structure"].shape == (4, padded)
        for j in range(4):
            n = seq_lens[i * 4 + j]
            assert a[j, :n].tolist() == [n] * n and a[j, n:].tolist() == [-1] * (padded - n)
            assert b[j, :n].tolist() == [str(n).encode()] * n
            assert b[j, n:].tolist() == [b"<end>"] * (padded - n)
            assert c["structure"][j, n:].tolist() == [b""] * (padded - n)


def test_PaddedBatchTest_testPaddedBatchDatasetUnicode():
    def generator():
        data = [["Простой", "тест", "юникода"], ["никогда", "не", "бывает", "простым"]]
        for seq in data:
            yield seq, [0, 1, 2, 3]

    ds = D.from_generator(
        generator,
        output_signature=(tf.TensorSpec([None], tf.string), tf.TensorSpec([None], np.int32)),
    )
    words, _ = next(iter(ds.padded_batch(2, padded_shapes=([None], [None]), padding_values=("", 0))))
    assert words[1, 3].decode("utf-8") == "простым"
    assert words[0, 3] == b""


def test_PaddedBatchTest_testPaddedBatchShapeErrorWrongRank():
    with pytest.raises(ValueError, match="not compatible"):
        D.range(10).padded_batch(5, padded_shapes=[1])


def test_PaddedBatchTest_testPaddedBatchShapeErrorTooSmall():
    with pytest.raises(ValueError):
        D.from_tensors([1, 2, 3]).padded_batch(5, padded_shapes=[1])


def test_PaddedBatchTest_testPaddedBatchShapeErrorShapeNotRank1():
    with pytest.raises((ValueError, TypeError)):
        D.from_tensors([1, 2, 3]).padded_batch(5, padded_shapes=[[1, 1], [1, 1]])


def test_PaddedBatchTest_testPaddedBatchShapeErrorShapeNotInt():
    with pytest.raises(TypeError):
        D.from_tensors([1, 2, 3]).padded_batch(5, padded_shapes=np.array([1.5, 2.0, 3.0], np.float32))


def test_PaddedBatchTest_testPaddedBatchShapeErrorWrongRankFromTensor():
    with pytest.raises(ValueError, match="not compatible"):
        D.range(10).padded_batch(5, padded_shapes=np.array([1], np.int64))


def test_PaddedBatchTest_testPaddedBatchShapeErrorDefaultShapeWithUnknownRank():
    ds = D.from_generator(lambda: iter([1, 2, 3]), output_signature=tf.TensorSpec(None, np.int32))
    with pytest.raises(ValueError, match="`padded_shapes`.*unknown rank"):
        ds.padded_batch(2)


def test_PaddedBatchTest_testDefaultPaddedValueShapes():
    a = D.from_tensor_slices([1, 2, 3, 4]).map(fill)
    ds = D.zip((a, D.from_tensor_slices([1, 2, 3, 4]).map(fill))).padded_batch(2, padding_values=-1)
    assert_produces(
        ds,
        [
            ([[1, -1], [2, 2]], [[1, -1], [2, 2]]),
            ([[3, 3, 3, -1], [4, 4, 4, 4]], [[3, 3, 3, -1], [4, 4, 4, 4]]),
        ],
    )


def test_PaddedBatchCheckpointTest_testPaddedBatch():
    seq_lens = np.random.default_rng(3).integers(1, 20, size=(32,)).astype(np.int32)
    assert_restores(lambda: D.from_tensor_slices(seq_lens).map(fill).padded_batch(4, padded_shapes=[-1]), 8)


def test_PaddedBatchCheckpointTest_testPaddedBatchNonDefaultPadding():
    seq_lens = np.random.default_rng(4).integers(1, 20, size=(32,)).astype(np.int32)

    def build():
        ds = D.from_tensor_slices(seq_lens).map(lambda x: (fill(x), as_string(fill(x))))
        return ds.padded_batch(4, padded_shapes=([-1], [-1]), padding_values=(-1, "<end>"))

    assert_restores(build, 8)
