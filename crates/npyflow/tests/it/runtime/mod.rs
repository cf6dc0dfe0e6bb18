//! The runtime: parallel and fused execution give what sequential execution gives, and
//! workers of a multi-host job read every element once between them.

mod bulk;
mod multihost;
mod parallel;
