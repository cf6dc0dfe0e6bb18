//! `repeat`: the input, pass after pass.

use std::sync::{Arc, Mutex, PoisonError};

use super::{BoxIter, Cardinality, Dataset, Node, Pass, PassRef};
use crate::buffer::BufferPool;
use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result};

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
            // tf.data's rule: repeating without end anything not known to be empty is
            // endless (an input that turns out empty ends it at once all the same).
            (_, None) => Cardinality::Infinite,
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
    fn is_random_access(&self) -> bool {
        self.count.is_some() && self.input.is_random_access()
    }
    fn pass(&self) -> Option<PassRef> {
        // Each repetition is a pass of its own, made when first read and in order, so a
        // global shuffle inside draws a new permutation per repetition, as in tf.data.
        let count = self.count?;
        let first = self.input.pass()?;
        Some(Arc::new(RepeatPass {
            input: self.input.clone(),
            len: first.len(),
            passes: Mutex::new(vec![first]),
            count,
        }))
    }
}

struct RepeatPass {
    input: Dataset,
    /// The length of one repetition.
    len: u64,
    /// The passes of the repetitions read so far.
    passes: Mutex<Vec<PassRef>>,
    count: u64,
}

impl RepeatPass {
    /// The pass of repetition `epoch`, making the ones before it first.
    fn epoch(&self, epoch: u64) -> Result<PassRef> {
        let mut passes = self.passes.lock().unwrap_or_else(PoisonError::into_inner);
        while passes.len() as u64 <= epoch {
            let next = self.input.pass().ok_or_else(|| {
                Error::Pipeline("repeat: the input stopped being random-access".into())
            })?;
            passes.push(next);
        }
        Ok(Arc::clone(&passes[epoch as usize]))
    }
}

impl Pass for RepeatPass {
    fn len(&self) -> u64 {
        self.len.saturating_mul(self.count)
    }
    fn get(&self, index: u64) -> Result<Element> {
        let n = self.len.max(1);
        self.epoch(index / n)?.get(index % n)
    }
    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        // One gather when the rows lie in one repetition; row by row otherwise.
        let n = self.len.max(1);
        let epoch = indices.first()? / n;
        if indices.iter().any(|&i| i / n != epoch) {
            return None;
        }
        let pass = match self.epoch(epoch) {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let mapped: Vec<u64> = indices.iter().map(|&i| i % n).collect();
        pass.gather(&mapped, pool)
    }
    fn parallelism(&self) -> Option<(usize, bool)> {
        self.passes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first()
            .and_then(|p| p.parallelism())
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
