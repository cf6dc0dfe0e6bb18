//! Reading and writing `.npz` files: zip archives of `.npy` members.
//!
//! ```
//! use npyflow_format::npz::{NpzArchive, NpzWriter};
//! use npyflow_format::npz::Compression;
//! use npyflow_format::Tensor;
//! # let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("data.npz");
//! let x = Tensor::from_vec(vec![1.5f32; 12], &[4, 3]).unwrap();
//! let y = Tensor::from_vec(vec![0i64, 1, 0, 1], &[4]).unwrap();
//! let mut w = NpzWriter::create(&path).unwrap();
//! w.add("x", &x, Compression::Stored).unwrap();
//! w.add("y", &y, Compression::Deflated).unwrap();
//! w.finish().unwrap();
//!
//! let npz = NpzArchive::open(&path).unwrap();
//! assert_eq!(npz.keys().collect::<Vec<_>>(), ["x", "y"]);
//! assert_eq!(npz.load("x").unwrap(), x); // stored and aligned: memory-mapped
//! assert_eq!(npz.load("y").unwrap(), y); // deflated: inflated into memory
//! ```

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::buffer::{Buffer, BufferMut};
use crate::error::{Error, Result, ResultExt};
use crate::header::{parse_prelude, NpyHeader, Version, MAGIC};
use crate::mapguard::MappedFile;
use crate::npy::{
    check_data_len, npy_header_for, read_header_at, tensor_from_raw, tensor_from_raw_copy,
    write_npy_to, ReadOptions, WriteOptions,
};
use crate::source::{ReadAt, SizedFile};
use crate::zip::{read_directory, EntryReader, ZipEntry, ZipWriter};

use crate::tensor::Tensor;
/// How a member's bytes are kept in an archive.
pub use crate::zip::Compression;

/// An array member of an `.npz` archive, its header read and checked.
#[derive(Clone, Debug)]
pub struct NpzMember {
    /// The key NumPy gives it: the member name less a trailing `.npy`.
    pub key: String,
    /// The member's name in the archive.
    pub name: String,
    /// The array's header.
    pub header: NpyHeader,
    /// The `.npy` format version of the member.
    pub version: Version,
    /// How the member is stored.
    pub compression: Compression,
    entry: ZipEntry,
    /// Bytes of `.npy` header before the data, within the member.
    data_start: u64,
}

/// What one member of an archive turned out to be.
#[derive(Debug)]
pub enum NpzEntry {
    /// A readable array.
    Array(NpzMember),
    /// A member that is not an array (no `.npy` magic and no `.npy` name): NumPy returns such
    /// members as raw bytes; npyflow leaves them out.
    Other {
        /// The member's name.
        name: String,
    },
    /// A member that should be an array but cannot be read, with the reason.
    Bad {
        /// The member's name.
        name: String,
        /// Why it cannot be read.
        error: Error,
    },
}

/// An open `.npz` archive: its directory and every member's `.npy` header have been read and
/// checked; no array data has.
///
/// A member that is broken does not stop the others from being read: it appears as
/// [`NpzEntry::Bad`] and loading it returns its error.
pub struct NpzArchive {
    path: PathBuf,
    file: Source,
    entries: Vec<NpzEntry>,
    map: OnceLock<Buffer>,
    options: ReadOptions,
}

