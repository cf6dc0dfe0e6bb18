//! Buffers for the bodies of ranged reads, used again once their bytes are dropped.
//!
//! A remote `.npy` is read in blocks of megabytes (4 to 8 MiB), one buffer a block. A fresh
//! buffer of that size is a fresh mapping of memory: its first write faults in every page
//! (the kernel zeroes each 4 KiB), and freeing it unmaps them again. Measured on W6 (1 GiB
//! read in 4 MiB ranges from a server on loopback, 2 cores), that cost about as much CPU as
//! receiving the bytes from the socket. So a block's bytes live in a buffer that goes back
//! to a small pool of idle ones when the last [`Bytes`] pointing into it is dropped, and the
//! next block is written into memory already mapped.
//!
//! The pool keeps at most [`MAX_IDLE_BYTES`] of idle buffers (what a reader holds at once is
//! bounded by its read-ahead budget, not here); buffers under [`MIN_POOLED`] bytes come from
//! the allocator as before (small allocations reuse the heap's memory anyway).

use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use crate::buffer::best_fit;

/// The most bytes of idle buffers the process keeps for reuse.
pub(crate) const MAX_IDLE_BYTES: usize = 32 << 20;
/// Buffers smaller than this are not pooled.
pub(crate) const MIN_POOLED: usize = 256 << 10;

/// The process's pool, which every ranged read uses.
pub(crate) static POOL: Pool = Pool::new(MAX_IDLE_BYTES);

/// Idle buffers, at most `max_idle` bytes of them.
pub(crate) struct Pool {
    idle: Mutex<Vec<Vec<u8>>>,
    max_idle: usize,
}

impl Pool {
    pub(crate) const fn new(max_idle: usize) -> Pool {
        Pool {
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Vec<u8>>> {
        // A list of buffers: a panic cannot leave it half changed.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An empty buffer with room for `len` bytes: an idle one that fits (by
    /// [`best_fit`]: small reads do not pin large buffers), or a new one.
    pub(crate) fn buffer(&self, len: usize) -> Vec<u8> {
        if len >= MIN_POOLED {
            let mut idle = self.idle();
            if let Some(i) = best_fit(&idle, len, Vec::capacity) {
                let mut b = idle.swap_remove(i);
                b.clear();
                return b;
            }
        }
        Vec::with_capacity(len)
    }

    /// `buffer`'s bytes, shared; the buffer comes back to this pool when the last copy of
    /// the [`Bytes`] (or of a slice of it) is dropped.
    pub(crate) fn freeze(&'static self, buffer: Vec<u8>) -> Bytes {
        if buffer.capacity() < MIN_POOLED {
            return Bytes::from(buffer);
        }
        Bytes::from_owner(Recycled { buffer, pool: self })
    }

    fn give_back(&self, buffer: Vec<u8>) {
        let mut idle = self.idle();
        let held: usize = idle.iter().map(Vec::capacity).sum();
        if held + buffer.capacity() <= self.max_idle {
            idle.push(buffer);
        }
    }
}

/// A buffer on loan to [`Bytes`].
struct Recycled {
    buffer: Vec<u8>,
    pool: &'static Pool,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool of the test's own (the process's is shared with every other test's reads).
    fn pool(max_idle: usize) -> &'static Pool {
        Box::leak(Box::new(Pool::new(max_idle)))
    }

    fn idle_bytes(p: &Pool) -> usize {
        p.idle().iter().map(Vec::capacity).sum()
    }

    #[test]
    fn a_dropped_block_is_written_into_again() {
        let p = pool(MAX_IDLE_BYTES);
        let len = MIN_POOLED + 3 * 4096;
        let mut b = p.buffer(len);
        b.extend((0..len).map(|i| i as u8));
        let first = b.as_ptr();
        let bytes = p.freeze(b);
        let part = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(idle_bytes(p), 0, "a slice still points into it");
        assert_eq!(
            &part[..],
            &(10..20).map(|i| i as u8).collect::<Vec<_>>()[..]
        );
        drop(part);
        assert!(idle_bytes(p) >= len, "back in the pool");
        let again = p.buffer(len);
        assert!(again.is_empty() && again.capacity() >= len);
        assert_eq!(again.as_ptr(), first, "the same memory, written again");
        assert_eq!(idle_bytes(p), 0);
    }

    #[test]
    fn small_buffers_and_a_full_pool_are_left_to_the_allocator() {
        let p = pool(3 * MIN_POOLED);
        let small = p.freeze(vec![7u8; 100]);
        assert_eq!(&small[..], &[7u8; 100][..]);
        drop(small);
        assert_eq!(idle_bytes(p), 0, "small buffers are not pooled");
        // Five buffers dropped into a pool that keeps three: two are freed.
        let blocks: Vec<Bytes> = (0..5).map(|_| p.freeze(p.buffer(MIN_POOLED))).collect();
        drop(blocks);
        assert_eq!(idle_bytes(p), 3 * MIN_POOLED);
    }

    #[test]
    fn a_small_read_does_not_take_a_large_buffer() {
        let p = pool(MAX_IDLE_BYTES);
        let large = MIN_POOLED * 4;
        drop(p.freeze(p.buffer(large)));
        assert_eq!(idle_bytes(p), large);
        let small = p.buffer(MIN_POOLED);
        assert!(small.capacity() < large, "at most twice the length asked");
        let half = p.buffer(large / 2);
        assert_eq!(half.capacity(), large, "half the length asked: taken");
    }
}
