//! Shared, immutable bytes with a pluggable owner.
//!
//! A [`Buffer`] is a window onto bytes that something else keeps alive: a heap allocation, a
//! memory map, or (from the Python front) a NumPy array. Cloning and slicing a buffer are O(1)
//! and never copy; the owner is freed when the last buffer onto it goes away.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

/// Something that owns bytes and keeps them alive and unchanged for as long as it lives.
///
/// Implement it to hand npyflow memory it does not own, without a copy.
pub trait BufferOwner: Send + Sync + 'static {
    /// The owned bytes. Must return the same bytes on every call.
    fn bytes(&self) -> &[u8];

    /// What kind of memory this is, for diagnostics and tests.
    fn kind(&self) -> BufferKind {
        BufferKind::Foreign
    }

    /// The owned bytes, writable, for owners whose memory nothing else can see (npyflow's
    /// own allocations). `None`, the default, for memory that is shared or read-only.
    ///
    /// Called only through [`Buffer::get_mut`], when no other buffer shares the owner.
    fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        None
    }

    /// Fails when the bytes `range` of [`bytes`](Self::bytes) are known to no longer hold
    /// what they held (a memory-mapped file truncated under the map); the error names the
    /// file. Cheap enough to call for every element: npyflow's own maps answer with one
    /// load from the range and one atomic load. `Ok`, the default, for memory that cannot
    /// change.
    ///
    /// Called through [`Buffer::check_intact`], with a range inside the bytes.
    fn check_intact(&self, range: Range<usize>) -> Result<()> {
        let _ = range;
        Ok(())
    }

    /// As [`check_intact`](Self::check_intact), and asks the system when that is the only
    /// way to know (a memory-mapped file's current length, a system call). The default is
    /// `check_intact`.
    ///
    /// Called through [`Buffer::verify_intact`], with a range inside the bytes.
    fn verify_intact(&self, range: Range<usize>) -> Result<()> {
        self.check_intact(range)
    }
}

/// Where the bytes of a [`Buffer`] live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferKind {
    /// A heap allocation made by npyflow.
    Heap,
    /// A read-only memory map of a file.
    Mapped,
    /// Memory owned by someone else (a NumPy array, a user's owner).
    Foreign,
}

/// Heap bytes with an alignment of 8, enough for a typed view of every dtype.
struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
}

impl BufferOwner for AlignedBytes {
    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }
    fn kind(&self) -> BufferKind {
        BufferKind::Heap
    }
    fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        Some(&mut bytemuck::cast_slice_mut(&mut self.words)[..self.len])
    }
}

/// The vector of a `Vec<T>` handed to [`Buffer::from_vec`], kept in its own type.
struct PodVec<T>(Vec<T>);

impl<T: bytemuck::Pod + Send + Sync> BufferOwner for PodVec<T> {
    fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }
    fn kind(&self) -> BufferKind {
        BufferKind::Heap
    }
    fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        Some(bytemuck::cast_slice_mut(&mut self.0))
    }
}

/// A bare map, as memmap2 makes it: not guarded against its file being truncated (npyflow's
/// own maps are; see [`guard`](crate::guard)).
impl BufferOwner for memmap2::Mmap {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn kind(&self) -> BufferKind {
        BufferKind::Mapped
    }
}

/// A mutable, 8-byte-aligned byte vector that freezes into a [`Buffer`] without a copy.
///
/// This is how npyflow fills new memory: allocate (fallibly), write, [`freeze`](Self::freeze).
pub struct BufferMut {
    inner: AlignedBytes,
    /// The pool the memory goes back to, for buffers from a [`BufferPool`].
    pool: Option<std::sync::Weak<PoolInner>>,
}

impl BufferMut {
    /// `len` zeroed bytes. Fails with [`Error::Alloc`] instead of aborting when the memory
    /// cannot be had.
    ///
    /// The memory is asked for zeroed (`calloc`), so that a large buffer is the kernel's
    /// fresh zero pages, with no pass of our own writing zeros over them first: each page
    /// is zeroed once, when it is first written.
    pub fn zeroed(len: usize) -> Result<BufferMut> {
        let words_len = len.div_ceil(8);
        let words = bytemuck::allocation::try_zeroed_vec::<u64>(words_len)
            .map_err(|_| Error::Alloc { bytes: len })?;
        Ok(BufferMut {
            inner: AlignedBytes { words, len },
            pool: None,
        })
    }

