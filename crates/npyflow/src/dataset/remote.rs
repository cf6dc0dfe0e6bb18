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
//! A block shuffle (`Dataset::block_shuffle`) tells the source which blocks come next
//! ([`Pass::will_read`]): they are fetched in its order instead, each once.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

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

/// A block on its way: the request, and its outcome once a reader has waited for it (the
/// readers of one block share one request).
struct InFlight {
    pending: Mutex<Option<Pending>>,
    done: OnceLock<std::result::Result<Bytes, Arc<Error>>>,
}

impl InFlight {
    fn wait(&self) -> std::result::Result<Bytes, Arc<Error>> {
        if let Some(r) = self.done.get() {
            return r.clone();
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = self.done.get() {
            return r.clone();
        }
        let r = match pending.take() {
            Some(p) => p.wait().map_err(Arc::new),
            None => Err(Arc::new(Error::Pipeline(
                "a block's read was lost (a reader panicked while waiting)".into(),
            ))),
        };
        self.done.get_or_init(|| r).clone()
    }
}

/// A block held, on its way, or that could not be read.
enum Slot {
    Flight(Arc<InFlight>),
    Ready(Bytes),
    /// The read failed after its retries, at this time: the block's other rows fail at once
    /// for [`FAILED_FOR`] instead of each trying again from scratch.
    Failed(Arc<Error>, Instant),
}

/// How long a block that could not be read is not tried again.
const FAILED_FOR: Duration = Duration::from_secs(10);

/// A copy of a shared error (an I/O error keeps its kind, so Python raises the same type).
fn again(e: &Error) -> Error {
    match e {
        Error::Io { path, source } => Error::io(
            path.clone(),
            std::io::Error::new(source.kind(), source.to_string()),
        ),
        other => Error::Pipeline(other.to_string()),
    }
}

/// One object's rows, read in blocks through a bounded cache.
struct Rows {
    npy: RemoteNpy,
    block_rows: u64,
    blocks: u64,
    /// How many blocks may be held or in flight at once.
    max_blocks: usize,
    /// Held blocks, with the tick of their last use.
    cache: Mutex<BTreeMap<u64, (Slot, u64)>>,
    tick: AtomicU64,
    /// Whether a reader said what it reads next ([`Pass::will_read`]): then blocks are
    /// fetched in its order, not read ahead in the object's.
    hinted: AtomicBool,
    /// A Fortran-order array, read whole on first use.
    whole: OnceLock<Tensor>,
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
            tick: AtomicU64::new(0),
            hinted: AtomicBool::new(false),
            whole: OnceLock::new(),
        }
    }

    fn block_range(&self, b: u64) -> Range<u64> {
        b * self.block_rows..((b + 1) * self.block_rows).min(self.npy.rows())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, (Slot, u64)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts fetching the blocks `want` that are not held, in that order, as far as the
    /// budget allows, evicting the least recently used blocks that are neither in flight
    /// nor wanted.
    fn request(&self, cache: &mut BTreeMap<u64, (Slot, u64)>, want: &[u64]) {
        for &b in want {
            match cache.get(&b) {
                Some((Slot::Failed(_, at), _)) if at.elapsed() >= FAILED_FOR => {
                    cache.remove(&b);
                }
                Some(_) => continue,
                None => {}
            }
            if b >= self.blocks {
                continue;
            }
            while cache.len() >= self.max_blocks {
                let victim = cache
                    .iter()
                    .filter(|(k, (s, _))| !matches!(s, Slot::Flight(_)) && !want.contains(k))
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
                    let f = InFlight {
                        pending: Mutex::new(Some(p)),
                        done: OnceLock::new(),
                    };
                    cache.insert(b, (Slot::Flight(Arc::new(f)), 0));
                }
                Err(_) => return,
            }
        }
    }

    /// Block `b`'s bytes: held, waited for when on their way, or fetched. Unless a reader
    /// gave hints, the blocks after it are requested too (read-ahead).
    fn block(&self, b: u64) -> Result<Bytes> {
        let tick = self.tick.fetch_add(1, Ordering::Relaxed) + 1;
        let flight = {
            let mut cache = self.lock();
            if self.hinted.load(Ordering::Relaxed) {
                self.request(&mut cache, &[b]);
            } else {
                let ahead: Vec<u64> = (b..self.blocks).take(self.max_blocks).collect();
                self.request(&mut cache, &ahead);
            }
            match cache.get_mut(&b) {
                Some((Slot::Ready(bytes), t)) => {
                    *t = tick;
                    return Ok(bytes.clone());
                }
                Some((Slot::Failed(e, _), _)) => return Err(again(e)),
                Some((Slot::Flight(f), t)) => {
                    *t = tick;
                    Some(f.clone())
                }
                None => None,
            }
        };
        let Some(flight) = flight else {
            // No room (every held block is in flight): read it directly, uncached.
            return self
                .npy
                .object()
                .read_range(self.npy.byte_range(self.block_range(b)));
        };
        let outcome = flight.wait();
        let mut cache = self.lock();
        if let Some((slot @ Slot::Flight(_), _)) = cache.get_mut(&b) {
            if matches!(slot, Slot::Flight(f) if Arc::ptr_eq(f, &flight)) {
                *slot = match &outcome {
                    Ok(bytes) => Slot::Ready(bytes.clone()),
                    Err(e) => Slot::Failed(e.clone(), Instant::now()),
                };
            }
        }
        outcome.map_err(|e| again(&e))
    }

    /// Starts fetching the blocks that hold rows `ranges`, in that order, within the budget;
    /// from now on blocks are fetched in the order readers announce, not read ahead.
    fn will_read(&self, ranges: &[Range<u64>]) {
        self.hinted.store(true, Ordering::Relaxed);
        let mut want = Vec::new();
        for r in ranges.iter().filter(|r| r.start < r.end) {
            for b in r.start / self.block_rows..=(r.end - 1) / self.block_rows {
                if !want.contains(&b) {
                    want.push(b);
                }
            }
        }
        want.truncate(self.max_blocks);
        let mut cache = self.lock();
        self.request(&mut cache, &want);
    }

    /// Whether block `b` is held or on its way.
    fn has(&self, b: u64) -> bool {
        matches!(
            self.lock().get(&b),
            Some((Slot::Ready(_) | Slot::Flight(_), _))
        )
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

    /// Rows `indices` (in that order) stacked. Rows of blocks held or on their way come from
    /// those blocks; the others are read by coalesced ranged GETs: sorted, rows closer than
    /// a block apart merged into one request (of at most four blocks), every request in
    /// flight together. (Rows must be contiguous in the object.)
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
        let mut held: BTreeMap<u64, Bytes> = BTreeMap::new();
        let mut runs: Vec<Range<u64>> = Vec::new();
        for &(i, _) in &order {
            let b = i / self.block_rows;
            if held.contains_key(&b) {
                continue;
            }
            if self.has(b) {
                held.insert(b, self.block(b)?);
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

    fn will_read(&self, ranges: &[Range<u64>]) {
        for (p, part) in self.parts.iter().enumerate() {
            let (lo, hi) = (self.starts[p], self.starts[p + 1]);
            let local: Vec<Range<u64>> = ranges
                .iter()
                .filter(|r| r.start < hi && r.end > lo)
                .map(|r| r.start.max(lo) - lo..r.end.min(hi) - lo)
                .collect();
            if !local.is_empty() {
                part.will_read(&local);
            }
        }
    }
}
