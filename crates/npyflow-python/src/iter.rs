//! Iterating a dataset from Python.
//!
//! A pass runs with Python detached: the core works without the GIL, and a user function
//! takes it only while it runs. Where the pipeline has no threads of its own, the pass runs
//! on the caller's thread (the cheapest way); a Ctrl-C there reaches the next user function,
//! or `next()` as soon as it returns. Where it has threads (`prefetch`), `next()` may wait
//! for them: when the pipeline ends with a stage that can wait with a deadline (a
//! `prefetch`, the usual last stage), the caller waits in short slices on its own thread and
//! checks for signals between them; otherwise the pass is driven from a thread of its own
//! while the caller waits so. Either way Ctrl-C interrupts the wait, and the element being
//! made is the next one returned. (Waiting on the caller's thread saves two thread hand-offs
//! an element.) Dropping the iterator stops the driver thread after its current element,
//! and with it the pipeline's threads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::thread;
use std::time::{Duration, Instant};

use npyflow::dataset::{DatasetIter, Wait};
use npyflow::{Dataset, Element};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert::{element_to_py, Scalars};
use crate::errors::{raise_pending, to_pyerr};

/// How often a caller waiting for a driven pass checks for signals.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

type Item = Option<npyflow::Result<Element>>;

/// What the caller asks a driven pass for.
enum Request {
    Next,
    GetState,
    SetState(Vec<u8>),
}

/// What a driven pass answers.
enum Reply {
    Item(Item),
    State(npyflow::Result<Vec<u8>>),
    Restored(npyflow::Result<()>),
}

/// A pass driven from its own thread.
struct Driver {
    requests: SyncSender<Request>,
    items: Receiver<Reply>,
    /// A request was sent whose item has not been received yet (an interrupted wait).
    waiting: bool,
}

impl Driver {
    /// Drives `pass` from a new thread.
    fn start(mut pass: DatasetIter) -> PyResult<Driver> {
        let (requests, request_rx) = sync_channel::<Request>(1);
        let (item_tx, items) = sync_channel::<Reply>(1);
        thread::Builder::new()
            .name("npyflow-iter".into())
            .spawn(move || {
                while let Ok(request) = request_rx.recv() {
                    let reply = match request {
                        Request::Next => Reply::Item(pass.next()),
                        Request::GetState => Reply::State(pass.get_state()),
                        Request::SetState(state) => Reply::Restored(pass.set_state(&state)),
                    };
                    if item_tx.send(reply).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start a thread: {e}")))?;
        Ok(Driver {
            requests,
            items,
            waiting: false,
        })
    }

    fn next(&mut self, py: Python<'_>) -> PyResult<Item> {
        match self.ask(py, Request::Next)? {
            Some(Reply::Item(item)) => Ok(item),
            Some(_) => Err(PyRuntimeError::new_err("the pass answered out of turn")),
            None => Ok(None),
        }
    }

    /// Sends `request` (unless an interrupted one is still being answered) and waits for the
    /// reply, checking for signals; `None` once the pass's thread has ended.
    fn ask(&mut self, py: Python<'_>, request: Request) -> PyResult<Option<Reply>> {
        if !self.waiting {
            if self.requests.send(request).is_err() {
                return Ok(None);
            }
            self.waiting = true;
        }
        loop {
            let items = &mut self.items;
            match py.detach(move || items.recv_timeout(SIGNAL_CHECK)) {
                Ok(reply) => {
                    self.waiting = false;
                    return Ok(Some(reply));
                }
                Err(RecvTimeoutError::Timeout) => {
                    py.check_signals()?;
                    raise_pending(py)?;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.waiting = false;
                    return Ok(None);
                }
            }
        }
    }

    /// Asks for the state or a restore. An interrupted `next()` still being made would be
    /// lost (or wrongly counted), so it must be taken first.
    fn control(&mut self, py: Python<'_>, request: Request) -> PyResult<Reply> {
        if self.waiting {
            return Err(PyRuntimeError::new_err(
                "an interrupted next() is still making its element: call next() first",
            ));
        }
        self.ask(py, request)?
            .ok_or_else(|| PyRuntimeError::new_err("the iterator's thread has ended"))
    }
}

enum State {
    Inline(DatasetIter),
    /// A pass with threads, run on the caller's thread while its last stage can wait with a
    /// deadline (a `prefetch`): the caller waits in slices and checks for signals between
    /// them, with no thread of its own in between.
    Polled(DatasetIter),
    Driven(Driver),
    Done,
}

/// An iterator over a dataset's elements, as NumPy arrays (NumPy scalars for 0-d tensors),
/// tuples and dicts; as `npyflow.Tensor`s and scalars with `.numpy()` when made with
/// [`Scalars::Tensors`]. `get_state()` saves its position as bytes, and `set_state(bytes)` on a
/// new iterator of the same pipeline (in a restarted program too) continues from it.
#[pyclass(frozen, module = "npyflow._npyflow", name = "DatasetIterator")]
pub struct DatasetIterator {
    state: Mutex<State>,
    /// The thread that holds `state` (a number of [`thread_number`]; 0: none), to tell a
    /// call from another thread, which waits its turn, from one made inside the pipeline
    /// on the holding thread, which would wait for itself.
    holder: AtomicU64,
    scalars: Scalars,
}

/// A number for the calling thread, unique in the process and never 0.
fn thread_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static NUMBER: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|n| *n)
}

/// The iterator's state, held by one thread; the holder is cleared on drop.
struct Held<'a> {
    guard: MutexGuard<'a, State>,
    holder: &'a AtomicU64,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.holder.store(0, Ordering::Release);
    }
}

impl std::ops::Deref for Held<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.guard
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.guard
    }
}

