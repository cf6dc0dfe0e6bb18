//! What the map benchmarks share: the images, the CPU-heavy map, and how a pass is timed.

use std::time::Instant;

use npyflow::dataset::{Dataset, Rng};
use npyflow::{Element, Tensor};

/// `n` random uint8 images of 32x32x3, as a dataset of their rows.
pub fn images(n: usize) -> Dataset {
    let mut rng = Rng::keyed(0, &[]);
    let x: Vec<u8> = (0..n * 32 * 32 * 3).map(|_| rng.below(256) as u8).collect();
    let x = Tensor::from_vec(x, &[n, 32, 32, 3]).expect("images");
    Dataset::from_tensor_slices(x).expect("dataset")
}

/// A gamma curve (`x^2.2`, with `powf`) on every pixel: compute, not memory traffic.
pub fn gamma(e: Element) -> npyflow::Result<Element> {
    let t = e.into_tensor()?;
    let src = t.view::<u8>()?;
    let out: Vec<f32> = src
        .iter()
        .map(|&v| (f32::from(v) / 255.0).powf(2.2))
        .collect();
    Ok(Tensor::from_vec(out, t.shape())?.into())
}

/// Rows a second of one pass over `ds` (a dataset of batches).
pub fn rate(ds: &Dataset) -> f64 {
    let start = Instant::now();
    let rows: usize = ds
        .iter()
        .map(|b| b.expect("batch").tensors()[0].shape()[0])
        .sum();
    rows as f64 / start.elapsed().as_secs_f64()
}
