//! `npyflow bench --trace FILE`: the trace it writes is well formed, nested per thread and
//! holds every stage, and its report names the slow stage. Behaviour only, no timings.

use std::process::Command;

use npyflow::format::npy::write_npy;
use npyflow::Tensor;

use crate::trace_check::check_trace;

/// Runs `npyflow bench --trace <dir>/t.json ARGS` and returns its stdout and the trace.
fn bench_traced(dir: &std::path::Path, args: &[&str]) -> (String, String) {
    let path = dir.join("t.json");
    let out = Command::new(env!("CARGO_BIN_EXE_npyflow"))
        .arg("bench")
        .arg("--trace")
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(&path).unwrap(),
    )
}

#[test]
fn w1_trace_holds_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    let (text, trace) = bench_traced(dir.path(), &["--n", "600", "--threads", "2", "--stats"]);
    let checked = check_trace(&trace);
    // W1's maps are fused into the batch: the stages that run are these.
    for stage in ["Prefetch", "Batch", "TensorSlice"] {
        assert!(checked.stages.contains(stage), "{stage}: {checked:?}");
        assert!(text.contains(stage), "{text}");
    }
    assert!(checked.threads.values().any(|n| n == "npyflow-Prefetch"));
    assert!(checked.counters > 0);
    assert!(text.contains("trace written to"), "{text}");
    assert!(text.contains("\nbottleneck: "), "{text}");
    // --json carries the report too.
    let (json, trace) = bench_traced(dir.path(), &["--n", "300", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        v["report"].as_str().unwrap().starts_with("bottleneck: "),
        "{v}"
    );
    let checked = check_trace(&trace);
    assert_eq!(
        v["trace_events"].as_u64(),
        Some((checked.spans + checked.counters) as u64)
    );
    assert_eq!(v["trace_dropped"], 0);
    // A trace that cannot be written: the command fails and names the file.
    let out = Command::new(env!("CARGO_BIN_EXE_npyflow"))
        .args(["bench", "--n", "10", "--trace", "/nonexistent/dir/t.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir/t.json"));
}

#[test]
fn the_report_names_the_slow_map() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images.npy");
    let n = 200 * 32 * 32 * 3;
    let pixels = Tensor::from_vec((0..n).map(|i| i as u8).collect(), &[200, 32, 32, 3]);
    write_npy(&images, &pixels.unwrap()).unwrap();
    // A transpose and a cast of every image (CPU-heavy, element by element) between a
    // cheap read and a cheap batch.
    let (text, trace) = bench_traced(
        dir.path(),
        &[
            "--pipeline",
            "map(transpose([2,0,1])).map(cast(float32)).batch(32)",
            images.to_str().unwrap(),
        ],
    );
    let checked = check_trace(&trace);
    for stage in ["Batch", "Map", "NpyRows"] {
        assert!(checked.stages.contains(stage), "{stage}: {checked:?}");
    }
    let report = text
        .lines()
        .find(|l| l.starts_with("bottleneck: "))
        .unwrap();
    assert!(report.starts_with("bottleneck: Map (depth 1)"), "{text}");
    assert!(report.contains("num_parallel_calls"), "{report}");
}
