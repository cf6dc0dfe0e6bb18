//! The parallel engine behind `map` and `batch` with `num_parallel_calls`: worker threads take
//! jobs in order, compute them outside any lock, and hand results back in order
//! (deterministic) or as they finish.
//!
//! A job is taken under the source's lock and numbered there, so job *k* always holds the
//! same input whatever the number of threads; the work on it runs in parallel. At most
//! `capacity` jobs are taken and not yet handed out, which bounds memory (with as many again
//! that the consumer took out in one run and holds). Dropping the
//! iterator stops the workers: each finishes the job it holds and exits, and the drop joins
//! them.
//!
//! Saving pauses the workers: no new job is taken, the ones taken are finished, and the
//! source's state is saved with the results not yet handed out. A restored engine starts
//! with those results, numbered first, and its source continues after them.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::trace::Trace;
use crate::dataset::context::current_stage;
use crate::dataset::plumbing::{ElementIter, Pending};
use crate::dataset::state::tree::State;
use crate::element::Element;
use crate::error::{Error, Result};

/// Where jobs come from: the input, taken under the engine's lock.
pub(crate) trait Jobs<J>: Send {
    /// The next job, or `None` at the end.
    fn next(&mut self) -> Option<J>;
    /// The source's state, after the jobs it has given.
    fn save(&self) -> Result<State>;
}

pub(crate) type Work<J, O> = Arc<dyn Fn(J) -> O + Send + Sync>;

/// How long a consumer waits for a run of results (see [`Lanes::wake`]) before it takes
/// them one by one: what handing over in runs may add to an element's latency.
const PATIENCE: Duration = Duration::from_millis(1);

struct Progress<O> {
    /// Jobs taken (or being taken) and not yet handed out.
    outstanding: usize,
    /// Results by job number, not yet handed out.
    done: BTreeMap<u64, O>,
    /// Job numbers in the order they finished (for `deterministic: false`).
    finished: VecDeque<u64>,
    /// The next job number to hand out (for `deterministic: true`).
    next_out: u64,
    /// The number of jobs, once the source has ended.
    total: Option<u64>,
    handed_out: u64,
    /// Dropping: workers exit.
    stop: bool,
    /// Saving: workers take no new job.
    paused: bool,
    /// Threads waiting on `ready` (the consumer, a save) and on `room` (workers): a
    /// condition variable is only signalled when someone waits on it.
    waiting_ready: usize,
    waiting_room: usize,
    /// The consumer has waited longer than [`PATIENCE`] for its next result: it is woken as
    /// soon as that result is ready, not when a run of them is.
    impatient: bool,
}

impl<O> Progress<O> {
    /// Jobs taken and still being computed.
    fn in_flight(&self) -> usize {
        self.outstanding - self.done.len()
    }
}

struct Source<J> {
    jobs: Box<dyn Jobs<J>>,
    /// The number the next job gets.
    number: u64,
    ended: bool,
}

struct Shared<J, O> {
    source: Mutex<Source<J>>,
    /// The result that stands in for a job whose source or work panicked.
    on_panic: fn(&'static str) -> O,
    /// Whether results go out in job order; otherwise as they finish, from `finished`.
    deterministic: bool,
    state: Mutex<Progress<O>>,
    ready: Condvar,
    room: Condvar,
    capacity: usize,
    /// How many results a waiting consumer is woken for (see [`Lanes::wake`]).
    wake: usize,
    /// The trace of the pass and this engine's counter series in it, when traced.
    trace: Option<(Arc<Trace>, u32)>,
}

impl<J, O> Shared<J, O> {
    /// Whether the threads waiting on `ready` have something to do: a run of `wake` results
    /// ready to go out (in order when deterministic; one for an impatient consumer), the
    /// source ended, or a save waiting for the last job in flight.
    fn worth_waking(&self, st: &Progress<O>) -> bool {
        if st.total.is_some() || (st.paused && st.in_flight() == 0) {
            return true;
        }
        let run = if st.impatient { 1 } else { self.wake };
        if st.done.len() < run {
            // Fewer results than a run: no run can be ready (and no look-ups to find out).
            return false;
        }
        if self.deterministic {
            (st.next_out..st.next_out + run as u64).all(|n| st.done.contains_key(&n))
        } else {
            st.finished.len() >= run
        }
    }

