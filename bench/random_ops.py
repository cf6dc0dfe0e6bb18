#!/usr/bin/env python3
"""npyflow's random crop and flip against the NumPy loop a user would write instead, in one run.

Writes 50,000 random uint8 images of 32x32x3 to a .npy file, then times, alternating, three
times each and reporting the medians:
- npyflow: `npyflow bench --pipeline "map(random_crop([24, 24, 3], 1)).batch(256)"` (and
  `random_flip(1, 1)`, a left-right flip of half the images) over the file;
- NumPy: a loop over the memory-mapped images that slices each one (a crop at a random
  offset; `img[:, ::-1, :]` for half of them) and `np.stack`s 256 of them into a batch.

    cargo build --release -p npyflow-cli
    python bench/random_ops.py [--data DIR] [--npyflow target/release/npyflow]
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def numpy_crop(x, rng):
    start = time.perf_counter()
    rows = 0
    for s in range(0, len(x), 256):
        batch = []
        for i in range(s, min(s + 256, len(x))):
            oy, ox = rng.integers(0, 9, 2)
            batch.append(x[i, oy:oy + 24, ox:ox + 24, :])
        rows += len(np.stack(batch))
    return rows / (time.perf_counter() - start)


def numpy_flip(x, rng):
    start = time.perf_counter()
    rows = 0
    for s in range(0, len(x), 256):
        batch = [x[i, :, ::-1, :] if rng.random() < 0.5 else x[i] for i in range(s, min(s + 256, len(x)))]
        rows += len(np.stack(batch))
    return rows / (time.perf_counter() - start)


def npyflow(binary, pipeline, path):
    out = subprocess.run([binary, "bench", "--pipeline", pipeline, path, "--json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["rows_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("TMPDIR", "/tmp"))
    ap.add_argument("--npyflow", default=os.path.join(ROOT, "target", "release", "npyflow"))
    args = ap.parse_args()
    path = os.path.join(args.data, "random_ops_50000x32x32x3.npy")
    if not os.path.exists(path):
        np.save(path, np.random.default_rng(0).integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8))
    x = np.load(path, mmap_mode="r")
    rng = np.random.default_rng(1)
    cases = [
        ("random crop to 24x24x3", "map(random_crop([24, 24, 3], 1)).batch(256)", numpy_crop),
        ("random left-right flip", "map(random_flip(1, 1)).batch(256)", numpy_flip),
    ]
    print("| op, batches of 256 | npyflow | NumPy loop + np.stack | npyflow / NumPy |")
    print("|---|---|---|---|")
    for name, pipeline, loop in cases:
        ours, theirs = [], []
        for _ in range(3):
            ours.append(npyflow(args.npyflow, pipeline, path))
            theirs.append(loop(x, rng))
        a, b = statistics.median(ours), statistics.median(theirs)
        print("| %s | %.0fk rows/s | %.0fk rows/s | %.1fx |" % (name, a / 1e3, b / 1e3, a / b))


if __name__ == "__main__":
    main()
