//! `map`, and the tracing that finds a function's output spec.

use std::sync::Arc;

use super::elements::Elements;
use super::fusion::{apply_elementwise_pooled, OpChain, POOLED_BATCHES};
use super::options::{MapOptions, Parallelism};
use super::plumbing::{
    call_user, describe_node, require, restore, BoxIter, Dataset, ElementIter, Node, Numbered,
    Pass, PassRef,
};
use super::runtime::parallel::{panic_error, read_parallel_state, Jobs, Lanes, ParallelIter};
use super::state::{Randomness, State};
use crate::buffer::BufferPool;
use crate::element::{one_wide, Element, ElementSpec, PartialShape, TensorSpec};
use crate::error::{Error, Result};
use crate::ops::{Component, Op};
use crate::tensor::Tensor;

/// An element of `spec` whose numbers are all `value` (0 or 1; strings and times are
/// zeros, and strings of any width one character wide, as NumPy holds an empty string),
/// with each unknown dimension set to `fill` (an unknown rank becomes a scalar) and each
/// dataset empty.
pub(crate) fn placeholder(spec: &ElementSpec, fill: usize, value: u8) -> Result<Element> {
    Ok(match spec {
        ElementSpec::Tensor(s) => {
            let dims: Vec<usize> = s
                .shape
                .dims()
                .unwrap_or(&[])
                .iter()
                .map(|d| d.unwrap_or(fill))
                .collect();
            let zeros = Tensor::zeros(one_wide(s.dtype), &dims)?;
            let numeric = matches!(s.dtype.kind(), 'b' | 'i' | 'u' | 'f' | 'c');
            Element::Tensor(if value == 0 || !numeric {
                zeros
            } else {
                let n = zeros.size();
                Tensor::from_vec(vec![value; n], &dims)?.cast(s.dtype)?
            })
        }
        ElementSpec::Tuple(items) => Element::Tuple(
            items
                .iter()
                .map(|s| placeholder(s, fill, value))
                .collect::<Result<_>>()?,
        ),
        ElementSpec::Dict(items) => Element::Dict(
            items
                .iter()
                .map(|(k, s)| Ok((k.clone(), placeholder(s, fill, value)?)))
                .collect::<Result<_>>()?,
        ),
        ElementSpec::Dataset(s) => Element::Dataset(Dataset::from_node(Elements {
            elements: Arc::new(Vec::new()),
            spec: (**s).clone(),
        })),
    })
}

/// The spec of what `f` returns for elements of `input`, found by calling it on three
/// placeholders: zeros with unknown dimensions set to 1, ones with them set to 2, and sevens
/// with them set to 3 (this last one may fail). An output dimension that differs between them (it follows an unknown
/// input dimension, or the values, as `fill([x], x)` does) is unknown. `op` names the
/// operation in errors.
pub(crate) fn trace<T>(
    op: &str,
    input: &ElementSpec,
    mut f: impl FnMut(Element) -> Result<T>,
    spec_of: impl Fn(&T) -> ElementSpec,
) -> Result<ElementSpec> {
    let mut traced = |fill: usize, value: u8| -> Result<ElementSpec> {
        let e = placeholder(input, fill, value)?;
        let out = call_user(op, 0, || f(e)).map_err(|e| {
            Error::InvalidArgument(format!(
                "{op}: the function failed on a placeholder element of {input} (all zeros or \
                 all ones), which is how npyflow finds its output spec; declare the spec \
                 instead (the output_spec of its options): {e}"
            ))
        })?;
        Ok(spec_of(&out))
    };
    let first = traced(1, 0)?;
    let second = traced(2, 1)?;
    // The third look is a bonus: a function that cannot take sevens (an index into a short
    // table, say) still gets the spec of the first two.
    let third = traced(3, 7).unwrap_or_else(|_| first.clone());
    first
        .most_specific_compatible(&second)
        .and_then(|s| s.most_specific_compatible(&third))
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{op}: the function returns different structures or dtypes for different inputs \
             ({first} and {second})"
            ))
        })
}

/// How many elements of its input `map` tries a function on to find its output spec.
const SPEC_LOOKS: u64 = 16;

/// The seeds and epoch counters of every random node of `dataset`'s pipeline.
fn random_states(dataset: &Dataset, out: &mut Vec<(Dataset, (u64, u64))>) {
    if let Some(r) = dataset.node().random() {
        out.push((dataset.clone(), r.saved()));
    }
    for input in dataset.node().inputs() {
        random_states(input, out);
    }
}

