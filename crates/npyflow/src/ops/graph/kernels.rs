//! The typed loops of the op graph: casts, unary and binary math with NumPy's rules,
//! broadcasting, strided copies (slices, flips, transposes), concatenation and reductions.
//!
//! Every loop works on whole C-order tensors. A result NumPy leaves to the platform (a float
//! cast to an integer it does not fit, the sign of a zero from a max over both zeros) is
//! reported as undefined (`Ok(None)`) rather than made up, so that a traced Python function
//! can run in Python for that element instead.

use std::borrow::Cow;

use bytemuck::{Pod, Zeroable};

use super::kinds::{BinaryOp, ReduceOp, UnaryOp};
use crate::buffer::Buffer;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A NumPy bool as stored: one byte, 0 or 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Pod, Zeroable)]
#[repr(transparent)]
pub(super) struct B(pub(super) u8);

/// A number read for a cast: every element type widens to one of these without loss.
#[derive(Clone, Copy)]
pub(super) enum Wide {
    I(i64),
    U(u64),
    F32(f32),
    F64(f64),
}

/// A value cast to a float type as `as` casts it: the same as
/// `f32::from_wide_saturating(self.wide())` (one rounding of the exact value), in one
/// conversion the compiler can vectorize.
pub(super) trait ToFloat: Copy {
    fn to_f32(self) -> f32;
    fn to_f64(self) -> f64;
}

