//! Stages that count what they hand up, for [`Dataset::iter_with_stats`](crate::Dataset::iter_with_stats).

use std::sync::Arc;
use std::time::Instant;

use std::sync::atomic::Ordering;

use super::stats::{Counters, PipelineStats};
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

/// Counts one call of a stage that began at `started` and handed up `out`.
fn record(c: &Counters, started: Instant, out: Option<&Result<Element>>) {
    let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
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
        let out = {
            let _stage = StageGuard::enter(&self.stats, Some(self.stage));
            self.inner.next()
        };
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
        let out = {
            let _stage = StageGuard::enter(&self.stats, Some(self.stage));
            f()
        };
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
