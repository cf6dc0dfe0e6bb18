//! `Dataset::save` / `Dataset::load`: round trips of every dtype and of nested structures,
//! empty datasets, shards, parts saved by several writers, atomic replacement, checksums.

use std::sync::{Arc, Barrier};

use npyflow::dataset::{BatchOptions, LoadOptions, Rng, SaveOptions, ShuffleOptions};
use npyflow::{DType, Dataset, DateUnit, Element, Error, Tensor, TimeUnit};

/// `n` rows of `dtype` with element shape `shape`, bytes drawn from `seed`.
fn rows(dtype: DType, n: usize, shape: &[usize], seed: u64) -> Tensor {
    let mut full = vec![n];
    full.extend_from_slice(shape);
    let count: usize = full.iter().product();
    let mut rng = Rng::keyed(seed, &[]);
    let mut bytes: Vec<u8> = (0..count * dtype.itemsize())
        .map(|_| rng.below(256) as u8)
        .collect();
    match dtype {
        DType::Bool => bytes.iter_mut().for_each(|b| *b &= 1),
        // Valid code points: small values in each 4-byte unit.
        DType::Unicode(_) => bytes
            .chunks_mut(4)
            .for_each(|c| c.copy_from_slice(&u32::from(c[0] % 90 + 32).to_ne_bytes())),
        _ => {}
    }
    Tensor::new(dtype, &full, npyflow::Buffer::from_vec(bytes)).unwrap()
}

fn all_dtypes() -> Vec<DType> {
    vec![
        DType::Bool,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Float16,
        DType::Float32,
        DType::Float64,
        DType::Complex64,
        DType::Complex128,
        DType::Bytes(5),
        DType::Unicode(3),
        DType::DateTime64(TimeUnit::new(DateUnit::Seconds)),
        DType::TimeDelta64(TimeUnit {
            unit: DateUnit::Milliseconds,
            multiple: 10,
        }),
    ]
}

/// Bitwise equality of two passes (NaNs in random float bytes compare equal this way).
fn same(a: &Dataset, b: &Dataset) {
    let (x, y) = (a.to_vec().unwrap(), b.to_vec().unwrap());
    assert_eq!(x.len(), y.len());
    for (i, (p, q)) in x.iter().zip(&y).enumerate() {
        assert_eq!(p.spec(), q.spec(), "element {i}");
        for (s, t) in p.tensors().iter().zip(q.tensors()) {
            assert_eq!(s.as_bytes(), t.as_bytes(), "element {i}");
        }
    }
}

#[test]
fn every_dtype_round_trips_in_a_nested_structure() {
    let dir = tempfile::tempdir().unwrap();
    for (k, dtype) in all_dtypes().into_iter().enumerate() {
        let n = 7;
        let element = Element::tuple([
            Element::from(rows(dtype, n, &[2, 3], k as u64)),
            Element::dict([
                ("label", Element::from(rows(DType::Int64, n, &[], 99))),
                ("x", Element::from(rows(dtype, n, &[], k as u64 + 50))),
            ]),
        ]);
        let ds = Dataset::from_tensor_slices(element).unwrap();
        let path = dir.path().join(format!("d{k}"));
        let summary = ds.save(&path, ()).unwrap();
        assert_eq!(
            (summary.elements, summary.shards, summary.complete),
            (7, 1, true)
        );
        let back = Dataset::load(&path, ()).unwrap();
        assert_eq!(back.element_spec(), ds.element_spec(), "{dtype}");
        assert_eq!(back.len().unwrap(), 7);
        same(&back, &ds);
        // The shard files are plain .npy files of the stacked component.
        let files: Vec<_> = std::fs::read_dir(
            path.join(
                std::fs::read_dir(&path)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .find(|n| n.to_string_lossy().starts_with("g-"))
                    .unwrap(),
            ),
        )
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "npy"))
        .collect();
        assert_eq!(files.len(), 3, "{files:?}");
    }
}

#[test]
fn empty_datasets_keep_their_spec() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::range(0, 10, 1)
        .unwrap()
        .filter(|e: &Element| Ok(e.as_tensor().unwrap().to_i64_scalar("x")? > 100))
        .batch(3, ())
        .unwrap();
    let summary = ds.save(dir.path().join("e"), ()).unwrap();
    assert_eq!(
        (summary.elements, summary.shards, summary.complete),
        (0, 0, true)
    );
    let back = Dataset::load(dir.path().join("e"), ()).unwrap();
    assert_eq!(back.element_spec(), ds.element_spec());
    assert_eq!(back.len().unwrap(), 0);
    assert!(back.to_vec().unwrap().is_empty());
}

