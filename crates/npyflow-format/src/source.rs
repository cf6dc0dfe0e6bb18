//! Positioned reads from a file or from memory, shared by the `.npy` and `.npz` readers.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::error::{Error, Result};

/// Something that can read bytes at a given offset without moving a cursor.
pub(crate) trait ReadAt {
    /// The total length in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` from `offset`, or fails (an unexpected end is an error).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).ok().filter(|&s| s <= self.len());
        match start.and_then(|s| self.get(s..s + buf.len())) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// A file with its length taken once, when it was opened.
pub(crate) struct SizedFile {
    file: File,
    len: u64,
}

/// The operating system's "Is a directory" error (EISDIR, 21 on Linux and macOS), so that
/// the Python layer raises `IsADirectoryError` as `open()` would.
fn is_a_directory() -> io::Error {
    #[cfg(unix)]
    {
        io::Error::from_raw_os_error(21)
    }
    #[cfg(not(unix))]
    {
        io::Error::new(io::ErrorKind::Other, "Is a directory")
    }
}

impl SizedFile {
    /// Opens `path`; an error names it.
    pub(crate) fn open(path: &Path) -> Result<SizedFile> {
        let open = || -> io::Result<SizedFile> {
            let file = File::open(path)?;
            let meta = file.metadata()?;
            if meta.is_dir() {
                // Opening a directory succeeds on Unix and only reading fails; say so at
                // once, as Python's open() does (IsADirectoryError).
                return Err(is_a_directory());
            }
            let len = meta.len();
            Ok(SizedFile { file, len })
        };
        open().map_err(|e| Error::io(path, e))
    }

    /// The file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

impl ReadAt for SizedFile {
    fn size(&self) -> u64 {
        self.len
    }

    #[cfg(unix)]
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
    }

    #[cfg(windows)]
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.file.seek_read(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
