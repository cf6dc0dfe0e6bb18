//! The rows of `.npy` objects read by URL (`from_npy("s3://...")`): a random-access source
//! whose rows come from ranged GETs, in blocks, read ahead of the consumer within a memory
//! budget.
//!
//! Rows are grouped in blocks of about `block_bytes` (8 MiB by default). Reading a row in
//! block *b* plans blocks *b*..*b*+*k*; planned blocks are fetched in order, at most
//! `max_in_flight` requests at once, while fewer than half of `read_ahead_bytes` (128 MiB
//! by default) are fetched ahead and not used yet: the other half holds the blocks in use,
//! of which the one started first makes room when a block ahead needs it. So a sequential
//! consumer finds its next blocks already fetched, several requests in flight. A batch of rows from all over the array (after a
//! global shuffle) is read by [`Pass::gather`] as few, large ranged GETs: its rows sorted,
//! neighbours closer than a block merged into one request, all requests in flight together.
//! A block shuffle (`Dataset::block_shuffle`) tells the source which blocks come next
//! ([`Pass::will_read`]): they are fetched in its order instead, each once.
//!
//! With a cache directory (the storage option `cache_dir`), every block goes through it: a
//! batch's rows of a block it does not hold are read as that whole block (not by their own
//! small ranges), so that the next pass finds every byte it reads in the directory and
//! makes no data request. Each pass first checks, by one `HEAD` per object, that the object
//! is still the version opened: a replaced object is an error, never its cached old bytes.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::plumbing::{describe_node, Cardinality, Node, Pass, PassRef};
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

impl Slot {
    /// Whether the block's request is still running.
    fn running(&self) -> bool {
        match self {
            Slot::Flight(f) => {
                f.done.get().is_none()
                    && f.pending
                        .try_lock()
                        .map_or(true, |p| p.as_ref().is_some_and(|p| !p.is_ready()))
            }
            _ => false,
        }
    }
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

/// The blocks of one object: held, on their way, and planned.
struct Blocks {
    /// Held blocks (or on their way), each with whether a reader used it yet and when it
    /// was started (a count): blocks are started in the order they are read, so the used
    /// block started first is the one whose turn is over.
    slots: BTreeMap<u64, (Slot, bool, u64)>,
    /// Blocks started so far.
    started: u64,
    /// Blocks to fetch next, in order, as the budget allows.
    plan: VecDeque<u64>,
}

/// One object's rows, read in blocks through a bounded cache.
struct Rows {
    npy: RemoteNpy,
    block_rows: u64,
    blocks: u64,
    /// How many blocks may be held or in flight at once.
    max_blocks: usize,
    /// How many block requests may run at once.
    max_in_flight: usize,
    state: Mutex<Blocks>,
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
        let max_in_flight = npy.object().max_in_flight().max(1);
        Rows {
            npy,
            block_rows,
            blocks,
            max_blocks,
            max_in_flight,
            state: Mutex::new(Blocks {
                slots: BTreeMap::new(),
                started: 0,
                plan: VecDeque::new(),
            }),
            hinted: AtomicBool::new(false),
            whole: OnceLock::new(),
        }
    }

