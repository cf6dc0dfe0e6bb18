#!/usr/bin/env python3
"""`snapshot` against tf.data's, in one run (BENCHMARKS.md's "Snapshots").

    cd crates/npyflow-python && maturin build --release -o /tmp/wheels -i PYTHON
    PYTHON -m pip install /tmp/wheels/npyflow-*.whl
    PYTHON bench/snapshot_bench.py [--update] [--repeats 3] [--peer-python /tmp/peer/bin/python]

The pipeline: W4's 20,000 images (uint8 32x32x3, ../shared/WORKLOADS.md) and labels ->
map(a Python function neither engine can compile: W4's `flip` with a branch on a value, in
tf.data through tf.numpy_function) -> snapshot(a fresh directory) -> batch(256) -> prefetch.
For each engine, in one fresh process:
  make: the time `snapshot(...)` takes to return (npyflow digests the pipeline's arrays and
    functions for its fingerprint then; tf.data computes its fingerprint when iterated);
  first pass: rows/s of the pass that runs the map and writes the snapshot (one pass);
  replay: rows/s of the passes after it, which read the snapshot (whole passes until a
    second has gone by);
  no snapshot: rows/s of the same pipeline without `snapshot`, the map run each pass;
  size: the bytes the snapshot directory holds.
Each figure is the median of --repeats runs, engines alternating; every run checks that its
first batch holds the function's values. tf.data writes with its default compression
("AUTO", snappy); npyflow's snapshot is one uncompressed file that later passes map.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from traced_maps import data, every_batch, flip, flip_untraceable, passes_rate  # noqa: E402

N = 20_000


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def measure(make_plain, make_snapshot, want, root):
    """The figures of one engine: `make_snapshot(root)` builds the pipeline with a snapshot
    under `root`; `make_plain()` the same without it."""
    t0 = time.perf_counter()
    ds = make_snapshot(root)
    made = time.perf_counter() - t0
    t0 = time.perf_counter()
    first_batch = None
    for b in ds:
        if first_batch is None:
            first_batch = np.asarray(b[0])
    first = N / (time.perf_counter() - t0)
    assert np.array_equal(first_batch, want), "the first batch differs from the function's values"
    replay = passes_rate(lambda: every_batch(ds), N)
    plain = passes_rate(lambda: every_batch(make_plain()), N)
    return {"make_s": made, "first": first, "replay": replay, "plain": plain, "bytes": dir_bytes(root)}


def npyflow_case(root):
    import npyflow as tfd

    x, y = data(N)

    def plain():
        return tfd.Dataset.from_tensor_slices((x, y)).map(lambda a, b: (flip_untraceable(a), b))

    want = np.stack([flip(im) for im in x[:256]])
    return measure(lambda: plain().batch(256).prefetch(tfd.AUTOTUNE),
                   lambda r: plain().snapshot(r).batch(256).prefetch(tfd.AUTOTUNE), want, root)


def tf_case(root):
    import tensorflow as tf

    x, y = data(N)

    def plain():
        def f(a, b):
            img = tf.numpy_function(flip_untraceable, [a], tf.float32)
            return tf.ensure_shape(img, (32, 32, 3)), b
        return tf.data.Dataset.from_tensor_slices((x, y)).map(f)

    want = np.stack([flip(im) for im in x[:256]])
    # The writing pass keeps the input's order (what is checked); tf.data's replay reads its
    # shards interleaved.
    return measure(lambda: plain().batch(256).prefetch(tf.data.AUTOTUNE),
                   lambda r: plain().snapshot(r).batch(256).prefetch(tf.data.AUTOTUNE), want, root)


def run(engine, python):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
    root = tempfile.mkdtemp(prefix="snapbench-")
    try:
        out = subprocess.run([python, os.path.abspath(__file__), "--one", engine, "--root", root],
                             capture_output=True, text=True, env=env)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer-python", default="/tmp/peer/bin/python")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--root", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        result = npyflow_case(a.root) if a.one == "npyflow" else tf_case(a.root)
        print(json.dumps(result))
        return
    engines = [("npyflow", sys.executable)]
    have_tf = os.path.exists(a.peer_python) and subprocess.run(
        [a.peer_python, "-c", "import tensorflow"], capture_output=True).returncode == 0
    if have_tf:
        engines.append(("tf", a.peer_python))
    runs = {e: [] for e, _ in engines}
    for _ in range(a.repeats):
        for e, py in engines:
            runs[e].append(run(e, py))
    med = {e: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for e, rs in runs.items()}
    for e, rs in runs.items():
        print(e, json.dumps(rs))
    names = {"npyflow": "npyflow", "tf": "tf.data 2.21"}
    rows = [
        "| engine | make | first pass (writes) | replay | no snapshot | replay / no snapshot | size |",
        "|--------|-----:|--------------------:|-------:|------------:|---------------------:|-----:|",
    ]
    for e, m in med.items():
        rows.append("| %s | %.0f ms | %s rows/s | %s rows/s | %s rows/s | %.1fx | %.0f MB |" % (
            names[e], m["make_s"] * 1000, f"{m['first']:,.0f}", f"{m['replay']:,.0f}",
            f"{m['plain']:,.0f}", m["replay"] / m["plain"], m["bytes"] / 1e6))
    if have_tf:
        rows.append("| npyflow / tf.data | | %.1fx | %.1fx | %.1fx | | |" % (
            med["npyflow"]["first"] / med["tf"]["first"], med["npyflow"]["replay"] / med["tf"]["replay"],
            med["npyflow"]["plain"] / med["tf"]["plain"]))
    table = "\n".join(rows)
    print(table)
    if a.update:
        from benchmarks_md import update_section
        update_section(
            "snapshot", "Snapshots", table,
            " (median of %d runs, engines alternating; replay and no-snapshot rates over whole"
            " passes for at least a second), with `python bench/snapshot_bench.py --update"
            " --repeats %d` (npyflow a release wheel; tf.data 2.21 from /tmp/peer)."
            % (a.repeats, a.repeats))


if __name__ == "__main__":
    main()
