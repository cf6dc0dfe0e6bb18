"""Arrays cross between NumPy and npyflow without copies, and stay valid as long as they are
referenced."""

import gc
import weakref

import numpy as np
import pytest

import npyflow as tfd


def memory_of(arr):
    """The npyflow object holding the memory an array shows."""
    base = arr
    while isinstance(base, np.ndarray):
        base = base.base
    return base


def test_rows_of_an_input_array_share_its_memory_and_are_read_only():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    rows = list(tfd.Dataset.from_tensor_slices(x))
    for i, r in enumerate(rows):
        assert np.shares_memory(r, x)
        assert r.ctypes.data == x[i].ctypes.data
        assert not r.flags.writeable
        assert type(memory_of(r)).__name__ == "Memory"
        assert memory_of(r).kind == "foreign"
    with pytest.raises(ValueError):
        rows[0][0] = 1.0
    with pytest.raises(ValueError):
        rows[0].flags.writeable = True


def test_the_dataset_reads_the_array_it_was_given():
    # Shared, not copied: a change to the array shows in the next pass.
    x = np.zeros(3, dtype=np.int64)
    ds = tfd.Dataset.from_tensor_slices(x)
    x[1] = 7
    assert [int(v) for v in ds] == [0, 7, 0]


def test_the_input_array_is_kept_alive_by_the_dataset():
    x = np.arange(1000, dtype=np.int64)
    ref = weakref.ref(x)
    ds = tfd.Dataset.from_tensor_slices((x, x * 2))
    del x
    gc.collect()
    assert ref() is not None
    del ds
    gc.collect()
    assert ref() is None


def test_non_contiguous_and_foreign_order_arrays_are_copied_once_into_c_order():
    base = np.arange(24, dtype=np.int32).reshape(4, 6)
    strided = base[:, ::2]
    fortran = np.asfortranarray(base)
    big = base.astype(">i4")
    for arr in (strided, fortran, big):
        rows = list(tfd.Dataset.from_tensor_slices(arr))
        assert all(not np.shares_memory(r, base) for r in rows)
        np.testing.assert_array_equal(np.stack(rows), arr)
        assert rows[0].dtype == np.dtype(np.int32)  # native order
        # The rows of the one copy share it.
        assert memory_of(rows[0]) is not None


def test_batches_of_consecutive_rows_are_views_of_the_array():
    x = np.arange(10, dtype=np.int64)
    batches = list(tfd.Dataset.from_tensor_slices(x).batch(4))
    for b in batches:
        assert np.shares_memory(b, x)
        assert not b.flags.writeable
    assert [list(b) for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_fresh_batches_are_writable_npyflow_memory():
    x = np.arange(10, dtype=np.int64)
    fresh = tfd.Dataset.from_tensor_slices(x).shuffle(10, seed=0).batch(4)
    batches = list(fresh)
    for b in batches:
        assert b.flags.writeable
        assert not np.shares_memory(b, x)
        assert memory_of(b).kind == "heap"
    batches[0][0] = 100  # the user's own memory now
    assert sorted(int(v) for b in fresh for v in b) == list(range(10))


def test_cached_batches_are_shared_with_the_cache_so_read_only():
    ds = tfd.Dataset.range(6).batch(3).cache()
    first = list(ds)
    again = list(ds)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
        assert not b.flags.writeable


def test_a_kept_batch_stays_valid_after_the_iterator_moves_on_and_is_gone():
    x = np.random.default_rng(0).random((100, 5))
    it = iter(tfd.Dataset.from_tensor_slices(x).map(lambda r: r * 2).batch(8))
    kept = [next(it) for _ in range(3)]
    for _ in it:  # run the pass to its end
        pass
    del it
    gc.collect()
    for i, b in enumerate(kept):
        np.testing.assert_array_equal(b, x[i * 8:(i + 1) * 8] * 2)


def test_an_element_outlives_its_dataset_and_source_array():
    x = np.arange(6, dtype=np.int16).reshape(3, 2)
    ds = tfd.Dataset.from_tensor_slices(x)
    row = next(iter(ds))
    del ds, x
    gc.collect()
    np.testing.assert_array_equal(row, [0, 1])


def test_views_of_npyflow_arrays_keep_the_memory_alive():
    b = next(iter(tfd.Dataset.range(10).batch(10)))
    view = b[2:5]
    del b
    gc.collect()
    np.testing.assert_array_equal(view, [2, 3, 4])


def test_map_functions_get_views_and_their_results_are_not_copied():
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    seen = []

    def f(row):
        seen.append(row)
        return row  # returned as is: the element is the same memory

    out = list(tfd.Dataset.from_tensor_slices(x).map(f, trace=False))
    assert all(np.shares_memory(o, x) for o in out)
    assert any(np.shares_memory(s, x) for s in seen)


def test_mapped_npy_rows_are_views_of_the_map(tmp_path):
    x = np.arange(64, dtype=np.float32).reshape(16, 4)
    path = tmp_path / "x.npy"
    np.save(path, x)
    rows = list(tfd.Dataset.from_npy(path))
    assert memory_of(rows[0]).kind == "mapped"
    assert not rows[0].flags.writeable
    np.testing.assert_array_equal(np.stack(rows), x)
    # Consecutive rows are consecutive in the map.
    assert rows[1].ctypes.data - rows[0].ctypes.data == 16
    loaded = tfd.load(path)
    assert memory_of(loaded).kind == "mapped" and not loaded.flags.writeable


def test_scalars_are_numpy_scalars_when_iterating_and_0d_arrays_in_functions():
    got = []
    ds = tfd.Dataset.range(3).map(lambda v: (got.append(type(v)) or v), trace=False)
    values = list(ds)
    assert all(isinstance(v, np.int64) and type(v.numpy()) is np.int64 for v in values)
    assert all(type(v) is np.int64 for v in ds.as_numpy_iterator())
    assert got and all(t is np.ndarray for t in got)


def test_every_dtype_round_trips():
    dtypes = [
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
        np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128,
        "S3", "U4", "datetime64[ns]", "timedelta64[ms]",
    ]
    for dt in dtypes:
        x = np.arange(6).astype(dt).reshape(3, 2)
        out = np.stack(list(tfd.Dataset.from_tensor_slices(x)))
        assert out.dtype == x.dtype, dt
        np.testing.assert_array_equal(out, x)
        ds = tfd.Dataset.from_tensor_slices(x.ravel())
        scalars = list(ds.as_numpy_iterator())
        # What indexing the array gives (NumPy sizes a bytes or str scalar to its value).
        expected = [x.ravel()[i] for i in range(x.size)]
        assert [type(s) for s in scalars] == [type(e) for e in expected], dt
        assert scalars == expected, dt
        # Iterating gives the same scalars with tf's .numpy() (a subclass of their type).
        tensors = list(ds)
        assert [type(s.numpy()) for s in tensors] == [type(e) for e in expected], dt
        if np.dtype(dt).kind in "iufcSU":  # bools and datetimes are 0-d Tensors instead
            assert all(isinstance(s, type(e)) for s, e in zip(tensors, expected)), dt
        assert tensors == expected, dt


def test_object_and_structured_arrays_are_refused():
    with pytest.raises(TypeError):
        tfd.Dataset.from_tensor_slices(np.array([object(), object()]))
    with pytest.raises(TypeError):
        tfd.Dataset.from_tensor_slices(np.zeros(3, dtype=[("a", "i4"), ("b", "f4")]))
