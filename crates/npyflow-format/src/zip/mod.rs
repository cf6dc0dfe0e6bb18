//! The zip container of `.npz` files: just what `.npz` needs, read strictly.
//!
//! Reading parses the end-of-central-directory record (and its zip64 form), the central
//! directory and each member's local header, checking every offset and size against the
//! file before it is used. Members can be stored or deflated; encrypted members, other
//! compression methods and multi-disk archives are refused. Names are decoded (UTF-8 when
//! flagged, CP437 otherwise, as Python's `zipfile` does) and only ever used as keys.
//!
//! Writing produces stored or deflated members with zip64 records where sizes need them, a
//! fixed timestamp (so equal arrays give equal files), and, for stored members, padding in the
//! local header's extra field so each member's array data starts at a multiple of 64 bytes
//! and can later be memory-mapped in place.

use std::io::{self, Seek, SeekFrom, Write};

use flate2::{Decompress, FlushDecompress, Status};

use crate::error::{Error, Result};
use crate::source::ReadAt;

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EXTRA_ID: u16 = 0x0001;
/// The extra-field id npyflow uses for alignment padding (the one zipalign tools use).
const ALIGN_EXTRA_ID: u16 = 0xd935;
const EOCD_LEN: usize = 22;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: usize = 30;

/// Deflate cannot expand data by more than about 1032 to 1; a member claiming more is forged.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// How a member's bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// As is (`np.savez`).
    Stored,
    /// Deflated (`np.savez_compressed`).
    Deflated,
}

/// One member of a zip archive, as its central directory and local header describe it.
#[derive(Clone, Debug)]
pub struct ZipEntry {
    /// The member's name, decoded.
    pub name: String,
    /// How the bytes are stored.
    pub compression: Compression,
    /// CRC-32 of the uncompressed bytes.
    pub crc32: u32,
    /// Bytes in the archive.
    pub compressed_size: u64,
    /// Bytes once uncompressed.
    pub size: u64,
    /// Where the member's (possibly compressed) bytes start in the archive.
    pub data_offset: u64,
}

/// A problem with one member that does not spoil the others.
#[derive(Debug)]
pub struct BadEntry {
    /// The member's name, decoded.
    pub name: String,
    /// What is wrong with it.
    pub error: Error,
}

fn zerr(msg: impl Into<String>) -> Error {
    Error::Zip(msg.into())
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn read_at(src: &(impl ReadAt + ?Sized), offset: u64, len: usize, what: &str) -> Result<Vec<u8>> {
    let end = offset.checked_add(len as u64);
    if end.is_none_or(|e| e > src.size()) {
        return Err(zerr(format!(
            "the {what} at offset {offset} runs past the end of the file ({} bytes)",
            src.size()
        )));
    }
    let mut buf = vec![0u8; len];
    src.read_exact_at(&mut buf, offset)
        .map_err(|e| zerr(format!("cannot read the {what}: {e}")))?;
    Ok(buf)
}

const CP437_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

fn decode_name(raw: &[u8], utf8: bool) -> Result<String> {
    if utf8 {
        return String::from_utf8(raw.to_vec())
            .map_err(|_| zerr("a member name flagged as UTF-8 is not valid UTF-8"));
    }
    let high: Vec<char> = CP437_HIGH.chars().collect();
    Ok(raw
        .iter()
        .map(|&b| {
            if b < 128 {
                b as char
            } else {
                high[b as usize - 128]
            }
        })
        .collect())
}

/// The zip64 values of an extra field, for the fields the fixed part marked as `0xFFFFFFFF`.
fn apply_zip64(
    extra: &[u8],
    size: &mut u64,
    csize: &mut u64,
    offset: Option<&mut u64>,
) -> Result<()> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let id = u16_at(extra, at);
        let len = u16_at(extra, at + 2) as usize;
        let body = extra
            .get(at + 4..at + 4 + len)
            .ok_or_else(|| zerr("an extra field runs past its end"))?;
        if id == ZIP64_EXTRA_ID {
            let mut pos = 0;
            let mut take = |field: &mut u64| -> Result<()> {
                if *field == u32::MAX as u64 {
                    if pos + 8 > body.len() {
                        return Err(zerr("a zip64 extra field is too short"));
                    }
                    *field = u64_at(body, pos);
                    pos += 8;
                }
                Ok(())
            };
            take(size)?;
            take(csize)?;
            if let Some(o) = offset {
                take(o)?;
            }
            return Ok(());
        }
        at += 4 + len;
    }
    Ok(())
}

