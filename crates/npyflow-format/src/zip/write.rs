//! Writing a zip archive: stored or deflated members, zip64 records where sizes need them,
//! a fixed timestamp, and alignment padding for stored members.

use std::io::{self, Seek, SeekFrom, Write};

use super::format::{
    Compression, ALIGN_EXTRA_ID, CENTRAL_SIG, EOCD_LEN, EOCD_SIG, LOCAL_LEN, LOCAL_SIG,
    ZIP64_EOCD_SIG, ZIP64_EXTRA_ID, ZIP64_LOCATOR_SIG,
};

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

/// What the local header and the directory record of one member share.
struct MemberHead<'a> {
    name: &'a [u8],
    /// Sizes may reach 4 GiB: the local header carries a zip64 extra field.
    zip64: bool,
    flags: u16,
    method: u16,
    /// The version needed to extract (2.0, or 4.5 with zip64).
    version: u16,
}

/// What streaming a member's bytes gave.
struct Written {
    crc: u32,
    /// Uncompressed bytes.
    size: u64,
    /// Bytes in the archive.
    csize: u64,
}

impl<'a> MemberHead<'a> {
    fn new(name: &'a str, compression: Compression, zip64: bool) -> Self {
        MemberHead {
            name: name.as_bytes(),
            zip64,
            flags: if name.is_ascii() { 0 } else { 0x800 },
            method: match compression {
                Compression::Stored => 0,
                Compression::Deflated => 8,
            },
            version: if zip64 { 45 } else { 20 },
        }
    }

    /// The local header's extra field for a header at `local`: the zip64 placeholder, and
    /// for a stored member padding so that the byte at `data_align.1` within the member
    /// starts at a multiple of `data_align.0`.
    fn local_extra(&self, local: u64, stored: bool, data_align: Option<(u64, u64)>) -> Vec<u8> {
        let mut extra = Vec::new();
        if self.zip64 {
            extra.extend_from_slice(&ZIP64_EXTRA_ID.to_le_bytes());
            extra.extend_from_slice(&16u16.to_le_bytes());
            extra.extend_from_slice(&[0u8; 16]);
        }
        if let (true, Some((align, within))) = (stored, data_align) {
            let start = local + (LOCAL_LEN + self.name.len() + extra.len()) as u64 + within;
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
        extra
    }

    /// The local header, its CRC and sizes left zero (patched once the data is written).
    fn local_header(&self, extra: &[u8]) -> Vec<u8> {
        let mut lh = Vec::with_capacity(LOCAL_LEN + self.name.len() + extra.len());
        lh.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        lh.extend_from_slice(&self.version.to_le_bytes());
        lh.extend_from_slice(&self.flags.to_le_bytes());
        lh.extend_from_slice(&self.method.to_le_bytes());
        lh.extend_from_slice(&DOS_TIME.to_le_bytes());
        lh.extend_from_slice(&DOS_DATE.to_le_bytes());
        lh.extend_from_slice(&[0u8; 12]); // crc and sizes, patched below
        lh.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        lh.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        lh.extend_from_slice(self.name);
        lh.extend_from_slice(extra);
        lh
    }

    /// Appends the member's central directory record (its header at `local`) to `c`, with
    /// zip64 values where they do not fit.
    fn push_central(&self, c: &mut Vec<u8>, local: u64, w: &Written) {
        let mut z64 = Vec::new();
        let mut field32 = |v: u64| -> u32 {
            if v >= u32::MAX as u64 {
                z64.extend_from_slice(&v.to_le_bytes());
                u32::MAX
            } else {
                v as u32
            }
        };
        let (usize32, csize32, local32) = (field32(w.size), field32(w.csize), field32(local));
        let mut cx = Vec::new();
        if !z64.is_empty() {
            cx.extend_from_slice(&ZIP64_EXTRA_ID.to_le_bytes());
            cx.extend_from_slice(&(z64.len() as u16).to_le_bytes());
            cx.extend_from_slice(&z64);
        }
        c.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
        c.extend_from_slice(&(self.version | (3 << 8)).to_le_bytes()); // made by: unix
        c.extend_from_slice(&self.version.to_le_bytes());
        c.extend_from_slice(&self.flags.to_le_bytes());
        c.extend_from_slice(&self.method.to_le_bytes());
        c.extend_from_slice(&DOS_TIME.to_le_bytes());
        c.extend_from_slice(&DOS_DATE.to_le_bytes());
        c.extend_from_slice(&w.crc.to_le_bytes());
        c.extend_from_slice(&csize32.to_le_bytes());
        c.extend_from_slice(&usize32.to_le_bytes());
        c.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        c.extend_from_slice(&(cx.len() as u16).to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes()); // comment
        c.extend_from_slice(&0u16.to_le_bytes()); // disk
        c.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        c.extend_from_slice(&(0o100644u32 << 16).to_le_bytes()); // a regular file, rw-r--r--
        c.extend_from_slice(&local32.to_le_bytes());
        c.extend_from_slice(self.name);
        c.extend_from_slice(&cx);
    }
}

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
        let head = MemberHead::new(name, compression, size_hint >= u32::MAX as u64);
        let local = self.out.stream_position()?;
        let stored = compression == Compression::Stored;
        let extra = head.local_extra(local, stored, data_align);
        self.out.write_all(&head.local_header(&extra))?;
        let written = self.stream_member(compression, write)?;
        if !head.zip64 && (written.size >= u32::MAX as u64 || written.csize >= u32::MAX as u64) {
            return Err(io::Error::other(
                "a member grew past 4 GiB beyond its size hint; pass a size hint",
            ));
        }
        self.patch_local_header(&head, local, &written)?;
        head.push_central(&mut self.central, local, &written);
        self.count += 1;
        Ok(())
    }

    /// Streams the member's bytes from `write` to the output (deflating them if asked),
    /// hashing the uncompressed bytes and counting the stored ones.
    fn stream_member(
        &mut self,
        compression: Compression,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<Written> {
        let mut crc = crc32fast::Hasher::new();
        let mut size = 0u64;
        let mut counter = CountingCrc {
            out: &mut self.out,
            written: 0,
        };
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
        Ok(Written {
            crc: crc.finalize(),
            size,
            csize: counter.written,
        })
    }

    /// Writes the CRC and sizes into the local header at `local` (into its zip64 extra field
    /// when it has one), and comes back to the end of the output.
    fn patch_local_header(&mut self, head: &MemberHead, local: u64, w: &Written) -> io::Result<()> {
        let end = self.out.stream_position()?;
        self.out.seek(SeekFrom::Start(local + 14))?;
        self.out.write_all(&w.crc.to_le_bytes())?;
        if head.zip64 {
            self.out.write_all(&[0xff; 8])?;
            self.out.seek(SeekFrom::Start(
                local + (LOCAL_LEN + head.name.len()) as u64 + 4,
            ))?;
            self.out.write_all(&w.size.to_le_bytes())?;
            self.out.write_all(&w.csize.to_le_bytes())?;
        } else {
            self.out.write_all(&(w.csize as u32).to_le_bytes())?;
            self.out.write_all(&(w.size as u32).to_le_bytes())?;
        }
        self.out.seek(SeekFrom::Start(end))?;
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
