//! `filter`, `take_while` and `ignore_errors`: datasets that drop elements.

use std::sync::Arc;

use super::plumbing::{
    call_user, describe_node, restore, BoxIter, Cardinality, Dataset, ElementIter, Node,
};
use super::state::State;
use crate::element::Element;
use crate::error::Result;

type Predicate = Arc<dyn Fn(&Element) -> Result<bool> + Send + Sync>;

/// `filter` (drop the elements the predicate rejects) and `take_while` (end at the first).
struct Filter {
    input: Dataset,
    predicate: Predicate,
    /// `take_while`: the first rejected element ends the pass.
    stop_at_first: bool,
}

impl Node for Filter {
    describe_node! { input: input; }
    fn name(&self) -> &'static str {
        if self.stop_at_first {
            "TakeWhile"
        } else {
            "Filter"
        }
    }
    fn cardinality(&self) -> Cardinality {
        Cardinality::Unknown
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let (index, done, input) =
            restore(from, self.name(), |r| Ok((r.num()?, r.flag()?, r.kid()?)))?
                .map_or((0, false, None), |(i, d, s)| (i, d, Some(s)));
        Ok(Box::new(FilterIter {
            input: self.input.open_from(input)?,
            predicate: Arc::clone(&self.predicate),
            stop_at_first: self.stop_at_first,
            index,
            done,
        }))
    }
}

struct FilterIter {
    input: BoxIter,
    predicate: Predicate,
    stop_at_first: bool,
    /// The number of input elements taken.
    index: u64,
    /// take_while has seen its first `false`.
    done: bool,
}

impl ElementIter for FilterIter {
    fn next(&mut self) -> Option<Result<Element>> {
        let op = if self.stop_at_first {
            "take_while"
        } else {
            "filter"
        };
        loop {
            if self.done {
                return None;
            }
            let item = self.input.next()?;
            let i = self.index;
            self.index += 1;
            let p = &self.predicate;
            match item.and_then(|e| call_user(op, i, || p(&e)).map(|keep| (keep, e))) {
                Ok((true, e)) => return Some(Ok(e)),
                Ok((false, _)) if self.stop_at_first => self.done = true,
                Ok((false, _)) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
    fn save(&self) -> Result<State> {
        let tag = if self.stop_at_first {
            "TakeWhile"
        } else {
            "Filter"
        };
        Ok(State::new(tag)
            .num(self.index)
            .flag(self.done)
            .kid(self.input.save()?))
    }
}

struct IgnoreErrors {
    input: Dataset,
    log_warning: bool,
}

impl Node for IgnoreErrors {
    describe_node! { name: "IgnoreErrors"; input: input; }
    fn cardinality(&self) -> Cardinality {
        Cardinality::Unknown
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let input = restore(from, "IgnoreErrors", |r| r.kid())?;
        Ok(Box::new(IgnoreErrorsIter {
            input: self.input.open_from(input)?,
            log: self.log_warning,
        }))
    }
}

struct IgnoreErrorsIter {
    input: BoxIter,
    log: bool,
}

impl ElementIter for IgnoreErrorsIter {
    fn next(&mut self) -> Option<Result<Element>> {
        loop {
            match self.input.next()? {
                Ok(e) => return Some(Ok(e)),
                Err(e) if self.log => eprintln!("npyflow: ignore_errors dropped an element: {e}"),
                Err(_) => {}
            }
        }
    }
    fn save(&self) -> Result<State> {
        Ok(State::new("IgnoreErrors").kid(self.input.save()?))
    }
}

impl Dataset {
    fn filtered(&self, predicate: Predicate, stop_at_first: bool) -> Dataset {
        Dataset::from_node(Filter {
            input: self.clone(),
            predicate,
            stop_at_first,
        })
    }

    /// tf.data's `filter`: the elements for which `predicate` returns `true`, in order.
    /// The cardinality becomes unknown.
    ///
    /// Differs from tf.data: the predicate returns a Rust `bool` rather than a scalar bool
    /// tensor.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(1, 5, 1)?
    ///     .filter(|x| Ok(x.as_tensor().unwrap().to_i64_scalar("x")? % 2 == 1));
    /// assert_eq!(ds.to_vec()?.len(), 2); // 1 and 3
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn filter(
        &self,
        predicate: impl Fn(&Element) -> Result<bool> + Send + Sync + 'static,
    ) -> Dataset {
        self.filtered(Arc::new(predicate), false)
    }

    /// tf.data's `take_while(predicate)`: elements up to (not including) the first for which
    /// `predicate` is `false`.
    pub fn take_while(
        &self,
        predicate: impl Fn(&Element) -> Result<bool> + Send + Sync + 'static,
    ) -> Dataset {
        self.filtered(Arc::new(predicate), true)
    }

    /// tf.data's `ignore_errors`: the elements, with the errors in their places dropped
    /// (each printed to stderr when `log_warning`).
    pub fn ignore_errors(&self, log_warning: bool) -> Dataset {
        Dataset::from_node(IgnoreErrors {
            input: self.clone(),
            log_warning,
        })
    }
}
