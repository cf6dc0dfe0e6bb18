//! Review of iterator state (get_state / set_state): transformations and combinations the
//! random pipelines of random_pipelines.rs do not make, errors in the stream, and the iterator's
//! own bookkeeping (saving twice, continuing after a save, restoring into a used iterator).

use npyflow::dataset::{BatchOptions, InterleaveOptions, Parallelism, ShuffleOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use npyflow::dataset::BucketOptions;

use crate::common::{add, restored, same_order, save_after, scalar_i64, show, val};
use npyflow::{
    DType, Dataset, Element, ElementSpec, Error, PartialShape, Tensor, TensorSpec, AUTOTUNE,
};

/// A map function that fails on the elements equal to 2 modulo 4.
fn fail_at_2_mod_4(e: Element) -> npyflow::Result<Element> {
    let v = scalar_i64(e.clone())?;
    if v % 4 == 2 {
        Err(Error::InvalidArgument(format!("bad {v}")))
    } else {
        Ok(e)
    }
}

/// Saves an iterator of `ds` (a pipeline of `build()`) after each of `points` elements, a
/// new pass each, and restores it into a pipeline built again: the rest must be what the
/// saved iterator goes on to give. `name` is in the failure's message.
fn check_at(
    name: &str,
    ds: &Dataset,
    build: &dyn Fn() -> Dataset,
    points: impl IntoIterator<Item = usize>,
) {
    for at in points {
        let (_, state, rest) = save_after(ds, at);
        assert_eq!(restored(build, &state), rest, "{name} at {at}");
    }
}

/// Elements `0..n` as a sequential (not random-access) stream.
fn stream(n: i64) -> Dataset {
    Dataset::range(0, n, 1).unwrap().filter(|_| Ok(true))
}

/// Adds 1 on `threads` worker threads that each sleep `pause` first: workers still busy when
/// the state is saved.
fn slowly_add_1(ds: &Dataset, pause: Duration, threads: usize) -> Dataset {
    ds.map(
        move |e| {
            std::thread::sleep(pause);
            add(e, 1)
        },
        Parallelism::threads(threads),
    )
    .unwrap()
}

/// Saves at every point `0..=len + 1` of `build()`'s pass (and past its end): the same
/// iterator continues unchanged after the save, and a new pipeline restored from the state
/// gives exactly the rest. Returns the uninterrupted pass.
fn check_everywhere(build: &dyn Fn() -> Dataset) -> Vec<String> {
    let full: Vec<String> = build().iter().map(show).collect();
    for at in 0..=full.len() + 1 {
        let (head, state, rest) = save_after(&build(), at);
        assert_eq!([head, rest.clone()].concat(), full, "continued after {at}");
        assert_eq!(
            restored(build, &state),
            rest,
            "restored after {at} of {}",
            full.len()
        );
    }
    full
}

/// Rows of 0 to 3 elements, padded in batches of 3.
fn ragged_padded_batch() -> Dataset {
    stream(23)
        .map(
            |e| {
                let v = scalar_i64(e)?;
                let n = (v % 4) as usize;
                Ok(Tensor::from_vec(vec![v; n], &[n])?.into())
            },
            (),
        )
        .unwrap()
        .padded_batch(3, None, None, false)
        .unwrap()
}

/// Batches of 4 rebatched to sizes 3, 2, 5 in turn.
fn stream_rebatch() -> Dataset {
    stream(31)
        .batch(4, ())
        .unwrap()
        .rebatch(&[3, 2, 5], false)
        .unwrap()
}

/// Windows of 4 by value modulo 3.
fn group_by_window_mod_3() -> Dataset {
    stream(37)
        .group_by_window(
            |e| Ok(val(e) % 3),
            |_, w| w.batch(4, ()),
            Some(4),
            None::<fn(i64) -> npyflow::Result<u64>>,
        )
        .unwrap()
}

/// A global shuffle, a parallel map and one of 3 workers' batches, prefetched, twice.
fn distributed_worker(worker: u64) -> Dataset {
    Dataset::range(0, 50, 1)
        .unwrap()
        .global_shuffle(ShuffleOptions::new().seed(8))
        .unwrap()
        .map(|e| add(e, 1), Parallelism::threads(4))
        .unwrap()
        .distributed_batch(4, 3, worker)
        .unwrap()
        .prefetch(3)
        .unwrap()
        .repeat(Some(2))
}

#[test]
fn padded_batch_restores() {
    check_everywhere(&ragged_padded_batch);
}

#[test]
fn rebatch_restores() {
    check_everywhere(&stream_rebatch);
    let ra = || {
        Dataset::range(0, 31, 1)
            .unwrap()
            .batch(4, ())
            .unwrap()
            .rebatch(&[3, 2], true)
            .unwrap()
    };
    check_everywhere(&ra);
}

#[test]
fn bucket_by_sequence_length_restores() {
    let build = || {
        stream(40)
            .map(
                |e| {
                    let v = scalar_i64(e)?;
                    let n = (v * 7 % 9) as usize;
                    Ok(Tensor::from_vec(vec![v; n], &[n])?.into())
                },
                (),
            )
            .unwrap()
            .bucket_by_sequence_length(
                |e| Ok(e.tensors()[0].shape()[0] as i64),
                &[3, 6],
                &[2, 3, 4],
                BucketOptions::default(),
            )
            .unwrap()
    };
    check_everywhere(&build);
}

#[test]
fn group_by_window_restores() {
    check_everywhere(&group_by_window_mod_3);
}

#[test]
fn window_then_flat_map_restores() {
    let build = || {
        stream(20)
            .window(4, Some(3), 1, false)
            .unwrap()
            .flat_map(|w| w.into_dataset()?.batch(2, ()), None)
            .unwrap()
    };
    check_everywhere(&build);
}

#[test]
fn zip_of_a_stream_and_random_access_restores() {
    let build = || {
        let a = stream(17).shuffle(4, ()).unwrap();
        let b = Dataset::range(100, 130, 1)
            .unwrap()
            .global_shuffle(())
            .unwrap();
        Dataset::zip(vec![a, b]).unwrap()
    };
    // seed None: the continued run is compared with the restored one only.
    check_at("zip", &build(), &build, [0, 1, 5, 16, 17, 18]);
}

#[test]
fn concatenate_restores_in_both_parts_and_at_the_boundary() {
    let build = || {
        stream(6)
            .concatenate(
                &Dataset::range(10, 16, 1)
                    .unwrap()
                    .shuffle(3, ShuffleOptions::new().seed(5))
                    .unwrap(),
            )
            .unwrap()
    };
    check_everywhere(&build);
    let ra = || {
        Dataset::range(0, 5, 1)
            .unwrap()
            .concatenate(&stream(4))
            .unwrap()
            .concatenate(&Dataset::range(50, 53, 1).unwrap())
            .unwrap()
    };
    check_everywhere(&ra);
}

#[test]
fn choose_from_datasets_restores() {
    let build = || {
        let choice = Dataset::range(0, 30, 1)
            .unwrap()
            .map(|e| Ok(Tensor::scalar(scalar_i64(e)? * 7 % 3).into()), ())
            .unwrap();
        Dataset::choose_from_datasets(
            vec![
                stream(8),
                Dataset::range(100, 110, 1).unwrap(),
                stream(5).map(|e| add(e, 200), ()).unwrap(),
            ],
            &choice,
            false,
        )
        .unwrap()
    };
    check_everywhere(&build);
}

#[test]
fn take_while_restores() {
    let build = || stream(30).take_while(|e| Ok(val(e) < 12));
    let full = check_everywhere(&build);
    assert_eq!(full.len(), 12);
}

#[test]
fn ignore_errors_restores() {
    let build = || {
        stream(30)
            .map(fail_at_2_mod_4, ())
            .unwrap()
            .ignore_errors(false)
    };
    let full = check_everywhere(&build);
    assert_eq!(full.len(), 23);
}

#[test]
fn errors_in_the_stream_restore_at_the_same_places() {
    let f = |e: Element| -> npyflow::Result<Element> {
        let v = scalar_i64(e.clone())?;
        if v % 5 == 2 {
            Err(Error::InvalidArgument(format!("bad {v}")))
        } else if v % 7 == 3 {
            panic!("boom {v}")
        } else {
            add(e, 1)
        }
    };
    let seq = move || stream(30).map(f, ()).unwrap();
    let full = check_everywhere(&seq);
    assert!(full.iter().any(|s| s.starts_with("error")));
    let par = move || stream(30).map(f, Parallelism::threads(3)).unwrap();
    assert_eq!(check_everywhere(&par), full);
    let ra = move || {
        Dataset::range(0, 30, 1)
            .unwrap()
            .map(f, Parallelism::threads(3))
            .unwrap()
    };
    let ra_full = check_everywhere(&ra);
    assert_eq!(ra_full, full);
    let batched = move || stream(30).map(f, ()).unwrap().batch(4, ()).unwrap();
    check_everywhere(&batched);
    let prefetched = move || stream(30).map(f, ()).unwrap().prefetch(3).unwrap();
    assert_eq!(check_everywhere(&prefetched), full);
}

#[test]
fn scan_restores() {
    let build = || {
        stream(20)
            .scan(Tensor::scalar(0i64).into(), |s, e| {
                let t = scalar_i64(s)? + scalar_i64(e)?;
                Ok((Tensor::scalar(t).into(), Tensor::scalar(t).into()))
            })
            .unwrap()
    };
    check_everywhere(&build);
}

#[test]
fn unique_restores() {
    let build = || {
        stream(40)
            .map(|e| Ok(Tensor::scalar(scalar_i64(e)? * 7 % 11).into()), ())
            .unwrap()
            .unique()
            .unwrap()
    };
    let full = check_everywhere(&build);
    assert_eq!(full.len(), 11);
}

#[test]
fn enumerate_after_an_unseeded_shuffle_restores() {
    let build = || {
        stream(25)
            .shuffle(6, ())
            .unwrap()
            .enumerate(3)
            .repeat(Some(2))
    };
    check_at(
        "enumerate",
        &build(),
        &build,
        [0, 3, 24, 25, 26, 40, 50, 51],
    );
}

/// `shuffle(N).map(f, threads)`, tf.data's standard order: the parallel map hands its
/// results over in runs (see the engine's `Lanes::elements`), which must change nothing. On
/// any number of threads it gives what the map on the reading thread gives, element for
/// element (errors in their places), and restores at every point, also while workers are
/// busy.
#[test]
fn a_parallel_map_after_a_shuffle_keeps_order_values_and_state() {
    let add_1_or_fail = |e: Element| {
        let v = scalar_i64(e.clone())?;
        if v % 9 == 4 {
            Err(Error::InvalidArgument(format!("bad {v}")))
        } else {
            add(e, 1)
        }
    };
    let shuffled = |n: i64, buffer: usize| {
        Dataset::range(0, n, 1)
            .unwrap()
            .shuffle(buffer, ShuffleOptions::new().seed(11))
            .unwrap()
    };
    let sequential: Vec<String> = shuffled(120, 17)
        .map(add_1_or_fail, ())
        .unwrap()
        .iter()
        .map(show)
        .collect();
    for threads in [1, 2, 3, 8] {
        let build = || {
            shuffled(120, 17)
                .map(add_1_or_fail, Parallelism::threads(threads))
                .unwrap()
        };
        assert_eq!(check_everywhere(&build), sequential, "{threads} threads");
    }
    // Slow elements: workers are mid-job at every save, and the consumer waits longer than
    // its patience for a run of results.
    for threads in [1, 3] {
        let build = || slowly_add_1(&shuffled(40, 8), Duration::from_millis(3), threads);
        let full: Vec<String> = build().iter().map(show).collect();
        let expected: Vec<String> = shuffled(40, 8)
            .map(|e| add(e, 1), ())
            .unwrap()
            .iter()
            .map(show)
            .collect();
        assert_eq!(full, expected, "{threads} slow threads");
        check_at("slow map", &build(), &build, [0, 1, 7, 20, 39, 40]);
    }
}

#[test]
fn endless_repeat_with_take_restores() {
    let build = || {
        stream(7)
            .shuffle(3, ShuffleOptions::new().seed(9))
            .unwrap()
            .repeat(None)
            .take(30)
    };
    check_everywhere(&build);
    let ra = || {
        Dataset::range(0, 7, 1)
            .unwrap()
            .global_shuffle(ShuffleOptions::new().seed(2))
            .unwrap()
            .repeat(None)
            .take(30)
    };
    check_everywhere(&ra);
}

#[test]
fn memory_cache_then_repeat_restores() {
    let build = || {
        stream(9)
            .shuffle(4, ())
            .unwrap()
            .cache(None::<&str>)
            .unwrap()
            .repeat(Some(3))
    };
    check_at("cache", &build(), &build, [0, 4, 9, 10, 13, 18, 22, 27, 28]);
}

#[test]
fn generator_with_map_parallel_and_batch_restores() {
    let make = || {
        Dataset::from_generator(
            ElementSpec::Tensor(TensorSpec {
                dtype: DType::Int64,
                shape: PartialShape::known(&[]),
            }),
            || {
                Ok(
                    Box::new((0..17i64).map(|i| Ok(Tensor::scalar(i * 3).into())))
                        as Box<dyn Iterator<Item = npyflow::Result<Element>> + Send>,
                )
            },
        )
        .map(|e| add(e, 1), Parallelism::threads(3))
        .unwrap()
        .batch(3, ())
        .unwrap()
    };
    check_everywhere(&make);
}

#[test]
fn nested_interleave_restores() {
    let build = || {
        stream(6)
            .interleave(
                |e| {
                    let v = scalar_i64(e)?;
                    Dataset::range(0, v + 1, 1)?
                        .filter(|_| Ok(true))
                        .interleave(
                            move |x| {
                                let x = scalar_i64(x)?;
                                Dataset::range(0, 2, 1)?.map(
                                    move |y| {
                                        Ok(Tensor::scalar(v * 100 + x * 10 + scalar_i64(y)?).into())
                                    },
                                    (),
                                )
                            },
                            InterleaveOptions::new().cycle_length(2),
                        )
                },
                InterleaveOptions::new().cycle_length(2).block_length(2),
            )
            .unwrap()
    };
    check_everywhere(&build);
    let par = || {
        stream(6)
            .interleave(
                |e| {
                    let v = scalar_i64(e)?;
                    Dataset::range(0, v + 1, 1)?.interleave(
                        move |x| Ok(Dataset::from_tensors(add(x, v * 10)?).repeat(Some(2))),
                        InterleaveOptions::new()
                            .cycle_length(2)
                            .parallel(Parallelism::threads(2)),
                    )
                },
                InterleaveOptions::new()
                    .cycle_length(3)
                    .parallel(Parallelism::threads(3)),
            )
            .unwrap()
    };
    check_everywhere(&par);
}

/// The elements of a pass of batches, unbatched, sorted.
fn flat_sorted(items: &[String]) -> Vec<i64> {
    let mut out: Vec<i64> = items
        .iter()
        .flat_map(|s| {
            s.trim_matches(|c| c == '[' || c == ']')
                .split([',', ' '])
                .filter(|t| !t.is_empty())
                .map(|t| t.parse::<i64>().unwrap_or_else(|_| panic!("{s}")))
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn unordered_parallel_map_then_batch_keeps_the_multiset() {
    for random_access in [false, true] {
        let build = move || {
            let base = if random_access {
                Dataset::range(0, 60, 1).unwrap()
            } else {
                stream(60)
            };
            base.map(
                |e: Element| {
                    let v = scalar_i64(e.clone())?;
                    std::thread::sleep(Duration::from_micros((v % 5) as u64 * 300));
                    add(e, 1000)
                },
                Parallelism::threads(4).deterministic(false),
            )
            .unwrap()
            .batch(4, ())
            .unwrap()
        };
        let all: Vec<i64> = (1000..1060).collect();
        for at in [0, 1, 3, 7, 14, 15, 16] {
            let (head, state, rest) = save_after(&build(), at);
            assert_eq!(
                flat_sorted(&[head.clone(), rest].concat()),
                all,
                "continued at {at}"
            );
            assert_eq!(
                flat_sorted(&[head, restored(&build, &state)].concat()),
                all,
                "random access {random_access}, restored at {at}"
            );
        }
    }
}

#[test]
fn saving_twice_and_continuing_changes_nothing() {
    let build = || {
        let shuffled = stream(50)
            .shuffle(5, ShuffleOptions::new().seed(1))
            .unwrap();
        slowly_add_1(&shuffled, Duration::from_micros(200), 4)
            .prefetch(4)
            .unwrap()
    };
    let full: Vec<String> = build().iter().map(show).collect();
    let ds = build();
    let mut it = ds.iter();
    let mut got = Vec::new();
    let mut states = Vec::new();
    for _ in 0..full.len() + 1 {
        // Two saves in a row may differ in what workers had done; both restore the same.
        let a = it.get_state().unwrap();
        let b = it.get_state().unwrap();
        states.push((a, b));
        if let Some(x) = it.next() {
            got.push(show(x));
        }
    }
    assert_eq!(got, full);
    for (k, (a, b)) in states.iter().enumerate().step_by(7) {
        for s in [a, b] {
            assert_eq!(restored(&build, s), full[k.min(full.len())..], "at {k}");
        }
    }
}

#[test]
fn restoring_into_a_used_iterator() {
    let build = || {
        stream(30)
            .shuffle(4, ShuffleOptions::new().seed(3))
            .unwrap()
            .map(|e| add(e, 1), Parallelism::threads(3))
            .unwrap()
            .batch(2, ())
            .unwrap()
            .prefetch(2)
            .unwrap()
    };
    let full: Vec<String> = build().iter().map(show).collect();
    let ds = build();
    let mut it = ds.iter();
    let _ = it.by_ref().take(4).count();
    let early = it.get_state().unwrap();
    let _ = it.by_ref().take(6).count();
    // Back in time, in the same iterator.
    it.set_state(&early).unwrap();
    assert_eq!(it.by_ref().map(show).collect::<Vec<_>>(), full[4..]);
    // An ended iterator restored.
    it.set_state(&early).unwrap();
    assert_eq!(it.map(show).collect::<Vec<_>>(), full[4..]);
}

#[test]
fn a_state_after_the_end_restores_an_ended_iterator() {
    let build = || stream(5).shuffle(2, ShuffleOptions::new().seed(4)).unwrap();
    let ds = build();
    let mut it = ds.iter();
    let _ = it.by_ref().count();
    let state = it.get_state().unwrap();
    let again = build();
    let mut r = again.iter();
    let _ = r.next();
    r.set_state(&state).unwrap();
    assert!(r.next().is_none());
}

#[test]
fn refused_states_leave_a_used_iterator_where_it_was() {
    let a = || stream(20).shuffle(4, ()).unwrap();
    let b = Dataset::range(0, 20, 1).unwrap().batch(3, ()).unwrap();
    let mut other = b.iter();
    other.next();
    let foreign = other.get_state().unwrap();
    let ds = a();
    let mut it = ds.iter();
    let head: Vec<String> = it.by_ref().take(7).map(show).collect();
    let state = it.get_state().unwrap();
    let err = it.set_state(&foreign).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let rest: Vec<String> = it.map(show).collect();
    assert_eq!(head.len() + rest.len(), 20);
    assert_eq!(restored(&a, &state), rest);
}

#[test]
fn refusal_keeps_the_seeds_of_an_unseeded_pipeline() {
    // A state of the same structure but refused later (its pass does not fit): the
    // pipeline's seeds and counters must be left as they were.
    let build = || {
        Dataset::range(0, 20, 1)
            .unwrap()
            .global_shuffle(())
            .unwrap()
    };
    let ds = build();
    let first: Vec<String> = ds.iter().map(show).collect();
    let mut it = ds.iter();
    let _ = it.next();
    let good = it.get_state().unwrap();
    let second_rest: Vec<String> = it.map(show).collect();
    // An unrelated pipeline's iterator; its second pass, compared with and without a
    // refused set_state of a damaged state in between.
    let other = build();
    let p1: Vec<String> = other.iter().map(show).collect();
    let mut damaged = good.clone();
    let n = damaged.len();
    damaged[n - 6] ^= 1;
    let mut probe = other.iter();
    assert!(probe.set_state(&damaged).is_err());
    let p2: Vec<String> = probe.map(show).collect();
    assert_eq!(p2.len(), 20);
    assert_ne!(p1, p2, "a new epoch");
    let _ = (first, second_rest);
}

#[test]
fn get_state_while_slow_workers_are_busy() {
    let build = || {
        slowly_add_1(&stream(40), Duration::from_millis(3), 8)
            .prefetch(6)
            .unwrap()
    };
    let full: Vec<String> = (1..41).map(|i| i.to_string()).collect();
    let ds = build();
    let mut it = ds.iter();
    let mut states = Vec::new();
    let mut got = Vec::new();
    for k in 0..40 {
        if k % 3 == 0 {
            states.push((k, it.get_state().unwrap()));
        }
        got.push(show(it.next().unwrap()));
    }
    assert_eq!(got, full);
    for (k, s) in states {
        assert_eq!(restored(&build, &s), full[k..], "at {k}");
    }
}

#[test]
fn distributed_batch_with_parallel_map_and_prefetch_restores() {
    for worker in 0..3 {
        check_everywhere(&move || distributed_worker(worker));
    }
}

#[test]
fn distributed_batch_restores_at_another_world_size_but_not_another_global_batch() {
    // 100 elements: a global batch of 10 (2 workers x 5) and one of 11 (1 x 11) both take 10
    // steps, so only the global batch size tells the two pipelines apart.
    let build = |batch: usize, workers: u64, worker: u64| {
        Dataset::range(0, 100, 1)
            .unwrap()
            .global_shuffle(ShuffleOptions::new().seed(5))
            .unwrap()
            .distributed_batch(batch, workers, worker)
            .unwrap()
    };
    let saved = build(5, 2, 1);
    let mut it = saved.iter();
    let _ = it.by_ref().take(3).count();
    let state = it.get_state().unwrap();
    // The same global batch on other numbers of workers goes on at global step 3.
    for (batch, workers) in [(10, 1), (5, 2), (2, 5)] {
        // The first pass of a pipeline built alike (a restore moves the epoch on, so not
        // the restored dataset's next pass).
        let want: Vec<String> = build(batch, workers, 0).iter().skip(3).map(show).collect();
        let mut r = build(batch, workers, 0).iter();
        r.set_state(&state).unwrap();
        assert_eq!(r.map(show).collect::<Vec<_>>(), want, "{workers} workers");
    }
    let other = build(11, 1, 0);
    let mut r = other.iter();
    let e = r.set_state(&state).unwrap_err();
    assert!(matches!(e, npyflow::Error::InvalidArgument(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("global batch size 10") && msg.contains("global batch size 11"),
        "{msg}"
    );
    // Refused, the iterator is left as it was: at the start.
    assert_eq!(r.map(show).count(), 10);
}

#[test]
fn restored_generator_is_called_again_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let make = move || {
        let c = Arc::clone(&c);
        Dataset::from_generator(
            ElementSpec::Tensor(TensorSpec {
                dtype: DType::Int64,
                shape: PartialShape::known(&[]),
            }),
            move || {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(Box::new((0..6i64).map(|i| Ok(Tensor::scalar(i).into())))
                    as Box<
                        dyn Iterator<Item = npyflow::Result<Element>> + Send,
                    >)
            },
        )
    };
    let (_, state, _) = save_after(&make(), 2);
    assert_eq!(restored(&make, &state), ["2", "3", "4", "5"]);
}

#[test]
fn shuffled_list_files_then_interleave_restores() {
    let dir = tempfile::tempdir().unwrap();
    for k in 0..5i64 {
        let t = Tensor::from_vec(
            (0..(k + 2)).map(|i| k * 100 + i).collect(),
            &[k as usize + 2],
        )
        .unwrap();
        npyflow::format::npy::write_npy(dir.path().join(format!("f{k}.npy")), &t).unwrap();
    }
    let pattern = format!("{}/*.npy", dir.path().display());
    let build = || {
        Dataset::list_files(&pattern, true, None)
            .unwrap()
            .interleave(
                |name| {
                    let t = name.into_tensor()?;
                    let bytes = t.as_bytes().to_vec();
                    let path = String::from_utf8_lossy(&bytes)
                        .trim_end_matches('\0')
                        .to_string();
                    if !path.ends_with(".npy") {
                        // The tracing placeholder.
                        return Dataset::from_tensor_slices(Tensor::from_vec(vec![0i64], &[1])?);
                    }
                    Dataset::from_npy(path)
                },
                InterleaveOptions::new().cycle_length(2),
            )
            .unwrap()
            .repeat(Some(2))
    };
    let ds = build();
    assert_eq!(ds.iter().count(), 40);
    check_at(
        "list_files",
        &ds,
        &build,
        [0, 1, 4, 9, 19, 20, 21, 30, 40, 41],
    );
}

/// Pipelines whose states the forging test damages.
/// A named pipeline builder.
type Target = (&'static str, fn() -> Dataset);

fn forge_targets() -> Vec<Target> {
    vec![
        ("padded_batch", ragged_padded_batch),
        ("rebatch", stream_rebatch),
        ("group_by_window", group_by_window_mod_3),
        ("unique+scan", || {
            stream(40)
                .map(|e| Ok(Tensor::scalar(scalar_i64(e)? * 7 % 11).into()), ())
                .unwrap()
                .unique()
                .unwrap()
                .scan(Tensor::scalar(0i64).into(), |s, e| {
                    let t = scalar_i64(s)? + scalar_i64(e)?;
                    Ok((Tensor::scalar(t).into(), Tensor::scalar(t).into()))
                })
                .unwrap()
        }),
        ("cache+repeat", || {
            stream(9)
                .shuffle(4, ShuffleOptions::new().seed(2))
                .unwrap()
                .cache(None::<&str>)
                .unwrap()
                .repeat(Some(3))
        }),
        ("global shuffle, distributed batch, prefetch", || {
            distributed_worker(1)
        }),
        ("ra zip, take, skip, shard", || {
            let a = Dataset::range(0, 40, 1).unwrap().skip(3).take(30);
            let b = Dataset::range(0, 40, 1)
                .unwrap()
                .global_shuffle(same_order(1))
                .unwrap()
                .shard(2, 1)
                .unwrap();
            Dataset::zip(vec![a, b])
                .unwrap()
                .batch(3, BatchOptions::new().drop_remainder(true))
                .unwrap()
        }),
        ("interleave_parallel", || {
            stream(12)
                .interleave(
                    |e| Ok(Dataset::from_tensors(e).repeat(Some(3))),
                    InterleaveOptions::new()
                        .cycle_length(3)
                        .block_length(2)
                        .parallel(Parallelism::threads(3)),
                )
                .unwrap()
                .batch(2, Parallelism::threads(2))
                .unwrap()
        }),
        ("choose+concatenate", || {
            let choice = Dataset::range(0, 30, 1)
                .unwrap()
                .map(|e| Ok(Tensor::scalar(scalar_i64(e)? % 2).into()), ())
                .unwrap();
            Dataset::choose_from_datasets(
                vec![
                    stream(8).concatenate(&stream(3)).unwrap(),
                    Dataset::range(100, 110, 1).unwrap(),
                ],
                &choice,
                false,
            )
            .unwrap()
        }),
    ]
}

/// Writes the checksum of a state whose bytes were changed (its last 4 bytes, a CRC-32 of
/// the rest), so that the change reaches the decoder.
fn reseal(forged: &mut [u8]) {
    let n = forged.len() - 4;
    let crc = crc32fast::hash(&forged[..n]).to_le_bytes();
    forged[n..].copy_from_slice(&crc);
}

/// Restores `forged` into a new pipeline of `build` and, if it is taken, reads up to `read`
/// elements, on another thread: None if that does not finish within `secs`, else whether it
/// panicked.
fn restore_forged(
    secs: u64,
    build: fn() -> Dataset,
    forged: Vec<u8>,
    read: usize,
) -> Option<std::thread::Result<()>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let mut again = build().iter();
            if again.set_state(&forged).is_ok() {
                let _ = again.take(read).count();
            }
        }));
        let _ = tx.send(r);
    });
    rx.recv_timeout(Duration::from_secs(secs)).ok()
}

