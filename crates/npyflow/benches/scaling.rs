//! How a CPU-heavy map scales with threads: the same pipeline, `map` with `Parallelism::threads(n)` for n = 1, 2, ...
//! threads (up to the cores), each run three times.
//!
//!     cargo bench -p npyflow --bench scaling
//!
//! The map is a Rust closure that does real arithmetic on every pixel (a gamma curve,
//! `x^2.2`, computed with `powf`), so its cost is compute, not memory traffic. Prints one
//! JSON object per line: `threads`, `rows_per_s` (the median of the runs).

mod common;

use common::{gamma, images, rate};
use npyflow::dataset::{cores, Parallelism};

fn main() {
    let src = images(20_000);
    let mut threads = vec![1];
    let mut t = 2;
    while t <= cores().max(2) {
        threads.push(t);
        t *= 2;
    }
    for t in threads {
        let mut rates: Vec<f64> = (0..3)
            .map(|_| {
                let ds = src
                    .map(gamma, Parallelism::threads(t))
                    .and_then(|d| d.batch(256, ()))
                    .expect("pipeline");
                rate(&ds)
            })
            .collect();
        rates.sort_by(f64::total_cmp);
        println!("{{\"threads\": {t}, \"rows_per_s\": {:.0}}}", rates[1]);
    }
}
