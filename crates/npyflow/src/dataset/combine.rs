//! Several datasets into one: `zip`, `concatenate`, `sample_from_datasets`,
//! `choose_from_datasets`.

use std::sync::atomic::{AtomicU64, Ordering};

use indexmap::IndexMap;

use super::rng::{fresh_seed, Rng};
use std::sync::Arc;

use super::{require, BoxIter, Cardinality, Dataset, Node, Pass, PassRef};
use crate::buffer::BufferPool;
use crate::dtype::DType;
use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result};

/// Zips into a tuple, or into a dict when `keys` is set.
struct Zip {
    inputs: Vec<Dataset>,
    keys: Option<Vec<String>>,
    spec: ElementSpec,
}

/// The zipped element of `parts`: a tuple, or a dict with `keys`.
fn assemble(keys: Option<&[String]>, parts: Vec<Element>) -> Element {
    match keys {
        None => Element::Tuple(parts),
        Some(keys) => Element::Dict(keys.iter().cloned().zip(parts).collect()),
    }
}

impl Node for Zip {
    fn name(&self) -> &'static str {
        "Zip"
    }
    fn spec(&self) -> &ElementSpec {
        &self.spec
    }
    fn cardinality(&self) -> Cardinality {
        // tf.data: unknown if any input is unknown, else the smallest finite one, else infinite.
        let mut out = Cardinality::Infinite;
        for c in self.inputs.iter().map(Dataset::cardinality) {
            match (c, out) {
                (Cardinality::Unknown, _) => return Cardinality::Unknown,
                (Cardinality::Finite(n), Cardinality::Finite(m)) => {
                    out = Cardinality::Finite(n.min(m))
                }
                (Cardinality::Finite(n), _) => out = Cardinality::Finite(n),
                _ => {}
            }
        }
        out
    }
    fn open(&self) -> Result<BoxIter> {
        let mut iters: Vec<BoxIter> = self
            .inputs
            .iter()
            .map(Dataset::open)
            .collect::<Result<_>>()?;
        let keys = self.keys.clone();
        Ok(Box::new(move || {
            let mut parts = Vec::with_capacity(iters.len());
            let mut error = None;
            for it in iters.iter_mut() {
                match it.next()? {
                    Ok(e) => parts.push(e),
                    Err(e) => {
                        error.get_or_insert(e);
                    }
                }
            }
            Some(match error {
                Some(e) => Err(e),
                None => Ok(assemble(keys.as_deref(), parts)),
            })
        }))
    }
    fn is_random_access(&self) -> bool {
        self.inputs.iter().all(Dataset::is_random_access)
    }
    fn pass(&self) -> Option<PassRef> {
        Some(Arc::new(ZipPass {
            inputs: self
                .inputs
                .iter()
                .map(Dataset::pass)
                .collect::<Option<_>>()?,
            keys: self.keys.clone(),
        }))
    }
}

struct ZipPass {
    inputs: Vec<PassRef>,
    keys: Option<Vec<String>>,
}

impl Pass for ZipPass {
    fn len(&self) -> u64 {
        self.inputs.iter().map(|p| p.len()).min().unwrap_or(0)
    }
    fn get(&self, index: u64) -> Result<Element> {
        let parts = self
            .inputs
            .iter()
            .map(|p| p.get(index))
            .collect::<Result<_>>()?;
        Ok(assemble(self.keys.as_deref(), parts))
    }
    fn get_range(&self, start: u64, end: u64) -> Option<Result<Element>> {
        let parts: Option<Result<Vec<Element>>> = self
            .inputs
            .iter()
            .map(|p| p.get_range(start, end))
            .collect();
        Some(parts?.map(|parts| assemble(self.keys.as_deref(), parts)))
    }
    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        let parts: Option<Result<Vec<Element>>> = self
            .inputs
            .iter()
            .map(|p| p.gather(indices, pool))
            .collect();
        Some(parts?.map(|parts| assemble(self.keys.as_deref(), parts)))
    }
}

struct Concatenate {
    first: Dataset,
    second: Dataset,
    spec: ElementSpec,
}

