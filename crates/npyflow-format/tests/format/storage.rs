//! The storage layer on `file://` URLs (the S3, HTTP and fault-injection tests need servers
//! and live in tests/python_pkg/test_storage.py, which starts them): every committed NumPy
//! file read by URL as NumPy reads it, listing, atomic writes, ranges, and an object
//! replaced while it is read.

use std::path::PathBuf;

use npyflow_format::storage::{self, Object, StorageOptions};
use npyflow_format::{write_npy, RemoteNpy, Tensor};

use crate::common;

#[test]
fn committed_numpy_files_read_by_url_as_numpy_reads_them() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/numpy");
    let manifest = common::load_manifest(&dir);
    assert!(manifest.len() >= 40);
    let failures: Vec<String> = manifest
        .iter()
        .filter_map(|e| common::read_and_compare_with(&dir, e, true).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ranges_listing_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let root = format!("file://{}", dir.path().canonicalize().unwrap().display());
    let so = StorageOptions::new();
    let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    storage::put(&format!("{root}/d/a.bin"), data.clone(), &so).unwrap();
    storage::put(&format!("{root}/d/b.bin"), vec![1u8; 3], &so).unwrap();
    storage::put(&format!("{root}/d/e/c.bin"), vec![2u8; 5], &so).unwrap();
    let o = Object::open(&format!("{root}/d/a.bin"), &so).unwrap();
    assert_eq!(o.size(), 100_000);
    assert!(o.etag().is_some());
    assert_eq!(&o.read_range(99_990..100_000).unwrap()[..], &data[99_990..]);
    let ranges = [5..9, 0..0, 70_000..90_000, 1..2];
    let got = o.read_ranges(&ranges).unwrap();
    for (r, g) in ranges.iter().zip(&got) {
        assert_eq!(&g[..], &data[r.start as usize..r.end as usize]);
    }
    let e = o.read_range(99_999..100_001).unwrap_err().to_string();
    assert!(e.contains("99999..100001"), "{e}");
    let names = |p: &str| -> Vec<String> {
        storage::list(&format!("{root}/{p}"), &so)
            .unwrap()
            .into_iter()
            .map(|o| o.url.trim_start_matches(&root).to_string())
            .collect()
    };
    assert_eq!(names("d/*.bin"), ["/d/a.bin", "/d/b.bin"]);
    assert_eq!(names("d/**/*.bin"), ["/d/a.bin", "/d/b.bin", "/d/e/c.bin"]);
    assert_eq!(names("d/?.bin"), ["/d/a.bin", "/d/b.bin"]);
    assert!(names("d/*.npy").is_empty());
    // put_if_absent refuses an existing object; delete removes it.
    let err = storage::put_if_absent(&format!("{root}/d/b.bin"), vec![0u8], &so).unwrap_err();
    assert!(
        matches!(err, npyflow_format::Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
        "{err}"
    );
    storage::delete(&format!("{root}/d/b.bin"), &so).unwrap();
    let err = Object::open(&format!("{root}/d/b.bin"), &so).unwrap_err();
    assert!(
        matches!(err, npyflow_format::Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err}"
    );
    assert!(err.to_string().contains("/d/b.bin"), "{err}");
}

#[test]
fn an_object_replaced_after_it_was_opened_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    write_npy(
        &path,
        &Tensor::from_vec((0..40i32).collect(), &[10, 4]).unwrap(),
    )
    .unwrap();
    let url = format!("file://{}", path.canonicalize().unwrap().display());
    let f = RemoteNpy::open(&url, &StorageOptions::new(), &Default::default()).unwrap();
    assert_eq!(
        f.read_rows(2..3).unwrap().view::<i32>().unwrap(),
        [8, 9, 10, 11]
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_npy(
        &path,
        &Tensor::from_vec((100..140i32).collect(), &[10, 4]).unwrap(),
    )
    .unwrap();
    let e = f.read_rows(2..3).unwrap_err().to_string();
    assert!(e.contains("changed while it was read"), "{e}");
}

#[test]
fn bad_urls_and_options_are_clear_errors() {
    let so = StorageOptions::new().with("colour", "blue");
    let e = Object::open("file:///tmp/x.npy", &so)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown storage option \"colour\""), "{e}");
    let so = StorageOptions::new().with("max_retries", "many");
    let e = Object::open("s3://bucket/x.npy", &so)
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_retries"), "{e}");
    // A secret in the options never shows in Debug output.
    let so = StorageOptions::new().with("aws_secret_access_key", "s3cr3t-value");
    assert!(!format!("{so:?}").contains("s3cr3t"));
    assert_eq!(
        storage::display_url("https://user:pw@host/x.npy?sig=abc"),
        "https://host/x.npy"
    );
}
