//! Randomness in states: a random node's [`Seed`] and epoch counter, and the (seed, epoch)
//! draws a pass makes when it is created, recorded so that a restored pass draws the same.
//!
//! # How to write a random node
//! 1. Hold a [`Randomness`] (`Randomness::new(seed)`: the seed given, or one drawn when the
//!    dataset is built, and a counter of epochs) and return it from `Node::random`, so that
//!    an iterator's state records it and a restore sets it back.
//! 2. A random-access node draws its (seed, epoch) in `Node::pass` with
//!    [`Randomness::draw`]: outside a restore, its seed and the next epoch; while a pass is
//!    restored, the draw the saved pass made (replayed by the runtime, see [`with_draws`]).
//! 3. A sequential node draws in `Node::open` with [`Randomness::next_epoch`] on a fresh pass,
//!    saves the seed and epoch it used in its state, and on a restore reads them back and
//!    calls [`Randomness::resumed`], which moves the counter past the restored epoch.
//! 4. Key every random stream by (seed, epoch, position) with `Rng::keyed`, never by thread,
//!    so that the output does not depend on which thread ran first.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use super::tree::mismatch;
use crate::dataset::context;
pub(crate) use crate::dataset::context::Draw;
use crate::error::Result;

/// A random node's seed: given, or drawn when the dataset is built. Restoring a state adopts
/// the state's seed, so a pipeline built again with `seed: None` goes on with the saved
/// run's seed in its later passes too.
#[derive(Debug)]
pub(crate) struct Seed(AtomicU64);

impl Seed {
    pub(crate) fn new(seed: Option<u64>) -> Seed {
        Seed(AtomicU64::new(seed.unwrap_or_else(crate::rng::fresh_seed)))
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Takes the seed of a restored state.
    pub(crate) fn adopt(&self, seed: u64) {
        self.0.store(seed, Ordering::Relaxed);
    }
}

/// A random node's randomness: its [`Seed`] and the counter of the passes (epochs) it has
/// drawn, which an iterator's state records and a restore sets back.
#[derive(Debug)]
pub(crate) struct Randomness {
    seed: Seed,
    epochs: AtomicU64,
}

impl Randomness {
    /// `seed`, or one drawn now; no epoch drawn yet.
    pub(crate) fn new(seed: Option<u64>) -> Randomness {
        Randomness {
            seed: Seed::new(seed),
            epochs: AtomicU64::new(0),
        }
    }

    /// The seed.
    pub(crate) fn seed(&self) -> u64 {
        self.seed.get()
    }

    /// The (seed, epoch) of a new random-access pass: see [`draw`].
    pub(crate) fn draw(&self, reshuffles: bool) -> (u64, u64) {
        draw(&self.seed, &self.epochs, reshuffles)
    }

    /// The epoch of a new sequential pass: see [`next_epoch`].
    pub(crate) fn next_epoch(&self, reshuffles: bool) -> u64 {
        next_epoch(&self.epochs, reshuffles)
    }

    /// A sequential pass restored with `seed` and `epoch`: see [`resumed`].
    pub(crate) fn resumed(&self, seed: u64, epoch: u64, reshuffles: bool) {
        resumed(&self.seed, &self.epochs, seed, epoch, reshuffles);
    }

    /// The (seed, epoch) of a sequential pass: those of a restored state (`saved`), taken as
    /// [`Randomness::resumed`] takes them, or, on a fresh pass, the seed and the next epoch.
    pub(crate) fn sequential(&self, saved: Option<(u64, u64)>, reshuffles: bool) -> (u64, u64) {
        match saved {
            Some((seed, epoch)) => {
                self.resumed(seed, epoch, reshuffles);
                (seed, epoch)
            }
            None => (self.seed(), self.next_epoch(reshuffles)),
        }
    }

    /// The seed and the epoch counter, as an iterator's state records them.
    pub(crate) fn saved(&self) -> (u64, u64) {
        (self.seed.get(), self.epochs.load(Ordering::Relaxed))
    }

