//! Summary statistics of an array, computed from its raw bytes in one streaming pass.
//!
//! The pass reads data in file order and file byte order, chunk by chunk, so a file far
//! larger than memory is summarized with a fixed, small buffer. Results follow NumPy:
//! `min`/`max` as `a.min()`/`a.max()` (a NaN anywhere makes both NaN), `sum` as
//! `a.sum(dtype=float64)`, and `head` as `a.ravel()[:8]` in logical C order even for
//! Fortran-order data.
//!
//! The mean and the standard deviation (NumPy's `a.mean()` and `a.std()`, the population
//! deviation, `ddof=0`) are computed in float64 from blocks of 4,096 values in file order,
//! merged exactly as Chan et al.'s parallel algorithm merges them: equal to NumPy's to about
//! 1e-12 relative, and the same for any chunking of the input. Per channel (along one axis,
//! [`StatsAccumulator::per_channel`]) each channel's are kept with Welford's update.
//!
//! The sum is bit for bit NumPy's: the same pairwise summation over the same order of
//! elements (memory order), in one tree over the whole array for native float64 data, and
//! tree by tree over chunks of 8,192 elements where NumPy casts through its buffers (every
//! other dtype, and float64 in foreign byte order). So even where rounding or an overflow to
//! infinity depends on the order of additions, npyflow reports what NumPy reports.

use crate::dtype::{ByteOrder, DType};
use crate::error::{Error, Result};
use crate::header::NpyHeader;

/// How many leading elements [`Stats::head`] holds.
pub const HEAD_LEN: usize = 8;

/// One element of [`Stats::head`], in the widest type of its kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    /// A bool.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A float, converted exactly from its dtype.
    Float(f64),
    /// A complex number (real, imaginary).
    Complex(f64, f64),
}

/// What [`StatsAccumulator`] finds.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// The smallest value as float64; `None` for an empty array or a dtype without an order.
    pub min: Option<f64>,
    /// The largest value as float64; `None` as for `min`.
    pub max: Option<f64>,
    /// The sum in float64; `None` for dtypes without one (complex, strings, times).
    pub sum: Option<f64>,
    /// The first elements in logical C order; empty for strings and times.
    pub head: Vec<Scalar>,
    /// The mean, as float64 (`a.mean()`); `None` for an empty array or a dtype without one.
    pub mean: Option<f64>,
    /// The standard deviation of the population (`a.std()`, `ddof=0`); `None` as for `mean`.
    pub std: Option<f64>,
    /// With [`StatsAccumulator::per_channel`]: the (mean, std) of each channel, in order
    /// (`a.mean(axis=others)`, `a.std(axis=others)`); empty otherwise.
    pub channels: Vec<(f64, f64)>,
}

