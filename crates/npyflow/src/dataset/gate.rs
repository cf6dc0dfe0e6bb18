//! [`ConcurrencyGate`]: how many threads may run a function at once, measured.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

/// Calls before the first measure (imports, caches), and calls in each measured window.
const WARM_UP: u64 = 16;
const WINDOW: u64 = 64;
/// Calls between measures once settled.
const SETTLED_FOR: u64 = 4096;
/// How much faster many callers must be to be kept.
const MARGIN: f64 = 1.15;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    WarmUp,
    One,
    Many { one: f64 },
    Settled,
}

#[derive(Debug)]
struct State {
    limit: usize,
    running: usize,
    phase: Phase,
    /// Calls finished in this phase, and when it began.
    done: u64,
    since: Instant,
}

/// A gate that lets at most its current limit of callers through at once, the limit set by
/// measuring: one, or every worker where that is clearly faster.
///
/// Meant for functions that may or may not run in parallel, such as Python functions (the
/// Python package wraps an untraced `map` function asked to `AUTOTUNE` in one). A Python
/// function holds the GIL while it runs, except where it releases it (NumPy's larger
/// operations, I/O, `time.sleep`); threads that only wait for the GIL make a map slower than
/// one thread (each hand-over of the GIL costs a switch). So the gate measures instead of
/// guessing: after a warm-up of 16 calls it times 64 calls made one at a time, then 64 made
/// by every worker, and keeps every worker only when that was at least 15% faster. It
/// measures again after every 4096 calls, as a function's cost may change. Whatever the
/// limit, the work and its results are the same: the gate only makes callers wait their
/// turn.
///
/// ```
/// use npyflow::dataset::ConcurrencyGate;
/// let gate = ConcurrencyGate::new(4);
/// assert_eq!(gate.run(|| 2 + 2), 4);
/// assert_eq!(gate.limit(), 1); // one caller at a time until measured otherwise
/// ```
#[derive(Debug)]
pub struct ConcurrencyGate {
    max: usize,
    state: Mutex<State>,
    turn: Condvar,
}

impl ConcurrencyGate {
    /// A gate for `max` workers (starting with one caller at a time).
    pub fn new(max: usize) -> ConcurrencyGate {
        ConcurrencyGate {
            max: max.max(1),
            state: Mutex::new(State {
                limit: 1,
                running: 0,
                phase: Phase::WarmUp,
                done: 0,
                since: Instant::now(),
            }),
            turn: Condvar::new(),
        }
    }

    /// The callers let through at once now.
    pub fn limit(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .limit
    }

    /// Runs `f` when the gate lets this caller through.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            while s.running >= s.limit {
                s = self.turn.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
            s.running += 1;
        }
        let out = f();
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.running -= 1;
        s.done += 1;
        self.advance(&mut s, Instant::now());
        drop(s);
        self.turn.notify_all();
        out
    }

    fn advance(&self, s: &mut State, now: Instant) {
        let rate = |s: &State| s.done as f64 / now.duration_since(s.since).as_secs_f64().max(1e-9);
        let next = match s.phase {
            Phase::WarmUp if s.done >= WARM_UP => Some((Phase::One, 1)),
            Phase::One if s.done >= WINDOW => Some((Phase::Many { one: rate(s) }, self.max)),
            Phase::Many { one } if s.done >= WINDOW => {
                let keep = if rate(s) > one * MARGIN { self.max } else { 1 };
                Some((Phase::Settled, keep))
            }
            Phase::Settled if s.done >= SETTLED_FOR => Some((Phase::One, 1)),
            _ => None,
        };
        if let Some((phase, limit)) = next {
            if self.max == 1 {
                return;
            }
            s.phase = phase;
            s.limit = limit;
            s.done = 0;
            s.since = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn drive(gate: &Arc<ConcurrencyGate>, threads: usize, calls: usize, work: fn()) {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let g = Arc::clone(gate);
                std::thread::spawn(move || {
                    for _ in 0..calls {
                        g.run(work);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("worker");
        }
    }

    #[test]
    fn work_that_runs_in_parallel_keeps_every_caller() {
        // Sleeping releases the CPU (as a function that releases the GIL does): four at once
        // are about four times as fast.
        let gate = Arc::new(ConcurrencyGate::new(4));
        drive(&gate, 4, 60, || {
            std::thread::sleep(Duration::from_millis(1))
        });
        assert_eq!(gate.limit(), 4);
    }

    #[test]
    fn work_that_cannot_run_in_parallel_gets_one_caller() {
        // Work under one lock (as under the GIL): four callers are no faster than one.
        static LOCK: Mutex<()> = Mutex::new(());
        let gate = Arc::new(ConcurrencyGate::new(4));
        drive(&gate, 4, 60, || {
            let _held = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
            std::thread::sleep(Duration::from_micros(300));
        });
        assert_eq!(gate.limit(), 1);
    }
}
