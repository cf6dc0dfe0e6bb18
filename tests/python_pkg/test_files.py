""".npy and .npz: datasets over files, npyflow.load and npyflow.save."""

import numpy as np
import pytest

import npyflow as tfd


def test_from_npy_one_file_and_shards(tmp_path):
    a = np.arange(20, dtype=np.float32).reshape(10, 2)
    b = np.arange(20, 26, dtype=np.float32).reshape(3, 2)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    one = tfd.Dataset.from_npy(tmp_path / "a.npy")
    assert len(one) == 10 and one.element_spec == tfd.TensorSpec((2,), np.float32)
    both = tfd.Dataset.from_npy([tmp_path / "a.npy", str(tmp_path / "b.npy")])
    np.testing.assert_array_equal(np.stack(list(both)), np.concatenate([a, b]))
    np.save(tmp_path / "c.npy", np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError):
        tfd.Dataset.from_npy([tmp_path / "a.npy", tmp_path / "c.npy"])


def test_from_npy_converts_foreign_layouts(tmp_path):
    x = np.asfortranarray(np.arange(12, dtype=">i8").reshape(4, 3))
    np.save(tmp_path / "f.npy", x)
    rows = np.stack(list(tfd.Dataset.from_npy(tmp_path / "f.npy")))
    np.testing.assert_array_equal(rows, x)
    assert rows.dtype == np.int64


def test_from_npz_keys_and_archive_order(tmp_path):
    x = np.arange(12, dtype=np.uint8).reshape(4, 3)
    y = np.array([0, 1, 0, 1])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    np.savez_compressed(tmp_path / "c.npz", x=x, y=y)
    for name in ("d.npz", "c.npz"):
        ds = tfd.Dataset.from_npz(tmp_path / name)
        assert list(ds.element_spec) == ["x", "y"]
        first = next(iter(ds))
        np.testing.assert_array_equal(first["x"], x[0])
        assert first["y"] == 0
        only = tfd.Dataset.from_npz(tmp_path / name, keys=["y"])
        assert [e["y"] for e in only] == [0, 1, 0, 1]
    with pytest.raises(ValueError):
        tfd.Dataset.from_npz(tmp_path / "d.npz", keys=["nope"])


def test_load_and_save_round_trip_with_numpy(tmp_path):
    x = np.random.default_rng(0).random((5, 4)).astype(np.float32)
    tfd.save(tmp_path / "x", x)  # .npy added, as np.save does
    assert (tmp_path / "x.npy").read_bytes() == _np_save_bytes(tmp_path, x)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), x)
    np.testing.assert_array_equal(tfd.load(tmp_path / "x.npy"), x)
    tfd.savez(tmp_path / "pair", x, labels=np.arange(5))
    with np.load(tmp_path / "pair.npz") as z:
        assert list(z.keys()) == ["arr_0", "labels"]
        np.testing.assert_array_equal(z["labels"], np.arange(5))
    loaded = tfd.load(tmp_path / "pair.npz")
    assert list(loaded) == ["arr_0", "labels"]
    np.testing.assert_array_equal(loaded["arr_0"], x)
    # npyflow's own .npz members are aligned, so they are mapped when read back.
    assert not loaded["arr_0"].flags.writeable
    tfd.savez_compressed(tmp_path / "small.npz", a=np.zeros(1000))
    assert (tmp_path / "small.npz").stat().st_size < 1000
    np.testing.assert_array_equal(tfd.load(tmp_path / "small.npz")["a"], np.zeros(1000))


def _np_save_bytes(tmp_path, x):
    np.save(tmp_path / "reference.npy", x)
    return (tmp_path / "reference.npy").read_bytes()


def test_list_files(tmp_path):
    for name in ("b.npy", "a.npy", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    ds = tfd.Dataset.list_files(str(tmp_path / "*.npy"), shuffle=False)
    assert [p.decode() for p in ds] == [str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]
    shuffled = tfd.Dataset.list_files(str(tmp_path / "*"), seed=0)
    assert sorted(p.decode() for p in shuffled) == sorted(str(p) for p in tmp_path.iterdir())
    two = tfd.Dataset.list_files([str(tmp_path / "a.*"), str(tmp_path / "c.*")], shuffle=False)
    assert len(list(two)) == 2


def test_npy_pipeline_end_to_end(tmp_path):
    x = np.arange(40, dtype=np.uint8).reshape(10, 2, 2)
    y = np.arange(10)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    ds = (
        tfd.Dataset.zip(tfd.Dataset.from_npy(tmp_path / "x.npy"), tfd.Dataset.from_npy(tmp_path / "y.npy"))
        .map(tfd.ops.cast(np.float32, component=0))
        .shuffle(10, seed=0)
        .batch(4, drop_remainder=True)
        .prefetch(2)
    )
    seen = []
    for bx, by in ds:
        assert bx.shape == (4, 2, 2) and bx.dtype == np.float32
        for img, label in zip(bx, by):
            np.testing.assert_array_equal(img, x[label])
        seen.extend(by.tolist())
    assert len(seen) == 8 and len(set(seen)) == 8
