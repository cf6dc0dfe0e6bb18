//! What kind of file a path holds: [`FileKind`].

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::header;

/// What kind of file a path holds, told by its first bytes (not its name), as `np.load` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A `.npy` file: it starts with `\x93NUMPY`.
    Npy,
    /// A `.npz` archive: it starts with a zip signature.
    Npz,
}

impl FileKind {
    /// Reads the first bytes of `path` and tells which format it is in.
    ///
    /// ```
    /// # use npyflow_format::{Tensor, FileKind, npy::write_npy};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("x.dat");
    /// write_npy(&path, &Tensor::scalar(1u8)).unwrap();
    /// assert_eq!(FileKind::detect(&path).unwrap(), FileKind::Npy);
    /// ```
    pub fn detect(path: impl AsRef<Path>) -> Result<FileKind> {
        let path = path.as_ref();
        let mut start = [0u8; 6];
        let mut n = 0;
        let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        while n < start.len() {
            match f.read(&mut start[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        let start = &start[..n];
        if start.starts_with(header::MAGIC) {
            Ok(FileKind::Npy)
        } else if start.starts_with(b"PK\x03\x04") || start.starts_with(b"PK\x05\x06") {
            Ok(FileKind::Npz)
        } else if n == 0 {
            Err(Error::Header("the file is empty".into()).context(path.display()))
        } else {
            Err(Error::Header(format!(
                "neither a .npy file (which starts with \"\\x93NUMPY\") nor an .npz archive \
                 (which starts with \"PK\"): it starts with {:?}",
                String::from_utf8_lossy(start)
            ))
            .context(path.display()))
        }
    }
}
