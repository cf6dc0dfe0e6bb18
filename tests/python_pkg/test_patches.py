"""Dataset.from_npy_patches against NumPy's slicing of the same array: random shapes,
windows, strides and dtypes; shuffled batches; resumed iterators; bad arguments."""

import numpy as np
import pytest

import npyflow

DTYPES = ["u1", "i2", "<f4", ">f8", "c8", "?", "S3", "<U2", "M8[s]"]


def numpy_patches(a, size, strides):
    k = len(size)
    grid = [range(0, a.shape[i] - size[i] + 1, strides[i]) for i in range(k)]
    out = []
    for pos in np.ndindex(*[len(g) for g in grid]):
        start = [grid[i][p] for i, p in enumerate(pos)]
        out.append(a[tuple(slice(s, s + n) for s, n in zip(start, size))])
    return out


def random_array(rng, dtype, shape):
    raw = rng.integers(0, 256, size=int(np.prod(shape)) * np.dtype(dtype).itemsize, dtype=np.uint8)
    if np.dtype(dtype).kind == "b":
        raw &= 1
    if np.dtype(dtype).kind == "U":
        return rng.choice(["a", "bc", "", "xy"], size=shape).astype(dtype)
    return raw.view(dtype).reshape(shape)


@pytest.mark.parametrize("case", range(40))
def test_patches_equal_numpy_slices(tmp_path, case):
    rng = np.random.default_rng(case)
    nd = int(rng.integers(1, 5))
    shape = tuple(int(d) for d in rng.integers(1, 8, size=nd))
    k = int(rng.integers(1, nd + 1))
    size = [int(rng.integers(1, shape[i] + 1)) for i in range(k)]
    strides = [int(rng.integers(1, 5)) for _ in range(k)]
    dtype = DTYPES[case % len(DTYPES)]
    a = random_array(rng, dtype, shape)
    path = tmp_path / "a.npy"
    np.save(path, a)
    ds = npyflow.Dataset.from_npy_patches(path, size, strides=strides, num_parallel_reads=case % 3 + 1)
    want = numpy_patches(a, size, strides)
    got = list(ds)
    assert len(ds) == len(want)
    assert len(got) == len(want)
    native = a.dtype.newbyteorder("=") if a.dtype.byteorder == ">" else a.dtype
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert g.dtype == native
        np.testing.assert_array_equal(g, w)
    # Shuffled and batched: every batch row is one of NumPy's patches, each once.
    batches = list(ds.global_shuffle(seed=case).batch(3))
    rows = [r for b in batches for r in b]
    assert len(rows) == len(want)
    keys = sorted(r.tobytes() for r in rows)
    assert keys == sorted(np.ascontiguousarray(w).astype(rows[0].dtype).tobytes() for w in want)


def test_the_w5_shape_on_a_small_cube(tmp_path):
    # W5's pipeline on a 96 x 80 x 5 float32 cube: patches of 32 x 32 with all bands on a
    # stride-16 grid, shuffled, batches of 4; two threads copy each batch.
    cube = np.random.default_rng(0).standard_normal((96, 80, 5), dtype=np.float32)
    np.save(tmp_path / "cube.npy", cube)
    ds = npyflow.Dataset.from_npy_patches(
        tmp_path / "cube.npy", (32, 32), strides=16, num_parallel_reads=npyflow.AUTOTUNE
    )
    assert ds.element_spec == npyflow.TensorSpec((32, 32, 5), np.float32)
    assert len(ds) == 5 * 4
    shuffled = ds.global_shuffle(seed=0, reshuffle_each_iteration=False).batch(4)
    order = list(ds.global_shuffle(seed=0, reshuffle_each_iteration=False))
    for b, batch in enumerate(shuffled):
        for r in range(len(batch)):
            np.testing.assert_array_equal(batch[r], order[4 * b + r])
    # Resumed mid-epoch, the rest is the same.
    it = iter(shuffled)
    next(it)
    next(it)
    state = it.get_state()
    assert len(state) < 256
    rest = [b.copy() for b in it]
    again = iter(shuffled)
    again.set_state(state)
    for x, y in zip(again, rest, strict=True):
        np.testing.assert_array_equal(x, y)


def test_bad_arguments_raise_value_error_naming_them(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((6, 5, 2), np.int8))
    p = tmp_path / "a.npy"
    with pytest.raises(ValueError, match="axis 0"):
        npyflow.Dataset.from_npy_patches(p, (7, 2))
    with pytest.raises(ValueError, match="strides"):
        npyflow.Dataset.from_npy_patches(p, (2, 2), strides=(1,))
    with pytest.raises(ValueError, match="positive"):
        npyflow.Dataset.from_npy_patches(p, (2, -1))
    with pytest.raises(ValueError, match="num_parallel_reads"):
        npyflow.Dataset.from_npy_patches(p, 2, num_parallel_reads=0)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        npyflow.Dataset.from_npy_patches(tmp_path / "missing.npy", 2)
