//! `filter` and `ignore_errors`: datasets that drop elements.

use std::sync::Arc;

use super::{call_user, BoxIter, Cardinality, Dataset, Node};
use crate::element::{Element, ElementSpec};
use crate::error::Result;

type Predicate = Arc<dyn Fn(&Element) -> Result<bool> + Send + Sync>;

struct Filter {
    input: Dataset,
    predicate: Predicate,
}

impl Node for Filter {
    fn name(&self) -> &'static str {
        "Filter"
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
        let mut index = 0u64;
        Ok(Box::new(move || loop {
            let item = input.next()?;
            let i = index;
            index += 1;
            match item.and_then(|e| call_user("filter", i, || p(&e)).map(|keep| (keep, e))) {
                Ok((true, e)) => return Some(Ok(e)),
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
