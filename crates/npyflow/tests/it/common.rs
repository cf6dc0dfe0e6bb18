//! Helpers shared by the subjects' modules.

use npyflow::dataset::{BatchOptions, MapOptions, Parallelism, ShuffleOptions};
use npyflow::{DType, Dataset, Element, Tensor};
use proptest::test_runner::{Config, FileFailurePersistence};

/// A proptest configuration of `cases` cases whose failures are recorded next to the test's
/// source file, in `<module file stem>.proptest-regressions` (proptest's default would put
/// them in tests/proptest-regressions/, because tests/it has a main.rs).
pub fn proptest_config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

/// An element as its text, or an error as `error: ...`.
pub fn show(item: npyflow::Result<Element>) -> String {
    match item {
        Ok(e) => e.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

/// A scalar integer element's value (any integer dtype).
pub fn scalar_i64(e: Element) -> npyflow::Result<i64> {
    e.into_tensor()?.cast(DType::Int64)?.to_i64_scalar("x")
}

/// [`scalar_i64`] of an element that must be one.
pub fn val(e: &Element) -> i64 {
    scalar_i64(e.clone()).unwrap()
}

/// The values of one pass over a dataset of int64 scalars.
pub fn ints(ds: &Dataset) -> Vec<i64> {
    ds.iter()
        .map(|e| {
            e.unwrap()
                .into_tensor()
                .unwrap()
                .to_i64_scalar("x")
                .unwrap()
        })
        .collect()
}

/// Adds `k` to every tensor of an integer element, keeping each tensor's dtype.
pub fn add(e: Element, k: i64) -> npyflow::Result<Element> {
    e.map_tensors(&mut |t| {
        let dtype = t.dtype();
        let wide = t.cast(DType::Int64)?;
        let v: Vec<i64> = wide.view::<i64>()?.to_vec();
        Tensor::from_vec(v.into_iter().map(|x| x + k).collect(), t.shape())?.cast(dtype)
    })
}

/// A shuffle seeded with `seed` whose every pass has the same order.
pub fn same_order(seed: u64) -> ShuffleOptions {
    ShuffleOptions::new()
        .seed(seed)
        .reshuffle_each_iteration(false)
}

/// Map options: the function on `threads` worker threads, or (`None`) on the thread that
/// reads the dataset.
pub fn map_on(threads: Option<i64>) -> MapOptions {
    MapOptions {
        parallelism: threads.map(|t| Parallelism::threads(t as usize)),
        ..MapOptions::new()
    }
}

/// Batch options: batches assembled on `threads` worker threads, or (`None`) on the thread
/// that reads the dataset.
pub fn batch_on(drop_remainder: bool, threads: Option<i64>) -> BatchOptions {
    BatchOptions {
        drop_remainder,
        parallelism: threads.map(|t| Parallelism::threads(t as usize)),
    }
}

/// A pass of `ds` saved after `at` elements: the elements before, the state, and the
/// elements the saved iterator goes on to give.
pub fn save_after(ds: &Dataset, at: usize) -> (Vec<String>, Vec<u8>, Vec<String>) {
    let mut it = ds.iter();
    let head: Vec<String> = it.by_ref().take(at).map(show).collect();
    let state = it.get_state().unwrap();
    (head, state, it.map(show).collect())
}

/// What a new pipeline of `build`, restored from `state`, gives.
pub fn restored(build: &dyn Fn() -> Dataset, state: &[u8]) -> Vec<String> {
    let mut r = build().iter();
    r.set_state(state).unwrap();
    r.map(show).collect()
}
