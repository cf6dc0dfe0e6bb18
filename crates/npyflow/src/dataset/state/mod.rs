//! Iterator state: what a pass has done, saved as bytes and restored into a fresh pass.
//!
//! Each iterator saves a [`State`]: its tag (the kind of iterator), a few numbers
//! (positions, counters, random generator states), the elements it holds that its input will
//! not give again (a shuffle buffer, results computed ahead), and the states of its inputs.
//! Restoring opens the pipeline with that tree: each node takes its part and opens its inputs
//! with theirs, so nothing is read twice and nothing is skipped.
//!
//! Random-access passes hold no elements: their state is the index of the next element and
//! the (seed, epoch) pairs their random nodes drew when the pass was made, which
//! [`with_draws`] records and replays.
//!
//! - [`tree`]: the [`State`] tree and its reader.
//! - [`random`]: seeds, epochs and recorded draws (and how to write a random node).
//! - [`codec`]: the tree as self-checking bytes; `bytes` encodes the elements it holds.

mod bytes;
pub(crate) mod codec;
pub(crate) mod random;
pub(crate) mod tree;

pub(crate) use random::{observe, shifted, with_draws, Draw, Randomness};
pub(crate) use tree::{mismatch, State, StateReader};
