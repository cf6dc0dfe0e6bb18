//! A file truncated while a pipeline reads it memory-mapped: rows past the new end are
//! errors naming the file, never a SIGBUS that kills the process; rows before it still
//! work. (The tensor-level half, and the SIGBUS that still kills, are npyflow-format's
//! tests/format/mapped_faults.rs.)
#![cfg(target_os = "linux")]

use npyflow::dataset::Parallelism;
use std::path::PathBuf;

use npyflow::format::npy::{is_mapped, read_npy, write_npy};
use npyflow::format::npz::Compression;
use npyflow::format::npz::{NpzArchive, NpzWriter};
use npyflow::ops;
use npyflow::{DType, Dataset, Element, Error, Tensor};

use crate::common::same_order;

// The file of whole-page rows and its truncation, shared with npyflow-format's
// tests/format/mapped_faults.rs (the tensor-level half).
#[path = "../../../npyflow-format/tests/support/truncated_rows.rs"]
mod truncated_rows;
use truncated_rows::{
    assert_names_truncation, assert_row, rows, set_len, truncate, write_rows, KEPT, ROW, ROWS,
};

/// A temporary directory holding a file of [`rows`] named `name`: the directory (kept while
/// the test runs), the file and its dataset.
fn rows_dataset(name: &str) -> (tempfile::TempDir, PathBuf, Dataset) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_rows(dir.path(), name);
    let ds = Dataset::from_npy(&path).unwrap();
    (dir, path, ds)
}

#[test]
fn rows_past_the_new_end_are_errors_and_rows_before_it_are_read() {
    let (_dir, path, ds) = rows_dataset("data.npy");
    let early = ds.get(3).unwrap().into_tensor().unwrap();
    truncate(&path);
    // Past the end: an error naming the file, and the process is still here.
    for i in [KEPT, KEPT + 1, ROWS - 1, 30] {
        let e = ds.get(i as u64).unwrap_err();
        assert_names_truncation(&e, &path);
    }
    // Before it: still the file's data, including the last whole row.
    for i in [0, 3, KEPT - 1] {
        assert_row(&ds.get(i as u64).unwrap().into_tensor().unwrap(), i);
    }
    assert_row(&early, 3);
}

#[test]
fn a_batched_pipeline_reports_the_lost_batches_and_goes_on() {
    let (_dir, path, rows_ds) = rows_dataset("batches.npy");
    let ds = rows_ds.batch(5, ()).unwrap();
    truncate(&path);
    let results: Vec<_> = ds.iter().collect();
    assert_eq!(results.len(), ROWS / 5 + 1);
    for (b, r) in results.iter().enumerate() {
        if (b + 1) * 5 <= KEPT {
            let t = r.as_ref().unwrap().clone().into_tensor().unwrap();
            for k in 0..5 {
                assert_row(&t.row(k).unwrap(), b * 5 + k);
            }
        } else {
            assert_names_truncation(r.as_ref().unwrap_err(), &path);
        }
    }
}

#[test]
fn gathered_batches_never_hold_zeros_from_lost_pages() {
    let (_dir, path, rows_ds) = rows_dataset("shuffled.npy");
    // A global shuffle of a random-access source gathers each batch's rows by copying them.
    let ds = rows_ds
        .global_shuffle(same_order(7))
        .unwrap()
        .batch(8, ())
        .unwrap();
    let before: Vec<Tensor> = ds
        .iter()
        .map(|b| b.unwrap().into_tensor().unwrap())
        .collect();
    truncate(&path);
    let mut errors = 0;
    for (b, r) in ds.iter().enumerate() {
        match r {
            Ok(e) => {
                let t = e.into_tensor().unwrap();
                assert_eq!(t, before[b], "batch {b} read after the truncation");
            }
            Err(e) => {
                assert_names_truncation(&e, &path);
                errors += 1;
            }
        }
    }
    // Every batch of 8 shuffled rows out of 64 has a lost row but one in a million.
    assert!(errors >= 7, "{errors} errors");
}

#[test]
fn ops_on_worker_threads_over_a_truncated_file() {
    let (_dir, path, rows_ds) = rows_dataset("ops.npy");
    let ds = rows_ds
        .map(ops::cast(DType::Float32), Parallelism::threads(2))
        .unwrap()
        .prefetch(4)
        .unwrap();
    truncate(&path);
    let mut oks = 0;
    for (i, r) in ds.iter().enumerate() {
        match r {
            Ok(e) => {
                let t = e.into_tensor().unwrap();
                assert!(t
                    .view::<f32>()
                    .unwrap()
                    .iter()
                    .all(|&x| x == (i + 1) as f32));
                oks += 1;
            }
            Err(e) => {
                assert!(i >= KEPT, "row {i}: {e}");
                assert_names_truncation(&e, &path);
            }
        }
    }
    assert_eq!(oks, KEPT);
}

#[test]
fn bytes_zeroed_on_the_last_page_count_as_lost() {
    // Rows of 8 bytes: a truncation in the middle of a page leaves rows past the new end on
    // the file's last page, which read as zeros without any fault.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.npy");
    let n = 4096;
    write_npy(
        &path,
        &Tensor::from_vec((1..=n as i64).collect::<Vec<_>>(), &[n]).unwrap(),
    )
    .unwrap();
    let ds = Dataset::from_npy(&path).unwrap();
    let t = read_npy(&path).unwrap();
    let offset = npyflow::format::npy::NpyFile::open(&path)
        .unwrap()
        .data_offset();
    set_len(&path, offset + 100 * 8);
    // The row right after the new end: zeros, no fault yet; the file system knows.
    assert_names_truncation(&t.row(100).unwrap().verify_intact().unwrap_err(), &path);
    // Once a lost page was touched, the cheap check knows too, for the other map as well.
    assert!(ds.get(n as u64 - 1).is_err());
    assert_names_truncation(&ds.get(100).unwrap_err(), &path);
    let last = ds.get(99).unwrap().into_tensor().unwrap();
    assert_eq!(last.view::<i64>().unwrap(), &[100]);
}

#[test]
fn npz_members_mapped_from_a_truncated_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.npz");
    let mut w = NpzWriter::create(&path).unwrap();
    w.add("x", &rows(), Compression::Stored).unwrap();
    w.finish().unwrap();
    let ds = Dataset::from_npz(&path, None).unwrap();
    let x = NpzArchive::open(&path).unwrap().load("x").unwrap();
    assert!(is_mapped(&x));
    set_len(&path, 32 * (ROW * 8) as u64);
    let get = |i: u64| -> Result<Tensor, Error> {
        match ds.get(i)? {
            Element::Dict(d) => d["x"].clone().into_tensor(),
            other => panic!("{other:?}"),
        }
    };
    assert_row(&get(2).unwrap(), 2);
    assert_names_truncation(&get(ROWS as u64 - 1).unwrap_err(), &path);
    assert_names_truncation(&x.row(40).unwrap_err(), &path);
}