    /// The bytes, to fill.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.inner.len;
        &mut bytemuck::cast_slice_mut(&mut self.inner.words)[..len]
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.inner.bytes()
    }

    /// Turns the bytes into an immutable, shareable buffer.
    pub fn freeze(mut self) -> Buffer {
        let inner = AlignedBytes {
            words: std::mem::take(&mut self.inner.words),
            len: self.inner.len,
        };
        // Taken, so that dropping `self` gives nothing back: the frozen buffer will.
        match self.pool.take() {
            Some(pool) => Buffer::from_owner(Pooled { inner, pool }),
            None => Buffer::from_owner(inner),
        }
    }
}

/// A pooled buffer dropped before it was frozen (a batch that failed) goes back too.
impl Drop for BufferMut {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            give_back(pool, std::mem::take(&mut self.inner.words));
        }
    }
}

/// A pool of equal-sized, 8-byte-aligned allocations, handed out as [`BufferMut`]s whose
/// frozen [`Buffer`]s give their memory back to the pool when the last view of them is
/// dropped. Reusing memory spares the page faults of fresh allocations: a batch loop that
/// allocates a new 3 MB buffer per batch spends most of its time faulting pages in.
///
/// The pool keeps the allocations given back, up to `capacity` idle ones or as many as were
/// taken and not yet given back at once, whichever is more; it frees the others. So a
/// pipeline whose buffers in use swing (a prefetch buffer that fills while its consumer is
/// away, then drains) reuses the memory it already faulted in rather than freeing it and
/// faulting fresh memory in again (measured on W3's 1 MiB batches: a few hundred fresh
/// allocations a pass, at about 0.7 ms of page faults each), and it never holds much more
/// than the most its buffers ever held at once. A `batch` stage of npyflow keeps its pool
/// for as long as its dataset lives, so an epoch after the first writes into memory already
/// faulted in (what the pool keeps goes with the dataset; other stages keep theirs for a
/// pass). A new allocation is made only when no idle one fits, and the
/// most recently given back one that fits is reused first (its bytes are the likeliest to be
/// in a cache). A buffer the user keeps is simply not returned until they drop it.
///
/// ```
/// use npyflow_format::buffer::BufferPool;
/// let pool = BufferPool::new(2);
/// let mut b = pool.take(1024).unwrap();
/// b.as_mut_slice()[0] = 7;
/// let frozen = b.freeze();
/// let addr = frozen.as_slice().as_ptr();
/// drop(frozen); // back to the pool
/// let again = pool.take(1024).unwrap();
/// assert_eq!(again.as_slice().as_ptr(), addr); // the same memory, reused
/// let mut only = again.freeze();
/// assert!(only.get_mut().is_some()); // a batch no one else holds is writable
/// ```
#[derive(Clone)]
pub struct BufferPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    idle: std::sync::Mutex<Vec<Vec<u64>>>,
    capacity: usize,
    /// Allocations taken from the pool and not given back yet (being filled, or frozen and
    /// still seen), and the most there were at once.
    in_use: AtomicUsize,
    peak: AtomicUsize,
}

/// Pooled words; given back on drop.
struct Pooled {
    inner: AlignedBytes,
    pool: std::sync::Weak<PoolInner>,
}

impl BufferOwner for Pooled {
    fn bytes(&self) -> &[u8] {
        self.inner.bytes()
    }
    fn kind(&self) -> BufferKind {
        self.inner.kind()
    }
    fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        self.inner.bytes_mut()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        give_back(&self.pool, std::mem::take(&mut self.inner.words));
    }
}

/// Gives a taken allocation back to its pool (see [`BufferPool`] for what it keeps).
fn give_back(pool: &std::sync::Weak<PoolInner>, words: Vec<u64>) {
    let Some(pool) = pool.upgrade() else {
        return;
    };
    let mut idle = pool
        .idle
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    pool.in_use.fetch_sub(1, Ordering::Relaxed);
    if idle.len() < pool.capacity.max(pool.peak.load(Ordering::Relaxed)) {
        idle.push(words);
    }
}