macro_rules! to_float {
    ($($t:ty),*) => {$(
        impl ToFloat for $t {
            #[inline(always)]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}

to_float!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl ToFloat for B {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f32::from(u8::from(self.0 != 0))
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(u8::from(self.0 != 0))
    }
}

/// An element type of the graph: bool, the integers, float32 and float64.
pub(super) trait Elem: Pod + PartialOrd + ToFloat + Send + Sync + 'static {
    fn wide(self) -> Wide;
    /// The cast of `w`, or `None` where NumPy's result is the platform's (a float that does
    /// not fit the integer type, or NaN).
    fn from_wide(w: Wide) -> Option<Self>;
    /// The cast as Rust's `as` makes it (saturating), for graphs without a fallback.
    fn from_wide_saturating(w: Wide) -> Self;
    fn unary(op: UnaryOp, a: Self) -> Self;
    fn binary(op: BinaryOp, a: Self, b: Self) -> Self;
    fn is_nonzero(self) -> bool;
    fn is_nan(self) -> bool;
    fn is_inf(self) -> bool;
    fn is_zero_with_sign(self) -> Option<bool>;
    fn zero() -> Self;
    fn one() -> Self;
}

macro_rules! int_elem {
    ($($t:ty => $wide:ident, $signed:expr);* $(;)?) => {$(
        impl Elem for $t {
            fn wide(self) -> Wide {
                Wide::$wide(self as _)
            }
            fn from_wide(w: Wide) -> Option<Self> {
                Some(match w {
                    Wide::I(v) => v as $t,
                    Wide::U(v) => v as $t,
                    Wide::F32(v) => return float_to_int(f64::from(v)).and_then(|t| fit::<$t>(t)),
                    Wide::F64(v) => return float_to_int(v).and_then(|t| fit::<$t>(t)),
                })
            }
            fn from_wide_saturating(w: Wide) -> Self {
                match w {
                    Wide::I(v) => v as $t,
                    Wide::U(v) => v as $t,
                    Wide::F32(v) => v as $t,
                    Wide::F64(v) => v as $t,
                }
            }
            fn unary(op: UnaryOp, a: Self) -> Self {
                match op {
                    UnaryOp::Negative => a.wrapping_neg(),
                    UnaryOp::Abs => {
                        if $signed && a < (0 as $t) { a.wrapping_neg() } else { a }
                    }
                    UnaryOp::Square => a.wrapping_mul(a),
                    UnaryOp::Sign => {
                        if a > (0 as $t) { 1 } else if a == (0 as $t) { 0 } else { (0 as $t).wrapping_sub(1) }
                    }
                    UnaryOp::Invert => !a,
                    _ => a,
                }
            }
            fn binary(op: BinaryOp, a: Self, b: Self) -> Self {
                match op {
                    BinaryOp::Add => a.wrapping_add(b),
                    BinaryOp::Subtract => a.wrapping_sub(b),
                    BinaryOp::Multiply => a.wrapping_mul(b),
                    // NumPy: a division by zero is 0 (with a warning), MIN // -1 wraps to MIN.
                    BinaryOp::FloorDivide => {
                        if b == 0 {
                            0
                        } else {
                            let q = a.wrapping_div(b);
                            if $signed && a.wrapping_rem(b) != 0 && ((a < (0 as $t)) != (b < (0 as $t))) {
                                q.wrapping_sub(1)
                            } else {
                                q
                            }
                        }
                    }
                    BinaryOp::Remainder => {
                        if b == 0 {
                            0
                        } else {
                            let r = a.wrapping_rem(b);
                            if $signed && r != 0 && ((r < (0 as $t)) != (b < (0 as $t))) {
                                r.wrapping_add(b)
                            } else {
                                r
                            }
                        }
                    }
                    BinaryOp::Maximum => if a >= b { a } else { b },
                    BinaryOp::Minimum => if a <= b { a } else { b },
                    BinaryOp::BitwiseAnd => a & b,
                    BinaryOp::BitwiseOr => a | b,
                    BinaryOp::BitwiseXor => a ^ b,
                    _ => a,
                }
            }
            fn is_nonzero(self) -> bool { self != 0 }
            fn is_nan(self) -> bool { false }
            fn is_inf(self) -> bool { false }
            fn is_zero_with_sign(self) -> Option<bool> { None }
            fn zero() -> Self { 0 }
            fn one() -> Self { 1 }
        }
    )*};
}

int_elem! {
    i8 => I, true; i16 => I, true; i32 => I, true; i64 => I, true;
    u8 => U, false; u16 => U, false; u32 => U, false; u64 => U, false;
}

/// The truncation of a float toward zero, when finite.
fn float_to_int(v: f64) -> Option<f64> {
    v.is_finite().then(|| v.trunc())
}

/// `t` (an integer-valued float) as `T` when `T` holds it exactly.
fn fit<T: TryFrom<i128>>(t: f64) -> Option<T> {
    // Integer-valued floats within +-2^127 convert to i128 exactly.
    if t.abs() >= 1.7e38 {
        return None;
    }
    T::try_from(t as i128).ok()
}

/// NumPy's `npy_divmod`: the floor quotient and the remainder with the divisor's sign.
macro_rules! float_elem {
    ($($t:ty => $wide:ident);* $(;)?) => {$(
        impl Elem for $t {
            fn wide(self) -> Wide {
                Wide::$wide(self)
            }
            fn from_wide(w: Wide) -> Option<Self> {
                Some(Self::from_wide_saturating(w))
            }
            fn from_wide_saturating(w: Wide) -> Self {
                match w {
                    Wide::I(v) => v as $t,
                    Wide::U(v) => v as $t,
                    Wide::F32(v) => v as $t,
                    Wide::F64(v) => v as $t,
                }
            }
            fn unary(op: UnaryOp, a: Self) -> Self {
                match op {
                    UnaryOp::Negative => -a,
                    UnaryOp::Abs => a.abs(),
                    UnaryOp::Square => a * a,
                    UnaryOp::Sqrt => a.sqrt(),
                    UnaryOp::Floor => a.floor(),
                    UnaryOp::Ceil => a.ceil(),
                    UnaryOp::Trunc => a.trunc(),
                    UnaryOp::Rint => a.round_ties_even(),
                    UnaryOp::Reciprocal => 1.0 / a,
                    UnaryOp::Sign => {
                        if a > 0.0 { 1.0 } else if a < 0.0 { -1.0 } else if a == 0.0 { 0.0 } else { a }
                    }
                    _ => a,
                }
            }
            fn binary(op: BinaryOp, a: Self, b: Self) -> Self {
                match op {
                    BinaryOp::Add => a + b,
                    BinaryOp::Subtract => a - b,
                    BinaryOp::Multiply => a * b,
                    BinaryOp::Divide => a / b,
                    BinaryOp::FloorDivide => {
                        if b == 0.0 { a / b } else { divmod(a, b).0 }
                    }
                    BinaryOp::Remainder => {
                        if b == 0.0 { a % b } else { divmod(a, b).1 }
                    }
                    // NumPy's: NaN wins (the first), and equal values give the second.
                    BinaryOp::Maximum => if a > b || a.is_nan() { a } else { b },
                    BinaryOp::Minimum => if a < b || a.is_nan() { a } else { b },
                    _ => a,
                }
            }
            fn is_nonzero(self) -> bool { self != 0.0 }
            fn is_nan(self) -> bool { <$t>::is_nan(self) }
            fn is_inf(self) -> bool { <$t>::is_infinite(self) }
            fn is_zero_with_sign(self) -> Option<bool> {
                (self == 0.0).then(|| self.is_sign_negative())
            }
            fn zero() -> Self { 0.0 }
            fn one() -> Self { 1.0 }
        }
    )*};
}

float_elem! { f32 => F32; f64 => F64 }

/// NumPy's `npy_divmod` for a non-zero divisor, in the type's own precision.
fn divmod<T: num_like::Float>(a: T, b: T) -> (T, T) {
    let zero = T::ZERO;
    let mut m = a % b;
    let mut div = (a - m) / b;
    if m != zero {
        if (b < zero) != (m < zero) {
            m = m + b;
            div = div - T::ONE;
        }
    } else {
        m = zero.copysign(b);
    }
    let floordiv = if div != zero {
        let mut f = div.floor();
        if div - f > T::HALF {
            f = f + T::ONE;
        }
        f
    } else {
        zero.copysign(a / b)
    };
    (floordiv, m)
}

mod num_like {
    use std::ops::{Add, Div, Rem, Sub};

    pub(super) trait Float:
        Copy
        + PartialOrd
        + Add<Output = Self>
        + Sub<Output = Self>
        + Div<Output = Self>
        + Rem<Output = Self>
    {
        const ZERO: Self;
        const ONE: Self;
        const HALF: Self;
        fn floor(self) -> Self;
        fn copysign(self, sign: Self) -> Self;
    }

    macro_rules! float {
        ($($t:ty),*) => {$(
            impl Float for $t {
                const ZERO: Self = 0.0;
                const ONE: Self = 1.0;
                const HALF: Self = 0.5;
                fn floor(self) -> Self { <$t>::floor(self) }
                fn copysign(self, sign: Self) -> Self { <$t>::copysign(self, sign) }
            }
        )*};
    }
    float!(f32, f64);
}

impl Elem for B {
    fn wide(self) -> Wide {
        Wide::U(u64::from(self.0 != 0))
    }
    fn from_wide(w: Wide) -> Option<Self> {
        Some(Self::from_wide_saturating(w))
    }
    fn from_wide_saturating(w: Wide) -> Self {
        B(u8::from(match w {
            Wide::I(v) => v != 0,
            Wide::U(v) => v != 0,
            Wide::F32(v) => v != 0.0,
            Wide::F64(v) => v != 0.0,
        }))
    }
    fn unary(op: UnaryOp, a: Self) -> Self {
        match op {
            UnaryOp::Invert | UnaryOp::LogicalNot => B(u8::from(a.0 == 0)),
            _ => a,
        }
    }
    fn binary(op: BinaryOp, a: Self, b: Self) -> Self {
        let (x, y) = (a.0 != 0, b.0 != 0);
        B(u8::from(match op {
            BinaryOp::Maximum | BinaryOp::BitwiseOr | BinaryOp::LogicalOr => x | y,
            BinaryOp::Minimum | BinaryOp::BitwiseAnd | BinaryOp::LogicalAnd => x & y,
            BinaryOp::BitwiseXor | BinaryOp::LogicalXor => x ^ y,
            _ => x,
        }))
    }
    fn is_nonzero(self) -> bool {
        self.0 != 0
    }
    fn is_nan(self) -> bool {
        false
    }
    fn is_inf(self) -> bool {
        false
    }
    fn is_zero_with_sign(self) -> Option<bool> {
        None
    }
    fn zero() -> Self {
        B(0)
    }
    fn one() -> Self {
        B(1)
    }
}

/// Runs `$body` with `$T` the element type of `$dtype`, or gives `$other`.
macro_rules! with_elem_or {
    ($dtype:expr, $T:ident => $body:expr, $other:expr) => {
        match $dtype {
            DType::Bool => {
                type $T = B;
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
            DType::Float32 => {
                type $T = f32;
                $body
            }
            DType::Float64 => {
                type $T = f64;
                $body
            }
            _ => $other,
        }
    };
}

/// Runs `$body` with `$T` the element type of `$dtype` (one the graph supports); any other
/// dtype returns an error from the enclosing function.
macro_rules! with_elem {
    ($dtype:expr, $T:ident => $body:expr) => {
        with_elem_or!($dtype, $T => $body, {
            return Err(Error::InvalidArgument(format!(
                "the op graph has no {} tensors (bool, integers, float32 and float64 only)",
                $dtype
            )));
        })
    };
}

/// Whether the graph computes with tensors of `d`.
pub(super) fn is_supported(d: DType) -> bool {
    matches!(
        d,
        DType::Bool
            | DType::Int8
            | DType::Int16
            | DType::Int32
            | DType::Int64
            | DType::UInt8
            | DType::UInt16
            | DType::UInt32
            | DType::UInt64
            | DType::Float32
            | DType::Float64
    )
}

/// The elements of `t` as `T` (a view when aligned, a copy otherwise).
pub(super) fn read<T: Pod>(t: &Tensor) -> Cow<'_, [T]> {
    match bytemuck::try_cast_slice(t.as_bytes()) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytemuck::pod_collect_to_vec(t.as_bytes())),
    }
}

