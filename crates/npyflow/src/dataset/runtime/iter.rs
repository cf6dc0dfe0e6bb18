//! [`DatasetIter`]: one pass over a dataset, and its state as bytes.

use std::fmt;
use std::sync::Arc;

use super::stats::PipelineStats;
use super::tuner::{Tuner, TuningSummary};
use crate::dataset::context::{StageGuard, TunerGuard};
use crate::dataset::plumbing::{BoxIter, Dataset};
use crate::dataset::state::codec::{from_bytes, to_bytes, Stamp};
use crate::dataset::state::tree::{mismatch, State};
use crate::element::Element;
use crate::error::Result;

/// One pass over a dataset. It opens the pipeline at the first `next()`, so an error in
/// opening (a missing file) is its first item.
pub struct DatasetIter {
    dataset: Dataset,
    inner: Option<BoxIter>,
    done: bool,
    stats: Option<PipelineStats>,
    /// Tunes the pass's `AUTOTUNE` stages (dropped after `inner`, whose engines report to it).
    tuner: Arc<Tuner>,
}

impl DatasetIter {
    /// A pass over `dataset` that has not started; with `stats`, its stages are counted.
    pub(crate) fn new(dataset: Dataset, stats: Option<PipelineStats>) -> DatasetIter {
        let options = dataset.options();
        let tuner = Tuner::new(
            options.autotune,
            options.parallelizes_maps(),
            stats.as_ref().map(PipelineStats::tuning_slot),
        );
        if let Some(s) = &stats {
            s.follow(&tuner);
        }
        DatasetIter {
            dataset,
            inner: None,
            done: false,
            stats,
            tuner,
        }
    }

    fn open_inner(&self, from: Option<State>) -> Result<BoxIter> {
        let _stage = self
            .stats
            .as_ref()
            .map(|stats| StageGuard::enter(stats, None));
        let _tuner = TunerGuard::enter(&self.tuner);
        self.dataset.open_from(from)
    }

    /// What autotuning decided so far in this pass: the CPU and RAM budgets
    /// ([`AutotuneOptions`](crate::dataset::AutotuneOptions)), the threads and buffer of
    /// each `AUTOTUNE` stage, the changes made and why, and the most bytes the parallel
    /// stages held at once. `None` before the pass opened.
    ///
    /// tf.data keeps its tuning to itself (its model shows in TensorBoard's profiler only);
    /// here it is part of the iterator.
    pub fn tuning(&self) -> Option<TuningSummary> {
        self.inner.as_ref().map(|_| self.tuner.summary())
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
        Ok(to_bytes(&s, &self.dataset.stamp()))
    }

    /// Continues from `state`, a [`get_state`](DatasetIter::get_state) of an iterator over
    /// this pipeline: the next elements are those that iterator would have given next.
    /// A state from a pipeline of another structure, or damaged bytes, is refused with
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) and the iterator is left as it was.
    ///
    /// The seeds come from the state, so a pipeline rebuilt with `seed: None` (which draws a
    /// new seed) still continues the saved order. Random nodes' epoch counters move past the
    /// restored epochs, so later passes over the same dataset get new orders.
    pub fn set_state(&mut self, state: &[u8]) -> Result<()> {
        let s = from_bytes(state, &self.dataset.stamp())?;
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
            (false, None) => Err(mismatch("the state has no pass to continue")),
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

/// Why [`DatasetIter::next_by`] returned without an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Nothing was ready by the deadline: call again (nothing is lost).
    Pending,
    /// The pipeline's last stage cannot wait with a deadline (only a `prefetch` or another
    /// parallel stage at the end of the pipeline can): call [`Iterator::next`].
    Unsupported,
}

