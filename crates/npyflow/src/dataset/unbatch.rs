//! `unbatch` and `rebatch`: batches split into rows, and rows regrouped.

use std::collections::VecDeque;

use super::{require, BoxIter, Cardinality, Dataset, Node};
use crate::element::{Element, ElementSpec};
use crate::error::Result;
use crate::tensor::Tensor;

/// The rows of each input element, in order, as views of the input's tensors.
struct Unbatch {
    input: Dataset,
    spec: ElementSpec,
    /// The leading dimension every input tensor shares, when the spec says it.
    known_rows: Option<u64>,
}

/// The first dimension all tensors of `spec` declare, if they all declare the same one.
fn common_leading_dim(spec: &ElementSpec) -> Option<u64> {
    let mut out = None;
    for s in spec.tensor_specs() {
        let d = (*s.shape.dims()?.first()?)? as u64;
        match out {
            Some(o) if o != d => return None,
            _ => out = Some(d),
        }
    }
    out
}

/// Splits elements into rows and hands them out one by one.
struct Rows {
    element: Option<Element>,
    next: usize,
    len: usize,
}

impl Rows {
    fn empty() -> Rows {
        Rows {
            element: None,
            next: 0,
            len: 0,
        }
    }

    fn load(&mut self, e: Element) -> Result<()> {
        self.len = e.rows()?;
        self.element = Some(e);
        self.next = 0;
        Ok(())
    }

    /// The next `n` rows at most, sharing the element's memory.
    fn take(&mut self, n: usize) -> Option<Result<Element>> {
        let e = self.element.as_ref()?;
        if self.next >= self.len {
            return None;
        }
        let end = (self.next + n).min(self.len);
        let range = self.next..end;
        self.next = end;
        Some(e.map_tensors(&mut |t| t.slice_rows(range.clone())))
    }
}

impl Node for Unbatch {
    fn name(&self) -> &'static str {
        "Unbatch"
    }
    fn spec(&self) -> &ElementSpec {
        &self.spec
    }
    fn cardinality(&self) -> Cardinality {
        match self.known_rows {
            Some(r) => self.input.cardinality().map(|n| n * r),
            None if self.input.cardinality() == Cardinality::Infinite => Cardinality::Infinite,
            None => Cardinality::Unknown,
        }
    }
    fn open(&self) -> Result<BoxIter> {
        let mut input = self.input.open()?;
        let mut rows = Rows::empty();
        Ok(Box::new(move || loop {
            if let Some(batch) = rows.take(1) {
                return Some(batch.and_then(|b| b.map_tensors(&mut |t| t.row(0))));
            }
            match input.next()? {
                Ok(e) => {
                    if let Err(err) = rows.load(e) {
                        return Some(Err(err.context("unbatch")));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }))
    }
}

struct Rebatch {
    input: Dataset,
    sizes: Vec<usize>,
    drop_remainder: bool,
    spec: ElementSpec,
}

impl Node for Rebatch {
    fn name(&self) -> &'static str {
        "Rebatch"
    }
    fn spec(&self) -> &ElementSpec {
        &self.spec
    }
    fn cardinality(&self) -> Cardinality {
        match self.input.cardinality() {
            Cardinality::Infinite => Cardinality::Infinite,
            Cardinality::Finite(0) => Cardinality::Finite(0),
            _ => Cardinality::Unknown,
        }
    }
    fn open(&self) -> Result<BoxIter> {
        let mut input = self.input.open()?;
        let sizes = self.sizes.clone();
        let drop = self.drop_remainder;
        let mut which = 0usize;
        let mut rows = Rows::empty();
        let mut parts: VecDeque<Element> = VecDeque::new();
        let mut ended = false;
        Ok(Box::new(move || {
            let want = sizes[which % sizes.len()];
            let mut have = 0usize;
            parts.clear();
            while have < want {
                match rows.take(want - have) {
                    Some(Ok(p)) => {
                        have += p.rows().unwrap_or(0);
                        parts.push_back(p);
                    }
                    Some(Err(e)) => return Some(Err(e)),
                    None if ended => break,
                    None => match input.next() {
                        Some(Ok(e)) => {
                            if let Err(err) = rows.load(e) {
                                return Some(Err(err.context("rebatch")));
                            }
                        }
                        Some(Err(e)) => return Some(Err(e)),
                        None => ended = true,
                    },
                }
            }
            if have == 0 || (drop && have < want) {
                return None;
            }
            which += 1;
            let parts: Vec<Element> = parts.drain(..).collect();
            Some(Element::combine(&parts, &mut |ts| {
                let owned: Vec<Tensor> = ts.iter().map(|t| (*t).clone()).collect();
                Tensor::concat_rows(&owned)
            }))
        }))
    }
}

impl Dataset {
    /// tf.data's `unbatch`: each element split along its first axis into rows, which share
    /// its memory. Every tensor of an element must have the same first dimension (an error
    /// at that element otherwise); a scalar component is refused when the dataset is made.
    /// The cardinality is known when the spec fixes the first dimension.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 5, 1)?.batch(2, false)?.unbatch()?;
    /// assert_eq!(ds.to_vec()?.len(), 5);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn unbatch(&self) -> Result<Dataset> {
        let spec = self.element_spec().unbatched()?;
        Ok(Dataset::from_node(Unbatch {
            input: self.clone(),
            known_rows: common_leading_dim(self.element_spec()),
            spec,
        }))
    }

    /// tf.data's `rebatch(batch_size, drop_remainder)`: the rows of a batched dataset
    /// regrouped into batches of `batch_sizes` rows (one size, or several used in turn), as
    /// `unbatch().batch(n)` would make them but without splitting every row. With
    /// `drop_remainder` a last, short batch is dropped. Sizes must be positive.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 8, 1)?.batch(4, false)?.rebatch(&[3], false)?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["[0 1 2]", "[3 4 5]", "[6 7]"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn rebatch(&self, batch_sizes: &[usize], drop_remainder: bool) -> Result<Dataset> {
        require(!batch_sizes.is_empty(), || {
            "rebatch: batch_size must name at least one size".to_string()
        })?;
        require(batch_sizes.iter().all(|&b| b > 0), || {
            format!("rebatch: batch sizes must be greater than zero, got {batch_sizes:?}")
        })?;
        let row = self.element_spec().unbatched()?;
        let fixed = (drop_remainder && batch_sizes.iter().all(|&b| b == batch_sizes[0]))
            .then_some(batch_sizes[0]);
        Ok(Dataset::from_node(Rebatch {
            input: self.clone(),
            sizes: batch_sizes.to_vec(),
            drop_remainder,
            spec: row.batched(fixed),
        }))
    }
}