/// The spec of what `f` returns for the first element of `input` (the first of the first
/// few that `f` maps without an error), as `map` finds a closure's output spec: `f` is
/// called on a real element, never on a made-up one. The look leaves no trace in the
/// pipeline: its random nodes' seeds and epoch counters are put back. The structure, dtypes
/// and ranks are that output's; its dimensions are unknown and its strings of any width
/// ([`relaxed`]), since one element cannot tell which of them follow the data. `None` for
/// an empty input.
pub(crate) fn first_output_spec<T>(
    op: &str,
    input: &Dataset,
    f: impl Fn(Element) -> Result<T>,
    spec_of: impl Fn(&T) -> ElementSpec,
) -> Result<Option<ElementSpec>> {
    let mut randoms = Vec::new();
    random_states(input, &mut randoms);
    let mut first_err = None;
    let mut look = |i: u64, item: Result<Element>| -> Option<ElementSpec> {
        let out = item.and_then(|e| call_user(op, i, || f(e)));
        match out {
            Ok(out) => Some(spec_of(&out)),
            Err(err) => {
                first_err.get_or_insert(err);
                None
            }
        }
    };
    let found = match input.node().pass() {
        Some(pass) => (0..pass.len().min(SPEC_LOOKS)).find_map(|i| look(i, pass.get(i))),
        None => {
            let mut it = input.open_from(None)?;
            let mut found = None;
            for i in 0..SPEC_LOOKS {
                let Some(item) = it.next() else { break };
                found = look(i, item);
                if found.is_some() {
                    break;
                }
            }
            found
        }
    };
    for (node, state) in randoms {
        if let Some(r) = node.node().random() {
            r.restore(state);
        }
    }
    match (found, first_err) {
        (Some(spec), _) => Ok(Some(relaxed(&spec))),
        (None, Some(err)) => Err(Error::InvalidArgument(format!(
            "{op}: the function failed on the first elements of its input, on which npyflow \
             finds its output spec; declare the spec instead (the output_spec of its \
             options): {err}"
        ))),
        (None, None) => Ok(None),
    }
}

/// `spec` with every dimension unknown (its ranks kept) and its strings of any width: the
/// spec of a function's output seen on one element, which cannot tell which dimensions and
/// widths follow the data.
pub(crate) fn relaxed(spec: &ElementSpec) -> ElementSpec {
    spec.map_specs(&mut |t| TensorSpec {
        dtype: t.dtype,
        shape: match t.shape.rank() {
            Some(r) => PartialShape::new(&vec![None; r]),
            None => PartialShape::unknown(),
        },
    })
    .with_any_string_width()
}

/// A user function from element to element.
pub(crate) type MapFn = Arc<dyn Fn(Element) -> Result<Element> + Send + Sync>;

struct Map {
    input: Dataset,
    f: MapFn,
    spec: ElementSpec,
    /// Threads, and whether output keeps its order, for a parallel map.
    parallel: Option<Parallelism>,
}

/// The first component of `out` that does not fit `spec`, named as Python indexes it
/// (` (component 1 is TensorSpec(...), the spec says TensorSpec(...))`), when `out` has the
/// spec's structure; empty otherwise (the two structures, printed in full, say it).
fn misfit(spec: &ElementSpec, out: &Element) -> String {
    let names = spec.component_names();
    if names.len() < 2 || out.spec().component_names() != names {
        return String::new();
    }
    let specs = spec.tensor_specs();
    for ((name, want), got) in names.iter().zip(specs).zip(out.tensors()) {
        if !want.is_compatible_with(got) {
            return format!(
                " (component {name} is {}, the spec says {want})",
                TensorSpec::of(got)
            );
        }
    }
    String::new()
}

impl Map {
    fn apply(f: &MapFn, spec: &ElementSpec, index: u64, e: Element) -> Result<Element> {
        let out = call_user("map", index, || f(e))?;
        if spec.is_compatible_with(&out) {
            Ok(out)
        } else if let Some(wider) = spec.widened(&out) {
            Ok(wider)
        } else {
            Err(Error::Pipeline(format!(
                "map: element {index}: the function returned {}, which does not fit the spec \
                 {spec}{}; a function whose output's shape or dtype depends on the data \
                 declares its output spec, with None for the dimensions that vary and strings \
                 of width 0 (tf.string) where their lengths vary (output_signature= in \
                 Python, MapOptions::output_spec in Rust)",
                out.spec(),
                misfit(spec, &out)
            )))
        }
    }
}

