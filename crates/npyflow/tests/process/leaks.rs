//! Iterators leave nothing behind: 10,000 passes opened, read a little and dropped leak no
//! thread, file descriptor or memory, and dropping a busy pass stops its threads promptly.
//!
//! In the `process` binary, not the main one: the counts are of the whole process, which
//! other tests running beside it would disturb (see main.rs).

#![cfg(target_os = "linux")]

use npyflow::dataset::{InterleaveOptions, Parallelism, ShuffleOptions};
use std::time::{Duration, Instant};

use npyflow::format::npy::write_npy;
use npyflow::{Dataset, Element, Tensor};

fn count_dir(path: &str) -> usize {
    std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

/// Threads of this process, less libtest's threads for the other tests of this binary:
/// they wait for [`crate::whole_process`] or leave once their test is done, whenever libtest
/// runs them, so they are not ours to count. libtest names each after its test, and Linux
/// keeps the first 15 bytes of the name.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|t| t.ok())
                .filter(|t| {
                    let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                    !comm.starts_with("threads::")
                })
                .count()
        })
        .unwrap_or(0)
}

/// Open file descriptors of this process.
fn fds() -> usize {
    count_dir("/proc/self/fd")
}

/// Resident memory in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Waits (briefly) for the thread count to come back to `baseline`: a joined thread may
/// take a moment to leave /proc.
fn settle(baseline: usize) -> usize {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        let now = threads();
        if now <= baseline || Instant::now() > until {
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn slow_add(e: Element) -> npyflow::Result<Element> {
    std::thread::sleep(Duration::from_millis(2));
    Ok(e)
}

#[test]
fn passes_leak_nothing_and_stop_promptly() {
    let _alone = crate::whole_process();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.npy");
    let x = Tensor::from_vec((0..4096 * 16).map(|v| v as f32).collect(), &[4096, 16]).unwrap();
    write_npy(&path, &x).unwrap();

    // Every kind of thread npyflow starts: parallel map over a sequential input, parallel
    // batch, parallel interleave (a prefetch thread per open dataset), a global shuffle read
    // by workers, and prefetch. The .npy is opened (and mapped) for each pass.
    let p = path.clone();
    let build = move || -> Dataset {
        let rows = Dataset::from_npy(&p).unwrap();
        let shuffled = rows
            .global_shuffle(ShuffleOptions::new().seed(1))
            .unwrap()
            .map(Ok, Parallelism::threads(2))
            .unwrap();
        let streamed = rows
            .filter(|_| Ok(true))
            .map(Ok, Parallelism::threads(2).deterministic(false))
            .unwrap()
            .batch(4, Parallelism::threads(2))
            .unwrap()
            .unbatch()
            .unwrap();
        let files =
            Dataset::from_tensor_slices(Tensor::from_vec(vec![0i64, 1, 2], &[3]).unwrap()).unwrap();
        let p2 = p.clone();
        let interleaved = files
            .interleave(
                move |_| Dataset::from_npy(&p2),
                InterleaveOptions::new()
                    .cycle_length(2)
                    .parallel(Parallelism::threads(2)),
            )
            .unwrap();
        Dataset::sample_from_datasets(vec![shuffled, streamed, interleaved], None, Some(3), false)
            .unwrap()
            .prefetch(2)
            .unwrap()
    };

    // Warm up once (lazy statics, the allocator's arenas), then count.
    for _ in 0..20 {
        let _ = build().iter().take(3).count();
    }
    let (threads0, fds0) = (settle(threads()), fds());
    let rss0 = rss();

    for i in 0..10_000 {
        let ds = build();
        let mut it = ds.iter();
        for _ in 0..(i % 5) {
            it.next().unwrap().unwrap();
        }
        if i % 1000 == 0 {
            // Some passes are saved mid-way too: a save pauses and resumes the workers.
            let _ = it.get_state().unwrap();
            it.next().unwrap().unwrap();
        }
    }

    let threads1 = settle(threads0);
    let fds1 = fds();
    let grown = rss().saturating_sub(rss0);
    eprintln!(
        "after 10,000 passes: {threads1} threads (before: {threads0}), {fds1} descriptors \
         (before: {fds0}), resident memory {:+.1} MiB",
        (rss() as f64 - rss0 as f64) / f64::from(1 << 20)
    );
    assert_eq!(threads1, threads0, "threads left running");
    assert_eq!(fds1, fds0, "file descriptors left open");
    // 10,000 passes each mapping the file and filling buffers: what stays must be the
    // allocator's slack, not 10,000 passes' worth.
    assert!(
        grown < 64 << 20,
        "resident memory grew by {} MiB",
        grown >> 20
    );

    // A busy pass, its workers in the middle of slow calls, stops when dropped: each worker
    // finishes the call it is in (2 ms) and exits, and the drop waits for them.
    let busy = Dataset::range(0, 1_000_000, 1)
        .unwrap()
        .filter(|_| Ok(true))
        .map(slow_add, Parallelism::threads(8))
        .unwrap()
        .prefetch(4)
        .unwrap();
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let mut it = busy.iter();
        for _ in 0..50 {
            it.next().unwrap().unwrap();
        }
        let started = Instant::now();
        drop(it);
        worst = worst.max(started.elapsed());
        assert_eq!(settle(threads0), threads0, "threads left after a drop");
    }
    // Measured in tens of milliseconds at most, even on a loaded 2-core machine; the bound
    // here is loose so that it fails only on a real hang, not on a slow machine.
    eprintln!("slowest drop of a busy pass: {worst:?}");
    assert!(worst < Duration::from_secs(2), "a drop took {worst:?}");
}