impl NpzArchive {
    /// Opens `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<NpzArchive> {
        Self::open_with(path, &ReadOptions::default())
    }

    /// Opens `path`: reads the zip directory and each member's `.npy` header.
    pub fn open_with(path: impl AsRef<Path>, options: &ReadOptions) -> Result<NpzArchive> {
        let path = path.as_ref();
        let file = SizedFile::open(path)?;
        Self::from_source(path, Source::File(file), options)
    }

    /// Reads an archive held in memory (say, received over the network). Stored members
    /// that can be used in place share `bytes`. Messages name the archive `<memory>`.
    pub fn from_buffer(bytes: Buffer, options: &ReadOptions) -> Result<NpzArchive> {
        Self::from_source(Path::new("<memory>"), Source::Memory(bytes), options)
    }

    /// Opens the archive at `url` (`s3://`, `gs://`, `az://`, `http(s)://`, `file://`; see
    /// [`storage`](crate::storage)): its directory and member headers are read by a few
    /// ranged GETs from the end of the object. Stored members are then read by one ranged GET
    /// each; deflated members are streamed through the inflater in growing ranges (up to
    /// 8 MiB), never downloaded whole first. Messages name the archive by its URL.
    pub fn open_url(
        url: &str,
        storage: &crate::storage::StorageOptions,
        options: &ReadOptions,
    ) -> Result<NpzArchive> {
        let object = crate::storage::Object::open(url, storage)?;
        let name = PathBuf::from(object.url());
        Self::from_source(
            &name,
            Source::Remote(crate::storage::RemoteFile::new(object)),
            options,
        )
    }

    fn from_source(path: &Path, file: Source, options: &ReadOptions) -> Result<NpzArchive> {
        let dir = read_directory(&file).context(path.display())?;
        let mut entries = Vec::with_capacity(dir.len());
        for item in dir {
            let entry = match item {
                Err(bad) => NpzEntry::Bad {
                    name: bad.name,
                    error: bad.error,
                },
                Ok(e) if e.name.ends_with('/') && e.size == 0 => NpzEntry::Other { name: e.name },
                Ok(e) => classify(&file, e, options),
            };
            entries.push(entry);
        }
        // A key given twice (by readable or broken members alike) is ambiguous: refuse every
        // member that has it.
        let mut seen = std::collections::HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let key = match e {
                NpzEntry::Array(m) => m.key.as_str(),
                NpzEntry::Bad { name, .. } => key_of(name),
                NpzEntry::Other { .. } => continue,
            };
            seen.entry(key.to_owned()).or_insert_with(Vec::new).push(i);
        }
        for (key, at) in seen.into_iter().filter(|(_, v)| v.len() > 1) {
            for i in at {
                let name = match &entries[i] {
                    NpzEntry::Array(NpzMember { name, .. }) | NpzEntry::Bad { name, .. } => {
                        name.clone()
                    }
                    NpzEntry::Other { .. } => unreachable!("only arrays and bad members counted"),
                };
                entries[i] = NpzEntry::Bad {
                    name,
                    error: Error::Zip(format!(
                        "more than one member has the key {key:?}; npyflow refuses the ambiguity"
                    )),
                };
            }
        }
        Ok(NpzArchive {
            path: path.to_owned(),
            file,
            entries,
            map: OnceLock::new(),
            options: options.clone(),
        })
    }

    /// The path the archive was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every member, in archive order.
    pub fn entries(&self) -> &[NpzEntry] {
        &self.entries
    }

    /// The readable arrays, in archive order.
    pub fn members(&self) -> impl Iterator<Item = &NpzMember> {
        self.entries.iter().filter_map(|e| match e {
            NpzEntry::Array(m) => Some(m),
            _ => None,
        })
    }

    /// The keys of the readable arrays, in archive order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members().map(|m| m.key.as_str())
    }

    /// The member with `key`, or an error naming the keys there are.
    pub fn member(&self, key: &str) -> Result<&NpzMember> {
        for e in &self.entries {
            match e {
                NpzEntry::Array(m) if m.key == key => return Ok(m),
                NpzEntry::Bad { name, error } if key_of(name) == key => {
                    return Err(Error::Data(error.to_string())
                        .context(format!("member {name:?}"))
                        .context(self.path.display()))
                }
                _ => {}
            }
        }
        let keys: Vec<_> = self.keys().collect();
        Err(
            Error::InvalidArgument(format!("no array {key:?} (the arrays are {keys:?})"))
                .context(self.path.display()),
        )
    }

    /// Loads the array `key` as a tensor in C order and native byte order.
    ///
    /// A stored member whose data is native, C order and aligned (as in archives written by
    /// [`NpzWriter`]) is a window onto the memory-mapped archive; NumPy's own `np.savez` puts
    /// members at arbitrary offsets, so their data is usually copied once. Deflated members
    /// are inflated into memory, with an allocation no larger than the member declares and
    /// its compressed size can produce. The CRC is checked unless the options say not to.
    pub fn load(&self, key: &str) -> Result<Tensor> {
        let m = self.member(key)?;
        self.load_member(m)
            .with_context(|| format!("{}: member {:?}", self.path.display(), m.name))
    }

    fn load_member(&self, m: &NpzMember) -> Result<Tensor> {
        let h = &m.header;
        let nbytes = h.nbytes();
        if let (Source::Remote(r), Compression::Stored) = (&self.file, m.compression) {
            let start = m.entry.data_offset;
            let member = r.object().read_range(start..start + m.entry.size)?;
            if self.options.verify_crc {
                let crc = crc32fast::hash(&member);
                if crc != m.entry.crc32 {
                    return Err(Error::Data(format!(
                        "CRC-32 mismatch: the member's bytes give {crc:08x}, the archive says \
                         {:08x} (the data is corrupt)",
                        m.entry.crc32
                    )));
                }
            }
            let ds = m.data_start as usize;
            let data = member
                .get(ds..ds + nbytes)
                .ok_or_else(|| Error::Data("the member is shorter than its header says".into()))?;
            return tensor_from_raw_copy(h, data);
        }
        if m.compression == Compression::Stored && self.options.mmap && nbytes > 0 {
            let map = self.mapped()?;
            let start = m.entry.data_offset as usize;
            let member = map.slice(start..start + m.entry.size as usize)?;
            if self.options.verify_crc {
                let crc = crc32fast::hash(member.as_slice());
                if crc != m.entry.crc32 {
                    return Err(Error::Data(format!(
                        "CRC-32 mismatch: the member's bytes give {crc:08x}, the archive says \
                         {:08x} (the data is corrupt)",
                        m.entry.crc32
                    )));
                }
            }
            let ds = m.data_start as usize;
            let data = member.slice(ds..ds + nbytes)?;
            let aligned = data.as_slice().as_ptr() as usize % h.dtype.alignment() == 0;
            if h.is_c_native() && aligned {
                return Tensor::new(h.dtype, &h.shape, data);
            }
            return tensor_from_raw_copy(h, data.as_slice());
        }
        let mut reader = EntryReader::new(&self.file, &m.entry, self.options.verify_crc);
        let mut skip = vec![0u8; m.data_start as usize];
        reader.read_exact(&mut skip)?;
        let mut raw = BufferMut::zeroed(nbytes)?;
        reader.read_exact(raw.as_mut_slice())?;
        // Read to the end so the CRC is checked.
        let mut rest = [0u8; 4096];
        while reader.read(&mut rest)? > 0 {}
        tensor_from_raw(h, raw)
    }

    fn mapped(&self) -> Result<&Buffer> {
        if let Some(b) = self.map.get() {
            return Ok(b);
        }
        let buffer = match &self.file {
            Source::File(f) => {
                let map =
                    MappedFile::map(f.file(), &self.path).map_err(|e| Error::io(&self.path, e))?;
                Buffer::from_shared(Arc::new(map))
            }
            Source::Memory(b) => b.clone(),
            Source::Remote(_) => {
                return Err(Error::InvalidArgument(
                    "an archive read by URL is not mapped".into(),
                ))
            }
        };
        Ok(self.map.get_or_init(|| buffer))
    }

    /// A reader of the raw data (file order and byte order, header skipped) of `member`,
    /// for streaming through a large array without loading it.
    pub fn data_reader<'a>(&'a self, member: &'a NpzMember) -> Result<MemberReader<'a>> {
        let mut reader = EntryReader::new(&self.file, &member.entry, true);
        let mut skip = vec![0u8; member.data_start as usize];
        reader.read_exact(&mut skip)?;
        Ok(MemberReader(reader))
    }
}

