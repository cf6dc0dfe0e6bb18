//! tf.data's dataset model: a lazy, cheaply cloned description of a pipeline, and iterators
//! that run it.
//!
//! A [`Dataset`] is built from a source ([`Dataset::from_tensor_slices`], [`Dataset::range`],
//! [`Dataset::from_npy`], ...) and transformed by methods named as in tf.data
//! ([`map`](Dataset::map), [`shuffle`](Dataset::shuffle), [`batch`](Dataset::batch), ...).
//! Nothing runs until it is iterated; each [`Dataset::iter`] starts a new pass (an epoch).
//!
//! ```
//! use npyflow::{Dataset, Tensor};
//!
//! // The seed's second example: the rows of a 3x2 array, then batches of two.
//! let x = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6], &[3, 2])?;
//! let ds = Dataset::from_tensor_slices(x)?;
//! let rows: Vec<String> = ds.iter().map(|e| e.map(|e| e.to_string())).collect::<Result<_, _>>()?;
//! assert_eq!(rows, ["[1 2]", "[3 4]", "[5 6]"]);
//! let batches = ds.batch(2, ())?.to_vec()?;
//! assert_eq!(batches[1].to_string(), "[[5 6]]");
//! # Ok::<(), npyflow::Error>(())
//! ```
//!
//! # Semantics shared with tf.data
//! - Arguments are checked when the dataset is built, on tf.data's conditions: a batch size of
//!   0, a shard index outside `[0, num_shards)`, a window size of 0, zipped or concatenated
//!   datasets of different structures are refused with [`Error::InvalidArgument`].
//! - An error while producing element *i* (a user function's error or panic, a bad file) is
//!   yielded at position *i*; the iterator goes on after it, as tf.data's does, and
//!   [`Dataset::ignore_errors`] drops such elements.
//! - [`Dataset::cardinality`] follows tf.data's rules for infinite and unknown sizes.
//!
//! # Differences from tf.data
//! - Functions are Rust closures over [`Element`]s, not traced graphs. The output spec of
//!   [`map`](Dataset::map) is found by calling the function on three placeholder elements
//!   of the input spec (of zeros, ones and sevens), as tf.data traces a Python function; elements that do not fit the
//!   found spec are errors. A function whose output shape depends on the values declares its
//!   spec with [`MapOptions::output_spec`].
//! - Arrays are never copied into the pipeline: slices of an in-memory tensor or of a
//!   memory-mapped `.npy` file share its memory, and there is no 2 GB limit.

mod batch;
mod cache;
mod combine;
mod filter;
mod flat_map;
mod global_shuffle;
mod group;
mod map;
mod options;
mod parallel;
mod prefetch;
mod repeat;
mod rng;
mod scan;
mod shuffle;
mod slice;
mod sources;
mod state;
mod stats;
mod unbatch;
mod unique;
mod window;

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use group::BucketOptions;
pub use options::{
    BatchOptions, InterleaveOptions, MapOptions, Parallelism, ShuffleOptions, AUTOTUNE,
};
pub use rng::Rng;
pub use stats::{PipelineStats, StageStats};

use crate::buffer::BufferPool;
use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use state::{read_draws, save_draws, with_draws, Draw, Seed, State, StateReader};

/// The number of threads [`AUTOTUNE`] gives a parallel step: the cores this process may use.
pub fn cores() -> usize {
    parallel::cores()
}

/// How many elements a dataset has, as `Dataset.cardinality()` tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cardinality {
    /// Exactly this many.
    Finite(u64),
    /// It never ends (`tf.data.INFINITE_CARDINALITY`, -1).
    Infinite,
    /// It cannot be known without iterating (`tf.data.UNKNOWN_CARDINALITY`, -2).
    Unknown,
}

impl Cardinality {
    /// The number tf.data's `cardinality()` returns: the count, -1 for infinite, -2 for
    /// unknown.
    pub fn as_i64(self) -> i64 {
        match self {
            Cardinality::Finite(n) => i64::try_from(n).unwrap_or(i64::MAX),
            Cardinality::Infinite => -1,
            Cardinality::Unknown => -2,
        }
    }

    /// Applies `f` to a finite count; infinite and unknown stay as they are.
    pub(crate) fn map(self, f: impl FnOnce(u64) -> u64) -> Cardinality {
        match self {
            Cardinality::Finite(n) => Cardinality::Finite(f(n)),
            other => other,
        }
    }
}

