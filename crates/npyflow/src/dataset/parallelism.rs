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
}

impl Parallelism {
    /// `threads` threads (at most 256), output in order. Zero threads are refused by the
    /// transformation given them.
    pub fn threads(threads: usize) -> Parallelism {
        Parallelism {
            threads: Some(threads),
            deterministic: true,
        }
    }

    /// tf.data's `AUTOTUNE`, output in order: under an iterator, the stage starts with one
    /// thread and the pass's tuner gives it more (up to the CPU budget, by default the cores
    /// this process may use) while the consumer waits for it and the CPU allows; see
    /// [`AutotuneOptions`](super::AutotuneOptions). A pass opened outside an iterator runs
    /// one thread per core.
    pub fn autotune() -> Parallelism {
        Parallelism {
            threads: None,
            deterministic: true,
        }
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
    /// ([`AUTOTUNE`] when either is, so that the pass's engine is tuned), in order unless one
    /// of them gave order up.
    pub(crate) fn combine(a: Option<Parallelism>, b: Option<Parallelism>) -> Option<Parallelism> {
        match (a, b) {
            (Some(a), Some(b)) => {
                let p = if a.is_autotune() || b.is_autotune() {
                    Parallelism::autotune()
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
