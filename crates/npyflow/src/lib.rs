//! # npyflow
//!
//! The input pipeline for training on NumPy data, in Rust: tf.data's dataset model over
//! arrays in memory and `.npy`/`.npz` files, which are memory-mapped and sliced without a
//! copy.
//!
//! The seed's pipeline, `from_tensor_slices(images).map(normalize).batch(2)`:
//!
//! ```
//! use npyflow::{Dataset, DType, Element, Tensor};
//!
//! // 10 images of 3x3 pixels with 3 channels.
//! let images = Tensor::from_vec((0..270).map(|i| (i % 256) as u8).collect(), &[10, 3, 3, 3])?;
//! let dataset = Dataset::from_tensor_slices(images)?
//!     .map(|image: Element| {
//!         Ok(image.into_tensor()?.cast(DType::Float32)?.scale(1.0 / 255.0, 0.0)?.into())
//!     }, ())?
//!     .batch(2, ())?;
//! for batch in &dataset {
//!     assert_eq!(batch?.into_tensor()?.shape(), &[2, 3, 3, 3]);
//! }
//! assert_eq!(dataset.len()?, 5);
//! # Ok::<(), npyflow::Error>(())
//! ```
//!
//! [`Dataset`] has tf.data's sources and transformations under tf.data's names, with its
//! element specs, cardinality rules, argument checks and error behaviour; the
//! [`dataset`] module says where npyflow differs.
//!
//! An iterator's position is a byte string: [`DatasetIter::get_state`] saves it and
//! [`DatasetIter::set_state`] continues from it in a new iterator of the same pipeline (in a
//! restarted program too), with nothing repeated or skipped. For random-access pipelines it
//! holds positions and seeds only.
//!
//! ```
//! use npyflow::Dataset;
//! let ds = Dataset::range(0, 1000, 1)?.global_shuffle(())?.batch(10, ())?;
//! let mut it = ds.iter();
//! it.nth(41);
//! let state = it.get_state()?;            // 42 batches read
//! assert!(state.len() < 200);
//! let next = it.next().unwrap()?;
//! let mut resumed = ds.iter();
//! resumed.set_state(&state)?;
//! assert_eq!(resumed.next().unwrap()?, next);
//! # Ok::<(), npyflow::Error>(())
//! ```
//!
//! Reading an array costs no copy when its data can be used in place: the tensor is a window
//! onto the memory-mapped file, and slicing it along its first axis is O(1).
//!
//! ```
//! use npyflow::format::npy::{read_npy, write_npy};
//! use npyflow::format::npz::{Compression, NpzArchive, NpzWriter};
//! use npyflow::{DType, Tensor};
//! # let dir = tempfile::tempdir().unwrap();
//! # let images_path = dir.path().join("images.npy");
//! # let npz_path = dir.path().join("data.npz");
//!
//! // 10 images of 3x3 pixels with 3 channels, as in the seed's third example.
//! let images = Tensor::from_vec((0..270).map(|i| (i % 256) as u8).collect(), &[10, 3, 3, 3])?;
//! write_npy(&images_path, &images)?;
//!
//! let mapped = read_npy(&images_path)?; // header read, data mapped: no copy
//! assert_eq!(mapped.dtype(), DType::UInt8);
//! let batch = mapped.slice_rows(0..2)?; // O(1): a window onto the same map
//! assert_eq!(batch.shape(), &[2, 3, 3, 3]);
//!
//! // An .npz of named arrays, like np.savez.
//! let labels = Tensor::from_vec((0..10i64).collect(), &[10])?;
//! let mut w = NpzWriter::create(&npz_path)?;
//! w.add("images", &images, Compression::Stored)?;
//! w.add("labels", &labels, Compression::Deflated)?;
//! w.finish()?;
//! let npz = NpzArchive::open(&npz_path)?;
//! assert_eq!(npz.load("labels")?.view::<i64>()?[9], 9);
//! # Ok::<(), npyflow::Error>(())
//! ```
//!
//! ## Modules
//! The file formats and the tensor model live in the crate
//! [`npyflow_format`], which this crate re-exports under the same paths as before
//! (`npyflow::tensor`, `npyflow::format::npy`, ...) and depends on for everything below its
//! dataset layer.
//!
//! - [`dataset`]: tf.data's `Dataset`: sources, transformations, specs, cardinality.
//! - [`ops`]: built-in ops for `map` (cast, scale, normalize, one-hot, reshape, transpose,
//!   random flip and crop), run in Rust and fused into batching.
//! - [`tensor_ops`]: casts, scaling, stacking and padding of tensors.
//! - [`dtype`]: NumPy's dtypes and their `dtype.str` spellings.
//! - [`buffer`]: shared, immutable bytes whose owner is a heap allocation, a memory map or
//!   someone else's memory.
//! - [`tensor`]: dtype + shape + buffer, in C order and native byte order.
//! - [`element`]: nested tuples and dicts of tensors, and their specs.
//! - [`format`](mod@format): reading and writing `.npy` and `.npz`, and streaming statistics.
//! - [`error`]: the one error type, with the file, member or element in its message.
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod dataset;
pub mod element;
pub mod ops;
mod rng;

pub use npyflow_format::{buffer, dtype, error, tensor, tensor_ops};

/// NumPy's file formats: `.npy` (one array) and `.npz` (a zip of `.npy` files), from
/// [`npyflow_format`].
///
/// Reading is strict and cheap: opening a file reads its header only, every size is checked
/// against the file before anything is mapped or allocated, and data that is native-endian,
/// in C order and aligned is memory-mapped rather than copied.
pub mod format {
    pub use npyflow_format::{guard, header, npy, npz, stats, storage, FileKind};
}

pub use buffer::{Buffer, BufferKind, BufferMut, BufferOwner, BufferPool};
pub use dataset::{Cardinality, Dataset, DatasetIter, AUTOTUNE};
pub use dtype::{ByteOrder, DType, DateUnit, TimeUnit};
pub use element::{Element, ElementSpec, PartialShape, TensorSpec};
pub use error::{Error, Result};
pub use tensor::{NativeType, Shape, Tensor};
