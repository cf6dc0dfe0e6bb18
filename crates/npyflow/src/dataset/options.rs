//! The options of transformations that take more than their one essential argument:
//! [`Parallelism`], [`MapOptions`], [`BatchOptions`], [`InterleaveOptions`],
//! [`ShuffleOptions`].
//!
//! Each options type has defaults ([`Default`], and `()` converts into them), builder
//! methods, and a `from_tf` constructor that reads tf.data's keyword arguments
//! (`num_parallel_calls`, `deterministic`, `cycle_length`, ...) with tf.data's checks. The
//! command line and the Python package call `from_tf`, so those checks live here alone.
//!
//! ```
//! use npyflow::dataset::{BatchOptions, Parallelism};
//! use npyflow::{Dataset, Element};
//!
//! let ds = Dataset::range(0, 10, 1)?
//!     .map(|x: Element| Ok(x), Parallelism::autotune())? // threads tuned while it runs, in order
//!     .batch(4, BatchOptions::new().drop_remainder(true))?;
//! assert_eq!(ds.len()?, 2);
//! # Ok::<(), npyflow::Error>(())
//! ```

use super::parallelism::{cores, MAX_THREADS};
pub use super::parallelism::{Parallelism, AUTOTUNE};
use super::plumbing::require;
use crate::element::ElementSpec;
use crate::error::{Error, Result};

/// tf.data's integer argument `name` of `op` (a `count`, a `start`, an `index`, ...) as a
/// number that must not be negative: what the fronts, which read Python's or the command
/// line's integers, call before the core's unsigned arguments.
pub fn count_from_tf(op: &str, name: &str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| {
        Error::InvalidArgument(format!("{op}: {name} must not be negative, got {value}"))
    })
}

/// tf.data's integer argument `name` of `op` (a `batch_size`, a `buffer_size`, ...) as a
/// number that must be positive.
pub fn positive_from_tf(op: &str, name: &str, value: i64) -> Result<u64> {
    require(value > 0, || {
        format!("{op}: {name} must be greater than zero, got {value}")
    })?;
    Ok(value.unsigned_abs())
}

/// The options of [`Dataset::map`](super::Dataset::map).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MapOptions {
    /// Run the function on this many threads (tf.data's `num_parallel_calls` and
    /// `deterministic`); `None`: on the thread that reads the dataset.
    pub parallelism: Option<Parallelism>,
    /// The spec of what the function returns, declared instead of found by calling the
    /// function on placeholder elements (for a function whose output shape depends on the
    /// values, or that cannot run on zeros). Built-in ops know their spec and refuse one.
    pub output_spec: Option<ElementSpec>,
    /// Without a declared spec: find it by calling the function on the first element of the
    /// input (real data) rather than on placeholders; the dimensions are then unknown (see
    /// [`Dataset::map`](super::Dataset::map)). What the Python package does for functions
    /// it cannot trace.
    pub spec_from_first_element: bool,
}

impl MapOptions {
    /// The defaults: one thread, traced output spec.
    pub fn new() -> MapOptions {
        MapOptions::default()
    }

    /// With the function run in parallel.
    pub fn parallel(self, parallelism: Parallelism) -> MapOptions {
        MapOptions {
            parallelism: Some(parallelism),
            ..self
        }
    }

    /// With the output spec found on the input's first element, not on placeholders.
    pub fn spec_from_first_element(self) -> MapOptions {
        MapOptions {
            spec_from_first_element: true,
            ..self
        }
    }

    /// With the output spec declared.
    pub fn output_spec(self, spec: ElementSpec) -> MapOptions {
        MapOptions {
            output_spec: Some(spec),
            ..self
        }
    }

    /// tf.data's `map(num_parallel_calls=, deterministic=)`.
    pub fn from_tf(
        num_parallel_calls: Option<i64>,
        deterministic: Option<bool>,
    ) -> Result<MapOptions> {
        Ok(MapOptions {
            parallelism: Parallelism::from_tf("map", num_parallel_calls, deterministic)?,
            output_spec: None,
            spec_from_first_element: false,
        })
    }
}