impl Node for Concatenate {
    fn name(&self) -> &'static str {
        "Concatenate"
    }
    fn spec(&self) -> &ElementSpec {
        &self.spec
    }
    fn cardinality(&self) -> Cardinality {
        // tf.data's rule: an endless part makes the whole endless (whatever the other is).
        match (self.first.cardinality(), self.second.cardinality()) {
            (Cardinality::Finite(a), Cardinality::Finite(b)) => {
                Cardinality::Finite(a.saturating_add(b))
            }
            (Cardinality::Infinite, _) | (_, Cardinality::Infinite) => Cardinality::Infinite,
            _ => Cardinality::Unknown,
        }
    }
    fn open(&self) -> Result<BoxIter> {
        let mut first = Some(self.first.open()?);
        let second = self.second.clone();
        let mut rest: Option<BoxIter> = None;
        Ok(Box::new(move || {
            if let Some(it) = first.as_mut() {
                match it.next() {
                    Some(item) => return Some(item),
                    None => first = None,
                }
            }
            if rest.is_none() {
                match second.open() {
                    Ok(it) => rest = Some(it),
                    Err(e) => {
                        // The error once, in the second part's place; then the end.
                        rest = Some(Box::new(|| None));
                        return Some(Err(e));
                    }
                }
            }
            rest.as_mut()?.next()
        }))
    }
    fn is_random_access(&self) -> bool {
        self.first.is_random_access() && self.second.is_random_access()
    }
    fn pass(&self) -> Option<PassRef> {
        Some(Arc::new(ConcatenatePass {
            first: self.first.pass()?,
            second: self.second.pass()?,
        }))
    }
}

struct ConcatenatePass {
    first: PassRef,
    second: PassRef,
}

impl Pass for ConcatenatePass {
    fn len(&self) -> u64 {
        self.first.len().saturating_add(self.second.len())
    }
    fn get(&self, index: u64) -> Result<Element> {
        let n = self.first.len();
        if index < n {
            self.first.get(index)
        } else {
            self.second.get(index - n)
        }
    }
}

struct Sample {
    inputs: Vec<Dataset>,
    weights: Vec<f64>,
    seed: u64,
    stop_on_empty: bool,
    epoch: AtomicU64,
    spec: ElementSpec,
}

impl Node for Sample {
    fn name(&self) -> &'static str {
        "DirectedInterleave"
    }
    fn spec(&self) -> &ElementSpec {
        &self.spec
    }
    fn cardinality(&self) -> Cardinality {
        sample_cardinality(&self.inputs, self.stop_on_empty)
    }
    fn open(&self) -> Result<BoxIter> {
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed);
        let mut rng = Rng::keyed(self.seed, &[epoch]);
        let mut iters: Vec<Option<BoxIter>> = self
            .inputs
            .iter()
            .map(|d| d.open().map(Some))
            .collect::<Result<_>>()?;
        let mut weights = self.weights.clone();
        let stop_on_empty = self.stop_on_empty;
        Ok(Box::new(move || loop {
            let total: f64 = weights.iter().sum();
            if total <= 0.0 {
                return None;
            }
            // The first input whose cumulative weight passes a uniform draw.
            let draw = rng.next_f64() * total;
            let mut acc = 0.0;
            let mut pick = weights.iter().rposition(|&w| w > 0.0)?;
            for (i, &w) in weights.iter().enumerate() {
                acc += w;
                if w > 0.0 && draw < acc {
                    pick = i;
                    break;
                }
            }
            match iters[pick].as_mut().and_then(|it| it.next()) {
                Some(item) => return Some(item),
                None if stop_on_empty => {
                    // Stopped for good: no weight left to draw from.
                    weights.iter_mut().for_each(|w| *w = 0.0);
                    return None;
                }
                None => {
                    iters[pick] = None;
                    weights[pick] = 0.0;
                }
            }
        }))
    }
}

