//! Whole-tensor operations the dataset layer needs: stacking rows into a batch, joining and
//! padding batches, casting between dtypes, scaling, and reading single values.

use half::f16;
use num_complex::Complex;

use crate::buffer::BufferMut;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{checked_nbytes, Tensor};

/// One value of a tensor, widened to the largest type of its kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A bool.
    Bool(bool),
    /// A signed integer, or a datetime64/timedelta64 count.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A float.
    Float(f64),
    /// A complex number (real, imaginary).
    Complex(f64, f64),
}

/// A number type a cast reads from or writes to. Going through [`Num`] costs nothing once
/// inlined: each (source, destination) pair is its own monomorphized loop.
trait Elem: bytemuck::Pod {
    fn to_num(self) -> Num;
    fn from_num(n: Num) -> Self;
}

/// A value in transit: integers stay in 64 bits (unsigned 64-bit ones apart) so that the
/// common casts compile to plain conversions.
#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    UInt(u64),
    Float(f64),
    Complex(f64, f64),
}

/// Integers and floats: `to_num` into the variant given, `from_num` by `as`, which does
/// what NumPy does: wraps integers around, truncates floats toward zero (saturating; NumPy
/// leaves the out-of-range and NaN cases to the platform), rounds to the nearest float, and
/// drops an imaginary part.
macro_rules! as_elem {
    ($variant:ident: $($t:ty),*) => {$(
        impl Elem for $t {
            #[inline(always)]
            fn to_num(self) -> Num { Num::$variant(self as _) }
            #[inline(always)]
            fn from_num(n: Num) -> Self {
                match n {
                    Num::Int(i) => i as $t,
                    Num::UInt(u) => u as $t,
                    Num::Float(f) | Num::Complex(f, _) => f as $t,
                }
            }
        }
    )*};
}
as_elem!(Int: i8, i16, i32, i64, u8, u16, u32);
as_elem!(UInt: u64);
as_elem!(Float: f32, f64);

impl Elem for f16 {
    #[inline(always)]
    fn to_num(self) -> Num {
        Num::Float(self.to_f64())
    }
    #[inline(always)]
    fn from_num(n: Num) -> Self {
        match n {
            Num::Int(i) => f16::from_f64(i as f64),
            Num::UInt(u) => f16::from_f64(u as f64),
            Num::Float(f) | Num::Complex(f, _) => f16::from_f64(f),
        }
    }
}

macro_rules! complex_elem {
    ($($t:ty),*) => {$(
        impl Elem for Complex<$t> {
            #[inline(always)]
            fn to_num(self) -> Num { Num::Complex(self.re as f64, self.im as f64) }
            #[inline(always)]
            fn from_num(n: Num) -> Self {
                match n {
                    Num::Int(i) => Complex::new(i as $t, 0.0),
                    Num::UInt(u) => Complex::new(u as $t, 0.0),
                    Num::Float(f) => Complex::new(f as $t, 0.0),
                    Num::Complex(re, im) => Complex::new(re as $t, im as $t),
                }
            }
        }
    )*};
}
complex_elem!(f32, f64);

/// A bool as a cast sees it: 0 or 1 in, any non-zero value out as 1.
#[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
#[repr(transparent)]
struct BoolByte(u8);

impl Elem for BoolByte {
    #[inline(always)]
    fn to_num(self) -> Num {
        Num::Int(i64::from(self.0 != 0))
    }
    #[inline(always)]
    fn from_num(n: Num) -> Self {
        BoolByte(u8::from(match n {
            Num::Int(i) => i != 0,
            Num::UInt(u) => u != 0,
            Num::Float(f) => f != 0.0,
            Num::Complex(re, im) => re != 0.0 || im != 0.0,
        }))
    }
}

