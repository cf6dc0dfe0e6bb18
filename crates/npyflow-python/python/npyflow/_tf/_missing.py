"""The error for a tf name npyflow does not have: it says so and what to use instead."""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

#: What to use instead of tf names people reach for (without the module prefix).
INSTEAD: Dict[str, str] = {
    "Variable": "a NumPy array (npyflow has no variables or gradients)",
    "GradientTape": "TensorFlow, PyTorch or JAX for training; npyflow only feeds data",
    "function": "a plain Python function (npyflow runs functions eagerly on NumPy values)",
    "keras": "TensorFlow's Keras, PyTorch or JAX for models; npyflow only feeds data",
    "io": "npyflow.load / Dataset.from_npy / Dataset.from_npz for files",
    "strings": "NumPy's np.char functions on bytes arrays",
    "ragged": "padded_batch, or lists of arrays",
    "sparse": "dense NumPy arrays",
    "Tensor": "npyflow.Tensor (a NumPy array with .numpy())",
    "py_func": "npyflow.numpy_function",
    "Session": "nothing: npyflow is eager",
    "config": "Dataset options (num_parallel_calls, ...) and NumPy's own settings",
    "distribute": "Dataset.shard",
    "nn": "NumPy on the values (npyflow has no neural-network ops)",
    "linalg": "np.linalg",
    "experimental": "the Dataset methods and npyflow.data names of the same purpose",
    "TFRecordDataset": "Dataset.from_npy / from_npz (npyflow reads NumPy files)",
    "TextLineDataset": "Dataset.from_generator over the file's lines",
    "CsvDataset": "np.loadtxt then Dataset.from_tensor_slices",
    "make_csv_dataset": "np.loadtxt then Dataset.from_tensor_slices",
    "SqlDataset": "Dataset.from_generator over the query's rows",
    "RandomDataset": "Dataset.counter().map(...) with npyflow.random ops",
    "Counter": "Dataset.counter",
    "dense_to_sparse_batch": "Dataset.padded_batch",
    "rejection_resample": "Dataset.filter, or sample_from_datasets over filtered datasets",
    "prefetch_to_device": "Dataset.prefetch (npyflow's data lives on the host)",
    "copy_to_device": "nothing: npyflow's data lives on the host",
    "service": "Dataset.shard or distributed_batch in each worker",
    "rebatch": "Dataset.rebatch",
}


#: What to use for a name with no entry in INSTEAD, by module (default: NumPy).
MODULE_DEFAULT: Dict[str, str] = {
    "npyflow.data": "the Dataset methods of the same purpose (see dir(npyflow.data.Dataset))",
    "npyflow.data.experimental": (
        "the Dataset methods of the same purpose (see dir(npyflow.data.Dataset))"
    ),
}


def missing(module: str, name: str) -> AttributeError:
    """The AttributeError for ``module.name``, which npyflow does not have."""
    tf_name = "tf." + (module.split(".", 1)[1] + "." if "." in module else "") + name
    instead: Optional[str] = INSTEAD.get(name, MODULE_DEFAULT.get(module))
    if instead is None:
        instead = f"np.{name} on the values" if hasattr(np, name) else "NumPy on the values"
    return AttributeError(f"{module} has no {tf_name}; use {instead} instead")
