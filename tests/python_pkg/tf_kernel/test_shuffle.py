"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/shuffle_test.py (commit
a3f2a79d, the version with UNKNOWN_CARDINALITY buffers and random access).

npyflow's random orders are its own (a seed gives another permutation than in TensorFlow),
so these ports check what TensorFlow's tests check about them: every element once, a seed
repeats an order, reshuffle_each_iteration, buffer sizes, errors and cardinality, never
TensorFlow's exact sequences."""

import collections

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import (
    GRAPH_ONLY, PORTED, RANDOM_ACCESS, TF_OPS, assert_produces, assert_restores, assert_shapes,
    differs, left_out, outputs,
)

D = tf.data.Dataset
TF_FILE = "shuffle_test.py"
TF_TESTS = {
    "ShuffleTest.testBasic": PORTED,
    "ShuffleTest.testSeedZero": PORTED,
    "ShuffleTest.testDefaultArguments": PORTED,
    "ShuffleTest.testTensorInput": PORTED,
    "ShuffleTest.testUnknownCardinality": PORTED,
    "ShuffleTest.testUnknownCardinalityWithRepeatedShuffle": PORTED,
    "ShuffleTest.testUnknownCardinalityWithIncreasingBufferSize": PORTED,
    "ShuffleTest.testUnknownCardinalityWithVariableBufferSize": PORTED,
    "ShuffleTest.testInputInitializations": PORTED,
    "ShuffleTest.testShuffleSeed": left_out(
        GRAPH_ONLY + ": the graph-level seed of ops.Graph (npyflow's shuffle takes its seed "
        "argument only)"
    ),
    "ShuffleTest.testMultipleIterators": differs(
        "TF runs it in graph mode only, where each iterator draws new seeds, so two "
        "iterators differ even with reshuffle_each_iteration=False; npyflow's iterators "
        "behave as TF's eager ones (testReshuffleIterationEpochs): with False they repeat "
        "the order"
    ),
    "ShuffleTest.testShuffleManyEmptyEpochs": PORTED,
    "ShuffleTest.testShuffleInfiniteRepeatNonemptyFollowedByEmpty": differs(
        "TF's expected [0, 0, 1] comes from its default optimization that fuses shuffle and "
        "repeat; without it TF's repeat() ends at the empty second pass and gives [0], as "
        "npyflow's does (recorded from TF 2.21)"
    ),
    "ShuffleTest.testReshuffleRepeatEpochs": PORTED,
    "ShuffleTest.testReshuffleIterationEpochs": PORTED,
    "ShuffleTest.testShuffleV2ResourceCapture": PORTED,
    "ShuffleTest.testReshuffleSeparateTransformations": PORTED,
    "ShuffleTest.testShuffleV2InFunction": left_out(TF_OPS + ": tf.function and a variable"),
    "ShuffleTest.testEmptyDataset": differs(
        "npyflow's cache is not completed by a pass that met an error (what it kept is not "
        "the data), so the next pass reads the input again and meets the error again; TF's "
        "cache leaves the failed element out and is then empty"
    ),
    "ShuffleTest.testDontRerandomizeOnReplicate": left_out(
        "graphRoundTrip: serializing the dataset's graph and building it again, a TF internal"
    ),
    "ShuffleTest.testCheckpointLargeBuffer": left_out(
        "TF's checkpoint files and their 2 GB protobuf limit, with 512 MiB elements"
    ),
    "ShuffleTest.testName": PORTED,
    "ShuffleCheckpointTest.test": PORTED,
    "ShuffleCheckpointTest.testMultipleIterators": left_out(GRAPH_ONLY),
    "ShuffleRandomAccessTest.testInvalidIndex": left_out(RANDOM_ACCESS),
    "ShuffleRandomAccessTest.testEmptyDataset": left_out(RANDOM_ACCESS),
    "ShuffleRandomAccessTest.testBasicWithoutSeedEager": left_out(RANDOM_ACCESS),
    "ShuffleRandomAccessTest.testSameSeedReturnsSameSequence": left_out(RANDOM_ACCESS),
    "ShuffleRandomAccessTest.testDifferentSeedDifferentSequence": left_out(RANDOM_ACCESS),
}