/// The options of [`Dataset::batch`](super::Dataset::batch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchOptions {
    /// Drop a last batch that would be smaller than the batch size (so every batch, and the
    /// spec, has the batch size as its first dimension).
    pub drop_remainder: bool,
    /// Assemble batches on this many threads; `None`: on the thread that reads the dataset.
    pub parallelism: Option<Parallelism>,
}

impl BatchOptions {
    /// The defaults: keep a smaller last batch, one thread.
    pub fn new() -> BatchOptions {
        BatchOptions::default()
    }

    /// With a smaller last batch dropped (`true`) or kept.
    pub fn drop_remainder(self, drop_remainder: bool) -> BatchOptions {
        BatchOptions {
            drop_remainder,
            ..self
        }
    }

    /// With batches assembled in parallel.
    pub fn parallel(self, parallelism: Parallelism) -> BatchOptions {
        BatchOptions {
            parallelism: Some(parallelism),
            ..self
        }
    }

    /// tf.data's `batch(drop_remainder=, num_parallel_calls=, deterministic=)`.
    pub fn from_tf(
        drop_remainder: bool,
        num_parallel_calls: Option<i64>,
        deterministic: Option<bool>,
    ) -> Result<BatchOptions> {
        Ok(BatchOptions {
            drop_remainder,
            parallelism: Parallelism::from_tf("batch", num_parallel_calls, deterministic)?,
        })
    }
}

/// The most datasets an interleave keeps open at once.
pub(crate) const MAX_CYCLE: usize = 1 << 16;

/// The options of [`Dataset::interleave`](super::Dataset::interleave).
#[derive(Clone, Debug, PartialEq)]
pub struct InterleaveOptions {
    /// How many datasets are read at once; `None` (the default, tf.data's `AUTOTUNE`): as
    /// tf.data chooses, as many as this process may use cores, but with parallelism
    /// `min(threads, cores)`, or a third of the cores (rounded up) with AUTOTUNE threads.
    pub cycle_length: Option<usize>,
    /// How many consecutive elements are taken from each dataset in turn (default 1).
    pub block_length: usize,
    /// Read each open dataset ahead on a thread of its own. Differs from tf.data: there is
    /// one thread per open dataset whatever the count asked for, and the output is always in
    /// the deterministic order.
    pub parallelism: Option<Parallelism>,
    /// The spec of the datasets the function makes, declared instead of found by calling
    /// the function on placeholder elements (for functions that open files named by the
    /// element, say). A dataset of another spec is an error where it is read.
    pub output_spec: Option<ElementSpec>,
    /// Without a declared spec, find it by calling the function on the first element of
    /// the input instead of on placeholders (see [`MapOptions::spec_from_first_element`]):
    /// Python's functions are never called on made-up values.
    pub spec_from_first_element: bool,
}

impl Default for InterleaveOptions {
    fn default() -> InterleaveOptions {
        InterleaveOptions {
            cycle_length: None,
            block_length: 1,
            parallelism: None,
            output_spec: None,
            spec_from_first_element: false,
        }
    }
}

impl InterleaveOptions {
    /// The defaults: a cycle of one dataset per core, blocks of one element, one thread.
    /// (A parallel interleave without a cycle length gets tf.data's:
    /// `min(threads, cores)`, or a third of the cores, rounded up, with AUTOTUNE.)
    pub fn new() -> InterleaveOptions {
        InterleaveOptions::default()
    }

    /// With `cycle_length` datasets open at once.
    pub fn cycle_length(self, cycle_length: usize) -> InterleaveOptions {
        InterleaveOptions {
            cycle_length: Some(cycle_length),
            ..self
        }
    }

    /// With blocks of `block_length` elements.
    pub fn block_length(self, block_length: usize) -> InterleaveOptions {
        InterleaveOptions {
            block_length,
            ..self
        }
    }

    /// With each open dataset read ahead on its own thread.
    pub fn parallel(self, parallelism: Parallelism) -> InterleaveOptions {
        InterleaveOptions {
            parallelism: Some(parallelism),
            ..self
        }
    }

