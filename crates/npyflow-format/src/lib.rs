//! # npyflow-format
//!
//! NumPy's `.npy` and `.npz` files in Rust, read strictly and without copying, and the
//! tensor model they are read into. The file layer of [npyflow](https://example.invalid/npyflow),
//! usable on its own: it has no dataset layer and no Python.
//!
//! Reading an array costs no copy when its data can be used in place (native byte order,
//! C order, aligned): the [`Tensor`] is a window onto the memory-mapped file, and slicing
//! it along its first axis is O(1). Opening a file reads its header only, and every size
//! is checked against the file before anything is mapped or allocated.
//!
//! ```
//! use npyflow_format::{read_npy, write_npy, DType, Tensor};
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("images.npy");
//!
//! // 10 images of 3x3 pixels with 3 channels.
//! let images = Tensor::from_vec((0..270).map(|i| (i % 256) as u8).collect(), &[10, 3, 3, 3])?;
//! write_npy(&path, &images)?;
//!
//! let mapped = read_npy(&path)?; // header read, data mapped: no copy
//! assert_eq!(mapped.dtype(), DType::UInt8);
//! assert!(npyflow_format::npy::is_mapped(&mapped));
//! let batch = mapped.slice_rows(0..2)?; // O(1): a window onto the same map
//! assert_eq!(batch.shape(), &[2, 3, 3, 3]);
//! assert_eq!(batch.view::<u8>()?[..3], [0, 1, 2]);
//! # Ok::<(), npyflow_format::Error>(())
//! ```
//!
//! An `.npz` is a zip of `.npy` members, as `np.savez` writes it. Stored (uncompressed)
//! members are mapped in place too; deflated ones are inflated on load.
//!
//! ```
//! use npyflow_format::{Compression, NpzArchive, NpzWriter, Tensor};
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("data.npz");
//! let x = Tensor::from_vec((0..12).map(|i| i as f32).collect(), &[4, 3])?;
//! let y = Tensor::from_vec((0..4i64).collect(), &[4])?;
//! let mut w = NpzWriter::create(&path)?;
//! w.add("x", &x, Compression::Stored)?;
//! w.add("y", &y, Compression::Deflated)?;
//! w.finish()?;
//!
//! let npz = NpzArchive::open(&path)?; // directory and member headers read, no data
//! assert_eq!(npz.keys().collect::<Vec<_>>(), ["x", "y"]);
//! assert_eq!(npz.member("x")?.header.shape, [4, 3]);
//! assert_eq!(npz.load("y")?.view::<i64>()?[3], 3);
//! # Ok::<(), npyflow_format::Error>(())
//! ```
//!
//! A file's kind is told by its first bytes, as `np.load` does, and its header can be read
//! without the data:
//!
//! ```
//! use npyflow_format::{npy::NpyFile, write_npy, FileKind, Tensor};
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("x.dat");
//! write_npy(&path, &Tensor::from_vec(vec![1.5f64, 2.5], &[2])?)?;
//! assert_eq!(FileKind::detect(&path)?, FileKind::Npy);
//! let f = NpyFile::open(&path)?;
//! assert_eq!(f.header().descr(), "<f8");
//! assert_eq!(f.header().shape, [2]);
//! # Ok::<(), npyflow_format::Error>(())
//! ```
//!
//! ## Modules
//! - [`npy`]: reading and writing one array (`.npy`), mapped when it can be.
//! - [`npz`]: archives of named arrays (`.npz`), stored or deflated.
//! - [`header`]: the `.npy` header: [`NpyHeader`], its versions, its parsing and encoding.
//! - [`storage`]: objects by URL (`s3://`, `gs://`, `az://`, `http(s)://`, `file://`): ranged
//!   reads, listing, atomic writes; [`RemoteNpy`] reads a `.npy` by range.
//! - [`stats`]: min, max, sum and the first values of an array, streamed in chunks.
//! - [`guard`]: how a memory-mapped file that is truncated under a reader becomes an error
//!   rather than a `SIGBUS`.
//! - [`tensor`], [`dtype`], [`buffer`], [`tensor_ops`]: the tensor model: dtype + shape +
//!   shared bytes, NumPy's dtypes, and casts, scaling and stacking.
//! - [`error`]: the one [`Error`] type of the whole npyflow family.
//!
//! The zip codec, the `SIGBUS` handler, the header parser and the byte-order and axis
//! conversions are private: what they do is reached through the functions above.
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod buffer;
pub mod dtype;
pub mod error;
pub mod guard;
pub mod header;
pub mod npy;
pub mod npz;
pub mod stats;
pub mod storage;
pub mod tensor;
pub mod tensor_ops;

mod convert;
mod kind;
#[allow(unsafe_code)] // The SIGBUS handler and the memory map itself.
mod mapguard;
mod print;
mod source;
mod zip;

pub use buffer::{Buffer, BufferKind, BufferMut, BufferOwner, BufferPool};
pub use dtype::{ByteOrder, DType, DateUnit, TimeUnit};
pub use error::{Error, Result, ResultExt};
pub use header::{NpyHeader, Version};
pub use kind::FileKind;
pub use npy::{
    read_npy, read_npy_bytes, write_npy, write_npy_with, NpyFile, ReadOptions, RemoteNpy,
    WriteOptions,
};
pub use npz::{Compression, NpzArchive, NpzEntry, NpzMember, NpzWriter};
pub use tensor::{NativeType, Shape, Tensor};

/// The README's example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
