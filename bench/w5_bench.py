#!/usr/bin/env python3
"""W5 (../shared/WORKLOADS.md): patches of a 1 GiB cube, on npyflow and on the peers, in one
run.

Runs `npyflow bench --workload w5 --json` and ../shared/anchors/anchors.py w5 numpy (the loop
over the mapped cube, np.stack per batch; and tf, torch where the peer Python has them, once
each: they take tens of seconds) alternating, REPEATS times, and reports medians and ratios
of patches/s, GB/s and peak anonymous memory (RssAnon: resident memory less the file's
mapped pages).

    python bench/w5_bench.py [--update] [--repeats 5] [--data DIR] [--peer-python PY]

--update writes the table into BENCHMARKS.md between the w5 markers.
"""
import argparse
import os
import statistics
import subprocess
import sys

from benchmarks_md import update_section
from workloads_bench import ANCHORS, NPYFLOW, ROOT, has_module, run_json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data", default=os.environ.get("TMPDIR", "/tmp"))
    ap.add_argument("--peer-python", default=sys.executable)
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "npyflow-cli"], cwd=ROOT, check=True)
    peers = ["numpy"] + [p for p, mod in (("tf", "tensorflow"), ("torch", "torch")) if has_module(args.peer_python, mod)]
    env = dict(os.environ, TMPDIR=args.data)
    # The cube is made by anchors.py (NumPy's generator), so both read the same file.
    run_json([args.peer_python, ANCHORS, "w5", "numpy", "--data", args.data], env=env)
    ours, one, theirs = [], [], {p: [] for p in peers}
    for _ in range(args.repeats):
        ours.append(run_json([NPYFLOW, "bench", "--workload", "w5", "--json", "--data", args.data]))
        one.append(run_json([NPYFLOW, "bench", "--workload", "w5", "--json", "--threads", "1", "--data", args.data]))
        for p in peers:
            if p != "numpy" and theirs[p]:
                continue
            theirs[p].append(run_json([args.peer_python, ANCHORS, "w5", p, "--data", args.data], env=env))
        print("npyflow", ours[-1]["rows_per_s"], "one thread", one[-1]["rows_per_s"],
              {p: r[-1]["rows_per_s"] for p, r in theirs.items()}, flush=True)

    med = lambda rows, key: statistics.median(r[key] for r in rows)
    r = med(ours, "rows_per_s")
    lines = ["| engine | patches/s | GB/s | npyflow / engine | peak anon. memory |", "|---|---|---|---|---|"]
    lines.append("| npyflow (`from_npy_patches(..., num_parallel_reads=AUTOTUNE).global_shuffle(seed=0).batch(64)`) "
                 "| %.1fk | %.2f | | %.0f MiB |" % (r / 1e3, med(ours, "gb_per_s"), med(ours, "rss_anon_peak_mib")))
    r1 = med(one, "rows_per_s")
    lines.append("| npyflow, one copying thread (`--threads 1`) | %.1fk | %.2f | | %.0f MiB |" % (
        r1 / 1e3, med(one, "gb_per_s"), med(one, "rss_anon_peak_mib")))
    names = {"numpy": "NumPy loop over the mapped cube (`np.stack` of 64 slices)",
             "tf": "tf.data (positions as the dataset, `tf.numpy_function` slicing, AUTOTUNE)",
             "torch": "torch DataLoader (0 workers, `__getitem__` slicing)"}
    for p, rows in theirs.items():
        pr = med(rows, "rows_per_s")
        lines.append("| %s | %.1fk | %.2f | %.2fx | %d MiB (at the end) |" % (
            names[p], pr / 1e3, med(rows, "gb_per_s"), r / pr, med(rows, "rss_anon_end_mib")))
    per_run = ", ".join("%.2fx" % (o["rows_per_s"] / t["rows_per_s"]) for o, t in zip(ours, theirs["numpy"]))
    per_run1 = ", ".join("%.2fx" % (o["rows_per_s"] / t["rows_per_s"]) for o, t in zip(one, theirs["numpy"]))
    np_r = med(theirs["numpy"], "rows_per_s")
    lines.append("")
    lines.append("npyflow / NumPy loop, medians: %.2fx (AUTOTUNE), %.2fx (one thread); run by run (alternating): %s; "
                 "one thread: %s. First batch after %.1f ms (opening the file included). Load average during the run: %s."
                 % (r / np_r, r1 / np_r, per_run, per_run1, med(ours, "first_batch_ms"),
                    " / ".join("%.1f" % v for v in os.getloadavg())))
    table = "\n".join(lines)
    print(table)
    if args.update:
        update_section("w5", "W5: patches of one large array", table,
                       ", medians of %d alternating runs (tf.data and torch: one run), cube 2048 x 2048 x 64 "
                       "float32 in the page cache, 16,129 patches of 32 x 32 x 64, with "
                       "`python bench/w5_bench.py --update --peer-python PY`." % args.repeats)


if __name__ == "__main__":
    main()
