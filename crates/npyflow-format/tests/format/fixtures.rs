//! Reading the NumPy-written files committed in tests/fixtures/numpy (made by
//! tests/fixtures/make_fixtures.py), so that reading NumPy's files is tested even where
//! Python and NumPy are not installed.

use crate::common;

use std::path::PathBuf;

#[test]
fn committed_numpy_files_read_as_numpy_reads_them() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/numpy");
    let manifest = common::load_manifest(&dir);
    assert!(manifest.len() >= 40);
    let failures: Vec<String> = manifest
        .iter()
        .filter_map(|e| common::read_and_compare(&dir, e).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
