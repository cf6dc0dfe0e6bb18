"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/sample_from_datasets_test.py
(commit 03049341)."""

import numpy as np
import pytest

import npyflow as tf
from tf_kernel_harness import PORTED, assert_produces, assert_restores, left_out, outputs

D = tf.data.Dataset
TF_FILE = "sample_from_datasets_test.py"
TF_TESTS = {
    "SampleFromDatasetsTest.testSampleFromDatasets": PORTED,
    "SampleFromDatasetsTest.testSampleFromDatasetsStoppingOnEmptyDataset": PORTED,
    "SampleFromDatasetsTest.testSampleFromDatasetsSkippingEmptyDataset": PORTED,
    "SampleFromDatasetsTest.testSampleFromDatasetsWithZeroWeight": PORTED,
    "SampleFromDatasetsTest.testSampleFromEmptyDataset": PORTED,
    "SampleFromDatasetsTest.testSampleFromDatasetsSkippingDatasetsWithZeroWeight": PORTED,
    "SampleFromDatasetsTest.testSampleFromDatasetsAllWeightsAreZero": PORTED,
    "SampleFromDatasetsTest.testSampleFromDatasetsCardinality": PORTED,
    "SampleFromDatasetsTest.testSampleFromDatasetsNested": PORTED,
    "SampleFromDatasetsTest.testSampleFromDatasetsRerandomizeEachIterationEpochs": PORTED,
    "SampleFromDatasetsTest.testSampleFromDatasetsRerandomizeRepeatEpochs": PORTED,
    "SampleFromDatasetsTest.testSampleFromDatasetsRerandomizeInsideFunction": left_out(
        "builds the dataset inside a tf.function; npyflow has no graph functions"
    ),
    "SampleFromDatasetsTest.testErrors": PORTED,
    "SampleFromDatasetsCheckpointTest.test": PORTED,
}

WEIGHT_TYPES = ["list", "tensor", "dataset"]


def weights_of_type(weights, kind):
    if kind == "list":
        return list(weights)
    if kind == "tensor":
        return np.asarray(weights)
    return D.from_tensors(np.asarray(weights)).repeat()


@pytest.mark.parametrize("kind", WEIGHT_TYPES)
def test_SampleFromDatasetsTest_testSampleFromDatasets(kind):
    rng = np.random.default_rng(1619)
    rand = rng.random(5)
    num_samples = 5000
    for seed, probs in enumerate([[0.85, 0.05, 0.1], list(rand / rand.sum()), [1.0]]):
        ds = D.sample_from_datasets(
            [D.from_tensors(np.int64(i)).repeat() for i in range(len(probs))],
            weights_of_type(probs, kind),
            seed=seed,
        ).take(num_samples)
        freqs = np.bincount(outputs(ds), minlength=len(probs)) / num_samples
        chi2 = np.sum((freqs - probs) ** 2 / np.asarray(probs))
        assert chi2 < 1e-2, (probs, freqs)


def three():
    return [
        D.from_tensors(np.int64(-1)),
        D.from_tensors(np.int64(1)).repeat(),
        D.range(10).repeat(),
    ]


@pytest.mark.parametrize("kind", WEIGHT_TYPES)
def test_SampleFromDatasetsTest_testSampleFromDatasetsStoppingOnEmptyDataset(kind):
    ds = D.sample_from_datasets(three(), weights_of_type([0.5, 0.1, 0.4], kind), stop_on_empty_dataset=True)
    assert outputs(ds).count(-1) == 1


@pytest.mark.parametrize("kind", WEIGHT_TYPES)
def test_SampleFromDatasetsTest_testSampleFromDatasetsSkippingEmptyDataset(kind):
    ds = D.sample_from_datasets(
        three(), weights_of_type([0.5, 0.1, 0.4], kind), stop_on_empty_dataset=False
    ).take(100)
    got = outputs(ds)
    assert len(got) == 100 and got.count(-1) == 1


@pytest.mark.parametrize("kind", WEIGHT_TYPES)
def test_SampleFromDatasetsTest_testSampleFromDatasetsWithZeroWeight(kind):
    datasets = [D.from_tensors(-1).repeat(2), D.from_tensors(1).repeat(2)]
    ds = D.sample_from_datasets(datasets, weights_of_type([0.0, 1.0], kind), stop_on_empty_dataset=True)
    assert_produces(ds, [1, 1])


@pytest.mark.parametrize("kind", WEIGHT_TYPES)
def test_SampleFromDatasetsTest_testSampleFromEmptyDataset(kind):
    datasets = [D.range(0), D.range(1).repeat()]
    ds = D.sample_from_datasets(datasets, weights_of_type([1.0, 0.0], kind), stop_on_empty_dataset=True)
    assert_produces(ds, [])


def test_SampleFromDatasetsTest_testSampleFromDatasetsSkippingDatasetsWithZeroWeight():
    datasets = [D.from_tensors(-1).repeat(), D.from_tensors(1)]
    ds = D.sample_from_datasets(datasets, weights=np.asarray([0.0, 1.0]), stop_on_empty_dataset=False)
    assert_produces(ds, [1])


def test_SampleFromDatasetsTest_testSampleFromDatasetsAllWeightsAreZero():
    datasets = [D.from_tensors(-1).repeat(), D.from_tensors(1).repeat()]
    ds = D.sample_from_datasets(datasets, weights=np.asarray([0.0, 0.0]), stop_on_empty_dataset=False)
    assert_produces(ds, [])


def test_SampleFromDatasetsTest_testSampleFromDatasetsCardinality():
    ds = D.sample_from_datasets([D.from_tensors([1.0]).repeat(), D.from_tensors([2.0]).repeat()])
    assert ds.cardinality() == tf.data.INFINITE_CARDINALITY


def test_SampleFromDatasetsTest_testSampleFromDatasetsNested():
    ds = D.sample_from_datasets(
        [D.range(10).window(2), D.range(10, 20).window(2)], weights=[0.3, 0.7]
    )
    next(iter(ds.flat_map(lambda x: x)))


def sampled(rerandomize):
    return D.sample_from_datasets(
        [D.range(0, 10), D.range(100, 110)],
        seed=42,
        weights=[0.5, 0.5],
        stop_on_empty_dataset=True,
        rerandomize_each_iteration=rerandomize,
    )


@pytest.mark.parametrize("rerandomize", [None, True, False])
def test_SampleFromDatasetsTest_testSampleFromDatasetsRerandomizeEachIterationEpochs(rerandomize):
    ds = sampled(rerandomize)
    first, second = outputs(ds), outputs(ds)
    assert (first != second) if rerandomize else (first == second)


@pytest.mark.parametrize("rerandomize", [None, True, False])
def test_SampleFromDatasetsTest_testSampleFromDatasetsRerandomizeRepeatEpochs(rerandomize):
    epochs = outputs(sampled(rerandomize).repeat(2))
    first, second = epochs[: len(epochs) // 2], epochs[len(epochs) // 2 :]
    assert (first != second) if rerandomize else (first == second)


def test_SampleFromDatasetsTest_testErrors():
    with pytest.raises(ValueError, match="should have the same length"):
        D.sample_from_datasets([D.range(10), D.range(20)], weights=[0.25, 0.25, 0.25, 0.25])
    with pytest.raises(TypeError, match="float32 or float64"):
        D.sample_from_datasets([D.range(10), D.range(20)], weights=[1, 1])
    with pytest.raises(TypeError):
        D.sample_from_datasets([D.from_tensors(0), D.from_tensors(0.0)])
    with pytest.raises(ValueError, match="should not be empty"):
        D.sample_from_datasets(datasets=[], weights=[])


def test_SampleFromDatasetsCheckpointTest_test():
    def build():
        datasets = [D.from_tensors(i).repeat(None) for i in range(2)]
        return D.sample_from_datasets(datasets, [0.5, 0.5], seed=1813).take(100)

    assert_restores(build, 100)
