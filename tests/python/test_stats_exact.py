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
