"""Elements keep their structure (tuples, dicts, nesting), and functions get them as tf.data
passes them."""

import numpy as np
import pytest

import npyflow as tfd
from npyflow import TensorSpec


def test_tuples_and_dicts_are_kept():
    x = np.arange(6).reshape(3, 2)
    y = np.array([10, 20, 30])
    ds = tfd.Dataset.from_tensor_slices((x, {"label": y, "w": y.astype(np.float32)}))
    first = next(iter(ds))
    assert isinstance(first, tuple) and isinstance(first[1], dict)
    assert list(first[1]) == ["label", "w"]
    np.testing.assert_array_equal(first[0], [0, 1])
    # a 0-d element is an np.int64 (a subclass with tf's .numpy(), the plain scalar)
    assert first[1]["label"] == 10 and isinstance(first[1]["label"], np.int64)
    assert type(first[1]["label"].numpy()) is np.int64
    assert ds.element_spec == (
        TensorSpec((2,), np.int64),
        {"label": TensorSpec((), np.int64), "w": TensorSpec((), np.float32)},
    )


def test_element_spec_reprs_like_tf_data():
    ds = tfd.Dataset.from_tensor_slices({"b": np.zeros((4, 2), np.uint8), "a": np.zeros(4)})
    assert repr(ds.element_spec) == (
        "{'b': TensorSpec(shape=(2,), dtype=uint8, name=None), "
        "'a': TensorSpec(shape=(), dtype=float64, name=None)}"
    )
    assert repr(ds.batch(3).element_spec["b"]) == "TensorSpec(shape=(None, 2), dtype=uint8, name=None)"
    assert repr(ds) .startswith("<TensorSliceDataset element_spec={'b': TensorSpec")


def test_map_unpacks_tuples_into_arguments_and_passes_dicts_whole():
    ds = tfd.Dataset.from_tensor_slices((np.array([1, 2]), np.array([10, 20])))
    assert [int(v) for v in ds.map(lambda a, b: a + b)] == [11, 22]
    d = tfd.Dataset.from_tensor_slices({"a": np.array([1, 2]), "b": np.array([3, 4])})
    assert [int(v) for v in d.map(lambda e: e["a"] * e["b"])] == [3, 8]
    nested = tfd.Dataset.from_tensor_slices(((np.array([1]), np.array([2])), np.array([3])))
    assert [int(v) for v in nested.map(lambda ab, c: ab[0] + ab[1] + c)] == [6]


def test_a_list_returned_by_map_is_a_tuple():
    ds = tfd.Dataset.range(2).map(lambda v: [v, v * 2])
    assert list(ds) == [(0, 0), (1, 2)]
    assert isinstance(ds.element_spec, tuple)


def test_python_values_convert_as_tf_converts_them():
    ds = tfd.Dataset.from_tensors((1, 2.5, True, "hé", [1, 2], [1.0, 2.0], 2**40))
    spec = ds.element_spec
    assert [s.dtype for s in spec] == [
        np.int32, np.float32, np.bool_, np.dtype("S3"), np.int32, np.float32, np.int64
    ]
    values = next(iter(ds))
    assert values[3] == "hé".encode()
    # NumPy values keep their dtypes.
    assert tfd.Dataset.from_tensors(np.float64(1.5)).element_spec.dtype == np.float64
    assert tfd.Dataset.from_tensor_slices([1, 2, 3]).element_spec.dtype == np.int32


def test_map_finds_the_output_spec_and_an_output_signature_declares_it():
    ds = tfd.Dataset.range(1, 4).map(lambda n: np.full(int(n), n))
    assert ds.element_spec == TensorSpec((None,), np.int64)
    assert [list(v) for v in ds] == [[1], [2, 2], [3, 3, 3]]
    calls = []

    def f(n):
        calls.append(n)
        return {"n": n}

    sig = {"n": TensorSpec((), np.int64)}
    declared = tfd.Dataset.range(3).map(f, output_signature=sig, trace=False)
    assert calls == []  # not called before the first element
    assert [e["n"] for e in declared] == [0, 1, 2]
    assert calls == [0, 1, 2]
    # Traced (the default): called once, on a traced value, when the dataset is made (as
    # tf.data traces a function), and never again.
    calls.clear()
    traced = tfd.Dataset.range(3).map(f, output_signature=sig)
    assert len(calls) == 1 and not isinstance(calls[0], np.ndarray)
    assert [e["n"] for e in traced] == [0, 1, 2] and len(calls) == 1


