//! The trace of a pass, in the Chrome trace-event format (what Perfetto and
//! `chrome://tracing` open), for [`Dataset::iter_with_trace`](crate::Dataset::iter_with_trace).
//!
//! A trace is a bounded buffer of events filled by the counted stages (`counted.rs`) and the
//! parallel engines (`parallel.rs`) of one pass:
//! - a *span* per call of a stage that handed up an element or batch (or ended the pass), on
//!   the thread that made the call, from its start to its end. A stage calls the stages below
//!   it on the same thread, so the spans of one thread nest;
//! - a *counter* sample each time a parallel engine's buffer changes (a parallel `map`,
//!   `batch`, `interleave` or a `prefetch`): results buffered and workers running, and the
//!   engine's settings (threads and buffer size), which change as `AUTOTUNE` tunes them.
//!
//! The buffer holds at most the cap given when the trace was made (events beyond it are
//! counted as dropped, not kept), and grows to it only as events come. Times are kept in
//! nanoseconds from the trace's start and written in microseconds with three decimals, so a
//! child span written lies inside its parent exactly.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// The cap on the events of a trace made by
/// [`Dataset::iter_with_trace`](crate::Dataset::iter_with_trace) when none is given:
/// 1,048,576 events, 32 MiB at most.
pub const DEFAULT_TRACE_EVENTS: usize = 1 << 20;

static NEXT_THREAD: AtomicU32 = AtomicU32::new(1);

thread_local! {
    /// This thread's number in traces: small, and never reused in the process. (An identity,
    /// not context: the context of opening a pass lives in `dataset/context.rs`.)
    static THREAD: u32 = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

/// This thread's number, as traces name threads.
fn thread_number() -> u32 {
    THREAD.with(|t| *t)
}

/// How many events a trace kept and dropped: see
/// [`PipelineStats::trace_events`](crate::dataset::PipelineStats::trace_events).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceEvents {
    /// Events kept (and written).
    pub kept: usize,
    /// Events that came when `cap` were kept, and were dropped.
    pub dropped: u64,
    /// The most events the trace keeps (0: no trace).
    pub cap: usize,
}

enum Event {
    Span {
        stage: u32,
        tid: u32,
        start: u64,
        end: u64,
    },
    Count {
        series: u32,
        tid: u32,
        at: u64,
        buffered: u32,
        running: u32,
        /// The threads the engine may run and the results it may hold (its settings, which
        /// the tuner changes while an `AUTOTUNE` stage runs).
        threads: u32,
        buffer_size: u32,
    },
}

#[derive(Default)]
struct Buffer {
    events: Vec<Event>,
    /// The name of each thread that recorded an event.
    threads: BTreeMap<u32, String>,
    /// The names of the counter series.
    series: Vec<String>,
}

