//! `unique`: each distinct element once, in order of first appearance.

use std::collections::HashSet;

use super::plumbing::{
    describe_node, require, restore, BoxIter, Cardinality, Dataset, ElementIter, Node,
};
use super::state::State;
use crate::element::{Element, ElementSpec};
use crate::error::Result;
use crate::tensor::Tensor;

struct Unique {
    input: Dataset,
}

impl Node for Unique {
    describe_node! { name: "Unique"; input: input; }
    fn cardinality(&self) -> Cardinality {
        match self.input.cardinality() {
            Cardinality::Finite(0) => Cardinality::Finite(0),
            _ => Cardinality::Unknown,
        }
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let saved = restore(from, "Unique", |r| Ok((r.elements()?, r.kid()?)))?;
        let (seen, input) = saved.map_or((Vec::new(), None), |(seen, s)| (seen, Some(s)));
        let mut it = UniqueIter {
            input: self.input.open_from(input)?,
            seen: Vec::with_capacity(seen.len()),
            keys: HashSet::new(),
        };
        for e in seen {
            let t = e.into_tensor()?;
            it.keys.insert(key_of(&t));
            it.seen.push(t);
        }
        Ok(Box::new(it))
    }
}

fn key_of(t: &Tensor) -> (Vec<usize>, Vec<u8>) {
    (t.shape().to_vec(), t.as_bytes().to_vec())
}

struct UniqueIter {
    input: BoxIter,
    /// The distinct elements given so far, in order (for saving).
    seen: Vec<Tensor>,
    keys: HashSet<(Vec<usize>, Vec<u8>)>,
}

impl ElementIter for UniqueIter {
    fn next(&mut self) -> Option<Result<Element>> {
        loop {
            match self.input.next()? {
                Ok(e) => {
                    let t = e.as_tensor()?;
                    if self.keys.insert(key_of(t)) {
                        self.seen.push(t.clone());
                        return Some(Ok(e));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
    fn save(&self) -> Result<State> {
        let seen: Vec<Element> = self.seen.iter().cloned().map(Element::from).collect();
        Ok(State::new("Unique")
            .elements(seen.iter())?
            .kid(self.input.save()?))
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
