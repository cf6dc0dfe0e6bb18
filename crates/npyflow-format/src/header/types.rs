//! The header's types and constants: [`NpyHeader`], [`Version`], the magic string and the
//! limits, and the encoding of a header as NumPy writes it.

use std::fmt::Write as _;

use crate::dtype::{ByteOrder, DType};
use crate::error::{Error, Result};
use crate::tensor::checked_nbytes;

/// The six bytes every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// NumPy's default limit on the header length (`max_header_size` in `numpy.load`).
pub const DEFAULT_MAX_HEADER_SIZE: usize = 10_000;

/// Data in files npyflow writes starts at a multiple of this, as in NumPy.
pub const ARRAY_ALIGN: usize = 64;

/// The most dimensions NumPy supports (`NPY_MAXDIMS` in NumPy 2).
pub const MAX_DIMS: usize = 64;

/// Room NumPy leaves in a header so the first axis can grow in place.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// The `.npy` format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// 1.0: header length in 2 bytes, latin-1 text.
    V1,
    /// 2.0: header length in 4 bytes, latin-1 text.
    V2,
    /// 3.0: header length in 4 bytes, UTF-8 text.
    V3,
}

impl Version {
    /// `"1.0"`, `"2.0"` or `"3.0"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1 => "1.0",
            Version::V2 => "2.0",
            Version::V3 => "3.0",
        }
    }

    fn major(self) -> u8 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// Bytes before the header text: magic, version and header length.
    pub fn prelude_len(self) -> usize {
        match self {
            Version::V1 => 10,
            Version::V2 | Version::V3 => 12,
        }
    }
}

/// What a `.npy` header says about the array that follows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// The element type.
    pub dtype: DType,
    /// The byte order of the data in the file.
    pub byte_order: ByteOrder,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The shape.
    pub shape: Vec<usize>,
}

impl NpyHeader {
    /// A header for C-order, native-endian data.
    pub fn new(dtype: DType, shape: &[usize]) -> NpyHeader {
        NpyHeader {
            dtype,
            byte_order: ByteOrder::NATIVE,
            fortran_order: false,
            shape: shape.to_vec(),
        }
    }

    /// NumPy's `dtype.str` of the data as stored, for example `">i8"`.
    pub fn descr(&self) -> String {
        self.dtype.descr(self.byte_order)
    }

    /// Bytes of array data; the header was checked so this cannot overflow.
    pub fn nbytes(&self) -> usize {
        checked_nbytes(self.dtype, &self.shape).unwrap_or(usize::MAX)
    }

    /// Number of elements.
    pub fn size(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the data can be used in place: native byte order and, unless the array has at
    /// most one axis longer than 1, C order.
    pub fn is_c_native(&self) -> bool {
        let order_ok = !self.fortran_order || self.shape.iter().filter(|&&d| d > 1).count() <= 1;
        order_ok && (self.byte_order.is_native() || !self.dtype.has_byte_order())
    }

    /// The header text as NumPy writes it: the dict with sorted keys, a trailing comma and
    /// space, and room for the first axis to grow.
    fn dict_text(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "{{'descr': '{}', 'fortran_order': {}, 'shape': (",
            self.descr(),
            if self.fortran_order { "True" } else { "False" }
        );
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{d}");
        }
        if self.shape.len() == 1 {
            s.push(',');
        }
        s.push_str("), }");
        let growth_axis = if self.fortran_order {
            self.shape.last()
        } else {
            self.shape.first()
        };
        if let Some(d) = growth_axis {
            let digits = d.to_string().len();
            s.extend(std::iter::repeat_n(
                ' ',
                GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits),
            ));
        }
        s
    }

    /// The whole header, magic to newline, as NumPy writes it: version 1.0 unless the header
    /// is too long for it (then 2.0), padded so the data starts at a multiple of 64 bytes.
    /// `version` forces a version, failing if the header does not fit it.
    pub fn encode(&self, version: Option<Version>) -> Result<Vec<u8>> {
        if self.shape.len() > MAX_DIMS {
            return Err(Error::InvalidArgument(format!(
                "{} dimensions are more than the {MAX_DIMS} NumPy supports",
                self.shape.len()
            )));
        }
        if self.dtype.itemsize() == 0 {
            return Err(Error::InvalidArgument(format!(
                "{} has no size; NumPy cannot read such a file back",
                self.descr()
            )));
        }
        let text = self.dict_text();
        // NumPy pads with 64 - (length % 64) spaces: a whole 64 when already aligned.
        let padded = |v: Version| {
            let unpadded = v.prelude_len() + text.len() + 1;
            unpadded + ARRAY_ALIGN - unpadded % ARRAY_ALIGN
        };
        let fits_v1 = |v: Version| padded(v) - v.prelude_len() <= u16::MAX as usize;
        let version = match version {
            Some(Version::V1) if !fits_v1(Version::V1) => {
                return Err(Error::InvalidArgument(
                    "the header is too long for format version 1.0".into(),
                ))
            }
            Some(v) => v,
            None if fits_v1(Version::V1) => Version::V1,
            None => Version::V2,
        };
        let prelude = version.prelude_len();
        // header text, spaces, newline; the whole a multiple of ARRAY_ALIGN
        let total = padded(version);
        let header_len = total - prelude;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(MAGIC);
        out.push(version.major());
        out.push(0);
        match version {
            Version::V1 => out.extend_from_slice(&(header_len as u16).to_le_bytes()),
            _ => {
                let n = u32::try_from(header_len).map_err(|_| {
                    Error::InvalidArgument("the header is too long for any format version".into())
                })?;
                out.extend_from_slice(&n.to_le_bytes())
            }
        }
        out.extend_from_slice(text.as_bytes());
        out.resize(total - 1, b' ');
        out.push(b'\n');
        Ok(out)
    }
}
