//! `block_shuffle`: blocks of consecutive elements permuted, then elements shuffled within
//! windows of a few blocks: a shuffle whose reads stay in large contiguous pieces, for data
//! on object storage.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::global_shuffle::Permutation;
use super::options::Parallelism;
use super::plumbing::{describe_node, require, Dataset, Node, Pass, PassRef};
use super::state::Randomness;
use crate::buffer::BufferPool;
use crate::element::Element;
use crate::error::Result;
use crate::rng::mix;

struct BlockShuffle {
    input: Dataset,
    block_size: u64,
    window: u64,
    random: Randomness,
    reshuffle_each_iteration: bool,
}

impl Node for BlockShuffle {
    describe_node! { name: "BlockShuffle"; input: input; random: random; }
    fn is_random_access(&self) -> bool {
        true
    }
    fn pass(&self) -> Option<PassRef> {
        let inner = self.input.pass()?;
        let (seed, epoch) = self.random.draw(self.reshuffle_each_iteration);
        Some(Arc::new(BlockPass::new(
            inner,
            self.block_size,
            self.window,
            seed,
            epoch,
        )))
    }
}

/// One pass: the blocks' order and the windows' starts, fixed for the pass.
struct BlockPass {
    inner: PassRef,
    n: u64,
    block_size: u64,
    window: u64,
    seed: u64,
    epoch: u64,
    blocks: Permutation,
    nblocks: u64,
    /// The output position where each window starts, and one more entry: the total.
    starts: Vec<u64>,
    /// The windows whose blocks the input was told of (`will_read`), as one more than the
    /// last one.
    hinted: AtomicU64,
}

impl BlockPass {
    fn new(inner: PassRef, block_size: u64, window: u64, seed: u64, epoch: u64) -> BlockPass {
        let n = inner.len();
        let nblocks = n.div_ceil(block_size);
        let blocks = Permutation::new(nblocks, seed, epoch);
        let nwindows = nblocks.div_ceil(window);
        // Every block holds block_size elements but the last (input) block, which may hold
        // fewer: the window it lands in is that much shorter.
        let short = n - (nblocks.saturating_sub(1)) * block_size;
        let mut starts = Vec::with_capacity(nwindows as usize + 1);
        let mut at = 0u64;
        for w in 0..nwindows {
            starts.push(at);
            let lo = w * window;
            let hi = ((w + 1) * window).min(nblocks);
            let has_short = (lo..hi).any(|s| blocks.apply(s) == nblocks - 1);
            at += (hi - lo) * block_size;
            if has_short {
                at -= block_size - short;
            }
        }
        starts.push(at);
        debug_assert_eq!(at, n);
        BlockPass {
            inner,
            n,
            block_size,
            window,
            seed,
            epoch,
            blocks,
            nblocks,
            starts,
            hinted: AtomicU64::new(0),
        }
    }

    /// The input blocks of window `w`, in the order their elements are laid out in it: the
    /// permuted order, with the short last block (if there) moved to the end.
    fn window_blocks(&self, w: u64) -> Vec<u64> {
        let lo = w * self.window;
        let hi = ((w + 1) * self.window).min(self.nblocks);
        let mut out: Vec<u64> = (lo..hi).map(|s| self.blocks.apply(s)).collect();
        if let Some(p) = out.iter().position(|&b| b == self.nblocks - 1) {
            let last = out.remove(p);
            out.push(last);
        }
        out
    }

    /// The window output position `i` lies in.
    fn window_of(&self, i: u64) -> u64 {
        (self.starts.partition_point(|&s| s <= i) - 1) as u64
    }

    /// Where output position `i` takes its element from.
    fn source(&self, i: u64) -> u64 {
        Window::new(self, self.window_of(i)).source(i)
    }

    /// Where each of `indices` takes its element from. The positions of a batch lie in one
    /// window or a few, so each window's permutation and blocks are worked out once for the
    /// run of positions in it, not once a position.
    fn sources(&self, indices: &[u64]) -> Vec<u64> {
        let mut out = Vec::with_capacity(indices.len());
        let mut window: Option<Window> = None;
        for &i in indices {
            let w = match &window {
                Some(win) if win.holds(i) => win,
                _ => window.insert(Window::new(self, self.window_of(i))),
            };
            out.push(w.source(i));
        }
        out
    }

