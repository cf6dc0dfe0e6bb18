//! Inputs the fuzzers (fuzz/) found that broke npyflow once, each named after its bug.
//! The files are in tests/fuzz_regressions/.

use std::path::PathBuf;

use npyflow_format::header::{parse_header, DEFAULT_MAX_HEADER_SIZE};
use npyflow_format::npy::ReadOptions;
use npyflow_format::npz::{NpzArchive, NpzEntry};
use npyflow_format::{Buffer, ByteOrder, DType};

fn case(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(name);
    std::fs::read(p).unwrap()
}

/// `'>u1'` parsed as big-endian but was written back as `'|u1'`, so a header did not survive
/// a round trip. A one-byte dtype has no byte order; NumPy reports `'|u1'` for both.
#[test]
fn header_big_endian_u1_reencodes_as_pipe() {
    let bytes = case("header_big_endian_u1_reencodes_as_pipe.npy");
    let (h, _) = parse_header(&bytes, DEFAULT_MAX_HEADER_SIZE).unwrap();
    assert_eq!(h.dtype, DType::UInt8);
    assert_eq!(h.byte_order, ByteOrder::NATIVE);
    assert_eq!(h.descr(), "|u1");
    let again = parse_header(&h.encode(None).unwrap(), DEFAULT_MAX_HEADER_SIZE)
        .unwrap()
        .0;
    assert_eq!(again, h);
}

/// A member whose `.npy` header is shorter than the 12 bytes first read to sniff it made the
/// reader copy past the end of its header buffer (a panic, not an error).
#[test]
fn npz_member_header_shorter_than_first_read() {
    let bytes = case("npz_member_header_shorter_than_first_read.npz");
    let npz = NpzArchive::from_buffer(Buffer::from_vec(bytes), &ReadOptions::default());
    // Whatever the verdict on the archive, it is an error value, and every member that
    // claims to be an array is either read or refused with a reason.
    if let Ok(npz) = npz {
        for e in npz.entries() {
            if let NpzEntry::Bad { error, .. } = e {
                assert!(!error.to_string().is_empty());
            }
        }
    }
}

/// Two members with one key, one of them broken: `keys()` listed the key (from the good one)
/// while `member()` returned the broken one's error. A key held by two members, broken or
/// not, is ambiguous; both are refused and the key is not listed.
#[test]
fn npz_listed_key_shadowed_by_broken_twin() {
    let bytes = case("npz_listed_key_shadowed_by_broken_twin.npz");
    let npz = NpzArchive::from_buffer(Buffer::from_vec(bytes), &ReadOptions::default()).unwrap();
    for key in npz.keys() {
        npz.member(key).unwrap();
    }
    let refused: Vec<_> = npz
        .entries()
        .iter()
        .filter_map(|e| match e {
            NpzEntry::Bad { name, error } if error.to_string().contains("more than one member") => {
                Some(name.clone())
            }
            _ => None,
        })
        .collect();
    assert!(!refused.is_empty());
    assert!(npz
        .keys()
        .all(|k| !refused.iter().any(|n| n.strip_suffix(".npy") == Some(k))));
}
