//! The library half of the `npyflow` command (`src/main.rs` is the command itself): the
//! parser of `npyflow bench --pipeline` specs, reached from the fuzzers (`fuzz/`) as well.
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod spec;
