//! `Dataset.save` and `Dataset.load` (tf.data's names) over the core's saved datasets.

use std::collections::HashMap;
use std::path::PathBuf;

use npyflow::dataset::{LoadOptions, SaveOptions};
use npyflow::format::storage::StorageOptions;
use npyflow::{Dataset, Error};
use pyo3::prelude::*;

use crate::convert::{element_to_py, spec_from_py, Scalars};
use crate::dataset::{wrap, CoreDataset};
use crate::errors::{core, with_python};

/// Saves `dataset` at `path`; returns (elements, shards, complete).
#[pyfunction]
#[pyo3(signature = (dataset, path, shard_func, part, num_parts, save_id, max_shard_bytes, storage_options=None))]
#[allow(clippy::too_many_arguments)]
pub fn save_dataset(
    py: Python<'_>,
    dataset: PyRef<'_, CoreDataset>,
    path: PathBuf,
    shard_func: Option<Py<PyAny>>,
    part: Option<u64>,
    num_parts: Option<u64>,
    save_id: Option<String>,
    max_shard_bytes: Option<u64>,
    storage_options: Option<HashMap<String, String>>,
) -> PyResult<(u64, usize, bool)> {
    let mut options = SaveOptions::new().storage_options(storage(storage_options));
    if let Some(f) = shard_func {
        // The Python side passes a function of one element (tuples unpacked there) that
        // returns an int.
        options = options.shard_func(move |e| {
            with_python(|py| {
                let value = element_to_py(py, e.clone(), Scalars::Arrays)?;
                let k: i64 = f.bind(py).call1((value,))?.extract()?;
                Ok(k)
            })
            .and_then(|k| {
                u64::try_from(k).map_err(|_| {
                    Error::InvalidArgument(format!(
                        "shard_func returned {k}; shard numbers must not be negative"
                    ))
                })
            })
        });
    }
    match (part, num_parts, save_id) {
        (None, None, None) => {}
        (Some(i), Some(n), Some(id)) => options = options.part(i, n, &id),
        (None, Some(1), Some(id)) => options = options.part(0, 1, &id),
        _ => {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "save: a save in parts needs part, num_parts and save_id together (every \
                 process gives the same num_parts and save_id, and its own part)",
            ))
        }
    }
    if let Some(b) = max_shard_bytes {
        options = options.max_shard_bytes(b);
    }
    let ds = dataset.inner.clone();
    let result = py.detach(move || ds.save(&path, options));
    let s = core(py, result)?;
    Ok((s.elements, s.shards, s.complete))
}

#[pyfunction]
#[pyo3(signature = (path, element_spec, verify, storage_options=None))]
pub fn load_dataset(
    py: Python<'_>,
    path: PathBuf,
    element_spec: Option<Bound<'_, PyAny>>,
    verify: bool,
    storage_options: Option<HashMap<String, String>>,
) -> PyResult<CoreDataset> {
    let mut options = LoadOptions::new()
        .verify(verify)
        .storage_options(storage(storage_options));
    if let Some(spec) = element_spec {
        options = options.element_spec(spec_from_py(py, &spec)?);
    }
    let result = py.detach(move || Dataset::load(&path, options));
    wrap(py, result)
}

/// `storage_options` (keys and values already checked as strings by the Python side).
fn storage(options: Option<HashMap<String, String>>) -> StorageOptions {
    options.unwrap_or_default().into_iter().collect()
}
