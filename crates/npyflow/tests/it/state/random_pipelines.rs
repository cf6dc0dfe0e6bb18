//! Iterator state: over random pipelines (random transformations and parameters, 1 to 8
//! threads), an iterator restored at any point gives exactly what the uninterrupted one gives
//! after that point, in a pipeline built again from scratch (as a restarted program would,
//! with new seeds where none were given: the state carries them).

use npyflow::dataset::{BatchOptions, InterleaveOptions, Parallelism, ShuffleOptions};
use std::time::Duration;

use npyflow::{ops, DType, Dataset, Element, Error, Tensor};
use proptest::prelude::*;

use crate::common::{add, batch_on, map_on, restored, save_after, show};

#[derive(Clone, Debug)]
enum Step {
    /// A closure map: sequential, or with threads and order kept or not.
    Map(Option<(i64, bool)>),
    MapOp(Option<i64>),
    /// A batch (and, when set, an unbatch after it).
    Batch(usize, bool, Option<i64>, bool),
    /// A global shuffle where the pipeline is random-access, else a buffer shuffle.
    Shuffle(Option<u64>, bool, usize),
    Filter,
    Interleave(i64, i64, bool),
    Prefetch(i64),
    Repeat(u64),
    Take(i64),
    Skip(i64),
    Shard(u64, u64),
    Cache,
    Sample(Option<u64>),
    Enumerate,
    /// One worker's batches (batch size, workers, worker), where the pipeline is
    /// random-access.
    Distributed(usize, u64, u64),
}

fn step() -> impl Strategy<Value = Step> {
    let threads = || prop::option::of(1i64..9);
    prop_oneof![
        prop::option::of((1i64..9, any::<bool>())).prop_map(Step::Map),
        threads().prop_map(Step::MapOp),
        (1usize..6, any::<bool>(), threads(), any::<bool>())
            .prop_map(|(b, d, t, u)| Step::Batch(b, d, t, u)),
        (prop::option::of(0u64..1000), any::<bool>(), 1usize..9)
            .prop_map(|(s, r, b)| Step::Shuffle(s, r, b)),
        Just(Step::Filter),
        (1i64..4, 1i64..3, any::<bool>()).prop_map(|(c, b, p)| Step::Interleave(c, b, p)),
        (0i64..4).prop_map(Step::Prefetch),
        (1u64..3).prop_map(Step::Repeat),
        (0i64..40).prop_map(Step::Take),
        (0i64..10).prop_map(Step::Skip),
        (1u64..4)
            .prop_flat_map(|n| (Just(n), 0..n))
            .prop_map(|(n, i)| Step::Shard(n, i)),
        Just(Step::Cache),
        prop::option::of(0u64..1000).prop_map(Step::Sample),
        Just(Step::Enumerate),
        (1usize..5, 1u64..4)
            .prop_flat_map(|(b, w)| (Just(b), Just(w), 0..w))
            .prop_map(|(b, w, i)| Step::Distributed(b, w, i)),
    ]
}

/// The first tensor's first byte: a cheap value to filter and sleep on.
fn first_byte(e: &Element) -> u8 {
    e.tensors()
        .first()
        .and_then(|t| t.as_bytes().first().copied())
        .unwrap_or(0)
}

