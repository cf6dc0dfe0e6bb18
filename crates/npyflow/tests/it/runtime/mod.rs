//! The runtime: parallel and fused execution give what sequential execution gives, and
//! workers of a multi-host job read every element once between them; autotuning changes
//! threads and buffers, never the output, and keeps to its budgets.

mod autotune;
mod bulk;
mod multihost;
mod parallel;