/// Finds the central directory: returns (entry count, offset, size, end of the directory).
fn find_central_directory(src: &(impl ReadAt + ?Sized)) -> Result<(u64, u64, u64, u64)> {
    let len = src.size();
    if len < EOCD_LEN as u64 {
        return Err(zerr(format!(
            "{len} bytes is too short for a zip archive (the end record alone is {EOCD_LEN})"
        )));
    }
    let tail_len = len.min(EOCD_LEN as u64 + u16::MAX as u64) as usize;
    let tail_start = len - tail_len as u64;
    let tail = read_at(src, tail_start, tail_len, "end of the archive")?;
    // The last end record whose comment length reaches exactly to the end of the file.
    let pos = (0..=tail_len - EOCD_LEN)
        .rev()
        .find(|&i| {
            u32_at(&tail, i) == EOCD_SIG
                && i + EOCD_LEN + u16_at(&tail, i + 20) as usize == tail_len
        })
        .ok_or_else(|| {
            zerr("no end-of-central-directory record: not a zip archive, or truncated")
        })?;
    let eocd = &tail[pos..pos + EOCD_LEN];
    let eocd_offset = tail_start + pos as u64;
    let (disk, cd_disk) = (u16_at(eocd, 4), u16_at(eocd, 6));
    let (mut entries, mut cd_size, mut cd_offset) = (
        u16_at(eocd, 10) as u64,
        u32_at(eocd, 12) as u64,
        u32_at(eocd, 16) as u64,
    );
    let mut cd_end_limit = eocd_offset;
    let needs_zip64 =
        entries == u16::MAX as u64 || cd_size == u32::MAX as u64 || cd_offset == u32::MAX as u64;
    if eocd_offset >= 20 {
        let loc = read_at(src, eocd_offset - 20, 20, "zip64 locator")?;
        if u32_at(&loc, 0) == ZIP64_LOCATOR_SIG {
            let z_offset = u64_at(&loc, 8);
            if u32_at(&loc, 16) > 1 || u32_at(&loc, 4) != 0 {
                return Err(zerr("multi-disk archives are not supported"));
            }
            let rec = read_at(src, z_offset, 56, "zip64 end record")?;
            if u32_at(&rec, 0) != ZIP64_EOCD_SIG {
                return Err(zerr(
                    "the zip64 locator does not point at a zip64 end record",
                ));
            }
            if u32_at(&rec, 16) != 0 || u32_at(&rec, 20) != 0 {
                return Err(zerr("multi-disk archives are not supported"));
            }
            entries = u64_at(&rec, 32);
            cd_size = u64_at(&rec, 40);
            cd_offset = u64_at(&rec, 48);
            cd_end_limit = z_offset;
        } else if needs_zip64 {
            return Err(zerr(
                "the end record asks for zip64 values, but there is no zip64 locator",
            ));
        }
    } else if needs_zip64 {
        return Err(zerr(
            "the end record asks for zip64 values, but there is no zip64 locator",
        ));
    }
    if disk != 0 || cd_disk != 0 {
        return Err(zerr("multi-disk archives are not supported"));
    }
    let cd_end = cd_offset
        .checked_add(cd_size)
        .filter(|&e| e <= cd_end_limit)
        .ok_or_else(|| {
            zerr(format!(
                "the central directory ({cd_size} bytes at offset {cd_offset}) runs past the \
                 end record at {cd_end_limit}"
            ))
        })?;
    if entries > cd_size / CENTRAL_LEN as u64 {
        return Err(zerr(format!(
            "the archive claims {entries} members, more than its {cd_size}-byte directory can hold"
        )));
    }
    Ok((entries, cd_offset, cd_size, cd_end))
}