    /// Tells the input which blocks come next, in order: those of the window of position
    /// `i` and of the windows after it, about 64 blocks (at least one window ahead), each
    /// window once. The input fetches them as its budget allows.
    fn hint(&self, i: u64) {
        let w = self.window_of(i);
        let nwindows = self.starts.len() as u64 - 1;
        let ahead = (64 / self.window).clamp(1, 8);
        let upto = (w + 1 + ahead).min(nwindows);
        let done = self.hinted.fetch_max(upto, Ordering::Relaxed);
        if done >= upto {
            return;
        }
        let mut ranges: Vec<Range<u64>> = Vec::new();
        for ww in done.max(w)..upto {
            for b in self.window_blocks(ww) {
                ranges.push(b * self.block_size..((b + 1) * self.block_size).min(self.n));
            }
        }
        self.inner.will_read(&ranges);
    }
}

/// One window of a pass: its positions, the permutation within it, and its input blocks.
struct Window {
    start: u64,
    end: u64,
    block_size: u64,
    within: Permutation,
    blocks: Vec<u64>,
}

impl Window {
    fn new(pass: &BlockPass, w: u64) -> Window {
        let start = pass.starts[w as usize];
        let end = pass.starts[w as usize + 1];
        Window {
            start,
            end,
            block_size: pass.block_size,
            within: Permutation::new(end - start, mix(pass.seed ^ mix(w + 1)), pass.epoch),
            blocks: pass.window_blocks(w),
        }
    }

    fn holds(&self, i: u64) -> bool {
        (self.start..self.end).contains(&i)
    }

    /// Where position `i` of this window takes its element from.
    fn source(&self, i: u64) -> u64 {
        let k = self.within.apply(i - self.start);
        self.blocks[(k / self.block_size) as usize] * self.block_size + k % self.block_size
    }
}

impl Pass for BlockPass {
    fn len(&self) -> u64 {
        self.n
    }
    fn get(&self, index: u64) -> Result<Element> {
        self.hint(index);
        self.inner.get(self.source(index))
    }
    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        if let Some(&first) = indices.first() {
            self.hint(first);
        }
        let mapped = self.sources(indices);
        self.inner.gather(&mapped, pool)
    }
    fn parallelism(&self) -> Option<Parallelism> {
        self.inner.parallelism()
    }
}