/// Count, mean and sum of squared deviations of some values, merged as Chan et al. merge
/// them.
#[derive(Clone, Copy, Debug, Default)]
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn of(values: &[f64]) -> Moments {
        if values.is_empty() {
            return Moments::default();
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let m2 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        Moments { n, mean, m2 }
    }

    fn merge(&mut self, other: Moments) {
        if other.n == 0.0 {
            return;
        }
        if self.n == 0.0 {
            *self = other;
            return;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        self.mean += delta * other.n / n;
        self.m2 += other.m2 + delta * delta * self.n * other.n / n;
        self.n = n;
    }

    fn push(&mut self, v: f64) {
        self.n += 1.0;
        let delta = v - self.mean;
        self.mean += delta / self.n;
        self.m2 += delta * (v - self.mean);
    }

    fn mean_std(&self) -> (f64, f64) {
        (self.mean, (self.m2 / self.n).sqrt())
    }
}

/// How many values one block of [`Moments`] covers.
const MOMENT_BLOCK: usize = 4096;

/// Per-channel moments: the channel of the element at file position `k` is
/// `(k / stride) % count`.
struct Channels {
    stride: usize,
    count: usize,
    moments: Vec<Moments>,
}

/// Accumulates [`Stats`] over an array's raw data fed in file order.
///
/// ```
/// use npyflow_format::header::NpyHeader;
/// use npyflow_format::stats::{Scalar, StatsAccumulator};
/// use npyflow_format::DType;
/// let h = NpyHeader::new(DType::Int16, &[4]);
/// let mut acc = StatsAccumulator::new(&h);
/// let data: Vec<u8> = [3i16, -1, 7, 2].iter().flat_map(|v| v.to_ne_bytes()).collect();
/// acc.feed(&data[..3]); // chunks may split elements
/// acc.feed(&data[3..]);
/// let s = acc.finish().unwrap();
/// assert_eq!((s.min, s.max, s.sum), (Some(-1.0), Some(7.0), Some(11.0)));
/// assert_eq!(s.head[2], Scalar::Int(7));
/// ```
pub struct StatsAccumulator {
    dtype: DType,
    big: bool,
    size: usize,
    seen: usize,
    carry: Vec<u8>,
    /// (file position, head slot), sorted by file position.
    wanted: Vec<(usize, usize)>,
    next_wanted: usize,
    head: Vec<Option<Scalar>>,
    min: f64,
    max: f64,
    nan: bool,
    sum: PairwiseSum,
    scratch: Vec<f64>,
    /// Values not yet folded into `moments` (a block fills at fixed positions, so any
    /// chunking of the input gives the same result).
    pending: Vec<f64>,
    moments: Moments,
    channels: Option<Channels>,
    shape: Vec<usize>,
    fortran_order: bool,
}

impl StatsAccumulator {
    /// An accumulator for the data of an array with header `h`.
    pub fn new(h: &NpyHeader) -> Self {
        let size = h.size();
        let numeric = h.dtype.is_real_number() || h.dtype.kind() == 'c';
        let n = if numeric { size.min(HEAD_LEN) } else { 0 };
        let mut wanted: Vec<(usize, usize)> = (0..n)
            .map(|k| (file_position(k, &h.shape, h.fortran_order), k))
            .collect();
        wanted.sort_unstable();
        StatsAccumulator {
            dtype: h.dtype,
            big: h.byte_order == ByteOrder::Big && h.dtype.has_byte_order(),
            size,
            seen: 0,
            carry: Vec::with_capacity(h.dtype.itemsize()),
            wanted,
            next_wanted: 0,
            head: vec![None; n],
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            nan: false,
            scratch: Vec::with_capacity(SCRATCH_LEN),
            pending: Vec::with_capacity(MOMENT_BLOCK),
            moments: Moments::default(),
            channels: None,
            shape: h.shape.clone(),
            fortran_order: h.fortran_order,
            sum: PairwiseSum::new(
                size,
                // NumPy sums native float64 in place, everything else through its casting
                // buffers.
                if h.dtype == DType::Float64 && h.byte_order.is_native() {
                    size
                } else {
                    NUMPY_BUFSIZE
                },
            ),
        }
    }

    /// Also keeps the mean and standard deviation of each channel along `axis` (negative:
    /// from the end, as NumPy counts; -1 is the channels of (N, H, W, C) images). An axis
    /// the array does not have is an error.
    ///
    /// ```
    /// use npyflow_format::header::NpyHeader;
    /// use npyflow_format::stats::StatsAccumulator;
    /// use npyflow_format::DType;
    /// let h = NpyHeader::new(DType::UInt8, &[2, 2]);
    /// let mut acc = StatsAccumulator::new(&h).per_channel(-1)?;
    /// acc.feed(&[1, 10, 3, 30]); // rows [1, 10] and [3, 30]
    /// let s = acc.finish()?;
    /// assert_eq!(s.channels, [(2.0, 1.0), (20.0, 10.0)]);
    /// assert_eq!(s.mean, Some(11.0));
    /// # Ok::<(), npyflow_format::Error>(())
    /// ```
    pub fn per_channel(mut self, axis: i64) -> Result<Self> {
        let ndim = self.shape.len() as i64;
        let a = if axis < 0 { axis + ndim } else { axis };
        if !(0..ndim).contains(&a) {
            return Err(Error::InvalidArgument(format!(
                "channel axis {axis} is out of range for an array of {ndim} dimensions"
            )));
        }
        let a = a as usize;
        let stride: usize = if self.fortran_order {
            self.shape[..a].iter().product()
        } else {
            self.shape[a + 1..].iter().product()
        };
        let count = self.shape[a];
        self.channels = Some(Channels {
            stride: stride.max(1),
            count,
            moments: vec![Moments::default(); count],
        });
        Ok(self)
    }

    /// Feeds the next bytes of data (any length; elements may straddle calls).
    pub fn feed(&mut self, mut bytes: &[u8]) {
        let isz = self.dtype.itemsize();
        if isz == 0 {
            return;
        }
        if !self.carry.is_empty() {
            let take = (isz - self.carry.len()).min(bytes.len());
            self.carry.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.carry.len() < isz {
                return;
            }
            let one = std::mem::take(&mut self.carry);
            self.consume(&one);
            self.carry = one;
            self.carry.clear();
        }
        let whole = bytes.len() / isz * isz;
        self.consume(&bytes[..whole]);
        self.carry.extend_from_slice(&bytes[whole..]);
    }

    fn consume(&mut self, bytes: &[u8]) {
        let isz = self.dtype.itemsize();
        let count = bytes.len() / isz;
        // Take the head elements that fall in this run.
        while let Some(&(pos, slot)) = self.wanted.get(self.next_wanted) {
            if pos >= self.seen + count {
                break;
            }
            let at = (pos - self.seen) * isz;
            self.head[slot] = Some(self.scalar(&bytes[at..at + isz]));
            self.next_wanted += 1;
        }
        if !self.dtype.is_real_number() {
            self.seen += count;
            return;
        }
        // Decode a block of values to float64, then fold it: the loops stay simple enough for
        // the compiler to vectorize.
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut done = 0usize;
        for block in bytes.chunks(SCRATCH_LEN * isz) {
            scratch.clear();
            decode_f64(self.dtype, self.big, block, &mut scratch);
            let (mut min, mut max, mut nan) = (self.min, self.max, false);
            for &v in &scratch {
                nan |= v.is_nan();
                min = min.min(v);
                max = max.max(v);
            }
            (self.min, self.max) = (min, max);
            self.nan |= nan;
            self.sum.push_slice(&scratch);
            self.fold_moments(&scratch, self.seen + done);
            done += scratch.len();
        }
        self.scratch = scratch;
        self.seen += count;
    }

    /// Folds decoded values, the first at file position `first`, into the moments.
    fn fold_moments(&mut self, values: &[f64], first: usize) {
        if let Some(ch) = self.channels.as_mut() {
            for (i, &v) in values.iter().enumerate() {
                let c = ((first + i) / ch.stride) % ch.count;
                ch.moments[c].push(v);
            }
        }
        let mut rest = values;
        while !rest.is_empty() {
            let take = (MOMENT_BLOCK - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == MOMENT_BLOCK {
                self.moments.merge(Moments::of(&self.pending));
                self.pending.clear();
            }
        }
    }

    fn scalar(&self, b: &[u8]) -> Scalar {
        let big = self.big;
        macro_rules! num {
            ($t:ty, $b:expr) => {{
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice($b);
                if big {
                    <$t>::from_be_bytes(a)
                } else {
                    <$t>::from_le_bytes(a)
                }
            }};
        }
        match self.dtype {
            DType::Bool => Scalar::Bool(b[0] != 0),
            DType::Int8 => Scalar::Int(num!(i8, b) as i64),
            DType::Int16 => Scalar::Int(num!(i16, b) as i64),
            DType::Int32 => Scalar::Int(num!(i32, b) as i64),
            DType::Int64 => Scalar::Int(num!(i64, b)),
            DType::UInt8 => Scalar::UInt(num!(u8, b) as u64),
            DType::UInt16 => Scalar::UInt(num!(u16, b) as u64),
            DType::UInt32 => Scalar::UInt(num!(u32, b) as u64),
            DType::UInt64 => Scalar::UInt(num!(u64, b)),
            DType::Float16 => Scalar::Float(half::f16::from_bits(num!(u16, b)).to_f64()),
            DType::Float32 => Scalar::Float(num!(f32, b) as f64),
            DType::Float64 => Scalar::Float(num!(f64, b)),
            DType::Complex64 => {
                Scalar::Complex(num!(f32, &b[..4]) as f64, num!(f32, &b[4..]) as f64)
            }
            DType::Complex128 => Scalar::Complex(num!(f64, &b[..8]), num!(f64, &b[8..])),
            _ => unreachable!("head is only collected for numbers"),
        }
    }

    /// The statistics, or an error if fewer or more bytes were fed than the array holds.
    pub fn finish(self) -> Result<Stats> {
        if self.seen != self.size || !self.carry.is_empty() {
            return Err(Error::Data(format!(
                "the data held {} whole elements and {} extra bytes; the header promises {}",
                self.seen,
                self.carry.len(),
                self.size
            )));
        }
        let real = self.dtype.is_real_number();
        let ordered = real && self.size > 0;
        let (min, max) = if self.nan {
            (f64::NAN, f64::NAN)
        } else {
            (self.min, self.max)
        };
        let mut moments = self.moments;
        moments.merge(Moments::of(&self.pending));
        let (mean, std) = moments.mean_std();
        let channels = match &self.channels {
            Some(ch) if ordered => ch.moments.iter().map(Moments::mean_std).collect(),
            _ => Vec::new(),
        };
        Ok(Stats {
            mean: ordered.then_some(mean),
            std: ordered.then_some(std),
            channels,
            min: ordered.then_some(min),
            max: ordered.then_some(max),
            sum: real.then(|| self.sum.total()),
            head: self
                .head
                .into_iter()
                .map(|s| s.expect("every head slot is seen"))
                .collect(),
        })
    }
}

/// Values decoded at a time.
const SCRATCH_LEN: usize = 4096;

/// Appends the values of `bytes` (whole elements of a real dtype) to `out` as float64.
fn decode_f64(dtype: DType, big: bool, bytes: &[u8], out: &mut Vec<f64>) {
    macro_rules! decode {
        ($t:ty, $conv:expr) => {{
            const N: usize = std::mem::size_of::<$t>();
            out.extend(bytes.chunks_exact(N).map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                let v = if big {
                    <$t>::from_be_bytes(a)
                } else {
                    <$t>::from_le_bytes(a)
                };
                #[allow(clippy::redundant_closure_call)]
                ($conv)(v)
            }))
        }};
    }
    match dtype {
        DType::Bool => out.extend(bytes.iter().map(|&b| if b != 0 { 1.0 } else { 0.0 })),
        DType::Int8 => decode!(i8, |v: i8| v as f64),
        DType::UInt8 => decode!(u8, |v: u8| v as f64),
        DType::Int16 => decode!(i16, |v: i16| v as f64),
        DType::UInt16 => decode!(u16, |v: u16| v as f64),
        DType::Int32 => decode!(i32, |v: i32| v as f64),
        DType::UInt32 => decode!(u32, |v: u32| v as f64),
        DType::Int64 => decode!(i64, |v: i64| v as f64),
        DType::UInt64 => decode!(u64, |v: u64| v as f64),
        DType::Float16 => decode!(u16, |v: u16| half::f16::from_bits(v).to_f64()),
        DType::Float32 => decode!(f32, |v: f32| v as f64),
        DType::Float64 => decode!(f64, |v: f64| v),
        _ => unreachable!("only real numbers are decoded"),
    }
}