/// Builds the pipeline; whether its order is fixed (no step gives order up).
fn build(n: i64, steps: &[Step]) -> (Dataset, bool) {
    let mut ds = Dataset::range(0, n, 1).unwrap();
    let mut ordered = true;
    for (k, s) in steps.iter().enumerate() {
        // Order given up only at the end: a step after it (enumerate, batch) would make
        // elements that depend on the order.
        let last = k + 1 == steps.len();
        ds = match *s {
            Step::Map(par) => {
                let f = |e: Element| {
                    // Uneven work, so threads finish out of order.
                    std::thread::sleep(Duration::from_micros(u64::from(first_byte(&e) % 4) * 150));
                    add(e, 1)
                };
                match par {
                    Some((t, det)) => {
                        let det = det || !last;
                        ordered &= det;
                        ds.map(f, Parallelism::threads(t as usize).deterministic(det))
                            .unwrap()
                    }
                    None => ds.map(f, ()).unwrap(),
                }
            }
            Step::MapOp(t) => ds.map(ops::cast(DType::Int32), map_on(t)).unwrap(),
            Step::Batch(b, d, t, unbatch) => {
                let batched = ds.batch(b, batch_on(d, t)).unwrap();
                if unbatch {
                    batched.unbatch().unwrap()
                } else {
                    batched
                }
            }
            Step::Shuffle(seed, reshuffle, _) if ds.is_random_access() => ds
                .global_shuffle(ShuffleOptions {
                    seed,
                    reshuffle_each_iteration: reshuffle,
                })
                .unwrap(),
            Step::Shuffle(seed, reshuffle, buffer) => ds
                .shuffle(
                    buffer,
                    ShuffleOptions {
                        seed,
                        reshuffle_each_iteration: reshuffle,
                    },
                )
                .unwrap(),
            Step::Filter => ds.filter(|e| Ok(first_byte(e) % 3 != 0)),
            Step::Interleave(c, b, parallel) => {
                let f = |e: Element| {
                    let twice = add(e.clone(), 100)?;
                    Dataset::from_tensors(e).concatenate(&Dataset::from_tensors(twice))
                };
                if parallel {
                    ds.interleave(
                        f,
                        InterleaveOptions::new()
                            .cycle_length(c as usize)
                            .block_length(b as usize)
                            .parallel(Parallelism::threads(c as usize)),
                    )
                    .unwrap()
                } else {
                    ds.interleave(
                        f,
                        InterleaveOptions::new()
                            .cycle_length(c as usize)
                            .block_length(b as usize),
                    )
                    .unwrap()
                }
            }
            Step::Prefetch(k) => ds.prefetch(k).unwrap(),
            Step::Repeat(k) => ds.repeat(Some(k)),
            Step::Take(k) => ds.take(k),
            Step::Skip(k) => ds.skip(k),
            Step::Shard(n, i) => ds.shard(n, i).unwrap(),
            Step::Cache => ds.cache(None::<&str>).unwrap(),
            Step::Sample(seed) => {
                let other = ds.map(|e| add(e, 1000), ()).unwrap();
                Dataset::sample_from_datasets(vec![ds, other], Some(vec![0.3, 0.7]), seed, false)
                    .unwrap()
            }
            Step::Enumerate => ds.enumerate(0),
            Step::Distributed(b, w, i) if ds.is_random_access() => {
                ds.distributed_batch(b, w, i).unwrap()
            }
            Step::Distributed(..) => ds,
        };
    }
    (ds, ordered)
}

proptest! {
    #![proptest_config(crate::common::proptest_config(160))]

    #[test]
    fn restoring_anywhere_continues_the_run(
        n in 0i64..50,
        steps in prop::collection::vec(step(), 0..6),
        at in 0usize..80,
    ) {
        let (ds, ordered) = build(n, &steps);
        let mut it = ds.iter();
        let head: Vec<String> = it.by_ref().take(at).map(show).collect();
        let state = it.get_state().unwrap();
        let mut rest: Vec<String> = it.map(show).collect();

        // A program started again: the pipeline built anew, then restored.
        let (again, _) = build(n, &steps);
        let mut resumed = again.iter();
        resumed.set_state(&state).unwrap();
        let mut restored: Vec<String> = resumed.map(show).collect();
        if !ordered {
            // Order given up: the same elements, in any order.
            rest.sort();
            restored.sort();
        }
        prop_assert_eq!(&restored, &rest, "{:?} restored after {} of {}", steps, head.len(), head.len() + rest.len());
    }
}

#[test]
fn restoring_a_random_access_pipeline_keeps_the_state_small() {
    // A million rows, shuffled, mapped in parallel, batched and prefetched: the state is a
    // position and the shuffle's seed and epoch, whatever the point.
    let x = Tensor::from_vec((0..1_000_000i64).collect(), &[1_000_000]).unwrap();
    let ds = Dataset::from_tensor_slices(x)
        .unwrap()
        .global_shuffle(())
        .unwrap()
        .map(|e| add(e, 1), Parallelism::threads(4))
        .unwrap()
        .batch(64, BatchOptions::new().drop_remainder(true))
        .unwrap()
        .prefetch(2)
        .unwrap();
    assert!(ds.is_random_access());
    let mut it = ds.iter();
    let _ = it.by_ref().take(1000).count();
    let state = it.get_state().unwrap();
    assert!(state.len() < 256, "{} bytes", state.len());
    let next = it.next().unwrap().unwrap().to_string();
    let mut resumed = ds.iter();
    resumed.set_state(&state).unwrap();
    assert_eq!(resumed.next().unwrap().unwrap().to_string(), next);
}

