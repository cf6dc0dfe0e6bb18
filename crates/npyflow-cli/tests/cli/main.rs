//! The integration tests of the npyflow command, in one binary: a module per subcommand,
//! each running the built `npyflow` binary.

mod bench;
mod inspect;
