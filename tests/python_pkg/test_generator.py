"""from_generator, as tf.data's: a new call per pass, values cast to output_signature."""

import numpy as np
import pytest

import npyflow as tfd


def test_each_pass_calls_the_generator_again_with_args():
    calls = []

    def gen(n, scale):
        calls.append((n, scale))
        for i in range(n):
            yield i * scale, np.full(2, i)

    ds = tfd.Dataset.from_generator(
        gen,
        args=(3, 10),
        output_signature=(tfd.TensorSpec((), np.float32), tfd.TensorSpec((2,), np.int64)),
    )
    first = list(ds)
    assert [float(a) for a, _ in first] == [0.0, 10.0, 20.0]
    assert first[1][0].dtype == np.float32  # cast to the declared dtype
    assert list(ds)[2][1].tolist() == [2, 2]
    assert calls == [(3, 10), (3, 10)]


def test_yielded_arrays_are_copied_so_a_reused_buffer_is_safe():
    buf = np.zeros(3)

    def gen():
        for i in range(3):
            buf[:] = i
            yield buf

    ds = tfd.Dataset.from_generator(gen, output_signature=tfd.TensorSpec((3,), np.float64))
    assert [b.tolist() for b in ds.batch(3)] == [[[0, 0, 0], [1, 1, 1], [2, 2, 2]]]


def test_dict_signatures_and_unknown_dimensions():
    def gen():
        yield {"tokens": [1, 2, 3], "label": 0}
        yield {"tokens": [4], "label": 1}

    sig = {"tokens": tfd.TensorSpec((None,), np.int32), "label": tfd.TensorSpec((), np.int64)}
    ds = tfd.Dataset.from_generator(gen, output_signature=sig)
    assert ds.element_spec == sig
    out = list(ds.padded_batch(2))
    assert out[0]["tokens"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert out[0]["label"].dtype == np.int64


def test_deprecated_output_types_and_shapes():
    with pytest.warns(DeprecationWarning):
        ds = tfd.Dataset.from_generator(lambda: iter([[1, 2]]), output_types=np.int64, output_shapes=(2,))
    assert ds.element_spec == tfd.TensorSpec((2,), np.int64)
    with pytest.raises(TypeError):
        tfd.Dataset.from_generator(lambda: iter([]))
    with pytest.raises(TypeError):
        tfd.Dataset.from_generator(3, output_signature=tfd.TensorSpec(()))


def test_string_elements():
    ds = tfd.Dataset.from_generator(lambda: iter(["a", "bc"]), output_signature=tfd.TensorSpec((), "S2"))
    assert list(ds) == [b"a", b"bc"]
    # A string spec without a width (tf.string, np.bytes_): strings of any width, each
    # element at its own.
    anywidth = tfd.Dataset.from_generator(lambda: iter(["a", "bcd"]), output_signature=tfd.TensorSpec((), np.bytes_))
    assert list(anywidth) == [b"a", b"bcd"]
    assert [b.dtype for b in anywidth.batch(1)] == [np.dtype("S1"), np.dtype("S3")]