impl Node for Map {
    describe_node! { name: "Map"; input: input; spec: spec; }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let f = Arc::clone(&self.f);
        let spec = self.spec.clone();
        if let Some(p) = self.parallel {
            // Elements are taken (and numbered) in order; the function runs in parallel.
            let (source, pending) = match from {
                Some(s) => {
                    let (source, pending) = read_parallel_state(s)?;
                    (Some(source), pending)
                }
                None => (None, Vec::new()),
            };
            let jobs = Box::new(MapJobs(Numbered::open(&self.input, source, "MapJobs")?));
            let work = Arc::new(move |(i, item): (u64, Result<Element>)| {
                item.and_then(|e| Map::apply(&f, &spec, i, e))
            });
            let it = ParallelIter::start(
                "map",
                jobs,
                work,
                Lanes::elements(p.num_threads(), p.is_deterministic()).run_as(p),
                pending,
                panic_error,
            )?;
            return Ok(Box::new(it));
        }
        Ok(Box::new(MapIter {
            input: Numbered::open(&self.input, from, "Map")?,
            f,
            spec,
        }))
    }
    fn is_random_access(&self) -> bool {
        self.input.is_random_access()
    }
    fn pass(&self) -> Option<PassRef> {
        Some(Arc::new(MapPass {
            inner: self.input.pass()?,
            f: Arc::clone(&self.f),
            spec: self.spec.clone(),
            parallel: self.parallel,
        }))
    }
}

/// The elements of a map's input, numbered: the jobs of a parallel map.
struct MapJobs(Numbered);

impl Jobs<(u64, Result<Element>)> for MapJobs {
    fn next(&mut self) -> Option<(u64, Result<Element>)> {
        self.0.next()
    }
    fn save(&self) -> Result<State> {
        self.0.save("MapJobs")
    }
}

struct MapIter {
    input: Numbered,
    f: MapFn,
    spec: ElementSpec,
}

impl ElementIter for MapIter {
    fn next(&mut self) -> Option<Result<Element>> {
        let (i, item) = self.input.next()?;
        Some(item.and_then(|e| Map::apply(&self.f, &self.spec, i, e)))
    }
    fn save(&self) -> Result<State> {
        self.input.save("Map")
    }
}

struct MapPass {
    inner: PassRef,
    f: MapFn,
    spec: ElementSpec,
    parallel: Option<Parallelism>,
}

impl Pass for MapPass {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn get(&self, index: u64) -> Result<Element> {
        let e = self.inner.get(index)?;
        Map::apply(&self.f, &self.spec, index, e)
    }
    fn parallelism(&self) -> Option<Parallelism> {
        Parallelism::combine(self.parallel, self.inner.parallelism())
    }
}

/// A chain of built-in ops, applied in one pass per element.
struct OpMap {
    /// The input, the ops and their threads.
    chain: OpChain,
    spec: ElementSpec,
    /// Random ops draw anew each pass: the pass's epoch comes from this counter. (The seeds
    /// are the ops'; this one is unused, there for the state's bookkeeping.)
    random: Randomness,
}

/// The chain of built-in ops `dataset` applies to its input, when it is an op map: what a
/// following `batch` can run itself (see [`super::fusion`]).
pub(crate) fn op_chain(dataset: &Dataset) -> Option<&OpChain> {
    let map = dataset.node().as_any().downcast_ref::<OpMap>()?;
    Some(&map.chain)
}

impl OpMap {
    /// The ops applied to element `index` of pass `epoch`; an error names the element.
    fn apply(ops: &[Op], index: u64, epoch: u64, mut e: Element) -> Result<Element> {
        for op in ops {
            e = op
                .apply(e, index, epoch)
                .map_err(|err| err.context(format!("map: element {index}")))?;
        }
        Ok(e)
    }

    fn is_random(&self) -> bool {
        self.chain.ops.iter().any(Op::is_random)
    }
}

