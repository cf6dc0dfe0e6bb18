//! How a CPU-heavy map scales with threads: the same pipeline, `map` with `Parallelism::threads(n)` for n = 1, 2, ...
//! threads (up to the cores), each run three times.
//!
//!     cargo bench -p npyflow --bench scaling
//!
//! The map is a Rust closure that does real arithmetic on every pixel (a gamma curve,
//! `x^2.2`, computed with `powf`), so its cost is compute, not memory traffic. Prints one
//! JSON object per line: `threads`, `rows_per_s` (the median of the runs).

use npyflow::dataset::Parallelism;
use std::time::Instant;

use npyflow::dataset::{cores, Dataset, Rng};
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

fn main() {
    let n = 20_000;
    let mut rng = Rng::keyed(0, &[]);
    let x: Vec<u8> = (0..n * 32 * 32 * 3).map(|_| rng.below(256) as u8).collect();
    let x = Tensor::from_vec(x, &[n, 32, 32, 3]).expect("images");
    let src = Dataset::from_tensor_slices(x).expect("dataset");
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
                let start = Instant::now();
                let rows: usize = ds
                    .iter()
                    .map(|b| b.expect("batch").tensors()[0].shape()[0])
                    .sum();
                rows as f64 / start.elapsed().as_secs_f64()
            })
            .collect();
        rates.sort_by(f64::total_cmp);
        println!("{{\"threads\": {t}, \"rows_per_s\": {:.0}}}", rates[1]);
    }
}
