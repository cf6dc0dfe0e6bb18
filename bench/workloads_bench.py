#!/usr/bin/env python3
"""The standard workloads (../shared/WORKLOADS.md) on npyflow and on the peers, in one run.

For each workload, runs `npyflow bench --workload W --json` and ../shared/anchors/anchors.py
for NumPy (the vectorized floor), tf.data and torch (each only where its Python has the
package), alternating engines, REPEATS times, and reports medians and ratios. Also measures
how a CPU-heavy map scales from 1 to 2 threads (benches/scaling.rs).

    python bench/workloads_bench.py [--update] [--repeats 3] [--data DIR]
        [--peer-python PY]   # a Python with numpy (and tensorflow-cpu / torch to include them)

--update writes the table into BENCHMARKS.md between the workloads markers.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks_md import update_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.path.join(ROOT, "..", "shared", "anchors", "anchors.py")
NPYFLOW = os.path.join(ROOT, "target", "release", "npyflow")


def run_json(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), out.stderr.strip()[-2000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def has_module(python, name):
    return subprocess.run([python, "-c", "import " + name], capture_output=True).returncode == 0


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def pairs(python, rust):
    """The Python/Rust ratios run by run, where each Python run followed its Rust run."""
    if len(python) != len(rust):
        return ""
    return " (run by run: %s)" % ", ".join("%.2f" % (p["rows_per_s"] / r["rows_per_s"]) for p, r in zip(python, rust))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", default=os.environ.get("TMPDIR", "/tmp"))
    ap.add_argument("--peer-python", default=sys.executable)
    ap.add_argument("--workloads", default="w1,w2,w3")
    ap.add_argument("--npyflow-python", default=None,
                    help="a Python with npyflow (a release build) installed, for W1 and W4 through Python")
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "npyflow-cli"], cwd=ROOT, check=True)
    peers = ["numpy"] + [p for p, mod in (("tf", "tensorflow"), ("torch", "torch")) if has_module(args.peer_python, mod)]
    missing = [p for p in ("tf", "torch") if p not in peers]
    env = dict(os.environ, TMPDIR=args.data)

    # W1 and W2 through the Python package, each run right after the Rust run it is compared
    # with (the same conditions: on a shared machine, runs minutes apart are not comparable).
    py_runs = {"w1": [], "w2": []}

    def python_run(w):
        cmd = [args.npyflow_python, os.path.join(ROOT, "bench", "python_workloads.py"), "--workloads", w]
        if w == "w2":
            cmd += ["--data", args.data]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        py_runs[w].extend(json.loads(line) for line in out.strip().splitlines())

    results = {}
    for w in args.workloads.split(","):
        ours, theirs = [], {p: [] for p in peers}
        for _ in range(args.repeats):
            ours.append(run_json([NPYFLOW, "bench", "--workload", w, "--json", "--data", args.data]))
            if args.npyflow_python and w in py_runs:
                python_run(w)
            for p in peers:
                # tf.data takes tens of seconds on w2/w3: one run of it is enough.
                if p != "numpy" and theirs[p] and w != "w1":
                    continue
                theirs[p].append(run_json([args.peer_python, ANCHORS, w, p, "--data", args.data], env=env))
        results[w] = (ours, theirs)
        print(w, "npyflow", median(ours, "rows_per_s"),
              {p: median(r, "rows_per_s") for p, r in theirs.items()}, flush=True)

    # W1 and W3 on 1 and 2 threads (their num_parallel_calls), alternating, same run.
    thread_scaling = {}
    for w in [w for w in ("w1", "w3") if w in results]:
        runs = {1: [], 2: []}
        for _ in range(args.repeats):
            for t in (1, 2):
                runs[t].append(run_json([NPYFLOW, "bench", "--workload", w, "--json", "--data", args.data,
                                         "--threads", str(t)]))
        thread_scaling[w] = {t: median(r, "rows_per_s") for t, r in runs.items()}

    # Scaling of a CPU-heavy map (crates/npyflow/benches/scaling.rs: a gamma curve on every
    # pixel of 20,000 images, map with Parallelism::threads(n), n = 1, 2, ... threads).
    out = subprocess.run(["cargo", "bench", "-q", "--locked", "-p", "npyflow", "--bench", "scaling"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    scaling = {r["threads"]: r["rows_per_s"] for r in map(json.loads, out.strip().splitlines())}

    # W1 and W4 through the Python package, against the Rust W1 and the W4 peers.
    python_rows = []
    if args.npyflow_python:
        runs = {"w1": py_runs["w1"], "w2": py_runs["w2"], "w4": []}
        # W1 and W2 too where the Rust runs did not include them.
        todo = ",".join(["w4"] + [w for w in ("w1", "w2") if not py_runs[w]])
        w4_peers = {p: [] for p in peers}
        for _ in range(args.repeats):
            out = subprocess.run([args.npyflow_python, os.path.join(ROOT, "bench", "python_workloads.py"),
                                  "--data", args.data, "--workloads", todo],
                                 capture_output=True, text=True, check=True).stdout
            for r in map(json.loads, out.strip().splitlines()):
                runs[r["workload"]].append(r)
            for p in peers:
                if p == "numpy" or not w4_peers[p]:
                    w4_peers[p].append(run_json([args.peer_python, ANCHORS, "w4", p], env=env))
        rust_w1 = median(results["w1"][0], "rows_per_s") if "w1" in results else None
        py_w1 = median(runs["w1"], "rows_per_s")
        py_w4 = median(runs["w4"], "rows_per_s")
        line = "W1 through Python (`map(ops.cast(..., component=0), num_parallel_calls=AUTOTUNE).map(ops.scale(1 / 255, component=0)).batch(256).prefetch(AUTOTUNE)`): %.0fk rows/s" % (py_w1 / 1e3)
        if rust_w1:
            line += ", %.0f%% of the Rust figure" % (100 * py_w1 / rust_w1) + pairs(runs["w1"], results["w1"][0])
        if "w1" in results and "tf" in results["w1"][1]:
            line += ", %.0fx tf.data" % (py_w1 / median(results["w1"][1]["tf"], "rows_per_s"))
        python_rows.append(line + ".")
        if runs["w2"]:
            py_w2 = median(runs["w2"], "rows_per_s")
            line = "W2 through Python (`zip(from_npy(x), from_npy(y)).global_shuffle(seed=0).batch(1024, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)`, opening the files included): %.2f GB/s" % (py_w2 * 1024 / 1e9)
            if "w2" in results:
                line += ", %.0f%% of the Rust figure" % (100 * py_w2 / median(results["w2"][0], "rows_per_s")) + pairs(runs["w2"], results["w2"][0])
            python_rows.append(line + ".")
        line = "W4 through Python (its NumPy function per element, which `map` traces into native ops, then `batch(256)`): %.1fk rows/s, %.0f%% of NumPy's plain loop with `np.stack` (%.1fk)" % (
            py_w4 / 1e3, 100 * py_w4 / median(w4_peers["numpy"], "rows_per_s"), median(w4_peers["numpy"], "rows_per_s") / 1e3)
        if "tf" in w4_peers:
            line += ", %.1fx tf.data with `tf.numpy_function`" % (py_w4 / median(w4_peers["tf"], "rows_per_s"))
        python_rows.append(line + ".")

    names = {"w1": "W1: 50,000 images and labels in memory, cast to float32 and scaled (rows/s)",
             "w2": "W2: 1 GiB .npy, shuffled, batches of 1024 (GB/s of x)",
             "w3": "W3: 32 shard files interleaved, x * 2 (GB/s)"}
    row_bytes = {"w1": None, "w2": 256 * 4, "w3": 256 * 4}
    lines = ["| workload | npyflow | NumPy floor | npyflow / NumPy | tf.data | npyflow / tf.data | first batch | peak anon. memory |",
             "|---|---|---|---|---|---|---|---|"]
    for w, (ours, theirs) in results.items():
        r = median(ours, "rows_per_s")

        def fig(rows_per_s):
            if row_bytes[w] is None:
                return "%.0fk rows/s" % (rows_per_s / 1e3)
            return "%.2f GB/s" % (rows_per_s * row_bytes[w] / 1e9)
        np_r = median(theirs["numpy"], "rows_per_s")
        tf_cell, tf_ratio = "not installed", ""
        if "tf" in theirs:
            tf_r = median(theirs["tf"], "rows_per_s")
            tf_cell, tf_ratio = fig(tf_r), "%.0fx" % (r / tf_r)
        lines.append("| %s | %s | %s | %.2fx | %s | %s | %.1f ms | %.0f MiB |" % (
            names[w], fig(r), fig(np_r), r / np_r, tf_cell, tf_ratio,
            median(ours, "first_batch_ms"), median(ours, "rss_anon_peak_mib")))
    lines.append("")
    lines.append("A CPU-heavy map (`map` with `Parallelism::threads(n)` of a gamma curve on every pixel, then `batch(256)`, over 20,000 images; "
                 "`cargo bench -p npyflow --bench scaling`): " + ", ".join(
                     "%.0fk rows/s on %d thread%s" % (r / 1e3, t, "" if t == 1 else "s") for t, r in sorted(scaling.items()))
                 + "; %.2fx from 1 to 2 threads." % (scaling[2] / scaling[1]))
    for w, by in thread_scaling.items():
        lines.append("")
        lines.append("%s on 1 and 2 threads (`npyflow bench --workload %s --threads N`, the same run): %s on 1, %s on 2; %.2fx." % (
            w.upper(), w,
            *[("%.0fk rows/s" % (by[t] / 1e3)) if row_bytes[w] is None else ("%.2f GB/s" % (by[t] * row_bytes[w] / 1e9)) for t in (1, 2)],
            by[2] / by[1]))
    for row in python_rows:
        lines.append("")
        lines.append(row)
    if missing:
        lines.append("")
        lines.append("Not measured in this run (the peer Python lacks them): %s." % ", ".join(
            {"tf": "tf.data (tensorflow-cpu)", "torch": "torch's DataLoader"}[m] for m in missing))
    table = "\n".join(lines)
    print(table)
    if args.update:
        update_section("workloads", "The workloads", table,
                       ", medians of %d runs (tf.data: one run on w2/w3), with "
                       "`python bench/workloads_bench.py --update --peer-python PY`." % args.repeats)


if __name__ == "__main__":
    main()