impl Node for OpMap {
    describe_node! { spec: spec; }
    /// "TracedMap" when the chain holds an op graph (a traced Python function), so that a
    /// repr or the stats say the stage was traced.
    fn name(&self) -> &'static str {
        if self.chain.ops.iter().any(|op| op.as_graph().is_some()) {
            "TracedMap"
        } else {
            "Map"
        }
    }
    fn random(&self) -> Option<&Randomness> {
        self.is_random().then_some(&self.random)
    }
    fn input(&self) -> Option<&Dataset> {
        Some(&self.chain.input)
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let saved = restore(from, "OpMap", |r| Ok((r.num()?, r.num()?, r.kid()?)))?;
        let (index, epoch, input) = match saved {
            Some((i, epoch, s)) => {
                self.random.resumed(0, epoch, true);
                (i, epoch, Some(s))
            }
            None => (0, self.random.next_epoch(self.is_random()), None),
        };
        Ok(Box::new(OpMapIter {
            input: self.chain.input.open_from(input)?,
            index,
            epoch,
            ops: self.chain.ops.clone(),
        }))
    }
    fn is_random_access(&self) -> bool {
        self.chain.input.is_random_access()
    }
    fn pass(&self) -> Option<PassRef> {
        let inner = self.chain.input.pass()?;
        let (_, epoch) = self.random.draw(self.is_random());
        Some(Arc::new(OpMapPass {
            inner,
            epoch,
            ops: self.chain.ops.clone(),
            pool: BufferPool::new(POOLED_BATCHES),
            parallel: self.chain.parallel,
        }))
    }
}

/// A sequential pass of an op map.
struct OpMapIter {
    input: BoxIter,
    index: u64,
    epoch: u64,
    ops: Vec<Op>,
}

impl ElementIter for OpMapIter {
    fn next(&mut self) -> Option<Result<Element>> {
        let item = self.input.next()?;
        let i = self.index;
        self.index += 1;
        Some(item.and_then(|e| OpMap::apply(&self.ops, i, self.epoch, e)))
    }
    fn save(&self) -> Result<State> {
        Ok(State::new("OpMap")
            .num(self.index)
            .num(self.epoch)
            .kid(self.input.save()?))
    }
}

impl OpMapPass {
    /// A batch of `op` (a random crop or flip: values moved, none computed) over elements
    /// `indices`, each result written straight into the batch buffer, with no tensor of
    /// its own. `None` (stack the elements one by one) where the elements' shapes differ or
    /// the op would fail on them, so that what happens then is what one by one gives.
    fn gather_moved(&self, op: &Op, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        let rows = match indices
            .iter()
            .map(|&i| self.inner.get(i))
            .collect::<Result<Vec<_>>>()
        {
            Ok(rows) => rows,
            Err(e) => return Some(Err(e)),
        };
        let first = rows.first()?;
        if first.spec().has_dataset() {
            return None;
        }
        // The tensors the op applies to, in `Element::tensors` order.
        let targeted: Vec<bool> = match (op.target(), first) {
            (Component::All, e) => vec![true; e.tensors().len()],
            (Component::Index(i), Element::Tuple(items)) if *i < items.len() => items
                .iter()
                .enumerate()
                .flat_map(|(k, part)| vec![k == *i; part.tensors().len()])
                .collect(),
            (Component::Key(key), Element::Dict(items)) if items.contains_key(key) => items
                .iter()
                .flat_map(|(k, part)| vec![k == key; part.tensors().len()])
                .collect(),
            _ => return None,
        };
        // Every element of the same structure, shapes and dtypes, and the op applicable.
        let spec = first.spec();
        let tensors = first.tensors();
        let same = rows.iter().all(|r| {
            r.spec() == spec
                && r.tensors()
                    .iter()
                    .zip(&tensors)
                    .all(|(a, b)| a.shape() == b.shape() && a.dtype() == b.dtype())
        });
        if !same || targeted.len() != tensors.len() {
            return None;
        }
        for (t, &on) in tensors.iter().zip(&targeted) {
            if on && op.moved_shape(t.shape()).is_none() {
                return None;
            }
        }
        let mut leaf = 0;
        let batch = Element::combine(&rows, &mut |ts| {
            let on = targeted[leaf];
            leaf += 1;
            let t0 = ts[0];
            let item = t0.dtype().itemsize();
            let shape = if on {
                op.moved_shape(t0.shape()).unwrap_or_default()
            } else {
                t0.shape().to_vec()
            };
            let row = shape.iter().product::<usize>() * item;
            let layout = op.moved_layout(t0.shape(), item);
            let mut out = pool.take(row * ts.len())?;
            let dst = out.as_mut_slice();
            for (k, (t, &index)) in ts.iter().zip(indices).enumerate() {
                let slot = &mut dst[k * row..(k + 1) * row];
                if on {
                    op.write_moved(t, layout.as_ref(), index, self.epoch, slot);
                } else {
                    slot.copy_from_slice(t.as_bytes());
                }
            }
            // What was read is the file's data only if a mapped file was not truncated.
            crate::buffer::Buffer::check_all_intact(ts.iter().map(|t| t.buffer()))?;
            let mut batch_shape = vec![ts.len()];
            batch_shape.extend_from_slice(&shape);
            Tensor::new(t0.dtype(), &batch_shape, out.freeze())
        });
        Some(batch.map_err(|e| e.context(format!("map: {op}"))))
    }
}

