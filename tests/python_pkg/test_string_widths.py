"""Strings a function makes, of lengths that follow the data. npyflow's strings are NumPy's
fixed-width ``S``/``U`` arrays, tf.data's have no width: a spec inferred from a function's
output has strings of any width (``S0``), each element keeps its own, and a batch stacks
them at the widest, as ``np.stack`` does. Expected values recorded from TensorFlow 2.21."""

import numpy as np
import pytest

import npyflow as tf

D = tf.data.Dataset
NAMES = [b"a.npy", b"bb.npy", b"ccc.npy"]


def upper(p):
    return tf.numpy_function(lambda q: q.decode().upper().encode(), [p], tf.string)


def test_elements_batches_and_rebatches_as_tensorflow_gives_them():
    # Recorded from TensorFlow 2.21 over the same program (as_numpy_iterator, tolist):
    #   elements [b'A.NPY', b'BB.NPY', b'CCC.NPY']
    #   batch(2) [[b'A.NPY', b'BB.NPY'], [b'CCC.NPY']]
    #   batch(2).rebatch(3) [[b'A.NPY', b'BB.NPY', b'CCC.NPY']]
    #   map(reshape to [1]).padded_batch(2, padded_shapes=[2])
    #     [[[b'A.NPY', b''], [b'BB.NPY', b'']], [[b'CCC.NPY', b'']]]
    up = D.from_tensor_slices(NAMES).map(upper)
    assert up.element_spec == tf.TensorSpec((), np.dtype("S0"))
    assert up.element_spec.dtype == tf.string
    elements = list(up.as_numpy_iterator())
    assert elements == [b"A.NPY", b"BB.NPY", b"CCC.NPY"]
    # Each element at its own width (a batch of one shows it: a NumPy scalar is as long as
    # its value whatever its array's width).
    assert [b.dtype for b in up.batch(1)] == [np.dtype("S5"), np.dtype("S6"), np.dtype("S7")]
    batches = list(up.batch(2).as_numpy_iterator())
    assert [b.tolist() for b in batches] == [[b"A.NPY", b"BB.NPY"], [b"CCC.NPY"]]
    # As NumPy stacks them: the widest of each batch.
    np.testing.assert_array_equal(batches[0], np.stack([elements[0], elements[1]]))
    assert batches[0].dtype == np.stack([elements[0], elements[1]]).dtype == np.dtype("S6")
    assert [b.tolist() for b in up.batch(2).rebatch(3).as_numpy_iterator()] == [
        [b"A.NPY", b"BB.NPY", b"CCC.NPY"]
    ]
    padded = D.from_tensor_slices(NAMES).map(lambda p: tf.reshape(upper(p), [1])).padded_batch(2, padded_shapes=[2])
    assert [b.tolist() for b in padded.as_numpy_iterator()] == [
        [[b"A.NPY", b""], [b"BB.NPY", b""]],
        [[b"CCC.NPY", b""]],
    ]


def test_datasets_of_different_widths_concatenate():
    # TensorFlow 2.21: [b'x', b'yyyy'].
    cat = D.from_tensor_slices([b"x"]).concatenate(D.from_tensor_slices([b"yyyy"]))
    assert list(cat.as_numpy_iterator()) == [b"x", b"yyyy"]
    assert cat.element_spec.dtype == np.dtype("S0")
    assert [b.tolist() for b in cat.batch(2)] == [[b"x", b"yyyy"]]


def test_a_declared_width_widens_shorter_strings_and_refuses_longer_ones():
    wide = D.from_tensor_slices(NAMES).map(upper, output_signature=tf.TensorSpec((), "S8"))
    assert list(wide.as_numpy_iterator()) == [b"A.NPY", b"BB.NPY", b"CCC.NPY"]
    assert [b.dtype for b in wide.batch(1)] == [np.dtype("S8")] * 3
    narrow = D.from_tensor_slices(NAMES).map(upper, output_signature=tf.TensorSpec((), "S6"))
    it = iter(narrow)
    assert [next(it), next(it)] == [b"A.NPY", b"BB.NPY"]
    with pytest.raises(ValueError, match=r"element 2: .*\|S7.*does not fit the spec .*\|S6"):
        next(it)
    anywidth = D.from_tensor_slices(NAMES).map(upper, output_signature=tf.TensorSpec((), tf.string))
    assert list(anywidth.as_numpy_iterator()) == [b"A.NPY", b"BB.NPY", b"CCC.NPY"]


def test_unicode_strings_and_generators():
    words = D.from_tensor_slices(np.array(["a", "bb"])).map(lambda s: np.str_(str(s) + "é" * len(str(s))), trace=False)
    assert words.element_spec.dtype == np.dtype("U0")
    (batch,) = list(words.batch(2).as_numpy_iterator())
    assert batch.tolist() == ["aé", "bbéé"] and batch.dtype == np.dtype("U4")
    gen = D.from_generator(lambda: iter([b"a", b"bbb"]), output_signature=tf.TensorSpec((), tf.string))
    assert [b.tolist() for b in gen.batch(2)] == [[b"a", b"bbb"]]


def test_files_and_states_keep_each_width(tmp_path):
    up = D.from_tensor_slices(NAMES).map(upper)
    expected = [b"A.NPY", b"BB.NPY", b"CCC.NPY"]
    cached = up.cache(str(tmp_path / "cache"))
    assert list(cached.as_numpy_iterator()) == expected
    replayed = list(cached.as_numpy_iterator())
    assert replayed == expected
    assert [b.dtype.itemsize for b in cached.batch(1)] == [5, 6, 7]
    up.save(str(tmp_path / "saved"))
    loaded = D.load(str(tmp_path / "saved"))
    assert loaded.element_spec.dtype == np.dtype("S0")
    assert list(loaded.as_numpy_iterator()) == expected
    # A shuffle's buffer holds elements of three widths; its saved state restores them.
    shuffled = up.shuffle(3, seed=4)
    it = iter(shuffled)
    first = next(it)
    state = it.get_state()
    rest = [bytes(e) for e in it]
    again = iter(shuffled)
    again.set_state(state)
    assert [bytes(e) for e in again] == rest
    assert sorted([bytes(first), *rest]) == sorted(expected)
