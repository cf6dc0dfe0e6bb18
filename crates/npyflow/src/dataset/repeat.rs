//! `repeat`: the input, pass after pass.

use super::{BoxIter, Cardinality, Dataset, Node, RandomAccess};
use crate::element::{Element, ElementSpec};
use crate::error::Result;

struct Repeat {
    input: Dataset,
    /// `None`: forever.
    count: Option<u64>,
}

impl Node for Repeat {
    fn name(&self) -> &'static str {
        "Repeat"
    }
    fn spec(&self) -> &ElementSpec {
        self.input.element_spec()
    }
    fn cardinality(&self) -> Cardinality {
        match (self.input.cardinality(), self.count) {
            (_, Some(0)) | (Cardinality::Finite(0), _) => Cardinality::Finite(0),
            (Cardinality::Finite(n), Some(c)) => Cardinality::Finite(n.saturating_mul(c)),
            (Cardinality::Finite(_), None) => Cardinality::Infinite,
            (other, _) => other,
        }
    }
    fn open(&self) -> Result<BoxIter> {
        let input = self.input.clone();
        let count = self.count;
        let mut epoch = 0u64;
        let mut current: Option<BoxIter> = None;
        let mut yielded_this_epoch = false;
        Ok(Box::new(move || loop {
            if count.is_some_and(|c| epoch >= c) {
                return None;
            }
            if current.is_none() {
                match input.open() {
                    Ok(it) => current = Some(it),
                    Err(e) => {
                        epoch += 1;
                        return Some(Err(e));
                    }
                }
                yielded_this_epoch = false;
            }
            match current.as_mut()?.next() {
                Some(item) => {
                    yielded_this_epoch = true;
                    return Some(item);
                }
                None => {
                    current = None;
                    epoch += 1;
                    // An input with no elements would make an endless repeat spin forever;
                    // like tf.data, an empty pass ends the repeat.
                    if !yielded_this_epoch {
                        return None;
                    }
                }
            }
        }))
    }
    fn random_access(&self) -> Option<&dyn RandomAccess> {
        (self.count.is_some() && self.input.is_random_access()).then_some(self as &dyn RandomAccess)
    }
}

impl RandomAccess for Repeat {
    fn len(&self) -> u64 {
        let n = self.input.random_access().map_or(0, |r| r.len());
        n.saturating_mul(self.count.unwrap_or(0))
    }
    fn get(&self, index: u64) -> Result<Element> {
        let n = self.input.random_access().map_or(1, |r| r.len()).max(1);
        self.input.get(index % n)
    }
}

impl Dataset {
    /// tf.data's `repeat(count)`: the input `count` times, or forever when `None` (tf.data's
    /// `None` or -1). Each repetition is a new pass, so a `shuffle` before it reshuffles each
    /// epoch. An input with no elements ends an endless repeat instead of spinning.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 3, 1)?.repeat(Some(2));
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["0", "1", "2", "0", "1", "2"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn repeat(&self, count: Option<u64>) -> Dataset {
        Dataset::from_node(Repeat {
            input: self.clone(),
            count,
        })
    }
}
