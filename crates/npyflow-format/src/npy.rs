//! Reading and writing `.npy` files.
//!
//! ```
//! use npyflow_format::npy::{read_npy, write_npy};
//! use npyflow_format::Tensor;
//! # let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("x.npy");
//! let t = Tensor::from_vec((0..12).map(|i| i as f32).collect(), &[3, 4]).unwrap();
//! write_npy(&path, &t).unwrap();
//! let back = read_npy(&path).unwrap(); // memory-mapped: no copy of the data
//! assert_eq!(back, t);
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::buffer::{Buffer, BufferKind, BufferMut};
use crate::convert::{into_c_native, reverse_axes, swap_in_place};
use crate::dtype::ByteOrder;
use crate::error::{Error, Result, ResultExt};
use crate::header::{self, NpyHeader, Version, DEFAULT_MAX_HEADER_SIZE};
use crate::mapguard::MappedFile;
use crate::source::{ReadAt, SizedFile};
use crate::tensor::Tensor;

/// How files are read.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// The longest header accepted, in bytes (NumPy's `max_header_size`, 10,000 by default).
    /// Raise it only for files you trust.
    pub max_header_size: usize,
    /// Memory-map data that can be used in place (native byte order, C order, aligned).
    /// When false, or when the data needs converting, it is read into memory.
    pub mmap: bool,
    /// Check the CRC-32 of `.npz` members when loading them (reading a stored member then
    /// touches all its bytes once).
    pub verify_crc: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            mmap: true,
            verify_crc: true,
        }
    }
}

/// Reads the header at the start of `src`; returns it with its version and the data offset.
pub(crate) fn read_header_at(
    src: &(impl ReadAt + ?Sized),
    base: u64,
    available: u64,
    max_header_size: usize,
) -> Result<(NpyHeader, Version, u64)> {
    let mut prelude = [0u8; 12];
    let n = available.min(12) as usize;
    src.read_exact_at(&mut prelude[..n], base)
        .map_err(|e| Error::Header(format!("cannot read the header: {e}")))?;
    let (version, header_len) = header::parse_prelude(&prelude[..n])?;
    let start = version.prelude_len() as u64;
    // A length past the end of the file says the file is damaged, whatever the limit.
    if start + header_len as u64 > available {
        return Err(Error::Header(format!(
            "the header says it is {header_len} bytes long, but only {} bytes follow (the \
             file is damaged or was not written by NumPy)",
            available.saturating_sub(start)
        )));
    }
    header::check_header_len(header_len, max_header_size)?;
    let mut text = vec![0u8; header_len];
    src.read_exact_at(&mut text, base + start)
        .map_err(|e| Error::Header(format!("cannot read the header: {e}")))?;
    let h = header::parse_header_text(&text, version)?;
    Ok((h, version, start + header_len as u64))
}

/// Checks that `available` bytes after the header hold the data the header promises.
pub(crate) fn check_data_len(h: &NpyHeader, available: u64) -> Result<()> {
    let need = h.nbytes() as u64;
    if available < need {
        return Err(Error::Data(format!(
            "shape {:?} of {} needs {need} bytes of data, but only {available} bytes follow the \
             header (the file is truncated)",
            h.shape,
            h.descr()
        )));
    }
    Ok(())
}

/// Builds a tensor from raw file data held in `raw`, converting byte and memory order.
pub(crate) fn tensor_from_raw(h: &NpyHeader, raw: BufferMut) -> Result<Tensor> {
    let swap = !h.byte_order.is_native() && h.dtype.has_byte_order();
    let buf = into_c_native(raw, h.dtype, &h.shape, swap, h.fortran_order)?;
    Tensor::new(h.dtype, &h.shape, buf.freeze())
}

/// Builds a tensor from a copy of raw file data, converting byte and memory order.
pub(crate) fn tensor_from_raw_copy(h: &NpyHeader, raw: &[u8]) -> Result<Tensor> {
    let mut copy = BufferMut::zeroed(raw.len())?;
    copy.as_mut_slice().copy_from_slice(raw);
    tensor_from_raw(h, copy)
}

