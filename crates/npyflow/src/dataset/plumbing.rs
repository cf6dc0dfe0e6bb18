//! The plumbing every transformation is built on: the [`Dataset`] handle, the [`Node`] a
//! transformation or source implements, the [`Pass`] of a random-access node, the
//! [`ElementIter`] of a sequential pass, and the helpers they share. This module imports no
//! transformation; each of them imports it. (`crate::element` and this module know each
//! other: an element can hold a dataset, as tf.data's `DatasetSpec` lets it.)
//!
//! A node answers what it is (name, spec, cardinality, inputs) and opens passes:
//! - random-access nodes (sources over arrays, and maps, batches, takes, shards of them)
//!   return a [`Pass`] from [`Node::pass`]: elements by index, fixed for that pass. The
//!   runtime reads it in order, by one thread or by workers, and its state is a position.
//! - other nodes return an [`ElementIter`] from [`Node::open`]: the elements in order, and
//!   [`ElementIter::save`] for what the pass holds.

use std::any::Any;
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::parallelism::Parallelism;
use super::state::random::Randomness;
use super::state::tree::{State, StateReader};
use crate::buffer::BufferPool;
use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result};

/// How many elements a dataset has, as `Dataset.cardinality()` tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cardinality {
    /// Exactly this many.
    Finite(u64),
    /// It never ends (`tf.data.INFINITE_CARDINALITY`, -1).
    Infinite,
    /// It cannot be known without iterating (`tf.data.UNKNOWN_CARDINALITY`, -2).
    Unknown,
}

impl Cardinality {
    /// The number tf.data's `cardinality()` returns: the count, -1 for infinite, -2 for
    /// unknown.
    pub fn as_i64(self) -> i64 {
        match self {
            Cardinality::Finite(n) => i64::try_from(n).unwrap_or(i64::MAX),
            Cardinality::Infinite => -1,
            Cardinality::Unknown => -2,
        }
    }

    /// Applies `f` to a finite count; infinite and unknown stay as they are.
    pub(crate) fn map(self, f: impl FnOnce(u64) -> u64) -> Cardinality {
        match self {
            Cardinality::Finite(n) => Cardinality::Finite(f(n)),
            other => other,
        }
    }
}

/// What a node without input that forgot to declare its spec would yield: nothing (a
/// debug build stops at it instead).
static NO_SPEC: ElementSpec = ElementSpec::Tuple(Vec::new());

/// A node as [`Any`], so that an optimisation can ask what kind of node its input is (the
/// fusion of op maps into a batch does) without a method on every node for it.
pub(crate) trait AsAny {
    /// The node as [`Any`].
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Writes the parts of a [`Node`] impl that say what the node is, from its fields: its
/// tf.data name, its one input, its own spec (without `spec`, the input's is used), and
/// the [`Randomness`] of a random node.
///
/// ```text
/// impl Node for Shuffle {
///     describe_node! { name: "Shuffle"; input: input; random: random; }
///     fn open(&self, from: Option<State>) -> Result<BoxIter> { ... }
/// }
/// ```
macro_rules! describe_node {
    ($(name: $name:literal;)? $(input: $input:ident;)? $(spec: $spec:ident;)? $(random: $random:ident;)?) => {
        $(
            fn name(&self) -> &'static str {
                $name
            }
        )?
        $(
            fn input(&self) -> Option<&$crate::dataset::plumbing::Dataset> {
                Some(&self.$input)
            }
        )?
        $(
            fn spec(&self) -> &$crate::element::ElementSpec {
                &self.$spec
            }
        )?
        $(
            fn random(&self) -> Option<&$crate::dataset::state::random::Randomness> {
                Some(&self.$random)
            }
        )?
    };
}
pub(crate) use describe_node;

/// Writes the parts of a [`Node`] impl for a node that is its own [`Pass`] (a source over
/// data that is the same in every pass): random-access, with the pass's length as its
/// cardinality.
macro_rules! own_pass {
    () => {
        fn cardinality(&self) -> $crate::dataset::plumbing::Cardinality {
            $crate::dataset::plumbing::Cardinality::Finite($crate::dataset::plumbing::Pass::len(
                self,
            ))
        }
        fn is_random_access(&self) -> bool {
            true
        }
        fn pass(&self) -> Option<$crate::dataset::plumbing::PassRef> {
            Some(std::sync::Arc::new(self.clone()))
        }
    };
}
pub(crate) use own_pass;