/// Elements per buffer in NumPy's casting iterator (`np.getbufsize()`).
const NUMPY_BUFSIZE: usize = 8192;
/// NumPy's pairwise summation sums blocks of at most this many elements directly.
const PW_BLOCKSIZE: usize = 128;

/// NumPy's pairwise summation, fed one value at a time.
///
/// NumPy sums `n` values by splitting them in two (the left part `n / 2` rounded down to a
/// multiple of 8) until a part has at most 128 values, which it sums with eight interleaved
/// accumulators (or in a plain loop below 8). Here that recursion is an explicit stack, so
/// values can arrive in a stream. With `chunk < n` the values are summed chunk by chunk, each
/// chunk by its own tree, into a running total, as NumPy does through its buffers.
struct PairwiseSum {
    /// Values not yet taken into a chunk.
    remaining: usize,
    chunk: usize,
    /// Open splits: their size and, once it is summed, the sum of their left part.
    stack: Vec<(usize, Option<f64>)>,
    leaf: Vec<f64>,
    leaf_len: usize,
    total: f64,
}

fn left_part(n: usize) -> usize {
    let half = n / 2;
    half - half % 8
}

impl PairwiseSum {
    fn new(n: usize, chunk: usize) -> Self {
        let mut s = PairwiseSum {
            remaining: n,
            chunk: chunk.max(1),
            stack: Vec::new(),
            leaf: Vec::with_capacity(PW_BLOCKSIZE),
            leaf_len: 0,
            total: 0.0,
        };
        s.start_chunk();
        s
    }

