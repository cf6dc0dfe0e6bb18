//! Invariants of the dataset model, checked over many random pipelines: shuffle permutes
//! each epoch, shards partition, unbatch undoes batch, counted output agrees with
//! cardinality, and reading by index agrees with reading in order.

use npyflow::dataset::{BatchOptions, ShuffleOptions};
use npyflow::dataset::{Cardinality, Dataset};
use npyflow::{Element, Tensor};
use proptest::prelude::*;

use crate::common::ints;

fn range(n: u64) -> Dataset {
    Dataset::range(0, n as i64, 1).unwrap()
}

/// One step of a random pipeline over int64 scalars (or batches of them).
#[derive(Clone, Debug)]
enum Op {
    Take(i64),
    Skip(i64),
    Repeat(u64),
    Batch(usize, bool),
    Shard(u64, u64),
    Window(u64, u64, u64, bool),
    Enumerate,
    Map,
    Shuffle(usize, u64),
    Prefetch(i64),
    Cache,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (-2i64..12).prop_map(Op::Take),
        (-2i64..12).prop_map(Op::Skip),
        (0u64..4).prop_map(Op::Repeat),
        (1usize..5, any::<bool>()).prop_map(|(b, d)| Op::Batch(b, d)),
        (1u64..4)
            .prop_flat_map(|n| (Just(n), 0..n))
            .prop_map(|(n, i)| Op::Shard(n, i)),
        (1u64..4, 1u64..4, 1u64..3, any::<bool>()).prop_map(|(s, h, t, d)| Op::Window(s, h, t, d)),
        Just(Op::Enumerate),
        Just(Op::Map),
        (1usize..8, any::<u64>()).prop_map(|(b, s)| Op::Shuffle(b, s)),
        (-1i64..3).prop_map(Op::Prefetch),
        Just(Op::Cache),
    ]
}

fn apply(ds: &Dataset, op: &Op) -> Dataset {
    match *op {
        Op::Take(n) => ds.take(n),
        Op::Skip(n) => ds.skip(n),
        Op::Repeat(n) => ds.repeat(Some(n)),
        Op::Batch(b, d) => ds.batch(b, BatchOptions::new().drop_remainder(d)).unwrap(),
        Op::Shard(n, i) => ds.shard(n, i).unwrap(),
        Op::Window(size, shift, stride, d) => ds
            .window(size, Some(shift), stride, d)
            .unwrap()
            .flat_map(|w| Ok(w.into_dataset()?.take(1)), None)
            .unwrap(),
        Op::Enumerate => ds
            .enumerate(0)
            .map(|e: Element| Ok(e.get(1)?.clone()), ())
            .unwrap(),
        Op::Map => ds.map(Ok, ()).unwrap(),
        Op::Shuffle(b, s) => ds.shuffle(b, ShuffleOptions::new().seed(s)).unwrap(),
        Op::Prefetch(n) => ds.prefetch(n).unwrap(),
        Op::Cache => ds.cache(None::<&str>).unwrap(),
    }
}

/// The window op above keeps one element per window, so its count is the window count;
/// its cardinality is unknown (flat_map), which the test allows.
fn build(n: u64, ops: &[Op]) -> Dataset {
    ops.iter().fold(range(n), |ds, op| apply(&ds, op))
}

proptest! {
    #![proptest_config(crate::common::proptest_config(256))]

    #[test]
    fn shuffle_permutes_each_epoch_apart(n in 0u64..60, buffer in 1usize..80, seed: u64, epochs in 1u64..4) {
        let ds = range(n).shuffle(buffer, ShuffleOptions::new().seed(seed)).unwrap().repeat(Some(epochs));
        let out = ints(&ds);
        prop_assert_eq!(out.len() as u64, n * epochs);
        for chunk in out.chunks(n.max(1) as usize) {
            let mut c = chunk.to_vec();
            c.sort_unstable();
            prop_assert_eq!(c, (0..n as i64).collect::<Vec<_>>());
        }
    }

    #[test]
    fn shards_partition_the_input(n in 0u64..100, shards in 1u64..9) {
        let mut seen = Vec::new();
        for i in 0..shards {
            let part = ints(&range(n).shard(shards, i).unwrap());
            prop_assert!(part.iter().all(|&x| x as u64 % shards == i));
            seen.extend(part);
        }
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..n as i64).collect::<Vec<_>>());
    }

    #[test]
    fn unbatch_undoes_batch(rows in 0usize..40, cols in 1usize..4, batch in 1usize..9) {
        let x = Tensor::from_vec((0..(rows * cols) as i32).collect(), &[rows, cols]).unwrap();
        let y = Tensor::from_vec((0..rows as i64).collect(), &[rows]).unwrap();
        let ds = Dataset::from_tensor_slices(Element::tuple([x, y])).unwrap();
        let back = ds.batch(batch, ()).unwrap().unbatch().unwrap();
        prop_assert_eq!(back.to_vec().unwrap(), ds.to_vec().unwrap());
        let rebatched = ds.batch(batch, ()).unwrap().rebatch(&[batch + 1], false).unwrap();
        let direct = ds.batch(batch + 1, ()).unwrap();
        prop_assert_eq!(rebatched.to_vec().unwrap(), direct.to_vec().unwrap());
    }

    #[test]
    fn counted_output_agrees_with_cardinality(n in 0u64..30, ops in prop::collection::vec(op(), 0..5)) {
        let ds = build(n, &ops);
        let count = ds.iter().count() as u64;
        match ds.cardinality() {
            Cardinality::Finite(c) => prop_assert_eq!(c, count, "{:?}", ops),
            Cardinality::Unknown => {}
            Cardinality::Infinite => prop_assert!(false, "finite pipeline called infinite: {:?}", ops),
        }
        // Reading by index agrees with reading in order.
        // (Errors count: two batches of different shapes make an error in both ways.)
        if ds.is_random_access() {
            let show = |r: npyflow::Result<Element>| r.map_err(|e| e.to_string());
            let by_index: Vec<_> = (0..ds.len().unwrap()).map(|i| show(ds.get(i))).collect();
            let in_order: Vec<_> = ds.iter().map(show).collect();
            prop_assert_eq!(by_index, in_order, "{:?}", ops);
        }
    }

    #[test]
    fn take_skip_repeat_batch_counts(n in 0u64..50, t in -1i64..60, s in -1i64..60, r in 0u64..4, b in 1usize..7, d: bool) {
        let ds = range(n).skip(s).take(t).repeat(Some(r)).batch(b, BatchOptions::new().drop_remainder(d)).unwrap();
        let Cardinality::Finite(c) = ds.cardinality() else {
            return Err(TestCaseError::fail("should be finite"));
        };
        prop_assert_eq!(c, ds.iter().count() as u64);
    }
}

#[test]
fn infinite_pipelines_say_so() {
    let ds = range(3)
        .repeat(None)
        .batch(2, ())
        .unwrap()
        .shard(2, 1)
        .unwrap();
    assert_eq!(ds.cardinality(), Cardinality::Infinite);
    assert_eq!(ds.take(4).iter().count(), 4);
}
