//! The format benchmark's npyflow side. Run through `bench/format_bench.py`, which makes the
//! files with NumPy, runs NumPy on them in the same run, and prints the ratios.
//!
//!     cargo bench -p npyflow-format --bench format -- DATA_DIR
//!
//! Prints one JSON object per line:
//! - `open`: median time to open and map each `open_*.npy` (header read, data mapped), ms;
//! - `rows`: reading every row of `big.npy` one by one as a tensor (`Tensor::row`) into a
//!   reused 1024-row batch, against copying the same rows straight from the map with
//!   `memcpy` one by one, and in 1024-row chunks, into the same batch, GB/s;
//! - `npz`: opening `deflated.npz` and loading member `x`, ms.

mod common;
use common::{median_ms, open_mapped};

use std::hint::black_box;
use std::path::Path;

use npyflow_format::npy::read_npy;
use npyflow_format::npz::NpzArchive;

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .expect("usage: format DATA_DIR (see bench/format_bench.py)");
    let dir = Path::new(&dir);

    let mut opens: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("open_")
        })
        .collect();
    opens.sort();
    for p in &opens {
        let bytes = std::fs::metadata(p).unwrap().len();
        let ms = median_ms(51, || {
            open_mapped(p);
        });
        println!(
            "{{\"bench\": \"open\", \"file\": {:?}, \"bytes\": {bytes}, \"ms\": {ms:.4}}}",
            p.file_name().unwrap().to_string_lossy()
        );
    }

    let big = read_npy(dir.join("big.npy")).unwrap();
    let rows = big.rows().unwrap();
    let row_bytes = big.nbytes() / rows;
    let batch_rows = 1024;
    let mut batch = vec![0u8; batch_rows * row_bytes];
    let reps = 5;
    let rows_ms = median_ms(reps, || {
        for start in (0..rows).step_by(batch_rows) {
            let n = batch_rows.min(rows - start);
            for i in 0..n {
                let r = big.row(start + i).unwrap();
                batch[i * row_bytes..(i + 1) * row_bytes].copy_from_slice(r.as_bytes());
            }
            black_box(&batch);
        }
    });
    let src = big.as_bytes();
    let row_memcpy_ms = median_ms(reps, || {
        for (k, row) in src.chunks_exact(row_bytes).enumerate() {
            let i = k % batch_rows;
            batch[i * row_bytes..(i + 1) * row_bytes].copy_from_slice(row);
            if i == batch_rows - 1 {
                black_box(&batch);
            }
        }
    });
    let memcpy_ms = median_ms(reps, || {
        for chunk in src.chunks(batch.len()) {
            batch[..chunk.len()].copy_from_slice(chunk);
            black_box(&batch);
        }
    });
    let gb = big.nbytes() as f64 / 1e9;
    println!(
        "{{\"bench\": \"rows\", \"bytes\": {}, \"rows_gb_per_s\": {:.3}, \"row_memcpy_gb_per_s\": {:.3}, \"memcpy_gb_per_s\": {:.3}}}",
        big.nbytes(),
        gb / (rows_ms / 1e3),
        gb / (row_memcpy_ms / 1e3),
        gb / (memcpy_ms / 1e3)
    );

    let npz_path = dir.join("deflated.npz");
    let ms = median_ms(5, || {
        let a = NpzArchive::open(&npz_path).unwrap();
        black_box(a.load("x").unwrap());
    });
    println!("{{\"bench\": \"npz\", \"ms\": {ms:.3}}}");
}
