//! [`ConcurrencyGate`]: how many threads may run a function at once, measured.

use std::sync::{Condvar, Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Calls before the first measure (imports, caches), and calls in each measured window.
const WARM_UP: u64 = 16;
const WINDOW: u64 = 64;
/// Calls between measures once settled.
const SETTLED_FOR: u64 = 4096;
/// How much faster many callers must be to be kept.
const MARGIN: f64 = 1.15;
/// With one caller at a time: how long one thread keeps its turn across calls while others
/// wait (see [`ConcurrencyGate`]).
const SLICE: Duration = Duration::from_millis(2);

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
    /// With one caller at a time: the thread whose turn it is, until when, and how many
    /// threads wait.
    holder: Option<ThreadId>,
    slice_end: Instant,
    waiting: usize,
    /// The thread that last handed its turn over, which lets a waiting one go first.
    yielded: Option<ThreadId>,
}

impl State {
    /// Whether thread `me` may start a call at `now`.
    fn may_enter(&self, me: ThreadId, now: Instant) -> bool {
        if self.running >= self.limit {
            return false;
        }
        if self.limit > 1 {
            return true;
        }
        match self.holder {
            None => self.yielded != Some(me) || self.waiting == 0,
            // Its turn goes on while it lasts, or while no one else waits.
            Some(h) if h == me => now < self.slice_end || self.waiting == 0,
            // Another's turn: over once its time is up.
            Some(_) => now >= self.slice_end,
        }
    }
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
/// With one caller at a time, turns last 2 ms rather than one call: the thread that has
/// the turn goes on calling while the others wait, and hands over when its time is up (or
/// when it stops calling). Handing over at every call would cost a thread switch per call
/// (and, for a Python function, a hand-over of the GIL), which made a map slower than on
/// one thread; in turns it runs at one thread's speed.
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
                holder: None,
                slice_end: Instant::now(),
                waiting: 0,
                yielded: None,
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
        let me = std::thread::current().id();
        {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                let now = Instant::now();
                if s.may_enter(me, now) {
                    if s.limit == 1 && (s.holder != Some(me) || now >= s.slice_end) {
                        // A new turn.
                        s.holder = Some(me);
                        s.slice_end = now + SLICE;
                        s.yielded = None;
                    }
                    break;
                }
                s.waiting += 1;
                // With one caller at a time, a turn ends at a known time, or within a slice
                // of a turn that has not begun yet: wake then if not woken before (a turn's
                // holder wakes the others only when it ends its turn).
                s = if s.limit == 1 {
                    let left = if s.slice_end > now {
                        s.slice_end - now
                    } else {
                        SLICE
                    };
                    self.turn
                        .wait_timeout(s, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                } else {
                    self.turn.wait(s).unwrap_or_else(PoisonError::into_inner)
                };
                s.waiting -= 1;
            }
            s.running += 1;
        }
        let out = f();
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.running -= 1;
        s.done += 1;
        let now = Instant::now();
        let limit = s.limit;
        self.advance(&mut s, now);
        // With turns, the others are woken only when this one's is over (they also wake
        // when its time is up, should this thread stop calling).
        let wake = s.waiting > 0 && (limit > 1 || s.limit > 1 || now >= s.slice_end);
        if wake && s.limit == 1 && now >= s.slice_end {
            s.holder = None;
            s.yielded = Some(me);
        }
        drop(s);
        if wake {
            self.turn.notify_all();
        }
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

    /// Records `calls` finished calls, each finishing at `at`, as `run` does, without running
    /// anything: the decision depends on the times given, not on how busy the machine is.
    fn finish(gate: &ConcurrencyGate, calls: u64, at: Instant) {
        let mut s = gate.state.lock().unwrap();
        for _ in 0..calls {
            s.done += 1;
            gate.advance(&mut s, at);
        }
    }

    /// Warms `gate` up, then measures one caller at `one` and many callers at `many` calls
    /// per second; returns when the measures were taken.
    fn measure(gate: &ConcurrencyGate, start: Instant, one: f64, many: f64) -> Instant {
        finish(gate, WARM_UP, start);
        assert_eq!(gate.limit(), 1, "one caller while measuring one");
        let after_one = start + Duration::from_secs_f64(WINDOW as f64 / one);
        finish(gate, WINDOW, after_one);
        assert_eq!(gate.limit(), gate.max, "every caller while measuring many");
        let after_many = after_one + Duration::from_secs_f64(WINDOW as f64 / many);
        finish(gate, WINDOW, after_many);
        after_many
    }