def test_ShuffleTest_testBasic():
    comps = (np.array([1, 2, 3, 4]), np.array([5, 6, 7, 8]), np.array([9.0, 10.0, 11.0, 12.0]))

    def dataset(count=5, buffer_size=None, seed=0):
        ds = D.from_tensor_slices(comps).repeat(count)
        if buffer_size:
            ds = ds.shuffle(buffer_size, seed)
            assert_shapes(ds, ([], [], []))
        return ds

    def elements(ds):
        it = iter(ds)
        got = [tuple(float(v) for v in next(it)) for _ in range(20)]
        for _ in range(2):  # the end, and the end again
            with pytest.raises(StopIteration):
                next(it)
        return got

    unshuffled = elements(dataset())
    shuffled = elements(dataset(buffer_size=100, seed=37))
    assert sorted(shuffled) == sorted(unshuffled)
    assert elements(dataset(buffer_size=100, seed=37)) == shuffled  # the same seed
    other = elements(dataset(buffer_size=100, seed=tf.constant(137, dtype=tf.int64)))
    assert other != shuffled and sorted(other) == sorted(shuffled)
    assert sorted(elements(dataset(buffer_size=2, seed=37))) == sorted(unshuffled)
    assert outputs(dataset(count=0, buffer_size=100, seed=37)) == []


def test_ShuffleTest_testSeedZero():
    # TF checks that a Python 0 and a tensor 0 seed the same order.
    first = outputs(D.range(10).shuffle(10, seed=0))
    assert sorted(first) == list(range(10))
    assert outputs(D.range(10).shuffle(10, seed=tf.constant(0, dtype=tf.int64))) == first
    assert outputs(D.range(10).shuffle(10, seed=np.int64(0))) == first


def test_ShuffleTest_testDefaultArguments():
    it = iter(D.from_tensor_slices([0, 1, 2, 3, 4]).shuffle(5).repeat())
    counts = collections.Counter(int(next(it)) for _ in range(50))
    assert counts == {i: 10 for i in range(5)}


@pytest.mark.parametrize("use_tensor_input", [True, False])
@pytest.mark.parametrize("seed", [None, 42])
@pytest.mark.parametrize("buffer_size", [None, 10, 200])
def test_ShuffleTest_testTensorInput(buffer_size, seed, use_tensor_input):
    ds = D.range(100)
    unshuffled = outputs(ds)
    if buffer_size:
        buffer_size = tf.constant(buffer_size, dtype=tf.int64) if use_tensor_input else buffer_size
    else:
        buffer_size = ds.cardinality()
    if seed and use_tensor_input:
        seed = tf.constant(seed, dtype=tf.int64)
    shuffled = outputs(ds.shuffle(buffer_size, seed=seed))
    assert unshuffled == list(range(100))
    assert sorted(shuffled) == unshuffled
    assert shuffled != unshuffled


def test_ShuffleTest_testUnknownCardinality():
    # A buffer of UNKNOWN_CARDINALITY holds the whole input.
    ds = D.from_tensor_slices([0, 1, 2, 3, 4]).shuffle(tf.data.UNKNOWN_CARDINALITY)
    assert sorted(outputs(ds)) == [0, 1, 2, 3, 4]


def test_ShuffleTest_testUnknownCardinalityWithRepeatedShuffle():
    ds = D.from_tensor_slices([0, 1, 2, 3, 4]).shuffle(tf.data.UNKNOWN_CARDINALITY).repeat()
    it = iter(ds)
    counts = collections.Counter(int(next(it)) for _ in range(50))
    assert counts == {i: 10 for i in range(5)}


def variable_size_dataset(per_epoch):
    """A generator dataset that yields the next list of ``per_epoch`` on each pass."""
    epoch = [0]

    def gen():
        yield from per_epoch[epoch[0]]
        epoch[0] += 1

    return D.from_generator(gen, output_signature=tf.TensorSpec((), tf.int64))


def test_ShuffleTest_testUnknownCardinalityWithIncreasingBufferSize():
    epochs = [list(range(5)), list(range(10, 17)), list(range(20, 28))]
    ds = variable_size_dataset(epochs).shuffle(tf.data.UNKNOWN_CARDINALITY).repeat(3)
    got = outputs(ds)
    assert sorted(got) == sorted(sum(epochs, []))
    # Each pass's elements come in that pass: the buffer is the whole pass.
    assert sorted(got[:5]) == epochs[0] and sorted(got[5:12]) == epochs[1]


def test_ShuffleTest_testUnknownCardinalityWithVariableBufferSize():
    epochs = [list(range(5)), list(range(10, 13)), list(range(20, 27))]
    ds = variable_size_dataset(epochs).shuffle(tf.data.UNKNOWN_CARDINALITY).repeat(3)
    got = outputs(ds)
    assert sorted(got) == sorted(sum(epochs, []))
    assert sorted(got[:5]) == epochs[0] and sorted(got[5:8]) == epochs[1]