impl DatasetIterator {
    pub fn new(dataset: &Dataset, threaded: bool, scalars: Scalars) -> PyResult<DatasetIterator> {
        // Python code (faulthandler.enable()) may have put its SIGBUS handler in front of
        // the one that turns a truncated memory-mapped file into an error.
        npyflow::format::guard::restore_handler();
        let state = if threaded {
            State::Polled(dataset.iter())
        } else {
            State::Inline(dataset.iter())
        };
        Ok(DatasetIterator {
            state: Mutex::new(state),
            holder: AtomicU64::new(0),
            scalars,
        })
    }
}

impl Drop for DatasetIterator {
    /// A pass run on the caller's thread is dropped with Python detached: stopping it may
    /// wait for threads of the pipeline, which may be waiting for the GIL.
    fn drop(&mut self) {
        let state = self
            .state
            .get_mut()
            .map(|s| std::mem::replace(s, State::Done))
            .unwrap_or(State::Done);
        if let State::Inline(pass) | State::Polled(pass) = state {
            Python::attach(|py| py.detach(move || drop(pass)));
        }
    }
}

#[pymethods]
impl DatasetIterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let mut state = self.lock(py)?;
        let item = match &mut *state {
            State::Done => None,
            State::Inline(pass) => py.detach(|| pass.next()),
            State::Polled(pass) => match poll(py, pass)? {
                Some(item) => item,
                None => {
                    // The last stage cannot wait with a deadline: drive the pass from a
                    // thread of its own, so that a wait for it can be interrupted.
                    let State::Polled(pass) = std::mem::replace(&mut *state, State::Done) else {
                        unreachable!("matched above")
                    };
                    let mut driver = Driver::start(pass)?;
                    let item = driver.next(py);
                    *state = State::Driven(driver);
                    item?
                }
            },
            State::Driven(driver) => driver.next(py)?,
        };
        raise_pending(py)?;
        match item {
            // The pass stays (ended), so that its state can still be taken: a checkpoint at
            // the end of an epoch restores as an ended iterator.
            None => Ok(None),
            Some(Err(e)) => Err(to_pyerr(py, e)),
            Some(Ok(e)) => element_to_py(py, e, self.scalars).map(Some),
        }
    }

    /// The iterator's position as bytes: `set_state` on a new iterator of the same pipeline
    /// (in this process or a restarted one) continues exactly from here.
    fn get_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut state = self.lock(py)?;
        let saved = match &mut *state {
            State::Inline(pass) | State::Polled(pass) => py.detach(|| pass.get_state()),
            State::Driven(driver) => match driver.control(py, Request::GetState)? {
                Reply::State(s) => s,
                _ => return Err(PyRuntimeError::new_err("the pass answered out of turn")),
            },
            State::Done => return Err(PyRuntimeError::new_err("the iterator has been closed")),
        };
        let bytes = saved.map_err(|e| to_pyerr(py, e))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Continues from `state`, bytes from `get_state` of an iterator over this pipeline.
    /// A state from another pipeline raises ValueError and leaves the iterator as it was.
    fn set_state(&self, py: Python<'_>, state: &[u8]) -> PyResult<()> {
        let bytes = state.to_vec();
        let mut guard = self.lock(py)?;
        let restored = match &mut *guard {
            State::Inline(pass) | State::Polled(pass) => py.detach(|| pass.set_state(&bytes)),
            State::Driven(driver) => match driver.control(py, Request::SetState(bytes))? {
                Reply::Restored(r) => r,
                _ => return Err(PyRuntimeError::new_err("the pass answered out of turn")),
            },
            State::Done => return Err(PyRuntimeError::new_err("the iterator has been closed")),
        };
        raise_pending(py)?;
        restored.map_err(|e| to_pyerr(py, e))
    }
}

/// The next item of a pass whose last stage waits with a deadline: waits in slices of
/// [`SIGNAL_CHECK`] without the GIL, checking for signals between them (a Ctrl-C raises
/// KeyboardInterrupt, and the element being made is the next one returned). `None`: the
/// pass cannot wait so (nothing was read).
fn poll(py: Python<'_>, pass: &mut DatasetIter) -> PyResult<Option<Item>> {
    loop {
        match py.detach(|| pass.next_by(Instant::now() + SIGNAL_CHECK)) {
            Ok(item) => return Ok(Some(item)),
            Err(Wait::Unsupported) => return Ok(None),
            Err(Wait::Pending) => {
                py.check_signals()?;
                raise_pending(py)?;
            }
        }
    }
}

impl DatasetIterator {
    /// The iterator's state, for this thread alone. Calls from several threads take turns,
    /// as with tf.data's iterators, which are safe to share: a thread waits (without the
    /// GIL, and interruptible by Ctrl-C) while another one's `next()` runs. A call from
    /// inside the pipeline on the thread that is running it (a map function calling
    /// `next()` on the iterator that runs it) would wait for itself: RuntimeError.
    fn lock(&self, py: Python<'_>) -> PyResult<Held<'_>> {
        let me = thread_number();
        loop {
            let guard = match self.state.try_lock() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(guard) = guard {
                self.holder.store(me, Ordering::Release);
                return Ok(Held {
                    guard,
                    holder: &self.holder,
                });
            }
            if self.holder.load(Ordering::Acquire) == me {
                return Err(PyRuntimeError::new_err(
                    "the iterator is already running on this thread: a function of its own \
                     pipeline cannot call next() on it",
                ));
            }
            // Wait for the holder without the GIL (it may need the GIL to finish), then
            // take a turn with the GIL held.
            let state = &self.state;
            py.detach(|| drop(state.lock()));
            py.check_signals()?;
        }
    }
}