    /// With the spec of the datasets the function makes declared.
    pub fn output_spec(self, spec: ElementSpec) -> InterleaveOptions {
        InterleaveOptions {
            output_spec: Some(spec),
            ..self
        }
    }

    /// With the spec found from the dataset the function makes for the first element of
    /// the input, never from placeholder elements (see
    /// [`MapOptions::spec_from_first_element`]).
    pub fn spec_from_first_element(self) -> InterleaveOptions {
        InterleaveOptions {
            spec_from_first_element: true,
            ..self
        }
    }

    /// tf.data's `interleave(cycle_length=, block_length=, num_parallel_calls=,
    /// deterministic=)`, with its checks: `cycle_length` positive or [`AUTOTUNE`] (`None`
    /// is AUTOTUNE), `block_length` positive (`None` is 1).
    pub fn from_tf(
        cycle_length: Option<i64>,
        block_length: Option<i64>,
        num_parallel_calls: Option<i64>,
        deterministic: Option<bool>,
    ) -> Result<InterleaveOptions> {
        let cycle_length = cycle_length.unwrap_or(AUTOTUNE);
        let block_length = block_length.unwrap_or(1);
        require(cycle_length > 0 || cycle_length == AUTOTUNE, || {
            format!("interleave: cycle_length must be positive or AUTOTUNE, got {cycle_length}")
        })?;
        require(block_length > 0, || {
            format!("interleave: block_length must be positive, got {block_length}")
        })?;
        Ok(InterleaveOptions {
            cycle_length: (cycle_length != AUTOTUNE)
                .then(|| usize::try_from(cycle_length).unwrap_or(usize::MAX)),
            block_length: usize::try_from(block_length).unwrap_or(usize::MAX),
            parallelism: Parallelism::from_tf("interleave", num_parallel_calls, deterministic)?,
            output_spec: None,
            spec_from_first_element: false,
        })
    }

    /// The cycle and block lengths, checked: both positive, the cycle at most
    /// [`MAX_CYCLE`], and at most 256 when each open dataset has a thread. A cycle length
    /// not given is tf.data's (its interleave kernels'): the cores without parallelism,
    /// `min(num_parallel_calls, cores)` with it, and a third of the cores (rounded up) with
    /// AUTOTUNE parallelism.
    pub(crate) fn lengths(&self) -> Result<(usize, usize)> {
        Parallelism::check(self.parallelism, "interleave")?;
        let cycle = self.cycle_length.unwrap_or_else(|| match self.parallelism {
            None => cores(),
            Some(p) if p.is_autotune() => cores().div_ceil(3),
            Some(p) => p.num_threads().min(cores()),
        });
        require(cycle > 0, || {
            "interleave: cycle_length must be positive, got 0".to_string()
        })?;
        require(self.block_length > 0, || {
            "interleave: block_length must be positive, got 0".to_string()
        })?;
        require(cycle <= MAX_CYCLE, || {
            format!("interleave: cycle_length {cycle} is more than npyflow's {MAX_CYCLE}")
        })?;
        require(self.parallelism.is_none() || cycle <= MAX_THREADS, || {
            format!(
                "interleave: a parallel interleave runs a thread per open dataset, and \
                 cycle_length {cycle} is more than npyflow's {MAX_THREADS}"
            )
        })?;
        Ok((cycle, self.block_length))
    }
}

/// The options of [`Dataset::shuffle`](super::Dataset::shuffle) and
/// [`Dataset::global_shuffle`](super::Dataset::global_shuffle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShuffleOptions {
    /// The seed of the orders; `None` (the default) draws one when the dataset is made. A
    /// saved iterator state records it, so a restored pipeline continues the same order
    /// either way.
    pub seed: Option<u64>,
    /// Another order each pass (the default), or the same order every pass.
    pub reshuffle_each_iteration: bool,
}

impl Default for ShuffleOptions {
    fn default() -> ShuffleOptions {
        ShuffleOptions {
            seed: None,
            reshuffle_each_iteration: true,
        }
    }
}

impl ShuffleOptions {
    /// The defaults: a drawn seed, a new order each pass.
    pub fn new() -> ShuffleOptions {
        ShuffleOptions::default()
    }