struct OpMapPass {
    inner: PassRef,
    epoch: u64,
    ops: Vec<Op>,
    pool: BufferPool,
    parallel: Option<Parallelism>,
}

impl Pass for OpMapPass {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn get(&self, index: u64) -> Result<Element> {
        let e = self.inner.get(index)?;
        OpMap::apply(&self.ops, index, self.epoch, e)
    }
    fn get_range(&self, start: u64, end: u64) -> Option<Result<Element>> {
        // Elementwise ops commute with batching: apply them once to the whole range.
        if !self.ops.iter().all(Op::is_elementwise) {
            return None;
        }
        let batch = self.inner.get_range(start, end)?;
        Some(batch.and_then(|b| apply_elementwise_pooled(b, &self.ops, &self.pool)))
    }
    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        if let [op] = &self.ops[..] {
            if op.is_random() {
                return self.gather_moved(op, indices, pool);
            }
        }
        if !self.ops.iter().all(Op::is_elementwise) {
            return None;
        }
        let batch = self.inner.gather(indices, pool)?;
        Some(batch.and_then(|b| apply_elementwise_pooled(b, &self.ops, pool)))
    }
    fn parallelism(&self) -> Option<Parallelism> {
        Parallelism::combine(self.parallel, self.inner.parallelism())
    }
}

/// What [`Dataset::map`] applies: a closure over [`Element`]s, or a built-in [`Op`].
///
/// Implemented for every `Fn(Element) -> Result<Element>` closure and for [`Op`]. Because
/// `map` takes both, Rust cannot guess a closure's parameter type from `map` alone: write it
/// (`|x: Element| ...`).
pub trait MapFunction<Kind>: Send + Sync + 'static {
    /// The function as `map` stores it.
    #[doc(hidden)]
    fn into_mapper(self) -> Mapper;
}

/// What a [`MapFunction`] becomes inside `map` (not used directly).
#[doc(hidden)]
pub enum Mapper {
    /// A user function.
    Function(MapFn),
    /// A built-in op.
    Op(Op),
}

/// The [`MapFunction`] kind of closures.
#[doc(hidden)]
pub enum ClosureKind {}
/// The [`MapFunction`] kind of built-in ops.
#[doc(hidden)]
pub enum OpKindMarker {}

impl<F> MapFunction<ClosureKind> for F
where
    F: Fn(Element) -> Result<Element> + Send + Sync + 'static,
{
    fn into_mapper(self) -> Mapper {
        Mapper::Function(Arc::new(self))
    }
}

impl MapFunction<OpKindMarker> for Op {
    fn into_mapper(self) -> Mapper {
        Mapper::Op(self)
    }
}

