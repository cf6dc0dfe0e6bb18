//! The integration tests of the npyflow command, in one binary: a module per subcommand,
//! each running the built `npyflow` binary.

mod bench;
mod inspect;
mod save;
mod trace;
/// The trace checker of npyflow's own tests, so that both check traces one way.
#[path = "../../../npyflow/tests/it/trace_check.rs"]
mod trace_check;