/// The events of one traced pass.
pub(crate) struct Trace {
    origin: Instant,
    cap: usize,
    dropped: AtomicU64,
    buffer: Mutex<Buffer>,
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Nanoseconds as microseconds with three decimals, exactly.
fn micros(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

/// `s` as a JSON string.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Trace {
    /// An empty trace that keeps at most `cap` events.
    pub(crate) fn new(cap: usize) -> Trace {
        Trace {
            origin: Instant::now(),
            cap,
            dropped: AtomicU64::new(0),
            buffer: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, make: impl FnOnce(u32) -> Event) {
        let tid = thread_number();
        let mut b = self.lock();
        if b.events.len() >= self.cap {
            drop(b);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        b.threads.entry(tid).or_insert_with(|| {
            std::thread::current()
                .name()
                .map_or_else(|| format!("thread-{tid}"), str::to_string)
        });
        if b.events.len() == b.events.capacity() {
            // Grow by doubling, but never past the cap.
            let more = b.events.capacity().max(1024).min(self.cap - b.events.len());
            b.events.reserve_exact(more);
        }
        b.events.push(make(tid));
    }

    /// Records a call of `stage` on this thread from `start` to `end`.
    pub(crate) fn span(&self, stage: usize, start: Instant, end: Instant) {
        let start = nanos(start.saturating_duration_since(self.origin));
        let end = nanos(end.saturating_duration_since(self.origin)).max(start);
        self.push(|tid| Event::Span {
            stage: saturate(stage),
            tid,
            start,
            end,
        });
    }

    /// A new counter series named `name`, for [`count`](Trace::count).
    pub(crate) fn series(&self, name: String) -> u32 {
        let mut b = self.lock();
        b.series.push(name);
        saturate(b.series.len() - 1)
    }

    /// Records, now, the results a parallel engine holds, the workers it has running, and
    /// its settings: the threads it may run and the results it may hold.
    pub(crate) fn count(
        &self,
        series: u32,
        buffered: usize,
        running: usize,
        threads: usize,
        buffer_size: usize,
    ) {
        let at = nanos(self.origin.elapsed());
        self.push(|tid| Event::Count {
            series,
            tid,
            at,
            buffered: saturate(buffered),
            running: saturate(running),
            threads: saturate(threads),
            buffer_size: saturate(buffer_size),
        });
    }

    /// The events kept and those dropped past the cap.
    pub(crate) fn counts(&self) -> TraceEvents {
        TraceEvents {
            kept: self.lock().events.len(),
            dropped: self.dropped.load(Ordering::Relaxed),
            cap: self.cap,
        }
    }

    /// Writes the trace as one JSON object, `{"traceEvents": [...], ...}`; `stage` gives a
    /// stage's name and depth.
    pub(crate) fn write(
        &self,
        stage: &dyn Fn(usize) -> (String, usize),
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let b = self.lock();
        let pid = std::process::id();
        let mut w = io::BufWriter::new(out);
        write!(
            w,
            "{{\"traceEvents\":[\n{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":\"npyflow\"}}}}"
        )?;
        for (tid, name) in &b.threads {
            write!(
                w,
                ",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":{}}}}}",
                quoted(name)
            )?;
        }
        let mut names: BTreeMap<u32, (String, usize)> = BTreeMap::new();
        for e in &b.events {
            match *e {
                Event::Span {
                    stage: s,
                    tid,
                    start,
                    end,
                } => {
                    let (name, depth) = names.entry(s).or_insert_with(|| {
                        let (n, d) = stage(s as usize);
                        (quoted(&n), d)
                    });
                    write!(
                        w,
                        ",\n{{\"name\":{name},\"cat\":\"stage\",\"ph\":\"X\",\"ts\":{},\"dur\":{},\"pid\":{pid},\"tid\":{tid},\"args\":{{\"stage\":{s},\"depth\":{depth}}}}}",
                        micros(start),
                        micros(end - start)
                    )?;
                }
                Event::Count {
                    series,
                    tid,
                    at,
                    buffered,
                    running,
                    threads,
                    buffer_size,
                } => {
                    let name = b
                        .series
                        .get(series as usize)
                        .map_or("queue", String::as_str);
                    write!(
                        w,
                        ",\n{{\"name\":{},\"cat\":\"buffer\",\"ph\":\"C\",\"ts\":{},\"pid\":{pid},\"tid\":{tid},\"args\":{{\"buffered\":{buffered},\"running\":{running},\"threads\":{threads},\"buffer_size\":{buffer_size}}}}}",
                        quoted(name),
                        micros(at)
                    )?;
                }
            }
        }
        writeln!(
            w,
            "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{{\"events\":{},\"dropped\":{},\"cap\":{}}}}}",
            b.events.len(),
            self.dropped.load(Ordering::Relaxed),
            self.cap
        )?;
        w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_bounds_the_events_and_counts_the_rest() {
        let t = Trace::new(3);
        let now = Instant::now();
        for _ in 0..5 {
            t.span(0, now, Instant::now());
        }
        let s = t.series("q".into());
        t.count(s, 1, 2, 2, 4);
        assert_eq!(
            t.counts(),
            TraceEvents {
                kept: 3,
                dropped: 3,
                cap: 3
            }
        );
        assert!(t.lock().events.capacity() <= 3);
        let mut out = Vec::new();
        t.write(&|_| ("St\"age".into(), 0), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("\"ph\":\"X\"").count(), 3);
        assert!(text.contains("\"St\\\"age\""));
        assert!(text.contains("\"dropped\":3"));
    }

    #[test]
    fn micros_are_exact() {
        assert_eq!(micros(1_234_567), "1234.567");
        assert_eq!(micros(5), "0.005");
    }
}
