//! Reading a zip archive: its end records, its directory, and each member's bytes.

use flate2::{Decompress, FlushDecompress, Status};

use super::format::{
    u16_at, u32_at, u64_at, zerr, BadEntry, Compression, ZipEntry, CENTRAL_LEN, CENTRAL_SIG,
    EOCD_LEN, EOCD_SIG, LOCAL_LEN, LOCAL_SIG, MAX_DEFLATE_RATIO, ZIP64_EOCD_SIG, ZIP64_EXTRA_ID,
    ZIP64_LOCATOR_SIG,
};
use crate::error::{Error, Result};
use crate::source::ReadAt;

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

pub(super) fn decode_name(raw: &[u8], utf8: bool) -> Result<String> {
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
    let end = find_end_record(src)?;
    let mut place = end.place;
    let mut cd_end_limit = end.offset;
    let needs_zip64 = place.entries == u16::MAX as u64
        || place.size == u32::MAX as u64
        || place.offset == u32::MAX as u64;
    if let Some((zip64_place, z_offset)) = read_zip64_end(src, end.offset, needs_zip64)? {
        place = zip64_place;
        cd_end_limit = z_offset;
    }
    if end.disk != 0 || end.cd_disk != 0 {
        return Err(zerr("multi-disk archives are not supported"));
    }
    let cd_end = directory_end(place, cd_end_limit)?;
    Ok((place.entries, place.offset, place.size, cd_end))
}

/// Where the central directory is, as an end record (or its zip64 form) says.
#[derive(Clone, Copy)]
struct DirectoryPlace {
    entries: u64,
    size: u64,
    offset: u64,
}

/// The end-of-central-directory record, as read.
struct EndRecord {
    /// Where the record starts in the archive.
    offset: u64,
    disk: u16,
    cd_disk: u16,
    /// The directory's place, in the record's 16- and 32-bit fields.
    place: DirectoryPlace,
}

/// The end-of-central-directory record: the last one in the file's tail whose comment length
/// reaches exactly to the end of the file.
fn find_end_record(src: &(impl ReadAt + ?Sized)) -> Result<EndRecord> {
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
    Ok(EndRecord {
        offset: tail_start + pos as u64,
        disk: u16_at(eocd, 4),
        cd_disk: u16_at(eocd, 6),
        place: DirectoryPlace {
            entries: u16_at(eocd, 10) as u64,
            size: u32_at(eocd, 12) as u64,
            offset: u32_at(eocd, 16) as u64,
        },
    })
}

/// The directory's place in the zip64 end record that a locator just before the end record
/// (at `eocd_offset`) points at, and the zip64 record's offset; `None` without a locator,
/// which is an error when the end record `needs_zip64` values.
fn read_zip64_end(
    src: &(impl ReadAt + ?Sized),
    eocd_offset: u64,
    needs_zip64: bool,
) -> Result<Option<(DirectoryPlace, u64)>> {
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
            let place = DirectoryPlace {
                entries: u64_at(&rec, 32),
                size: u64_at(&rec, 40),
                offset: u64_at(&rec, 48),
            };
            return Ok(Some((place, z_offset)));
        }
    }
    if needs_zip64 {
        return Err(zerr(
            "the end record asks for zip64 values, but there is no zip64 locator",
        ));
    }
    Ok(None)
}

/// The end of the directory at `place`, which must end by `limit` (the end record that
/// follows it) and be large enough for the entries it claims.
fn directory_end(place: DirectoryPlace, limit: u64) -> Result<u64> {
    let DirectoryPlace {
        entries,
        size: cd_size,
        offset: cd_offset,
    } = place;
    let cd_end = cd_offset
        .checked_add(cd_size)
        .filter(|&e| e <= limit)
        .ok_or_else(|| {
            zerr(format!(
                "the central directory ({cd_size} bytes at offset {cd_offset}) runs past the \
                 end record at {limit}"
            ))
        })?;
    if entries > cd_size / CENTRAL_LEN as u64 {
        return Err(zerr(format!(
            "the archive claims {entries} members, more than its {cd_size}-byte directory can hold"
        )));
    }
    Ok(cd_end)
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
        let record = CentralRecord::parse(&cd[at..], i)?;
        at += record.len;
        let name = decode_name(record.raw_name, record.flags & 0x800 != 0)?;
        let entry = record.into_entry(src, cd_offset, &name);
        out.push(entry.map_err(|error| BadEntry { name, error }));
    }
    Ok(out)
}

/// One record of the central directory, its fields as read, not yet checked.
struct CentralRecord<'a> {
    flags: u16,
    method: u16,
    crc32: u32,
    csize: u64,
    size: u64,
    /// The offset of the member's local header.
    local: u64,
    raw_name: &'a [u8],
    extra: &'a [u8],
    /// The record's length in the directory.
    len: usize,
}

impl<'a> CentralRecord<'a> {
    /// Record `i`, at the start of `rest` (the directory from the record on).
    fn parse(rest: &'a [u8], i: u64) -> Result<Self> {
        if CENTRAL_LEN > rest.len() || u32_at(rest, 0) != CENTRAL_SIG {
            return Err(zerr(format!("central directory entry {i} is malformed")));
        }
        let (nlen, xlen, clen) = (
            u16_at(rest, 28) as usize,
            u16_at(rest, 30) as usize,
            u16_at(rest, 32) as usize,
        );
        let len = CENTRAL_LEN + nlen + xlen + clen;
        if len > rest.len() {
            return Err(zerr(format!(
                "central directory entry {i} runs past the directory"
            )));
        }
        Ok(CentralRecord {
            flags: u16_at(rest, 8),
            method: u16_at(rest, 10),
            crc32: u32_at(rest, 16),
            csize: u32_at(rest, 20) as u64,
            size: u32_at(rest, 24) as u64,
            local: u32_at(rest, 42) as u64,
            raw_name: &rest[CENTRAL_LEN..CENTRAL_LEN + nlen],
            extra: &rest[CENTRAL_LEN + nlen..CENTRAL_LEN + nlen + xlen],
            len,
        })
    }

