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
//! - tf.data's keyword arguments are options values: [`map`](Dataset::map),
//!   [`batch`](Dataset::batch) and [`interleave`](Dataset::interleave) take a
//!   [`MapOptions`], [`BatchOptions`] or [`InterleaveOptions`] (`()` for the defaults, or a
//!   [`Parallelism`] alone); [`shuffle`](Dataset::shuffle) and
//!   [`global_shuffle`](Dataset::global_shuffle) take [`ShuffleOptions`]. Each has a
//!   `from_tf` that reads tf.data's keywords with tf.data's checks. `map` takes closures and
//!   built-in [`ops`](crate::ops) alike, so a closure writes its parameter's type
//!   (`|x: Element| ...`).
//!
//! How this module is built (nodes, passes, the runtime, state, fusion, and where a new
//! transformation goes) is described in `src/dataset/DESIGN.md`.

mod batch;
mod block_shuffle;
mod cache;
mod cache_hint;
mod combine;
pub(crate) mod context;
mod distributed;
mod elements;
mod filter;
mod flat_map;
mod fusion;
mod global_shuffle;
mod group;
mod map;
mod options;
mod parallelism;
mod patches;
pub(crate) mod plumbing;
mod prefetch;
mod remote;
mod repeat;
mod runtime;
mod saved;
mod scan;
mod shuffle;
mod slice;
mod sources;
mod state;
mod unbatch;
mod unique;
mod window;
mod with_options;

use std::fmt;

pub use group::BucketOptions;
pub use map::MapFunction;
pub use options::{
    count_from_tf, positive_from_tf, BatchOptions, InterleaveOptions, MapOptions, Parallelism,
    ShuffleOptions, AUTOTUNE,
};
pub use patches::PatchOptions;
pub use plumbing::{Cardinality, Dataset};
pub use runtime::iter::{DatasetIter, Wait};
pub use runtime::report::Report;
pub use runtime::stats::{PipelineStats, StageStats};
pub use runtime::trace::{TraceEvents, DEFAULT_TRACE_EVENTS};
pub use runtime::tuner::{AutotuneOptions, TunedStage, TuningDecision, TuningSummary};
pub use saved::{LoadOptions, SaveOptions, SaveProgress, SaveSummary, ShardFunc};
pub use with_options::Options;

use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result};
pub use crate::rng::Rng;
use plumbing::call_user;

/// The number of threads [`AUTOTUNE`] gives a parallel step: the cores this process may use.
pub fn cores() -> usize {
    parallelism::cores()
}

impl Dataset {
    /// What every element is: structure, dtypes and (partial) shapes, like tf.data's
    /// `element_spec`.
    pub fn element_spec(&self) -> &ElementSpec {
        self.node().spec()
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
        self.node().cardinality()
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
        self.node().is_random_access()
    }

    /// Element `index` of a random-access dataset (see
    /// [`is_random_access`](Dataset::is_random_access)), read from a new pass: under a
    /// reshuffling [`global_shuffle`](Dataset::global_shuffle), each call sees another epoch.
    pub fn get(&self, index: u64) -> Result<Element> {
        let ra = self.node().pass().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "a {} dataset cannot be read by index; iterate it instead",
                self.node().name()
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
        DatasetIter::new(self.clone(), None)
    }

    /// Every element of one pass, stopping at the first error. For tests and small data.
    pub fn to_vec(&self) -> Result<Vec<Element>> {
        self.iter().collect()
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
        self.iter_counted(PipelineStats::default())
    }

    /// A new pass counted into `stats`, and `stats`.
    fn iter_counted(&self, stats: PipelineStats) -> (DatasetIter, PipelineStats) {
        (DatasetIter::new(self.clone(), Some(stats.clone())), stats)
    }

    /// A new pass whose stages are counted (as by [`iter_with_stats`](Dataset::iter_with_stats))
    /// and traced: every call of a stage that hands up an element or batch is a span on the
    /// thread that made it, and parallel engines (parallel `map`, `batch`, `interleave`,
    /// `prefetch`) sample their buffer's fill and running workers. The trace keeps at most
    /// `max_events` events ([`DEFAULT_TRACE_EVENTS`] is a good cap: 32 MiB at most) and
    /// counts those past it as dropped. Write it with [`PipelineStats::write_trace`] (the
    /// Chrome trace-event format, which Perfetto and `chrome://tracing` open) and read the
    /// bottleneck with [`PipelineStats::report`].
    ///
    /// A pass without a trace pays nothing for it. Unlike TensorBoard's input-pipeline
    /// analyzer, which samples a running TensorFlow job through the profiler and reports
    /// per-op device and host times, this records every call of every stage of one pass,
    /// on each thread, with no profiler service: the file is the whole record.
    ///
    /// ```
    /// use npyflow::dataset::DEFAULT_TRACE_EVENTS;
    /// use npyflow::{Dataset, Element};
    /// let ds = Dataset::range(0, 100, 1)?.map(|x: Element| Ok(x), ())?.batch(10, ())?;
    /// let (it, stats) = ds.iter_with_trace(DEFAULT_TRACE_EVENTS);
    /// assert_eq!(it.count(), 10);
    /// let mut json = Vec::new();
    /// stats.write_trace(&mut json)?;
    /// let json = String::from_utf8(json).unwrap();
    /// assert!(json.starts_with("{\"traceEvents\":["));
    /// assert!(json.contains("\"name\":\"Batch\",\"cat\":\"stage\",\"ph\":\"X\""));
    /// assert_eq!(stats.trace_events().dropped, 0, "nothing dropped");
    /// println!("{}", stats.report());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter_with_trace(&self, max_events: usize) -> (DatasetIter, PipelineStats) {
        self.iter_counted(PipelineStats::traced(max_events))
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
            self.node().name(),
            self.element_spec()
        )
    }
}

impl PartialEq for Dataset {
    /// The same dataset object (not the same elements).
    fn eq(&self, other: &Dataset) -> bool {
        self.same_node(other)
    }
}

impl IntoIterator for &Dataset {
    type Item = Result<Element>;
    type IntoIter = DatasetIter;
    fn into_iter(self) -> DatasetIter {
        self.iter()
    }
}