#[test]
fn forged_states_of_many_pipelines_never_panic_or_hang() {
    let mut problems = Vec::new();
    for (name, build) in forge_targets() {
        let full = build().iter().count();
        for at in [1, full / 2, full] {
            let ds = build();
            let mut it = ds.iter();
            let _ = it.by_ref().take(at).count();
            let state = it.get_state().unwrap();
            let body = 26..state.len() - 4;
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ at as u64;
            for round in 0..120 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let k = body.start + (x >> 33) as usize % body.len();
                let mut forged = state.clone();
                forged[k] = match round % 5 {
                    0 => 0xff,
                    1 => 0,
                    2 => 0x80,
                    3 => forged[k].wrapping_add(1),
                    _ => forged[k].wrapping_sub(1),
                };
                reseal(&mut forged);
                let outcome = restore_forged(20, build, forged, 200);
                match outcome {
                    None => problems.push(format!("{name}: at {at}, byte {k} ({round}): hangs")),
                    Some(Err(p)) => {
                        let what = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        problems.push(format!(
                            "{name}: at {at}, byte {k} ({round}): panics: {what}"
                        ))
                    }
                    Some(Ok(())) => {}
                }
                if problems.len() > 20 {
                    break;
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Saves at `at` in pass `pass` (0-based) of a pipeline that is iterated `passes` times;
/// restores into a rebuilt pipeline, finishes that pass and runs the remaining passes over
/// the same rebuilt dataset: all must be what the uninterrupted program gave.
fn check_later_passes(build: &dyn Fn() -> Dataset, passes: usize, pass: usize, at: usize) {
    let ds = build();
    let mut all: Vec<Vec<String>> = Vec::new();
    let mut state = None;
    for p in 0..passes {
        let mut it = ds.iter();
        let mut out: Vec<String> = Vec::new();
        if p == pass {
            out.extend(it.by_ref().take(at).map(show));
            state = Some((out.len(), it.get_state().unwrap()));
        }
        out.extend(it.map(show));
        all.push(out);
    }
    let (head, state) = state.unwrap();
    let again = build();
    let mut r = again.iter();
    r.set_state(&state).unwrap();
    let rest: Vec<String> = r.map(show).collect();
    assert_eq!(rest, all[pass][head..], "the restored pass");
    for (p, expected) in all.iter().enumerate().skip(pass + 1) {
        let got: Vec<String> = again.iter().map(show).collect();
        assert_eq!(&got, expected, "pass {p} after the restored pass {pass}");
    }
}

#[test]
fn passes_after_a_restored_one_continue_the_epochs() {
    let seq = || stream(12).shuffle(4, ()).unwrap();
    let ra = || {
        Dataset::range(0, 12, 1)
            .unwrap()
            .global_shuffle(())
            .unwrap()
    };
    let sample = || {
        Dataset::sample_from_datasets(
            vec![stream(6), Dataset::range(10, 16, 1).unwrap()],
            None,
            None,
            false,
        )
        .unwrap()
    };
    let flips = || {
        stream(24)
            .batch(3, ())
            .unwrap()
            .map(npyflow::ops::random_flip(0, 5), Parallelism::threads(2))
            .unwrap()
    };
    let builders: [(&str, &dyn Fn() -> Dataset); 4] = [
        ("shuffle", &seq),
        ("global_shuffle", &ra),
        ("sample", &sample),
        ("flips", &flips),
    ];
    for (name, b) in builders {
        for (pass, at) in [(0, 0), (0, 5), (1, 3), (2, 11)] {
            eprintln!("{name} pass {pass} at {at}");
            check_later_passes(b, 4, pass, at);
        }
    }
}

#[test]
fn one_random_dataset_used_twice_restores() {
    let zip = || {
        let s = Dataset::range(0, 15, 1)
            .unwrap()
            .global_shuffle(())
            .unwrap();
        Dataset::zip(vec![s.clone(), s]).unwrap()
    };
    let cat = || {
        let s = stream(8).shuffle(3, ()).unwrap();
        s.concatenate(&s).unwrap().repeat(Some(2))
    };
    let sample = || {
        let s = Dataset::range(0, 10, 1)
            .unwrap()
            .global_shuffle(())
            .unwrap();
        Dataset::sample_from_datasets(
            vec![s.clone(), s.map(|e| add(e, 100), ()).unwrap()],
            None,
            None,
            true,
        )
        .unwrap()
    };
    let builders: [(&str, &dyn Fn() -> Dataset); 3] =
        [("zip", &zip), ("concatenate", &cat), ("sample", &sample)];
    for (name, build) in builders {
        let ds = build();
        let n = ds.iter().count();
        check_at(name, &ds, build, 0..=n);
    }
}

#[test]
fn sample_stopping_on_an_empty_dataset_restores() {
    let build = || {
        Dataset::sample_from_datasets(
            vec![
                stream(5),
                Dataset::range(100, 120, 1).unwrap(),
                stream(9).map(|e| add(e, 50), ()).unwrap(),
            ],
            Some(vec![0.2, 0.5, 0.3]),
            Some(4),
            true,
        )
        .unwrap()
    };
    check_everywhere(&build);
}

#[test]
fn errors_in_predicates_and_interleave_functions_restore() {
    let filt = || {
        stream(30).filter(|e| {
            let v = val(e);
            if v % 6 == 4 {
                Err(Error::InvalidArgument(format!("pred {v}")))
            } else {
                Ok(v % 3 != 0)
            }
        })
    };
    let full = check_everywhere(&filt);
    assert!(full.iter().any(|s| s.contains("pred")));
    let tw = || {
        stream(30).take_while(|e| {
            let v = val(e);
            if v == 8 {
                Err(Error::InvalidArgument("tw".into()))
            } else {
                Ok(v < 20)
            }
        })
    };
    check_everywhere(&tw);
    for parallel in [false, true] {
        let il = move || {
            let f = |e: Element| {
                let v = scalar_i64(e.clone())?;
                if v % 4 == 2 {
                    return Err(Error::InvalidArgument(format!("open {v}")));
                }
                Ok(Dataset::from_tensors(e).repeat(Some(2)))
            };
            if parallel {
                stream(14)
                    .interleave(
                        f,
                        InterleaveOptions::new()
                            .cycle_length(3)
                            .parallel(Parallelism::threads(3)),
                    )
                    .unwrap()
            } else {
                stream(14)
                    .interleave(f, InterleaveOptions::new().cycle_length(3))
                    .unwrap()
            }
        };
        let full = check_everywhere(&il);
        assert!(full.iter().any(|s| s.contains("open")), "{full:?}");
    }
}

#[test]
fn random_access_errors_in_batches_restore() {
    let f = |e: Element| -> npyflow::Result<Element> {
        let v = scalar_i64(e.clone())?;
        if v % 9 == 4 {
            Err(Error::InvalidArgument(format!("bad {v}")))
        } else {
            add(e, 1)
        }
    };
    let a = move || {
        Dataset::range(0, 40, 1)
            .unwrap()
            .map(f, Parallelism::threads(3))
            .unwrap()
            .batch(4, BatchOptions::new().drop_remainder(true))
            .unwrap()
            .prefetch(AUTOTUNE)
            .unwrap()
    };
    let full = check_everywhere(&a);
    assert!(full.iter().any(|s| s.contains("bad")));
    let b = move || {
        Dataset::range(0, 40, 1)
            .unwrap()
            .global_shuffle(ShuffleOptions::new().seed(3))
            .unwrap()
            .map(f, ())
            .unwrap()
            .distributed_batch(3, 2, 0)
            .unwrap()
            .prefetch(2)
            .unwrap()
    };
    check_everywhere(&b);
}

#[test]
fn an_iterator_with_stats_restores() {
    let build = || {
        stream(20)
            .map(|e| add(e, 1), Parallelism::threads(2))
            .unwrap()
            .prefetch(2)
            .unwrap()
    };
    let ds = build();
    let (mut it, _stats) = ds.iter_with_stats();
    let _ = it.by_ref().take(7).count();
    let state = it.get_state().unwrap();
    let rest: Vec<String> = it.map(show).collect();
    let again = build();
    let (mut r, _s) = again.iter_with_stats();
    r.set_state(&state).unwrap();
    assert_eq!(r.map(show).collect::<Vec<_>>(), rest);
}

#[test]
fn saving_while_holding_a_window_fails_cleanly() {
    let ds = stream(10).window(3, None, 1, false).unwrap();
    let mut it = ds.iter();
    let w = it.next().unwrap().unwrap();
    let saved = it.get_state();
    drop(w);
    // Either refused or a state that restores; never a panic.
    if let Ok(state) = saved {
        let mut r = ds.iter();
        r.set_state(&state).unwrap();
        let rest: Vec<String> = r
            .map(|w| {
                w.and_then(|w| w.into_dataset())
                    .map(|d| d.iter().map(show).collect::<Vec<_>>().join(","))
                    .unwrap_or_else(|e| e.to_string())
            })
            .collect();
        assert_eq!(rest, ["3,4,5", "6,7,8", "9"]);
    }
}

#[test]
fn forged_positions_in_unbounded_inputs_do_not_hang() {
    let targets: Vec<Target> = vec![
        ("unique over counter", || {
            Dataset::counter(0, 1).take(30).unique().unwrap()
        }),
        ("skip", || stream(30).skip(5)),
        ("endless repeat", || stream(4).repeat(None).take(25)),
    ];
    let mut problems = Vec::new();
    for (name, build) in targets {
        let ds = build();
        let mut it = ds.iter();
        let _ = it.by_ref().take(7).count();
        let state = it.get_state().unwrap();
        for k in 26..state.len() - 4 {
            for v in [0xffu8, 0x7f] {
                let mut forged = state.clone();
                forged[k] = v;
                reseal(&mut forged);
                match restore_forged(20, build, forged, 100) {
                    None => problems.push(format!("{name}: byte {k} = {v:#x}: hangs")),
                    Some(Err(_)) => problems.push(format!("{name}: byte {k} = {v:#x}: panics")),
                    Some(Ok(())) => {}
                }
            }
            if problems.len() > 10 {
                break;
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn memory_cache_with_errors_restores_in_its_replay() {
    let build = || {
        stream(10)
            .map(fail_at_2_mod_4, ())
            .unwrap()
            .cache(None::<&str>)
            .unwrap()
            .repeat(Some(2))
    };
    let full = check_everywhere(&build);
    assert!(full.iter().any(|s| s.contains("bad")));
}

#[test]
fn a_replay_state_restores_into_a_rebuilt_pipeline_that_filled_its_own_cache() {
    let build = || {
        stream(12)
            .shuffle(5, ())
            .unwrap()
            .cache(None::<&str>)
            .unwrap()
    };
    let ds = build();
    let first: Vec<String> = ds.iter().map(show).collect();
    let (_, state, rest) = save_after(&ds, 3); // in the replay
    assert_eq!(rest, first[3..]);
    // Another program: its own (unseeded) pipeline, read once, then restored.
    let again = build();
    let _ = again.iter().count();
    let mut r = again.iter();
    r.set_state(&state).unwrap();
    assert_eq!(r.map(show).collect::<Vec<_>>(), rest);
}

#[test]
fn a_forged_cache_position_over_an_endless_input_does_not_hang() {
    let build = || Dataset::counter(0, 1).cache(None::<&str>).unwrap().take(20);
    let ds = build();
    let mut it = ds.iter();
    let _ = it.by_ref().take(7).count();
    let state = it.get_state().unwrap();
    // The positions (little-endian u64s of 7: the take's, the cache's, the counter's), each
    // with its top byte set in turn.
    let places: Vec<usize> = (26..state.len() - 12)
        .filter(|&k| state[k..k + 8] == 7u64.to_le_bytes())
        .collect();
    assert!(!places.is_empty());
    for pos in places {
        let mut forged = state.clone();
        forged[pos + 7] = 0x7f;
        reseal(&mut forged);
        let outcome = restore_forged(5, build, forged, 100);
        assert!(
            outcome.is_some(),
            "byte {pos}: set_state did not return within 5 s"
        );
    }
}

#[test]
fn random_restores_with_its_seed_and_epoch() {
    // Rerandomized each pass: each repetition new numbers, restored at every point.
    let build = || Dataset::random(Some(3), true).take(6).repeat(Some(3));
    let full = check_everywhere(&build);
    assert_eq!(full.len(), 18);
    assert_ne!(full[..6], full[6..12], "a new draw each pass");
    // Unseeded: the restore adopts the saved seed and epoch.
    let unseeded = || Dataset::random(None, true).take(6).repeat(Some(3));
    check_at("random", &unseeded(), &unseeded, [0, 3, 6, 11, 17, 18]);
    let values: Vec<i64> = Dataset::random(Some(9), false)
        .take(2000)
        .iter()
        .map(|e| scalar_i64(e.unwrap()).unwrap())
        .collect();
    assert!(values.iter().all(|&v| (0..1i64 << 32).contains(&v)));
    assert!(values.iter().any(|&v| v >= 1i64 << 31) && values.iter().any(|&v| v < 1i64 << 31));
    let again = Dataset::random(Some(9), false).take(2000);
    assert_eq!(
        again
            .iter()
            .map(|e| scalar_i64(e.unwrap()).unwrap())
            .collect::<Vec<_>>(),
        values,
        "seeded and not rerandomized: the same each pass"
    );
}

#[test]
fn assert_cardinality_restores_and_checks_where_the_count_is_wrong() {
    let ok = || stream(5).assert_cardinality(5).unwrap();
    assert_eq!(ok().cardinality().as_i64(), 5);
    assert_eq!(check_everywhere(&ok).len(), 5);
    let short = stream(5).assert_cardinality(7).unwrap();
    let items: Vec<_> = short.iter().collect();
    assert_eq!(items.len(), 6, "5 elements, then the error, then the end");
    let err = items[5].as_ref().unwrap_err().to_string();
    assert!(
        err.contains(
            "Input dataset was expected to contain 7 elements but contained only 5 elements."
        ),
        "{err}"
    );
    let long = stream(5).assert_cardinality(3).unwrap();
    let items: Vec<_> = long.iter().collect();
    assert_eq!(items.len(), 4);
    let err = items[3].as_ref().unwrap_err().to_string();
    assert!(
        err.contains("expected to contain 3 elements but contained at least 4 elements."),
        "{err}"
    );
    let forever = || {
        Dataset::range(0, 3, 1)
            .unwrap()
            .assert_cardinality(-1)
            .unwrap()
    };
    assert_eq!(forever().cardinality().as_i64(), -1);
    let err = forever().iter().last().unwrap().unwrap_err().to_string();
    assert!(
        err.contains("expected to contain an infinite number of elements but contained only 3"),
        "{err}"
    );
    assert!(stream(3).assert_cardinality(-2).is_err());
}
