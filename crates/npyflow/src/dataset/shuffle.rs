//! `shuffle`: a buffer of elements, each output drawn from it at random.

use std::sync::atomic::{AtomicU64, Ordering};

use super::rng::{fresh_seed, Rng};
use super::{require, BoxIter, Cardinality, Dataset, Node};
use crate::element::{Element, ElementSpec};
use crate::error::Result;

struct Shuffle {
    input: Dataset,
    buffer_size: usize,
    seed: u64,
    reshuffle_each_iteration: bool,
    epoch: AtomicU64,
}

impl Node for Shuffle {
    fn name(&self) -> &'static str {
        "Shuffle"
    }
    fn spec(&self) -> &ElementSpec {
        self.input.element_spec()
    }
    fn cardinality(&self) -> Cardinality {
        self.input.cardinality()
    }
    fn open(&self) -> Result<BoxIter> {
        let mut input = Some(self.input.open()?);
        let epoch = if self.reshuffle_each_iteration {
            self.epoch.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        let mut rng = Rng::keyed(self.seed, &[epoch]);
        let size = self.buffer_size;
        // Allocated as it fills: a large buffer_size over a short input costs nothing.
        let mut buffer: Vec<Element> = Vec::new();
        Ok(Box::new(move || {
            // Fill the buffer; an input error goes out at once, in its place in the stream.
            while buffer.len() < size {
                let Some(it) = input.as_mut() else { break };
                match it.next() {
                    Some(Ok(e)) => buffer.push(e),
                    Some(Err(e)) => return Some(Err(e)),
                    None => input = None,
                }
            }
            if buffer.is_empty() {
                return None;
            }
            let j = rng.below(buffer.len() as u64) as usize;
            Some(Ok(buffer.swap_remove(j)))
        }))
    }
}

impl Dataset {
    /// tf.data's `shuffle(buffer_size, seed, reshuffle_each_iteration)`: elements drawn at
    /// random from a buffer of the next `buffer_size` elements, each replaced by the next
    /// input element. A buffer as large as the dataset gives a uniform permutation; a
    /// buffer of 1 changes nothing. `buffer_size` must be positive.
    ///
    /// `seed` fixes the order (a fresh seed is drawn when `None`). With
    /// `reshuffle_each_iteration`, each pass (each epoch of a following `repeat`) has a new
    /// order, in a sequence that the seed fixes; without it, every pass has the first pass's
    /// order. As in tf.data, `shuffle(..).repeat(..)` keeps epochs apart, while
    /// `repeat(..).shuffle(..)` mixes elements of neighbouring epochs.
    ///
    /// Differs from tf.data: the orders come from npyflow's own generator, so a seed gives
    /// another permutation than it gives in TensorFlow.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 10, 1)?.shuffle(10, Some(42), true)?;
    /// let mut first: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// first.sort_by_key(|s| s.parse::<i64>().unwrap());
    /// assert_eq!(first, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn shuffle(
        &self,
        buffer_size: usize,
        seed: Option<u64>,
        reshuffle_each_iteration: bool,
    ) -> Result<Dataset> {
        require(buffer_size > 0, || {
            format!("shuffle: buffer_size must be greater than zero, got {buffer_size}")
        })?;
        Ok(Dataset::from_node(Shuffle {
            input: self.clone(),
            buffer_size,
            seed: seed.unwrap_or_else(fresh_seed),
            reshuffle_each_iteration,
            epoch: AtomicU64::new(0),
        }))
    }
}