/// Calls `$body` with `$T` bound to the Rust type of a numeric dtype; other dtypes go to
/// `$other`.
macro_rules! with_elem_type {
    ($dtype:expr, $T:ident => $body:expr, $other:expr) => {
        match $dtype {
            DType::Bool => {
                type $T = BoolByte;
                $body
            }
            DType::Int8 => {
                type $T = i8;
                $body
            }
            DType::Int16 => {
                type $T = i16;
                $body
            }
            DType::Int32 => {
                type $T = i32;
                $body
            }
            DType::Int64 => {
                type $T = i64;
                $body
            }
            DType::UInt8 => {
                type $T = u8;
                $body
            }
            DType::UInt16 => {
                type $T = u16;
                $body
            }
            DType::UInt32 => {
                type $T = u32;
                $body
            }
            DType::UInt64 => {
                type $T = u64;
                $body
            }
            DType::Float16 => {
                type $T = f16;
                $body
            }
            DType::Float32 => {
                type $T = f32;
                $body
            }
            DType::Float64 => {
                type $T = f64;
                $body
            }
            DType::Complex64 => {
                type $T = Complex<f32>;
                $body
            }
            DType::Complex128 => {
                type $T = Complex<f64>;
                $body
            }
            _ => $other,
        }
    };
}

fn is_numeric(d: DType) -> bool {
    matches!(d.kind(), 'b' | 'i' | 'u' | 'f' | 'c')
}

fn cast_slice<S: Elem, D: Elem>(src: &[S], dst: &mut [D]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = D::from_num(s.to_num());
    }
}

/// Reads `bytes` as `T` whatever their alignment: a view when aligned, a copy otherwise.
fn read_elems<T: bytemuck::Pod>(bytes: &[u8]) -> std::borrow::Cow<'_, [T]> {
    match bytemuck::try_cast_slice(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => std::borrow::Cow::Owned(bytemuck::pod_collect_to_vec(bytes)),
    }
}

/// Converts `src` (elements of `from`) into `dst` (elements of `to`) as
/// [`Tensor::cast`] does. `dst` must hold exactly as many elements; both numeric.
pub fn cast_bytes(from: DType, src: &[u8], to: DType, dst: &mut [u8]) -> Result<()> {
    if !is_numeric(from) || !is_numeric(to) {
        return Err(Error::InvalidArgument(format!(
            "cannot cast {from} to {to}: only bool, integer, float and complex tensors cast"
        )));
    }
    if from == to {
        dst.copy_from_slice(src);
        return Ok(());
    }
    with_elem_type!(from, S => {
        let s = read_elems::<S>(src);
        with_elem_type!(to, D => {
            match bytemuck::try_cast_slice_mut::<u8, D>(dst) {
                Ok(d) => cast_slice::<S, D>(&s, d),
                Err(_) => {
                    let mut tmp = vec![D::from_num(Num::Int(0)); s.len()];
                    cast_slice::<S, D>(&s, &mut tmp);
                    dst.copy_from_slice(bytemuck::cast_slice(&tmp));
                }
            }
        }, unreachable!("checked numeric above"))
    }, unreachable!("checked numeric above"));
    Ok(())
}

/// `x * mul[c] + add[c]` in place over float elements, computed in float64 and rounded once
/// to `dtype`; `c` runs over the last axis's `mul.len()` channels (one channel: a scalar).
pub fn affine_in_place(dtype: DType, buf: &mut [u8], mul: &[f64], add: &[f64]) -> Result<()> {
    fn apply<T: Copy>(
        data: &mut [T],
        mul: &[f64],
        add: &[f64],
        to: &impl Fn(T) -> f64,
        from: &impl Fn(f64) -> T,
    ) {
        if mul.len() == 1 {
            let (m, a) = (mul[0], add[0]);
            for v in data.iter_mut() {
                *v = from(to(*v) * m + a);
            }
        } else {
            for chunk in data.chunks_exact_mut(mul.len()) {
                for ((v, m), a) in chunk.iter_mut().zip(mul).zip(add) {
                    *v = from(to(*v) * m + a);
                }
            }
        }
    }
    fn run<T: bytemuck::Pod>(
        buf: &mut [u8],
        mul: &[f64],
        add: &[f64],
        to: impl Fn(T) -> f64,
        from: impl Fn(f64) -> T,
    ) {
        match bytemuck::try_cast_slice_mut::<u8, T>(buf) {
            Ok(d) => apply(d, mul, add, &to, &from),
            Err(_) => {
                let mut tmp = bytemuck::pod_collect_to_vec::<u8, T>(buf);
                apply(&mut tmp, mul, add, &to, &from);
                buf.copy_from_slice(bytemuck::cast_slice(&tmp));
            }
        }
    }
    match dtype {
        DType::Float32 => run::<f32>(buf, mul, add, f64::from, |v| v as f32),
        DType::Float64 => run::<f64>(buf, mul, add, |v| v, |v| v),
        DType::Float16 => run::<f16>(buf, mul, add, |v| v.to_f64(), f16::from_f64),
        other => {
            return Err(Error::InvalidArgument(format!(
                "cannot scale a {other} tensor: only float tensors scale (cast it first)"
            )))
        }
    }
    Ok(())
}

