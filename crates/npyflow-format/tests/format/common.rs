//! Helpers shared by the test modules: reading NumPy-written files against a manifest of
//! what NumPy says they hold (written by tests/numpy/make_matrix.py and
//! tests/fixtures/make_fixtures.py), and a minimal zip writer for archives npyflow's own
//! writer would not make.

use std::path::Path;

use npyflow_format::header::{NpyHeader, Version};
use npyflow_format::npy::NpyFile;
use npyflow_format::npz::NpzArchive;
use npyflow_format::Tensor;

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
    read_and_compare_with(dir, e, false)
}

/// [`read_and_compare`], the file read by its `file://` URL through the storage layer when
/// `by_url`.
pub fn read_and_compare_with(
    dir: &Path,
    e: &Entry,
    by_url: bool,
) -> Result<(NpyHeader, Version, Tensor), String> {
    let path = dir.join(&e.file);
    let url = format!("file://{}", path.canonicalize().unwrap().display());
    let so = npyflow_format::storage::StorageOptions::new();
    let (header, version, tensor) = match &e.name {
        None if by_url => {
            let f = npyflow_format::RemoteNpy::open(&url, &so, &Default::default())
                .map_err(|err| err.to_string())?;
            let t = f.load().map_err(|err| err.to_string())?;
            (f.header().clone(), f.version(), t)
        }
        Some(key) if by_url => {
            let a = NpzArchive::open_url(&url, &so, &Default::default())
                .map_err(|err| err.to_string())?;
            let m = a.member(key).map_err(|err| err.to_string())?.clone();
            let t = a.load(key).map_err(|err| err.to_string())?;
            (m.header, m.version, t)
        }
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

/// A zip archive of `members` (name, bytes), each stored (not compressed), with no data
/// descriptors or zip64 records: the smallest archive `np.load` reads, made byte by byte so
/// that a member can hold anything (a `.npy` npyflow would refuse to write, for one).
pub fn stored_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    fn u16le(out: &mut Vec<u8>, v: usize) {
        out.extend(u16::try_from(v).unwrap().to_le_bytes());
    }
    fn u32le(out: &mut Vec<u8>, v: u64) {
        out.extend(u32::try_from(v).unwrap().to_le_bytes());
    }
    // The run of fields both records have: no flags, stored, no time (8 zero bytes), the crc,
    // the two sizes and the name's length.
    fn shared_fields(out: &mut Vec<u8>, crc: u32, data: &[u8], name: &str) {
        out.extend([0; 8]);
        u32le(out, crc.into());
        u32le(out, data.len() as u64);
        u32le(out, data.len() as u64);
        u16le(out, name.len());
    }
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let crc = crc32fast::hash(data);
        let offset = out.len() as u64;
        // Local header: signature, version 2.0, no flags, stored, no time, crc, sizes.
        out.extend(b"PK\x03\x04");
        u16le(&mut out, 20);
        shared_fields(&mut out, crc, data, name);
        u16le(&mut out, 0);
        out.extend(name.as_bytes());
        out.extend(*data);
        // Its central directory record.
        central.extend(b"PK\x01\x02");
        u16le(&mut central, 20);
        u16le(&mut central, 20);
        shared_fields(&mut central, crc, data, name);
        central.extend([0; 12]); // extra, comment, disk, internal and external attributes
        u32le(&mut central, offset);
        central.extend(name.as_bytes());
    }
    let dir_offset = out.len() as u64;
    out.extend(&central);
    out.extend(b"PK\x05\x06");
    out.extend([0; 4]); // this disk, the directory's disk
    u16le(&mut out, members.len());
    u16le(&mut out, members.len());
    u32le(&mut out, central.len() as u64);
    u32le(&mut out, dir_offset);
    u16le(&mut out, 0);
    out
}
