//! What the ops do to one tensor: one-hot, reshape targets, transposes, flips and crops,
//! and the random stream of an element.

use crate::buffer::BufferMut;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::Tensor;

pub(super) fn is_numeric(d: DType) -> bool {
    matches!(d.kind(), 'b' | 'i' | 'u' | 'f' | 'c')
}

/// A reshape target with its -1 filled in for `size` elements.
pub(super) fn resolve_shape(target: &[i64], size: usize) -> Result<Vec<usize>, String> {
    let known = target
        .iter()
        .filter(|&&d| d >= 0)
        .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))
        .ok_or_else(|| format!("the shape {target:?} has more elements than can be addressed"))?;
    let mut out: Vec<usize> = Vec::with_capacity(target.len());
    for &d in target {
        if d == -1 {
            if known == 0 || size % known != 0 {
                return Err(format!("cannot reshape {size} elements to {target:?}"));
            }
            out.push(size / known);
        } else {
            out.push(d as usize);
        }
    }
    if out.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(size) {
        return Err(format!("cannot reshape {size} elements to {target:?}"));
    }
    Ok(out)
}

pub(super) fn one_hot_tensor(t: &Tensor, depth: usize, dtype: DType) -> Result<Tensor> {
    let ids = t.cast(DType::Int64)?;
    let ids = ids.view::<i64>()?;
    let mut shape = t.shape().to_vec();
    shape.push(depth);
    let n = ids.len().checked_mul(depth).ok_or_else(|| {
        Error::Pipeline(format!(
            "one_hot: {} ids of depth {depth} are too many",
            ids.len()
        ))
    })?;
    let mut out = Vec::new();
    out.try_reserve_exact(n).map_err(|_| Error::Alloc {
        bytes: n.saturating_mul(4),
    })?;
    out.resize(n, 0f32);
    for (row, &id) in out.chunks_exact_mut(depth).zip(ids) {
        if let Ok(k) = usize::try_from(id) {
            if k < depth {
                row[k] = 1.0;
            }
        }
    }
    Tensor::from_vec(out, &shape)?.cast(dtype)
}

pub(super) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Moves `idx` to the next index of an array of `shape` in C order (the last axis fastest);
/// after the last index it is all zeros again.
fn next_index(idx: &mut [usize], shape: &[usize]) {
    for a in (0..idx.len()).rev() {
        idx[a] += 1;
        if idx[a] < shape[a] {
            return;
        }
        idx[a] = 0;
    }
}

/// Copies elements of `t` to a new tensor of `shape`, element `k` of the output taken from
/// flat source index `source(k_index)`.
pub(super) fn gather_tensor(
    t: &Tensor,
    shape: &[usize],
    source: impl Fn(&[usize]) -> usize,
) -> Result<Tensor> {
    let item = t.dtype().itemsize();
    let n: usize = shape.iter().product();
    let mut out = BufferMut::zeroed(n * item)?;
    let dst = out.as_mut_slice();
    let src = t.as_bytes();
    let mut idx = vec![0usize; shape.len()];
    for k in 0..n {
        let s = source(&idx);
        dst[k * item..(k + 1) * item].copy_from_slice(&src[s * item..(s + 1) * item]);
        next_index(&mut idx, shape);
    }
    Tensor::new(t.dtype(), shape, out.freeze())
}

pub(super) fn transpose_tensor(t: &Tensor, perm: &[usize]) -> Result<Tensor> {
    if perm.len() != t.ndim() {
        return Err(Error::Pipeline(format!(
            "{} axes permuted, the tensor has {}",
            perm.len(),
            t.ndim()
        )));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| t.shape()[p]).collect();
    let st = strides(t.shape());
    gather_tensor(t, &shape, |idx| {
        idx.iter().zip(perm).map(|(&i, &p)| i * st[p]).sum()
    })
}

pub(super) fn flip_tensor(t: &Tensor, axis: usize) -> Result<Tensor> {
    if axis >= t.ndim() {
        return Err(Error::Pipeline(format!(
            "axis {axis} of a rank-{} tensor",
            t.ndim()
        )));
    }
    // The axes after `axis` are kept whole: each position along `axis` is one contiguous
    // block, copied to its mirrored place (a memcpy a block, not a loop an element).
    let mut out = BufferMut::zeroed(t.nbytes())?;
    flip_into(t, axis, out.as_mut_slice());
    Tensor::new(t.dtype(), t.shape(), out.freeze())
}

/// The random stream of element `index` in pass `epoch` (the first pass keyed by the index
/// alone).
pub(super) fn draws(seed: u64, index: u64, epoch: u64) -> Rng {
    if epoch == 0 {
        Rng::keyed(seed, &[index])
    } else {
        Rng::keyed(seed, &[index, epoch])
    }
}