/// One node of a pipeline: a source or a transformation over its input datasets.
pub(crate) trait Node: Send + Sync + 'static {
    /// The tf.data name of the operation, for errors and `Debug`.
    fn name(&self) -> &'static str;
    /// What every element is.
    fn spec(&self) -> &ElementSpec;
    /// How many elements there are.
    fn cardinality(&self) -> Cardinality;
    /// A pass over the elements: a fresh one, or one that continues from a state an
    /// iterator of this node saved. Random-access nodes need not implement it: their passes
    /// read [`Pass::get`] in order.
    fn open(&self, _from: Option<State>) -> Result<BoxIter> {
        Err(Error::Pipeline(format!(
            "{} has no sequential iterator",
            self.name()
        )))
    }
    /// Whether [`Node::pass`] gives a pass (without making one).
    fn is_random_access(&self) -> bool {
        false
    }
    /// A new random-access pass, for nodes that are random-access: its length and any
    /// element by index, without reading the ones before it. Per-pass randomness (a global
    /// shuffle's permutation) is drawn here.
    fn pass(&self) -> Option<PassRef> {
        None
    }
    /// The datasets this node reads (none for a source).
    fn inputs(&self) -> Vec<&Dataset> {
        Vec::new()
    }
    /// A random node's seed and epoch counter, which an iterator's state records.
    fn random(&self) -> Option<(&Seed, &AtomicU64)> {
        None
    }
    /// The elements of a dataset held in memory (a window's), with their spec.
    fn elements(&self) -> Option<(&[Element], &ElementSpec)> {
        None
    }
    /// The node as a chain of built-in ops, which batching can fuse.
    fn op_map(&self) -> Option<&map::OpMap> {
        None
    }
}

/// One pass over a random-access node: its elements by index, fixed for the pass.
pub(crate) trait Pass: Send + Sync {
    /// The number of elements.
    fn len(&self) -> u64;
    /// Element `index` (`index < len()`).
    fn get(&self, index: u64) -> Result<Element>;
    /// Elements `start..end` as one batch, where the pass can make it more cheaply than by
    /// stacking them (a slice of a contiguous source). `None`: stack them.
    fn get_range(&self, _start: u64, _end: u64) -> Option<Result<Element>> {
        None
    }
    /// Elements `indices` as one batch, copied straight into buffers from `pool` where the
    /// pass can do it without making each element first (rows of arrays). `None`: stack them.
    fn gather(&self, _indices: &[u64], _pool: &BufferPool) -> Option<Result<Element>> {
        None
    }
    /// The threads (and whether order is kept) that a node of this pass asked for: a pass
    /// with parallelism is read by that many workers, element *k* by one of them.
    fn parallelism(&self) -> Option<Parallelism> {
        None
    }
}

pub(crate) type PassRef = Arc<dyn Pass>;

/// How many rows ahead [`gather_rows`] touches.
const PREFETCH_AHEAD: usize = 16;

/// The rows `indices` of `t` stacked into a buffer from `pool`, copied in the order of
/// their place in `t` (so reads sweep forward through memory, as a sorted gather does) and
/// written to their places in the batch.
pub(crate) fn gather_rows(t: &Tensor, indices: &[u64], pool: &BufferPool) -> Result<Tensor> {
    let rows = t.rows().unwrap_or(0);
    let row = t.nbytes().checked_div(rows).unwrap_or(0);
    let mut shape = t.shape().to_vec();
    shape[0] = indices.len();
    let mut out = pool.take(row * indices.len())?;
    let dst = out.as_mut_slice();
    let src = t.as_bytes();
    let mut order: Vec<(u64, usize)> = indices.iter().copied().zip(0..).collect();
    order.sort_unstable();
    if let Some(&(last, _)) = order.last() {
        if last >= rows as u64 {
            return Err(Error::OutOfRange {
                index: usize::try_from(last).unwrap_or(usize::MAX),
                len: rows,
            });
        }
    }
    for (k, &(i, at)) in order.iter().enumerate() {
        // Touch a row a few ahead, so its first cache line and its page's translation are on
        // their way while this row is copied (a load the copy does not wait for).
        if let Some(&(ahead, _)) = order.get(k + PREFETCH_AHEAD) {
            std::hint::black_box(src.get(ahead as usize * row).copied());
        }
        let i = i as usize;
        dst[at * row..(at + 1) * row].copy_from_slice(&src[i * row..(i + 1) * row]);
    }
    // A file truncated under its map: what was copied may be zeros, so it is an error.
    t.check_intact()?;
    Tensor::new(t.dtype(), &shape, out.freeze())
}

