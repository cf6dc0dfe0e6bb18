//! Op graphs: a small expression DAG over an element's tensors, run by `map` in Rust.
//!
//! A [`Graph`] is what a NumPy-written Python function becomes when `map` traces it (see the
//! Python package's `map`); Rust users build the same graphs with a [`GraphBuilder`] and map
//! them with [`ops::graph`](crate::ops::graph()). The values follow NumPy 2's rules exactly:
//! integers wrap on overflow, integer division and remainder by zero give 0, `MIN // -1`
//! wraps, floats divide, floor-divide and take remainders as NumPy does (`npy_divmod`), and
//! `maximum`/`minimum` propagate NaN. Binary ops take operands of one dtype: promotion is
//! the caller's (the Python tracer asks NumPy which dtypes its loops use and inserts the
//! casts), so nothing here guesses a dtype.
//!
//! Where NumPy leaves a result to the platform (a float cast to an integer type that cannot
//! hold it, or NaN; a max or min over both signed zeros), a graph with a
//! [fallback](Graph::with_fallback) computes that element with the fallback (the Python
//! function, for a traced one); a graph without one casts as Rust's `as` does (saturating,
//! NaN to 0) and keeps the first zero.
//!
//! A graph whose every step keeps the rows of a batch apart (elementwise math, slices that
//! keep the first axis whole, reshapes, transposes, concatenations and reductions over the
//! element's own axes) also runs on a whole batch at once: a `batch` after such a map
//! applies it once to each batch (see [`Graph::commutes_with_batch`]).
//!
//! ```
//! use npyflow::ops::{self, graph::{BinaryOp, GraphBuilder, Index, Output, Part}};
//! use npyflow::{Dataset, DType, Element, Tensor};
//! // W4's `flip`: (img[:, ::-1, :].astype(np.float32) + 8.0) / 255.0, with the label kept.
//! let x = Tensor::from_vec((0..24u8).collect(), &[2, 2, 2, 3])?;
//! let y = Tensor::from_vec(vec![1i64, 0], &[2])?;
//! let ds = Dataset::from_tensor_slices(Element::tuple([x, y]))?;
//! let mut g = GraphBuilder::new(ds.element_spec());
//! let img = g.input(&[Part::Index(0)])?;
//! let label = g.input(&[Part::Index(1)])?;
//! let all = Index::Range { start: None, stop: None, step: 1 };
//! let rev = Index::Range { start: None, stop: None, step: -1 };
//! let flipped = g.slice(img, &[all.clone(), rev, all])?;
//! let f = g.cast(flipped, DType::Float32)?;
//! let eight = g.constant(Tensor::scalar(8.0f32))?;
//! let shifted = g.binary(BinaryOp::Add, f, eight)?;
//! let k = g.constant(Tensor::scalar(255.0f32))?;
//! let scaled = g.binary(BinaryOp::Divide, shifted, k)?;
//! let graph = g.build(Output::Tuple(vec![Output::Value(scaled), Output::Value(label)]))?;
//! let out = ds.map(ops::graph(graph), ())?.to_vec()?;
//! // Row 0 of the first image was [0 1 2] [3 4 5]; flipped, it starts with [3 4 5].
//! assert_eq!(out[0].get(0)?.as_tensor().unwrap().view::<f32>()?[0], (3.0 + 8.0) / 255.0);
//! # Ok::<(), npyflow::Error>(())
//! ```

#[macro_use]
mod kernels;
mod fused;
mod kinds;

pub use kinds::{BinaryOp, Index, Part, ReduceOp, UnaryOp, Value};

use kinds::Node;

use std::fmt;
use std::sync::Arc;

use crate::element::{Element, ElementSpec, PartialShape, TensorSpec};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::DType;

use super::kernels::resolve_shape;
use crate::buffer::BufferPool;
use kernels::is_supported;

/// The structure of a graph's output: its tensors in tuples and dicts.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// One tensor.
    Value(Value),
    /// A tuple.
    Tuple(Vec<Output>),
    /// A dict, in this order.
    Dict(Vec<(String, Output)>),
}

