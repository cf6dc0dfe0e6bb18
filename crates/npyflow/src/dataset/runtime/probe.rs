//! [`Probe`]: whether an engine's work runs faster with all its threads than one job at a
//! time, measured while the engine runs.
//!
//! For work that may hold a lock for most of its run, as a Python function holds the GIL:
//! threads that only wait for the lock make a stage slower than one thread (each hand-over
//! costs a switch). An engine whose [`Parallelism`](crate::dataset::parallelism::Parallelism) says
//! [`measure_gain`](crate::dataset::parallelism::Parallelism::measure_gain) runs its jobs one at a time
//! for its first half second, timing them, then times a short window with all its threads,
//! and keeps all of them only when that was at least 15% faster. It measures again from time
//! to time, as the work's cost may change.
//!
//! The window with all threads is what measuring costs: for work that holds the GIL it runs
//! slower than one thread. Waiting half a second before the first one bounds that cost to a
//! few percent of the stage's first second, and a pass shorter than that runs one at a time
//! throughout, at one thread's speed.
//!
//! The limit sits in front of the engine's source: a worker over the limit waits before it
//! takes a job, holding none, so the one worker that runs goes on from job to job without
//! handing over, and the others sleep until the limit rises. Whatever the limit, the jobs
//! and their results are the same.

use std::time::{Duration, Instant};

/// Jobs (or time, whichever comes first, with at least [`MIN_JOBS`]) before the first
/// measure: imports, caches, the first touch of memory.
const WARM_UP: u64 = 16;
/// Jobs in a measured window, or [`WINDOW_TIME`] with at least [`MIN_JOBS`] of them (a
/// window of large jobs, such as batches of 256 Python calls, is over in time). Short: the
/// window of all threads costs a GIL-bound function what it runs slower then (measured on
/// 20,000 images of W4's untraceable function, batches of 256 taking ~4 ms: windows of 50 ms
/// cost 7% of the pass).
const WINDOW: u64 = 64;
const WINDOW_TIME: Duration = Duration::from_millis(10);
const MIN_JOBS: u64 = 4;
/// How long jobs run one at a time before the first window of all threads.
const FIRST_LOOK: Duration = Duration::from_millis(500);
/// Jobs, or time, between measures once settled.
const SETTLED_FOR: u64 = 4096;
const SETTLED_TIME: Duration = Duration::from_secs(2);
/// How much faster all threads must be to be kept.
const MARGIN: f64 = 1.15;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    WarmUp,
    /// One at a time, measured; `first` until the first verdict.
    One {
        first: bool,
    },
    All {
        one: f64,
    },
    Settled {
        all: bool,
    },
}

/// What a window measured, when it settled the limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Verdict {
    /// Whether all threads run jobs at once from now on.
    pub(crate) all: bool,
    /// Jobs a second, one at a time and with all threads.
    pub(crate) one_rate: f64,
    pub(crate) all_rate: f64,
}

/// The measuring state of one engine (kept under the engine's lock).
#[derive(Debug)]
pub(crate) struct Probe {
    phase: Phase,
    /// Jobs finished in this phase, and when it began.
    done: u64,
    since: Instant,
}

impl Probe {
    pub(crate) fn new(now: Instant) -> Probe {
        Probe {
            phase: Phase::WarmUp,
            done: 0,
            since: now,
        }
    }

    /// Whether jobs run one at a time now.
    pub(crate) fn one_at_a_time(&self) -> bool {
        !matches!(self.phase, Phase::All { .. } | Phase::Settled { all: true })
    }