/// An open `.npy` file whose header has been read and checked, and whose data has not.
///
/// ```
/// # use npyflow_format::{Tensor, npy::{write_npy, NpyFile}};
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("x.npy");
/// # write_npy(&path, &Tensor::from_vec(vec![0u8; 6], &[2, 3]).unwrap()).unwrap();
/// let f = NpyFile::open(&path).unwrap();
/// assert_eq!(f.header().shape, [2, 3]);
/// assert_eq!(f.header().descr(), "|u1");
/// let t = f.load().unwrap();
/// ```
pub struct NpyFile {
    path: PathBuf,
    file: SizedFile,
    header: NpyHeader,
    version: Version,
    data_offset: u64,
    options: ReadOptions,
}

impl NpyFile {
    /// Opens `path` and reads its header, with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<NpyFile> {
        Self::open_with(path, &ReadOptions::default())
    }

    /// Opens `path` and reads its header.
    pub fn open_with(path: impl AsRef<Path>, options: &ReadOptions) -> Result<NpyFile> {
        let path = path.as_ref();
        let file = SizedFile::open(path)?;
        let (header, version, data_offset) =
            read_header_at(&file, 0, file.size(), options.max_header_size)
                .context(path.display())?;
        check_data_len(&header, file.size() - data_offset).context(path.display())?;
        Ok(NpyFile {
            path: path.to_owned(),
            file,
            header,
            version,
            data_offset,
            options: options.clone(),
        })
    }

    /// The header.
    pub fn header(&self) -> &NpyHeader {
        &self.header
    }

    /// The format version of the file.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Where the data starts in the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads `buf.len()` bytes of raw data (file order, file byte order) from `offset` into
    /// the data.
    pub fn read_raw_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        if offset + buf.len() as u64 > self.header.nbytes() as u64 {
            return Err(Error::InvalidArgument(format!(
                "{}: bytes {offset}..{} are past the end of the data",
                self.path.display(),
                offset + buf.len() as u64
            )));
        }
        self.file
            .read_exact_at(buf, self.data_offset + offset)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// The array as a tensor in C order and native byte order.
    ///
    /// Data that is already so, and aligned, is memory-mapped: the tensor is a window onto
    /// the file and costs no copy and no anonymous memory. Other data is read and converted
    /// in one copy.
    pub fn load(&self) -> Result<Tensor> {
        let h = &self.header;
        let nbytes = h.nbytes();
        let aligned = self.data_offset % h.dtype.alignment() as u64 == 0;
        if self.options.mmap && nbytes > 0 && h.is_c_native() && aligned {
            let map = MappedFile::map(self.file.file(), &self.path)
                .map_err(|e| Error::io(&self.path, e))?;
            let start = self.data_offset as usize;
            let buffer = Buffer::from_shared(Arc::new(map)).slice(start..start + nbytes)?;
            return Tensor::new(h.dtype, &h.shape, buffer).context(self.path.display());
        }
        let mut raw = BufferMut::zeroed(nbytes).context(self.path.display())?;
        self.read_raw_at(raw.as_mut_slice(), 0)?;
        tensor_from_raw(h, raw).context(self.path.display())
    }
}

/// Reads a `.npy` file as a tensor, memory-mapped when the data can be used in place.
///
/// Unlike `np.load`, the result is always C order and native byte order: Fortran-order or
/// byte-swapped data is converted (one copy) so every tensor can be sliced along its first
/// axis in O(1).
///
/// A mapped file must not be rewritten while the tensor lives (npyflow's own writers write a
/// new file and rename it into place, which is safe: the map keeps the old file). If another
/// process truncates it, reading the lost part does not crash the process (it would raise
/// `SIGBUS`): the lost pages read as zeros, and npyflow's reads of the tensor (taking rows
/// with [`Tensor::row`]/[`Tensor::slice_rows`], batching, casting, applying ops) fail with
/// an error naming the file: `x.npy: the file was truncated while memory-mapped (from 4128
/// to 1000 bytes); elements read from it since may be zeros`. Check a tensor you read
/// yourself with [`Tensor::check_intact`]. Details and limits (Linux only; at most
/// [`MAX_GUARDED_MAPS`](crate::guard::MAX_GUARDED_MAPS) maps at once) are in
/// [`guard`](crate::guard).
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor> {
    NpyFile::open(path)?.load()
}

