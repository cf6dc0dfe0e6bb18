//! `global_shuffle`: a uniform permutation of a random-access dataset, drawn per epoch,
//! with no buffer.

use std::sync::Arc;

use super::options::{Parallelism, ShuffleOptions};
use super::plumbing::{describe_node, require, Dataset, Node, Pass, PassRef};
use super::state::Randomness;
use crate::buffer::BufferPool;
use crate::element::Element;
use crate::error::Result;
use crate::rng::{mix, Rng};

const ROUNDS: usize = 6;

/// A pseudo-random permutation of `0..n`, computed index by index in O(1) memory: a Feistel
/// network over the smallest even number of bits that covers `n`, walked until it lands
/// inside `0..n` (at most a few steps on average, since the domain is under 4n).
#[derive(Clone, Debug)]
pub(crate) struct Permutation {
    n: u64,
    half_bits: u32,
    keys: [u64; ROUNDS],
}

impl Permutation {
    pub(crate) fn new(n: u64, seed: u64, epoch: u64) -> Permutation {
        let bits = 64 - n.saturating_sub(1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        let mut rng = Rng::keyed(seed, &[epoch, 0x5eed]);
        let mut keys = [0u64; ROUNDS];
        for k in &mut keys {
            *k = rng.next_u64();
        }
        Permutation { n, half_bits, keys }
    }

    fn round(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut left, mut right) = (x >> self.half_bits, x & mask);
        for &k in &self.keys {
            let f = mix(right ^ k) & mask;
            (left, right) = (right, left ^ f);
        }
        (left << self.half_bits) | right
    }

    /// Where position `i` (`i < n`) takes its element from.
    pub(crate) fn apply(&self, i: u64) -> u64 {
        let mut x = self.round(i);
        while x >= self.n {
            x = self.round(x);
        }
        x
    }
}

struct GlobalShuffle {
    input: Dataset,
    random: Randomness,
    reshuffle_each_iteration: bool,
}

impl Node for GlobalShuffle {
    describe_node! { name: "GlobalShuffle"; input: input; random: random; }
    fn is_random_access(&self) -> bool {
        true
    }
    fn pass(&self) -> Option<PassRef> {
        let inner = self.input.pass()?;
        let (seed, epoch) = self.random.draw(self.reshuffle_each_iteration);
        let perm = Permutation::new(inner.len(), seed, epoch);
        Some(Arc::new(ShufflePass { inner, perm }))
    }
}

struct ShufflePass {
    inner: PassRef,
    perm: Permutation,
}

impl Pass for ShufflePass {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn get(&self, index: u64) -> Result<Element> {
        self.inner.get(self.perm.apply(index))
    }
    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        let mapped: Vec<u64> = indices.iter().map(|&i| self.perm.apply(i)).collect();
        self.inner.gather(&mapped, pool)
    }
    fn parallelism(&self) -> Option<Parallelism> {
        self.inner.parallelism()
    }
}

impl Dataset {
    /// A uniform shuffle of a random-access dataset (tensor slices, `.npy` rows, and maps,
    /// takes, shards, zips of them): a seeded permutation of the indices, computed index by
    /// index, with no buffer of elements and O(1) memory. With `reshuffle_each_iteration`
    /// each pass draws a new permutation, in a sequence the seed fixes.
    ///
    /// Where tf.data's `shuffle(buffer_size)` needs a buffer as large as the dataset for a
    /// uniform shuffle (all of it in memory), this reads each element once, in the shuffled
    /// order. It matches tf.data's `tf.data.experimental.global_shuffle` in intent; the
    /// orders differ. A dataset that is not random-access is refused: use
    /// [`shuffle`](Dataset::shuffle).
    ///
    /// ```
    /// use npyflow::Dataset;
    /// use npyflow::dataset::ShuffleOptions;
    /// let ds = Dataset::range(0, 10, 1)?.global_shuffle(ShuffleOptions::new().seed(0))?;
    /// let mut v: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// v.sort_by_key(|s| s.parse::<i64>().unwrap());
    /// assert_eq!(v.concat(), "0123456789");
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn global_shuffle(&self, options: impl Into<ShuffleOptions>) -> Result<Dataset> {
        let ShuffleOptions {
            seed,
            reshuffle_each_iteration,
        } = options.into();
        require(self.is_random_access(), || {
            format!(
                "global_shuffle needs a random-access dataset, and a {} dataset is not one; \
                 use shuffle(buffer_size)",
                self.node().name()
            )
        })?;
        Ok(Dataset::from_node(GlobalShuffle {
            input: self.clone(),
            random: Randomness::new(seed),
            reshuffle_each_iteration,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_bijections() {
        for n in [0u64, 1, 2, 3, 5, 16, 17, 100, 1000, 4097] {
            for seed in 0..3 {
                let p = Permutation::new(n, seed, 7);
                let mut seen: Vec<u64> = (0..n).map(|i| p.apply(i)).collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n={n} seed={seed}");
            }
        }
    }

    #[test]
    fn positions_are_spread_evenly() {
        // Where element 0 lands, over many seeds: each of 8 places about equally often
        // (chi-square under 24.3, p = 0.001 for 7 degrees of freedom).
        let mut counts = [0u32; 8];
        for seed in 0..8000 {
            let p = Permutation::new(8, seed, 0);
            let pos = (0..8).position(|i| p.apply(i) == 0).unwrap();
            counts[pos] += 1;
        }
        let chi: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - 1000.0).powi(2) / 1000.0)
            .sum();
        assert!(chi < 24.3, "{counts:?}");
    }
}