def test_zip_structures():
    a, b = tfd.Dataset.range(3), tfd.Dataset.range(10, 12)
    assert list(tfd.Dataset.zip(a, b)) == [(0, 10), (1, 11)]
    assert list(tfd.Dataset.zip((a, b))) == [(0, 10), (1, 11)]
    assert list(tfd.Dataset.zip({"x": a, "y": b}))[1] == {"x": 1, "y": 11}
    assert list(tfd.Dataset.zip((a, (b, a))))[0] == (0, (10, 0))
    assert list(tfd.Dataset.zip(datasets=(a, b)))[0] == (0, 10)
    with pytest.raises(TypeError):
        tfd.Dataset.zip((a, 3))


def test_batching_transformations():
    ds = tfd.Dataset.range(7)
    assert [b.tolist() for b in ds.batch(3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in ds.batch(3, drop_remainder=True)] == [[0, 1, 2], [3, 4, 5]]
    assert ds.batch(3, drop_remainder=True).element_spec.shape == (3,)
    assert [int(v) for v in ds.batch(3).unbatch()] == list(range(7))
    assert [b.tolist() for b in ds.batch(4).rebatch(3)] == [[0, 1, 2], [3, 4, 5], [6]]
    padded = tfd.Dataset.range(1, 5).map(lambda x: np.full(int(x), x)).padded_batch(2)
    assert [b.tolist() for b in padded] == [[[1, 0], [2, 2]], [[3, 3, 3, 0], [4, 4, 4, 4]]]
    padded = (
        tfd.Dataset.range(1, 3)
        .map(lambda x: (np.full(int(x), x), x))
        .padded_batch(2, padded_shapes=([4], []), padding_values=(-1, 0))
    )
    assert next(iter(padded))[0].tolist() == [[1, -1, -1, -1], [2, 2, -1, -1]]


def test_selection_transformations():
    ds = tfd.Dataset.range(10)
    assert [int(v) for v in ds.take(3)] == [0, 1, 2]
    assert [int(v) for v in ds.skip(8)] == [8, 9]
    assert len(list(ds.take(-1))) == 10 and len(list(ds.skip(-1))) == 0
    assert [int(v) for v in ds.shard(3, 1)] == [1, 4, 7]
    assert [int(v) for v in ds.filter(lambda v: v % 2 == 0)] == [0, 2, 4, 6, 8]
    assert [int(v) for v in ds.take_while(lambda v: v < 3)] == [0, 1, 2]
    assert list(ds.take(2).enumerate(5)) == [(5, 0), (6, 1)]
    x = np.array([1, 37, 2, 37, 2, 1])
    assert [int(v) for v in tfd.Dataset.from_tensor_slices(x).unique()] == [1, 37, 2]
    assert [int(v) for v in ds.take(2).repeat(2)] == [0, 1, 0, 1]
    assert [int(v) for v in ds.take(2).concatenate(ds.skip(9))] == [0, 1, 9]


def test_shuffle_permutes_and_a_seed_fixes_the_order():
    ds = tfd.Dataset.range(20)
    a = [int(v) for v in ds.shuffle(20, seed=1)]
    assert sorted(a) == list(range(20)) and a != list(range(20))
    assert a == [int(v) for v in ds.shuffle(20, seed=1)]
    fixed = ds.shuffle(20, seed=3, reshuffle_each_iteration=False)
    assert list(fixed) == list(fixed)
    epochs = [int(v) for v in ds.shuffle(20, seed=3).repeat(2)]
    assert sorted(epochs[:20]) == list(range(20)) and epochs[:20] != epochs[20:]


def test_windows_are_datasets():
    ds = tfd.Dataset.range(7).window(3, shift=2)
    windows = list(ds)
    assert all(isinstance(w, tfd.Dataset) for w in windows)
    assert isinstance(ds.element_spec, tfd.DatasetSpec)
    flat = ds.flat_map(lambda w: w.batch(3))
    assert [b.tolist() for b in flat] == [[0, 1, 2], [2, 3, 4], [4, 5, 6], [6]]


def test_interleave():
    ds = tfd.Dataset.range(1, 4).interleave(
        lambda x: tfd.Dataset.from_tensors(x).repeat(2), cycle_length=2, block_length=1
    )
    assert [int(v) for v in ds] == [1, 2, 1, 2, 3, 3]


def test_scan_and_reduce():
    ds = tfd.Dataset.range(5)
    running = ds.scan(np.int64(0), lambda s, x: (s + x, s + x))
    assert [int(v) for v in running] == [0, 1, 3, 6, 10]
    total = ds.reduce(np.int64(0), lambda s, x: s + x)
    assert total == 10 and isinstance(total, np.int64) and type(total.numpy()) is np.int64
    pair = ds.reduce((np.int64(0), np.int64(1)), lambda s, x: (s[0] + x, s[1] * (x + 1)))
    assert pair == (10, 120)


def test_group_by_window_and_buckets():
    ds = tfd.Dataset.range(10).group_by_window(
        key_func=lambda x: x % 2,
        reduce_func=lambda key, window: window.batch(10),
        window_size=5,
    )
    assert [b.tolist() for b in ds] == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]
    lengths = [1, 2, 3, 1, 2, 3]
    seqs = tfd.Dataset.from_generator(
        lambda: (np.full(n, n, np.int64) for n in lengths),
        output_signature=tfd.TensorSpec((None,), np.int64),
    )
    buckets = seqs.bucket_by_sequence_length(
        lambda s: s.shape[0], bucket_boundaries=[3], bucket_batch_sizes=[2, 2]
    )
    got = sorted(b.tolist() for b in buckets)
    assert got == [[[1, 0], [2, 2]], [[1, 0], [2, 2]], [[3, 3, 3], [3, 3, 3]]]


