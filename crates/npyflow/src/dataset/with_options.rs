//! `with_options`: options for a whole pipeline (tf.data's `Options`), of which npyflow's
//! core reads the autotuning budgets.

use super::plumbing::{describe_node, BoxIter, Dataset, Node, PassRef};
use super::runtime::tuner::AutotuneOptions;
use super::state::State;
use crate::error::Result;

/// tf.data's `tf.data.Options`, as far as npyflow's core honours them: `autotune` and
/// `experimental_optimization.map_parallelization`. (The Python package's `Options` has
/// every tf.data option; `deterministic` is applied there.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// How `AUTOTUNE` stages are tuned while the pipeline runs.
    pub autotune: AutotuneOptions,
    /// tf.data's `experimental_optimization.map_parallelization` (`None`: on, as in
    /// tf.data): a map of built-in ops or a traced function followed by `batch`, neither
    /// given threads, makes its batches on `AUTOTUNE` threads, in order. Such a map has no
    /// state and its ops give each element the same values on any thread, so only the speed
    /// changes. tf.data does this for every map of a function without state; npyflow for
    /// maps it runs natively (a Python function that was not traced keeps to one thread).
    pub map_parallelization: Option<bool>,
}

impl Options {
    /// Nothing set.
    pub fn new() -> Options {
        Options::default()
    }

    /// With these autotuning options.
    pub fn autotune(self, autotune: AutotuneOptions) -> Options {
        Options { autotune, ..self }
    }

    /// With map parallelization on or off (see [`Options::map_parallelization`]).
    pub fn map_parallelization(self, on: bool) -> Options {
        Options {
            map_parallelization: Some(on),
            ..self
        }
    }

    /// Whether maps of native ops run on `AUTOTUNE` threads when given none (on unless
    /// turned off).
    pub fn parallelizes_maps(&self) -> bool {
        self.map_parallelization != Some(false)
    }
}

/// The input, with options for the whole pipeline.
struct WithOptions {
    input: Dataset,
    options: Options,
}

impl Node for WithOptions {
    describe_node! { name: "Options"; input: input; }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        self.input.open_from(from)
    }
    fn is_random_access(&self) -> bool {
        self.input.is_random_access()
    }
    fn pass(&self) -> Option<PassRef> {
        self.input.pass()
    }
}

impl Dataset {
    /// tf.data's `with_options`: `options` apply to the whole pipeline this dataset ends,
    /// merged with those set earlier in it (the later ones win where both set an option), as
    /// in tf.data.
    ///
    /// ```
    /// use npyflow::dataset::{AutotuneOptions, Options};
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 4, 1)?
    ///     .with_options(Options::new().autotune(AutotuneOptions::new().cpu_budget(4)))?
    ///     .with_options(Options::new().autotune(AutotuneOptions::new().ram_budget(1 << 30)))?;
    /// let o = ds.options();
    /// assert_eq!((o.autotune.cpu_budget, o.autotune.ram_budget), (Some(4), Some(1 << 30)));
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn with_options(&self, options: Options) -> Result<Dataset> {
        Ok(Dataset::from_node(WithOptions {
            input: self.clone(),
            options,
        }))
    }

    /// The options of the pipeline: those of every [`with_options`](Dataset::with_options)
    /// in it, the later on top.
    pub fn options(&self) -> Options {
        let mut out = Options::default();
        self.walk(&mut |n| {
            if let Some(w) = n.as_any().downcast_ref::<WithOptions>() {
                out.autotune = out.autotune.merge(w.options.autotune);
                if w.options.map_parallelization.is_some() {
                    out.map_parallelization = w.options.map_parallelization;
                }
            }
        });
        out
    }
}