/// A tensor of `dtype` and `shape` holding `data`.
pub(super) fn tensor_of<T: Pod + Send + Sync>(
    dtype: DType,
    shape: &[usize],
    data: Vec<T>,
) -> Result<Tensor> {
    Tensor::new(dtype, shape, Buffer::from_vec(data))
}

/// `t` cast to `to`; `None` where a value has no defined result and `strict`.
pub(super) fn cast(t: &Tensor, to: DType, strict: bool) -> Result<Option<Tensor>> {
    if t.dtype() == to {
        return Ok(Some(t.clone()));
    }
    with_elem!(t.dtype(), S => {
        let src = read::<S>(t);
        with_elem!(to, D => {
            let mut out: Vec<D> = Vec::new();
            out.try_reserve_exact(src.len()).map_err(|_| Error::Alloc { bytes: src.len() * to.itemsize() })?;
            // Only a float cast to an integer type can be undefined: check those values
            // first, then convert every value in one loop (the same value where defined).
            let checks = strict && t.dtype().kind() == 'f' && matches!(to.kind(), 'i' | 'u');
            if checks && !src.iter().all(|&s| D::from_wide(s.wide()).is_some()) {
                return Ok(None);
            }
            out.extend(src.iter().map(|&s| D::from_wide_saturating(s.wide())));
            tensor_of(to, t.shape(), out).map(Some)
        })
    })
}

