//! Reading NumPy-written files against a manifest of what NumPy says they hold (written by
//! tests/numpy/make_matrix.py and tests/fixtures/make_fixtures.py).

use std::path::Path;

use npyflow::format::header::{NpyHeader, Version};
use npyflow::format::npy::NpyFile;
use npyflow::format::npz::NpzArchive;
use npyflow::Tensor;

/// One array of a manifest.
pub struct Entry {
    pub file: String,
    pub name: Option<String>,
    pub dtype: String,
    pub shape: Vec<usize>,
    pub fortran_order: bool,
    pub format_version: String,
    pub c_hex: String,
}

pub fn load_manifest(dir: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let items: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    items
        .iter()
        .map(|m| Entry {
            file: m["file"].as_str().unwrap().to_owned(),
            name: m["name"].as_str().map(str::to_owned),
            dtype: m["dtype"].as_str().unwrap().to_owned(),
            shape: m["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect(),
            fortran_order: m["fortran_order"].as_bool().unwrap(),
            format_version: m["format_version"].as_str().unwrap().to_owned(),
            c_hex: m["c_hex"].as_str().unwrap().to_owned(),
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the array `e` describes with npyflow; returns it, or what differs from the manifest.
pub fn read_and_compare(dir: &Path, e: &Entry) -> Result<(NpyHeader, Version, Tensor), String> {
    let path = dir.join(&e.file);
    let (header, version, tensor) = match &e.name {
        None => {
            let f = NpyFile::open(&path).map_err(|err| err.to_string())?;
            let t = f.load().map_err(|err| err.to_string())?;
            (f.header().clone(), f.version(), t)
        }
        Some(key) => {
            let a = NpzArchive::open(&path).map_err(|err| err.to_string())?;
            let m = a.member(key).map_err(|err| err.to_string())?.clone();
            let t = a.load(key).map_err(|err| err.to_string())?;
            (m.header, m.version, t)
        }
    };
    let mut diffs = Vec::new();
    if header.descr() != e.dtype {
        diffs.push(format!("dtype {} != {}", header.descr(), e.dtype));
    }
    if header.shape != e.shape || tensor.shape() != e.shape.as_slice() {
        diffs.push(format!("shape {:?} != {:?}", header.shape, e.shape));
    }
    if header.fortran_order != e.fortran_order {
        diffs.push("fortran_order differs".into());
    }
    if version.as_str() != e.format_version {
        diffs.push(format!(
            "version {} != {}",
            version.as_str(),
            e.format_version
        ));
    }
    if hex(tensor.as_bytes()) != e.c_hex {
        diffs.push("data differs".into());
    }
    if diffs.is_empty() {
        Ok((header, version, tensor))
    } else {
        Err(format!("{} {:?}: {}", e.file, e.name, diffs.join("; ")))
    }
}