def test_sampling_and_choosing():
    a = tfd.Dataset.from_tensors(np.int64(0)).repeat(50)
    b = tfd.Dataset.from_tensors(np.int64(1)).repeat(50)
    mixed = [int(v) for v in tfd.Dataset.sample_from_datasets([a, b], weights=[0.5, 0.5], seed=1)]
    assert sorted(mixed) == [0] * 50 + [1] * 50 and mixed != sorted(mixed)
    choice = tfd.Dataset.range(3).repeat(2).map(lambda i: i % 2)
    chosen = tfd.Dataset.choose_from_datasets([tfd.Dataset.range(10), tfd.Dataset.range(100, 110)], choice)
    assert [int(v) for v in chosen] == [0, 100, 1, 2, 101, 3]


def test_counter_range_and_output_types():
    assert [int(v) for v in tfd.Dataset.counter(5, 2).take(3)] == [5, 7, 9]
    assert [int(v) for v in tfd.Dataset.range(5, 1, -2)] == [5, 3]
    assert tfd.Dataset.range(3, output_type=np.int32).element_spec.dtype == np.int32
    assert list(tfd.Dataset.range(0)) == []


def test_cache_prefetch_apply_ignore_errors():
    calls = []
    ds = tfd.Dataset.range(4).map(lambda v: (calls.append(1), v)[1], trace=False).cache()
    n = len(calls)
    assert list(ds) == list(ds)
    assert len(calls) - n == 4  # the second pass replayed the cache
    assert [int(v) for v in tfd.Dataset.range(100).prefetch(tfd.AUTOTUNE)] == list(range(100))
    assert tfd.Dataset.range(3).apply(lambda d: d.map(lambda v: v * 2)).reduce(np.int64(0), lambda s, v: s + v) == 6

    def check(v):
        if v == 2:
            raise ValueError("bad element")
        return v

    assert [int(v) for v in tfd.Dataset.range(5).map(check).ignore_errors()] == [0, 1, 3, 4]


def test_ops_run_in_rust_and_fuse_with_the_batch():
    images = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    labels = np.array([3, 4])
    ds = tfd.Dataset.from_tensor_slices((images, labels))
    out = ds.map(tfd.ops.cast("float32", component=0)).map(tfd.ops.scale(1 / 255, component=0))
    assert out.element_spec[0].dtype == np.float32
    x, y = next(iter(out.batch(2)))
    np.testing.assert_array_equal(x, images.astype(np.float32) / 255)
    assert y.dtype == np.int64
    whole = tfd.Dataset.from_tensor_slices({"a": images}).map(tfd.ops.cast(np.int16, component="a"))
    assert whole.element_spec["a"].dtype == np.int16
    with pytest.raises(ValueError, match="needs a float tensor"):
        list(ds.map(tfd.ops.scale(2.0, component=0)))


