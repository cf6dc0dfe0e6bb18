//! Autotuning: the tuner changes threads and buffers while a pass runs, never its output;
//! it keeps to the CPU budget (threads a stage) and the RAM budget (bytes buffered), and its
//! decisions show in the iterator's summary, the statistics and the trace.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use npyflow::dataset::{
    AutotuneOptions, BatchOptions, Dataset, Options, Parallelism, DEFAULT_TRACE_EVENTS,
};
use npyflow::{Element, Tensor};
use proptest::prelude::*;

use crate::common::{same_order, show};

/// Uneven work: a sleep of 0 to 400 us by the element's first byte, so that workers finish
/// out of order and a pass lasts long enough for the tuner to look at it.
fn uneven(e: Element) -> npyflow::Result<Element> {
    let spin = u64::from(e.tensors()[0].as_bytes()[0] % 5) * 100;
    std::thread::sleep(Duration::from_micros(spin));
    Ok(e)
}

/// [`uneven`] under one lock held for the whole call, as a Python function holds the GIL.
fn locked(e: Element) -> npyflow::Result<Element> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _held = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    uneven(e)
}

#[derive(Clone, Debug)]
enum Step {
    Map(bool),
    /// A map of [`locked`] whose AUTOTUNE measures what its threads gain.
    Locked,
    Batch(usize, bool),
    Shuffle(u64),
    Filter,
    Prefetch(bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<bool>().prop_map(Step::Map),
        Just(Step::Locked),
        (1usize..6, any::<bool>()).prop_map(|(b, d)| Step::Batch(b, d)),
        any::<u64>().prop_map(Step::Shuffle),
        Just(Step::Filter),
        any::<bool>().prop_map(Step::Prefetch),
    ]
}

/// The pipeline with its parallel steps at AUTOTUNE (`tuned`) or at a fixed `threads`.
fn build(n: i64, steps: &[Step], tuned: bool, threads: usize) -> Dataset {
    let p = if tuned {
        Parallelism::autotune()
    } else {
        Parallelism::threads(threads)
    };
    let mut ds = Dataset::range(0, n, 1).unwrap();
    let mut batched = false;
    for s in steps {
        ds = match *s {
            Step::Map(true) => ds.map(uneven, p).unwrap(),
            Step::Map(false) => ds.map(Ok, p).unwrap(),
            Step::Locked => ds.map(locked, p.measure_gain()).unwrap(),
            Step::Batch(b, d) if !batched => {
                batched = true;
                ds.batch(
                    b,
                    BatchOptions {
                        drop_remainder: d,
                        parallelism: Some(p),
                    },
                )
                .unwrap()
            }
            Step::Batch(..) => ds,
            Step::Shuffle(seed) if ds.is_random_access() => {
                ds.global_shuffle(same_order(seed)).unwrap()
            }
            Step::Shuffle(seed) => ds.shuffle(7, same_order(seed)).unwrap(),
            Step::Filter => ds.filter(|e| Ok(e.tensors()[0].as_bytes()[0] % 3 != 0)),
            Step::Prefetch(true) => ds.prefetch(-1).unwrap(),
            Step::Prefetch(false) => ds.prefetch(threads as i64).unwrap(),
        };
    }
    ds
}

fn budgets(cpu: usize, ram: u64) -> Options {
    Options::new().autotune(AutotuneOptions::new().cpu_budget(cpu).ram_budget(ram))
}

proptest! {
    #![proptest_config(crate::common::proptest_config(40))]

    /// Whatever the tuner decides (budgets from one thread and a few bytes up), the output
    /// is that of the same pipeline at a fixed parallelism.
    #[test]
    fn tuned_output_equals_fixed_output(
        n in 0i64..120,
        steps in prop::collection::vec(step(), 0..6),
        threads in 1usize..5,
        cpu in 1usize..5,
        ram in prop_oneof![Just(1u64), 1u64..4096, Just(1u64 << 30)],
    ) {
        let fixed: Vec<String> = build(n, &steps, false, threads).iter().map(show).collect();
        let tuned = build(n, &steps, true, threads).with_options(budgets(cpu, ram)).unwrap();
        let mut it = tuned.iter();
        let got: Vec<String> = it.by_ref().map(show).collect();
        prop_assert_eq!(got, fixed, "{:?}", steps);
        let t = it.tuning().unwrap();
        prop_assert!(t.stages.iter().all(|s| s.threads <= cpu), "{}", t);
        prop_assert!(t.decisions.iter().all(|d| d.threads <= cpu && d.buffer >= 1), "{}", t);
    }
}