#[test]
fn shards_are_random_access_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let x = rows(DType::Float32, 103, &[4], 1);
    let y = Tensor::from_vec((0..103i64).collect(), &[103]).unwrap();
    let ds = Dataset::from_tensor_slices(Element::tuple([x, y])).unwrap();
    let path = dir.path().join("s");
    // 16 bytes of x and 8 of y a row: a new shard every 10 rows or so.
    let summary = ds
        .save(&path, SaveOptions::new().max_shard_bytes(230))
        .unwrap();
    assert_eq!(summary.shards, 11);
    let back = Dataset::load(&path, ()).unwrap();
    same(&back, &ds);
    for i in [0u64, 9, 10, 55, 102] {
        assert_eq!(back.get(i).unwrap(), ds.get(i).unwrap());
    }
    // A global shuffle of the loaded dataset, batched (rows gathered across shards), holds
    // every label once, and resumes from a small state.
    let shuffled = back
        .global_shuffle(
            ShuffleOptions::new()
                .seed(4)
                .reshuffle_each_iteration(false),
        )
        .unwrap()
        .batch(8, BatchOptions::new())
        .unwrap();
    let batches = shuffled.to_vec().unwrap();
    let mut labels: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.get(1)
                .unwrap()
                .as_tensor()
                .unwrap()
                .view::<i64>()
                .unwrap()
                .to_vec()
        })
        .collect();
    let xs_match = batches.iter().all(|b| {
        let xs = b.get(0).unwrap().as_tensor().unwrap().clone();
        let ls = b.get(1).unwrap().as_tensor().unwrap().clone();
        (0..ls.shape()[0]).all(|r| {
            let label = ls.view::<i64>().unwrap()[r] as u64;
            let want = ds.get(label).unwrap();
            xs.row(r).unwrap().as_bytes() == want.get(0).unwrap().as_tensor().unwrap().as_bytes()
        })
    });
    assert!(xs_match);
    labels.sort_unstable();
    assert_eq!(labels, (0..103).collect::<Vec<_>>());
    let mut it = shuffled.iter();
    it.nth(4);
    let state = it.get_state().unwrap();
    assert!(state.len() < 200);
    let mut again = shuffled.iter();
    again.set_state(&state).unwrap();
    assert_eq!(again.next().unwrap().unwrap(), batches[5]);
    // shard() over a loaded dataset splits it as over any random-access one.
    let s = back.shard(3, 1).unwrap();
    assert_eq!(s.get(2).unwrap(), ds.get(7).unwrap());
}

#[test]
fn a_shard_func_groups_elements_by_shard() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::range(0, 20, 1).unwrap();
    let path = dir.path().join("f");
    let summary = ds
        .save(
            &path,
            SaveOptions::new().shard_func(|e: &Element| {
                Ok((e.as_tensor().unwrap().to_i64_scalar("x")? % 3) as u64)
            }),
        )
        .unwrap();
    assert_eq!(summary.shards, 3);
    let got: Vec<i64> = Dataset::load(&path, ())
        .unwrap()
        .to_vec()
        .unwrap()
        .iter()
        .map(|e| e.as_tensor().unwrap().to_i64_scalar("x").unwrap())
        .collect();
    let want: Vec<i64> = (0..3)
        .flat_map(|r| (0..20).filter(move |v| v % 3 == r))
        .collect();
    assert_eq!(got, want);
}

fn labels(path: &std::path::Path) -> Vec<i64> {
    Dataset::load(path, ())
        .unwrap()
        .to_vec()
        .unwrap()
        .iter()
        .map(|e| e.as_tensor().unwrap().to_i64_scalar("x").unwrap())
        .collect()
}

