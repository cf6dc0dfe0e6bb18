"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/list_files_test.py (commit
a3f2a79d). TensorFlow's ListFilesGlobalShuffleTest and ListFilesGlobalShuffleCheckpointTest
subclass ListFilesTest and so run its tests again; the ports list each method once, under
the class that defines it. (TensorFlow's ``tesEmptyDirectoryInitializer``, misspelt, is not a
test method and never runs; testEmptyDirectory checks the same.)"""

import os

import pytest

import npyflow as tf
from tf_kernel_harness import PORTED, assert_restores, outputs

D = tf.data.Dataset
TF_FILE = "list_files_test.py"
TF_TESTS = {
    "ListFilesTest.testEmptyDirectory": PORTED,
    "ListFilesTest.testSimpleDirectory": PORTED,
    "ListFilesTest.testSimpleDirectoryNotShuffled": PORTED,
    "ListFilesTest.testFixedSeedResultsInRepeatableOrder": PORTED,
    "ListFilesTest.testSimpleDirectoryInitializer": PORTED,
    "ListFilesTest.testFileSuffixes": PORTED,
    "ListFilesTest.testFileMiddles": PORTED,
    "ListFilesTest.testNoShuffle": PORTED,
    "ListFilesTest.testMultiplePatternsAsList": PORTED,
    "ListFilesTest.testMultiplePatternsAsTensor": PORTED,
    "ListFilesGlobalShuffleTest.test": PORTED,
    "ListFilesGlobalShuffleTest.testShuffleNotSupported": PORTED,
    "ListFilesGlobalShuffleCheckpointTest.test": PORTED,
}

ELEVEN = list("abcdefghijk")


@pytest.fixture
def touch(tmp_path):
    def make(names):
        for n in names:
            (tmp_path / n).touch()
        return lambda name: os.fsencode(os.path.join(str(tmp_path), name))

    make.dir = str(tmp_path)
    return make


def test_ListFilesTest_testEmptyDirectory(touch):
    # TF: InvalidArgumentError "No files matched pattern" when the iterator is made;
    # npyflow: ValueError when the dataset is.
    with pytest.raises(ValueError, match="no files matched"):
        D.list_files(os.path.join(touch.dir, "*"))


def test_ListFilesTest_testSimpleDirectory(touch):
    path = touch(["a", "b", "c"])
    got = outputs(D.list_files(os.path.join(touch.dir, "*")))
    assert sorted(got) == [path(n) for n in "abc"]


def test_ListFilesTest_testSimpleDirectoryInitializer(touch):
    # TF's graph-mode twin of testSimpleDirectory (an initializable iterator).
    path = touch(["a", "b", "c"])
    it = iter(D.list_files(os.path.join(touch.dir, "*")))
    assert sorted(bytes(next(it)) for _ in range(3)) == [path(n) for n in "abc"]
    with pytest.raises(StopIteration):
        next(it)


def test_ListFilesTest_testSimpleDirectoryNotShuffled(touch):
    path = touch(["b", "c", "a"])
    got = outputs(D.list_files(os.path.join(touch.dir, "*"), shuffle=False))
    assert got == [path(n) for n in "abc"]


def test_ListFilesTest_testFixedSeedResultsInRepeatableOrder(touch):
    path = touch(["a", "b", "c"])
    runs = [outputs(D.list_files(os.path.join(touch.dir, "*"), shuffle=True, seed=37)) for _ in range(3)]
    assert sorted(runs[0]) == [path(n) for n in "abc"]
    assert runs[0] == runs[1] == runs[2]


def test_ListFilesTest_testFileSuffixes(touch):
    path = touch(["a.txt", "b.py", "c.py", "d.pyc"])
    got = outputs(D.list_files(os.path.join(touch.dir, "*.py")))
    assert sorted(got) == [path("b.py"), path("c.py")]


def test_ListFilesTest_testFileMiddles(touch):
    path = touch(["a.txt", "b.py", "c.pyc"])
    got = outputs(D.list_files(os.path.join(touch.dir, "*.py*")))
    assert sorted(got) == [path("b.py"), path("c.pyc")]


def test_ListFilesTest_testNoShuffle(touch):
    path = touch(["a", "b", "c"])
    got = outputs(D.list_files(os.path.join(touch.dir, "*"), shuffle=False).repeat(2))
    assert sorted(got) == sorted([path(n) for n in "abc"] * 2)
    assert got[:3] == got[3:]


@pytest.mark.parametrize("as_tensor", [False, True])
def test_ListFilesTest_testMultiplePatternsAsList(touch, as_tensor):
    path = touch(["a.txt", "b.py", "c.py", "d.pyc"])
    patterns = [os.path.join(touch.dir, p) for p in ["*.py", "*.txt"]]
    if as_tensor:
        patterns = tf.constant(patterns)
    got = outputs(D.list_files(patterns))
    assert sorted(got) == [path(n) for n in ["a.txt", "b.py", "c.py"]]


def test_ListFilesTest_testMultiplePatternsAsTensor(touch):
    # TF passes the same list as its test above (the name says tensor; the test does not
    # make one); here the patterns are bytes.
    path = touch(["a.txt", "b.py", "c.py", "d.pyc"])
    got = outputs(D.list_files([os.fsencode(os.path.join(touch.dir, p)) for p in ["*.py", "*.txt"]]))
    assert sorted(got) == [path(n) for n in ["a.txt", "b.py", "c.py"]]


@pytest.mark.parametrize("reshuffle", [True, False])
@pytest.mark.parametrize("seed", [None, 42])
@pytest.mark.parametrize("repetitions", [1, 2])
def test_ListFilesGlobalShuffleTest_test(touch, repetitions, seed, reshuffle):
    path = touch(ELEVEN)
    ds = D.list_files(os.path.join(touch.dir, "*"), shuffle=False).prefetch(buffer_size=tf.data.AUTOTUNE)
    if repetitions > 1:
        ds = ds.repeat(repetitions)
    ds = ds.global_shuffle(seed=seed, reshuffle_each_iteration=reshuffle)
    expected = [path(n) for n in ELEVEN] * repetitions
    got = outputs(ds)
    assert sorted(got) == sorted(expected)
    assert got != expected
    assert len(got) == ds.cardinality()


def test_ListFilesGlobalShuffleTest_testShuffleNotSupported(touch):
    touch(ELEVEN)
    # TF: FailedPreconditionError; npyflow: ValueError saying why.
    with pytest.raises(ValueError, match="random-access|random access"):
        outputs(D.list_files(os.path.join(touch.dir, "*"), shuffle=True).global_shuffle())


@pytest.mark.parametrize("reshuffle", [True, False])
@pytest.mark.parametrize("repetitions", [1, 2])
def test_ListFilesGlobalShuffleCheckpointTest_test(touch, repetitions, reshuffle):
    touch(ELEVEN)

    def build():
        ds = D.list_files(os.path.join(touch.dir, "*"), shuffle=False).prefetch(buffer_size=tf.data.AUTOTUNE)
        if repetitions > 1:
            ds = ds.repeat(repetitions)
        return ds.global_shuffle(seed=42, reshuffle_each_iteration=reshuffle)

    assert_restores(build, len(ELEVEN) * repetitions)