/// One node of a pipeline: a source or a transformation over its input datasets.
pub(crate) trait Node: AsAny + Send + Sync + 'static {
    /// The tf.data name of the operation, for errors and `Debug`.
    fn name(&self) -> &'static str;
    /// The one dataset a transformation reads, when it reads one: the defaults of
    /// [`Node::inputs`], [`Node::spec`] and [`Node::cardinality`] come from it.
    fn input(&self) -> Option<&Dataset> {
        None
    }
    /// What every element is: by default, what the input's are. A source declares its own.
    fn spec(&self) -> &ElementSpec {
        debug_assert!(self.input().is_some(), "{} declares its spec", self.name());
        self.input().map_or(&NO_SPEC, |input| input.element_spec())
    }
    /// How many elements there are: by default, as many as the input has.
    fn cardinality(&self) -> Cardinality {
        self.input()
            .map_or(Cardinality::Unknown, |input| input.cardinality())
    }
    /// A pass over the elements: a fresh one, or one that continues from a state an
    /// iterator of this node saved. Random-access nodes need not implement it: their passes
    /// read [`Pass::get`] in order.
    fn open(&self, _from: Option<State>) -> Result<BoxIter> {
        Err(Error::Pipeline(format!(
            "{} has no sequential iterator",
            self.name()
        )))
    }
    /// Whether [`Node::pass`] gives a pass (without making one).
    fn is_random_access(&self) -> bool {
        false
    }
    /// A new random-access pass, for nodes that are random-access: its length and any
    /// element by index, without reading the ones before it. Per-pass randomness (a global
    /// shuffle's permutation) is drawn here.
    fn pass(&self) -> Option<PassRef> {
        None
    }
    /// The datasets this node reads (none for a source): by default its one input.
    fn inputs(&self) -> Vec<&Dataset> {
        self.input().into_iter().collect()
    }
    /// A random node's seed and epoch counter, which an iterator's state records.
    fn random(&self) -> Option<&Randomness> {
        None
    }
    /// What else a saved iterator state must agree on to restore into this node, beyond its
    /// operation, spec and cardinality (a distributed batch's global batch size), in words.
    fn resume_note(&self) -> Option<String> {
        None
    }
    /// The elements of a dataset held in memory (a window's), with their spec.
    fn elements(&self) -> Option<(&[Element], &ElementSpec)> {
        None
    }
}

/// One pass over a random-access node: its elements by index, fixed for the pass.
pub(crate) trait Pass: Send + Sync {
    /// The number of elements.
    fn len(&self) -> u64;
    /// Element `index` (`index < len()`).
    fn get(&self, index: u64) -> Result<Element>;
    /// Elements `start..end` as one batch, where the pass can make it more cheaply than by
    /// stacking them (a slice of a contiguous source). `None`: stack them.
    fn get_range(&self, _start: u64, _end: u64) -> Option<Result<Element>> {
        None
    }
    /// Elements `indices` as one batch, copied straight into buffers from `pool` where the
    /// pass can do it without making each element first (rows of arrays). `None`: stack them.
    fn gather(&self, _indices: &[u64], _pool: &BufferPool) -> Option<Result<Element>> {
        None
    }
    /// The threads (and whether order is kept) that a node of this pass asked for: a pass
    /// with parallelism is read by that many workers, element *k* by one of them.
    fn parallelism(&self) -> Option<Parallelism> {
        None
    }
    /// A hint that elements `ranges` (in that order) will be read soon: a source that reads
    /// over a network starts fetching them. Transformations that know their future reads
    /// (a block shuffle) call it on their input; doing nothing is always correct.
    fn will_read(&self, _ranges: &[std::ops::Range<u64>]) {}
}

pub(crate) type PassRef = Arc<dyn Pass>;

