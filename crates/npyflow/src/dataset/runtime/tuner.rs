//! Run-time autotuning: the threads and buffer sizes of every `AUTOTUNE` parallel engine of
//! a pass, adjusted while it runs from what the engines measure, within a CPU budget and a
//! RAM budget.
//!
//! Every parallel engine has a [`Knob`]: the number of its jobs that may run at once (its
//! threads) and the number of results it may hold (its buffer), read by its workers each
//! time they look for a job, and the times it measured (its consumer waiting for a result,
//! its workers in the source and in the work). An engine whose stage is `AUTOTUNE` and that
//! is opened under a [`Tuner`] (every [`DatasetIter`](crate::DatasetIter) has one) gives its
//! knob to the tuner, starting with the CPU budget's threads (tf.data too starts its
//! autotuned parallelism at the cores), and the tuner's thread looks at every knob each
//! [`TICK`]:
//!
//! - more threads for an engine whose consumer waited (it is slower than the stage reading
//!   it) while its workers were busy in the work, not waiting on their source, when the CPU
//!   the pass measurably uses plus what one more worker of that engine would use fits the CPU
//!   budget: most-waited-for engines first, one thread at a time (half as many again when
//!   the consumer waited most of the time);
//! - fewer threads for an engine whose consumer did not wait and whose workers were idle by
//!   more than a thread and a half, five looks in a row;
//! - a larger buffer (doubled) for an engine whose consumer waited on an empty buffer while,
//!   in the same look, its workers waited on a full one (it keeps up on average, not at every
//!   moment: its consumer waited less than half the look) and whose threads did not grow, and
//!   every buffer cut back when the results the buffers may hold (their sizes times the mean
//!   bytes of a result measured so far) would not fit the RAM budget.
//!
//! The CPU a stage uses is its workers' CPU time (the thread clock), so that on a machine
//! shared with other work the time a worker waits for a core is not counted as used; whether
//! its workers are busy in the work or waiting on the source is measured on the wall clock,
//! less their waits for the source's lock and for the results of the engines before it.
//!
//! This is a rate model measured rather than predicted, after tf.data's: tf.data keeps a
//! model of each stage's processing time and, on a timer, raises one parallelism at a time
//! where it cuts the modelled output latency most, stopping when the latency is below the
//! total processing time over the CPU budget; buffers grow only when that pays and within
//! the RAM budget. Here the latency a consumer sees is measured directly (the time it waits),
//! which needs no model of each kind of stage.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::dataset::parallelism::cores;

/// How often the tuner looks at the engines.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// The decisions a tuner keeps for [`TuningSummary::decisions`] (the latest ones).
const MAX_DECISIONS: usize = 4096;

/// The looks in a row that must find a stage's workers idle before a thread is taken back.
const CALM_LOOKS: usize = 5;

/// The most results one engine's buffer holds, whatever the tuner would like.
const MAX_BUFFER: usize = 1 << 16;

/// tf.data's `Options.autotune`: whether `AUTOTUNE` stages are tuned while the pipeline runs,
/// and the budgets the tuner works within. Set it on a pipeline with
/// [`Dataset::with_options`](crate::Dataset::with_options).
///
/// ```
/// use npyflow::dataset::{AutotuneOptions, Options, Parallelism};
/// use npyflow::{ops, Dataset, DType};
///
/// let ds = Dataset::range(0, 1000, 1)?
///     .map(ops::cast(DType::Float64), Parallelism::autotune())?
///     .batch(10, ())?
///     .with_options(Options::new().autotune(AutotuneOptions::new().cpu_budget(2).ram_budget(1 << 20)))?;
/// let mut it = ds.iter();
/// assert_eq!(it.by_ref().count(), 100);
/// let tuning = it.tuning().expect("the pass had a tuner");
/// assert_eq!(tuning.cpu_budget, 2);
/// assert!(tuning.peak_buffered_bytes <= 1 << 20);
/// # Ok::<(), npyflow::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AutotuneOptions {
    /// `Some(false)`: `AUTOTUNE` stages run a fixed number of threads (the CPU budget) and
    /// prefetch buffers keep the size chosen when the dataset was built. `None` or
    /// `Some(true)`: tuned.
    pub enabled: Option<bool>,
    /// The most threads the tuner gives one stage, and the cores' worth of CPU the stages it
    /// tunes may use together; `None`: the cores this process may use.
    pub cpu_budget: Option<usize>,
    /// The most bytes the tuned stages' buffers may hold together; `None`: half the
    /// machine's memory (tf.data's default).
    pub ram_budget: Option<u64>,
}

