//! `filter`, `take_while` and `ignore_errors`: datasets that drop elements.

use std::sync::Arc;

use super::{call_user, BoxIter, Cardinality, Dataset, Node};
use crate::element::{Element, ElementSpec};
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
    fn name(&self) -> &'static str {
        if self.stop_at_first {
            "TakeWhile"
        } else {
            "Filter"
        }
    }
    fn spec(&self) -> &ElementSpec {
        self.input.element_spec()
    }
    fn cardinality(&self) -> Cardinality {
        Cardinality::Unknown
    }
    fn open(&self) -> Result<BoxIter> {
        let mut input = self.input.open()?;
        let p = Arc::clone(&self.predicate);
        let (stop_at_first, op) = if self.stop_at_first {
            (true, "take_while")
        } else {
            (false, "filter")
        };
        let mut index = 0u64;
        let mut done = false;
        Ok(Box::new(move || loop {
            if done {
                return None;
            }
            let item = input.next()?;
            let i = index;
            index += 1;
            match item.and_then(|e| call_user(op, i, || p(&e)).map(|keep| (keep, e))) {
                Ok((true, e)) => return Some(Ok(e)),
                Ok((false, _)) if stop_at_first => done = true,
                Ok((false, _)) => continue,
                Err(e) => return Some(Err(e)),
            }
        }))
    }
}

struct IgnoreErrors {
    input: Dataset,
    log_warning: bool,
}

impl Node for IgnoreErrors {
    fn name(&self) -> &'static str {
        "IgnoreErrors"
    }
    fn spec(&self) -> &ElementSpec {
        self.input.element_spec()
    }
    fn cardinality(&self) -> Cardinality {
        Cardinality::Unknown
    }
    fn open(&self) -> Result<BoxIter> {
        let mut input = self.input.open()?;
        let log = self.log_warning;
        Ok(Box::new(move || loop {
            match input.next()? {
                Ok(e) => return Some(Ok(e)),
                Err(e) if log => eprintln!("npyflow: ignore_errors dropped an element: {e}"),
                Err(_) => {}
            }
        }))
    }
}

impl Dataset {
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
        Dataset::from_node(Filter {
            input: self.clone(),
            predicate: Arc::new(predicate),
            stop_at_first: false,
        })
    }

    /// tf.data's `take_while(predicate)`: elements up to (not including) the first for which
    /// `predicate` is `false`.
    pub fn take_while(
        &self,
        predicate: impl Fn(&Element) -> Result<bool> + Send + Sync + 'static,
    ) -> Dataset {
        Dataset::from_node(Filter {
            input: self.clone(),
            predicate: Arc::new(predicate),
            stop_at_first: true,
        })
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