/// Reads the directory of a zip archive: the good members in archive order, and the members
/// that are unreadable (encrypted, unsupported compression, inconsistent headers), each with
/// its reason. An archive whose directory itself is broken is an error.
pub fn read_directory(src: &(impl ReadAt + ?Sized)) -> Result<Vec<Result<ZipEntry, BadEntry>>> {
    let (count, cd_offset, cd_size, _) = find_central_directory(src)?;
    let cd = read_at(src, cd_offset, cd_size as usize, "central directory")?;
    let mut out = Vec::with_capacity(count as usize);
    let mut at = 0usize;
    for i in 0..count {
        if at + CENTRAL_LEN > cd.len() || u32_at(&cd, at) != CENTRAL_SIG {
            return Err(zerr(format!("central directory entry {i} is malformed")));
        }
        let e = &cd[at..];
        let flags = u16_at(e, 8);
        let method = u16_at(e, 10);
        let crc32 = u32_at(e, 16);
        let mut csize = u32_at(e, 20) as u64;
        let mut size = u32_at(e, 24) as u64;
        let (nlen, xlen, clen) = (
            u16_at(e, 28) as usize,
            u16_at(e, 30) as usize,
            u16_at(e, 32) as usize,
        );
        let mut local = u32_at(e, 42) as u64;
        let total = CENTRAL_LEN + nlen + xlen + clen;
        if at + total > cd.len() {
            return Err(zerr(format!(
                "central directory entry {i} runs past the directory"
            )));
        }
        let raw_name = &e[CENTRAL_LEN..CENTRAL_LEN + nlen];
        let extra = &e[CENTRAL_LEN + nlen..CENTRAL_LEN + nlen + xlen];
        at += total;
        let name = decode_name(raw_name, flags & 0x800 != 0)?;
        let entry = (|| -> Result<ZipEntry> {
            apply_zip64(extra, &mut size, &mut csize, Some(&mut local))?;
            if flags & 0x1 != 0 {
                return Err(zerr(
                    "the member is encrypted, which npyflow does not support",
                ));
            }
            let compression = match method {
                0 => Compression::Stored,
                8 => Compression::Deflated,
                m => {
                    let known = match m {
                        12 => " (bzip2)",
                        14 => " (lzma)",
                        93 => " (zstandard)",
                        _ => "",
                    };
                    return Err(zerr(format!(
                        "compression method {m}{known} is not supported (only stored and deflated)"
                    )));
                }
            };
            if compression == Compression::Stored && csize != size {
                return Err(zerr(format!(
                    "a stored member has {csize} bytes in the archive but claims {size} bytes"
                )));
            }
            if compression == Compression::Deflated
                && size > csize.saturating_mul(MAX_DEFLATE_RATIO).saturating_add(1024)
            {
                return Err(zerr(format!(
                    "the member claims {size} bytes once inflated from {csize} compressed bytes, \
                     more than deflate can produce: the archive is corrupt or hostile"
                )));
            }
            let lh = read_at(src, local, LOCAL_LEN, "local header")?;
            if u32_at(&lh, 0) != LOCAL_SIG {
                return Err(zerr(format!("no local header at offset {local}")));
            }
            let (lnlen, lxlen) = (u16_at(&lh, 26) as usize, u16_at(&lh, 28) as usize);
            let lname = read_at(src, local + LOCAL_LEN as u64, lnlen, "local header name")?;
            if lname != raw_name {
                return Err(zerr(format!(
                    "the name in the local header ({:?}) differs from the directory's",
                    String::from_utf8_lossy(&lname)
                )));
            }
            let data_offset = local + (LOCAL_LEN + lnlen + lxlen) as u64;
            if data_offset
                .checked_add(csize)
                .is_none_or(|end| end > cd_offset)
            {
                return Err(zerr(format!(
                    "the member's {csize} bytes at offset {data_offset} run past the start of \
                     the central directory (the archive is truncated or corrupt)"
                )));
            }
            Ok(ZipEntry {
                name: name.clone(),
                compression,
                crc32,
                compressed_size: csize,
                size,
                data_offset,
            })
        })();
        out.push(entry.map_err(|error| BadEntry { name, error }));
    }
    Ok(out)
}