/// A stream of one member's array data, from [`NpzArchive::data_reader`]: its bytes in file
/// order and byte order, inflated if the member is deflated, its CRC-32 checked at the end.
pub struct MemberReader<'a>(EntryReader<'a, Source>);

impl MemberReader<'_> {
    /// Bytes of the member produced so far (its `.npy` header included).
    pub fn position(&self) -> u64 {
        self.0.position()
    }

    /// Fills `out` completely, or fails if the member ends first.
    pub fn read_exact(&mut self, out: &mut [u8]) -> Result<()> {
        self.0.read_exact(out)
    }

    /// Reads up to `out.len()` bytes; 0 means the member is finished (and its checksum
    /// checked).
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize> {
        self.0.read(out)
    }
}

/// Where an archive's bytes come from.
enum Source {
    File(SizedFile),
    Memory(Buffer),
    Remote(crate::storage::RemoteFile),
}

impl ReadAt for Source {
    fn size(&self) -> u64 {
        match self {
            Source::File(f) => f.size(),
            Source::Memory(b) => b.len() as u64,
            Source::Remote(r) => r.size(),
        }
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            Source::File(f) => f.read_exact_at(buf, offset),
            Source::Memory(b) => b.as_slice().read_exact_at(buf, offset),
            Source::Remote(r) => r.read_exact_at(buf, offset),
        }
    }
}