/// [`flip_tensor`] written into `dst` (the tensor's size): each position along `axis` is one
/// block of the axes after it, copied to its mirrored place. The caller checked the axis.
pub(super) fn flip_into(t: &Tensor, axis: usize, dst: &mut [u8]) {
    let shape = t.shape();
    let n = shape[axis];
    let block = shape[axis + 1..].iter().product::<usize>() * t.dtype().itemsize();
    let outer: usize = shape[..axis].iter().product();
    flip_blocks(t.as_bytes(), outer, n, block, dst);
}

/// Copies `outer` runs of `n` blocks of `block` bytes from `src` to `dst`, each run's blocks
/// in reverse order. Small blocks (a pixel's channels, when an image is flipped left-right)
/// are copied as fixed-size values: a call to memcpy for each 3-byte pixel costs several
/// times the copy.
fn flip_blocks(src: &[u8], outer: usize, n: usize, block: usize, dst: &mut [u8]) {
    fn fixed<const B: usize>(src: &[u8], outer: usize, n: usize, dst: &mut [u8]) {
        let run = n * B;
        for (s, d) in src
            .chunks_exact(run)
            .zip(dst.chunks_exact_mut(run))
            .take(outer)
        {
            for (from, to) in s.chunks_exact(B).rev().zip(d.chunks_exact_mut(B)) {
                let v: [u8; B] = from.try_into().expect("chunks of B bytes");
                to.copy_from_slice(&v);
            }
        }
    }
    if n == 0 || block == 0 {
        return;
    }
    match block {
        1 => fixed::<1>(src, outer, n, dst),
        2 => fixed::<2>(src, outer, n, dst),
        3 => fixed::<3>(src, outer, n, dst),
        4 => fixed::<4>(src, outer, n, dst),
        6 => fixed::<6>(src, outer, n, dst),
        8 => fixed::<8>(src, outer, n, dst),
        12 => fixed::<12>(src, outer, n, dst),
        16 => fixed::<16>(src, outer, n, dst),
        _ => {
            for o in 0..outer {
                for i in 0..n {
                    let from = (o * n + (n - 1 - i)) * block;
                    let to = (o * n + i) * block;
                    dst[to..to + block].copy_from_slice(&src[from..from + block]);
                }
            }
        }
    }
}

/// [`crop_tensor`] written into `dst` (the crop's size) through `layout` (the layout of
/// crops of `size` from tensors of `t`'s shape). The caller checked that the crop fits.
pub(super) fn crop_into(
    t: &Tensor,
    size: &[usize],
    layout: &BoxLayout,
    mut rng: Rng,
    dst: &mut [u8],
) {
    let offsets: Vec<usize> = size
        .iter()
        .zip(t.shape())
        .map(|(&s, &d)| rng.below((d - s + 1) as u64) as usize)
        .collect();
    layout.copy(t.as_bytes(), &offsets, dst);
}

pub(super) fn crop_tensor(t: &Tensor, size: &[usize], mut rng: Rng) -> Result<Tensor> {
    if size.len() != t.ndim() || size.iter().zip(t.shape()).any(|(s, d)| s > d) {
        return Err(Error::Pipeline(format!(
            "cannot crop a tensor of shape {:?} to {size:?}",
            t.shape()
        )));
    }
    let offsets: Vec<usize> = size
        .iter()
        .zip(t.shape())
        .map(|(&s, &d)| rng.below((d - s + 1) as u64) as usize)
        .collect();
    copy_box(t, size, &offsets)
}

/// The box of `size` at `offsets` of `t`, copied run by run (see [`BoxLayout`]).
fn copy_box(t: &Tensor, size: &[usize], offsets: &[usize]) -> Result<Tensor> {
    let layout = BoxLayout::new(t.shape(), t.dtype().itemsize(), size);
    if layout.is_contiguous() {
        // One run of the source (a crop of the first axis it cuts only, the axes after it
        // whole): a view of it, no copy.
        let start = layout.start(offsets);
        let bytes = t.buffer().slice(start..start + layout.nbytes())?;
        return Tensor::new(t.dtype(), size, bytes);
    }
    let mut out = BufferMut::zeroed(layout.nbytes())?;
    layout.copy(t.as_bytes(), offsets, out.as_mut_slice());
    Tensor::new(t.dtype(), size, out.freeze())
}