    fn block_range(&self, b: u64) -> Range<u64> {
        b * self.block_rows..((b + 1) * self.block_rows).min(self.npy.rows())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Blocks> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes room for one more block: drops the block started first of those that have
    /// been used and are neither running nor `keep`; with `urgent` (a reader waits for `keep`), a
    /// block fetched ahead and not used yet if there is no other. False when there is none:
    /// then nothing more is fetched ahead until the reader catches up.
    fn evict_one(&self, st: &mut Blocks, keep: u64, urgent: bool) -> bool {
        let victim = st
            .slots
            .iter()
            .filter(|(&k, (s, used, _))| {
                k != keep && (urgent || *used || matches!(s, Slot::Failed(..))) && !s.running()
            })
            .min_by_key(|(_, (_, used, order))| (!*used, *order))
            .map(|(&k, _)| k);
        match victim {
            Some(k) => {
                st.slots.remove(&k);
                true
            }
            None => false,
        }
    }

    /// Starts fetching block `b` (not held). False when there is no room or the request
    /// could not start.
    fn start(&self, st: &mut Blocks, b: u64, urgent: bool) -> bool {
        while st.slots.len() >= self.max_blocks {
            if !self.evict_one(st, b, urgent) {
                return false;
            }
        }
        let r = self.npy.byte_range(self.block_range(b));
        match self.npy.object().prefetch(r) {
            Ok(p) => {
                let f = InFlight {
                    pending: Mutex::new(Some(p)),
                    done: OnceLock::new(),
                };
                st.started += 1;
                st.slots
                    .insert(b, (Slot::Flight(Arc::new(f)), false, st.started));
                true
            }
            Err(_) => false,
        }
    }

    /// Starts the planned fetches, in order, while fewer than `max_in_flight` requests run
    /// and fewer than half the budget of `max_blocks` are fetched ahead and not used yet
    /// (the other half holds the blocks in use: the least recently used of them make room).
    fn pump(&self, st: &mut Blocks) {
        let mut running = st.slots.values().filter(|(s, _, _)| s.running()).count();
        let mut ahead = st.slots.values().filter(|(_, used, _)| !*used).count();
        let max_ahead = (self.max_blocks / 2).max(1);
        while running < self.max_in_flight && ahead < max_ahead {
            let Some(&b) = st.plan.front() else { break };
            match st.slots.get(&b) {
                Some((Slot::Failed(_, at), _, _)) if at.elapsed() >= FAILED_FOR => {
                    st.slots.remove(&b);
                }
                Some(_) => {
                    st.plan.pop_front();
                    continue;
                }
                None => {}
            }
            if b >= self.blocks {
                st.plan.pop_front();
                continue;
            }
            if !self.start(st, b, false) {
                break;
            }
            st.plan.pop_front();
            running += 1;
            ahead += 1;
        }
    }

    /// Block `b`'s bytes: held, waited for when on their way, or fetched now (ahead of the
    /// planned ones). Unless a reader gave hints, the blocks after it are planned too
    /// (read-ahead in the object's order).
    fn block(&self, b: u64) -> Result<Bytes> {
        let flight = {
            let mut guard = self.lock();
            let st = &mut *guard;
            if !self.hinted.load(Ordering::Relaxed) {
                st.plan.clear();
                st.plan.extend((b..self.blocks).take(self.max_blocks));
            }
            if let Some((Slot::Failed(_, at), _, _)) = st.slots.get(&b) {
                if at.elapsed() >= FAILED_FOR {
                    st.slots.remove(&b);
                }
            }
            if !st.slots.contains_key(&b) {
                // Needed now: it goes first, whatever runs already.
                self.start(st, b, true);
            }
            self.pump(st);
            match st.slots.get_mut(&b) {
                Some((Slot::Ready(bytes), used, _)) => {
                    *used = true;
                    return Ok(bytes.clone());
                }
                Some((Slot::Failed(e, _), _, _)) => return Err(again(e)),
                Some((Slot::Flight(f), used, _)) => {
                    *used = true;
                    Some(f.clone())
                }
                None => None,
            }
        };
        let Some(flight) = flight else {
            // No room (every held block is running or not used yet): read it directly,
            // uncached.
            return self
                .npy
                .object()
                .read_range(self.npy.byte_range(self.block_range(b)));
        };
        let outcome = flight.wait();
        let mut guard = self.lock();
        let st = &mut *guard;
        if let Some((slot @ Slot::Flight(_), _, _)) = st.slots.get_mut(&b) {
            if matches!(slot, Slot::Flight(f) if Arc::ptr_eq(f, &flight)) {
                *slot = match &outcome {
                    Ok(bytes) => Slot::Ready(bytes.clone()),
                    Err(e) => Slot::Failed(e.clone(), Instant::now()),
                };
            }
        }
        self.pump(st);
        outcome.map_err(|e| again(&e))
    }

    /// The blocks a batch reads whole: of `per_block` (rows of the batch in each block),
    /// those held or on their way, and those the batch takes at least 1/64 of (any share,
    /// through a cache directory), fetched now if missing. All are claimed under one lock before any is waited for, so that making
    /// room for blocks ahead cannot drop one this batch still needs.
    fn claim(&self, per_block: &BTreeMap<u64, u64>) -> Result<BTreeMap<u64, Bytes>> {
        let mut claimed = Vec::new();
        // Through a cache directory, every block is worth holding: another reader of it
        // then waits for its one request instead of making its own.
        let any_share = self.npy.object().is_cached();
        {
            let mut guard = self.lock();
            let st = &mut *guard;
            for (&b, &n) in per_block {
                if let Some((Slot::Failed(_, at), _, _)) = st.slots.get(&b) {
                    if at.elapsed() >= FAILED_FOR {
                        st.slots.remove(&b);
                    }
                }
                if !st.slots.contains_key(&b)
                    && (any_share || n * 64 >= self.block_rows)
                    && !self.start(st, b, true)
                {
                    continue;
                }
                match st.slots.get_mut(&b) {
                    Some((Slot::Ready(bytes), used, _)) => {
                        *used = true;
                        claimed.push((b, Ok(bytes.clone())));
                    }
                    Some((Slot::Flight(f), used, _)) => {
                        *used = true;
                        claimed.push((b, Err(f.clone())));
                    }
                    Some((Slot::Failed(e, _), _, _)) => return Err(again(e)),
                    None => {}
                }
            }
        }
        let mut held = BTreeMap::new();
        for (b, c) in claimed {
            let bytes = match c {
                Ok(bytes) => bytes,
                Err(flight) => {
                    let outcome = flight.wait();
                    let mut st = self.lock();
                    if let Some((slot @ Slot::Flight(_), _, _)) = st.slots.get_mut(&b) {
                        if matches!(slot, Slot::Flight(f) if Arc::ptr_eq(f, &flight)) {
                            *slot = match &outcome {
                                Ok(bytes) => Slot::Ready(bytes.clone()),
                                Err(e) => Slot::Failed(e.clone(), Instant::now()),
                            };
                        }
                    }
                    outcome.map_err(|e| again(&e))?
                }
            };
            held.insert(b, bytes);
        }
        let mut guard = self.lock();
        self.pump(&mut guard);
        Ok(held)
    }

    /// Plans the blocks that hold rows `ranges`, after those planned already; from now on
    /// blocks are fetched in the order readers announce, not read ahead.
    fn will_read(&self, ranges: &[Range<u64>]) {
        self.hinted.store(true, Ordering::Relaxed);
        let mut guard = self.lock();
        let st = &mut *guard;
        for r in ranges.iter().filter(|r| r.start < r.end) {
            for b in r.start / self.block_rows..=(r.end - 1) / self.block_rows {
                if !st.plan.contains(&b) {
                    st.plan.push_back(b);
                }
            }
        }
        self.pump(st);
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

    /// Rows `indices` (in that order) stacked. Rows of blocks held or on their way, or of
    /// which the batch takes at least 1/64, come from those blocks. The others are read by
    /// coalesced ranged GETs: sorted, rows closer than a block apart merged into one request
    /// (of at most four blocks), every request in flight together; or, when the object is
    /// read through a cache directory, as whole blocks (so that the next pass finds them
    /// there), a few at a time. (Rows must be contiguous in the object.)
    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Result<Tensor> {
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
        // Rows of the batch in each block: a block the batch takes at least 1/64 of is read
        // whole and kept (the next batches of a block shuffle want it too); the rows of
        // the others (a global shuffle's scattered rows) are read apart.
        let mut per_block: BTreeMap<u64, u64> = BTreeMap::new();
        for &(i, _) in &order {
            *per_block.entry(i / self.block_rows).or_default() += 1;
        }
        let held = self.claim(&per_block)?;
        let mut buf = pool.take(indices.len() * rb as usize)?;
        let raw = buf.as_mut_slice();
        let rb = rb as usize;
        // The rows of blocks not held, as requests: (rows the request reads, positions in
        // `order` of the rows it serves).
        let mut requests: Vec<(Range<u64>, Range<usize>)> = Vec::new();
        let whole_blocks = self.npy.object().is_cached();
        for (k, &(i, at)) in order.iter().enumerate() {
            let b = i / self.block_rows;
            if let Some(bytes) = held.get(&b) {
                let off = (i - self.block_range(b).start) as usize * rb;
                raw[at * rb..(at + 1) * rb].copy_from_slice(&bytes[off..off + rb]);
                continue;
            }
            match requests.last_mut() {
                Some((rows, serves)) if whole_blocks && i < rows.end => serves.end = k + 1,
                Some((rows, serves))
                    if !whole_blocks
                        && i < rows.end + self.block_rows
                        && i + 1 - rows.start <= 4 * self.block_rows =>
                {
                    rows.end = i + 1;
                    serves.end = k + 1;
                }
                _ if whole_blocks => requests.push((self.block_range(b), k..k + 1)),
                _ => requests.push((i..i + 1, k..k + 1)),
            }
        }
        // Whole blocks are read a few at a time (their bytes are dropped once copied);
        // coalesced rows all at once.
        let group = if whole_blocks {
            (self.max_blocks / 2).max(1)
        } else {
            requests.len().max(1)
        };
        for chunk in requests.chunks(group) {
            let byte_ranges: Vec<_> = chunk
                .iter()
                .map(|(rows, _)| self.npy.byte_range(rows.clone()))
                .collect();
            let fetched = self.npy.object().read_ranges(&byte_ranges)?;
            for ((rows, serves), bytes) in chunk.iter().zip(&fetched) {
                for &(i, at) in &order[serves.clone()] {
                    let off = (i - rows.start) as usize * rb;
                    raw[at * rb..(at + 1) * rb].copy_from_slice(&bytes[off..off + rb]);
                }
            }
        }
        self.npy.rows_from_buffer(indices.len() as u64, buf)
    }

    /// Once per pass, before anything is read from a cache directory: checks that the object
    /// is still the version opened (one `HEAD`). On a change, the blocks held are dropped too,
    /// so that nothing of the old version is served; every read then fails as a read of a
    /// replaced object does.
    fn check_unchanged(&self) -> Result<()> {
        if !self.npy.object().is_cached() {
            return Ok(());
        }
        let r = self.npy.object().check_unchanged();
        if r.is_err() && !self.npy.object().is_cached() {
            let mut st = self.lock();
            st.slots.clear();
            st.plan.clear();
        }
        r
    }
}

/// The rows of one or more `.npy` objects, read as one array.
#[derive(Clone)]
pub(crate) struct RemoteRows {
    parts: Arc<Vec<Rows>>,
    starts: Arc<Vec<u64>>,
    spec: ElementSpec,
    /// Per pass: whether each part's object was checked to be unchanged (objects read
    /// through a cache directory are checked once per pass, on first use).
    checked: Arc<Vec<Mutex<bool>>>,
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
            checked: Arc::new(Vec::new()),
        }
    }

