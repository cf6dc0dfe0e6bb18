#!/usr/bin/env python3
"""Traced maps against built-in ops, a NumPy loop and tf.data, in one run (BENCHMARKS.md's
"Traced map functions").

    cd crates/npyflow-python && maturin build --release -o /tmp/wheels -i PYTHON
    PYTHON -m pip install /tmp/wheels/npyflow-*.whl
    PYTHON bench/traced_maps.py [--update] [--repeats 3] [--peer-python /tmp/peer/bin/python]

Rows (W1's and W4's data, ../shared/WORKLOADS.md):
  seed pipeline: from_tensor_slices((x, y)) -> map -> batch(256) -> prefetch, 50,000 rows,
    the map as a lambda (`x.astype(np.float32) / 255.0`, traced) and as npyflow.ops, both
    as the seed writes it (no num_parallel_calls) and both with num_parallel_calls=AUTOTUNE;
  W4: W4's `flip` traced, against the NumPy loop of anchors.py (a Python call per image and
    np.stack per batch) and tf.data with the same function in tf ops (AUTOTUNE), 20,000 rows;
  untraceable: a Python function npyflow cannot trace (`flip` with a branch on a value),
    serial and with num_parallel_calls=AUTOTUNE.
Each figure is the median of --repeats runs, engines alternating. Every run is a fresh
process with OPENBLAS_NUM_THREADS=1 (no engine here calls BLAS; NumPy's BLAS threads, started
at import, otherwise spin on a core for about a tenth of a second, into a pass this short).
npyflow and tf.data each take a first batch from the dataset and check its values before the
timed passes: neither engine's start-up (tf.data's function tracing, npyflow's first
threads) is timed. Each run times whole passes over the rows, one after another, until at
least a second has gone by, and reports the rows of all of them over that time:
a single pass of npyflow's takes 10-40 ms, short enough that where in this shared machine's
swings of speed it fell decided its figure. Every engine is timed so, and each later pass
opens the dataset again as an epoch of training does.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def data(n):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=n).astype(np.int64)
    return x, y


def flip(img):
    return (img[:, ::-1, :].astype(np.float32) + 8.0) / 255.0


def flip_untraceable(img):
    # The same work with a branch on a value: `if` asks the truth of a traced value, so
    # npyflow calls it per element.
    if img[0, 0, 0] > 255:
        return img.astype(np.float32)
    return (img[:, ::-1, :].astype(np.float32) + 8.0) / 255.0


MIN_SECONDS = 1.0


def passes_rate(one_pass, n):
    """Rows a second over whole passes (`one_pass()` each) until MIN_SECONDS have gone by."""
    passes, t0 = 0, time.perf_counter()
    while True:
        one_pass()
        passes += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= MIN_SECONDS:
            return n * passes / elapsed


def every_batch(ds):
    """One pass over `ds`, each batch taken and dropped."""
    for _ in ds:
        pass


def timed(make, n, want):
    ds = make()
    # One batch first, checked against the function's own values, as tf_w4 does for tf.data.
    first = next(iter(ds))
    assert np.array_equal(first[0], want), "the first batch differs from the function's values"
    return passes_rate(lambda: every_batch(ds), n)


def npyflow_rows(case, n):
    import npyflow as tfd
    from npyflow import ops

    x, y = data(n)
    src = lambda: tfd.Dataset.from_tensor_slices((x, y))
    if case in ("seed_lambda", "seed_lambda_autotune"):
        par = tfd.AUTOTUNE if case.endswith("autotune") else None
        make = lambda: (src().map(lambda a, b: (a.astype(np.float32) / 255.0, b), num_parallel_calls=par)
                        .batch(256).prefetch(tfd.AUTOTUNE))
    elif case in ("seed_ops", "seed_ops_autotune"):
        par = tfd.AUTOTUNE if case.endswith("autotune") else None
        make = lambda: (src().map(ops.cast("float32", component=0), num_parallel_calls=par)
                        .map(ops.scale(1 / 255, component=0), num_parallel_calls=par)
                        .batch(256).prefetch(tfd.AUTOTUNE))
    elif case == "w4_traced":
        make = lambda: src().map(lambda a, b: (flip(a), b)).batch(256).prefetch(tfd.AUTOTUNE)
    elif case == "w4_traced_autotune":
        make = lambda: src().map(lambda a, b: (flip(a), b), num_parallel_calls=tfd.AUTOTUNE).batch(256).prefetch(tfd.AUTOTUNE)
    elif case == "untraceable_serial":
        make = lambda: src().map(lambda a, b: (flip_untraceable(a), b)).batch(256).prefetch(tfd.AUTOTUNE)
    elif case == "untraceable_autotune":
        make = lambda: (src().map(lambda a, b: (flip_untraceable(a), b), num_parallel_calls=tfd.AUTOTUNE)
                        .batch(256).prefetch(tfd.AUTOTUNE))
    else:
        raise SystemExit(case)
    if case.startswith("seed"):
        want = x[:256].astype(np.float32) / 255.0
    else:
        want = np.stack([flip(im) for im in x[:256]])
    return timed(make, n, want)


def numpy_loop(n):
    x, y = data(n)

    def one_pass():
        for i in range(0, n, 256):
            batch = (np.stack([flip(im) for im in x[i:i + 256]]), y[i:i + 256])
        del batch

    return passes_rate(one_pass, n)


def tf_w4(n):
    import tensorflow as tf

    x, y = data(n)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.map(lambda a, b: ((tf.cast(tf.reverse(a, [1]), tf.float32) + 8.0) / 255.0, b),
                num_parallel_calls=tf.data.AUTOTUNE).batch(256).prefetch(tf.data.AUTOTUNE)
    # Check the tf ops compute flip's values before timing them.
    first = next(iter(ds))[0].numpy()
    assert np.array_equal(first, np.stack([flip(im) for im in x[:256]])), "tf ops differ from flip"
    return passes_rate(lambda: every_batch(ds), n)


def run(args, cmd_python=None):
    py = cmd_python or sys.executable
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([py, os.path.abspath(__file__)] + args, capture_output=True, text=True,
                         env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])["rows_per_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer-python", default="/tmp/peer/bin/python")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        if a.one == "numpy_loop":
            r = numpy_loop(a.n)
        elif a.one == "tf_w4":
            r = tf_w4(a.n)
        else:
            r = npyflow_rows(a.one, a.n)
        print(json.dumps({"rows_per_s": r}))
        return
    n1, n4 = 50_000, 20_000
    cases = [("seed_lambda", n1, None), ("seed_ops", n1, None), ("seed_lambda_autotune", n1, None),
             ("seed_ops_autotune", n1, None), ("w4_traced", n4, None),
             ("w4_traced_autotune", n4, None), ("numpy_loop", n4, None),
             ("untraceable_serial", n4, None), ("untraceable_autotune", n4, None)]
    have_tf = os.path.exists(a.peer_python) and subprocess.run(
        [a.peer_python, "-c", "import tensorflow"], capture_output=True).returncode == 0
    if have_tf:
        cases.append(("tf_w4", n4, a.peer_python))
    results = {c[0]: [] for c in cases}
    for _ in range(a.repeats):
        for name, n, py in cases:
            results[name].append(run(["--one", name, "--n", str(n)], py))
    med = {k: statistics.median(v) for k, v in results.items()}
    for k, v in med.items():
        print(f"{k}: {v:,.0f} rows/s  (runs: {', '.join(f'{r:,.0f}' for r in results[k])})")
    rows = [
        "| pipeline | rows/s | ratio |",
        "|----------|-------:|------:|",
        "| seed pipeline, `map(lambda x, y: (x.astype(np.float32) / 255.0, y))` (traced) | %s | %.2fx the ops pipeline |"
        % (f"{med['seed_lambda']:,.0f}", med["seed_lambda"] / med["seed_ops"]),
        "| seed pipeline, `npyflow.ops.cast` + `ops.scale` | %s | 1.00x |" % f"{med['seed_ops']:,.0f}",
        "| the same lambda, num_parallel_calls=AUTOTUNE | %s | %.2fx the ops pipeline |"
        % (f"{med['seed_lambda_autotune']:,.0f}", med["seed_lambda_autotune"] / med["seed_ops_autotune"]),
        "| the same ops, num_parallel_calls=AUTOTUNE | %s | 1.00x |" % f"{med['seed_ops_autotune']:,.0f}",
        "| W4 `flip` traced | %s | %.1fx the NumPy loop%s |"
        % (f"{med['w4_traced']:,.0f}", med["w4_traced"] / med["numpy_loop"],
           ", %.1fx tf.data" % (med["w4_traced"] / med["tf_w4"]) if have_tf else ""),
        "| W4 `flip` traced, num_parallel_calls=AUTOTUNE | %s | %.1fx the NumPy loop |"
        % (f"{med['w4_traced_autotune']:,.0f}", med["w4_traced_autotune"] / med["numpy_loop"]),
        "| W4 NumPy loop (a Python call per image, np.stack per batch) | %s | 1.0x |" % f"{med['numpy_loop']:,.0f}",
    ]
    if have_tf:
        rows.append("| W4 tf.data 2.21, `flip` in tf ops, AUTOTUNE | %s | |" % f"{med['tf_w4']:,.0f}")
    rows += [
        "| untraceable Python function (W4's with a branch on a value), serial | %s | 1.00x |"
        % f"{med['untraceable_serial']:,.0f}",
        "| the same, num_parallel_calls=AUTOTUNE | %s | %.2fx serial |"
        % (f"{med['untraceable_autotune']:,.0f}", med["untraceable_autotune"] / med["untraceable_serial"]),
    ]
    table = "\n".join(rows)
    print(table)
    if a.update:
        from benchmarks_md import update_section
        update_section(
            "traced_maps", "Traced map functions", table,
            " (median of %d runs, engines alternating, each run whole passes for at least a second),"
            " with `python bench/traced_maps.py --update --repeats %d` (npyflow a release wheel;"
            " tf.data 2.21 from /tmp/peer)." % (a.repeats, a.repeats))


if __name__ == "__main__":
    main()
