#!/usr/bin/env python3
"""Saving and restoring an iterator in the middle of an epoch, npyflow against tf.data.

The pipeline is W2's (../shared/WORKLOADS.md): 1,048,576 rows of 256 float32 (1 GiB, from
the .npy files anchors.py writes) with their labels, shuffled, in batches of 1024, prefetched.
Each engine reads half an epoch, saves its iterator, and a pipeline built anew restores it and
reads the next batch. Reported: the state's size, the time to save it, and the time from
restoring to the next batch, each a median of --repeats runs, all engines in this one run.

    python bench/resume_bench.py --data /tmp/bench --peer-python /path/to/python-with-tf

npyflow runs in this interpreter (install it: pip install ./crates/npyflow-python); tf.data in
--peer-python, a Python with tensorflow-cpu (skipped if not given).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HALF = 512  # batches read before saving: half of W2's 1024


def run_npyflow(px, py, shuffle, repeats):
    import npyflow

    def build():
        x = npyflow.Dataset.from_npy(px)
        y = npyflow.Dataset.from_npy(py)
        ds = npyflow.Dataset.zip((x, y))
        ds = ds.global_shuffle(seed=0) if shuffle == "global" else ds.shuffle(10_000, seed=0)
        return ds.batch(1024).prefetch(npyflow.AUTOTUNE)

    sizes, saves, restores = [], [], []
    for _ in range(repeats):
        it = iter(build())
        for _ in range(HALF):
            next(it)
        t0 = time.perf_counter()
        state = it.get_state()
        saves.append(time.perf_counter() - t0)
        sizes.append(len(state))
        expected = next(it)
        t0 = time.perf_counter()
        again = iter(build())
        again.set_state(state)
        got = next(again)
        restores.append(time.perf_counter() - t0)
        assert (got[0] == expected[0]).all() and (got[1] == expected[1]).all()
        del it, again
    return {
        "engine": f"npyflow ({'global_shuffle' if shuffle == 'global' else 'shuffle(10000)'})",
        "state_bytes": statistics.median(sizes),
        "save_ms": statistics.median(saves) * 1e3,
        "restore_ms": statistics.median(restores) * 1e3,
    }


TF_SCRIPT = r"""
import json, os, statistics, sys, tempfile, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
px, py, repeats, half = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
x = np.load(px, mmap_mode="r"); y = np.load(py, mmap_mode="r")
def build():
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(10_000, seed=0)
    return ds.batch(1024).prefetch(tf.data.AUTOTUNE)
sizes, saves, restores = [], [], []
for _ in range(repeats):
    it = iter(build())
    for _ in range(half):
        next(it)
    d = tempfile.mkdtemp()
    ckpt = tf.train.Checkpoint(iterator=it)
    t0 = time.perf_counter()
    path = ckpt.write(os.path.join(d, "it"))
    saves.append(time.perf_counter() - t0)
    sizes.append(sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)))
    expected = next(it)
    t0 = time.perf_counter()
    again = iter(build())
    tf.train.Checkpoint(iterator=again).read(path).assert_consumed()
    got = next(again)
    restores.append(time.perf_counter() - t0)
    assert np.array_equal(got[1].numpy(), expected[1].numpy())
print(json.dumps({"engine": "tf.data (shuffle(10000))", "state_bytes": statistics.median(sizes),
                  "save_ms": statistics.median(saves) * 1e3,
                  "restore_ms": statistics.median(restores) * 1e3}))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/tmp/bench", help="where anchors.py's W2 files are")
    ap.add_argument("--peer-python", help="a Python with tensorflow-cpu")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "anchors"))
    from anchors import w2_files

    px, py = w2_files(1 << 20, 256, a.data)
    rows = [run_npyflow(px, py, "global", a.repeats), run_npyflow(px, py, "buffer", a.repeats)]
    if a.peer_python:
        out = subprocess.run(
            [a.peer_python, "-c", TF_SCRIPT, px, py, str(a.repeats), str(HALF)],
            check=True, capture_output=True, text=True,
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print("| pipeline (W2, saved after 512 of 1024 batches) | state | save | restore to next batch |")
    print("|---|---|---|---|")
    for r in rows:
        size = r["state_bytes"]
        shown = f"{size:,.0f} B" if size < 1 << 20 else f"{size / (1 << 20):,.1f} MiB"
        print(f"| {r['engine']} | {shown} | {r['save_ms']:.2f} ms | {r['restore_ms']:.1f} ms |")


if __name__ == "__main__":
    main()