/// The count of a sampling: with `stop_on_empty_dataset` the run ends with the first input
/// to end, so it is unknown unless every input is endless; without it the run ends when all
/// have ended, so any endless input makes it endless, and finite inputs give their sum.
///
/// Differs from tf.data, which calls the finite sum unknown, and an endless input endless
/// even when a finite one stops the run.
fn sample_cardinality(inputs: &[Dataset], stop_on_empty: bool) -> Cardinality {
    let cards: Vec<Cardinality> = inputs.iter().map(Dataset::cardinality).collect();
    if stop_on_empty {
        if cards.iter().all(|c| *c == Cardinality::Infinite) {
            Cardinality::Infinite
        } else {
            Cardinality::Unknown
        }
    } else if cards.contains(&Cardinality::Infinite) {
        Cardinality::Infinite
    } else if cards.contains(&Cardinality::Unknown) {
        Cardinality::Unknown
    } else {
        Cardinality::Finite(
            cards
                .iter()
                .map(|c| match c {
                    Cardinality::Finite(n) => *n,
                    _ => 0,
                })
                .fold(0u64, u64::saturating_add),
        )
    }
}

struct Choose {
    inputs: Vec<Dataset>,
    choice: Dataset,
    stop_on_empty: bool,
    spec: ElementSpec,
}

impl Node for Choose {
    fn name(&self) -> &'static str {
        "DirectedInterleave"
    }
    fn spec(&self) -> &ElementSpec {
        &self.spec
    }
    fn cardinality(&self) -> Cardinality {
        // Exact when every input is endless: one element per choice. Otherwise an input may
        // end (and stop the run, or have its choices skipped), which only iterating tells.
        let endless = self
            .inputs
            .iter()
            .all(|d| d.cardinality() == Cardinality::Infinite);
        match self.choice.cardinality() {
            c @ (Cardinality::Finite(_) | Cardinality::Infinite) if endless => c,
            Cardinality::Finite(0) => Cardinality::Finite(0),
            _ => Cardinality::Unknown,
        }
    }
    fn open(&self) -> Result<BoxIter> {
        let mut choice = self.choice.open()?;
        let mut iters: Vec<Option<BoxIter>> = self
            .inputs
            .iter()
            .map(|d| d.open().map(Some))
            .collect::<Result<_>>()?;
        let stop_on_empty = self.stop_on_empty;
        let n = iters.len();
        let mut live = n;
        let mut position = 0u64;
        Ok(Box::new(move || loop {
            // Once every input has ended, nothing more can come, whatever the choices say.
            if live == 0 {
                return None;
            }
            let i = position;
            position += 1;
            let index = match choice.next()? {
                Ok(c) => c.into_tensor().and_then(|t| t.to_i64_scalar("the choice")),
                Err(e) => Err(e),
            };
            let index = match index {
                Ok(k) if (0..n as i64).contains(&k) => k as usize,
                Ok(k) => {
                    return Some(Err(Error::Pipeline(format!(
                        "choose_from_datasets: choice {i} selects dataset {k}, outside [0, {n})"
                    ))))
                }
                Err(e) => return Some(Err(e)),
            };
            match iters[index].as_mut().and_then(|it| it.next()) {
                Some(item) => return Some(item),
                None if stop_on_empty => {
                    // Stopped for good.
                    live = 0;
                    return None;
                }
                None => {
                    if iters[index].take().is_some() {
                        live -= 1;
                    }
                }
            }
        }))
    }
}

/// The spec every one of `datasets` satisfies, or an error naming the two that differ.
fn common_spec(op: &str, datasets: &[Dataset]) -> Result<ElementSpec> {
    let first = datasets
        .first()
        .ok_or_else(|| Error::InvalidArgument(format!("{op}: no datasets given")))?;
    let mut spec = first.element_spec().clone();
    for (i, d) in datasets.iter().enumerate().skip(1) {
        spec = spec
            .most_specific_compatible(d.element_spec())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{op}: incompatible dataset elements: dataset 0 has {}, dataset {i} has {}",
                    first.element_spec(),
                    d.element_spec()
                ))
            })?;
    }
    Ok(spec)
}

impl Dataset {
    /// tf.data's `zip` over a tuple of datasets: tuples of one element from each, ending
    /// with the shortest.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let a = Dataset::range(1, 4, 1)?;
    /// let b = Dataset::range(4, 7, 1)?;
    /// let z = Dataset::zip(vec![a, b])?;
    /// assert_eq!(z.to_vec()?[0].to_string(), "(1, 4)");
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn zip(datasets: Vec<Dataset>) -> Result<Dataset> {
        require(!datasets.is_empty(), || {
            "zip: needs at least one dataset".to_string()
        })?;
        let spec = ElementSpec::Tuple(datasets.iter().map(|d| d.element_spec().clone()).collect());
        Ok(Dataset::from_node(Zip {
            inputs: datasets,
            keys: None,
            spec,
        }))
    }

