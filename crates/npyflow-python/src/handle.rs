//! The Python class that holds a core dataset. It lives apart from its methods
//! (`dataset.rs`) so that the conversions (`convert.rs`), which hand datasets to Python and
//! take them back, need not import the transformations that use them.

use npyflow::Dataset;
use pyo3::prelude::*;

/// A core `npyflow::Dataset`, as the pure-Python `npyflow.Dataset` holds it.
#[pyclass(frozen, module = "npyflow._npyflow", name = "CoreDataset")]
pub struct CoreDataset {
    pub inner: Dataset,
}
