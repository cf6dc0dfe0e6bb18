//! Fused, blocked evaluation of a graph's elementwise regions.
//!
//! A region is a set of elementwise steps (casts, unary and binary ops, `where`) that depend
//! on the element, whose intermediate values nothing outside the region reads. Its last step
//! (the root) is the only value it makes: the region runs over cache-sized blocks of the
//! root's elements in one loop, each step computing a block of its values into a small
//! buffer that stays in the cache, the root writing straight into the output (a batch
//! buffer from the pool, under `batch`). The values a region reads from outside (the
//! element's tensors, constants, values computed step by step) are strided views: slices,
//! flips, transposes and broadcasting are read in place, not copied first.
//!
//! Two kinds of region skip the step buffers. A chain (a cast of one input to float32 or
//! float64, then additions, subtractions, multiplications and divisions with constants, as
//! `x.astype(np.float32) / 255.0`) computes each piece of about a thousand elements in one
//! loop from its input through the cast and the first arithmetic step into the output, then
//! one loop in place per further step while the piece is in the cache. Another region of two
//! or more steps whose only varying input has 8 bits looks its values up in a table of its
//! results for the 256 bit patterns, which its own steps compute first. Both read a
//! contiguous input in place. A chain also reads its input where it lies when it is
//! contiguous stretches: whole rows of flipped runs (an image flipped left to right, its
//! channels kept) or runs of at least 16 elements, forward or backward. The stretches of a
//! piece are cast straight into the output and combined with the first arithmetic step in
//! the same loop, then each further step applied to the whole piece in place, in loops
//! compiled for the widest vectors the CPU has: per piece, not per stretch, so that each
//! loop runs long on full vectors (a row of W4's images is only 96 values; per row, the
//! loops' set-up and remainders cost as much as their work). A chain that reads its input
//! in place or in stretches has no block buffers, so its blocks are up to 65,536 elements
//! long, each block's set-up paid that much less often. Where a chain's input has 8 bits,
//! its divisions by a constant are multiplications by the constant's reciprocal refined with fused
//! multiply-adds, when the chain so computed gives its bits for all 256 input values, tried
//! for each evaluation of at least 4,096 elements, as a table is made
//! ([`refined`]; why this is exact and fast: [`quotient`](crate::ops::quotient)).
//!
//! Each step computes the same function of the same operand values as the step-by-step
//! evaluation does, element by element; only the order in which elements are computed
//! changes, which no elementwise step can see. So the results are identical, bit for bit,
//! undefined casts included (a block with one makes the whole evaluation report it, as the
//! whole-array cast does). A table holds the values its steps compute for each input value;
//! one with an undefined value is not used (that input value may not occur). The one
//! exception is the sign and payload of a NaN that an operation makes from NaN operands:
//! Rust (as C) leaves them to the compiler, which may keep either operand's NaN when both
//! are NaN, so two loops compiled differently can give NaNs of different bits; both are
//! NaN.

use bytemuck::Pod;

use super::kernels::{self, broadcast_shapes, c_strides, is_supported, Elem, B};
use super::kinds::{BinaryOp, Node, UnaryOp};
use crate::buffer::{BufferMut, BufferPool};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::quotient::{Fma, Reciprocal, Refine};
use crate::ops::vectors::Vectors;
use crate::tensor::Tensor;

/// Elements computed per block: a block of every step's values fits the L1 cache.
const BLOCK: usize = 1024;

/// Elements per block of a chain that reads its input in place or in stretches
/// ([`streams`]): it keeps no block buffers in the cache, so a block is only the unit its
/// set-up (the cursor, where the stretches begin, the call) is paid for.
const WIDE_BLOCK: usize = 1 << 16;

/// [`WIDE_BLOCK`], or less in tests ([`WIDE_CAP`]), so that they cross block boundaries.
fn wide_block() -> usize {
    let wide = WIDE_BLOCK;
    #[cfg(test)]
    let wide = wide.min(WIDE_CAP.get());
    wide
}

#[cfg(test)]
thread_local! {
    /// The most elements a block of a chain that streams has on this thread, for tests.
    static WIDE_CAP: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// `f()` with the blocks of chains that stream on this thread capped at `cap` elements.
#[cfg(test)]
pub(super) fn with_wide_cap<R>(cap: usize, f: impl FnOnce() -> R) -> R {
    WIDE_CAP.set(cap);
    let r = f();
    WIDE_CAP.set(usize::MAX);
    r
}

/// How the evaluation treats a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// Computed on its own, as a whole tensor.
    Step,
    /// A slice or transpose read in place by regions (a strided view, never copied).
    View,
    /// A step of a region, computed block by block when the region's root is reached.
    Member,
    /// The last step of region `k`: where the region runs.
    Root(usize),
}

/// Where a region's step reads an operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Src {
    /// The values of the region's step at this position.
    Step(usize),
    /// The region's input at this position.
    Leaf(usize),
}

/// A region: its steps in evaluation order (the root last), their operands, and the values
/// it reads from outside.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Region {
    pub(super) steps: Vec<usize>,
    pub(super) args: Vec<Vec<Src>>,
    pub(super) leaves: Vec<usize>,
}

/// The roles of a graph's steps and its regions.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Plan {
    pub(super) roles: Vec<Role>,
    pub(super) regions: Vec<Region>,
}

fn is_elementwise(n: &Node) -> bool {
    matches!(
        n,
        Node::Cast(..) | Node::Unary(..) | Node::Binary(..) | Node::Select(..)
    )
}

impl Plan {
    /// The plan for `nodes`, of which `depends` tells which depend on the element and
    /// `outputs` which are the graph's outputs.
    pub(super) fn new(nodes: &[Node], depends: &[bool], outputs: &[bool]) -> Plan {
        let n = nodes.len();
        let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, node) in nodes.iter().enumerate() {
            for v in node.operands() {
                users[v.0].push(i);
            }
        }
        let mut roles = vec![Role::Step; n];
        // The region of each fusible step, numbered from the last.
        let mut region_of: Vec<Option<usize>> = vec![None; n];
        let mut count = 0;
        for i in (0..n).rev() {
            let node = &nodes[i];
            if is_elementwise(node) && depends[i] {
                let first = users[i].first().and_then(|&u| region_of[u]);
                let inside = !outputs[i]
                    && first.is_some()
                    && users[i].iter().all(|&u| region_of[u] == first);
                if inside {
                    roles[i] = Role::Member;
                    region_of[i] = first;
                } else {
                    roles[i] = Role::Root(count);
                    region_of[i] = Some(count);
                    count += 1;
                }
            } else if matches!(node, Node::Slice(..) | Node::Transpose(..))
                && !outputs[i]
                && !users[i].is_empty()
                && users[i]
                    .iter()
                    .all(|&u| region_of[u].is_some() || roles[u] == Role::View)
            {
                roles[i] = Role::View;
            }
        }
        // Regions numbered from the first, steps in order.
        let mut regions: Vec<Region> = (0..count)
            .map(|_| Region {
                steps: Vec::new(),
                args: Vec::new(),
                leaves: Vec::new(),
            })
            .collect();
        let number = |r: usize| count - 1 - r;
        for (i, node) in nodes.iter().enumerate() {
            let Some(r) = region_of[i] else { continue };
            let k = number(r);
            let mut args = Vec::new();
            for v in node.operands() {
                let src = if region_of[v.0] == Some(r) && roles[v.0] == Role::Member {
                    let pos = regions[k].steps.iter().position(|&s| s == v.0);
                    Src::Step(pos.expect("members come before their users"))
                } else {
                    let leaves = &mut regions[k].leaves;
                    let pos = leaves.iter().position(|&l| l == v.0).unwrap_or_else(|| {
                        leaves.push(v.0);
                        leaves.len() - 1
                    });
                    Src::Leaf(pos)
                };
                args.push(src);
            }
            regions[k].steps.push(i);
            regions[k].args.push(args);
            if let Role::Root(_) = roles[i] {
                roles[i] = Role::Root(k);
            }
        }
        Plan { roles, regions }
    }
}

