//! Tensors: a dtype, a shape and shared immutable bytes in C order.

use std::fmt;
use std::ops::Range;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use num_complex::Complex;
use smallvec::SmallVec;

use crate::buffer::{Buffer, BufferMut};
use crate::dtype::DType;
use crate::error::{Error, Result};

/// The shape of a tensor: one length per axis, outermost first.
pub type Shape = SmallVec<[usize; 4]>;

/// A Rust type that is the in-memory form of one NumPy dtype, so a tensor of that dtype can
/// be viewed as a `&[T]` without a copy.
///
/// Implemented for the integers, `f32`, `f64`, [`half::f16`] and [`num_complex::Complex`] of
/// `f32`/`f64`. `bool` is not one: a byte in a file may hold any value, so bool tensors are
/// read through [`Tensor::to_bools`] and built with [`Tensor::from_bools`].
pub trait NativeType: bytemuck::Pod + Send + Sync + sealed::Sealed {
    /// The dtype whose elements are this type.
    const DTYPE: DType;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! native {
    ($($t:ty => $d:expr),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl NativeType for $t { const DTYPE: DType = $d; }
    )*};
}

native! {
    i8 => DType::Int8, i16 => DType::Int16, i32 => DType::Int32, i64 => DType::Int64,
    u8 => DType::UInt8, u16 => DType::UInt16, u32 => DType::UInt32, u64 => DType::UInt64,
    half::f16 => DType::Float16, f32 => DType::Float32, f64 => DType::Float64,
    Complex<f32> => DType::Complex64, Complex<f64> => DType::Complex128,
}

