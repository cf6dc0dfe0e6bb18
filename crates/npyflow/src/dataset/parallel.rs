//! The parallel engine behind `map` and `batch` with `num_parallel_calls`: worker threads take
//! jobs in order, compute them outside any lock, and hand results back in order
//! (deterministic) or as they finish.
//!
//! A job is taken under the source's lock and numbered there, so job *k* always holds the
//! same input whatever the number of threads; the work on it runs in parallel. At most
//! `capacity` jobs are taken and not yet handed out, which bounds memory. Dropping the
//! iterator stops the workers: each finishes the job it holds and exits, and the drop joins
//! them.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::{ElementIter, AUTOTUNE};
use crate::element::Element;
use crate::error::{Error, Result};

/// The most threads one parallel step starts, whatever `num_parallel_calls` asks.
pub(crate) const MAX_THREADS: usize = 256;

/// The number of threads `num_parallel_calls` asks for: [`AUTOTUNE`] means one per core;
/// at most [`MAX_THREADS`].
pub(crate) fn threads_for(num_parallel_calls: i64) -> usize {
    if num_parallel_calls == AUTOTUNE {
        cores().min(MAX_THREADS)
    } else {
        usize::try_from(num_parallel_calls.max(1))
            .unwrap_or(MAX_THREADS)
            .min(MAX_THREADS)
    }
}

/// The cores this process may use.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Where jobs come from: called under a lock, in order; `None` when there are no more.
pub(crate) type JobSource<J> = Box<dyn FnMut() -> Option<J> + Send>;
/// What a worker does with a job.
pub(crate) type Work<J> = Arc<dyn Fn(J) -> Result<Element> + Send + Sync>;

struct State {
    /// Jobs taken (or being taken) and not yet handed out.
    outstanding: usize,
    /// Results by job number, waiting for their turn.
    done: BTreeMap<u64, Result<Element>>,
    /// Completion order, for the non-deterministic mode.
    finished: VecDeque<u64>,
    /// The next job number to hand out (deterministic mode).
    next_out: u64,
    /// How many jobs there are, once the source has ended.
    total: Option<u64>,
    handed_out: u64,
    stop: bool,
}

struct Shared<J> {
    /// The source, the number of the next job, and whether the source has ended (it is
    /// never called again after its first `None`).
    source: Mutex<(JobSource<J>, u64, bool)>,
    state: Mutex<State>,
    /// Signalled when a result arrives or the source ends.
    ready: Condvar,
    /// Signalled when room frees up or the iterator stops.
    room: Condvar,
    capacity: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A worker that panicked outside a job cannot leave the state half-changed: every
    // change is one assignment. Go on with the data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An iterator whose elements are computed by worker threads.
pub(crate) struct ParallelIter<J: Send + 'static> {
    shared: Arc<Shared<J>>,
    workers: Vec<JoinHandle<()>>,
    deterministic: bool,
}

impl<J: Send + 'static> ParallelIter<J> {
    /// Starts `threads` workers running `work` on the jobs of `source`, at most `capacity`
    /// of them ahead of the consumer.
    pub(crate) fn start(
        name: &str,
        source: JobSource<J>,
        work: Work<J>,
        threads: usize,
        capacity: usize,
        deterministic: bool,
    ) -> Result<ParallelIter<J>> {
        let shared = Arc::new(Shared {
            source: Mutex::new((source, 0, false)),
            state: Mutex::new(State {
                outstanding: 0,
                done: BTreeMap::new(),
                finished: VecDeque::new(),
                next_out: 0,
                total: None,
                handed_out: 0,
                stop: false,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            capacity: capacity.max(threads).max(1),
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
}

fn worker<J>(shared: &Shared<J>, work: &Work<J>) {
    loop {
        {
            let mut st = lock(&shared.state);
            while !st.stop && st.total.is_none() && st.outstanding >= shared.capacity {
                st = shared.room.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            if st.stop || st.total.is_some() {
                return;
            }
            st.outstanding += 1;
        }
        let (job, number) = {
            let mut src = lock(&shared.source);
            let number = src.1;
            let job = if src.2 {
                Ok(None)
            } else {
                catch_unwind(AssertUnwindSafe(|| (src.0)()))
            };
            match job {
                Ok(Some(job)) => {
                    src.1 += 1;
                    (Ok(job), number)
                }
                Ok(None) => {
                    src.2 = true;
                    (Err(None), number)
                }
                Err(_) => {
                    src.1 += 1;
                    (
                        Err(Some(Error::Pipeline("the input panicked".into()))),
                        number,
                    )
                }
            }
        };
        let result = match job {
            Ok(job) => match catch_unwind(AssertUnwindSafe(|| work(job))) {
                Ok(r) => r,
                Err(_) => Err(Error::Function("a worker panicked".into())),
            },
            Err(Some(e)) => Err(e),
            Err(None) => {
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
        st.finished.push_back(number);
        shared.ready.notify_all();
    }
}

impl<J: Send + 'static> ElementIter for ParallelIter<J> {
    fn next(&mut self) -> Option<Result<Element>> {
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
}

impl<J: Send + 'static> Drop for ParallelIter<J> {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.room.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
