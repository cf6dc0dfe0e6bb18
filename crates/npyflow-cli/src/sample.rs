//! A small built-in sample of NumPy files, for `npyflow inspect --sample`.

use std::path::PathBuf;

use npyflow::format::npy::{write_npy, write_npy_with, WriteOptions};
use npyflow::format::npz::Compression;
use npyflow::format::npz::NpzWriter;
use npyflow::{ByteOrder, Tensor};

/// A deterministic pseudo-random byte stream (xorshift), so the sample is the same each run.
fn bytes(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 32) as u8
        })
        .collect()
}

/// Writes images, labels, a big-endian Fortran-order matrix and two .npz archives (stored
/// and deflated) to a new temporary directory; returns it and the files.
pub fn write_sample() -> npyflow::Result<(tempfile::TempDir, Vec<PathBuf>)> {
    let dir = tempfile::Builder::new()
        .prefix("npyflow-sample-")
        .tempdir()
        .map_err(|e| {
            npyflow::Error::InvalidArgument(format!("cannot make a temporary directory: {e}"))
        })?;
    let n = 1000;
    let images = Tensor::from_vec(bytes(n * 32 * 32 * 3, 1), &[n, 32, 32, 3])?;
    let labels = Tensor::from_vec(
        bytes(n, 2).iter().map(|&b| i64::from(b % 10)).collect(),
        &[n],
    )?;
    let matrix = Tensor::from_vec((0..12).map(|i| f64::from(i) * 0.5).collect(), &[3, 4])?;
    let files = [
        dir.path().join("images.npy"),
        dir.path().join("labels.npy"),
        dir.path().join("matrix_fortran_big_endian.npy"),
        dir.path().join("dataset.npz"),
        dir.path().join("dataset_compressed.npz"),
    ];
    write_npy(&files[0], &images)?;
    write_npy(&files[1], &labels)?;
    let f_be = WriteOptions {
        byte_order: ByteOrder::Big,
        fortran_order: true,
        version: None,
    };
    write_npy_with(&files[2], &matrix, &f_be)?;
    for (path, compression) in [
        (&files[3], Compression::Stored),
        (&files[4], Compression::Deflated),
    ] {
        let mut w = NpzWriter::create(path)?;
        w.add("images", &images, compression)?;
        w.add("labels", &labels, compression)?;
        w.finish()?;
    }
    Ok((dir, files.to_vec()))
}
