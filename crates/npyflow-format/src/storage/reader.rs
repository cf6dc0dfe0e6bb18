//! Positioned reads of an object for the format's parsers (headers, zip directories, deflated
//! members), with a read-ahead block so that their many small reads become few requests.

use std::io;
use std::sync::Mutex;

use bytes::Bytes;

use super::Object;
use crate::source::ReadAt;

/// The first request's size: a `.npy` header (at most 64 KiB before NumPy's
/// `max_header_size` is raised) or the end of a zip archive, in one GET.
const FIRST_BLOCK: u64 = 64 << 10;
/// The largest read-ahead block, reached by doubling while reads go forward.
const MAX_BLOCK: u64 = 8 << 20;

/// An [`Object`] read at offsets: each read that misses the block held fetches at least a
/// block from its offset on (twice the last block when reads go forward, up to 8 MiB).
pub(crate) struct RemoteFile {
    object: Object,
    /// The block held: its offset and bytes; the next block's size.
    block: Mutex<(u64, Bytes, u64)>,
}

impl RemoteFile {
    pub(crate) fn new(object: Object) -> RemoteFile {
        RemoteFile {
            object,
            block: Mutex::new((0, Bytes::new(), FIRST_BLOCK)),
        }
    }

    pub(crate) fn object(&self) -> &Object {
        &self.object
    }
}

impl ReadAt for RemoteFile {
    fn size(&self) -> u64 {
        self.object.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.object.size())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        let mut held = self.block.lock().unwrap_or_else(|p| p.into_inner());
        let (start, bytes, next) = &mut *held;
        if offset >= *start && end <= *start + bytes.len() as u64 {
            let at = (offset - *start) as usize;
            buf.copy_from_slice(&bytes[at..at + buf.len()]);
            return Ok(());
        }
        let forward = offset >= *start + bytes.len() as u64 && !bytes.is_empty();
        let size = if forward {
            (*next * 2).min(MAX_BLOCK)
        } else {
            *next
        };
        let fetch_end = end.max(offset + size).min(self.object.size());
        let got = self
            .object
            .read_range(offset..fetch_end)
            .map_err(|e| io::Error::other(e.to_string()))?;
        buf.copy_from_slice(&got[..buf.len()]);
        *held = (offset, got, size);
        Ok(())
    }
}
