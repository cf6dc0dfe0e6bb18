//! What the two benchmarks share (a folder, not `benches/common.rs`, which cargo would take
//! for a benchmark of its own).

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use npyflow_format::npy::{is_mapped, read_npy};

/// The median of `reps` timed calls of `f`, in milliseconds.
pub fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[reps / 2]
}

/// Opens a `.npy` as npyflow-format does, by mapping it (asserted), and reads nothing.
pub fn open_mapped(path: &Path) {
    let t = read_npy(path).unwrap();
    assert!(is_mapped(&t));
    black_box(t);
}
