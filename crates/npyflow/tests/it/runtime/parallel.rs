//! The runtime: parallel output equals sequential output for any number of threads, fused
//! and pooled batches equal plain ones, slices are not copies, kept batches stay valid,
//! and global shuffles permute each epoch (tests/process/threads.rs: dropping an iterator stops
//! its threads).

use npyflow::dataset::{InterleaveOptions, Parallelism, ShuffleOptions};
use std::time::Duration;

use npyflow::dataset::Dataset;
use npyflow::{ops, DType, Element, Error, Tensor};
use proptest::prelude::*;

use crate::common::{batch_on, ints, map_on, same_order};

fn images(n: usize) -> (Tensor, Tensor) {
    let x = Tensor::from_vec(
        (0..n * 12).map(|i| (i * 7 % 256) as u8).collect(),
        &[n, 2, 2, 3],
    )
    .unwrap();
    let y = Tensor::from_vec((0..n as i64).collect(), &[n]).unwrap();
    (x, y)
}

fn normalize_closure(e: Element) -> npyflow::Result<Element> {
    let mut parts = e.into_tuple()?;
    let x = parts.remove(0).into_tensor()?;
    let x = x.cast(DType::Float32)?.scale(1.0 / 255.0, 0.0)?;
    Ok(Element::tuple([Element::from(x), parts.remove(0)]))
}

/// [`normalize_closure`] as two ops (cast, scale) that batch fuses, then batches of 8.
fn cast_scale_batch(ds: &Dataset) -> Dataset {
    ds.map(ops::cast(DType::Float32).component(0), ())
        .unwrap()
        .map(ops::scale(1.0 / 255.0).component(0), ())
        .unwrap()
        .batch(8, ())
        .unwrap()
}

#[test]
fn fused_batches_equal_closure_batches() {
    let (x, y) = images(37);
    let src = Dataset::from_tensor_slices(Element::tuple([x, y])).unwrap();
    let closure = src
        .map(normalize_closure, ())
        .unwrap()
        .batch(8, ())
        .unwrap();
    let fused = cast_scale_batch(&src);
    assert_eq!(fused.element_spec(), closure.element_spec());
    assert_eq!(fused.to_vec().unwrap(), closure.to_vec().unwrap());
    // Through a stream (a generator is not random-access) the fused path is the same.
    let spec = src.element_spec().clone();
    let rows = src.to_vec().unwrap();
    let stream =
        Dataset::from_generator(spec, move || Ok(Box::new(rows.clone().into_iter().map(Ok))));
    let fused_stream = cast_scale_batch(&stream);
    assert_eq!(fused_stream.to_vec().unwrap(), closure.to_vec().unwrap());
}

#[test]
fn consecutive_rows_are_slices_not_copies() {
    let (x, y) = images(10);
    let ds = Dataset::from_tensor_slices(Element::tuple([x.clone(), y]))
        .unwrap()
        .batch(4, ())
        .unwrap();
    let first = ds.iter().next().unwrap().unwrap();
    let bx = first.get(0).unwrap().as_tensor().unwrap();
    assert!(bx.buffer().shares_owner_with(x.buffer()));
    assert_eq!(bx.shape(), &[4, 2, 2, 3]);
}

#[test]
fn kept_batches_stay_valid_while_buffers_are_reused() {
    let (x, y) = images(64);
    let ds = Dataset::from_tensor_slices(Element::tuple([x, y]))
        .unwrap()
        .map(ops::cast(DType::Float32).component(0), ())
        .unwrap()
        .batch(4, ())
        .unwrap();
    let expected: Vec<String> = ds.iter().map(|b| b.unwrap().to_string()).collect();
    // Keep every batch while iterating, then check them all: none was overwritten.
    let kept: Vec<Element> = ds.iter().map(|b| b.unwrap()).collect();
    let got: Vec<String> = kept.iter().map(|b| b.to_string()).collect();
    assert_eq!(got, expected);
}

