"""Ported from TensorFlow's tensorflow/python/data/kernel_tests/options_test.py (commit
a3f2a79d). npyflow keeps every tf.data option (and honours ``deterministic``, see
``tf.data.Options``); these tests check how options are set, merged and read back."""

import warnings

import pytest

import npyflow as tf
from tf_kernel_harness import PORTED, assert_produces, left_out

D = tf.data.Dataset
Options = tf.data.Options
TF_FILE = "options_test.py"
PROTO = "TF's options protos (_to_proto, _from_proto, dataset_options_pb2)"
TF_TESTS = {
    "OptionsTest.testOptionsDefault": PORTED,
    "OptionsTest.testOptionsOnce": PORTED,
    "OptionsTest.testOptionsTwiceSame": PORTED,
    "OptionsTest.testOptionsTwiceDifferentOptions": PORTED,
    "OptionsTest.testOptionsTwiceSameOption": PORTED,
    "OptionsTest.testOptionsTwiceSameOptionWithMap": PORTED,
    "OptionsTest.testOptionsMergeOptionsFromMultipleInputs": PORTED,
    "OptionsTest.testOptionsHaveDefaults": PORTED,
    "OptionsTest.testMutatingOptionsRaiseValueError": PORTED,
    "OptionsTest.testNestedDataset": PORTED,
    "OptionsTest.testOptionsProtoRoundTrip": left_out(PROTO),
    "OptionsTest.testOptionsProtoDefaultValuesRoundTrip": left_out(PROTO),
    "OptionsTest.testProtoOptionsDefaultValuesRoundTrip": left_out(PROTO),
    "OptionsTest.testThreadingOptionsBackwardCompatibility": PORTED,
    "OptionsTest.testExperimentalThreadingOptionsOverride": left_out(PROTO),
    "OptionsTest.testExperimentalDeterministicOverride": left_out(PROTO),
    "OptionsTest.testPersistenceOptionsSetOutsideFunction": left_out("tf.function: npyflow has none"),
    "OptionsTest.testPersistenceOptionsSetInsideFunction": left_out("tf.function: npyflow has none"),
    "OptionsTest.testOptionsPersistenceGraphRoundTrip": left_out(
        "graphRoundTrip: serializing the dataset's graph and building it again, a TF internal"
    ),
    "OptionsTest.testOptionsGraphRoundTripOptimization": left_out(
        "graphRoundTrip and TF's map_parallelization rewrite (testing.assert_next)"
    ),
    "OptionsTest.testName": PORTED,
}


@pytest.fixture(autouse=True)
def quiet():
    # npyflow warns once per process for each option it keeps but ignores.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def test_OptionsTest_testOptionsDefault():
    assert D.range(0).options() == Options()


def test_OptionsTest_testOptionsOnce():
    options = Options()
    assert D.range(0).with_options(options).cache().options() == options


def test_OptionsTest_testOptionsTwiceSame():
    options = Options()
    options.autotune.enabled = True
    assert D.range(0).with_options(options).with_options(options).options() == options


def test_OptionsTest_testOptionsTwiceDifferentOptions():
    first, second = Options(), Options()
    first.autotune.enabled = True
    second.deterministic = False
    options = D.range(0).with_options(first).with_options(second).options()
    assert options.autotune.enabled is True
    assert options.deterministic is False


def test_OptionsTest_testOptionsTwiceSameOption():
    first, second = Options(), Options()
    first.autotune.enabled = False
    second.autotune.enabled = True
    assert D.range(0).with_options(first).with_options(second).options().autotune.enabled


def test_OptionsTest_testOptionsTwiceSameOptionWithMap():
    first, second = Options(), Options()
    first.framework_type = ["seqio"]
    second.framework_type = ["tfgrain"]
    ds = D.range(5).with_options(first).map(lambda x: x + 1).with_options(second)
    assert_produces(ds, [1, 2, 3, 4, 5])
    assert len(ds.options().framework_type) == 2  # the lists are joined


def test_OptionsTest_testOptionsMergeOptionsFromMultipleInputs():
    first, second = Options(), Options()
    first.autotune.enabled = True
    second.deterministic = True
    options = D.zip((D.range(0).with_options(first), D.range(0).with_options(second))).options()
    assert options.autotune.enabled
    assert options.deterministic


def test_OptionsTest_testOptionsHaveDefaults():
    a, b = Options(), Options()
    assert a.experimental_optimization is not b.experimental_optimization
    assert a.threading is not b.threading
    assert a.experimental_optimization == tf.data.experimental.OptimizationOptions()
    assert a.threading == tf.data.ThreadingOptions()


def test_OptionsTest_testMutatingOptionsRaiseValueError():
    first, second = Options(), Options()
    first.experimental_slack = True
    second.autotune.enabled = True
    options = D.range(0).with_options(first).map(lambda x: 2 * x).with_options(second).options()
    with pytest.raises(ValueError, match="with_options"):
        options.deterministic = True
    with pytest.raises(ValueError):
        options.autotune.enabled = False  # its groups too


def test_OptionsTest_testNestedDataset():
    ds = D.from_tensors(0)
    result = ds
    for _ in range(99):
        result = result.concatenate(ds)
    assert_produces(result, [0] * 100)


def test_OptionsTest_testThreadingOptionsBackwardCompatibility():
    options = Options()
    options.threading.max_intra_op_parallelism = 20
    assert options.experimental_threading.max_intra_op_parallelism == 20
    options.experimental_threading.private_threadpool_size = 80
    assert options.threading.private_threadpool_size == 80


def test_OptionsTest_testName():
    assert_produces(D.from_tensors(42).with_options(Options(), name="options"), [42])
