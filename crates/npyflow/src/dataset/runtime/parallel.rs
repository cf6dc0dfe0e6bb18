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
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::cpu_clock::thread_cpu_ns;
use super::probe::Probe;
use super::trace::Trace;
use super::tuner::{BufferRule, Knob, Tuner};
use crate::dataset::context::{current_stage, current_tuner, TunerGuard};
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

/// The bytes a result holds, for the RAM budget and the buffered-bytes figures.
pub(crate) trait Bytes {
    fn bytes(&self) -> u64;
}

fn element_bytes(e: &Result<Element>) -> u64 {
    e.as_ref()
        .map_or(0, |e| e.tensors().iter().map(|t| t.nbytes() as u64).sum())
}

impl Bytes for Result<Element> {
    fn bytes(&self) -> u64 {
        element_bytes(self)
    }
}

impl Bytes for (u64, Result<Element>) {
    fn bytes(&self) -> u64 {
        element_bytes(&self.1)
    }
}

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
    /// Worker threads started.
    spawned: usize,
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
    /// Measures whether all threads beat one job at a time ([`Lanes::measure_gain`]); while
    /// it says one at a time, the workers beyond the first wait on `turn`, holding no job.
    probe: Option<Probe>,
    waiting_turn: usize,
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
    work: Work<J, O>,
    name: String,
    /// The engine's threads and buffer (set by the tuner when it is tuned) and what it
    /// measures.
    knob: Arc<Knob>,
    /// The tuner of the pass, when there is one: it counts the bytes held, and worker
    /// threads make it current so that the engines they open report to it.
    tuner: Option<Arc<Tuner>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    /// Tuned by the tuner: it also keeps to the RAM budget (see [`Tuner::over_ram`]).
    tuned: bool,
    /// The result that stands in for a job whose source or work panicked.
    on_panic: fn(&'static str) -> O,
    /// Whether results go out in job order; otherwise as they finish, from `finished`.
    deterministic: bool,
    state: Mutex<Progress<O>>,
    ready: Condvar,
    room: Condvar,
    /// Where workers held back by the probe wait (apart from `room`, so that a consumer
    /// making room does not wake them for nothing).
    turn: Condvar,
    /// Whether a waiting consumer is woken for runs of results, half the buffer long (see
    /// [`Lanes::wake`]), rather than for each.
    runs: bool,
    /// The trace of the pass and this engine's counter series in it, when traced.
    trace: Option<(Arc<Trace>, u32)>,
}

impl<J, O> Shared<J, O> {
    /// The most jobs taken and not yet handed out.
    fn capacity(&self) -> usize {
        self.knob.buffer().max(1)
    }

    /// Wakes every waiting worker: after a change every one of them must see (the engine
    /// stopping or pausing, the source ended, new settings).
    fn wake_workers(&self) {
        self.room.notify_all();
        self.turn.notify_all();
    }

    /// Whether a tuned engine holding a result waits for its consumer to take it before it
    /// starts another job: the pass holds its RAM budget.
    fn over_ram(&self, st: &Progress<O>) -> bool {
        self.tuned && !st.done.is_empty() && self.tuner.as_ref().is_some_and(|t| t.over_ram())
    }

    /// How many results a waiting consumer is woken for.
    fn wake(&self) -> usize {
        if self.runs {
            (self.capacity() / 2).max(1)
        } else {
            1
        }
    }