#[test]
fn global_shuffle_permutes_each_epoch() {
    let ds = Dataset::range(0, 1000, 1)
        .unwrap()
        .global_shuffle(ShuffleOptions::new().seed(5))
        .unwrap();
    let epoch = ints;
    let a = epoch(&ds);
    let b = epoch(&ds);
    assert_ne!(a, b, "a new order each epoch");
    for e in [&a, &b] {
        let mut s = e.clone();
        s.sort_unstable();
        assert_eq!(s, (0..1000).collect::<Vec<_>>());
    }
    let again = Dataset::range(0, 1000, 1)
        .unwrap()
        .global_shuffle(ShuffleOptions::new().seed(5))
        .unwrap();
    assert_eq!(epoch(&again), a, "the seed fixes the orders");
    let fixed = Dataset::range(0, 100, 1)
        .unwrap()
        .global_shuffle(same_order(5))
        .unwrap();
    assert_eq!(epoch(&fixed), epoch(&fixed));
    let stream = Dataset::range(0, 10, 1).unwrap().filter(|_| Ok(true));
    assert!(matches!(
        stream.global_shuffle(()),
        Err(Error::InvalidArgument(_))
    ));
    // Sharded after a shared shuffle: disjoint parts covering every element.
    let mut all: Vec<i64> = Vec::new();
    for i in 0..3 {
        let part = Dataset::range(0, 100, 1)
            .unwrap()
            .global_shuffle(same_order(9))
            .unwrap()
            .shard(3, i)
            .unwrap();
        all.extend(epoch(&part));
    }
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
}

#[test]
fn errors_keep_their_place_in_parallel() {
    let ds = Dataset::range(0, 50, 1).unwrap();
    let f = |e: Element| {
        let v = e.as_tensor().unwrap().to_i64_scalar("x")?;
        if v % 7 == 3 {
            Err(Error::msg(format!("bad {v}")))
        } else {
            Ok(e)
        }
    };
    let seq: Vec<String> = ds
        .map(f, ())
        .unwrap()
        .iter()
        .map(|r| r.map(|e| e.to_string()).unwrap_or_else(|e| e.to_string()))
        .collect();
    for threads in [1, 2, 3, 8] {
        let par: Vec<String> = ds
            .map(f, Parallelism::threads(threads))
            .unwrap()
            .iter()
            .map(|r| r.map(|e| e.to_string()).unwrap_or_else(|e| e.to_string()))
            .collect();
        assert_eq!(par, seq, "{threads} threads");
    }
    assert!(matches!(
        ds.map(f, Parallelism::threads(0)),
        Err(Error::InvalidArgument(_))
    ));
}

/// One parallel step of a random pipeline.
#[derive(Clone, Debug)]
enum Step {
    Map(i64, bool),
    MapOp(i64),
    Batch(usize, bool, Option<i64>),
    Shuffle(u64),
    Filter,
    Interleave(i64),
    Prefetch(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1i64..9, any::<bool>()).prop_map(|(t, r)| Step::Map(t, r)),
        (1i64..9).prop_map(Step::MapOp),
        (1usize..6, any::<bool>(), prop::option::of(1i64..9))
            .prop_map(|(b, d, t)| Step::Batch(b, d, t)),
        any::<u64>().prop_map(Step::Shuffle),
        Just(Step::Filter),
        (1i64..4).prop_map(Step::Interleave),
        (0i64..4).prop_map(Step::Prefetch),
    ]
}

/// Builds the pipeline; `parallel` false gives the same pipeline with every parallel step
/// made sequential, which must give the same output.
fn build(n: i64, steps: &[Step], parallel: bool) -> Dataset {
    let mut ds = Dataset::range(0, n, 1).unwrap();
    let mut batched = false;
    for s in steps {
        ds = match *s {
            Step::Map(t, random) => {
                let f = move |e: Element| {
                    if random {
                        // Uneven work, so threads finish out of order.
                        let spin = (e.tensors()[0].as_bytes()[0] % 5) as u64 * 200;
                        std::thread::sleep(Duration::from_micros(spin));
                    }
                    Ok(e)
                };
                ds.map(f, map_on(parallel.then_some(t))).unwrap()
            }
            Step::MapOp(t) => ds
                .map(ops::cast(DType::Int32), map_on(parallel.then_some(t)))
                .unwrap(),
            Step::Batch(b, d, t) if !batched => {
                batched = true;
                ds.batch(b, batch_on(d, t.filter(|_| parallel))).unwrap()
            }
            Step::Batch(..) => ds,
            Step::Shuffle(seed) if ds.is_random_access() => {
                ds.global_shuffle(same_order(seed)).unwrap()
            }
            Step::Shuffle(seed) => ds.shuffle(7, same_order(seed)).unwrap(),
            Step::Filter => ds.filter(|e| Ok(e.tensors()[0].as_bytes()[0] % 3 != 0)),
            Step::Interleave(c) => {
                let f = |e: Element| Ok(Dataset::from_tensors(e).repeat(Some(2)));
                if parallel {
                    ds.interleave(
                        f,
                        InterleaveOptions::new()
                            .cycle_length(c as usize)
                            .parallel(Parallelism::threads(c as usize)),
                    )
                    .unwrap()
                } else {
                    ds.interleave(f, InterleaveOptions::new().cycle_length(c as usize))
                        .unwrap()
                }
            }
            // Without a thread (0), prefetch still ends random access, as with one.
            Step::Prefetch(k) if parallel => ds.prefetch(k).unwrap(),
            Step::Prefetch(_) => ds.prefetch(0).unwrap(),
        };
    }
    ds
}