/// A pass over a node's elements.
pub(crate) trait ElementIter: Send {
    /// The next element, an error at this position, or `None` at the end.
    fn next(&mut self) -> Option<Result<Element>>;
    /// What the pass has done, for [`Node::open`] to continue from: positions, seeds, and
    /// the elements it holds that its input will not give again.
    fn save(&self) -> Result<State>;
    /// [`ElementIter::next`], waiting until `deadline` at most for threads of the pass:
    /// `Some(Err(Pending))` when nothing was ready by then (call again: nothing is lost).
    /// `None`: this pass cannot wait with a deadline (call `next`).
    fn next_by(
        &mut self,
        _deadline: std::time::Instant,
    ) -> Option<std::result::Result<Option<Result<Element>>, Pending>> {
        None
    }
    /// How many elements are left, where the pass knows it without reading them and can
    /// hand them over by [`ElementIter::next_run`]. `None`: it does not know.
    fn remaining(&self) -> Option<u64> {
        None
    }
    /// The next `n` elements (at most) as one batched element whose rows they are, where the
    /// pass has them side by side (rows of an array: a view, no copy), with their count.
    /// `None`: read them with [`ElementIter::next`] (this pass cannot, or they hold an error).
    fn next_run(&mut self, _n: usize) -> Option<(Element, usize)> {
        None
    }
    /// The next elements, at most `max` (at least one), read in bulk: [`Piece`]s that place
    /// them at positions `0..k` of the call (each once, for some `k`), as
    /// [`ElementIter::next`] would have given them in that order. `None`: read with
    /// `next` (this pass cannot, or not at this point). A batch reads its input so.
    fn next_rows(&mut self, max: usize) -> Option<Vec<Piece>> {
        let (rows, count) = self.next_run(max)?;
        Some(vec![Piece::run(rows, 0, count, 0, count, 0)])
    }
}

/// Nothing was ready by the deadline of [`ElementIter::next_by`].
#[derive(Debug)]
pub(crate) struct Pending;

/// Elements read in bulk ([`ElementIter::next_rows`]) and the positions they go to.
pub(crate) struct Piece {
    /// What is read.
    pub(crate) rows: PieceRows,
    /// Where row `i` of the piece goes: `at + (i / run) * step + i % run` (blocks of `run`
    /// rows side by side, `step` apart).
    pub(crate) at: usize,
    pub(crate) run: usize,
    pub(crate) step: usize,
}

/// The elements of a [`Piece`].
pub(crate) enum PieceRows {
    /// Rows `first..first + count` of a batched element (a view of consecutive elements).
    Run {
        rows: Element,
        first: usize,
        count: usize,
    },
    /// One element read on its own (or the error in its place).
    One(Result<Element>),
}

impl Piece {
    /// Rows `first..first + count` of `rows`, placed from `at` in blocks of `run`, `step`
    /// apart.
    pub(crate) fn run(
        rows: Element,
        first: usize,
        count: usize,
        at: usize,
        run: usize,
        step: usize,
    ) -> Piece {
        Piece {
            rows: PieceRows::Run { rows, first, count },
            at,
            run: run.max(1),
            step,
        }
    }

    /// One element (or its error) at position `at`.
    pub(crate) fn one(item: Result<Element>, at: usize) -> Piece {
        Piece {
            rows: PieceRows::One(item),
            at,
            run: 1,
            step: 0,
        }
    }

    /// How many elements the piece holds.
    pub(crate) fn count(&self) -> usize {
        match &self.rows {
            PieceRows::Run { count, .. } => *count,
            PieceRows::One(_) => 1,
        }
    }

    /// The position of row `i` of the piece.
    pub(crate) fn position(&self, i: usize) -> usize {
        self.at + (i / self.run) * self.step + i % self.run
    }
}

pub(crate) type BoxIter = Box<dyn ElementIter>;

/// A pass that has ended, or never had elements.
pub(crate) struct Ended;

impl ElementIter for Ended {
    fn next(&mut self) -> Option<Result<Element>> {
        None
    }
    fn save(&self) -> Result<State> {
        Ok(State::new("Ended"))
    }
}

