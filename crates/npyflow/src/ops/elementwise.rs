//! Chains of elementwise ops (cast, scale, affine, normalize) run block by block into an
//! output buffer, the seed's cast-and-scale in one pass.

use super::{Op, OpKind};
use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::Tensor;
use crate::tensor_ops::cast_bytes;

/// The seed's chain, `cast(float32)` then one `scale`/`affine`, from a source whose values
/// the float holds exactly (8- and 16-bit integers, bool, or the float itself): computed in
/// one pass, with the same single rounding the two ops make. Returns whether it applied.
/// The factor of a chain that only multiplies float32 values by a factor float32 holds
/// exactly (`scale(m)`, or `cast(float32)` then `scale(m)`, of float32 values), for
/// [`scale_f32`]; `None` for any other chain. A caller that applies one chain to many short
/// runs (the rows of an interleave, one at a time) asks once and skips the checks of
/// [`apply_elementwise_bytes`] for each run.
///
/// Exactness: the float32 product is the rounding of the exact product, as the float64 one
/// rounded to float32 is (both are exact before rounding: 24 + 24 bits fit in 53), so this
/// path gives the bits of the float64 computation. Eight lanes instead of four.
pub(crate) fn f32_factor(ops: &[&Op], from: DType, to: DType) -> Option<f32> {
    if from != DType::Float32 || to != DType::Float32 {
        return None;
    }
    let (factor, offset) = match ops {
        [cast, scale] => match (&cast.kind, &scale.kind) {
            (OpKind::Cast(DType::Float32), OpKind::Scale { factor, offset }) => (factor, offset),
            _ => return None,
        },
        [scale] => match &scale.kind {
            OpKind::Scale { factor, offset } => (factor, offset),
            _ => return None,
        },
        _ => return None,
    };
    let m = *factor as f32;
    (*offset == 0.0 && f64::from(m) == *factor).then_some(m)
}

/// `out = src * m` over float32 bytes (see [`f32_factor`]); false, writing nothing, where
/// either slice is not aligned for float32 or their lengths differ.
pub(crate) fn scale_f32(src: &[u8], m: f32, out: &mut [u8]) -> bool {
    let (Ok(s), Ok(o)) = (
        bytemuck::try_cast_slice::<u8, f32>(src),
        bytemuck::try_cast_slice_mut::<u8, f32>(out),
    ) else {
        return false;
    };
    if s.len() != o.len() {
        return false;
    }
    for (o, s) in o.iter_mut().zip(s) {
        *o = s * m;
    }
    true
}

pub(super) fn fused_cast_affine(
    ops: &[&Op],
    from: DType,
    src: &[u8],
    to: DType,
    out: &mut [u8],
) -> bool {
    let (factor, offset) = match ops {
        [cast, scale] => match (&cast.kind, &scale.kind) {
            (OpKind::Cast(d), OpKind::Scale { factor, offset }) if *d == to => (factor, offset),
            _ => return false,
        },
        [scale] => match &scale.kind {
            OpKind::Scale { factor, offset } if from == to => (factor, offset),
            _ => return false,
        },
        _ => return false,
    };
    if let Some(m) = f32_factor(ops, from, to) {
        if scale_f32(src, m, out) {
            return true;
        }
    }
    fn run<S: bytemuck::Pod + Into<f64>, D: bytemuck::Pod>(
        src: &[u8],
        out: &mut [u8],
        m: f64,
        a: f64,
        conv: impl Fn(f64) -> D,
    ) -> bool {
        let (Ok(s), Ok(o)) = (
            bytemuck::try_cast_slice::<u8, S>(src),
            bytemuck::try_cast_slice_mut::<u8, D>(out),
        ) else {
            return false;
        };
        for (o, s) in o.iter_mut().zip(s) {
            *o = conv((*s).into() * m + a);
        }
        true
    }
    let (m, a) = (*factor, *offset);
    // A division by an integer k (a factor of exactly 1/k), of integers below 2^24: the
    // float32 quotient is the rounding of x/k, and so is the float64 product rounded to
    // float32 (x/k is never within 2^-50 of a float32 rounding boundary without being on it),
    // so the faster float32 division gives the same bits.
    let k = (1.0 / m).round();
    if to == DType::Float32 && a == 0.0 && (1.0..16_777_216.0).contains(&k) && 1.0 / k == m {
        fn div<S: bytemuck::Pod + Into<f32>>(src: &[u8], out: &mut [u8], k: f32) -> bool {
            let (Ok(s), Ok(o)) = (
                bytemuck::try_cast_slice::<u8, S>(src),
                bytemuck::try_cast_slice_mut::<u8, f32>(out),
            ) else {
                return false;
            };
            // By k's reciprocal where that is proven to give the same bits.
            super::quotient::divide_integers(s, k, o);
            true
        }
        let k = k as f32;
        let done = match from {
            DType::UInt8 => div::<u8>(src, out, k),
            DType::Int8 => div::<i8>(src, out, k),
            DType::UInt16 => div::<u16>(src, out, k),
            DType::Int16 => div::<i16>(src, out, k),
            _ => false,
        };
        if done {
            return true;
        }
    }
    match (from, to) {
        (DType::UInt8, DType::Float32) => run::<u8, f32>(src, out, m, a, |v| v as f32),
        (DType::Int8, DType::Float32) => run::<i8, f32>(src, out, m, a, |v| v as f32),
        (DType::UInt16, DType::Float32) => run::<u16, f32>(src, out, m, a, |v| v as f32),
        (DType::Int16, DType::Float32) => run::<i16, f32>(src, out, m, a, |v| v as f32),
        (DType::Float32, DType::Float32) => run::<f32, f32>(src, out, m, a, |v| v as f32),
        (DType::Float64, DType::Float64) => run::<f64, f64>(src, out, m, a, |v| v),
        (DType::UInt8, DType::Float64) => run::<u8, f64>(src, out, m, a, |v| v),
        (DType::Int32, DType::Float64) => run::<i32, f64>(src, out, m, a, |v| v),
        (DType::Float32, DType::Float64) => run::<f32, f64>(src, out, m, a, |v| v),
        _ => false,
    }
}