proptest! {
    #![proptest_config(crate::common::proptest_config(64))]

    #[test]
    fn parallel_output_equals_sequential(n in 0i64..60, steps in prop::collection::vec(step(), 0..5)) {
        let show = |ds: &Dataset| -> Vec<String> {
            ds.iter().map(|r| r.map(|e| e.to_string()).unwrap_or_else(|e| e.to_string())).collect()
        };
        let seq = show(&build(n, &steps, false));
        let par = show(&build(n, &steps, true));
        prop_assert_eq!(par, seq, "{:?}", steps);
    }

    #[test]
    fn unordered_output_is_a_reordering(n in 0i64..80, threads in 1i64..6) {
        let ds = Dataset::range(0, n, 1).unwrap();
        let f = |e: Element| {
            let v = e.as_tensor().unwrap().to_i64_scalar("x")?;
            std::thread::sleep(Duration::from_micros((v % 4) as u64 * 100));
            Ok(e)
        };
        let stream = ds.filter(|_| Ok(true));
        for d in [ds.clone(), stream] {
            let mut got: Vec<i64> = d.map(f, Parallelism::threads(threads as usize).deterministic(false)).unwrap().iter()
                .map(|e| e.unwrap().into_tensor().unwrap().to_i64_scalar("x").unwrap())
                .collect();
            got.sort_unstable();
            prop_assert_eq!(got, (0..n).collect::<Vec<_>>());
        }
    }
}

/// A wait with a deadline for a pipeline ending in `prefetch` runs out while an element is
/// made, and loses nothing: the elements are those of a plain pass.
#[test]
fn waits_with_a_deadline_lose_no_element() {
    use npyflow::dataset::Wait;
    use std::time::Instant;
    let ds = Dataset::range(0, 6, 1)
        .unwrap()
        .map(
            |e: Element| {
                std::thread::sleep(Duration::from_millis(20));
                Ok(e)
            },
            (),
        )
        .unwrap()
        .prefetch(1)
        .unwrap();
    let want = ints(&ds);
    let mut it = ds.iter();
    let (mut got, mut pending) = (Vec::new(), 0);
    // Bounded: 6 elements of 20 ms, waits of 1 ms.
    for _ in 0..10_000 {
        match it.next_by(Instant::now() + Duration::from_millis(1)) {
            Ok(Some(e)) => got.push(
                e.unwrap()
                    .into_tensor()
                    .unwrap()
                    .to_i64_scalar("x")
                    .unwrap(),
            ),
            Ok(None) => break,
            Err(Wait::Pending) => pending += 1,
            Err(Wait::Unsupported) => panic!("a last prefetch waits with a deadline"),
        }
    }
    assert_eq!(got, want);
    assert!(pending > 0, "some waits ran out");
    // A pipeline whose last stage has no threads says so before reading anything.
    let plain = Dataset::range(0, 3, 1).unwrap();
    let mut it = plain.iter();
    assert_eq!(it.next_by(Instant::now()).err(), Some(Wait::Unsupported));
    assert_eq!(
        ints(&plain),
        it.map(|e| e
            .unwrap()
            .into_tensor()
            .unwrap()
            .to_i64_scalar("x")
            .unwrap())
            .collect::<Vec<_>>()
    );
}
