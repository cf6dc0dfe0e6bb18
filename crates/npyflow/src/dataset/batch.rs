//! `batch` and `padded_batch`: consecutive elements stacked along a new first axis.

use std::sync::Arc;

use super::cache_hint;
use super::fusion::{apply_elementwise_pooled, ops_for, POOLED_BATCHES};
use super::map::op_chain;
use super::options::{BatchOptions, Parallelism};
use super::plumbing::{
    describe_node, require, restore, BoxIter, Cardinality, Dataset, ElementIter, Node, Pass,
    PassRef, Piece, PieceRows,
};
use super::runtime::parallel::{panic_error, read_parallel_state, Jobs, Lanes, ParallelIter};
use super::state::State;
use crate::buffer::{Buffer, BufferPool};
use crate::element::{dtype_fits, one_wide, Element, ElementSpec, PartialShape, TensorSpec};
use crate::error::{Error, Result};
use crate::ops::elementwise::{
    apply_elementwise_bytes, apply_elementwise_into, f32_factor, scale_f32,
};
use crate::ops::{Component, Op, OpKind};
use crate::tensor::Tensor;
use crate::tensor_ops::{check_stackable, widen_to_widest};

/// How many batches a pass with `parallel` workers may have in the making at once.
fn in_flight(parallel: Option<Parallelism>) -> usize {
    parallel.map_or(1, |p| 2 * p.num_threads())
}

/// What makes one top-level part of a batch from that part of its rows, given the fused ops
/// aimed at it.
type PartFn<'a> = dyn Fn(&[Element], Vec<&Op>) -> Result<Element> + 'a;

/// How one batch is made from its elements.
#[derive(Clone)]
enum Assemble {
    Stack,
    /// For each tensor of the element (in [`Element::tensors`] order): the shape to pad to
    /// (unknown dimensions: the largest in the batch) and the padding value.
    Pad(Arc<Vec<(PartialShape, Tensor)>>),
}

/// Makes batches: stacks rows into pooled buffers, applying fused elementwise ops (from a
/// op `map` just before the batch) as each row is written.
pub(super) struct Assembler {
    assemble: Assemble,
    fused: Vec<Op>,
    pool: BufferPool,
}

impl Assembler {
    /// An assembler that stacks rows, for a pass with `parallel` workers.
    pub(super) fn stacking(parallel: Option<Parallelism>) -> Assembler {
        Assembler {
            assemble: Assemble::Stack,
            fused: Vec::new(),
            pool: BufferPool::new(in_flight(parallel) + POOLED_BATCHES),
        }
    }

    fn rows(&self, rows: &[Element]) -> Result<Element> {
        match &self.assemble {
            // An op graph maps whole elements: stack the rows, then map the batch.
            Assemble::Stack if self.fused.iter().any(|op| op.as_graph().is_some()) => {
                let plain = Assembler {
                    assemble: Assemble::Stack,
                    fused: Vec::new(),
                    pool: self.pool.clone(),
                };
                apply_elementwise_pooled(plain.stack(rows)?, &self.fused, &self.pool)
            }
            Assemble::Stack => self.stack(rows),
            Assemble::Pad(pads) => {
                let mut k = 0;
                Element::combine(rows, &mut |ts| {
                    let (shape, fill) = &pads[k];
                    k += 1;
                    pad_and_stack(ts, shape, fill).map_err(|e| in_component(e, &rows[0], k - 1))
                })
            }
        }
    }

    /// Stacks rows, top-level part by part so each part gets the fused ops aimed at it.
    fn stack(&self, rows: &[Element]) -> Result<Element> {
        // The tensors are stacked in the order of the element's tensors: the k-th call is
        // the k-th component, which an error names.
        let k = std::cell::Cell::new(0);
        self.by_part(rows, &|parts, ops| {
            Element::combine(parts, &mut |ts| {
                k.set(k.get() + 1);
                stack_pooled(ts, &ops, &self.pool)
                    .map_err(|e| in_component(e, &rows[0], k.get() - 1))
            })
        })
    }