/// A strided view of a tensor: element `offset + sum(i_k * strides[k])` for each index of
/// `shape` (strides in elements).
#[derive(Clone, Debug)]
pub(super) struct View {
    pub(super) base: Tensor,
    pub(super) offset: isize,
    pub(super) shape: Vec<usize>,
    pub(super) strides: Vec<isize>,
}

impl View {
    /// The whole of `t`.
    pub(super) fn of(t: &Tensor) -> View {
        View {
            base: t.clone(),
            offset: 0,
            shape: t.shape().to_vec(),
            strides: c_strides(t.shape()),
        }
    }

    /// The view copied out into a tensor of its own.
    pub(super) fn materialize(&self) -> Result<Tensor> {
        super::kernels::gather(&self.base, self.offset as usize, &self.shape, &self.strides)
    }
}

/// A region input, ready to read block by block.
struct Leaf {
    dtype: DType,
    /// The base tensor's elements as unsigned integers of the dtype's size.
    base: Tensor,
    /// Strides over the merged iteration shape (0 where broadcast).
    strides: Vec<isize>,
    /// The position of the current block's first element.
    pos: isize,
    /// Every element the same (all strides 0).
    scalar: bool,
}

/// An operand of a step, for one block.
#[derive(Clone, Copy)]
enum Arg<'a, T> {
    Slice(&'a [T]),
    Scalar(T),
}

impl<T: Copy> Arg<'_, T> {
    #[inline(always)]
    fn at(&self, i: usize) -> T {
        match self {
            Arg::Slice(s) => s[i],
            Arg::Scalar(v) => *v,
        }
    }
}

/// Runs region `region` of `nodes`: `vals` and `views` hold the values computed so far.
/// `None` where a value has no defined result and `strict` (as the step-by-step kernels).
pub(super) fn run(
    region: &Region,
    nodes: &[Node],
    dtypes: &[DType],
    vals: &[Tensor],
    views: &[Option<View>],
    strict: bool,
    pool: Option<&BufferPool>,
) -> Result<Option<Tensor>> {
    // The region's inputs as views, and the shape of each step.
    let mut inputs: Vec<View> = Vec::with_capacity(region.leaves.len());
    for &l in &region.leaves {
        let mut v = match &views[l] {
            Some(v) => v.clone(),
            None => View::of(&vals[l]),
        };
        if !is_supported(v.base.dtype()) {
            return Err(Error::Pipeline(format!(
                "op graph: {} values cannot be computed",
                v.base.dtype()
            )));
        }
        v.base = v.base.to_aligned()?;
        inputs.push(v);
    }
    let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(region.steps.len());
    for args in &region.args {
        let ss: Vec<&[usize]> = args
            .iter()
            .map(|a| match a {
                Src::Step(k) => shapes[*k].as_slice(),
                Src::Leaf(j) => inputs[*j].shape.as_slice(),
            })
            .collect();
        let s = broadcast_shapes(&ss)?;
        shapes.push(s);
    }
    let shape = shapes.last().expect("a region has a step").clone();
    let n: usize = shape.iter().product();
    if n == 0 {
        // No element to compute: the steps' own values still decide whether a cast is
        // undefined, as they do step by step.
        return run_steps(region, nodes, &inputs, strict);
    }
    let root = *region.steps.last().expect("a region has a step");
    let out_dtype = dtypes[root];
    let size = out_dtype.itemsize();

    // The iteration shape: the root's, with axes of 1 dropped and axes merged where every
    // input steps through them as through one.
    let rank = shape.len();
    let mut strides: Vec<Vec<isize>> = inputs
        .iter()
        .map(|v| {
            let mut st = vec![0isize; rank];
            for (a, (&d, &s)) in v.shape.iter().zip(&v.strides).enumerate() {
                let o = rank - v.shape.len() + a;
                st[o] = if d == 1 { 0 } else { s };
            }
            st
        })
        .collect();
    let mut dims: Vec<usize> = Vec::with_capacity(rank);
    let mut kept: Vec<Vec<isize>> = vec![Vec::with_capacity(rank); inputs.len()];
    for a in 0..rank {
        if shape[a] == 1 {
            continue;
        }
        let merge = !dims.is_empty()
            && strides
                .iter()
                .zip(&kept)
                .all(|(st, k)| *k.last().expect("as many as dims") == st[a] * shape[a] as isize);
        if merge {
            *dims.last_mut().expect("checked") *= shape[a];
            for (st, k) in strides.iter().zip(kept.iter_mut()) {
                *k.last_mut().expect("checked") = st[a];
            }
        } else {
            dims.push(shape[a]);
            for (st, k) in strides.iter().zip(kept.iter_mut()) {
                k.push(st[a]);
            }
        }
    }
    strides = kept;
    // At least two axes: [outer..., mid, inner].
    while dims.len() < 2 {
        dims.insert(0, 1);
        for st in strides.iter_mut() {
            st.insert(0, 0);
        }
    }
    let r = dims.len();
    let mut leaves: Vec<Leaf> = inputs
        .into_iter()
        .zip(strides)
        .map(|(v, st)| Leaf {
            dtype: v.base.dtype(),
            scalar: st.iter().all(|&s| s == 0),
            pos: v.offset,
            base: v.base,
            strides: st,
        })
        .collect();

    // A chain (a cast to floats, then arithmetic with constants) runs as one loop per
    // arithmetic step, the first from the input. Otherwise a region over one varying 8-bit input
    // takes its results from a table of the root's value for each of the input's 256
    // values: one pass over the data too, whatever the steps.
    let chain = chain_input(region, nodes, dtypes, &leaves)
        .map(|j| (j, links(region, nodes, &leaves, leaves[j].dtype, n)));
    let table = match table_input(&leaves, region.steps.len(), n) {
        Some(j) if chain.is_none() => {
            table(region, nodes, dtypes, &leaves, j, strict, size)?.map(|t| (j, t))
        }
        _ => None,
    };
    // The one input those read, where they read it in place when a block of it is
    // contiguous.
    let single = chain.as_ref().map(|c| c.0).or(table.as_ref().map(|t| t.0));

    // The output, and a block buffer per step (the root's is the output) and per input.
    let mut out = match pool {
        Some(p) => p.take(n * size)?,
        None => BufferMut::zeroed(n * size)?,
    };
    let steps_buffered = if single.is_some() {
        0
    } else {
        region.steps.len() - 1
    };
    let mut step_bufs: Vec<Vec<u64>> = vec![vec![0u64; BLOCK]; steps_buffered];
    let mut leaf_bufs: Vec<Vec<u64>> = leaves
        .iter()
        .map(|l| {
            if l.scalar {
                Vec::new()
            } else {
                vec![0u64; BLOCK + 1]
            }
        })
        .collect();

    let (inner, mid) = (dims[r - 1], dims[r - 2]);
    let row = inner * mid;
    // A chain that reads every block of its input in place or in stretches keeps nothing
    // in block buffers: its blocks can be much longer, which pays each one's set-up (the
    // cursor, the stretches) less often.
    let wide = wide_block();
    let budget = match (single, &chain) {
        (Some(j), Some(_)) if streams(&leaves[j], &dims, wide) => wide,
        _ => BLOCK,
    };
    // The cursor: the index of the current block's first element over dims[..r-1] (the
    // inner index is 0 at every block's start unless an inner run is longer than a block).
    let mut idx = vec![0usize; r];
    // Where the stretches a chain reads for a block begin, and a copy of the cursor to find
    // them with.
    let mut starts: Vec<usize> = Vec::new();
    let mut cursor: Vec<usize> = Vec::new();
    let mut done = 0usize;
    while done < n {
        // Whole rows, whole runs of a row, or a part of one run.
        let (block, runs) = if row <= budget {
            let rows = (budget / row).max(1);
            (
                row * rows.min((n - done) / row),
                rows.min((n - done) / row) * mid,
            )
        } else if inner <= budget {
            let runs = (budget / inner).min(mid - idx[r - 2]);
            (runs * inner, runs)
        } else {
            (budget.min(inner - idx[r - 1]), 0)
        };
        // Each input's values for the block (read in place by a chain or a table where
        // they lie side by side, and by a chain where they lie in contiguous stretches).
        let in_place = |leaf: &Leaf| runs == 0 && leaf.strides[r - 1] == 1;
        let stretched = match (single, &chain) {
            (Some(j), Some(_)) if !in_place(&leaves[j]) => {
                stretches(&leaves[j], &dims, &idx, runs, &mut starts, &mut cursor)
            }
            _ => None,
        };
        for (k, (leaf, buf)) in leaves.iter().zip(leaf_bufs.iter_mut()).enumerate() {
            let read_there = in_place(leaf) || stretched.is_some();
            if leaf.scalar || (single == Some(k) && read_there) {
                continue;
            }
            gather_block(leaf, &dims, &idx, block, runs, buf);
        }
        // The steps, the last into the output (or the table's values for the block).
        let mut out_bytes = Some(&mut out.as_mut_slice()[done * size..(done + block) * size]);
        if let (Some(j), Some((len, backward))) = (single, stretched) {
            let leaf = &leaves[j];
            let (_, links) = chain.as_ref().expect("stretches are read by chains");
            let dst = out_bytes.take().expect("not taken yet");
            with_elem!(leaf.dtype, S => {
                let from = Stretches::<S> {
                    src: bytemuck::cast_slice(leaf.base.as_bytes()),
                    starts: &starts,
                    len,
                    backward,
                };
                match links {
                    Links::F32(l) => chain_stretches(&from, l, bytemuck::cast_slice_mut(dst)),
                    Links::F64(l) => chain_stretches(&from, l, bytemuck::cast_slice_mut(dst)),
                }
            });
            done += block;
            advance(&mut leaves, &dims, &mut idx, block, runs);
            continue;
        }
        if let Some(j) = single {
            let leaf = &leaves[j];
            let width = leaf.dtype.itemsize();
            let values: &[u8] = if in_place(leaf) {
                let at = leaf.pos as usize * width;
                &leaf.base.as_bytes()[at..at + block * width]
            } else {
                &bytemuck::cast_slice::<u64, u8>(&leaf_bufs[j])[..block * width]
            };
            let dst = out_bytes.take().expect("not taken yet");
            if let Some((_, links)) = &chain {
                with_elem!(leaf.dtype, S => {
                    let from: &[S] = bytemuck::cast_slice(values);
                    match links {
                        Links::F32(l) => chain_block(from, l, bytemuck::cast_slice_mut(dst)),
                        Links::F64(l) => chain_block(from, l, bytemuck::cast_slice_mut(dst)),
                    }
                });
            } else if let Some((_, table)) = &table {
                match size {
                    1 => look_up::<u8>(table, values, dst),
                    2 => look_up::<u16>(table, values, dst),
                    4 => look_up::<u32>(table, values, dst),
                    _ => look_up::<u64>(table, values, dst),
                }
            }
            done += block;
            advance(&mut leaves, &dims, &mut idx, block, runs);
            continue;
        }
        for (k, (&node_ix, args)) in region.steps.iter().zip(&region.args).enumerate() {
            let last = k + 1 == region.steps.len();
            let split = k.min(step_bufs.len());
            let (before, rest) = step_bufs.split_at_mut(split);
            let dst: &mut [u8] = if last {
                out_bytes.take().expect("the root is last")
            } else {
                bytemuck::cast_slice_mut(&mut rest[0][..])
            };
            let ctx = Ctx {
                steps: before,
                leaves: &leaves,
                leaf_bufs: &leaf_bufs,
                dtypes,
                region,
                n: block,
            };
            if !compute(&nodes[node_ix], args, &ctx, dst, dtypes[node_ix], strict)? {
                return Ok(None);
            }
        }
        // Move the cursor past the block.
        done += block;
        advance(&mut leaves, &dims, &mut idx, block, runs);
    }
    Tensor::new(out_dtype, &shape, out.freeze()).map(Some)
}

