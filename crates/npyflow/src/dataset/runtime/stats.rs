//! Per-stage statistics of a pass: elements and bytes each stage handed up, and the time
//! spent making them, with the stage whose own time is largest named as the bottleneck.
//!
//! Stages are counted where one node hands elements to another (every iterator and every
//! random-access read between nodes), so a pass without statistics pays nothing. A stage's
//! *busy* time includes the time of the stages below it that it waited on; its *own* time
//! is its busy time less theirs. Time spent on worker threads is summed over the threads,
//! so a stage can be busy longer than the pass took.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::trace::{Trace, TraceEvents};
use super::tuner::{SummarySlot, Tuner, TuningSummary};

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
pub(crate) struct Counters {
    pub(crate) elements: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) busy_ns: AtomicU64,
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
    trace: Option<Arc<Trace>>,
    /// The pass's tuner while it runs, and its summary once it has ended.
    tuner: Arc<Mutex<Option<std::sync::Weak<Tuner>>>>,
    tuning: SummarySlot,
}

impl PipelineStats {
    /// A collector that also records a trace of at most `max_events` events (see
    /// [`Dataset::iter_with_trace`](crate::Dataset::iter_with_trace)).
    pub(crate) fn traced(max_events: usize) -> PipelineStats {
        PipelineStats {
            trace: Some(Arc::new(Trace::new(max_events))),
            ..PipelineStats::default()
        }
    }

    /// Follows the pass's tuner: [`tuning`](PipelineStats::tuning) reads it, and its
    /// summary once it has ended.
    pub(crate) fn follow(&self, tuner: &Arc<Tuner>) -> SummarySlot {
        *self.tuner.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::downgrade(tuner));
        Arc::clone(&self.tuning)
    }

    /// The slot a tuner of this pass leaves its summary in.
    pub(crate) fn tuning_slot(&self) -> SummarySlot {
        Arc::clone(&self.tuning)
    }

    /// What the pass's autotuning decided (the threads and buffer of each `AUTOTUNE` stage,
    /// the changes made, the peak bytes buffered), while the pass runs and after it; `None`
    /// before the pass opened.
    pub fn tuning(&self) -> Option<TuningSummary> {
        let live = self
            .tuner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(std::sync::Weak::upgrade);
        match live {
            Some(t) => Some(t.summary()),
            None => self
                .tuning
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// The trace being recorded, if any.
    pub(crate) fn trace(&self) -> Option<&Arc<Trace>> {
        self.trace.as_ref()
    }

    /// Writes the trace of the pass in the Chrome trace-event format (JSON that Perfetto
    /// and `chrome://tracing` open): complete events (`"ph": "X"`) per call of a stage,
    /// thread names (`"ph": "M"`) and counters (`"ph": "C"`) of parallel engines' buffers.
    /// A collector without a trace (from [`Dataset::iter_with_stats`]) writes no events.
    ///
    /// [`Dataset::iter_with_stats`]: crate::Dataset::iter_with_stats
    pub fn write_trace(&self, out: &mut dyn Write) -> io::Result<()> {
        let empty;
        let trace = match &self.trace {
            Some(t) => t,
            None => {
                empty = Trace::new(0);
                &empty
            }
        };
        let label = |i: usize| {
            let stages = self.stages.lock().unwrap_or_else(PoisonError::into_inner);
            let name = stages.get(i).map_or("?", |s| s.name).to_string();
            (name, depth_of(&stages, i))
        };
        trace.write(&label, out)
    }

    /// Events the trace kept, events dropped past its cap, and the cap (all 0 without a
    /// trace).
    pub fn trace_events(&self) -> TraceEvents {
        self.trace
            .as_ref()
            .map_or_else(TraceEvents::default, |t| t.counts())
    }

    /// The stage of a node named `name` opened under stage `parent`: a new one, or the one it
    /// had (a node opened again under the same stage, each epoch of a repeat or each dataset
    /// an interleave makes, counts into its stage, so the list stays as small as the
    /// pipeline).
    pub(crate) fn stage_for(&self, name: &'static str, parent: Option<usize>) -> usize {
        let mut stages = self.stages.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = stages
            .iter()
            .position(|s| s.parent == parent && s.name == name)
        {
            return id;
        }
        stages.push(Stage {
            name,
            parent,
            counters: Arc::default(),
        });
        stages.len() - 1
    }

    pub(crate) fn counters(&self, stage: usize) -> Arc<Counters> {
        let stages = self.stages.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&stages[stage].counters)
    }

    /// The stages, merged by name and depth, from the last stage down.
    pub fn stages(&self) -> Vec<StageStats> {
        let stages = self.stages.lock().unwrap_or_else(PoisonError::into_inner);
        let busy = |s: &Stage| Duration::from_nanos(s.counters.busy_ns.load(Ordering::Relaxed));
        let mut child_busy = vec![Duration::ZERO; stages.len()];
        for s in stages.iter() {
            if let Some(p) = s.parent {
                child_busy[p] += busy(s);
            }
        }
        let mut out: Vec<StageStats> = Vec::new();
        for (i, s) in stages.iter().enumerate() {
            let depth = depth_of(&stages, i);
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

/// How many stages are above stage `i`.
fn depth_of(stages: &[Stage], mut i: usize) -> usize {
    let mut d = 0;
    while let Some(p) = stages.get(i).and_then(|s| s.parent) {
        d += 1;
        i = p;
    }
    d
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
        if let Some(t) = self.tuning().filter(|t| !t.stages.is_empty()) {
            write!(f, "\n{t}")?;
        }
        Ok(())
    }
}