    #[test]
    fn many_callers_are_kept_only_when_clearly_faster() {
        let start = Instant::now();
        for (one, many, kept) in [
            (1000.0, 3900.0, 4), // four times as fast: parallel work
            (1000.0, 1200.0, 4), // 20% faster: past the margin
            (1000.0, 1100.0, 1), // 10% faster: within the margin, one caller
            (1000.0, 1000.0, 1), // no faster (work under one lock, as under the GIL)
            (1000.0, 500.0, 1),  // slower (callers that only wait for each other)
        ] {
            let gate = ConcurrencyGate::new(4);
            measure(&gate, start, one, many);
            assert_eq!(gate.limit(), kept, "one {one}/s, many {many}/s");
        }
    }

    #[test]
    fn measures_again_once_settled() {
        let gate = ConcurrencyGate::new(4);
        let start = Instant::now();
        let settled = measure(&gate, start, 1000.0, 4000.0);
        assert_eq!(gate.limit(), 4);
        // The function became serial: the next measure, after 4096 calls, goes back to one.
        finish(&gate, SETTLED_FOR, settled + Duration::from_secs(1));
        assert_eq!(gate.limit(), 1, "measuring one caller again");
        let after_one = settled + Duration::from_secs(2);
        finish(&gate, WINDOW, after_one);
        finish(&gate, WINDOW, after_one + Duration::from_secs(1));
        assert_eq!(gate.limit(), 1);
    }

    #[test]
    fn a_gate_for_one_worker_never_changes() {
        let gate = ConcurrencyGate::new(1);
        measure(&gate, Instant::now(), 1.0, 1e9);
        assert_eq!(gate.limit(), 1);
    }

    #[test]
    fn callers_never_exceed_the_limit_and_every_call_runs() {
        // Real threads through the gate: whatever limit it measures on this machine, never
        // more callers than its maximum run at once, and every call runs exactly once.
        static RUNNING: Mutex<(usize, usize, usize)> = Mutex::new((0, 0, 0));
        let gate = Arc::new(ConcurrencyGate::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let g = Arc::clone(&gate);
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        g.run(|| {
                            {
                                let mut r = RUNNING.lock().unwrap();
                                r.0 += 1;
                                r.1 = r.1.max(r.0);
                            }
                            std::thread::sleep(Duration::from_micros(50));
                            let mut r = RUNNING.lock().unwrap();
                            r.0 -= 1;
                            r.2 += 1;
                        })
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("worker");
        }
        let r = RUNNING.lock().unwrap();
        assert_eq!(r.2, 400, "every call ran once");
        assert!(r.1 <= 4, "at most the gate's maximum at once");
    }

    #[test]
    fn one_caller_at_a_time_keeps_its_turn_across_calls() {
        // Two threads calling without pause through a gate that lets one through (the
        // first 80 calls: warm-up and the measure of one caller): the turn changes hands
        // at most once per 2 ms slice, not at every call.
        let gate = Arc::new(ConcurrencyGate::new(2));
        let calls: Arc<Mutex<Vec<(std::thread::ThreadId, Instant)>>> = Arc::default();
        let start = Instant::now();
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (g, c) = (Arc::clone(&gate), Arc::clone(&calls));
                std::thread::spawn(move || {
                    for _ in 0..40 {
                        g.run(|| {
                            std::thread::sleep(Duration::from_micros(20));
                            c.lock()
                                .unwrap()
                                .push((std::thread::current().id(), Instant::now()));
                        })
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("worker");
        }
        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 80);
        let first = &calls[..(WARM_UP + WINDOW) as usize];
        let switches = first.windows(2).filter(|w| w[0].0 != w[1].0).count();
        let elapsed = first.last().unwrap().1 - start;
        let turns = (elapsed.as_secs_f64() / SLICE.as_secs_f64()).floor() as usize;
        assert!(
            switches <= turns + 1,
            "{switches} hand-overs in {elapsed:?} ({turns} turns of {SLICE:?})"
        );
    }
}
