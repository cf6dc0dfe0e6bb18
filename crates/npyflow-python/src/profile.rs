//! `npyflow.profile`'s native half: one traced pass, its trace written to a file, and the
//! report (see `Dataset::iter_with_trace` in the core).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use npyflow::dataset::DEFAULT_TRACE_EVENTS;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{core, with_python};
use crate::handle::CoreDataset;

/// How often a profiled pass checks for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Runs a pass of `dataset` (its first `steps` elements, or all) with Python detached except
/// inside user functions, writes its trace to `path` in the Chrome trace-event format, and
/// returns the report as a dict: `text`, `bottleneck` (a stage name or None), `depth`,
/// `own_seconds`, `share`, `advice`, `elements`, `events`, `dropped` and `cap`. The first
/// element that fails raises its error.
#[pyfunction]
#[pyo3(signature = (dataset, path, steps=None, max_events=None))]
pub fn profile<'py>(
    py: Python<'py>,
    dataset: PyRef<'_, CoreDataset>,
    path: PathBuf,
    steps: Option<u64>,
    max_events: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let ds = dataset.inner.clone();
    let cap = max_events.unwrap_or(DEFAULT_TRACE_EVENTS);
    let (counted, stats) = py.detach(move || {
        let (it, stats) = ds.iter_with_trace(cap);
        let mut n = 0u64;
        let mut checked = Instant::now();
        let limit = steps.map_or(usize::MAX, |s| usize::try_from(s).unwrap_or(usize::MAX));
        for item in it.take(limit) {
            if let Err(e) = item {
                return (Err(e), stats);
            }
            // Ctrl-C stops the pass (checked between elements, every 50 ms at most).
            if checked.elapsed() >= SIGNAL_CHECK {
                checked = Instant::now();
                if let Err(e) = with_python(|py| py.check_signals()) {
                    return (Err(e), stats);
                }
            }
            n += 1;
        }
        (Ok(n), stats)
    });
    let elements = core(py, counted)?;
    let written = py.detach(|| {
        let mut file = std::fs::File::create(&path)?;
        stats.write_trace(&mut file)
    });
    written.map_err(|e| PyOSError::new_err(format!("{}: {e}", path.display())))?;
    let report = stats.report();
    let out = PyDict::new(py);
    out.set_item("text", report.to_string())?;
    let b = report.bottleneck.as_ref();
    out.set_item("bottleneck", b.map(|b| b.name.clone()))?;
    out.set_item("depth", b.map(|b| b.depth))?;
    out.set_item("own_seconds", b.map_or(0.0, |b| b.own.as_secs_f64()))?;
    out.set_item("share", report.share)?;
    out.set_item("advice", &report.advice)?;
    out.set_item("elements", elements)?;
    let events = report.trace_events;
    out.set_item("events", events.kept)?;
    out.set_item("dropped", events.dropped)?;
    out.set_item("cap", events.cap)?;
    Ok(out)
}