/// A unary op on every element (the dtype checked by the builder).
pub(super) fn unary(op: UnaryOp, t: &Tensor) -> Result<Tensor> {
    with_elem!(t.dtype(), T => {
        let src = read::<T>(t);
        match op {
            UnaryOp::IsNan | UnaryOp::IsInf | UnaryOp::IsFinite | UnaryOp::LogicalNot => {
                let out: Vec<B> = src.iter().map(|&a| B(u8::from(match op {
                    UnaryOp::IsNan => a.is_nan(),
                    UnaryOp::IsInf => a.is_inf(),
                    UnaryOp::IsFinite => !a.is_nan() && !a.is_inf(),
                    _ => !a.is_nonzero(),
                }))).collect();
                tensor_of(DType::Bool, t.shape(), out)
            }
            _ => {
                macro_rules! per_op {
                    ($($op:ident),*) => {
                        match op {
                            $(UnaryOp::$op => src.iter().map(|&a| T::unary(UnaryOp::$op, a)).collect(),)*
                            _ => src.iter().map(|&a| T::unary(op, a)).collect(),
                        }
                    };
                }
                let out: Vec<T> = per_op!(Negative, Abs, Square, Sqrt, Floor, Ceil, Rint);
                tensor_of(t.dtype(), t.shape(), out)
            }
        }
    })
}

/// The broadcast shape of `shapes` (NumPy's rule), or an error naming them.
pub(super) fn broadcast_shapes(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[rank - s.len() + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(Error::Pipeline(format!(
                    "shapes {shapes:?} do not broadcast together"
                )));
            }
        }
    }
    Ok(out)
}

