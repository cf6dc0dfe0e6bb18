"""Keras 3's model.fit on npyflow datasets (Dataset.to_keras), one Python per backend: JAX
in the default run (requirements-test.txt installs jax and keras); TensorFlow and torch where
the interpreter running the tests has them (see the README)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CHILD = str(Path(__file__).with_name("keras_child.py"))


def run_backend(backend):
    env = dict(os.environ, KERAS_BACKEND=backend)
    out = subprocess.run([sys.executable, CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def have(module):
    return importlib.util.find_spec(module) is not None and importlib.util.find_spec("keras") is not None


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("jax", marks=pytest.mark.skipif(not have("jax"), reason="jax or keras not installed")),
        pytest.param(
            "tensorflow", marks=pytest.mark.skipif(not have("tensorflow"), reason="tensorflow or keras not installed")
        ),
        pytest.param("torch", marks=pytest.mark.skipif(not have("torch"), reason="torch or keras not installed")),
    ],
)
def test_keras_fits_with_validation(backend):
    r = run_backend(backend)
    assert r["backend"] == backend
    # 160 rows in batches of 32: 5 steps an epoch, from the cardinality.
    assert r["len"] == 5
    assert r["steps"] == [5, 5, 5, 5]
    # It learns a linear map: the loss falls far.
    assert r["loss"][-1] < r["loss"][0] / 10
    # Validation ran every epoch on all 40 rows: its last loss is Keras's own on the arrays.
    assert len(r["val_loss"]) == 4
    assert np.isclose(r["val_loss"][-1], r["direct_val_loss"], rtol=1e-4, atol=1e-6)
    # Asked as Keras asks (shuffled indices), each epoch is the pipeline's next pass, in its
    # own order.
    assert r["seen"] == r["passes"]
    assert r["seen"][0] != r["seen"][1]
    # A state saved after two batches: the rest of the pass (3 batches), then the next pass.
    first_pass = r["passes"][0]
    assert r["head"] == first_pass[:2]
    assert r["tail"][:3] == first_pass[2:]
    assert r["tail"][3:] == r["passes"][1][:2]
    assert "assert_cardinality" in r["errors"]["unknown"]
