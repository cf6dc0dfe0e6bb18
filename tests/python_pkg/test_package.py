"""The package's public face: the names it exports, where its classes say they live, and
that the tf.data namespace holds the same objects."""

import pickle

import numpy as np

import npyflow as tfd


def test_every_exported_name_is_there_and_the_tf_data_namespace_shares_them():
    for name in tfd.__all__:
        assert hasattr(tfd, name), name
    # tf.data's own names (tf has no tf.Options) are only there
    only_in_data = {"Options", "ThreadingOptions", "experimental"}
    for name in tfd.data.__all__:
        assert hasattr(tfd.data, name), name
        if name not in only_in_data:
            assert getattr(tfd.data, name) is getattr(tfd, name), name
    for name in tfd.data.experimental.__all__:
        assert hasattr(tfd.data.experimental, name), name


def test_public_classes_live_in_npyflow_and_specs_pickle_by_that_name():
    for cls in (tfd.Dataset, tfd.TensorSpec, tfd.DatasetSpec):
        assert cls.__module__ == "npyflow"
        assert getattr(tfd, cls.__name__) is cls
    spec = tfd.DatasetSpec((tfd.TensorSpec((2, None), np.int32, name="x"), tfd.TensorSpec(None)))
    data = pickle.dumps(spec)
    assert b"npyflow._" not in data
    assert pickle.loads(data) == spec
