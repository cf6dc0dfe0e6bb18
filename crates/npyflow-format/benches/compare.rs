//! npyflow-format against the peers on the same files, in the same process run:
//! `npyz` 0.9 and `ndarray-npy` 0.10 for `.npy` and `.npz`, and the `zip` crate (6) against
//! npyflow-format's own zip reader.
//!
//!     cargo bench -p npyflow-format --bench compare [-- DATA_DIR]
//!
//! Makes its files (once) in DATA_DIR (default: a temporary directory): a 256 MiB float32
//! `.npy` of 262,144 rows of 256, a 64 MiB float32 array in a stored and in a deflated
//! `.npz`, and an `.npz` of 2,000 small members. Every file is read while in the page cache
//! (the numbers are for warm files). Prints one line per measurement, the median of a few
//! runs, in milliseconds.

use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, Read};
use std::path::Path;

mod common;
use common::{median_ms, open_mapped};

use ndarray::{Array2, ArrayView2};
use ndarray_npy::{NpzReader, ReadNpyExt, ViewNpyExt};
use npyflow_format::header::parse_header;
use npyflow_format::npy::is_mapped;
use npyflow_format::{
    read_npy, write_npy, Compression, NpzArchive, NpzWriter, ReadOptions, Tensor,
};

const ROWS: usize = 262_144;
const COLS: usize = 256;
const NPZ_ROWS: usize = 65_536;
const MEMBERS: usize = 2_000;

/// Prints the median time of `reps` calls of `f`: `who` doing `what`.
fn measure(what: &str, who: &str, reps: usize, f: impl FnMut()) {
    let ms = median_ms(reps, f);
    println!("{what:<44} {who:<40} {ms:>10.3} ms");
}

fn rows_tensor(rows: usize) -> Tensor {
    let data: Vec<f32> = (0..rows * COLS).map(|k| (k % 1000) as f32).collect();
    Tensor::from_vec(data, &[rows, COLS]).unwrap()
}

fn make_files(dir: &Path) {
    let big = dir.join("big.npy");
    if !big.exists() {
        write_npy(&big, &rows_tensor(ROWS)).unwrap();
    }
    for (name, compression) in [
        ("stored.npz", Compression::Stored),
        ("deflated.npz", Compression::Deflated),
    ] {
        let path = dir.join(name);
        if !path.exists() {
            let mut w = NpzWriter::create(&path).unwrap();
            w.add("x", &rows_tensor(NPZ_ROWS), compression).unwrap();
            w.finish().unwrap();
        }
    }
    let many = dir.join("many.npz");
    if !many.exists() {
        let mut w = NpzWriter::create(&many).unwrap();
        for i in 0..MEMBERS {
            let t = Tensor::from_vec(vec![i as f32; 64], &[64]).unwrap();
            w.add(&format!("m{i}"), &t, Compression::Stored).unwrap();
        }
        w.finish().unwrap();
    }
    // Into the page cache.
    for name in ["big.npy", "stored.npz", "deflated.npz", "many.npz"] {
        black_box(std::fs::read(dir.join(name)).unwrap().len());
    }
}

/// Sums the first element of every row, so that no reader's rows go unread.
fn check(sum: f64) {
    let expected: f64 = (0..ROWS).map(|r| ((r * COLS) % 1000) as f64).sum();
    assert_eq!(sum, expected);
}

fn npy(dir: &Path) {
    let path = dir.join("big.npy");
    let reps = 5;

    // Open: what a reader has in hand before any data is read.
    measure(
        "npy 256 MiB: open",
        "npyflow-format read_npy (mapped)",
        reps,
        || {
            open_mapped(&path);
        },
    );
    measure(
        "npy 256 MiB: open",
        "npyz NpyFile::new (header only)",
        reps,
        || {
            let f = npyz::NpyFile::new(BufReader::new(File::open(&path).unwrap())).unwrap();
            black_box(f.shape().len());
        },
    );
    measure(
        "npy 256 MiB: open",
        "ndarray-npy read_npy (reads it all)",
        reps,
        || {
            let a = Array2::<f32>::read_npy(File::open(&path).unwrap()).unwrap();
            black_box(a.len());
        },
    );
    measure(
        "npy 256 MiB: open",
        "ndarray-npy view_npy (over a memmap2 map)",
        reps,
        || {
            let file = File::open(&path).unwrap();
            // SAFETY: the benchmark's own file, not changed while mapped.
            let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
            let v = ArrayView2::<f32>::view_npy(&map).unwrap();
            black_box(v.len());
        },
    );

    // Open, then every row one by one into a reused row buffer.
    let mut row = vec![0f32; COLS];
    measure(
        "npy 256 MiB: open + read every row",
        "npyflow-format Tensor::row",
        reps,
        || {
            let t = read_npy(&path).unwrap();
            let mut sum = 0f64;
            for i in 0..ROWS {
                row.copy_from_slice(t.row(i).unwrap().view::<f32>().unwrap());
                sum += row[0] as f64;
            }
            check(sum);
        },
    );
    measure(
        "npy 256 MiB: open + read every row",
        "npyz NpyReader (element iterator)",
        reps,
        || {
            let f = npyz::NpyFile::new(BufReader::new(File::open(&path).unwrap())).unwrap();
            let mut it = f.data::<f32>().unwrap();
            let mut sum = 0f64;
            for _ in 0..ROWS {
                for x in row.iter_mut() {
                    *x = it.next().unwrap().unwrap();
                }
                sum += row[0] as f64;
            }
            check(sum);
        },
    );
    measure(
        "npy 256 MiB: open + read every row",
        "ndarray-npy read_npy, then rows",
        reps,
        || {
            let a = Array2::<f32>::read_npy(File::open(&path).unwrap()).unwrap();
            let mut sum = 0f64;
            for r in a.rows() {
                row.copy_from_slice(r.as_slice().unwrap());
                sum += row[0] as f64;
            }
            check(sum);
        },
    );
    measure(
        "npy 256 MiB: open + read every row",
        "ndarray-npy view_npy (memmap2), then rows",
        reps,
        || {
            let file = File::open(&path).unwrap();
            // SAFETY: as above.
            let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
            let a = ArrayView2::<f32>::view_npy(&map).unwrap();
            let mut sum = 0f64;
            for r in a.rows() {
                row.copy_from_slice(r.as_slice().unwrap());
                sum += row[0] as f64;
            }
            check(sum);
        },
    );
}