/// Counts each output's value as a use (an output is never overwritten).
fn count_outputs(out: &Output, uses: &mut [usize]) {
    match out {
        Output::Value(v) => uses[v.0] += 1,
        Output::Tuple(items) => items.iter().for_each(|o| count_outputs(o, uses)),
        Output::Dict(items) => items.iter().for_each(|(_, o)| count_outputs(o, uses)),
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Info {
    dtype: DType,
    shape: Vec<Option<usize>>,
    /// Whether the value depends on the element (not constants alone).
    depends: bool,
    /// Whether computing it on a batch (each input with a leading batch axis) gives the
    /// batch of its per-element values.
    batch: bool,
}

/// Builds a [`Graph`] step by step, checking dtypes and shapes as it goes.
pub struct GraphBuilder {
    input: ElementSpec,
    nodes: Vec<Node>,
    infos: Vec<Info>,
}

fn bad<T>(m: String) -> Result<T> {
    Err(Error::InvalidArgument(format!("op graph: {m}")))
}

/// Python's `slice.indices` for a dimension of `n`: (start, length).
fn slice_indices(start: Option<i64>, stop: Option<i64>, step: i64, n: i64) -> (i64, i64) {
    let (lower, upper) = if step > 0 { (0, n) } else { (-1, n - 1) };
    let clamp = |v: Option<i64>, default: i64| match v {
        None => default,
        Some(v) => {
            let v = if v < 0 { v + n } else { v };
            v.clamp(lower, upper)
        }
    };
    let s = clamp(start, if step > 0 { lower } else { upper });
    let e = clamp(stop, if step > 0 { upper } else { lower });
    let len = if step > 0 {
        if e > s {
            (e - s - 1) / step + 1
        } else {
            0
        }
    } else if s > e {
        (s - e - 1) / (-step) + 1
    } else {
        0
    };
    (s, len)
}

impl GraphBuilder {
    /// A builder for graphs over elements of `input`.
    pub fn new(input: &ElementSpec) -> GraphBuilder {
        GraphBuilder {
            input: input.clone(),
            nodes: Vec::new(),
            infos: Vec::new(),
        }
    }

    fn push(&mut self, node: Node, info: Info) -> Value {
        self.nodes.push(node);
        self.infos.push(info);
        Value(self.nodes.len() - 1)
    }

    fn info(&self, v: Value) -> Result<&Info> {
        self.infos
            .get(v.0)
            .map_or_else(|| bad(format!("{v:?} is not a value of this graph")), Ok)
    }

    /// The dtype of `v`.
    pub fn dtype(&self, v: Value) -> Result<DType> {
        Ok(self.info(v)?.dtype)
    }

    /// The static shape of `v` (None: known only when the graph runs).
    pub fn shape(&self, v: Value) -> Result<PartialShape> {
        Ok(PartialShape::new(&self.info(v)?.shape))
    }

    /// The tensor of the element at `path` (empty for an element that is one tensor).
    pub fn input(&mut self, path: &[Part]) -> Result<Value> {
        let mut spec = &self.input;
        for p in path {
            spec = match (spec, p) {
                (ElementSpec::Tuple(items), Part::Index(i)) if *i < items.len() => &items[*i],
                (ElementSpec::Dict(items), Part::Key(k)) if items.contains_key(k) => &items[k],
                _ => return bad(format!("elements of {} have no part {path:?}", self.input)),
            };
        }
        let ElementSpec::Tensor(t) = spec else {
            return bad(format!("part {path:?} of {} is not a tensor", self.input));
        };
        if !is_supported(t.dtype) {
            return bad(format!(
                "part {path:?} is {}; graphs compute with bool, integers, float32 and float64",
                t.dtype
            ));
        }
        let Some(dims) = t.shape.dims() else {
            return bad(format!("part {path:?} has an unknown rank"));
        };
        let info = Info {
            dtype: t.dtype,
            shape: dims.to_vec(),
            depends: true,
            batch: true,
        };
        Ok(self.push(Node::Input(path.to_vec()), info))
    }

    /// A constant tensor.
    pub fn constant(&mut self, t: Tensor) -> Result<Value> {
        if !is_supported(t.dtype()) {
            return bad(format!("constants of {} are not supported", t.dtype()));
        }
        let info = Info {
            dtype: t.dtype(),
            shape: t.shape().iter().map(|&d| Some(d)).collect(),
            depends: false,
            batch: true,
        };
        Ok(self.push(Node::Const(t.to_aligned()?), info))
    }

    /// `x.astype(dtype)`: integers wrap, floats round to nearest and truncate toward zero
    /// into integers (see the module's notes on values out of range).
    pub fn cast(&mut self, x: Value, dtype: DType) -> Result<Value> {
        if !is_supported(dtype) {
            return bad(format!("cannot cast to {dtype}"));
        }
        let mut info = self.info(x)?.clone();
        info.dtype = dtype;
        Ok(self.push(Node::Cast(x, dtype), info))
    }

    /// A unary op (see [`UnaryOp`] for the dtypes each takes).
    pub fn unary(&mut self, op: UnaryOp, x: Value) -> Result<Value> {
        let mut info = self.info(x)?.clone();
        let k = info.dtype.kind();
        let ok = match op {
            UnaryOp::Sqrt
            | UnaryOp::Floor
            | UnaryOp::Ceil
            | UnaryOp::Trunc
            | UnaryOp::Rint
            | UnaryOp::Reciprocal => k == 'f',
            UnaryOp::Negative | UnaryOp::Abs | UnaryOp::Square | UnaryOp::Sign => k != 'b',
            UnaryOp::Invert => k != 'f',
            UnaryOp::IsNan | UnaryOp::IsInf | UnaryOp::IsFinite | UnaryOp::LogicalNot => true,
        };
        if !ok {
            return bad(format!("{op:?} does not take {}", info.dtype));
        }
        if matches!(
            op,
            UnaryOp::IsNan | UnaryOp::IsInf | UnaryOp::IsFinite | UnaryOp::LogicalNot
        ) {
            info.dtype = DType::Bool;
        }
        Ok(self.push(Node::Unary(op, x), info))
    }

    /// Shape and batchability of an elementwise node over `operands`.
    fn elementwise(&self, operands: &[Value], dtype: DType) -> Result<Info> {
        let infos: Vec<&Info> = operands
            .iter()
            .map(|&v| self.info(v))
            .collect::<Result<_>>()?;
        let rank = infos.iter().map(|i| i.shape.len()).max().unwrap_or(0);
        let mut shape: Vec<Option<usize>> = vec![Some(1); rank];
        for i in &infos {
            for (a, d) in i.shape.iter().enumerate() {
                let o = &mut shape[rank - i.shape.len() + a];
                *o = match (*o, *d) {
                    (Some(1), d) => d,
                    (o, Some(1)) => o,
                    (Some(x), Some(y)) if x == y => Some(x),
                    (Some(x), Some(y)) => {
                        let shapes: Vec<String> = infos
                            .iter()
                            .map(|i| PartialShape::new(&i.shape).to_string())
                            .collect();
                        return bad(format!(
                            "shapes {} do not broadcast together ({x} and {y})",
                            shapes.join(", ")
                        ));
                    }
                    (None, Some(y)) | (Some(y), None) => Some(y),
                    (None, None) => None,
                };
            }
        }
        let depends = infos.iter().any(|i| i.depends);
        let dep_rank = infos
            .iter()
            .filter(|i| i.depends)
            .map(|i| i.shape.len())
            .max();
        let batch = infos.iter().all(|i| i.batch)
            && match dep_rank {
                None => true,
                Some(r) => infos.iter().all(|i| {
                    if i.depends {
                        i.shape.len() == r
                    } else {
                        i.shape.len() <= r
                    }
                }),
            };
        Ok(Info {
            dtype,
            shape,
            depends,
            batch,
        })
    }

    /// A binary op of two values of one dtype, broadcast (see [`BinaryOp`] for the dtypes).
    pub fn binary(&mut self, op: BinaryOp, a: Value, b: Value) -> Result<Value> {
        let (da, db) = (self.dtype(a)?, self.dtype(b)?);
        if da != db {
            return bad(format!(
                "{op:?} of {da} and {db}: cast the operands to one dtype first"
            ));
        }
        let k = da.kind();
        let ok = match op {
            BinaryOp::Add | BinaryOp::Subtract | BinaryOp::Multiply => k != 'b',
            BinaryOp::Divide => k == 'f',
            BinaryOp::FloorDivide | BinaryOp::Remainder => k != 'b',
            BinaryOp::BitwiseAnd | BinaryOp::BitwiseOr | BinaryOp::BitwiseXor => k != 'f',
            _ => true,
        };
        if !ok {
            return bad(format!("{op:?} does not take {da}"));
        }
        let dtype = if op.is_comparison() { DType::Bool } else { da };
        let info = self.elementwise(&[a, b], dtype)?;
        Ok(self.push(Node::Binary(op, a, b), info))
    }

    /// `where(cond, a, b)`: `cond` bool, `a` and `b` of one dtype, broadcast.
    pub fn select(&mut self, cond: Value, a: Value, b: Value) -> Result<Value> {
        let (dc, da, db) = (self.dtype(cond)?, self.dtype(a)?, self.dtype(b)?);
        if dc != DType::Bool || da != db {
            return bad(format!(
                "where takes a bool condition and two values of one dtype, got {dc}, {da}, {db}"
            ));
        }
        let info = self.elementwise(&[cond, a, b], da)?;
        Ok(self.push(Node::Select(cond, a, b), info))
    }

    /// `x[index]`, a basic index with one entry per axis of `x` (besides `NewAxis`es).
    pub fn slice(&mut self, x: Value, index: &[Index]) -> Result<Value> {
        let info = self.info(x)?.clone();
        let axes = index.iter().filter(|i| **i != Index::NewAxis).count();
        if axes != info.shape.len() {
            return bad(format!(
                "an index of {axes} axes for a value of rank {}",
                info.shape.len()
            ));
        }
        let mut shape = Vec::new();
        let mut axis = 0;
        for ix in index {
            match ix {
                Index::NewAxis => shape.push(Some(1)),
                Index::At(i) => {
                    if let Some(n) = info.shape[axis] {
                        let n = n as i64;
                        if *i >= n || *i < -n {
                            return bad(format!(
                                "index {i} is out of bounds for axis {axis} with size {n}"
                            ));
                        }
                    }
                    axis += 1;
                }
                Index::Range { start, stop, step } => {
                    if *step == 0 {
                        return bad("slice step cannot be zero".into());
                    }
                    shape.push(
                        info.shape[axis]
                            .map(|n| slice_indices(*start, *stop, *step, n as i64).1 as usize),
                    );
                    axis += 1;
                }
            }
        }
        // On a batch, the index applies to the axes after the batch's.
        let out = Info {
            dtype: info.dtype,
            shape,
            depends: info.depends,
            batch: info.batch,
        };
        Ok(self.push(Node::Slice(x, index.to_vec()), out))
    }

    /// `x.reshape(shape)`; one dimension may be -1.
    pub fn reshape(&mut self, x: Value, shape: &[i64]) -> Result<Value> {
        let info = self.info(x)?.clone();
        if shape.iter().filter(|&&d| d == -1).count() > 1 || shape.iter().any(|&d| d < -1) {
            return bad(format!(
                "reshape: dimensions must be non-negative, with at most one -1: {shape:?}"
            ));
        }
        let known: Option<usize> = info.shape.iter().copied().product();
        let dims = match known {
            Some(n) => resolve_shape(shape, n)
                .map_err(|m| Error::InvalidArgument(format!("op graph: {m}")))?
                .into_iter()
                .map(Some)
                .collect(),
            None => shape.iter().map(|&d| usize::try_from(d).ok()).collect(),
        };
        let out = Info {
            dtype: info.dtype,
            shape: dims,
            depends: info.depends,
            batch: info.batch,
        };
        Ok(self.push(Node::Reshape(x, shape.to_vec()), out))
    }

    /// `x.transpose(perm)`: output axis `i` is axis `perm[i]` of `x`.
    pub fn transpose(&mut self, x: Value, perm: &[usize]) -> Result<Value> {
        let info = self.info(x)?.clone();
        let mut sorted = perm.to_vec();
        sorted.sort_unstable();
        if sorted != (0..info.shape.len()).collect::<Vec<_>>() {
            return bad(format!(
                "transpose: {perm:?} is not a permutation of {} axes",
                info.shape.len()
            ));
        }
        let out = Info {
            dtype: info.dtype,
            shape: perm.iter().map(|&p| info.shape[p]).collect(),
            depends: info.depends,
            batch: info.batch,
        };
        Ok(self.push(Node::Transpose(x, perm.to_vec()), out))
    }

    /// `concatenate(xs, axis)`: values of one dtype and rank, equal off `axis`.
    pub fn concat(&mut self, xs: &[Value], axis: usize) -> Result<Value> {
        let infos: Vec<Info> = xs
            .iter()
            .map(|&v| self.info(v).cloned())
            .collect::<Result<_>>()?;
        let Some(first) = infos.first() else {
            return bad("concatenate needs at least one value".into());
        };
        let rank = first.shape.len();
        if axis >= rank {
            return bad(format!("concatenate: axis {axis} of rank-{rank} values"));
        }
        let mut shape = first.shape.clone();
        for i in &infos[1..] {
            if i.dtype != first.dtype || i.shape.len() != rank {
                return bad(format!(
                    "concatenate: {} and {} values (cast to one dtype and rank first)",
                    first.dtype, i.dtype
                ));
            }
            for (a, (x, y)) in shape.iter_mut().zip(&i.shape).enumerate() {
                if a == axis {
                    *x = x.zip(*y).map(|(p, q)| p + q);
                } else if let (Some(p), Some(q)) = (*x, *y) {
                    if p != q {
                        return bad(format!("concatenate: dimension {a} differs ({p} and {q})"));
                    }
                } else {
                    *x = x.or(*y);
                }
            }
        }
        let depends = infos.iter().any(|i| i.depends);
        let batch = infos.iter().all(|i| i.batch && i.depends == depends);
        let out = Info {
            dtype: first.dtype,
            shape,
            depends,
            batch,
        };
        Ok(self.push(Node::Concat(xs.to_vec(), axis), out))
    }

    /// A reduction of `x` over `axes` (all of them for none), keeping them as length-1 axes
    /// with `keepdims`.
    pub fn reduce(
        &mut self,
        op: ReduceOp,
        x: Value,
        axes: &[usize],
        keepdims: bool,
    ) -> Result<Value> {
        let info = self.info(x)?.clone();
        let rank = info.shape.len();
        let mut axes: Vec<usize> = if axes.is_empty() {
            (0..rank).collect()
        } else {
            axes.to_vec()
        };
        axes.sort_unstable();
        axes.dedup();
        if axes.iter().any(|&a| a >= rank) {
            return bad(format!("reduce: axes {axes:?} of a rank-{rank} value"));
        }
        let k = info.dtype.kind();
        let ok = match op {
            ReduceOp::Sum | ReduceOp::Prod => matches!(k, 'i' | 'u'),
            ReduceOp::Max | ReduceOp::Min => k != 'b',
            ReduceOp::Any | ReduceOp::All => true,
        };
        if !ok {
            return bad(format!("reduce {op:?} does not take {}", info.dtype));
        }
        let shape = info
            .shape
            .iter()
            .enumerate()
            .filter_map(|(i, &d)| match (axes.contains(&i), keepdims) {
                (false, _) => Some(d),
                (true, true) => Some(Some(1)),
                (true, false) => None,
            })
            .collect();
        let out = Info {
            dtype: if matches!(op, ReduceOp::Any | ReduceOp::All) {
                DType::Bool
            } else {
                info.dtype
            },
            shape,
            depends: info.depends,
            batch: info.batch,
        };
        Ok(self.push(Node::Reduce(op, x, axes, keepdims), out))
    }

    fn output_spec(&self, out: &Output) -> Result<ElementSpec> {
        Ok(match out {
            Output::Value(v) => {
                let i = self.info(*v)?;
                ElementSpec::Tensor(TensorSpec {
                    dtype: i.dtype,
                    shape: PartialShape::new(&i.shape),
                })
            }
            Output::Tuple(items) => ElementSpec::Tuple(
                items
                    .iter()
                    .map(|o| self.output_spec(o))
                    .collect::<Result<_>>()?,
            ),
            Output::Dict(items) => ElementSpec::Dict(
                items
                    .iter()
                    .map(|(k, o)| Ok((k.clone(), self.output_spec(o)?)))
                    .collect::<Result<_>>()?,
            ),
        })
    }

    fn outputs_batch(&self, out: &Output) -> bool {
        match out {
            Output::Value(v) => self.infos[v.0].batch && self.infos[v.0].depends,
            Output::Tuple(items) => items.iter().all(|o| self.outputs_batch(o)),
            Output::Dict(items) => items.iter().all(|(_, o)| self.outputs_batch(o)),
        }
    }

    /// The graph returning `output`.
    pub fn build(self, output: Output) -> Result<Graph> {
        let spec = self.output_spec(&output)?;
        let batch = self.outputs_batch(&output);
        let mut uses = vec![0usize; self.nodes.len()];
        for node in &self.nodes {
            for v in node.operands() {
                uses[v.0] += 1;
            }
        }
        count_outputs(&output, &mut uses);
        let mut outputs = vec![0usize; self.nodes.len()];
        count_outputs(&output, &mut outputs);
        let outputs: Vec<bool> = outputs.iter().map(|&c| c > 0).collect();
        let depends: Vec<bool> = self.infos.iter().map(|i| i.depends).collect();
        let plan = fused::Plan::new(&self.nodes, &depends, &outputs);
        // The steps the outputs need: others are never computed.
        let mut live = outputs.clone();
        for i in (0..self.nodes.len()).rev() {
            if live[i] {
                for v in self.nodes[i].operands() {
                    live[v.0] = true;
                }
            }
        }
        Ok(Graph {
            input: self.input,
            nodes: self.nodes,
            infos: self.infos,
            output,
            spec,
            batch,
            uses,
            plan,
            live,
            fallback: None,
        })
    }
}

/// How [`Graph::eval`] computes elementwise steps.
#[derive(Clone, Copy)]
enum Eval<'p> {
    /// Regions fused and blocked, outputs from the pool when there is one.
    Fused(Option<&'p BufferPool>),
    /// Each step a whole-array pass (the reference the fused evaluation is tested against).
    #[cfg_attr(not(test), allow(dead_code))]
    Steps,
}

/// A function that computes an element where the graph's result would be the platform's.
pub type Fallback = Arc<dyn Fn(Element) -> Result<Element> + Send + Sync>;

/// An op graph: built by a [`GraphBuilder`], mapped with [`ops::graph`](crate::ops::graph()).
#[derive(Clone)]
pub struct Graph {
    input: ElementSpec,
    nodes: Vec<Node>,
    infos: Vec<Info>,
    output: Output,
    spec: ElementSpec,
    batch: bool,
    /// How many steps (and outputs) use each value.
    uses: Vec<usize>,
    /// Which steps run fused, in which regions.
    plan: fused::Plan,
    /// Whether an output needs each step (the others are not computed).
    live: Vec<bool>,
    fallback: Option<Fallback>,
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("nodes", &self.nodes)
            .field("output", &self.output)
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl PartialEq for Graph {
    fn eq(&self, other: &Graph) -> bool {
        self.nodes == other.nodes
            && self.output == other.output
            && self.input == other.input
            && match (&self.fallback, &other.fallback) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "graph of {} ops", self.nodes.len())
    }
}

/// Looks up `path` in `e`.
fn part<'e>(e: &'e Element, path: &[Part]) -> Result<&'e Tensor> {
    let mut cur = e;
    for p in path {
        cur = match p {
            Part::Index(i) => cur.get(*i)?,
            Part::Key(k) => cur.get_key(k)?,
        };
    }
    cur.as_tensor()
        .ok_or_else(|| Error::Pipeline(format!("part {path:?} of the element is not a tensor")))
}

