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

mod format;
mod read;
mod write;

pub use format::{Compression, ZipEntry};
pub use read::{read_directory, EntryReader};
pub use write::ZipWriter;

#[cfg(test)]
mod tests {
    use super::format::EOCD_LEN;
    use super::read::decode_name;
    use super::*;
    use crate::error::Result;
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
