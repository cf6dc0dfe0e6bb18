//! `shuffle`: a buffer of elements, each output drawn from it at random.

use std::time::{Duration, Instant};

use super::options::ShuffleOptions;
use super::plumbing::{describe_node, require, restore, BoxIter, Dataset, ElementIter, Node};
use super::state::{Randomness, State};
use crate::element::Element;
use crate::error::Result;
use crate::rng::Rng;

struct Shuffle {
    input: Dataset,
    buffer_size: usize,
    random: Randomness,
    reshuffle_each_iteration: bool,
}

impl Node for Shuffle {
    describe_node! { name: "Shuffle"; input: input; random: random; }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let saved = restore(from, "Shuffle", |r| {
            let seed = r.num()?;
            let epoch = r.num()?;
            let rng = Rng::at(r.num()?);
            let buffer = r.elements()?;
            Ok((seed, epoch, rng, buffer, r.kid_opt()?))
        })?;
        let it = match saved {
            Some((seed, epoch, rng, buffer, input)) => {
                self.random
                    .resumed(seed, epoch, self.reshuffle_each_iteration);
                ShuffleIter {
                    input: input.map(|s| self.input.open_from(Some(s))).transpose()?,
                    size: self.buffer_size,
                    seed,
                    epoch,
                    rng,
                    buffer,
                    filling: Filling::new(),
                }
            }
            None => {
                let (seed, epoch) = (
                    self.random.seed(),
                    self.random.next_epoch(self.reshuffle_each_iteration),
                );
                ShuffleIter {
                    input: Some(self.input.open()?),
                    size: self.buffer_size,
                    seed,
                    epoch,
                    rng: Rng::keyed(seed, &[epoch]),
                    // Allocated as it fills: a large buffer_size over a short input costs
                    // nothing.
                    buffer: Vec::new(),
                    filling: Filling::new(),
                }
            }
        };
        Ok(Box::new(it))
    }
}

struct ShuffleIter {
    /// The input, until it ends.
    input: Option<BoxIter>,
    size: usize,
    seed: u64,
    epoch: u64,
    rng: Rng,
    buffer: Vec<Element>,
    filling: Filling,
}

/// How long a buffer may take to fill before the shuffle says so (tf.data's "Filling up
/// shuffle buffer" log).
const SLOW_FILL: Duration = Duration::from_secs(1);

/// The first fill of the buffer: when it started, until it is told or over.
struct Filling(Option<Instant>);

impl Filling {
    fn new() -> Filling {
        Filling(Some(Instant::now()))
    }

    /// Called as the buffer fills (`k` of `size`): once the fill has taken over
    /// [`SLOW_FILL`], says so on stderr, once.
    fn progress(&mut self, k: usize, size: usize) {
        if self.0.is_some_and(|t| t.elapsed() > SLOW_FILL) {
            self.0 = None;
            eprintln!("npyflow: Filling up shuffle buffer (this may take a while): {k} of {size}");
        }
    }

    /// The buffer is full (or its input ended): nothing more to tell.
    fn over(&mut self) {
        self.0 = None;
    }
}

impl ElementIter for ShuffleIter {
    fn next(&mut self) -> Option<Result<Element>> {
        // Fill the buffer; an input error goes out at once, in its place in the stream.
        while self.buffer.len() < self.size {
            let Some(it) = self.input.as_mut() else { break };
            match it.next() {
                Some(Ok(e)) => {
                    self.buffer.push(e);
                    self.filling.progress(self.buffer.len(), self.size);
                }
                Some(Err(e)) => return Some(Err(e)),
                None => self.input = None,
            }
        }
        self.filling.over();
        if self.buffer.is_empty() {
            return None;
        }
        let j = self.rng.below(self.buffer.len() as u64) as usize;
        Some(Ok(self.buffer.swap_remove(j)))
    }
    fn save(&self) -> Result<State> {
        let input = self.input.as_ref().map(|it| it.save()).transpose()?;
        Ok(State::new("Shuffle")
            .num(self.seed)
            .num(self.epoch)
            .num(self.rng.position())
            .elements(self.buffer.iter())?
            .kid_opt(input))
    }
}

impl Dataset {
    /// tf.data's `shuffle(buffer_size, seed, reshuffle_each_iteration)`: elements drawn at
    /// random from a buffer of the next `buffer_size` elements, each replaced by the next
    /// input element. A buffer as large as the dataset gives a uniform permutation; a
    /// buffer of 1 changes nothing. `buffer_size` must be positive.
    ///
    /// `options` ([`ShuffleOptions`], `()` for the defaults): a `seed` fixes the order (a
    /// fresh seed is drawn when `None`). With
    /// `reshuffle_each_iteration`, each pass (each epoch of a following `repeat`) has a new
    /// order, in a sequence that the seed fixes; without it, every pass has the first pass's
    /// order. As in tf.data, `shuffle(..).repeat(..)` keeps epochs apart, while
    /// `repeat(..).shuffle(..)` mixes elements of neighbouring epochs.
    ///
    /// Differs from tf.data: the orders come from npyflow's own generator, so a seed gives
    /// another permutation than it gives in TensorFlow.
    ///
    /// As in tf.data, the first element waits for the buffer to fill; when that takes over a
    /// second, the shuffle says so once on stderr ("Filling up shuffle buffer (this may take a
    /// while): k of N"). The buffer is also what an iterator's state holds
    /// ([`DatasetIter::get_state`](crate::dataset::DatasetIter::get_state)): about
    /// `buffer_size` times an element's bytes, e.g. 123 MB for `shuffle(10000)` of 64x64x3
    /// `uint8` images and 492 MB for `float32` ones. [`global_shuffle`](Dataset::global_shuffle)
    /// shuffles a random-access pipeline (arrays, `.npy` files, and `map`, `batch` ... over
    /// them) uniformly with a state of a few dozen bytes, and needs no buffer to fill.
    ///
    /// Before a parallel `map` (tf.data's usual `shuffle(N).map(f, num_parallel_calls)`),
    /// the buffer does not serialize the map: its workers take elements from it in order and
    /// hand results over in runs.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// use npyflow::dataset::ShuffleOptions;
    /// let ds = Dataset::range(0, 10, 1)?.shuffle(10, ShuffleOptions::new().seed(42))?;
    /// let mut first: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// first.sort_by_key(|s| s.parse::<i64>().unwrap());
    /// assert_eq!(first, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn shuffle(
        &self,
        buffer_size: usize,
        options: impl Into<ShuffleOptions>,
    ) -> Result<Dataset> {
        let ShuffleOptions {
            seed,
            reshuffle_each_iteration,
        } = options.into();
        require(buffer_size > 0, || {
            format!("shuffle: buffer_size must be greater than zero, got {buffer_size}")
        })?;
        Ok(Dataset::from_node(Shuffle {
            input: self.clone(),
            buffer_size,
            random: Randomness::new(seed),
            reshuffle_each_iteration,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::{Filling, SLOW_FILL};
    use std::time::Instant;

    #[test]
    fn a_slow_fill_is_told_once_and_a_finished_one_never() {
        let Some(long_ago) = Instant::now().checked_sub(SLOW_FILL * 2) else {
            return;
        };
        let mut slow = Filling(Some(long_ago));
        slow.progress(5, 10);
        assert!(slow.0.is_none(), "told, and not again");
        let mut done = Filling(Some(long_ago));
        done.over();
        done.progress(10, 10);
        assert!(done.0.is_none());
    }
}
