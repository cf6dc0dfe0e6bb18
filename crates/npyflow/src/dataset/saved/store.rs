//! Where a saved dataset lives: the few operations `save` and `load` need (read a small
//! object, put one atomically, stream a large one, list, remove, open an array), behind one
//! trait so that a store other than a local directory can take its place.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::npy::read_npy;
use crate::format::storage::{self, Object, StorageOptions};
use crate::tensor::Tensor;

/// A place that holds named objects (`a/b.npy`): a local directory today.
pub(super) trait Store: Send + Sync {
    /// Where `name` is, in words, for errors and messages.
    fn show(&self, name: &str) -> String;
    /// The bytes of a small object, or `None` when it is not there.
    fn read_small(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// Writes a small object so that readers see the old one or the new one, never part.
    fn put_atomic(&self, name: &str, bytes: &[u8]) -> Result<()>;
    /// A new object written as a stream: `reserve` bytes at its start are written last, by
    /// [`ObjectWriter::finish`] (a `.npy` header that holds the row count).
    fn create(&self, name: &str, reserve: usize) -> Result<Box<dyn ObjectWriter>>;
    /// The names of the objects directly under `dir` (empty when `dir` is not there).
    fn list(&self, dir: &str) -> Result<Vec<String>>;
    /// Removes `dir` and everything under it (nothing when it is not there).
    fn remove_all(&self, dir: &str) -> Result<()>;
    /// The array of a `.npy` object, memory-mapped where the store allows.
    fn open_npy(&self, name: &str) -> Result<Tensor>;
    /// The size and CRC-32 of an object, read through once.
    fn checksum(&self, name: &str) -> Result<(u64, u32)>;
    /// For a store of URLs: the URL of `name` and the storage options (arrays are then read
    /// by range, as datasets, rather than mapped).
    fn remote(&self, _name: &str) -> Option<(String, &StorageOptions)> {
        None
    }
}

/// An object being written.
pub(super) trait ObjectWriter: Send {
    /// Appends bytes after the reserved start.
    fn write(&mut self, bytes: &[u8]) -> Result<()>;
    /// Writes the reserved start (exactly as long as reserved) and makes the object durable.
    fn finish(self: Box<Self>, start: &[u8]) -> Result<()>;
}

/// A directory on the local file system.
pub(super) struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub(super) fn new(root: &Path) -> LocalDir {
        LocalDir {
            root: root.to_path_buf(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Makes a directory's entries durable (a rename or a new file in it survives a crash).
    fn sync_dir(dir: &Path) {
        // Not every file system lets a directory be opened for syncing; the data files are
        // synced themselves, so this is best effort.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

impl Store for LocalDir {
    fn show(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn read_small(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(name);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn put_atomic(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(name);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        // A new file beside the old one, synced, then renamed over it: rename is atomic.
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&dir)
            .map_err(io(&dir))?;
        tmp.write_all(bytes).map_err(io(tmp.path()))?;
        tmp.as_file().sync_all().map_err(io(&path))?;
        tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        LocalDir::sync_dir(&dir);
        Ok(())
    }

    fn create(&self, name: &str, reserve: usize) -> Result<Box<dyn ObjectWriter>> {
        let path = self.path(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut w = LocalWriter {
            out: std::io::BufWriter::with_capacity(1 << 20, file),
            path,
            reserve,
        };
        w.out.write_all(&vec![0u8; reserve]).map_err(io(&w.path))?;
        Ok(Box::new(w))
    }

    fn list(&self, dir: &str) -> Result<Vec<String>> {
        let path = self.path(dir);
        let entries = match std::fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(&path))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn remove_all(&self, dir: &str) -> Result<()> {
        let path = self.path(dir);
        match std::fs::remove_dir_all(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn open_npy(&self, name: &str) -> Result<Tensor> {
        read_npy(self.path(name))
    }

    fn checksum(&self, name: &str) -> Result<(u64, u32)> {
        let path = self.path(name);
        let mut f = File::open(&path).map_err(io(&path))?;
        let mut hasher = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(io(&path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok((size, hasher.finalize()))
    }
}

struct LocalWriter {
    out: std::io::BufWriter<File>,
    path: PathBuf,
    reserve: usize,
}

impl ObjectWriter for LocalWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(io(&self.path))
    }

    fn finish(self: Box<Self>, start: &[u8]) -> Result<()> {
        let LocalWriter { out, path, reserve } = *self;
        if start.len() != reserve {
            return Err(Error::Pipeline(format!(
                "{}: a start of {} bytes was written where {reserve} were reserved",
                path.display(),
                start.len()
            )));
        }
        let mut file = out
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io(&path))?;
        file.write_all(start).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
        Ok(())
    }
}

/// A directory on object storage (or any URL the storage layer reads): `s3://bucket/prefix`.
pub(super) struct RemoteDir {
    root: String,
    options: StorageOptions,
}

impl RemoteDir {
    pub(super) fn new(root: &str, options: &StorageOptions) -> RemoteDir {
        RemoteDir {
            root: root.trim_end_matches('/').to_string(),
            options: options.clone(),
        }
    }

    pub(super) fn url(&self, name: &str) -> String {
        if name.is_empty() {
            self.root.clone()
        } else {
            format!("{}/{name}", self.root)
        }
    }
}

impl Store for RemoteDir {
    fn show(&self, name: &str) -> String {
        storage::display_url(&self.url(name))
    }

    fn read_small(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let url = self.url(name);
        let object = match Object::open(&url, &self.options) {
            Ok(o) => o,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        Ok(Some(object.read_range(0..object.size())?.to_vec()))
    }

    fn put_atomic(&self, name: &str, bytes: &[u8]) -> Result<()> {
        storage::put(&self.url(name), bytes.to_vec(), &self.options)
    }

    fn create(&self, name: &str, reserve: usize) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(RemoteWriter {
            url: self.url(name),
            options: self.options.clone(),
            data: vec![0u8; reserve],
            reserve,
        }))
    }

    fn list(&self, dir: &str) -> Result<Vec<String>> {
        let prefix = format!("{}/", self.url(dir));
        let found = match storage::list(&format!("{prefix}*"), &self.options) {
            Ok(f) => f,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(e),
        };
        Ok(found
            .into_iter()
            .filter_map(|o| o.url.strip_prefix(&prefix).map(String::from))
            .collect())
    }

    fn remove_all(&self, dir: &str) -> Result<()> {
        let found =
            storage::list(&format!("{}/**", self.url(dir)), &self.options).unwrap_or_default();
        for o in found {
            storage::delete(&o.url, &self.options)?;
        }
        Ok(())
    }

    fn open_npy(&self, name: &str) -> Result<Tensor> {
        // Remote arrays are read by range through `Dataset::from_npy_files_with`, not as a
        // tensor: `load_from` asks for the component datasets instead.
        Err(Error::Pipeline(format!(
            "{}: remote arrays are read as datasets",
            self.show(name)
        )))
    }

    fn remote(&self, name: &str) -> Option<(String, &StorageOptions)> {
        Some((self.url(name), &self.options))
    }

    fn checksum(&self, name: &str) -> Result<(u64, u32)> {
        let object = Object::open(&self.url(name), &self.options)?;
        let mut hasher = crc32fast::Hasher::new();
        let chunk = 8u64 << 20;
        let mut at = 0;
        while at < object.size() {
            let end = (at + chunk).min(object.size());
            hasher.update(&object.read_range(at..end)?);
            at = end;
        }
        Ok((object.size(), hasher.finalize()))
    }
}

/// A remote object written whole when finished (object stores have no partial writes): its
/// bytes are held until then, at most one shard's (`max_shard_bytes`).
struct RemoteWriter {
    url: String,
    options: StorageOptions,
    data: Vec<u8>,
    reserve: usize,
}

impl ObjectWriter for RemoteWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.data
            .try_reserve(bytes.len())
            .map_err(|_| Error::Alloc {
                bytes: self.data.len() + bytes.len(),
            })?;
        self.data.extend_from_slice(bytes);
        Ok(())
    }

    fn finish(self: Box<Self>, start: &[u8]) -> Result<()> {
        let RemoteWriter {
            url,
            options,
            mut data,
            reserve,
        } = *self;
        if start.len() != reserve {
            return Err(Error::Pipeline(format!("{url}: header length changed")));
        }
        data[..reserve].copy_from_slice(start);
        storage::put(&url, data, &options)
    }
}