    fn part_of(&self, index: u64) -> usize {
        self.starts.partition_point(|&s| s <= index) - 1
    }

    /// Part `p`, checked unchanged once in this pass where it is read through a cache (the
    /// pass's other readers of it wait for that one check).
    fn part(&self, p: usize) -> Result<&Rows> {
        let part = &self.parts[p];
        if let Some(checked) = self.checked.get(p) {
            let mut done = checked.lock().unwrap_or_else(|e| e.into_inner());
            if !*done {
                part.check_unchanged()?;
                *done = true;
            }
        }
        Ok(part)
    }
}

impl Node for RemoteRows {
    describe_node! { name: "NpyRows"; spec: spec; }

    fn cardinality(&self) -> Cardinality {
        Cardinality::Finite(Pass::len(self))
    }

    fn is_random_access(&self) -> bool {
        true
    }

    fn pass(&self) -> Option<PassRef> {
        // A new pass: each object is checked again (when read through a cache).
        let checked = self.parts.iter().map(|_| Mutex::new(false)).collect();
        Some(Arc::new(RemoteRows {
            checked: Arc::new(checked),
            ..self.clone()
        }))
    }
}

impl Pass for RemoteRows {
    fn len(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }

    fn get(&self, index: u64) -> Result<Element> {
        let p = self.part_of(index);
        let r = index - self.starts[p];
        let t = self.part(p)?.read(r..r + 1)?;
        Ok(t.row_view(0)?.into())
    }

    fn get_range(&self, start: u64, end: u64) -> Option<Result<Element>> {
        let p = self.part_of(start);
        let (first, next) = (self.starts[p], self.starts[p + 1]);
        (end <= next).then(|| Ok(self.part(p)?.read(start - first..end - first)?.into()))
    }

    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        if self.parts.len() != 1 || !self.parts[0].npy.rows_contiguous() {
            return None;
        }
        // The rows are copied into a pooled buffer and converted there.
        Some(
            self.part(0)
                .and_then(|part| part.gather(indices, pool))
                .map(Element::from),
        )
    }

    fn will_read(&self, ranges: &[Range<u64>]) {
        for p in 0..self.parts.len() {
            let (lo, hi) = (self.starts[p], self.starts[p + 1]);
            let local: Vec<Range<u64>> = ranges
                .iter()
                .filter(|r| r.start < hi && r.end > lo)
                .map(|r| r.start.max(lo) - lo..r.end.min(hi) - lo)
                .collect();
            if local.is_empty() {
                continue;
            }
            // An object that changed is not read ahead (its reads fail at their elements).
            if let Ok(part) = self.part(p) {
                part.will_read(&local);
            }
        }
    }
}
