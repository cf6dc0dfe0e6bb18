//! Dropping an iterator stops its threads, and many iterators leave none behind. In the
//! `process` binary, one test at a time, so no other test's threads are counted (see
//! main.rs).

use npyflow::dataset::Parallelism;
use std::time::{Duration, Instant};

use npyflow::dataset::Dataset;

/// Threads of this process whose name starts with `npyflow-`.
fn npyflow_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|t| t.ok())
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.starts_with("npyflow-"))
                })
                .count()
        })
        .unwrap_or(0)
}

fn settle(want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    while npyflow_threads() > want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    npyflow_threads()
}

#[test]
fn dropped_iterators_leave_no_threads() {
    let _alone = crate::whole_process();
    let slow = Dataset::counter(0, 1)
        .map(
            |e| {
                std::thread::sleep(Duration::from_millis(2));
                Ok(e)
            },
            Parallelism::threads(4),
        )
        .unwrap()
        .prefetch(4)
        .unwrap();
    let batches = Dataset::range(0, 10_000, 1)
        .unwrap()
        .batch(16, Parallelism::threads(3))
        .unwrap()
        .prefetch(-1)
        .unwrap();
    for _ in 0..20 {
        let mut it = slow.iter();
        it.next().unwrap().unwrap();
        let t = Instant::now();
        drop(it);
        // The map workers are joined on drop: each finishes the 2 ms element it holds.
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "{:?}",
            t.elapsed()
        );
        let mut it = batches.iter();
        it.next().unwrap().unwrap();
    }
    // The prefetch threads stop at their next send, once their consumer is gone.
    assert_eq!(settle(0), 0, "threads left running");
}