impl AutotuneOptions {
    /// Nothing set: tuned, with the default budgets.
    pub fn new() -> AutotuneOptions {
        AutotuneOptions::default()
    }

    /// Tuning on or off (tf.data's `autotune.enabled`).
    pub fn enabled(self, enabled: bool) -> AutotuneOptions {
        AutotuneOptions {
            enabled: Some(enabled),
            ..self
        }
    }

    /// The CPU budget, in threads (tf.data's `autotune.cpu_budget`).
    pub fn cpu_budget(self, threads: usize) -> AutotuneOptions {
        AutotuneOptions {
            cpu_budget: Some(threads),
            ..self
        }
    }

    /// The RAM budget, in bytes (tf.data's `autotune.ram_budget`).
    pub fn ram_budget(self, bytes: u64) -> AutotuneOptions {
        AutotuneOptions {
            ram_budget: Some(bytes),
            ..self
        }
    }

    /// tf.data's keywords: `cpu_budget` and `ram_budget` of 0 or `None` mean the default, as
    /// in tf.data; negative ones are refused.
    pub fn from_tf(
        enabled: Option<bool>,
        cpu_budget: Option<i64>,
        ram_budget: Option<i64>,
    ) -> crate::Result<AutotuneOptions> {
        let check = |name: &str, v: Option<i64>| -> crate::Result<Option<u64>> {
            match v {
                Some(n) if n < 0 => Err(crate::Error::InvalidArgument(format!(
                    "autotune.{name} must not be negative, got {n}"
                ))),
                Some(0) | None => Ok(None),
                Some(n) => Ok(Some(n.unsigned_abs())),
            }
        };
        Ok(AutotuneOptions {
            enabled,
            cpu_budget: check("cpu_budget", cpu_budget)?
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            ram_budget: check("ram_budget", ram_budget)?,
        })
    }

    /// These options with those set in `later` on top.
    pub(crate) fn merge(self, later: AutotuneOptions) -> AutotuneOptions {
        AutotuneOptions {
            enabled: later.enabled.or(self.enabled),
            cpu_budget: later.cpu_budget.or(self.cpu_budget),
            ram_budget: later.ram_budget.or(self.ram_budget),
        }
    }

    /// The CPU budget in force.
    pub(crate) fn cpu(&self) -> usize {
        self.cpu_budget.unwrap_or_else(cores).clamp(1, 4096)
    }

    /// The RAM budget in force.
    pub(crate) fn ram(&self) -> u64 {
        self.ram_budget.unwrap_or_else(half_the_memory).max(1)
    }
}

/// Half the machine's memory (from `/proc/meminfo`; 2 GiB where it cannot be read).
fn half_the_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(2 << 30, |kib| kib * 1024 / 2)
}

/// How an engine's buffer follows its threads: `per_thread` results a thread, at least
/// `floor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BufferRule {
    pub(crate) per_thread: usize,
    pub(crate) floor: usize,
}

impl BufferRule {
    pub(crate) fn for_threads(&self, threads: usize) -> usize {
        (self.per_thread * threads)
            .max(self.floor)
            .max(threads)
            .max(1)
    }
}