/// The float types a chain computes in.
trait Float: Elem + Fma {
    /// `x` cast to this type, as the chain's cast step casts it.
    fn cast<S: Elem>(x: S) -> Self;
}

impl Float for f32 {
    #[inline(always)]
    fn cast<S: Elem>(x: S) -> f32 {
        x.to_f32()
    }
}

impl Float for f64 {
    #[inline(always)]
    fn cast<S: Elem>(x: S) -> f64 {
        x.to_f64()
    }
}

/// How a step of a chain combines the value so far with its constant.
#[derive(Clone, Copy, Debug)]
enum Link<T> {
    /// `value op constant`.
    Right(BinaryOp, T),
    /// `constant op value`.
    Left(BinaryOp, T),
    /// `value / constant`, by the constant's reciprocal refined with FMAs
    /// ([`Reciprocal`]): only in [`Chain::refined`], and only run by loops compiled with FMA.
    Reciprocal(Reciprocal<T>),
}

/// A chain's steps after the cast: as the graph states them, and, where it was proven to
/// give the same bits for every value the input can hold, with each division by a
/// constant made a multiplication by its reciprocal, refined ([`refined`]).
struct Chain<T> {
    plain: Vec<Link<T>>,
    refined: Option<Vec<Link<T>>>,
}

impl<T> Chain<T> {
    /// The links the loops compiled for `vectors` run: the refined ones need FMA.
    fn for_vectors(&self, vectors: Vectors) -> &[Link<T>] {
        match (&self.refined, vectors) {
            (Some(refined), Vectors::Avx2 | Vectors::Avx512) => refined,
            _ => &self.plain,
        }
    }
}

/// The steps of a chain, as its float type.
enum Links {
    F32(Chain<f32>),
    F64(Chain<f64>),
}

/// The varying input of a region that is a chain: a cast of that input (of any dtype) to
/// float32 or float64, then additions, subtractions, multiplications and divisions of the
/// value so far with constants (values the same for every element), as
/// `(x.astype(np.float32) + 8.0) / 255.0`. `None` for any other region.
fn chain_input(
    region: &Region,
    nodes: &[Node],
    dtypes: &[DType],
    leaves: &[Leaf],
) -> Option<usize> {
    let (&first, rest) = region.steps.split_first()?;
    let Node::Cast(_, to) = nodes[first] else {
        return None;
    };
    let Src::Leaf(j) = region.args[0][0] else {
        return None;
    };
    if !matches!(to, DType::Float32 | DType::Float64) || leaves[j].scalar {
        return None;
    }
    let constant =
        |a: &Src| matches!(*a, Src::Leaf(l) if leaves[l].scalar && leaves[l].dtype == to);
    for (k, (&step, args)) in rest.iter().zip(&region.args[1..]).enumerate() {
        let Node::Binary(op, ..) = nodes[step] else {
            return None;
        };
        let arithmetic = matches!(
            op,
            BinaryOp::Add | BinaryOp::Subtract | BinaryOp::Multiply | BinaryOp::Divide
        );
        // The value so far (step k of the region) and a constant, either way round.
        let on_previous = match args.as_slice() {
            [Src::Step(p), c] | [c, Src::Step(p)] => *p == k && constant(c),
            _ => false,
        };
        if !arithmetic || !on_previous || dtypes[step] != to {
            return None;
        }
    }
    Some(j)
}

