//! The zip format's constants (record signatures and lengths, extra-field ids), the record
//! types the reader makes and the writer takes, and the little-endian field readers.

use crate::error::Error;

pub(super) const LOCAL_SIG: u32 = 0x0403_4b50;
pub(super) const CENTRAL_SIG: u32 = 0x0201_4b50;
pub(super) const EOCD_SIG: u32 = 0x0605_4b50;
pub(super) const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
pub(super) const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
pub(super) const ZIP64_EXTRA_ID: u16 = 0x0001;
/// The extra-field id npyflow uses for alignment padding (the one zipalign tools use).
pub(super) const ALIGN_EXTRA_ID: u16 = 0xd935;
pub(super) const EOCD_LEN: usize = 22;
pub(super) const CENTRAL_LEN: usize = 46;
pub(super) const LOCAL_LEN: usize = 30;

/// Deflate cannot expand data by more than about 1032 to 1; a member claiming more is forged.
pub(super) const MAX_DEFLATE_RATIO: u64 = 1032;

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

pub(super) fn zerr(msg: impl Into<String>) -> Error {
    Error::Zip(msg.into())
}

pub(super) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}
