"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/cardinality_test.py (commit
0ffa52ac), len_test.py (commit 2b84d3cb) and counter_test.py (commit 18be7438)."""

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import GRAPH_ONLY, PORTED, left_out, outputs

D = tf.data.Dataset
INF, UNKNOWN = tf.data.INFINITE_CARDINALITY, tf.data.UNKNOWN_CARDINALITY
TF_FILE = ["cardinality_test.py", "len_test.py", "counter_test.py"]
TF_TESTS = {
    "CardinalityTest.testCardinality": PORTED,
    "LenTest.testKnown": PORTED,
    "LenTest.testInfinite": PORTED,
    "LenTest.testUnknown": PORTED,
    "LenTest.testGraphMode": left_out(GRAPH_ONLY),
    "CounterTest.testCounter": PORTED,
}


def keep(_):
    return True


# TensorFlow 2's cases (its v1-only ones say UNKNOWN for map, which TF 2 knows).
CASES = [
    ("Map1", lambda: D.range(5).map(lambda x: x), 5),
    ("Map2", lambda: D.range(5).map(lambda x: x, num_parallel_calls=1), 5),
    ("Batch1", lambda: D.range(5).batch(2, drop_remainder=True), 2),
    ("Batch2", lambda: D.range(5).batch(2, drop_remainder=False), 3),
    ("Batch3", lambda: D.range(5).filter(keep).batch(2), UNKNOWN),
    ("Batch4", lambda: D.range(5).repeat().batch(2), INF),
    ("Cache1", lambda: D.range(5).cache(), 5),
    ("Cache2", None, 5),  # cache("foo"): a file, made in the test's own directory
    ("Concatenate1", lambda: D.range(5).concatenate(D.range(5)), 10),
    ("Concatenate2", lambda: D.range(5).filter(keep).concatenate(D.range(5)), UNKNOWN),
    ("Concatenate3", lambda: D.range(5).repeat().concatenate(D.range(5)), INF),
    ("Concatenate4", lambda: D.range(5).concatenate(D.range(5).filter(keep)), UNKNOWN),
    ("Concatenate5", lambda: D.range(5).filter(keep).concatenate(D.range(5).filter(keep)), UNKNOWN),
    ("Concatenate6", lambda: D.range(5).repeat().concatenate(D.range(5).filter(keep)), INF),
    ("Concatenate7", lambda: D.range(5).concatenate(D.range(5).repeat()), INF),
    ("Concatenate8", lambda: D.range(5).filter(keep).concatenate(D.range(5).repeat()), INF),
    ("Concatenate9", lambda: D.range(5).repeat().concatenate(D.range(5).repeat()), INF),
    ("FlatMap", lambda: D.range(5).flat_map(lambda _: D.from_tensors(0)), UNKNOWN),
    ("Filter", lambda: D.range(5).filter(keep), UNKNOWN),
    ("FromTensors1", lambda: D.from_tensors(0), 1),
    ("FromTensors2", lambda: D.from_tensors((0, 1)), 1),
    ("FromTensorSlices1", lambda: D.from_tensor_slices([0, 0, 0]), 3),
    ("FromTensorSlices2", lambda: D.from_tensor_slices(([0, 0, 0], [1, 1, 1])), 3),
    ("Interleave1", lambda: D.range(5).interleave(lambda _: D.from_tensors(0), cycle_length=1), UNKNOWN),
    (
        "Interleave2",
        lambda: D.range(5).interleave(lambda _: D.from_tensors(0), cycle_length=1, num_parallel_calls=1),
        UNKNOWN,
    ),
    (
        "Interleave3",
        lambda: D.range(5).repeat().interleave(
            lambda _: D.from_tensors(0), cycle_length=1, num_parallel_calls=1
        ),
        INF,
    ),
    ("PaddedBatch1", lambda: D.range(5).padded_batch(2, [], drop_remainder=True), 2),
    ("PaddedBatch2", lambda: D.range(5).padded_batch(2, [], drop_remainder=False), 3),
    ("PaddedBatch3", lambda: D.range(5).filter(keep).padded_batch(2, []), UNKNOWN),
    ("PaddedBatch4", lambda: D.range(5).repeat().padded_batch(2, []), INF),
    ("Prefetch", lambda: D.range(5).prefetch(buffer_size=1), 5),
    ("Range1", lambda: D.range(0), 0),
    ("Range2", lambda: D.range(5), 5),
    ("Range3", lambda: D.range(5, 10), 5),
    ("Range4", lambda: D.range(10, 5), 0),
    ("Range5", lambda: D.range(5, 10, 2), 3),
    ("Range6", lambda: D.range(10, 5, -2), 3),
    ("Range7", lambda: D.range(0, 0, -2), 0),
    ("Range8", lambda: D.range(3, 3, 1), 0),
    ("Range9", lambda: D.range(-4, -4, 2), 0),
    ("Range10", lambda: D.range(1, 0, 3), 0),
    ("Range11", lambda: D.range(0, 1, -3), 0),
    ("Repeat1", lambda: D.range(0).repeat(0), 0),
    ("Repeat2", lambda: D.range(1).repeat(0), 0),
    ("Repeat3", lambda: D.range(0).repeat(5), 0),
    ("Repeat4", lambda: D.range(1).repeat(5), 5),
    ("Repeat5", lambda: D.range(0).repeat(), 0),
    ("Repeat6", lambda: D.range(1).repeat(), INF),
    ("Shuffle", lambda: D.range(5).shuffle(buffer_size=1), 5),
    ("Shard1", lambda: D.range(5).shard(2, 0), 3),
    ("Shard2", lambda: D.range(5).shard(8, 7), 0),
    ("Shard3", lambda: D.range(5).filter(keep).shard(2, 0), UNKNOWN),
    ("Shard4", lambda: D.range(5).repeat().shard(2, 0), INF),
    ("Skip1", lambda: D.range(5).skip(2), 3),
    ("Skip2", lambda: D.range(5).skip(8), 0),
    ("Skip3", lambda: D.range(5).filter(keep).skip(2), UNKNOWN),
    ("Skip4", lambda: D.range(5).repeat().skip(2), INF),
    ("Take1", lambda: D.range(5).take(2), 2),
    ("Take2", lambda: D.range(5).take(8), 5),
    ("Take3", lambda: D.range(5).filter(keep).take(2), UNKNOWN),
    ("Take4", lambda: D.range(5).repeat().take(2), 2),
    ("Window1", lambda: D.range(5).window(size=2, shift=2, drop_remainder=True), 2),
    ("Window2", lambda: D.range(5).window(size=2, shift=2, drop_remainder=False), 3),
    ("Zip1", lambda: D.zip(D.range(5)), 5),
    ("Zip2", lambda: D.zip((D.range(5), D.range(3))), 3),
    ("Zip3", lambda: D.zip((D.range(5), D.range(3).repeat())), 5),
    ("Zip4", lambda: D.zip((D.range(5).repeat(), D.range(3).repeat())), INF),
    ("Zip5", lambda: D.zip((D.range(5), D.range(3).filter(keep))), UNKNOWN),
]


@pytest.mark.parametrize("name, make, expected", CASES, ids=[c[0] for c in CASES])
def test_CardinalityTest_testCardinality(name, make, expected, tmp_path):
    if make is None:
        make = lambda: D.range(5).cache(str(tmp_path / "foo"))  # noqa: E731
    assert make().cardinality() == expected


def test_LenTest_testKnown():
    assert len(D.range(10)) == 10


def test_LenTest_testInfinite():
    with pytest.raises(TypeError, match="infinite"):
        len(D.range(10).repeat())


def test_LenTest_testUnknown():
    with pytest.raises(TypeError, match="unknown"):
        len(D.range(10).filter(lambda x: True))


@pytest.mark.parametrize("start, step, expected", [(3, 4, [3, 7, 11]), (0, -1, [0, -1, -2])])
def test_CounterTest_testCounter(start, step, expected):
    ds = D.counter(start, step)
    assert ds.element_spec.shape == () and ds.element_spec.dtype == np.int64
    assert outputs(ds.take(3)) == expected
