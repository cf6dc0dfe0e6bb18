//! `scan`: a map with state carried from element to element.

use std::sync::Arc;

use super::plumbing::{call_user, describe_node, restore, BoxIter, Dataset, ElementIter, Node};
use super::state::State;
use crate::element::{Element, ElementSpec, PartialShape, TensorSpec};
use crate::error::{Error, Result};

type ScanFn = Arc<dyn Fn(Element, Element) -> Result<(Element, Element)> + Send + Sync>;

struct Scan {
    input: Dataset,
    initial: Element,
    f: ScanFn,
    spec: ElementSpec,
}

impl Node for Scan {
    describe_node! { name: "Scan"; input: input; spec: spec; }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let saved = restore(from, "Scan", |r| Ok((r.num()?, r.element()?, r.kid()?)))?;
        let (index, state, input) = match saved {
            Some((i, state, input)) => (i, state, Some(input)),
            None => (0, self.initial.clone(), None),
        };
        Ok(Box::new(ScanIter {
            input: self.input.open_from(input)?,
            f: Arc::clone(&self.f),
            state,
            state_spec: self.initial.spec(),
            index,
        }))
    }
}

struct ScanIter {
    input: BoxIter,
    f: ScanFn,
    state: Element,
    state_spec: ElementSpec,
    index: u64,
}

impl ElementIter for ScanIter {
    fn next(&mut self) -> Option<Result<Element>> {
        let item = self.input.next()?;
        let i = self.index;
        self.index += 1;
        let e = match item {
            Ok(e) => e,
            Err(err) => return Some(Err(err)),
        };
        // A failed step leaves the state as it was, so the pass can go on after it.
        let current = self.state.clone();
        let f = &self.f;
        Some(
            call_user("scan", i, || f(current, e)).and_then(|(next, out)| {
                if self
                    .state_spec
                    .most_specific_compatible(&next.spec())
                    .is_none()
                {
                    return Err(Error::Pipeline(format!(
                        "scan: element {i}: the new state {} does not match the initial state {}",
                        next.spec(),
                        self.state_spec
                    )));
                }
                self.state = next;
                Ok(out)
            }),
        )
    }
    fn save(&self) -> Result<State> {
        let s = State::new("Scan").num(self.index).element(&self.state)?;
        Ok(s.kid(self.input.save()?))
    }
}

impl Dataset {
    /// tf.data's `scan(initial_state, scan_func)`: `f(state, element)` returns the new state
    /// and the output element. The state must keep the initial state's structure and dtypes
    /// (an [`Error::Dtype`] when the dataset is made, where the trace shows otherwise, and an
    /// error at the element where a later state does). Its shape may change: as in tf.data,
    /// the state's spec is relaxed (dimensions that change become unknown) and the function
    /// traced again, and the output spec is traced as for [`map`](Dataset::map) with the
    /// relaxed state.
    ///
    /// ```
    /// use npyflow::{Dataset, Tensor};
    /// // A running sum, tf.data's documented example.
    /// let ds = Dataset::range(0, 10, 1)?.scan(Tensor::scalar(0i64).into(), |state, x| {
    ///     let s = state.into_tensor()?.to_i64_scalar("state")? + x.into_tensor()?.to_i64_scalar("x")?;
    ///     Ok((Tensor::scalar(s).into(), Tensor::scalar(s).into()))
    /// })?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["0", "1", "3", "6", "10", "15", "21", "28", "36", "45"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn scan(
        &self,
        initial_state: Element,
        f: impl Fn(Element, Element) -> Result<(Element, Element)> + Send + Sync + 'static,
    ) -> Result<Dataset> {
        // As tf.data does: trace with the state's spec, and where the new state's shape
        // differs from it, relax the state's spec (unknown where they differ) and trace
        // again, until the state's spec holds still. Its structure and dtypes must not
        // change (TypeError, as tf.data's).
        let input_spec = self.element_spec().clone();
        let traced_with = |state_spec: &ElementSpec| -> Result<(ElementSpec, ElementSpec)> {
            let pair = ElementSpec::Tuple(vec![state_spec.clone(), input_spec.clone()]);
            let traced = super::map::trace(
                "scan",
                &pair,
                |e| {
                    let mut parts = e.into_tuple()?.into_iter();
                    let (s, x) = (parts.next(), parts.next());
                    match (s, x) {
                        (Some(s), Some(x)) => f(s, x),
                        _ => Err(Error::Pipeline("scan: bad placeholder".into())),
                    }
                },
                |(state, out): &(Element, Element)| {
                    ElementSpec::Tuple(vec![state.spec(), out.spec()])
                },
            )?;
            let ElementSpec::Tuple(mut both) = traced else {
                return Err(Error::Pipeline("scan: bad trace".into()));
            };
            match (both.pop(), both.pop()) {
                (Some(out), Some(new_state)) => Ok((new_state, out)),
                _ => Err(Error::Pipeline("scan: bad trace".into())),
            }
        };
        let mut state_spec = initial_state.spec();
        let mut rounds = 0;
        let mut spec = loop {
            let (new_state, out) = traced_with(&state_spec)?;
            let relaxed = state_spec
                .most_specific_compatible(&new_state)
                .ok_or_else(|| {
                    Error::Dtype(format!(
                        "scan: the new state the function returns, {new_state}, must have the \
                     structure and dtypes of the initial state, {state_spec}"
                    ))
                })?;
            if relaxed == state_spec || rounds == 8 {
                break out;
            }
            state_spec = relaxed;
            rounds += 1;
        };
        // Placeholders of an unknown rank are scalars: trace again with ranks 1 and 2 there,
        // so that outputs that follow the state's rank are unknown in rank too.
        if state_spec
            .tensor_specs()
            .iter()
            .any(|t| t.shape.rank().is_none())
        {
            for rank in [1, 2] {
                let ranked = state_spec.map_specs(&mut |t| TensorSpec {
                    dtype: t.dtype,
                    shape: match t.shape.rank() {
                        Some(_) => t.shape.clone(),
                        None => PartialShape::new(&vec![None; rank]),
                    },
                });
                if let Ok((_, out)) = traced_with(&ranked) {
                    spec = spec.most_specific_compatible(&out).unwrap_or(spec);
                }
            }
        }
        Ok(Dataset::from_node(Scan {
            input: self.clone(),
            initial: initial_state,
            f: Arc::new(f),
            spec,
        }))
    }
}