fn key_of(name: &str) -> &str {
    name.strip_suffix(".npy").unwrap_or(name)
}

/// Reads the start of a member to tell an array from other content, and checks its header.
fn classify(file: &Source, e: ZipEntry, options: &ReadOptions) -> NpzEntry {
    let name = e.name.clone();
    let named_npy = name.ends_with(".npy");
    let result = (|| -> Result<Option<NpzMember>> {
        let mut reader = EntryReader::new(file, &e, false);
        let mut prelude = [0u8; 12];
        let n = (e.size.min(12)) as usize;
        reader.read_exact(&mut prelude[..n])?;
        if n < 6 || prelude[..6] != MAGIC[..] {
            if named_npy {
                return Err(Error::Header(
                    "the member is named .npy but does not start with the .npy magic string".into(),
                ));
            }
            return Ok(None);
        }
        let (version, header_len) = parse_prelude(&prelude[..n])?;
        crate::header::check_header_len(header_len, options.max_header_size)?;
        // Inflate just the header, then parse it from memory.
        let start = version.prelude_len();
        if (start + header_len) as u64 > e.size {
            return Err(Error::Header(format!(
                "the header says it is {header_len} bytes long, but the member has only {} \
                 bytes after the prelude",
                e.size - start as u64
            )));
        }
        let mut head = vec![0u8; start + header_len];
        // The first read may already hold data bytes past a short header.
        let have = n.min(head.len());
        head[..have].copy_from_slice(&prelude[..have]);
        reader.read_exact(&mut head[have..])?;
        let (header, version, data_start) = read_header_at(
            head.as_slice(),
            0,
            head.len() as u64,
            options.max_header_size,
        )?;
        check_data_len(&header, e.size - data_start)?;
        Ok(Some(NpzMember {
            key: key_of(&name).to_owned(),
            name: name.clone(),
            header,
            version,
            compression: e.compression,
            entry: e,
            data_start,
        }))
    })();
    match result {
        Ok(Some(m)) => NpzEntry::Array(m),
        Ok(None) => NpzEntry::Other { name },
        Err(error) => NpzEntry::Bad { name, error },
    }
}

/// Writes an `.npz` archive array by array, like `np.savez` / `np.savez_compressed`.
///
/// Stored members are laid out so their array data starts at a multiple of 64 bytes in the
/// archive, so [`NpzArchive::load`] can map them without a copy; NumPy reads them as usual.
/// The archive is written under a temporary name and renamed into place by
/// [`NpzWriter::finish`], so a failed write leaves no half-written archive behind.
pub struct NpzWriter {
    path: PathBuf,
    tmp: Option<tempfile::NamedTempFile>,
    zip: Option<ZipWriter<std::io::BufWriter<File>>>,
    keys: std::collections::HashSet<String>,
}