    /// Waits on `cv` (`ready` or `room`), counted in `waiting`, which says who waits there;
    /// for `patience` at most, when given. Returns whether that time ran out.
    fn wait<'a>(
        &self,
        cv: &Condvar,
        st: MutexGuard<'a, Progress<O>>,
        waiting: fn(&mut Progress<O>) -> &mut usize,
        patience: Option<Duration>,
    ) -> (MutexGuard<'a, Progress<O>>, bool) {
        let mut st = st;
        *waiting(&mut st) += 1;
        let (mut st, timed_out) = match patience {
            Some(d) => {
                let (st, r) = cv
                    .wait_timeout(st, d)
                    .unwrap_or_else(PoisonError::into_inner);
                (st, r.timed_out())
            }
            None => (cv.wait(st).unwrap_or_else(PoisonError::into_inner), false),
        };
        *waiting(&mut st) -= 1;
        (st, timed_out)
    }

    /// Samples the buffer's fill and the workers running into the trace, when traced.
    fn sample(&self, st: &Progress<O>) {
        if let Some((trace, series)) = &self.trace {
            trace.count(
                *series,
                st.done.len(),
                st.outstanding.saturating_sub(st.done.len()),
            );
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A worker that panicked outside a job cannot leave the state half-changed: every
    // change is one assignment. Go on with the data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How an engine runs: its worker threads, how many jobs may be taken and not yet handed
/// out, and whether results go out in job order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lanes {
    pub(crate) threads: usize,
    pub(crate) capacity: usize,
    pub(crate) deterministic: bool,
    /// A consumer that waits is woken when this many results are ready (or, after
    /// [`PATIENCE`], as soon as its next one is): with small jobs,
    /// one wake-up per result costs as much as the job (two context switches on a loaded
    /// core), so handing results over in runs is what lets the workers scale. 1 wakes at
    /// once.
    pub(crate) wake: usize,
}

impl Lanes {
    /// `threads` workers with room for two jobs each, results handed over at once: for
    /// jobs large enough (batches, the elements of a pass) that a wake-up is cheap beside
    /// them.
    pub(crate) fn new(threads: usize, deterministic: bool) -> Lanes {
        Lanes {
            threads,
            capacity: 2 * threads,
            deterministic,
            wake: 1,
        }
    }

    /// `threads` workers over single elements taken from a sequential input (a parallel
    /// `map` after a `shuffle`, say): room for four jobs each and at least 32 (measured on
    /// 2 cores with jobs of ~20 us: 8 left a third of the throughput in context switches),
    /// results handed over in runs of half that, so that neither the consumer nor the
    /// workers sleep and wake once an element.
    pub(crate) fn elements(threads: usize, deterministic: bool) -> Lanes {
        let capacity = (4 * threads).max(32);
        Lanes {
            threads,
            capacity,
            deterministic,
            wake: capacity / 2,
        }
    }
}

/// The engine: `threads` workers computing `work` on jobs from a source, results handed out
/// by [`ParallelIter::next_output`].
pub(crate) struct ParallelIter<J: Send + 'static, O: Send + 'static> {
    shared: Arc<Shared<J, O>>,
    workers: Vec<JoinHandle<()>>,
    deterministic: bool,
    /// Results taken out of the shared state in one run and not yet handed out, in the
    /// order they go out (one lock for the run, not one a result).
    taken: VecDeque<O>,
}

impl<J: Send + 'static, O: Send + 'static> ParallelIter<J, O> {
    /// Starts `threads` workers. `pending` are results computed before (restored from a
    /// saved state): they are handed out first, as jobs 0, 1, ...
    pub(crate) fn start(
        name: &str,
        jobs: Box<dyn Jobs<J>>,
        work: Work<J, O>,
        lanes: Lanes,
        pending: Vec<O>,
        on_panic: fn(&'static str) -> O,
    ) -> Result<ParallelIter<J, O>> {
        let Lanes {
            threads,
            capacity,
            deterministic,
            wake,
        } = lanes;
        let p = pending.len();
        let shared = Arc::new(Shared {
            source: Mutex::new(Source {
                jobs,
                number: p as u64,
                ended: false,
            }),
            on_panic,
            deterministic,
            state: Mutex::new(Progress {
                outstanding: p,
                finished: if deterministic {
                    VecDeque::new()
                } else {
                    (0..p as u64).collect()
                },
                done: (0..p as u64).zip(pending).collect(),
                next_out: 0,
                total: None,
                handed_out: 0,
                stop: false,
                paused: false,
                waiting_ready: 0,
                waiting_room: 0,
                impatient: false,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            capacity: capacity.max(threads).max(p).max(1),
            wake: wake.clamp(1, capacity.max(1)),
            trace: current_stage().and_then(|(stats, stage)| {
                let trace = stats.trace()?;
                let series = trace.series(format!("{name} buffer (stage {})", stage.unwrap_or(0)));
                Some((Arc::clone(trace), series))
            }),
        });
        let mut it = ParallelIter {
            shared,
            workers: Vec::with_capacity(threads),
            deterministic,
            taken: VecDeque::new(),
        };
        for _ in 0..threads.max(1) {
            let shared = Arc::clone(&it.shared);
            let work = Arc::clone(&work);
            let handle = std::thread::Builder::new()
                .name(format!("npyflow-{name}"))
                .spawn(move || worker(&shared, &work))
                .map_err(|e| Error::Pipeline(format!("{name}: cannot start a thread: {e}")))?;
            it.workers.push(handle);
        }
        Ok(it)
    }

    /// The next result, in job order when deterministic; `None` once every job's result has
    /// been handed out.
    pub(crate) fn next_output(&mut self) -> Option<O> {
        self.next_output_by(None).unwrap_or(None)
    }

    /// [`ParallelIter::next_output`], waiting until `deadline` at most: `Err(Pending)` when
    /// no result was ready by then (nothing is lost: call again).
    pub(crate) fn next_output_by(
        &mut self,
        deadline: Option<Instant>,
    ) -> std::result::Result<Option<O>, Pending> {
        if let Some(item) = self.taken.pop_front() {
            return Ok(Some(item));
        }
        let shared = &self.shared;
        let mut st = lock(&shared.state);
        loop {
            // Every result ready to go out, in order: the run the workers have made.
            loop {
                let pick = if self.deterministic {
                    let n = st.next_out;
                    st.done.contains_key(&n).then_some(n)
                } else {
                    st.finished.pop_front()
                };
                let Some(item) = pick.and_then(|n| st.done.remove(&n)) else {
                    break;
                };
                if self.deterministic {
                    st.next_out += 1;
                }
                st.handed_out += 1;
                st.outstanding -= 1;
                self.taken.push_back(item);
            }
            if let Some(item) = self.taken.pop_front() {
                st.impatient = false;
                shared.sample(&st);
                let wake_room = st.waiting_room > 0;
                drop(st);
                if wake_room {
                    shared.room.notify_all();
                }
                return Ok(Some(item));
            }
            if st.total.is_some_and(|t| st.handed_out >= t) {
                return Ok(None);
            }
            let own = (shared.wake > 1 && !st.impatient).then_some(PATIENCE);
            // The caller's deadline, where it comes before the engine's own patience.
            let (patience, by_deadline) = match deadline {
                None => (own, false),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Pending);
                    }
                    match own {
                        Some(p) if p <= left => (Some(p), false),
                        _ => (Some(left), true),
                    }
                }
            };
            let (next, timed_out) =
                shared.wait(&shared.ready, st, |st| &mut st.waiting_ready, patience);
            st = next;
            if !by_deadline {
                st.impatient |= timed_out;
            }
        }
    }

    /// Pauses the workers until every job taken is finished, then calls `f` with the
    /// source's state and the results not yet handed out, in the order they would be.
    pub(crate) fn save<T>(&self, f: impl FnOnce(State, Vec<&O>) -> Result<T>) -> Result<T> {
        let shared = &self.shared;
        let mut st = lock(&shared.state);
        st.paused = true;
        // Jobs being computed: taken but without a result yet. A worker that found the
        // source ended gives its place back, so this reaches zero.
        while st.in_flight() > 0 && !st.stop {
            st = shared
                .wait(&shared.ready, st, |st| &mut st.waiting_ready, None)
                .0;
        }
        let source = lock(&shared.source);
        let saved = source.jobs.save();
        let mut pending: Vec<&O> = self.taken.iter().collect();
        if self.deterministic {
            pending.extend(st.done.range(st.next_out..).map(|(_, v)| v));
        } else {
            pending.extend(st.finished.iter().filter_map(|n| st.done.get(n)));
        }
        let out = saved.and_then(|s| f(s, pending));
        drop(source);
        st.paused = false;
        shared.room.notify_all();
        out
    }
}

fn worker<J, O>(shared: &Shared<J, O>, work: &Work<J, O>) {
    // Held from a result's delivery to the next job's place: one lock an element.
    let mut st = lock(&shared.state);
    loop {
        while !st.stop && st.total.is_none() && (st.paused || st.outstanding >= shared.capacity) {
            st = shared
                .wait(&shared.room, st, |st| &mut st.waiting_room, None)
                .0;
        }
        if st.stop || st.total.is_some() {
            return;
        }
        st.outstanding += 1;
        shared.sample(&st);
        drop(st);
        let (job, number) = {
            let mut src = lock(&shared.source);
            let number = src.number;
            let job = if src.ended {
                Ok(None)
            } else {
                catch_unwind(AssertUnwindSafe(|| src.jobs.next()))
            };
            match job {
                Ok(Some(job)) => {
                    src.number += 1;
                    (Ok(job), number)
                }
                Ok(None) => {
                    src.ended = true;
                    (Err(false), number)
                }
                Err(_) => {
                    // An error in the panic's place, then the end: a source that panicked
                    // cannot be trusted to go on.
                    src.number += 1;
                    src.ended = true;
                    (Err(true), number)
                }
            }
        };
        let result = match job {
            Ok(job) => match catch_unwind(AssertUnwindSafe(|| work(job))) {
                Ok(r) => r,
                Err(_) => (shared.on_panic)("a worker panicked"),
            },
            Err(true) => (shared.on_panic)("the input panicked"),
            Err(false) => {
                let mut st = lock(&shared.state);
                st.outstanding -= 1;
                st.total = Some(st.total.map_or(number, |t| t.min(number)));
                shared.ready.notify_all();
                shared.room.notify_all();
                return;
            }
        };
        st = lock(&shared.state);
        st.done.insert(number, result);
        if !shared.deterministic {
            st.finished.push_back(number);
        }
        shared.sample(&st);
        if st.waiting_ready > 0 && shared.worth_waking(&st) {
            // Signalled unlocked, so that the consumer does not wake into a held lock.
            drop(st);
            shared.ready.notify_all();
            st = lock(&shared.state);
        }
    }
}

/// The error that stands in for a panicked job, for engines over elements.
pub(crate) fn panic_error(what: &'static str) -> Result<Element> {
    Err(Error::Function(what.to_string()))
}

impl<J: Send + 'static> ElementIter for ParallelIter<J, Result<Element>> {
    fn next(&mut self) -> Option<Result<Element>> {
        self.next_output()
    }
    fn next_by(
        &mut self,
        deadline: Instant,
    ) -> Option<std::result::Result<Option<Result<Element>>, Pending>> {
        Some(self.next_output_by(Some(deadline)))
    }
    fn save(&self) -> Result<State> {
        self.save(|source, pending| {
            let mut s = State::new("Parallel").num(pending.len() as u64);
            for item in pending {
                s = s.item(item)?;
            }
            Ok(s.kid(source))
        })
    }
}

/// Reads a state saved by a [`ParallelIter`] over results: the source's state and the
/// results to hand out first.
pub(crate) fn read_parallel_state(s: State) -> Result<(State, Vec<Result<Element>>)> {
    let mut r = s.reader("Parallel")?;
    let n = r.usize()?;
    let mut pending = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        pending.push(r.item()?);
    }
    let source = r.kid()?;
    r.finish()?;
    Ok((source, pending))
}

impl<J: Send + 'static, O: Send + 'static> Drop for ParallelIter<J, O> {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.room.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
