//! Hints to the processor to start loading memory that a loop will read soon.
//!
//! A batch of W3 (rows of 1 KiB from memory-mapped files) reads each file's rows in a
//! forward sweep, but the processor's own prefetcher stops at every 4 KiB page, so the
//! sweep waits for memory at each page it enters. Asking for the rows a page ahead while
//! the current ones are copied hides that wait. A hint changes no value: a processor may
//! ignore it, and it never faults (an address that is not mapped, or a page of a file
//! truncated under its map, is simply not loaded).

/// The bytes of a cache line, as the processors npyflow runs on have it (x86-64, and the
/// common ARM cores). A larger line only makes some hints redundant.
const LINE: usize = 64;

/// How far ahead of the bytes being read the loops of a batch ask for more: one page,
/// where the processor's prefetcher stops. Measured on W3's loop (rows of 1 KiB from four
/// files): asking 2 KiB or 4 KiB ahead saved the same time, 8 KiB less.
pub(crate) const AHEAD: usize = 4096;

/// The offsets in `bytes` (of length `len`, starting at address `addr`) of one byte in each
/// cache line the bytes touch: 0, then the start of every later line.
fn line_offsets(addr: usize, len: usize) -> impl Iterator<Item = usize> {
    let next_line = (LINE - addr % LINE) % LINE;
    let first = (len > 0).then_some(0);
    let rest = if next_line == 0 { LINE } else { next_line };
    first.into_iter().chain((rest..len).step_by(LINE))
}

/// Asks the processor to start loading `bytes` into its caches, for a read soon. No effect
/// on any value; nothing where the processor has no such hint (other than x86-64 here).
#[inline]
pub(crate) fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for off in line_offsets(bytes.as_ptr() as usize, bytes.len()) {
        // SAFETY: `off < bytes.len()`, so the pointer is to a byte of `bytes`. `_mm_prefetch`
        // (SSE, which every x86-64 processor has) only hints that the line holding that
        // byte be loaded: it reads nothing the program sees, writes nothing, and does not
        // fault even where the memory could not be read.
        #[allow(unsafe_code)]
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                bytes.as_ptr().add(off).cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// For a loop that reads `src[start..end]` now and the bytes after it next (up to
/// `limit`): asks for the bytes [`AHEAD`] further on, those of its next turn but one or
/// more; of a long read, only the `AHEAD` bytes after it. Only the lines that begin there:
/// a loop over short rows (shorter than a line) asks once a line, not once a row, as the
/// line a range starts inside was asked for with the range before it.
#[inline]
pub(crate) fn prefetch_ahead(src: &[u8], start: usize, end: usize, limit: usize) {
    let (first, to) = ahead(src.as_ptr() as usize, src.len(), start, end, limit);
    if first < to {
        prefetch(&src[first..to]);
    }
}

/// The bytes [`prefetch_ahead`] asks for, of bytes at `addr` of length `len`: from the first
/// line start at or after the later of `start + AHEAD` and `end`, to `end + AHEAD` (both
/// within `limit` and `len`). Empty where `first >= to`.
fn ahead(addr: usize, len: usize, start: usize, end: usize, limit: usize) -> (usize, usize) {
    let limit = limit.min(len);
    let from = (start + AHEAD).max(end).min(limit);
    let to = (end + AHEAD).min(limit);
    let skew = (addr + from) % LINE;
    let first = if skew == 0 { from } else { from + LINE - skew };
    (first, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_offset_in_each_line_the_bytes_touch() {
        for addr in [0usize, 1, 63, 64, 65, 4095, 4096 + 17] {
            for len in [0usize, 1, 2, 63, 64, 65, 127, 128, 129, 1000, 4096] {
                let offsets: Vec<usize> = line_offsets(addr, len).collect();
                // Independently: the lines from the first byte's to the last byte's.
                let lines: Vec<usize> = if len == 0 {
                    Vec::new()
                } else {
                    (addr / LINE..=(addr + len - 1) / LINE).collect()
                };
                assert_eq!(offsets.len(), lines.len(), "addr {addr} len {len}");
                for (off, line) in offsets.iter().zip(&lines) {
                    assert!(*off < len, "addr {addr} len {len}: offset {off} outside");
                    assert_eq!((addr + off) / LINE, *line, "addr {addr} len {len}");
                }
            }
        }
    }

    #[test]
    fn a_sweep_of_rows_asks_for_each_line_ahead_once() {
        for addr in [0usize, 8, 128, 4096 + 40] {
            for row in [4usize, 16, 100, 1024, 5000] {
                let rows = 300;
                let limit = rows * row;
                let mut asked: Vec<usize> = Vec::new();
                for r in 0..rows {
                    let (first, to) = ahead(addr, limit + 7, r * row, (r + 1) * row, limit);
                    for off in (first..to).step_by(LINE) {
                        assert_eq!((addr + off) % LINE, 0, "a line start");
                        assert!(off >= (r + 1) * row && off < limit, "ahead, inside");
                        asked.push(off);
                    }
                }
                // Independently, by brute force: each line start that lies in some row's
                // window (the bytes a page past the row's, or of a row longer than a page,
                // the page after it), inside the limit, once and in order.
                let expected: Vec<usize> = (0..limit)
                    .filter(|o| (addr + o) % LINE == 0)
                    .filter(|&o| {
                        (0..rows).any(|r| {
                            let lo = (r * row + AHEAD).max((r + 1) * row);
                            o >= lo && o < (r + 1) * row + AHEAD
                        })
                    })
                    .collect();
                assert_eq!(asked, expected, "addr {addr} row {row}");
            }
        }
    }

    #[test]
    fn prefetching_changes_nothing_and_stays_inside_the_bytes() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let before = data.clone();
        for (start, end) in [
            (0, 0),
            (0, 1),
            (3, 70),
            (100, 9_999),
            (0, 10_000),
            (10_000, 10_000),
        ] {
            prefetch(&data[start..end]);
            for limit in [0, end, 10_000, usize::MAX] {
                prefetch_ahead(&data, start, end, limit);
            }
        }
        assert_eq!(data, before);
    }

    #[test]
    fn prefetching_the_last_bytes_of_a_mapped_file_does_not_fault() {
        // A file of one page and a few bytes: the map ends inside its second page, whose
        // rest (and the next page) is not the file's. Hints up to the last byte are fine.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let t = crate::Tensor::from_vec((0..1030i32).collect::<Vec<_>>(), &[1030]).unwrap();
        crate::format::npy::write_npy(&path, &t).unwrap();
        let whole = crate::format::npy::read_npy(&path).unwrap();
        assert!(crate::format::npy::is_mapped(&whole));
        let bytes = whole.as_bytes();
        prefetch(bytes);
        prefetch_ahead(bytes, 0, bytes.len(), bytes.len());
        prefetch_ahead(bytes, bytes.len() - 1, bytes.len(), usize::MAX);
        assert_eq!(whole.view::<i32>().unwrap(), (0..1030).collect::<Vec<_>>());
    }
}
