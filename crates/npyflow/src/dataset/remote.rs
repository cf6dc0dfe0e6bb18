//! The rows of `.npy` objects read by URL (`from_npy("s3://...")`): a random-access source
//! whose rows come from ranged GETs, in blocks, read ahead of the consumer within a memory
//! budget.
//!
//! Rows are grouped in blocks of about `block_bytes` (8 MiB by default). Reading a row in
//! block *b* makes sure blocks *b*..*b*+*k* are held or on their way, *k* as many as fit in
//! `read_ahead_bytes` (128 MiB by default), so a sequential consumer finds its next blocks
//! already fetched, many requests in flight. A batch of rows from all over the array (after a
//! global shuffle) is read by [`Pass::gather`] as few, large ranged GETs: its rows sorted,
//! neighbours closer than a block merged into one request, all requests in flight together.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::plumbing::{describe_node, own_pass, Node, Pass};
use crate::buffer::BufferPool;
use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result};
use crate::format::npy::RemoteNpy;
use crate::format::storage::{Pending, StorageOptions};
use crate::tensor::Tensor;

/// How rows of one object are read: block size and read-ahead budget.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadPlan {
    pub block_bytes: u64,
    pub read_ahead_bytes: u64,
}

impl ReadPlan {
    /// From the storage options `block_bytes` and `read_ahead_bytes`, or the defaults.
    pub(crate) fn from_options(o: &StorageOptions) -> Result<ReadPlan> {
        let num = |key: &str, default: u64| -> Result<u64> {
            match o.get(key) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "storage option {key}={v:?} is not a positive whole number of bytes"
                    ))
                }),
            }
        };
        Ok(ReadPlan {
            block_bytes: num("block_bytes", 8 << 20)?,
            read_ahead_bytes: num("read_ahead_bytes", 128 << 20)?,
        })
    }
}

/// A block held, on its way, or that could not be read.
enum Slot {
    Pending(Pending),
    Ready(Bytes),
    /// The read failed after its retries, with this message, at this time: the block's
    /// other rows fail at once for [`FAILED_FOR`] instead of each trying again from scratch.
    Failed(Arc<Error>, std::time::Instant),
}

/// How long a block that could not be read is not tried again.
const FAILED_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// One object's rows, read in blocks through a bounded cache.
struct Rows {
    npy: RemoteNpy,
    block_rows: u64,
    blocks: u64,
    /// How many blocks may be held or in flight at once.
    max_blocks: usize,
    /// Held blocks, with the tick of their last use.
    cache: Mutex<BTreeMap<u64, (Slot, u64)>>,
    tick: std::sync::atomic::AtomicU64,
    /// A Fortran-order array, read whole on first use.
    whole: std::sync::OnceLock<Tensor>,
}

impl Rows {
    fn new(npy: RemoteNpy, plan: ReadPlan) -> Rows {
        let row = npy.row_bytes().max(1);
        let block_rows = (plan.block_bytes / row).max(1);
        let blocks = npy.rows().div_ceil(block_rows);
        let max_blocks = (plan.read_ahead_bytes / (block_rows * row)).max(2) as usize;
        Rows {
            npy,
            block_rows,
            blocks,
            max_blocks,
            cache: Mutex::new(BTreeMap::new()),
            tick: Default::default(),
            whole: std::sync::OnceLock::new(),
        }
    }

    fn block_range(&self, b: u64) -> Range<u64> {
        b * self.block_rows..((b + 1) * self.block_rows).min(self.npy.rows())
    }