    fn start_chunk(&mut self) {
        let n = self.remaining.min(self.chunk);
        self.remaining -= n;
        if n > 0 {
            self.descend(n);
        }
    }

    fn descend(&mut self, mut n: usize) {
        while n > PW_BLOCKSIZE {
            self.stack.push((n, None));
            n = left_part(n);
        }
        self.leaf_len = n;
    }

    fn push_slice(&mut self, mut values: &[f64]) {
        while !values.is_empty() {
            let take = (self.leaf_len - self.leaf.len()).min(values.len());
            self.leaf.extend_from_slice(&values[..take]);
            values = &values[take..];
            if self.leaf.len() == self.leaf_len {
                let s = block_sum(&self.leaf);
                self.leaf.clear();
                self.complete(s);
            }
        }
    }

    /// A part summed to `s`: pair it with its sibling, up the stack as far as it goes.
    fn complete(&mut self, mut s: f64) {
        loop {
            match self.stack.last_mut() {
                None => {
                    self.total += s;
                    self.start_chunk();
                    return;
                }
                Some((n, left @ None)) => {
                    *left = Some(s);
                    let right = *n - left_part(*n);
                    self.descend(right);
                    return;
                }
                Some((_, Some(left))) => {
                    s += *left;
                    self.stack.pop();
                }
            }
        }
    }