impl NpzWriter {
    /// Starts an archive that will be at `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<NpzWriter> {
        let path = path.as_ref().to_owned();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(&path, e))?;
        let file = tmp.reopen().map_err(|e| Error::io(&path, e))?;
        Ok(NpzWriter {
            path,
            tmp: Some(tmp),
            zip: Some(ZipWriter::new(std::io::BufWriter::with_capacity(
                1 << 20,
                file,
            ))),
            keys: Default::default(),
        })
    }

    /// Adds `tensor` under `key` (stored as member `key.npy`).
    pub fn add(&mut self, key: &str, tensor: &Tensor, compression: Compression) -> Result<()> {
        self.add_with(key, tensor, compression, &WriteOptions::default())
    }

    /// Adds `tensor` under `key`, written with `options`.
    pub fn add_with(
        &mut self,
        key: &str,
        tensor: &Tensor,
        compression: Compression,
        options: &WriteOptions,
    ) -> Result<()> {
        if !self.keys.insert(key.to_owned()) {
            return Err(Error::InvalidArgument(format!(
                "the key {key:?} is already in the archive"
            )));
        }
        let header = npy_header_for(tensor, options).encode(options.version)?;
        let size = header.len() as u64 + tensor.nbytes() as u64;
        let zip = self.zip.as_mut().expect("present until finish");
        let mut failure = None;
        zip.add(
            &format!("{key}.npy"),
            compression,
            size,
            Some((64, header.len() as u64)),
            |out| {
                write_npy_to(&mut WriteAdapter(out), tensor, options).map_err(|e| {
                    let msg = e.to_string();
                    failure = Some(e);
                    std::io::Error::other(msg)
                })
            },
        )
        .map_err(|e| failure.take().unwrap_or_else(|| Error::io(&self.path, e)))
        .with_context(|| format!("{}: member {key:?}", self.path.display()))
    }

    /// Writes the directory and moves the archive into place.
    pub fn finish(mut self) -> Result<()> {
        let zip = self.zip.take().expect("present until finish");
        let mut out = zip.finish().map_err(|e| Error::io(&self.path, e))?;
        out.flush().map_err(|e| Error::io(&self.path, e))?;
        drop(out);
        let tmp = self.tmp.take().expect("present until finish");
        tmp.persist(&self.path)
            .map_err(|e| Error::io(&self.path, e.error))?;
        Ok(())
    }
}

struct WriteAdapter<'a>(&'a mut dyn Write);

impl Write for WriteAdapter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::{ByteOrder, DType};
    use crate::npy::is_mapped;

    #[test]
    fn stored_members_are_mapped_and_deflated_inflated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npz");
        let x = Tensor::from_vec((0..300).map(|i| i as f64).collect(), &[100, 3]).unwrap();
        let y = Tensor::from_vec((0..7).collect::<Vec<i16>>(), &[7]).unwrap();
        let mut w = NpzWriter::create(&p).unwrap();
        w.add("x", &x, Compression::Stored).unwrap();
        w.add_with(
            "y",
            &y,
            Compression::Deflated,
            &WriteOptions {
                byte_order: ByteOrder::Big,
                ..Default::default()
            },
        )
        .unwrap();
        w.add("z", &x, Compression::Deflated).unwrap();
        assert!(w.add("z", &x, Compression::Stored).is_err());
        w.finish().unwrap();
        let npz = NpzArchive::open(&p).unwrap();
        let lx = npz.load("x").unwrap();
        assert!(is_mapped(&lx));
        assert_eq!(lx, x);
        assert_eq!(npz.member("y").unwrap().header.byte_order, ByteOrder::Big);
        assert_eq!(npz.load("y").unwrap(), y);
        assert_eq!(npz.load("z").unwrap(), x);
        let e = npz.load("w").unwrap_err().to_string();
        assert!(
            e.contains("no array \"w\"") && e.contains("\"x\", \"y\", \"z\""),
            "{e}"
        );
    }

    #[test]
    fn corrupt_member_does_not_spoil_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.npz");
        let x = Tensor::zeros(DType::UInt8, &[1000]).unwrap();
        let mut w = NpzWriter::create(&p).unwrap();
        w.add("a", &x, Compression::Stored).unwrap();
        w.add("b", &x, Compression::Stored).unwrap();
        w.finish().unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        let npz = NpzArchive::open(&p).unwrap();
        let off = npz.member("a").unwrap().entry.data_offset as usize + 200;
        bytes[off] = 1;
        std::fs::write(&p, &bytes).unwrap();
        let npz = NpzArchive::open(&p).unwrap();
        let e = npz.load("a").unwrap_err().to_string();
        assert!(
            e.contains("CRC-32") && e.contains("c.npz") && e.contains("a.npy"),
            "{e}"
        );
        assert_eq!(npz.load("b").unwrap(), x);
    }
}
