//! The implementation of the `SIGBUS` guard of memory maps; [`crate::guard`] is its public
//! face and says what it does and its limits.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::buffer::{BufferKind, BufferOwner};
use crate::error::{Error, Result};

mod table;

pub use table::MAX_GUARDED_MAPS;
use table::{FileId, TABLE};

/// How many maps are guarded now (at most [`MAX_GUARDED_MAPS`]).
pub fn guarded_maps() -> usize {
    TABLE.live()
}

/// Puts npyflow's `SIGBUS` handler back in front when other code installed its own since
/// (npyflow's then chains to it); does nothing before npyflow has mapped a file. One system
/// call.
///
/// npyflow calls it each time it maps a file. A front that runs code which may install
/// handlers (Python's `faulthandler.enable()`) calls it before it reads: the Python package
/// does when a pass starts.
pub fn restore_handler() {
    #[cfg(target_os = "linux")]
    handler::restore();
}

/// A read-only map of a whole file, registered with the `SIGBUS` guard while it lives.
pub(crate) struct MappedFile {
    map: memmap2::Mmap,
    /// The path the file was opened with, for errors.
    path: PathBuf,
    /// The file's absolute path, NUL-terminated, where [`FileId::path`] points; and the
    /// file's device and inode numbers. `None` off Unix, or for a path with a NUL.
    #[cfg_attr(not(unix), allow(dead_code))]
    id: Option<(std::ffi::CString, u64, u64)>,
    /// The table slot; `None` when the map is not guarded (table full, or not Linux).
    slot: Option<usize>,
}

impl MappedFile {
    /// Maps `file` (opened from `path`, which errors name) read-only and guards the map.
    pub(crate) fn map(file: &File, path: &Path) -> io::Result<MappedFile> {
        // SAFETY: the map is read-only and private to this process; npyflow never writes
        // to files it maps and treats them as immutable while mapped. memmap2 requires
        // that the file is not changed while mapped: if another process truncates it
        // anyway, the pages past the new end are replaced by zero pages in the SIGBUS
        // handler below (the bytes behind our slices change from file data to zeros, which
        // is plain data to every reader) and the map is marked so that readers report an
        // error. Tested by `truncated_file_reads_as_an_error` here and by
        // tests/format/mapped_faults.rs.
        let map = unsafe { memmap2::Mmap::map(file)? };
        let mut mapped = MappedFile {
            map,
            path: path.to_owned(),
            id: file_id(file, path),
            slot: None,
        };
        mapped.slot = register(&mapped);
        Ok(mapped)
    }

    /// The mapped file's length now, when it is still at its path.
    fn current_len(&self) -> Option<u64> {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            use std::os::unix::fs::MetadataExt;
            let (c_path, dev, ino) = self.id.as_ref()?;
            let at = Path::new(std::ffi::OsStr::from_bytes(c_path.as_bytes()));
            let m = std::fs::metadata(at).ok()?;
            (m.dev() == *dev && m.ino() == *ino).then_some(m.len())
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    fn lost_error(&self) -> Error {
        let mapped = self.map.len();
        let message = match self.current_len() {
            Some(len) if len < mapped as u64 => format!(
                "the file was truncated while memory-mapped (from {mapped} to {len} bytes); \
                 elements read from it since may be zeros"
            ),
            _ => "part of the file was lost while memory-mapped (it was truncated, or could \
                  not be read); elements read from it since may be zeros"
                .to_string(),
        };
        Error::io(
            &self.path,
            io::Error::new(io::ErrorKind::UnexpectedEof, message),
        )
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // Before the map goes (its fields drop after this).
        if let Some(index) = self.slot {
            TABLE.unregister(index);
        }
    }
}

impl BufferOwner for MappedFile {
    fn bytes(&self) -> &[u8] {
        &self.map
    }

    fn kind(&self) -> BufferKind {
        BufferKind::Mapped
    }

    fn check_intact(&self, range: Range<usize>) -> Result<()> {
        let Some(index) = self.slot else {
            return Ok(());
        };
        if range.end > range.start && range.end <= self.map.len() {
            // Touch the window's last byte, so that a window reaching past the file's new
            // end faults now, in the guard, rather than later in whoever reads it.
            // SAFETY: `range.end - 1` is inside the map, which lives as long as `self`; the
            // map is registered (`slot`), so if its page is lost the handler maps a zero
            // page over it and the read completes.
            unsafe { std::ptr::read_volatile(self.map.as_ptr().add(range.end - 1)) };
        }
        if range.end <= TABLE.lost_from(index) {
            Ok(())
        } else {
            Err(self.lost_error())
        }
    }