    /// Counts a job finished at `now`; returns the verdict when this job ended a measure.
    pub(crate) fn finished(&mut self, now: Instant) -> Option<Verdict> {
        self.done += 1;
        let elapsed = now.saturating_duration_since(self.since);
        let over = |jobs: u64, time: Duration| {
            self.done >= jobs || (self.done >= MIN_JOBS && elapsed >= time)
        };
        let rate = self.done as f64 / elapsed.as_secs_f64().max(1e-9);
        let (next, verdict) = match self.phase {
            Phase::WarmUp if over(WARM_UP, WINDOW_TIME) => (Phase::One { first: true }, None),
            Phase::One { first: true } if self.done >= MIN_JOBS && elapsed >= FIRST_LOOK => {
                (Phase::All { one: rate }, None)
            }
            Phase::One { first: false } if over(WINDOW, WINDOW_TIME) => {
                (Phase::All { one: rate }, None)
            }
            Phase::All { one } if over(WINDOW, WINDOW_TIME) => {
                let all = rate > one * MARGIN;
                let verdict = Verdict {
                    all,
                    one_rate: one,
                    all_rate: rate,
                };
                (Phase::Settled { all }, Some(verdict))
            }
            Phase::Settled { .. } if over(SETTLED_FOR, SETTLED_TIME) => {
                (Phase::One { first: false }, None)
            }
            _ => return None,
        };
        self.phase = next;
        self.done = 0;
        self.since = now;
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finishes `jobs` jobs spread evenly over `time` from `start`, as an engine would
    /// report them; returns the verdicts and the end.
    fn run(p: &mut Probe, start: Instant, jobs: u64, time: Duration) -> (Vec<Verdict>, Instant) {
        let mut verdicts = Vec::new();
        for i in 1..=jobs {
            let at = start + time.mul_f64(i as f64 / jobs as f64);
            verdicts.extend(p.finished(at));
        }
        (verdicts, start + time)
    }

    /// Warms `p` up, then measures one job at a time at `one` jobs a second and all threads
    /// at `all` (rates high enough that the windows end by their count, not their time);
    /// returns the verdict and when it came.
    fn measure(p: &mut Probe, start: Instant, one: f64, all: f64) -> (Verdict, Instant) {
        let (v, t) = run(p, start, WARM_UP, Duration::from_millis(1));
        assert!(
            v.is_empty() && p.one_at_a_time(),
            "one at a time while warming up"
        );
        // The first look: one at a time for half a second.
        let jobs = (one * FIRST_LOOK.as_secs_f64()).round() as u64;
        let step = FIRST_LOOK.mul_f64(1.0 / jobs as f64);
        let (v, t) = run(p, t, jobs - 1, step * (jobs - 1) as u32);
        assert!(
            v.is_empty() && p.one_at_a_time(),
            "one at a time for half a second"
        );
        let (v, t) = run(p, t, 1, step);
        assert!(
            v.is_empty() && !p.one_at_a_time(),
            "then all threads for a window"
        );
        let (v, t) = run(p, t, WINDOW, Duration::from_secs_f64(WINDOW as f64 / all));
        assert_eq!(v.len(), 1, "one verdict");
        (v[0], t)
    }

    #[test]
    fn all_threads_are_kept_only_when_clearly_faster() {
        for (one, all, kept) in [
            (1e5, 3.9e5, true),  // four times as fast: parallel work
            (1e5, 1.2e5, true),  // 20% faster: past the margin
            (1e5, 1.1e5, false), // 10% faster: within the margin
            (1e5, 1e5, false),   // no faster (work under one lock, as under the GIL)
            (1e5, 0.5e5, false), // slower (threads that only wait for each other)
        ] {
            let mut p = Probe::new(Instant::now());
            let (v, _) = measure(&mut p, Instant::now(), one, all);
            assert_eq!(v.all, kept, "one {one}/s, all {all}/s");
            assert_eq!(p.one_at_a_time(), !kept);
            let ratio = v.all_rate / v.one_rate;
            assert!((ratio - all / one).abs() < 0.05 * all / one, "rates {v:?}");
        }
    }

    #[test]
    fn windows_of_large_jobs_end_in_time() {
        // Jobs of 20 ms (a batch of Python calls): the warm-up and the window of all threads
        // end after 10 ms with at least four jobs, not after 16 or 64 jobs (1.3 s); the
        // first look at one job at a time lasts half a second.
        let mut p = Probe::new(Instant::now());
        let start = Instant::now();
        let (v, t) = run(&mut p, start, MIN_JOBS, Duration::from_millis(80));
        assert!(v.is_empty() && p.one_at_a_time(), "warm-up over");
        let (v, t) = run(&mut p, t, 24, Duration::from_millis(480));
        assert!(
            v.is_empty() && p.one_at_a_time(),
            "under half a second: one at a time"
        );
        let (v, t) = run(&mut p, t, 1, Duration::from_millis(20));
        assert!(v.is_empty() && !p.one_at_a_time(), "measuring all threads");
        let (v, _) = run(&mut p, t, MIN_JOBS, Duration::from_millis(40));
        assert_eq!(v.len(), 1, "a verdict after four jobs of all threads");
        let mut q = Probe::new(start);
        let (v, _) = run(&mut q, start, MIN_JOBS - 1, Duration::from_secs(1));
        assert!(v.is_empty(), "three jobs are not enough, however long");
        assert_eq!(q.phase, Phase::WarmUp);
    }

    #[test]
    fn measures_again_once_settled() {
        let mut p = Probe::new(Instant::now());
        let (v, settled) = measure(&mut p, Instant::now(), 1e5, 4e5);
        assert!(v.all && !p.one_at_a_time());
        // Settled for 4096 jobs or 2 s: then one at a time again, to measure anew.
        let (v, t) = run(&mut p, settled, SETTLED_FOR - 1, Duration::from_millis(500));
        assert!(v.is_empty() && !p.one_at_a_time(), "still settled");
        let (v, t) = run(&mut p, t, 1, Duration::from_millis(1));
        assert!(
            v.is_empty() && p.one_at_a_time(),
            "measuring one at a time again"
        );
        // The work became serial: the next verdict keeps one at a time.
        let (v, t) = run(&mut p, t, WINDOW, Duration::from_micros(640));
        assert!(v.is_empty());
        let (v, _) = run(&mut p, t, WINDOW, Duration::from_micros(640));
        assert_eq!(v.len(), 1);
        assert!(!v[0].all && p.one_at_a_time());
        // And a settled probe measures again after 2 s even with few jobs.
        let mut q = Probe::new(Instant::now());
        let (_, t) = measure(&mut q, Instant::now(), 1e5, 1e5);
        let (v, _) = run(&mut q, t, 10, SETTLED_TIME + Duration::from_millis(10));
        assert!(v.is_empty());
        assert_eq!(
            q.phase,
            Phase::One { first: false },
            "measuring again after 2 s"
        );
    }
}