/// Elements per block of [`apply_elementwise_into`]: small enough that a block's input and
/// output stay in the L1 cache between one op and the next.
const BLOCK: usize = 4096;

/// Writes the chain `ops` (elementwise, each on every tensor) applied to `src` into `dst`,
/// the bytes of the result (`out_dtype`). The chain runs block by block, each block through
/// every op while it is in cache.
pub(crate) fn apply_elementwise_into(
    ops: &[&Op],
    src: &Tensor,
    out_dtype: DType,
    dst: &mut [u8],
) -> Result<()> {
    apply_elementwise_bytes(
        ops,
        src.dtype(),
        src.shape(),
        src.as_bytes(),
        out_dtype,
        dst,
    )?;
    // What was read is the file's data only if a mapped file was not truncated meanwhile.
    src.check_intact()
}

/// [`apply_elementwise_into`] on raw bytes: `src` holds values of `from` (a tensor of
/// `shape`, or rows of one, as far as the ops care: its last axis), `dst` receives the
/// result. The caller checks that a mapped source was intact.
pub(crate) fn apply_elementwise_bytes(
    ops: &[&Op],
    from: DType,
    shape: &[usize],
    src: &[u8],
    out_dtype: DType,
    dst: &mut [u8],
) -> Result<()> {
    let channels = ops
        .iter()
        .map(|op| match &op.kind {
            OpKind::Normalize { mean, .. } => mean.len(),
            _ => 1,
        })
        .max()
        .unwrap_or(1);
    let block = (BLOCK / channels).max(1) * channels;
    let n = src.len() / from.itemsize().max(1);
    let casts = ops
        .iter()
        .filter(|op| matches!(op.kind, OpKind::Cast(_)))
        .count();
    let simple = casts == 0 || (casts == 1 && matches!(ops[0].kind, OpKind::Cast(_)));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut start = 0;
    while start < n {
        let end = (start + block).min(n);
        let src_block = &src[start * from.itemsize()..end * from.itemsize()];
        let out = &mut dst[start * out_dtype.itemsize()..end * out_dtype.itemsize()];
        if fused_cast_affine(ops, from, src_block, out_dtype, out) {
            // Done in one pass.
        } else if simple {
            // The usual chain, a cast then scalings: the cast writes the output in place.
            let mut rest = ops;
            match ops.first().map(|op| &op.kind) {
                Some(OpKind::Cast(d)) => {
                    cast_bytes(from, src_block, *d, out)?;
                    rest = &ops[1..];
                }
                _ => out.copy_from_slice(src_block),
            }
            for op in rest {
                op.apply_in_place(out_dtype, shape, out)?;
            }
        } else {
            // Any chain: through two scratch blocks.
            let mut dtype = from;
            a.clear();
            a.extend_from_slice(src_block);
            for op in ops {
                match &op.kind {
                    OpKind::Cast(d) => {
                        b.resize((end - start) * d.itemsize(), 0);
                        cast_bytes(dtype, &a, *d, &mut b)?;
                        std::mem::swap(&mut a, &mut b);
                        dtype = *d;
                    }
                    _ => op.apply_in_place(dtype, shape, &mut a)?,
                }
            }
            debug_assert_eq!(dtype, out_dtype);
            out.copy_from_slice(&a);
        }
        start = end;
    }
    Ok(())
}