/// Reads a member's uncompressed bytes in order, inflating as it goes, and checks at the end
/// that it produced exactly the declared size with the declared CRC-32.
pub struct EntryReader<'a, R: ReadAt + ?Sized> {
    src: &'a R,
    entry: &'a ZipEntry,
    produced: u64,
    consumed: u64,
    crc: crc32fast::Hasher,
    verify_crc: bool,
    inflater: Option<Inflater>,
    done: bool,
}

struct Inflater {
    state: Decompress,
    input: Vec<u8>,
    start: usize,
    end: usize,
}

impl<'a, R: ReadAt + ?Sized> EntryReader<'a, R> {
    /// A reader at the start of `entry`'s bytes.
    pub fn new(src: &'a R, entry: &'a ZipEntry, verify_crc: bool) -> Self {
        let inflater = (entry.compression == Compression::Deflated).then(|| Inflater {
            state: Decompress::new(false),
            input: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        });
        EntryReader {
            src,
            entry,
            produced: 0,
            consumed: 0,
            crc: crc32fast::Hasher::new(),
            verify_crc,
            inflater,
            done: false,
        }
    }

    /// Bytes produced so far.
    pub fn position(&self) -> u64 {
        self.produced
    }

    /// Fills `out` completely, or fails if the member ends first.
    pub fn read_exact(&mut self, mut out: &mut [u8]) -> Result<()> {
        while !out.is_empty() {
            let n = self.read(out)?;
            if n == 0 {
                return Err(Error::Data(format!(
                    "the member ends after {} bytes, short of what its header needs",
                    self.produced
                )));
            }
            out = &mut out[n..];
        }
        Ok(())
    }

    /// Reads up to `out.len()` bytes; 0 means the member is finished (and checked).
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize> {
        let left = self.entry.size - self.produced;
        if left == 0 {
            self.finish()?;
            return Ok(0);
        }
        let want = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let out = &mut out[..want];
        let n = match &mut self.inflater {
            None => {
                self.src
                    .read_exact_at(out, self.entry.data_offset + self.produced)
                    .map_err(|e| Error::Data(format!("cannot read the member: {e}")))?;
                want
            }
            Some(inf) => {
                let mut n = 0;
                while n == 0 {
                    if inf.start == inf.end {
                        let remaining = self.entry.compressed_size - self.consumed;
                        let take = remaining.min(inf.input.len() as u64) as usize;
                        if take > 0 {
                            self.src
                                .read_exact_at(
                                    &mut inf.input[..take],
                                    self.entry.data_offset + self.consumed,
                                )
                                .map_err(|e| Error::Data(format!("cannot read the member: {e}")))?;
                        }
                        self.consumed += take as u64;
                        inf.start = 0;
                        inf.end = take;
                    }
                    let (in_before, out_before) = (inf.state.total_in(), inf.state.total_out());
                    let status = inf
                        .state
                        .decompress(
                            &inf.input[inf.start..inf.end],
                            &mut out[n..],
                            FlushDecompress::None,
                        )
                        .map_err(|e| Error::Data(format!("the deflated data is corrupt: {e}")))?;
                    inf.start += (inf.state.total_in() - in_before) as usize;
                    n += (inf.state.total_out() - out_before) as usize;
                    let stalled =
                        inf.state.total_in() == in_before && inf.state.total_out() == out_before;
                    if n == 0 && (status == Status::StreamEnd || (stalled && inf.start == inf.end))
                    {
                        return Err(Error::Data(format!(
                            "the deflated data ends after {} bytes, but the member claims {}",
                            self.produced, self.entry.size
                        )));
                    }
                    if stalled {
                        // Input and room for output, yet no progress: never loop on it.
                        return Err(Error::Data(
                            "the deflated data is corrupt (the inflater makes no progress)".into(),
                        ));
                    }
                }
                n
            }
        };
        self.crc.update(&out[..n]);
        self.produced += n as u64;
        Ok(n)
    }

    fn finish(&mut self) -> Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let crc = std::mem::take(&mut self.crc).finalize();
        if self.verify_crc && crc != self.entry.crc32 {
            return Err(Error::Data(format!(
                "CRC-32 mismatch: the member's bytes give {crc:08x}, the archive says {:08x} \
                 (the data is corrupt)",
                self.entry.crc32
            )));
        }
        Ok(())
    }
}

