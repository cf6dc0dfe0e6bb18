//! Memory maps that survive their file being truncated: the process-wide `SIGBUS` guard.
//!
//! npyflow maps `.npy` and `.npz` data read-only and hands out windows onto the map. If
//! another process truncates the file while it is mapped, the pages past the new end are
//! gone: touching one raises `SIGBUS`, whose default action kills the process. This module
//! turns that into an error:
//!
//! - A process-wide `SIGBUS` handler is installed the first time a file is mapped (Linux
//!   only). Every map npyflow makes is registered in a fixed-size table of atomics (the
//!   handler takes no lock and allocates nothing). A fault whose address lies in a
//!   registered map is repaired: the lost pages are replaced by anonymous zero pages
//!   (`mmap(MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS)`, read-only, costing no memory) so that
//!   the access completes, and the map records from which byte on its data is lost (the
//!   file's new length, from `stat` of its path; the faulting page when the file is no
//!   longer at its path). Any other `SIGBUS` goes to the handler that was
//!   installed before npyflow's, or gets the default action (the process dies with
//!   `SIGBUS`, as without npyflow).
//! - Whoever reads mapped data on a pipeline's behalf calls
//!   [`Buffer::check_intact`](crate::Buffer::check_intact) (one load from the window and one
//!   atomic load): it fails, naming the file, when the window reaches lost data. npyflow
//!   calls it when it takes rows of a tensor ([`Tensor::row`](crate::Tensor::row),
//!   [`Tensor::slice_rows`](crate::Tensor::slice_rows)), after stacking, joining, casting
//!   and applying ops, and after gathering batches of rows from `.npy` files.
//!   [`Buffer::verify_intact`](crate::Buffer::verify_intact) also asks the file system for
//!   the file's length (`stat` of its path, checked to be the same file), and so finds a
//!   truncation before any lost page is touched.
//! - A map holds no file descriptor (a dataset of thousands of shards stays within the
//!   process's limit): the file is found again by its absolute path, and recognised by its
//!   device and inode numbers.
//!
//! Limits:
//! - At most [`MAX_GUARDED_MAPS`] maps are guarded at once. A map made while the table is
//!   full is not guarded: it works as before, and touching a page its file lost raises
//!   `SIGBUS` as before. [`Buffer::verify_intact`](crate::Buffer::verify_intact) still
//!   reports such a truncation as an error, as long as it is called before the lost pages
//!   are touched.
//! - The kernel zeroes the bytes past a file's new end on its last page without any fault:
//!   a window that ends on that page reads zeros and is reported only once a lost page was
//!   touched (the first fault records the file's length) or by
//!   [`Buffer::verify_intact`](crate::Buffer::verify_intact).
//! - Another library that installs its own `SIGBUS` handler after npyflow's (Python's
//!   `faulthandler.enable()`, for one) displaces it. npyflow puts its handler back in front,
//!   chaining to the other one, each time it maps a file and whenever [`restore_handler`]
//!   is called (the Python package calls it when a pass starts). A file read after another
//!   handler was installed, and before either, is not guarded.
//! - The memory behind a map is the file's: npyflow never writes to it and treats it as
//!   immutable. What a truncation does to windows already handed out (a NumPy view of a
//!   row, say) cannot be undone: they read zeros from then on.
//! - `.npy` and `.npz` files are guarded, and so is whatever is mapped with [`map_file`]
//!   (npyflow's dataset layer maps the files of `Dataset::cache(Some(path))` with it).
//! - Off Linux no handler is installed: on other Unix systems
//!   [`Buffer::verify_intact`](crate::Buffer::verify_intact) still compares the file's
//!   length with the map; Windows refuses to truncate a file while it is mapped.

//!
//! This module is the guard's whole public face: the table's size, a count of the maps
//! guarded now, the call that puts the handler back in front, and [`map_file`] for a layer
//! above (npyflow's file cache) that maps files of its own.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::buffer::Buffer;

pub use crate::mapguard::{guarded_maps, restore_handler, MAX_GUARDED_MAPS};

/// Maps the whole of `file` (opened from `path`, which errors name) read-only, registered
/// with the `SIGBUS` guard while any window onto it lives, as `.npy` data is mapped.
///
/// A truncation of the file then reads as an error from
/// [`Buffer::check_intact`](crate::Buffer::check_intact) rather than killing the process.
/// The caller promises what every map here assumes: nothing in this process writes to
/// the file while it is mapped.
///
/// ```
/// use npyflow_format::guard::map_file;
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("blob.bin");
/// std::fs::write(&path, b"cache bytes")?;
/// let file = std::fs::File::open(&path)?;
/// let bytes = map_file(&file, &path)?;
/// assert_eq!(bytes.as_slice(), b"cache bytes");
/// assert!(bytes.check_intact().is_ok());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn map_file(file: &File, path: &Path) -> io::Result<Buffer> {
    crate::mapguard::MappedFile::map(file, path).map(Buffer::from_owner)
}
