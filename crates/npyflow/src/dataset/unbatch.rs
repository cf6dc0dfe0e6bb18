//! `unbatch` and `rebatch`: batches split into rows, and rows regrouped.

use super::plumbing::{
    describe_node, require, restore, BoxIter, Cardinality, Dataset, ElementIter, Node,
};
use super::state::{State, StateReader};
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
    fn save(&self, s: State) -> Result<State> {
        let s = s.num(self.next as u64).flag(self.element.is_some());
        match &self.element {
            Some(e) => s.element(e),
            None => Ok(s),
        }
    }

    fn restore(r: &mut StateReader) -> Result<Rows> {
        let next = r.usize()?;
        let mut rows = Rows::empty();
        if r.flag()? {
            rows.load(r.element()?)?;
            rows.next = next.min(rows.len);
        }
        Ok(rows)
    }

    fn take(&mut self, n: usize) -> Option<Result<Element>> {
        let e = self.element.as_ref()?;
        if self.next >= self.len {
            return None;
        }
        let end = (self.next + n).min(self.len);
        let range = self.next..end;
        self.next = end;
        Some(e.slice_rows(range))
    }
}

impl Node for Unbatch {
    describe_node! { name: "Unbatch"; input: input; spec: spec; }
    fn cardinality(&self) -> Cardinality {
        match self.known_rows {
            Some(r) => self.input.cardinality().map(|n| n * r),
            None if self.input.cardinality() == Cardinality::Infinite => Cardinality::Infinite,
            None => Cardinality::Unknown,
        }
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let (rows, input) = restore(from, "Unbatch", |r| Ok((Rows::restore(r)?, r.kid()?)))?
            .map_or((Rows::empty(), None), |(rows, s)| (rows, Some(s)));
        Ok(Box::new(UnbatchIter {
            input: self.input.open_from(input)?,
            rows,
        }))
    }
}

struct UnbatchIter {
    input: BoxIter,
    rows: Rows,
}

