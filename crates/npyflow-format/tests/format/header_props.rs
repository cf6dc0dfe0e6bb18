//! Property tests of the `.npy` header parser: it never panics, whatever the bytes; every
//! header it writes it reads back; and every spelling NumPy accepts for a header (key order,
//! quotes, spacing, trailing comma) parses to the same header.

use npyflow_format::header::{parse_header, NpyHeader, Version, MAGIC};
use npyflow_format::{ByteOrder, DType, DateUnit, TimeUnit};
use proptest::prelude::*;

/// Parses `text` as the header text (the bytes after the prelude) of a file of `version`:
/// the text behind a prelude that claims exactly its length, and no size limit.
fn parse_header_text(text: &[u8], version: Version) -> npyflow_format::Result<NpyHeader> {
    let mut bytes = MAGIC.to_vec();
    match version {
        Version::V1 => {
            bytes.extend([1, 0]);
            bytes.extend(u16::try_from(text.len()).unwrap().to_le_bytes());
        }
        Version::V2 | Version::V3 => {
            bytes.extend([if version == Version::V2 { 2 } else { 3 }, 0]);
            bytes.extend(u32::try_from(text.len()).unwrap().to_le_bytes());
        }
    }
    let start = bytes.len();
    bytes.extend_from_slice(text);
    let (header, end) = parse_header(&bytes, usize::MAX)?;
    assert_eq!(end - start, text.len());
    Ok(header)
}

fn dtype() -> impl Strategy<Value = DType> {
    prop_oneof![
        Just(DType::Bool),
        Just(DType::Int8),
        Just(DType::Int16),
        Just(DType::Int32),
        Just(DType::Int64),
        Just(DType::UInt8),
        Just(DType::UInt16),
        Just(DType::UInt32),
        Just(DType::UInt64),
        Just(DType::Float16),
        Just(DType::Float32),
        Just(DType::Float64),
        Just(DType::Complex64),
        Just(DType::Complex128),
        (1usize..100).prop_map(DType::Bytes),
        (1usize..100).prop_map(DType::Unicode),
        Just(DType::DateTime64(TimeUnit::new(DateUnit::Nanoseconds))),
        (1u32..1000).prop_map(|m| DType::TimeDelta64(TimeUnit {
            unit: DateUnit::Seconds,
            multiple: m
        })),
    ]
}

fn header() -> impl Strategy<Value = NpyHeader> {
    (
        dtype(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(0usize..2000, 0..6),
    )
        .prop_map(|(dtype, big, fortran_order, shape)| NpyHeader {
            dtype,
            byte_order: if !dtype.has_byte_order() {
                ByteOrder::NATIVE
            } else if big {
                ByteOrder::Big
            } else {
                ByteOrder::Little
            },
            fortran_order,
            shape,
        })
}

/// Writes `h` as a Python dict literal in one of the many ways Python allows.
fn spell(
    h: &NpyHeader,
    order: [usize; 3],
    double: bool,
    spaces: &[String],
    trailing: bool,
) -> String {
    let q = if double { '"' } else { '\'' };
    let mut dims: Vec<String> = h.shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        0 => "()".to_string(),
        1 => format!("({}{},{})", spaces[0], dims.remove(0), spaces[1]),
        _ => format!("({})", dims.join(&format!(",{}", spaces[2]))),
    };
    let items = [
        format!("{q}descr{q}{}:{}{q}{}{q}", spaces[3], spaces[4], h.descr()),
        format!(
            "{q}fortran_order{q}:{}{}",
            spaces[5],
            if h.fortran_order { "True" } else { "False" }
        ),
        format!("{q}shape{q}:{}{shape}", spaces[6]),
    ];
    let body: Vec<&str> = order.iter().map(|&i| items[i].as_str()).collect();
    format!(
        "{}{{{}{}{}}}{}",
        spaces[7],
        body.join(&format!(",{}", spaces[8])),
        if trailing { "," } else { "" },
        spaces[9],
        spaces[10]
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_header(&bytes, 10_000);
        let _ = parse_header_text(&bytes, Version::V1);
        let _ = parse_header_text(&bytes, Version::V3);
    }

    #[test]
    fn never_panics_on_mutated_headers(
        h in header(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = h.encode(None).unwrap();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
            if bytes.is_empty() { break; }
        }
        if let Ok((parsed, _)) = parse_header(&bytes, 100_000) {
            // whatever parsed must be a header npyflow can write again
            let again = parse_header(&parsed.encode(None).unwrap(), 100_000).unwrap().0;
            prop_assert_eq!(again, parsed);
        }
    }

    #[test]
    fn encode_then_parse_is_identity(h in header()) {
        let bytes = h.encode(None).unwrap();
        prop_assert_eq!(bytes.len() % 64, 0);
        let (back, offset) = parse_header(&bytes, 100_000).unwrap();
        prop_assert_eq!(offset, bytes.len());
        prop_assert_eq!(back, h);
    }

    #[test]
    fn every_python_spelling_parses_the_same(
        h in header(),
        order in Just([0usize, 1, 2]).prop_shuffle(),
        double in any::<bool>(),
        spaces in prop::collection::vec("[ \t\n]{0,3}", 11),
        trailing in any::<bool>(),
    ) {
        let text = spell(&h, order, double, &spaces, trailing);
        let parsed = parse_header_text(text.as_bytes(), Version::V1);
        prop_assert!(parsed.is_ok(), "{:?}: {:?}", text, parsed);
        prop_assert_eq!(parsed.unwrap(), h);
    }
}
