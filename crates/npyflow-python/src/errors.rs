//! npyflow's errors as Python exceptions, and Python exceptions carried through a pipeline.
//!
//! An exception raised in a user function travels through the core as
//! [`npyflow::Error::Foreign`] holding the `PyErr` itself, and is raised again, the same
//! exception object with its type and traceback, where its element is reached.
//!
//! `KeyboardInterrupt` and `SystemExit` (exceptions that are not `Exception`s) must not be
//! swallowed by `ignore_errors` or dropped with a batch: they are also kept aside as pending,
//! user functions are not called while one is, and the next call into npyflow raises it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use npyflow::Error;
use pyo3::exceptions::{
    PyException, PyIndexError, PyMemoryError, PyOSError, PyRuntimeError, PyStopIteration,
    PyTypeError, PyValueError,
};
use pyo3::prelude::*;

/// An interrupt (a `BaseException` that is not an `Exception`) raised in a user function and
/// not yet raised to the caller.
static PENDING: Mutex<Option<PyErr>> = Mutex::new(None);

fn pending() -> std::sync::MutexGuard<'static, Option<PyErr>> {
    PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Raises the pending interrupt, if any, and forgets it.
pub fn raise_pending(_py: Python<'_>) -> PyResult<()> {
    match pending().take() {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// The pending interrupt, left pending.
fn pending_clone(py: Python<'_>) -> Option<PyErr> {
    pending().as_ref().map(|e| e.clone_ref(py))
}

/// A Python exception as an npyflow error, to travel through the pipeline.
pub fn from_pyerr(py: Python<'_>, err: PyErr) -> Error {
    if !err.is_instance_of::<PyException>(py) {
        let mut slot = pending();
        if slot.is_none() {
            *slot = Some(err.clone_ref(py));
        }
    }
    Error::foreign(err)
}

/// Runs a piece of a user function with Python attached; a Python exception becomes an
/// npyflow error. Nothing runs while an interrupt is pending.
pub fn with_python<T>(
    body: impl for<'py> FnOnce(Python<'py>) -> PyResult<T>,
) -> npyflow::Result<T> {
    crate::gil::keep_thread_state();
    Python::attach(|py| {
        let _nested = crate::gil::Attached::enter();
        if let Some(err) = pending_clone(py) {
            return Err(Error::foreign(err));
        }
        body(py).map_err(|e| from_pyerr(py, e))
    })
}

/// The Python exception for an npyflow error: the user's own exception when it came from
/// a user function, otherwise ValueError, TypeError, IndexError, OSError, ... by kind.
pub fn to_pyerr(py: Python<'_>, err: Error) -> PyErr {
    let message = err.to_string();
    let mut places = Vec::new();
    let mut root = &err;
    while let Error::Context { context, source } = root {
        places.push(context.as_str());
        root = source;
    }
    match root {
        Error::Foreign(inner) => match inner.downcast_ref::<PyErr>() {
            Some(e) => {
                let e = e.clone_ref(py);
                if !places.is_empty() {
                    add_note(py, &e, &format!("npyflow: raised in {}", places.join(": ")));
                }
                if e.is_instance_of::<PyStopIteration>(py) {
                    // Raised from `next()`, it would end the caller's loop as if the data
                    // had ended: a RuntimeError instead, as PEP 479 does for generators.
                    let wrapped = PyRuntimeError::new_err(format!(
                        "a function in the pipeline raised StopIteration ({})",
                        places.join(": ")
                    ));
                    wrapped.set_cause(py, Some(e));
                    return wrapped;
                }
                e
            }
            None => PyRuntimeError::new_err(message),
        },
        Error::InvalidArgument(_)
        | Error::Header(_)
        | Error::Data(_)
        | Error::Zip(_)
        | Error::Pipeline(_) => PyValueError::new_err(message),
        Error::Dtype(_) | Error::DtypeMismatch { .. } => PyTypeError::new_err(message),
        Error::OutOfRange { .. } => PyIndexError::new_err(message),
        Error::Alloc { .. } => PyMemoryError::new_err(message),
        Error::Io { path, source } => match source.raw_os_error() {
            // OSError(errno, strerror, filename) picks the subclass (FileNotFoundError, ...)
            // and prints as Python's own: "[Errno 2] No such file or directory: 'x.npy'".
            // The path is said once (as the filename), and Rust's "(os error 2)" is dropped.
            Some(errno) => {
                let shown = path.display().to_string();
                let mut text: Vec<&str> = places
                    .iter()
                    .copied()
                    .filter(|p| *p != shown.as_str())
                    .collect();
                let reason = npyflow::error::os_words(source);
                text.push(&reason);
                PyOSError::new_err((errno, text.join(": "), shown))
            }
            // Errors of object storage (no errno): the subclass by kind.
            None => match source.kind() {
                std::io::ErrorKind::NotFound => {
                    pyo3::exceptions::PyFileNotFoundError::new_err(message)
                }
                std::io::ErrorKind::PermissionDenied => {
                    pyo3::exceptions::PyPermissionError::new_err(message)
                }
                std::io::ErrorKind::TimedOut => pyo3::exceptions::PyTimeoutError::new_err(message),
                _ => PyOSError::new_err(message),
            },
        },
        _ => PyRuntimeError::new_err(message),
    }
}

/// Adds a note (Python 3.11's `add_note`) saying where in the pipeline the exception came
/// from; nothing on older Pythons.
pub fn add_note(py: Python<'_>, err: &PyErr, note: &str) {
    let value = err.value(py);
    if value.hasattr("add_note").unwrap_or(false) {
        let _ = value.call_method1("add_note", (note,));
    }
}

/// Converts an npyflow result, raising a pending interrupt first.
pub fn core<T>(py: Python<'_>, result: npyflow::Result<T>) -> PyResult<T> {
    raise_pending(py)?;
    result.map_err(|e| to_pyerr(py, e))
}

/// Keeps the exception a user function raised while a transformation looked for its output
/// spec (`map`, `flat_map`, `interleave`: on the first elements of its input; `scan`,
/// `group_by_window`: on placeholder elements), so that the transformation raises the
/// user's own exception rather than the core's summary of it.
#[derive(Clone)]
pub struct Trace {
    active: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<PyErr>>>,
}

impl Trace {
    /// A trace, recording until [`Trace::finish`].
    pub fn start() -> Trace {
        Trace {
            active: Arc::new(AtomicBool::new(true)),
            failure: Arc::new(Mutex::new(None)),
        }
    }

    /// Runs a piece of a user function as [`with_python`] does, keeping its exception while
    /// the trace is active.
    pub fn run<T>(
        &self,
        body: impl for<'py> FnOnce(Python<'py>) -> PyResult<T>,
    ) -> npyflow::Result<T> {
        with_python(|py| {
            let result = body(py);
            if let Err(e) = &result {
                if self.active.load(Ordering::Relaxed) {
                    let mut slot = self
                        .failure
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    slot.get_or_insert_with(|| e.clone_ref(py));
                }
            }
            result
        })
    }

    /// Ends the trace: the transformation's result, with a failure during tracing raised as
    /// the user's own exception, noted with what npyflow was doing.
    pub fn finish<T>(
        &self,
        py: Python<'_>,
        op: &str,
        hint: &str,
        result: npyflow::Result<T>,
    ) -> PyResult<T> {
        self.active.store(false, Ordering::Relaxed);
        let failure = self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match (result, failure) {
            (Ok(v), _) => {
                raise_pending(py)?;
                Ok(v)
            }
            (Err(_), Some(err)) => {
                raise_pending(py)?;
                let how = if matches!(op, "map" | "flat_map" | "interleave") {
                    "on the first elements of its input"
                } else {
                    "on placeholder elements (zeros, then ones)"
                };
                add_note(
                    py,
                    &err,
                    &format!(
                        "npyflow: {op} calls the function {how} to find its output \
                         structure{hint}"
                    ),
                );
                Err(err)
            }
            (Err(e), None) => {
                raise_pending(py)?;
                Err(to_pyerr(py, e))
            }
        }
    }
}
