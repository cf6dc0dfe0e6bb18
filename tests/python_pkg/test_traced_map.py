"""Traced maps: NumPy-written functions run as native op graphs give exactly (dtype, shape,
bits) what calling them per element gives, and functions the graph cannot run fall back to
the per-element call.

Every case is checked three ways: the traced map against the untraced one
(``trace=False``), both against the function applied to each element by a plain Python loop
(the independent expectation), and the stage's name says whether it was traced."""

import warnings

import numpy as np
import pytest

import npyflow as tf
from npyflow import TensorSpec

RNG = np.random.default_rng(7)

U8 = RNG.integers(0, 256, size=(6, 4, 5, 3), dtype=np.uint8)
U8[0, 0, 0] = [0, 255, 128]
I8 = RNG.integers(-128, 128, size=(6, 7), dtype=np.int8)
I8[0, :4] = [-128, 127, -1, 0]
I32A = RNG.integers(-50, 50, size=(6, 8), dtype=np.int32)
I32B = RNG.integers(-4, 4, size=(6, 8), dtype=np.int32)
I32A[0, :3] = [np.iinfo(np.int32).min, 7, -7]
I32B[0, :3] = [-1, 0, 2]
I16 = RNG.integers(-400, 400, size=(6, 5), dtype=np.int16)
U16 = RNG.integers(0, 65536, size=(6, 5), dtype=np.uint16)
I64 = RNG.integers(-(2**62), 2**62, size=(6, 4), dtype=np.int64)
U64 = RNG.integers(0, 2**64 - 1, size=(6, 4), dtype=np.uint64)
F32 = RNG.standard_normal((6, 9)).astype(np.float32) * 3
F32[0, :8] = [np.nan, np.inf, -np.inf, -0.0, 0.0, 2.5, -2.5, 1e-42]
F32B = RNG.standard_normal((6, 9)).astype(np.float32)
F32B[0, :8] = [1.0, np.nan, -0.0, 0.0, -0.0, 0.0, np.inf, -3.0]
F64 = RNG.standard_normal((6, 9)) * 100
F64[0, :6] = [np.nan, np.inf, -0.0, 0.5, 1.5, -2.5]
B = RNG.random((6, 5)) > 0.5
CLASS = RNG.integers(0, 10, size=6).astype(np.int64)

SOURCES = {
    "u8": U8, "i8": I8, "i32": (I32A, I32B), "i16": I16, "u16": U16, "i64": I64, "u64": U64,
    "f32": F32, "f32pair": (F32, F32B), "f64": F64, "bool": B, "img": (U8, CLASS),
    "dict": {"x": F32, "y": I16[:, :3].astype(np.int16)},
}

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)

