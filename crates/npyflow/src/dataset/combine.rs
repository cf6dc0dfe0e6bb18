//! Several datasets into one: `zip`, `concatenate`, `sample_from_datasets`,
//! `choose_from_datasets`.

use indexmap::IndexMap;

use std::sync::Arc;

use super::plumbing::{
    describe_node, require, restore, BoxIter, Cardinality, Dataset, ElementIter, Ended, Node, Pass,
    PassRef,
};
use super::state::{Randomness, State};
use crate::buffer::BufferPool;
use crate::dtype::DType;
use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result};
use crate::rng::Rng;

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
    describe_node! { name: "Zip"; spec: spec; }
    fn inputs(&self) -> Vec<&Dataset> {
        self.inputs.iter().collect()
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
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let n = self.inputs.len();
        let states = restore(from, "Zip", |r| {
            (0..n).map(|_| r.kid()).collect::<Result<Vec<_>>>()
        })?;
        let mut states = states.map(|s| s.into_iter().map(Some).collect::<Vec<_>>());
        let iters = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, d)| d.open_from(states.as_mut().and_then(|s| s[i].take())))
            .collect::<Result<_>>()?;
        Ok(Box::new(ZipIter {
            iters,
            keys: self.keys.clone(),
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

struct ZipIter {
    iters: Vec<BoxIter>,
    keys: Option<Vec<String>>,
}

impl ElementIter for ZipIter {
    fn next(&mut self) -> Option<Result<Element>> {
        let mut parts = Vec::with_capacity(self.iters.len());
        let mut error = None;
        for it in self.iters.iter_mut() {
            match it.next()? {
                Ok(e) => parts.push(e),
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        Some(match error {
            Some(e) => Err(e),
            None => Ok(assemble(self.keys.as_deref(), parts)),
        })
    }
    fn save(&self) -> Result<State> {
        let mut s = State::new("Zip");
        for it in &self.iters {
            s = s.kid(it.save()?);
        }
        Ok(s)
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
    describe_node! { name: "Concatenate"; spec: spec; }
    fn inputs(&self) -> Vec<&Dataset> {
        vec![&self.first, &self.second]
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
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let Some(s) = from else {
            return Ok(Box::new(ConcatIter {
                first: Some(self.first.open()?),
                second: self.second.clone(),
                rest: None,
            }));
        };
        let (in_first, part) =
            restore(Some(s), "Concatenate", |r| Ok((r.flag()?, r.kid_opt()?)))?.unwrap_or_default();
        let mut it = ConcatIter {
            first: None,
            second: self.second.clone(),
            rest: None,
        };
        match (in_first, part) {
            (true, Some(p)) => it.first = Some(self.first.open_from(Some(p))?),
            (false, Some(p)) if p.tag() == "Ended" => it.rest = Some(Box::new(Ended)),
            (false, Some(p)) => it.rest = Some(self.second.open_from(Some(p))?),
            (_, None) => {}
        }
        Ok(Box::new(it))
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

struct ConcatIter {
    /// The first part, until it ends.
    first: Option<BoxIter>,
    second: Dataset,
    /// The second part, once opened.
    rest: Option<BoxIter>,
}

impl ElementIter for ConcatIter {
    fn next(&mut self) -> Option<Result<Element>> {
        if let Some(it) = self.first.as_mut() {
            match it.next() {
                Some(item) => return Some(item),
                None => self.first = None,
            }
        }
        if self.rest.is_none() {
            match self.second.open() {
                Ok(it) => self.rest = Some(it),
                Err(e) => {
                    // The error once, in the second part's place; then the end.
                    self.rest = Some(Box::new(Ended));
                    return Some(Err(e));
                }
            }
        }
        self.rest.as_mut()?.next()
    }
    fn save(&self) -> Result<State> {
        let s = State::new("Concatenate").flag(self.first.is_some());
        Ok(match (&self.first, &self.rest) {
            (Some(it), _) | (None, Some(it)) => s.kid(it.save()?),
            (None, None) => s.kid_opt(None),
        })
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
    random: Randomness,
    /// A new sequence each pass (else every pass draws the same one, from the seed).
    rerandomize: bool,
    stop_on_empty: bool,
    spec: ElementSpec,
}

impl Node for Sample {
    describe_node! { name: "DirectedInterleave"; spec: spec; random: random; }
    fn inputs(&self) -> Vec<&Dataset> {
        self.inputs.iter().collect()
    }
    fn cardinality(&self) -> Cardinality {
        sample_cardinality(&self.inputs, self.stop_on_empty)
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let n = self.inputs.len();
        let saved = restore(from, "Sample", |r| {
            let (seed, epoch, rng) = (r.num()?, r.num()?, Rng::at(r.num()?));
            let mut weights = Vec::with_capacity(n);
            let mut states = Vec::with_capacity(n);
            for _ in 0..n {
                weights.push(f64::from_bits(r.num()?));
                states.push(r.kid_opt()?);
            }
            Ok((seed, epoch, rng, weights, states))
        })?;
        let it = match saved {
            None => {
                // Epoch 0 for every pass unless it rerandomizes each iteration.
                let epoch = self.random.next_epoch(self.rerandomize);
                SampleIter {
                    rng: Rng::keyed(self.random.seed(), &[epoch]),
                    seed: self.random.seed(),
                    epoch,
                    iters: self
                        .inputs
                        .iter()
                        .map(|d| d.open().map(Some))
                        .collect::<Result<_>>()?,
                    weights: self.weights.clone(),
                    stop_on_empty: self.stop_on_empty,
                }
            }
            Some((seed, epoch, rng, weights, states)) => {
                self.random.resumed(seed, epoch, self.rerandomize);
                SampleIter {
                    rng,
                    seed,
                    epoch,
                    iters: reopen_all(&self.inputs, states)?,
                    weights,
                    stop_on_empty: self.stop_on_empty,
                }
            }
        };
        Ok(Box::new(it))
    }
}

struct SampleIter {
    rng: Rng,
    seed: u64,
    epoch: u64,
    /// The inputs; an ended one is `None`, with weight 0.
    iters: Vec<Option<BoxIter>>,
    weights: Vec<f64>,
    stop_on_empty: bool,
}

impl ElementIter for SampleIter {
    fn next(&mut self) -> Option<Result<Element>> {
        loop {
            let total: f64 = self.weights.iter().sum();
            if total <= 0.0 {
                return None;
            }
            // The first input whose cumulative weight passes a uniform draw.
            let draw = self.rng.next_f64() * total;
            let mut acc = 0.0;
            let mut pick = self.weights.iter().rposition(|&w| w > 0.0)?;
            for (i, &w) in self.weights.iter().enumerate() {
                acc += w;
                if w > 0.0 && draw < acc {
                    pick = i;
                    break;
                }
            }
            match self.iters[pick].as_mut().and_then(|it| it.next()) {
                Some(item) => return Some(item),
                None if self.stop_on_empty => {
                    // Stopped for good: no weight left to draw from.
                    self.weights.iter_mut().for_each(|w| *w = 0.0);
                    return None;
                }
                None => {
                    self.iters[pick] = None;
                    self.weights[pick] = 0.0;
                }
            }
        }
    }
    fn save(&self) -> Result<State> {
        let mut s = State::new("Sample")
            .num(self.seed)
            .num(self.epoch)
            .num(self.rng.position());
        for (w, it) in self.weights.iter().zip(&self.iters) {
            s = s
                .num(w.to_bits())
                .kid_opt(it.as_ref().map(|it| it.save()).transpose()?);
        }
        Ok(s)
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
    describe_node! { name: "DirectedInterleave"; spec: spec; }
    fn inputs(&self) -> Vec<&Dataset> {
        self.inputs.iter().chain([&self.choice]).collect()
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
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let n = self.inputs.len();
        let saved = restore(from, "Choose", |r| {
            let position = r.num()?;
            let live = r.usize()?;
            let choice = r.kid()?;
            let states = (0..n).map(|_| r.kid_opt()).collect::<Result<Vec<_>>>()?;
            Ok((position, live, choice, states))
        })?;
        let it = match saved {
            None => ChooseIter {
                choice: self.choice.open()?,
                iters: self
                    .inputs
                    .iter()
                    .map(|d| d.open().map(Some))
                    .collect::<Result<_>>()?,
                stop_on_empty: self.stop_on_empty,
                live: n,
                position: 0,
            },
            Some((position, live, choice, states)) => ChooseIter {
                choice: self.choice.open_from(Some(choice))?,
                iters: reopen_all(&self.inputs, states)?,
                stop_on_empty: self.stop_on_empty,
                live,
                position,
            },
        };
        Ok(Box::new(it))
    }
}

struct ChooseIter {
    choice: BoxIter,
    iters: Vec<Option<BoxIter>>,
    stop_on_empty: bool,
    /// Inputs not yet ended (0 once stopped).
    live: usize,
    position: u64,
}

impl ElementIter for ChooseIter {
    fn next(&mut self) -> Option<Result<Element>> {
        let n = self.iters.len();
        loop {
            // Once every input has ended, nothing more can come, whatever the choices say.
            if self.live == 0 {
                return None;
            }
            let i = self.position;
            self.position += 1;
            let index = match self.choice.next()? {
                Ok(c) => c.into_tensor().and_then(|t| t.to_i64_scalar("the choice")),
                Err(e) => Err(e),
            };
            let index = match index {
                Ok(k) if (0..n as i64).contains(&k) => k as usize,
                Ok(k) => {
                    return Some(Err(Error::Pipeline(format!(
                    "choose_from_datasets: choice {i} selects dataset {k}, out of range [0, {n})"
                ))))
                }
                Err(e) => return Some(Err(e)),
            };
            match self.iters[index].as_mut().and_then(|it| it.next()) {
                Some(item) => return Some(item),
                None if self.stop_on_empty => {
                    // Stopped for good.
                    self.live = 0;
                    return None;
                }
                None => {
                    if self.iters[index].take().is_some() {
                        self.live -= 1;
                    }
                }
            }
        }
    }
    fn save(&self) -> Result<State> {
        let mut s = State::new("Choose")
            .num(self.position)
            .num(self.live as u64)
            .kid(self.choice.save()?);
        for it in &self.iters {
            s = s.kid_opt(it.as_ref().map(|it| it.save()).transpose()?);
        }
        Ok(s)
    }
}

/// Inputs restored from their saved states: those that had ended (no state) stay ended.
fn reopen_all(inputs: &[Dataset], states: Vec<Option<State>>) -> Result<Vec<Option<BoxIter>>> {
    inputs
        .iter()
        .zip(states)
        .map(|(d, s)| s.map(|s| d.open_from(Some(s))).transpose())
        .collect()
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
    /// `seed` (a seed drawn now when `None`); every pass draws the same sequence, as
    /// tf.data's does when `rerandomize_each_iteration` is unset or false (see
    /// [`sample_from_datasets_with`](Dataset::sample_from_datasets_with) for a new one each
    /// pass).
    pub fn sample_from_datasets(
        datasets: Vec<Dataset>,
        weights: Option<Vec<f64>>,
        seed: Option<u64>,
        stop_on_empty_dataset: bool,
    ) -> Result<Dataset> {
        Dataset::sample_from_datasets_with(datasets, weights, seed, stop_on_empty_dataset, false)
    }

    /// [`sample_from_datasets`](Dataset::sample_from_datasets) with tf.data's
    /// `rerandomize_each_iteration`: when true, each pass draws a new sequence (pass *k*'s
    /// draws are keyed by the seed and *k*, so a restored iterator repeats its own).
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let inputs = || vec![Dataset::range(0, 5, 1).unwrap(), Dataset::range(10, 15, 1).unwrap()];
    /// let same = Dataset::sample_from_datasets_with(inputs(), None, Some(7), false, false)?;
    /// assert_eq!(same.to_vec()?, same.to_vec()?);
    /// let fresh = Dataset::sample_from_datasets_with(inputs(), None, Some(7), false, true)?;
    /// let passes: Vec<_> = (0..4).map(|_| fresh.to_vec().unwrap()).collect();
    /// assert!(passes.iter().any(|p| *p != passes[0]));
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn sample_from_datasets_with(
        datasets: Vec<Dataset>,
        weights: Option<Vec<f64>>,
        seed: Option<u64>,
        stop_on_empty_dataset: bool,
        rerandomize_each_iteration: bool,
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
            random: Randomness::new(seed),
            rerandomize: rerandomize_each_iteration,
            stop_on_empty: stop_on_empty_dataset,
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