impl BufferPool {
    /// A pool that keeps up to `capacity` idle allocations, or as many as were in use at once
    /// where that is more.
    pub fn new(capacity: usize) -> BufferPool {
        BufferPool {
            inner: Arc::new(PoolInner {
                idle: std::sync::Mutex::new(Vec::new()),
                capacity,
                in_use: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
            }),
        }
    }

    /// `len` bytes, reused from the pool when an idle allocation is large enough. The bytes
    /// are not zeroed when reused: the caller overwrites them all.
    pub fn take(&self, len: usize) -> Result<BufferMut> {
        let words_len = len.div_ceil(8);
        let reused = {
            let mut idle = self
                .inner
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // A small batch (labels) must not keep a large one (images) alive.
            best_fit(&idle, words_len, Vec::capacity).map(|i| idle.swap_remove(i))
        };
        let words = match reused {
            Some(mut w) => {
                w.resize(words_len, 0);
                w
            }
            None => std::mem::take(&mut BufferMut::zeroed(len)?.inner.words),
        };
        let in_use = self.inner.in_use.fetch_add(1, Ordering::Relaxed) + 1;
        self.inner.peak.fetch_max(in_use, Ordering::Relaxed);
        Ok(BufferMut {
            inner: AlignedBytes { words, len },
            pool: Some(Arc::downgrade(&self.inner)),
        })
    }
}

