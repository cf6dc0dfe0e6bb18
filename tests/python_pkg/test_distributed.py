"""Data-parallel reading across processes: real Pythons on this host, one per worker, told
their place the way torchrun tells it (RANK, WORLD_SIZE, LOCAL_RANK) or by JAX
(jax.distributed.initialize with a coordinator on 127.0.0.1). Each reads its part of the
shared seeded order with distributed_batch; the test checks, against the order one process
reads alone, that together they read every element exactly once per epoch, in the same
number of steps each, in the same global order whatever their number, and that a state
saved at one world size goes on at another."""

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import npyflow
from procs import free_port, run_workers

CHILD = str(Path(__file__).with_name("dist_child.py"))
N, GLOBAL_BATCH = 103, 12


def expected_epochs(epochs):
    """The global order one process reads alone (every element, times 10, as the child's
    map makes it), epoch by epoch."""
    ds = npyflow.Dataset.range(N).global_shuffle(seed=7).map(lambda x: x * 10)
    return [[int(v) for v in ds] for _ in range(epochs)]


def torchrun_envs(world):
    return [{"RANK": str(r), "WORLD_SIZE": str(world), "LOCAL_RANK": str(r)} for r in range(world)]


def global_order(outs, epoch):
    """The elements of one epoch step by step, worker 0's rows first in each step."""
    steps = {len(o["epochs"][epoch]) for o in outs}
    assert len(steps) == 1, f"workers took different numbers of steps: {steps}"
    order = []
    for s in range(steps.pop()):
        for o in sorted(outs, key=lambda o: o["rank"]):
            order.extend(o["epochs"][epoch][s])
    return order


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_every_world_size_reads_the_same_global_order_exactly_once(world):
    outs = run_workers([CHILD, str(N), str(GLOBAL_BATCH), "2", "-1"], torchrun_envs(world), 120)
    assert sorted(o["rank"] for o in outs) == list(range(world))
    assert {o["source"] for o in outs} == {"environment"}
    assert {o["world"] for o in outs} == {world}
    want = expected_epochs(2)
    assert want[0] != want[1]  # each epoch its own order
    for epoch in range(2):
        got = global_order(outs, epoch)
        assert got == want[epoch]
        assert sorted(got) == [10 * i for i in range(N)]
    # Equal steps: ceil(103 / 12) = 9 for every worker, as len() says.
    assert {o["len"] for o in outs} == {9}
    assert {len(o["epochs"][0]) for o in outs} == {9}


@pytest.mark.parametrize("restore_world", [3, 1])
def test_a_state_saved_on_two_workers_goes_on_at_another_world_size(restore_world):
    saved = run_workers([CHILD, str(N), str(GLOBAL_BATCH), "1", "4"], torchrun_envs(2), 120)
    states = {o["state"] for o in saved}
    assert len(states) == 1, "the workers saved different states at the same step"
    state = states.pop()
    assert state is not None
    restored = run_workers(
        [CHILD, str(N), str(GLOBAL_BATCH), "2", "-1", state], torchrun_envs(restore_world), 120
    )
    first = global_order(saved, 0)
    rest = global_order(restored, 0)
    want = expected_epochs(2)
    # 4 steps of 12 before the save, the rest of the epoch after: the same global order,
    # every element exactly once.
    assert len(first) == 4 * GLOBAL_BATCH
    assert first + rest == want[0]
    # And the restored workers' next epoch is the run's second.
    assert global_order(restored, 1) == want[1]


def test_a_state_of_another_pipeline_is_refused_at_restore():
    saved = run_workers([CHILD, str(N), str(GLOBAL_BATCH), "1", "2"], torchrun_envs(2), 120)
    other = npyflow.Dataset.range(N).batch(4)
    with pytest.raises(ValueError, match="state"):
        iter(other).set_state(bytes.fromhex(saved[0]["state"]))


def test_a_state_is_refused_at_another_global_batch_size():
    # 100 elements in 10 steps both ways: only the global batch size (10, then 11) differs.
    def build(batch, workers):
        return npyflow.Dataset.range(100).global_shuffle(seed=5).distributed_batch(batch, workers, 0)

    it = iter(build(5, 2))
    for _ in range(3):
        next(it)
    state = it.get_state()
    ok = iter(build(10, 1))
    ok.set_state(state)
    assert [b.tolist() for b in ok] == [b.tolist() for b in build(10, 1)][3:]
    with pytest.raises(ValueError, match=r"global batch size 10 .*global batch size 11"):
        iter(build(11, 1)).set_state(state)


def run_with_ids(mode, world, timeout=120):
    """``world`` children that learn their place from ``mode`` (jax or torch), given their
    ids on their command lines, with a coordinator on 127.0.0.1."""
    port = free_port()
    argv = [CHILD, str(N), str(GLOBAL_BATCH), "1", "-1", "-", mode, str(port)]
    procs = []
    outs = []
    try:
        for pid in range(world):
            env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
            env["JAX_PLATFORMS"] = "cpu"
            procs.append(
                subprocess.Popen(
                    [sys.executable, *argv, str(pid), str(world)],
                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                )
            )
        deadline = time.monotonic() + timeout
        for p in procs:
            out, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
            assert p.returncode == 0, err
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    return outs


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_processes_find_their_place_and_read_exactly_once():
    outs = run_with_ids("jax", 2)
    assert {o["source"] for o in outs} == {"jax"}
    assert sorted(o["rank"] for o in outs) == [0, 1]
    assert global_order(outs, 0) == expected_epochs(1)[0]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_distributed_processes_read_exactly_once_through_a_dataloader():
    outs = run_with_ids("torch", 3)
    assert {o["source"] for o in outs} == {"torch.distributed"}
    assert sorted(o["rank"] for o in outs) == [0, 1, 2]
    assert global_order(outs, 0) == expected_epochs(1)[0]


def test_worker_info_order_and_errors(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert npyflow.worker_info() == (0, 1, "default", 0)
    assert npyflow.worker_info(3, 2) == (2, 3, "arguments", None)
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        npyflow.worker_info()
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert npyflow.worker_info() == (1, 4, "environment", 1)
    # An index given alone takes the count from the environment.
    assert npyflow.worker_info(worker_index=3) == (3, 4, "arguments", 1)
    with pytest.raises(ValueError, match="pass worker_index"):
        npyflow.worker_info(num_workers=2)
    with pytest.raises(ValueError, match=r"worker_index must be in \[0, 4\), got 7"):
        npyflow.worker_info(worker_index=7)
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match="RANK='one' is not an integer"):
        npyflow.worker_info()
    with pytest.raises(TypeError, match="num_workers must be an int"):
        npyflow.worker_info(num_workers=True, worker_index=0)
    with pytest.raises(ValueError, match="num_workers must be positive"):
        npyflow.worker_info(num_workers=0, worker_index=0)


def test_distributed_batch_takes_the_world_from_the_environment(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    ds = npyflow.Dataset.range(10)
    assert [np.asarray(b).tolist() for b in ds.distributed_batch(3)] == [[3, 4, 5], [8, 9]]
    # Given arguments win over the environment.
    assert [np.asarray(b).tolist() for b in ds.distributed_batch(3, 2, 0)] == [[0, 1, 2], [6, 7]]


def test_worker_info_doctest():
    import doctest

    import npyflow._distributed as mod

    failures, tried = doctest.testmod(mod, verbose=False)[:2]
    assert tried > 0 and failures == 0
