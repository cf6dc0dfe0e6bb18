//! Stages that count what they hand up, for [`Dataset::iter_with_stats`](crate::Dataset::iter_with_stats).

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::Ordering;

use super::stats::{Counters, PipelineStats};
use super::trace::Trace;
use crate::buffer::BufferPool;
use crate::dataset::context::{current_stage, StageGuard};
use crate::dataset::options::Parallelism;
use crate::dataset::plumbing::{BoxIter, ElementIter, Pass, PassRef};
use crate::dataset::state::tree::State;
use crate::element::Element;
use crate::error::Result;

fn bytes_of(e: &Element) -> u64 {
    e.tensors().iter().map(|t| t.nbytes() as u64).sum()
}

/// What a counted stage updates: its counters and, when the pass is traced, the trace.
struct Sink {
    stage: usize,
    counters: Arc<Counters>,
    trace: Option<Arc<Trace>>,
}

impl Sink {
    fn new(stats: &PipelineStats, stage: usize) -> Sink {
        Sink {
            stage,
            counters: stats.counters(stage),
            trace: stats.trace().cloned(),
        }
    }

    /// Counts one call of the stage that began at `started` and handed up `out`.
    fn record(&self, started: Instant, out: Option<&Result<Element>>) {
        let ended = Instant::now();
        if let Some(t) = &self.trace {
            t.span(self.stage, started, ended);
        }
        record(
            &self.counters,
            ended.saturating_duration_since(started),
            out,
        );
    }
}

/// Counts one call of a stage that took `took` and handed up `out`.
fn record(c: &Counters, took: Duration, out: Option<&Result<Element>>) {
    let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
    c.busy_ns.fetch_add(ns, Ordering::Relaxed);
    if let Some(Ok(e)) = out {
        c.elements.fetch_add(1, Ordering::Relaxed);
        c.bytes.fetch_add(bytes_of(e), Ordering::Relaxed);
    }
}

/// The collector of this thread, and the stage of a node named `name` under the current
/// one, if statistics are being collected.
pub(crate) fn new_stage(name: &'static str) -> Option<(PipelineStats, usize)> {
    let (stats, parent) = current_stage()?;
    let id = stats.stage_for(name, parent);
    Some((stats, id))
}

/// A stage's collector and counters: what [`Counted`] and [`CountedPass`] share.
struct Stage {
    stats: PipelineStats,
    sink: Sink,
}

impl Stage {
    fn new(stats: PipelineStats, stage: usize) -> Stage {
        let sink = Sink::new(&stats, stage);
        Stage { stats, sink }
    }

    /// Runs `f` as this stage (the stages it calls count under it) and records the call;
    /// an answer of `None` is recorded only when `none_counts` (an iterator's end, not a
    /// pass's "cannot do that").
    fn run(
        &self,
        none_counts: bool,
        f: impl FnOnce() -> Option<Result<Element>>,
    ) -> Option<Result<Element>> {
        let started = Instant::now();
        let out = {
            let _stage = StageGuard::enter(&self.stats, Some(self.sink.stage));
            f()
        };
        if none_counts || out.is_some() {
            self.sink.record(started, out.as_ref());
        }
        out
    }
}

/// An iterator that counts what it hands up.
pub(crate) struct Counted {
    inner: BoxIter,
    stage: Stage,
}

impl Counted {
    pub(crate) fn new(inner: BoxIter, stats: PipelineStats, stage: usize) -> Counted {
        Counted {
            inner,
            stage: Stage::new(stats, stage),
        }
    }
}

impl ElementIter for Counted {
    fn next(&mut self) -> Option<Result<Element>> {
        let inner = &mut self.inner;
        self.stage.run(true, || inner.next())
    }
    fn save(&self) -> Result<State> {
        self.inner.save()
    }
}

/// A random-access pass that counts what it hands up.
pub(crate) struct CountedPass {
    inner: PassRef,
    stage: Stage,
}

impl CountedPass {
    pub(crate) fn new(inner: PassRef, stats: PipelineStats, stage: usize) -> CountedPass {
        CountedPass {
            inner,
            stage: Stage::new(stats, stage),
        }
    }

    fn run(&self, f: impl FnOnce() -> Option<Result<Element>>) -> Option<Result<Element>> {
        self.stage.run(false, f)
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
