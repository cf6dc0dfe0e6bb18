"""`npyflow inspect --stats` sums bit for bit as `np.sum(a, dtype=np.float64)` does, on arrays
large enough that NumPy's pairwise tree and its 8192-element casting buffers both matter,
with data whose sum depends on the order of additions."""
import json
import subprocess

import numpy as np
import pytest

CASES = [
    ("<f8", "C"), ("<f8", "F"), (">f8", "C"), ("<f4", "C"), (">f4", "F"), ("<f2", "C"),
    ("<i8", "C"), ("|u1", "C"), (">i4", "C"), ("|b1", "C"),
]


def order_sensitive(dtype, n, rng):
    """Values over many magnitudes, so that rounding depends on the order of additions."""
    kind = np.dtype(dtype).kind
    if kind == "f":
        info = np.finfo(dtype)
        mags = rng.integers(-3, min(12, int(info.maxexp * 0.3)), n).astype(np.float64)
        return (rng.standard_normal(n) * 10.0 ** mags).astype(dtype)
    if kind == "b":
        return rng.integers(0, 2, n).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, n, endpoint=True).astype(dtype)


@pytest.mark.parametrize("n", [7, 100, 129, 8191, 8193, 50_003])
@pytest.mark.parametrize("dtype,order", CASES)
def test_sum_is_numpys_to_the_bit(npyflow_bin, tmp_path, dtype, order, n):
    rng = np.random.default_rng(n)
    a = order_sensitive(dtype, n, rng)
    if order == "F":
        a = np.asfortranarray(a[: n // 7 * 7].reshape(7, -1))
    path = tmp_path / "a.npy"
    np.save(path, a)
    out = subprocess.run([str(npyflow_bin), "inspect", "--json", "--stats", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = float(np.sum(a, dtype=np.float64))
    assert got["sum"] == want or (np.isnan(want) and np.isnan(got["sum"])), (got["sum"], want)
    assert got["min"] == float(a.min()) and got["max"] == float(a.max())


def test_overflow_to_infinity_follows_numpys_order(npyflow_bin, tmp_path):
    # max + max overflows in the tree's order, though a left-to-right sum would not.
    big = np.finfo(np.float64).max
    a = np.array([big, -big, big, -big] * 4 + [big, big, -big, -big] * 4)
    path = tmp_path / "a.npy"
    np.save(path, a)
    out = subprocess.run([str(npyflow_bin), "inspect", "--json", "--stats", str(path)],
                         capture_output=True, text=True, timeout=60)
    got = json.loads(out.stdout)["sum"]
    with np.errstate(over="ignore", invalid="ignore"):
        want = float(np.sum(a))
    assert got == want or (np.isnan(got) and np.isnan(want)), (got, want)


def inspect_json(npyflow_bin, path, *args):
    out = subprocess.run([str(npyflow_bin), "inspect", "--json", *args, str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("n", [1, 100, 4097, 50_003])
@pytest.mark.parametrize("dtype,order", CASES)
def test_mean_and_std_are_numpys(npyflow_bin, tmp_path, dtype, order, n):
    # Issue 17: what normalize(mean, std) needs. NumPy's a.mean() and a.std() (ddof=0), to
    # 1e-9 relative (npyflow merges blocks as Chan et al.; NumPy sums pairwise).
    rng = np.random.default_rng(n + 1)
    a = rng.standard_normal(n) * 1000 + 37
    a = a.astype(dtype) if np.dtype(dtype).kind in "fb" else (a % 200).astype(dtype)
    if order == "F" and n >= 7:
        a = np.asfortranarray(a[: n // 7 * 7].reshape(7, -1))
    path = tmp_path / "a.npy"
    np.save(path, a)
    got = inspect_json(npyflow_bin, path, "--stats")
    wide = a.astype(np.float64)
    assert got["mean"] == pytest.approx(float(wide.mean()), rel=1e-9, abs=1e-9)
    assert got["std"] == pytest.approx(float(wide.std()), rel=1e-9, abs=1e-9)
    assert "channel_mean" not in got


@pytest.mark.parametrize("axis", [-1, 1, 0])
@pytest.mark.parametrize("order", ["C", "F"])
def test_per_channel_mean_and_std(npyflow_bin, tmp_path, axis, order):
    rng = np.random.default_rng(3)
    a = (rng.random((9, 5, 4, 3)) * 255).astype(np.uint8)
    a = np.asfortranarray(a) if order == "F" else a
    path = tmp_path / "images.npy"
    np.save(path, a)
    got = inspect_json(npyflow_bin, path, "--per-channel", "--channel-axis", str(axis))
    others = tuple(i for i in range(a.ndim) if i != axis % a.ndim)
    wide = a.astype(np.float64)
    np.testing.assert_allclose(got["channel_mean"], wide.mean(axis=others), rtol=1e-12)
    np.testing.assert_allclose(got["channel_std"], wide.std(axis=others), rtol=1e-12)
    # The table says them too, under the table.
    out = subprocess.run([str(npyflow_bin), "inspect", "--per-channel", "--channel-axis",
                          str(axis), str(path)], capture_output=True, text=True, timeout=60)
    assert "per channel: mean [" in out.stdout and " std [" in out.stdout, out.stdout
    assert "mean" in out.stdout.splitlines()[0] and "std" in out.stdout.splitlines()[0]


def test_a_channel_axis_the_array_lacks_is_an_error(npyflow_bin, tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros((2, 3)))
    out = subprocess.run([str(npyflow_bin), "inspect", "--per-channel", "--channel-axis", "5",
                          str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "channel axis 5 is out of range" in out.stderr
