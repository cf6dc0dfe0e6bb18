#!/usr/bin/env python3
"""W1 (../shared/WORKLOADS.md) into the training frameworks, in one run: npyflow's
``to_torch()`` against torch's own ``DataLoader`` (anchors.py's map-style dataset, 0 and 2
worker processes), npyflow's ``to_jax()``, and each adapter's cost over iterating the same
npyflow pipeline plainly.

    python bench/frameworks_bench.py [--n 50000] [--repeats 3] [--update]

Needs a Python with npyflow (a release build), NumPy, and torch and/or jax (each part runs
where its framework imports). The torch part and the JAX part each run in a Python of their
own (torch's DataLoader forks; JAX's threads must not be in the forked process), each with
plain npyflow iteration measured beside it; engines alternate within each repeat; the table
gives medians of rows/s. --update writes it into BENCHMARKS.md between the frameworks
markers. As measured for BENCHMARKS.md (torch from a peer Python, npyflow's release build
and jax put on its path):

    cargo build --release --locked -p npyflow-python
    mkdir -p target/bench-site && cp -r crates/npyflow-python/python/npyflow target/bench-site/
    cp target/release/lib_npyflow.so target/bench-site/npyflow/_npyflow.abi3.so
    pip install --target target/bench-site --no-deps jax==0.10.2 jaxlib==0.10.2
    PYTHONPATH=target/bench-site /tmp/peer/bin/python bench/frameworks_bench.py --repeats 5 --update
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

import npyflow  # noqa: E402
from npyflow import ops  # noqa: E402

B = 256


def w1_data(n):
    # As ../shared/anchors/anchors.py makes it.
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=n).astype(np.int64)
    return x, y


def w1_npyflow(x, y):
    return (npyflow.Dataset.from_tensor_slices((x, y))
            .map(ops.cast("float32", component=0), num_parallel_calls=npyflow.AUTOTUNE)
            .map(ops.scale(1 / 255, component=0))
            .batch(B)
            .prefetch(npyflow.AUTOTUNE))


def timed(loop, n):
    t0 = time.perf_counter()
    rows = loop()
    dt = time.perf_counter() - t0
    assert rows == n, (rows, n)
    return n / dt


def engines(x, y, part):
    n = len(x)
    out = {}

    def plain():
        return sum(len(b[1]) for b in w1_npyflow(x, y))
    out["npyflow, plain iteration"] = plain
    if part == "torch":
        return torch_engines(x, y, n, out)
    return jax_engines(x, y, out)


def torch_engines(x, y, n, out):
    try:
        import torch
        from torch.utils.data import DataLoader, Dataset
    except ImportError:
        torch = None
    if torch is not None:
        def to_torch():
            return sum(len(b[1]) for b in w1_npyflow(x, y).to_torch())

        def to_torch_loader():
            loader = DataLoader(w1_npyflow(x, y).to_torch(), batch_size=None)
            return sum(len(b[1]) for b in loader)

        class DS(Dataset):  # anchors.py's W1 for torch
            def __len__(self):
                return n

            def __getitem__(self, i):
                return torch.from_numpy(x[i]).float() / 255.0, y[i]

        def torch_loader(workers):
            def run():
                return sum(len(b[1]) for b in DataLoader(DS(), batch_size=B, num_workers=workers))
            return run
        out["npyflow to_torch()"] = to_torch
        out["npyflow to_torch() in DataLoader(batch_size=None)"] = to_torch_loader
        out["torch DataLoader, 0 workers"] = torch_loader(0)
        out["torch DataLoader, 2 workers"] = torch_loader(2)
    return out


def jax_engines(x, y, out):
    try:
        import jax
    except ImportError:
        jax = None
    if jax is not None:
        def to_jax():
            rows = 0
            last = None
            for bx, by in w1_npyflow(x, y).to_jax():
                rows += by.shape[0]
                last = bx
            last.block_until_ready()
            return rows

        def numpy_device_put():
            # The floor of to_jax: the same batches put on the device by hand, no prefetch.
            rows = 0
            last = None
            for bx, by in w1_npyflow(x, y):
                last = jax.device_put(np.asarray(bx))
                jax.device_put(np.asarray(by))
                rows += len(by)
            last.block_until_ready()
            return rows
        out["npyflow to_jax()"] = to_jax
        out["npyflow + jax.device_put by hand"] = numpy_device_put
    return out


def measure(part, n, repeats):
    """Medians of rows/s of one part's engines (each with plain npyflow iteration beside it),
    engines alternating within each repeat."""
    x, y = w1_data(n)
    runs = engines(x, y, part)
    for f in runs.values():  # warm up: imports, thread pools, first page faults
        f()
    rates = {k: [] for k in runs}
    names = list(runs)
    for r in range(repeats):
        # Each repeat starts at another engine, so that none is always first.
        for k in names[r % len(names):] + names[:r % len(names)]:
            rates[k].append(timed(runs[k], n))
    vers = ["%s %s" % (m, sys.modules[m].__version__) for m in ("torch", "jax") if m in sys.modules]
    return {k: statistics.median(v) for k, v in rates.items()}, vers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--part", choices=["torch", "jax"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.part:
        med, vers = measure(a.part, a.n, a.repeats)
        print(json.dumps({"rows_per_s": med, "versions": vers}))
        return
    # torch's DataLoader forks its workers: JAX (threads of its own) must not be loaded in
    # that process, so each part runs in a Python of its own, one after the other.
    lines = ["| W1 (%d rows, batch %d) | rows/s (median of %d) | vs plain npyflow in the same part |"
             % (a.n, B, a.repeats), "|---|---|---|"]
    vers = []
    for part in ("torch", "jax"):
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--part", part, "--n", str(a.n),
                              "--repeats", str(a.repeats)], capture_output=True, text=True, check=True)
        got = json.loads(out.stdout.strip().splitlines()[-1])
        med = got["rows_per_s"]
        vers += got["versions"]
        base = med["npyflow, plain iteration"]
        for k, v in med.items():
            lines.append("| %s%s | %.0f | %.2fx |" % (k, " (%s part)" % part if k == "npyflow, plain iteration" else "",
                                                     v, v / base))
    table = "\n".join(lines)
    print(table)
    if a.update:
        from benchmarks_md import update_section

        update_section(
            "frameworks", "W1 into the training frameworks (to_torch, to_jax)", table,
            ", CPU only (%s), with `python bench/frameworks_bench.py --repeats %d --update` "
            "(a Python with npyflow built in release, torch and jax; see the script)"
            % (", ".join(vers) or "no framework", a.repeats))


if __name__ == "__main__":
    main()