#[test]
fn a_failed_save_leaves_the_previous_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a");
    Dataset::range(0, 5, 1).unwrap().save(&path, ()).unwrap();
    // The second save fails at element 30 (after writing its first shards).
    let failing = Dataset::range(100, 200, 1)
        .unwrap()
        .map(
            |e: Element| {
                if e.as_tensor().unwrap().to_i64_scalar("x")? == 130 {
                    Err(Error::Function("boom".into()))
                } else {
                    Ok(e)
                }
            },
            (),
        )
        .unwrap();
    let err = failing
        .save(&path, SaveOptions::new().max_shard_bytes(64))
        .unwrap_err();
    assert!(err.to_string().contains("element 30"), "{err}");
    assert_eq!(labels(&path), (0..5).collect::<Vec<_>>());
    // A good save replaces it and removes the old generation.
    Dataset::range(7, 9, 1).unwrap().save(&path, ()).unwrap();
    assert_eq!(labels(&path), vec![7, 8]);
    let generations = std::fs::read_dir(&path)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("g-")
        })
        .count();
    // The new one, and the failed attempt's (empty of files, no manifest).
    assert!(generations <= 2, "{generations}");
    // Nothing at all before the first save: load says so, as a file that is not there.
    let none = Dataset::load(dir.path().join("never"), ()).unwrap_err();
    assert!(none.to_string().contains("no saved dataset"), "{none}");
}

#[test]
fn parts_written_by_several_writers_appear_with_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let source = Dataset::range(0, 40, 1).unwrap();
    // Sequentially: nothing is visible until the last part.
    for i in 0..3u64 {
        let part = source.shard(3, i).unwrap();
        let s = part
            .save(&path, SaveOptions::new().part(i, 3, "run1"))
            .unwrap();
        assert_eq!(s.complete, i == 2);
        if i < 2 {
            assert!(Dataset::load(&path, ()).is_err());
        }
    }
    let want: Vec<i64> = (0..3)
        .flat_map(|i| (0..40).filter(move |v| v % 3 == i))
        .collect();
    assert_eq!(labels(&path), want);
    // The same save id again is refused (its files are the visible dataset).
    let again = source.save(&path, SaveOptions::new().part(0, 3, "run1"));
    assert!(again.unwrap_err().to_string().contains("new save_id"));
    // Four writers at once: the dataset appears whole, in part order.
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4u64)
        .map(|i| {
            let (barrier, path) = (Arc::clone(&barrier), path.clone());
            std::thread::spawn(move || {
                let part = Dataset::range(1000, 1100, 1).unwrap().shard(4, i).unwrap();
                barrier.wait();
                part.save(&path, SaveOptions::new().part(i, 4, "run2"))
                    .unwrap()
                    .complete
            })
        })
        .collect();
    let done: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(done.iter().any(|&d| d), "{done:?}");
    let want: Vec<i64> = (0..4)
        .flat_map(|i| (1000..1100).filter(move |v| (v - 1000) % 4 == i))
        .collect();
    assert_eq!(labels(&path), want);
    // Bad part numbers and ids are refused.
    assert!(source
        .save(&path, SaveOptions::new().part(3, 3, "x"))
        .is_err());
    let bad = source.save(&path, SaveOptions::new().part(0, 2, "a/b"));
    assert!(bad.unwrap_err().to_string().contains("save_id"));
}

#[test]
fn a_damaged_shard_file_is_named_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let x = rows(DType::Float64, 50, &[3], 5);
    Dataset::from_tensor_slices(x)
        .unwrap()
        .save(&path, ())
        .unwrap();
    let generation = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("g-"))
        .unwrap();
    let shard = std::fs::read_dir(&generation)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "npy"))
        .unwrap();
    let mut bytes = std::fs::read(&shard).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&shard, &bytes).unwrap();
    let err = Dataset::load(&path, ()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err.root(), Error::Data(_)), "{text}");
    assert!(
        text.contains(&shard.display().to_string()) && text.contains("CRC-32"),
        "{text}"
    );
    // Without verification it loads (the flipped byte is data).
    assert_eq!(
        Dataset::load(&path, LoadOptions::new().verify(false))
            .unwrap()
            .len()
            .unwrap(),
        50
    );
    // A declared element spec that differs is refused.
    let wrong = npyflow::ElementSpec::Tensor(npyflow::TensorSpec {
        dtype: DType::Float32,
        shape: npyflow::PartialShape::known(&[3]),
    });
    let err = Dataset::load(&path, LoadOptions::new().verify(false).element_spec(wrong));
    assert!(err.unwrap_err().to_string().contains("element_spec"));
}