/// One engine's settings (read by its workers) and measurements (written by its threads).
pub(crate) struct Knob {
    /// What the engine is, for the decisions and the trace: `Map`, `Batch`, ...
    pub(crate) name: String,
    /// Jobs that may run at once.
    pub(crate) threads: AtomicUsize,
    /// Results that may be taken and not yet handed out.
    pub(crate) buffer: AtomicUsize,
    /// The most threads the tuner may give it (0: the tuner does not set its threads, only
    /// its buffer; a prefetch has one worker).
    pub(crate) max_threads: usize,
    pub(crate) rule: BufferRule,
    /// Time its consumer waited for a result, in ns.
    pub(crate) wait_ns: AtomicU64,
    /// How many times its consumer found no result ready.
    pub(crate) empty: AtomicU64,
    /// Time its workers waited because its buffer was full, in ns.
    pub(crate) full_ns: AtomicU64,
    /// Consecutive looks that found its workers idle (threads are taken back after a few).
    calm: AtomicUsize,
    /// Time its workers spent in the work, and in the source (under its lock), in ns.
    pub(crate) work_ns: AtomicU64,
    pub(crate) source_ns: AtomicU64,
    /// CPU time its workers used (0 where the platform has no thread clock), in ns.
    pub(crate) cpu_ns: AtomicU64,
    /// Results made, and their bytes.
    pub(crate) results: AtomicU64,
    pub(crate) result_bytes: AtomicU64,
    /// Bytes of the results it holds now.
    pub(crate) buffered: AtomicU64,
    /// Its engine's probe holds it to one job at a time: its work was measured no faster
    /// on more threads (see [`Parallelism::measure_gain`](crate::dataset::parallelism::Parallelism::measure_gain)).
    /// The tuner leaves its threads alone then.
    pub(crate) one_at_a_time: AtomicBool,
    /// Wakes the engine's workers after its settings changed (and starts threads it lacks).
    wake: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

impl Knob {
    /// A knob with `threads` threads and a buffer of `buffer`.
    pub(crate) fn new(
        name: String,
        threads: usize,
        buffer: usize,
        max_threads: usize,
        rule: BufferRule,
    ) -> Knob {
        Knob {
            name,
            threads: AtomicUsize::new(threads.max(1)),
            buffer: AtomicUsize::new(buffer.max(1)),
            max_threads,
            rule,
            wait_ns: AtomicU64::new(0),
            empty: AtomicU64::new(0),
            full_ns: AtomicU64::new(0),
            calm: AtomicUsize::new(0),
            work_ns: AtomicU64::new(0),
            source_ns: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
            results: AtomicU64::new(0),
            result_bytes: AtomicU64::new(0),
            buffered: AtomicU64::new(0),
            one_at_a_time: AtomicBool::new(false),
            wake: Mutex::new(None),
        }
    }

    pub(crate) fn threads(&self) -> usize {
        self.threads.load(Ordering::Relaxed)
    }

    /// The jobs that run at once: its threads, or one while its probe holds it to one.
    pub(crate) fn running(&self) -> usize {
        if self.one_at_a_time.load(Ordering::Relaxed) {
            1
        } else {
            self.threads()
        }
    }

    pub(crate) fn buffer(&self) -> usize {
        self.buffer.load(Ordering::Relaxed)
    }

    /// Sets what wakes the engine's workers.
    pub(crate) fn on_change(&self, wake: Box<dyn Fn() + Send + Sync>) {
        *self.wake.lock().unwrap_or_else(PoisonError::into_inner) = Some(wake);
    }

    fn changed(&self) {
        if let Some(wake) = &*self.wake.lock().unwrap_or_else(PoisonError::into_inner) {
            wake();
        }
    }

    /// Mean bytes of a result so far (0 before the first).
    fn mean_bytes(&self) -> u64 {
        let n = self.results.load(Ordering::Relaxed);
        if n == 0 {
            return 0;
        }
        self.result_bytes.load(Ordering::Relaxed) / n
    }
}

/// One change the tuner made.
#[derive(Clone, Debug, PartialEq)]
pub struct TuningDecision {
    /// When, from the start of the pass.
    pub at: Duration,
    /// The engine: its stage's name and its number among the pass's tuned engines.
    pub stage: String,
    /// Its threads and buffer (results) after the change.
    pub threads: usize,
    /// Its buffer, in results, after the change.
    pub buffer: usize,
    /// Why: `"consumer waited"`, `"workers idle"`, `"buffer empty"`, `"RAM budget"`; or,
    /// from a stage that measures the gain of its threads (a Python function's map),
    /// `"threads measured faster"` or `"threads measured no faster"` (then `threads` is 1: one
    /// job at a time).
    pub why: &'static str,
}

/// A tuned engine's settings now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunedStage {
    /// Its stage's name and number among the pass's tuned engines.
    pub stage: String,
    /// Jobs it may run at once.
    pub threads: usize,
    /// Results it may hold.
    pub buffer: usize,
}

