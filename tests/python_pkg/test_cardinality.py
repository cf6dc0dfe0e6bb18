"""cardinality() and len() with tf.data's rules and messages."""

import numpy as np
import pytest

import npyflow as tfd


def test_known_counts():
    ds = tfd.Dataset.range(42)
    assert ds.cardinality() == 42 and len(ds) == 42
    assert len(ds.batch(5)) == 9 and len(ds.batch(5, drop_remainder=True)) == 8
    assert len(ds.take(3)) == 3 and len(ds.skip(40)) == 2 and len(ds.shard(4, 1)) == 11
    assert len(ds.map(lambda x: x)) == 42
    assert len(ds.repeat(2)) == 84
    assert len(tfd.Dataset.zip(ds, ds.take(7))) == 7
    assert len(tfd.Dataset.from_tensor_slices(np.zeros((9, 2)))) == 9
    assert len(tfd.Dataset.from_tensors(np.zeros((9, 2)))) == 1


def test_infinite_and_unknown():
    assert tfd.Dataset.range(3).repeat().cardinality() == tfd.INFINITE_CARDINALITY == -1
    assert tfd.Dataset.counter().cardinality() == tfd.INFINITE_CARDINALITY
    assert tfd.Dataset.range(3).filter(lambda x: x > 0).cardinality() == tfd.UNKNOWN_CARDINALITY == -2
    with pytest.raises(TypeError, match=r"^The dataset is infinite\.$"):
        len(tfd.Dataset.range(3).repeat())
    with pytest.raises(TypeError, match=r"^The dataset length is unknown\.$"):
        len(tfd.Dataset.range(3).filter(lambda x: x > 0))
    gen = tfd.Dataset.from_generator(lambda: iter([1]), output_signature=tfd.TensorSpec((), np.int32))
    assert gen.cardinality() == tfd.UNKNOWN_CARDINALITY
    # A dataset is true even when its length is not known.
    assert bool(tfd.Dataset.range(3).repeat())
    assert bool(tfd.Dataset.range(0))


def test_counts_agree_with_iteration():
    for ds in (
        tfd.Dataset.range(10).batch(3),
        tfd.Dataset.range(10).shard(3, 2),
        tfd.Dataset.range(10).skip(3).take(4),
        tfd.Dataset.range(10).window(4, shift=3),
        tfd.Dataset.range(10).batch(4).rebatch(3),
    ):
        n = ds.cardinality()
        if n >= 0:
            assert n == len(list(ds))
