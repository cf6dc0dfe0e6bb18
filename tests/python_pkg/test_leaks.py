"""Many iterators created and dropped mid-epoch from Python leave no thread, file descriptor
or memory behind (the Rust suite's leak test counts 10,000; this counts the Python front's
own threads and conversions)."""

import gc
import os
import sys
import time

import numpy as np
import pytest

import npyflow

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc")


def threads():
    return len(os.listdir("/proc/self/task"))


def fds():
    return len(os.listdir("/proc/self/fd"))


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def settle(baseline):
    until = time.monotonic() + 2
    while threads() > baseline and time.monotonic() < until:
        time.sleep(0.005)
    return threads()


def test_dropped_iterators_leave_nothing(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.arange(4096 * 8, dtype=np.float32).reshape(4096, 8))

    def build():
        ds = npyflow.Dataset.from_npy(path)
        return (
            ds.global_shuffle(seed=1)
            .map(lambda x: x * 2, num_parallel_calls=2)
            .batch(16)
            .prefetch(2)
        )

    for _ in range(20):
        list(zip(range(3), build()))
    gc.collect()
    t0, f0, m0 = settle(threads()), fds(), rss()
    for i in range(2000):
        it = iter(build())
        for _ in range(i % 4):
            next(it)
        if i % 500 == 0:
            it.get_state()
        del it
    gc.collect()
    # At most as many as before (threads other tests left behind may end meanwhile).
    assert settle(t0) <= t0
    assert fds() == f0
    assert rss() - m0 < 64 << 20
