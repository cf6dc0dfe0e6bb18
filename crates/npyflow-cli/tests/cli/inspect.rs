//! `npyflow inspect` end to end: what it prints, and how it refuses bad files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use npyflow::format::npy::{write_npy, write_npy_with, WriteOptions};
use npyflow::format::npz::Compression;
use npyflow::format::npz::NpzWriter;
use npyflow::{ByteOrder, Tensor};

// Shared with npyflow-format's tests of malformed headers.
#[path = "../../../npyflow-format/tests/support/raw_npy.rs"]
mod raw_npy;
use raw_npy::npy_bytes;

fn inspect(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_npyflow"))
        .arg("inspect")
        .args(args)
        .args(paths)
        .output()
        .unwrap()
}

/// The JSON lines of stdout; NaN (which Python's json reads, and serde_json does not) as null.
fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| l.replace("NaN", "null"))
        .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// A .npy file with the given header text, padded as NumPy pads, and `data` after it.
fn npy_with_header(dir: &Path, name: &str, header: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, npy_bytes(1, header, data)).unwrap();
    p
}

#[test]
fn json_reports_what_the_header_says_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.npy");
    let t = Tensor::from_vec(vec![3i32, -4, 5, 6, 7, 8], &[2, 3]).unwrap();
    let opts = WriteOptions {
        byte_order: ByteOrder::Big,
        fortran_order: true,
        version: None,
    };
    write_npy_with(&p, &t, &opts).unwrap();
    let out = inspect(&["--json", "--stats"], &[&p]);
    assert!(out.status.success());
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["path"], p.display().to_string());
    assert_eq!(r["name"], serde_json::Value::Null);
    assert_eq!(r["dtype"], ">i4");
    assert_eq!(r["shape"], serde_json::json!([2, 3]));
    assert_eq!(r["fortran_order"], true);
    assert_eq!(r["format_version"], "1.0");
    assert_eq!(r["nbytes"], 24);
    assert_eq!(r["min"], -4.0);
    assert_eq!(r["max"], 8.0);
    assert_eq!(r["sum"], 25.0);
    // head is in logical C order although the file is in Fortran order
    assert_eq!(r["head"], serde_json::json!([3, -4, 5, 6, 7, 8]));
}

#[test]
fn npz_members_in_archive_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npz");
    let mut w = NpzWriter::create(&p).unwrap();
    let zs = Tensor::from_vec(vec![1.5f64, f64::NAN], &[2]).unwrap();
    w.add("zeta", &zs, Compression::Deflated).unwrap();
    w.add("alpha", &Tensor::scalar(7u8), Compression::Stored)
        .unwrap();
    w.finish().unwrap();
    let out = inspect(&["--json", "--stats"], &[&p]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        text.contains("\"min\": NaN"),
        "NaN written as Python's json writes it: {text}"
    );
    let rows = json_lines(&out);
    let names: Vec<_> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["zeta", "alpha"]);
    assert_eq!(rows[0]["head"], serde_json::json!([1.5, null]));
    assert_eq!(rows[1]["shape"], serde_json::json!([]));
    assert_eq!(rows[1]["head"], serde_json::json!([7]));
}