/// A pass over a node's elements.
pub(crate) trait ElementIter: Send {
    /// The next element, an error at this position, or `None` at the end.
    fn next(&mut self) -> Option<Result<Element>>;
    /// What the pass has done, for [`Node::open`] to continue from: positions, seeds, and
    /// the elements it holds that its input will not give again.
    fn save(&self) -> Result<State>;
}

pub(crate) type BoxIter = Box<dyn ElementIter>;

/// A pass that has ended, or never had elements.
pub(crate) struct Ended;

impl ElementIter for Ended {
    fn next(&mut self) -> Option<Result<Element>> {
        None
    }
    fn save(&self) -> Result<State> {
        Ok(State::new("Ended"))
    }
}

/// Reads a node's saved state with `f`, checking its tag and that all of it was used; `None`
/// (a fresh pass) gives `None`.
pub(crate) fn restore<T>(
    from: Option<State>,
    tag: &str,
    f: impl FnOnce(&mut StateReader) -> Result<T>,
) -> Result<Option<T>> {
    let Some(s) = from else { return Ok(None) };
    let mut r = s.reader(tag)?;
    let out = f(&mut r)?;
    r.finish()?;
    Ok(Some(out))
}

/// A pass over a random-access node, read in order by this thread or by workers.
///
/// Its state is positions only: every index below `low` has been handed out, and those in
/// `above` too; with the draws that made the pass, that is all a restore needs.
struct PassIter {
    pass: PassRef,
    draws: Vec<Draw>,
    low: u64,
    above: BTreeSet<u64>,
    engine: Option<parallel::ParallelIter<u64, (u64, Result<Element>)>>,
}

/// Indices `from..len`, without those in `skip`: the jobs of a restored parallel pass.
struct PassJobs {
    next: u64,
    len: u64,
    skip: BTreeSet<u64>,
}

impl parallel::Jobs<u64> for PassJobs {
    fn next(&mut self) -> Option<u64> {
        while self.skip.remove(&self.next) {
            self.next += 1;
        }
        let k = self.next;
        (k < self.len).then(|| {
            self.next += 1;
            k
        })
    }
    fn save(&self) -> Result<State> {
        // The pass iterator saves positions itself (see PassIter::save).
        Ok(State::new("PassJobs"))
    }
}

impl PassIter {
    fn handed_out(&mut self, k: u64) {
        if k != self.low {
            self.above.insert(k);
            return;
        }
        // In order (always, when one thread reads or order is kept): no set to touch.
        self.low += 1;
        while !self.above.is_empty() && self.above.remove(&self.low) {
            self.low += 1;
        }
    }
}

impl ElementIter for PassIter {
    fn next(&mut self) -> Option<Result<Element>> {
        if let Some(engine) = self.engine.as_mut() {
            let (k, item) = engine.next_output()?;
            self.handed_out(k);
            return Some(item);
        }
        let mut k = self.low;
        while self.above.contains(&k) {
            k += 1;
        }
        if k >= self.pass.len() {
            return None;
        }
        self.handed_out(k);
        Some(self.pass.get(k))
    }
    fn save(&self) -> Result<State> {
        let mut s = save_draws(State::new("Pass"), &self.draws).num(self.low);
        s = s.num(self.above.len() as u64);
        for &k in &self.above {
            s = s.num(k);
        }
        Ok(s)
    }
}

/// A dataset: a lazy description of a pipeline of elements, like `tf.data.Dataset`.
///
/// Cloning is O(1) and shares the description; every [`iter`](Dataset::iter) is a new,
/// independent pass. The methods are grouped by the tf.data method they match; each says
/// where it differs.
#[derive(Clone)]
pub struct Dataset {
    node: Arc<dyn Node>,
}

impl Dataset {
    pub(crate) fn from_node(node: impl Node) -> Dataset {
        Dataset {
            node: Arc::new(node),
        }
    }

    /// What every element is: structure, dtypes and (partial) shapes, like tf.data's
    /// `element_spec`.
    pub fn element_spec(&self) -> &ElementSpec {
        self.node.spec()
    }