impl Dataset {
    /// A shuffle for data read by range (object storage, large files): the input's elements
    /// are cut into blocks of `block_size` consecutive elements, the blocks are put in a
    /// random order, and the elements of each run of `window` consecutive blocks (in that
    /// order) are shuffled among themselves. Every element comes once per pass; the order
    /// is fixed by the seed (a fresh one when `None`) and redrawn each pass with
    /// `reshuffle_each_iteration`. Like [`global_shuffle`](Dataset::global_shuffle), the
    /// input must be random-access, nothing is buffered, and an iterator's state is its
    /// position and the seed, so a run resumes exactly where it stopped.
    ///
    /// Reads stay in `window` contiguous pieces of `block_size` elements at a time, and a
    /// source on object storage is told which blocks come next, so it fetches each block
    /// once, in large requests, ahead of the consumer. With the block size of the source's
    /// reads (`block_bytes` / row size; 8 MiB by default), a pass costs what a sequential
    /// read does, as long as the source's `read_ahead_bytes` holds two windows (one in use,
    /// one fetched ahead; with less, blocks are fetched again). The first element waits for
    /// its whole window to arrive: a small window (4 blocks) starts fast.
    ///
    /// **Quality.** This is not a uniform permutation of the elements. Elements of one
    /// block always land in the same window of `window * block_size` consecutive output
    /// positions, and within a window every arrangement is equally likely. So a batch of
    /// `b` elements holds, on average, about `b / window` elements from the same block as
    /// any one of its elements (`(b - 1)(block_size - 1) / (window * block_size - 1)`
    /// exactly), where a uniform shuffle would give about `b * block_size / n`: with
    /// `window = 16` and batches of 64, about 4 neighbours from the same block. If
    /// consecutive elements of the input are similar (sorted by class, by time), raise
    /// `window`, shrink `block_size`, or use `global_shuffle` (uniform, one small read per
    /// element). tf.data has no block shuffle; its `shuffle(buffer_size)` over a sequential
    /// read is the nearest (a window of `buffer_size` elements, sliding).
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 100, 1)?.block_shuffle(10, 3, Some(7), true)?;
    /// let mut v: Vec<i64> = ds.to_vec()?.iter().map(|e| e.to_string().parse().unwrap()).collect();
    /// assert_ne!(v, (0..100).collect::<Vec<_>>());
    /// v.sort();
    /// assert_eq!(v, (0..100).collect::<Vec<_>>());
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn block_shuffle(
        &self,
        block_size: u64,
        window: u64,
        seed: Option<u64>,
        reshuffle_each_iteration: bool,
    ) -> Result<Dataset> {
        require(block_size > 0, || {
            format!("block_shuffle: block_size must be positive, got {block_size}")
        })?;
        require(window > 0, || {
            format!("block_shuffle: window must be positive, got {window}")
        })?;
        require(self.is_random_access(), || {
            format!(
                "block_shuffle needs a random-access dataset, and a {} dataset is not one; \
                 use shuffle(buffer_size)",
                self.node().name()
            )
        })?;
        Ok(Dataset::from_node(BlockShuffle {
            input: self.clone(),
            block_size,
            window,
            random: Randomness::new(seed),
            reshuffle_each_iteration,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(n: i64, block: u64, window: u64, seed: u64) -> Vec<i64> {
        Dataset::range(0, n, 1)
            .unwrap()
            .block_shuffle(block, window, Some(seed), false)
            .unwrap()
            .to_vec()
            .unwrap()
            .iter()
            .map(|e| e.to_string().parse().unwrap())
            .collect()
    }

    #[test]
    fn every_element_once_and_blocks_stay_in_their_window() {
        for (n, block, window) in [
            (0, 3, 2),
            (1, 3, 2),
            (10, 3, 2),
            (100, 7, 3),
            (1000, 16, 4),
            (97, 100, 2),
            (50, 1, 50),
        ] {
            for seed in 0..4 {
                let v = order(n, block, window, seed);
                let mut sorted = v.clone();
                sorted.sort_unstable();
                assert_eq!(
                    sorted,
                    (0..n).collect::<Vec<_>>(),
                    "n={n} block={block} window={window}"
                );
                // Each input block's elements all sit in one window of at most
                // block * window consecutive output positions.
                let mut span: std::collections::HashMap<u64, (usize, usize)> = Default::default();
                for (pos, &x) in v.iter().enumerate() {
                    let e = span.entry(x as u64 / block).or_insert((pos, pos));
                    e.0 = e.0.min(pos);
                    e.1 = e.1.max(pos);
                }
                for (b, (lo, hi)) in span {
                    assert!(
                        ((hi - lo) as u64) < block * window,
                        "n={n} block {b}: {lo}..={hi}"
                    );
                }
            }
        }
    }

    #[test]
    fn batches_gather_the_same_order_as_elements_one_by_one() {
        // A batch reads its positions by `gather` (windows worked out once a run of
        // positions), a lone element by `get` (once a position): the same order.
        for (n, block, window, batch) in [(100, 7, 3, 8), (1000, 16, 4, 64), (97, 100, 2, 5)] {
            for seed in 0..3 {
                let one_by_one = order(n, block, window, seed);
                // Tensor slices gather a batch's rows by index (a range makes each one).
                let slices = crate::Tensor::from_vec((0..n).collect::<Vec<i64>>(), &[n as usize]);
                let batched: Vec<i64> = Dataset::from_tensor_slices(slices.unwrap())
                    .unwrap()
                    .block_shuffle(block, window, Some(seed), false)
                    .unwrap()
                    .batch(batch, ())
                    .unwrap()
                    .to_vec()
                    .unwrap()
                    .into_iter()
                    .flat_map(|e| e.into_tensor().unwrap().view::<i64>().unwrap().to_vec())
                    .collect();
                assert_eq!(batched, one_by_one, "n={n} block={block} window={window}");
            }
        }
    }

    #[test]
    fn within_a_window_positions_are_spread_evenly() {
        // Where element 0 lands, over many seeds, with 2 blocks of 4 and a window of 2: any of
        // the 8 positions, about equally often (chi-square under 24.3, p = 0.001, 7 dof).
        let mut counts = [0u32; 8];
        for seed in 0..4000 {
            let v = order(8, 4, 2, seed);
            counts[v.iter().position(|&x| x == 0).unwrap()] += 1;
        }
        let chi: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - 500.0).powi(2) / 500.0)
            .sum();
        assert!(chi < 24.3, "{counts:?}");
    }
}
