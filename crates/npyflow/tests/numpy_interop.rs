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

use npyflow::format::header::Version;
use npyflow::format::npy::{write_npy_with, NpyFile, WriteOptions};
use npyflow::format::npz::{NpzArchive, NpzWriter};
use npyflow::format::zip::Compression;

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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn numpy_files_read_exactly_and_write_back_byte_for_byte() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("numpy");
    let ours = dir.path().join("npyflow");
    std::fs::create_dir_all(&ours).unwrap();
    run(&py, "make_matrix.py", &[&theirs]);
    let manifest: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(theirs.join("manifest.json")).unwrap())
            .unwrap();
    assert!(manifest.len() > 1000, "the matrix is complete");

    let mut archives: BTreeMap<String, Vec<(String, npyflow::Tensor, WriteOptions)>> =
        BTreeMap::new();
    let mut failures = Vec::new();
    for m in &manifest {
        let file = m["file"].as_str().unwrap();
        let path = theirs.join(file);
        let (header, version, tensor) = match m["name"].as_str() {
            None => {
                let f = NpyFile::open(&path).unwrap_or_else(|e| panic!("{e}"));
                (f.header().clone(), f.version(), f.load().unwrap())
            }
            Some(key) => {
                let a = NpzArchive::open(&path).unwrap_or_else(|e| panic!("{e}"));
                let member = a.member(key).unwrap().clone();
                (member.header, member.version, a.load(key).unwrap())
            }
        };
        let what = format!("{file} {:?}", m["name"]);
        let shape: Vec<usize> = m["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        if header.descr() != m["dtype"].as_str().unwrap() {
            failures.push(format!(
                "{what}: dtype {} != {}",
                header.descr(),
                m["dtype"]
            ));
        }
        if header.shape != shape || tensor.shape() != shape.as_slice() {
            failures.push(format!("{what}: shape {:?} != {shape:?}", header.shape));
        }
        if header.fortran_order != m["fortran_order"].as_bool().unwrap() {
            failures.push(format!("{what}: fortran_order differs"));
        }
        if version.as_str() != m["format_version"].as_str().unwrap() {
            failures.push(format!("{what}: version {} differs", version.as_str()));
        }
        if hex(tensor.as_bytes()) != m["c_hex"].as_str().unwrap() {
            failures.push(format!("{what}: data differs"));
        }
        let options = WriteOptions {
            version: Some(version_of(m["format_version"].as_str().unwrap())),
            byte_order: header.byte_order,
            fortran_order: header.fortran_order,
        };
        match m["name"].as_str() {
            None => write_npy_with(ours.join(file), &tensor, &options).unwrap(),
            Some(key) => archives.entry(file.to_owned()).or_default().push((
                key.to_owned(),
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