    fn verify_intact(&self, range: Range<usize>) -> Result<()> {
        match self.current_len() {
            Some(len) if len < range.end as u64 => {
                if let Some(index) = self.slot {
                    TABLE.mark_lost(index, len as usize);
                }
                Err(self.lost_error())
            }
            _ => self.check_intact(range),
        }
    }
}

/// The absolute path (NUL-terminated), device and inode numbers of `file`, opened at `path`.
#[cfg(unix)]
fn file_id(file: &File, path: &Path) -> Option<(std::ffi::CString, u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata().ok()?;
    let absolute = std::path::absolute(path).ok()?;
    let c_path = std::ffi::CString::new(absolute.as_os_str().as_bytes()).ok()?;
    Some((c_path, m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_file: &File, _path: &Path) -> Option<(std::ffi::CString, u64, u64)> {
    None
}

#[cfg(target_os = "linux")]
fn register(mapped: &MappedFile) -> Option<usize> {
    if mapped.map.is_empty() || !handler::ensure_installed() {
        return None;
    }
    let page = handler::page_size();
    let len = mapped.map.len().div_ceil(page) * page;
    let file = match &mapped.id {
        Some((c_path, dev, ino)) => FileId {
            // The string lives in `mapped.id` until `mapped` is dropped, which unregisters
            // the map first; the handler only reads it.
            path: c_path.as_ptr().cast_mut().cast(),
            dev: *dev,
            ino: *ino,
        },
        None => FileId::NONE,
    };
    TABLE.register(mapped.map.as_ptr() as usize, len, file)
}

#[cfg(not(target_os = "linux"))]
fn register(_mapped: &MappedFile) -> Option<usize> {
    None
}

/// The `SIGBUS` handler and its installation.
#[cfg(target_os = "linux")]
mod handler;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::Buffer;

    #[cfg(target_os = "linux")]
    #[test]
    fn maps_are_guarded_while_they_live() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bin");
        std::fs::write(&path, vec![7u8; 10_000]).unwrap();
        let file = File::open(&path).unwrap();
        let map = MappedFile::map(&file, &path).unwrap();
        assert!(handler::is_installed());
        assert!(map.slot.is_some());
        let index = map.slot.unwrap();
        let found = TABLE.find(map.map.as_ptr() as usize + 9_999).unwrap();
        assert_eq!(found.index, index);
        drop(map);
        assert!(!TABLE.still(&found), "dropping the map unregisters it");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn truncated_file_reads_as_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        let page = handler::page_size().max(4096);
        std::fs::write(&path, vec![1u8; 8 * page]).unwrap();
        let file = File::open(&path).unwrap();
        let buf = Buffer::from_owner(MappedFile::map(&file, &path).unwrap());
        let head = buf.slice(0..page).unwrap();
        let tail = buf.slice(5 * page..6 * page).unwrap();
        assert!(tail.check_intact().is_ok());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(2 * page as u64 + 10)
            .unwrap();
        // Reading a lost page completes, with zeros, and the window reports it.
        assert_eq!(tail.as_slice()[0], 0);
        let e = tail.check_intact().unwrap_err().to_string();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        assert!(e.contains("truncated while memory-mapped"), "{e}");
        // The handler learnt the new length: the zeroed tail of the last page counts as lost
        // too, the bytes before it do not.
        assert!(buf
            .slice(2 * page..2 * page + 10)
            .unwrap()
            .check_intact()
            .is_ok());
        assert!(buf
            .slice(2 * page..2 * page + 11)
            .unwrap()
            .check_intact()
            .is_err());
        assert_eq!(head.as_slice(), &vec![1u8; page][..]);
        assert!(head.check_intact().is_ok() && head.verify_intact().is_ok());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn verify_finds_a_truncation_before_any_fault() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.bin");
        std::fs::write(&path, vec![3u8; 3 * 4096]).unwrap();
        let file = File::open(&path).unwrap();
        let buf = Buffer::from_owner(MappedFile::map(&file, &path).unwrap());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(100)
            .unwrap();
        // Bytes 100.. of the first page read as zeros without a fault: only stat knows.
        let first_page = buf.slice(0..4096).unwrap();
        let e = first_page.verify_intact().unwrap_err().to_string();
        assert!(e.contains("from 12288 to 100 bytes"), "{e}");
        // Recorded: the cheap check knows from now on.
        assert!(first_page.check_intact().is_err());
        assert!(buf.slice(0..100).unwrap().check_intact().is_ok());
    }
}
