"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/from_generator_test.py (commit
a3f2a79d). TensorFlow's tests give ``output_types``/``output_shapes``, which npyflow takes
with a DeprecationWarning (as tf.data documents them deprecated); the ports keep them."""

import gc
import threading
import warnings

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import (
    GRAPH_ONLY, PORTED, RAGGED, SPARSE, assert_produces, differs, left_out, outputs, to_py,
)

D = tf.data.Dataset
TF_FILE = "from_generator_test.py"
TF_TESTS = {
    "FromGeneratorTest.testFromGeneratorUsingFn": PORTED,
    "FromGeneratorTest.testFromGeneratorUsingList": PORTED,
    "FromGeneratorTest.testFromGeneratorUsingNdarray": PORTED,
    "FromGeneratorTest.testFromGeneratorUsingGeneratorExpression": PORTED,
    "FromGeneratorTest.testFromMultipleConcurrentGenerators": PORTED,
    "FromGeneratorTest.testFromGeneratorImplicitConversion": PORTED,
    "FromGeneratorTest.testFromGeneratorString": PORTED,
    "FromGeneratorTest.testFromGeneratorDatastructures": PORTED,
    "FromGeneratorTest.testFromGeneratorTypeError": PORTED,
    "FromGeneratorTest.testFromGeneratorShapeError": PORTED,
    "FromGeneratorTest.testFromGeneratorStructureError": PORTED,
    "FromGeneratorTest.testFromGeneratorHeterogeneous": PORTED,
    "FromGeneratorTest.testFromGeneratorStopShort": PORTED,
    "FromGeneratorTest.testFromGeneratorDestructorCalled": differs(
        "npyflow lets a pass's generator go when the iterator is dropped, not when a take "
        "after it has its count (TF destroys it then)"
    ),
    "FromGeneratorTest.testFromGeneratorWithArgs": PORTED,
    "FromGeneratorTest.testFromGeneratorWithTwoArgs": PORTED,
    "FromGeneratorTest.testGeneratorDatasetFinalizeFunctionCalled": left_out(
        "TF's internal _GeneratorDataset class and its finalize function"
    ),
    "FromGeneratorTest.testSharedName": left_out(GRAPH_ONLY + ": shared_name iterators"),
    "FromGeneratorTest.testFromGeneratorRaggedTensor": left_out(RAGGED),
    "FromGeneratorTest.testFromGeneratorSparseTensor": left_out(SPARSE),
    "FromGeneratorTest.testTypeIsListError": PORTED,
    "FromGeneratorTest.testDimensionIsListError": PORTED,
    "FromGeneratorTest.testName": PORTED,
}


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def produces_twice(ds, expected):
    # TF's num_test_iterations=2: two passes of the same dataset.
    for _ in range(2):
        assert_produces(ds, expected)


def check_generator(generator, num_repeats):
    expected = [np.asarray(e) for e in generator()]
    ds = D.from_generator(generator, output_types=tf.int64).repeat(num_repeats).prefetch(5)
    produces_twice(ds, expected * num_repeats)


@pytest.mark.parametrize("num_repeats", [1, 2])
def test_FromGeneratorTest_testFromGeneratorUsingFn(num_repeats):
    def generator():
        for i in range(1, 100):
            yield [i] * i

    check_generator(generator, num_repeats)


@pytest.mark.parametrize("num_repeats", [1, 2])
def test_FromGeneratorTest_testFromGeneratorUsingList(num_repeats):
    check_generator(lambda: [[i] * i for i in range(1, 100)], num_repeats)


@pytest.mark.parametrize("num_repeats", [1, 2])
def test_FromGeneratorTest_testFromGeneratorUsingNdarray(num_repeats):
    check_generator(lambda: np.arange(100, dtype=np.int64), num_repeats)


@pytest.mark.parametrize("num_repeats", [1, 2])
def test_FromGeneratorTest_testFromGeneratorUsingGeneratorExpression(num_repeats):
    # A generator expression is not reusable; one made by a lambda is, once per pass.
    check_generator(lambda: ([i] * i for i in range(1, 100)), num_repeats)


def test_FromGeneratorTest_testFromMultipleConcurrentGenerators():
    inner_repeats, outer_repeats = 5, 20

    def generator():
        for i in range(1, 10):
            yield [i] * i, [i, i**2, i**3]

    inputs = list(generator())

    def interleave_fn(_):
        ds = D.from_generator(generator, output_types=(tf.int64, tf.int64), output_shapes=([None], [3]))
        return ds.repeat(inner_repeats).prefetch(5)

    ds = D.range(outer_repeats).interleave(interleave_fn, cycle_length=10, block_length=len(inputs))
    got = outputs(ds)
    assert len(got) == inner_repeats * outer_repeats * len(inputs)
    for k, (v0, v1) in enumerate(got):
        e0, e1 = inputs[k % len(inputs)]
        assert v0 == e0 and v1 == e1


def test_FromGeneratorTest_testFromGeneratorImplicitConversion():
    def generator():
        yield [1]
        yield [2]
        yield [3]

    for dtype in [tf.int8, tf.int32, tf.int64]:
        it = iter(D.from_generator(generator, output_types=dtype, output_shapes=[1]))
        for expected in [[1], [2], [3]]:
            value = next(it)
            assert value.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(value, expected)
        with pytest.raises(StopIteration):
            next(it)


def test_FromGeneratorTest_testFromGeneratorString():
    def generator():
        yield "foo"
        yield b"bar"
        yield "baz"

    ds = D.from_generator(generator, output_types=tf.string, output_shapes=[])
    assert outputs(ds) == [b"foo", b"bar", b"baz"]


def test_FromGeneratorTest_testFromGeneratorDatastructures():
    def generator():
        yield {"a": "foo", "b": [1, 2], "c": (9,)}
        yield {"a": "bar", "b": [3], "c": (7, 6)}
        yield {"a": "baz", "b": [5, 6], "c": (5, 4)}

    ds = D.from_generator(
        generator,
        output_types={"a": tf.string, "b": tf.int32, "c": tf.int32},
        output_shapes={"a": [], "b": [None], "c": [None]},
    )
    assert outputs(ds) == [
        {"a": b"foo", "b": [1, 2], "c": [9]},
        {"a": b"bar", "b": [3], "c": [7, 6]},
        {"a": b"baz", "b": [5, 6], "c": [5, 4]},
    ]


def error_then_more(ds, before, after):
    """``before`` elements, an error (TF: InvalidArgumentError) per bad one, then ``after``
    and the end."""

    def run(bad):
        it = iter(ds)
        for e in before:
            assert to_py(next(it)) == e
        for _ in range(bad):
            with pytest.raises((TypeError, ValueError)):
                next(it)
        for e in after:
            assert to_py(next(it)) == e
        with pytest.raises(StopIteration):
            next(it)

    return run


def test_FromGeneratorTest_testFromGeneratorTypeError():
    def generator():
        yield np.array([1, 2, 3], dtype=np.int64)
        yield np.array([4, 5, 6], dtype=np.int64)
        yield "ERROR"
        yield np.array([7, 8, 9], dtype=np.int64)

    ds = D.from_generator(generator, output_types=tf.int64, output_shapes=[3])
    error_then_more(ds, [[1, 2, 3], [4, 5, 6]], [[7, 8, 9]])(1)


def test_FromGeneratorTest_testFromGeneratorShapeError():
    def generator():
        yield np.array([1, 2, 3], dtype=np.int64)
        yield np.array([4, 5, 6], dtype=np.int64)
        yield np.array([7, 8, 9, 10], dtype=np.int64)
        yield np.array([11, 12, 13], dtype=np.int64)

    ds = D.from_generator(generator, output_types=tf.int64, output_shapes=[3])
    error_then_more(ds, [[1, 2, 3], [4, 5, 6]], [[11, 12, 13]])(1)


def test_FromGeneratorTest_testFromGeneratorStructureError():
    def generator():
        yield 1, 2
        yield 3, 4
        yield 5
        yield 6, 7, 8
        yield 9, 10

    ds = D.from_generator(generator, output_types=(tf.int64, tf.int64))
    error_then_more(ds, [(1, 2), (3, 4)], [(9, 10)])(2)


def test_FromGeneratorTest_testFromGeneratorHeterogeneous():
    def generator():
        yield 1
        yield [2, 3]

    ds = D.from_generator(generator, output_types=tf.int64)
    assert outputs(ds) == [1, [2, 3]]


def test_FromGeneratorTest_testFromGeneratorStopShort():
    def generator():
        yield 0
        yield 1
        yield 2

    it = iter(D.from_generator(generator, output_types=tf.int64))
    assert next(it) == 0
    assert next(it) == 1


def test_FromGeneratorTest_testFromGeneratorDestructorCalled():
    deleted = threading.Event()

    class GeneratorWrapper:
        def __iter__(self):
            return self

        def __next__(self):
            return 42

        def __del__(self):
            deleted.set()

    it = iter(D.from_generator(GeneratorWrapper, output_types=tf.int64).take(2))
    assert next(it) == 42 and next(it) == 42
    with pytest.raises(StopIteration):
        next(it)
    # TF: deleted by now. npyflow: when the iterator goes.
    del it
    gc.collect()
    assert deleted.wait(10)


def test_FromGeneratorTest_testFromGeneratorWithArgs():
    def flat_map_fn(elem):
        def generator_with_arg(n):
            for _ in range(n):
                yield np.array(n, dtype=np.int64)

        return D.from_generator(generator_with_arg, output_types=tf.int64, output_shapes=(), args=(elem,))

    assert_produces(D.range(5).flat_map(flat_map_fn), [1, 2, 2, 3, 3, 3, 4, 4, 4, 4])


def test_FromGeneratorTest_testFromGeneratorWithTwoArgs():
    def flat_map_fn(elem, message):
        def generator_with_arg(n, msg):
            for i in range(n):
                yield i, msg

        return D.from_generator(
            generator_with_arg, output_types=(tf.int64, tf.string), output_shapes=((), ()), args=(elem, message)
        )

    ds = D.zip((D.range(5), D.from_tensors("Hi!").repeat(None))).flat_map(flat_map_fn)
    assert outputs(ds) == [(i, b"Hi!") for n in range(5) for i in range(n)]


def test_FromGeneratorTest_testTypeIsListError():
    def generator():
        for _ in range(10):
            yield [20]

    # TF: "Cannot convert the argument `type_value`: [tf.int64] to a TensorFlow DType".
    with pytest.raises(TypeError):
        D.from_generator(generator, output_types=[tf.int64])


def test_FromGeneratorTest_testDimensionIsListError():
    def generator():
        for _ in range(10):
            yield [20]

    with pytest.raises(TypeError, match="Dimension value must be integer or None"):
        D.from_generator(generator, output_types=tf.int64, output_shapes=[[1]])


def test_FromGeneratorTest_testName():
    def generator():
        yield 42

    ds = D.from_generator(generator, output_types=tf.int64, output_shapes=[1], name="from_generator")
    assert list(ds.element_spec.shape) == [1]