/// Whether `a` and `b` are strings of one kind (bytes, or unicode), whatever their widths.
pub fn same_string_kind(a: DType, b: DType) -> bool {
    a.string_width().is_some() && a.kind() == b.kind()
}

/// The tensors with their strings widened to the widest of them, as `np.stack` promotes
/// strings of one kind and different widths (`S3` and `S5` stack as `S5`), when they are
/// strings of one kind and not all of one width; `None` otherwise (nothing to widen, or
/// tensors that are not all strings of one kind, which the stack's own check reports).
pub fn widen_to_widest<'a>(
    tensors: impl Iterator<Item = &'a Tensor> + Clone,
) -> Result<Option<Vec<Tensor>>> {
    let mut all = tensors.clone();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    let kind = first.dtype();
    let Some(mut width) = kind.string_width() else {
        return Ok(None);
    };
    let mut differ = false;
    for t in all {
        if !same_string_kind(kind, t.dtype()) {
            return Ok(None);
        }
        let w = t.dtype().string_width().unwrap_or(0);
        differ |= w != width;
        width = width.max(w);
    }
    if !differ {
        return Ok(None);
    }
    tensors
        .map(|t| t.widen_strings(width))
        .collect::<Result<_>>()
        .map(Some)
}

/// An error naming the first tensor whose dtype or shape differs from the first one's: they
/// cannot be stacked into a batch.
pub fn check_stackable<'a>(mut tensors: impl Iterator<Item = &'a Tensor>) -> Result<()> {
    let Some(first) = tensors.next() else {
        return Ok(());
    };
    for (i, t) in tensors.enumerate() {
        if t.dtype() != first.dtype() || t.shape() != first.shape() {
            return Err(Error::Pipeline(format!(
                "cannot batch tensors of different shapes or dtypes: element 0 is {} {:?}, \
                 element {} is {} {:?} (padded_batch pads them to one shape)",
                first.dtype(),
                first.shape(),
                i + 1,
                t.dtype(),
                t.shape()
            )));
        }
    }
    Ok(())
}

impl Tensor {
    /// The tensor converted to `dtype`, as NumPy's `astype(dtype)` converts (unsafe casting):
    /// integers wrap around, floats truncate toward zero into integers, complex numbers lose
    /// their imaginary part, anything non-zero becomes `True`. Casting to the tensor's own
    /// dtype returns it unchanged, without a copy.
    ///
    /// Differs from NumPy where NumPy leaves the result to the platform: a NaN or an
    /// out-of-range float cast to an integer saturates (NaN becomes 0). Only numeric dtypes
    /// (bool, integers, floats, complex) can be cast.
    ///
    /// ```
    /// use npyflow_format::{DType, Tensor};
    /// let t = Tensor::from_vec(vec![0u8, 128, 255], &[3]).unwrap();
    /// let f = t.cast(DType::Float32).unwrap();
    /// assert_eq!(f.view::<f32>().unwrap(), &[0.0, 128.0, 255.0]);
    /// let back = Tensor::from_vec(vec![-1.7f64, 2.9], &[2]).unwrap().cast(DType::Int8).unwrap();
    /// assert_eq!(back.view::<i8>().unwrap(), &[-1, 2]);
    /// ```
    pub fn cast(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() && is_numeric(dtype) {
            return Ok(self.clone());
        }
        let nbytes = checked_nbytes(dtype, self.shape())?;
        let mut out = BufferMut::zeroed(nbytes)?;
        cast_bytes(self.dtype(), self.as_bytes(), dtype, out.as_mut_slice())?;
        // What was read is the file's data only if the file was not truncated meanwhile.
        self.check_intact()?;
        Tensor::new(dtype, self.shape(), out.freeze())
    }