/// The links of a region [`chain_input`] accepted, whose varying input is `input`, for a
/// block of `n` elements.
fn links(region: &Region, nodes: &[Node], leaves: &[Leaf], input: DType, n: usize) -> Links {
    fn typed<T: Pod>(region: &Region, nodes: &[Node], leaves: &[Leaf]) -> Vec<Link<T>> {
        let constant = |src: Src| match src {
            Src::Leaf(l) => {
                let all: &[T] = bytemuck::cast_slice(leaves[l].base.as_bytes());
                all[leaves[l].pos as usize]
            }
            Src::Step(_) => unreachable!("a chain's constants are inputs"),
        };
        region.steps[1..]
            .iter()
            .zip(&region.args[1..])
            .map(|(&step, args)| {
                let Node::Binary(op, ..) = nodes[step] else {
                    unreachable!("a chain's steps after the cast are binary")
                };
                match args[..] {
                    [Src::Step(_), c] => Link::Right(op, constant(c)),
                    [c, _] => Link::Left(op, constant(c)),
                    _ => unreachable!("binary steps have two operands"),
                }
            })
            .collect()
    }
    fn chain<T: Float>(plain: Vec<Link<T>>, input: DType, n: usize) -> Chain<T> {
        // The proof costs 256 evaluations of the chain, as a table does.
        let refined = if n >= TABLE_MIN_LEN {
            with_elem_or!(input, S => refined::<S, T>(&plain), None)
        } else {
            None
        };
        Chain { plain, refined }
    }
    let float32 = match &nodes[region.steps[0]] {
        Node::Cast(_, to) => *to == DType::Float32,
        _ => unreachable!("a chain starts with a cast"),
    };
    if float32 {
        Links::F32(chain(typed(region, nodes, leaves), input, n))
    } else {
        Links::F64(chain(typed(region, nodes, leaves), input, n))
    }
}

/// `links` with each division by a constant (`value / c`) done by `c`'s reciprocal refined
/// once, or failing that twice, where the chain then gives the bits it gives with its
/// divisions for every value of its input: all 256 of an 8-bit input, each cast and run
/// through both chains here (a proof by exhaustion; see the [`quotient`](super::quotient)
/// module for why a refined quotient is usually the division's, and why it is not
/// assumed). `None` for an input of more than 8 bits, a chain without such a division, or
/// one where neither refinement gives the same bits.
fn refined<S: Elem, T: Float>(links: &[Link<T>]) -> Option<Vec<Link<T>>> {
    if std::mem::size_of::<S>() != 1
        || !links
            .iter()
            .any(|l| matches!(l, Link::Right(BinaryOp::Divide, _)))
    {
        return None;
    }
    let bytes: [u8; 256] = std::array::from_fn(|b| b as u8);
    let inputs: &[S] = bytemuck::cast_slice(&bytes);
    let run = |links: &[Link<T>]| -> Vec<T> {
        let mut out: Vec<T> = inputs.iter().map(|&x| T::cast(x)).collect();
        links_on(links, &mut out);
        out
    };
    let want = run(links);
    // The same bits (NaNs and signed zeros included), compared where they lie.
    let same = |a: &[T]| bytemuck::cast_slice::<T, u8>(a) == bytemuck::cast_slice::<T, u8>(&want);
    [Refine::Once, Refine::Twice]
        .into_iter()
        .find_map(|refine| {
            let candidate: Vec<Link<T>> = links
                .iter()
                .map(|&l| match l {
                    Link::Right(BinaryOp::Divide, c) => {
                        Link::Reciprocal(Reciprocal::new(c, refine))
                    }
                    other => other,
                })
                .collect();
            same(&run(&candidate)).then_some(candidate)
        })
}

/// Runs `$each` (a loop macro) with the function of `$link`'s op and side, written out for
/// each arithmetic op so that each loop is compiled (and vectorized) on its own. `$x` is the
/// element, `$value` the value so far it makes.
macro_rules! per_op {
    ($link:expr, $each:ident, $x:ident => $value:expr) => {
        match $link {
            Link::Right(BinaryOp::Add, c) => $each!(|$x| T::binary(BinaryOp::Add, $value, c)),
            Link::Left(BinaryOp::Add, c) => $each!(|$x| T::binary(BinaryOp::Add, c, $value)),
            Link::Right(BinaryOp::Subtract, c) => {
                $each!(|$x| T::binary(BinaryOp::Subtract, $value, c))
            }
            Link::Left(BinaryOp::Subtract, c) => {
                $each!(|$x| T::binary(BinaryOp::Subtract, c, $value))
            }
            Link::Right(BinaryOp::Multiply, c) => {
                $each!(|$x| T::binary(BinaryOp::Multiply, $value, c))
            }
            Link::Left(BinaryOp::Multiply, c) => {
                $each!(|$x| T::binary(BinaryOp::Multiply, c, $value))
            }
            Link::Right(BinaryOp::Divide, c) => {
                $each!(|$x| T::binary(BinaryOp::Divide, $value, c))
            }
            Link::Left(BinaryOp::Divide, c) => {
                $each!(|$x| T::binary(BinaryOp::Divide, c, $value))
            }
            Link::Right(op, c) => $each!(|$x| T::binary(op, $value, c)),
            Link::Left(op, c) => $each!(|$x| T::binary(op, c, $value)),
            Link::Reciprocal(r) => match r.refine() {
                Refine::Once => $each!(|$x| r.once($value)),
                Refine::Twice => $each!(|$x| r.twice($value)),
            },
        }
    };
}

/// A chain over `from` into `out`: each element cast as the cast step casts it and
/// combined with the first link's constant in one loop, then each further link applied to
/// the block in place (while it is in the cache), by the same functions the step-by-step
/// evaluation applies. Compiled for the baseline, and for AVX2 with FMA, where a chain's
/// divisions can be refined multiplications ([`Chain::refined`]); wider vectors alone did
/// not make the seed's `x.astype(np.float32) / 255.0` faster, its divisions and stores
/// being the cost.
fn chain_block<S: Elem, T: Float>(from: &[S], chain: &Chain<T>, out: &mut [T]) {
    let vectors = Vectors::widest();
    let links = chain.for_vectors(vectors);
    #[cfg(target_arch = "x86_64")]
    if vectors >= Vectors::Avx2 {
        #[target_feature(enable = "avx2,fma")]
        fn avx2<S: Elem, T: Float>(from: &[S], links: &[Link<T>], out: &mut [T]) {
            chain_block_here(from, links, out);
        }
        // SAFETY: `avx2` is `chain_block_here` compiled to use AVX2 and FMA instructions,
        // and the CPU has them (`widest` checked: its AVX-512 level has both too).
        #[allow(unsafe_code)]
        return unsafe { avx2(from, links, out) };
    }
    chain_block_here(from, links, out);
}

/// [`chain_block`]'s loops, inlined where called: for each piece of up to [`BLOCK`]
/// elements, each element cast and combined with the first link's constant in one loop,
/// then each further link applied to the piece in place while it is in the cache.
#[inline(always)]
fn chain_block_here<S: Elem, T: Float>(from: &[S], links: &[Link<T>], out: &mut [T]) {
    let (first, rest) = first_link(links);
    for (out, from) in out.chunks_mut(BLOCK).zip(from.chunks(BLOCK)) {
        // The cast and the first link, from the input.
        macro_rules! cast_with {
            ($f:expr) => {
                cast_into(from, out, $f)
            };
        }
        match first {
            Some(first) => per_op!(first, cast_with, x => T::cast(x)),
            None => cast_with!(|x| T::cast(x)),
        }
        links_on(rest, out);
    }
}

/// A chain's first link, which its loops apply as they cast, and the others.
fn first_link<T: Copy>(links: &[Link<T>]) -> (Option<Link<T>>, &[Link<T>]) {
    match links.split_first() {
        Some((&first, rest)) => (Some(first), rest),
        None => (None, links),
    }
}