impl Dataset {
    /// tf.data's `map(f, num_parallel_calls, deterministic)`: `f` applied to every element.
    ///
    /// `f` is a closure over [`Element`]s or a built-in [`Op`] (cast, scale,
    /// normalize, ...). Ops run in Rust with an exact output spec, and consecutive op maps
    /// fuse into one pass (a following `batch` writes their results straight into its batch
    /// buffer).
    ///
    /// A closure's output spec, unless [`MapOptions::output_spec`] declares it, is found by
    /// calling it on three placeholder elements of the input spec (of zeros, ones and
    /// sevens), so it runs three times when the dataset is made; one that fails on zeros is
    /// refused here, with a message pointing to [`MapOptions::output_spec`]. With
    /// [`MapOptions::spec_from_first_element`] it is called once instead, on the first
    /// element of the input (the first of the first 16 it maps without an error), never on
    /// made-up values; the look puts the pipeline's random seeds and epochs back as they
    /// were, and the spec has that output's structure, dtypes and ranks with unknown
    /// dimensions (one element cannot tell which follow the data); an empty input gives its
    /// own spec. Either way, strings in an inferred spec are of any width (see
    /// [`TensorSpec`](crate::TensorSpec)): each element keeps its own, and `batch` stacks
    /// them at the widest. An element that does not fit the spec is an error at its
    /// position; strings shorter than a declared spec's width are widened to it. An error or
    /// panic in `f` at element *i* is the *i*-th item, and the pass goes on.
    ///
    /// `options` ([`MapOptions`]; `()` for the defaults, or a [`Parallelism`]) run `f` on
    /// several threads: over a random-access pipeline the elements (or the batches of a
    /// following `batch`) are made in parallel by index. With
    /// [`deterministic`](Parallelism::deterministic) (the default) the output is exactly the
    /// one-thread output whatever the number of threads; without it, an element that is
    /// ready may overtake a slower one.
    ///
    /// Differs from tf.data: tuple elements are not unpacked into arguments (the closure
    /// takes the [`Element`] and destructures it).
    ///
    /// ```
    /// use npyflow::dataset::Parallelism;
    /// use npyflow::{ops, Dataset, DType, Element, Tensor};
    /// // The seed's third example: cast to float32 and divide by 255.
    /// let images = Tensor::from_vec(vec![255u8; 10 * 3 * 3 * 3], &[10, 3, 3, 3])?;
    /// let ds = Dataset::from_tensor_slices(images)?;
    /// let by_closure = ds
    ///     .map(|x: Element| Ok(x.into_tensor()?.cast(DType::Float32)?.scale(1.0 / 255.0, 0.0)?.into()), ())?
    ///     .batch(2, ())?;
    /// let by_ops = ds
    ///     .map(ops::cast(DType::Float32), ())?
    ///     .map(ops::scale(1.0 / 255.0), Parallelism::autotune())?
    ///     .batch(2, ())?;
    /// assert_eq!(by_closure.to_vec()?, by_ops.to_vec()?);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn map<Kind>(
        &self,
        f: impl MapFunction<Kind>,
        options: impl Into<MapOptions>,
    ) -> Result<Dataset> {
        let MapOptions {
            parallelism,
            output_spec,
            spec_from_first_element,
        } = options.into();
        Parallelism::check(parallelism, "map")?;
        match f.into_mapper() {
            Mapper::Op(op) => {
                require(output_spec.is_none(), || {
                    format!("map: {op} knows its output spec; do not declare one")
                })?;
                self.map_op(op, parallelism)
            }
            Mapper::Function(f) => {
                let spec = match output_spec {
                    Some(spec) => spec,
                    None if spec_from_first_element => {
                        // An empty input: its own spec (no element is ever made).
                        first_output_spec("map", self, &*f, Element::spec)?
                            .unwrap_or_else(|| self.element_spec().clone())
                    }
                    None => trace("map", self.element_spec(), &*f, Element::spec)?
                        .with_any_string_width(),
                };
                Ok(Dataset::from_node(Map {
                    input: self.clone(),
                    f,
                    spec,
                    parallel: parallelism,
                }))
            }
        }
    }

    fn map_op(&self, op: Op, parallel: Option<Parallelism>) -> Result<Dataset> {
        let spec = op.element_spec(self.element_spec())?;
        let (input, mut ops, before) = match op_chain(self) {
            Some(c) => (c.input.clone(), c.ops.clone(), c.parallel),
            None => (self.clone(), Vec::new(), None),
        };
        ops.push(op);
        Ok(Dataset::from_node(OpMap {
            chain: OpChain {
                input,
                ops,
                parallel: Parallelism::combine(before, parallel),
            },
            spec,
            random: Randomness::new(Some(0)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::dataset::{MapOptions, ShuffleOptions};
    use crate::{Dataset, Element};

    #[test]
    fn the_spec_from_the_first_element_calls_once_on_real_data_and_leaves_no_trace() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        let shuffled = || {
            Dataset::range(0, 10, 1)
                .unwrap()
                .shuffle(
                    10,
                    ShuffleOptions {
                        seed: Some(3),
                        reshuffle_each_iteration: true,
                    },
                )
                .unwrap()
        };
        let ds = shuffled()
            .map(
                move |e: Element| {
                    seen.fetch_add(1, Ordering::SeqCst);
                    Ok(e)
                },
                MapOptions::new().spec_from_first_element(),
            )
            .unwrap();
        // One call, on the first real element (no placeholders).
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            ds.element_spec().to_string(),
            "TensorSpec(shape=(), dtype=int64)"
        );
        // The look drew no epoch: the passes are those of the same pipeline without it.
        let plain = shuffled();
        assert_eq!(ds.to_vec().unwrap(), plain.to_vec().unwrap());
        assert_eq!(ds.to_vec().unwrap(), plain.to_vec().unwrap());
        assert_eq!(calls.load(Ordering::SeqCst), 21);
    }
}
