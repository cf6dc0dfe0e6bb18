//! A dataset of elements held in memory: a window's or a group's, or (empty) what tracing
//! hands a function that takes a dataset.

use std::sync::Arc;

use super::plumbing::{describe_node, own_pass, Dataset, Node, Pass};
use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result};

/// Elements held in memory, with their spec.
#[derive(Clone)]
pub(crate) struct Elements {
    pub(crate) elements: Arc<Vec<Element>>,
    pub(crate) spec: ElementSpec,
}

impl Dataset {
    /// A dataset whose elements are `datasets`: how npyflow holds a batch of datasets (what
    /// `batch` makes of elements that are datasets, and `from_tensors` of a list of
    /// datasets), where tf.data has a `DatasetSpec` with a batch dimension. `unbatch` and
    /// `flat_map` give the datasets back. Their element specs must agree in structure and
    /// dtypes; the spec is the most specific that fits them all.
    ///
    /// ```
    /// use npyflow::{Dataset, Element};
    /// let batch = Dataset::from_datasets(vec![Dataset::range(0, 2, 1)?, Dataset::range(5, 6, 1)?])?;
    /// let flat = batch.flat_map(|d: Element| d.into_dataset(), None)?;
    /// let got: Vec<String> = flat.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["0", "1", "5"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn from_datasets(datasets: Vec<Dataset>) -> Result<Dataset> {
        let mut spec: Option<ElementSpec> = None;
        for d in &datasets {
            let s = d.element_spec();
            spec = Some(match spec {
                None => s.clone(),
                Some(prev) => prev.most_specific_compatible(s).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "datasets in one batch must have elements of one structure and dtypes: \
                         {prev} and {s}"
                    ))
                })?,
            });
        }
        let inner = spec.ok_or_else(|| {
            Error::InvalidArgument("a batch of datasets needs at least one dataset".into())
        })?;
        Ok(Dataset::from_node(Elements {
            elements: Arc::new(datasets.into_iter().map(Element::Dataset).collect()),
            spec: ElementSpec::Dataset(Box::new(inner)),
        }))
    }
}

impl Node for Elements {
    describe_node! { name: "Elements"; spec: spec; }
    fn elements(&self) -> Option<(&[Element], &ElementSpec)> {
        Some((&self.elements, &self.spec))
    }
    own_pass!();
}

impl Pass for Elements {
    fn len(&self) -> u64 {
        self.elements.len() as u64
    }
    fn get(&self, index: u64) -> Result<Element> {
        Ok(self.elements[index as usize].clone())
    }
}