/// Total bytes of `shape` elements of `dtype`, or an error if the shape is too big.
///
/// As in NumPy, a shape is too big when the product of its non-zero dimensions times the
/// item size exceeds `isize::MAX`, even when another dimension is 0 and the array is empty.
pub(crate) fn checked_nbytes(dtype: DType, shape: &[usize]) -> Result<usize> {
    let too_big = || {
        Error::InvalidArgument(format!(
            "shape {shape:?} of {dtype} has more bytes than this machine can address"
        ))
    };
    let nonzero = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(dtype.itemsize(), |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(too_big)?;
    Ok(if shape.contains(&0) { 0 } else { nonzero })
}

/// An n-dimensional array: a [`DType`], a [`Shape`] and a shared, immutable [`Buffer`] holding
/// the elements in C (row-major) order and native byte order.
///
/// Cloning a tensor and slicing it along its first axis are O(1) and share the buffer, which
/// may be a heap allocation, a memory-mapped file or memory owned by NumPy.
///
/// Unlike a `tf.Tensor`, a tensor never copies data it is given: [`Tensor::from_vec`] takes
/// the vector, and a tensor read from a `.npy` file is a window onto the mapped file.
///
/// ```
/// use npyflow_format::{DType, Tensor};
/// let t = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6], &[3, 2]).unwrap();
/// assert_eq!(t.dtype(), DType::Int64);
/// let row = t.row(1).unwrap(); // [3, 4], sharing t's memory
/// assert_eq!(row.view::<i64>().unwrap(), &[3, 4]);
/// assert_eq!(t.slice_rows(1..3).unwrap().shape(), &[2, 2]);
/// ```
#[derive(Clone)]
pub struct Tensor {
    dtype: DType,
    shape: Shape,
    buffer: Buffer,
}

impl Tensor {
    /// A tensor over `buffer`, which must hold exactly the bytes `dtype` and `shape` need.
    pub fn new(dtype: DType, shape: &[usize], buffer: Buffer) -> Result<Tensor> {
        let nbytes = checked_nbytes(dtype, shape)?;
        if nbytes != buffer.len() {
            return Err(Error::InvalidArgument(format!(
                "a {dtype} tensor of shape {shape:?} needs {nbytes} bytes, the buffer has {}",
                buffer.len()
            )));
        }
        Ok(Tensor {
            dtype,
            shape: Shape::from_slice(shape),
            buffer,
        })
    }

    /// Takes `data` (C order) as a tensor of `shape`, without copying it.
    pub fn from_vec<T: NativeType>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        Self::new(T::DTYPE, shape, Buffer::from_vec(data))
    }

    /// A 0-d tensor holding `value`.
    pub fn scalar<T: NativeType>(value: T) -> Tensor {
        Tensor {
            dtype: T::DTYPE,
            shape: Shape::new(),
            buffer: Buffer::from_vec(vec![value]),
        }
    }

    /// A tensor of zeros (for strings: empty strings; for times: the epoch).
    pub fn zeros(dtype: DType, shape: &[usize]) -> Result<Tensor> {
        let nbytes = checked_nbytes(dtype, shape)?;
        Self::new(dtype, shape, BufferMut::zeroed(nbytes)?.freeze())
    }

    /// A bool tensor.
    pub fn from_bools(data: &[bool], shape: &[usize]) -> Result<Tensor> {
        let bytes: Vec<u8> = data.iter().map(|&b| u8::from(b)).collect();
        Self::new(DType::Bool, shape, Buffer::from_vec(bytes))
    }

    /// Takes an ndarray array; no copy when it is in standard (C) layout with no offset.
    pub fn from_array<T: NativeType>(array: ArrayD<T>) -> Result<Tensor> {
        let shape: Shape = array.shape().into();
        let array = if array.is_standard_layout() {
            array
        } else {
            array.as_standard_layout().into_owned()
        };
        let (data, offset) = array.into_raw_vec_and_offset();
        match offset {
            Some(0) | None => Self::new(T::DTYPE, &shape, Buffer::from_vec(data)),
            Some(start) => {
                let len: usize = shape.iter().product();
                let kept = data[start..start + len].to_vec();
                Self::new(T::DTYPE, &shape, Buffer::from_vec(kept))
            }
        }
    }

    /// The element type.
    #[inline]
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The length of each axis.
    #[inline]
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of axes (0 for a scalar).
    #[inline]
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements (the product of the shape; 1 for a scalar).
    pub fn size(&self) -> usize {
        self.shape.iter().product()
    }

    /// The number of bytes of data.
    #[inline]
    pub fn nbytes(&self) -> usize {
        self.buffer.len()
    }

    /// The length of the first axis, or `None` for a scalar.
    pub fn rows(&self) -> Option<usize> {
        self.shape.first().copied()
    }

    /// The data in C order and native byte order.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_slice()
    }

    /// The shared buffer behind the tensor.
    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }

    /// The data, writable, when no other tensor or buffer shares this tensor's memory and
    /// npyflow allocated it (see [`Buffer::get_mut`]); `None` otherwise.
    pub fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        self.buffer.get_mut()
    }

    fn row_nbytes(&self) -> usize {
        // The tensor exists, so the product fits.
        self.shape[1..].iter().product::<usize>() * self.dtype.itemsize()
    }

    fn need_axis(&self, what: &str) -> Result<usize> {
        self.rows().ok_or_else(|| {
            Error::InvalidArgument(format!("cannot {what} a scalar (a tensor with no axes)"))
        })
    }

    /// Fails, naming the file, when this tensor is a window onto a memory-mapped file that
    /// was truncated under it and the window reaches past the file's new end (its bytes read
    /// as zeros since). Cheap: see [`Buffer::check_intact`]. Tensors that are not mapped are
    /// always intact.
    pub fn check_intact(&self) -> Result<()> {
        self.buffer.check_intact()
    }

    /// As [`Tensor::check_intact`], and compares a mapped file's current length with the
    /// window (a system call): see [`Buffer::verify_intact`].
    pub fn verify_intact(&self) -> Result<()> {
        self.buffer.verify_intact()
    }

    /// Row `index` along the first axis, sharing this tensor's memory (O(1)).
    ///
    /// A row of a memory-mapped file that was truncated past the row's start is an error
    /// naming the file (see [`Tensor::check_intact`]).
    pub fn row(&self, index: usize) -> Result<Tensor> {
        let row = self.row_view(index)?;
        row.check_intact()?;
        Ok(row)
    }

    /// [`Tensor::row`] without the truncation check, which reads the row's last byte: for
    /// the pipeline's sources, which check what they copy, and what they hand out at the
    /// iterator (a read here would be a cache miss under the lock that orders the rows).
    pub fn row_view(&self, index: usize) -> Result<Tensor> {
        let rows = self.need_axis("index")?;
        if index >= rows {
            return Err(Error::OutOfRange { index, len: rows });
        }
        let step = self.row_nbytes();
        let buffer = self.buffer.slice(index * step..(index + 1) * step)?;
        Ok(Tensor {
            dtype: self.dtype,
            shape: Shape::from_slice(&self.shape[1..]),
            buffer,
        })
    }

    /// Rows `range` along the first axis, sharing this tensor's memory (O(1)).
    ///
    /// Rows of a truncated memory-mapped file are an error, as for [`Tensor::row`].
    pub fn slice_rows(&self, range: Range<usize>) -> Result<Tensor> {
        let rows = self.rows_view(range)?;
        rows.check_intact()?;
        Ok(rows)
    }

    /// [`Tensor::slice_rows`] without the truncation check (see [`Tensor::row_view`]).
    pub fn rows_view(&self, range: Range<usize>) -> Result<Tensor> {
        let rows = self.need_axis("slice")?;
        if range.start > range.end || range.end > rows {
            return Err(Error::InvalidArgument(format!(
                "rows {}..{} are outside a tensor of {rows} rows",
                range.start, range.end
            )));
        }
        let step = self.row_nbytes();
        let mut shape = self.shape.clone();
        shape[0] = range.end - range.start;
        let buffer = self.buffer.slice(range.start * step..range.end * step)?;
        Ok(Tensor {
            dtype: self.dtype,
            shape,
            buffer,
        })
    }

    /// The same data with another shape of the same number of elements (O(1)).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        Self::new(self.dtype, shape, self.buffer.clone())
    }

    /// The elements as a slice of `T`, without a copy.
    ///
    /// Fails if `T` is not the tensor's dtype or the memory is not aligned for `T` (possible
    /// for data mapped from a file at an odd offset; [`Tensor::to_aligned`] fixes that).
    pub fn view<T: NativeType>(&self) -> Result<&[T]> {
        if T::DTYPE != self.dtype {
            return Err(Error::DtypeMismatch {
                expected: T::DTYPE.to_string(),
                found: self.dtype.to_string(),
            });
        }
        bytemuck::try_cast_slice(self.as_bytes()).map_err(|e| {
            Error::InvalidArgument(format!(
                "cannot view the {} tensor as a slice: {e}",
                self.dtype
            ))
        })
    }

    /// The elements as an ndarray view, without a copy (same conditions as [`Tensor::view`]).
    pub fn to_array_view<T: NativeType>(&self) -> Result<ArrayViewD<'_, T>> {
        let data = self.view::<T>()?;
        ArrayViewD::from_shape(IxDyn(&self.shape), data)
            .map_err(|e| Error::InvalidArgument(format!("ndarray view: {e}")))
    }

    /// The elements of a bool tensor, any non-zero byte read as `true` (as NumPy does).
    pub fn to_bools(&self) -> Result<Vec<bool>> {
        if self.dtype != DType::Bool {
            return Err(Error::DtypeMismatch {
                expected: DType::Bool.to_string(),
                found: self.dtype.to_string(),
            });
        }
        Ok(self.as_bytes().iter().map(|&b| b != 0).collect())
    }

    /// This tensor if its memory is aligned for its dtype, otherwise an aligned copy.
    pub fn to_aligned(&self) -> Result<Tensor> {
        if self.as_bytes().as_ptr() as usize % self.dtype.alignment() == 0 {
            return Ok(self.clone());
        }
        Self::new(
            self.dtype,
            &self.shape,
            Buffer::copy_from_slice(self.as_bytes())?,
        )
    }
}

