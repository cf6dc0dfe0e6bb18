//! A `.npy` of whole-page rows and its truncation "by another process", shared by the two
//! halves of the truncated-map tests: npyflow-format's tests/format/mapped_faults.rs (the
//! tensor level) and npyflow's tests/it/faults.rs (the dataset level), which includes this
//! file with `#[path]` (test code kept out of the library, and one copy of it).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use npyflow_format::npy::{write_npy, NpyFile};
use npyflow_format::{Error, Tensor};

/// Row bytes: one page per row, so that a truncation loses whole rows' pages.
pub const ROW: usize = 512;
pub const ROWS: usize = 64;
/// Rows 0..KEPT stay whole after [`truncate`].
pub const KEPT: usize = 10;

/// `ROWS` rows of `ROW` float64s, row `i` all `i + 1` (never 0, so zeros read from a lost
/// page show).
pub fn rows() -> Tensor {
    let data: Vec<f64> = (0..ROWS * ROW).map(|k| (k / ROW + 1) as f64).collect();
    Tensor::from_vec(data, &[ROWS, ROW]).unwrap()
}

/// A `.npy` of [`rows`].
pub fn write_rows(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    write_npy(&path, &rows()).unwrap();
    path
}

/// Cuts the file at `path` to `len` bytes, as another process would.
pub fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Cuts the file of [`write_rows`] after row `KEPT - 1`.
pub fn truncate(path: &Path) {
    let offset = NpyFile::open(path).unwrap().data_offset();
    set_len(path, offset + (KEPT * ROW * 8) as u64);
}

pub fn assert_names_truncation(e: &Error, path: &Path) {
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("truncated while memory-mapped"), "{msg}");
    assert!(msg.contains("may be zeros"), "{msg}");
}

/// Every value of a row of [`rows`] is the row's number + 1.
pub fn assert_row(t: &Tensor, i: usize) {
    let v = t.view::<f64>().unwrap();
    assert!(
        v.iter().all(|&x| x == (i + 1) as f64),
        "row {i}: {:?}",
        &v[..4]
    );
}