/// Writes a zip archive member by member.
pub struct ZipWriter<W: Write + Seek> {
    out: W,
    central: Vec<u8>,
    count: u64,
}

struct CountingCrc<'a, W: Write> {
    out: &'a mut W,
    written: u64,
}

impl<W: Write> Write for CountingCrc<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Fixed DOS date (1980-01-01) and time (00:00), so archives are reproducible.
const DOS_DATE: u16 = 0x0021;
const DOS_TIME: u16 = 0;

impl<W: Write + Seek> ZipWriter<W> {
    /// A writer that starts the archive at the current position of `out`.
    pub fn new(out: W) -> Self {
        ZipWriter {
            out,
            central: Vec::new(),
            count: 0,
        }
    }

    /// Adds a member named `name` whose bytes are produced by `write` (called once).
    /// `data_align` asks that the byte at `data_align.1` within the member start at a
    /// multiple of `data_align.0` in the archive (stored members only).
    pub fn add(
        &mut self,
        name: &str,
        compression: Compression,
        size_hint: u64,
        data_align: Option<(u64, u64)>,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let zip64 = size_hint >= u32::MAX as u64;
        let local = self.out.stream_position()?;
        let name_bytes = name.as_bytes();
        let flags: u16 = if name.is_ascii() { 0 } else { 0x800 };
        let method: u16 = match compression {
            Compression::Stored => 0,
            Compression::Deflated => 8,
        };
        let mut extra = Vec::new();
        if zip64 {
            extra.extend_from_slice(&ZIP64_EXTRA_ID.to_le_bytes());
            extra.extend_from_slice(&16u16.to_le_bytes());
            extra.extend_from_slice(&[0u8; 16]);
        }
        if let (Compression::Stored, Some((align, within))) = (compression, data_align) {
            let start = local + (LOCAL_LEN + name_bytes.len() + extra.len()) as u64 + within;
            let mut pad = ((align - start % align) % align) as usize;
            if pad != 0 && pad < 4 {
                pad += align as usize;
            }
            if pad >= 4 {
                extra.extend_from_slice(&ALIGN_EXTRA_ID.to_le_bytes());
                extra.extend_from_slice(&((pad - 4) as u16).to_le_bytes());
                extra.resize(extra.len() + pad - 4, 0);
            }
        }
        let version: u16 = if zip64 { 45 } else { 20 };
        let mut lh = Vec::with_capacity(LOCAL_LEN + name_bytes.len() + extra.len());
        lh.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        lh.extend_from_slice(&version.to_le_bytes());
        lh.extend_from_slice(&flags.to_le_bytes());
        lh.extend_from_slice(&method.to_le_bytes());
        lh.extend_from_slice(&DOS_TIME.to_le_bytes());
        lh.extend_from_slice(&DOS_DATE.to_le_bytes());
        lh.extend_from_slice(&[0u8; 12]); // crc and sizes, patched below
        lh.extend_from_slice(&(name_bytes.len() as u16).to_le_bytes());
        lh.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        lh.extend_from_slice(name_bytes);
        lh.extend_from_slice(&extra);
        self.out.write_all(&lh)?;

        // Stream the member, hashing the uncompressed bytes and counting the stored ones.
        let mut crc = crc32fast::Hasher::new();
        let mut size = 0u64;
        let csize;
        {
            let mut counter = CountingCrc {
                out: &mut self.out,
                written: 0,
            };
            {
                let mut hashing = HashingWriter {
                    inner: match compression {
                        Compression::Stored => Sink::Plain(&mut counter),
                        Compression::Deflated => Sink::Deflate(flate2::write::DeflateEncoder::new(
                            &mut counter,
                            flate2::Compression::default(),
                        )),
                    },
                    crc: &mut crc,
                    size: &mut size,
                };
                write(&mut hashing)?;
                hashing.finish()?;
            }
            csize = counter.written;
        }
        let crc = crc.finalize();
        if !zip64 && (size >= u32::MAX as u64 || csize >= u32::MAX as u64) {
            return Err(io::Error::other(
                "a member grew past 4 GiB beyond its size hint; pass a size hint",
            ));
        }
        let end = self.out.stream_position()?;
        self.out.seek(SeekFrom::Start(local + 14))?;
        self.out.write_all(&crc.to_le_bytes())?;
        if zip64 {
            self.out.write_all(&[0xff; 8])?;
            self.out.seek(SeekFrom::Start(
                local + (LOCAL_LEN + name_bytes.len()) as u64 + 4,
            ))?;
            self.out.write_all(&size.to_le_bytes())?;
            self.out.write_all(&csize.to_le_bytes())?;
        } else {
            self.out.write_all(&(csize as u32).to_le_bytes())?;
            self.out.write_all(&(size as u32).to_le_bytes())?;
        }
        self.out.seek(SeekFrom::Start(end))?;

        // The central directory entry, with zip64 values where they do not fit.
        let mut z64 = Vec::new();
        let mut field32 = |v: u64| -> u32 {
            if v >= u32::MAX as u64 {
                z64.extend_from_slice(&v.to_le_bytes());
                u32::MAX
            } else {
                v as u32
            }
        };
        let (usize32, csize32, local32) = (field32(size), field32(csize), field32(local));
        let mut cx = Vec::new();
        if !z64.is_empty() {
            cx.extend_from_slice(&ZIP64_EXTRA_ID.to_le_bytes());
            cx.extend_from_slice(&(z64.len() as u16).to_le_bytes());
            cx.extend_from_slice(&z64);
        }
        let c = &mut self.central;
        c.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
        c.extend_from_slice(&(version | (3 << 8)).to_le_bytes()); // made by: unix
        c.extend_from_slice(&version.to_le_bytes());
        c.extend_from_slice(&flags.to_le_bytes());
        c.extend_from_slice(&method.to_le_bytes());
        c.extend_from_slice(&DOS_TIME.to_le_bytes());
        c.extend_from_slice(&DOS_DATE.to_le_bytes());
        c.extend_from_slice(&crc.to_le_bytes());
        c.extend_from_slice(&csize32.to_le_bytes());
        c.extend_from_slice(&usize32.to_le_bytes());
        c.extend_from_slice(&(name_bytes.len() as u16).to_le_bytes());
        c.extend_from_slice(&(cx.len() as u16).to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes()); // comment
        c.extend_from_slice(&0u16.to_le_bytes()); // disk
        c.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        c.extend_from_slice(&(0o100644u32 << 16).to_le_bytes()); // a regular file, rw-r--r--
        c.extend_from_slice(&local32.to_le_bytes());
        c.extend_from_slice(name_bytes);
        c.extend_from_slice(&cx);
        self.count += 1;
        Ok(())
    }

