//! Built-in ops for `map`: casts, scaling and normalization, one-hot, reshape, transpose,
//! and seeded random flips and crops, run in Rust without a user callback.
//!
//! An [`Op`] applies to every tensor of an element, or to one component
//! ([`Op::component`], [`Op::key`]). [`Dataset::map`](crate::Dataset::map) runs it;
//! consecutive ops are fused into one pass, and the elementwise ones (cast, scale,
//! normalize) are written straight into batch buffers when a `batch` follows.
//!
//! ```
//! use npyflow::ops;
//! use npyflow::{Dataset, DType, Element, Tensor};
//! let x = Tensor::from_vec(vec![0u8, 51, 255, 102], &[2, 2])?;
//! let y = Tensor::from_vec(vec![1i64, 0], &[2])?;
//! let ds = Dataset::from_tensor_slices(Element::tuple([x, y]))?
//!     .map(ops::cast(DType::Float32).component(0), ())?
//!     .map(ops::scale(1.0 / 255.0).component(0), ())?;
//! assert_eq!(ds.to_vec()?[0].to_string(), "([0.  0.2], 1)");
//! # Ok::<(), npyflow::Error>(())
//! ```

pub(crate) mod elementwise;
pub mod graph;
mod kernels;
pub(crate) mod quotient;
pub(crate) mod vectors;
pub(crate) use kernels::BoxLayout;

use std::fmt;
use std::sync::Arc;

use crate::buffer::BufferMut;
use crate::dtype::DType;
use crate::element::{Element, ElementSpec, PartialShape, TensorSpec};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor_ops::affine_in_place;

use kernels::{
    crop_tensor, draws, flip_tensor, is_numeric, one_hot_tensor, resolve_shape, transpose_tensor,
};

/// Which tensors of an element an op applies to.
#[derive(Clone, Debug, PartialEq)]
pub enum Component {
    /// Every tensor.
    All,
    /// Part `i` of a tuple element.
    Index(usize),
    /// Value `k` of a dict element.
    Key(String),
}

impl Component {
    /// The component as Python writes it: `2` (a tuple index) or `'image'` (a dict key).
    fn python(&self) -> String {
        match self {
            Component::All => "(all)".into(),
            Component::Index(i) => format!("{i} (a tuple index)"),
            Component::Key(k) => format!(
                "'{}' (a dict key)",
                k.replace('\\', "\\\\").replace('\'', "\\'")
            ),
        }
    }
}

/// What an op does to one tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum OpKind {
    /// Convert to a dtype, as [`Tensor::cast`].
    Cast(DType),
    /// `x * factor + offset`, for float tensors, as [`Tensor::scale`].
    Scale {
        /// The factor.
        factor: f64,
        /// The offset.
        offset: f64,
    },
    /// `(x - mean[c]) / std[c]` over the channels `c` of the last axis (one value: all).
    Normalize {
        /// Per-channel means.
        mean: Vec<f64>,
        /// Per-channel standard deviations (non-zero).
        std: Vec<f64>,
    },
    /// Integer class ids to one-hot vectors of `depth` (a new last axis), ids outside
    /// `[0, depth)` giving all zeros, as `tf.one_hot`.
    OneHot {
        /// The number of classes.
        depth: usize,
        /// The output dtype.
        dtype: DType,
    },
    /// The same data in another shape; one dimension may be -1 (inferred).
    Reshape(Vec<i64>),
    /// Axes permuted: output axis `i` is input axis `perm[i]`.
    Transpose(Vec<usize>),
    /// Reverse `axis` with probability 1/2, drawn per element from the seed.
    RandomFlip {
        /// The axis to reverse.
        axis: usize,
        /// The seed.
        seed: u64,
    },
    /// A window of `size` at a random offset, drawn per element from the seed.
    RandomCrop {
        /// The shape of the crop (same rank as the tensor).
        size: Vec<usize>,
        /// The seed.
        seed: u64,
    },
    /// An op graph over the whole element (see [`graph`](mod@graph)): what a traced Python
    /// function becomes.
    Graph(Arc<graph::Graph>),
}