impl Graph {
    /// The spec of the elements the graph takes.
    pub fn input_spec(&self) -> &ElementSpec {
        &self.input
    }

    /// The spec of the elements it returns.
    pub fn output_spec(&self) -> &ElementSpec {
        &self.spec
    }

    /// The number of its steps (inputs and constants included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether it has no steps.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether applying it to a batch (each tensor with a leading batch axis) gives the batch
    /// of its results: every output depends on the element, elementwise steps combine values
    /// of one rank (constants of no higher rank), and concatenations join values of the
    /// element only. A `batch` after the map then runs the graph once per batch.
    pub fn commutes_with_batch(&self) -> bool {
        self.batch
    }

    /// The same graph, computing with `f` each element whose result NumPy leaves to the
    /// platform (a float cast to an integer type that does not hold it, a max or min over
    /// both signed zeros). A traced Python function's fallback is the function itself.
    pub fn with_fallback(
        mut self,
        f: impl Fn(Element) -> Result<Element> + Send + Sync + 'static,
    ) -> Graph {
        self.fallback = Some(Arc::new(f));
        self
    }

    /// The graph applied to one element.
    pub fn apply(&self, e: Element) -> Result<Element> {
        match self.eval(&e, self.fallback.is_some(), false, Eval::Fused(None))? {
            Some(out) => Ok(out),
            None => self.fall_back(e),
        }
    }