#[test]
fn a_buffer_shuffle_state_is_bounded_by_its_buffer() {
    let ds = Dataset::range(0, 100_000, 1)
        .unwrap()
        .filter(|_| Ok(true))
        .shuffle(10, ShuffleOptions::new().seed(3))
        .unwrap();
    let mut it = ds.iter();
    let _ = it.by_ref().take(50_000).count();
    let state = it.get_state().unwrap();
    // Ten int64 scalars, each a tiny .npy, and a few numbers.
    assert!(state.len() < 2_000, "{} bytes", state.len());
}

#[test]
fn states_from_other_pipelines_are_refused() {
    let a = Dataset::range(0, 10, 1).unwrap().batch(2, ()).unwrap();
    let b = Dataset::range(0, 10, 1).unwrap().batch(3, ()).unwrap();
    let c = Dataset::range(0, 10, 1)
        .unwrap()
        .shuffle(4, ShuffleOptions::new().seed(1))
        .unwrap()
        .batch(2, ())
        .unwrap();
    let mut it = a.iter();
    it.next();
    let state = it.get_state().unwrap();
    for other in [&b, &c] {
        let mut o = other.iter();
        let err = o.set_state(&state).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert!(
            err.to_string().contains("does not fit this pipeline"),
            "{err}"
        );
        // The refused iterator is untouched: it starts from the beginning.
        assert!(o.next().is_some());
    }
    let mut damaged = state.clone();
    let last = damaged.len() - 6;
    damaged[last] ^= 0x40;
    let err = a.iter().set_state(&damaged).unwrap_err().to_string();
    assert!(err.contains("checksum"), "{err}");
    assert!(a.iter().set_state(b"not a state").is_err());
}

#[test]
fn restored_epochs_move_the_counters_on() {
    // A reshuffling global shuffle restored in a new pipeline: the pass after the restored
    // one is a new epoch, not a repeat of it.
    let ds = || {
        Dataset::range(0, 50, 1)
            .unwrap()
            .global_shuffle(ShuffleOptions::new().seed(11))
            .unwrap()
    };
    let first = ds();
    let mut it = first.iter();
    it.next();
    let state = it.get_state().unwrap();
    let restored_ds = ds();
    let mut restored = restored_ds.iter();
    restored.set_state(&state).unwrap();
    let restored_rest: Vec<String> = restored.map(show).collect();
    let next_epoch: Vec<String> = restored_ds.iter().map(show).collect();
    assert_eq!(restored_rest.len(), 49);
    assert_ne!(next_epoch[1..], restored_rest[..]);
}

#[test]
fn generators_restore_by_counting() {
    let make = || {
        Dataset::from_generator(
            npyflow::ElementSpec::Tensor(npyflow::TensorSpec {
                dtype: DType::Int64,
                shape: npyflow::PartialShape::known(&[]),
            }),
            || {
                Ok(
                    Box::new((0..10i64).map(|i| Ok(Tensor::scalar(i * i).into())))
                        as Box<dyn Iterator<Item = npyflow::Result<Element>> + Send>,
                )
            },
        )
    };
    let (_, state, rest) = save_after(&make(), 4);
    assert_eq!(rest, ["16", "25", "36", "49", "64", "81"]);
    assert_eq!(restored(&make, &state), rest);
}

#[test]
fn random_ops_draw_from_seed_epoch_and_index() {
    let build = |threads: Option<i64>| {
        let ds = Dataset::range(0, 64, 1).unwrap().batch(4, ()).unwrap();
        ds.map(ops::random_flip(0, 5), map_on(threads)).unwrap()
    };
    let passes = |ds: &Dataset| -> Vec<Vec<String>> {
        (0..3).map(|_| ds.iter().map(show).collect()).collect()
    };
    let one = passes(&build(None));
    // Whatever the threads, the same flips: a draw depends on where it is, not who makes it.
    for t in [1, 3, 8] {
        assert_eq!(passes(&build(Some(t))), one, "{t} threads");
    }
    // A new draw each epoch.
    assert_ne!(one[0], one[1]);
    assert_ne!(one[1], one[2]);
    // And a restored pass draws as the saved one did.
    let ds = build(Some(4));
    let _ = ds.iter().count();
    let mut it = ds.iter(); // the second epoch
    let _ = it.by_ref().take(5).count();
    let state = it.get_state().unwrap();
    let mut again = build(None).iter();
    again.set_state(&state).unwrap();
    let rest: Vec<String> = again.map(show).collect();
    assert_eq!(rest, one[1][5..]);
}