    /// With the orders drawn from `seed`.
    pub fn seed(self, seed: u64) -> ShuffleOptions {
        ShuffleOptions {
            seed: Some(seed),
            ..self
        }
    }

    /// With a new order each pass (`true`) or the same one.
    pub fn reshuffle_each_iteration(self, reshuffle: bool) -> ShuffleOptions {
        ShuffleOptions {
            reshuffle_each_iteration: reshuffle,
            ..self
        }
    }
}

/// `()` converts into an options type's defaults, so that a call without options stays
/// short (`ds.batch(32, ())`); a [`Parallelism`] converts into the defaults run on it
/// (`ds.map(f, Parallelism::autotune())`).
macro_rules! defaults_from {
    ($($options:ident),* ; parallel: $($parallel:ident),*) => {
        $(
            impl From<()> for $options {
                fn from((): ()) -> $options {
                    $options::default()
                }
            }
        )*
        $(
            impl From<Parallelism> for $parallel {
                fn from(parallelism: Parallelism) -> $parallel {
                    $parallel::new().parallel(parallelism)
                }
            }
        )*
    };
}

defaults_from!(MapOptions, BatchOptions, InterleaveOptions, ShuffleOptions;
    parallel: MapOptions, BatchOptions, InterleaveOptions);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_keywords_are_checked_here() {
        assert_eq!(
            Parallelism::from_tf("map", None, Some(false)).unwrap(),
            None
        );
        let p = Parallelism::from_tf("map", Some(3), Some(false))
            .unwrap()
            .unwrap();
        assert_eq!((p.num_threads(), p.is_deterministic()), (3, false));
        assert!(Parallelism::from_tf("map", Some(AUTOTUNE), None)
            .unwrap()
            .unwrap()
            .is_autotune());
        for bad in [0, -2, i64::MIN] {
            let e = Parallelism::from_tf("batch", Some(bad), None).unwrap_err();
            assert!(e.to_string().contains("batch: num_parallel_calls"), "{e}");
        }
        assert_eq!(Parallelism::threads(100_000).num_threads(), MAX_THREADS);
        let e = InterleaveOptions::from_tf(Some(0), None, None, None).unwrap_err();
        assert!(e.to_string().contains("cycle_length"), "{e}");
        let e = InterleaveOptions::from_tf(None, Some(0), None, None).unwrap_err();
        assert!(e.to_string().contains("block_length"), "{e}");
        let o = InterleaveOptions::from_tf(None, None, None, None).unwrap();
        assert_eq!(o, InterleaveOptions::default());
        let too_many = InterleaveOptions::new()
            .cycle_length(MAX_THREADS + 1)
            .parallel(Parallelism::autotune());
        assert!(too_many.lengths().is_err());
        assert!(too_many
            .parallel(Parallelism::threads(0))
            .lengths()
            .is_err());
    }

    #[test]
    fn integer_arguments_are_checked_here() {
        assert_eq!(count_from_tf("skip", "count", 0).unwrap(), 0);
        assert_eq!(positive_from_tf("batch", "batch_size", 7).unwrap(), 7);
        let e = count_from_tf("shard", "index", -1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument: shard: index must not be negative, got -1"
        );
        for bad in [0, -3, i64::MIN] {
            let e = positive_from_tf("shuffle", "buffer_size", bad).unwrap_err();
            assert!(
                e.to_string()
                    .contains("shuffle: buffer_size must be greater than zero"),
                "{e}"
            );
        }
    }

    #[test]
    fn combining_keeps_the_most_threads_and_gives_order_up_once() {
        let a = Some(Parallelism::threads(2));
        let b = Some(Parallelism::threads(5).deterministic(false));
        let c = Parallelism::combine(a, b).unwrap();
        assert_eq!((c.num_threads(), c.is_deterministic()), (5, false));
        assert_eq!(Parallelism::combine(None, a), a);
        assert_eq!(Parallelism::combine(None, None), None);
        let tuned = Parallelism::combine(a, Some(Parallelism::autotune())).unwrap();
        assert!(tuned.is_autotune() && tuned.is_deterministic());
    }
}