/// How a box (a sub-array of `size` at some offsets) of a C-order array is copied run by
/// run: the axes after the last one the box cuts are whole, so each of the box's rows along
/// that axis is one contiguous run of the source (a memcpy a run, not a loop an element).
/// Computed once for a shape and used for every box of it (the patches of an array).
#[derive(Clone, Debug)]
pub(crate) struct BoxLayout {
    /// The source's strides, in elements.
    strides: Vec<usize>,
    /// The box's size along the axes before `cut`.
    outer: Vec<usize>,
    item: usize,
    /// Bytes of one run.
    run: usize,
    /// Runs in one box.
    count: usize,
}

impl BoxLayout {
    /// The layout of boxes of `size` (one entry per axis, each at most the axis's length)
    /// in an array of `shape` with items of `item` bytes.
    pub(crate) fn new(shape: &[usize], item: usize, size: &[usize]) -> BoxLayout {
        let cut = (0..shape.len())
            .rev()
            .find(|&a| size[a] < shape[a])
            .unwrap_or(0);
        let run = size[cut..].iter().product::<usize>() * item;
        let outer = size[..cut].to_vec();
        BoxLayout {
            strides: strides(shape),
            count: outer.iter().product(),
            outer,
            item,
            run,
        }
    }

    /// Bytes of one box.
    pub(crate) fn nbytes(&self) -> usize {
        self.count * self.run
    }

    /// Whether a box is one contiguous run of the source.
    pub(crate) fn is_contiguous(&self) -> bool {
        self.count == 1
    }

    /// The byte offset in the source of the box's first element.
    pub(crate) fn start(&self, offsets: &[usize]) -> usize {
        offsets
            .iter()
            .zip(&self.strides)
            .map(|(&o, &s)| o * s)
            .sum::<usize>()
            * self.item
    }

    /// Copies the box at `offsets` (one per axis, each box inside the array) from `src`
    /// (the whole array's bytes) to `dst` (exactly [`BoxLayout::nbytes`] long).
    pub(crate) fn copy(&self, src: &[u8], offsets: &[usize], dst: &mut [u8]) {
        let base = self.start(offsets);
        let mut idx = vec![0usize; self.outer.len()];
        for out in dst.chunks_exact_mut(self.run.max(1)).take(self.count) {
            let from = base
                + idx
                    .iter()
                    .zip(&self.strides)
                    .map(|(&i, &s)| i * s)
                    .sum::<usize>()
                    * self.item;
            out.copy_from_slice(&src[from..from + self.run]);
            next_index(&mut idx, &self.outer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Element by element, as the definitions say: the reference the block copies are
    /// checked against.
    fn by_element(t: &Tensor, shape: &[usize], source: impl Fn(&[usize]) -> usize) -> Tensor {
        gather_tensor(t, shape, source).unwrap()
    }

    fn tensor(shape: &[usize], seed: u64) -> Tensor {
        let mut rng = Rng::keyed(seed, &[]);
        let n: usize = shape.iter().product();
        let v: Vec<i16> = (0..n).map(|_| rng.below(1000) as i16).collect();
        Tensor::from_vec(v, shape).unwrap()
    }

    #[test]
    fn block_flips_and_crops_equal_the_element_by_element_ones() {
        let mut rng = Rng::keyed(3, &[]);
        for case in 0..300u64 {
            let nd = rng.below(4) as usize;
            let shape: Vec<usize> = (0..nd).map(|_| rng.below(5) as usize).collect();
            // Bytes as well as 16-bit values: blocks of 1 and 3 bytes (a pixel's channels).
            let t = match case % 2 {
                0 => tensor(&shape, case),
                _ => tensor(&shape, case)
                    .cast(crate::dtype::DType::UInt8)
                    .unwrap(),
            };
            let st = strides(&shape);
            for axis in 0..nd {
                let n = shape[axis];
                let want = by_element(&t, &shape, |idx| {
                    idx.iter()
                        .enumerate()
                        .map(|(a, &i)| {
                            if a == axis {
                                (n - 1 - i) * st[a]
                            } else {
                                i * st[a]
                            }
                        })
                        .sum()
                });
                assert_eq!(
                    flip_tensor(&t, axis).unwrap(),
                    want,
                    "flip {shape:?} axis {axis}"
                );
            }
            let size: Vec<usize> = shape
                .iter()
                .map(|&d| rng.below(d as u64 + 1) as usize)
                .collect();
            let offsets: Vec<usize> = size
                .iter()
                .zip(&shape)
                .map(|(&s, &d)| rng.below((d - s + 1) as u64) as usize)
                .collect();
            let want = by_element(&t, &size, |idx| {
                idx.iter()
                    .enumerate()
                    .map(|(a, &i)| (i + offsets[a]) * st[a])
                    .sum()
            });
            assert_eq!(
                copy_box(&t, &size, &offsets).unwrap(),
                want,
                "crop {shape:?} to {size:?} at {offsets:?}"
            );
        }
    }
}
