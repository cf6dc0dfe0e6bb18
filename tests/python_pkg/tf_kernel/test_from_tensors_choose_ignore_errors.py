"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/from_tensors_test.py (commit
04e95d6b), choose_from_datasets_test.py (commit c7ffe901) and ignore_errors_test.py (commit
546416ac)."""

import os
import warnings

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import (
    GRAPH_ONLY, PORTED, SPARSE, assert_produces, assert_restores, assert_shapes,
    left_out, outputs,
)

D = tf.data.Dataset
TF_FILE = ["from_tensors_test.py", "choose_from_datasets_test.py", "ignore_errors_test.py"]
TF_TESTS = {
    "FromTensorsTest.testFromTensors": PORTED,
    "FromTensorsTest.testSkipEagerFromTensorsSparse": left_out(SPARSE),
    "FromTensorsTest.testFromTensorsMixed": left_out(SPARSE),
    "FromTensorsTest.testNestedStructure": PORTED,
    "FromTensorsTest.testSkipEagerNestedStructure": left_out(GRAPH_ONLY),
    "FromTensorsTest.testNestedDict": PORTED,
    "FromTensorsTest.testNonSequenceNestedStructure": PORTED,
    "FromTensorsTest.testSkipEagerSplitPipelineFailsWithPlacementError": left_out(GRAPH_ONLY),
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


def test_FromTensorsTest_testNestedStructure():
    components = (
        np.array([1, 2, 3], dtype=np.int64),
        (np.array([4.0, 5.0]), np.array([6.0, 7.0])),
        np.array([8, 9, 10], dtype=np.int64),
    )
    want_types = (np.int64, (np.float64, np.float64), np.int64)
    ds = D.from_tensors(components)
    for step in [
        lambda d: d,
        lambda d: d.shuffle(10, 10),
        lambda d: d.repeat(-1),
        lambda d: d.filter(lambda x, y, z: True),
        lambda d: d.take(5),
    ]:
        ds = step(ds)
        assert dtypes(ds.element_spec) == want_types
        assert_shapes(ds, ([3], ([2], [2]), [3]))
    ds = ds.map(lambda x, y, z: ((x, z), (y[0], y[1])))
    assert dtypes(ds.element_spec) == ((np.int64, np.int64), (np.float64, np.float64))
    assert_shapes(ds, (([3], [3]), ([2], [2])))
    ds = ds.flat_map(lambda x, y: D.from_tensors(((x[0], x[1]), (y[0], y[1]))))
    assert_shapes(ds, (([3], [3]), ([2], [2])))
    ds = ds.batch(32)
    assert_shapes(ds, (([None, 3], [None, 3]), ([None, 2], [None, 2])))
    slices = D.from_tensor_slices(
        (
            np.array([1, 2, 3], dtype=np.int64),
            (np.array([4.0, 5.0, 6.0]), np.array([7.0, 8.0, 9.0])),
            np.array([10, 11, 12], dtype=np.int64),
        )
    )
    assert dtypes(slices.element_spec) == want_types
    assert_shapes(slices, ([], ([], []), []))


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