    /// How many elements the dataset has, with tf.data's rules: infinite for an endless
    /// `repeat()` or `counter`, unknown where only iterating would tell (after `filter`,
    /// `flat_map`, a generator, ...).
    ///
    /// ```
    /// use npyflow::dataset::{Cardinality, Dataset};
    /// let ds = Dataset::range(0, 42, 1)?;
    /// assert_eq!(ds.cardinality(), Cardinality::Finite(42));
    /// assert_eq!(ds.repeat(None).cardinality(), Cardinality::Infinite);
    /// assert_eq!(ds.filter(|_| Ok(true)).cardinality(), Cardinality::Unknown);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn cardinality(&self) -> Cardinality {
        self.node.cardinality()
    }

    /// The number of elements, where it is known: Python's `len(dataset)`. An infinite or
    /// unknown cardinality is an error, with tf.data's messages.
    pub fn len(&self) -> Result<u64> {
        match self.cardinality() {
            Cardinality::Finite(n) => Ok(n),
            Cardinality::Infinite => Err(Error::InvalidArgument("The dataset is infinite.".into())),
            Cardinality::Unknown => Err(Error::InvalidArgument(
                "The dataset length is unknown.".into(),
            )),
        }
    }

    /// Whether the dataset is known to have no elements.
    pub fn is_empty(&self) -> bool {
        self.cardinality() == Cardinality::Finite(0)
    }

    /// Whether elements can be read by index without the ones before them (tensor and
    /// `.npy` sources, and maps, batches with `drop_remainder`, takes, skips, shards and
    /// enumerations of such). The runtime's global shuffle and tiny checkpoints rely on it.
    pub fn is_random_access(&self) -> bool {
        self.node.is_random_access()
    }

    /// Element `index` of a random-access dataset (see
    /// [`is_random_access`](Dataset::is_random_access)), read from a new pass: under a
    /// reshuffling [`global_shuffle`](Dataset::global_shuffle), each call sees another epoch.
    pub fn get(&self, index: u64) -> Result<Element> {
        let ra = self.node.pass().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "a {} dataset cannot be read by index; iterate it instead",
                self.node.name()
            ))
        })?;
        if index >= ra.len() {
            return Err(Error::OutOfRange {
                index: usize::try_from(index).unwrap_or(usize::MAX),
                len: usize::try_from(ra.len()).unwrap_or(usize::MAX),
            });
        }
        let e = ra.get(index)?;
        // As the iterator does: a window onto a truncated file is an error, not zeros.
        e.tensors().iter().try_for_each(|t| t.check_intact())?;
        Ok(e)
    }

    /// A new pass over the elements. Each item is an element or the error that took its
    /// place; iteration may go on after an error.
    pub fn iter(&self) -> DatasetIter {
        DatasetIter {
            dataset: self.clone(),
            inner: None,
            done: false,
            stats: None,
        }
    }

    /// Every element of one pass, stopping at the first error. For tests and small data.
    pub fn to_vec(&self) -> Result<Vec<Element>> {
        self.iter().collect()
    }

    /// Opens a fresh pass, choosing the index pass for random-access nodes.
    pub(crate) fn open(&self) -> Result<BoxIter> {
        self.open_from(None)
    }

    /// Opens a pass: a fresh one, or one continuing from a state saved by an iterator of this
    /// dataset.
    pub(crate) fn open_from(&self, from: Option<State>) -> Result<BoxIter> {
        let Some((stats, stage)) = stats::new_stage(self.node.name()) else {
            return self.open_node(from, None);
        };
        let opened = stats::within(&stats, Some(stage), || {
            self.open_node(from, Some((stats.clone(), stage)))
        })?;
        if self.node.is_random_access() {
            // The pass itself is counted (see open_node).
            return Ok(opened);
        }
        Ok(Box::new(stats::Counted::new(opened, stats, stage)))
    }

    fn open_node(
        &self,
        from: Option<State>,
        counted: Option<(PipelineStats, usize)>,
    ) -> Result<BoxIter> {
        if !self.node.is_random_access() {
            return self.node.open(from);
        }
        let (replay, low, above) = restore(from, "Pass", |r| {
            let draws = read_draws(r)?;
            let low = r.num()?;
            let n = r.usize()?;
            let above = (0..n).map(|_| r.num()).collect::<Result<BTreeSet<u64>>>()?;
            Ok((Some(draws), low, above))
        })?
        .unwrap_or_default();
        let (pass, draws) = with_draws(replay, || self.node.pass())?;
        let Some(mut pass) = pass else {
            return self.node.open(None);
        };
        if let Some((stats, stage)) = counted {
            pass = Arc::new(stats::CountedPass::new(pass, stats, stage));
        }
        let engine = match pass.parallelism() {
            Some(p) => {
                // Element k of the pass by any worker: no lock but a counter.
                let jobs = Box::new(PassJobs {
                    next: low,
                    len: pass.len(),
                    skip: above.clone(),
                });
                let reader = Arc::clone(&pass);
                let work = Arc::new(move |k: u64| {
                    let item = catch_unwind(AssertUnwindSafe(|| reader.get(k)))
                        .unwrap_or_else(|_| Err(Error::Function("a worker panicked".into())));
                    (k, item)
                });
                Some(parallel::ParallelIter::start(
                    self.node.name(),
                    jobs,
                    work,
                    parallel::Lanes::new(p.num_threads(), p.is_deterministic()),
                    Vec::new(),
                    |what| (u64::MAX, parallel::panic_error(what)),
                )?)
            }
            _ => None,
        };
        Ok(Box::new(PassIter {
            pass,
            draws,
            low,
            above,
            engine,
        }))
    }

    /// A new random-access pass, when the dataset is random-access.
    pub(crate) fn pass(&self) -> Option<PassRef> {
        let Some((stats, stage)) = stats::new_stage(self.node.name()) else {
            return self.node.pass();
        };
        let inner = stats::within(&stats, Some(stage), || self.node.pass())?;
        Some(Arc::new(stats::CountedPass::new(inner, stats, stage)))
    }

    /// A new pass whose stages count what they do: the iterator, and the statistics it
    /// fills (read them during or after the pass).
    ///
    /// ```
    /// use npyflow::{Dataset, Element};
    /// let ds = Dataset::range(0, 100, 1)?.map(|x: Element| Ok(x), ())?.batch(10, ())?;
    /// let (it, stats) = ds.iter_with_stats();
    /// assert_eq!(it.count(), 10);
    /// let stages = stats.stages();
    /// assert_eq!(stages[0].name, "Batch");
    /// assert_eq!(stages[0].elements, 10);
    /// assert!(stats.to_string().contains("bottleneck"));
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn iter_with_stats(&self) -> (DatasetIter, PipelineStats) {
        let stats = PipelineStats::default();
        let it = DatasetIter {
            dataset: self.clone(),
            inner: None,
            done: false,
            stats: Some(stats.clone()),
        };
        (it, stats)
    }

    /// Calls `f` on every node of the pipeline, inputs before the nodes that read them, each
    /// once (a dataset used twice is one node). Datasets that functions make while the
    /// pipeline runs (an interleave's) are not part of it.
    fn walk(&self, f: &mut dyn FnMut(&dyn Node)) {
        fn visit(d: &Dataset, seen: &mut HashSet<usize>, f: &mut dyn FnMut(&dyn Node)) {
            if !seen.insert(Arc::as_ptr(&d.node) as *const () as usize) {
                return;
            }
            for input in d.node.inputs() {
                visit(input, seen, f);
            }
            f(d.node());
        }
        visit(self, &mut HashSet::new(), f);
    }

    /// A hash of the pipeline's structure (each node's operation, element spec and
    /// cardinality), stamped
    /// on saved iterator states so that a state is only restored into its own pipeline.
    fn fingerprint(&self) -> u64 {
        let mut text = String::new();
        self.walk(&mut |n| {
            text.push_str(n.name());
            text.push('|');
            text.push_str(&n.spec().to_string());
            text.push('|');
            text.push_str(&n.cardinality().as_i64().to_string());
            text.push(';');
        });
        let h = crc32fast::hash(text.as_bytes());
        (u64::from(h) << 32) | (text.len() as u64 & 0xffff_ffff)
    }

    /// The seeds and epoch counters of the pipeline's random nodes, in walk order.
    fn save_randomness(&self, mut s: State) -> State {
        self.walk(&mut |n| {
            if let Some((seed, epoch)) = n.random() {
                s = std::mem::take(&mut s)
                    .num(seed.get())
                    .num(epoch.load(Ordering::Relaxed));
            }
        });
        s
    }

    /// Sets the random nodes' seeds and counters from a state: the passes this pipeline opens
    /// later draw what the saved one's would have.
    fn restore_randomness(&self, saved: &[(u64, u64)]) -> Result<()> {
        let mut count = 0;
        self.walk(&mut |n| count += usize::from(n.random().is_some()));
        if count != saved.len() {
            return Err(state::mismatch(format!(
                "it has {} random nodes, and this pipeline {count}",
                saved.len()
            )));
        }
        let mut nodes = 0;
        self.walk(&mut |n| {
            if let Some((seed, epoch)) = n.random() {
                if let Some(&(s, e)) = saved.get(nodes) {
                    seed.adopt(s);
                    epoch.store(e, Ordering::Relaxed);
                }
                nodes += 1;
            }
        });
        debug_assert_eq!(nodes, count);
        Ok(())
    }

    /// The node behind the dataset.
    pub(crate) fn node(&self) -> &dyn Node {
        &*self.node
    }

    /// tf.data's `apply`: `f(self)`, to keep a chain of calls reading left to right.
    pub fn apply<T>(&self, f: impl FnOnce(&Dataset) -> T) -> T {
        f(self)
    }

    /// tf.data's `reduce`: folds every element into a state, starting from `initial`.
    /// The first error stops the fold and is returned.
    ///
    /// ```
    /// use npyflow::{Dataset, Element, Tensor};
    /// let sum = Dataset::range(0, 5, 1)?.reduce(Tensor::scalar(0i64).into(), |acc, x| {
    ///     let s = acc.into_tensor()?.to_i64_scalar("acc")? + x.into_tensor()?.to_i64_scalar("x")?;
    ///     Ok(Tensor::scalar(s).into())
    /// })?;
    /// assert_eq!(sum.to_string(), "10");
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn reduce(
        &self,
        initial: Element,
        mut f: impl FnMut(Element, Element) -> Result<Element>,
    ) -> Result<Element> {
        let mut state = initial;
        for (i, e) in self.iter().enumerate() {
            let e = e?;
            state = call_user("reduce", i as u64, || f(state, e))?;
        }
        Ok(state)
    }
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<{}Dataset element_spec={}>",
            self.node.name(),
            self.element_spec()
        )
    }
}

