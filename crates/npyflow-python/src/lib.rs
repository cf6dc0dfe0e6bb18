//! `npyflow._npyflow`: the extension module under the `npyflow` Python package.
//!
//! It translates between Python and the core crate and holds no pipeline logic: datasets are
//! core datasets, elements are core elements shown to Python as NumPy arrays over the same
//! memory, and Python functions run where the core calls them, with Python attached only
//! while they run. The pure-Python layer (`python/npyflow`) gives the API its tf.data shape.

// The one place NumPy's memory is read without a copy (`convert`) and the interpreter's
// state is checked (`gil`) needs `unsafe`; every block says why it is sound.
#![warn(clippy::undocumented_unsafe_blocks)]

mod convert;
mod dataset;
mod errors;
mod gil;
mod handle;
mod io;
mod iter;
mod profile;
mod saved;
mod sources;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
#[pyo3(name = "_npyflow")]
fn npyflow_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<dataset::CoreDataset>()?;
    m.add_class::<iter::DatasetIterator>()?;
    m.add_class::<convert::Memory>()?;
    m.add_function(wrap_pyfunction!(convert::register, m)?)?;
    m.add_function(wrap_pyfunction!(convert::register_tensor, m)?)?;
    m.add_function(wrap_pyfunction!(gil::shutting_down, m)?)?;
    for f in [
        wrap_pyfunction!(sources::from_tensor_slices, m)?,
        wrap_pyfunction!(sources::from_tensors, m)?,
        wrap_pyfunction!(sources::range, m)?,
        wrap_pyfunction!(sources::counter, m)?,
        wrap_pyfunction!(sources::random, m)?,
        wrap_pyfunction!(sources::zip, m)?,
        wrap_pyfunction!(sources::zip_dict, m)?,
        wrap_pyfunction!(sources::from_generator, m)?,
        wrap_pyfunction!(sources::list_files, m)?,
        wrap_pyfunction!(sources::sample_from_datasets, m)?,
        wrap_pyfunction!(sources::choose_from_datasets, m)?,
        wrap_pyfunction!(sources::from_npy, m)?,
        wrap_pyfunction!(sources::from_npz, m)?,
        wrap_pyfunction!(sources::from_npy_patches, m)?,
        wrap_pyfunction!(saved::save_dataset, m)?,
        wrap_pyfunction!(saved::load_dataset, m)?,
        wrap_pyfunction!(io::load, m)?,
        wrap_pyfunction!(io::save, m)?,
        wrap_pyfunction!(io::savez, m)?,
        wrap_pyfunction!(profile::profile, m)?,
    ] {
        m.add_function(f)?;
    }
    m.add("AUTOTUNE", npyflow::AUTOTUNE)?;
    Ok(())
}
