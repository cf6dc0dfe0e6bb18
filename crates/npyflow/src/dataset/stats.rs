//! Per-stage statistics of a pass: elements and bytes each stage handed up, and the time
//! spent making them, with the stage whose own time is largest named as the bottleneck.
//!
//! Stages are counted where one node hands elements to another (every iterator and every
//! random-access read between nodes), so a pass without statistics pays nothing. A stage's
//! *busy* time includes the time of the stages below it that it waited on; its *own* time
//! is its busy time less theirs. Time spent on worker threads is summed over the threads,
//! so a stage can be busy longer than the pass took.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::options::Parallelism;
use super::state::State;
use super::{BoxIter, ElementIter, Pass, PassRef};
use crate::buffer::BufferPool;
use crate::element::Element;
use crate::error::Result;

/// The figures of one stage.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageStats {
    /// The node's tf.data name (`Map`, `Batch`, `TensorSlice`, ...).
    pub name: String,
    /// How many stages are above it (0: the last stage of the pipeline).
    pub depth: usize,
    /// Elements (or batches) it handed up.
    pub elements: u64,
    /// Bytes of the tensors it handed up.
    pub bytes: u64,
    /// Time in its calls, including the stages below it.
    pub busy: Duration,
    /// Its busy time less that of the stages below it.
    pub own: Duration,
}

/// One stage's counters, updated without a lock by whichever thread runs it.
#[derive(Default)]
struct Counters {
    elements: AtomicU64,
    bytes: AtomicU64,
    busy_ns: AtomicU64,
}

struct Stage {
    name: &'static str,
    parent: Option<usize>,
    counters: Arc<Counters>,
}

/// The statistics of a pass, filled while it runs; see [`Dataset::iter_with_stats`].
///
/// [`Dataset::iter_with_stats`]: super::Dataset::iter_with_stats
#[derive(Clone, Default)]
pub struct PipelineStats {
    stages: Arc<Mutex<Vec<Stage>>>,
}

thread_local! {
    /// The collector and the stage being opened or run on this thread, if any.
    static CURRENT: RefCell<Option<(PipelineStats, Option<usize>)>> = const { RefCell::new(None) };
}

/// Runs `f` with `(stats, stage)` as this thread's current collector and stage.
pub(crate) fn within<T>(stats: &PipelineStats, stage: Option<usize>, f: impl FnOnce() -> T) -> T {
    let saved = CURRENT.with(|c| c.replace(Some((stats.clone(), stage))));
    let out = f();
    CURRENT.with(|c| *c.borrow_mut() = saved);
    out
}

/// The collector of this thread, and a new stage for a node named `name` under the current
/// one, if statistics are being collected.
pub(crate) fn new_stage(name: &'static str) -> Option<(PipelineStats, usize)> {
    let (stats, parent) = CURRENT.with(|c| c.borrow().clone())?;
    let mut stages = stats.stages.lock().unwrap_or_else(PoisonError::into_inner);
    // A node opened again under the same stage (each epoch of a repeat, each dataset an
    // interleave makes) counts into the stage it had: the list stays as small as the pipeline.
    if let Some(id) = stages
        .iter()
        .position(|s| s.parent == parent && s.name == name)
    {
        drop(stages);
        return Some((stats, id));
    }
    stages.push(Stage {
        name,
        parent,
        counters: Arc::default(),
    });
    let id = stages.len() - 1;
    drop(stages);
    Some((stats, id))
}

fn bytes_of(e: &Element) -> u64 {
    e.tensors().iter().map(|t| t.nbytes() as u64).sum()
}

fn record(c: &Counters, started: Instant, out: Option<&Result<Element>>) {
    let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    c.busy_ns.fetch_add(ns, Ordering::Relaxed);
    if let Some(Ok(e)) = out {
        c.elements.fetch_add(1, Ordering::Relaxed);
        c.bytes.fetch_add(bytes_of(e), Ordering::Relaxed);
    }
}

