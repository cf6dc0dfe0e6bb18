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

use crate::error::{Error, Result};

mod parse;
mod types;
mod value;

use parse::Parser;
pub use types::{NpyHeader, Version, ARRAY_ALIGN, DEFAULT_MAX_HEADER_SIZE, MAGIC, MAX_DIMS};
use value::header_from_value;

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
        if prelude.starts_with(b"PK\x03\x04") || prelude.starts_with(b"PK\x05\x06") {
            return Err(Error::Header(
                "not a .npy file but a zip archive (an .npz): read it with from_npz \
                 (npyflow.load also reads .npz files)"
                    .into(),
            ));
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
            "the header is {header_len} bytes, more than NumPy's limit of {max_header_size} \
             bytes: the file is damaged or was not written by NumPy"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::{ByteOrder, DType};

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
        assert!(big
            .unwrap_err()
            .to_string()
            .contains("more than NumPy's limit"));
    }
}
