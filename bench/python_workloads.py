#!/usr/bin/env python3
"""W1 and W4 through npyflow's Python package; prints one JSON line per workload.

    python bench/python_workloads.py [--n1 50000] [--n4 20000]

Run by bench/workloads_bench.py with a Python that has npyflow (release build) installed.
W1 is the image pipeline of the project's founding document (cast to float32, scale by
1/255, batch) with built-in ops (no Python callback); W4 a Python function per element
(the `flip` function of ../shared/anchors/anchors.py), as ../shared/WORKLOADS.md defines them.
"""
import argparse
import json
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
    a = ap.parse_args()
    x, y = data(a.n1)
    ds = (tfd.Dataset.from_tensor_slices((x, y))
          .map(ops.cast("float32", component=0), num_parallel_calls=tfd.AUTOTUNE)
          .map(ops.scale(1 / 255, component=0))
          .batch(256)
          .prefetch(tfd.AUTOTUNE))
    print(json.dumps({"workload": "w1", "engine": "npyflow-python", "rows_per_s": timed(ds, a.n1)}))
    x, y = data(a.n4)
    ds = (tfd.Dataset.from_tensor_slices((x, y))
          .map(lambda img, label: (flip(img), label))
          .batch(256)
          .prefetch(tfd.AUTOTUNE))
    print(json.dumps({"workload": "w4", "engine": "npyflow-python", "rows_per_s": timed(ds, a.n4)}))


if __name__ == "__main__":
    main()
