//! The `.npy` header: the magic string, the version, and the Python dict literal that names
//! the dtype, the order and the shape.
//!
//! The dict is parsed by a small hand-written parser for the Python literals a header can hold
//! (dicts, tuples, lists, strings, integers, `True`/`False`/`None`), never by an evaluator. It
//! accepts what NumPy's `ast.literal_eval` accepts in headers: any key order, either quote,
//! a trailing comma or none, any spacing, and the `L` suffix of Python 2 integers in version
//! 1.0 and 2.0 headers. It is stricter than NumPy in three places, each a sign of a forged
//! file rather than one NumPy wrote: a key given twice, a `bool` where a dimension belongs,
//! and integer literals other than plain decimals are refused.

use std::fmt::Write as _;

use crate::dtype::{ByteOrder, DType};
use crate::error::{Error, Result};
use crate::tensor::checked_nbytes;

mod parse;
mod value;

use parse::Parser;
use value::header_from_value;

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

/// Reads the magic and version from the first bytes of a file and returns the version and
/// the length of the header text that follows the prelude. `prelude` must hold at least
/// [`Version::prelude_len`] bytes, or the file is too short.
pub(crate) fn parse_prelude(prelude: &[u8]) -> Result<(Version, usize)> {
    if prelude.len() < 8 || &prelude[..6] != MAGIC {
        if prelude.len() < 6 && MAGIC.starts_with(prelude) {
            return Err(Error::Header(format!(
                "the file ends after {} bytes, inside the magic string",
                prelude.len()
            )));
        }
        if prelude.len() >= 6 && &prelude[..6] == MAGIC {
            return Err(Error::Header("the file ends inside the version".into()));
        }
        return Err(Error::Header(format!(
            "not a .npy file: it starts with {:?}, not the magic string \"\\x93NUMPY\"",
            String::from_utf8_lossy(&prelude[..prelude.len().min(6)])
        )));
    }
    let version = match (prelude[6], prelude[7]) {
        (1, 0) => Version::V1,
        (2, 0) => Version::V2,
        (3, 0) => Version::V3,
        (major, minor) => {
            return Err(Error::Header(format!(
                "format version {major}.{minor} is not one of 1.0, 2.0 and 3.0"
            )))
        }
    };
    let need = version.prelude_len();
    if prelude.len() < need {
        return Err(Error::Header(
            "the file ends inside the header length".into(),
        ));
    }
    let header_len = match version {
        Version::V1 => u16::from_le_bytes([prelude[8], prelude[9]]) as usize,
        _ => u32::from_le_bytes([prelude[8], prelude[9], prelude[10], prelude[11]]) as usize,
    };
    Ok((version, header_len))
}

/// Parses the header text (the bytes after the prelude) of a file of `version`.
pub(crate) fn parse_header_text(bytes: &[u8], version: Version) -> Result<NpyHeader> {
    // Latin-1 maps each byte to the code point of the same value; 3.0 is UTF-8.
    let text: String = match version {
        Version::V1 | Version::V2 => bytes.iter().map(|&b| b as char).collect(),
        Version::V3 => std::str::from_utf8(bytes)
            .map_err(|e| Error::Header(format!("a version 3.0 header must be UTF-8: {e}")))?
            .to_owned(),
    };
    let value = Parser::new(&text, version != Version::V3).parse_document()?;
    header_from_value(value)
}

/// Reads a whole header from the start of `bytes` (a file's first bytes, at least the
/// prelude and header). Returns the header and the offset of the data.
pub fn parse_header(bytes: &[u8], max_header_size: usize) -> Result<(NpyHeader, usize)> {
    let (version, header_len) = parse_prelude(bytes)?;
    check_header_len(header_len, max_header_size)?;
    let start = version.prelude_len();
    let end = start.saturating_add(header_len);
    if bytes.len() < end {
        return Err(Error::Header(format!(
            "the header says it is {header_len} bytes long, but the file ends after {}",
            bytes.len() - start
        )));
    }
    Ok((parse_header_text(&bytes[start..end], version)?, end))
}

