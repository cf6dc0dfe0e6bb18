#!/usr/bin/env python3
"""Run-time autotuning against a sweep of hand-set parallelism, in one run (issue 16).

The pipeline has one slow stage among cheap ones: `from_tensor_slices(x).shuffle(1000)
.map(cheap).map(heavy).map(cheap).batch(64).prefetch(AUTOTUNE)` over 20,000 rows of 64
float32 (heavy: ~60 us a row of sines, in Rust). `npyflow bench --workload slow-stage
--sweep` runs it with every map at num_parallel_calls 1, 2, ... (up to twice the cores, at
least 4) and at AUTOTUNE, in turn, ROUNDS times in one process, and reports each setting's
best rows/s, the AUTOTUNE run's share of the best hand-set one, and the most bytes the
parallel stages held at once (the AUTOTUNE run within --ram-budget). This script repeats that
REPEATS times (separate processes) and reports each repeat's figures.

    python bench/autotune_bench.py [--update] [--repeats 3] [--rounds 3] [--ram-budget 4194304]
        [--cores 2]

--cores N runs the bench under `taskset -c 0-(N-1)` (the tuner's CPU budget is then N);
--update writes the table into BENCHMARKS.md between the autotune markers.
"""
import argparse
import os
import shutil
import subprocess

from benchmarks_md import update_section
from workloads_bench import NPYFLOW, ROOT, run_json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ram-budget", type=int, default=4 << 20)
    ap.add_argument("--cores", type=int, default=0)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()

    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "npyflow-cli"], cwd=ROOT, check=True)
    cmd = [NPYFLOW, "bench", "--workload", "slow-stage", "--sweep", "--rounds", str(args.rounds),
           "--ram-budget", str(args.ram_budget), "--json"]
    if args.cores and shutil.which("taskset"):
        cmd = ["taskset", "-c", "0-%d" % (args.cores - 1)] + cmd
    runs = []
    for i in range(args.repeats):
        r = run_json(cmd)
        runs.append(r)
        print("repeat %d: AUTOTUNE %.2f of the best hand-set; %s" % (
            i + 1, r["autotune_share_of_best"],
            ", ".join("%s %.0f" % (s["threads"], s["best_rows_per_s"]) for s in r["settings"])), flush=True)

    settings = [s["threads"] for s in runs[0]["settings"]]
    lines = ["| num_parallel_calls | " + " | ".join("repeat %d rows/s" % (i + 1) for i in range(len(runs)))
             + " | peak buffered |",
             "|---|" + "---|" * len(runs) + "---|"]
    for k, name in enumerate(settings):
        peak = max(r["settings"][k]["peak_buffered_bytes"] for r in runs)
        lines.append("| %s | %s | %.2f MB |" % (
            name, " | ".join("%.1fk" % (r["settings"][k]["best_rows_per_s"] / 1e3) for r in runs), peak / 1e6))
    lines.append("")
    lines.append("AUTOTUNE / best hand-set, by repeat: %s (aim: >= 0.90). RAM budget %.1f MB; the AUTOTUNE "
                 "run's peak buffered bytes are in its row. Tuned settings at the end of the last AUTOTUNE "
                 "pass (stage #n threads x buffer): %s. Cores: %d. Load average after the run: %s."
                 % (", ".join("%.2f" % r["autotune_share_of_best"] for r in runs), args.ram_budget / 1e6,
                    runs[-1]["autotune_settings"], runs[-1]["cores"],
                    " / ".join("%.1f" % v for v in os.getloadavg())))
    table = "\n".join(lines)
    print(runs[0]["pipeline"])
    print(table)
    if args.update:
        update_section(
            "autotune", "Run-time autotuning against hand-set parallelism", table,
            ": %s. Each figure is the best of %d rounds (every setting in turn, in one process), "
            "with `python bench/autotune_bench.py --update --repeats %d --rounds %d --ram-budget %d%s`."
            % (runs[0]["pipeline"], args.rounds, args.repeats, args.rounds, args.ram_budget,
               " --cores %d" % args.cores if args.cores else ""))


if __name__ == "__main__":
    main()
