#!/usr/bin/env python3
"""Two builds of npyflow on the standard workloads, in one run: did a change make them slower?

Runs `BIN bench --workload W --json` for a baseline binary and a changed one, alternating
(A, B, A, B, ...) so that both see the same machine, REPEATS times each, and reports the
median rows/s and time to the first batch of each and their ratio (changed / baseline: above
1 is faster). Both binaries read the same data files (--data) with the page cache warm.

    cargo build --release -p npyflow-cli                  # the changed build, target/release
    git worktree add /tmp/base <commit> && (cd /tmp/base && cargo build --release -p npyflow-cli)
    python bench/compare_builds.py /tmp/base/target/release/npyflow target/release/npyflow \\
        [--workloads w1,w2,w3] [--repeats 7] [--data DIR] [--markdown]
"""
import argparse
import json
import os
import statistics
import subprocess


def run(binary, workload, data):
    cmd = [binary, "bench", "--workload", workload, "--json", "--data", data]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), out.stderr.strip()[-2000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("baseline", help="the npyflow binary before the change")
    ap.add_argument("changed", help="the npyflow binary after the change")
    ap.add_argument("--workloads", default="w1,w2,w3")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--data", default=os.environ.get("TMPDIR", "/tmp"))
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()

    rows = []
    for w in args.workloads.split(","):
        # One run each first: makes W2/W3's files and warms the page cache.
        run(args.baseline, w, args.data)
        run(args.changed, w, args.data)
        got = {"baseline": [], "changed": []}
        for _ in range(args.repeats):
            for which in ("baseline", "changed"):
                got[which].append(run(getattr(args, which), w, args.data))
        med = {k: (statistics.median(r["rows_per_s"] for r in v),
                   statistics.median(r["first_batch_ms"] for r in v)) for k, v in got.items()}
        rows.append((w, med["baseline"], med["changed"]))

    if args.markdown:
        print("| workload | baseline rows/s | changed rows/s | changed / baseline | "
              "first batch, baseline | first batch, changed |")
        print("|---|---|---|---|---|---|")
    for w, (b_rate, b_first), (c_rate, c_first) in rows:
        ratio = c_rate / b_rate
        if args.markdown:
            print("| %s | %.0fk | %.0fk | %.2fx | %.1f ms | %.1f ms |"
                  % (w.upper(), b_rate / 1e3, c_rate / 1e3, ratio, b_first, c_first))
        else:
            print("%s: baseline %.0fk rows/s, changed %.0fk rows/s (%.2fx); first batch %.1f ms / %.1f ms"
                  % (w, b_rate / 1e3, c_rate / 1e3, ratio, b_first, c_first))


if __name__ == "__main__":
    main()