    /// `self * factor + offset`, element by element, computed in float64 and rounded once to
    /// the tensor's own float dtype (so `scale(1.0 / 255.0, 0.0)` of 51 gives exactly the
    /// float32 nearest 0.2, as NumPy's `x / 255` does).
    ///
    /// Only float tensors scale: cast integers first, as the seed's `tf.cast(x, tf.float32)
    /// / 255` does.
    ///
    /// ```
    /// use npyflow_format::{DType, Tensor};
    /// let t = Tensor::from_vec(vec![0f32, 51.0, 255.0], &[3]).unwrap();
    /// let s = t.scale(1.0 / 255.0, 0.0).unwrap();
    /// assert_eq!(s.view::<f32>().unwrap(), &[0.0, 0.2, 1.0]);
    /// ```
    pub fn scale(&self, factor: f64, offset: f64) -> Result<Tensor> {
        let mut out = BufferMut::zeroed(self.nbytes())?;
        out.as_mut_slice().copy_from_slice(self.as_bytes());
        self.check_intact()?;
        affine_in_place(self.dtype(), out.as_mut_slice(), &[factor], &[offset])?;
        Tensor::new(self.dtype(), self.shape(), out.freeze())
    }

    /// Value `index` of the flattened tensor (C order), widened; `None` for string dtypes.
    pub fn value(&self, index: usize) -> Result<Option<Value>> {
        if index >= self.size() {
            return Err(Error::OutOfRange {
                index,
                len: self.size(),
            });
        }
        let size = self.dtype().itemsize();
        let b = &self.as_bytes()[index * size..(index + 1) * size];
        fn get<T: bytemuck::Pod>(b: &[u8]) -> T {
            bytemuck::pod_read_unaligned(b)
        }
        Ok(Some(match self.dtype() {
            DType::Bool => Value::Bool(b[0] != 0),
            DType::Int8 => Value::Int(get::<i8>(b).into()),
            DType::Int16 => Value::Int(get::<i16>(b).into()),
            DType::Int32 => Value::Int(get::<i32>(b).into()),
            DType::Int64 | DType::DateTime64(_) | DType::TimeDelta64(_) => {
                Value::Int(get::<i64>(b))
            }
            DType::UInt8 => Value::UInt(b[0].into()),
            DType::UInt16 => Value::UInt(get::<u16>(b).into()),
            DType::UInt32 => Value::UInt(get::<u32>(b).into()),
            DType::UInt64 => Value::UInt(get::<u64>(b)),
            DType::Float16 => Value::Float(get::<f16>(b).to_f64()),
            DType::Float32 => Value::Float(get::<f32>(b).into()),
            DType::Float64 => Value::Float(get::<f64>(b)),
            DType::Complex64 => {
                let c = get::<Complex<f32>>(b);
                Value::Complex(c.re.into(), c.im.into())
            }
            DType::Complex128 => {
                let c = get::<Complex<f64>>(b);
                Value::Complex(c.re, c.im)
            }
            DType::Bytes(_) | DType::Unicode(_) => return Ok(None),
        }))
    }

    /// The value of a scalar (or one-element) integer tensor as `i64`; errors name `what`.
    pub fn to_i64_scalar(&self, what: &str) -> Result<i64> {
        if self.size() != 1 || !matches!(self.dtype().kind(), 'i' | 'u') {
            return Err(Error::Pipeline(format!(
                "{what} must be an integer scalar, got a {} tensor of shape {:?}",
                self.dtype(),
                self.shape()
            )));
        }
        match self.value(0)? {
            Some(Value::Int(i)) => Ok(i),
            Some(Value::UInt(u)) => i64::try_from(u)
                .map_err(|_| Error::Pipeline(format!("{what} {u} does not fit in an int64"))),
            _ => unreachable!("checked integer above"),
        }
    }

    /// The value of a scalar bool tensor; errors name `what`.
    pub fn to_bool_scalar(&self, what: &str) -> Result<bool> {
        if self.dtype() != DType::Bool || self.ndim() != 0 {
            return Err(Error::Pipeline(format!(
                "{what} must return a scalar bool, got a {} tensor of shape {:?}",
                self.dtype(),
                self.shape()
            )));
        }
        Ok(self.as_bytes()[0] != 0)
    }

