//! Round trips with NumPy: NumPy writes every dtype x byte order x shape x memory order x
//! format version; npyflow must read each exactly as NumPy does, write it back byte for byte
//! as `np.save` does, and write `.npz` archives NumPy reads back unchanged.
//!
//! Needs Python with NumPy (`NPYFLOW_PYTHON`, default `python3`). Without it the test says so
//! and passes, unless `NPYFLOW_REQUIRE_NUMPY=1` (set by the project's test command), where
//! a missing NumPy is a failure.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::common;

use npyflow_format::header::Version;
use npyflow_format::npy::{write_npy_with, WriteOptions};
use npyflow_format::npz::Compression;
use npyflow_format::npz::NpzWriter;

fn python() -> Option<String> {
    let py = std::env::var("NPYFLOW_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    if std::env::var("NPYFLOW_REQUIRE_NUMPY").is_ok_and(|v| v == "1") {
        panic!("NumPy is required (NPYFLOW_REQUIRE_NUMPY=1) but `{py} -c 'import numpy'` fails");
    }
    eprintln!("skipping: no Python with NumPy (set NPYFLOW_PYTHON, or install numpy)");
    None
}

fn run(py: &str, script: &str, args: &[&Path]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/numpy")
        .join(script);
    let out = Command::new(py).arg(&script).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} failed:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn version_of(s: &str) -> Version {
    match s {
        "1.0" => Version::V1,
        "2.0" => Version::V2,
        _ => Version::V3,
    }
}

#[test]
fn numpy_files_read_exactly_and_write_back_byte_for_byte() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("numpy");
    let ours = dir.path().join("npyflow");
    std::fs::create_dir_all(&ours).unwrap();
    run(&py, "make_matrix.py", &[&theirs]);
    let manifest = common::load_manifest(&theirs);
    assert!(manifest.len() > 1000, "the matrix is complete");

    let mut archives: BTreeMap<String, Vec<(String, npyflow_format::Tensor, WriteOptions)>> =
        BTreeMap::new();
    let mut failures = Vec::new();
    for m in &manifest {
        let (header, _, tensor) = match common::read_and_compare(&theirs, m) {
            Ok(read) => read,
            Err(diff) => {
                failures.push(diff);
                continue;
            }
        };
        let options = WriteOptions {
            version: Some(version_of(&m.format_version)),
            byte_order: header.byte_order,
            fortran_order: header.fortran_order,
        };
        match &m.name {
            None => write_npy_with(ours.join(&m.file), &tensor, &options).unwrap(),
            Some(key) => archives.entry(m.file.clone()).or_default().push((
                key.clone(),
                tensor,
                WriteOptions {
                    version: None,
                    ..options
                },
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for (file, members) in archives {
        let compression = if file.starts_with("deflated") {
            Compression::Deflated
        } else {
            Compression::Stored
        };
        let mut w = NpzWriter::create(ours.join(&file)).unwrap();
        for (key, t, options) in &members {
            w.add_with(key, t, compression, options).unwrap();
        }
        w.finish().unwrap();
    }
    run(&py, "check_written.py", &[&theirs, &ours]);
}
