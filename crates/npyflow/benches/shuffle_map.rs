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

mod common;

use common::{gamma, images, rate};
use npyflow::dataset::{Dataset, Parallelism, ShuffleOptions};

fn main() {
    let src = images(20_000);
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