    /// The tensor's strings at `width` characters, null-padded, as NumPy's `astype` widens a
    /// string array (`S3` to `S5`: `b"abc"` stays `b"abc"`). A string tensor already that
    /// wide comes back as it is, without a copy. Errors when the tensor is not a string
    /// tensor, or its strings are wider than `width` (they would be cut).
    ///
    /// ```
    /// use npyflow_format::{Buffer, DType, Tensor};
    /// let t = Tensor::new(DType::Bytes(2), &[2], Buffer::from_vec(b"abcd".to_vec()))?;
    /// let wide = t.widen_strings(3)?;
    /// assert_eq!(wide.dtype(), DType::Bytes(3));
    /// assert_eq!(wide.as_bytes(), b"ab\0cd\0");
    /// # Ok::<(), npyflow_format::Error>(())
    /// ```
    pub fn widen_strings(&self, width: usize) -> Result<Tensor> {
        let have = match self.dtype().string_width() {
            Some(n) if n <= width => n,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "cannot widen a {} tensor to strings of {width} characters: only string \
                     tensors at most that wide widen",
                    self.dtype()
                )))
            }
        };
        if have == width {
            return Ok(self.clone());
        }
        let dtype = self.dtype().with_string_width(width);
        let nbytes = checked_nbytes(dtype, self.shape())?;
        let mut out = BufferMut::zeroed(nbytes)?;
        let (from, to) = (self.dtype().itemsize(), dtype.itemsize());
        if from > 0 {
            for (dst, src) in out
                .as_mut_slice()
                .chunks_exact_mut(to)
                .zip(self.as_bytes().chunks_exact(from))
            {
                dst[..from].copy_from_slice(src);
            }
        }
        self.check_intact()?;
        Tensor::new(dtype, self.shape(), out.freeze())
    }

    /// Stacks tensors of one dtype and shape along a new first axis, like `np.stack`; strings
    /// of one kind and different widths stack at the widest, as NumPy promotes them.
    ///
    /// ```
    /// use npyflow_format::Tensor;
    /// let rows = [Tensor::from_vec(vec![1i64, 2], &[2])?, Tensor::from_vec(vec![3i64, 4], &[2])?];
    /// let b = Tensor::stack(&rows)?;
    /// assert_eq!(b.shape(), &[2, 2]);
    /// assert_eq!(b.view::<i64>()?, &[1, 2, 3, 4]);
    /// # Ok::<(), npyflow_format::Error>(())
    /// ```
    pub fn stack(tensors: &[Tensor]) -> Result<Tensor> {
        if let Some(wide) = widen_to_widest(tensors.iter())? {
            return Tensor::stack(&wide);
        }
        let Some(first) = tensors.first() else {
            return Err(Error::InvalidArgument("cannot stack no tensors".into()));
        };
        check_stackable(tensors.iter())?;
        let mut shape = vec![tensors.len()];
        shape.extend_from_slice(first.shape());
        let nbytes = checked_nbytes(first.dtype(), &shape)?;
        let mut out = BufferMut::zeroed(nbytes)?;
        let step = first.nbytes();
        for (chunk, t) in out
            .as_mut_slice()
            .chunks_exact_mut(step.max(1))
            .zip(tensors)
        {
            chunk.copy_from_slice(t.as_bytes());
        }
        for t in tensors {
            t.check_intact()?;
        }
        Tensor::new(first.dtype(), &shape, out.freeze())
    }

    /// Joins tensors along their first axis, like `np.concatenate`. One tensor comes back
    /// as it is; several consecutive slices of one buffer come back as one slice, no copy.
    /// Strings of one kind and different widths join at the widest, as NumPy promotes them.
    pub fn concat_rows(tensors: &[Tensor]) -> Result<Tensor> {
        let Some(first) = tensors.first() else {
            return Err(Error::InvalidArgument(
                "cannot concatenate no tensors".into(),
            ));
        };
        if tensors.len() == 1 {
            return Ok(first.clone());
        }
        if let Some(wide) = widen_to_widest(tensors.iter())? {
            return Tensor::concat_rows(&wide);
        }
        let mut rows = 0usize;
        for t in tensors {
            if t.ndim() == 0 || t.dtype() != first.dtype() || t.shape()[1..] != first.shape()[1..] {
                return Err(Error::Pipeline(format!(
                    "cannot join a {} tensor of shape {:?} to one of shape {:?} along the first \
                     axis",
                    t.dtype(),
                    t.shape(),
                    first.shape()
                )));
            }
            rows += t.shape()[0];
        }
        let mut shape = first.shape().to_vec();
        shape[0] = rows;
        let mut out = BufferMut::zeroed(checked_nbytes(first.dtype(), &shape)?)?;
        let mut at = 0;
        for t in tensors {
            out.as_mut_slice()[at..at + t.nbytes()].copy_from_slice(t.as_bytes());
            at += t.nbytes();
        }
        for t in tensors {
            t.check_intact()?;
        }
        Tensor::new(first.dtype(), &shape, out.freeze())
    }

    /// The tensor padded at the end of each axis to `shape` with `fill` (a scalar of the
    /// same dtype), like `tf.pad` with zero leading padding.
    pub fn pad_to(&self, shape: &[usize], fill: &Tensor) -> Result<Tensor> {
        if shape.len() != self.ndim()
            || shape
                .iter()
                .zip(self.shape())
                .any(|(&want, &have)| want < have)
        {
            return Err(Error::Pipeline(format!(
                "cannot pad a tensor of shape {:?} to {shape:?}",
                self.shape()
            )));
        }
        if fill.dtype() != self.dtype() || fill.size() != 1 {
            return Err(Error::InvalidArgument(format!(
                "the padding value must be a {} scalar, got a {} tensor of shape {:?}",
                self.dtype(),
                fill.dtype(),
                fill.shape()
            )));
        }
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let item = self.dtype().itemsize();
        let nbytes = checked_nbytes(self.dtype(), shape)?;
        let mut out = BufferMut::zeroed(nbytes)?;
        let dst = out.as_mut_slice();
        if fill.as_bytes().iter().any(|&b| b != 0) && item > 0 {
            for chunk in dst.chunks_exact_mut(item) {
                chunk.copy_from_slice(fill.as_bytes());
            }
        }
        if self.size() > 0 {
            // Copy each innermost row of the source to its place in the padded output.
            let inner = self.shape()[self.ndim() - 1] * item;
            let outer = self.size() / self.shape()[self.ndim() - 1].max(1);
            let mut idx = vec![0usize; self.ndim().saturating_sub(1)];
            let src = self.as_bytes();
            for r in 0..outer {
                let mut off = 0;
                for (a, &i) in idx.iter().enumerate() {
                    off = (off + i) * shape[a + 1];
                }
                let off = off * item;
                dst[off..off + inner].copy_from_slice(&src[r * inner..(r + 1) * inner]);
                for a in (0..idx.len()).rev() {
                    idx[a] += 1;
                    if idx[a] < self.shape()[a] {
                        break;
                    }
                    idx[a] = 0;
                }
            }
        }
        self.check_intact()?;
        Tensor::new(self.dtype(), shape, out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::Buffer;

    #[test]
    fn casts_follow_numpy() {
        let t = Tensor::from_vec(vec![-1i16, 300, 0], &[3]).unwrap();
        assert_eq!(
            t.cast(DType::UInt8).unwrap().view::<u8>().unwrap(),
            &[255, 44, 0]
        );
        assert_eq!(
            t.cast(DType::Bool).unwrap().to_bools().unwrap(),
            vec![true, true, false]
        );
        let c = Tensor::from_vec(vec![Complex::new(2.5f64, 1.0)], &[1]).unwrap();
        assert_eq!(
            c.cast(DType::Float32).unwrap().view::<f32>().unwrap(),
            &[2.5]
        );
        let b = Tensor::from_bools(&[true, false], &[2]).unwrap();
        assert_eq!(
            b.cast(DType::Float64).unwrap().view::<f64>().unwrap(),
            &[1.0, 0.0]
        );
        let h = Tensor::from_vec(vec![u64::MAX], &[1]).unwrap();
        assert_eq!(h.cast(DType::Int64).unwrap().view::<i64>().unwrap(), &[-1]);
        let nan = Tensor::from_vec(vec![f32::NAN, 1e10], &[2]).unwrap();
        assert_eq!(
            nan.cast(DType::Int32).unwrap().view::<i32>().unwrap(),
            &[0, i32::MAX]
        );
        assert!(Tensor::zeros(DType::Bytes(2), &[1])
            .unwrap()
            .cast(DType::Int8)
            .is_err());
        // Same dtype: no copy.
        assert!(t
            .cast(DType::Int16)
            .unwrap()
            .buffer()
            .shares_owner_with(t.buffer()));
    }

    #[test]
    fn strings_of_different_widths_stack_at_the_widest() {
        let bytes = |text: &[u8], n: usize| {
            let mut v = text.to_vec();
            v.resize(n, 0);
            Tensor::new(DType::Bytes(n), &[], Buffer::from_vec(v)).unwrap()
        };
        let (a, b) = (bytes(b"a", 1), bytes(b"bcd", 3));
        let s = Tensor::stack(&[a.clone(), b.clone(), a.clone()]).unwrap();
        assert_eq!(s.dtype(), DType::Bytes(3));
        assert_eq!(s.shape(), &[3]);
        assert_eq!(s.as_bytes(), b"a\0\0bcda\0\0");
        // Unicode: 4 bytes a character, padded with zero characters.
        let u = |c: &[u32]| {
            let bytes: Vec<u8> = c.iter().flat_map(|x| x.to_le_bytes()).collect();
            Tensor::new(DType::Unicode(c.len()), &[], Buffer::from_vec(bytes)).unwrap()
        };
        let s = Tensor::stack(&[u(&[0x41, 0x42]), u(&[0x43])]).unwrap();
        assert_eq!(s.dtype(), DType::Unicode(2));
        let words: Vec<u32> = s
            .as_bytes()
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(words, [0x41, 0x42, 0x43, 0]);
        // Kinds do not mix, and strings are never cut.
        assert!(Tensor::stack(&[a.clone(), u(&[0x41])]).is_err());
        assert!(b.widen_strings(2).is_err());
        assert!(Tensor::scalar(1i32).widen_strings(4).is_err());
        assert!(widen_to_widest([&a, &a].into_iter()).unwrap().is_none());
    }

    #[test]
    fn scale_needs_floats() {
        let t = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
        assert_eq!(
            t.scale(2.0, 1.0).unwrap().view::<f64>().unwrap(),
            &[3.0, 5.0]
        );
        assert!(Tensor::scalar(1i32).scale(2.0, 0.0).is_err());
    }

    #[test]
    fn stack_concat_pad() {
        let a = Tensor::from_vec(vec![1i32, 2], &[2]).unwrap();
        let b = Tensor::from_vec(vec![3i32], &[1]).unwrap();
        let e = Tensor::stack(&[a.clone(), b.clone()]).unwrap_err();
        assert!(e.to_string().contains("element 1"), "{e}");
        let c = Tensor::concat_rows(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(c.view::<i32>().unwrap(), &[1, 2, 3]);
        let m = Tensor::from_vec(vec![1i32, 2, 3, 4], &[2, 2]).unwrap();
        let p = m.pad_to(&[3, 3], &Tensor::scalar(-1i32)).unwrap();
        assert_eq!(p.view::<i32>().unwrap(), &[1, 2, -1, 3, 4, -1, -1, -1, -1]);
        assert!(m.pad_to(&[1, 3], &Tensor::scalar(0i32)).is_err());
        assert!(m.pad_to(&[3, 3], &Tensor::scalar(0i64)).is_err());
        let empty = Tensor::zeros(DType::Float32, &[0, 2]).unwrap();
        assert_eq!(
            empty
                .pad_to(&[2, 2], &Tensor::scalar(0f32))
                .unwrap()
                .shape(),
            &[2, 2]
        );
    }

    #[test]
    fn scalars() {
        assert_eq!(Tensor::scalar(7u16).to_i64_scalar("x").unwrap(), 7);
        assert!(Tensor::scalar(7.0f32).to_i64_scalar("x").is_err());
        assert!(Tensor::from_bools(&[true], &[])
            .unwrap()
            .to_bool_scalar("p")
            .unwrap());
        assert!(Tensor::from_bools(&[true], &[1])
            .unwrap()
            .to_bool_scalar("p")
            .is_err());
    }
}