/// `from` into `out`, each element through `f`.
#[inline(always)]
fn cast_into<S: Elem, T: Float>(from: &[S], out: &mut [T], f: impl Fn(S) -> T) {
    for (o, &x) in out.iter_mut().zip(from) {
        *o = f(x);
    }
}

/// Every link of a chain applied to `values` in place, in order.
#[inline(always)]
fn links_on<T: Float>(links: &[Link<T>], values: &mut [T]) {
    for &link in links {
        link_in_place(link, values);
    }
}

/// Stretches of a chain's input, each `len` contiguous elements, that make a block: each
/// read forward, or backward by runs of `backward` elements ([`stretches`]).
struct Stretches<'a, S> {
    /// The input's base tensor, as elements.
    src: &'a [S],
    /// Where each stretch begins in `src`.
    starts: &'a [usize],
    len: usize,
    backward: Option<usize>,
}

/// A chain over stretches of its input into `out`, with no block buffer: the stretches
/// cast straight into the output, in order or by runs in reverse order, and every link
/// applied to them in place while they are in the cache ([`chain_stretches_here`]). Runs
/// compiled for the widest [`Vectors`] the CPU has.
fn chain_stretches<S: Elem, T: Float>(from: &Stretches<'_, S>, chain: &Chain<T>, out: &mut [T]) {
    let vectors = Vectors::widest();
    let links = chain.for_vectors(vectors);
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma")]
        fn avx512<S: Elem, T: Float>(from: &Stretches<'_, S>, links: &[Link<T>], out: &mut [T]) {
            chain_stretches_here(from, links, out);
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2<S: Elem, T: Float>(from: &Stretches<'_, S>, links: &[Link<T>], out: &mut [T]) {
            chain_stretches_here(from, links, out);
        }
        match vectors {
            // SAFETY: `avx512` is `chain_stretches_here` compiled to use AVX-512 F, BW, VL
            // and DQ and FMA instructions, and the CPU has them (`widest` checked).
            #[allow(unsafe_code)]
            Vectors::Avx512 => return unsafe { avx512(from, links, out) },
            // SAFETY: as above, for AVX2 and FMA.
            #[allow(unsafe_code)]
            Vectors::Avx2 => return unsafe { avx2(from, links, out) },
            Vectors::Baseline => {}
        }
    }
    chain_stretches_here(from, links, out);
}

/// [`chain_stretches`]'s loops, inlined into each compiled version: the stretches of a
/// piece of about [`BLOCK`] elements cast into the output (each forward, or by runs in
/// reverse order) and combined with the first link's constant in the same loop, then every
/// further link applied to the whole piece in place while it is in the cache, in loops long
/// enough that their vectors are full for most of each.
#[inline(always)]
fn chain_stretches_here<S: Elem, T: Float>(
    from: &Stretches<'_, S>,
    links: &[Link<T>],
    out: &mut [T],
) {
    let per_piece = (BLOCK / from.len).max(1);
    let (first, rest) = first_link(links);
    for (piece, starts) in out
        .chunks_mut(per_piece * from.len)
        .zip(from.starts.chunks(per_piece))
    {
        macro_rules! cast_with {
            ($f:expr) => {
                cast_stretches(from, starts, piece, $f)
            };
        }
        match first {
            Some(first) => per_op!(first, cast_with, x => T::cast(x)),
            None => cast_with!(|x| T::cast(x)),
        }
        links_on(rest, piece);
    }
}

/// The stretches beginning at `starts` of `from` into `piece`, each element through `f`
/// (the cast, and the first link): forward, or by runs in reverse order.
#[inline(always)]
fn cast_stretches<S: Elem, T: Float>(
    from: &Stretches<'_, S>,
    starts: &[usize],
    piece: &mut [T],
    f: impl Fn(S) -> T,
) {
    for (d, &lo) in piece.chunks_exact_mut(from.len).zip(starts) {
        let s = &from.src[lo..lo + from.len];
        match from.backward {
            None => cast_into(s, d, &f),
            Some(1) => flipped::<S, T, 1>(s, d, &f),
            Some(2) => flipped::<S, T, 2>(s, d, &f),
            Some(3) => flipped::<S, T, 3>(s, d, &f),
            Some(4) => flipped::<S, T, 4>(s, d, &f),
            Some(run) => {
                for (to, from) in d.chunks_exact_mut(run).zip(s.chunks_exact(run).rev()) {
                    for (o, &x) in to.iter_mut().zip(from) {
                        *o = f(x);
                    }
                }
            }
        }
    }
}

/// The runs of `N` elements of `src` into `dst` in reverse order, each element through `f`.
#[inline(always)]
fn flipped<S: Elem, T: Float, const N: usize>(src: &[S], dst: &mut [T], f: &impl Fn(S) -> T) {
    for (to, from) in dst.chunks_exact_mut(N).zip(src.chunks_exact(N).rev()) {
        let from: &[S; N] = from.try_into().expect("N elements");
        let to: &mut [T; N] = to.try_into().expect("N elements");
        for (o, &x) in to.iter_mut().zip(from) {
            *o = f(x);
        }
    }
}

/// `link` applied to each of `out`'s values in place.
#[inline(always)]
fn link_in_place<T: Elem + Fma>(link: Link<T>, out: &mut [T]) {
    macro_rules! in_place {
        ($f:expr) => {{
            let f = $f;
            for o in out.iter_mut() {
                *o = f(*o);
            }
        }};
    }
    per_op!(link, in_place, x => x);
}

/// Regions of fewer steps compute their values directly (a single cast or arithmetic step
/// runs as fast as a table look-up).
const TABLE_MIN_STEPS: usize = 2;
/// Nor does a table pay for fewer elements than this (it costs 256 evaluations).
const TABLE_MIN_LEN: usize = 4096;

/// The input whose 256 values a table of the region's results is indexed by: the region's
/// only varying input (the others are the same for every element), of 8 bits, for a region
/// of enough steps and elements. `None` where the region computes block by block.
fn table_input(leaves: &[Leaf], steps: usize, n: usize) -> Option<usize> {
    if steps < TABLE_MIN_STEPS || n < TABLE_MIN_LEN {
        return None;
    }
    let mut varying = leaves.iter().enumerate().filter(|(_, l)| !l.scalar);
    let (j, leaf) = varying.next()?;
    let eight_bits = matches!(leaf.dtype, DType::UInt8 | DType::Int8);
    (eight_bits && varying.next().is_none()).then_some(j)
}

/// The root's value (`size` bytes) for each of the 256 bit patterns of the region's 8-bit
/// input `j`, in pattern order, computed by the region's own steps over a block of the 256
/// values. The element for which a pattern is the input then has exactly the table's value:
/// every step is elementwise and the other inputs the same for every element. `None` where
/// a value is undefined and `strict`: that pattern may not occur in the data, so the caller
/// computes block by block, which reports an undefined value only where one occurs.
fn table(
    region: &Region,
    nodes: &[Node],
    dtypes: &[DType],
    leaves: &[Leaf],
    j: usize,
    strict: bool,
    size: usize,
) -> Result<Option<Vec<u64>>> {
    const KEYS: usize = 256;
    let mut leaf_bufs: Vec<Vec<u64>> = vec![Vec::new(); leaves.len()];
    leaf_bufs[j] = vec![0u64; KEYS / 8];
    for (k, b) in bytemuck::cast_slice_mut::<u64, u8>(&mut leaf_bufs[j])
        .iter_mut()
        .enumerate()
    {
        *b = k as u8;
    }
    let mut step_bufs: Vec<Vec<u64>> = vec![vec![0u64; KEYS]; region.steps.len() - 1];
    let mut values = vec![0u64; KEYS * size / 8];
    let mut root = Some(bytemuck::cast_slice_mut::<u64, u8>(&mut values));
    for (k, (&node_ix, args)) in region.steps.iter().zip(&region.args).enumerate() {
        let last = k + 1 == region.steps.len();
        let (before, rest) = step_bufs.split_at_mut(k.min(region.steps.len() - 1));
        let dst: &mut [u8] = if last {
            root.take().expect("the root is last")
        } else {
            bytemuck::cast_slice_mut(&mut rest[0][..])
        };
        let ctx = Ctx {
            steps: before,
            leaves,
            leaf_bufs: &leaf_bufs,
            dtypes,
            region,
            n: KEYS,
        };
        if !compute(&nodes[node_ix], args, &ctx, dst, dtypes[node_ix], strict)? {
            return Ok(None);
        }
    }
    Ok(Some(values))
}