/// A built-in op and the component it applies to.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    kind: OpKind,
    component: Component,
}

/// Casts to `dtype` (NumPy's `astype`).
pub fn cast(dtype: DType) -> Op {
    Op::new(OpKind::Cast(dtype))
}

/// Multiplies float tensors by `factor` (`x * factor`).
pub fn scale(factor: f64) -> Op {
    Op::new(OpKind::Scale {
        factor,
        offset: 0.0,
    })
}

/// `x * factor + offset` for float tensors.
pub fn affine(factor: f64, offset: f64) -> Op {
    Op::new(OpKind::Scale { factor, offset })
}

/// `(x - mean) / std` per channel of the last axis, for float tensors.
pub fn normalize(mean: &[f64], std: &[f64]) -> Op {
    Op::new(OpKind::Normalize {
        mean: mean.to_vec(),
        std: std.to_vec(),
    })
}

/// One-hot float32 vectors of `depth` from integer ids.
pub fn one_hot(depth: usize) -> Op {
    Op::new(OpKind::OneHot {
        depth,
        dtype: DType::Float32,
    })
}

/// Reshapes each tensor (of one element, not the batch); -1 infers one dimension.
pub fn reshape(shape: &[i64]) -> Op {
    Op::new(OpKind::Reshape(shape.to_vec()))
}

/// Permutes the axes of each tensor.
pub fn transpose(perm: &[usize]) -> Op {
    Op::new(OpKind::Transpose(perm.to_vec()))
}

/// Reverses `axis` of half the elements, chosen by `seed` and each element's position.
pub fn random_flip(axis: usize, seed: u64) -> Op {
    Op::new(OpKind::RandomFlip { axis, seed })
}

/// Crops each tensor to `size` at an offset drawn from `seed` and the element's position.
pub fn random_crop(size: &[usize], seed: u64) -> Op {
    Op::new(OpKind::RandomCrop {
        size: size.to_vec(),
        seed,
    })
}

/// Maps elements through an op graph (see [`graph`](mod@graph) for an example). A graph
/// that [commutes with batching](graph::Graph::commutes_with_batch) runs once per batch
/// when a `batch` follows.
pub fn graph(g: graph::Graph) -> Op {
    Op::new(OpKind::Graph(Arc::new(g)))
}

impl Op {
    /// An op on every tensor of the element.
    pub fn new(kind: OpKind) -> Op {
        Op {
            kind,
            component: Component::All,
        }
    }

    /// The same op on part `index` of tuple elements only.
    pub fn component(mut self, index: usize) -> Op {
        self.component = Component::Index(index);
        self
    }

    /// The same op on value `key` of dict elements only.
    pub fn key(mut self, key: &str) -> Op {
        self.component = Component::Key(key.to_string());
        self
    }

    /// What the op does.
    pub fn kind(&self) -> &OpKind {
        &self.kind
    }

    /// Which tensors it applies to.
    pub fn target(&self) -> &Component {
        &self.component
    }

    /// Whether the op maps each value on its own, so that applying it to a batch equals
    /// batching its results (what lets a following `batch` write results straight into the
    /// batch buffer, or apply the op once to a batch that is a slice).
    pub fn is_elementwise(&self) -> bool {
        match &self.kind {
            OpKind::Cast(_) | OpKind::Scale { .. } | OpKind::Normalize { .. } => true,
            OpKind::Graph(g) => g.commutes_with_batch(),
            _ => false,
        }
    }

    /// The op graph, for a graph op (which maps whole elements, not tensor by tensor).
    pub(crate) fn as_graph(&self) -> Option<&graph::Graph> {
        match &self.kind {
            OpKind::Graph(g) => Some(g),
            _ => None,
        }
    }

