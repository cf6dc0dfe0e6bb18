//! [`Parallelism`]: how many threads a parallel stage runs, and whether its output keeps its
//! input's order; and [`AUTOTUNE`].

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The most threads one parallel step starts, whatever `num_parallel_calls` asks.
pub(crate) const MAX_THREADS: usize = 256;

/// The cores this process may use, read once (the count comes from the scheduler's affinity
/// and cgroup limits, which cost a few file reads to learn).
pub(crate) fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// tf.data's `AUTOTUNE` (`-1`): let the runtime choose a parallelism or buffer size.
pub const AUTOTUNE: i64 = -1;

/// How many threads a parallel stage runs, and whether its output keeps its input's order.
///
/// tf.data spells this as two keywords, `num_parallel_calls` and `deterministic`;
/// [`Parallelism::from_tf`] reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Parallelism {
    /// `None`: [`AUTOTUNE`].
    threads: Option<usize>,
    deterministic: bool,
    /// Under AUTOTUNE: measure whether all threads beat one (see [`Parallelism::measure_gain`]).
    measure_gain: bool,
}

impl Parallelism {
    /// `threads` threads (at most 256), output in order. Zero threads are refused by the
    /// transformation given them.
    pub fn threads(threads: usize) -> Parallelism {
        Parallelism {
            threads: Some(threads),
            deterministic: true,
            measure_gain: false,
        }
    }

    /// tf.data's `AUTOTUNE`, output in order: under an iterator, the stage starts with the
    /// CPU budget's threads (by default the cores this process may use), as tf.data starts
    /// its autotuned parallelism at the cores, and the pass's tuner takes back threads that
    /// stay idle and gives them again while the consumer waits and the CPU allows; see
    /// [`AutotuneOptions`](super::AutotuneOptions). A pass opened outside an iterator runs
    /// one thread per core.
    pub fn autotune() -> Parallelism {
        Parallelism {
            threads: None,
            deterministic: true,
            measure_gain: false,
        }
    }

    /// The same, for work that may hold a lock for most of its run, as a Python function
    /// holds the GIL: under [`AUTOTUNE`] the stage runs its jobs one at a time for its
    /// first half second, timing them, then times a short window (10 ms) with all its
    /// threads, and keeps all of them only when that was at least 15% faster; it measures
    /// again every 4096 jobs or 2 seconds. A pass shorter than half a second runs one job
    /// at a time throughout. Threads that only wait for a lock make a stage slower than one thread
    /// (each hand-over costs a switch); measured, such a stage runs at one thread's speed.
    /// A worker held back waits before it takes a job, so the output is the same whatever
    /// was measured. With a set number of threads this changes nothing: the stage runs
    /// those. The Python package sets it for the functions it cannot trace.
    ///
    /// Differs from tf.data, which runs such functions (`tf.py_function`) on all the
    /// threads AUTOTUNE gives the stage.
    ///
    /// ```
    /// use npyflow::dataset::Parallelism;
    /// use npyflow::{Dataset, Element, Tensor};
    /// // A function that holds a lock for all of its run gains nothing from threads.
    /// let lock = std::sync::Arc::new(std::sync::Mutex::new(()));
    /// let ds = Dataset::from_tensor_slices(Tensor::from_vec((0..100i64).collect(), &[100])?)?
    ///     .map(move |e: Element| { let _held = lock.lock().unwrap(); Ok(e) },
    ///          Parallelism::autotune().measure_gain())?;
    /// assert_eq!(ds.to_vec()?.len(), 100); // the same elements, in order
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn measure_gain(self) -> Parallelism {
        Parallelism {
            measure_gain: true,
            ..self
        }
    }

    /// Whether a stage at [`AUTOTUNE`] measures what all its threads gain over one (see
    /// [`Parallelism::measure_gain`]).
    pub fn is_gain_measured(&self) -> bool {
        self.measure_gain && self.is_autotune()
    }

    /// The same, with the output in the input's order (`true`, the default) or in the order
    /// results are finished (`false`: a fast element may overtake a slow one).
    pub fn deterministic(self, deterministic: bool) -> Parallelism {
        Parallelism {
            deterministic,
            ..self
        }
    }

    /// tf.data's `num_parallel_calls` and `deterministic` keywords: `None` (the default) runs
    /// the stage on the thread that reads it; a positive count or [`AUTOTUNE`] runs it in
    /// parallel; anything else is refused, naming `op`. `deterministic` `None` means `true`,
    /// as in tf.data when `tf.data.Options.deterministic` is not set.
    pub fn from_tf(
        op: &str,
        num_parallel_calls: Option<i64>,
        deterministic: Option<bool>,
    ) -> Result<Option<Parallelism>> {
        let Some(n) = num_parallel_calls else {
            return Ok(None);
        };
        if n <= 0 && n != AUTOTUNE {
            return Err(Error::InvalidArgument(format!(
                "{op}: num_parallel_calls must be positive or AUTOTUNE (-1), got {n}"
            )));
        }
        let p = if n == AUTOTUNE {
            Parallelism::autotune()
        } else {
            Parallelism::threads(usize::try_from(n).unwrap_or(MAX_THREADS))
        };
        Ok(Some(p.deterministic(deterministic.unwrap_or(true))))
    }

    /// The number of threads: the one asked for, or for [`AUTOTUNE`] the cores this process
    /// may use (the most the tuner gives a stage by default); never more than 256.
    pub fn num_threads(&self) -> usize {
        self.threads.unwrap_or_else(cores).min(MAX_THREADS)
    }

    /// Whether the output keeps the input's order.
    pub fn is_deterministic(&self) -> bool {
        self.deterministic
    }

    /// Whether the number of threads is left to the runtime.
    pub fn is_autotune(&self) -> bool {
        self.threads.is_none()
    }

    /// The parallelism of a pass made of two stages: the more threads of the two
    /// ([`AUTOTUNE`] when either is, so that the pass's engine is tuned, measuring the gain
    /// of its threads when an AUTOTUNE stage asked for that: the pass's jobs include that
    /// stage's work), in order unless one of them gave order up.
    pub(crate) fn combine(a: Option<Parallelism>, b: Option<Parallelism>) -> Option<Parallelism> {
        match (a, b) {
            (Some(a), Some(b)) => {
                let p = if a.is_autotune() || b.is_autotune() {
                    Parallelism {
                        measure_gain: a.is_gain_measured() || b.is_gain_measured(),
                        ..Parallelism::autotune()
                    }
                } else {
                    Parallelism::threads(a.num_threads().max(b.num_threads()))
                };
                Some(p.deterministic(a.deterministic && b.deterministic))
            }
            (one, None) | (None, one) => one,
        }
    }

    /// Refuses zero threads, naming `op`.
    pub(crate) fn check(parallelism: Option<Parallelism>, op: &str) -> Result<()> {
        if parallelism.is_some_and(|p| p.threads == Some(0)) {
            return Err(Error::InvalidArgument(format!(
                "{op}: the number of threads must be positive, got 0"
            )));
        }
        Ok(())
    }
}