#[cfg(test)]
impl BufferPool {
    /// The idle allocations the pool holds.
    fn idle(&self) -> usize {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

/// Which of the `idle` allocations (given back in this order) to use again for `len` units:
/// the smallest holding at least `len` and at most twice that, so that a small request does
/// not keep a large allocation alive; of equal ones, the last given back, whose memory is
/// the likeliest to be in the cache. `None` where none fits. The rule of both of npyflow's
/// pools: [`BufferPool`]'s and the one for the bodies of remote reads.
pub(crate) fn best_fit<T>(idle: &[T], len: usize, capacity: impl Fn(&T) -> usize) -> Option<usize> {
    idle.iter()
        .enumerate()
        .rev()
        .filter(|(_, a)| capacity(a) >= len && capacity(a) <= 2 * len.max(1))
        .min_by_key(|(_, a)| capacity(a))
        .map(|(i, _)| i)
}

/// Shared, immutable, cheaply cloned and sliced bytes.
///
/// ```
/// use npyflow_format::Buffer;
/// let b = Buffer::from_vec(vec![1u16, 2, 3]);
/// assert_eq!(b.len(), 6);
/// let tail = b.slice(2..6).unwrap(); // no copy: the same allocation
/// assert_eq!(tail.as_slice(), &b.as_slice()[2..]);
/// ```
#[derive(Clone)]
pub struct Buffer {
    owner: Arc<dyn BufferOwner>,
    offset: usize,
    len: usize,
}

impl Buffer {
    /// A buffer over all the bytes of `owner`.
    pub fn from_owner(owner: impl BufferOwner) -> Buffer {
        Self::from_shared(Arc::new(owner))
    }

    /// A buffer over all the bytes of an owner that is already shared.
    pub fn from_shared(owner: Arc<dyn BufferOwner>) -> Buffer {
        let len = owner.bytes().len();
        Buffer {
            owner,
            offset: 0,
            len,
        }
    }

    /// Takes a vector of plain numbers without copying it.
    pub fn from_vec<T: bytemuck::Pod + Send + Sync>(v: Vec<T>) -> Buffer {
        Self::from_owner(PodVec(v))
    }

    /// A copy of `bytes` in a new aligned allocation.
    pub fn copy_from_slice(bytes: &[u8]) -> Result<Buffer> {
        let mut b = BufferMut::zeroed(bytes.len())?;
        b.as_mut_slice().copy_from_slice(bytes);
        Ok(b.freeze())
    }

    /// An empty buffer.
    pub fn empty() -> Buffer {
        Self::from_vec(Vec::<u64>::new())
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.owner.bytes()[self.offset..self.offset + self.len]
    }

    /// The number of bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A buffer over `range` of these bytes, sharing the owner (O(1), no copy).
    pub fn slice(&self, range: Range<usize>) -> Result<Buffer> {
        if range.start > range.end || range.end > self.len {
            return Err(Error::InvalidArgument(format!(
                "byte range {}..{} is outside a buffer of {} bytes",
                range.start, range.end, self.len
            )));
        }
        Ok(Buffer {
            owner: Arc::clone(&self.owner),
            offset: self.offset + range.start,
            len: range.end - range.start,
        })
    }

    /// The bytes, writable, when this buffer is the only one onto its owner and the owner
    /// allows it (npyflow's own heap memory); `None` otherwise. A front uses it to hand out
    /// a fresh batch as writable memory without a copy.
    ///
    /// ```
    /// use npyflow_format::Buffer;
    /// let mut b = Buffer::from_vec(vec![1u8, 2, 3]);
    /// b.get_mut().unwrap()[0] = 9;
    /// assert_eq!(b.as_slice(), &[9, 2, 3]);
    /// let shared = b.clone();
    /// assert!(b.get_mut().is_none()); // another buffer sees the same bytes
    /// drop(shared);
    /// assert!(b.get_mut().is_some());
    /// ```
    pub fn get_mut(&mut self) -> Option<&mut [u8]> {
        let (offset, len) = (self.offset, self.len);
        Arc::get_mut(&mut self.owner)?
            .bytes_mut()
            .map(|b| &mut b[offset..offset + len])
    }

    /// Fails when these bytes are known to have been lost: they are a window onto a
    /// memory-mapped file that was truncated under the map, and the window reaches past the
    /// file's new end (its bytes read as zeros since). The error names the file:
    /// `data.npy: the file was truncated while memory-mapped (from 262272 to 41088 bytes);
    /// elements read from it since may be zeros`.
    ///
    /// Cheap (one load from the window, one atomic load), for calling on every element or
    /// batch read from a file: after copying out of a window, call it to know whether what
    /// was copied is the file's data. Memory that is not a map of a file is always intact.
    /// How truncation is detected, and its limits: [`guard`](crate::guard).
    pub fn check_intact(&self) -> Result<()> {
        self.owner.check_intact(self.offset..self.offset + self.len)
    }

    /// [`check_intact`](Self::check_intact) for many buffers, one check an owner: the bytes
    /// up to the furthest end read from each owner (a map is lost from a point on, so its
    /// furthest window tells for all the others). For the rows of a batch, which come from a
    /// few files.
    pub fn check_all_intact<'a>(buffers: impl IntoIterator<Item = &'a Buffer>) -> Result<()> {
        // (owner, furthest end); a batch's rows come from a handful of owners.
        let mut owners: smallvec::SmallVec<[(&Arc<dyn BufferOwner>, usize); 8]> =
            smallvec::SmallVec::new();
        for b in buffers {
            let end = b.offset + b.len;
            match owners.iter_mut().find(|(o, _)| Arc::ptr_eq(o, &b.owner)) {
                Some((_, e)) => *e = (*e).max(end),
                None => owners.push((&b.owner, end)),
            }
        }
        for (owner, end) in owners {
            owner.check_intact(end.saturating_sub(1)..end)?;
        }
        Ok(())
    }

    /// As [`check_intact`](Self::check_intact), and for a memory-mapped file also compares
    /// the file's current length with the window (a system call): finds a truncation that
    /// no read has run into yet, or that only zeroed the end of the file's last page.
    pub fn verify_intact(&self) -> Result<()> {
        self.owner
            .verify_intact(self.offset..self.offset + self.len)
    }

    /// Where the bytes live.
    pub fn kind(&self) -> BufferKind {
        self.owner.kind()
    }

    /// Whether two buffers share one owner (so neither is a copy of the other).
    pub fn shares_owner_with(&self, other: &Buffer) -> bool {
        Arc::ptr_eq(&self.owner, &other.owner)
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("kind", &self.kind())
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_share_and_check_bounds() {
        let b = Buffer::from_vec((0u8..100).collect::<Vec<_>>());
        let s = b.slice(10..20).unwrap();
        assert_eq!(s.as_slice(), &(10u8..20).collect::<Vec<_>>()[..]);
        assert!(s.shares_owner_with(&b));
        let ss = s.slice(5..10).unwrap();
        assert_eq!(ss.as_slice(), &[15, 16, 17, 18, 19]);
        assert!(s.slice(5..11).is_err());
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = s.slice(6..5);
        assert!(reversed.is_err());
        assert!(s.slice(10..10).unwrap().is_empty());
    }

    #[test]
    fn buffer_mut_is_aligned_and_zeroed() {
        // Small ones, and ones large enough for the allocator to map fresh pages; each
        // written all over and dropped before the next, so that memory given back dirty and
        // handed out again would show.
        for len in [
            0,
            1,
            7,
            8,
            9,
            1000,
            100_003,
            (8 << 20) + 3,
            1000,
            (8 << 20) + 3,
        ] {
            let mut b = BufferMut::zeroed(len).unwrap();
            assert_eq!(b.as_slice().len(), len);
            assert!(b.as_slice().iter().all(|&x| x == 0), "{len} bytes");
            assert_eq!(b.as_slice().as_ptr() as usize % 8, 0);
            b.as_mut_slice().fill(0xa5);
            assert_eq!(b.freeze().kind(), BufferKind::Heap);
        }
    }

    #[test]
    fn only_unshared_heap_bytes_are_writable() {
        let mut frozen = BufferMut::zeroed(16).unwrap().freeze();
        let mut tail = frozen.slice(8..16).unwrap();
        assert!(frozen.get_mut().is_none() && tail.get_mut().is_none());
        drop(frozen);
        tail.get_mut().unwrap().copy_from_slice(&[7; 8]);
        assert_eq!(tail.as_slice(), &[7; 8]);

        struct ReadOnly(Vec<u8>);
        impl BufferOwner for ReadOnly {
            fn bytes(&self) -> &[u8] {
                &self.0
            }
        }
        let mut foreign = Buffer::from_owner(ReadOnly(vec![1, 2]));
        assert!(foreign.get_mut().is_none());
    }

    #[test]
    fn the_pool_reuses_the_closest_fit_only() {
        let pool = BufferPool::new(4);
        let big = pool.take(1 << 20).unwrap().freeze();
        let small = pool.take(1 << 10).unwrap().freeze();
        let (big_at, small_at) = (big.as_slice().as_ptr(), small.as_slice().as_ptr());
        drop((big, small));
        // A small request takes the small buffer, never the big one.
        let again = pool.take(1000).unwrap();
        assert_eq!(again.as_slice().as_ptr(), small_at);
        let tiny = pool.take(8).unwrap();
        assert_ne!(tiny.as_slice().as_ptr(), big_at);
        assert_eq!(pool.take(1 << 20).unwrap().as_slice().as_ptr(), big_at);
    }

    #[test]
    fn the_pool_keeps_as_many_as_were_in_use_at_once() {
        let pool = BufferPool::new(1);
        let held = pool.take(64).unwrap().freeze();
        let many: Vec<Buffer> = (0..3).map(|_| pool.take(64).unwrap().freeze()).collect();
        let given: Vec<*const u8> = many.iter().map(|b| b.as_slice().as_ptr()).collect();
        drop(many); // in order; four were in use at once, so all three are kept
        assert_eq!(pool.idle(), 3);
        // Reused, the last given back first.
        let again: Vec<BufferMut> = (0..3).map(|_| pool.take(64).unwrap()).collect();
        let taken: Vec<*const u8> = again.iter().map(|b| b.as_slice().as_ptr()).collect();
        assert_eq!(taken, given.iter().rev().copied().collect::<Vec<_>>());
        assert_eq!(pool.idle(), 0);
        // A buffer dropped before it was frozen goes back as well.
        drop(again);
        assert_eq!(pool.idle(), 3);
        drop(held);
        assert_eq!(pool.idle(), 4);
        // Sliced views keep a buffer in use until the last one goes.
        let b = pool.take(64).unwrap().freeze();
        let tail = b.slice(8..64).unwrap();
        drop(b);
        assert_eq!(pool.idle(), 3);
        drop(tail);
        assert_eq!(pool.idle(), 4);

        // One in use at a time, with a capacity of one: an allocation of another size that
        // comes back while one is idle is freed.
        let pool = BufferPool::new(1);
        let small = pool.take(64).unwrap();
        let at = small.as_slice().as_ptr();
        drop(small);
        drop(pool.take(1 << 16).unwrap());
        assert_eq!(pool.idle(), 1);
        assert_eq!(pool.take(64).unwrap().as_slice().as_ptr(), at);
    }

    #[test]
    fn impossible_allocation_is_an_error() {
        assert!(matches!(
            BufferMut::zeroed(usize::MAX - 7),
            Err(Error::Alloc { .. })
        ));
    }
}