fn npz(dir: &Path) {
    let reps = 5;
    for name in ["stored.npz", "deflated.npz"] {
        let path = dir.join(name);
        let what = format!("npz 64 MiB {}: open + load x", &name[..name.len() - 4]);
        measure(&what, "npyflow-format NpzArchive::load", reps, || {
            let t = NpzArchive::open(&path).unwrap().load("x").unwrap();
            black_box(t.view::<f32>().unwrap()[1]);
        });
        measure(&what, "npyz NpyFile over zip 6", reps, || {
            let mut z = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
            let member = z.by_name("x.npy").unwrap();
            let v = npyz::NpyFile::new(member)
                .unwrap()
                .into_vec::<f32>()
                .unwrap();
            black_box(v[1]);
        });
        measure(&what, "ndarray-npy NpzReader::by_name", reps, || {
            let mut r = NpzReader::new(File::open(&path).unwrap()).unwrap();
            let a: Array2<f32> = r.by_name("x").unwrap();
            black_box(a[[0, 1]]);
        });
    }
}

/// The hand-written zip reader against the zip crate: opening an archive of many members
/// (its directory, and each member's `.npy` header, which `NpzArchive::open` reads), and
/// mapping a stored member without a copy.
fn zip_layer(dir: &Path) {
    let many = dir.join("many.npz");
    let reps = 11;
    measure(
        "npz of 2,000 members: open, every header",
        "npyflow-format NpzArchive::open",
        reps,
        || {
            let a = NpzArchive::open(&many).unwrap();
            assert_eq!(a.members().count(), MEMBERS);
        },
    );
    measure(
        "npz of 2,000 members: open, every header",
        "zip 6 ZipArchive::new + by_index + parse",
        reps,
        || {
            let mut z = zip::ZipArchive::new(File::open(&many).unwrap()).unwrap();
            let mut head = [0u8; 128];
            for i in 0..z.len() {
                let mut m = z.by_index(i).unwrap();
                m.read_exact(&mut head).unwrap();
                black_box(parse_header(&head, 10_000).unwrap());
            }
        },
    );
    measure(
        "npz of 2,000 members: open (directory only)",
        "zip 6 ZipArchive::new",
        reps,
        || {
            let z = zip::ZipArchive::new(File::open(&many).unwrap()).unwrap();
            assert_eq!(z.len(), MEMBERS);
        },
    );

    let stored = dir.join("stored.npz");
    measure(
        "npz 64 MiB stored: open + map x (no copy)",
        "npyflow-format NpzArchive::load",
        reps,
        || {
            let t = NpzArchive::open(&stored).unwrap().load("x").unwrap();
            assert!(is_mapped(&t));
            black_box(t.view::<f32>().unwrap()[1]);
        },
    );
    let unchecked = ReadOptions {
        verify_crc: false,
        ..ReadOptions::default()
    };
    measure(
        "npz 64 MiB stored: open + map x (no copy)",
        "npyflow-format, verify_crc: false",
        reps,
        || {
            let t = NpzArchive::open_with(&stored, &unchecked)
                .unwrap()
                .load("x")
                .unwrap();
            assert!(is_mapped(&t));
            black_box(t.view::<f32>().unwrap()[1]);
        },
    );
    measure(
        "npz 64 MiB stored: open + map x (no copy)",
        "zip 6 data_start + memmap2 + parse",
        reps,
        || {
            let file = File::open(&stored).unwrap();
            let start = {
                let mut z = zip::ZipArchive::new(&file).unwrap();
                let m = z.by_name("x.npy").unwrap();
                assert_eq!(m.compression(), zip::CompressionMethod::Stored);
                m.data_start()
            };
            // SAFETY: as above.
            let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
            let member = &map[start as usize..];
            let (h, offset) = parse_header(member, 10_000).unwrap();
            let data: &[f32] = bytemuck::cast_slice(&member[offset..offset + h.nbytes()]);
            black_box(data[1]);
        },
    );
}

fn main() {
    let arg = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let tmp;
    let dir = match &arg {
        Some(d) => {
            std::fs::create_dir_all(d).unwrap();
            Path::new(d)
        }
        None => {
            tmp = tempfile::tempdir().unwrap();
            tmp.path()
        }
    };
    make_files(dir);
    npy(dir);
    npz(dir);
    zip_layer(dir);
}