/// A stage that keeps its consumer waiting starts with the CPU budget's threads, as tf.data
/// starts its autotuned parallelism at the cores, keeps them while it is waited for, and is
/// never given more.
#[test]
fn a_slow_stage_runs_at_the_cpu_budget_from_its_start() {
    let slow = Dataset::range(0, 300, 1)
        .unwrap()
        .filter(|_| Ok(true))
        .map(
            |e| {
                std::thread::sleep(Duration::from_millis(1));
                Ok(e)
            },
            Parallelism::autotune(),
        )
        .unwrap()
        .with_options(budgets(3, 1 << 30))
        .unwrap();
    let mut it = slow.iter();
    let got: Vec<i64> = it.by_ref().map(scalar).collect();
    assert_eq!(got, (0..300).collect::<Vec<_>>());
    let t = it.tuning().unwrap();
    assert_eq!(t.cpu_budget, 3);
    let map = t
        .stages
        .iter()
        .find(|s| s.stage.starts_with("Map"))
        .expect("{t}");
    assert_eq!(map.threads, 3, "the map ran at the budget: {t}");
    assert!(
        t.decisions
            .iter()
            .filter(|d| d.stage.starts_with("Map"))
            .all(|d| d.threads == 3),
        "no thread of a waited-for stage was taken back or added past the budget: {t}"
    );
}

/// A cheap stage read by a slow consumer starts with the budget's threads and gives back the
/// ones that stay idle.
#[test]
fn idle_threads_of_a_cheap_stage_are_taken_back() {
    let cheap = Dataset::range(0, 300, 1)
        .unwrap()
        .map(Ok, Parallelism::autotune())
        .unwrap()
        .with_options(budgets(4, 1 << 30))
        .unwrap();
    let mut it = cheap.iter();
    let mut got = Vec::new();
    for e in it.by_ref() {
        // The consumer is the slow part: the map's workers wait on a full buffer.
        std::thread::sleep(Duration::from_millis(1));
        got.push(scalar(e));
    }
    assert_eq!(got, (0..300).collect::<Vec<_>>());
    let t = it.tuning().unwrap();
    assert!(
        t.decisions
            .iter()
            .any(|d| d.why == "workers idle" && d.threads < 4),
        "an idle thread was taken back: {t}"
    );
    assert!(t.stages.iter().all(|s| s.threads < 4), "{t}");
}

