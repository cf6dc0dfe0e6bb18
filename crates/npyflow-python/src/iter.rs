//! Iterating a dataset from Python.
//!
//! A pass runs with Python detached: the core works without the GIL, and a user function
//! takes it only while it runs. Where the pipeline has no threads of its own, the pass runs
//! on the caller's thread (the cheapest way); a Ctrl-C there reaches the next user function,
//! or `next()` as soon as it returns. Where it has threads (`prefetch`), `next()` may wait
//! for them, so the pass is driven from a thread of its own while the caller waits in short
//! slices and checks for signals between them: Ctrl-C interrupts the wait, and the element
//! being made is the next one returned. Dropping the iterator stops the driver thread after
//! its current element, and with it the pipeline's threads.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use npyflow::dataset::DatasetIter;
use npyflow::{Dataset, Element};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::convert::{element_to_py, Scalars};
use crate::errors::{raise_pending, to_pyerr};

/// How often a caller waiting for a driven pass checks for signals.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

type Item = Option<npyflow::Result<Element>>;

/// A pass driven from its own thread.
struct Driver {
    requests: SyncSender<()>,
    items: Receiver<Item>,
    /// A request was sent whose item has not been received yet (an interrupted wait).
    waiting: bool,
}

impl Driver {
    fn start(dataset: &Dataset) -> PyResult<Driver> {
        let (requests, request_rx) = sync_channel::<()>(1);
        let (item_tx, items) = sync_channel::<Item>(1);
        let dataset = dataset.clone();
        thread::Builder::new()
            .name("npyflow-iter".into())
            .spawn(move || {
                let mut pass = dataset.iter();
                while request_rx.recv().is_ok() {
                    let item = pass.next();
                    let end = item.is_none();
                    if item_tx.send(item).is_err() || end {
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
        if !self.waiting {
            if self.requests.send(()).is_err() {
                return Ok(None);
            }
            self.waiting = true;
        }
        loop {
            let items = &mut self.items;
            match py.detach(move || items.recv_timeout(SIGNAL_CHECK)) {
                Ok(item) => {
                    self.waiting = false;
                    return Ok(item);
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
}

enum State {
    Inline(DatasetIter),
    Driven(Driver),
    Done,
}

/// An iterator over a dataset's elements, as NumPy arrays (NumPy scalars for 0-d tensors),
/// tuples and dicts.
#[pyclass(frozen, module = "npyflow._npyflow", name = "DatasetIterator")]
pub struct DatasetIterator {
    state: Mutex<State>,
}

impl DatasetIterator {
    pub fn new(dataset: &Dataset, threaded: bool) -> PyResult<DatasetIterator> {
        // Python code (faulthandler.enable()) may have put its SIGBUS handler in front of
        // the one that turns a truncated memory-mapped file into an error.
        npyflow::format::mapguard::restore_handler();
        let state = if threaded {
            State::Driven(Driver::start(dataset)?)
        } else {
            State::Inline(dataset.iter())
        };
        Ok(DatasetIterator {
            state: Mutex::new(state),
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
        if let State::Inline(pass) = state {
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
        let mut state = self.state.try_lock().map_err(|_| {
            PyRuntimeError::new_err("the iterator is already running (in another thread)")
        })?;
        let item = match &mut *state {
            State::Done => None,
            State::Inline(pass) => py.detach(|| pass.next()),
            State::Driven(driver) => driver.next(py)?,
        };
        raise_pending(py)?;
        match item {
            None => {
                *state = State::Done;
                Ok(None)
            }
            Some(Err(e)) => Err(to_pyerr(py, e)),
            Some(Ok(e)) => element_to_py(py, e, Scalars::Numpy).map(Some),
        }
    }
}