    /// The member the record describes, checked against its local header and the archive
    /// (whose directory starts at `cd_offset`); an error makes only this member bad.
    fn into_entry(
        mut self,
        src: &(impl ReadAt + ?Sized),
        cd_offset: u64,
        name: &str,
    ) -> Result<ZipEntry> {
        apply_zip64(
            self.extra,
            &mut self.size,
            &mut self.csize,
            Some(&mut self.local),
        )?;
        if self.flags & 0x1 != 0 {
            return Err(zerr(
                "the member is encrypted, which npyflow does not support",
            ));
        }
        let compression = compression_of(self.method)?;
        check_sizes(compression, self.csize, self.size)?;
        let data_offset = self.data_offset(src)?;
        if data_offset
            .checked_add(self.csize)
            .is_none_or(|end| end > cd_offset)
        {
            return Err(zerr(format!(
                "the member's {} bytes at offset {data_offset} run past the start of \
                 the central directory (the archive is truncated or corrupt)",
                self.csize
            )));
        }
        Ok(ZipEntry {
            name: name.to_owned(),
            compression,
            crc32: self.crc32,
            compressed_size: self.csize,
            size: self.size,
            data_offset,
        })
    }

    /// Where the member's bytes start: after its local header, which must be there and
    /// name the member as the directory does.
    fn data_offset(&self, src: &(impl ReadAt + ?Sized)) -> Result<u64> {
        let local = self.local;
        let lh = read_at(src, local, LOCAL_LEN, "local header")?;
        if u32_at(&lh, 0) != LOCAL_SIG {
            return Err(zerr(format!("no local header at offset {local}")));
        }
        let (lnlen, lxlen) = (u16_at(&lh, 26) as usize, u16_at(&lh, 28) as usize);
        let lname = read_at(src, local + LOCAL_LEN as u64, lnlen, "local header name")?;
        if lname != self.raw_name {
            return Err(zerr(format!(
                "the name in the local header ({:?}) differs from the directory's",
                String::from_utf8_lossy(&lname)
            )));
        }
        Ok(local + (LOCAL_LEN + lnlen + lxlen) as u64)
    }
}

/// The compression of a method number: stored (0) and deflated (8) only.
fn compression_of(method: u16) -> Result<Compression> {
    match method {
        0 => Ok(Compression::Stored),
        8 => Ok(Compression::Deflated),
        m => {
            let known = match m {
                12 => " (bzip2)",
                14 => " (lzma)",
                93 => " (zstandard)",
                _ => "",
            };
            Err(zerr(format!(
                "compression method {m}{known} is not supported (only stored and deflated)"
            )))
        }
    }
}

/// Refuses sizes no archive writer makes: a stored member whose two sizes differ, or a
/// deflated one that claims more than deflate can produce from its compressed bytes.
fn check_sizes(compression: Compression, csize: u64, size: u64) -> Result<()> {
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
    Ok(())
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

impl Inflater {
    /// Inflates `entry`'s data into `out` (not empty) until at least one byte comes out,
    /// reading more of its compressed bytes (`consumed` of them so far) whenever the input
    /// runs dry. `produced`: the bytes the member gave before, for errors.
    fn inflate<R: ReadAt + ?Sized>(
        &mut self,
        src: &R,
        entry: &ZipEntry,
        consumed: &mut u64,
        produced: u64,
        out: &mut [u8],
    ) -> Result<usize> {
        let mut n = 0;
        while n == 0 {
            if self.start == self.end {
                self.refill(src, entry, consumed)?;
            }
            let (in_before, out_before) = (self.state.total_in(), self.state.total_out());
            let status = self
                .state
                .decompress(
                    &self.input[self.start..self.end],
                    &mut out[n..],
                    FlushDecompress::None,
                )
                .map_err(|e| Error::Data(format!("the deflated data is corrupt: {e}")))?;
            self.start += (self.state.total_in() - in_before) as usize;
            n += (self.state.total_out() - out_before) as usize;
            let stalled =
                self.state.total_in() == in_before && self.state.total_out() == out_before;
            if n == 0 && (status == Status::StreamEnd || (stalled && self.start == self.end)) {
                return Err(Error::Data(format!(
                    "the deflated data ends after {produced} bytes, but the member claims {}",
                    entry.size
                )));
            }
            if stalled {
                // Input and room for output, yet no progress: never loop on it.
                return Err(Error::Data(
                    "the deflated data is corrupt (the inflater makes no progress)".into(),
                ));
            }
        }
        Ok(n)
    }

    /// Fills the input with the next compressed bytes of `entry` (as many as fit; none at
    /// its end), of which `consumed` were read before.
    fn refill<R: ReadAt + ?Sized>(
        &mut self,
        src: &R,
        entry: &ZipEntry,
        consumed: &mut u64,
    ) -> Result<()> {
        let remaining = entry.compressed_size - *consumed;
        let take = remaining.min(self.input.len() as u64) as usize;
        if take > 0 {
            src.read_exact_at(&mut self.input[..take], entry.data_offset + *consumed)
                .map_err(|e| Error::Data(format!("cannot read the member: {e}")))?;
        }
        *consumed += take as u64;
        self.start = 0;
        self.end = take;
        Ok(())
    }
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
                inf.inflate(self.src, self.entry, &mut self.consumed, self.produced, out)?
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