    /// `leaf` on each top-level part of `rows` (the whole of them for a single tensor),
    /// with the fused ops aimed at it.
    fn by_part(&self, rows: &[Element], leaf: &PartFn<'_>) -> Result<Element> {
        match rows.first() {
            Some(Element::Tuple(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for i in 0..items.len() {
                    let parts: Vec<Element> = rows
                        .iter()
                        .map(|r| r.get(i).cloned())
                        .collect::<Result<_>>()?;
                    out.push(leaf(
                        &parts,
                        ops_for(&self.fused, Some(Component::Index(i))),
                    )?);
                }
                Ok(Element::Tuple(out))
            }
            Some(Element::Dict(items)) => {
                let mut out = indexmap::IndexMap::with_capacity(items.len());
                for k in items.keys() {
                    let parts: Vec<Element> = rows
                        .iter()
                        .map(|r| r.get_key(k).cloned())
                        .collect::<Result<_>>()?;
                    let ops = ops_for(&self.fused, Some(Component::Key(k.clone())));
                    out.insert(k.clone(), leaf(&parts, ops)?);
                }
                Ok(Element::Dict(out))
            }
            _ => leaf(rows, ops_for(&self.fused, None)),
        }
    }

    /// A batch of the rows taken from a stream: stacked elements, or pieces read in bulk
    /// written straight to their places in the batch buffer.
    fn taken(&self, taken: Taken) -> Result<Element> {
        match taken {
            Taken::Elements(rows) => self.rows(&rows),
            Taken::Pieces(pieces, n) => self.pieces(&pieces, n),
        }
    }

    /// Stacks `pieces` (runs of rows and single elements, no errors) covering positions
    /// `0..n`, each row written once, through the fused ops, to its place.
    fn pieces(&self, pieces: &[Piece], n: usize) -> Result<Element> {
        if self.fused.iter().any(|op| op.as_graph().is_some()) {
            // An op graph maps whole batches. Rows read as one run of consecutive rows are a
            // batch already: the graph reads them in place.
            if let [Piece {
                rows: PieceRows::Run { rows, first, count },
                at: 0,
                run,
                ..
            }] = pieces
            {
                if *count == n && *run >= n {
                    let batch = rows.map_tensors(&mut |t| t.rows_view(*first..*first + n))?;
                    let out = apply_elementwise_pooled(batch.clone(), &self.fused, &self.pool)?;
                    // A row of a file truncated under its map may have been read as zeros.
                    Buffer::check_all_intact(batch.tensors().into_iter().map(Tensor::buffer))?;
                    return Ok(out);
                }
            }
            // Otherwise: stack, then map the batch.
            let plain = Assembler {
                assemble: Assemble::Stack,
                fused: Vec::new(),
                pool: self.pool.clone(),
            };
            return apply_elementwise_pooled(plain.pieces(pieces, n)?, &self.fused, &self.pool);
        }
        let covered: usize = pieces.iter().map(Piece::count).sum();
        if covered != n {
            return Err(Error::Pipeline(format!(
                "batch: {covered} rows read in bulk for a batch of {n} (a bug in npyflow)"
            )));
        }
        let mut parts = Vec::with_capacity(pieces.len());
        for p in pieces {
            parts.push(match &p.rows {
                PieceRows::Run { rows, .. } => rows.clone(),
                PieceRows::One(Ok(e)) => e.clone(),
                PieceRows::One(Err(_)) => {
                    return Err(Error::Pipeline(
                        "batch: an error among the rows to stack (a bug in npyflow)".into(),
                    ))
                }
            });
        }
        let k = std::cell::Cell::new(0);
        self.by_part(&parts, &|batch_parts, ops| {
            Element::combine(batch_parts, &mut |ts| {
                k.set(k.get() + 1);
                stack_pieces(ts, pieces, n, &ops, &self.pool)
                    .map_err(|e| in_component(e, &parts[0], k.get() - 1))
            })
        })
    }

    /// Batch `start..end` of a pass: a slice of a contiguous source when it can be (with
    /// any fused ops applied to the whole batch at once), rows stacked otherwise.
    pub(super) fn range(&self, pass: &dyn Pass, start: u64, end: u64) -> Result<Element> {
        if matches!(self.assemble, Assemble::Stack) {
            if let Some(batch) = pass.get_range(start, end) {
                let batch = batch?;
                return if self.fused.is_empty() {
                    Ok(batch)
                } else {
                    apply_elementwise_pooled(batch, &self.fused, &self.pool)
                };
            }
        }
        if matches!(self.assemble, Assemble::Stack) {
            let indices: Vec<u64> = (start..end).collect();
            if let Some(batch) = pass.gather(&indices, &self.pool) {
                let batch = batch?;
                return if self.fused.is_empty() {
                    Ok(batch)
                } else {
                    apply_elementwise_pooled(batch, &self.fused, &self.pool)
                };
            }
        }
        let rows = (start..end)
            .map(|i| pass.get(i))
            .collect::<Result<Vec<_>>>()?;
        self.rows(&rows)
    }
}

/// `e`, from the `k`-th tensor of elements shaped as `first`, with that tensor's component
/// in front as Python names it (`component 1: ...`, `component 'image': ...`); `e` alone
/// for an element that is one tensor.
fn in_component(e: Error, first: &Element, k: usize) -> Error {
    match first.spec().component_names().get(k) {
        Some(name) if !name.is_empty() => e.context(format!("component {name}")),
        _ => e,
    }
}

/// Stacks equal-shaped tensors into a pooled buffer, each row passed through `ops`.
fn stack_pooled(ts: &[&Tensor], ops: &[&Op], pool: &BufferPool) -> Result<Tensor> {
    if let Some(wide) = widen_to_widest(ts.iter().copied())? {
        return stack_pooled(&wide.iter().collect::<Vec<_>>(), ops, pool);
    }
    let first = ts[0];
    check_stackable(ts.iter().copied())?;
    let mut dtype = first.dtype();
    for op in ops {
        if let OpKind::Cast(d) = op.kind() {
            dtype = *d;
        }
    }
    let row = first.size() * dtype.itemsize();
    let mut shape = vec![ts.len()];
    shape.extend_from_slice(first.shape());
    let mut out = pool.take(row * ts.len())?;
    let dst = out.as_mut_slice();
    for (i, t) in ts.iter().enumerate() {
        let slot = &mut dst[i * row..(i + 1) * row];
        if ops.is_empty() {
            slot.copy_from_slice(t.as_bytes());
        } else {
            apply_elementwise_into(ops, t, dtype, slot)?;
        }
    }
    // A row of a file truncated under its map may have been read as zeros.
    Buffer::check_all_intact(ts.iter().map(|t| t.buffer()))?;
    Tensor::new(dtype, &shape, out.freeze())
}

/// Stacks the tensors `ts` of `pieces` (one each, in order: a run's batched tensor, or a
/// single element's) into a pooled buffer of `n` rows, each row passed through `ops` and
/// written to its place.
fn stack_pieces(
    ts: &[&Tensor],
    pieces: &[Piece],
    n: usize,
    ops: &[&Op],
    pool: &BufferPool,
) -> Result<Tensor> {
    if let Some(wide) = widen_to_widest(ts.iter().copied())? {
        return stack_pieces(&wide.iter().collect::<Vec<_>>(), pieces, n, ops, pool);
    }
    let row_shape = |k: usize| match pieces[k].rows {
        PieceRows::Run { .. } => ts[k].shape().get(1..).unwrap_or(&[]),
        PieceRows::One(_) => ts[k].shape(),
    };
    // The row at position 0 sets the shape; a mismatch is reported as a stack of the
    // elements one by one reports it (the first position that differs).
    let first = pieces
        .iter()
        .position(|p| p.at == 0)
        .ok_or_else(|| Error::Pipeline("batch: no row at position 0 (a bug in npyflow)".into()))?;
    let (dtype_in, shape) = (ts[first].dtype(), row_shape(first));
    let mismatch = (0..pieces.len())
        .filter(|&k| ts[k].dtype() != dtype_in || row_shape(k) != shape)
        .min_by_key(|&k| pieces[k].at);
    if let Some(k) = mismatch {
        return Err(Error::Pipeline(format!(
            "cannot batch tensors of different shapes or dtypes: element 0 is {} {:?}, \
             element {} is {} {:?} (padded_batch pads them to one shape)",
            dtype_in,
            shape,
            pieces[k].at,
            ts[k].dtype(),
            row_shape(k)
        )));
    }
    let mut dtype = dtype_in;
    for op in ops {
        if let OpKind::Cast(d) = op.kind() {
            dtype = *d;
        }
    }
    let size: usize = shape.iter().product();
    let (row_in, row_out) = (size * dtype_in.itemsize(), size * dtype.itemsize());
    let mut out = pool.take(row_out * n)?;
    let dst = out.as_mut_slice();
    // The chain of `x * m` on float32 (W3's map), resolved once for the batch: an interleave
    // with blocks of one row gives a run per row, and the checks of a chain per run cost
    // as much as a row of 256 floats takes.
    let factor = f32_factor(ops, dtype_in, dtype);
    let mut write = |src: &[u8], at: usize, rows: usize| -> Result<()> {
        let slot = &mut dst[at * row_out..(at + rows) * row_out];
        if ops.is_empty() {
            slot.copy_from_slice(src);
            Ok(())
        } else if factor.is_some_and(|m| scale_f32(src, m, slot)) {
            Ok(())
        } else {
            apply_elementwise_bytes(ops, dtype_in, shape, src, dtype, slot)
        }
    };
    for (k, (p, t)) in pieces.iter().zip(ts).enumerate() {
        match p.rows {
            PieceRows::Run { first, count, .. } => {
                let bytes = t.as_bytes();
                let end = (first + count) * row_in;
                // The start of the next piece (often another file) while this one is read.
                if let (Some(next), Some(u)) = (pieces.get(k + 1), ts.get(k + 1)) {
                    if let PieceRows::Run { first, count, .. } = next.rows {
                        let (at, to) = (first * row_in, (first + count) * row_in);
                        let next = u.as_bytes();
                        let to = to.min(at + cache_hint::AHEAD);
                        cache_hint::prefetch(next.get(at..to).unwrap_or_default());
                    }
                }
                // Block by block: `run` rows side by side in the source and in the batch,
                // the rows a page further on asked for while each block is written.
                let mut q = 0;
                while q < count {
                    let rows = p.run.min(count - q);
                    let (a, b) = ((first + q) * row_in, (first + q + rows) * row_in);
                    cache_hint::prefetch_ahead(bytes, a, b, end);
                    write(&bytes[a..b], p.position(q), rows)?;
                    q += rows;
                }
            }
            PieceRows::One(_) => write(t.as_bytes(), p.at, 1)?,
        }
    }
    // A row of a file truncated under its map may have been read as zeros.
    Buffer::check_all_intact(ts.iter().map(|t| t.buffer()))?;
    let mut batch_shape = vec![n];
    batch_shape.extend_from_slice(shape);
    Tensor::new(dtype, &batch_shape, out.freeze())
}

fn pad_and_stack(ts: &[&Tensor], shape: &PartialShape, fill: &Tensor) -> Result<Tensor> {
    // Strings of several widths (and their padding value) at the widest of them.
    if let Some(mut wide) = widen_to_widest(ts.iter().copied().chain([fill]))? {
        let fill = wide.pop().ok_or_else(|| {
            Error::Pipeline("padded_batch: no padding value (a bug in npyflow)".into())
        })?;
        return pad_and_stack(&wide.iter().collect::<Vec<_>>(), shape, &fill);
    }
    let rank = ts[0].ndim();
    let dims = shape.dims().map_or_else(|| vec![None; rank], <[_]>::to_vec);
    let mut target = Vec::with_capacity(rank);
    for (axis, want) in dims.iter().enumerate() {
        let largest = ts
            .iter()
            .map(|t| t.shape().get(axis).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        match want {
            Some(w) if *w < largest => {
                return Err(Error::Pipeline(format!(
                    "padded_batch: cannot pad a dimension of {largest} to the smaller padded \
                     shape {shape}"
                )))
            }
            Some(w) => target.push(*w),
            None => target.push(largest),
        }
    }
    let padded = ts
        .iter()
        .map(|t| {
            if t.ndim() != rank {
                return Err(Error::Pipeline(format!(
                    "padded_batch: elements of rank {} and {rank} in one batch",
                    t.ndim()
                )));
            }
            t.pad_to(&target, fill)
        })
        .collect::<Result<Vec<_>>>()?;
    Tensor::stack(&padded)
}

struct Batch {
    input: Dataset,
    batch_size: usize,
    drop_remainder: bool,
    assemble: Assemble,
    spec: ElementSpec,
    /// Threads and whether their output keeps its order, when assembly runs in parallel.
    parallel: Option<Parallelism>,
    /// The batch buffers, kept from pass to pass while the dataset lives: an epoch after the
    /// first writes into memory already faulted in, as do the passes of a benchmark.
    pool: BufferPool,
}

impl Batch {
    /// The dataset rows are read from, and the elementwise ops fused into assembly: a
    /// chain of op maps just before a plain batch is run by the batch itself.
    /// Also the parallelism the fused map asked for.
    fn source(&self) -> (Dataset, Vec<Op>, Option<Parallelism>) {
        if let (Assemble::Stack, Some(chain)) = (&self.assemble, op_chain(&self.input)) {
            if chain.is_elementwise() {
                let parallel = chain.batch_parallelism(self.parallel);
                return (chain.input.clone(), chain.ops.clone(), parallel);
            }
        }
        (self.input.clone(), Vec::new(), self.parallel)
    }

    fn assembler(&self, fused: Vec<Op>) -> Arc<Assembler> {
        Arc::new(Assembler {
            assemble: self.assemble.clone(),
            fused,
            pool: self.pool.clone(),
        })
    }
}

/// An input that is not called again once it has ended.
struct Fused {
    input: BoxIter,
    ended: bool,
}

impl Fused {
    fn next(&mut self) -> Option<Result<Element>> {
        if self.ended {
            return None;
        }
        let item = self.input.next();
        self.ended = item.is_none();
        item
    }

    fn next_rows(&mut self, max: usize) -> Option<Vec<Piece>> {
        if self.ended {
            return None;
        }
        self.input.next_rows(max)
    }

    fn save(&self, tag: &str) -> Result<State> {
        Ok(State::new(tag).flag(self.ended).kid(self.input.save()?))
    }

    /// Opens `source`, fresh or from a state saved under `tag`.
    fn open(source: &Dataset, from: Option<State>, tag: &str) -> Result<Fused> {
        let (ended, input) = restore(from, tag, |r| Ok((r.flag()?, r.kid()?)))?
            .map_or((false, None), |(e, s)| (e, Some(s)));
        Ok(Fused {
            input: source.open_from(input)?,
            ended,
        })
    }
}

/// Rows of a batch, taken in order: the jobs of a parallel batch.
struct BatchJobs {
    input: Fused,
    size: usize,
    drop: bool,
    bulk: bool,
}

impl Jobs<Result<Taken>> for BatchJobs {
    fn next(&mut self) -> Option<Result<Taken>> {
        take_rows(&mut self.input, self.size, self.drop, self.bulk)
    }
    fn save(&self) -> Result<State> {
        self.input.save("BatchJobs")
    }
}

struct BatchIter {
    input: Fused,
    size: usize,
    drop: bool,
    bulk: bool,
    asm: Arc<Assembler>,
}

impl ElementIter for BatchIter {
    fn next(&mut self) -> Option<Result<Element>> {
        take_rows(&mut self.input, self.size, self.drop, self.bulk)
            .map(|taken| self.asm.taken(taken?))
    }
    fn save(&self) -> Result<State> {
        self.input.save("Batch")
    }
}

/// The rows of one batch, as taken from a stream.
enum Taken {
    /// Elements, in order.
    Elements(Vec<Element>),
    /// Pieces read in bulk (and single elements among them), placed over positions `0..n`.
    Pieces(Vec<Piece>, usize),
}

/// Takes the rows of the next batch from `input`: `None` at the end (or before a short last
/// batch with `drop`); an error takes the place of the whole batch. With `bulk`, rows the
/// input can give in bulk ([`ElementIter::next_rows`]) are taken so.
fn take_rows(input: &mut Fused, size: usize, drop: bool, bulk: bool) -> Option<Result<Taken>> {
    // Room for a usual batch only: a huge batch_size must not allocate before rows arrive.
    let mut rows = Vec::with_capacity(size.min(4096));
    let mut pieces: Vec<Piece> = Vec::new();
    // The first error by position.
    let mut error: Option<(usize, crate::Error)> = None;
    let mut taken = 0;
    // An error takes the place of the whole batch it falls in, and the batch's other elements
    // go with it: batch i is always made of elements i*size.., whether read in order or by
    // index.
    while taken < size {
        if bulk {
            if let Some(got) = input.next_rows(size - taken) {
                if pieces.is_empty() {
                    // The elements read one by one so far become pieces too.
                    pieces.extend(
                        rows.drain(..)
                            .enumerate()
                            .map(|(i, e)| Piece::one(Ok(e), i)),
                    );
                }
                let mut count = 0;
                for mut p in got {
                    count += p.count();
                    p.at += taken;
                    match p.rows {
                        PieceRows::One(Err(e)) => {
                            if error.as_ref().is_none_or(|(at, _)| p.at < *at) {
                                error = Some((p.at, e));
                            }
                        }
                        _ => pieces.push(p),
                    }
                }
                taken += count;
                continue;
            }
        }
        match input.next() {
            Some(Ok(e)) if pieces.is_empty() => rows.push(e),
            Some(Ok(e)) => pieces.push(Piece::one(Ok(e), taken)),
            Some(Err(e)) => {
                if error.as_ref().is_none_or(|(at, _)| taken < *at) {
                    error = Some((taken, e));
                }
            }
            None => break,
        }
        taken += 1;
    }
    if taken == 0 || (drop && taken < size) {
        return None;
    }
    Some(match error {
        Some((_, e)) => Err(e),
        None if pieces.is_empty() => Ok(Taken::Elements(rows)),
        None => Ok(Taken::Pieces(pieces, taken)),
    })
}

impl Node for Batch {
    describe_node! { input: input; spec: spec; }
    fn name(&self) -> &'static str {
        match self.assemble {
            Assemble::Stack => "Batch",
            Assemble::Pad(_) => "PaddedBatch",
        }
    }
    fn cardinality(&self) -> Cardinality {
        let b = self.batch_size as u64;
        let drop = self.drop_remainder;
        self.input
            .cardinality()
            .map(|n| if drop { n / b } else { n.div_ceil(b) })
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let (source, fused, parallel) = self.source();
        let (size, drop) = (self.batch_size, self.drop_remainder);
        let asm = self.assembler(fused);
        // Rows read in bulk are stacked (padding needs the elements themselves).
        let bulk = matches!(self.assemble, Assemble::Stack);
        match parallel {
            Some(p) => {
                // Rows are taken in order under the engine's lock; stacking runs in parallel.
                let (jobs_state, pending) = match from {
                    Some(s) => {
                        let (j, p) = read_parallel_state(s)?;
                        (Some(j), p)
                    }
                    None => (None, Vec::new()),
                };
                let jobs = Box::new(BatchJobs {
                    input: Fused::open(&source, jobs_state, "BatchJobs")?,
                    size,
                    drop,
                    bulk,
                });
                let work = Arc::new(move |taken: Result<Taken>| asm.taken(taken?));
                Ok(Box::new(ParallelIter::start(
                    "batch",
                    jobs,
                    work,
                    Lanes::new(p.num_threads(), p.is_deterministic()).run_as(p),
                    pending,
                    panic_error,
                )?))
            }
            None => Ok(Box::new(BatchIter {
                input: Fused::open(&source, from, "Batch")?,
                size,
                drop,
                bulk,
                asm,
            })),
        }
    }
    fn is_random_access(&self) -> bool {
        self.input.is_random_access()
    }
    fn pass(&self) -> Option<PassRef> {
        let (source, fused, parallel) = self.source();
        let inner = source.pass()?;
        let size = self.batch_size as u64;
        let rows = inner.len();
        let len = if self.drop_remainder {
            rows / size
        } else {
            rows.div_ceil(size)
        };
        Some(Arc::new(BatchPass {
            inner,
            asm: self.assembler(fused),
            size,
            len,
            parallel,
        }))
    }
}

struct BatchPass {
    inner: PassRef,
    asm: Arc<Assembler>,
    size: u64,
    len: u64,
    parallel: Option<Parallelism>,
}

impl Pass for BatchPass {
    fn len(&self) -> u64 {
        self.len
    }
    fn get(&self, index: u64) -> Result<Element> {
        let start = index.saturating_mul(self.size).min(self.inner.len());
        let end = start.saturating_add(self.size).min(self.inner.len());
        self.asm.range(&*self.inner, start, end)
    }
    fn parallelism(&self) -> Option<Parallelism> {
        Parallelism::combine(self.parallel, self.inner.parallelism())
    }
}

pub(super) fn check_batch_size(op: &str, batch_size: usize) -> Result<()> {
    require(batch_size > 0, || {
        format!("{op}: batch_size must be greater than zero, got {batch_size}")
    })
}

impl Dataset {
    /// tf.data's `batch(batch_size, drop_remainder, num_parallel_calls, deterministic)`:
    /// `batch_size` consecutive elements stacked along a new first axis; the last batch is
    /// smaller, or dropped with [`BatchOptions::drop_remainder`]. Elements of one batch must
    /// have the same shapes (see [`padded_batch`](Dataset::padded_batch)). A `batch_size` of
    /// 0 is refused.
    ///
    /// `options` ([`BatchOptions`]; `()` for the defaults, or a [`Parallelism`]) assemble
    /// batches on several threads: over a random-access input each thread makes whole
    /// batches by index, with no lock; over a stream, rows are taken in order under a lock
    /// and stacked in parallel. Deterministic parallel output is the one-thread output.
    ///
    /// An error from the input takes the place of the batch it falls in, and the batch's other
    /// elements are dropped with it. tf.data drops only those gathered before the error and
    /// starts the next batch after it, which shifts every later batch; npyflow keeps batch
    /// *i* made of the same elements however the pass runs.
    ///
    /// ```
    /// use npyflow::dataset::BatchOptions;
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 8, 1)?.batch(3, ())?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["[0 1 2]", "[3 4 5]", "[6 7]"]);
    /// let dropped = Dataset::range(0, 8, 1)?.batch(3, BatchOptions::new().drop_remainder(true))?;
    /// assert_eq!(dropped.to_vec()?.len(), 2);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn batch(&self, batch_size: usize, options: impl Into<BatchOptions>) -> Result<Dataset> {
        let BatchOptions {
            drop_remainder,
            parallelism,
        } = options.into();
        check_batch_size("batch", batch_size)?;
        Parallelism::check(parallelism, "batch")?;
        let spec = self
            .element_spec()
            .batched(drop_remainder.then_some(batch_size));
        Ok(Dataset::from_node(Batch {
            input: self.clone(),
            batch_size,
            drop_remainder,
            assemble: Assemble::Stack,
            spec,
            parallel: parallelism,
            pool: BufferPool::new(POOLED_BATCHES),
        }))
    }

    /// tf.data's `padded_batch(batch_size, padded_shapes, padding_values, drop_remainder)`:
    /// like [`batch`](Dataset::batch), with each tensor first padded at the end of its axes.
    ///
    /// `padded_shapes` gives one shape per tensor of the element, in
    /// [`Element::tensors`] order (depth first, dicts in key order); an unknown dimension
    /// (`None`) is padded to the largest in the batch. When `None`, every tensor's spec shape
    /// is used, so unknown dimensions pad to the largest. `padding_values` gives one scalar
    /// per tensor, of its dtype (zeros, or empty strings, when `None`). A known padded
    /// dimension smaller than an element's is an error at that batch.
    ///
    /// Differs from tf.data: shapes and values are given as flat lists rather than
    /// structures mirroring the element.
    ///
    /// ```
    /// use npyflow::{Dataset, Element, Tensor};
    /// // tf.data's documented example: range(1, 5).map(lambda x: fill([x], x)).padded_batch(2)
    /// let ds = Dataset::range(1, 5, 1)?
    ///     .map(|x: Element| {
    ///         let n = x.into_tensor()?.to_i64_scalar("x")?;
    ///         Ok(Tensor::from_vec(vec![n; n as usize], &[n as usize])?.into())
    ///     }, ())?
    ///     .padded_batch(2, None, None, false)?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["[[1 0]\n [2 2]]", "[[3 3 3 0]\n [4 4 4 4]]"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn padded_batch(
        &self,
        batch_size: usize,
        padded_shapes: Option<Vec<PartialShape>>,
        padding_values: Option<Vec<Tensor>>,
        drop_remainder: bool,
    ) -> Result<Dataset> {
        check_batch_size("padded_batch", batch_size)?;
        let specs: Vec<TensorSpec> = self
            .element_spec()
            .tensor_specs()
            .into_iter()
            .cloned()
            .collect();
        require(!self.element_spec().has_dataset(), || {
            "padded_batch: elements holding datasets cannot be batched".to_string()
        })?;
        let shapes = match padded_shapes {
            Some(s) => {
                require(s.len() == specs.len(), || {
                    format!(
                        "padded_batch: {} padded shapes for {} tensors per element",
                        s.len(),
                        specs.len()
                    )
                })?;
                for (i, (want, spec)) in s.iter().zip(&specs).enumerate() {
                    let fits = match (want.dims(), spec.shape.dims()) {
                        (Some(w), Some(have)) => {
                            w.len() == have.len()
                                && w.iter().zip(have).all(|(w, h)| match (w, h) {
                                    (Some(w), Some(h)) => w >= h,
                                    _ => true,
                                })
                        }
                        _ => true,
                    };
                    require(fits, || {
                        format!(
                            "padded_batch: the padded shape {want} of tensor {i} does not fit \
                             its shape {}",
                            spec.shape
                        )
                    })?;
                }
                s
            }
            None => specs.iter().map(|s| s.shape.clone()).collect(),
        };
        let values = match padding_values {
            Some(v) => {
                require(v.len() == specs.len(), || {
                    format!(
                        "padded_batch: {} padding values for {} tensors per element",
                        v.len(),
                        specs.len()
                    )
                })?;
                for (i, (v, spec)) in v.iter().zip(&specs).enumerate() {
                    require(v.ndim() == 0 && dtype_fits(spec.dtype, v.dtype()), || {
                        format!(
                            "padded_batch: padding value {i} must be a {} scalar, got a {} \
                             tensor of shape {:?}",
                            spec.dtype,
                            v.dtype(),
                            v.shape()
                        )
                    })?;
                }
                v
            }
            // Zeros; an empty string of one character where strings have any width.
            None => specs
                .iter()
                .map(|s| Tensor::zeros(one_wide(s.dtype), &[]))
                .collect::<Result<_>>()?,
        };
        let mut k = 0;
        let spec = self
            .element_spec()
            .map_specs(&mut |s| {
                let shape = &shapes[k];
                k += 1;
                TensorSpec {
                    dtype: s.dtype,
                    shape: shape.clone(),
                }
            })
            .batched(drop_remainder.then_some(batch_size));
        Ok(Dataset::from_node(Batch {
            input: self.clone(),
            batch_size,
            drop_remainder,
            assemble: Assemble::Pad(Arc::new(shapes.into_iter().zip(values).collect())),
            spec,
            parallel: None,
            pool: BufferPool::new(POOLED_BATCHES),
        }))
    }
}
