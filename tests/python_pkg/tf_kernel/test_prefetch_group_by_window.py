"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/prefetch_test.py (commit
057091db) and group_by_window_test.py (commit 3a2c6ae8)."""

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import (
    PORTED, RANDOM_ACCESS, assert_produces, assert_restores, left_out, outputs,
)

D = tf.data.Dataset
TF_FILE = ["prefetch_test.py", "group_by_window_test.py"]
TF_TESTS = {
    "PrefetchTest.testBufferSize": PORTED,
    "PrefetchTest.testInvalidBufferSize": PORTED,
    "PrefetchTest.testPrefetchWithSlack": left_out(
        "slack_period is an argument of TF's internal PrefetchDataset class"
    ),
    "PrefetchTest.testPrefetchCancellation": left_out("graph mode (session cancellation)"),
    "PrefetchTest.testName": PORTED,
    "PrefetchCheckpointTest.test": PORTED,
    "PrefetchRandomAccessTest.testInvalidIndex": left_out(RANDOM_ACCESS),
    "PrefetchRandomAccessTest.testEmptyDataset": left_out(RANDOM_ACCESS),
    "PrefetchRandomAccessTest.testMultipleCombinations": left_out(RANDOM_ACCESS),
    "GroupByWindowTest.testSingleBucket": PORTED,
    "GroupByWindowTest.testEvenOddBuckets": PORTED,
    "GroupByWindowTest.testEvenOddBucketsFilterOutAllOdd": PORTED,
    "GroupByWindowTest.testDynamicWindowSize": PORTED,
    "GroupByWindowTest.testSimple": PORTED,
    "GroupByWindowTest.testImmediateOutput": PORTED,
    "GroupByWindowTest.testSmallGroups": PORTED,
    "GroupByWindowTest.testEmpty": PORTED,
    "GroupByWindowTest.testReduceFuncError": PORTED,
    "GroupByWindowTest.testConsumeWindowDatasetMoreThanOnce": PORTED,
    "GroupByWindowTest.testShortCircuit": PORTED,
    "GroupByWindowTest.testGroupByWindowWithAutotune": PORTED,
    "GroupByWindowTest.testGroupByWindowCardinality": PORTED,
    "GroupByWindowTest.testName": PORTED,
    "GroupByWindowCheckpointTest.test": PORTED,
}


@pytest.mark.parametrize("buffer_size", [-1, None, 0, 42])
def test_PrefetchTest_testBufferSize(buffer_size):
    if buffer_size is None:
        ds = D.range(10).prefetch(tf.data.AUTOTUNE)  # TF takes None as AUTOTUNE
    else:
        ds = D.range(10).prefetch(buffer_size=buffer_size)
    assert_produces(ds, range(10))


@pytest.mark.parametrize("buffer_size", [-2, -42])
def test_PrefetchTest_testInvalidBufferSize(buffer_size):
    with pytest.raises(ValueError):  # TF: InvalidArgumentError
        D.range(10).prefetch(buffer_size=buffer_size)


def test_PrefetchTest_testName():
    assert_produces(D.from_tensors(42).prefetch(1, name="prefetch"), [42])


def test_PrefetchCheckpointTest_test():
    assert_restores(lambda: D.range(100).prefetch(10), 100)


def as_string(v):
    return np.full([3], str(int(v)).encode(), dtype="S8")


def padded(bucket, window, names=None):
    shapes = ([], [None], [3]) if names is None else {"x": [], "y": [None], "z": [3]}
    return D.zip((D.from_tensors(bucket), window.padded_batch(32, shapes)))


def triple(v):
    return v, np.full([v], v), as_string(v)


def test_GroupByWindowTest_testSingleBucket():
    ds = D.from_tensor_slices(np.arange(32, dtype=np.int64)).map(triple)
    ds = ds.group_by_window(lambda x, y, z: np.int64(0), lambda k, b: padded(k, b), window_size=32)
    bucket, (a, b, c) = next(ds.as_numpy_iterator())
    assert bucket == 0
    assert a.tolist() == list(range(32))
    expected = np.zeros((32, 31), np.int64)
    for i in range(32):
        expected[i, :i] = i
    np.testing.assert_array_equal(b, expected)
    np.testing.assert_array_equal(c, np.vstack(3 * [np.arange(32).astype(bytes)]).T)


def test_GroupByWindowTest_testEvenOddBuckets():
    ds = D.from_tensor_slices(np.arange(64, dtype=np.int64)).map(triple)
    ds = ds.group_by_window(lambda x, y, z: x % 2, lambda k, b: padded(k, b), window_size=32)
    it = ds.as_numpy_iterator()
    for parity in (0, 1):
        bucket, values = next(it)
        assert len(values) == 3 and bucket == parity
        expected_ints = np.arange(parity, 64 + parity, 2)
        assert values[0].tolist() == expected_ints.tolist()
        expected = np.zeros((32, 62 + parity), np.int64)
        for i in range(32):
            expected[i, : 2 * i + parity] = 2 * i + parity
        np.testing.assert_array_equal(values[1], expected)
        np.testing.assert_array_equal(values[2], np.vstack(3 * [expected_ints.astype(bytes)]).T)


def test_GroupByWindowTest_testEvenOddBucketsFilterOutAllOdd():
    ds = D.from_tensor_slices(np.arange(128, dtype=np.int64)).map(
        lambda v: {"x": v, "y": np.full([v], v), "z": as_string(v)}
    ).filter(lambda d: d["x"] % 2 == 0)
    ds = ds.group_by_window(lambda d: d["x"] % 2, lambda k, b: padded(k, b, names=True), window_size=32)
    it = ds.as_numpy_iterator()
    k0, v0 = next(it)
    k1, v1 = next(it)
    assert (k0, k1) == (0, 0)
    assert v0["x"].tolist() == list(range(0, 64, 2))
    assert v1["x"].tolist() == list(range(64, 128, 2))


def test_GroupByWindowTest_testDynamicWindowSize():
    ds = D.from_tensor_slices(np.arange(100, dtype=np.int64)).group_by_window(
        key_func=lambda x: x % 2,
        reduce_func=lambda _, xs: xs.batch(20),
        window_size=None,
        window_size_func=lambda key: np.array([5, 10], np.int64)[key],
    )
    batches = outputs(ds)
    for b in batches:
        even = all(x % 2 == 0 for x in b)
        assert even or all(x % 2 == 1 for x in b)
        assert len(b) == (5 if even else 10)
    assert len(batches) == 15


def test_GroupByWindowTest_testSimple():
    components = np.random.default_rng(5).integers(100, size=(200,)).astype(np.int64)
    ds = D.from_tensor_slices(components).map(lambda x: x * x).group_by_window(
        key_func=lambda x: x % 2, reduce_func=lambda _, xs: xs.batch(4), window_size=4
    )
    counts = []
    for b in outputs(ds):
        assert all(x % 2 == 0 for x in b) or all(x % 2 == 1 for x in b)
        counts.append(len(b))
    assert sum(counts) == len(components)
    full = len([c for c in counts if c == 4])
    assert full >= 24 and all(c == 4 for c in counts[:full])


def test_GroupByWindowTest_testImmediateOutput():
    components = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 0, 0, 2, 2, 0, 0], dtype=np.int64)
    ds = D.from_tensor_slices(components).repeat(-1).group_by_window(
        key_func=lambda x: x % 3, reduce_func=lambda _, xs: xs.batch(4), window_size=4
    )
    assert outputs(ds, limit=12) == [[0] * 4, [1] * 4, [2] * 4, [0] * 4] * 3


def test_GroupByWindowTest_testSmallGroups():
    components = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0], dtype=np.int64)
    ds = D.from_tensor_slices(components).group_by_window(
        key_func=lambda x: x % 2, reduce_func=lambda _, xs: xs.batch(4), window_size=4
    )
    assert outputs(ds) == [[0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0], [1]]


def test_GroupByWindowTest_testEmpty():
    # TF: InvalidArgumentError "Window size must be greater than zero, but got 0." at the
    # first element; npyflow: ValueError when the dataset is made.
    with pytest.raises(ValueError, match="window_size"):
        outputs(D.range(4).group_by_window(lambda _: np.int64(0), lambda _, xs: xs, window_size=0))


def test_GroupByWindowTest_testReduceFuncError():
    components = np.random.default_rng(6).integers(100, size=(200,)).astype(np.int64)

    def reduce_func(_, xs):
        # A padded shape of -5 (TF builds it from a tensor, so it is found late).
        return xs.padded_batch(4, padded_shapes=([], [-5]))

    ds = D.from_tensor_slices(components).map(lambda x: (x, np.array([x * x])))
    with pytest.raises(ValueError):  # TF: InvalidArgumentError
        outputs(ds.group_by_window(key_func=lambda x, _: x % 2, reduce_func=reduce_func, window_size=32))


def test_GroupByWindowTest_testConsumeWindowDatasetMoreThanOnce():
    components = np.random.default_rng(7).integers(50, size=(200,)).astype(np.int64)

    def reduce_func(key, window):
        return D.zip(
            (
                window.padded_batch(4, padded_shapes=[None]),
                window.padded_batch(4, padded_shapes=[int((key + 1) * 10)]),
            )
        )

    ds = D.from_tensor_slices(components).map(lambda x: np.full([int(x)], x))
    ds = ds.group_by_window(lambda x: np.int64(np.shape(x)[0] // 10), reduce_func, window_size=4)
    counts = []
    for tight, tens in ds.as_numpy_iterator():
        assert tens.shape[1] % 10 == 0
        np.testing.assert_array_equal(tight, tens[:, : tight.shape[1]])
        counts.append(tight.shape[0])
    assert sum(counts) == len(components)


def test_GroupByWindowTest_testShortCircuit():
    ds = D.range(10).group_by_window(
        key_func=lambda x: x, reduce_func=lambda _, w: w.batch(1), window_size=1
    )
    assert_produces(ds, [[i] for i in range(10)])


def test_GroupByWindowTest_testGroupByWindowWithAutotune():
    ds = D.range(1000).group_by_window(
        key_func=lambda x: x // 10,
        reduce_func=lambda key, window: D.from_tensors(key),
        window_size=4,
    ).map(lambda x: x + 1, num_parallel_calls=tf.data.AUTOTUNE)
    next(iter(ds))


def test_GroupByWindowTest_testGroupByWindowCardinality():
    ds = D.range(1).repeat().group_by_window(
        key_func=lambda x: x % 2, reduce_func=lambda key, window: D.from_tensors(key), window_size=4
    )
    assert ds.cardinality() == tf.data.INFINITE_CARDINALITY


def test_GroupByWindowTest_testName():
    ds = D.from_tensors(np.int64(42)).group_by_window(
        key_func=lambda x: x, reduce_func=lambda key, w: w.batch(4), window_size=4, name="group_by_window"
    )
    assert_produces(ds, [[42]])


def test_GroupByWindowCheckpointTest_test():
    components = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 0, 0, 2, 2, 0, 0], dtype=np.int64)

    def build():
        ds = D.from_tensor_slices(components).repeat(-1)
        return ds.group_by_window(lambda x: x % 3, lambda _, xs: xs.batch(4), window_size=4)

    # An endless input: TF's checks stop after 12 outputs; so does the restore here.
    full = outputs(build(), limit=12)
    for k in (0, 1, 6, 11):
        it = build().as_numpy_iterator()
        head = [next(it).tolist() for _ in range(k)]
        again = build().as_numpy_iterator()
        again.set_state(it.get_state())
        rest = [next(again).tolist() for _ in range(12 - k)]
        assert head + rest == full