    /// Writes the central directory and end records, and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        let cd_offset = self.out.stream_position()?;
        self.out.write_all(&self.central)?;
        let cd_size = self.central.len() as u64;
        let zip64 = self.count >= u16::MAX as u64
            || cd_offset >= u32::MAX as u64
            || cd_size >= u32::MAX as u64;
        if zip64 {
            let z_offset = self.out.stream_position()?;
            let mut r = Vec::with_capacity(76);
            r.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
            r.extend_from_slice(&44u64.to_le_bytes());
            r.extend_from_slice(&(45u16 | (3 << 8)).to_le_bytes());
            r.extend_from_slice(&45u16.to_le_bytes());
            r.extend_from_slice(&[0u8; 8]); // disk numbers
            r.extend_from_slice(&self.count.to_le_bytes());
            r.extend_from_slice(&self.count.to_le_bytes());
            r.extend_from_slice(&cd_size.to_le_bytes());
            r.extend_from_slice(&cd_offset.to_le_bytes());
            r.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes());
            r.extend_from_slice(&z_offset.to_le_bytes());
            r.extend_from_slice(&1u32.to_le_bytes());
            self.out.write_all(&r)?;
        }
        let clamp16 = |v: u64| v.min(u16::MAX as u64) as u16;
        let clamp32 = |v: u64| v.min(u32::MAX as u64) as u32;
        let mut e = Vec::with_capacity(EOCD_LEN);
        e.extend_from_slice(&EOCD_SIG.to_le_bytes());
        e.extend_from_slice(&[0u8; 4]);
        e.extend_from_slice(&clamp16(self.count).to_le_bytes());
        e.extend_from_slice(&clamp16(self.count).to_le_bytes());
        e.extend_from_slice(&clamp32(cd_size).to_le_bytes());
        e.extend_from_slice(&clamp32(cd_offset).to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        self.out.write_all(&e)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

enum Sink<'a, W: Write> {
    Plain(&'a mut W),
    Deflate(flate2::write::DeflateEncoder<&'a mut W>),
}

struct HashingWriter<'a, 'b, W: Write> {
    inner: Sink<'b, W>,
    crc: &'a mut crc32fast::Hasher,
    size: &'a mut u64,
}

impl<W: Write> HashingWriter<'_, '_, W> {
    fn finish(self) -> io::Result<()> {
        match self.inner {
            Sink::Plain(w) => w.flush(),
            Sink::Deflate(d) => d.finish().map(|_| ()),
        }
    }
}

impl<W: Write> Write for HashingWriter<'_, '_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.inner {
            Sink::Plain(w) => w.write(buf)?,
            Sink::Deflate(d) => d.write(buf)?,
        };
        self.crc.update(&buf[..n]);
        *self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Sink::Plain(w) => w.flush(),
            Sink::Deflate(d) => d.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn build(members: &[(&str, Compression, &[u8])]) -> Vec<u8> {
        let mut w = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, c, data) in members {
            w.add(name, *c, data.len() as u64, Some((64, 0)), |o| {
                o.write_all(data)
            })
            .unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn read_all(src: &[u8], e: &ZipEntry) -> Result<Vec<u8>> {
        let mut r = EntryReader::new(src, e, true);
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn round_trip_stored_and_deflated() {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let bytes = build(&[
            ("a.npy", Compression::Stored, b"hello"),
            ("dir/b.npy", Compression::Deflated, &big),
            ("é.npy", Compression::Stored, b""),
        ]);
        let entries: Vec<_> = read_directory(bytes.as_slice())
            .unwrap()
            .into_iter()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].name, "a.npy");
        assert_eq!(entries[0].data_offset % 64, 0);
        assert_eq!(read_all(&bytes, &entries[0]).unwrap(), b"hello");
        assert_eq!(entries[1].compression, Compression::Deflated);
        assert!(entries[1].compressed_size < big.len() as u64);
        assert_eq!(read_all(&bytes, &entries[1]).unwrap(), big);
        assert_eq!(entries[2].name, "é.npy");
        assert!(read_all(&bytes, &entries[2]).unwrap().is_empty());
    }

    #[test]
    fn corruption_is_detected() {
        let data = vec![7u8; 1000];
        let bytes = build(&[
            ("a", Compression::Stored, &data),
            ("b", Compression::Deflated, &data),
        ]);
        let entries: Vec<_> = read_directory(bytes.as_slice())
            .unwrap()
            .into_iter()
            .map(|e| e.unwrap())
            .collect();
        let mut bad = bytes.clone();
        bad[entries[0].data_offset as usize + 10] ^= 1;
        assert!(read_all(&bad, &entries[0])
            .unwrap_err()
            .to_string()
            .contains("CRC-32"));
        let mut bad = bytes.clone();
        let off = entries[1].data_offset as usize;
        bad[off..off + entries[1].compressed_size as usize].fill(0xff);
        assert!(read_all(&bad, &entries[1]).is_err());
        // every truncation is an error, never a panic
        for cut in 0..bytes.len() {
            if let Ok(dir) = read_directory(&bytes[..cut]) {
                for e in dir.into_iter().flatten() {
                    let _ = read_all(&bytes[..cut], &e);
                }
            }
        }
        assert!(read_directory(&bytes[..bytes.len() - 1]).is_err());
        assert!(read_directory(&b"PK\x05\x06"[..]).is_err());
    }

    #[test]
    fn empty_archive() {
        let bytes = build(&[]);
        assert_eq!(bytes.len(), EOCD_LEN);
        assert!(read_directory(bytes.as_slice()).unwrap().is_empty());
    }

    #[test]
    fn cp437_names() {
        assert_eq!(decode_name(b"a\x80\xff", false).unwrap(), "aÇ\u{a0}");
        assert!(decode_name(b"\xff", true).is_err());
    }
}