# (name, source, function). Each must trace.
TRACEABLE = [
    ("seed_cast_scale", "u8", lambda x: x.astype(np.float32) / 255.0),
    ("w4_flip", "u8", lambda x: (x[:, ::-1, :].astype(np.float32) + 8.0) / 255.0),
    ("pair_keeps_label", "img", lambda x, y: (x.astype(np.float32) / 255.0, y)),
    ("uint8_wraps_add", "u8", lambda x: x + 1),
    ("uint8_wraps_sub", "u8", lambda x: x - 200),
    ("int8_wraps_mul", "i8", lambda x: x * 3),
    ("int16_wraps_python_int", "u8", lambda x: x.astype(np.int16) * 300 + 30000),
    ("int8_floor_div_mod", "i8", lambda x: (x // 3, x % 3, x // -3, x % -3)),
    ("int_div_by_zero_and_min", "i32", lambda a, b: (a // b, a % b)),
    ("int_true_divide", "i32", lambda a, b: a / b),
    ("float_floor_div_mod", "f32pair", lambda a, b: (a // b, a % b)),
    ("float_div_by_zero", "f32", lambda a: (a / 0.0, a // 0.0, a % 0.0)),
    ("float_mod_negative", "f64", lambda a: (a % -2.5, a // -2.5, np.remainder(a, 7))),
    ("maximum_nan_zeros", "f32pair", lambda a, b: (np.maximum(a, b), np.minimum(a, b))),
    ("maximum_scalar", "f32", lambda a: np.maximum(a, 0.0)),
    ("clip_nan", "f32", lambda a: np.clip(a, -1, 1)),
    ("clip_method_uint8", "u8", lambda x: x.clip(10, 200)),
    ("where_leaky", "f32", lambda a: np.where(a > 0, a, 0.5 * a)),
    ("where_ints", "i16", lambda a: np.where(a % 2 == 0, a, -a)),
    ("negative_steps", "u8", lambda x: (x[::-1], x[1:-1:2], x[..., ::-2], x[::-2, 1::-1])),
    ("index_and_newaxis", "u8", lambda x: (x[0], x[-1, :, 1], x[None, :, 0], x[:, np.newaxis])),
    ("reshape_transpose", "u8", lambda x: (x.reshape(-1), x.reshape(4, -1), x.T, x.transpose(2, 0, 1))),
    ("flips", "u8", lambda x: (np.flip(x, axis=(0, 1)), np.fliplr(x), np.flipud(x), np.flip(x))),
    ("concat_stack", "u8", lambda x: (np.concatenate([x, x[::-1]], axis=0), np.stack([x, x * 2], axis=-1))),
    ("concat_promotes", "f32", lambda a: np.concatenate([a, a.astype(np.float64)])),
    ("max_min_uint8", "u8", lambda x: (x.max(axis=0), x.min(), x.max(axis=(0, 1), keepdims=True))),
    ("max_float_nan", "f32", lambda a: (a.max(), np.min(a, axis=0))),
    ("int_sums_promote", "i8", lambda x: (x.sum(axis=-1), x.sum(), np.prod(x, axis=0))),
    ("any_all", "f32", lambda a: (a.any(), (a > 0).all(axis=0), np.any(a < -1))),
    ("abs_int8_min", "i8", lambda x: (np.abs(x), -x, np.negative(x))),
    ("negative_uint8", "u8", lambda x: -x),
    ("sign_float", "f32", lambda a: (np.sign(a), np.abs(a), np.negative(a))),
    ("sqrt_square", "f32", lambda a: (np.sqrt(a), np.square(a))),
    ("square_int8", "i8", lambda x: np.square(x)),
    ("rounding", "f64", lambda a: (np.floor(a), np.ceil(a), np.trunc(a), np.rint(a), np.round(a))),
    ("powers", "f32", lambda a: (a ** 2, a ** -1, a ** 1)),
    ("power_int16_wraps", "i16", lambda x: x ** 2),
    ("nep50_uint8_float", "u8", lambda x: x + 1.5),
    ("nep50_float32_scalar", "f32", lambda a: (a * 2, a + 2.5, 3 - a, a / 7)),
    ("nep50_strong_numpy_scalar", "i8", lambda x: (x + np.int64(1), x * np.float32(0.5))),
    ("nep50_float32_with_float64", "f32", lambda a: a + np.float64(1)),
    ("nep50_int32_float", "i32", lambda a, b: (a * 2.0, a + b.astype(np.int64))),
    ("nep50_array_constant", "u8", lambda x: x + np.array(1000, np.int16)),
    ("bool_arithmetic", "bool", lambda b: (b + b, b * True, b & False, ~b, b ^ True)),
    ("bitwise", "u8", lambda x: (x & 0x0F, x | 0x80, x ^ 255, ~x)),
    ("logical", "f32pair", lambda a, b: (np.logical_and(a > 0, b < 0), np.logical_not(a), np.logical_or(a, b))),
    ("nan_tests", "f32", lambda a: (np.isnan(a), np.isinf(a), np.isfinite(a), a == a, a != a)),
    ("comparisons", "i32", lambda a, b: (a < b, a <= 3, a > -2, a >= b, a == 7)),
    ("dict_in_out", "dict", lambda d: {"a": d["x"] * 2, "b": d["y"] + 1, "c": (d["x"][0], d["y"])}),
    ("per_channel_normalize", "u8", lambda x: (x.astype(np.float32) / 255.0 - MEAN) / STD),
    ("broadcast_row", "u8", lambda x: x + np.arange(3, dtype=np.uint8)),
    ("broadcast_column", "f32", lambda a: a[:, None] * a[None, :]),
    ("casts_wide", "u64", lambda x: (x.astype(np.float32), x.astype(np.float64), x.astype(np.int8))),
    ("casts_int64_float32", "i64", lambda x: (x.astype(np.float32), x.astype(np.uint16))),
    ("casts_bool", "f32", lambda a: (a.astype(bool), a.astype(bool).astype(np.int32))),
    ("float_to_int_in_range", "f64", lambda a: np.clip(a, -1000, 1000).astype(np.int16)),
    ("float_to_int_undefined_falls_back_per_element", "f32", lambda a: a.astype(np.int32)),
    ("float_to_uint8_negative", "f32", lambda a: a.astype(np.uint8)),
    ("expand_squeeze", "u8", lambda x: (np.expand_dims(x, 0), np.squeeze(x[:1]), x[:1].squeeze(0))),
    ("swap_move", "u8", lambda x: (np.swapaxes(x, 0, 2), np.moveaxis(x, -1, 0), x.swapaxes(1, 2))),
    ("ravel_flatten_copy", "u16", lambda x: (x.ravel(), x.flatten(), x.copy(), np.copy(x))),
    ("full_like", "f32", lambda a: (np.zeros_like(a) + a, np.ones_like(a, dtype=np.int8))),
    ("iterate_rows", "i16", lambda x: tuple(r * 2 for r in x)),
    ("float64_chain", "f64", lambda a: ((a - 1.5) * 3.25 / -7.0 + 0.1) // 0.3),
    ("tf_names", "u8", lambda x: (
        tf.cast(x, tf.float32), tf.reverse(x, [0]), tf.image.flip_left_right(x),
        tf.clip_by_value(x, 3, 100), tf.maximum(x, 50), tf.reshape(x, [-1]),
        tf.transpose(x, [2, 0, 1]), tf.concat([x, x], 0), tf.stack([x, x]),
        tf.expand_dims(x, 0), tf.reduce_max(x, axis=1), tf.where(x > 100, x, 0))),
    ("tf_math", "f32", lambda a: (tf.abs(a), tf.sqrt(tf.abs(a)), tf.math.equal(a, 0.0), tf.minimum(a, 1.0))),
]


def _same(a, b, where):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} != {b.dtype}"
    assert a.shape == b.shape, f"{where}: shape {a.shape} != {b.shape}"
    assert a.tobytes() == b.tobytes(), f"{where}: bits differ\n{a}\n{b}"


def _flat(e):
    if isinstance(e, dict):
        return [v for k in sorted(e) for v in _flat(e[k])]
    if isinstance(e, (tuple, list)):
        return [v for x in e for v in _flat(x)]
    return [e]


def _rows(source):
    data = SOURCES[source]
    if isinstance(data, dict):
        n = len(next(iter(data.values())))
        return [{k: v[i] for k, v in data.items()} for i in range(n)]
    if isinstance(data, tuple):
        return [tuple(v[i] for v in data) for i in range(len(data[0]))]
    return list(data)


def _call(f, row):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return f(*row) if isinstance(row, tuple) else f(row)


def _check(name, source, f, traced_expected):
    ds = tf.data.Dataset.from_tensor_slices(SOURCES[source])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        traced = ds.map(f)
        plain = ds.map(f, trace=False)
        got = list(traced.as_numpy_iterator())
        want = list(plain.as_numpy_iterator())
    assert ("TracedMap" in repr(traced)) == traced_expected, repr(traced)
    assert "TracedMap" not in repr(plain)
    # The untraced spec comes from the first element, with unknown dimensions.
    for t, p in zip(_flat(traced.element_spec), _flat(plain.element_spec)):
        assert t.dtype == p.dtype and len(t.shape) == len(p.shape)
        assert p.is_compatible_with(t)
    assert len(got) == len(want) == len(_rows(source))
    for i, (g, w, row) in enumerate(zip(got, want, _rows(source))):
        ref = _flat(_call(f, row))
        assert len(_flat(g)) == len(_flat(w)) == len(ref)
        for k, (a, b, r) in enumerate(zip(_flat(g), _flat(w), ref)):
            _same(a, b, f"{name}: element {i} part {k}, traced vs untraced")
            _same(a, np.asarray(r), f"{name}: element {i} part {k}, traced vs the NumPy loop")


@pytest.mark.parametrize("name,source,f", TRACEABLE, ids=[c[0] for c in TRACEABLE])
def test_traced_maps_equal_the_per_element_call(name, source, f):
    _check(name, source, f, traced_expected=True)


def test_there_are_at_least_forty_traced_functions():
    assert len(TRACEABLE) >= 40


def _branches(a):
    return a if a.sum() > 0 else -a


def _loops_on_values(x):
    out = x
    while out.max() > 10:
        out = out // 2
    return out


def _writes_in_place(a):
    b = a * 1
    b[0] = 5
    return b


GEN = np.random.default_rng(3)

UNTRACEABLE = [
    ("exp_is_numpys_own_simd", "f32", lambda a: np.exp(a)),
    ("log_tanh", "f64", lambda a: (np.log(np.abs(a) + 1), np.tanh(a))),
    ("float_sum_pairwise", "f32", lambda a: a.sum()),
    ("float_mean", "f64", lambda a: a.mean(axis=0)),
    ("branching_on_values", "i16", _branches),
    ("while_on_values", "u8", _loops_on_values),
    ("in_place_write", "f32", _writes_in_place),
    ("in_place_operator", "f32", lambda a: (lambda b: b.__iadd__(1))(a * 1)),
    ("numpy_random_global", "u8", lambda a: a + np.random.rand()),
    ("numpy_random_generator", "u8", lambda a: a + GEN.standard_normal(a.shape)),
    ("advanced_indexing", "u8", lambda x: x[[0, 2]]),
    ("boolean_mask", "f32", lambda a: a[a > 0]),
    ("python_int_of_value", "i16", lambda x: np.full(3, int(x[0]))),
    ("tolist", "i16", lambda x: np.array(x.tolist()) * 2),
    ("unknown_function", "f32", lambda a: np.cumsum(a)),
    ("comparison_out_of_range", "u8", lambda x: x < 1000),
    ("float16", "f32", lambda a: a.astype(np.float16)),
    ("returns_constant", "u8", lambda x: (x, np.int64(5))),
    ("power_three", "f32", lambda a: a ** 3),
    ("integer_sqrt_is_float16", "i8", lambda x: np.sqrt(x)),
]


@pytest.mark.parametrize("name,source,f", UNTRACEABLE, ids=[c[0] for c in UNTRACEABLE])
def test_untraceable_functions_fall_back_to_the_per_element_call(name, source, f):
    if name.startswith("numpy_random"):
        # Random draws differ per call: check the fallback and that each element was drawn
        # anew (no value kept from a trace), not equality.
        ds = tf.data.Dataset.from_tensor_slices(SOURCES[source]).map(f)
        assert "TracedMap" not in repr(ds)
        a, b = list(ds.take(2).as_numpy_iterator())
        assert not np.array_equal(a - SOURCES[source][0], b - SOURCES[source][1])
        return
    _check(name, source, f, traced_expected=False)


def test_trace_false_and_side_effects_run_once_at_trace_time():
    calls = []

    def f(x):
        calls.append(x)
        return x * 2

    ds = tf.data.Dataset.range(5).map(f)
    assert "TracedMap" in repr(ds) and len(calls) == 1  # the trace, on a traced value
    assert not isinstance(calls[0], np.ndarray)
    assert list(ds.as_numpy_iterator()) == [0, 2, 4, 6, 8] and len(calls) == 1
    calls.clear()
    plain = tf.data.Dataset.range(5).map(f, trace=False)
    assert "TracedMap" not in repr(plain)
    # The output spec from the first real element (no placeholders), then one call each.
    assert [int(c) for c in calls] == [0]
    assert list(plain.as_numpy_iterator()) == [0, 2, 4, 6, 8]
    assert [int(c) for c in calls] == [0, 0, 1, 2, 3, 4]


def test_a_captured_counter_is_not_advanced_before_the_first_element():
    """tf.data's test (a stateful counter in map): nothing runs before iteration. An
    untraced function with its output_signature is not called when the dataset is made; a
    traced one only once, on traced values, while tracing (its Python side effects, as in
    tf.data)."""
    counter = np.zeros(1, np.int64)

    def count(x):
        counter[0] += 1
        return x

    sig = TensorSpec((), np.int64)
    ds = tf.data.Dataset.range(4).map(count, output_signature=sig, trace=False)
    assert counter[0] == 0
    it = iter(ds)
    assert counter[0] == 0
    next(it)
    assert counter[0] == 1
    list(it)
    assert counter[0] == 4
    # A function that cannot be traced and reads its element before counting: the trace
    # stops before the count, so it too runs only on real elements.
    counter[0] = 0

    def count_after_branch(x):
        if x < 0:
            return x
        counter[0] += 1
        return x

    ds = tf.data.Dataset.range(4).map(count_after_branch, output_signature=sig)
    assert "TracedMap" not in repr(ds) and counter[0] == 0
    assert [int(v) for v in ds] == [0, 1, 2, 3] and counter[0] == 4


def test_traced_filters_equal_untraced_ones():
    ds = tf.data.Dataset.from_tensor_slices((I16[:, 0], CLASS))
    for pred in (lambda x, y: x % 3 == 0, lambda x, y: y > 4, lambda x, y: (x > 0) & (y < 8)):
        got = list(ds.filter(pred).as_numpy_iterator())
        want = list(ds.filter(pred, trace=False).as_numpy_iterator())
        ref = [(x, y) for x, y in zip(I16[:, 0], CLASS) if pred(x, y)]
        assert [(int(a), int(b)) for a, b in got] == [(int(a), int(b)) for a, b in want]
        assert [(int(a), int(b)) for a, b in got] == [(int(a), int(b)) for a, b in ref]


def test_traced_maps_fuse_with_batch_and_parallel_calls():
    x = RNG.integers(0, 256, size=(50, 8, 8, 3), dtype=np.uint8)
    y = np.arange(50)
    f = lambda a, b: ((a[:, ::-1, :].astype(np.float32) + 8.0) / 255.0, b * 2)
    ref = [(f(a, b)) for a, b in zip(x, y)]
    for parallel in (None, 2, tf.AUTOTUNE):
        for drop in (False, True):
            ds = tf.data.Dataset.from_tensor_slices((x, y)).map(f, num_parallel_calls=parallel).batch(16, drop_remainder=drop)
            batches = list(ds.as_numpy_iterator())
            n = 48 if drop else 50
            _same(np.concatenate([b[0] for b in batches]), np.stack([r[0] for r in ref[:n]]), "images")
            _same(np.concatenate([b[1] for b in batches]), np.stack([r[1] for r in ref[:n]]), "labels")
    # After a shuffle (a stream, not random access) and after a batch (unknown first axis).
    shuffled = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(10, seed=1).map(f).batch(7)
    plain = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(10, seed=1).map(f, trace=False).batch(7)
    for a, b in zip(shuffled.as_numpy_iterator(), plain.as_numpy_iterator()):
        _same(a[0], b[0], "shuffled images")
    batched = tf.data.Dataset.from_tensor_slices(x).batch(16).map(lambda a: a[:, ::-1] * 2)
    assert "TracedMap" in repr(batched)
    for i, b in enumerate(batched.as_numpy_iterator()):
        _same(b, x[i * 16:(i + 1) * 16, ::-1] * 2, "batched then mapped")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5])
def test_batched_chains_over_flipped_rows_equal_numpy(dtype, channels):
    # A cast and arithmetic with constants over an image flipped along an axis, batched: the
    # batch reads each row's runs in reverse straight from the source. Against NumPy's
    # values, bit for bit, with the images' map parallelized (the default) and not.
    if np.dtype(dtype).kind == "f":
        x = (RNG.standard_normal((37, 3, 6, channels)) * 300).astype(dtype)
        x[0, 0, :3, 0] = [np.nan, np.inf, -0.0]
    else:
        info = np.iinfo(dtype)
        x = RNG.integers(info.min, int(info.max) + 1, size=(37, 3, 6, channels), dtype=dtype)
    fs = [
        lambda a: (a[:, ::-1, :].astype(np.float32) + 8.0) / 255.0,
        lambda a: 3.0 - a[::-1].astype(np.float64) * 0.1,
        lambda a: (2.0 / a[:, ::-1].astype(np.float32)) - 1.5,
    ]
    off = tf.data.Options()
    off.experimental_optimization.map_parallelization = False
    for k, f in enumerate(fs):
        with np.errstate(all="ignore"):  # 2 / 0 is part of the case
            want = np.stack([f(im) for im in x])
        for options in (None, off):
            mapped = tf.data.Dataset.from_tensor_slices(x).map(f)
            assert "TracedMap" in repr(mapped)
            ds = mapped.batch(16)
            if options is not None:
                ds = ds.with_options(options)
            with np.errstate(all="ignore"):
                got = np.concatenate(list(ds.as_numpy_iterator()))
            _same(got, want, f"function {k}, {np.dtype(dtype).name}, {channels} channels")


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_batched_chains_over_flips_of_any_axis_equal_numpy(dtype):
    # Flips of rows, of columns, of one-channel images and of everything, over images
    # whose rows are longer than the blocks the chain computes: each run is read where it
    # lies, forward or backward.
    x = (RNG.standard_normal((21, 32, 32, 3)) * 100).astype(dtype)
    gray = (RNG.standard_normal((21, 28, 28)) * 100).astype(dtype)
    cases = [
        (x, lambda a: a[::-1].astype(np.float32) * 0.5 - 3.0),
        (x, lambda a: (a[:, ::-1].astype(np.float32) + 8.0) / 255.0),
        (x, lambda a: 1.0 / a[::-1, ::-1, ::-1].astype(np.float64)),
        (gray, lambda a: (a[:, ::-1].astype(np.float32) + 8.0) / 255.0),
        (gray, lambda a: a[::-1].astype(np.float64) / 7.0),
    ]
    for k, (data, f) in enumerate(cases):
        with np.errstate(all="ignore"):  # 1 / 0 is part of the case
            want = np.stack([f(im) for im in data])
        with np.errstate(all="ignore"):
            got = np.concatenate(list(tf.data.Dataset.from_tensor_slices(data).map(f).batch(8).as_numpy_iterator()))
        _same(got, want, f"case {k}, {np.dtype(dtype).name}")


def test_map_parallelization_is_honoured_and_changes_no_value():
    x = RNG.integers(0, 256, size=(40, 4, 5, 3), dtype=np.uint8)
    f = lambda a: (a[:, ::-1, :].astype(np.float32) + 8.0) / 255.0
    want = np.stack([f(im) for im in x])
    off = tf.data.Options()
    off.experimental_optimization.map_parallelization = False
    assert off.ignored_options() == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an honoured option: no warning
        for options in (None, off):
            ds = tf.data.Dataset.from_tensor_slices(x).map(f).batch(6).prefetch(tf.AUTOTUNE)
            if options is not None:
                ds = ds.with_options(options)
                assert ds.options().experimental_optimization.map_parallelization is False
            _same(np.concatenate(list(ds.as_numpy_iterator())), want, f"options {options}")


def test_undefined_casts_run_the_function_for_those_elements_only_and_in_batches():
    a = np.array([[1.5, -2.5], [np.nan, 3.0], [1e20, 0.0], [7.9, -7.9]], np.float32)
    f = lambda v: v.astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices(a).map(f)
    assert "TracedMap" in repr(ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = [f(r) for r in a]
        for got, w in zip(ds.as_numpy_iterator(), want):
            _same(got, w, "per element")
        got = np.concatenate(list(ds.batch(3).as_numpy_iterator()))
    _same(got, np.stack(want), "batched")


@pytest.mark.parametrize("seed", range(12))
def test_random_shapes_and_dtypes(seed):
    """Property check: random elementwise expressions over random shapes and dtypes give the
    NumPy loop's bits traced and untraced."""
    rng = np.random.default_rng(100 + seed)
    dtypes = [np.uint8, np.int8, np.int16, np.uint16, np.int32, np.int64, np.uint32, np.float32, np.float64]
    dt = np.dtype(dtypes[rng.integers(len(dtypes))])
    shape = tuple(int(d) for d in rng.integers(1, 5, size=rng.integers(0, 4)))
    if dt.kind == "f":
        data = (rng.standard_normal((5,) + shape) * 50).astype(dt)
        data.flat[:: max(1, data.size // 3)] = np.nan
    else:
        info = np.iinfo(dt)
        data = rng.integers(info.min, info.max, size=(5,) + shape, dtype=dt, endpoint=True)
    scalars = [2, 3, -1, 0.5, 7.25, np.float32(1.5), np.int16(-3)]
    ops = [
        lambda a, s: a + s, lambda a, s: a * s, lambda a, s: a - s, lambda a, s: a // s,
        lambda a, s: a % s, lambda a, s: np.maximum(a, s), lambda a, s: a / s,
        lambda a, s: np.where(a > s, a, s), lambda a, s: a[::-1] if a.ndim else a,
    ]
    picks = [(ops[rng.integers(len(ops))], scalars[rng.integers(len(scalars))]) for _ in range(3)]

    def f(a):
        out = a
        for op, s in picks:
            out = op(out, s)
        return out

    ds = tf.data.Dataset.from_tensor_slices(data)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            want = [f(r) for r in data]
        except Exception:
            pytest.skip("NumPy itself refuses this combination")
        traced = ds.map(f)
        got = list(traced.as_numpy_iterator())
        plain = list(ds.map(f, trace=False).as_numpy_iterator())
    for g, p, w in zip(got, plain, want):
        _same(g, w, f"{dt} {shape} traced")
        _same(p, w, f"{dt} {shape} untraced")


def test_output_signature_and_trace_agree_or_fall_back():
    sig = TensorSpec((4, 5, 3), np.float32)
    ds = tf.data.Dataset.from_tensor_slices(U8).map(lambda x: x.astype(np.float32), output_signature=sig)
    assert "TracedMap" in repr(ds)
    # A signature the trace disagrees with (a dtype): the function runs per element, where
    # the signature is checked as before.
    other = tf.data.Dataset.from_tensor_slices(U8).map(
        lambda x: x.astype(np.float32), output_signature=TensorSpec((4, 5, 3), np.float64)
    )
    assert "TracedMap" not in repr(other)


def test_untraced_functions_under_autotune_give_the_serial_output():
    """AUTOTUNE on an untraced Python function measures how many threads may call it at
    once (one, unless more were clearly faster): the output is the serial one either way."""
    x = RNG.integers(0, 256, size=(300, 4, 4, 3), dtype=np.uint8)

    def f(a):
        if a[0, 0, 0] > 255:  # a branch on a value: not traced
            return a.astype(np.float32)
        return (a[:, ::-1, :].astype(np.float32) + 8.0) / 255.0

    ds = tf.data.Dataset.from_tensor_slices(x)
    auto = ds.map(f, num_parallel_calls=tf.AUTOTUNE)
    assert "TracedMap" not in repr(auto)
    got = np.stack(list(auto.as_numpy_iterator()))
    _same(got, np.stack([f(a) for a in x]), "AUTOTUNE")
    _same(np.concatenate(list(auto.batch(64).as_numpy_iterator())), got, "AUTOTUNE, batched")


@pytest.mark.parametrize("values", [np.array([b"ab", b"cde"]), np.array(["ab", "c\u00e9"])])
def test_a_scalar_string_reaches_functions_as_iteration_yields_it(values):
    ds = tf.data.Dataset.from_tensor_slices(values)
    yielded = next(iter(ds))
    seen, plain = [], []

    def f(s):
        seen.append(type(s))
        plain.append(s.numpy())
        text = s.decode() if isinstance(s, bytes) else s
        return s, np.int64(len(text))

    # Returned unchanged, a string keeps the element's width (each output's dtype is the
    # input's), whatever its own length; the spec inferred from the function's output has
    # strings of any width.
    out = list(ds.map(f).as_numpy_iterator())
    assert ds.map(f).element_spec[0].dtype == np.dtype(values.dtype.kind)
    assert [b[0].dtype for b in ds.map(f).batch(1)] == [values.dtype] * len(values)
    assert seen and all(t is type(yielded) for t in seen)
    assert isinstance(yielded, (bytes, str)) and hasattr(yielded, "numpy")
    assert [o[0] for o in out] == list(values)
    assert [int(o[1]) for o in out] == [len(v) for v in values.tolist()]
    assert set(plain) == set(values) and all(type(p) is type(values[0]) for p in plain)
    # A filter, and a batch of strings: a 1-d array stays an array.
    kept = ds.filter(lambda s: (s.decode() if isinstance(s, bytes) else s).startswith("a"))
    assert list(kept.as_numpy_iterator()) == [values[0]]
    batched = []
    list(ds.batch(2).map(lambda b: batched.append(type(b)) or b).as_numpy_iterator())
    assert batched and all(issubclass(t, np.ndarray) for t in batched)


def test_numpy_function_in_a_map_gets_what_tensorflow_gives():
    # Recorded from TensorFlow 2.21: inside a map, numpy_function's function got
    # [('bytes', None), ('float32', ()), ('ndarray', (2,))] for these three components.
    ds = tf.data.Dataset.from_tensor_slices((["a.npy", "bb.npy"], np.float32([1.0, 2.0]), np.int32([[1, 2], [3, 4]])))
    seen = []

    def show(p, f, v):
        seen.append((type(p).__name__, getattr(p, "shape", None), type(f).__name__, f.shape, type(v).__name__, v.shape))
        return np.int64(len(p.decode()))

    got = list(ds.map(lambda p, f, v: tf.numpy_function(show, [p, f, v], tf.int64)).as_numpy_iterator())
    assert got == [5, 6]
    assert set(seen) == {("bytes", None, "float32", (), "ndarray", (2,))}


def test_flat_map_and_interleave_call_their_function_on_real_elements_only(tmp_path):
    """A function that opens the file an element names builds (it used to be called on a
    placeholder, an empty name, when the dataset was made); the structure is that of the
    dataset made for the first element."""
    paths = []
    for i, n in enumerate([3, 1, 2]):
        path = tmp_path / f"part-{i}.npy"
        np.save(path, np.arange(n * 2, dtype=np.float32).reshape(n, 2) + 10 * i)
        paths.append(str(path).encode())
    seen = []

    def rows(path):
        seen.append(bytes(path))
        return tf.data.Dataset.from_tensor_slices(np.load(path.decode()))

    flat = tf.data.Dataset.from_tensor_slices(paths).flat_map(rows)
    assert seen == [paths[0]]  # the first element, to find the structure
    assert flat.element_spec == TensorSpec((2,), np.float32)
    want = np.concatenate([np.load(p.decode()) for p in paths])
    np.testing.assert_array_equal(np.stack(list(flat.as_numpy_iterator())), want)
    seen.clear()
    mixed = tf.data.Dataset.from_tensor_slices(paths).interleave(rows, cycle_length=2)
    assert seen == [paths[0]]
    assert sorted(map(tuple, mixed.as_numpy_iterator())) == sorted(map(tuple, want.tolist()))


def test_a_flat_map_dataset_of_another_structure_is_an_error_at_its_element():
    def parts(x):
        if int(x) < 2:
            return tf.data.Dataset.from_tensor_slices(np.arange(2, dtype=np.int64) + x)
        return tf.data.Dataset.from_tensor_slices(np.zeros(2, np.float32))

    it = iter(tf.data.Dataset.range(3).flat_map(parts))
    assert [int(next(it)) for _ in range(4)] == [0, 1, 1, 2]
    with pytest.raises(ValueError, match=r"float32.*not of the structure of the dataset made for the first element"):
        next(it)