#[test]
fn elements_of_changing_shape_round_trip_and_bad_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::range(0, 6, 1)
        .unwrap()
        .map(
            |e: Element| {
                let n = e.as_tensor().unwrap().to_i64_scalar("x")? as usize;
                Ok(Tensor::from_vec(vec![n as u8; n / 2], &[n / 2])?.into())
            },
            npyflow::dataset::MapOptions::new().output_spec(npyflow::ElementSpec::Tensor(
                npyflow::TensorSpec {
                    dtype: DType::UInt8,
                    shape: npyflow::PartialShape::new(&[None]),
                },
            )),
        )
        .unwrap();
    let path = dir.path().join("x");
    // Shapes 0, 0, 1, 1, 2, 2: a shard per run of one shape.
    assert_eq!(ds.save(&path, ()).unwrap().shards, 3);
    let back = Dataset::load(&path, ()).unwrap();
    assert_eq!(back.to_vec().unwrap(), ds.to_vec().unwrap());
    assert_eq!(back.element_spec(), ds.element_spec());
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(ds
        .save(&file, ())
        .unwrap_err()
        .to_string()
        .contains("is a file"));
    // Elements that hold datasets cannot be saved.
    let windows = Dataset::range(0, 4, 1)
        .unwrap()
        .window(2, None, 1, false)
        .unwrap();
    let err = windows
        .save(dir.path().join("w"), ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("datasets"), "{err}");
}

#[test]
fn batches_with_a_short_last_one_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::range(0, 10, 1).unwrap().batch(4, ()).unwrap();
    let path = dir.path().join("b");
    // A new shape starts a new shard, so the order is kept.
    assert_eq!(ds.save(&path, ()).unwrap().shards, 2);
    let back = Dataset::load(&path, ()).unwrap();
    assert_eq!(back.element_spec(), ds.element_spec());
    assert_eq!(back.to_vec().unwrap(), ds.to_vec().unwrap());
    assert_eq!(back.get(2).unwrap().to_string(), "[8 9]");
    // Rows of one shape from shards of two: unbatched and batched again, as any dataset.
    let rebatched = back.unbatch().unwrap().batch(5, ()).unwrap();
    assert_eq!(rebatched.to_vec().unwrap()[1].to_string(), "[5 6 7 8 9]");
    // With a shard_func, rows of each shape keep their order within their shard.
    let path = dir.path().join("f");
    ds.save(&path, SaveOptions::new().shard_func(|_| Ok(0)))
        .unwrap();
    assert_eq!(
        Dataset::load(&path, ()).unwrap().to_vec().unwrap(),
        ds.to_vec().unwrap()
    );
}

#[test]
fn a_url_saves_and_loads_through_the_storage_layer() {
    // file:// goes through the same operations as s3:// (put, list, ranged reads).
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/remote", dir.path().display());
    let x = rows(DType::Float32, 40, &[3], 8);
    let y = Tensor::from_vec((0..40i64).collect(), &[40]).unwrap();
    let ds = Dataset::from_tensor_slices(Element::dict([("x", x), ("y", y)])).unwrap();
    let summary = ds
        .save(&url, SaveOptions::new().max_shard_bytes(200))
        .unwrap();
    assert!(summary.complete && summary.shards > 1);
    let back = Dataset::load(&url, ()).unwrap();
    assert_eq!(back.element_spec(), ds.element_spec());
    same(&back, &ds);
    assert_eq!(back.get(17).unwrap(), ds.get(17).unwrap());
    // The same files as a local save: a local load reads them too.
    same(&Dataset::load(dir.path().join("remote"), ()).unwrap(), &ds);
    // A second save replaces the first and removes its generation.
    Dataset::range(0, 3, 1).unwrap().save(&url, ()).unwrap();
    assert_eq!(Dataset::load(&url, ()).unwrap().len().unwrap(), 3);
    // (On file:// the old generation's directory stays, empty: object stores have none.)
    let files: usize = std::fs::read_dir(dir.path().join("remote"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("g-"))
        .map(|g| std::fs::read_dir(g).unwrap().count())
        .sum();
    assert_eq!(files, 2); // the new generation's shard file and part manifest
                          // Nothing saved at a URL: the error says so.
    let none = Dataset::load(format!("file://{}/none", dir.path().display()), ());
    assert!(none.unwrap_err().to_string().contains("no saved dataset"));
}
