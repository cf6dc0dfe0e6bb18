#!/usr/bin/env python3
"""Whether W3 is bound by memory bandwidth on this machine: NumPy's `x * 2` (into a new
array, and into a reused one) and a plain copy over W3's 32 memory-mapped shard files,
in batches of 1024 rows, on one thread and on two (NumPy releases the GIL in both), best
of three passes each. If two threads run near twice one thread's GB/s, memory leaves room
for a pipeline on two cores to beat the one-thread NumPy floor by that much.

    npyflow bench --workload w3 --data DIR     # makes the files when missing
    python bench/w3_bandwidth.py DIR/w3_32x32768x256
"""
import glob
import sys
import threading
import time

import numpy as np

B = 1024


def one_thread(files, op):
    out = np.empty((B, 256), np.float32)
    for p in files:
        x = np.load(p, mmap_mode="r")
        for i in range(0, len(x), B):
            if op == "x * 2":
                x[i:i + B] * 2
            elif op == "x * 2 into a reused array":
                np.multiply(x[i:i + B], 2, out=out[: min(B, len(x) - i)])
            else:
                np.array(x[i:i + B])


def main():
    files = sorted(glob.glob(sys.argv[1] + "/part-*.npy"))
    if not files:
        sys.exit("no part-*.npy files in %s: run `npyflow bench --workload w3 --data DIR` first" % sys.argv[1])
    total = sum(np.load(p, mmap_mode="r").nbytes for p in files)
    for op in ("x * 2", "x * 2 into a reused array", "copy"):
        for n in (1, 2):
            best = 0.0
            for _ in range(3):
                threads = [threading.Thread(target=one_thread, args=(files[k::n], op)) for k in range(n)]
                t0 = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                best = max(best, total / (time.perf_counter() - t0) / 1e9)
            print("%-27s %d thread%s: %.2f GB/s of x" % (op, n, "" if n == 1 else "s", best))


if __name__ == "__main__":
    main()
