"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/zip_test.py (commit
010f3edc)."""

import collections

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import PORTED, assert_produces, assert_restores, assert_shapes, differs

D = tf.data.Dataset
TF_FILE = "zip_test.py"
TF_TESTS = {
    "ZipTest.testZipEqual": PORTED,
    "ZipTest.testZipUnequal": PORTED,
    "ZipTest.testNested": PORTED,
    "ZipTest.testNamedTuple": PORTED,
    "ZipTest.testAttrs": differs(
        "attrs classes are not structures in npyflow (namedtuples are): zip refuses them "
        "with TypeError"
    ),
    "ZipCheckpointTest.testCore": PORTED,
}

COMPONENTS = [
    np.tile(np.array([[1], [2], [3], [4]]), 20),
    np.tile(np.array([[12], [13], [14], [15]]), 22),
    np.array([37.0, 38.0, 39.0, 40.0]),
]


def zipped(components):
    return D.zip(tuple(D.from_tensor_slices(c) for c in components))


def test_ZipTest_testZipEqual():
    assert_produces(zipped(COMPONENTS), [tuple(c[i] for c in COMPONENTS) for i in range(4)])


def test_ZipTest_testZipUnequal():
    components = [[1, 2, 3, 4], [1, 2, 3, 4, 5], [1.0, 2.0]]
    assert_produces(zipped(components), [tuple(c[i] for c in components) for i in range(2)])


def test_ZipTest_testNested():
    dss = [D.from_tensor_slices(c) for c in COMPONENTS]
    ds = D.zip((dss[0], (dss[1], dss[2])))
    assert_shapes(ds, ([20], ([22], [])))
    assert_produces(ds, [(COMPONENTS[0][i], (COMPONENTS[1][i], COMPONENTS[2][i])) for i in range(4)])


def test_ZipTest_testNamedTuple():
    Foo = collections.namedtuple("Foo", ["x", "y"])
    ds = D.zip(Foo(x=D.range(3), y=D.range(3, 6)))
    got = list(ds.as_numpy_iterator())
    assert got == [Foo(x=0, y=3), Foo(x=1, y=4), Foo(x=2, y=5)]
    assert all(type(e) is Foo for e in got)


def test_ZipTest_testAttrs():
    class Foo:
        def __init__(self, x, y):
            self.x, self.y = x, y

    with pytest.raises(TypeError):
        D.zip(Foo(D.range(3), D.range(3, 6)))


@pytest.mark.parametrize("arr", [[37.0, 38.0, 39.0, 40.0], [1.0, 2.0]])
def test_ZipCheckpointTest_testCore(arr):
    def build():
        components = COMPONENTS[:2] + [np.array(arr)]
        dss = [D.from_tensor_slices(c) for c in components]
        return D.zip((dss[0], (dss[1], dss[2])))

    assert_restores(build, len(arr))
