//! Traces of a pass (`Dataset::iter_with_trace`): well formed, nested per thread, every
//! stage present, and a report that names the slow stage. Behaviour only, no timings.

use std::time::{Duration, Instant};

use npyflow::dataset::{
    InterleaveOptions, Parallelism, PipelineStats, ShuffleOptions, TraceEvents,
    DEFAULT_TRACE_EVENTS,
};
use npyflow::{ops, DType, Dataset, Element, Tensor, AUTOTUNE};

use crate::common::map_on;
use crate::trace_check::check_trace;

/// A small W1: uint8 images cast and scaled on two threads, batched and prefetched.
fn small_w1() -> Dataset {
    let n = 300;
    let x = Tensor::from_vec((0..n * 8 * 8 * 3).map(|i| i as u8).collect(), &[n, 8, 8, 3]).unwrap();
    let y = Tensor::from_vec((0..n as i64).collect(), &[n]).unwrap();
    Dataset::from_tensor_slices(Element::tuple([x, y]))
        .unwrap()
        .map(ops::cast(DType::Float32).component(0), map_on(Some(2)))
        .unwrap()
        .map(ops::scale(1.0 / 255.0).component(0), ())
        .unwrap()
        .batch(32, ())
        .unwrap()
        .prefetch(AUTOTUNE)
        .unwrap()
}

/// Spins for about `d`: work that takes CPU time, not sleep.
fn spin(d: Duration) {
    let start = Instant::now();
    let mut x = 1u64;
    while start.elapsed() < d {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

/// Cheap maps around one CPU-heavy map (on two threads), batched: the slow map is at depth
/// 2 (Batch 0, cheap Map 1, slow Map 2, cheap Map 3, Range 4).
pub fn slow_map_pipeline() -> Dataset {
    Dataset::range(0, 120, 1)
        .unwrap()
        .map(Ok, ())
        .unwrap()
        .map(
            |e: Element| {
                spin(Duration::from_micros(400));
                Ok(e)
            },
            map_on(Some(2)),
        )
        .unwrap()
        .map(Ok, ())
        .unwrap()
        .batch(8, ())
        .unwrap()
}

fn traced(ds: &Dataset) -> (PipelineStats, String) {
    let (it, stats) = ds.iter_with_trace(DEFAULT_TRACE_EVENTS);
    for item in it {
        item.unwrap();
    }
    let mut out = Vec::new();
    stats.write_trace(&mut out).unwrap();
    (stats, String::from_utf8(out).unwrap())
}

#[test]
fn w1_trace_is_well_formed_with_every_stage() {
    let (stats, json) = traced(&small_w1());
    let checked = check_trace(&json);
    let stages: Vec<String> = stats.stages().into_iter().map(|s| s.name).collect();
    for s in &stages {
        assert!(checked.stages.contains(s), "{s} in {checked:?}");
    }
    for s in ["Prefetch", "Batch"] {
        assert!(checked.stages.contains(s), "{s} in {checked:?}");
    }
    // The prefetch's worker and the consumer: two named threads at least, and the
    // prefetch's buffer sampled.
    assert!(checked.threads.len() >= 2, "{checked:?}");
    assert!(checked.threads.values().any(|n| n == "npyflow-Prefetch"));
    assert!(checked.counters > 0, "{checked:?}");
    assert_eq!(stats.trace_events().dropped, 0);
}

#[test]
fn the_report_names_the_slow_map() {
    let (stats, json) = traced(&slow_map_pipeline());
    let checked = check_trace(&json);
    for s in ["Batch", "Map", "Range"] {
        assert!(checked.stages.contains(s), "{s} in {checked:?}");
    }
    let report = stats.report();
    let b = report.bottleneck.clone().unwrap();
    assert_eq!((b.name.as_str(), b.depth), ("Map", 2), "{stats}");
    let line = report.to_string();
    assert!(line.starts_with("bottleneck: Map (depth 2)"), "{line}");
    assert!(line.contains("num_parallel_calls"), "{line}");
}

#[test]
fn the_cap_keeps_the_trace_bounded_and_well_formed() {
    let (it, stats) = slow_map_pipeline().iter_with_trace(50);
    assert_eq!(it.count(), 15);
    let events = stats.trace_events();
    assert_eq!((events.kept, events.cap), (50, 50));
    assert!(events.dropped > 0);
    let mut out = Vec::new();
    stats.write_trace(&mut out).unwrap();
    let checked = check_trace(&String::from_utf8(out).unwrap());
    assert!(checked.spans + checked.counters <= 50);
    assert!(stats
        .report()
        .to_string()
        .contains("dropped past the cap of 50"));
}

#[test]
fn stats_without_a_trace_write_an_empty_one() {
    let (it, stats) = slow_map_pipeline().iter_with_stats();
    assert_eq!(it.count(), 15);
    let mut out = Vec::new();
    stats.write_trace(&mut out).unwrap();
    let checked = check_trace(&String::from_utf8(out).unwrap());
    assert_eq!(checked.spans + checked.counters, 0);
    assert_eq!(stats.trace_events(), TraceEvents::default());
}

#[test]
fn nested_datasets_and_sequential_stages_trace_well_formed() {
    // An interleave on two threads opens a dataset per element on its workers; a filter and
    // a shuffle are sequential stages over them; a prefetch's thread reads it all.
    let ds = Dataset::range(0, 40, 1)
        .unwrap()
        .interleave(
            |e: Element| Ok(Dataset::from_tensors(e).repeat(Some(3))),
            InterleaveOptions::new()
                .cycle_length(2)
                .parallel(Parallelism::threads(2)),
        )
        .unwrap()
        .filter(|e| Ok(e.tensors()[0].as_bytes()[0] % 3 != 0))
        .shuffle(5, ShuffleOptions::new().seed(1))
        .unwrap()
        .batch(4, ())
        .unwrap()
        .prefetch(2)
        .unwrap();
    let (stats, json) = traced(&ds);
    let checked = check_trace(&json);
    for s in stats.stages() {
        assert!(
            checked.stages.contains(&s.name),
            "{} in {checked:?}",
            s.name
        );
    }
    // The consumer, the prefetch's thread and the interleave's readers: tracks of their own.
    assert!(checked.threads.len() > 2, "{checked:?}");
    assert!(checked.counters > 0);
}
