"""``import npyflow as tf`` against real TensorFlow: tf's names on NumPy values give what
TensorFlow 2.21 gave (recorded by tests/tf_names/make_golden.py into golden.npz), and the
seed's examples and everyday tf.data programs print what they printed under TensorFlow with
only the import line changed (stdout.json). TensorFlow is not needed to run these tests."""

import importlib.util
import json
import os
import pickle

import numpy as np
import pytest
from python_child import run_python

import npyflow
import npyflow as tf

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "tf_names")


def _cases_module():
    spec = importlib.util.spec_from_file_location("tf_names_cases", os.path.join(GOLDEN, "cases.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CASES_MOD = _cases_module()
GOLDEN_ARRAYS = dict(np.load(os.path.join(GOLDEN, "golden.npz")))
with open(os.path.join(GOLDEN, "stdout.json")) as _f:
    PROGRAMS = json.load(_f)["programs"]


def _expected(case_id):
    if case_id in GOLDEN_ARRAYS:
        return GOLDEN_ARRAYS[case_id]
    parts, i = [], 0
    while f"{case_id}.{i}" in GOLDEN_ARRAYS:
        parts.append(GOLDEN_ARRAYS[f"{case_id}.{i}"])
        i += 1
    assert parts, f"{case_id} is not recorded: rerun tests/tf_names/make_golden.py"
    return parts


def _check(case_id, got, want):
    assert hasattr(got, "numpy"), f"{case_id}: {type(got).__name__} has no .numpy()"
    g = np.asarray(got.numpy())
    assert g.dtype == want.dtype, f"{case_id}: dtype {g.dtype}, TensorFlow's {want.dtype}"
    assert g.shape == want.shape, f"{case_id}: shape {g.shape}, TensorFlow's {want.shape}"
    if case_id in CASES_MOD.TOL:
        rtol, atol = CASES_MOD.TOL[case_id]
        np.testing.assert_allclose(g, want, rtol=rtol, atol=atol, err_msg=case_id)
    else:
        # bit for bit (NaNs where TF has them, signed zeros included)
        assert g.tobytes() == want.tobytes(), f"{case_id}:\n{g}\nTensorFlow:\n{want}"


@pytest.mark.parametrize("case_id,expr", CASES_MOD.CASES, ids=[c[0] for c in CASES_MOD.CASES])
def test_name_matches_tensorflow(case_id, expr):
    got = eval(expr, dict(CASES_MOD.inputs(), tf=npyflow))
    want = _expected(case_id)
    if isinstance(want, list):
        assert isinstance(got, (list, tuple)) and len(got) == len(want)
        for i, (g, w) in enumerate(zip(got, want)):
            _check(f"{case_id}.{i}", g, w)
    else:
        _check(case_id, got, want)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_prints_what_tensorflow_printed(name):
    code = PROGRAMS[name]["code"]
    assert code.count("import tensorflow as tf") == 1
    ours = code.replace("import tensorflow as tf", "import npyflow as tf")
    assert run_python(ours, timeout=120) == PROGRAMS[name]["stdout"]


def test_the_seed_examples_are_recorded():
    assert {"seed_example_1", "seed_example_2", "seed_example_3"} <= set(PROGRAMS)
    assert "element.numpy()" in PROGRAMS["seed_example_1"]["code"]
    assert "tf.cast(image, tf.float32)" in PROGRAMS["seed_example_3"]["code"]


# ---- names npyflow does not have ----------------------------------------------------


@pytest.mark.parametrize(
    "module,name,says",
    [
        (npyflow, "keras", "npyflow has no tf.keras; use "),
        (npyflow, "Variable", "npyflow has no tf.Variable; use a NumPy array"),
        (npyflow, "einsum", "npyflow has no tf.einsum; use np.einsum on the values instead"),
        (npyflow.image, "sobel_edges", "npyflow.image has no tf.image.sobel_edges; use "),
        (npyflow.math, "bessel_i0", "npyflow.math has no tf.math.bessel_i0; use "),
        (npyflow.random, "stateless_uniform", "npyflow.random has no tf.random.stateless_uniform; use "),
        (npyflow.data, "TFRecordDataset", "npyflow.data has no tf.data.TFRecordDataset; use Dataset.from_npy"),
    ],
)
def test_a_missing_name_says_so_and_what_to_use(module, name, says):
    with pytest.raises(AttributeError) as e:
        getattr(module, name)
    assert str(e.value).startswith(says)
    assert "instead" in str(e.value)
    assert not hasattr(module, name)


def test_dunder_lookups_are_plain_attribute_errors():
    assert not hasattr(npyflow, "__wrapped__")
    with pytest.raises(ImportError):
        from npyflow import keras  # noqa: F401


# ---- the values iteration yields ------------------------------------------------------


def test_elements_are_zero_copy_tensors_with_numpy():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    rows = list(tf.data.Dataset.from_tensor_slices(x))
    assert all(isinstance(r, np.ndarray) and isinstance(r, tf.Tensor) for r in rows)
    plain = rows[1].numpy()
    assert type(plain) is np.ndarray and np.shares_memory(plain, x) and np.shares_memory(rows[1], x)
    assert rows[1].shape == (3,) and rows[1].dtype == tf.float32
    assert not rows[1].flags.writeable
    # NumPy operations keep working (and keep .numpy())
    assert (rows[1] * 2).numpy().tolist() == [6.0, 8.0, 10.0]
    assert repr(rows[1]) == repr(x[1]) and str(rows[1]) == str(x[1])
    assert type(pickle.loads(pickle.dumps(rows[1]))) is np.ndarray


def test_threaded_and_mapped_passes_yield_tensors_too():
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    ds = (
        tf.data.Dataset.from_tensor_slices(x)
        .map(lambda r: (r * 2, tf.reduce_sum(r)), num_parallel_calls=tf.AUTOTUNE)
        .batch(3)
        .prefetch(tf.AUTOTUNE)
    )
    got = list(ds)
    assert len(got) == 4
    for rows, sums in got:
        assert type(rows) is tf.Tensor and type(sums) is tf.Tensor
        assert type(rows.numpy()) is np.ndarray and np.shares_memory(rows.numpy(), rows)
    np.testing.assert_array_equal(np.concatenate([r.numpy() for r, _ in got]), x * 2)
    np.testing.assert_array_equal(np.concatenate([s.numpy() for _, s in got]), x.sum(axis=1))
    # a fresh batch stays writable, as before
    assert got[0][0].flags.writeable and got[0][0].numpy().flags.writeable


def test_as_numpy_iterator_yields_plain_numpy():
    ds = tf.data.Dataset.from_tensor_slices((np.arange(6).reshape(3, 2), np.arange(3)))
    for a, s in ds.as_numpy_iterator():
        assert type(a) is np.ndarray and type(s) is np.int64


def test_scalars_print_hash_and_compare_as_numpy_scalars():
    ds = tf.data.Dataset.range(3)
    values = list(ds)
    assert values == [0, 1, 2] and {values[1]: "one"}[1] == "one"
    assert all(type(v.numpy()) is np.int64 for v in values)
    assert [repr(v) for v in values] == ["np.int64(0)", "np.int64(1)", "np.int64(2)"]
    assert pickle.loads(pickle.dumps(values[2])) == 2
    flags = list(tf.data.Dataset.from_tensor_slices(np.array([True, False])))
    assert [bool(f) for f in flags] == [True, False] and flags[0].numpy() is np.True_


def test_cardinality_and_reduce_answer_numpy():
    ds = tf.data.Dataset.range(7).batch(2)
    assert ds.cardinality().numpy() == 4 and type(ds.cardinality().numpy()) is np.int64
    assert len(ds) == 4 and type(len(ds)) is int
    assert tf.data.Dataset.range(3).repeat().cardinality() == tf.data.INFINITE_CARDINALITY
    total = tf.data.Dataset.range(5).reduce(np.int64(0), lambda s, x: s + x)
    assert total.numpy() == 10
    pair = tf.data.Dataset.range(3).reduce((np.int64(0), np.zeros(2)), lambda s, x: (s[0] + x, s[1] + 1))
    assert pair[0].numpy() == 3 and pair[1].numpy().tolist() == [3.0, 3.0]


def test_iterator_state_survives_the_wrapping():
    ds = tf.data.Dataset.range(5)
    it = iter(ds)
    next(it)
    state = it.get_state()
    assert int(next(it)) == 1
    it.set_state(state)
    assert [int(v) for v in it] == [1, 2, 3, 4]


def test_tensors_go_back_into_datasets_and_functions():
    x = tf.constant([[1, 2], [3, 4]])
    ds = tf.data.Dataset.from_tensor_slices(x).map(lambda r: tf.reduce_sum(r)).filter(lambda v: tf.greater(v, 3))
    assert [v.numpy() for v in ds] == [7]


def test_dtypes_are_numpy_dtypes():
    assert tf.float32 == np.float32 and tf.float32 == np.dtype("float32")
    assert tf.bool == np.bool_ and tf.string.kind == "S"
    # tf.string equals every bytes dtype (npyflow sizes them to the longest value)
    assert np.array([b"ab", b"c"]).dtype == tf.string and np.dtype("S7") == tf.string
    assert np.dtype("float32") != tf.string and tf.string != tf.float32
    assert tf.TensorSpec((), tf.string).dtype.kind == "S" and tf.as_dtype(np.bytes_) == tf.string
    assert tf.cast(np.array([b"x"]), tf.string).dtype == np.dtype("S1")
    assert tf.TensorSpec((None, 3), tf.int32).dtype == np.int32
    assert tf.AUTOTUNE == tf.data.AUTOTUNE


def test_random_ops_are_seeded_and_repeatable():
    tf.random.set_seed(5)
    a = tf.random.uniform([3], seed=1)
    b = tf.random.uniform([3], seed=1)
    tf.random.set_seed(5)
    assert tf.random.uniform([3], seed=1).numpy().tolist() == a.numpy().tolist()
    assert a.numpy().tolist() != b.numpy().tolist()  # a stream, as in TF
    assert a.dtype == tf.float32 and ((a >= 0) & (a < 1)).all()
    n = tf.random.normal([1000], mean=2.0, stddev=0.5, seed=3)
    assert n.dtype == tf.float32 and abs(float(n.mean()) - 2.0) < 0.1
    ints = tf.random.uniform([50], minval=3, maxval=6, dtype=tf.int32, seed=2)
    assert ints.dtype == tf.int32 and set(ints.tolist()) <= {3, 4, 5}
    with pytest.raises(ValueError):
        tf.random.uniform([2], dtype=tf.int64)


def test_random_image_ops():
    tf.random.set_seed(0)
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    seen = set()
    for _ in range(20):
        out = tf.image.random_flip_left_right(img, seed=1)
        assert out.numpy().tolist() in (img.tolist(), img[:, ::-1].tolist())
        seen.add(out.numpy().tobytes())
    assert len(seen) == 2
    crop = tf.image.random_crop(img, [2, 3, 3], seed=4)
    assert crop.shape == (2, 3, 3)
    found = any(
        np.array_equal(img[i : i + 2, j : j + 3], crop) for i in range(3) for j in range(3)
    )
    assert found
    bright = tf.image.random_brightness(np.full((2, 2, 1), 0.5, np.float32), 0.2, seed=3)
    assert bright.dtype == tf.float32 and 0.3 <= float(bright[0, 0, 0]) <= 0.7
    contrast = tf.image.random_contrast(img, 0.5, 1.5, seed=3)
    assert contrast.dtype == np.uint8 and contrast.shape == img.shape
    ud = tf.image.random_flip_up_down(np.stack([img] * 8), seed=9)
    assert all(np.array_equal(u, img) or np.array_equal(u, img[::-1]) for u in ud)


def test_no_tensorflow_in_the_package():
    pkg = os.path.dirname(npyflow.__file__)
    for root, _, files in os.walk(pkg):
        for f in files:
            if f.endswith(".py"):
                with open(os.path.join(root, f)) as fh:
                    assert "import tensorflow" not in fh.read(), f
