//! `repeat`: the input, pass after pass.

use std::sync::{Arc, Mutex, PoisonError};

use super::options::Parallelism;
use super::plumbing::{
    describe_node, restore, BoxIter, Cardinality, Dataset, ElementIter, Node, Pass, PassRef,
};
use super::state::{observe, shifted, with_draws, Draw, State};
use crate::buffer::BufferPool;
use crate::element::Element;
use crate::error::{Error, Result};

struct Repeat {
    input: Dataset,
    /// `None`: forever.
    count: Option<u64>,
}

impl Node for Repeat {
    describe_node! { name: "Repeat"; input: input; }
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
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let mut it = RepeatIter {
            input: self.input.clone(),
            count: self.count,
            epoch: 0,
            current: None,
            yielded_this_epoch: false,
            open_error: None,
        };
        let Some(from) = from else {
            // The first repetition is opened now, so its epochs are drawn with the pass's
            // (a state saved before the first element already holds them).
            if self.count != Some(0) {
                match self.input.open() {
                    Ok(first) => it.current = Some(first),
                    Err(e) => it.open_error = Some(e),
                }
            }
            return Ok(Box::new(it));
        };
        restore(Some(from), "Repeat", |r| {
            it.epoch = r.num()?;
            it.yielded_this_epoch = r.flag()?;
            if let Some(s) = r.kid_opt()? {
                it.current = Some(self.input.open_from(Some(s))?);
            }
            Ok(())
        })?;
        Ok(Box::new(it))
    }
    fn is_random_access(&self) -> bool {
        self.count.is_some() && self.input.is_random_access()
    }
    fn pass(&self) -> Option<PassRef> {
        // Each repetition is a pass of its own, made when first read and in order, so a
        // global shuffle inside draws a new permutation per repetition, as in tf.data.
        let count = self.count?;
        // Repetition r draws what the first drew, with reshuffling epochs moved on by r, so a
        // restored pass makes the same repetitions.
        let (first, draws) = observe(|| self.input.pass());
        let first = first?;
        Some(Arc::new(RepeatPass {
            input: self.input.clone(),
            len: first.len(),
            passes: Mutex::new(vec![first]),
            draws,
            count,
        }))
    }
}

struct RepeatPass {
    input: Dataset,
    /// The draws of the first repetition.
    draws: Vec<Draw>,
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
            let r = passes.len() as u64;
            let (next, _) = with_draws(Some(shifted(&self.draws, r)), || self.input.pass())?;
            let next = next.ok_or_else(|| {
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
    fn parallelism(&self) -> Option<Parallelism> {
        self.passes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first()
            .and_then(|p| p.parallelism())
    }
}

struct RepeatIter {
    input: Dataset,
    count: Option<u64>,
    /// The repetition being read.
    epoch: u64,
    current: Option<BoxIter>,
    yielded_this_epoch: bool,
    /// The first repetition failed to open: the error goes out first.
    open_error: Option<Error>,
}

impl ElementIter for RepeatIter {
    fn next(&mut self) -> Option<Result<Element>> {
        if let Some(e) = self.open_error.take() {
            self.epoch += 1;
            return Some(Err(e));
        }
        loop {
            if self.count.is_some_and(|c| self.epoch >= c) {
                return None;
            }
            if self.current.is_none() {
                match self.input.open() {
                    Ok(it) => self.current = Some(it),
                    Err(e) => {
                        self.epoch += 1;
                        return Some(Err(e));
                    }
                }
                self.yielded_this_epoch = false;
            }
            match self.current.as_mut()?.next() {
                Some(item) => {
                    self.yielded_this_epoch = true;
                    return Some(item);
                }
                None => {
                    self.current = None;
                    self.epoch += 1;
                    // An input with no elements would make an endless repeat spin forever;
                    // like tf.data, an empty pass ends it. A repeat of `count` passes goes
                    // through empty ones, as tf.data's does (a generator may yield nothing
                    // on one pass and something on the next), unless the input is known to
                    // be empty on every pass.
                    if !self.yielded_this_epoch
                        && (self.count.is_none()
                            || self.input.cardinality() == Cardinality::Finite(0))
                    {
                        return None;
                    }
                }
            }
        }
    }
    fn save(&self) -> Result<State> {
        let current = self.current.as_ref().map(|it| it.save()).transpose()?;
        Ok(State::new("Repeat")
            .num(self.epoch)
            .flag(self.yielded_this_epoch)
            .kid_opt(current))
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