/// Element strides (0 on broadcast axes) of a C-order tensor of `shape` read as `out`.
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let mut strides = vec![0usize; out.len()];
    let mut step = 1usize;
    for i in (0..shape.len()).rev() {
        let o = out.len() - shape.len() + i;
        strides[o] = if shape[i] == 1 { 0 } else { step };
        step *= shape[i];
    }
    strides
}

/// Calls `f(out_index, offsets)` for every element of `out` in C order, with the element
/// offsets of each operand (broadcast by `strides`).
fn for_each_broadcast<const K: usize>(
    out: &[usize],
    strides: [&[usize]; K],
    mut f: impl FnMut([usize; K]),
) {
    let total: usize = out.iter().product();
    if total == 0 {
        return;
    }
    let rank = out.len();
    let mut idx = vec![0usize; rank];
    let mut offs = [0usize; K];
    for _ in 0..total {
        f(offs);
        // Advance the odometer.
        let mut axis = rank;
        while axis > 0 {
            axis -= 1;
            idx[axis] += 1;
            for k in 0..K {
                offs[k] += strides[k][axis];
            }
            if idx[axis] < out[axis] {
                break;
            }
            for k in 0..K {
                offs[k] -= strides[k][axis] * out[axis];
            }
            idx[axis] = 0;
        }
    }
}

/// A binary op computed into `a`'s own memory, when `a` is not shared, has the result's
/// shape and dtype, and `b` is a single value or of `a`'s shape. Returns `a` back (`Err`)
/// otherwise.
pub(super) fn binary_in_place(
    op: BinaryOp,
    mut a: Tensor,
    b: &Tensor,
) -> std::result::Result<Tensor, Tensor> {
    if op.is_comparison()
        || a.dtype() != b.dtype()
        || !(b.size() == 1 || b.shape() == a.shape())
        || b.ndim() > a.ndim()
    {
        return Err(a);
    }
    let dtype = a.dtype();
    let Some(bytes) = a.bytes_mut() else {
        return Err(a);
    };
    let done = with_elem_or!(dtype, T => {
        let y = read::<T>(b);
        match bytemuck::try_cast_slice_mut::<u8, T>(bytes) {
            Ok(x) => {
                macro_rules! per_op {
                    ($($op:ident),*) => {
                        match op {
                            $(BinaryOp::$op => {
                                if y.len() == 1 {
                                    let q = y[0];
                                    x.iter_mut().for_each(|p| *p = T::binary(BinaryOp::$op, *p, q));
                                } else {
                                    x.iter_mut().zip(y.iter()).for_each(|(p, &q)| *p = T::binary(BinaryOp::$op, *p, q));
                                }
                            })*
                            _ => {
                                if y.len() == 1 {
                                    let q = y[0];
                                    x.iter_mut().for_each(|p| *p = T::binary(op, *p, q));
                                } else {
                                    x.iter_mut().zip(y.iter()).for_each(|(p, &q)| *p = T::binary(op, *p, q));
                                }
                            }
                        }
                    };
                }
                per_op!(Add, Subtract, Multiply, Divide, Maximum, Minimum);
                true
            }
            Err(_) => false,
        }
    }, false);
    if done {
        Ok(a)
    } else {
        Err(a)
    }
}

/// A comparison or logical op (`op.is_comparison()`) of two values, as NumPy gives it: a
/// bool; the logical ops read a value as true when it is not zero. The one definition for
/// the step-by-step kernels and the fused evaluation.
#[inline]
pub(super) fn compare<T: Elem>(op: BinaryOp, p: T, q: T) -> B {
    B(u8::from(match op {
        BinaryOp::Equal => p == q,
        BinaryOp::NotEqual => p != q,
        BinaryOp::Less => p < q,
        BinaryOp::LessEqual => p <= q,
        BinaryOp::Greater => p > q,
        BinaryOp::GreaterEqual => p >= q,
        BinaryOp::LogicalAnd => p.is_nonzero() && q.is_nonzero(),
        BinaryOp::LogicalOr => p.is_nonzero() || q.is_nonzero(),
        _ => p.is_nonzero() != q.is_nonzero(),
    }))
}