    fn total(&self) -> f64 {
        self.total
    }
}

/// NumPy's sum of at most 128 values.
fn block_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        return a.iter().fold(0.0, |acc, &v| acc + v);
    }
    let mut r = [0.0f64; 8];
    r.copy_from_slice(&a[..8]);
    let whole = n - n % 8;
    for block in a[8..whole].chunks_exact(8) {
        for (acc, &v) in r.iter_mut().zip(block) {
            *acc += v;
        }
    }
    let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for &v in &a[whole..] {
        res += v;
    }
    res
}

/// Where the element at C-order index `k` is in data stored in the given order.
fn file_position(k: usize, shape: &[usize], fortran: bool) -> usize {
    if !fortran || shape.len() <= 1 {
        return k;
    }
    // C-order multi-index of k, then its Fortran-order offset.
    let mut rem = k;
    let mut idx = vec![0usize; shape.len()];
    for (i, &d) in shape.iter().enumerate().rev() {
        idx[i] = rem % d;
        rem /= d;
    }
    let mut pos = 0;
    let mut stride = 1;
    for (i, &d) in shape.iter().enumerate() {
        pos += idx[i] * stride;
        stride *= d;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats_of(h: &NpyHeader, bytes: &[u8], chunk: usize) -> Stats {
        let mut acc = StatsAccumulator::new(h);
        for c in bytes.chunks(chunk.max(1)) {
            acc.feed(c);
        }
        acc.finish().unwrap()
    }

    #[test]
    fn chunking_does_not_change_results() {
        let vals: Vec<f64> = (0..1000).map(|i| ((i * 37) % 101) as f64 - 50.5).collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut h = NpyHeader::new(DType::Float64, &[1000]);
        h.byte_order = ByteOrder::Little;
        let want = stats_of(&h, &bytes, bytes.len());
        for chunk in [1, 3, 7, 8, 100, 4096] {
            assert_eq!(stats_of(&h, &bytes, chunk), want);
        }
        assert_eq!(want.min, Some(-50.5));
        assert_eq!(want.max, Some(49.5));
        assert_eq!(want.sum, Some(vals.iter().sum::<f64>()));
    }

    #[test]
    fn big_endian_and_fortran_head() {
        // a 2x3 int32 array [[0,1,2],[3,4,5]] stored in Fortran order, big-endian
        let f_order = [0i32, 3, 1, 4, 2, 5];
        let bytes: Vec<u8> = f_order.iter().flat_map(|v| v.to_be_bytes()).collect();
        let h = NpyHeader {
            dtype: DType::Int32,
            byte_order: ByteOrder::Big,
            fortran_order: true,
            shape: vec![2, 3],
        };
        let s = stats_of(&h, &bytes, 5);
        let head: Vec<_> = (0..6).map(Scalar::Int).collect();
        assert_eq!(s.head, head);
        assert_eq!(s.sum, Some(15.0));
    }

    #[test]
    fn nan_propagates_and_empty_has_no_extrema() {
        let bytes: Vec<u8> = [1.0f32, f32::NAN, -3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut h = NpyHeader::new(DType::Float32, &[3]);
        h.byte_order = ByteOrder::Little;
        let s = stats_of(&h, &bytes, 4);
        assert!(s.min.unwrap().is_nan() && s.max.unwrap().is_nan() && s.sum.unwrap().is_nan());
        let e = stats_of(&NpyHeader::new(DType::Int8, &[0, 3]), &[], 1);
        assert_eq!(
            (e.min, e.max, e.sum, e.head.len()),
            (None, None, Some(0.0), 0)
        );
    }

    #[test]
    fn short_data_is_an_error() {
        let mut acc = StatsAccumulator::new(&NpyHeader::new(DType::Int32, &[2]));
        acc.feed(&[0; 7]);
        assert!(acc.finish().is_err());
    }

    /// NumPy's pairwise sum, written as NumPy's C code is: recursive, over a slice.
    fn numpy_pairwise(a: &[f64]) -> f64 {
        if a.len() <= PW_BLOCKSIZE {
            return block_sum(a);
        }
        let n2 = left_part(a.len());
        numpy_pairwise(&a[..n2]) + numpy_pairwise(&a[n2..])
    }

    #[test]
    fn sums_as_numpy_sums() {
        let le = |dtype, n| {
            let mut h = NpyHeader::new(dtype, &[n]);
            h.byte_order = ByteOrder::Little;
            h
        };
        let bytes = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        // Values NumPy 2.4 gives: np.sum(np.array(a)) for these arrays.
        let a = [1.0, 1e16, -1e16];
        assert_eq!(
            stats_of(&le(DType::Float64, 3), &bytes(&a), 8).sum,
            Some(0.0)
        );
        let mut b = vec![1.0; 9];
        b.extend([1e16, -1e16, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(
            stats_of(&le(DType::Float64, 16), &bytes(&b), 24).sum,
            Some(6.0)
        );
        // Large arrays: one tree for native float64, a tree per 8192 values otherwise.
        let mut x = 0.5f64;
        let big: Vec<f64> = (0..50_000)
            .map(|i| {
                x = (x * 3.9 * (1.0 - x)).clamp(1e-9, 1.0 - 1e-9);
                x * 10f64.powi(i % 17 - 3) * if i % 3 == 0 { -1.0 } else { 1.0 }
            })
            .collect();
        let whole = stats_of(&le(DType::Float64, big.len()), &bytes(&big), 4093);
        assert_eq!(whole.sum, Some(numpy_pairwise(&big)));
        let mut h = le(DType::Float64, big.len());
        h.byte_order = ByteOrder::Big;
        let be: Vec<u8> = big.iter().flat_map(|x| x.to_be_bytes()).collect();
        let chunked = big
            .chunks(NUMPY_BUFSIZE)
            .fold(0.0, |acc, c| acc + numpy_pairwise(c));
        assert_eq!(stats_of(&h, &be, 10_000).sum, Some(chunked));
        assert_ne!(
            chunked,
            numpy_pairwise(&big),
            "the two orders differ on this data"
        );
    }
}