impl PipelineStats {
    fn counters(&self, stage: usize) -> Arc<Counters> {
        let stages = self.stages.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&stages[stage].counters)
    }

    /// The stages, merged by name and depth, from the last stage down.
    pub fn stages(&self) -> Vec<StageStats> {
        let stages = self.stages.lock().unwrap_or_else(PoisonError::into_inner);
        let depth_of = |mut i: usize| {
            let mut d = 0;
            while let Some(p) = stages[i].parent {
                d += 1;
                i = p;
            }
            d
        };
        let busy = |s: &Stage| Duration::from_nanos(s.counters.busy_ns.load(Ordering::Relaxed));
        let mut child_busy = vec![Duration::ZERO; stages.len()];
        for s in stages.iter() {
            if let Some(p) = s.parent {
                child_busy[p] += busy(s);
            }
        }
        let mut out: Vec<StageStats> = Vec::new();
        for (i, s) in stages.iter().enumerate() {
            let depth = depth_of(i);
            let (b, elements, bytes) = (
                busy(s),
                s.counters.elements.load(Ordering::Relaxed),
                s.counters.bytes.load(Ordering::Relaxed),
            );
            let own = b.saturating_sub(child_busy[i]);
            match out
                .iter_mut()
                .find(|o| o.name == s.name && o.depth == depth)
            {
                Some(o) => {
                    o.elements += elements;
                    o.bytes += bytes;
                    o.busy += b;
                    o.own += own;
                }
                None => out.push(StageStats {
                    name: s.name.to_string(),
                    depth,
                    elements,
                    bytes,
                    busy: b,
                    own,
                }),
            }
        }
        out.sort_by_key(|s| s.depth);
        out
    }

    /// The stage with the most time of its own: where the pipeline spends its time.
    pub fn bottleneck(&self) -> Option<StageStats> {
        self.stages().into_iter().max_by_key(|s| s.own)
    }
}

impl fmt::Display for PipelineStats {
    /// A table of the stages, and a line naming the bottleneck.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<28} {:>12} {:>12} {:>10} {:>10}",
            "stage", "elements", "MB", "busy ms", "own ms"
        )?;
        for s in self.stages() {
            writeln!(
                f,
                "{:<28} {:>12} {:>12.1} {:>10.1} {:>10.1}",
                format!("{}{}", "  ".repeat(s.depth), s.name),
                s.elements,
                s.bytes as f64 / 1e6,
                s.busy.as_secs_f64() * 1e3,
                s.own.as_secs_f64() * 1e3
            )?;
        }
        if let Some(b) = self.bottleneck() {
            write!(
                f,
                "bottleneck: {} ({:.1} ms of its own)",
                b.name,
                b.own.as_secs_f64() * 1e3
            )?;
        }
        Ok(())
    }
}

/// An iterator that counts what it hands up.
pub(crate) struct Counted {
    inner: BoxIter,
    stats: PipelineStats,
    stage: usize,
    counters: Arc<Counters>,
}

impl Counted {
    pub(crate) fn new(inner: BoxIter, stats: PipelineStats, stage: usize) -> Counted {
        let counters = stats.counters(stage);
        Counted {
            inner,
            stats,
            stage,
            counters,
        }
    }
}

impl ElementIter for Counted {
    fn next(&mut self) -> Option<Result<Element>> {
        let started = Instant::now();
        let inner = &mut self.inner;
        let out = within(&self.stats, Some(self.stage), || inner.next());
        record(&self.counters, started, out.as_ref());
        out
    }
    fn save(&self) -> Result<State> {
        self.inner.save()
    }
}

/// A random-access pass that counts what it hands up.
pub(crate) struct CountedPass {
    inner: PassRef,
    stats: PipelineStats,
    stage: usize,
    counters: Arc<Counters>,
}

impl CountedPass {
    pub(crate) fn new(inner: PassRef, stats: PipelineStats, stage: usize) -> CountedPass {
        let counters = stats.counters(stage);
        CountedPass {
            inner,
            stats,
            stage,
            counters,
        }
    }

    fn run(&self, f: impl FnOnce() -> Option<Result<Element>>) -> Option<Result<Element>> {
        let started = Instant::now();
        let out = within(&self.stats, Some(self.stage), f);
        if out.is_some() {
            record(&self.counters, started, out.as_ref());
        }
        out
    }
}

impl Pass for CountedPass {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn get(&self, index: u64) -> Result<Element> {
        self.run(|| Some(self.inner.get(index)))
            .unwrap_or_else(|| unreachable!("get always answers"))
    }
    fn get_range(&self, start: u64, end: u64) -> Option<Result<Element>> {
        self.run(|| self.inner.get_range(start, end))
    }
    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        self.run(|| self.inner.gather(indices, pool))
    }
    fn parallelism(&self) -> Option<Parallelism> {
        self.inner.parallelism()
    }
}