/// A binary op of two tensors of one dtype, broadcast.
pub(super) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let shape = broadcast_shapes(&[a.shape(), b.shape()])?;
    let n: usize = shape.iter().product();
    with_elem!(a.dtype(), T => {
        let x = read::<T>(a);
        let y = read::<T>(b);
        if op.is_comparison() {
            let cmp = |p: T, q: T| compare(op, p, q);
            let out = zip_broadcast(&x, a.shape(), &y, b.shape(), &shape, n, cmp)?;
            return tensor_of(DType::Bool, &shape, out);
        }
        // One loop per op, so that each is compiled (and vectorized) on its own.
        macro_rules! per_op {
            ($($op:ident),*) => {
                match op {
                    $(BinaryOp::$op => zip_broadcast(&x, a.shape(), &y, b.shape(), &shape, n, |p, q| {
                        T::binary(BinaryOp::$op, p, q)
                    })?,)*
                    _ => zip_broadcast(&x, a.shape(), &y, b.shape(), &shape, n, |p, q| T::binary(op, p, q))?,
                }
            };
        }
        let out = per_op!(Add, Subtract, Multiply, Divide, Maximum, Minimum);
        tensor_of(a.dtype(), &shape, out)
    })
}

fn zip_broadcast<T: Copy, U: Copy + Default>(
    x: &[T],
    xs: &[usize],
    y: &[T],
    ys: &[usize],
    shape: &[usize],
    n: usize,
    f: impl Fn(T, T) -> U,
) -> Result<Vec<U>> {
    if x.len() == n && y.len() == n {
        return Ok(x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect());
    }
    if y.len() == 1 && x.len() == n {
        let q = y[0];
        return Ok(x.iter().map(|&p| f(p, q)).collect());
    }
    if x.len() == 1 && y.len() == n {
        let p = x[0];
        return Ok(y.iter().map(|&q| f(p, q)).collect());
    }
    let mut out = Vec::new();
    out.try_reserve_exact(n).map_err(|_| Error::Alloc {
        bytes: n.saturating_mul(std::mem::size_of::<U>()),
    })?;
    let (sx, sy) = (broadcast_strides(xs, shape), broadcast_strides(ys, shape));
    for_each_broadcast(shape, [&sx, &sy], |[i, j]| out.push(f(x[i], y[j])));
    Ok(out)
}

/// `where(cond, a, b)`, broadcast (`a` and `b` of one dtype, `cond` bool).
pub(super) fn select(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let shape = broadcast_shapes(&[cond.shape(), a.shape(), b.shape()])?;
    let c = read::<B>(cond);
    with_elem!(a.dtype(), T => {
        let x = read::<T>(a);
        let y = read::<T>(b);
        let n: usize = shape.iter().product();
        let mut out: Vec<T> = Vec::with_capacity(n);
        let (sc, sx, sy) = (
            broadcast_strides(cond.shape(), &shape),
            broadcast_strides(a.shape(), &shape),
            broadcast_strides(b.shape(), &shape),
        );
        for_each_broadcast(&shape, [&sc, &sx, &sy], |[k, i, j]| {
            out.push(if c[k].0 != 0 { x[i] } else { y[j] })
        });
        tensor_of(a.dtype(), &shape, out)
    })
}

/// A strided view of `t` copied out: element `offset + sum(i_k * strides[k])` for every
/// index of `shape` (strides in elements, possibly negative).
pub(super) fn gather(
    t: &Tensor,
    offset: usize,
    shape: &[usize],
    strides: &[isize],
) -> Result<Tensor> {
    match t.dtype().itemsize() {
        1 => gather_as::<u8>(t, offset, shape, strides),
        2 => gather_as::<u16>(t, offset, shape, strides),
        4 => gather_as::<u32>(t, offset, shape, strides),
        8 => gather_as::<u64>(t, offset, shape, strides),
        n => Err(Error::InvalidArgument(format!(
            "op graph: {n}-byte elements"
        ))),
    }
}