/// `dst` (values of `U`'s size) from `table` (256 of them) at `keys` (8-bit values).
fn look_up<U: Pod>(table: &[u64], keys: &[u8], dst: &mut [u8]) {
    let table: &[U; 256] = bytemuck::cast_slice::<u64, U>(table)[..256]
        .try_into()
        .expect("256 values");
    let dst: &mut [U] = bytemuck::cast_slice_mut(dst);
    for (d, &k) in dst.iter_mut().zip(keys) {
        *d = table[usize::from(k)];
    }
}

/// The region step by step, each step a whole array (for an empty output, whose steps may
/// still have values of their own under broadcasting).
fn run_steps(
    region: &Region,
    nodes: &[Node],
    inputs: &[View],
    strict: bool,
) -> Result<Option<Tensor>> {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(View::materialize)
        .collect::<Result<_>>()?;
    let mut done: Vec<Tensor> = Vec::with_capacity(region.steps.len());
    for (&node_ix, args) in region.steps.iter().zip(&region.args) {
        let get = |src: &Src| match *src {
            Src::Step(k) => &done[k],
            Src::Leaf(j) => &leaves[j],
        };
        let t = match &nodes[node_ix] {
            Node::Cast(_, to) => match kernels::cast(get(&args[0]), *to, strict)? {
                Some(t) => t,
                None => return Ok(None),
            },
            Node::Unary(op, _) => kernels::unary(*op, get(&args[0]))?,
            Node::Binary(op, _, _) => kernels::binary(*op, get(&args[0]), get(&args[1]))?,
            Node::Select(..) => kernels::select(get(&args[0]), get(&args[1]), get(&args[2]))?,
            _ => unreachable!("regions hold elementwise steps only"),
        };
        done.push(t);
    }
    Ok(done.pop())
}

/// What a step reads for one block.
struct Ctx<'a> {
    steps: &'a [Vec<u64>],
    leaves: &'a [Leaf],
    leaf_bufs: &'a [Vec<u64>],
    dtypes: &'a [DType],
    region: &'a Region,
    n: usize,
}

impl Ctx<'_> {
    fn dtype(&self, src: Src) -> DType {
        match src {
            Src::Step(k) => self.dtypes[self.region.steps[k]],
            Src::Leaf(j) => self.leaves[j].dtype,
        }
    }

    fn arg<T: Pod>(&self, src: Src) -> Arg<'_, T> {
        match src {
            Src::Step(k) => Arg::Slice(&bytemuck::cast_slice::<u64, T>(&self.steps[k])[..self.n]),
            Src::Leaf(j) => {
                let leaf = &self.leaves[j];
                if leaf.scalar {
                    let all: &[T] = bytemuck::cast_slice(leaf.base.as_bytes());
                    Arg::Scalar(all[leaf.pos as usize])
                } else {
                    Arg::Slice(&bytemuck::cast_slice::<u64, T>(&self.leaf_bufs[j])[..self.n])
                }
            }
        }
    }
}

/// One step over a block into `dst` (the bytes of `n` values of `dtype`); `false` where a
/// value is undefined and `strict`.
fn compute(
    node: &Node,
    args: &[Src],
    ctx: &Ctx<'_>,
    dst: &mut [u8],
    dtype: DType,
    strict: bool,
) -> Result<bool> {
    let n = ctx.n;
    match node {
        Node::Cast(_, to) => {
            let from = ctx.dtype(args[0]);
            with_elem!(from, S => {
                let x = ctx.arg::<S>(args[0]);
                with_elem!(*to, D => {
                    let out = &mut bytemuck::cast_slice_mut::<u8, D>(dst)[..n];
                    let checks = strict && from.kind() == 'f' && matches!(to.kind(), 'i' | 'u');
                    return Ok(cast_block::<S, D>(x, out, checks));
                })
            })
        }
        Node::Unary(op, _) => {
            let from = ctx.dtype(args[0]);
            with_elem!(from, T => {
                let x = ctx.arg::<T>(args[0]);
                let to_bool = matches!(
                    op,
                    UnaryOp::IsNan | UnaryOp::IsInf | UnaryOp::IsFinite | UnaryOp::LogicalNot
                );
                if to_bool {
                    let out = &mut bytemuck::cast_slice_mut::<u8, B>(dst)[..n];
                    unary_bool_block(*op, x, out);
                } else {
                    let out = &mut bytemuck::cast_slice_mut::<u8, T>(dst)[..n];
                    unary_block(*op, x, out);
                }
            })
        }
        Node::Binary(op, _, _) => {
            let from = ctx.dtype(args[0]);
            with_elem!(from, T => {
                let (a, b) = (ctx.arg::<T>(args[0]), ctx.arg::<T>(args[1]));
                if op.is_comparison() {
                    let out = &mut bytemuck::cast_slice_mut::<u8, B>(dst)[..n];
                    compare_block(*op, a, b, out);
                } else {
                    let out = &mut bytemuck::cast_slice_mut::<u8, T>(dst)[..n];
                    binary_block(*op, a, b, out);
                }
            })
        }
        Node::Select(..) => {
            let c = ctx.arg::<B>(args[0]);
            with_elem!(dtype, T => {
                let (a, b) = (ctx.arg::<T>(args[1]), ctx.arg::<T>(args[2]));
                let out = &mut bytemuck::cast_slice_mut::<u8, T>(dst)[..n];
                for (i, o) in out.iter_mut().enumerate() {
                    *o = if c.at(i).is_nonzero() { a.at(i) } else { b.at(i) };
                }
            })
        }
        _ => unreachable!("regions hold elementwise steps only"),
    }
    Ok(true)
}

fn cast_block<S: Elem, D: Elem>(x: Arg<'_, S>, out: &mut [D], checks: bool) -> bool {
    match x {
        Arg::Scalar(v) => {
            if checks && D::from_wide(v.wide()).is_none() {
                return false;
            }
            out.fill(D::from_wide_saturating(v.wide()));
        }
        Arg::Slice(s) => {
            if checks && !s.iter().all(|&v| D::from_wide(v.wide()).is_some()) {
                return false;
            }
            for (o, &v) in out.iter_mut().zip(s) {
                *o = D::from_wide_saturating(v.wide());
            }
        }
    }
    true
}

fn unary_block<T: Elem>(op: UnaryOp, x: Arg<'_, T>, out: &mut [T]) {
    match x {
        Arg::Scalar(v) => out.fill(T::unary(op, v)),
        Arg::Slice(s) => {
            // One loop per op, so that each is compiled (and vectorized) on its own.
            macro_rules! per_op {
                ($($o:ident),*) => {
                    match op {
                        $(UnaryOp::$o => out.iter_mut().zip(s).for_each(|(o, &v)| *o = T::unary(UnaryOp::$o, v)),)*
                        _ => out.iter_mut().zip(s).for_each(|(o, &v)| *o = T::unary(op, v)),
                    }
                };
            }
            per_op!(Negative, Abs, Square, Sqrt, Floor, Ceil, Rint);
        }
    }
}

