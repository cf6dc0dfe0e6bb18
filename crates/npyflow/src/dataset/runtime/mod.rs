//! The pass runtime: opening a dataset's pass (fresh or from a saved state), reading a
//! random-access pass in order by this thread or by workers, and counting stages for
//! statistics.

mod counted;
#[allow(unsafe_code)] // One libc call: the calling thread's CPU clock.
mod cpu_clock;
pub(crate) mod iter;
pub(crate) mod parallel;
mod probe;
pub(crate) mod report;
pub(crate) mod stats;
pub(crate) mod trace;
pub(crate) mod tuner;

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::context::StageGuard;
use super::plumbing::{restore, BoxIter, Dataset, ElementIter, PassRef, Pending};
use super::state::random::{with_draws, Draw};
use super::state::tree::{State, StateReader};
use crate::element::Element;
use crate::error::{Error, Result};
use counted::{new_stage, Counted, CountedPass};
use stats::PipelineStats;

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
    fn next_by(
        &mut self,
        deadline: std::time::Instant,
    ) -> Option<std::result::Result<Option<Result<Element>>, Pending>> {
        // Only a pass read by workers waits for threads.
        let engine = self.engine.as_mut()?;
        Some(match engine.next_output_by(Some(deadline)) {
            Ok(Some((k, item))) => {
                self.handed_out(k);
                Ok(Some(item))
            }
            Ok(None) => Ok(None),
            Err(p) => Err(p),
        })
    }
    fn remaining(&self) -> Option<u64> {
        // Read in order by this thread, with nothing handed out ahead: rows low..len.
        (self.engine.is_none() && self.above.is_empty())
            .then(|| self.pass.len().saturating_sub(self.low))
    }
    fn next_run(&mut self, n: usize) -> Option<(Element, usize)> {
        let left = self.remaining()?;
        let count = left.min(n as u64);
        if count == 0 {
            return None;
        }
        // Only a contiguous source gives a range; an error there is left to `next`, which
        // puts it at its element.
        let rows = self.pass.get_range(self.low, self.low + count)?.ok()?;
        self.low += count;
        Some((rows, count as usize))
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

impl Dataset {
    /// Opens a fresh pass, choosing the index pass for random-access nodes.
    pub(crate) fn open(&self) -> Result<BoxIter> {
        self.open_from(None)
    }

    /// Opens a pass: a fresh one, or one continuing from a state saved by an iterator of this
    /// dataset.
    pub(crate) fn open_from(&self, from: Option<State>) -> Result<BoxIter> {
        let Some((stats, stage)) = new_stage(self.node().name()) else {
            return self.open_node(from, None);
        };
        let opened = {
            let _stage = StageGuard::enter(&stats, Some(stage));
            self.open_node(from, Some((stats.clone(), stage)))?
        };
        if self.node().is_random_access() {
            // The pass itself is counted (see open_node).
            return Ok(opened);
        }
        Ok(Box::new(Counted::new(opened, stats, stage)))
    }

    fn open_node(
        &self,
        from: Option<State>,
        counted: Option<(PipelineStats, usize)>,
    ) -> Result<BoxIter> {
        if !self.node().is_random_access() {
            return self.node().open(from);
        }
        let (replay, low, above) = restore(from, "Pass", |r| {
            let draws = read_draws(r)?;
            let low = r.num()?;
            let n = r.usize()?;
            let above = (0..n).map(|_| r.num()).collect::<Result<BTreeSet<u64>>>()?;
            Ok((Some(draws), low, above))
        })?
        .unwrap_or_default();
        let (pass, draws) = with_draws(replay, || self.node().pass())?;
        let Some(mut pass) = pass else {
            return self.node().open(None);
        };
        if let Some((stats, stage)) = counted {
            pass = Arc::new(CountedPass::new(pass, stats, stage));
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
                let mut lanes =
                    parallel::Lanes::new(p.num_threads(), p.is_deterministic()).run_as(p);
                // A prefetch's buffer: at least that many elements in the making.
                lanes.capacity = lanes.capacity.max(self.node().read_ahead());
                Some(parallel::ParallelIter::start(
                    self.node().name(),
                    jobs,
                    work,
                    lanes,
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
        let Some((stats, stage)) = new_stage(self.node().name()) else {
            return self.node().pass();
        };
        let inner = {
            let _stage = StageGuard::enter(&stats, Some(stage));
            self.node().pass()?
        };
        Some(Arc::new(CountedPass::new(inner, stats, stage)))
    }
}

/// The draws that made a pass, in its state.
fn save_draws(mut s: State, draws: &[Draw]) -> State {
    s = s.num(draws.len() as u64);
    for d in draws {
        s = s.num(d.seed).num(d.epoch).flag(d.reshuffles);
    }
    s
}

/// The draws [`save_draws`] wrote.
fn read_draws(r: &mut StateReader) -> Result<Vec<Draw>> {
    let n = r.usize()?;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        out.push(Draw {
            seed: r.num()?,
            epoch: r.num()?,
            reshuffles: r.flag()?,
        });
    }
    Ok(out)
}
