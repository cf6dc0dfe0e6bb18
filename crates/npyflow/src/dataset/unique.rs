//! `unique`: each distinct element once, in order of first appearance.

use std::collections::HashSet;

use super::{require, BoxIter, Cardinality, Dataset, Node};
use crate::element::ElementSpec;
use crate::error::Result;

struct Unique {
    input: Dataset,
}

impl Node for Unique {
    fn name(&self) -> &'static str {
        "Unique"
    }
    fn spec(&self) -> &ElementSpec {
        self.input.element_spec()
    }
    fn cardinality(&self) -> Cardinality {
        match self.input.cardinality() {
            Cardinality::Finite(0) => Cardinality::Finite(0),
            _ => Cardinality::Unknown,
        }
    }
    fn open(&self) -> Result<BoxIter> {
        let mut input = self.input.open()?;
        let mut seen: HashSet<(Vec<usize>, Vec<u8>)> = HashSet::new();
        Ok(Box::new(move || loop {
            match input.next()? {
                Ok(e) => {
                    let t = e.as_tensor()?;
                    let key = (t.shape().to_vec(), t.as_bytes().to_vec());
                    if seen.insert(key) {
                        return Some(Ok(e));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }))
    }
}

impl Dataset {
    /// tf.data's `unique()`: each distinct element once, where it first appears. Elements
    /// must be single tensors of an integer or string dtype (tf.data allows int32, int64
    /// and string; npyflow every integer width and both string kinds). Memory grows with the
    /// number of distinct elements.
    ///
    /// ```
    /// use npyflow::{Dataset, Tensor};
    /// let x = Tensor::from_vec(vec![1i64, 37, 2, 37, 2, 1], &[6])?;
    /// let got: Vec<String> = Dataset::from_tensor_slices(x)?.unique()?.to_vec()?
    ///     .iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["1", "37", "2"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn unique(&self) -> Result<Dataset> {
        let ok = matches!(self.element_spec(), ElementSpec::Tensor(s)
            if matches!(s.dtype.kind(), 'i' | 'u' | 'S' | 'U'));
        require(ok, || {
            format!(
                "unique: elements must be single integer or string tensors, not {}",
                self.element_spec()
            )
        })?;
        Ok(Dataset::from_node(Unique {
            input: self.clone(),
        }))
    }
}