impl PartialEq for Tensor {
    /// Equal dtype, shape and bytes (so a NaN equals the same NaN, and `0.0 != -0.0`).
    fn eq(&self, other: &Tensor) -> bool {
        self.dtype == other.dtype
            && self.shape == other.shape
            && self.as_bytes() == other.as_bytes()
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("dtype", &self.dtype)
            .field("shape", &self.shape.as_slice())
            .field("buffer", &self.buffer)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::BufferKind;

    #[test]
    fn new_checks_the_length() {
        assert!(Tensor::new(DType::Int32, &[2, 3], Buffer::from_vec(vec![0u8; 24])).is_ok());
        let e = Tensor::new(DType::Int32, &[2, 3], Buffer::from_vec(vec![0u8; 23])).unwrap_err();
        assert!(e.to_string().contains("needs 24 bytes"));
        assert!(Tensor::new(DType::Int64, &[usize::MAX, 2], Buffer::empty()).is_err());
        // NumPy refuses an empty shape whose other dimensions overflow, and so does npyflow.
        assert!(Tensor::new(DType::UInt8, &[0, 1 << 32, 1 << 32], Buffer::empty()).is_err());
        assert!(Tensor::new(DType::UInt8, &[0, 1 << 31, 1 << 31], Buffer::empty()).is_ok());
    }

    #[test]
    fn rows_share_memory() {
        let t = Tensor::from_vec((0..24i32).collect(), &[4, 3, 2]).unwrap();
        let r = t.row(2).unwrap();
        assert_eq!(r.shape(), &[3, 2]);
        assert_eq!(r.view::<i32>().unwrap(), &[12, 13, 14, 15, 16, 17]);
        assert!(r.buffer().shares_owner_with(t.buffer()));
        assert!(matches!(
            t.row(4),
            Err(Error::OutOfRange { index: 4, len: 4 })
        ));
        let s = t.slice_rows(1..3).unwrap();
        assert_eq!(s.shape(), &[2, 3, 2]);
        assert_eq!(s.view::<i32>().unwrap()[0], 6);
        assert_eq!(t.slice_rows(4..4).unwrap().shape(), &[0, 3, 2]);
        assert!(t.slice_rows(3..5).is_err());
        assert!(Tensor::scalar(1.0f32).row(0).is_err());
    }

    #[test]
    fn views_check_dtype_and_alignment() {
        let t = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
        assert!(matches!(t.view::<i32>(), Err(Error::DtypeMismatch { .. })));
        // A float32 tensor one byte into a buffer cannot be viewed, but its aligned copy can.
        let raw = Buffer::from_vec(vec![0u8; 9]);
        let odd = Tensor::new(DType::Float32, &[2], raw.slice(1..9).unwrap()).unwrap();
        if odd.as_bytes().as_ptr() as usize % 4 != 0 {
            assert!(odd.view::<f32>().is_err());
        }
        assert_eq!(
            odd.to_aligned().unwrap().view::<f32>().unwrap(),
            &[0.0, 0.0]
        );
    }

    #[test]
    fn ndarray_round_trip() {
        let a = ndarray::Array::from_shape_fn(IxDyn(&[2, 3]), |i| (i[0] * 10 + i[1]) as u16);
        let t = Tensor::from_array(a.clone()).unwrap();
        assert_eq!(t.buffer().kind(), BufferKind::Heap);
        assert_eq!(t.to_array_view::<u16>().unwrap(), a.view());
        // A transposed (F-order) array is copied into C order.
        let at = a.t().to_owned();
        let tt = Tensor::from_array(at.clone()).unwrap();
        assert_eq!(tt.shape(), &[3, 2]);
        assert_eq!(tt.view::<u16>().unwrap(), &[0, 10, 1, 11, 2, 12]);
        // A sliced array with an offset.
        let sliced = a.slice_move(ndarray::s![1.., ..]).into_dyn();
        let ts = Tensor::from_array(sliced).unwrap();
        assert_eq!(ts.view::<u16>().unwrap(), &[10, 11, 12]);
    }

    #[test]
    fn bools_read_nonzero_as_true() {
        let t = Tensor::new(DType::Bool, &[3], Buffer::from_vec(vec![0u8, 1, 7])).unwrap();
        assert_eq!(t.to_bools().unwrap(), vec![false, true, true]);
        assert_eq!(
            Tensor::from_bools(&[true, false], &[2]).unwrap().as_bytes(),
            &[1, 0]
        );
    }
}