    /// Starts fetching the blocks `want` that are not held, as far as the budget allows,
    /// evicting the least recently used ready blocks that are not wanted.
    fn request(&self, cache: &mut BTreeMap<u64, (Slot, u64)>, want: &[u64]) {
        for &b in want {
            if b >= self.blocks || cache.contains_key(&b) {
                continue;
            }
            while cache.len() >= self.max_blocks {
                let victim = cache
                    .iter()
                    .filter(|(k, (s, _))| !matches!(s, Slot::Pending(_)) && !want.contains(k))
                    .min_by_key(|(_, (_, t))| *t)
                    .map(|(&k, _)| k);
                match victim {
                    Some(k) => {
                        cache.remove(&k);
                    }
                    None => return,
                }
            }
            let r = self.npy.byte_range(self.block_range(b));
            match self.npy.object().prefetch(r) {
                Ok(p) => {
                    cache.insert(b, (Slot::Pending(p), 0));
                }
                Err(_) => return,
            }
        }
    }

    /// Block `b`'s bytes, waiting for them if they are on their way; the blocks after it
    /// are requested too (read-ahead).
    fn block(&self, b: u64) -> Result<Bytes> {
        let tick = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let pending = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let ahead: Vec<u64> = (b..self.blocks).take(self.max_blocks).collect();
            self.request(&mut cache, &ahead);
            match cache.remove(&b) {
                Some((Slot::Ready(bytes), _)) => {
                    cache.insert(b, (Slot::Ready(bytes.clone()), tick));
                    return Ok(bytes);
                }
                Some((Slot::Pending(p), _)) => Some(p),
                Some((Slot::Failed(e, at), t)) if at.elapsed() < FAILED_FOR => {
                    let again = Error::Pipeline(e.to_string());
                    let again = match &*e {
                        Error::Io { path, source } => Error::io(
                            path.clone(),
                            std::io::Error::new(source.kind(), source.to_string()),
                        ),
                        _ => again,
                    };
                    cache.insert(b, (Slot::Failed(e, at), t));
                    return Err(again);
                }
                _ => None,
            }
        };
        let read = match pending {
            Some(p) => p.wait(),
            // No room (every held block is in flight): read it directly.
            None => self
                .npy
                .object()
                .read_range(self.npy.byte_range(self.block_range(b))),
        };
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(e) => {
                let e = Arc::new(e);
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                cache.insert(
                    b,
                    (Slot::Failed(e.clone(), std::time::Instant::now()), tick),
                );
                return Err(Arc::try_unwrap(e).unwrap_or_else(|e| Error::Pipeline(e.to_string())));
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() < self.max_blocks {
            cache.insert(b, (Slot::Ready(bytes.clone()), tick));
        }
        Ok(bytes)
    }

    /// Rows `rows`' raw bytes, from the blocks they lie in.
    fn raw_rows(&self, rows: Range<u64>) -> Result<Vec<u8>> {
        let rb = self.npy.row_bytes() as usize;
        let mut out = Vec::with_capacity((rows.end - rows.start) as usize * rb);
        let mut r = rows.start;
        while r < rows.end {
            let b = r / self.block_rows;
            let br = self.block_range(b);
            let upto = rows.end.min(br.end);
            let bytes = self.block(b)?;
            let from = (r - br.start) as usize * rb;
            let to = (upto - br.start) as usize * rb;
            out.extend_from_slice(&bytes[from..to]);
            r = upto;
        }
        Ok(out)
    }

    fn read(&self, rows: Range<u64>) -> Result<Tensor> {
        if !self.npy.rows_contiguous() {
            // A Fortran-order array's rows are scattered through the object: it is read
            // whole, once, and held.
            let whole = match self.whole.get() {
                Some(t) => t,
                None => {
                    let t = self.npy.load()?;
                    self.whole.get_or_init(|| t)
                }
            };
            return whole.slice_rows(rows.start as usize..rows.end as usize);
        }
        let raw = self.raw_rows(rows.clone())?;
        self.npy.rows_from_raw(rows, &raw)
    }

