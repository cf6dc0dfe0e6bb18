//! A short report on a counted pass: the bottleneck stage and what to change about it.

use std::fmt;
use std::time::Duration;

use super::stats::{PipelineStats, StageStats};
use super::trace::TraceEvents;

/// Where a pass spent its time, from its statistics: see [`PipelineStats::report`].
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The stage with the most time of its own (merged by name and depth, as in
    /// [`PipelineStats::stages`]), if any stage ran.
    pub bottleneck: Option<StageStats>,
    /// Its share of the time of its own of all stages, from 0 to 1.
    pub share: f64,
    /// What to change, in words.
    pub advice: String,
    /// Events the trace kept, events dropped past its cap, and the cap (0 without a trace).
    pub trace_events: TraceEvents,
}

/// What to change when `name` is the bottleneck.
fn advice_for(name: &str) -> &'static str {
    match name {
        "Map" => {
            "raise the map's num_parallel_calls (AUTOTUNE: tuned up to the CPU budget), or use \
             built-in ops, which fuse into the batch"
        }
        "Batch" | "Rebatch" | "DistributedBatch" => {
            "give the batch num_parallel_calls, or map with built-in ops so that they fuse into it"
        }
        "Interleave" | "ParallelInterleave" | "FlatMap" => {
            "raise the interleave's num_parallel_calls or cycle_length"
        }
        "Shuffle" => "shrink the shuffle buffer, or use global_shuffle over a random-access source",
        "Prefetch" => "the consumer waits on its input: speed up the stage below the prefetch",
        "NpyRows" | "TensorSlice" | "Tensor" | "Range" | "ListFiles" | "Generator" | "Random" => {
            "read more at a time (batch straight over the source), cache, or use faster storage"
        }
        _ => "give the stages around it parallelism, and prefetch after it",
    }
}

impl PipelineStats {
    /// The bottleneck of the pass so far, its share of the time, and what to change.
    ///
    /// ```
    /// use npyflow::{Dataset, Element};
    /// let ds = Dataset::range(0, 10, 1)?.map(|x: Element| Ok(x), ())?;
    /// let (it, stats) = ds.iter_with_stats();
    /// assert_eq!(it.count(), 10);
    /// let report = stats.report();
    /// assert!(report.bottleneck.is_some());
    /// assert!(report.to_string().starts_with("bottleneck: "));
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn report(&self) -> Report {
        let stages = self.stages();
        let total: Duration = stages.iter().map(|s| s.own).sum();
        let prefetched = stages.iter().any(|s| s.name == "Prefetch");
        let bottleneck = stages.into_iter().max_by_key(|s| s.own);
        let share = match &bottleneck {
            Some(b) if !total.is_zero() => b.own.as_secs_f64() / total.as_secs_f64(),
            _ => 0.0,
        };
        let mut advice = bottleneck
            .as_ref()
            .map_or("nothing ran", |b| advice_for(&b.name))
            .to_string();
        if bottleneck.is_some() && !prefetched {
            advice.push_str("; and end the pipeline with prefetch to overlap it with the consumer");
        }
        Report {
            bottleneck,
            share,
            advice,
            trace_events: self.trace_events(),
        }
    }
}

impl fmt::Display for Report {
    /// `bottleneck: Map (depth 1), 812.3 ms of its own, 91% of all stages'; raise ...`, and
    /// a line on the trace's events when there is a trace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.bottleneck {
            Some(b) => write!(
                f,
                "bottleneck: {} (depth {}), {:.1} ms of its own, {:.0}% of all stages'; {}",
                b.name,
                b.depth,
                b.own.as_secs_f64() * 1e3,
                self.share * 100.0,
                self.advice
            )?,
            None => write!(f, "bottleneck: none ({})", self.advice)?,
        }
        let TraceEvents { kept, dropped, cap } = self.trace_events;
        if cap > 0 {
            write!(f, "\ntrace: {kept} events")?;
            if dropped > 0 {
                write!(f, " ({dropped} dropped past the cap of {cap})")?;
            }
        }
        Ok(())
    }
}