impl DatasetIter {
    /// [`Iterator::next`], waiting until `deadline` at most for the pipeline's threads, so
    /// that a caller can do something else between waits (the Python package checks for
    /// Ctrl-C). Where the last stage is a `prefetch` (or another parallel stage), a wait
    /// that runs out returns [`Wait::Pending`] and the next call goes on where it was;
    /// other pipelines return [`Wait::Unsupported`] before reading anything. tf.data's
    /// iterators have no such call.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use npyflow::dataset::Wait;
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 3, 1)?.prefetch(2)?;
    /// let mut it = ds.iter();
    /// let mut got = Vec::new();
    /// while got.len() < 3 {
    ///     match it.next_by(Instant::now() + Duration::from_millis(10)) {
    ///         Ok(Some(e)) => got.push(e?.to_string()),
    ///         Ok(None) => break,
    ///         Err(Wait::Pending) => continue,
    ///         Err(Wait::Unsupported) => unreachable!("prefetch waits with a deadline"),
    ///     }
    /// }
    /// assert_eq!(got, ["0", "1", "2"]);
    /// // The end, once the prefetch thread has found it (a loaded machine may take a while).
    /// let end = loop {
    ///     match it.next_by(Instant::now() + Duration::from_millis(10)) {
    ///         Err(Wait::Pending) => continue,
    ///         other => break other,
    ///     }
    /// };
    /// assert!(matches!(end, Ok(None)));
    /// let plain = Dataset::range(0, 3, 1)?;
    /// assert_eq!(plain.iter().next_by(Instant::now()).err(), Some(Wait::Unsupported));
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn next_by(
        &mut self,
        deadline: std::time::Instant,
    ) -> std::result::Result<Option<Result<Element>>, Wait> {
        if self.done {
            return Ok(None);
        }
        if self.inner.is_none() {
            match self.open_inner(None) {
                Ok(it) => self.inner = Some(it),
                Err(e) => {
                    self.done = true;
                    return Ok(Some(Err(e)));
                }
            }
        }
        let Some(inner) = self.inner.as_mut() else {
            return Ok(None);
        };
        let _tuner = TunerGuard::enter(&self.tuner);
        match inner.next_by(deadline) {
            None => Err(Wait::Unsupported),
            Some(Err(_)) => Err(Wait::Pending),
            Some(Ok(item)) => Ok(self.finish(item)),
        }
    }

    /// What `next` returns for `item` from the pipeline.
    fn finish(&mut self, item: Option<Result<Element>>) -> Option<Result<Element>> {
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
        // Engines opened while the pass runs (each epoch of a repeat) report to its tuner.
        let item = {
            let _tuner = TunerGuard::enter(&self.tuner);
            self.inner.as_mut()?.next()
        };
        self.finish(item)
    }
}

impl fmt::Debug for DatasetIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatasetIter({:?})", self.dataset)
    }
}

impl Dataset {
    /// What a saved iterator state records of this pipeline: a hash of its structure (each
    /// node's operation, element spec and cardinality, and any [`Node::resume_note`]) and
    /// those notes, so that a state is only restored into a pipeline built as its own.
    pub(crate) fn stamp(&self) -> Stamp {
        let mut text = String::new();
        let mut notes = Vec::new();
        let mut at = 0u64;
        self.walk(&mut |n| {
            text.push_str(n.name());
            text.push('|');
            text.push_str(&n.spec().to_string());
            text.push('|');
            text.push_str(&n.cardinality().as_i64().to_string());
            if let Some(note) = n.resume_note() {
                text.push('|');
                text.push_str(&note);
                notes.push((at, note));
            }
            text.push(';');
            at += 1;
        });
        let h = crc32fast::hash(text.as_bytes());
        Stamp {
            fingerprint: (u64::from(h) << 32) | (text.len() as u64 & 0xffff_ffff),
            notes,
        }
    }

    /// The seeds and epoch counters of the pipeline's random nodes, in walk order.
    fn save_randomness(&self, mut s: State) -> State {
        self.walk(&mut |n| {
            if let Some(random) = n.random() {
                let (seed, epochs) = random.saved();
                s = std::mem::take(&mut s).num(seed).num(epochs);
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
            return Err(mismatch(format!(
                "it has {} random nodes, and this pipeline {count}",
                saved.len()
            )));
        }
        let mut nodes = 0;
        self.walk(&mut |n| {
            if let Some(random) = n.random() {
                if let Some(&saved) = saved.get(nodes) {
                    random.restore(saved);
                }
                nodes += 1;
            }
        });
        debug_assert_eq!(nodes, count);
        Ok(())
    }
}