/// What the tuner of a pass decided: see [`DatasetIter::tuning`](crate::DatasetIter::tuning).
#[derive(Clone, Debug, PartialEq)]
pub struct TuningSummary {
    /// Whether the stages were tuned (`autotune.enabled`).
    pub enabled: bool,
    /// The budgets in force.
    pub cpu_budget: usize,
    /// The RAM budget in force, in bytes.
    pub ram_budget: u64,
    /// The most bytes the pass's parallel engines held at once (results made and not yet
    /// handed out).
    pub peak_buffered_bytes: u64,
    /// The tuned engines, in the order they started: the running ones' settings now, and
    /// the last settings of (at most 64) that have ended.
    pub stages: Vec<TunedStage>,
    /// The latest changes, oldest first (at most 4,096).
    pub decisions: Vec<TuningDecision>,
}

impl std::fmt::Display for TuningSummary {
    /// A few lines: the budgets, the peak buffered, each engine's settings and how many
    /// changes were made.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "autotune: {}, cpu budget {} threads, ram budget {:.1} MB, peak buffered {:.1} MB, {} changes",
            if self.enabled { "on" } else { "off" },
            self.cpu_budget,
            self.ram_budget as f64 / 1e6,
            self.peak_buffered_bytes as f64 / 1e6,
            self.decisions.len()
        )?;
        for s in &self.stages {
            write!(
                f,
                "\n  {:<26} threads {:>3}  buffer {:>5}",
                s.stage, s.threads, s.buffer
            )?;
        }
        let shown = self.decisions.len().min(12);
        if shown > 0 {
            write!(f, "\n  the last {shown} changes:")?;
        }
        for d in &self.decisions[self.decisions.len() - shown..] {
            write!(
                f,
                "\n  {:>9.1} ms  {:<16} threads {:>3}  buffer {:>5}  ({})",
                d.at.as_secs_f64() * 1e3,
                d.stage,
                d.threads,
                d.buffer,
                d.why
            )?;
        }
        Ok(())
    }
}

/// The counters of a knob at the last tick.
#[derive(Clone, Copy, Default)]
struct Seen {
    wait_ns: u64,
    empty: u64,
    full_ns: u64,
    work_ns: u64,
    source_ns: u64,
    cpu_ns: u64,
}

struct Tuned {
    knob: Weak<Knob>,
    seen: Seen,
    /// Its settings at the last look (what the summary shows once it has ended).
    last: TunedStage,
}

/// The most ended engines a summary lists.
const MAX_ENDED: usize = 64;

#[derive(Default)]
struct Book {
    knobs: Vec<Tuned>,
    decisions: std::collections::VecDeque<TuningDecision>,
    last: Option<Instant>,
    thread: Option<JoinHandle<()>>,
    stop: bool,
    registered: usize,
    /// Engines that have ended, with their last settings, latest last.
    ended: std::collections::VecDeque<TunedStage>,
}

/// Where a tuner leaves its summary when it is dropped (a pass's statistics read it).
pub(crate) type SummarySlot = Arc<Mutex<Option<TuningSummary>>>;

/// The tuner of one pass (and of the passes opened inside it: an interleave's datasets).
pub(crate) struct Tuner {
    options: AutotuneOptions,
    cpu: usize,
    ram: u64,
    started: Instant,
    book: Mutex<Book>,
    stopped: Condvar,
    /// Bytes every engine of the pass holds now, and the most they held.
    buffered: AtomicU64,
    peak: AtomicU64,
    /// Where the summary goes when the tuner is dropped.
    slot: Option<SummarySlot>,
    /// Whether maps of native ops given no threads get `AUTOTUNE` ones (the pipeline's
    /// [`Options::map_parallelization`](crate::dataset::Options::map_parallelization)).
    parallel_maps: bool,
}

impl Tuner {
    /// A tuner with `options`, leaving its summary in `slot` when dropped; `parallel_maps`:
    /// whether maps of native ops given no threads get `AUTOTUNE` ones.
    pub(crate) fn new(
        options: AutotuneOptions,
        parallel_maps: bool,
        slot: Option<SummarySlot>,
    ) -> Arc<Tuner> {
        Arc::new(Tuner {
            slot,
            parallel_maps,
            options,
            cpu: options.cpu(),
            ram: options.ram(),
            started: Instant::now(),
            book: Mutex::default(),
            stopped: Condvar::new(),
            buffered: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        })
    }

