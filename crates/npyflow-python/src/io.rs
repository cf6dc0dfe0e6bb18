//! `npyflow.load` and `npyflow.save`: `.npy` and `.npz` files, read without a copy where the
//! data can be mapped.

use std::path::PathBuf;

use npyflow::format::npy::{read_npy, write_npy};
use npyflow::format::npz::Compression;
use npyflow::format::npz::{NpzArchive, NpzWriter};
use npyflow::format::FileKind;
use npyflow::Tensor;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{py_to_tensor, tensor_to_array};
use crate::errors::core;

/// Reads a `.npy` file as an array, or every member of an `.npz` archive as a dict of arrays
/// in archive order. Told apart by their first bytes, as `np.load` does.
#[pyfunction]
pub fn load(py: Python<'_>, path: PathBuf) -> PyResult<Bound<'_, PyAny>> {
    let read = py.detach(
        || -> npyflow::Result<Result<Tensor, Vec<(String, Tensor)>>> {
            match FileKind::detect(&path)? {
                FileKind::Npy => read_npy(&path).map(Ok),
                FileKind::Npz => {
                    let archive = NpzArchive::open(&path)?;
                    let keys: Vec<String> = archive.keys().map(str::to_owned).collect();
                    let members = keys
                        .into_iter()
                        .map(|k| archive.load(&k).map(|t| (k, t)))
                        .collect::<npyflow::Result<Vec<_>>>()?;
                    Ok(Err(members))
                }
            }
        },
    );
    match core(py, read)? {
        Ok(tensor) => tensor_to_array(py, tensor),
        Err(members) => {
            let dict = PyDict::new(py);
            for (k, t) in members {
                dict.set_item(k, tensor_to_array(py, t)?)?;
            }
            Ok(dict.into_any())
        }
    }
}

/// Writes one array as a `.npy` file, the bytes `np.save` writes for a C-order array.
#[pyfunction]
pub fn save(py: Python<'_>, path: PathBuf, array: Bound<'_, PyAny>) -> PyResult<()> {
    let tensor = py_to_tensor(py, &array)?;
    let result = py.detach(|| write_npy(&path, &tensor));
    core(py, result)
}

/// Writes named arrays as an `.npz` archive, stored (`np.savez`) or deflated
/// (`np.savez_compressed`).
#[pyfunction]
pub fn savez(
    py: Python<'_>,
    path: PathBuf,
    arrays: Vec<(String, Bound<'_, PyAny>)>,
    compressed: bool,
) -> PyResult<()> {
    let tensors = arrays
        .iter()
        .map(|(k, a)| Ok((k.clone(), py_to_tensor(py, a)?)))
        .collect::<PyResult<Vec<_>>>()?;
    let compression = if compressed {
        Compression::Deflated
    } else {
        Compression::Stored
    };
    let result = py.detach(|| {
        let mut writer = NpzWriter::create(&path)?;
        for (k, t) in &tensors {
            writer.add(k, t, compression)?;
        }
        writer.finish()
    });
    core(py, result)
}
