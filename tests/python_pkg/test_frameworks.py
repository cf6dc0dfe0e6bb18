"""Dataset.to_jax and Dataset.to_torch, and DLPack export: values against NumPy's, memory
shared where it should be, training steps that learn. JAX runs in the default test run;
torch where it is installed (see the README)."""

import importlib.util
import subprocess
import sys
import warnings

import numpy as np
import pytest

import npyflow

HAVE_JAX = importlib.util.find_spec("jax") is not None
HAVE_TORCH = importlib.util.find_spec("torch") is not None
needs_jax = pytest.mark.skipif(not HAVE_JAX, reason="jax is not installed")
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")


def regression(n=256, batch=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([2.0, -1.0, 0.5], np.float32) + 0.25).astype(np.float32)
    return x, y, npyflow.Dataset.from_tensor_slices((x, y)).global_shuffle(seed=3).batch(batch)


def test_the_package_imports_no_framework():
    code = (
        "import sys, npyflow\n"
        "ds = npyflow.Dataset.range(4).batch(2)\n"
        "list(ds); npyflow.worker_info()\n"
        "print(sorted(m for m in ('jax', 'torch', 'keras', 'tensorflow', 'ray') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_batches_export_through_dlpack_without_a_copy():
    ds = npyflow.Dataset.from_tensor_slices(np.arange(24, dtype=np.float32).reshape(6, 4)).batch(4)
    for batch in ds:
        assert batch.__dlpack_device__() == (1, 0)  # kDLCPU, device 0
        view = np.from_dlpack(batch)
        assert np.shares_memory(view, batch)
        np.testing.assert_array_equal(view, np.asarray(batch))
    # An element that is a view of the array given: DLPack shows that array's memory.
    source = np.arange(12.0).reshape(3, 4)
    (whole,) = list(npyflow.Dataset.from_tensors(source))
    assert np.shares_memory(np.from_dlpack(whole), source)


@needs_jax
def test_to_jax_gives_device_arrays_equal_to_numpy():
    import jax

    x, y, ds = regression(n=70, batch=16)
    for prefetch in (0, 1, 5):
        got = list(ds.to_jax(prefetch=prefetch))
        want = list(ds.as_numpy_iterator())
        assert len(got) == len(want) == 5
        # Each iter() is a pass of its own (the shuffle moved on).
        want = [tuple(np.asarray(a) for a in b) for b in want]
        assert all(isinstance(a, jax.Array) for b in got for a in b)
        assert [a.shape for a, _ in got] == [(16, 3)] * 4 + [(6, 3)]
    # Same seed, fresh dataset: the first pass of to_jax is the first pass of iteration.
    _, _, a = regression(n=70, batch=16)
    _, _, b = regression(n=70, batch=16)
    for (gx, gy), (wx, wy) in zip(a.to_jax(), b.as_numpy_iterator()):
        np.testing.assert_array_equal(np.asarray(gx), wx)
        np.testing.assert_array_equal(np.asarray(gy), wy)


@needs_jax
def test_to_jax_with_a_sharding_makes_global_arrays():
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.local_devices()), ("data",))
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    n_dev = len(jax.local_devices())
    ds = npyflow.Dataset.from_tensor_slices(np.arange(8 * n_dev * 2, dtype=np.int32)).batch(8 * n_dev)
    got = list(ds.to_jax(sharding=sharding))
    assert [g.sharding == sharding for g in got] == [True, True]
    np.testing.assert_array_equal(np.concatenate([np.asarray(g) for g in got]), np.arange(16 * n_dev))


@needs_jax
def test_a_jax_training_step_learns_from_to_jax():
    import jax
    import jax.numpy as jnp

    _, _, ds = regression()

    @jax.jit
    def step(params, x, y):
        def loss(p):
            return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)

        value, grads = jax.value_and_grad(loss)(params)
        return jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads), value

    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    losses = []
    for _ in range(5):
        for x, y in ds.to_jax():
            params, value = step(params, x, y)
            losses.append(float(value))
    assert losses[-1] < losses[0] / 100
    np.testing.assert_allclose(np.asarray(params["w"]), [2.0, -1.0, 0.5], atol=0.05)