    /// tf.data's `zip` over a dict of datasets: dict elements with the keys in the order
    /// given.
    pub fn zip_dict(datasets: Vec<(String, Dataset)>) -> Result<Dataset> {
        require(!datasets.is_empty(), || {
            "zip: needs at least one dataset".to_string()
        })?;
        let mut spec = IndexMap::new();
        for (k, d) in &datasets {
            require(
                spec.insert(k.clone(), d.element_spec().clone()).is_none(),
                || format!("zip: key {k:?} is given twice"),
            )?;
        }
        let (keys, inputs) = datasets.into_iter().unzip();
        Ok(Dataset::from_node(Zip {
            inputs,
            keys: Some(keys),
            spec: ElementSpec::Dict(spec),
        }))
    }

    /// tf.data's `concatenate`: this dataset's elements, then `other`'s. The two must have
    /// the same structure and dtypes; the result's shapes are the most specific that fit
    /// both.
    pub fn concatenate(&self, other: &Dataset) -> Result<Dataset> {
        let spec = common_spec("concatenate", &[self.clone(), other.clone()])?;
        Ok(Dataset::from_node(Concatenate {
            first: self.clone(),
            second: other.clone(),
            spec,
        }))
    }

    /// tf.data's `sample_from_datasets`: each element from an input drawn at random with
    /// probabilities proportional to `weights` (equal when `None`). When an input ends, it is
    /// dropped from the draw, or, with `stop_on_empty_dataset`, the whole run ends. Seeded by
    /// `seed` (a fresh seed when `None`); each pass draws a new sequence.
    pub fn sample_from_datasets(
        datasets: Vec<Dataset>,
        weights: Option<Vec<f64>>,
        seed: Option<u64>,
        stop_on_empty_dataset: bool,
    ) -> Result<Dataset> {
        let spec = common_spec("sample_from_datasets", &datasets)?;
        let weights = weights.unwrap_or_else(|| vec![1.0; datasets.len()]);
        require(weights.len() == datasets.len(), || {
            format!(
                "sample_from_datasets: {} weights for {} datasets",
                weights.len(),
                datasets.len()
            )
        })?;
        require(weights.iter().all(|w| w.is_finite() && *w >= 0.0), || {
            format!("sample_from_datasets: weights must be finite and non-negative: {weights:?}")
        })?;
        Ok(Dataset::from_node(Sample {
            inputs: datasets,
            weights,
            seed: seed.unwrap_or_else(fresh_seed),
            stop_on_empty: stop_on_empty_dataset,
            epoch: AtomicU64::new(0),
            spec,
        }))
    }

    /// tf.data's `choose_from_datasets`: element *i* comes from input `choice[i]`, where
    /// `choice` is a dataset of int64 scalars. A choice outside the inputs is an error at its
    /// position. When the chosen input has ended, the run ends if `stop_on_empty_dataset`
    /// (tf.data's default), and the choice is skipped otherwise.
    ///
    /// ```
    /// use npyflow::{Dataset, Tensor};
    /// let words = |v: i64| Dataset::from_tensors(Tensor::scalar(v)).repeat(None);
    /// let choice = Dataset::range(0, 3, 1)?.repeat(Some(2));
    /// let ds = Dataset::choose_from_datasets(vec![words(10), words(20), words(30)], &choice, true)?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["10", "20", "30", "10", "20", "30"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn choose_from_datasets(
        datasets: Vec<Dataset>,
        choice: &Dataset,
        stop_on_empty_dataset: bool,
    ) -> Result<Dataset> {
        let spec = common_spec("choose_from_datasets", &datasets)?;
        let ok = matches!(choice.element_spec(), ElementSpec::Tensor(s)
            if s.dtype == DType::Int64 && s.shape.dims() == Some(&[]));
        require(ok, || {
            format!(
                "choose_from_datasets: the choice dataset must hold int64 scalars, it holds {}",
                choice.element_spec()
            )
        })?;
        Ok(Dataset::from_node(Choose {
            inputs: datasets,
            choice: choice.clone(),
            stop_on_empty: stop_on_empty_dataset,
            spec,
        }))
    }
}