    /// Sets the seed and the epoch counter back to what a state recorded.
    pub(crate) fn restore(&self, (seed, epochs): (u64, u64)) {
        self.seed.adopt(seed);
        self.epochs.store(epochs, Ordering::Relaxed);
    }
}

/// A sequential pass of a random node restored with `seed` and `epoch`: the node takes the
/// seed, and its counter moves past the epoch, so the passes it opens later get new ones.
pub(crate) fn resumed(
    node_seed: &Seed,
    counter: &AtomicU64,
    seed: u64,
    epoch: u64,
    reshuffles: bool,
) {
    node_seed.adopt(seed);
    if reshuffles {
        counter.fetch_max(epoch.saturating_add(1), Ordering::Relaxed);
    }
}

/// The epoch for a new sequential pass of a random node: the next of its counter when it
/// reshuffles, 0 when it does not. (Sequential iterators save their epoch themselves.)
pub(crate) fn next_epoch(counter: &AtomicU64, reshuffles: bool) -> u64 {
    if reshuffles {
        counter.fetch_add(1, Ordering::Relaxed)
    } else {
        0
    }
}

/// The (seed, epoch) a random node uses for a new pass. Outside [`with_draws`], the node's
/// own seed and the next epoch of its counter (epoch 0 always when it does not reshuffle).
/// Inside, the draw is recorded, or replayed from a saved state; a replayed epoch moves the
/// counter past it, so the passes after a restored one get new epochs.
pub(crate) fn draw(seed: &Seed, counter: &AtomicU64, reshuffles: bool) -> (u64, u64) {
    let fresh = || Draw {
        seed: seed.get(),
        epoch: next_epoch(counter, reshuffles),
        reshuffles,
    };
    let d = context::with_draw_log(|log| {
        let Some(log) = log else {
            return fresh();
        };
        let d = match log.replay.as_mut().map(VecDeque::pop_front) {
            Some(Some(d)) if d.reshuffles == reshuffles => {
                resumed(seed, counter, d.seed, d.epoch, reshuffles);
                d
            }
            Some(_) => {
                log.failed
                    .get_or_insert_with(|| "its random draws differ".to_string());
                fresh()
            }
            None => fresh(),
        };
        log.recorded.push(d);
        d
    });
    (d.seed, d.epoch)
}

/// Runs `f` (which makes a pass) recording the draws of the random nodes it creates, or
/// replaying `replay`. Returns what `f` returned and the draws made.
pub(crate) fn with_draws<T>(
    replay: Option<Vec<Draw>>,
    f: impl FnOnce() -> T,
) -> Result<(T, Vec<Draw>)> {
    let guard = context::DrawLogGuard::start(replay);
    let out = f();
    let log = guard.finish();
    if let Some(why) = log.failed {
        return Err(mismatch(why));
    }
    if log.replay.is_some_and(|r| !r.is_empty()) {
        return Err(mismatch("it made fewer random draws"));
    }
    Ok((out, log.recorded))
}

/// Runs `f` (which makes a pass) and returns, with its result, the draws made in it, whether
/// or not an outer [`with_draws`] is recording or replaying them.
pub(crate) fn observe<T>(f: impl FnOnce() -> T) -> (T, Vec<Draw>) {
    let Some(start) = context::with_draw_log(|log| log.map(|log| log.recorded.len())) else {
        let guard = context::DrawLogGuard::start(None);
        let out = f();
        return (out, guard.finish().recorded);
    };
    let out = f();
    let draws = context::with_draw_log(|log| {
        log.and_then(|log| log.recorded.get(start..).map(<[Draw]>::to_vec))
            .unwrap_or_default()
    });
    (out, draws)
}

/// The draws of repetition `r` of a pass whose first repetition drew `first`: the same
/// seeds, and epochs moved on by `r` where the node reshuffles.
pub(crate) fn shifted(first: &[Draw], r: u64) -> Vec<Draw> {
    first
        .iter()
        .map(|d| Draw {
            epoch: if d.reshuffles {
                d.epoch.wrapping_add(r)
            } else {
                d.epoch
            },
            ..*d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_record_and_replay() {
        let counter = AtomicU64::new(5);
        let (nine, eight) = (Seed::new(Some(9)), Seed::new(Some(8)));
        let ((), rec) = with_draws(None, || {
            assert_eq!(draw(&nine, &counter, true), (9, 5));
            assert_eq!(draw(&eight, &counter, false), (8, 0));
        })
        .unwrap();
        assert_eq!(rec.len(), 2);
        let fresh = AtomicU64::new(0);
        let (one, two) = (Seed::new(Some(1)), Seed::new(Some(2)));
        let ((), again) = with_draws(Some(rec.clone()), || {
            assert_eq!(draw(&one, &fresh, true), (9, 5));
            assert_eq!(draw(&two, &fresh, false), (8, 0));
        })
        .unwrap();
        assert_eq!(again, rec);
        // The seeds were adopted.
        assert_eq!((one.get(), two.get()), (9, 8));
        // The counter moved past the replayed epoch.
        assert_eq!(fresh.load(Ordering::Relaxed), 6);
        // Too few draws, or other kinds, are mismatches.
        assert!(with_draws(Some(rec.clone()), || draw(&one, &fresh, true)).is_err());
        assert!(with_draws(Some(rec), || {
            draw(&one, &fresh, false);
            draw(&one, &fresh, false);
        })
        .is_err());
    }
}