impl PartialEq for Dataset {
    /// The same dataset object (not the same elements).
    fn eq(&self, other: &Dataset) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }
}

impl IntoIterator for &Dataset {
    type Item = Result<Element>;
    type IntoIter = DatasetIter;
    fn into_iter(self) -> DatasetIter {
        self.iter()
    }
}

/// One pass over a dataset. It opens the pipeline at the first `next()`, so an error in
/// opening (a missing file) is its first item.
pub struct DatasetIter {
    dataset: Dataset,
    inner: Option<BoxIter>,
    done: bool,
    stats: Option<PipelineStats>,
}

impl DatasetIter {
    fn open_inner(&self, from: Option<State>) -> Result<BoxIter> {
        match &self.stats {
            Some(stats) => stats::within(stats, None, || self.dataset.open_from(from)),
            None => self.dataset.open_from(from),
        }
    }

    /// The iterator's state: a compact byte string from which
    /// [`set_state`](DatasetIter::set_state), on a new iterator of the same pipeline (in this
    /// process or another, built by the same code), continues exactly where this one is.
    ///
    /// What it holds, per transformation:
    /// - random-access stages (sources, `map`, `batch`, `global_shuffle`, `shard`, `take`,
    ///   `skip`, `zip`, `repeat(count)`, ... read by index, in parallel or not): the next
    ///   position and the seeds and epochs of the pass; its size does not grow with the data.
    /// - `shuffle`: its buffer and generator; results computed ahead by parallel `map`,
    ///   `batch` or `interleave` over a sequential input, and `prefetch`'s buffer: those
    ///   results (workers pause while the state is taken).
    /// - `interleave`: each open dataset's input element and state.
    /// - `cache` in its first pass: the position; restoring it reads the input again up to
    ///   there to fill the cache. `unique`: the elements seen. `from_generator`: the count of
    ///   elements given; restoring calls the generator again and skips them.
    ///
    /// A pass that has not started is started (so its seeds and epochs are fixed). Elements
    /// holding datasets (a `window`'s) cannot be saved while held.
    ///
    /// tf.data has no byte-string state for iterators; its checkpoints (`tf.train.Checkpoint`)
    /// save every buffer, including those a position would describe.
    ///
    /// ```
    /// use npyflow::dataset::ShuffleOptions;
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 10, 1)?.shuffle(4, ShuffleOptions::new().seed(7))?.batch(3, ())?;
    /// let mut it = ds.iter();
    /// let first = it.next().unwrap()?;
    /// let state = it.get_state()?;
    /// let rest: Vec<String> = it.map(|e| e.unwrap().to_string()).collect();
    ///
    /// let mut resumed = ds.iter();
    /// resumed.set_state(&state)?;
    /// let again: Vec<String> = resumed.map(|e| e.unwrap().to_string()).collect();
    /// assert_eq!(rest, again);
    /// # let _ = first;
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn get_state(&mut self) -> Result<Vec<u8>> {
        if !self.done && self.inner.is_none() {
            match self.open_inner(None) {
                Ok(it) => self.inner = Some(it),
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
        let inner = match (&self.inner, self.done) {
            (Some(it), false) => Some(it.save()?),
            _ => None,
        };
        let mut random = 0u64;
        self.dataset
            .walk(&mut |n| random += u64::from(n.random().is_some()));
        let s = State::new("Iterator").flag(self.done).num(random);
        let s = self.dataset.save_randomness(s).kid_opt(inner);
        Ok(state::to_bytes(&s, self.dataset.fingerprint()))
    }

    /// Continues from `state`, a [`get_state`](DatasetIter::get_state) of an iterator over
    /// this pipeline: the next elements are those that iterator would have given next.
    /// A state from a pipeline of another structure, or damaged bytes, is refused with
    /// [`Error::InvalidArgument`] and the iterator is left as it was.
    ///
    /// The seeds come from the state, so a pipeline rebuilt with `seed: None` (which draws a
    /// new seed) still continues the saved order. Random nodes' epoch counters move past the
    /// restored epochs, so later passes over the same dataset get new orders.
    pub fn set_state(&mut self, state: &[u8]) -> Result<()> {
        let s = state::from_bytes(state, self.dataset.fingerprint())?;
        let mut r = s.reader("Iterator")?;
        let done = r.flag()?;
        let n = r.usize()?;
        let mut random = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            random.push((r.num()?, r.num()?));
        }
        let inner = r.kid_opt()?;
        r.finish()?;
        let previous = {
            let mut s = State::new("Randomness");
            s = self.dataset.save_randomness(s);
            s
        };
        self.dataset.restore_randomness(&random)?;
        let opened = match (done, inner) {
            (true, _) => Ok(None),
            (false, Some(inner)) => self.open_inner(Some(inner)).map(Some),
            (false, None) => Err(state::mismatch("the state has no pass to continue")),
        };
        let opened = match opened {
            Ok(o) => o,
            Err(e) => {
                // Refused: the pipeline's seeds and counters go back to what they were.
                let mut r = previous.reader("Randomness")?;
                let mut back = Vec::new();
                while let (Ok(a), Ok(b)) = (r.num(), r.num()) {
                    back.push((a, b));
                }
                self.dataset.restore_randomness(&back)?;
                return Err(e);
            }
        };
        self.inner = opened;
        self.done = done;
        Ok(())
    }
}

impl Iterator for DatasetIter {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        if self.done {
            return None;
        }
        if self.inner.is_none() {
            match self.open_inner(None) {
                Ok(it) => self.inner = Some(it),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        let item = self.inner.as_mut()?.next();
        match item {
            None => self.done = true,
            // An element that is a window onto a file truncated under its map would be read
            // as zeros: it is an error instead (one byte read and one atomic load a tensor).
            Some(Ok(e)) => {
                return Some(
                    e.tensors()
                        .iter()
                        .try_for_each(|t| t.check_intact())
                        .map(|()| e),
                )
            }
            Some(Err(_)) => {}
        }
        item
    }
}

impl fmt::Debug for DatasetIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatasetIter({:?})", self.dataset)
    }
}

/// Runs a user function for element `index` of operation `op`: a returned error gets the
/// place as context, and a panic becomes an error instead of unwinding through the pipeline.
pub(crate) fn call_user<T>(op: &str, index: u64, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.context(format!("{op}: element {index}"))),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            Err(Error::Function(format!("the function panicked: {what}"))
                .context(format!("{op}: element {index}")))
        }
    }
}

/// An argument check: `Err(InvalidArgument)` with `message` unless `ok`.
pub(crate) fn require(ok: bool, message: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(message()))
    }
}
