//! The parallel engine behind `map` and `batch` with `num_parallel_calls`: worker threads take
//! jobs in order, compute them outside any lock, and hand results back in order
//! (deterministic) or as they finish.
//!
//! A job is taken under the source's lock and numbered there, so job *k* always holds the
//! same input whatever the number of threads; the work on it runs in parallel. At most
//! `capacity` jobs are taken and not yet handed out, which bounds memory. Dropping the
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

use super::trace::Trace;
use crate::dataset::context::current_stage;
use crate::dataset::plumbing::ElementIter;
use crate::dataset::state::tree::State;
use crate::element::Element;
use crate::error::{Error, Result};

/// Where jobs come from: called under a lock, in order; `None` when there are no more.
/// Where jobs come from: the input, taken under the engine's lock.
pub(crate) trait Jobs<J>: Send {
    /// The next job, or `None` at the end.
    fn next(&mut self) -> Option<J>;
    /// The source's state, after the jobs it has given.
    fn save(&self) -> Result<State>;
}

pub(crate) type Work<J, O> = Arc<dyn Fn(J) -> O + Send + Sync>;

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
    /// The trace of the pass and this engine's counter series in it, when traced.
    trace: Option<(Arc<Trace>, u32)>,
}

impl<J, O> Shared<J, O> {
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
}

impl Lanes {
    /// `threads` workers with room for two jobs each.
    pub(crate) fn new(threads: usize, deterministic: bool) -> Lanes {
        Lanes {
            threads,
            capacity: 2 * threads,
            deterministic,
        }
    }
}

/// The engine: `threads` workers computing `work` on jobs from a source, results handed out
/// by [`ParallelIter::next_output`].
pub(crate) struct ParallelIter<J: Send + 'static, O: Send + 'static> {
    shared: Arc<Shared<J, O>>,
    workers: Vec<JoinHandle<()>>,
    deterministic: bool,
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
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            capacity: capacity.max(threads).max(p).max(1),
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
        let shared = &self.shared;
        let mut st = lock(&shared.state);
        loop {
            let pick = if self.deterministic {
                let n = st.next_out;
                st.done.contains_key(&n).then_some(n)
            } else {
                st.finished.pop_front()
            };
            if let Some(n) = pick {
                let item = st.done.remove(&n)?;
                if self.deterministic {
                    st.next_out += 1;
                }
                st.handed_out += 1;
                st.outstanding -= 1;
                shared.sample(&st);
                shared.room.notify_one();
                return Some(item);
            }
            if st.total.is_some_and(|t| st.handed_out >= t) {
                return None;
            }
            st = shared
                .ready
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
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
        while st.outstanding > st.done.len() && !st.stop {
            st = shared
                .ready
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let source = lock(&shared.source);
        let saved = source.jobs.save();
        let pending: Vec<&O> = if self.deterministic {
            st.done.range(st.next_out..).map(|(_, v)| v).collect()
        } else {
            st.finished.iter().filter_map(|n| st.done.get(n)).collect()
        };
        let out = saved.and_then(|s| f(s, pending));
        drop(source);
        st.paused = false;
        shared.room.notify_all();
        out
    }
}

fn worker<J, O>(shared: &Shared<J, O>, work: &Work<J, O>) {
    loop {
        {
            let mut st = lock(&shared.state);
            while !st.stop && st.total.is_none() && (st.paused || st.outstanding >= shared.capacity)
            {
                st = shared.room.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            if st.stop || st.total.is_some() {
                return;
            }
            st.outstanding += 1;
            shared.sample(&st);
        }
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
        let mut st = lock(&shared.state);
        st.done.insert(number, result);
        if !shared.deterministic {
            st.finished.push_back(number);
        }
        shared.sample(&st);
        shared.ready.notify_all();
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
