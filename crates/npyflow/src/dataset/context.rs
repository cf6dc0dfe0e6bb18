//! The thread-local context of opening a pass, in one place.
//!
//! Three things travel down a pipeline while its passes are opened, without appearing in the
//! signature of every node's `open` and `pass`:
//! - the random draws a pass makes (recorded when a pass is opened, replayed when one is
//!   restored; see [`state::random`](super::state::random)), and
//! - the statistics collector and the stage being opened (see
//!   [`Dataset::iter_with_stats`](super::Dataset::iter_with_stats)), and
//! - the tuner of the pass (`runtime/tuner.rs`), which the `AUTOTUNE` engines opened under it
//!   report to.
//!
//! Both live in this module's thread-local context and change only through guards: each guard
//! puts back what was there before when it is dropped, including while a panic unwinds, so
//! a later pass on the same thread never sees a context that is not its own. Worker threads
//! start with an empty context; a parallel engine's workers make the pass's tuner current.
//! (Traces number threads with a thread-local of their own in `runtime/trace.rs`: an
//! identity, not context.)

use std::cell::RefCell;
use std::collections::VecDeque;

use std::sync::Arc;

use super::runtime::stats::PipelineStats;
use super::runtime::tuner::Tuner;

/// One random draw made when a pass was created: the seed used, the epoch, and whether the
/// node reshuffles (draws a new epoch) on each pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Draw {
    pub(crate) seed: u64,
    pub(crate) epoch: u64,
    pub(crate) reshuffles: bool,
}

/// The draws of the pass being opened: those to replay (a restore), those made so far, and
/// why the replay failed, if it did.
#[derive(Default)]
pub(crate) struct DrawLog {
    pub(crate) replay: Option<VecDeque<Draw>>,
    pub(crate) recorded: Vec<Draw>,
    pub(crate) failed: Option<String>,
}

/// A statistics collector and the stage under which nodes are being opened or run
/// (`None`: the pass itself).
pub(crate) type StageContext = (PipelineStats, Option<usize>);

#[derive(Default)]
struct Context {
    /// One log per pass being opened, innermost last.
    draws: Vec<DrawLog>,
    stage: Option<StageContext>,
    /// The tuner of the pass being opened or run (see `runtime/tuner.rs`).
    tuner: Option<Arc<Tuner>>,
}

thread_local! {
    static CONTEXT: RefCell<Context> = RefCell::new(Context::default());
}

/// Records (or replays) the draws of the passes opened while it lives; dropping it ends the
/// log.
pub(crate) struct DrawLogGuard {
    /// The depth of this guard's log, to check that guards end in order.
    depth: usize,
}

impl DrawLogGuard {
    /// Starts a log, replaying `replay` when given.
    pub(crate) fn start(replay: Option<Vec<Draw>>) -> DrawLogGuard {
        let depth = CONTEXT.with(|c| {
            let mut c = c.borrow_mut();
            c.draws.push(DrawLog {
                replay: replay.map(VecDeque::from),
                ..DrawLog::default()
            });
            c.draws.len()
        });
        DrawLogGuard { depth }
    }

    /// Ends the log and returns it.
    pub(crate) fn finish(self) -> DrawLog {
        let log = CONTEXT.with(|c| {
            let mut c = c.borrow_mut();
            debug_assert_eq!(c.draws.len(), self.depth, "draw logs end in order");
            c.draws.pop()
        });
        std::mem::forget(self);
        log.unwrap_or_default()
    }
}

impl Drop for DrawLogGuard {
    fn drop(&mut self) {
        // Reached only when the log was not finished: a panic while a pass was opened.
        CONTEXT.with(|c| c.borrow_mut().draws.truncate(self.depth.saturating_sub(1)));
    }
}

/// Runs `f` on the innermost draw log, or on `None` when no pass is being recorded.
pub(crate) fn with_draw_log<R>(f: impl FnOnce(Option<&mut DrawLog>) -> R) -> R {
    CONTEXT.with(|c| f(c.borrow_mut().draws.last_mut()))
}

/// Makes a collector and stage current on this thread while it lives.
pub(crate) struct StageGuard {
    previous: Option<StageContext>,
}

impl StageGuard {
    /// Makes `(stats, stage)` current.
    pub(crate) fn enter(stats: &PipelineStats, stage: Option<usize>) -> StageGuard {
        let previous = CONTEXT.with(|c| c.borrow_mut().stage.replace((stats.clone(), stage)));
        StageGuard { previous }
    }
}

impl Drop for StageGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CONTEXT.with(|c| c.borrow_mut().stage = previous);
    }
}

/// The collector and stage current on this thread, if statistics are being collected.
pub(crate) fn current_stage() -> Option<StageContext> {
    CONTEXT.with(|c| c.borrow().stage.clone())
}

/// Makes a pass's tuner current on this thread while it lives: the `AUTOTUNE` engines
/// opened meanwhile are tuned by it.
pub(crate) struct TunerGuard {
    previous: Option<Arc<Tuner>>,
}

impl TunerGuard {
    /// Makes `tuner` current.
    pub(crate) fn enter(tuner: &Arc<Tuner>) -> TunerGuard {
        let previous = CONTEXT.with(|c| c.borrow_mut().tuner.replace(Arc::clone(tuner)));
        TunerGuard { previous }
    }
}

impl Drop for TunerGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CONTEXT.with(|c| c.borrow_mut().tuner = previous);
    }
}

/// The tuner current on this thread, if any.
pub(crate) fn current_tuner() -> Option<Arc<Tuner>> {
    CONTEXT.with(|c| c.borrow().tuner.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_put_back_what_was_there_even_through_a_panic() {
        let stats = PipelineStats::default();
        let outer = StageGuard::enter(&stats, Some(1));
        let unwound = std::panic::catch_unwind(|| {
            let _inner = StageGuard::enter(&PipelineStats::default(), Some(7));
            let _log = DrawLogGuard::start(None);
            panic!("while opening");
        });
        assert!(unwound.is_err());
        assert_eq!(current_stage().map(|(_, s)| s), Some(Some(1)));
        assert!(
            with_draw_log(|log| log.is_none()),
            "the log ended with the panic"
        );
        drop(outer);
        assert!(current_stage().is_none());
    }

    #[test]
    fn draw_logs_nest() {
        let outer = DrawLogGuard::start(None);
        with_draw_log(|log| {
            log.unwrap().recorded.push(Draw {
                seed: 1,
                epoch: 0,
                reshuffles: true,
            })
        });
        let inner = DrawLogGuard::start(Some(vec![Draw {
            seed: 2,
            epoch: 3,
            reshuffles: false,
        }]));
        assert_eq!(
            with_draw_log(|log| log.unwrap().replay.as_ref().map(VecDeque::len)),
            Some(1)
        );
        assert!(inner.finish().recorded.is_empty());
        assert_eq!(outer.finish().recorded.len(), 1);
        assert!(with_draw_log(|log| log.is_none()));
    }
}