fn gather_as<T: Pod + Send + Sync>(
    t: &Tensor,
    offset: usize,
    shape: &[usize],
    strides: &[isize],
) -> Result<Tensor> {
    let src = read::<T>(t);
    let n: usize = shape.iter().product();
    let mut out: Vec<T> = Vec::new();
    out.try_reserve_exact(n).map_err(|_| Error::Alloc {
        bytes: n.saturating_mul(std::mem::size_of::<T>()),
    })?;
    let rank = shape.len();
    // A small contiguous last axis under a strided one (a flip of an image's columns, its
    // channels kept): both in one loop, the runs copied element by element.
    if rank >= 2 && strides[rank - 1] == 1 && shape[rank - 1] <= 8 && n > 0 {
        let (rows, run, rs) = (shape[rank - 2], shape[rank - 1], strides[rank - 2]);
        let outer_shape = &shape[..rank - 2];
        let outer: usize = outer_shape.iter().product();
        let mut idx = vec![0usize; outer_shape.len()];
        let mut base = offset as isize;
        for _ in 0..outer {
            let mut p = base;
            for _ in 0..rows {
                let s = p as usize;
                for k in 0..run {
                    out.push(src[s + k]);
                }
                p += rs;
            }
            let mut axis = outer_shape.len();
            while axis > 0 {
                axis -= 1;
                idx[axis] += 1;
                base += strides[axis];
                if idx[axis] < outer_shape[axis] {
                    break;
                }
                base -= strides[axis] * outer_shape[axis] as isize;
                idx[axis] = 0;
            }
        }
        return tensor_of(t.dtype(), shape, out);
    }
    if n > 0 {
        // The innermost axis is copied as one run when it is contiguous.
        let (inner, inner_stride) = match rank {
            0 => (1, 1),
            _ => (shape[rank - 1], strides[rank - 1]),
        };
        let outer_shape = if rank == 0 {
            &[][..]
        } else {
            &shape[..rank - 1]
        };
        let outer: usize = outer_shape.iter().product();
        let mut idx = vec![0usize; outer_shape.len()];
        let mut base = offset as isize;
        for _ in 0..outer {
            if inner_stride == 1 {
                let s = base as usize;
                out.extend_from_slice(&src[s..s + inner]);
            } else {
                let mut p = base;
                for _ in 0..inner {
                    out.push(src[p as usize]);
                    p += inner_stride;
                }
            }
            let mut axis = outer_shape.len();
            while axis > 0 {
                axis -= 1;
                idx[axis] += 1;
                base += strides[axis];
                if idx[axis] < outer_shape[axis] {
                    break;
                }
                base -= strides[axis] * outer_shape[axis] as isize;
                idx[axis] = 0;
            }
        }
    }
    tensor_of(t.dtype(), shape, out)
}

/// The C-order element strides of `shape`.
pub(super) fn c_strides(shape: &[usize]) -> Vec<isize> {
    let mut s = vec![0isize; shape.len()];
    let mut step = 1isize;
    for i in (0..shape.len()).rev() {
        s[i] = step;
        step *= shape[i] as isize;
    }
    s
}

/// Tensors of one dtype joined along `axis` (their other dimensions equal).
pub(super) fn concat(parts: &[&Tensor], axis: usize) -> Result<Tensor> {
    match parts[0].dtype().itemsize() {
        1 => concat_as::<u8>(parts, axis),
        2 => concat_as::<u16>(parts, axis),
        4 => concat_as::<u32>(parts, axis),
        8 => concat_as::<u64>(parts, axis),
        n => Err(Error::InvalidArgument(format!(
            "op graph: {n}-byte elements"
        ))),
    }
}

fn concat_as<T: Pod + Send + Sync>(parts: &[&Tensor], axis: usize) -> Result<Tensor> {
    let first = parts[0];
    let mut shape = first.shape().to_vec();
    for p in &parts[1..] {
        let ok = p.ndim() == shape.len()
            && p.shape()
                .iter()
                .zip(&shape)
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b);
        if !ok {
            return Err(Error::Pipeline(format!(
                "concatenate: shapes {:?} and {:?} differ off axis {axis}",
                first.shape(),
                p.shape()
            )));
        }
    }
    shape[axis] = parts.iter().map(|p| p.shape()[axis]).sum();
    let outer: usize = shape[..axis].iter().product();
    let data: Vec<Cow<'_, [T]>> = parts.iter().map(|p| read::<T>(p)).collect();
    let rows: Vec<usize> = parts
        .iter()
        .map(|p| p.shape()[axis..].iter().product::<usize>())
        .collect();
    let total: usize = rows.iter().sum::<usize>() * outer;
    let mut out: Vec<T> = Vec::new();
    out.try_reserve_exact(total).map_err(|_| Error::Alloc {
        bytes: total.saturating_mul(std::mem::size_of::<T>()),
    })?;
    for o in 0..outer {
        for (d, &r) in data.iter().zip(&rows) {
            out.extend_from_slice(&d[o * r..(o + 1) * r]);
        }
    }
    tensor_of(first.dtype(), &shape, out)
}