/// The pass over `input` that the state being read holds, if that pass had not ended
/// (an input that ended saves no state).
pub(crate) fn reopen(input: &Dataset, r: &mut StateReader) -> Result<Option<BoxIter>> {
    r.kid_opt()?.map(|s| input.open_from(Some(s))).transpose()
}

/// A pass over an input with its elements numbered from where it was: what `map` and
/// `enumerate` read. Its state is the next number and the input's state.
pub(crate) struct Numbered {
    input: BoxIter,
    index: u64,
}

impl Numbered {
    /// Opens `input`, fresh or from a state saved by [`Numbered::save`] under `tag`.
    pub(crate) fn open(input: &Dataset, from: Option<State>, tag: &str) -> Result<Numbered> {
        let (index, state) = restore(from, tag, |r| Ok((r.num()?, r.kid()?)))?
            .map_or((0, None), |(i, s)| (i, Some(s)));
        Ok(Numbered {
            input: input.open_from(state)?,
            index,
        })
    }

    /// The next item and its number, or `None` at the end.
    pub(crate) fn next(&mut self) -> Option<(u64, Result<Element>)> {
        let item = self.input.next()?;
        let i = self.index;
        self.index += 1;
        Some((i, item))
    }

    /// How many items were read (with the restored pass's).
    pub(crate) fn count(&self) -> u64 {
        self.index
    }

    /// The state, under `tag`.
    pub(crate) fn save(&self, tag: &str) -> Result<State> {
        Ok(State::new(tag).num(self.index).kid(self.input.save()?))
    }
}

/// Reads a node's saved state with `f`, checking its tag and that all of it was used; `None`
/// (a fresh pass) gives `None`.
pub(crate) fn restore<T>(
    from: Option<State>,
    tag: &str,
    f: impl FnOnce(&mut StateReader) -> Result<T>,
) -> Result<Option<T>> {
    let Some(s) = from else { return Ok(None) };
    let mut r = s.reader(tag)?;
    let out = f(&mut r)?;
    r.finish()?;
    Ok(Some(out))
}

/// A dataset: a lazy description of a pipeline of elements, like `tf.data.Dataset`.
///
/// Cloning is O(1) and shares the description; every [`iter`](Dataset::iter) is a new,
/// independent pass. The methods are grouped by the tf.data method they match; each says
/// where it differs.
#[derive(Clone)]
pub struct Dataset {
    node: Arc<dyn Node>,
}

impl Dataset {
    pub(crate) fn from_node(node: impl Node) -> Dataset {
        Dataset {
            node: Arc::new(node),
        }
    }

    /// Whether two handles share one node (the same dataset object).
    pub(crate) fn same_node(&self, other: &Dataset) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }

    /// The node behind the dataset.
    pub(crate) fn node(&self) -> &dyn Node {
        &*self.node
    }

    /// Calls `f` on every node of the pipeline, inputs before the nodes that read them, each
    /// once (a dataset used twice is one node). Datasets that functions make while the
    /// pipeline runs (an interleave's) are not part of it.
    pub(crate) fn walk(&self, f: &mut dyn FnMut(&dyn Node)) {
        fn visit(d: &Dataset, seen: &mut HashSet<usize>, f: &mut dyn FnMut(&dyn Node)) {
            if !seen.insert(Arc::as_ptr(&d.node) as *const () as usize) {
                return;
            }
            for input in d.node.inputs() {
                visit(input, seen, f);
            }
            f(d.node());
        }
        visit(self, &mut HashSet::new(), f);
    }
}

/// Runs a user function for element `index` of operation `op`: a returned error gets the
/// place as context, and a panic becomes an error instead of unwinding through the pipeline.
pub(crate) fn call_user<T>(op: &str, index: u64, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.context(format!("{op}: element {index}"))),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            Err(Error::Function(format!("the function panicked: {what}"))
                .context(format!("{op}: element {index}")))
        }
    }
}

/// An argument check: `Err(InvalidArgument)` with `message` unless `ok`.
pub(crate) fn require(ok: bool, message: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(message()))
    }
}