    /// Whether maps of native ops given no threads get `AUTOTUNE` ones in this pass.
    pub(crate) fn parallelizes_maps(&self) -> bool {
        self.parallel_maps
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `AUTOTUNE` stages are tuned.
    pub(crate) fn enabled(&self) -> bool {
        self.options.enabled != Some(false)
    }

    /// The CPU budget: the most threads one stage gets.
    pub(crate) fn cpu_budget(&self) -> usize {
        self.cpu
    }

    /// Whether the pass's engines hold the RAM budget or more: a tuned engine that holds a
    /// result starts no job then (its consumer will take that result first), so the peak
    /// stays within the budget and the results of the jobs already running.
    pub(crate) fn over_ram(&self) -> bool {
        self.buffered.load(Ordering::Relaxed) >= self.ram
    }

    /// Counts `bytes` more (or fewer) held by an engine of the pass.
    pub(crate) fn hold(&self, more: u64, less: u64) {
        if more > 0 {
            let now = self.buffered.fetch_add(more, Ordering::Relaxed) + more;
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
        if less > 0 {
            self.buffered.fetch_sub(less, Ordering::Relaxed);
        }
    }

    /// Takes an engine's knob into the tuning, starting the tuner's thread with the first.
    pub(crate) fn register(self: &Arc<Self>, knob: &Arc<Knob>) {
        let mut book = self.book();
        book.registered += 1;
        book.knobs.push(Tuned {
            knob: Arc::downgrade(knob),
            seen: Seen::default(),
            last: TunedStage {
                stage: knob.name.clone(),
                threads: knob.threads(),
                buffer: knob.buffer(),
            },
        });
        if book.thread.is_none() && !book.stop {
            let weak = Arc::downgrade(self);
            book.last = Some(Instant::now());
            book.thread = std::thread::Builder::new()
                .name("npyflow-autotune".into())
                .spawn(move || run(&weak))
                .ok();
        }
    }

    /// The number the next engine registered gets, for its name.
    pub(crate) fn next_number(&self) -> usize {
        self.book().registered
    }

    /// Records a decision an engine made itself (its probe's verdict), with the jobs it runs
    /// at once after it.
    pub(crate) fn record(&self, knob: &Knob, why: &'static str) {
        let d = TuningDecision {
            at: self.started.elapsed(),
            stage: knob.name.clone(),
            threads: knob.running(),
            buffer: knob.buffer(),
            why,
        };
        let mut book = self.book();
        if book.decisions.len() >= MAX_DECISIONS {
            book.decisions.pop_front();
        }
        book.decisions.push_back(d);
    }

    /// One look at every engine; see the module's documentation.
    fn tick(&self) {
        let (looks, at) = self.look();
        // Decided without the book's lock: waking an engine may start threads.
        let mut decided = Vec::new();
        decide(&looks, self.cpu, self.ram, &mut |knob, why| {
            decided.push(TuningDecision {
                at,
                stage: knob.name.clone(),
                threads: knob.threads(),
                buffer: knob.buffer(),
                why,
            });
        });
        let mut book = self.book();
        for d in decided {
            if book.decisions.len() >= MAX_DECISIONS {
                book.decisions.pop_front();
            }
            book.decisions.push_back(d);
        }
    }

    /// What every engine measured since the last look, and when this look is.
    fn look(&self) -> (Vec<Look>, Duration) {
        let mut book = self.book();
        let now = Instant::now();
        let window = now
            .saturating_duration_since(book.last.unwrap_or(self.started))
            .as_nanos()
            .max(1) as f64;
        book.last = Some(now);
        let book = &mut *book;
        let ended = &mut book.ended;
        book.knobs.retain(|t| {
            let alive = t.knob.strong_count() > 0;
            if !alive {
                if ended.len() >= MAX_ENDED {
                    ended.pop_front();
                }
                ended.push_back(t.last.clone());
            }
            alive
        });
        let at = now.saturating_duration_since(self.started);
        let mut looks = Vec::with_capacity(book.knobs.len());
        for t in &mut book.knobs {
            let Some(knob) = t.knob.upgrade() else {
                continue;
            };
            let seen = Seen {
                wait_ns: knob.wait_ns.load(Ordering::Relaxed),
                empty: knob.empty.load(Ordering::Relaxed),
                full_ns: knob.full_ns.load(Ordering::Relaxed),
                work_ns: knob.work_ns.load(Ordering::Relaxed),
                source_ns: knob.source_ns.load(Ordering::Relaxed),
                cpu_ns: knob.cpu_ns.load(Ordering::Relaxed),
            };
            let d = |now: u64, then: u64| now.saturating_sub(then) as f64;
            let look = Look {
                waited: (d(seen.wait_ns, t.seen.wait_ns) / window).min(1.0),
                empty: seen.empty > t.seen.empty,
                full: d(seen.full_ns, t.seen.full_ns) / window,
                work: d(seen.work_ns, t.seen.work_ns) / window,
                source: d(seen.source_ns, t.seen.source_ns) / window,
                cpu: d(seen.cpu_ns, t.seen.cpu_ns) / window,
                knob,
            };
            t.seen = seen;
            t.last.threads = look.knob.running();
            t.last.buffer = look.knob.buffer();
            looks.push(look);
        }
        (looks, at)
    }

    /// What the tuner decided so far.
    pub(crate) fn summary(&self) -> TuningSummary {
        let book = self.book();
        TuningSummary {
            enabled: self.enabled(),
            cpu_budget: self.cpu,
            ram_budget: self.ram,
            peak_buffered_bytes: self.peak.load(Ordering::Relaxed),
            stages: book
                .ended
                .iter()
                .cloned()
                .chain(book.knobs.iter().map(|t| match t.knob.upgrade() {
                    Some(k) => TunedStage {
                        stage: k.name.clone(),
                        threads: k.running(),
                        buffer: k.buffer(),
                    },
                    None => t.last.clone(),
                }))
                .collect(),
            decisions: book.decisions.iter().cloned().collect(),
        }
    }
}

impl Drop for Tuner {
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            let summary = self.summary();
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(summary);
        }
        let thread = {
            let mut book = self.book();
            book.stop = true;
            book.thread.take()
        };
        self.stopped.notify_all();
        if let Some(t) = thread {
            // The tuner's own thread may hold the last reference (while it ticks): it exits
            // by itself then, finding the tuner gone.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// The tuner's thread: a tick every [`TICK`] until the tuner is dropped.
fn run(tuner: &Weak<Tuner>) {
    loop {
        let Some(t) = tuner.upgrade() else { return };
        {
            let book = t.book();
            if book.stop {
                return;
            }
            let (book, _) = t
                .stopped
                .wait_timeout(book, TICK)
                .unwrap_or_else(PoisonError::into_inner);
            if book.stop {
                return;
            }
        }
        t.tick();
    }
}

/// What a tick measured of one engine, as fractions of the tick's time.
struct Look {
    knob: Arc<Knob>,
    /// Its consumer waiting for a result.
    waited: f64,
    /// Whether its consumer found no result ready.
    empty: bool,
    /// Its workers waiting on a full buffer (threads' worth).
    full: f64,
    /// Its workers in the work, and in the source (cores' worth, on the clock).
    work: f64,
    source: f64,
    /// The CPU its workers used (cores' worth; 0 where there is no thread clock).
    cpu: f64,
}

impl Look {
    /// The CPU the engine used: its workers' CPU time, or their time in the source and the
    /// work where there is no thread clock.
    fn used(&self) -> f64 {
        if self.cpu > 0.0 {
            self.cpu
        } else {
            self.work + self.source
        }
    }
}

/// The decisions of one tick over `looks`, within `cpu` threads and `ram` bytes; `note` is
/// called after each change.
fn decide(looks: &[Look], cpu: usize, ram: u64, note: &mut dyn FnMut(&Knob, &'static str)) {
    let mut used: f64 = looks.iter().map(Look::used).sum();
    let budget = cpu as f64 + 0.25;
    // More threads where the consumer waited most.
    let mut order: Vec<&Look> = looks.iter().filter(|l| l.waited > 0.02).collect();
    order.sort_by(|a, b| b.waited.total_cmp(&a.waited));
    let mut grew = vec![false; looks.len()];
    for l in order {
        let k = &l.knob;
        let threads = k.threads();
        if k.max_threads == 0 || threads >= k.max_threads || k.running() < threads {
            continue;
        }
        // Busy in the work, not waiting on the source: more workers can help.
        let busy = l.work / threads as f64;
        if busy < 0.5 || l.source > 0.8 {
            continue;
        }
        let step = if l.waited > 0.5 {
            (threads / 2).max(1)
        } else {
            1
        };
        let step = step.min(k.max_threads - threads);
        let per_thread = l.used() / threads as f64;
        let step = (0..=step)
            .rev()
            .find(|&s| used + per_thread * s as f64 <= budget)
            .unwrap_or(0);
        if step == 0 {
            continue;
        }
        used += per_thread * step as f64;
        set_threads(k, threads + step);
        if let Some(i) = looks.iter().position(|x| Arc::ptr_eq(&x.knob, k)) {
            grew[i] = true;
        }
        note(k, "consumer waited");
    }
    // Fewer threads where workers were idle and the consumer did not wait, for a few looks
    // in a row (a stage just given a thread is not judged on one look).
    for (i, l) in looks.iter().enumerate() {
        let k = &l.knob;
        let threads = k.threads();
        // A stage its probe holds to one job at a time keeps its sleeping threads for the
        // probe's next measure.
        if k.max_threads == 0 || threads <= 1 || k.running() < threads {
            continue;
        }
        if grew[i] || l.waited >= 0.01 || l.work >= threads as f64 - 1.5 {
            k.calm.store(0, Ordering::Relaxed);
            continue;
        }
        if k.calm.fetch_add(1, Ordering::Relaxed) + 1 >= CALM_LOOKS {
            k.calm.store(0, Ordering::Relaxed);
            set_threads(k, threads - 1);
            note(k, "workers idle");
        }
    }
    // Buffers: doubled where, in the same look, the consumer found the buffer empty and the
    // workers found it full, and threads did not grow: the stage keeps up on average (its
    // consumer waited less than half the look) but not at every moment. A stage its consumer
    // waits for most of the time is slower on average, which a buffer cannot make up for: its
    // workers find the buffer full only when the consumer is away for a moment (off its core),
    // and a larger buffer would only put more batches in flight, each a fresh allocation to
    // fault in (W3's 1 MiB batches grew to 16 and 32 of them so).
    for (i, l) in looks.iter().enumerate() {
        let k = &l.knob;
        if grew[i] || !l.empty || l.waited < 0.02 || l.waited >= 0.5 || l.full < 0.05 {
            continue;
        }
        let b = k.buffer();
        let more = (b * 2).min(MAX_BUFFER);
        let mean = k.mean_bytes();
        let held: u64 = looks
            .iter()
            .map(|x| x.knob.buffer() as u64 * x.knob.mean_bytes())
            .sum();
        if more > b && held + (more - b) as u64 * mean <= ram {
            k.buffer.store(more, Ordering::Relaxed);
            k.changed();
            note(k, "buffer empty");
        }
    }
    // The RAM budget: the largest buffers halved until what the buffers may hold fits.
    for _ in 0..64 {
        let held: u64 = looks
            .iter()
            .map(|x| x.knob.buffer() as u64 * x.knob.mean_bytes())
            .sum();
        if held <= ram {
            break;
        }
        let Some(l) = looks
            .iter()
            .filter(|x| x.knob.buffer() > 1)
            .max_by_key(|x| x.knob.buffer() as u64 * x.knob.mean_bytes())
        else {
            break;
        };
        let b = l.knob.buffer();
        l.knob.buffer.store((b / 2).max(1), Ordering::Relaxed);
        l.knob.changed();
        note(&l.knob, "RAM budget");
    }
}

/// Sets an engine's threads, and its buffer to follow them (never below what it was made
/// by an empty buffer, unless that is more than the rule's for the old threads).
fn set_threads(k: &Knob, threads: usize) {
    let old = k.threads();
    k.threads.store(threads, Ordering::Relaxed);
    let b = k.buffer();
    let grown_beyond_rule = b > k.rule.for_threads(old);
    let new_buffer = if grown_beyond_rule {
        b.max(k.rule.for_threads(threads))
    } else {
        k.rule.for_threads(threads)
    };
    k.buffer.store(new_buffer, Ordering::Relaxed);
    k.changed();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knob(threads: usize, max: usize) -> Arc<Knob> {
        Arc::new(Knob::new(
            "Map".into(),
            threads,
            2 * threads,
            max,
            BufferRule {
                per_thread: 2,
                floor: 0,
            },
        ))
    }

    fn look(knob: &Arc<Knob>, waited: f64, work: f64) -> Look {
        Look {
            knob: Arc::clone(knob),
            waited,
            empty: waited > 0.0,
            full: 0.0,
            work,
            source: 0.0,
            cpu: 0.0,
        }
    }

    #[test]
    fn a_waited_for_busy_stage_gets_a_thread_within_the_budget() {
        let slow = knob(1, 8);
        let cheap = knob(1, 8);
        let looks = [look(&slow, 0.6, 1.0), look(&cheap, 0.0, 0.1)];
        let mut notes = Vec::new();
        decide(&looks, 2, u64::MAX, &mut |k, why| {
            notes.push((k.name.clone(), why))
        });
        assert_eq!((slow.threads(), slow.buffer()), (2, 4));
        assert_eq!(cheap.threads(), 1);
        assert_eq!(notes.len(), 1);
        // At the budget: 2 threads busy, one more would not fit 2 cores.
        let looks = [look(&slow, 0.3, 2.0), look(&cheap, 0.0, 0.1)];
        decide(&looks, 2, u64::MAX, &mut |_, _| {});
        assert_eq!(slow.threads(), 2);
    }

    #[test]
    fn idle_workers_are_taken_back_and_a_stage_waiting_on_its_source_gets_none() {
        let k = knob(4, 8);
        for _ in 1..CALM_LOOKS {
            decide(&[look(&k, 0.0, 0.5)], 8, u64::MAX, &mut |_, _| {});
        }
        assert_eq!(k.threads(), 4, "not on a few looks");
        decide(&[look(&k, 0.0, 0.5)], 8, u64::MAX, &mut |_, _| {});
        assert_eq!(k.threads(), 3);
        let k = knob(1, 8);
        let l = Look {
            source: 0.9,
            ..look(&k, 0.9, 0.05)
        };
        decide(&[l], 8, u64::MAX, &mut |_, _| {});
        assert_eq!(k.threads(), 1, "workers idle on the source: no thread");
    }

    #[test]
    fn buffers_grow_when_empty_and_shrink_to_fit_the_ram_budget() {
        let k = Arc::new(Knob::new(
            "Prefetch".into(),
            1,
            2,
            0,
            BufferRule {
                per_thread: 1,
                floor: 1,
            },
        ));
        k.results.store(10, Ordering::Relaxed);
        k.result_bytes.store(10_000, Ordering::Relaxed);
        decide(&[look(&k, 0.3, 1.0)], 2, 1 << 20, &mut |_, _| {});
        assert_eq!(k.buffer(), 2, "never full: a larger buffer would not help");
        let jittery = || Look {
            full: 0.2,
            ..look(&k, 0.3, 1.0)
        };
        decide(&[jittery()], 2, 1 << 20, &mut |_, _| {});
        assert_eq!(k.buffer(), 4);
        let slower = Look {
            full: 0.2,
            ..look(&k, 0.7, 1.0)
        };
        decide(&[slower], 2, 1 << 20, &mut |_, _| {});
        assert_eq!(
            k.buffer(),
            4,
            "waited for most of the look: slower on average"
        );
        decide(&[jittery()], 2, 5_000, &mut |_, _| {});
        assert!(k.buffer() as u64 * 1000 <= 5_000, "{}", k.buffer());
        decide(&[look(&k, 0.0, 1.0)], 2, 500, &mut |_, _| {});
        assert_eq!(k.buffer(), 1, "never below one result");
    }

    #[test]
    fn options_merge_later_on_top_and_refuse_negative_budgets() {
        let a = AutotuneOptions::new().cpu_budget(2).ram_budget(10);
        let b = AutotuneOptions::new().ram_budget(20).enabled(false);
        assert_eq!(
            a.merge(b),
            AutotuneOptions {
                enabled: Some(false),
                cpu_budget: Some(2),
                ram_budget: Some(20)
            }
        );
        assert!(AutotuneOptions::from_tf(None, Some(-1), None).is_err());
        assert_eq!(
            AutotuneOptions::from_tf(None, Some(0), Some(0)).unwrap(),
            AutotuneOptions::default()
        );
    }
}
