//! The sources of the core dataset as Python functions: arrays, ranges, generators, files
//! and mixtures of datasets.

use std::path::PathBuf;
use std::sync::Arc;

use npyflow::dataset::PatchOptions;
use npyflow::{Dataset, Element};
use pyo3::prelude::*;
use pyo3::types::{PyIterator, PyTuple};

use crate::convert::{py_to_element, spec_from_py};
use crate::dataset::{cores, wrap, CoreDataset};
use crate::errors::with_python;

#[pyfunction]
pub fn from_tensor_slices(py: Python<'_>, value: Bound<'_, PyAny>) -> PyResult<CoreDataset> {
    let element = py_to_element(py, &value, false)?;
    wrap(py, Dataset::from_tensor_slices(element))
}

#[pyfunction]
pub fn from_tensors(py: Python<'_>, value: Bound<'_, PyAny>) -> PyResult<CoreDataset> {
    let element = py_to_element(py, &value, false)?;
    Ok(CoreDataset {
        inner: Dataset::from_tensors(element),
    })
}

#[pyfunction]
pub fn range(py: Python<'_>, start: i64, stop: i64, step: i64) -> PyResult<CoreDataset> {
    wrap(py, Dataset::range(start, stop, step))
}

#[pyfunction]
pub fn counter(start: i64, step: i64) -> CoreDataset {
    CoreDataset {
        inner: Dataset::counter(start, step),
    }
}

#[pyfunction]
#[pyo3(signature = (seed, rerandomize_each_iteration))]
pub fn random(seed: Option<i64>, rerandomize_each_iteration: bool) -> CoreDataset {
    CoreDataset {
        inner: Dataset::random(seed.map(|s| s as u64), rerandomize_each_iteration),
    }
}

#[pyfunction]
pub fn zip(py: Python<'_>, datasets: Vec<PyRef<'_, CoreDataset>>) -> PyResult<CoreDataset> {
    wrap(py, Dataset::zip(cores(&datasets)))
}

#[pyfunction]
pub fn zip_dict(
    py: Python<'_>,
    datasets: Vec<(String, PyRef<'_, CoreDataset>)>,
) -> PyResult<CoreDataset> {
    let items = datasets
        .iter()
        .map(|(k, d)| (k.clone(), d.inner.clone()))
        .collect();
    wrap(py, Dataset::zip_dict(items))
}

/// One pass over a Python generator, each value converted by `convert(value, signature)`
/// (which checks the structure and casts to the declared dtypes, as tf.data does).
struct GeneratorPass {
    iterator: Py<PyIterator>,
    signature: Arc<Py<PyAny>>,
    convert: Arc<Py<PyAny>>,
}

impl Iterator for GeneratorPass {
    type Item = npyflow::Result<Element>;

    fn next(&mut self) -> Option<Self::Item> {
        with_python(|py| {
            let mut it = self.iterator.bind(py).clone();
            match it.next() {
                None => Ok(None),
                Some(Err(e)) => Err(e),
                Some(Ok(value)) => {
                    let value = self
                        .convert
                        .bind(py)
                        .call1((value, self.signature.bind(py)))?;
                    py_to_element(py, &value, false).map(Some)
                }
            }
        })
        .transpose()
    }
}

#[pyfunction]
pub fn from_generator(
    py: Python<'_>,
    generator: Py<PyAny>,
    args: Py<PyTuple>,
    signature: Py<PyAny>,
    convert: Py<PyAny>,
) -> PyResult<CoreDataset> {
    let spec = spec_from_py(py, signature.bind(py))?;
    let generator = Arc::new(generator);
    let args = Arc::new(args);
    let signature = Arc::new(signature);
    let convert = Arc::new(convert);
    let factory = move || {
        with_python(|py| {
            let made = generator.bind(py).call1(args.bind(py).clone())?;
            let iterator = made.try_iter()?.unbind();
            let pass: Box<dyn Iterator<Item = npyflow::Result<Element>> + Send> =
                Box::new(GeneratorPass {
                    iterator,
                    signature: Arc::clone(&signature),
                    convert: Arc::clone(&convert),
                });
            Ok(pass)
        })
    };
    Ok(CoreDataset {
        inner: Dataset::from_generator(spec, factory),
    })
}

#[pyfunction]
#[pyo3(signature = (pattern, shuffle, seed))]
pub fn list_files(
    py: Python<'_>,
    pattern: &str,
    shuffle: bool,
    seed: Option<i64>,
) -> PyResult<CoreDataset> {
    let result = py.detach(|| Dataset::list_files(pattern, shuffle, seed.map(|s| s as u64)));
    wrap(py, result)
}

#[pyfunction]
#[pyo3(signature = (datasets, weights, seed, stop_on_empty_dataset, rerandomize_each_iteration))]
pub fn sample_from_datasets(
    py: Python<'_>,
    datasets: Vec<PyRef<'_, CoreDataset>>,
    weights: Option<Vec<f64>>,
    seed: Option<i64>,
    stop_on_empty_dataset: bool,
    rerandomize_each_iteration: bool,
) -> PyResult<CoreDataset> {
    wrap(
        py,
        Dataset::sample_from_datasets_with(
            cores(&datasets),
            weights,
            seed.map(|s| s as u64),
            stop_on_empty_dataset,
            rerandomize_each_iteration,
        ),
    )
}

#[pyfunction]
pub fn choose_from_datasets(
    py: Python<'_>,
    datasets: Vec<PyRef<'_, CoreDataset>>,
    choice: PyRef<'_, CoreDataset>,
    stop_on_empty_dataset: bool,
) -> PyResult<CoreDataset> {
    wrap(
        py,
        Dataset::choose_from_datasets(cores(&datasets), &choice.inner, stop_on_empty_dataset),
    )
}

#[pyfunction]
pub fn from_npy(py: Python<'_>, paths: Vec<PathBuf>) -> PyResult<CoreDataset> {
    let result = py.detach(|| Dataset::from_npy_files(&paths));
    wrap(py, result)
}

#[pyfunction]
#[pyo3(signature = (path, keys))]
pub fn from_npz(py: Python<'_>, path: PathBuf, keys: Option<Vec<String>>) -> PyResult<CoreDataset> {
    let result = py.detach(|| {
        let keys: Option<Vec<&str>> = keys
            .as_ref()
            .map(|k| k.iter().map(String::as_str).collect());
        Dataset::from_npz(&path, keys.as_deref())
    });
    wrap(py, result)
}

#[pyfunction]
#[pyo3(signature = (path, size, strides, num_parallel_reads))]
pub fn from_npy_patches(
    py: Python<'_>,
    path: PathBuf,
    size: Vec<i64>,
    strides: Option<Vec<i64>>,
    num_parallel_reads: Option<i64>,
) -> PyResult<CoreDataset> {
    let result = py.detach(|| {
        let options = PatchOptions::from_tf(&size, strides.as_deref(), num_parallel_reads)?;
        Dataset::from_npy_patches(&path, options)
    });
    wrap(py, result)
}
