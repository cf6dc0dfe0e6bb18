//! # npyflow
//!
//! NumPy data pipelines in Rust.
#![deny(missing_docs)]

pub mod buffer;
pub mod dtype;
pub mod element;
pub mod error;
pub mod format;
pub mod tensor;

pub use buffer::{Buffer, BufferKind, BufferMut, BufferOwner};
pub use dtype::{ByteOrder, DType, DateUnit, TimeUnit};
pub use element::{Element, ElementSpec, PartialShape, TensorSpec};
pub use error::{Error, Result};
pub use tensor::{NativeType, Shape, Tensor};
