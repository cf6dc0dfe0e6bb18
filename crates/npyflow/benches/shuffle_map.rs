//! Whether a shuffle buffer serializes the parallel map after it: `shuffle(N).map(f, n)`
//! (tf.data's standard order) against `map(f, n)` alone, 1 thread and AUTOTUNE, each run
//! five times, alternating.
//!
//!     cargo bench -p npyflow --bench shuffle_map
//!
//! The map is the CPU-heavy closure of `scaling.rs` (a gamma curve with `powf` on every
//! pixel of a 32x32x3 image). Prints one JSON object per line: `pipeline`, `threads`,
//! `rows_per_s` (the median of the runs), and at the end the two ratios the runtime is held
//! to: shuffle+map at AUTOTUNE over map at AUTOTUNE, and over its own 1-thread figure.

use std::time::Instant;

use npyflow::dataset::{Dataset, Parallelism, Rng, ShuffleOptions};
use npyflow::{Element, Tensor};

fn gamma(e: Element) -> npyflow::Result<Element> {
    let t = e.into_tensor()?;
    let src = t.view::<u8>()?;
    let out: Vec<f32> = src
        .iter()
        .map(|&v| (f32::from(v) / 255.0).powf(2.2))
        .collect();
    Ok(Tensor::from_vec(out, t.shape())?.into())
}

fn rate(ds: &Dataset) -> f64 {
    let start = Instant::now();
    let rows: usize = ds
        .iter()
        .map(|b| b.expect("batch").tensors()[0].shape()[0])
        .sum();
    rows as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let n = 20_000;
    let mut rng = Rng::keyed(0, &[]);
    let x: Vec<u8> = (0..n * 32 * 32 * 3).map(|_| rng.below(256) as u8).collect();
    let x = Tensor::from_vec(x, &[n, 32, 32, 3]).expect("images");
    let src = Dataset::from_tensor_slices(x).expect("dataset");
    let shuffled = src
        .shuffle(1000, ShuffleOptions::new().seed(7))
        .expect("shuffle");
    let runs: Vec<(&str, &str, Dataset)> = [("map", &src), ("shuffle+map", &shuffled)]
        .into_iter()
        .flat_map(|(name, input)| {
            [
                ("1", Parallelism::threads(1)),
                ("autotune", Parallelism::autotune()),
            ]
            .map(|(t, p)| {
                let ds = input
                    .map(gamma, p)
                    .and_then(|d| d.batch(256, ()))
                    .expect("pipeline");
                (name, t, ds)
            })
        })
        .collect();
    // SHUFFLE_MAP_ONLY=i runs the i-th pipeline alone (for perf).
    let only: Option<usize> = std::env::var("SHUFFLE_MAP_ONLY")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    for _ in 0..5 {
        for (i, (_, _, ds)) in runs.iter().enumerate() {
            if only.is_none_or(|o| o == i) {
                rates[i].push(rate(ds));
            }
        }
    }
    let mut median = Vec::new();
    for ((name, t, _), r) in runs.iter().zip(&mut rates) {
        if r.is_empty() {
            r.push(f64::NAN);
        }
        r.sort_by(f64::total_cmp);
        let (lo, mid, hi) = (r[0], r[r.len() / 2], r[r.len() - 1]);
        median.push(mid);
        println!(
            "{{\"pipeline\": \"{name}\", \"threads\": \"{t}\", \"rows_per_s\": {mid:.0}, \
             \"min\": {lo:.0}, \"max\": {hi:.0}}}"
        );
    }
    println!(
        "{{\"shuffle_map_vs_map_autotune\": {:.2}, \"shuffle_map_autotune_vs_1\": {:.2}}}",
        median[3] / median[1],
        median[3] / median[2]
    );
}