fn unary_bool_block<T: Elem>(op: UnaryOp, x: Arg<'_, T>, out: &mut [B]) {
    let f = |a: T| {
        B(u8::from(match op {
            UnaryOp::IsNan => a.is_nan(),
            UnaryOp::IsInf => a.is_inf(),
            UnaryOp::IsFinite => !a.is_nan() && !a.is_inf(),
            _ => !a.is_nonzero(),
        }))
    };
    for (i, o) in out.iter_mut().enumerate() {
        *o = f(x.at(i));
    }
}

fn compare_block<T: Elem>(op: BinaryOp, a: Arg<'_, T>, b: Arg<'_, T>, out: &mut [B]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = kernels::compare(op, a.at(i), b.at(i));
    }
}

fn binary_block<T: Elem>(op: BinaryOp, a: Arg<'_, T>, b: Arg<'_, T>, out: &mut [T]) {
    // One loop per op and operand form, so that each is compiled (and vectorized) on its own.
    macro_rules! per_op {
        ($($o:ident),*) => {
            match op {
                $(BinaryOp::$o => zip(a, b, out, |p, q| T::binary(BinaryOp::$o, p, q)),)*
                _ => zip(a, b, out, |p, q| T::binary(op, p, q)),
            }
        };
    }
    per_op!(Add, Subtract, Multiply, Divide, Maximum, Minimum);
}

#[inline(always)]
fn zip<T: Copy>(a: Arg<'_, T>, b: Arg<'_, T>, out: &mut [T], f: impl Fn(T, T) -> T) {
    match (a, b) {
        (Arg::Slice(x), Arg::Slice(y)) => {
            for ((o, &p), &q) in out.iter_mut().zip(x).zip(y) {
                *o = f(p, q);
            }
        }
        (Arg::Slice(x), Arg::Scalar(q)) => {
            for (o, &p) in out.iter_mut().zip(x) {
                *o = f(p, q);
            }
        }
        (Arg::Scalar(p), Arg::Slice(y)) => {
            for (o, &q) in out.iter_mut().zip(y) {
                *o = f(p, q);
            }
        }
        (Arg::Scalar(p), Arg::Scalar(q)) => out.fill(f(p, q)),
    }
}

/// A block of `block` elements of `leaf` from the cursor `idx`, into `buf`: `runs` runs of
/// `dims[r-1]` elements (0: a part of one run).
fn gather_block(
    leaf: &Leaf,
    dims: &[usize],
    idx: &[usize],
    block: usize,
    runs: usize,
    buf: &mut [u64],
) {
    match leaf.dtype.itemsize() {
        1 => gather_as::<u8>(leaf, dims, idx, block, runs, buf),
        2 => gather_as::<u16>(leaf, dims, idx, block, runs, buf),
        4 => gather_as::<u32>(leaf, dims, idx, block, runs, buf),
        _ => gather_as::<u64>(leaf, dims, idx, block, runs, buf),
    }
}

fn gather_as<U: Pod + Default>(
    leaf: &Leaf,
    dims: &[usize],
    idx: &[usize],
    block: usize,
    runs: usize,
    buf: &mut [u64],
) {
    let src: &[U] = bytemuck::cast_slice(leaf.base.as_bytes());
    let dst: &mut [U] = &mut bytemuck::cast_slice_mut::<u64, U>(buf)[..block];
    let r = dims.len();
    let (inner, s_in) = (dims[r - 1], leaf.strides[r - 1]);
    if runs == 0 {
        let p = leaf.pos;
        copy_run(src, p, s_in, dst);
        return;
    }
    // Whole rows whose runs tile one contiguous stretch backwards (a flip of an image's
    // columns, its channels kept): each row one slice, its runs copied in reverse order.
    let mid = dims[r - 2];
    let s_mid = leaf.strides[r - 2];
    if flipped_rows(leaf, dims, idx, runs) {
        let row = mid * inner;
        let mut idx = idx.to_vec();
        let mut p = leaf.pos;
        for d in dst.chunks_exact_mut(row) {
            // The row's lowest element is its last run's first.
            let lo = (p + s_mid * (mid as isize - 1)) as usize;
            let s = &src[lo..lo + row];
            match inner {
                1 => flip_runs::<U, 1>(s, d),
                2 => flip_runs::<U, 2>(s, d),
                3 => flip_runs::<U, 3>(s, d),
                4 => flip_runs::<U, 4>(s, d),
                _ => {
                    for (to, from) in d.chunks_exact_mut(inner).zip(s.chunks_exact(inner).rev()) {
                        to.copy_from_slice(from);
                    }
                }
            }
            // The next row, carrying into the outer axes.
            p += next_row(&mut idx, dims, &leaf.strides);
        }
        return;
    }
    // Runs of the inner axis, along the middle axis and carrying into the outer ones.
    let mut idx = idx.to_vec();
    let mut p = leaf.pos;
    let mut o = 0;
    for _ in 0..runs {
        match (inner, s_in) {
            (3, 1) => copy_n::<U, 3>(src, p, dst, o),
            (4, 1) => copy_n::<U, 4>(src, p, dst, o),
            (1, _) => dst[o] = src[p as usize],
            _ => copy_run(src, p, s_in, &mut dst[o..o + inner]),
        }
        o += inner;
        idx[r - 2] += 1;
        p += s_mid;
        if idx[r - 2] == dims[r - 2] {
            // Carry: the next row.
            idx[r - 2] = 0;
            p += next_row(&mut idx, dims, &leaf.strides) - s_mid * dims[r - 2] as isize;
        }
    }
}

/// Whether a block of `runs` runs of `leaf` from the cursor `idx` is whole rows whose runs
/// tile one contiguous stretch backwards (a flip of an image's columns, its channels kept):
/// contiguous runs, each row's runs in reverse order of memory.
fn flipped_rows(leaf: &Leaf, dims: &[usize], idx: &[usize], runs: usize) -> bool {
    let r = dims.len();
    let (inner, mid) = (dims[r - 1], dims[r - 2]);
    runs > 0
        && leaf.strides[r - 1] == 1
        && leaf.strides[r - 2] == -(inner as isize)
        && idx[r - 2] == 0
        && runs % mid == 0
}

/// Whether a chain reads every block of `leaf` (over the iteration shape `dims`) in place
/// or in stretches ([`stretches`]) when its blocks are of up to `budget` elements, so that
/// it never gathers a block into a buffer: whole rows of flipped runs, runs of at least
/// [`RUN_MIN`] elements forward or backward, or parts of one forward run longer than a
/// block.
fn streams(leaf: &Leaf, dims: &[usize], budget: usize) -> bool {
    let r = dims.len();
    let (inner, mid) = (dims[r - 1], dims[r - 2]);
    let (s_in, s_mid) = (leaf.strides[r - 1], leaf.strides[r - 2]);
    let flipped_rows = s_in == 1 && s_mid == -(inner as isize);
    let runs = inner >= RUN_MIN && s_in.abs() == 1;
    if inner * mid <= budget {
        // Blocks of whole rows.
        flipped_rows || runs
    } else if inner <= budget {
        // Blocks of whole runs of one row.
        runs
    } else {
        // Parts of one run, read in place only forward.
        s_in == 1
    }
}

/// Runs shorter than this are not read one by one by a chain (a call per run costs more
/// than gathering them).
const RUN_MIN: usize = 16;