#[test]
fn malformed_files_exit_1_naming_the_file_and_the_rest_still_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = d.join("good.npy");
    write_npy(&good, &Tensor::from_vec(vec![1u16, 2], &[2]).unwrap()).unwrap();
    let f4 = |shape: &str| format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}}}");
    let empty = d.join("empty.npy");
    std::fs::write(&empty, b"").unwrap();
    let text = d.join("text.npy");
    std::fs::write(&text, b"hello world").unwrap();
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            npy_with_header(
                d,
                "missing_key.npy",
                "{'descr': '<f4', 'shape': ()}",
                &[0; 4],
            ),
            "missing key",
        ),
        (
            npy_with_header(d, "negative.npy", &f4("(-1,)"), &[]),
            "negative",
        ),
        (
            npy_with_header(d, "not_tuple.npy", &f4("[2]"), &[0; 8]),
            "not a tuple",
        ),
        (
            npy_with_header(d, "short.npy", &f4("(3,)"), &[0; 11]),
            "needs 12 bytes",
        ),
        (
            npy_with_header(d, "terabytes.npy", &f4("(1000000000000,)"), &[0; 16]),
            "needs 4000000000000 bytes",
        ),
        (
            npy_with_header(
                d,
                "overflow.npy",
                &f4("(4294967296, 4294967296, 4294967296)"),
                &[],
            ),
            "more bytes than",
        ),
        (
            npy_with_header(
                d,
                "object.npy",
                "{'descr': '|O', 'fortran_order': False, 'shape': (1,)}",
                &[0; 8],
            ),
            "pickle",
        ),
        (empty, "empty"),
        (text, "neither a .npy file"),
    ];
    let mut paths: Vec<&Path> = cases.iter().map(|(p, _)| p.as_path()).collect();
    paths.push(&good);
    let out = inspect(&["--json", "--stats"], &paths);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    for (p, needle) in &cases {
        let line = stderr
            .lines()
            .find(|l| l.contains(&*p.display().to_string()))
            .unwrap_or_else(|| panic!("no error line for {}:\n{stderr}", p.display()));
        assert!(line.contains(needle), "{line:?} should say {needle:?}");
    }
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["path"], good.display().to_string());
}

#[test]
fn a_zip_bomb_is_refused_before_inflating() {
    // A deflated member whose directory claims a terabyte from a few bytes.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bomb.npz");
    let mut w = NpzWriter::create(&p).unwrap();
    w.add(
        "x",
        &Tensor::zeros(npyflow::DType::UInt8, &[100]).unwrap(),
        Compression::Deflated,
    )
    .unwrap();
    w.finish().unwrap();
    let mut bytes = std::fs::read(&p).unwrap();
    // patch the uncompressed size in the central directory entry (offset 24 within it)
    let cd = bytes.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
    bytes[cd + 24..cd + 28].copy_from_slice(&u32::MAX.to_le_bytes()[..]);
    bytes[cd + 24] = 0xfe;
    std::fs::write(&p, &bytes).unwrap();
    let out = inspect(&["--json", "--stats"], &[&p]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bomb.npz") && stderr.contains("more than deflate can produce"),
        "{stderr}"
    );
}

#[test]
fn the_table_and_the_sample() {
    let out = Command::new(env!("CARGO_BIN_EXE_npyflow"))
        .args(["inspect", "--sample", "--stats"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("file") && lines[0].contains("dtype") && lines[0].contains("sum"));
    assert_eq!(lines.len(), 1 + 7, "{text}");
    assert!(text.contains(">f8") && text.contains("images") && text.contains("(1000, 32, 32, 3)"));
}

#[test]
fn urls_are_inspected_by_range_as_files_are() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.npy");
    let t = Tensor::from_vec(vec![3i32, -4, 5, 6, 7, 8], &[2, 3]).unwrap();
    write_npy(&p, &t).unwrap();
    let z = dir.path().join("a.npz");
    let mut w = NpzWriter::create(&z).unwrap();
    w.add("zeta", &t, Compression::Deflated).unwrap();
    w.add("alpha", &Tensor::scalar(7u8), Compression::Stored)
        .unwrap();
    w.finish().unwrap();
    let by_path = json_lines(&inspect(&["--json", "--stats"], &[&p, &z]));
    let url = |q: &Path| PathBuf::from(format!("file://{}", q.canonicalize().unwrap().display()));
    let out = inspect(&["--json", "--stats"], &[&url(&p), &url(&z)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by_url = json_lines(&out);
    assert_eq!(by_url.len(), 3);
    for (a, b) in by_path.iter().zip(&by_url) {
        for key in [
            "name",
            "dtype",
            "shape",
            "min",
            "max",
            "sum",
            "head",
            "format_version",
        ] {
            assert_eq!(a[key], b[key], "{key}");
        }
    }
    assert!(by_url[0]["path"].as_str().unwrap().starts_with("file:///"));
    let missing = PathBuf::from(format!(
        "file://{}/nope.npy",
        dir.path().canonicalize().unwrap().display()
    ));
    let out = inspect(&[], &[&missing]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.npy"));
}