/// A pipeline with a state of every kind of part: positions, a shuffle buffer, pending
/// parallel results, an interleave's slots, a window's buffer, a scan's state.
fn busy_pipeline() -> Dataset {
    let base = Dataset::range(0, 200, 1).unwrap();
    let streamed = base
        .filter(|e| Ok(first_byte(e) % 7 != 0))
        .shuffle(5, ShuffleOptions::new().seed(2))
        .unwrap()
        .map(|e| add(e, 3), Parallelism::threads(3))
        .unwrap()
        .interleave(
            |e| Ok(Dataset::from_tensors(e).repeat(Some(2))),
            InterleaveOptions::new().cycle_length(2),
        )
        .unwrap()
        .scan(Tensor::scalar(0i64).into(), |s, e| Ok((add(s, 1)?, e)))
        .unwrap()
        .window(3, Some(2), 1, false)
        .unwrap()
        .flat_map(|w| w.into_dataset()?.batch(3, ()), None)
        .unwrap();
    let shuffled = base
        .global_shuffle(ShuffleOptions::new().seed(4))
        .unwrap()
        .batch(3, ())
        .unwrap();
    Dataset::sample_from_datasets(vec![streamed, shuffled], None, Some(1), false)
        .unwrap()
        .prefetch(2)
        .unwrap()
}

proptest! {
    #![proptest_config(crate::common::proptest_config(400))]

    /// Damaged states that still pass the checksum (as a forger could make them) are
    /// refused or restored, never a panic, and a restored pass reads without one.
    #[test]
    fn forged_states_never_panic(
        at in 0usize..60,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let ds = busy_pipeline();
        let mut it = ds.iter();
        let _ = it.by_ref().take(at).count();
        let mut state = it.get_state().unwrap();
        // Keep the frame (mark, version, the pipeline's stamp), damage the tree, which starts
        // with the length-prefixed tag "Iterator"; then mend the checksum.
        let tag = state.windows(8).position(|w| w == b"Iterator").expect("the root tag");
        let body = tag - 8..state.len() - 4;
        for (i, b) in edits {
            let k = body.start + i.index(body.len());
            state[k] = b;
        }
        let n = state.len() - 4;
        let crc = crc32fast::hash(&state[..n]).to_le_bytes();
        state[n..].copy_from_slice(&crc);
        let mut again = busy_pipeline().iter();
        if again.set_state(&state).is_ok() {
            let _ = again.take(300).count();
        }
    }
}

#[test]
fn a_busy_pipeline_restores_at_every_point() {
    let full: Vec<String> = busy_pipeline().iter().map(show).collect();
    assert!(full.len() > 100);
    for at in (0..full.len()).step_by(7) {
        let ds = busy_pipeline();
        let mut it = ds.iter();
        let _ = it.by_ref().take(at).count();
        let state = it.get_state().unwrap();
        let mut again = busy_pipeline().iter();
        again.set_state(&state).unwrap();
        let rest: Vec<String> = again.map(show).collect();
        assert_eq!(rest, full[at..], "restored at {at}");
    }
}

#[test]
fn a_file_cache_restores_in_its_first_pass_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.bin");
    let build = || {
        Dataset::range(0, 30, 1)
            .unwrap()
            .shuffle(8, ())
            .unwrap()
            .cache(Some(&path))
            .unwrap()
    };
    // Saved inside the first pass (the file is not written yet), restored in a new pipeline:
    // the rest follows, and the file, written at the end, holds the whole pass.
    let ds = build();
    let mut it = ds.iter();
    let head: Vec<String> = it.by_ref().take(11).map(show).collect();
    let state = it.get_state().unwrap();
    drop(it);
    assert!(!path.exists());
    let again = build();
    let mut resumed = again.iter();
    resumed.set_state(&state).unwrap();
    let rest: Vec<String> = resumed.map(show).collect();
    assert_eq!(head.len() + rest.len(), 30);
    assert!(path.exists());
    let replayed: Vec<String> = build().iter().map(show).collect();
    assert_eq!(replayed, [head, rest].concat());
    // Saved while replaying the file, restored where the file is: the replay goes on.
    let ds = build();
    let mut it = ds.iter();
    let _ = it.by_ref().take(20).count();
    let state = it.get_state().unwrap();
    let mut resumed = build().iter();
    resumed.set_state(&state).unwrap();
    assert_eq!(resumed.map(show).collect::<Vec<_>>(), replayed[20..]);
}
