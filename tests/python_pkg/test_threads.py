"""Python is released while npyflow works, Ctrl-C interrupts a waiting next(), and dropping
an iterator stops its threads."""

import gc
import os
import threading
import time

import numpy as np
import pytest

import npyflow as tfd
from python_child import run_python


def npyflow_threads():
    """Names of this process's threads that npyflow started (Linux only)."""
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return [n for n in names if n.startswith("npyflow")]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
def test_dropping_an_iterator_stops_its_threads():
    before = len(npyflow_threads())
    it = iter(tfd.Dataset.range(10**9).map(tfd.ops.cast(np.float32)).prefetch(4))
    assert next(it) == 0.0
    assert len(npyflow_threads()) > before
    del it
    gc.collect()
    deadline = time.monotonic() + 5
    while len(npyflow_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(npyflow_threads()) == before


def test_other_python_threads_run_while_a_pass_waits():
    # The generator sleeps in the prefetch thread; the main thread waits for it with Python
    # released, so a third thread keeps running Python code meanwhile.
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.005)

    def slow():
        for i in range(5):
            time.sleep(0.05)
            yield i

    t = threading.Thread(target=ticker)
    t.start()
    try:
        ds = tfd.Dataset.from_generator(slow, output_signature=tfd.TensorSpec((), np.int64)).prefetch(1)
        assert [int(v) for v in ds] == [0, 1, 2, 3, 4]
    finally:
        stop.set()
        t.join()
    assert len(ticks) > 10


def run_interrupted(code: str) -> str:
    return run_python(code, timeout=60)


def test_ctrl_c_interrupts_a_next_that_waits_for_a_thread():
    stdout = run_interrupted(
        """
        import os, signal, threading, time
        import numpy as np
        import npyflow as tfd

        def slow(x):
            time.sleep(30)
            return x

        ds = tfd.Dataset.range(3).map(slow, output_signature=tfd.TensorSpec((), np.int64), trace=False).prefetch(1)
        it = iter(ds)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            next(it)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted", time.monotonic() - t0 < 5)
        os._exit(0)
        """
    )
    assert stdout.strip() == "interrupted True"


def test_ctrl_c_interrupts_a_wait_for_a_thread_behind_a_later_stage():
    # The prefetch is not the last stage: the pass is driven from a thread of its own, and
    # the wait there is interrupted as the wait for a last prefetch is.
    stdout = run_interrupted(
        """
        import os, signal, threading, time
        import numpy as np
        import npyflow as tfd

        def slow(x):
            time.sleep(30)
            return x

        ds = tfd.Dataset.range(3).map(slow, output_signature=tfd.TensorSpec((), np.int64), trace=False).prefetch(1).batch(1)
        it = iter(ds)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            next(it)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted", time.monotonic() - t0 < 5)
        os._exit(0)
        """
    )
    assert stdout.strip() == "interrupted True"


def test_an_interrupted_wait_loses_no_element():
    # Ctrl-C during a wait for a last prefetch: the element being made is the next one.
    stdout = run_interrupted(
        """
        import os, signal, threading, time
        import numpy as np
        import npyflow as tfd

        def slow(x):
            time.sleep(1.0)
            return x

        ds = tfd.Dataset.range(3).map(slow, output_signature=tfd.TensorSpec((), np.int64), trace=False).prefetch(1)
        it = iter(ds)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            next(it)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted", [int(v) for v in it])
        os._exit(0)
        """
    )
    assert stdout.strip() == "interrupted [0, 1, 2]"


def test_ctrl_c_in_a_user_function_is_not_swallowed_by_ignore_errors():
    stdout = run_interrupted(
        """
        import os, signal, threading, time
        import numpy as np
        import npyflow as tfd

        def slow(x):
            time.sleep(0.2)
            return x

        ds = tfd.Dataset.range(100).map(slow, output_signature=tfd.TensorSpec((), np.int64), trace=False).ignore_errors().batch(10)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            for b in ds:
                pass
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted", time.monotonic() - t0 < 5)
        # The next pass runs again as usual.
        print(sum(int(v) for v in tfd.Dataset.range(4).map(lambda x: x * 2)))
        """
    )
    assert stdout.split() == ["interrupted", "True", "12"]