impl ElementIter for UnbatchIter {
    fn next(&mut self) -> Option<Result<Element>> {
        loop {
            if let Some(batch) = self.rows.take(1) {
                return Some(batch.and_then(|b| b.row(0)));
            }
            match self.input.next()? {
                Ok(e) => {
                    if let Err(err) = self.rows.load(e) {
                        return Some(Err(err.context("unbatch")));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
    fn save(&self) -> Result<State> {
        Ok(self
            .rows
            .save(State::new("Unbatch"))?
            .kid(self.input.save()?))
    }
}

struct Rebatch {
    input: Dataset,
    sizes: Vec<usize>,
    drop_remainder: bool,
    spec: ElementSpec,
    /// The spec of one row (for the empty batches of zero sizes).
    row: ElementSpec,
}

impl Node for Rebatch {
    describe_node! { name: "Rebatch"; input: input; spec: spec; }
    fn cardinality(&self) -> Cardinality {
        match self.input.cardinality() {
            Cardinality::Infinite => Cardinality::Infinite,
            Cardinality::Finite(0) => Cardinality::Finite(0),
            _ => Cardinality::Unknown,
        }
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let saved = restore(from, "Rebatch", |r| {
            Ok((r.usize()?, r.flag()?, Rows::restore(r)?, r.kid()?))
        })?;
        let (which, ended, rows, input) = match saved {
            Some((w, e, rows, s)) => (w, e, rows, Some(s)),
            None => (0, false, Rows::empty(), None),
        };
        Ok(Box::new(RebatchIter {
            input: self.input.open_from(input)?,
            sizes: self.sizes.clone(),
            drop: self.drop_remainder,
            row: self.row.clone(),
            which,
            rows,
            ended,
        }))
    }
}

struct RebatchIter {
    input: BoxIter,
    sizes: Vec<usize>,
    drop: bool,
    row: ElementSpec,
    /// Batches given (which of `sizes` comes next).
    which: usize,
    rows: Rows,
    ended: bool,
}

impl ElementIter for RebatchIter {
    fn next(&mut self) -> Option<Result<Element>> {
        let want = self.sizes[self.which % self.sizes.len()];
        if want == 0 {
            // A zero size gives an empty batch, as tf.data's does, until the input is found
            // to have ended (by a later size that reads it).
            if self.ended {
                return None;
            }
            self.which += 1;
            return Some(super::distributed::empty_batch(&self.row));
        }
        let mut have = 0usize;
        let mut parts: Vec<Element> = Vec::new();
        while have < want {
            match self.rows.take(want - have) {
                Some(Ok(p)) => {
                    have += p.rows().unwrap_or(0);
                    parts.push(p);
                }
                Some(Err(e)) => return Some(Err(e)),
                None if self.ended => break,
                None => match self.input.next() {
                    Some(Ok(e)) => {
                        if let Err(err) = self.rows.load(e) {
                            return Some(Err(err.context("rebatch")));
                        }
                    }
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.ended = true,
                },
            }
        }
        if have == 0 || (self.drop && have < want) {
            return None;
        }
        self.which += 1;
        Some(Element::combine(&parts, &mut |ts| {
            let owned: Vec<Tensor> = ts.iter().map(|t| (*t).clone()).collect();
            Tensor::concat_rows(&owned)
        }))
    }
    fn save(&self) -> Result<State> {
        let s = State::new("Rebatch")
            .num(self.which as u64)
            .flag(self.ended);
        Ok(self.rows.save(s)?.kid(self.input.save()?))
    }
}

impl Dataset {
    /// tf.data's `unbatch`: each element split along its first axis into rows, which share
    /// its memory. Every tensor of an element must have the same first dimension (an error
    /// at that element otherwise); a scalar component, or first dimensions
    /// the spec knows to differ, are refused when the dataset is made.
    /// The cardinality is known when the spec fixes the first dimension.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 5, 1)?.batch(2, ())?.unbatch()?;
    /// assert_eq!(ds.to_vec()?.len(), 5);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn unbatch(&self) -> Result<Dataset> {
        let spec = self.element_spec().unbatched()?;
        // Known first dimensions that differ can never split into rows (tf.data refuses
        // them when the dataset is made, too).
        let known: Vec<usize> = self
            .element_spec()
            .tensor_specs()
            .iter()
            .filter_map(|s| s.shape.dims().and_then(|d| d.first().copied().flatten()))
            .collect();
        require(known.windows(2).all(|w| w[0] == w[1]), || {
            format!(
                "unbatch: the components' first dimensions differ ({known:?}), so the element \
                 cannot be split into rows"
            )
        })?;
        Ok(Dataset::from_node(Unbatch {
            input: self.clone(),
            known_rows: common_leading_dim(self.element_spec()),
            spec,
        }))
    }

    /// tf.data's `rebatch(batch_size, drop_remainder)`: the rows of a batched dataset
    /// regrouped into batches of `batch_sizes` rows (one size, or several used in turn), as
    /// `unbatch().batch(n)` would make them but without splitting every row. With
    /// `drop_remainder` a last, short batch is dropped. A size of 0 gives an empty batch (as
    /// in tf.data) until the input is found to have ended; at least one size must be
    /// positive (tf.data repeats empty batches forever when none is).
    ///
    /// The batch dimension of the spec is known, as tf.data knows it, when every size is
    /// the same `n > 0` and either `drop_remainder` is set or the input's batch dimension is
    /// known and divisible by `n`.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 8, 1)?.batch(4, ())?.rebatch(&[3], false)?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["[0 1 2]", "[3 4 5]", "[6 7]"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn rebatch(&self, batch_sizes: &[usize], drop_remainder: bool) -> Result<Dataset> {
        require(!batch_sizes.is_empty(), || {
            "rebatch: batch_size must name at least one size".to_string()
        })?;
        require(batch_sizes.iter().any(|&b| b > 0), || {
            format!(
                "rebatch: at least one batch size must be greater than zero, got \
                 {batch_sizes:?} (sizes of 0 alone would give empty batches forever)"
            )
        })?;
        require(!self.element_spec().has_dataset(), || {
            "rebatch: elements holding datasets cannot be rebatched (unbatch().batch(n) can)"
                .to_string()
        })?;
        let row = self.element_spec().unbatched()?;
        let n = batch_sizes[0];
        let same = n > 0 && batch_sizes.iter().all(|&b| b == n);
        let divides =
            n > 0 && common_leading_dim(self.element_spec()).is_some_and(|d| d % n as u64 == 0);
        let fixed = (same && (drop_remainder || divides)).then_some(n);
        Ok(Dataset::from_node(Rebatch {
            input: self.clone(),
            sizes: batch_sizes.to_vec(),
            drop_remainder,
            spec: row.batched(fixed),
            row,
        }))
    }
}