    fn fall_back(&self, e: Element) -> Result<Element> {
        let f = self
            .fallback
            .as_ref()
            .expect("undefined results are reported only with a fallback");
        let out = f(e)?;
        if self.spec.is_compatible_with(&out) {
            Ok(out)
        } else {
            Err(Error::Pipeline(format!(
                "map: the function returned {} where its trace gave {}",
                out.spec(),
                self.spec
            )))
        }
    }

    /// The graph applied to a batch of elements at once (when
    /// [`commutes_with_batch`](Self::commutes_with_batch)); row by row where a row needs the
    /// fallback.
    pub(crate) fn apply_batch(&self, batch: Element, pool: Option<&BufferPool>) -> Result<Element> {
        if let Some(out) = self.eval(&batch, self.fallback.is_some(), true, Eval::Fused(pool))? {
            return Ok(out);
        }
        let rows = batch.rows()?;
        let outs = (0..rows)
            .map(|i| {
                let row = batch.map_tensors(&mut |t| t.row(i))?;
                self.apply(row)
            })
            .collect::<Result<Vec<_>>>()?;
        Element::combine(&outs, &mut |ts| {
            let owned: Vec<Tensor> = ts.iter().map(|t| (*t).clone()).collect();
            Tensor::stack(&owned)
        })
    }

    /// Evaluates the graph on `e` (a batch of elements when `batched`); `None` where a
    /// result is the platform's and `strict`.
    fn eval(
        &self,
        e: &Element,
        strict: bool,
        batched: bool,
        how: Eval<'_>,
    ) -> Result<Option<Element>> {
        let mut vals: Vec<Tensor> = Vec::with_capacity(self.nodes.len());
        // The strided views that regions read in place (fused evaluation only).
        let mut views: Vec<Option<fused::View>> = vec![None; self.nodes.len()];
        let dtypes: Vec<DType> = self.infos.iter().map(|i| i.dtype).collect();
        // Uses left of each value: a binary op on the last use of a value it may overwrite
        // computes in that value's memory.
        let mut uses = self.uses.clone();
        // Batch axis offset of node i's value.
        let lead = |i: &Info| usize::from(batched && i.depends);
        let placeholder = || Tensor::scalar(0u8);
        for (i, (node, info)) in self.nodes.iter().zip(&self.infos).enumerate() {
            if !self.live[i] {
                vals.push(placeholder());
                continue;
            }
            if let Eval::Fused(pool) = how {
                match self.plan.roles[i] {
                    fused::Role::Step => {}
                    fused::Role::Member => {
                        vals.push(placeholder());
                        continue;
                    }
                    fused::Role::View => {
                        let source = |x: &Value| match &views[x.0] {
                            Some(v) => v.clone(),
                            None => fused::View::of(&vals[x.0]),
                        };
                        let view = match node {
                            Node::Slice(x, index) => {
                                slice_view(source(x), index, lead(&self.infos[x.0]))?
                            }
                            Node::Transpose(x, perm) => {
                                transpose_view(source(x), perm, lead(&self.infos[x.0]))
                            }
                            _ => unreachable!("views are slices and transposes"),
                        };
                        views[i] = Some(view);
                        vals.push(placeholder());
                        continue;
                    }
                    fused::Role::Root(k) => {
                        let region = &self.plan.regions[k];
                        match fused::run(region, &self.nodes, &dtypes, &vals, &views, strict, pool)?
                        {
                            Some(t) => vals.push(t),
                            None => return Ok(None),
                        }
                        continue;
                    }
                }
            }
            let v = |x: &Value| &vals[x.0];
            let t = match node {
                Node::Input(path) => part(e, path)?.clone(),
                Node::Const(t) => t.clone(),
                Node::Cast(x, d) => match kernels::cast(v(x), *d, strict)? {
                    Some(t) => t,
                    None => return Ok(None),
                },
                Node::Unary(op, x) => kernels::unary(*op, v(x))?,
                Node::Binary(op, a, b) => {
                    uses[a.0] -= 1;
                    uses[b.0] -= 1;
                    let reusable = uses[a.0] == 0
                        && a != b
                        && !matches!(self.nodes[a.0], Node::Input(_) | Node::Const(_));
                    if reusable {
                        let x = std::mem::replace(&mut vals[a.0], Tensor::scalar(0u8));
                        match kernels::binary_in_place(*op, x, &vals[b.0]) {
                            Ok(t) => t,
                            Err(x) => {
                                let t = kernels::binary(*op, &x, &vals[b.0])?;
                                vals[a.0] = x;
                                t
                            }
                        }
                    } else {
                        kernels::binary(*op, &vals[a.0], &vals[b.0])?
                    }
                }
                Node::Select(c, a, b) => kernels::select(v(c), v(a), v(b))?,
                Node::Slice(x, index) => {
                    let b = lead(&self.infos[x.0]);
                    slice_view(fused::View::of(v(x)), index, b)?.materialize()?
                }
                Node::Reshape(x, shape) => {
                    let src = v(x);
                    let b = lead(&self.infos[x.0]);
                    let rest: usize = src.shape()[b..].iter().product();
                    let mut dims = src.shape()[..b].to_vec();
                    dims.extend(resolve_shape(shape, rest).map_err(Error::Pipeline)?);
                    src.reshape(&dims)?
                }
                Node::Transpose(x, perm) => {
                    let b = lead(&self.infos[x.0]);
                    transpose_view(fused::View::of(v(x)), perm, b).materialize()?
                }
                Node::Concat(xs, axis) => {
                    let b = lead(info);
                    let parts: Vec<&Tensor> = xs.iter().map(&v).collect();
                    kernels::concat(&parts, axis + b)?
                }
                Node::Reduce(op, x, axes, keep) => {
                    let b = lead(&self.infos[x.0]);
                    let axes: Vec<usize> = axes.iter().map(|a| a + b).collect();
                    match kernels::reduce(*op, v(x), &axes, *keep, strict)? {
                        Some(t) => t,
                        None => return Ok(None),
                    }
                }
            };
            vals.push(t);
        }
        Ok(Some(self.assemble(&self.output, &vals)))
    }

