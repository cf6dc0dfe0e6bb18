//! Any bytes as a `npyflow bench --pipeline` spec: parsing never panics, and a spec that
//! parses is built over tiny in-memory datasets (rows of a uint8 array, as `bench` reads
//! rows of `.npy` files, and (image, label) tuples) and a few elements are pulled, with no
//! panic anywhere: in the parser, in building the pipeline, or in its threads (libfuzzer-sys
//! aborts on any panic, even one the pipeline turns into an error).
//!
//! Specs whose work has no small bound are skipped, not run: a `cache` to a file (it
//! writes files), more than 4 threads, or integers whose product passes 100,000
//! (`repeat().batch(1000).batch(1000)` asks for a million rows per element).
#![no_main]

use libfuzzer_sys::fuzz_target;
use npyflow::{Dataset, Element, Tensor};
use npyflow_cli::spec::{self, Call, Value};

/// The product of the integers (|n| >= 2) in `v`, saturating.
fn work(v: &Value) -> f64 {
    match v {
        Value::Num(n) if n.fract() == 0.0 && n.abs() >= 2.0 => n.abs(),
        Value::List(items) => items.iter().map(work).product(),
        Value::Call(c) => call_work(c),
        _ => 1.0,
    }
}

fn call_work(c: &Call) -> f64 {
    c.args
        .iter()
        .chain(c.kwargs.iter().map(|(_, v)| v))
        .map(work)
        .product()
}

fn runnable(calls: &[Call]) -> bool {
    let threads_ok = calls.iter().all(|c| {
        c.kwargs.iter().all(|(k, v)| {
            k != "num_parallel_calls" || matches!(v, Value::Num(n) if (1.0..=4.0).contains(n))
        })
    });
    let no_file_cache = calls
        .iter()
        .all(|c| c.name != "cache" || (c.args.is_empty() && c.kwargs.is_empty()));
    let work: f64 = calls.iter().map(call_work).product();
    threads_ok && no_file_cache && work <= 100_000.0
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(calls) = spec::parse(text) else {
        return;
    };
    if !runnable(&calls) {
        return;
    }
    let images = Tensor::from_vec((0..24u8).collect(), &[6, 2, 2]).unwrap();
    let labels = Tensor::from_vec((0..6i64).collect(), &[6]).unwrap();
    let sources = [
        Dataset::from_tensor_slices(images.clone()).unwrap(),
        Dataset::from_tensor_slices(Element::tuple([images, labels])).unwrap(),
    ];
    for src in sources {
        let Ok(ds) = spec::apply(src, &calls) else {
            continue;
        };
        let _ = (ds.cardinality(), ds.element_spec().to_string());
        for element in ds.iter().take(8) {
            if let Ok(e) = element {
                let _ = e.to_string();
            }
        }
    }
});