/// Reads a `.npy` file held in memory; the tensor shares `bytes` when possible.
pub fn read_npy_bytes(bytes: &Buffer) -> Result<Tensor> {
    let src = bytes.as_slice();
    let (h, _, offset) = read_header_at(src, 0, src.size(), DEFAULT_MAX_HEADER_SIZE)?;
    let offset = offset as usize;
    check_data_len(&h, (src.len() - offset) as u64)?;
    let data = bytes.slice(offset..offset + h.nbytes())?;
    let aligned = data.as_slice().as_ptr() as usize % h.dtype.alignment() == 0;
    if h.is_c_native() && aligned {
        return Tensor::new(h.dtype, &h.shape, data);
    }
    tensor_from_raw_copy(&h, data.as_slice())
}

/// How a `.npy` file is written.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Force a format version; by default 1.0, or 2.0 when the header needs it, as NumPy does.
    pub version: Option<Version>,
    /// The byte order of the data in the file (native by default).
    pub byte_order: ByteOrder,
    /// Write the data in Fortran order (as NumPy does for F-contiguous arrays).
    pub fortran_order: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            version: None,
            byte_order: ByteOrder::NATIVE,
            fortran_order: false,
        }
    }
}

/// Writes `tensor` in `.npy` format to `out`, as NumPy's `np.save` would.
pub fn write_npy_to(out: &mut impl Write, tensor: &Tensor, options: &WriteOptions) -> Result<()> {
    let header = npy_header_for(tensor, options);
    let io = |e| Error::Data(format!("cannot write: {e}"));
    out.write_all(&header.encode(options.version)?)
        .map_err(io)?;
    let swap = !options.byte_order.is_native() && tensor.dtype().has_byte_order();
    if header.fortran_order {
        let mut data = reverse_axes(tensor.as_bytes(), tensor.shape(), tensor.dtype().itemsize())?;
        if swap {
            swap_in_place(data.as_mut_slice(), tensor.dtype().swap_unit());
        }
        out.write_all(data.as_slice()).map_err(io)?;
    } else if swap {
        let unit = tensor.dtype().itemsize().max(1);
        let step = (1 << 20) / unit * unit + unit;
        let mut chunk = Vec::with_capacity(step);
        for piece in tensor.as_bytes().chunks(step) {
            chunk.clear();
            chunk.extend_from_slice(piece);
            swap_in_place(&mut chunk, tensor.dtype().swap_unit());
            out.write_all(&chunk).map_err(io)?;
        }
    } else {
        out.write_all(tensor.as_bytes()).map_err(io)?;
    }
    Ok(())
}

/// The header `write_npy_to` writes for `tensor`.
pub(crate) fn npy_header_for(tensor: &Tensor, options: &WriteOptions) -> NpyHeader {
    // NumPy writes fortran_order True only for arrays that are not also C-contiguous, which
    // for a tensor means: more than one axis longer than 1.
    let fortran = options.fortran_order && tensor.shape().iter().filter(|&&d| d > 1).count() > 1;
    NpyHeader {
        dtype: tensor.dtype(),
        byte_order: options.byte_order,
        fortran_order: fortran,
        shape: tensor.shape().to_vec(),
    }
}

/// Writes `tensor` to a `.npy` file at `path` with default options.
///
/// The file is written under a temporary name in the same directory and renamed into place,
/// so a reader never sees a half-written file and a failed write leaves any old file intact.
pub fn write_npy(path: impl AsRef<Path>, tensor: &Tensor) -> Result<()> {
    write_npy_with(path, tensor, &WriteOptions::default())
}

/// Writes `tensor` to a `.npy` file at `path` (atomically, as [`write_npy`]).
pub fn write_npy_with(
    path: impl AsRef<Path>,
    tensor: &Tensor,
    options: &WriteOptions,
) -> Result<()> {
    let path = path.as_ref();
    write_atomically(path, |w| write_npy_to(w, tensor, options))
}