    /// Whether the threads waiting on `ready` have something to do: a run of `wake` results
    /// ready to go out (in order when deterministic; one for an impatient consumer), the
    /// source ended, or a save waiting for the last job in flight.
    fn worth_waking(&self, st: &Progress<O>) -> bool {
        if st.total.is_some() || (st.paused && st.in_flight() == 0) {
            return true;
        }
        let run = if st.impatient { 1 } else { self.wake() };
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
                self.knob.running(),
                self.knob.buffer(),
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
    /// The stage is `AUTOTUNE`: under a pass's tuner, its threads (up to the CPU budget) and
    /// buffer are set while it runs, starting from the CPU budget's threads; `threads` is what it runs
    /// where no tuner is (a pass opened outside an iterator).
    pub(crate) autotune: bool,
    /// Only the buffer is tuned (a prefetch: one worker).
    pub(crate) buffer_only: bool,
    /// The stage is `AUTOTUNE` over work that may hold a lock (a Python function): whether
    /// its threads beat one job at a time is measured while it runs, and it runs one at a
    /// time unless they clearly do (see [`Parallelism::measure_gain`](crate::dataset::parallelism::Parallelism::measure_gain)).
    pub(crate) measure_gain: bool,
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
            autotune: false,
            buffer_only: false,
            measure_gain: false,
        }
    }

    /// The same, run as `parallelism` asks: tuned when it is `AUTOTUNE`, measuring the gain
    /// of its threads when it says so.
    pub(crate) fn run_as(self, parallelism: crate::dataset::parallelism::Parallelism) -> Lanes {
        Lanes {
            autotune: parallelism.is_autotune(),
            measure_gain: parallelism.is_gain_measured(),
            ..self
        }
    }

    /// How the buffer follows the threads.
    fn rule(&self) -> BufferRule {
        if self.buffer_only {
            return BufferRule {
                per_thread: 0,
                floor: self.capacity,
            };
        }
        if self.wake > 1 {
            BufferRule {
                per_thread: 4,
                floor: 32,
            }
        } else {
            BufferRule {
                per_thread: 2,
                floor: 0,
            }
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
            autotune: false,
            buffer_only: false,
            measure_gain: false,
        }
    }
}

/// The engine: `threads` workers computing `work` on jobs from a source, results handed out
/// by [`ParallelIter::next_output`].
pub(crate) struct ParallelIter<J: Send + 'static, O: Bytes + Send + 'static> {
    shared: Arc<Shared<J, O>>,
    deterministic: bool,
    /// Results taken out of the shared state in one run and not yet handed out, in the
    /// order they go out (one lock for the run, not one a result).
    taken: VecDeque<O>,
}

