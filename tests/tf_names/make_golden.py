#!/usr/bin/env python3
"""Records what real TensorFlow gives for tf's names npyflow has (cases.py) into golden.npz,
and what the seed's examples and cases.PROGRAMS print into stdout.json.

tests/python_pkg/test_tf_names.py evaluates the same expressions with ``tf`` bound to npyflow
and runs the same programs with ``import npyflow as tf`` in place of ``import tensorflow as
tf``, and compares. Only this script needs TensorFlow (2.21 recorded these files):

    /tmp/peer/bin/python tests/tf_names/make_golden.py

golden.npz holds, for case ``id``, the array ``id`` (or ``id.0``, ``id.1``, ... for a list of
results), with TF's dtype and shape; TF's string tensors become NumPy ``S`` arrays.
"""

import glob
import json
import os
import re
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cases import CASES, PROGRAMS, inputs  # noqa: E402

SEED = "/work/shared/seed"


def as_numpy(v):
    if hasattr(v, "numpy"):
        v = v.numpy()
    arr = np.asarray(v)
    if arr.dtype == object:
        arr = arr.astype("S")
    return arr


def seed_examples():
    """The python code blocks of the seed's text, in order."""
    out = []
    for path in sorted(glob.glob(os.path.join(SEED, "*.txt"))):
        with open(path) as f:
            out += re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    return out


def run(code):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"the program failed under TensorFlow:\n{code}\n{proc.stderr}")
    return proc.stdout


def main():
    arrays = {}
    for case_id, expr in CASES:
        try:
            result = eval(expr, dict(inputs(), tf=tf))
        except (AttributeError, TypeError, ValueError):
            # Some tf.image ops take only tensors: the same inputs as tf.constant.
            env = {k: v if k == "np" else tf.constant(v) for k, v in inputs().items()}
            try:
                result = eval(expr, dict(env, tf=tf))
            except Exception as e:
                raise RuntimeError(f"case {case_id} failed under TensorFlow: {e}") from e
        if isinstance(result, (list, tuple)):
            for i, r in enumerate(result):
                arrays[f"{case_id}.{i}"] = as_numpy(r)
        else:
            arrays[case_id] = as_numpy(result)
    np.savez(os.path.join(HERE, "golden.npz"), **arrays)
    programs = {f"seed_example_{i + 1}": code for i, code in enumerate(seed_examples())}
    programs.update(PROGRAMS)
    stdout = {name: {"code": code, "stdout": run(code)} for name, code in programs.items()}
    with open(os.path.join(HERE, "stdout.json"), "w") as f:
        json.dump({"tensorflow": tf.__version__, "numpy": np.__version__, "programs": stdout}, f, indent=1)
        f.write("\n")
    print(f"{len(CASES)} cases ({len(arrays)} arrays), {len(stdout)} programs recorded")


if __name__ == "__main__":
    main()
