//! The integration tests of npyflow-format, in one binary (one link, one process to run):
//! a module per subject, helpers shared through [`common`].

mod common;
mod fixtures;
mod fuzz_regressions;
mod header_props;
mod interop;
mod malformed;
mod mapped_faults;
mod storage;
