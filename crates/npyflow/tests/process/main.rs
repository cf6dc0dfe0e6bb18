//! Tests that count what the whole process holds (its threads, file descriptors, resident
//! memory), in a binary of their own: in the main test binary (tests/it) other tests would
//! start and stop threads and open files beside them and make the counts flaky.
//!
//! libtest still runs the tests of this binary on threads of one process, so each takes
//! [`whole_process`] first: one at a time, none of them sees another's threads. A test
//! waiting for the lock is a harness thread that exists both when the running test takes
//! its baseline and when it counts again, so it does not change the counts.

use std::sync::{Mutex, MutexGuard};

mod leaks;
mod threads;

/// Held by each test of this binary for its whole run.
pub fn whole_process() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A failed test poisons the lock; the next one still runs.
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
