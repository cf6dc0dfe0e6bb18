#!/usr/bin/env python3
"""W1, W2 and W4 through npyflow's Python package; prints one JSON line per workload.

    python bench/python_workloads.py [--n1 50000] [--n4 20000] [--data DIR]

Run by bench/workloads_bench.py with a Python that has npyflow (release build) installed.
W1 is the image pipeline of the project's founding document (cast to float32, scale by
1/255, batch) with built-in ops (no Python callback); W4 a NumPy-written function per
element (the `flip` function of ../shared/anchors/anchors.py), which `map` traces into native
ops, as ../shared/WORKLOADS.md defines them.
W2 (with --data: the files `npyflow bench --workload w2 --data DIR` made there) is the
pipeline `npyflow bench` runs: the two .npy files zipped, globally shuffled (seed 0), batches
of 1024 on AUTOTUNE threads, prefetched; like the Rust figure, its time includes opening
the files, and the files are read through once before it, as the Rust run reads them.
"""
import argparse
import json
import os
import time

import numpy as np

import npyflow as tfd
from npyflow import ops


def flip(img):
    return (img[:, ::-1, :].astype(np.float32) + 8.0) / 255.0


def data(n):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=n).astype(np.int64)
    return x, y


def timed(ds, n):
    t0 = time.perf_counter()
    for _ in ds:
        pass
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n1", type=int, default=50_000)
    ap.add_argument("--n4", type=int, default=20_000)
    ap.add_argument("--data", default=None, help="where W2's files are (W2 is skipped without it)")
    ap.add_argument("--workloads", default="w1,w2,w4")
    a = ap.parse_args()
    todo = a.workloads.split(",")
    if "w1" in todo:
        w1(a.n1)
    if "w2" in todo and a.data:
        w2(a.data)
    if "w4" in todo:
        w4(a.n4)


def w1(n1):
    x, y = data(n1)
    ds = (tfd.Dataset.from_tensor_slices((x, y))
          .map(ops.cast("float32", component=0), num_parallel_calls=tfd.AUTOTUNE)
          .map(ops.scale(1 / 255, component=0))
          .batch(256)
          .prefetch(tfd.AUTOTUNE))
    print(json.dumps({"workload": "w1", "engine": "npyflow-python", "rows_per_s": timed(ds, n1)}))


def warm(path):
    """Reads a file through once, as `npyflow bench` does before its timed run."""
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass


def w2(data_dir):
    n = 1 << 20
    px = os.path.join(data_dir, "w2_x_%dx256.npy" % n)
    py = os.path.join(data_dir, "w2_y_%d.npy" % n)
    # Before the timed pass, what `npyflow bench --workload w2` does before its own: the files
    # read through once. Without it this pass began about 0.1 s after `import numpy`, while
    # NumPy's OpenBLAS thread still spins on a core (it does for about 2**28 cycles after the
    # import, 0.13 s at 2.1 GHz): on 2 cores, time taken from the pass that the Rust run,
    # with no such thread, does not lose.
    warm(px)
    warm(py)
    t0 = time.perf_counter()
    ds = (tfd.Dataset.zip((tfd.Dataset.from_npy(px), tfd.Dataset.from_npy(py)))
          .global_shuffle(seed=0)
          .batch(1024, num_parallel_calls=tfd.AUTOTUNE)
          .prefetch(tfd.AUTOTUNE))
    rows = 0
    for x, _ in ds:
        rows += len(x)
    secs = time.perf_counter() - t0
    print(json.dumps({"workload": "w2", "engine": "npyflow-python", "rows_per_s": rows / secs,
                      "gb_per_s": rows * 256 * 4 / secs / 1e9}))


def w4(n4):
    x, y = data(n4)
    ds = (tfd.Dataset.from_tensor_slices((x, y))
          .map(lambda img, label: (flip(img), label))
          .batch(256)
          .prefetch(tfd.AUTOTUNE))
    print(json.dumps({"workload": "w4", "engine": "npyflow-python", "rows_per_s": timed(ds, n4)}))


if __name__ == "__main__":
    main()
