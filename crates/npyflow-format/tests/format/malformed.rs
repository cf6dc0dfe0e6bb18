//! NumPy's own malformed-file cases (numpy/lib/tests/test_format.py), ported: each must be
//! refused with an error, never a panic; and the limits NumPy tests (header size, files past
//! 4 GiB, empty archives) behave as in NumPy.

use npyflow_format::header::NpyHeader;
use npyflow_format::npy::{read_npy, read_npy_bytes, NpyFile, ReadOptions};
use npyflow_format::npz::{NpzArchive, NpzWriter};
use npyflow_format::{Buffer, DType, Tensor};

use crate::common;

#[path = "../support/raw_npy.rs"]
mod raw_npy;
use raw_npy::npy_bytes;

fn refuse(bytes: &[u8]) -> String {
    read_npy_bytes(&Buffer::from_vec(bytes.to_vec()))
        .err()
        .unwrap_or_else(|| panic!("{bytes:?} was accepted"))
        .to_string()
}

#[test]
fn bad_version_and_malformed_magic() {
    let bad_version: [&[u8]; 6] = [
        b"\x93NUMPY\x01\x01",
        b"\x93NUMPY\x00\x00",
        b"\x93NUMPY\x00\x01",
        b"\x93NUMPY\x02\x00",
        b"\x93NUMPY\x02\x02",
        b"\x93NUMPY\xff\xff",
    ];
    let malformed: [&[u8]; 7] = [
        b"\x92NUMPY\x01\x00",
        b"\x00NUMPY\x01\x00",
        b"\x93numpy\x01\x00",
        b"\x93MATLB\x01\x00",
        b"\x93NUMPY\x01",
        b"\x93NUMPY",
        b"",
    ];
    for m in bad_version.iter().chain(&malformed) {
        let msg = refuse(m);
        assert!(msg.starts_with("header:"), "{m:?}: {msg}");
    }
    assert!(refuse(b"\x93NUMPY\x01\x01").contains("1.1"));
}

#[test]
fn bad_headers() {
    // shorter than its stated size
    assert!(refuse(b"\x93NUMPY\x01\x00\x01\x00").contains("only 0 bytes follow"));
    // without the exact keys
    let missing = b"\x93NUMPY\x01\x006\x00{'descr': 'x', 'shape': (1, 2), }                    \n";
    assert!(refuse(missing).contains("missing key"));
    let extra = "{'descr': 'x', 'extrakey': -1, 'fortran_order': False, 'shape': (1, 2), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(extra.len() as u16 + 1).to_le_bytes());
    bytes.extend_from_slice(extra.as_bytes());
    bytes.push(b'\n');
    assert!(refuse(&bytes).contains("unexpected key \"extrakey\""));
}

/// A file whose header is padded with spaces to about 12 kB, past NumPy's default limit
/// (NumPy accepts any spacing in a header).
fn huge_header_file(dir: &std::path::Path) -> (std::path::PathBuf, Tensor) {
    let t = Tensor::from_vec(vec![42i64, 43], &[2]).unwrap();
    let text = format!(
        "{{'descr': '<i8', 'fortran_order': False, 'shape': (2,){}}}",
        " ".repeat(12_000)
    );
    let p = dir.join("huge.npy");
    std::fs::write(&p, npy_bytes(2, &text, t.as_bytes())).unwrap();
    (p, t)
}

#[test]
fn huge_header_needs_a_raised_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (p, t) = huge_header_file(dir.path());
    let e = read_npy(&p).unwrap_err().to_string();
    assert!(e.contains("more than NumPy's limit of 10000 bytes"), "{e}");
    assert!(!e.contains("max_header_size"), "{e}");
    let opts = ReadOptions {
        max_header_size: 200_000,
        ..Default::default()
    };
    assert_eq!(NpyFile::open_with(&p, &opts).unwrap().load().unwrap(), t);

    // The same file as a member of an archive.
    let npz = dir.path().join("huge.npz");
    let member = std::fs::read(&p).unwrap();
    std::fs::write(&npz, common::stored_zip(&[("arr.npy", &member)])).unwrap();
    let a = NpzArchive::open(&npz).unwrap();
    assert!(a
        .load("arr")
        .unwrap_err()
        .to_string()
        .contains("more than NumPy's limit"));
    assert_eq!(
        NpzArchive::open_with(&npz, &opts)
            .unwrap()
            .load("arr")
            .unwrap(),
        t
    );
}

#[test]
fn empty_npz() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.npz");
    NpzWriter::create(&p).unwrap().finish().unwrap();
    let a = NpzArchive::open(&p).unwrap();
    assert_eq!(a.keys().count(), 0);
}

#[test]
fn pickles_are_refused() {
    let text = "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(text.len() as u16 + 1).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(&[0x80, 0x04, 0x95]); // the start of a pickle
    let msg = refuse(&bytes);
    assert!(msg.contains("pickle"), "{msg}");
}

#[cfg(unix)]
#[test]
fn files_past_4_gib_open_in_place() {
    // A sparse 5 GiB file: the data is mapped, not read, so this is quick and uses no memory.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.npy");
    let n = 5usize << 30;
    let header = NpyHeader::new(DType::UInt8, &[n]).encode(None).unwrap();
    let f = std::fs::File::create(&p).unwrap();
    std::io::Write::write_all(&mut &f, &header).unwrap();
    if f.set_len((header.len() + n) as u64).is_err() {
        eprintln!("skipping: the file system cannot hold a sparse 5 GiB file");
        return;
    }
    let t = read_npy(&p).unwrap();
    assert_eq!(t.nbytes(), n);
    assert!(npyflow_format::npy::is_mapped(&t));
    let last = t.slice_rows(n - 1..n).unwrap();
    assert_eq!(last.as_bytes(), &[0]);
}