/// A map that measures what its threads gain (what the Python package asks for a function it
/// could not trace): under a lock held for the whole call, all threads are measured no faster
/// and the map runs one call at a time; without the lock they are measured faster and kept.
/// Either way the output is the input, in order.
#[test]
fn a_map_that_measures_its_gain_keeps_threads_only_when_they_help() {
    for held in [true, false] {
        // Calls at once now, and the most seen after the verdict.
        let now = Arc::new(AtomicUsize::new(0));
        let most_after = Arc::new(AtomicUsize::new(0));
        let lock = Arc::new(Mutex::new(()));
        let (n2, m2) = (Arc::clone(&now), Arc::clone(&most_after));
        let f = move |e: Element| {
            // Counted before the lock: calls under way at once, waiting or not.
            let at_once = n2.fetch_add(1, Ordering::SeqCst) + 1;
            let guard = held.then(|| lock.lock().unwrap_or_else(PoisonError::into_inner));
            // Past the verdict: the warm-up (16 calls), half a second of one call at a time
            // (1,000 calls of 0.5 ms at most) and the window of all threads.
            if scalar(Ok(e.clone())) >= 1200 {
                m2.fetch_max(at_once, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_micros(500));
            n2.fetch_sub(1, Ordering::SeqCst);
            drop(guard);
            Ok(e)
        };
        let ds = Dataset::range(0, 1500, 1)
            .unwrap()
            .filter(|_| Ok(true)) // a stream: the map runs its own engine
            .map(f, Parallelism::autotune().measure_gain())
            .unwrap()
            .with_options(budgets(4, 1 << 30))
            .unwrap();
        let mut it = ds.iter();
        let got: Vec<i64> = it.by_ref().map(scalar).collect();
        assert_eq!(got, (0..1500).collect::<Vec<_>>());
        let t = it.tuning().unwrap();
        let verdicts: Vec<_> = t
            .decisions
            .iter()
            .filter(|d| d.why.starts_with("threads measured"))
            .collect();
        assert!(
            !verdicts.is_empty(),
            "the probe's verdict is in the summary: {t}"
        );
        let map = t
            .stages
            .iter()
            .find(|s| s.stage.starts_with("Map"))
            .unwrap();
        if held {
            assert!(
                verdicts
                    .iter()
                    .all(|d| d.why == "threads measured no faster" && d.threads == 1),
                "{t}"
            );
            assert_eq!(map.threads, 1, "one call at a time: {t}");
            assert_eq!(
                most_after.load(Ordering::SeqCst),
                1,
                "after the verdict, one call at a time"
            );
        } else {
            // Four threads of sleeps are about four times one: far past the 15% margin.
            assert!(
                verdicts
                    .iter()
                    .all(|d| d.why == "threads measured faster" && d.threads == 4),
                "{t}"
            );
            assert!(
                most_after.load(Ordering::SeqCst) > 1,
                "calls ran at once: {t}"
            );
        }
    }
}

/// Over a random-access pipeline the jobs are the batches a following `batch` makes (each a
/// run of calls), and the measure applies to them: one batch at a time under the lock.
#[test]
fn a_measured_map_over_a_random_access_pipeline_measures_its_batches() {
    let lock = Arc::new(Mutex::new(()));
    let ds = Dataset::range(0, 4800, 1)
        .unwrap()
        .map(
            move |e: Element| {
                let _held = lock.lock().unwrap_or_else(PoisonError::into_inner);
                std::thread::sleep(Duration::from_micros(200));
                Ok(e)
            },
            Parallelism::autotune().measure_gain(),
        )
        .unwrap()
        .batch(8, ())
        .unwrap()
        .with_options(budgets(3, 1 << 30))
        .unwrap();
    assert!(ds.is_random_access());
    let mut it = ds.iter();
    let rows: usize = it
        .by_ref()
        .map(|b| b.unwrap().tensors()[0].shape()[0])
        .sum();
    assert_eq!(rows, 4800);
    let t = it.tuning().unwrap();
    assert!(
        t.decisions
            .iter()
            .any(|d| d.why == "threads measured no faster" && d.threads == 1),
        "{t}"
    );
}

fn scalar(e: npyflow::Result<npyflow::Element>) -> i64 {
    e.unwrap()
        .into_tensor()
        .unwrap()
        .to_i64_scalar("x")
        .unwrap()
}

/// Tuned buffers keep to the RAM budget: the most bytes held at once is the budget and the
/// results of the jobs running when it was reached (one prefetch worker, one 64 KiB element).
#[test]
fn buffers_keep_to_the_ram_budget() {
    let big = Tensor::from_vec(vec![0u8; 64 << 10], &[64 << 10]).unwrap();
    let ds = Dataset::from_tensors(Element::from(big))
        .repeat(Some(64))
        .filter(|_| Ok(true)) // a stream: the prefetch runs its own engine
        .prefetch(-1)
        .unwrap();
    for ram in [100_000u64, 300_000] {
        let mut it = ds.with_options(budgets(2, ram)).unwrap().iter();
        let mut n = 0;
        for e in it.by_ref() {
            e.unwrap();
            n += 1;
            // A slow consumer: the prefetch runs ahead as far as it may.
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(n, 64);
        let t = it.tuning().unwrap();
        assert!(
            t.peak_buffered_bytes <= ram + (64 << 10),
            "peak {} over {ram}: {t}",
            t.peak_buffered_bytes
        );
        assert!(t.peak_buffered_bytes >= 64 << 10, "{t}");
    }
}

/// Tuning can be turned off; the statistics and the trace show the tuning.
#[test]
fn tuning_shows_in_stats_and_trace_and_can_be_turned_off() {
    let slow = |options: Options| {
        Dataset::range(0, 200, 1)
            .unwrap()
            .map(
                |e| {
                    std::thread::sleep(Duration::from_micros(500));
                    Ok(e)
                },
                Parallelism::autotune(),
            )
            .unwrap()
            .batch(4, ())
            .unwrap()
            .with_options(options)
            .unwrap()
    };
    let off = Options::new().autotune(AutotuneOptions::new().enabled(false).cpu_budget(2));
    let mut it = slow(off).iter();
    assert_eq!(it.by_ref().count(), 50);
    let t = it.tuning().unwrap();
    assert!(
        !t.enabled && t.decisions.is_empty() && t.stages.is_empty(),
        "{t}"
    );

    let (it, stats) = slow(budgets(2, 1 << 30)).iter_with_trace(DEFAULT_TRACE_EVENTS);
    assert_eq!(it.count(), 50);
    let t = stats.tuning().expect("the pass had a tuner");
    assert!(!t.stages.is_empty(), "{t}");
    assert!(stats
        .to_string()
        .contains("autotune: on, cpu budget 2 threads"));
    let mut json = Vec::new();
    stats.write_trace(&mut json).unwrap();
    let json = String::from_utf8(json).unwrap();
    assert!(json.contains("\"threads\":"), "counters of threads");
    assert!(
        json.contains("\"buffer_size\":"),
        "counters of buffer sizes"
    );
}

/// Negative budgets are refused with the option's name; zero is the default.
#[test]
fn budgets_are_checked() {
    let e = AutotuneOptions::from_tf(None, None, Some(-5)).unwrap_err();
    assert!(e.to_string().contains("autotune.ram_budget"), "{e}");
    let d = AutotuneOptions::from_tf(Some(true), Some(0), None).unwrap();
    assert_eq!((d.cpu_budget, d.ram_budget), (None, None));
}

/// tf.data's `map_parallelization`: a map of built-in ops and the batch after it, neither
/// given threads, make their batches on `AUTOTUNE` threads (a tuned stage), in order;
/// turned off anywhere in the pipeline (here after the batch), they run on the consumer's
/// thread (no engine at all). The values are the same either way, and NumPy's
/// (`x.astype(np.float32) * 0.5`).
#[test]
fn maps_of_ops_before_a_batch_run_on_autotune_threads_unless_turned_off() {
    let n = 50usize;
    let bytes: Vec<u8> = (0..n * 6).map(|i| (i * 7 % 256) as u8).collect();
    let make = || {
        Dataset::from_tensor_slices(Tensor::from_vec(bytes.clone(), &[n, 2, 3]).unwrap())
            .unwrap()
            .map(npyflow::ops::cast(npyflow::DType::Float32), ())
            .unwrap()
            .map(npyflow::ops::scale(0.5), ())
            .unwrap()
            .batch(8, ())
            .unwrap()
    };
    let expected: Vec<f32> = bytes.iter().map(|&b| f32::from(b) * 0.5).collect();
    let values = |batches: &[Element]| -> Vec<f32> {
        batches
            .iter()
            .flat_map(|b| bytemuck::cast_slice::<u8, f32>(b.tensors()[0].as_bytes()).to_vec())
            .collect()
    };
    let on = make();
    let mut it = on.iter();
    let got: Vec<Element> = it.by_ref().map(Result::unwrap).collect();
    assert_eq!(values(&got), expected);
    let t = it.tuning().unwrap();
    assert!(
        t.stages.iter().any(|s| s.stage.starts_with("Batch")),
        "the batches were made by an AUTOTUNE engine: {t}"
    );
    let off = make()
        .with_options(Options::new().map_parallelization(false))
        .unwrap();
    let mut it = off.iter();
    let got: Vec<Element> = it.by_ref().map(Result::unwrap).collect();
    assert_eq!(values(&got), expected);
    let t = it.tuning().unwrap();
    assert!(t.stages.is_empty(), "no engine: {t}");
}
