//! Multi-host reading: workers that build the same pipeline with the same global-shuffle seed
//! and take their part with `distributed_batch` (or `shard`) read every element exactly once
//! per epoch between them, and with `distributed_batch` all get the same number of batches.

use npyflow::dataset::{Parallelism, ShuffleOptions};
use npyflow::{Dataset, Element};
use proptest::prelude::*;

use crate::common::same_order;

fn values(batch: &Element) -> Vec<i64> {
    batch.tensors()[0].view::<i64>().unwrap().to_vec()
}

proptest! {
    #![proptest_config(crate::common::proptest_config(200))]

    #[test]
    fn workers_share_one_permutation_and_take_equal_steps(
        n in 0i64..300,
        workers in 1u64..9,
        batch in 1usize..20,
        seed in any::<u64>(),
        threads in 1i64..5,
    ) {
        // Each worker builds its own pipeline, as separate processes would.
        let pipelines: Vec<Dataset> = (0..workers)
            .map(|i| {
                Dataset::range(0, n, 1).unwrap()
                    .global_shuffle(ShuffleOptions::new().seed(seed)).unwrap()
                    .map(Ok, Parallelism::threads(threads as usize)).unwrap()
                    .distributed_batch(batch, workers, i).unwrap()
            })
            .collect();
        let mut orders = Vec::new();
        for _epoch in 0..2 {
            let mut seen = Vec::new();
            let mut steps = Vec::new();
            let mut order = Vec::new();
            for ds in &pipelines {
                let batches = ds.to_vec().unwrap();
                prop_assert_eq!(ds.cardinality().as_i64(), batches.len() as i64);
                steps.push(batches.len());
                for b in &batches {
                    let v = values(b);
                    prop_assert!(v.len() <= batch);
                    order.extend_from_slice(&v);
                    seen.extend(v);
                }
            }
            prop_assert!(steps.iter().all(|&s| s == steps[0]), "steps {:?}", steps);
            prop_assert_eq!(steps[0] as u64, (n as u64).div_ceil(batch as u64 * workers));
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
            orders.push(order);
        }
        // A new permutation each epoch (when there is anything to permute).
        if n > 8 {
            prop_assert_ne!(&orders[0], &orders[1]);
        }
    }

    #[test]
    fn shards_of_a_shared_permutation_partition_each_epoch(
        n in 0i64..300,
        workers in 1u64..9,
        seed in any::<u64>(),
    ) {
        let mut seen = Vec::new();
        for i in 0..workers {
            let ds = Dataset::range(0, n, 1).unwrap()
                .global_shuffle(same_order(seed)).unwrap()
                .shard(workers, i).unwrap();
            let part: Vec<i64> = ds.to_vec().unwrap().iter().map(|e| values(e)[0]).collect();
            // shard's rule (tf.data's): counts differ by at most one.
            let expected = (n as u64).saturating_sub(i).div_ceil(workers);
            prop_assert_eq!(part.len() as u64, expected);
            seen.extend(part);
        }
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
    }
}

#[test]
fn the_last_step_is_split_evenly() {
    // 23 elements, 4 workers, batches of 5: one full step of 20, then 3 left, fewer than
    // the workers: sizes 0, 1, 1, 1 (⌊3i/4⌋ cuts at 0, 0, 1, 2, 3).
    let ds = Dataset::range(0, 23, 1).unwrap();
    let sizes: Vec<Vec<usize>> = (0..4)
        .map(|i| {
            ds.distributed_batch(5, 4, i)
                .unwrap()
                .to_vec()
                .unwrap()
                .iter()
                .map(|b| values(b).len())
                .collect()
        })
        .collect();
    assert_eq!(sizes, [vec![5, 0], vec![5, 1], vec![5, 1], vec![5, 1]]);
    let empty = ds.distributed_batch(5, 4, 0).unwrap().to_vec().unwrap();
    assert_eq!(empty[1].tensors()[0].shape(), &[0]);
}

#[test]
fn distributed_batch_checks_its_arguments() {
    let ds = Dataset::range(0, 10, 1).unwrap();
    for (b, w, i) in [(0, 2, 0), (2, 0, 0), (2, 2, 2)] {
        let err = ds.distributed_batch(b, w, i).unwrap_err().to_string();
        assert!(err.contains("distributed_batch"), "{err}");
    }
    let err = ds
        .filter(|_| Ok(true))
        .distributed_batch(2, 2, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("random-access"), "{err}");
}