/// A reduction over `axes` (sorted, distinct); `None` where NumPy's result depends on its
/// summation order (a max or min over both signed zeros) and `strict`.
pub(super) fn reduce(
    op: ReduceOp,
    t: &Tensor,
    axes: &[usize],
    keepdims: bool,
    strict: bool,
) -> Result<Option<Tensor>> {
    let in_shape = t.shape();
    let kept: Vec<usize> = in_shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect();
    let out_shape: Vec<usize> = if keepdims {
        kept.clone()
    } else {
        in_shape
            .iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, &d)| d)
            .collect()
    };
    let n_out: usize = kept.iter().product();
    let reduced: usize = axes.iter().map(|&a| in_shape[a]).product();
    if reduced == 0 && matches!(op, ReduceOp::Max | ReduceOp::Min) && n_out > 0 {
        return Err(Error::Pipeline(format!(
            "zero-size array to reduction operation {} which has no identity",
            if op == ReduceOp::Max {
                "maximum"
            } else {
                "minimum"
            }
        )));
    }
    // Output offsets of each input element: C strides of `kept`, 0 on reduced axes.
    let mut ostr = vec![0usize; in_shape.len()];
    let mut step = 1usize;
    for i in (0..in_shape.len()).rev() {
        if !axes.contains(&i) {
            ostr[i] = step;
        }
        step *= kept[i];
    }
    let dtype = t.dtype();
    with_elem!(dtype, T => {
        let x = read::<T>(t);
        let out_dtype = if matches!(op, ReduceOp::Any | ReduceOp::All) { DType::Bool } else { dtype };
        match op {
            ReduceOp::Any | ReduceOp::All => {
                let all = op == ReduceOp::All;
                let mut acc = vec![B(u8::from(all)); n_out];
                let mut i = 0;
                for_each_broadcast(in_shape, [&ostr], |[o]| {
                    let v = x[i].is_nonzero();
                    i += 1;
                    if all { if !v { acc[o] = B(0); } } else if v { acc[o] = B(1); }
                });
                tensor_of(out_dtype, &out_shape, acc).map(Some)
            }
            ReduceOp::Sum | ReduceOp::Prod => {
                let (init, bop) = if op == ReduceOp::Sum { (T::zero(), BinaryOp::Add) } else { (T::one(), BinaryOp::Multiply) };
                let mut acc = vec![init; n_out];
                let mut i = 0;
                for_each_broadcast(in_shape, [&ostr], |[o]| {
                    acc[o] = T::binary(bop, acc[o], x[i]);
                    i += 1;
                });
                tensor_of(out_dtype, &out_shape, acc).map(Some)
            }
            ReduceOp::Max | ReduceOp::Min => {
                let bop = if op == ReduceOp::Max { BinaryOp::Maximum } else { BinaryOp::Minimum };
                let mut acc: Vec<Option<T>> = vec![None; n_out];
                // Per output: whether a +0 and a -0 were both seen.
                let mut zeros = vec![(false, false); if strict { n_out } else { 0 }];
                let mut i = 0;
                for_each_broadcast(in_shape, [&ostr], |[o]| {
                    let v = x[i];
                    i += 1;
                    if strict {
                        match v.is_zero_with_sign() {
                            Some(true) => zeros[o].1 = true,
                            Some(false) => zeros[o].0 = true,
                            None => {}
                        }
                    }
                    acc[o] = Some(match acc[o] {
                        None => v,
                        // A NaN already there stays (NumPy propagates the first NaN).
                        Some(a) if a.is_nan() => a,
                        Some(_) if v.is_nan() => v,
                        Some(a) => T::binary(bop, a, v),
                    });
                });
                let mut out = Vec::with_capacity(n_out);
                for (o, a) in acc.into_iter().enumerate() {
                    let a = a.unwrap_or_else(T::zero);
                    if strict && a.is_zero_with_sign().is_some() && zeros[o] == (true, true) {
                        return Ok(None);
                    }
                    out.push(a);
                }
                tensor_of(out_dtype, &out_shape, out).map(Some)
            }
        }
    })
}
