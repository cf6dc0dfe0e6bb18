//! Python on npyflow's threads: a thread state kept for the thread's life.
//!
//! A thread Python did not start gets a fresh Python thread state each time it attaches and
//! loses it when it detaches, which costs as much as a small function call itself. npyflow's
//! threads (prefetch, the iterator's driver) that run user functions therefore keep theirs
//! from their first call until they end.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    /// How deep this thread is inside `with_python` (attached then: a thread state exists).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Whether Python is shutting down (set from an `atexit` hook): a thread that ends then
/// leaves its thread state to the interpreter's cleanup rather than wait for the GIL.
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// Called by the package's `atexit` hook.
#[pyo3::pyfunction]
#[pyo3(name = "_shutting_down")]
pub fn shutting_down() {
    SHUTTING_DOWN.store(true, Ordering::SeqCst);
}

/// A thread state made for this (non-Python) thread and kept while it lives; the GIL is not
/// held between uses.
struct KeptThreadState {
    tstate: *mut pyo3::ffi::PyThreadState,
    gilstate: pyo3::ffi::PyGILState_STATE,
}

impl Drop for KeptThreadState {
    fn drop(&mut self) {
        // SAFETY: the pair made in `keep_thread_state`, undone on the same thread; skipped
        // once Python is shutting down, when taking the GIL could wait forever.
        unsafe {
            if pyo3::ffi::Py_IsInitialized() != 0 && !SHUTTING_DOWN.load(Ordering::SeqCst) {
                pyo3::ffi::PyEval_RestoreThread(self.tstate);
                pyo3::ffi::PyGILState_Release(self.gilstate);
            }
        }
    }
}

thread_local! {
    static KEPT: RefCell<Option<KeptThreadState>> = const { RefCell::new(None) };
}

fn is_npyflow_thread() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("npyflow"))
}

/// On one of npyflow's own threads, outside any user function, makes the thread's Python
/// thread state once and keeps it, so that later attaches only take the GIL.
pub fn keep_thread_state() {
    if DEPTH.with(Cell::get) > 0 || !is_npyflow_thread() {
        return;
    }
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.is_none() {
            // SAFETY: this thread is not attached (DEPTH is 0 and npyflow's threads attach
            // only through `with_python`); Ensure attaches it with a new thread state and
            // SaveThread releases the GIL, keeping the state.
            unsafe {
                let gilstate = pyo3::ffi::PyGILState_Ensure();
                let tstate = pyo3::ffi::PyEval_SaveThread();
                *kept = Some(KeptThreadState { tstate, gilstate });
            }
        }
    });
}

/// Marks the current thread as attached by `with_python` while alive.
pub struct Attached;

impl Attached {
    pub fn enter() -> Attached {
        DEPTH.with(|d| d.set(d.get() + 1));
        Attached
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}