    fn assemble(&self, out: &Output, vals: &[Tensor]) -> Element {
        match out {
            Output::Value(v) => Element::Tensor(vals[v.0].clone()),
            Output::Tuple(items) => {
                Element::Tuple(items.iter().map(|o| self.assemble(o, vals)).collect())
            }
            Output::Dict(items) => Element::Dict(
                items
                    .iter()
                    .map(|(k, o)| (k.clone(), self.assemble(o, vals)))
                    .collect(),
            ),
        }
    }
}

/// `t[index]` for a view `t` with `lead` leading batch axes the index does not name.
fn slice_view(t: fused::View, index: &[Index], lead: usize) -> Result<fused::View> {
    let mut shape: Vec<usize> = t.shape[..lead].to_vec();
    let mut strides: Vec<isize> = t.strides[..lead].to_vec();
    let mut offset = t.offset;
    let mut axis = lead;
    for ix in index {
        match ix {
            Index::NewAxis => {
                shape.push(1);
                strides.push(0);
            }
            Index::At(i) => {
                let n = t.shape[axis] as i64;
                let j = if *i < 0 { i + n } else { *i };
                if j < 0 || j >= n {
                    return Err(Error::Pipeline(format!(
                        "index {i} is out of bounds for axis {} with size {n}",
                        axis - lead
                    )));
                }
                offset += j as isize * t.strides[axis];
                axis += 1;
            }
            Index::Range { start, stop, step } => {
                let n = t.shape[axis] as i64;
                let (s, len) = slice_indices(*start, *stop, *step, n);
                shape.push(len as usize);
                strides.push(t.strides[axis] * *step as isize);
                if len > 0 {
                    offset += s as isize * t.strides[axis];
                }
                axis += 1;
            }
        }
    }
    Ok(fused::View {
        base: t.base,
        offset,
        shape,
        strides,
    })
}