    /// Rows `indices` (in that order) stacked, read by coalesced ranged GETs: sorted, rows
    /// closer than a block apart merged into one request (of at most four blocks), every
    /// request in flight together. Rows in held blocks are copied from them. (Rows must be
    /// contiguous in the object.)
    fn gather(&self, indices: &[u64]) -> Result<Tensor> {
        let rb = self.npy.row_bytes();
        let mut order: Vec<(u64, usize)> = indices.iter().copied().zip(0..).collect();
        order.sort_unstable();
        if let Some(&(last, _)) = order.last() {
            if last >= self.npy.rows() {
                return Err(Error::OutOfRange {
                    index: usize::try_from(last).unwrap_or(usize::MAX),
                    len: usize::try_from(self.npy.rows()).unwrap_or(usize::MAX),
                });
            }
        }
        // Held blocks serve what they can; the rest is grouped into runs.
        let held: BTreeMap<u64, Bytes> = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .iter()
                .filter_map(|(&b, (s, _))| match s {
                    Slot::Ready(bytes) => Some((b, bytes.clone())),
                    Slot::Pending(_) | Slot::Failed(..) => None,
                })
                .collect()
        };
        let mut runs: Vec<Range<u64>> = Vec::new();
        for &(i, _) in &order {
            if held.contains_key(&(i / self.block_rows)) {
                continue;
            }
            match runs.last_mut() {
                Some(r)
                    if i < r.end + self.block_rows && i + 1 - r.start <= 4 * self.block_rows =>
                {
                    r.end = i + 1
                }
                _ => runs.push(i..i + 1),
            }
        }
        let byte_ranges: Vec<_> = runs
            .iter()
            .map(|r| self.npy.byte_range(r.clone()))
            .collect();
        let fetched = self.npy.object().read_ranges(&byte_ranges)?;
        let mut raw = vec![0u8; indices.len() * rb as usize];
        let rb = rb as usize;
        let mut run = 0;
        for &(i, at) in &order {
            let b = i / self.block_rows;
            let src: &[u8] = if let Some(bytes) = held.get(&b) {
                let off = (i - self.block_range(b).start) as usize * rb;
                &bytes[off..off + rb]
            } else {
                while runs[run].end <= i {
                    run += 1;
                }
                let off = (i - runs[run].start) as usize * rb;
                &fetched[run][off..off + rb]
            };
            raw[at * rb..(at + 1) * rb].copy_from_slice(src);
        }
        self.npy.rows_from_raw(0..indices.len() as u64, &raw)
    }
}

/// The rows of one or more `.npy` objects, read as one array.
#[derive(Clone)]
pub(crate) struct RemoteRows {
    parts: Arc<Vec<Rows>>,
    starts: Arc<Vec<u64>>,
    spec: ElementSpec,
}

impl RemoteRows {
    pub(crate) fn new(parts: Vec<RemoteNpy>, spec: ElementSpec, plan: ReadPlan) -> RemoteRows {
        let mut starts = vec![0u64];
        for p in &parts {
            starts.push(starts.last().unwrap_or(&0) + p.rows());
        }
        RemoteRows {
            parts: Arc::new(parts.into_iter().map(|p| Rows::new(p, plan)).collect()),
            starts: Arc::new(starts),
            spec,
        }
    }

    fn part_of(&self, index: u64) -> usize {
        self.starts.partition_point(|&s| s <= index) - 1
    }
}

impl Node for RemoteRows {
    describe_node! { name: "NpyRows"; spec: spec; }
    own_pass!();
}

impl Pass for RemoteRows {
    fn len(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }

    fn get(&self, index: u64) -> Result<Element> {
        let p = self.part_of(index);
        let r = index - self.starts[p];
        let t = self.parts[p].read(r..r + 1)?;
        Ok(t.row_view(0)?.into())
    }

    fn get_range(&self, start: u64, end: u64) -> Option<Result<Element>> {
        let p = self.part_of(start);
        let (first, next) = (self.starts[p], self.starts[p + 1]);
        (end <= next).then(|| Ok(self.parts[p].read(start - first..end - first)?.into()))
    }

    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        if self.parts.len() != 1 || !self.parts[0].npy.rows_contiguous() {
            return None;
        }
        // The rows are assembled in place and converted once; the pool is not needed.
        let _ = pool;
        Some(self.parts[0].gather(indices).map(Element::from))
    }
}
