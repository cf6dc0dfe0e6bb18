//! The integration tests of npyflow, in one binary (one link, one process to run): a module
//! per subject, helpers shared through [`common`]. `cargo test -p npyflow --test it state::`
//! runs one subject.
//!
//! The tests that count the threads, file descriptors or memory of the whole process are in
//! tests/process, a binary of their own: see tests/process/main.rs.

mod common;
mod faults;
mod runtime;
mod semantics;
mod state;
mod trace;
mod trace_check;