/// `name` with its first letter in upper case: `map` -> `Map`.
fn stage_name(name: &str) -> String {
    let mut c = name.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

impl<J: Send + 'static, O: Bytes + Send + 'static> ParallelIter<J, O> {
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
        let p = pending.len();
        let tuner = current_tuner();
        let tuned = lanes.autotune && tuner.as_ref().is_some_and(|t| t.enabled());
        let threads = match &tuner {
            // Tuned or not, an AUTOTUNE stage starts with the CPU budget's threads, as
            // tf.data starts its autotuned parallelism at the cores: a stage that needs them
            // has them from its first element (a short pass is over before a stage grown
            // from one thread would reach them), and the tuner takes back what stays idle.
            Some(t) if lanes.autotune && !lanes.buffer_only => t.cpu_budget(),
            _ => lanes.threads,
        }
        .max(1);
        let rule = lanes.rule();
        let buffer = if lanes.autotune && !lanes.buffer_only {
            rule.for_threads(threads)
        } else {
            lanes.capacity.max(threads)
        }
        .max(p)
        .max(1);
        let label = match (&tuner, tuned) {
            (Some(t), true) => format!("{} #{}", stage_name(name), t.next_number()),
            _ => stage_name(name),
        };
        let max_threads = match (&tuner, tuned && !lanes.buffer_only) {
            (Some(t), true) => t.cpu_budget(),
            _ => 0,
        };
        let knob = Arc::new(Knob::new(label, threads, buffer, max_threads, rule));
        let held: u64 = pending.iter().map(Bytes::bytes).sum();
        knob.buffered.store(held, Ordering::Relaxed);
        if let Some(t) = &tuner {
            t.hold(held, 0);
        }
        let deterministic = lanes.deterministic;
        let shared = Arc::new(Shared {
            source: Mutex::new(Source {
                jobs,
                number: p as u64,
                ended: false,
            }),
            work,
            name: name.to_string(),
            knob: Arc::clone(&knob),
            tuner: tuner.clone(),
            handles: Mutex::new(Vec::new()),
            tuned,
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
                spawned: 0,
                stop: false,
                paused: false,
                waiting_ready: 0,
                waiting_room: 0,
                impatient: false,
                probe: (lanes.autotune && lanes.measure_gain).then(|| Probe::new(Instant::now())),
                waiting_turn: 0,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            turn: Condvar::new(),
            runs: lanes.wake > 1,
            trace: current_stage().and_then(|(stats, stage)| {
                let trace = stats.trace()?;
                let series = trace.series(format!("{name} buffer (stage {})", stage.unwrap_or(0)));
                Some((Arc::clone(trace), series))
            }),
        });
        let it = ParallelIter {
            shared,
            deterministic,
            taken: VecDeque::new(),
        };
        grow(&it.shared)?;
        if tuned {
            let weak: Weak<Shared<J, O>> = Arc::downgrade(&it.shared);
            knob.on_change(Box::new(move || {
                if let Some(shared) = weak.upgrade() {
                    // A thread that cannot start leaves the engine with those it has.
                    let _ = grow(&shared);
                    shared.wake_workers();
                    shared.ready.notify_all();
                }
            }));
            if let Some(t) = &tuner {
                t.register(&knob);
            }
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
            self.release(&item);
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
                self.release(&item);
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
            let own = (shared.wake() > 1 && !st.impatient).then_some(PATIENCE);
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
            let began = Instant::now();
            let (next, timed_out) =
                shared.wait(&shared.ready, st, |st| &mut st.waiting_ready, patience);
            let knob = &shared.knob;
            knob.wait_ns
                .fetch_add(nanos(began.elapsed()), Ordering::Relaxed);
            knob.empty.fetch_add(1, Ordering::Relaxed);
            st = next;
            if !by_deadline {
                st.impatient |= timed_out;
            }
        }
    }

    /// Counts a result handed out as no longer held.
    fn release(&self, item: &O) {
        let b = item.bytes();
        self.shared.knob.buffered.fetch_sub(b, Ordering::Relaxed);
        if let Some(t) = &self.shared.tuner {
            t.hold(0, b);
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
        shared.wake_workers();
        out
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

thread_local! {
    /// Time this thread spent waiting for results of engines, in ns: a worker's time in its
    /// source or its work less this is the CPU it used there (a map's workers wait in their
    /// source for the map before them, which the tuner must not count as CPU).
    static WAITED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn waited() -> u64 {
    WAITED.with(std::cell::Cell::get)
}

/// The time since `began` less what this thread waited for engines since `waited_then`.
fn busy_since(began: Instant, waited_then: u64) -> u64 {
    nanos(began.elapsed()).saturating_sub(waited().saturating_sub(waited_then))
}

/// Starts the worker threads the engine's knob asks for and it lacks.
fn grow<J: Send + 'static, O: Bytes + Send + 'static>(shared: &Arc<Shared<J, O>>) -> Result<()> {
    let mut st = lock(&shared.state);
    while !st.stop && st.spawned < shared.knob.threads() {
        let me = Arc::clone(shared);
        let handle = std::thread::Builder::new()
            .name(format!("npyflow-{}", shared.name))
            .spawn(move || worker(&me))
            .map_err(|e| Error::Pipeline(format!("{}: cannot start a thread: {e}", shared.name)))?;
        st.spawned += 1;
        lock(&shared.handles).push(handle);
    }
    Ok(())
}

/// A worker's CPU time, published into its knob at most once a millisecond (the clock
/// costs a system call).
struct CpuMeter {
    last: Option<u64>,
    at: Instant,
}

impl CpuMeter {
    fn new() -> CpuMeter {
        CpuMeter {
            last: thread_cpu_ns(),
            at: Instant::now(),
        }
    }

    fn publish(&mut self, knob: &Knob, force: bool) {
        if !force && self.at.elapsed() < Duration::from_millis(1) {
            return;
        }
        self.at = Instant::now();
        if let (Some(last), Some(now)) = (self.last, thread_cpu_ns()) {
            knob.cpu_ns
                .fetch_add(now.saturating_sub(last), Ordering::Relaxed);
            self.last = Some(now);
        }
    }
}

fn worker<J, O: Bytes>(shared: &Shared<J, O>) {
    let _tuner = shared.tuner.as_ref().map(TunerGuard::enter);
    let knob = &shared.knob;
    let mut meter = CpuMeter::new();
    work_loop(shared, &mut meter);
    meter.publish(knob, true);
}

fn work_loop<J, O: Bytes>(shared: &Shared<J, O>, meter: &mut CpuMeter) {
    let knob = &shared.knob;
    // Held from a result's delivery to the next job's place: one lock an element.
    let mut st = lock(&shared.state);
    loop {
        meter.publish(knob, false);
        loop {
            if st.stop || st.total.is_some() {
                return;
            }
            if st.paused
                || st.outstanding >= shared.capacity()
                || st.in_flight() >= knob.threads()
                || shared.over_ram(&st)
            {
                let full = !st.paused && st.outstanding >= shared.capacity();
                let began = full.then(Instant::now);
                st = shared
                    .wait(&shared.room, st, |st| &mut st.waiting_room, None)
                    .0;
                if let Some(b) = began {
                    knob.full_ns
                        .fetch_add(nanos(b.elapsed()), Ordering::Relaxed);
                }
            } else if st.in_flight() >= 1 && st.probe.as_ref().is_some_and(Probe::one_at_a_time) {
                // Held back before taking a job: the worker that runs goes on from job to
                // job, and this one sleeps until the probe lets all threads run.
                st = shared
                    .wait(&shared.turn, st, |st| &mut st.waiting_turn, None)
                    .0;
            } else {
                break;
            }
        }
        st.outstanding += 1;
        shared.sample(&st);
        drop(st);
        let waited_then = waited();
        let (job, number, began) = {
            let mut src = lock(&shared.source);
            // Timed from here: waiting for the lock is not CPU.
            let began = Instant::now();
            let number = src.number;
            let job = if src.ended {
                Ok(None)
            } else {
                catch_unwind(AssertUnwindSafe(|| src.jobs.next()))
            };
            match job {
                Ok(Some(job)) => {
                    src.number += 1;
                    (Ok(job), number, began)
                }
                Ok(None) => {
                    src.ended = true;
                    (Err(false), number, began)
                }
                Err(_) => {
                    // An error in the panic's place, then the end: a source that panicked
                    // cannot be trusted to go on.
                    src.number += 1;
                    src.ended = true;
                    (Err(true), number, began)
                }
            }
        };
        knob.source_ns
            .fetch_add(busy_since(began, waited_then), Ordering::Relaxed);
        let sourced = Instant::now();
        let waited_then = waited();
        let result = match job {
            Ok(job) => match catch_unwind(AssertUnwindSafe(|| (shared.work)(job))) {
                Ok(r) => r,
                Err(_) => (shared.on_panic)("a worker panicked"),
            },
            Err(true) => (shared.on_panic)("the input panicked"),
            Err(false) => {
                let mut st = lock(&shared.state);
                st.outstanding -= 1;
                st.total = Some(st.total.map_or(number, |t| t.min(number)));
                shared.ready.notify_all();
                shared.wake_workers();
                return;
            }
        };
        knob.work_ns
            .fetch_add(busy_since(sourced, waited_then), Ordering::Relaxed);
        let b = result.bytes();
        knob.results.fetch_add(1, Ordering::Relaxed);
        knob.result_bytes.fetch_add(b, Ordering::Relaxed);
        knob.buffered.fetch_add(b, Ordering::Relaxed);
        if let Some(t) = &shared.tuner {
            t.hold(b, 0);
        }
        st = lock(&shared.state);
        st.done.insert(number, result);
        if !shared.deterministic {
            st.finished.push_back(number);
        }
        if st.probe.is_some() {
            probe_finished(shared, &mut st);
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

/// Counts a finished job in the engine's probe; wakes the held-back workers when it lets all
/// threads run, and tells the tuner what it measured.
fn probe_finished<J, O>(shared: &Shared<J, O>, st: &mut Progress<O>) {
    let Some(probe) = st.probe.as_mut() else {
        return;
    };
    let was_one = probe.one_at_a_time();
    let verdict = probe.finished(Instant::now());
    let one = probe.one_at_a_time();
    shared.knob.one_at_a_time.store(one, Ordering::Relaxed);
    if was_one && !one && st.waiting_turn > 0 {
        shared.turn.notify_all();
    }
    if let (Some(v), Some(tuner), true) = (verdict, &shared.tuner, shared.tuned) {
        let why = if v.all {
            "threads measured faster"
        } else {
            "threads measured no faster"
        };
        tuner.record(&shared.knob, why);
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

impl<J: Send + 'static, O: Bytes + Send + 'static> Drop for ParallelIter<J, O> {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.wake_workers();
        // No thread starts once `stop` is set (see `grow`): these are all of them.
        let handles = std::mem::take(&mut *lock(&self.shared.handles));
        for w in handles {
            let _ = w.join();
        }
        // What the engine held leaves the pass's buffers with it.
        if let Some(t) = &self.shared.tuner {
            t.hold(0, self.shared.knob.buffered.swap(0, Ordering::Relaxed));
        }
    }
}