/// How a chain reads the block of `runs` runs of `leaf` from the cursor `idx` where its
/// elements lie in contiguous stretches: `Some((len, backward))`, the stretches' length
/// and, for stretches read backward, the length of the runs they are read by; `starts`
/// gets where each begins (`cursor` is scratch space for stepping the cursor). Whole rows of flipped runs are read a row at a time (a flip of
/// an image's columns, its channels kept); runs of at least [`RUN_MIN`] elements, forward
/// or backward, one at a time (a flip of its rows, or of the columns of a one-channel
/// image). `None` for any other block, which is gathered.
fn stretches(
    leaf: &Leaf,
    dims: &[usize],
    idx: &[usize],
    runs: usize,
    starts: &mut Vec<usize>,
    cursor: &mut Vec<usize>,
) -> Option<(usize, Option<usize>)> {
    let r = dims.len();
    let (inner, mid) = (dims[r - 1], dims[r - 2]);
    let (s_in, s_mid) = (leaf.strides[r - 1], leaf.strides[r - 2]);
    starts.clear();
    // A copy of the cursor to step, kept from block to block (no allocation a block).
    cursor.clear();
    cursor.extend_from_slice(idx);
    let idx = cursor;
    let mut p = leaf.pos;
    if flipped_rows(leaf, dims, idx, runs) {
        // A row's lowest element is its last run's first.
        let last_run = s_mid * (mid as isize - 1);
        let mut rows = runs / mid;
        while rows > 0 {
            // The rows to the end of the axis before them are evenly spaced.
            let (here, step) = match r {
                2 => (1, 0),
                _ => ((dims[r - 3] - idx[r - 3]).min(rows), leaf.strides[r - 3]),
            };
            starts.extend((0..here as isize).map(|k| (p + last_run + k * step) as usize));
            if r > 2 {
                idx[r - 3] += here - 1;
            }
            p += step * (here as isize - 1) + next_row(idx, dims, &leaf.strides);
            rows -= here;
        }
        return Some((mid * inner, Some(inner)));
    }
    if runs == 0 || inner < RUN_MIN || s_in.abs() != 1 {
        return None;
    }
    for _ in 0..runs {
        // A backward run's lowest element is its last.
        starts.push(if s_in == 1 {
            p
        } else {
            p - (inner as isize - 1)
        } as usize);
        idx[r - 2] += 1;
        p += s_mid;
        if idx[r - 2] == mid {
            idx[r - 2] = 0;
            p += next_row(idx, dims, &leaf.strides) - s_mid * mid as isize;
        }
    }
    Some((inner, (s_in == -1).then_some(1)))
}

/// Steps the index of the axes before the last two (a row's) to the next row, carrying from
/// the innermost of them outwards; returns how far that moves the position, by `strides`.
#[inline]
fn next_row(idx: &mut [usize], dims: &[usize], strides: &[isize]) -> isize {
    let mut moved = 0;
    let mut axis = dims.len() - 2;
    while axis > 0 {
        axis -= 1;
        idx[axis] += 1;
        moved += strides[axis];
        if idx[axis] < dims[axis] {
            break;
        }
        moved -= strides[axis] * dims[axis] as isize;
        idx[axis] = 0;
    }
    moved
}

/// The runs of `N` elements of `src` into `dst` in reverse order.
#[inline(always)]
fn flip_runs<U: Copy, const N: usize>(src: &[U], dst: &mut [U]) {
    for (to, from) in dst.chunks_exact_mut(N).zip(src.chunks_exact(N).rev()) {
        let from: &[U; N] = from.try_into().expect("N elements");
        let to: &mut [U; N] = to.try_into().expect("N elements");
        *to = *from;
    }
}

/// `N` contiguous elements from `p` to `dst[o..]`.
#[inline(always)]
fn copy_n<U: Copy, const N: usize>(src: &[U], p: isize, dst: &mut [U], o: usize) {
    let s = p as usize;
    let from: &[U; N] = src[s..s + N].try_into().expect("N elements");
    let to: &mut [U; N] = (&mut dst[o..o + N]).try_into().expect("N elements");
    *to = *from;
}

/// `dst.len()` elements from `p` in steps of `stride`.
#[inline(always)]
fn copy_run<U: Copy>(src: &[U], p: isize, stride: isize, dst: &mut [U]) {
    if stride == 1 {
        let s = p as usize;
        dst.copy_from_slice(&src[s..s + dst.len()]);
    } else {
        let mut q = p;
        for d in dst.iter_mut() {
            *d = src[q as usize];
            q += stride;
        }
    }
}

/// Moves the cursor (and each input's position) `block` elements on: `runs` whole runs, or
/// a part of one run.
fn advance(leaves: &mut [Leaf], dims: &[usize], idx: &mut [usize], block: usize, runs: usize) {
    let r = dims.len();
    if runs == 0 {
        idx[r - 1] += block;
        for l in leaves.iter_mut() {
            l.pos += l.strides[r - 1] * block as isize;
        }
        if idx[r - 1] < dims[r - 1] {
            return;
        }
        for l in leaves.iter_mut() {
            l.pos -= l.strides[r - 1] * dims[r - 1] as isize;
        }
        idx[r - 1] = 0;
        carry_from(leaves, dims, idx, r - 1, 1);
        return;
    }
    carry_from(leaves, dims, idx, r - 1, runs);
}

/// Adds `count` to axis `axis - 1` of the cursor, carrying into the axes before it.
fn carry_from(leaves: &mut [Leaf], dims: &[usize], idx: &mut [usize], axis: usize, count: usize) {
    let mut add = count;
    let mut axis = axis;
    while axis > 0 && add > 0 {
        axis -= 1;
        let total = idx[axis] + add;
        let (carry, rest) = (total / dims[axis], total % dims[axis]);
        let delta = rest as isize - idx[axis] as isize;
        for l in leaves.iter_mut() {
            l.pos += l.strides[axis] * delta;
        }
        idx[axis] = rest;
        add = carry;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::vectors::VECTORS_CAP;

    #[test]
    fn a_chains_divisions_are_refined_only_where_proven_for_every_input() {
        let w4 = [
            Link::Right(BinaryOp::Add, 8.0f32),
            Link::Right(BinaryOp::Divide, 255.0),
        ];
        let refined_w4 = refined::<u8, f32>(&w4).expect("(x + 8) / 255 refines");
        assert!(
            matches!(refined_w4[1], Link::Reciprocal(_)),
            "{refined_w4:?}"
        );
        assert!(matches!(refined_w4[0], Link::Right(BinaryOp::Add, _)));
        // -x / 255 makes -0.0 from 0, which a refined quotient makes +0.0: refused.
        let negated = [
            Link::Right(BinaryOp::Multiply, -1.0f32),
            Link::Right(BinaryOp::Divide, 255.0),
        ];
        assert!(refined::<u8, f32>(&negated).is_none());
        // Inputs of more than 8 bits are not tried, nor chains without a division.
        assert!(refined::<u16, f32>(&w4).is_none());
        assert!(refined::<u8, f32>(&w4[..1]).is_none());
        // A constant divided by the value is a division of a varying divisor: kept.
        let left = [Link::Left(BinaryOp::Divide, 1.0f64)];
        assert!(refined::<i8, f64>(&left).is_none());

        // Run by every compiled version, the refined chain gives the division's bits.
        let input: Vec<u8> = (0..=255u8).cycle().take(256 * 20).collect();
        let chain = Chain {
            plain: w4.to_vec(),
            refined: Some(refined_w4),
        };
        let want: Vec<u32> = input
            .iter()
            .map(|&x| ((f32::from(x) + 8.0) / 255.0).to_bits())
            .collect();
        for cap in [Vectors::Baseline, Vectors::Avx2, Vectors::Avx512] {
            VECTORS_CAP.set(cap);
            let mut out = vec![f32::NAN; input.len()];
            chain_block(&input, &chain, &mut out);
            assert!(
                out.iter().map(|q| q.to_bits()).eq(want.iter().copied()),
                "{cap:?}"
            );
        }
        VECTORS_CAP.set(Vectors::Avx512);
    }
}
