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

impl SizedFile {
    /// Opens `path`; an error names it.
    pub(crate) fn open(path: &Path) -> Result<SizedFile> {
        let open = || -> io::Result<SizedFile> {
            let file = File::open(path)?;
            let len = file.metadata()?.len();
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