/// Runs `write` on a temporary file next to `path`, then renames it to `path`.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&mut File>) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(path, e))?;
    {
        let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        write(&mut w).context(path.display())?;
        w.flush().map_err(|e| Error::io(path, e))?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Whether a tensor's memory is a map of a file (it costs no anonymous memory).
pub fn is_mapped(t: &Tensor) -> bool {
    t.buffer().kind() == BufferKind::Mapped
}

/// A `.npy` object read by URL (`s3://`, `gs://`, `az://`, `http(s)://`, `file://`; see
/// [`storage`](crate::storage)): its header read by one ranged GET when it was opened, its
/// rows read by range on demand. The object's ETag is fixed when it is opened: a read after
/// the object was replaced is an error, never rows of two versions.
///
/// ```
/// use npyflow_format::{npy::{write_npy, RemoteNpy}, storage::StorageOptions, Tensor};
/// # let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("x.npy");
/// write_npy(&path, &Tensor::from_vec((0..12i32).collect(), &[4, 3])?)?;
/// let url = format!("file://{}", path.display());
/// let f = RemoteNpy::open(&url, &StorageOptions::new(), &Default::default())?;
/// assert_eq!(f.header().shape, [4, 3]);
/// assert_eq!(f.read_rows(1..3)?.view::<i32>()?, [3, 4, 5, 6, 7, 8]);
/// # Ok::<(), npyflow_format::Error>(())
/// ```
pub struct RemoteNpy {
    object: crate::storage::Object,
    header: NpyHeader,
    version: Version,
    data_offset: u64,
}

impl RemoteNpy {
    /// Opens the object at `url`: one `HEAD` and one ranged GET for the header.
    pub fn open(
        url: &str,
        storage: &crate::storage::StorageOptions,
        options: &ReadOptions,
    ) -> Result<RemoteNpy> {
        let object = crate::storage::Object::open(url, storage)?;
        Self::from_object(object, options)
    }

    /// Reads the header of an object already opened.
    pub fn from_object(object: crate::storage::Object, options: &ReadOptions) -> Result<RemoteNpy> {
        let url = object.url().to_string();
        let src = crate::storage::RemoteFile::new(object);
        let (header, version, data_offset) =
            read_header_at(&src, 0, src.size(), options.max_header_size).context(&url)?;
        check_data_len(&header, src.size() - data_offset).context(&url)?;
        Ok(RemoteNpy {
            object: src.object().clone(),
            header,
            version,
            data_offset,
        })
    }

    /// The header.
    pub fn header(&self) -> &NpyHeader {
        &self.header
    }

    /// The format version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Where the data starts in the object.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The object (URL, size, ETag).
    pub fn object(&self) -> &crate::storage::Object {
        &self.object
    }

    /// The number of rows (the first axis; 1 for a scalar).
    pub fn rows(&self) -> u64 {
        self.header.shape.first().map_or(1, |&n| n as u64)
    }

    /// The bytes of one row in the object.
    pub fn row_bytes(&self) -> u64 {
        let rows = self.rows();
        if rows == 0 {
            let inner: usize = self.header.shape.iter().skip(1).product();
            return (inner * self.header.dtype.itemsize()) as u64;
        }
        self.header.nbytes() as u64 / rows
    }

    /// Whether rows are contiguous in the object (C order, or at most one axis longer
    /// than 1), so that a range of rows is one byte range.
    pub fn rows_contiguous(&self) -> bool {
        !self.header.fortran_order || self.header.shape.iter().filter(|&&d| d > 1).count() <= 1
    }

    /// The byte range of rows `rows` in the object (for contiguous rows).
    pub fn byte_range(&self, rows: std::ops::Range<u64>) -> std::ops::Range<u64> {
        let rb = self.row_bytes();
        self.data_offset + rows.start * rb..self.data_offset + rows.end * rb
    }

    /// Rows `rows` as a tensor in C order and native byte order, built from their raw
    /// bytes `raw` as they are in the object.
    pub fn rows_from_raw(&self, rows: std::ops::Range<u64>, raw: &[u8]) -> Result<Tensor> {
        let mut h = self.header.clone();
        if let Some(first) = h.shape.first_mut() {
            *first = (rows.end - rows.start) as usize;
        }
        if raw.len() != h.nbytes() {
            return Err(Error::Data(format!(
                "{}: rows {}..{} need {} bytes, got {}",
                self.object.url(),
                rows.start,
                rows.end,
                h.nbytes(),
                raw.len()
            )));
        }
        tensor_from_raw_copy(&h, raw)
    }

    /// `n` rows as a tensor in C order and native byte order, built in place from `raw`,
    /// which holds their bytes as they are in the object (rows of a C-order array, in any
    /// order the caller chose).
    pub fn rows_from_buffer(&self, n: u64, mut raw: BufferMut) -> Result<Tensor> {
        let mut h = self.header.clone();
        if let Some(first) = h.shape.first_mut() {
            *first = n as usize;
        }
        if raw.as_mut_slice().len() != h.nbytes() {
            return Err(Error::Data(format!(
                "{}: {n} rows need {} bytes, got {}",
                self.object.url(),
                h.nbytes(),
                raw.as_mut_slice().len()
            )));
        }
        tensor_from_raw(&h, raw)
    }

    /// Rows `rows` (of the first axis) as a tensor: one ranged GET when rows are contiguous;
    /// a Fortran-order array of several long axes is read whole first.
    pub fn read_rows(&self, rows: std::ops::Range<u64>) -> Result<Tensor> {
        if rows.start > rows.end || rows.end > self.rows() {
            return Err(Error::InvalidArgument(format!(
                "{}: rows {}..{} are not within its {} rows",
                self.object.url(),
                rows.start,
                rows.end,
                self.rows()
            )));
        }
        if !self.rows_contiguous() {
            return self
                .load()?
                .slice_rows(rows.start as usize..rows.end as usize);
        }
        let raw = self.object.read_range(self.byte_range(rows.clone()))?;
        self.rows_from_raw(rows, &raw)
    }

    /// The whole array, in C order and native byte order (read in ranges of 8 MiB, several
    /// in flight).
    pub fn load(&self) -> Result<Tensor> {
        let n = self.header.nbytes() as u64;
        const PIECE: u64 = 8 << 20;
        let ranges: Vec<_> = (0..n.div_ceil(PIECE))
            .map(|i| self.data_offset + i * PIECE..self.data_offset + ((i + 1) * PIECE).min(n))
            .collect();
        let parts = self.object.read_ranges(&ranges)?;
        let mut raw = BufferMut::zeroed(n as usize)?;
        let mut at = 0;
        for p in parts {
            raw.as_mut_slice()[at..at + p.len()].copy_from_slice(&p);
            at += p.len();
        }
        tensor_from_raw(&self.header, raw).context(self.object.url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;

    #[test]
    fn load_maps_native_c_order_data() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let t = Tensor::from_vec((0..1000).map(|i| i as f64).collect(), &[100, 10]).unwrap();
        write_npy(&p, &t).unwrap();
        let back = read_npy(&p).unwrap();
        assert!(is_mapped(&back));
        assert_eq!(back, t);
        assert_eq!(back.row(99).unwrap().view::<f64>().unwrap()[9], 999.0);
        // Without mmap: a heap copy with the same content.
        let opts = ReadOptions {
            mmap: false,
            ..Default::default()
        };
        let copy = NpyFile::open_with(&p, &opts).unwrap().load().unwrap();
        assert!(!is_mapped(&copy));
        assert_eq!(copy, t);
    }

    #[test]
    fn big_endian_and_fortran_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::from_vec(
            (0..24).map(|i| i * 1000 + 7).collect::<Vec<i32>>(),
            &[2, 3, 4],
        )
        .unwrap();
        for byte_order in [ByteOrder::Little, ByteOrder::Big] {
            for fortran_order in [false, true] {
                let p = dir
                    .path()
                    .join(format!("{byte_order:?}{fortran_order}.npy"));
                let opts = WriteOptions {
                    byte_order,
                    fortran_order,
                    version: None,
                };
                write_npy_with(&p, &t, &opts).unwrap();
                let f = NpyFile::open(&p).unwrap();
                assert_eq!(f.header().byte_order, byte_order);
                assert_eq!(f.header().fortran_order, fortran_order);
                assert_eq!(f.load().unwrap(), t, "{byte_order:?} {fortran_order}");
                let bytes = Buffer::from_vec(std::fs::read(&p).unwrap());
                assert_eq!(read_npy_bytes(&bytes).unwrap(), t);
            }
        }
    }

    #[test]
    fn truncated_data_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.npy");
        write_npy(&p, &Tensor::zeros(DType::Float32, &[10]).unwrap()).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
        let e = NpyFile::open(&p).err().unwrap().to_string();
        assert!(e.contains("t.npy") && e.contains("needs 40 bytes"), "{e}");
    }

    #[test]
    fn empty_and_scalar_arrays() {
        let dir = tempfile::tempdir().unwrap();
        for t in [
            Tensor::zeros(DType::Float32, &[3, 0]).unwrap(),
            Tensor::zeros(DType::Unicode(2), &[0]).unwrap(),
            Tensor::scalar(5u16),
        ] {
            let p = dir.path().join("e.npy");
            write_npy(&p, &t).unwrap();
            assert_eq!(read_npy(&p).unwrap(), t);
        }
    }
}