/// `t.transpose(perm)` for a view `t` with `lead` leading batch axes kept first.
fn transpose_view(t: fused::View, perm: &[usize], lead: usize) -> fused::View {
    let full: Vec<usize> = (0..lead).chain(perm.iter().map(|p| p + lead)).collect();
    fused::View {
        shape: full.iter().map(|&p| t.shape[p]).collect(),
        strides: full.iter().map(|&p| t.strides[p]).collect(),
        base: t.base,
        offset: t.offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_of(t: &Tensor) -> ElementSpec {
        ElementSpec::Tensor(TensorSpec::of(t))
    }

    #[test]
    fn slices_follow_python() {
        for n in 0..6i64 {
            let v: Vec<i64> = (0..n).collect();
            for (start, stop, step) in [
                (None, None, -1),
                (Some(1), None, 2),
                (Some(-2), Some(-7), -1),
                (Some(10), Some(-10), -3),
                (None, Some(2), 1),
            ] {
                let t = Tensor::from_vec(v.clone(), &[n as usize]).unwrap();
                let mut g = GraphBuilder::new(&spec_of(&t));
                let x = g.input(&[]).unwrap();
                let s = g.slice(x, &[Index::Range { start, stop, step }]).unwrap();
                let out = g.build(Output::Value(s)).unwrap();
                let got = out.apply(t.into()).unwrap();
                // Python's reference, written out.
                let (s0, len) = slice_indices(start, stop, step, n);
                let want: Vec<i64> = (0..len).map(|k| s0 + k * step).collect();
                assert_eq!(got.as_tensor().unwrap().view::<i64>().unwrap(), &want[..]);
            }
        }
    }

    #[test]
    fn integer_division_and_overflow_as_numpy() {
        let a = Tensor::from_vec(vec![-128i8, 7, -7, 100, 5], &[5]).unwrap();
        let b = Tensor::from_vec(vec![-1i8, 0, 2, 100, -3], &[5]).unwrap();
        let spec = ElementSpec::Tuple(vec![spec_of(&a), spec_of(&b)]);
        let mut g = GraphBuilder::new(&spec);
        let x = g.input(&[Part::Index(0)]).unwrap();
        let y = g.input(&[Part::Index(1)]).unwrap();
        let q = g.binary(BinaryOp::FloorDivide, x, y).unwrap();
        let r = g.binary(BinaryOp::Remainder, x, y).unwrap();
        let s = g.binary(BinaryOp::Add, x, y).unwrap();
        let graph = g
            .build(Output::Tuple(vec![
                Output::Value(q),
                Output::Value(r),
                Output::Value(s),
            ]))
            .unwrap();
        let out = graph.apply(Element::tuple([a, b])).unwrap();
        let get = |i| out.get(i).unwrap().as_tensor().unwrap().clone();
        // np.int8 results, as NumPy 2.4 gives them.
        assert_eq!(get(0).view::<i8>().unwrap(), &[-128, 0, -4, 1, -2]);
        assert_eq!(get(1).view::<i8>().unwrap(), &[0, 0, 1, 0, -1]);
        assert_eq!(get(2).view::<i8>().unwrap(), &[127, 7, -5, -56, 2]);
    }

    #[test]
    fn undefined_casts_take_the_fallback() {
        let t = Tensor::from_vec(vec![1.5f32, f32::NAN], &[2]).unwrap();
        let mut g = GraphBuilder::new(&spec_of(&t));
        let x = g.input(&[]).unwrap();
        let c = g.cast(x, DType::Int32).unwrap();
        let graph = g.build(Output::Value(c)).unwrap();
        // Without a fallback: Rust's saturating cast.
        let plain = graph.apply(t.clone().into()).unwrap();
        assert_eq!(plain.as_tensor().unwrap().view::<i32>().unwrap(), &[1, 0]);
        let with =
            graph.with_fallback(|_| Ok(Tensor::from_vec(vec![7i32, 7], &[2]).unwrap().into()));
        let out = with.apply(t.into()).unwrap();
        assert_eq!(out.as_tensor().unwrap().view::<i32>().unwrap(), &[7, 7]);
    }

    #[test]
    fn batches_equal_rows() {
        let t = Tensor::from_vec((0..24i32).collect(), &[4, 2, 3]).unwrap();
        let row = ElementSpec::Tensor(TensorSpec {
            dtype: DType::Int32,
            shape: PartialShape::known(&[2, 3]),
        });
        let mut g = GraphBuilder::new(&row);
        let x = g.input(&[]).unwrap();
        let all = Index::Range {
            start: None,
            stop: None,
            step: 1,
        };
        let f = g
            .slice(
                x,
                &[
                    all.clone(),
                    Index::Range {
                        start: None,
                        stop: None,
                        step: -1,
                    },
                ],
            )
            .unwrap();
        let tr = g.transpose(f, &[1, 0]).unwrap();
        let m = g.reduce(ReduceOp::Max, tr, &[1], true).unwrap();
        let k = g.constant(Tensor::scalar(3i32)).unwrap();
        let s = g.binary(BinaryOp::Subtract, m, k).unwrap();
        let c = g.concat(&[s, s], 0).unwrap();
        let graph = g.build(Output::Value(c)).unwrap();
        assert!(graph.commutes_with_batch());
        let whole = graph.apply_batch(t.clone().into(), None).unwrap();
        let rows: Vec<Tensor> = (0..4)
            .map(|i| {
                graph
                    .apply(t.row(i).unwrap().into())
                    .unwrap()
                    .into_tensor()
                    .unwrap()
            })
            .collect();
        assert_eq!(whole.into_tensor().unwrap(), Tensor::stack(&rows).unwrap());
    }

    #[test]
    fn w4_flip_runs_as_one_region_over_a_view() {
        // (img[:, ::-1, :].astype(np.float32) + 8.0) / 255.0 on 32x32x3 images.
        let spec = ElementSpec::Tensor(TensorSpec {
            dtype: DType::UInt8,
            shape: PartialShape::known(&[32, 32, 3]),
        });
        let mut g = GraphBuilder::new(&spec);
        let img = g.input(&[]).unwrap();
        let all = Index::Range {
            start: None,
            stop: None,
            step: 1,
        };
        let rev = Index::Range {
            start: None,
            stop: None,
            step: -1,
        };
        let flipped = g.slice(img, &[all.clone(), rev, all]).unwrap();
        let f = g.cast(flipped, DType::Float32).unwrap();
        let eight = g.constant(Tensor::scalar(8.0f32)).unwrap();
        let shifted = g.binary(BinaryOp::Add, f, eight).unwrap();
        let k = g.constant(Tensor::scalar(255.0f32)).unwrap();
        let scaled = g.binary(BinaryOp::Divide, shifted, k).unwrap();
        let graph = g.build(Output::Value(scaled)).unwrap();
        use fused::Role;
        assert_eq!(
            graph.plan.roles,
            [
                Role::Step,
                Role::View,
                Role::Member,
                Role::Step,
                Role::Member,
                Role::Step,
                Role::Root(0)
            ]
        );
        assert_eq!(graph.plan.regions[0].leaves, [1, 3, 5]);
        // Five images of every byte value, in batches through a pool, against NumPy's
        // formula written out.
        let bytes: Vec<u8> = (0..5 * 32 * 32 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let batch = Tensor::from_vec(bytes.clone(), &[5, 32, 32, 3]).unwrap();
        let pool = crate::buffer::BufferPool::new(2);
        // Blocks of every row (one block), of 7 rows (the last of 6), of 5 rows, and of less
        // than a row, which a chain reading flipped rows does not take: it gathers blocks.
        // Each twice: the second reuses the pool's buffer.
        for cap in [usize::MAX, 96 * 7, 500, 50]
            .into_iter()
            .flat_map(|c| [c, c])
        {
            let out =
                fused::with_wide_cap(cap, || graph.apply_batch(batch.clone().into(), Some(&pool)))
                    .unwrap();
            let got = out.as_tensor().unwrap().view::<f32>().unwrap().to_vec();
            let mut want = Vec::with_capacity(got.len());
            for n in 0..5 {
                for r in 0..32 {
                    for c in (0..32).rev() {
                        for ch in 0..3 {
                            let b = bytes[((n * 32 + r) * 32 + c) * 3 + ch];
                            want.push((f32::from(b) + 8.0) / 255.0);
                        }
                    }
                }
            }
            assert_eq!(got, want, "blocks of up to {cap} elements");
        }
    }

    #[test]
    fn tables_report_only_undefined_values_that_occur() {
        // (1e9 / (x.astype(np.float32) - 1.0)).astype(np.int32): one region over one
        // 8-bit input, computed from a table of its 256 results; only x == 1 makes an
        // undefined cast (of infinity).
        for dtype in [DType::UInt8, DType::Int8] {
            let spec = ElementSpec::Tensor(TensorSpec {
                dtype,
                shape: PartialShape::known(&[64, 64]),
            });
            let mut g = GraphBuilder::new(&spec);
            let x = g.input(&[]).unwrap();
            let f = g.cast(x, DType::Float32).unwrap();
            let one = g.constant(Tensor::scalar(1.0f32)).unwrap();
            let d = g.binary(BinaryOp::Subtract, f, one).unwrap();
            let k = g.constant(Tensor::scalar(1e9f32)).unwrap();
            let q = g.binary(BinaryOp::Divide, k, d).unwrap();
            let out = g.cast(q, DType::Int32).unwrap();
            let graph = g.build(Output::Value(out)).unwrap();
            assert_eq!(graph.plan.regions.len(), 1);
            assert_eq!(graph.plan.regions[0].steps.len(), 4);
            for with_one in [false, true] {
                // Every bit pattern but 1's, and 1 too where `with_one`.
                let bytes: Vec<u8> = (0..2 * 64 * 64)
                    .map(|i| match (i * 13 % 256) as u8 {
                        1 if !with_one => 2,
                        b => b,
                    })
                    .collect();
                let t = Tensor::new(
                    dtype,
                    &[2, 64, 64],
                    crate::buffer::Buffer::from_vec(bytes.clone()),
                )
                .unwrap();
                let e = Element::from(t);
                let fused = graph.eval(&e, true, true, Eval::Fused(None)).unwrap();
                let steps = graph.eval(&e, true, true, Eval::Steps).unwrap();
                assert_eq!(fused, steps);
                assert_eq!(fused.is_none(), with_one);
                let lenient = graph.eval(&e, false, true, Eval::Fused(None)).unwrap();
                assert_eq!(lenient, graph.eval(&e, false, true, Eval::Steps).unwrap());
                if !with_one {
                    // NumPy's values written out (the input's bytes as its dtype).
                    let want: Vec<i32> = bytes
                        .iter()
                        .map(|&b| {
                            let v = if dtype == DType::Int8 {
                                f32::from(b as i8)
                            } else {
                                f32::from(b)
                            };
                            (1e9f32 / (v - 1.0)) as i32
                        })
                        .collect();
                    let got = fused.unwrap().into_tensor().unwrap();
                    assert_eq!(got.view::<i32>().unwrap().to_vec(), want);
                }
            }
        }
    }

    /// Random graphs: the fused evaluation against the step-by-step one.
    mod fused_equals_steps {
        use super::*;
        use crate::ops::vectors::Vectors;
        use crate::rng::Rng;
        use proptest::prelude::*;

        const DTYPES: [DType; 11] = [
            DType::Bool,
            DType::Int8,
            DType::Int16,
            DType::Int32,
            DType::Int64,
            DType::UInt8,
            DType::UInt16,
            DType::UInt32,
            DType::UInt64,
            DType::Float32,
            DType::Float64,
        ];

        /// Whether two results are the same: the same dtypes, shapes and bits, except that a
        /// NaN equals any NaN. The sign and payload of a NaN an operation makes are not
        /// specified (in Rust, as in C): two compilations of `c * x`, with NaN for both, may
        /// keep either operand's NaN.
        fn same_values(a: &Option<Element>, b: &Option<Element>) -> bool {
            fn bits_or_nans<T: crate::NativeType>(
                a: &Tensor,
                b: &Tensor,
                is_nan: fn(T) -> bool,
                bits: fn(T) -> u64,
            ) -> bool {
                let (a, b) = (a.view::<T>().unwrap(), b.view::<T>().unwrap());
                a.iter()
                    .zip(b)
                    .all(|(&p, &q)| bits(p) == bits(q) || (is_nan(p) && is_nan(q)))
            }
            let (Some(a), Some(b)) = (a, b) else {
                return a.is_none() && b.is_none();
            };
            let (ta, tb) = (a.tensors(), b.tensors());
            ta.len() == tb.len()
                && ta.iter().zip(&tb).all(|(p, q)| {
                    p.dtype() == q.dtype()
                        && p.shape() == q.shape()
                        && match p.dtype() {
                            DType::Float32 => {
                                bits_or_nans::<f32>(p, q, f32::is_nan, |v| u64::from(v.to_bits()))
                            }
                            DType::Float64 => bits_or_nans::<f64>(p, q, f64::is_nan, f64::to_bits),
                            _ => p == q,
                        }
                })
        }

        fn pick<T: Copy>(r: &mut Rng, xs: &[T]) -> T {
            xs[r.below(xs.len() as u64) as usize]
        }

        /// Random values of `dtype`: every bit pattern for integers; for floats a mix of
        /// small values, halves, huge ones, signed zeros, infinities and NaN.
        fn values(r: &mut Rng, dtype: DType, shape: &[usize]) -> Tensor {
            let n: usize = shape.iter().product();
            let special = [
                0.0,
                -0.0,
                0.5,
                -2.5,
                1e30,
                -3e9,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
                255.0,
                -129.0,
            ];
            let float = |r: &mut Rng| {
                if r.below(3) == 0 {
                    pick(r, &special)
                } else {
                    (r.next_f64() - 0.5) * 600.0
                }
            };
            macro_rules! ints {
                ($t:ty) => {
                    Tensor::from_vec(
                        (0..n).map(|_| r.next_u64() as $t).collect::<Vec<$t>>(),
                        shape,
                    )
                };
            }
            let t = match dtype {
                DType::Bool => {
                    let bytes: Vec<u8> = (0..n).map(|_| (r.below(2)) as u8).collect();
                    Tensor::new(DType::Bool, shape, crate::buffer::Buffer::from_vec(bytes))
                }
                DType::Int8 => ints!(i8),
                DType::Int16 => ints!(i16),
                DType::Int32 => ints!(i32),
                DType::Int64 => ints!(i64),
                DType::UInt8 => ints!(u8),
                DType::UInt16 => ints!(u16),
                DType::UInt32 => ints!(u32),
                DType::UInt64 => ints!(u64),
                DType::Float32 => {
                    Tensor::from_vec((0..n).map(|_| float(r) as f32).collect::<Vec<f32>>(), shape)
                }
                _ => Tensor::from_vec((0..n).map(|_| float(r)).collect::<Vec<f64>>(), shape),
            };
            t.unwrap()
        }

        /// A random shape: small dimensions mostly, sometimes ones that make many blocks
        /// (runs longer than a block, rows longer than a block, many short rows).
        fn shape(r: &mut Rng) -> Vec<usize> {
            match r.below(7) {
                0 => vec![pick(r, &[1, 3, 1500])],
                // Enough elements for a region over one 8-bit input to use a table.
                6 => vec![pick(r, &[4096, 5000]), pick(r, &[1, 2])],
                1 => vec![pick(r, &[2, 40]), 33, 3],
                2 => vec![3, pick(r, &[1, 2, 1100])],
                _ => (0..r.below(4)).map(|_| 1 + r.below(5) as usize).collect(),
            }
        }

        /// A broadcastable variant of `s`: some dimensions 1, some leading ones dropped.
        fn broadcastable(r: &mut Rng, s: &[usize]) -> Vec<usize> {
            let drop = r.below(s.len() as u64 + 1) as usize;
            s[drop..]
                .iter()
                .map(|&d| if r.below(3) == 0 { 1 } else { d })
                .collect()
        }

        /// One random step on values of `pool`, or `None` where the builder refused it.
        fn step(r: &mut Rng, g: &mut GraphBuilder, pool: &[Value]) -> Option<Value> {
            let a = pick(r, pool);
            let b = pick(r, pool);
            let da = g.dtype(a).ok()?;
            match r.below(11) {
                0 | 1 => g.cast(a, pick(r, &DTYPES)).ok(),
                2 => {
                    let ops = [
                        UnaryOp::Negative,
                        UnaryOp::Abs,
                        UnaryOp::Square,
                        UnaryOp::Sqrt,
                        UnaryOp::Floor,
                        UnaryOp::Rint,
                        UnaryOp::Reciprocal,
                        UnaryOp::Sign,
                        UnaryOp::IsNan,
                        UnaryOp::IsFinite,
                        UnaryOp::LogicalNot,
                        UnaryOp::Invert,
                    ];
                    g.unary(pick(r, &ops), a).ok()
                }
                3..=5 => {
                    let ops = [
                        BinaryOp::Add,
                        BinaryOp::Subtract,
                        BinaryOp::Multiply,
                        BinaryOp::Divide,
                        BinaryOp::FloorDivide,
                        BinaryOp::Remainder,
                        BinaryOp::Maximum,
                        BinaryOp::Minimum,
                        BinaryOp::BitwiseXor,
                        BinaryOp::Less,
                        BinaryOp::Equal,
                        BinaryOp::LogicalAnd,
                    ];
                    let b = if g.dtype(b).ok()? == da {
                        b
                    } else {
                        g.cast(b, da).ok()?
                    };
                    let (x, y) = if r.below(2) == 0 { (a, b) } else { (b, a) };
                    g.binary(pick(r, &ops), x, y).ok()
                }
                6 => {
                    // A constant: a scalar or one value per position of the last axis.
                    let last = g.shape(a).ok()?.dims()?.last().copied().flatten();
                    let shape: Vec<usize> = match last {
                        Some(n) if r.below(2) == 0 => vec![n],
                        _ => vec![],
                    };
                    let c = g.constant(values(r, da, &shape)).ok()?;
                    let op = pick(r, &[BinaryOp::Add, BinaryOp::Multiply, BinaryOp::Maximum]);
                    g.binary(op, a, c).ok()
                }
                7 => {
                    let c = g.binary(BinaryOp::Greater, a, a).ok();
                    let c = match c {
                        Some(c) if r.below(2) == 0 => c,
                        _ => {
                            let k = g.constant(values(r, da, &[])).ok()?;
                            g.binary(BinaryOp::LessEqual, a, k).ok()?
                        }
                    };
                    let b = if g.dtype(b).ok()? == da {
                        b
                    } else {
                        g.cast(b, da).ok()?
                    };
                    g.select(c, a, b).ok()
                }
                8 => {
                    let dims = g.shape(a).ok()?.dims()?.to_vec();
                    let mut index = Vec::new();
                    for d in dims {
                        let d = d? as i64;
                        index.push(match r.below(5) {
                            0 if d > 0 => Index::At(
                                r.below(d as u64) as i64 - if r.below(2) == 0 { d } else { 0 },
                            ),
                            1 => Index::Range {
                                start: None,
                                stop: None,
                                step: -1,
                            },
                            2 => Index::Range {
                                start: Some(1),
                                stop: None,
                                step: 2,
                            },
                            3 => Index::Range {
                                start: Some(-1),
                                stop: Some(0),
                                step: -2,
                            },
                            _ => Index::Range {
                                start: None,
                                stop: None,
                                step: 1,
                            },
                        });
                        if r.below(6) == 0 {
                            index.push(Index::NewAxis);
                        }
                    }
                    g.slice(a, &index).ok()
                }
                9 => {
                    let rank = g.shape(a).ok()?.dims()?.len();
                    let mut perm: Vec<usize> = (0..rank).collect();
                    r.shuffle(&mut perm);
                    g.transpose(a, &perm).ok()
                }
                _ => match r.below(3) {
                    0 => g.reshape(a, &[-1]).ok(),
                    1 => g.reduce(ReduceOp::Max, a, &[], r.below(2) == 0).ok(),
                    _ => g.concat(&[a, a], 0).ok(),
                },
            }
        }

        fn check(seed: u64) {
            let mut r = Rng::keyed(seed, &[]);
            let s0 = shape(&mut r);
            let s1 = broadcastable(&mut r, &s0);
            // 8-bit inputs more often: a region over one of them uses a table.
            let d0 = if r.below(3) == 0 {
                pick(&mut r, &[DType::UInt8, DType::Int8])
            } else {
                pick(&mut r, &DTYPES)
            };
            let d1 = pick(&mut r, &DTYPES);
            let batch = 1 + r.below(3) as usize;
            let with_batch = |s: &[usize]| [&[batch][..], s].concat();
            let x = values(&mut r, d0, &with_batch(&s0));
            let y = values(&mut r, d1, &with_batch(&s1));
            let row = |t: &Tensor| TensorSpec {
                dtype: t.dtype(),
                shape: PartialShape::known(&t.shape()[1..]),
            };
            let spec = ElementSpec::Tuple(vec![
                ElementSpec::Tensor(row(&x)),
                ElementSpec::Tensor(row(&y)),
            ]);
            let mut g = GraphBuilder::new(&spec);
            let mut pool = vec![
                g.input(&[Part::Index(0)]).unwrap(),
                g.input(&[Part::Index(1)]).unwrap(),
            ];
            for _ in 0..2 + r.below(10) {
                if let Some(v) = step(&mut r, &mut g, &pool) {
                    pool.push(v);
                }
            }
            let last = *pool.last().unwrap();
            let other = pick(&mut r, &pool);
            let graph = g
                .build(Output::Tuple(vec![
                    Output::Value(last),
                    Output::Value(other),
                ]))
                .unwrap();
            let buffers = crate::buffer::BufferPool::new(4);
            let same = |fused: Result<Option<Element>>, steps: Result<Option<Element>>| match (
                fused, steps,
            ) {
                (Ok(a), Ok(b)) => {
                    assert!(same_values(&a, &b), "seed {seed}: {a:?} {b:?} {graph:?}")
                }
                (Err(_), Err(_)) => {}
                (a, b) => panic!("seed {seed}: fused {a:?}, steps {b:?}: {graph:?}"),
            };
            for strict in [false, true] {
                let e = Element::tuple([x.row(0).unwrap(), y.row(0).unwrap()]);
                same(
                    graph.eval(&e, strict, false, Eval::Fused(None)),
                    graph.eval(&e, strict, false, Eval::Steps),
                );
                if graph.commutes_with_batch() {
                    let e = Element::tuple([x.clone(), y.clone()]);
                    same(
                        graph.eval(&e, strict, true, Eval::Fused(Some(&buffers))),
                        graph.eval(&e, strict, true, Eval::Steps),
                    );
                }
            }
        }

        /// A random chain: `x` (of any dtype, maybe flipped) cast to a float type, then
        /// arithmetic with constants of that type on either side, against the step-by-step
        /// evaluation, as a row and as a batch; the batch's size leaves every remainder of
        /// the elements a chain computes at a time.
        fn check_chain(seed: u64) {
            let mut r = Rng::keyed(seed, &[1]);
            let (d0, to) = (
                pick(&mut r, &DTYPES),
                pick(&mut r, &[DType::Float32, DType::Float64]),
            );
            // Small rows (several a block), and rows longer than a block.
            let row_shape = if r.below(4) == 0 {
                vec![30 + r.below(20) as usize, pick(&mut r, &[17, 32, 40])]
            } else {
                vec![1 + r.below(9) as usize, pick(&mut r, &[1, 2, 3, 4, 17])]
            };
            let batch = 1 + r.below(40) as usize;
            let x = values(&mut r, d0, &[&[batch][..], &row_shape].concat());
            let spec = ElementSpec::Tensor(TensorSpec {
                dtype: d0,
                shape: PartialShape::known(&row_shape),
            });
            let mut g = GraphBuilder::new(&spec);
            let mut v = g.input(&[]).unwrap();
            if r.below(2) == 0 {
                let all = |step| Index::Range {
                    start: None,
                    stop: None,
                    step,
                };
                v = g.slice(v, &[all(-1), all(pick(&mut r, &[1, -1]))]).unwrap();
            }
            v = g.cast(v, to).unwrap();
            for _ in 0..1 + r.below(4) {
                let op = pick(
                    &mut r,
                    &[
                        BinaryOp::Add,
                        BinaryOp::Subtract,
                        BinaryOp::Multiply,
                        BinaryOp::Divide,
                    ],
                );
                let c = g.constant(values(&mut r, to, &[])).unwrap();
                let (a, b) = if r.below(2) == 0 { (v, c) } else { (c, v) };
                v = g.binary(op, a, b).unwrap();
            }
            let graph = g.build(Output::Value(v)).unwrap();
            assert_eq!(graph.plan.regions.len(), 1, "{graph:?}");
            let buffers = crate::buffer::BufferPool::new(2);
            // Blocks of a chain that streams as long as they are, or short enough that the
            // batch crosses block boundaries: parts of a run, runs, whole rows.
            let wide = pick(&mut r, &[usize::MAX, 16, 40, 100, 1000]);
            // Each compiled version of the chain loops this CPU can run.
            let versions = [Vectors::Baseline, Vectors::Avx2, Vectors::Avx512];
            for (strict, cap) in [false, true]
                .into_iter()
                .flat_map(|s| versions.map(|v| (s, v)))
            {
                crate::ops::vectors::VECTORS_CAP.set(cap);
                let e = Element::from(x.row(0).unwrap());
                assert!(
                    same_values(
                        &graph.eval(&e, strict, false, Eval::Fused(None)).unwrap(),
                        &graph.eval(&e, strict, false, Eval::Steps).unwrap(),
                    ),
                    "seed {seed}, {cap:?}: {graph:?}"
                );
                let e = Element::from(x.clone());
                let fused = fused::with_wide_cap(wide, || {
                    graph.eval(&e, strict, true, Eval::Fused(Some(&buffers)))
                });
                assert!(
                    same_values(
                        &fused.unwrap(),
                        &graph.eval(&e, strict, true, Eval::Steps).unwrap(),
                    ),
                    "seed {seed}, {cap:?}, blocks of up to {wide}: {graph:?}"
                );
            }
            crate::ops::vectors::VECTORS_CAP.set(Vectors::Avx512);
        }

        /// Flipped rows whose outer axes do not merge (`x[::2, :, ::-1, :]`), in blocks that
        /// end inside an outer axis and across its end, against the step-by-step evaluation.
        #[test]
        fn flipped_rows_across_outer_axes() {
            let spec = ElementSpec::Tensor(TensorSpec {
                dtype: DType::UInt8,
                shape: PartialShape::known(&[6, 4, 5, 3]),
            });
            let mut g = GraphBuilder::new(&spec);
            let x = g.input(&[]).unwrap();
            let step = |step| Index::Range {
                start: None,
                stop: None,
                step,
            };
            let v = g.slice(x, &[step(2), step(1), step(-1), step(1)]).unwrap();
            let mut v = g.cast(v, DType::Float32).unwrap();
            for (op, c) in [(BinaryOp::Add, 1.0f32), (BinaryOp::Multiply, 2.0)] {
                let c = g.constant(Tensor::scalar(c)).unwrap();
                v = g.binary(op, v, c).unwrap();
            }
            let graph = g.build(Output::Value(v)).unwrap();
            let bytes: Vec<u8> = (0..6 * 4 * 5 * 3).map(|i| (i * 37 % 256) as u8).collect();
            let e = Element::from(Tensor::from_vec(bytes, &[6, 4, 5, 3]).unwrap());
            let want = graph.eval(&e, false, false, Eval::Steps).unwrap();
            // A row is 15 values: blocks of every row, of 3 rows, of 5 rows (more than one
            // outer axis holds), and of one.
            for cap in [usize::MAX, 45, 75, 15] {
                let got =
                    fused::with_wide_cap(cap, || graph.eval(&e, false, false, Eval::Fused(None)));
                assert_eq!(got.unwrap(), want, "blocks of up to {cap} values");
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
            #[test]
            fn random_graphs(seed in any::<u64>()) {
                check(seed);
            }

            #[test]
            fn random_chains(seed in any::<u64>()) {
                check_chain(seed);
            }
        }
    }
}
