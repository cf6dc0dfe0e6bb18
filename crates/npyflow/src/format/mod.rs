//! NumPy's file formats: `.npy` (one array) and `.npz` (a zip of `.npy` files).
//!
//! Reading is strict and cheap: opening a file reads its header only, every size is checked
//! against the file before anything is mapped or allocated, and data that is native-endian,
//! in C order and aligned is memory-mapped rather than copied.

pub mod header;
pub mod npy;
pub mod source;

mod convert;
pub mod zip;
pub mod npz;
