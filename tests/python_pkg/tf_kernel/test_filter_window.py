"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/filter_test.py (commit
03049341) and window_test.py (commit 08df8c40)."""

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import (
    PORTED, SPARSE, TF_OPS, assert_produces, assert_restores, assert_shapes,
    left_out, outputs,
)

D = tf.data.Dataset
TF_FILE = ["filter_test.py", "window_test.py"]
TF_TESTS = {
    "FilterTest.testFilterDataset": PORTED,
    "FilterTest.testFilterRange": PORTED,
    "FilterTest.testFilterDict": PORTED,
    "FilterTest.testUseStepContainerInFilter": PORTED,
    "FilterTest.testSparse": left_out(SPARSE),
    "FilterTest.testShortCircuit": PORTED,
    "FilterTest.testParallelFilters": PORTED,
    "FilterTest.testName": PORTED,
    "FilterTest.testPredicateFailWithErrorContext": PORTED,
    "FilterCheckpointTest.test": PORTED,
    "FilterCheckpointTest.testDict": PORTED,
    "FilterCheckpointTest.testSparse": left_out(SPARSE),
    "FilterGlobalShuffleTest.testShuffleFilter": PORTED,
    "FilterGlobalShuffleTest.testFilterShuffle": PORTED,
    "FilterGlobalShuffleCheckpointTest.testShuffleFilter": PORTED,
    "WindowTest.testWindowDataset": PORTED,
    "WindowTest.testWindowDatasetInvalid": PORTED,
    "WindowTest.testWindowDifferentNestedStructures": PORTED,
    "WindowTest.testWindowSparse": left_out(SPARSE),
    "WindowTest.testWindowSparseWithDifferentDenseShapes": left_out(SPARSE),
    "WindowTest.testNestedWindowSparse": left_out(SPARSE),
    "WindowTest.testWindowShapeError": PORTED,
    "WindowTest.testWindowIgnoreErrors": left_out(
        TF_OPS + ": tf.debugging.check_numerics; and TF's expected output keeps the 2.0 "
        "that follows a NaN in a window whose first element was an error, which is how TF "
        "drops errors inside windows"
    ),
    "WindowTest.testNestedOutput": PORTED,
    "WindowTest.testDropRemainderOutput": PORTED,
    "WindowTest.testName": PORTED,
    "WindowCheckpointTest.test": PORTED,
}

COMPONENTS = (
    np.arange(7, dtype=np.int64),
    np.array([[1, 2, 3]], dtype=np.int64) * np.arange(7, dtype=np.int64)[:, np.newaxis],
    np.array(37.0, dtype=np.float64) * np.arange(7),
)


@pytest.mark.parametrize("count, modulus", [(14, 2), (4, 18), (0, 1)])
def test_FilterTest_testFilterDataset(count, modulus):
    ds = D.from_tensor_slices(COMPONENTS).map(lambda x, y, z: (x**2, y**2, z**2)).repeat(count)
    ds = ds.filter(lambda x, _y, _z: x % modulus == 0)
    assert_shapes(ds, tuple(list(c.shape[1:]) for c in COMPONENTS))
    keep = [x for x in range(7) if x**2 % modulus == 0]
    assert_produces(ds, [tuple(c[i] ** 2 for c in COMPONENTS) for _ in range(count) for i in keep])


def test_FilterTest_testFilterRange():
    assert_produces(D.range(4).filter(lambda x: x % 3 != 2), [0, 1, 3])


def test_FilterTest_testFilterDict():
    ds = D.range(10).map(lambda x: {"foo": x * 2, "bar": x**2})
    ds = ds.filter(lambda d: d["bar"] % 2 == 0).map(lambda d: d["foo"] + d["bar"])
    assert_produces(ds, [i * 2 + i**2 for i in range(10) if not (i**2) % 2])


def test_FilterTest_testUseStepContainerInFilter():
    # TF maps x * x over the vector with tf.map_fn; NumPy squares it directly.
    ds = D.from_tensor_slices([[1, 2, 3], [4, 5, 6]])
    ds = ds.filter(lambda xs: np.sum(np.asarray([x * x for x in xs])) == 1 + 4 + 9)
    assert_produces(ds, [[1, 2, 3]])


def test_FilterTest_testShortCircuit():
    ds = D.zip((D.range(10), D.from_tensors(True).repeat(None))).filter(lambda x, y: y)
    assert_produces(ds, [(i, True) for i in range(10)])


def test_FilterTest_testParallelFilters():
    ds = D.range(10).filter(lambda x: x % 2 == 0)
    iterators = [ds.as_numpy_iterator() for _ in range(10)]
    assert [next(it) for it in iterators] == [0] * 10


def test_FilterTest_testPredicateFailWithErrorContext():
    def predicate(x):
        # TF divides x by zero (an error in its kernels); Python's integers raise. Only the
        # element itself does, not the placeholders npyflow calls the predicate on.
        return (1 // 0) > 0 if x == 42 else True

    ds = D.from_tensors(42).filter(predicate)
    # TF: InvalidArgumentError naming the user-defined function; npyflow raises the
    # function's own exception at the element.
    with pytest.raises(ZeroDivisionError):
        outputs(ds)


def test_FilterCheckpointTest_test():
    n = sum(x % 3 != 2 for x in range(100))
    assert_restores(lambda: D.range(100).filter(lambda x: x % 3 != 2), n)


def test_FilterCheckpointTest_testDict():
    def build():
        return (
            D.range(10)
            .map(lambda x: {"foo": x * 2, "bar": x**2})
            .filter(lambda d: d["bar"] % 2 == 0)
            .map(lambda d: d["foo"] + d["bar"])
        )

    assert_restores(build, sum((x**2) % 2 == 0 for x in range(10)))


def test_FilterGlobalShuffleTest_testShuffleFilter():
    ds = D.range(100).global_shuffle().filter(lambda x: x % 2 == 0)
    assert sorted(outputs(ds)) == list(range(0, 100, 2))


def test_FilterGlobalShuffleTest_testFilterShuffle():
    # TF: FailedPreconditionError "`global_shuffle` requires all upstream transformations
    # be compatible with random access."; npyflow: ValueError saying the same.
    with pytest.raises(ValueError, match="random access|random-access"):
        outputs(D.range(100).filter(lambda x: x % 2 == 0).global_shuffle())


@pytest.mark.parametrize("reshuffle", [True, False])
def test_FilterGlobalShuffleCheckpointTest_testShuffleFilter(reshuffle):
    def build():
        ds = D.range(10).global_shuffle(seed=42, reshuffle_each_iteration=reshuffle)
        return ds.filter(lambda x: x % 2 == 0)

    assert_restores(build, 5)


WINDOW_CASES = [
    (20, size, shift, stride, drop)
    for size in [10, 14, 17]
    for shift in [7, 14]
    for stride in [1, 2, 6]
    for drop in [True, False]
] + [(count, 10, 4, 1, drop) for count in [0, 1] for drop in [True, False]]


@pytest.mark.parametrize("count, size, shift, stride, drop_remainder", WINDOW_CASES)
def test_WindowTest_testWindowDataset(count, size, shift, stride, drop_remainder):
    components = (
        np.arange(7),
        np.array([[1, 2, 3]]) * np.arange(7)[:, np.newaxis],
        np.array(37.0) * np.arange(7),
    )
    ds = D.from_tensor_slices(components).map(lambda x, y, z: (x**2, y**2, z**2)).repeat(count)
    ds = ds.window(size=size, shift=shift, stride=stride, drop_remainder=drop_remainder)
    ds = ds.flat_map(lambda x, y, z: D.zip((x.batch(size), y.batch(size), z.batch(size))))
    assert_shapes(ds, tuple([None] + list(c.shape[1:]) for c in components))
    got = outputs(ds)
    full = max(0, (count * 7 - ((size - 1) * stride + 1)) // shift + 1)
    expected_n = full
    if not drop_remainder:
        expected_n = (count * 7) // shift + ((count * 7) % shift > 0)
    assert len(got) == expected_n
    for i, batch in enumerate(got):
        if i < full:
            n = size
        else:
            remaining = count * 7 - i * shift
            n = remaining // stride + ((remaining % stride) > 0)
        for component, part in zip(components, batch):
            assert len(part) == n
            for j in range(n):
                np.testing.assert_array_equal(component[(i * shift + j * stride) % 7] ** 2, part[j])


@pytest.mark.parametrize("size, shift, stride", [(0, 3, 1), (3, 0, 1), (3, 3, 0)])
def test_WindowTest_testWindowDatasetInvalid(size, shift, stride):
    with pytest.raises(ValueError):  # TF: InvalidArgumentError
        D.range(10).map(lambda x: x).repeat(20).window(size=size, shift=shift, stride=stride)


def test_WindowTest_testWindowDifferentNestedStructures():
    next(iter(D.from_tensor_slices(([1, 2], [3, 4])).window(2)))
    next(iter(D.from_tensor_slices({"a": [1, 2]}).window(2)))


def test_WindowTest_testWindowShapeError():
    def generator():
        yield [1.0, 2.0, 3.0]
        yield [4.0, 5.0, 6.0]
        yield [7.0, 8.0, 9.0, 10.0]

    ds = D.from_generator(generator, output_signature=tf.TensorSpec([None], np.float32))
    ds = ds.window(size=3, shift=1).flat_map(lambda x: x.batch(3))
    with pytest.raises(ValueError, match="shape"):
        outputs(ds)


def test_WindowTest_testNestedOutput():
    ds = D.zip((D.range(100), D.range(100))).window(10)
    for i, (x, y) in enumerate(ds):
        assert_produces(x, range(i * 10, (i + 1) * 10))
        assert_produces(y, range(i * 10, (i + 1) * 10))


def test_WindowTest_testDropRemainderOutput():
    ds = D.range(100).window(30, drop_remainder=True).flat_map(lambda x: x.batch(30)).batch(4)
    assert_produces(ds, [[[y + 30 * x for y in range(30)] for x in range(3)]])


def test_WindowCheckpointTest_test():
    def build():
        return D.range(42).window(6).interleave(lambda x: x, cycle_length=2, num_parallel_calls=2)

    assert_restores(build, 42)


def test_FilterTest_testName():
    # name= names the op in TF's graph; npyflow takes it and ignores it.
    assert_produces(D.from_tensors(42).filter(lambda x: True, name='filter'), [42])


def test_WindowTest_testName():
    # name= names the op in TF's graph; npyflow takes it and ignores it.
    assert_produces(D.from_tensors(42).window(1, name='window').flat_map(lambda x: x), [42])