/// Refuses a header longer than `max_header_size`, as NumPy does.
pub(crate) fn check_header_len(header_len: usize, max_header_size: usize) -> Result<()> {
    if header_len > max_header_size {
        return Err(Error::Header(format!(
            "the header is {header_len} bytes, more than the limit of {max_header_size} \
             (raise it with max_header_size if you trust the file)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NpyHeader> {
        parse_header_text(text.as_bytes(), Version::V1)
    }

    #[test]
    fn accepts_numpy_header_variants() {
        let expect = NpyHeader {
            dtype: DType::Float32,
            byte_order: ByteOrder::Little,
            fortran_order: false,
            shape: vec![3, 4],
        };
        for text in [
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }      \n",
            "{'shape': (3, 4), 'fortran_order': False, 'descr': '<f4'}",
            "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3,4)}",
            "  {  'descr' :'<f4' ,'fortran_order':False,'shape':( 3 , 4 , ) , }  ",
            "{'descr': '<' 'f4', 'fortran_order': False, 'shape': (3L, 4L)}",
            "{'descr': u'<f4',\n 'fortran_order': False,\n 'shape': (3, 4)}\n",
            "{'descr': 'float32', 'fortran_order': False, 'shape': (3, 4)}",
            "{'descr': '<f4', 'fortran_order': (False), 'shape': (+3, 4)}",
            "{'descr': r'<f4', # a comment\n 'fortran_order': False, 'shape': (3, 4)}",
            "{'descr': '\\x3cf4', 'fortran_order': False, 'shape': (3, 4)}",
            "{'descr': '\\74f4', 'fortran_order': False, 'shape': (3, 4)}",
        ] {
            let mut e = expect.clone();
            if text.contains("float32") {
                e.byte_order = ByteOrder::NATIVE;
            }
            assert_eq!(parse(text).unwrap(), e, "{text}");
        }
        let scalar = parse("{'descr': '|b1', 'fortran_order': True, 'shape': ()}").unwrap();
        assert_eq!(scalar.shape, Vec::<usize>::new());
        assert!(scalar.fortran_order);
        assert_eq!(
            parse("{'descr':'<i8','fortran_order':False,'shape':(7,)}")
                .unwrap()
                .shape,
            [7]
        );
    }

    #[test]
    fn long_suffix_only_before_version_3() {
        let text = "{'descr': '<f4', 'fortran_order': False, 'shape': (3L,)}";
        assert!(parse_header_text(text.as_bytes(), Version::V2).is_ok());
        assert!(parse_header_text(text.as_bytes(), Version::V3).is_err());
    }

    #[test]
    fn rejects_what_numpy_rejects() {
        let cases = [
            ("{'descr': '<f4', 'fortran_order': False}", "missing key \"shape\""),
            ("{'descr': '<f4', 'shape': ()}", "missing key \"fortran_order\""),
            ("{'fortran_order': False, 'shape': ()}", "missing key \"descr\""),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}", "unexpected key"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': [3]}", "a list, not a tuple"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': 3}", "an integer, not a tuple"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (3)}", "an integer, not a tuple"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}", "negative"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (3.0,)}", "a float"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (True,)}", "a bool"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': ()}", "not True or False"),
            ("{'descr': '<f4', 'fortran_order': 'False', 'shape': ()}", "not True or False"),
            ("{'descr': '<x4', 'fortran_order': False, 'shape': ()}", "unknown dtype"),
            ("{'descr': '|O', 'fortran_order': False, 'shape': ()}", "pickle"),
            ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': ()}", "structured"),
            ("{'descr': 5, 'fortran_order': False, 'shape': ()}", "not a dtype string"),
            ("['descr', '<f4']", "not a dict"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (--2,)}", "not a number"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2l,)}", "not a number"),
            ("", "ends too soon"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': ()", "ends too soon"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': ()} x", "after the dict"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (03,)}", "leading zeros"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (0x3,)}", "not a number"),
            ("{'descr': '<f4, 'fortran_order': False, 'shape': ()}", "expected"),
            ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}", "twice"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (__import__('os'),)}", "not a literal"),
            ("{1: '<f4'}", "not a string"),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4)}",
                "more bytes than",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
                "larger than memory",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (9999999999999999999999999999999999999999999,)}",
                "too large",
            ),
        ];
        for (text, needle) in cases {
            let msg = parse(text).unwrap_err().to_string();
            assert!(msg.contains(needle), "{text}: {msg}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let text = format!("{}{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(parse(&text).unwrap_err().to_string().contains("too deep"));
    }

    #[test]
    fn encodes_like_numpy() {
        let h = NpyHeader::new(DType::Float32, &[3, 4]);
        let bytes = h.encode(None).unwrap();
        let expected_text = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        assert_eq!(bytes.len() % 64, 0);
        assert_eq!(
            &bytes[10..10 + expected_text.len()],
            expected_text.as_bytes()
        );
        assert_eq!(*bytes.last().unwrap(), b'\n');
        let (back, offset) = parse_header(&bytes, DEFAULT_MAX_HEADER_SIZE).unwrap();
        assert_eq!(back, h);
        assert_eq!(offset, bytes.len());
        // NumPy adds a whole 64 bytes of padding when the text ends aligned.
        let h = NpyHeader::new(
            DType::Float32,
            &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 10, 100, 100],
        );
        assert_eq!(h.encode(None).unwrap().len(), 192);
        // Forced versions; more than 64 axes or a sizeless dtype cannot be written.
        let v2 = h.encode(Some(Version::V2)).unwrap();
        assert_eq!(&v2[6..8], &[2, 0]);
        assert_eq!(parse_header(&v2, 10_000).unwrap().0, h);
        assert!(NpyHeader::new(DType::UInt8, &[1; 65]).encode(None).is_err());
        assert!(NpyHeader::new(DType::Bytes(0), &[1]).encode(None).is_err());
    }

    #[test]
    fn prelude_errors() {
        assert!(parse_prelude(b"")
            .unwrap_err()
            .to_string()
            .contains("inside the magic"));
        assert!(parse_prelude(b"\x93NUM")
            .unwrap_err()
            .to_string()
            .contains("inside the magic"));
        assert!(parse_prelude(b"PK\x03\x04abcd")
            .unwrap_err()
            .to_string()
            .contains("not a .npy"));
        let bad = parse_prelude(b"\x93NUMPY\x01\x01\x00\x00")
            .unwrap_err()
            .to_string();
        assert!(bad.contains("1.1"), "{bad}");
        assert!(parse_prelude(b"\x93NUMPY\x04\x00\x00\x00\x00\x00").is_err());
        assert!(parse_prelude(b"\x93NUMPY\x02\x00\x10")
            .unwrap_err()
            .to_string()
            .contains("header length"));
        let big = parse_header(
            b"\x93NUMPY\x02\x00\xff\xff\xff\xff",
            DEFAULT_MAX_HEADER_SIZE,
        );
        assert!(big.unwrap_err().to_string().contains("more than the limit"));
    }
}