def test_map_accepts_and_checks_parallelism_arguments():
    ds = tfd.Dataset.range(4)
    for n in (None, 1, 4, tfd.AUTOTUNE):
        assert [int(v) for v in ds.map(lambda v: v + 1, num_parallel_calls=n, deterministic=True)] == [1, 2, 3, 4]
    with pytest.raises(ValueError):
        ds.map(lambda v: v, num_parallel_calls=0)
    with pytest.raises(ValueError):
        ds.map(lambda v: v, num_parallel_calls=-3)
    with pytest.raises(TypeError):
        ds.map(lambda v: v, num_parallel_calls="4")
    with pytest.raises(TypeError):
        ds.map(lambda v: v, deterministic="yes")


def test_parallel_steps_give_the_sequential_output():
    x = np.arange(200, dtype=np.int64)
    base = tfd.Dataset.from_tensor_slices(x)
    seq = [b.tolist() for b in base.map(lambda v: v * 3).batch(16)]
    for n in (1, 2, 4, tfd.AUTOTUNE):
        par = base.map(lambda v: v * 3, num_parallel_calls=n).batch(16, num_parallel_calls=n)
        assert [b.tolist() for b in par] == seq
        unordered = base.map(lambda v: v * 3, num_parallel_calls=n, deterministic=False)
        assert sorted(int(v) for v in unordered) == [3 * i for i in range(200)]
    rows = tfd.Dataset.range(4).interleave(
        lambda i: tfd.Dataset.range(3).map(lambda j: i * 10 + j),
        cycle_length=2,
        num_parallel_calls=2,
    )
    assert [int(v) for v in rows] == [0, 10, 1, 11, 2, 12, 20, 30, 21, 31, 22, 32]


def test_every_built_in_op_runs_from_python():
    img = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    ds = tfd.Dataset.from_tensors(img)

    def one(op):
        return next(iter(ds.map(op)))

    np.testing.assert_allclose(one(tfd.ops.normalize([1.0, 2.0, 3.0, 4.0], [2.0] * 4)), (img - [1, 2, 3, 4]) / 2)
    assert one(tfd.ops.reshape([-1, 4])).shape == (6, 4)
    np.testing.assert_array_equal(one(tfd.ops.transpose([2, 0, 1])), img.transpose(2, 0, 1))
    assert one(tfd.ops.random_crop([1, 2, 2], seed=3)).shape == (1, 2, 2)
    flips = [next(iter(tfd.Dataset.from_tensors(img).repeat(1).map(tfd.ops.random_flip(2, seed=s)))) for s in range(16)]
    assert all(np.array_equal(f, img) or np.array_equal(f, img[:, :, ::-1]) for f in flips)
    assert any(np.array_equal(f, img[:, :, ::-1]) for f in flips)
    ids = tfd.Dataset.from_tensor_slices(np.array([2, 0, 5]))
    np.testing.assert_array_equal(np.stack(list(ids.map(tfd.ops.one_hot(3)))), np.eye(3, dtype=np.float32)[[2, 0]].tolist() + [[0, 0, 0]])
    with pytest.raises(ValueError, match="transpose"):
        ds.map(tfd.ops.transpose([0, 0, 1]))


def test_global_shuffle_permutes_random_access_datasets():
    x = np.arange(100)
    ds = tfd.Dataset.from_tensor_slices(x).global_shuffle(seed=1)
    first, second = [int(v) for v in ds], [int(v) for v in ds]
    assert sorted(first) == list(range(100)) and sorted(second) == list(range(100))
    assert first != second
    fixed = tfd.Dataset.from_tensor_slices(x).global_shuffle(seed=1, reshuffle_each_iteration=False)
    assert [int(v) for v in fixed] == [int(v) for v in fixed]
    with pytest.raises(ValueError, match="random-access"):
        tfd.Dataset.range(5).filter(lambda v: v > 1).global_shuffle(seed=0)