    /// Checks the op's own arguments.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        match &self.kind {
            OpKind::Normalize { mean, std } => {
                if mean.is_empty() || mean.len() != std.len() {
                    return bad(format!(
                        "normalize: {} means for {} standard deviations",
                        mean.len(),
                        std.len()
                    ));
                }
                if std.iter().any(|&s| s == 0.0 || !s.is_finite()) {
                    return bad(format!(
                        "normalize: std must be finite and non-zero: {std:?}"
                    ));
                }
            }
            OpKind::OneHot { depth, .. } if *depth == 0 => {
                return bad("one_hot: depth must be positive".into())
            }
            OpKind::Reshape(shape)
                if shape.iter().filter(|&&d| d == -1).count() > 1
                    || shape.iter().any(|&d| d < -1) =>
            {
                return bad(format!(
                    "reshape: dimensions must be non-negative, with at most one -1: {shape:?}"
                ));
            }
            OpKind::Transpose(perm) => {
                let mut sorted = perm.clone();
                sorted.sort_unstable();
                if sorted != (0..perm.len()).collect::<Vec<_>>() {
                    return bad(format!(
                        "transpose: {perm:?} is not a permutation of the axes"
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The spec of the op's output for a tensor of `spec`, or an error naming the op.
    pub(crate) fn tensor_spec(&self, spec: &TensorSpec) -> Result<TensorSpec> {
        let err = |m: String| Err(Error::InvalidArgument(format!("{self}: {m}")));
        let dims = spec.shape.dims();
        Ok(match &self.kind {
            OpKind::Cast(d) => {
                if !is_numeric(spec.dtype) || !is_numeric(*d) {
                    return err(format!("cannot cast {} to {d}", spec.dtype));
                }
                TensorSpec {
                    dtype: *d,
                    shape: spec.shape.clone(),
                }
            }
            OpKind::Scale { .. } | OpKind::Normalize { .. } => {
                if spec.dtype.kind() != 'f' {
                    return err(format!(
                        "needs a float tensor, got {} (cast it first)",
                        spec.dtype
                    ));
                }
                if let OpKind::Normalize { mean, .. } = &self.kind {
                    let last = dims.and_then(|d| d.last().copied()).flatten();
                    if mean.len() > 1 && last.is_some_and(|c| c != mean.len()) {
                        return err(format!(
                            "{} channels given, the last axis has {}",
                            mean.len(),
                            last.unwrap_or(0)
                        ));
                    }
                }
                spec.clone()
            }
            OpKind::OneHot { depth, dtype } => {
                if !matches!(spec.dtype.kind(), 'i' | 'u') {
                    return err(format!("needs integer ids, got {}", spec.dtype));
                }
                TensorSpec {
                    dtype: *dtype,
                    shape: match dims {
                        Some(d) => {
                            let mut d = d.to_vec();
                            d.push(Some(*depth));
                            PartialShape::new(&d)
                        }
                        None => PartialShape::unknown(),
                    },
                }
            }
            OpKind::Reshape(target) => {
                let known: Option<usize> = dims.and_then(|d| d.iter().copied().product());
                let shape = match known {
                    Some(n) => match resolve_shape(target, n) {
                        Ok(d) => PartialShape::known(&d),
                        Err(m) => return err(m),
                    },
                    None => PartialShape::new(
                        &target
                            .iter()
                            .map(|&d| usize::try_from(d).ok())
                            .collect::<Vec<_>>(),
                    ),
                };
                TensorSpec {
                    dtype: spec.dtype,
                    shape,
                }
            }
            OpKind::Transpose(perm) => TensorSpec {
                dtype: spec.dtype,
                shape: match dims {
                    Some(d) if d.len() == perm.len() => {
                        PartialShape::new(&perm.iter().map(|&p| d[p]).collect::<Vec<_>>())
                    }
                    Some(d) => {
                        return err(format!(
                            "{} axes permuted, the tensor has {}",
                            perm.len(),
                            d.len()
                        ))
                    }
                    None => PartialShape::unknown(),
                },
            },
            OpKind::RandomFlip { axis, .. } => {
                if let Some(d) = dims {
                    if *axis >= d.len() {
                        return err(format!("axis {axis} of a rank-{} tensor", d.len()));
                    }
                }
                spec.clone()
            }
            OpKind::Graph(_) => return err("an op graph maps whole elements".into()),
            OpKind::RandomCrop { size, .. } => {
                if let Some(d) = dims {
                    let fits = d.len() == size.len()
                        && d.iter().zip(size).all(|(d, s)| d.is_none_or(|d| d >= *s));
                    if !fits {
                        return err(format!("cannot crop {} to {size:?}", spec.shape));
                    }
                }
                TensorSpec {
                    dtype: spec.dtype,
                    shape: PartialShape::known(size),
                }
            }
        })
    }

    /// For an op that moves values without computing (`random_crop`, `random_flip`): the
    /// shape of its result for a tensor of `shape`, when it applies there, so that
    /// [`Op::write_moved`] can write the result straight into a batch buffer. `None` for
    /// other ops and where the op would fail (its error comes from [`Op::apply`]).
    pub(crate) fn moved_shape(&self, shape: &[usize]) -> Option<Vec<usize>> {
        match &self.kind {
            OpKind::RandomFlip { axis, .. } => (*axis < shape.len()).then(|| shape.to_vec()),
            OpKind::RandomCrop { size, .. } => {
                let fits = size.len() == shape.len() && size.iter().zip(shape).all(|(s, d)| s <= d);
                fits.then(|| size.clone())
            }
            _ => None,
        }
    }

    /// Writes what [`Op::apply_tensor`] makes of `t` (element `index` of pass `epoch`) into
    /// `dst`, for an op and shape [`Op::moved_shape`] accepts; `layout` is
    /// [`Op::moved_layout`]'s for `t`'s shape. The same values, without a tensor of its own.
    pub(crate) fn write_moved(
        &self,
        t: &Tensor,
        layout: Option<&BoxLayout>,
        index: u64,
        epoch: u64,
        dst: &mut [u8],
    ) {
        match (&self.kind, layout) {
            (OpKind::RandomFlip { axis, seed }, _) => {
                if draws(*seed, index, epoch).below(2) == 1 {
                    kernels::flip_into(t, *axis, dst);
                } else {
                    dst.copy_from_slice(t.as_bytes());
                }
            }
            (OpKind::RandomCrop { size, seed }, Some(layout)) => {
                kernels::crop_into(t, size, layout, draws(*seed, index, epoch), dst);
            }
            _ => unreachable!("write_moved of {self} (checked by moved_shape)"),
        }
    }

    /// The run layout [`Op::write_moved`] copies a crop with, for tensors of `shape` and
    /// items of `item` bytes (`None` for a flip).
    pub(crate) fn moved_layout(&self, shape: &[usize], item: usize) -> Option<BoxLayout> {
        match &self.kind {
            OpKind::RandomCrop { size, .. } => Some(BoxLayout::new(shape, item, size)),
            _ => None,
        }
    }

    /// Whether the op draws random numbers (a new draw each epoch).
    pub(crate) fn is_random(&self) -> bool {
        matches!(
            self.kind,
            OpKind::RandomFlip { .. } | OpKind::RandomCrop { .. }
        )
    }

    /// The op applied to one tensor of element number `index` in pass `epoch`. Random ops
    /// draw from (seed, element index, epoch): the same whatever thread runs them, new each
    /// epoch.
    pub(crate) fn apply_tensor(&self, t: &Tensor, index: u64, epoch: u64) -> Result<Tensor> {
        let ctx = || format!("{self}");
        let out = match &self.kind {
            OpKind::Cast(d) => t.cast(*d),
            OpKind::Scale { factor, offset } => t.scale(*factor, *offset),
            OpKind::Normalize { .. } => {
                let mut out = BufferMut::zeroed(t.nbytes())?;
                out.as_mut_slice().copy_from_slice(t.as_bytes());
                self.apply_in_place(t.dtype(), t.shape(), out.as_mut_slice())?;
                Tensor::new(t.dtype(), t.shape(), out.freeze())
            }
            OpKind::OneHot { depth, dtype } => one_hot_tensor(t, *depth, *dtype),
            OpKind::Reshape(target) => resolve_shape(target, t.size())
                .map_err(Error::Pipeline)
                .and_then(|d| t.reshape(&d)),
            OpKind::Transpose(perm) => transpose_tensor(t, perm),
            OpKind::RandomFlip { axis, seed } => {
                if draws(*seed, index, epoch).below(2) == 1 {
                    flip_tensor(t, *axis)
                } else {
                    Ok(t.clone())
                }
            }
            OpKind::RandomCrop { size, seed } => crop_tensor(t, size, draws(*seed, index, epoch)),
            OpKind::Graph(_) => Err(Error::Pipeline(format!("{self} maps whole elements"))),
        };
        // What the op read is the file's data only if a mapped file was not truncated.
        let out = out.and_then(|o| t.check_intact().map(|()| o));
        out.map_err(|e| e.context(ctx()))
    }

    /// For elementwise ops after a cast: the op applied in place to `buf`, the bytes of a
    /// `dtype` tensor of `shape` (or of rows of one).
    pub(crate) fn apply_in_place(
        &self,
        dtype: DType,
        shape: &[usize],
        buf: &mut [u8],
    ) -> Result<()> {
        match &self.kind {
            OpKind::Scale { factor, offset } => affine_in_place(dtype, buf, &[*factor], &[*offset]),
            OpKind::Normalize { mean, std } => {
                if mean.len() > 1 && shape.last() != Some(&mean.len()) {
                    return Err(Error::Pipeline(format!(
                        "{self}: {} channels given, the last axis has {:?}",
                        mean.len(),
                        shape.last()
                    )));
                }
                let mul: Vec<f64> = std.iter().map(|s| 1.0 / s).collect();
                let add: Vec<f64> = mean.iter().zip(std).map(|(m, s)| -m / s).collect();
                affine_in_place(dtype, buf, &mul, &add)
            }
            _ => Err(Error::Pipeline(format!("{self} is not elementwise"))),
        }
    }

    /// Applies the op to the targeted tensors of element number `index` in pass `epoch`.
    pub(crate) fn apply(&self, e: Element, index: u64, epoch: u64) -> Result<Element> {
        if let OpKind::Graph(g) = &self.kind {
            return g.apply(e).map_err(|err| err.context(format!("{self}")));
        }
        match (&self.component, e) {
            (Component::All, e) => e.map_tensors(&mut |t| self.apply_tensor(t, index, epoch)),
            (Component::Index(i), Element::Tuple(mut items)) if *i < items.len() => {
                let part = std::mem::replace(&mut items[*i], Element::Tuple(Vec::new()));
                items[*i] = part.map_tensors(&mut |t| self.apply_tensor(t, index, epoch))?;
                Ok(Element::Tuple(items))
            }
            (Component::Key(k), Element::Dict(mut items)) if items.contains_key(k) => {
                let part = &items[k];
                let new = part.map_tensors(&mut |t| self.apply_tensor(t, index, epoch))?;
                items[k] = new;
                Ok(Element::Dict(items))
            }
            (c, e) => Err(Error::Pipeline(format!(
                "{self}: the element {} has no component {}",
                e.spec(),
                c.python()
            ))),
        }
    }

    /// The spec of the op's output for elements of `spec`.
    pub(crate) fn element_spec(&self, spec: &ElementSpec) -> Result<ElementSpec> {
        self.validate()?;
        if let OpKind::Graph(g) = &self.kind {
            return if g.input_spec().most_specific_compatible(spec).is_some() {
                Ok(g.output_spec().clone())
            } else {
                Err(Error::InvalidArgument(format!(
                    "{self}: built for elements of {}, mapped over elements of {spec}",
                    g.input_spec()
                )))
            };
        }
        let map_all = |s: &ElementSpec| -> Result<ElementSpec> {
            let mut err = None;
            let out = s.map_specs(&mut |t| match self.tensor_spec(t) {
                Ok(t) => t,
                Err(e) => {
                    err.get_or_insert(e);
                    t.clone()
                }
            });
            err.map_or(Ok(out), Err)
        };
        match (&self.component, spec) {
            (Component::All, s) => map_all(s),
            (Component::Index(i), ElementSpec::Tuple(items)) if *i < items.len() => {
                let mut items = items.clone();
                items[*i] = map_all(&items[*i])?;
                Ok(ElementSpec::Tuple(items))
            }
            (Component::Key(k), ElementSpec::Dict(items)) if items.contains_key(k) => {
                let mut items = items.clone();
                items[k] = map_all(&items[k])?;
                Ok(ElementSpec::Dict(items))
            }
            (c, s) => Err(Error::InvalidArgument(format!(
                "{self}: elements of {s} have no component {} (component= names a tuple \
                 index or a dict key of the element)",
                c.python()
            ))),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            OpKind::Cast(d) => write!(f, "cast({d})")?,
            OpKind::Scale { factor, offset } if *offset == 0.0 => write!(f, "scale({factor})")?,
            OpKind::Scale { factor, offset } => write!(f, "affine({factor}, {offset})")?,
            OpKind::Normalize { mean, std } => write!(f, "normalize({mean:?}, {std:?})")?,
            OpKind::OneHot { depth, .. } => write!(f, "one_hot({depth})")?,
            OpKind::Reshape(s) => write!(f, "reshape({s:?})")?,
            OpKind::Transpose(p) => write!(f, "transpose({p:?})")?,
            OpKind::RandomFlip { axis, seed } => write!(f, "random_flip({axis}, seed={seed})")?,
            OpKind::RandomCrop { size, seed } => write!(f, "random_crop({size:?}, seed={seed})")?,
            OpKind::Graph(g) => write!(f, "{g}")?,
        }
        match &self.component {
            Component::All => Ok(()),
            Component::Index(i) => write!(f, " on component {i}"),
            Component::Key(k) => write!(f, " on {k:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::elementwise::apply_elementwise_into;
    use super::*;

    #[test]
    fn specs_and_values() {
        let img = Tensor::from_vec((0..12u8).collect(), &[2, 2, 3]).unwrap();
        let t = transpose(&[2, 0, 1]).apply_tensor(&img, 0, 0).unwrap();
        assert_eq!(t.shape(), &[3, 2, 2]);
        assert_eq!(
            t.view::<u8>().unwrap(),
            &[0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]
        );
        let r = reshape(&[-1, 3]).apply_tensor(&img, 0, 0).unwrap();
        assert_eq!(r.shape(), &[4, 3]);
        assert!(reshape(&[5, -1]).apply_tensor(&img, 0, 0).is_err());
        let ids = Tensor::from_vec(vec![2i64, 0, 7], &[3]).unwrap();
        let oh = one_hot(3).apply_tensor(&ids, 0, 0).unwrap();
        assert_eq!(
            oh.view::<f32>().unwrap(),
            &[0., 0., 1., 1., 0., 0., 0., 0., 0.]
        );
        let f = Tensor::from_vec(vec![1f32, 2., 3., 4.], &[2, 2]).unwrap();
        let n = normalize(&[1.0, 2.0], &[2.0, 4.0])
            .apply_tensor(&f, 0, 0)
            .unwrap();
        assert_eq!(n.view::<f32>().unwrap(), &[0.0, 0.0, 1.0, 0.5]);
        assert!(normalize(&[1.0], &[0.0]).validate().is_err());
        assert!(transpose(&[0, 0]).validate().is_err());
    }

    #[test]
    fn flips_and_crops_are_seeded_per_element() {
        let row = Tensor::from_vec((0..4i32).collect(), &[4]).unwrap();
        let op = random_flip(0, 9);
        let outs: Vec<Tensor> = (0..64)
            .map(|i| op.apply_tensor(&row, i, 0).unwrap())
            .collect();
        let flipped = outs
            .iter()
            .filter(|t| t.view::<i32>().unwrap() == [3, 2, 1, 0])
            .count();
        assert!(flipped > 16 && flipped < 48, "{flipped} of 64 flipped");
        assert!(outs.iter().all(|t| {
            let v = t.view::<i32>().unwrap();
            v == [0, 1, 2, 3] || v == [3, 2, 1, 0]
        }));
        assert_eq!(
            op.apply_tensor(&row, 5, 0).unwrap(),
            op.apply_tensor(&row, 5, 0).unwrap()
        );
        let crop = random_crop(&[2], 1);
        for i in 0..20 {
            let c = crop.apply_tensor(&row, i, 0).unwrap();
            let v = c.view::<i32>().unwrap();
            assert_eq!(v[1], v[0] + 1);
        }
    }

    #[test]
    fn float32_scaling_in_float32_gives_the_same_bits() {
        let mut rng = crate::rng::Rng::keyed(1, &[]);
        let vals: Vec<f32> = (0..20_000)
            .map(|_| f32::from_bits(rng.next_u64() as u32))
            .filter(|v| v.is_finite())
            .collect();
        let x = Tensor::from_vec(vals.clone(), &[vals.len()]).unwrap();
        for factor in [2.0, 0.5, 3.0, 0.1f32 as f64, -1.25, 1e-30] {
            let op = scale(factor);
            let mut dst = vec![0u8; x.nbytes()];
            apply_elementwise_into(&[&op], &x, DType::Float32, &mut dst).unwrap();
            let want = x.scale(factor, 0.0).unwrap();
            assert!(dst == want.as_bytes(), "factor {factor}");
        }
    }

    #[test]
    fn fused_kernels_round_as_the_ops_do() {
        for (from, src) in [
            (
                DType::UInt8,
                Tensor::from_vec((0..=255u8).collect(), &[256]).unwrap(),
            ),
            (
                DType::Int16,
                Tensor::from_vec((-300..300i16).collect(), &[600]).unwrap(),
            ),
            (
                DType::Float32,
                Tensor::from_vec((0..500).map(|i| i as f32 * 0.37 - 50.0).collect(), &[500])
                    .unwrap(),
            ),
        ] {
            assert_eq!(src.dtype(), from);
            for (to, offset) in [
                (DType::Float32, -0.5),
                (DType::Float64, -0.5),
                (DType::Float32, 0.0),
            ] {
                let ops = [cast(to), affine(1.0 / 255.0, offset)];
                let refs: Vec<&Op> = ops.iter().collect();
                let mut dst = vec![0u8; src.size() * to.itemsize()];
                apply_elementwise_into(&refs, &src, to, &mut dst).unwrap();
                let want = src.cast(to).unwrap().scale(1.0 / 255.0, offset).unwrap();
                assert_eq!(dst, want.as_bytes(), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn division_kernel_matches_the_float64_rounding_everywhere() {
        // Every 8-bit value over many divisors, and every 16-bit value over a few.
        let bytes = Tensor::from_vec((0..=255u8).collect(), &[256]).unwrap();
        let words = Tensor::from_vec((0..=u16::MAX).collect(), &[65536]).unwrap();
        for (src, ks) in [
            (&bytes, (1..=1000).collect::<Vec<u32>>()),
            (&words, vec![3, 255, 65535]),
        ] {
            for k in ks {
                let ops = [cast(DType::Float32), scale(1.0 / f64::from(k))];
                let refs: Vec<&Op> = ops.iter().collect();
                let mut dst = vec![0u8; src.size() * 4];
                apply_elementwise_into(&refs, src, DType::Float32, &mut dst).unwrap();
                let want = src
                    .cast(DType::Float32)
                    .unwrap()
                    .scale(1.0 / f64::from(k), 0.0)
                    .unwrap();
                assert!(dst == want.as_bytes(), "{} / {k}", src.dtype());
            }
        }
    }

    #[test]
    fn elementwise_chain_into_a_buffer() {
        let x = Tensor::from_vec(vec![0u8, 51, 255], &[3]).unwrap();
        let ops = [cast(DType::Float32), scale(1.0 / 255.0)];
        let refs: Vec<&Op> = ops.iter().collect();
        let mut dst = vec![0u8; 12];
        apply_elementwise_into(&refs, &x, DType::Float32, &mut dst).unwrap();
        let got: &[f32] = bytemuck::cast_slice(&dst);
        let want = x
            .cast(DType::Float32)
            .unwrap()
            .scale(1.0 / 255.0, 0.0)
            .unwrap();
        assert_eq!(got, want.view::<f32>().unwrap());
    }
}
