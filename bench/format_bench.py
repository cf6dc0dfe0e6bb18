#!/usr/bin/env python3
"""The format benchmark: npyflow against NumPy on the same files, in the same run.

    python bench/format_bench.py [--data DIR] [--update]

Makes (once) in DIR, default bench-data/format: .npy files of 16 MiB, 256 MiB and 1 GiB for
the open time, W2's 1 GiB float32 array (1,048,576 x 256) for the row read, and a deflated
.npz of a 64 MiB uint8 array. Then runs `cargo bench -p npyflow-format --bench format` and the same
operations in NumPy, and prints a markdown table of figures and ratios. --update writes the
table into BENCHMARKS.md.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from benchmarks_md import update_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_ms(reps, f):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1e3)
    return sorted(times)[reps // 2]


def make_data(d):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(0)
    for mib in (16, 256, 1024):
        p = os.path.join(d, "open_%05dMiB.npy" % mib)
        if not os.path.exists(p):
            x = np.lib.format.open_memmap(p + ".tmp", mode="w+", dtype=np.float32, shape=(mib * 1024, 256))
            x[:] = 1.0
            x.flush()
            del x
            os.replace(p + ".tmp", p)
    big = os.path.join(d, "big.npy")
    if not os.path.exists(big):
        os.link(os.path.join(d, "open_01024MiB.npy"), big)
    npz = os.path.join(d, "deflated.npz")
    if not os.path.exists(npz):
        x = rng.integers(0, 16, size=(65536, 1024), dtype=np.uint8)
        np.savez_compressed(npz, x=x)


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def numpy_side(d):
    out = {}
    for name in sorted(os.listdir(d)):
        if name.startswith("open_"):
            p = os.path.join(d, name)
            out[name] = median_ms(51, lambda: np.load(p, mmap_mode="r"))
    big = np.load(os.path.join(d, "big.npy"), mmap_mode="r")
    batch = np.empty((1024, big.shape[1]), big.dtype)

    def rows():
        for s in range(0, big.shape[0], 1024):
            n = min(1024, big.shape[0] - s)
            for i in range(n):
                batch[i] = big[s + i]

    def copy():
        for s in range(0, big.shape[0], 1024):
            n = min(1024, big.shape[0] - s)
            batch[:n] = big[s:s + n]

    gb = big.nbytes / 1e9
    out["rows_gb_per_s"] = gb / (median_ms(3, rows) / 1e3)
    out["copy_gb_per_s"] = gb / (median_ms(5, copy) / 1e3)
    npz = os.path.join(d, "deflated.npz")
    out["npz_ms"] = median_ms(5, lambda: np.load(npz)["x"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "bench-data", "format"))
    ap.add_argument("--update", action="store_true")
    args = ap.parse_args()
    make_data(args.data)
    for name in os.listdir(args.data):
        warm(os.path.join(args.data, name))
    res = subprocess.run(["cargo", "bench", "-q", "-p", "npyflow-format", "--bench", "format", "--", os.path.abspath(args.data)],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    ours = [json.loads(l) for l in res.stdout.splitlines() if l.startswith("{")]
    theirs = numpy_side(args.data)
    lines = ["| measure | npyflow | NumPy | ratio (npyflow / NumPy, > 1 is better for npyflow) |",
             "|---|---|---|---|"]
    for r in ours:
        if r["bench"] == "open":
            np_ms = theirs[r["file"]]
            lines.append("| open + map %d MiB .npy | %.3f ms | %.3f ms (`np.load(mmap_mode='r')`) | %.1fx |"
                         % (r["bytes"] >> 20, r["ms"], np_ms, np_ms / r["ms"]))
        elif r["bench"] == "rows":
            lines.append("| read 1 GiB row by row (`Tensor::row`, 1 KiB rows) into a 1024-row batch | %.2f GB/s | %.2f GB/s (`batch[i] = x[j]` loop) | %.1fx |"
                         % (r["rows_gb_per_s"], theirs["rows_gb_per_s"], r["rows_gb_per_s"] / theirs["rows_gb_per_s"]))
            lines.append("| the same rows by plain `memcpy`, one row at a time | %.2f GB/s | | `Tensor::row` reaches %.0f%% of it |"
                         % (r["row_memcpy_gb_per_s"], 100 * r["rows_gb_per_s"] / r["row_memcpy_gb_per_s"]))
            lines.append("| the same bytes by plain `memcpy`, 1024 rows at a time | %.2f GB/s | %.2f GB/s (`batch[:] = x[j:j+1024]`) | %.2fx |"
                         % (r["memcpy_gb_per_s"], theirs["copy_gb_per_s"], r["memcpy_gb_per_s"] / theirs["copy_gb_per_s"]))
        elif r["bench"] == "npz":
            lines.append("| load 64 MiB deflated .npz member | %.1f ms | %.1f ms (`np.load(f)['x']`) | %.2fx |"
                         % (r["ms"], theirs["npz_ms"], theirs["npz_ms"] / r["ms"]))
    table = "\n".join(lines)
    print(table)
    if args.update:
        update_section("format", "The format", table, " with `python bench/format_bench.py --update`.")


if __name__ == "__main__":
    main()
