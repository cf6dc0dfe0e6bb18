"""``npyflow.profile``: the trace it writes is well formed (the Chrome trace-event format),
its spans nest per thread, every stage and thread is there, and the report names the slow
stage. Behaviour only, no timings."""

import json
import time

import numpy as np
import pytest

import npyflow as tfd
from python_child import run_python


def check_trace(path):
    """Every event well formed, complete spans nested per thread, threads named; returns the
    stage names with spans, the thread names and the count of counter samples."""
    with open(path) as f:
        root = json.load(f)
    stages, threads, counters, spans = set(), {}, 0, {}
    for e in root["traceEvents"]:
        assert isinstance(e["name"], str) and isinstance(e["pid"], int), e
        assert isinstance(e["tid"], int), e
        if e["ph"] == "X":
            assert isinstance(e["cat"], str), e
            assert e["ts"] >= 0 and e["dur"] >= 0, e
            start = round(e["ts"] * 1000)
            spans.setdefault(e["tid"], []).append((start, start + round(e["dur"] * 1000)))
            stages.add(e["name"])
        elif e["ph"] == "M":
            assert isinstance(e["args"]["name"], str), e
            if e["name"] == "thread_name":
                threads[e["tid"]] = e["args"]["name"]
        elif e["ph"] == "C":
            assert e["ts"] >= 0 and e["args"], e
            assert all(isinstance(v, (int, float)) for v in e["args"].values()), e
            counters += 1
        else:
            pytest.fail(f"unexpected phase: {e}")
    for tid, ss in spans.items():
        assert tid in threads, f"thread {tid} is named"
        ss.sort(key=lambda s: (s[0], -s[1]))
        open_ = []
        for s in ss:
            while open_ and open_[-1][1] <= s[0]:
                open_.pop()
            if open_:
                assert s[1] <= open_[-1][1], f"{s} overlaps {open_[-1]} on thread {tid}"
            open_.append(s)
    return stages, threads, counters


def small_w1():
    x = np.arange(300 * 8 * 8 * 3, dtype=np.uint8).reshape(300, 8, 8, 3)
    y = np.arange(300, dtype=np.int64)
    return (
        tfd.Dataset.from_tensor_slices((x, y))
        .map(tfd.ops.cast(np.float32, component=0), num_parallel_calls=2)
        .map(tfd.ops.scale(1 / 255.0, component=0))
        .batch(32)
        .prefetch(tfd.AUTOTUNE)
    )


def spin(x):
    end = time.perf_counter() + 0.001
    while time.perf_counter() < end:
        pass
    return x


def test_w1_trace_holds_every_stage(tmp_path):
    path = tmp_path / "w1.json"
    report = tfd.profile(small_w1(), path)
    assert isinstance(report, tfd.ProfileReport)
    assert report.elements == 10 and report.dropped == 0 and report.events > 0
    stages, threads, counters = check_trace(path)
    assert {"Prefetch", "Batch", "TensorSlice"} <= stages
    assert "npyflow-Prefetch" in threads.values()
    assert counters > 0
    assert str(report).startswith("bottleneck: ")


def test_the_report_names_the_slow_map(tmp_path):
    path = tmp_path / "slow.json"
    # Untraced maps (trace=False): spin is slow only when it runs per element.
    ds = (
        tfd.Dataset.range(60)
        .map(lambda x: x, trace=False)
        .map(spin, trace=False)
        .map(lambda x: x + 1, trace=False)
        .batch(4)
    )
    report = tfd.profile(ds, str(path))
    stages, _, _ = check_trace(path)
    assert {"Batch", "Map", "Range"} <= stages
    # Batch 0, cheap Map 1, slow Map 2, cheap Map 3, Range 4.
    assert (report.bottleneck, report.depth) == ("Map", 2), str(report)
    assert str(report).startswith("bottleneck: Map (depth 2)")
    assert "num_parallel_calls" in report.advice


def test_steps_and_cap(tmp_path):
    path = tmp_path / "t.json"
    report = tfd.profile(tfd.Dataset.range(1000).map(lambda x: x), path, steps=5, max_events=4)
    assert report.elements == 5
    assert (report.events, report.cap) == (4, 4) and report.dropped > 0
    check_trace(path)
    with pytest.raises(ValueError):
        tfd.profile(tfd.Dataset.range(3), path, steps=-1)
    with pytest.raises(TypeError):
        tfd.profile([1, 2], path)


def test_an_error_in_the_pass_is_raised(tmp_path):
    def boom(x):
        raise KeyError("nope")

    with pytest.raises(KeyError):
        tfd.profile(tfd.Dataset.range(3).map(boom, output_signature=tfd.TensorSpec((), np.int64)), tmp_path / "t.json")


def test_ctrl_c_stops_a_profile_of_native_work():
    # No Python function runs in this pass: the profile checks for signals itself.
    stdout = run_python(
        """
        import os, signal, tempfile, threading, time
        import npyflow as tfd

        ds = tfd.Dataset.range(10**12).map(tfd.ops.cast("float32"))
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            tfd.profile(ds, os.path.join(tempfile.mkdtemp(), "t.json"), max_events=1000)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted", time.monotonic() - t0 < 10)
        os._exit(0)
        """,
        timeout=60,
    )
    assert stdout.strip() == "interrupted True"
