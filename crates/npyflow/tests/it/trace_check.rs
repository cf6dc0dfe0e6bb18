//! Checks a trace in the Chrome trace-event format, as Perfetto and `chrome://tracing` read
//! it. Shared with the CLI's tests (`#[path]`), so both check one way.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// What a well-formed trace held.
#[derive(Debug, Default)]
pub struct Checked {
    /// The names of the stages that have spans.
    pub stages: BTreeSet<String>,
    /// The (tid, name) of every named thread.
    pub threads: BTreeMap<u64, String>,
    pub spans: usize,
    pub counters: usize,
}

fn micros_as_ns(e: &Value, key: &str) -> u64 {
    let v = e[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number: {e}"));
    assert!(v >= 0.0, "{key} is not negative: {e}");
    (v * 1000.0).round() as u64
}

/// Panics unless `json` is a trace whose every event is well formed, whose complete spans
/// nest per thread (a child inside its parent), and whose threads with spans are named.
pub fn check_trace(json: &str) -> Checked {
    let root: Value = serde_json::from_str(json).expect("the trace is JSON");
    let events = root["traceEvents"].as_array().expect("traceEvents");
    let mut out = Checked::default();
    let mut per_thread: BTreeMap<u64, Vec<(u64, u64, String)>> = BTreeMap::new();
    for e in events {
        let name = e["name"].as_str().unwrap_or_else(|| panic!("name: {e}"));
        let ph = e["ph"].as_str().unwrap_or_else(|| panic!("ph: {e}"));
        assert!(e["pid"].is_u64(), "pid: {e}");
        let tid = e["tid"].as_u64().unwrap_or_else(|| panic!("tid: {e}"));
        match ph {
            "X" => {
                assert!(e["cat"].is_string(), "cat: {e}");
                let ts = micros_as_ns(e, "ts");
                let dur = micros_as_ns(e, "dur");
                out.stages.insert(name.to_string());
                out.spans += 1;
                per_thread
                    .entry(tid)
                    .or_default()
                    .push((ts, ts + dur, name.to_string()));
            }
            "M" => {
                let named = e["args"]["name"].as_str().unwrap_or_else(|| panic!("{e}"));
                if name == "thread_name" {
                    out.threads.insert(tid, named.to_string());
                }
            }
            "C" => {
                micros_as_ns(e, "ts");
                let args = e["args"].as_object().unwrap_or_else(|| panic!("{e}"));
                assert!(
                    !args.is_empty() && args.values().all(Value::is_number),
                    "{e}"
                );
                out.counters += 1;
            }
            other => panic!("unexpected phase {other}: {e}"),
        }
    }
    for (tid, mut spans) in per_thread {
        assert!(out.threads.contains_key(&tid), "thread {tid} is named");
        // Parents first: by start, the longer first.
        spans.sort_by_key(|&(start, end, _)| (start, std::cmp::Reverse(end)));
        let mut open: Vec<(u64, u64, String)> = Vec::new();
        for s in spans {
            while open.last().is_some_and(|top| top.1 <= s.0) {
                open.pop();
            }
            if let Some(top) = open.last() {
                assert!(
                    s.1 <= top.1,
                    "on thread {tid}, {s:?} overlaps {top:?} without lying inside it"
                );
            }
            open.push(s);
        }
    }
    out
}
