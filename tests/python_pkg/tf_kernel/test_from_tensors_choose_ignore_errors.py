"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/from_tensors_test.py (the
version with FromTensorsCheckpointTest and FromTensorsRandomAccessTest; an earlier port
followed the 2019 version, commit 04e95d6b, whose graph-mode testSkipEager* tests this
version replaces), choose_from_datasets_test.py (commit c7ffe901) and ignore_errors_test.py
(commit 546416ac)."""

import collections
import os
import warnings

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import (
    GRAPH_ONLY, PORTED, RAGGED, RANDOM_ACCESS, SPARSE, TF_OPS, assert_produces,
    assert_restores, assert_shapes, left_out, outputs,
)

D = tf.data.Dataset
TF_FILE = ["from_tensors_test.py", "choose_from_datasets_test.py", "ignore_errors_test.py"]
TF_TESTS = {
    "FromTensorsTest.testFromTensors": PORTED,
    "FromTensorsTest.testFromTensorsDataset": PORTED,
    "FromTensorsTest.testFromTensorsTensorArray": left_out(TF_OPS),
    "FromTensorsTest.testFromTensorsSparse": left_out(SPARSE),
    "FromTensorsTest.testFromTensorsMixed": left_out(SPARSE),
    "FromTensorsTest.testFromTensorsRagged": left_out(RAGGED),
    "FromTensorsTest.testFromTensorsNamedTuple": PORTED,
    "FromTensorsTest.testFromTensorsAttrs": left_out(
        "attrs classes are not structures in npyflow (see zip_test's testAttrs), and the "
        "attrs package is not a test dependency"
    ),
    "FromTensorsTest.testFromTensorsMixedRagged": left_out(SPARSE),
    "FromTensorsTest.testNestedStructure": PORTED,
    "FromTensorsTest.testNestedDict": PORTED,
    "FromTensorsTest.testNonSequenceNestedStructure": PORTED,
    "FromTensorsTest.testSplitPipeline": left_out(GRAPH_ONLY),
    "FromTensorsTest.testName": PORTED,
    "FromTensorsCheckpointTest.test": PORTED,
    "FromTensorsRandomAccessTest.testInvalidIndex": left_out(RANDOM_ACCESS),
    "FromTensorsRandomAccessTest.testBasic": left_out(RANDOM_ACCESS),
    "FromTensorsRandomAccessTest.testWithOptions": left_out(RANDOM_ACCESS),
    "FromTensorsRandomAccessTest.testEmptyDataset": left_out(RANDOM_ACCESS),
    "FromTensorsRandomAccessTest.testNumpyArray": left_out(RANDOM_ACCESS),
    "FromTensorsRandomAccessTest.testFromTensorsNestedDataset": left_out(RANDOM_ACCESS),
    "ChooseFromDatasetsTest.testChooseFromDatasets": PORTED,
    "ChooseFromDatasetsTest.testChooseFromDatasetsStoppingOnEmptyDataset": PORTED,
    "ChooseFromDatasetsTest.testChooseFromDatasetsSkippingEmptyDatasets": PORTED,
    "ChooseFromDatasetsTest.testChooseFromDatasetsChoiceDatasetIsEmpty": PORTED,
    "ChooseFromDatasetsTest.testChooseFromDatasetsNested": PORTED,
    "ChooseFromDatasetsTest.testErrors": PORTED,
    "ChooseFromDatasetsCheckpointTest.test": PORTED,
    "IgnoreErrorsTest.testMapIgnoreError": PORTED,
    "IgnoreErrorsTest.testIgnoreError_withLogWarning": PORTED,
    "IgnoreErrorsTest.testParallelMapIgnoreError": PORTED,
    "IgnoreErrorsTest.testReadFileIgnoreError": PORTED,
    "IgnoreErrorsTest.testTFRecordDatasetIgnoreError": left_out(
        "TFRecord files: npyflow reads .npy and .npz"
    ),
    "IgnoreErrorsTest.testZipIgnoreError": PORTED,
    "IgnoreErrorsTest.testCardinality": PORTED,
    "IgnoreErrorsCheckpointTest.test": PORTED,
}



def test_FromTensorsTest_testFromTensors():
    components = (np.array(1), np.array([1, 2, 3]), np.array(37.0))
    ds = D.from_tensors(components)
    assert_shapes(ds, ([], [3], []))
    assert_produces(ds, [components])


def dtypes(spec):
    if isinstance(spec, tuple):
        return tuple(dtypes(s) for s in spec)
    if isinstance(spec, dict):
        return {k: dtypes(v) for k, v in spec.items()}
    return spec.dtype


def test_FromTensorsTest_testFromTensorsDataset():
    assert_produces(D.from_tensors(D.range(10)).flat_map(lambda x: x), range(10))


def test_FromTensorsTest_testFromTensorsNamedTuple():
    Foo = collections.namedtuple("Foo", ["x", "y"])
    element = Foo(x=1, y=2)
    ds = D.from_tensors(element)
    assert_produces(ds, [element])
    assert type(next(iter(ds))) is Foo


def test_FromTensorsTest_testNestedStructure():
    # TF runs it under the TF1 API only; its eager case states the shapes of the values
    # (a batch of the one element), as npyflow's eager iterators give them.
    components = (
        np.array([1, 2, 3], dtype=np.int64),
        (np.array([4.0, 5.0]), np.array([6.0, 7.0])),
        np.array([8, 9, 10], dtype=np.int64),
    )
    ds = D.from_tensors(components)
    ds = ds.map(lambda x, y, z: ((x, z), (y[0], y[1])))
    ds = ds.flat_map(lambda x, y: D.from_tensors(((x[0], x[1]), (y[0], y[1])))).batch(32)
    for _ in range(2):  # TF gets the next element of two iterators in turn
        (w, x), (y, z) = next(iter(ds))
        assert [w.dtype, x.dtype, y.dtype, z.dtype] == [np.int64, np.int64, np.float64, np.float64]
        assert [list(t.shape) for t in (w, x, y, z)] == [[1, 3], [1, 3], [1, 2], [1, 2]]
    assert dtypes(ds.element_spec) == ((np.int64, np.int64), (np.float64, np.float64))


def test_FromTensorsTest_testNestedDict():
    ds = D.from_tensors({"a": {"aa": 1, "ab": [2.0, 2.0]}, "b": [3, 3, 3]})
    assert dtypes(ds.element_spec) == {"a": {"aa": np.int32, "ab": np.float32}, "b": np.int32}
    assert_shapes(ds, {"a": {"aa": [], "ab": [2]}, "b": [3]})


def test_FromTensorsTest_testNonSequenceNestedStructure():
    components = np.array([1, 2, 3], dtype=np.int64)
    ds = D.from_tensors(components)
    assert ds.element_spec.dtype == np.int64
    assert_shapes(ds, [3])
    ds = ds.filter(lambda x: np.all(x == components))
    assert_shapes(ds, [3])
    ds = ds.map(lambda x: np.stack([x, x]))
    assert_shapes(ds, [2, 3])
    ds = ds.flat_map(lambda x: D.from_tensor_slices(x))
    assert ds.element_spec.dtype == np.int64
    assert_shapes(ds, [3])
    first = next(iter(ds))
    assert first.dtype == np.int64 and first.shape == (3,)


def test_FromTensorsTest_testName():
    assert_produces(D.from_tensors(42, name="from_tensors"), [42])


def test_FromTensorsCheckpointTest_test():
    arr = np.array(1)
    assert_restores(lambda: D.from_tensors((arr, np.array([1, 2, 3]), np.array(37.0))), 1)


def test_ChooseFromDatasetsTest_testChooseFromDatasets():
    words = [b"foo", b"bar", b"baz"]
    datasets = [D.from_tensors(w).repeat() for w in words]
    choices = np.random.default_rng(3).integers(3, size=(15,)).astype(np.int64)
    ds = D.choose_from_datasets(datasets, D.from_tensor_slices(choices))
    assert_produces(ds, [words[i] for i in choices])


def three_words():
    return [
        D.from_tensors(b"foo").repeat(2),
        D.from_tensors(b"bar").repeat(),
        D.from_tensors(b"baz").repeat(),
    ]


CHOICES = np.asarray([0, 0, 0, 1, 1, 1, 2, 2, 2], dtype=np.int64)


def test_ChooseFromDatasetsTest_testChooseFromDatasetsStoppingOnEmptyDataset():
    ds = D.choose_from_datasets(three_words(), D.from_tensor_slices(CHOICES), stop_on_empty_dataset=True)
    assert_produces(ds, [b"foo", b"foo"])


def test_ChooseFromDatasetsTest_testChooseFromDatasetsSkippingEmptyDatasets():
    ds = D.choose_from_datasets(three_words(), D.from_tensor_slices(CHOICES), stop_on_empty_dataset=False)
    assert_produces(ds, [b"foo", b"foo", b"bar", b"bar", b"bar", b"baz", b"baz", b"baz"])


def test_ChooseFromDatasetsTest_testChooseFromDatasetsChoiceDatasetIsEmpty():
    datasets = [D.from_tensors(w).repeat() for w in [b"foo", b"bar", b"baz"]]
    ds = D.choose_from_datasets(datasets, choice_dataset=D.range(0), stop_on_empty_dataset=False)
    assert_produces(ds, [])


def test_ChooseFromDatasetsTest_testChooseFromDatasetsNested():
    ds = D.choose_from_datasets(
        [D.range(10).window(2), D.range(10, 20).window(2)], D.range(2).repeat(5)
    ).flat_map(lambda x: x)
    expected = []
    for i in range(5):
        for j in range(2):
            expected += [10 * j + 2 * i, 10 * j + 2 * i + 1]
    assert_produces(ds, expected)


def test_ChooseFromDatasetsTest_testErrors():
    two = [D.from_tensors(0), D.from_tensors(1)]
    with pytest.raises(TypeError, match="int64"):
        D.choose_from_datasets(two, choice_dataset=D.from_tensors(1.0))
    with pytest.raises(TypeError, match="scalar"):
        D.choose_from_datasets(two, choice_dataset=D.from_tensors([1.0]))
    ds = D.choose_from_datasets([D.from_tensors(0)], choice_dataset=D.from_tensors(np.int64(1)))
    with pytest.raises((ValueError, IndexError), match="out of range"):
        outputs(ds)  # TF: InvalidArgumentError
    with pytest.raises(ValueError, match="`datasets` should not be empty"):
        D.choose_from_datasets(datasets=[], choice_dataset=D.from_tensors(1.0))
    with pytest.raises(TypeError, match="`choice_dataset` should be a"):
        D.choose_from_datasets([D.range(42)], choice_dataset=None)


def test_ChooseFromDatasetsCheckpointTest_test():
    indices = np.repeat(np.arange(5, dtype=np.int64), 20)
    # TF shuffles the indices with its stateless shuffle (seed [1, 2]); any fixed order
    # tests the same restore.
    np.random.default_rng(12).shuffle(indices)

    def build():
        return D.choose_from_datasets([D.range(20) for _ in range(5)], D.from_tensor_slices(indices))

    assert_restores(build, 100)


def check_numerics(x):
    """tf.debugging.check_numerics: the value, or an error where it is not finite."""
    if not np.all(np.isfinite(x)):
        raise ValueError("Tensor had NaN values" if np.any(np.isnan(x)) else "Tensor had Inf values")
    return x


COMPONENTS = np.array([1.0, 2.0, 3.0, np.nan, 5.0]).astype(np.float32)


def test_IgnoreErrorsTest_testMapIgnoreError():
    ds = D.from_tensor_slices(COMPONENTS).map(check_numerics).ignore_errors()
    assert_produces(ds, [1.0, 2.0, 3.0, 5.0])


def test_IgnoreErrorsTest_testIgnoreError_withLogWarning(capfd):
    ds = D.from_tensor_slices(COMPONENTS).map(check_numerics).ignore_errors(log_warning=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = outputs(ds)
    assert got == [1.0, 2.0, 3.0, 5.0]
    logged = capfd.readouterr().err + "".join(str(w.message) for w in caught)
    assert "Tensor had NaN values" in logged


def test_IgnoreErrorsTest_testParallelMapIgnoreError():
    ds = D.from_tensor_slices(COMPONENTS).map(check_numerics, num_parallel_calls=2)
    assert_produces(ds.prefetch(2).ignore_errors(), [1.0, 2.0, 3.0, 5.0])


def test_IgnoreErrorsTest_testReadFileIgnoreError(tmp_path):
    filenames = [str(tmp_path / f"file_{i}.txt") for i in range(5)]
    for name in filenames:
        with open(name, "w") as f:
            f.write(name)

    def read_file(name):
        # TF's tf.io.read_file; the function gets a 0-d bytes array. npyflow's strings are
        # fixed-width, so the contents are returned at the width the signature declares.
        with open(np.asarray(name).item().decode(), "rb") as f:
            return np.array(f.read(), dtype="S256")

    ds = D.from_tensor_slices(filenames).map(
        read_file, num_parallel_calls=2, output_signature=tf.TensorSpec((), "S256")
    ).prefetch(2).ignore_errors()
    assert_produces(ds, [n.encode() for n in filenames])
    os.remove(filenames[0])
    assert_produces(ds, [n.encode() for n in filenames[1:]])


def test_IgnoreErrorsTest_testZipIgnoreError():
    a = D.from_tensor_slices(np.array([1.0, 2.0, 0.0, 4.0], np.float32))

    def reciprocal(x):
        with np.errstate(divide="ignore"):
            return check_numerics(np.float32(1.0) / x)

    reciprocals = a.map(reciprocal, output_signature=tf.TensorSpec((), np.float32))
    ds = D.zip((reciprocals, a)).ignore_errors()
    assert_produces(ds, [(np.float32(1.0) / x, x) for x in np.array([1.0, 2.0, 4.0], np.float32)])


def test_IgnoreErrorsTest_testCardinality():
    assert D.range(10).ignore_errors().cardinality() == tf.data.UNKNOWN_CARDINALITY


def test_IgnoreErrorsCheckpointTest_test():
    assert_restores(lambda: D.from_tensor_slices(COMPONENTS).map(check_numerics).ignore_errors(), 4)
