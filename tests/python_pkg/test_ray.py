"""npyflow.ray: a Ray Data dataset read by Ray tasks running npyflow pipelines over row
ranges, on a local Ray cluster (ray.init(num_cpus=2)), consumed by two streaming_split
consumers. Ray (with ray[data], about 600 MB installed) is not in the default run: the test
skips where it is not installed (see the README for how to run it)."""

import importlib.util
import os
import threading

import numpy as np
import pytest

import npyflow

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")

N = 1000


def build():
    x = np.arange(N, dtype=np.int64)
    return (npyflow.Dataset.from_tensor_slices({"x": x, "y": x.astype(np.float32) * 0.5})
            .global_shuffle(seed=4)
            .map(lambda e: {"x": e["x"], "y": e["y"] + 1}))


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    # Ray's workers import this module (build is pickled by reference): put it on their path.
    path = os.pathsep.join(p for p in (os.path.dirname(__file__), os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        yield ray
    finally:
        ray.shutdown()


def test_two_streaming_split_consumers_read_every_row_once(ray_cluster):
    import npyflow.ray

    ds = npyflow.ray.read(build, block_rows=64, override_num_blocks=4)
    assert ds.count() == N
    doubled = ds.map_batches(lambda b: {"x": b["x"], "y2": b["y"] * 2}, batch_format="numpy")
    a, b = doubled.streaming_split(2, equal=True)
    seen = [[], []]
    errors = []

    def consume(split, out):
        try:
            for batch in split.iter_batches(batch_size=50, batch_format="numpy"):
                np.testing.assert_allclose(batch["y2"], (batch["x"] * 0.5 + 1) * 2)
                out.extend(batch["x"].tolist())
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=consume, args=(s, o)) for s, o in zip((a, b), seen)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "a streaming_split consumer did not finish"
    assert not errors, errors
    assert sorted(seen[0] + seen[1]) == list(range(N))
    assert len(seen[0]) == len(seen[1]) == N // 2  # equal=True


def test_ordered_ranges_give_the_pipelines_order(ray_cluster):
    import ray.data

    import npyflow.ray

    ctx = ray.data.DataContext.get_current()
    before = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = True
    try:
        rows = npyflow.ray.read(build, block_rows=100, override_num_blocks=3).take_all()
    finally:
        ctx.execution_options.preserve_order = before
    assert [r["x"] for r in rows] == [int(e["x"]) for e in build()]


def test_bad_pipelines_are_refused(ray_cluster):
    import npyflow.ray

    with pytest.raises(ValueError, match="random-access"):
        npyflow.ray.read(lambda: npyflow.Dataset.range(10).filter(lambda v: v > 2))
    with pytest.raises(TypeError, match="npyflow Dataset"):
        npyflow.ray.read(lambda: [1, 2])