@needs_jax
def test_to_jax_state_goes_on_where_it_stopped():
    _, _, ds = regression(n=100, batch=10)
    batches = ds.to_jax(prefetch=0)
    it = iter(batches)
    head = [np.asarray(next(it)[1]) for _ in range(3)]
    state = batches.get_state()
    _, _, again = regression(n=100, batch=10)
    resumed = again.to_jax()
    resumed.set_state(state)
    tail = [np.asarray(b[1]) for b in resumed]
    _, _, whole = regression(n=100, batch=10)
    want = [np.asarray(b[1]) for b in whole.as_numpy_iterator()]
    assert len(head) + len(tail) == len(want) == 10
    for g, w in zip(head + tail, want):
        np.testing.assert_array_equal(g, w)
    with pytest.raises(ValueError, match="prefetch"):
        ds.to_jax(prefetch=-1)
    with pytest.raises(TypeError, match="bytes"):
        resumed.set_state("not bytes")


@needs_torch
def test_to_torch_shares_memory_and_equals_numpy():
    import torch

    source = np.arange(12.0).reshape(3, 4)
    (whole,) = list(npyflow.Dataset.from_tensors(source).to_torch())
    assert isinstance(whole, torch.Tensor)
    assert whole.data_ptr() == source.ctypes.data  # no copy
    ds = npyflow.Dataset.from_tensor_slices(
        {"x": np.arange(10, dtype=np.float32), "label": np.arange(10) % 3, "name": np.array([b"a"] * 10)}
    ).batch(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "non-writable array" warning
        got = list(ds.to_torch())
    want = list(ds.as_numpy_iterator())
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        assert g["x"].dtype == torch.float32 and g["label"].dtype == torch.int64
        np.testing.assert_array_equal(g["x"].numpy(), w["x"])
        np.testing.assert_array_equal(g["label"].numpy(), w["label"])
        assert isinstance(g["name"], np.ndarray)  # strings stay NumPy
    # torch.from_dlpack takes a batch with no copy too.
    batch = next(iter(npyflow.Dataset.from_tensor_slices(np.ones((8, 2), np.float32)).batch(4)))
    t = torch.from_dlpack(batch)
    assert t.data_ptr() == batch.ctypes.data


@needs_torch
def test_to_torch_in_a_dataloader_and_a_training_loop():
    import torch

    x, y, ds = regression()
    loader = torch.utils.data.DataLoader(ds.to_torch(), batch_size=None)
    assert len(loader) == 8
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        for xb, yb in loader:
            loss = torch.nn.functional.mse_loss(model(xb).squeeze(1), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert losses[-1] < losses[0] / 100
    np.testing.assert_allclose(model.weight.detach().numpy().ravel(), [2.0, -1.0, 0.5], atol=0.05)
    # More than one worker process would give each element again: refused.
    bad = torch.utils.data.DataLoader(ds.to_torch(), batch_size=None, num_workers=2)
    with pytest.raises(RuntimeError, match="num_workers=0"):
        next(iter(bad))


@needs_torch
def test_to_torch_state_dict_round_trip():
    _, _, ds = regression(n=100, batch=10)
    tds = ds.to_torch()
    it = iter(tds)
    head = [next(it)[1].numpy().copy() for _ in range(4)]
    saved = tds.state_dict()
    _, _, again = regression(n=100, batch=10)
    resumed = again.to_torch()
    resumed.load_state_dict(saved)
    tail = [b[1].numpy() for b in resumed]
    _, _, whole = regression(n=100, batch=10)
    want = [b[1] for b in whole.as_numpy_iterator()]
    assert len(head + tail) == 10
    for g, w in zip(head + tail, want):
        np.testing.assert_array_equal(g, w)
    with pytest.raises(ValueError, match="npyflow_state"):
        resumed.load_state_dict({})


@needs_torch
def test_to_torch_on_a_gpu_or_a_clear_error():
    import torch

    ds = npyflow.Dataset.from_tensor_slices(np.arange(40, dtype=np.float32).reshape(10, 4)).batch(3)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            ds.to_torch(device="cuda")
        pytest.skip("no CUDA device: the GPU path (pinned staging, side stream) is not run here")
    got = list(ds.to_torch(device="cuda"))
    assert all(t.device.type == "cuda" for t in got)
    np.testing.assert_array_equal(torch.cat(got).cpu().numpy(), np.arange(40, dtype=np.float32).reshape(10, 4))


def test_missing_frameworks_say_what_to_install():
    code = (
        "import sys, npyflow\n"
        "sys.modules['torch'] = None; sys.modules['keras'] = None; sys.modules['jax'] = None\n"
        "ds = npyflow.Dataset.range(3)\n"
        "for f in (ds.to_torch, ds.to_keras, ds.to_jax):\n"
        "    try:\n"
        "        f()\n"
        "    except ImportError as e:\n"
        "        print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("Dataset.to_torch() needs torch")
    assert lines[1].startswith("Dataset.to_keras() needs keras")
    assert lines[2].startswith("Dataset.to_jax() needs jax")