def test_ShuffleTest_testInputInitializations():
    def orders(ds):
        return [outputs(ds) for _ in range(3)]

    first = orders(D.range(10).shuffle(10, seed=1))
    # A shuffle(1) after it changes no order.
    assert orders(D.range(10).shuffle(10, seed=1).shuffle(1)) == first
    assert len({tuple(o) for o in first}) > 1  # and each pass reshuffles


@pytest.mark.parametrize("reshuffle", [True, False])
def test_ShuffleTest_testMultipleIterators(reshuffle):
    ds = D.range(100).shuffle(10, reshuffle_each_iteration=reshuffle).repeat(3)
    a, b = outputs(ds), outputs(ds)
    assert len(a) == len(b) == 300 and sorted(a) == sorted(b)
    # TF (graph mode): a != b for both. npyflow: a new order only where it reshuffles.
    assert (a != b) == reshuffle


def sized_generator(sizes):
    """A generator dataset whose pass k yields range(sizes[k])."""
    left = iter(sizes)

    def gen():
        yield from range(next(left))

    return D.from_generator(gen, output_signature=tf.TensorSpec((), tf.int64))


def test_ShuffleTest_testShuffleManyEmptyEpochs():
    sizes = [0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 0]
    ds = sized_generator(sizes).shuffle(10).repeat(len(sizes)).take(3)
    assert sorted(outputs(ds)) == [0, 0, 1]


def test_ShuffleTest_testShuffleInfiniteRepeatNonemptyFollowedByEmpty():
    ds = sized_generator([1, 0, 2, 10]).shuffle(10).repeat().take(3)
    # TF (with its shuffle-and-repeat fusion): [0, 0, 1] in some order. npyflow, like TF
    # without the fusion: the endless repeat ends at the empty second pass.
    assert outputs(ds) == [0]


@pytest.mark.parametrize("seed", [None, 42])
@pytest.mark.parametrize("reshuffle", [True, False])
def test_ShuffleTest_testReshuffleRepeatEpochs(reshuffle, seed):
    got = outputs(D.range(10).shuffle(10, seed=seed, reshuffle_each_iteration=reshuffle).repeat(2))
    assert (got[:10] == got[10:]) == (not reshuffle)


@pytest.mark.parametrize("seed", [None, 42])
@pytest.mark.parametrize("reshuffle", [True, False])
def test_ShuffleTest_testReshuffleIterationEpochs(reshuffle, seed):
    ds = D.range(10).shuffle(10, seed=seed, reshuffle_each_iteration=reshuffle)
    first, second = outputs(ds), outputs(ds)
    assert (first == second) == (not reshuffle)


def test_ShuffleTest_testShuffleV2ResourceCapture():
    ids = D.range(10).shuffle(1)
    ds = D.range(1).interleave(lambda _: ids)
    assert_produces(ds, range(10))


@pytest.mark.parametrize("seed", [None, 42])
@pytest.mark.parametrize("reshuffle", [True, False])
def test_ShuffleTest_testReshuffleSeparateTransformations(reshuffle, seed):
    ds = D.range(10)
    first = outputs(ds.shuffle(10, seed=seed, reshuffle_each_iteration=reshuffle))
    second = outputs(ds.shuffle(10, seed=seed, reshuffle_each_iteration=reshuffle))
    assert (first != second) == (seed is None)


def test_ShuffleTest_testEmptyDataset():
    def map_fn(x):
        if x != 0:  # TF: tf.debugging.assert_equal(x, 0)
            raise ValueError("x != 0")
        return x

    ds = D.from_tensors(1).map(map_fn, trace=False, output_signature=tf.TensorSpec([], tf.int32))
    ds = ds.cache().shuffle(buffer_size=10).repeat()
    it = iter(ds)
    with pytest.raises(ValueError):
        next(it)
    # TF: the end (its cache kept nothing and is complete). npyflow: the cache was not
    # completed, so the next pass meets the error again.
    with pytest.raises(ValueError):
        next(it)


def test_ShuffleTest_testName():
    # name= names the op in TF's graph; npyflow takes it and ignores it.
    assert_produces(D.from_tensors(42).shuffle(1, name="shuffle"), [42])


@pytest.mark.parametrize("buffer_size", [1, 3, 5, 8, 10, tf.data.UNKNOWN_CARDINALITY])
@pytest.mark.parametrize("reshuffle", [True, False])
def test_ShuffleCheckpointTest_test(reshuffle, buffer_size):
    def build():
        return D.range(5).shuffle(buffer_size, seed=55, reshuffle_each_iteration=reshuffle).repeat(2)

    assert_restores(build, 10)

