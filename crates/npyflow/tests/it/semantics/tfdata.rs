//! Each transformation on concrete inputs, with the outputs tf.data documents for them (its
//! docstrings and kernel tests, tensorflow/python/data), and tf.data's argument checks and
//! error behaviour.

use npyflow::dataset::MapOptions;
use npyflow::dataset::{BatchOptions, InterleaveOptions, Parallelism, ShuffleOptions};
use npyflow::dataset::{BucketOptions, Cardinality, Dataset, AUTOTUNE};
use npyflow::format::npy::write_npy;
use npyflow::{DType, Element, ElementSpec, Error, PartialShape, Tensor, TensorSpec};

use crate::common::same_order;

fn strs(ds: &Dataset) -> Vec<String> {
    ds.iter()
        .map(|e| {
            e.map(|e| e.to_string())
                .unwrap_or_else(|e| format!("ERR {e}"))
        })
        .collect()
}

fn range(n: i64) -> Dataset {
    Dataset::range(0, n, 1).unwrap()
}

/// `0..n` with the element 2 an error saying `msg`.
fn range_failing_at_2(n: i64, msg: &'static str) -> Dataset {
    range(n)
        .map(
            move |x| {
                if int(&x) == 2 {
                    Err(Error::msg(msg))
                } else {
                    Ok(x)
                }
            },
            (),
        )
        .unwrap()
}

fn i64s(v: &[i64]) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap()
}

fn int(e: &Element) -> i64 {
    e.as_tensor().unwrap().to_i64_scalar("x").unwrap()
}

fn fill(x: Element) -> npyflow::Result<Element> {
    let n = x.into_tensor()?.to_i64_scalar("x")?;
    Ok(Tensor::from_vec(vec![n; n as usize], &[n as usize])?.into())
}

fn is_invalid<T: std::fmt::Debug>(r: npyflow::Result<T>, needle: &str) {
    match r {
        Err(e @ Error::InvalidArgument(_)) => {
            assert!(e.to_string().contains(needle), "{e} lacks {needle:?}")
        }
        other => panic!("expected InvalidArgument containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn range_is_pythons() {
    assert_eq!(strs(&range(5)), ["0", "1", "2", "3", "4"]);
    assert_eq!(strs(&Dataset::range(2, 5, 1).unwrap()), ["2", "3", "4"]);
    assert_eq!(strs(&Dataset::range(1, 5, 2).unwrap()), ["1", "3"]);
    assert!(strs(&Dataset::range(1, 5, -2).unwrap()).is_empty());
    assert!(strs(&Dataset::range(5, 1, 1).unwrap()).is_empty());
    assert_eq!(strs(&Dataset::range(5, 1, -2).unwrap()), ["5", "3"]);
    assert_eq!(
        Dataset::range(i64::MIN, i64::MAX, i64::MAX)
            .unwrap()
            .cardinality(),
        Cardinality::Finite(3)
    );
    is_invalid(Dataset::range(0, 5, 0), "step");
    let spec = range(1).element_spec().clone();
    assert_eq!(spec.to_string(), "TensorSpec(shape=(), dtype=int64)");
}

#[test]
fn from_tensor_slices_structures() {
    let ds =
        Dataset::from_tensor_slices(Element::dict([("a", i64s(&[1, 2])), ("b", i64s(&[3, 4]))]))
            .unwrap();
    assert_eq!(strs(&ds), ["{'a': 1, 'b': 3}", "{'a': 2, 'b': 4}"]);
    let m = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6], &[3, 2]).unwrap();
    let t = Dataset::from_tensor_slices(Element::tuple([m, i64s(&[7, 8, 9])])).unwrap();
    assert_eq!(strs(&t), ["([1 2], 7)", "([3 4], 8)", "([5 6], 9)"]);
    assert_eq!(
        t.element_spec().to_string(),
        "(TensorSpec(shape=(2,), dtype=int64), TensorSpec(shape=(), dtype=int64))"
    );
    // Errors: sizes that differ (both named), a scalar component.
    is_invalid(
        Dataset::from_tensor_slices(Element::tuple([i64s(&[1, 2]), i64s(&[1, 2, 3])])),
        "component 0 has 2, component 1 has 3",
    );
    is_invalid(
        Dataset::from_tensor_slices(Tensor::scalar(1i64)),
        "scalar (rank 0)",
    );
    // An empty array gives an empty dataset with the rows' spec.
    let empty =
        Dataset::from_tensor_slices(Tensor::zeros(DType::Float32, &[0, 3]).unwrap()).unwrap();
    assert_eq!(empty.cardinality(), Cardinality::Finite(0));
    assert!(strs(&empty).is_empty());
    assert_eq!(
        empty.element_spec().to_string(),
        "TensorSpec(shape=(3,), dtype=float32)"
    );
}

#[test]
fn slices_share_the_array() {
    let x = Tensor::from_vec((0..12i32).collect(), &[4, 3]).unwrap();
    let ds = Dataset::from_tensor_slices(x.clone()).unwrap();
    let row = ds.get(2).unwrap().into_tensor().unwrap();
    assert!(row.buffer().shares_owner_with(x.buffer()));
    assert_eq!(row.view::<i32>().unwrap(), &[6, 7, 8]);
}

#[test]
fn from_tensors_is_one_element() {
    let ds = Dataset::from_tensors(Element::tuple([i64s(&[1, 2, 3]), i64s(&[4])]));
    assert_eq!(strs(&ds), ["([1 2 3], [4])"]);
    assert_eq!(ds.cardinality(), Cardinality::Finite(1));
}

#[test]
fn npy_rows_are_mapped_and_shards_read_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let a = Tensor::from_vec((0..6).map(|v| v as f32).collect(), &[3, 2]).unwrap();
    let b = Tensor::from_vec(vec![6f32, 7.0], &[1, 2]).unwrap();
    write_npy(dir.path().join("a.npy"), &a).unwrap();
    write_npy(dir.path().join("b.npy"), &b).unwrap();
    let one = Dataset::from_npy(dir.path().join("a.npy")).unwrap();
    let row = one.get(1).unwrap().into_tensor().unwrap();
    assert_eq!(row.buffer().kind(), npyflow::BufferKind::Mapped);
    let both =
        Dataset::from_npy_files([dir.path().join("a.npy"), dir.path().join("b.npy")]).unwrap();
    assert_eq!(strs(&both), ["[0. 1.]", "[2. 3.]", "[4. 5.]", "[6. 7.]"]);
    assert_eq!(both.cardinality(), Cardinality::Finite(4));
    // A file whose rows differ is named.
    write_npy(dir.path().join("c.npy"), &i64s(&[1, 2])).unwrap();
    let e = Dataset::from_npy_files([dir.path().join("a.npy"), dir.path().join("c.npy")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("c.npy") && e.contains("a.npy"), "{e}");
    write_npy(dir.path().join("s.npy"), &Tensor::scalar(1u8)).unwrap();
    assert!(Dataset::from_npy(dir.path().join("s.npy"))
        .unwrap_err()
        .to_string()
        .contains("s.npy"));
    assert!(Dataset::from_npy(dir.path().join("missing.npy"))
        .unwrap_err()
        .to_string()
        .contains("missing.npy"));
}

#[test]
fn npz_members_as_dicts() {
    use npyflow::format::npz::Compression;
    use npyflow::format::npz::NpzWriter;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.npz");
    let mut w = NpzWriter::create(&p).unwrap();
    w.add(
        "x",
        &Tensor::from_vec(vec![1u8, 2, 3, 4], &[2, 2]).unwrap(),
        Compression::Stored,
    )
    .unwrap();
    w.add("y", &i64s(&[5, 6]), Compression::Deflated).unwrap();
    w.add("z", &i64s(&[1, 2, 3]), Compression::Stored).unwrap();
    w.finish().unwrap();
    let ds = Dataset::from_npz(&p, Some(&["y", "x"])).unwrap();
    assert_eq!(strs(&ds), ["{'y': 5, 'x': [1 2]}", "{'y': 6, 'x': [3 4]}"]);
    let e = Dataset::from_npz(&p, None).unwrap_err().to_string();
    assert!(e.contains("member 'z'") && e.contains("d.npz"), "{e}");
}

#[test]
fn list_files_sorted_or_shuffled() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b.npy", "a.npy", "c.npy", "skip.txt"] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    let pattern = format!("{}/*.npy", dir.path().display());
    let sorted = Dataset::list_files(&pattern, false, None).unwrap();
    let names: Vec<String> = strs(&sorted);
    assert_eq!(names.len(), 3);
    assert!(
        names[0].ends_with("a.npy'") && names[2].ends_with("c.npy'"),
        "{names:?}"
    );
    let shuffled = Dataset::list_files(&pattern, true, Some(7)).unwrap();
    let mut epochs = Vec::new();
    for _ in 0..6 {
        let mut e = strs(&shuffled);
        epochs.push(e.clone());
        e.sort();
        assert_eq!(e, names);
    }
    assert!(epochs.iter().any(|e| *e != epochs[0]), "never reshuffled");
    let again = Dataset::list_files(&pattern, true, Some(7)).unwrap();
    assert_eq!(strs(&again), epochs[0], "a seed fixes the order");
    is_invalid(
        Dataset::list_files(&format!("{}/*.nothing", dir.path().display()), false, None),
        "no files matched",
    );
}

#[test]
fn generators_run_anew_each_pass() {
    let spec = ElementSpec::Tensor(TensorSpec {
        dtype: DType::Int64,
        shape: PartialShape::known(&[]),
    });
    let ds = Dataset::from_generator(spec, || {
        Ok(Box::new((0..3).map(|i: i64| {
            if i == 1 {
                Ok(Tensor::scalar(1.5f64).into())
            } else {
                Ok(Tensor::scalar(i).into())
            }
        })))
    });
    let out = strs(&ds);
    assert_eq!(out[0], "0");
    assert!(
        out[1].contains("does not match the declared spec"),
        "{out:?}"
    );
    assert_eq!(out[2], "2");
    assert_eq!(strs(&ds), out);
    assert_eq!(ds.cardinality(), Cardinality::Unknown);
}

#[test]
fn counter_is_endless() {
    let c = Dataset::counter(5, 3);
    assert_eq!(c.cardinality(), Cardinality::Infinite);
    assert_eq!(strs(&c.take(3)), ["5", "8", "11"]);
}

#[test]
fn zip_and_concatenate() {
    let a = Dataset::range(1, 4, 1).unwrap();
    let b = Dataset::range(4, 7, 1).unwrap();
    let c = Dataset::range(7, 13, 1).unwrap().batch(2, ()).unwrap();
    let z = Dataset::zip(vec![a.clone(), b.clone(), c]).unwrap();
    assert_eq!(
        strs(&z),
        ["(1, 4, [7 8])", "(2, 5, [ 9 10])", "(3, 6, [11 12])"]
    );
    let d = Dataset::range(13, 15, 1).unwrap();
    assert_eq!(
        strs(&Dataset::zip(vec![a.clone(), d]).unwrap()),
        ["(1, 13)", "(2, 14)"]
    );
    let named = Dataset::zip_dict(vec![("x".into(), a.clone()), ("y".into(), b.clone())]).unwrap();
    assert_eq!(strs(&named)[0], "{'x': 1, 'y': 4}");
    is_invalid(Dataset::zip(vec![]), "at least one");

    let cat = a.concatenate(&Dataset::range(4, 8, 1).unwrap()).unwrap();
    assert_eq!(strs(&cat), ["1", "2", "3", "4", "5", "6", "7"]);
    assert_eq!(cat.cardinality(), Cardinality::Finite(7));
    let floats = Dataset::from_tensor_slices(Tensor::from_vec(vec![1f32], &[1]).unwrap()).unwrap();
    is_invalid(a.concatenate(&floats), "incompatible");
    is_invalid(a.concatenate(&z), "incompatible");
    // Shapes that differ become unknown dimensions.
    let rows2 = Dataset::from_tensors(i64s(&[1, 2]));
    let rows3 = Dataset::from_tensors(i64s(&[1, 2, 3]));
    let mixed = rows2.concatenate(&rows3).unwrap();
    assert_eq!(
        mixed.element_spec().to_string(),
        "TensorSpec(shape=(None,), dtype=int64)"
    );
    assert_eq!(
        a.concatenate(&a.repeat(None)).unwrap().cardinality(),
        Cardinality::Infinite
    );
}

#[test]
fn choose_from_datasets_follows_the_choices() {
    let word = |s: &str| {
        Dataset::from_tensors(
            Tensor::new(
                DType::Bytes(3),
                &[],
                npyflow::Buffer::from_vec(s.as_bytes().to_vec()),
            )
            .unwrap(),
        )
        .repeat(None)
    };
    let choice = range(3).repeat(Some(3));
    let ds =
        Dataset::choose_from_datasets(vec![word("foo"), word("bar"), word("baz")], &choice, true)
            .unwrap();
    assert_eq!(strs(&ds), ["b'foo'", "b'bar'", "b'baz'"].repeat(3));
    // An index outside the inputs is an error at its place; the pass goes on.
    let bad = Dataset::from_tensor_slices(i64s(&[0, 5, 1])).unwrap();
    let out = strs(&Dataset::choose_from_datasets(vec![range(3), range(3)], &bad, true).unwrap());
    assert_eq!(out[0], "0");
    assert!(out[1].contains("out of range [0, 2)"), "{out:?}");
    assert_eq!(out[2], "0");
    // An ended input stops the run, or is skipped without stop_on_empty_dataset.
    let short = Dataset::from_tensor_slices(i64s(&[0, 0, 1, 0])).unwrap();
    let one = Dataset::range(10, 11, 1).unwrap();
    let stop = Dataset::choose_from_datasets(vec![one.clone(), range(5)], &short, true).unwrap();
    assert_eq!(strs(&stop), ["10"]);
    let skip = Dataset::choose_from_datasets(vec![one, range(5)], &short, false).unwrap();
    assert_eq!(strs(&skip), ["10", "0"]);
    let floats = Dataset::from_tensors(Tensor::scalar(1.0f32));
    is_invalid(
        Dataset::choose_from_datasets(vec![range(3)], &floats, true),
        "int64 scalars",
    );
}

#[test]
fn sample_from_datasets_mixes_by_weight() {
    let zeros = Dataset::from_tensors(Tensor::scalar(0i64)).repeat(None);
    let ones = Dataset::from_tensors(Tensor::scalar(1i64)).repeat(None);
    let ds = Dataset::sample_from_datasets(
        vec![zeros.clone(), ones.clone()],
        Some(vec![0.2, 0.8]),
        Some(1),
        false,
    )
    .unwrap();
    let picks: Vec<i64> = ds.take(10_000).to_vec().unwrap().iter().map(int).collect();
    let ones_share = picks.iter().sum::<i64>() as f64 / 10_000.0;
    assert!((ones_share - 0.8).abs() < 0.03, "{ones_share}");
    let again =
        Dataset::sample_from_datasets(vec![zeros, ones], Some(vec![0.2, 0.8]), Some(1), false)
            .unwrap();
    let picks2: Vec<i64> = again.take(100).to_vec().unwrap().iter().map(int).collect();
    assert_eq!(picks2, picks[..100], "a seed fixes the draws");
    // Finite inputs: every element once when not stopping on empty.
    let zero_to_5_and_5_to = |end: i64, stop_on_empty: bool| {
        let inputs = vec![range(5), Dataset::range(5, end, 1).unwrap()];
        Dataset::sample_from_datasets(inputs, None, Some(3), stop_on_empty).unwrap()
    };
    let all = zero_to_5_and_5_to(10, false);
    let mut got: Vec<i64> = all.to_vec().unwrap().iter().map(int).collect();
    got.sort();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    assert_eq!(all.cardinality(), Cardinality::Finite(10));
    let stop = zero_to_5_and_5_to(100, true);
    assert!(stop.to_vec().unwrap().len() < 95);
    is_invalid(
        Dataset::sample_from_datasets(vec![range(2)], Some(vec![0.5, 0.5]), None, false),
        "2 weights for 1 datasets",
    );
    is_invalid(
        Dataset::sample_from_datasets(vec![range(2)], Some(vec![-1.0]), None, false),
        "non-negative",
    );
}

#[test]
fn map_filter_flat_map_interleave() {
    assert_eq!(
        strs(
            &Dataset::range(1, 6, 1)
                .unwrap()
                .map(
                    |x: Element| {
                        let v = x.into_tensor()?.to_i64_scalar("x")?;
                        Ok(Tensor::scalar(v * 2).into())
                    },
                    ()
                )
                .unwrap()
        ),
        ["2", "4", "6", "8", "10"]
    );
    let f = Dataset::from_tensor_slices(i64s(&[1, 2, 3]))
        .unwrap()
        .filter(|x| Ok(int(x) < 3));
    assert_eq!(strs(&f), ["1", "2"]);
    assert_eq!(f.cardinality(), Cardinality::Unknown);
    let m = Tensor::from_vec((1..10i64).collect(), &[3, 3]).unwrap();
    let fm = Dataset::from_tensor_slices(m)
        .unwrap()
        .flat_map(Dataset::from_tensor_slices, None)
        .unwrap();
    assert_eq!(strs(&fm).concat(), "123456789");
    // interleave with block_length 1: round robin, refilled as inputs end.
    let il = Dataset::range(1, 4, 1)
        .unwrap()
        .interleave(
            |x| Ok(Dataset::from_tensors(x).repeat(Some(2))),
            InterleaveOptions::new().cycle_length(2),
        )
        .unwrap();
    assert_eq!(strs(&il).concat(), "121233");
    let auto = Dataset::range(1, 4, 1)
        .unwrap()
        .interleave(|x| Ok(Dataset::from_tensors(x)), InterleaveOptions::new())
        .unwrap();
    assert_eq!(strs(&auto).len(), 3);
    is_invalid(
        range(3).interleave(
            |x| Ok(Dataset::from_tensors(x)),
            InterleaveOptions::new().cycle_length(0),
        ),
        "cycle_length",
    );
    is_invalid(
        range(3).interleave(
            |x| Ok(Dataset::from_tensors(x)),
            InterleaveOptions::new().cycle_length(2).block_length(0),
        ),
        "block_length",
    );
}

#[test]
fn map_specs_follow_the_function() {
    // fill([x], x) has a shape that follows the value: the traced spec leaves it unknown.
    let ds = Dataset::range(1, 5, 1).unwrap().map(fill, ()).unwrap();
    assert_eq!(
        ds.element_spec().to_string(),
        "TensorSpec(shape=(None,), dtype=int64)"
    );
    let cast = range(3)
        .map(
            |x: Element| Ok(x.into_tensor()?.cast(DType::Float32)?.into()),
            (),
        )
        .unwrap();
    assert_eq!(
        cast.element_spec().to_string(),
        "TensorSpec(shape=(), dtype=float32)"
    );
    // A function that fails on placeholders is refused, pointing to MapOptions::output_spec.
    is_invalid(
        range(3).map(
            |x| {
                if int(&x) < 5 {
                    Err(Error::msg("too small"))
                } else {
                    Ok(x)
                }
            },
            (),
        ),
        "the output_spec of its options",
    );
    // An element that breaks the declared spec is an error at its place.
    let declared = range(3)
        .map(
            |x: Element| Ok(Tensor::zeros(DType::Int8, &[int(&x) as usize])?.into()),
            MapOptions::new().output_spec(ElementSpec::Tensor(TensorSpec {
                dtype: DType::Int8,
                shape: PartialShape::known(&[1]),
            })),
        )
        .unwrap();
    let out = strs(&declared);
    assert!(out[0].contains("does not fit the spec"), "{out:?}");
    assert_eq!(out[1], "[0]");
}

/// A bytes scalar of its text's width (one byte for an empty text, as NumPy's `S1`).
fn text(t: &str) -> Tensor {
    let mut bytes = t.as_bytes().to_vec();
    bytes.resize(bytes.len().max(1), 0);
    Tensor::new(
        DType::Bytes(bytes.len()),
        &[],
        npyflow::Buffer::from_vec(bytes),
    )
    .unwrap()
}

/// The strings of a bytes tensor, its padding dropped, as NumPy's `tolist` gives them.
fn texts(t: &Tensor) -> Vec<String> {
    let width = t.dtype().itemsize();
    t.as_bytes()
        .chunks(width.max(1))
        .map(|c| {
            String::from_utf8_lossy(c)
                .trim_end_matches('\0')
                .to_string()
        })
        .collect()
}

#[test]
fn strings_a_function_makes_keep_their_widths_and_batch_at_the_widest() {
    // tf.data (2.21) over [b"a.npy", b"bb.npy", b"ccc.npy"] with an upper-casing
    // numpy_function: elements A.NPY, BB.NPY, CCC.NPY; batch(2) [[A.NPY, BB.NPY], [CCC.NPY]];
    // rebatch(3) of that [[A.NPY, BB.NPY, CCC.NPY]]; padded_batch(2, [2]) of each reshaped
    // to [1] [[[A.NPY, ""], [BB.NPY, ""]], [[CCC.NPY, ""]]].
    let names = ["a.npy", "bb.npy", "ccc.npy"];
    let upper = |x: Element| -> npyflow::Result<Element> {
        let t = x.into_tensor()?;
        Ok(text(&texts(&t)[0].to_uppercase()).into())
    };
    let inputs: Vec<Dataset> = names
        .iter()
        .map(|n| Dataset::from_tensors(text(n)))
        .collect();
    let mut ds = inputs[0].clone();
    for more in &inputs[1..] {
        ds = ds.concatenate(more).unwrap();
    }
    // Three widths: the concatenation's spec has strings of any width.
    assert_eq!(
        ds.element_spec().to_string(),
        "TensorSpec(shape=(), dtype=|S0)"
    );
    for options in [
        MapOptions::new(),
        MapOptions::new().spec_from_first_element(),
    ] {
        let up = ds.map(upper, options).unwrap();
        assert_eq!(
            up.element_spec().to_string(),
            "TensorSpec(shape=(), dtype=|S0)"
        );
        let each: Vec<Tensor> = up
            .iter()
            .map(|e| e.unwrap().into_tensor().unwrap())
            .collect();
        let widths: Vec<DType> = each.iter().map(Tensor::dtype).collect();
        assert_eq!(widths, [DType::Bytes(5), DType::Bytes(6), DType::Bytes(7)]);
        let batches: Vec<Tensor> = up
            .batch(2, ())
            .unwrap()
            .iter()
            .map(|e| e.unwrap().into_tensor().unwrap())
            .collect();
        assert_eq!(texts(&batches[0]), ["A.NPY", "BB.NPY"]);
        assert_eq!(batches[0].dtype(), DType::Bytes(6));
        assert_eq!(texts(&batches[1]), ["CCC.NPY"]);
        let rebatched = up.batch(2, ()).unwrap().rebatch(&[3], false).unwrap();
        let all = rebatched.to_vec().unwrap().remove(0).into_tensor().unwrap();
        assert_eq!(texts(&all), ["A.NPY", "BB.NPY", "CCC.NPY"]);
        assert_eq!(all.dtype(), DType::Bytes(7));
    }
    // A declared width widens shorter strings to it, and refuses longer ones (they would
    // be cut) at their element.
    let declared = |width| {
        ds.map(
            upper,
            MapOptions::new().output_spec(ElementSpec::Tensor(TensorSpec {
                dtype: DType::Bytes(width),
                shape: PartialShape::known(&[]),
            })),
        )
        .unwrap()
    };
    let wide: Vec<Tensor> = declared(8)
        .iter()
        .map(|e| e.unwrap().into_tensor().unwrap())
        .collect();
    assert!(wide.iter().all(|t| t.dtype() == DType::Bytes(8)));
    assert_eq!(texts(&wide[0]), ["A.NPY"]);
    let out = strs(&declared(6));
    assert!(out[2].contains("does not fit the spec"), "{out:?}");
    assert_eq!(out.len(), 3);
}

#[test]
fn errors_arrive_at_their_element_and_iteration_goes_on() {
    let ds = range_failing_at_2(5, "bad element");
    let out = strs(&ds);
    assert_eq!(out.len(), 5);
    assert_eq!(out[1], "1");
    assert!(
        out[2].starts_with("ERR map: element 2: bad element"),
        "{out:?}"
    );
    assert_eq!(out[3], "3");
    assert_eq!(strs(&ds.ignore_errors(false)), ["0", "1", "3", "4"]);
    // A panic is an error too.
    let panicky = range(5)
        .map(
            |x| {
                if int(&x) == 3 {
                    panic!("boom");
                }
                Ok(x)
            },
            (),
        )
        .unwrap();
    let out = strs(&panicky);
    assert!(out[3].contains("panicked: boom"), "{out:?}");
    assert_eq!(out[4], "4");
    // In a batch, the error takes the whole batch's place (a difference from tf.data, which
    // would go on with [3 4] and [5]).
    let batched = range_failing_at_2(6, "bad").batch(2, ()).unwrap();
    let out = strs(&batched);
    assert_eq!(out[0], "[0 1]");
    assert!(out[1].starts_with("ERR"));
    assert_eq!(out[2..], ["[4 5]"]);
    // The same through the sequential path (a generator is not random-access).
    let spec = range(1).element_spec().clone();
    let seq = Dataset::from_generator(spec, || {
        Ok(Box::new((0..6i64).map(|i| {
            if i == 2 {
                Err(Error::msg("bad"))
            } else {
                Ok(Tensor::scalar(i).into())
            }
        })))
    });
    let out = strs(&seq.batch(2, ()).unwrap());
    assert_eq!(out[0], "[0 1]");
    assert!(out[1].starts_with("ERR"));
    assert_eq!(out[2..], ["[4 5]"]);
}

#[test]
fn batch_and_padded_batch() {
    assert_eq!(
        strs(&range(8).batch(3, ()).unwrap()),
        ["[0 1 2]", "[3 4 5]", "[6 7]"]
    );
    assert_eq!(
        strs(
            &range(8)
                .batch(3, BatchOptions::new().drop_remainder(true))
                .unwrap()
        ),
        ["[0 1 2]", "[3 4 5]"]
    );
    assert_eq!(
        range(8)
            .batch(3, BatchOptions::new().drop_remainder(true))
            .unwrap()
            .element_spec()
            .to_string(),
        "TensorSpec(shape=(3,), dtype=int64)"
    );
    assert_eq!(
        range(8).batch(3, ()).unwrap().element_spec().to_string(),
        "TensorSpec(shape=(None,), dtype=int64)"
    );
    is_invalid(
        range(8).batch(0, ()),
        "batch_size must be greater than zero",
    );

    let a = Dataset::range(1, 5, 1).unwrap().map(fill, ()).unwrap();
    assert_eq!(
        strs(&a.padded_batch(2, None, None, false).unwrap()),
        ["[[1 0]\n [2 2]]", "[[3 3 3 0]\n [4 4 4 4]]"]
    );
    assert_eq!(
        strs(
            &a.padded_batch(2, Some(vec![PartialShape::known(&[5])]), None, false)
                .unwrap()
        ),
        ["[[1 0 0 0 0]\n [2 2 0 0 0]]", "[[3 3 3 0 0]\n [4 4 4 4 0]]"]
    );
    assert_eq!(
        strs(
            &a.padded_batch(2, None, Some(vec![Tensor::scalar(-1i64)]), false)
                .unwrap()
        ),
        ["[[ 1 -1]\n [ 2  2]]", "[[ 3  3  3 -1]\n [ 4  4  4  4]]"]
    );
    // A padded shape smaller than an element is an error at that batch.
    let small = a
        .padded_batch(2, Some(vec![PartialShape::known(&[3])]), None, false)
        .unwrap();
    let out = strs(&small);
    assert_eq!(out[0], "[[1 0 0]\n [2 2 0]]");
    assert!(out[1].contains("smaller padded shape"), "{out:?}");
    is_invalid(a.padded_batch(0, None, None, false), "batch_size");
    is_invalid(
        a.padded_batch(2, Some(vec![]), None, false),
        "0 padded shapes for 1 tensors",
    );
    is_invalid(
        a.padded_batch(2, None, Some(vec![Tensor::scalar(0f32)]), false),
        "must be a int64 scalar",
    );
    // Batching elements of different shapes without padding is an error naming them.
    let out = strs(&a.batch(2, ()).unwrap());
    assert!(out[0].contains("different shapes"), "{out:?}");
}

#[test]
fn unbatch_and_rebatch() {
    let m = Tensor::from_vec((1..7i64).collect(), &[2, 3]).unwrap();
    let ds = Dataset::from_tensor_slices(Element::tuple([m.clone(), m.clone()])).unwrap();
    let rows = ds.unbatch().unwrap();
    assert_eq!(
        strs(&rows),
        ["(1, 1)", "(2, 2)", "(3, 3)", "(4, 4)", "(5, 5)", "(6, 6)"]
    );
    assert_eq!(rows.cardinality(), Cardinality::Finite(6));
    is_invalid(range(3).unbatch(), "scalar");
    // Components the spec knows to differ in length: refused when the dataset is made (as
    // tf.data's testUnbatchStaticShapeMismatch); where the spec does not know, an error at
    // that element.
    let ragged = Dataset::from_tensors(Element::tuple([i64s(&[1, 2]), i64s(&[1])]));
    is_invalid(ragged.unbatch(), "first dimensions differ");
    let unknown = ElementSpec::Tuple(vec![
        ElementSpec::Tensor(TensorSpec {
            dtype: DType::Int64,
            shape: PartialShape::new(&[None]),
        });
        2
    ]);
    let late = Dataset::from_generator(unknown, || {
        Ok(Box::new(std::iter::once(Ok(Element::tuple([
            i64s(&[1, 2]),
            i64s(&[1]),
        ])))))
    });
    assert!(strs(&late.unbatch().unwrap())[0].contains("different first dimensions"));

    let b = range(8).batch(4, ()).unwrap();
    assert_eq!(
        strs(&b.rebatch(&[2], false).unwrap()),
        ["[0 1]", "[2 3]", "[4 5]", "[6 7]"]
    );
    // Zero sizes: empty batches until the input is found to have ended (TensorFlow 2.21).
    assert_eq!(
        strs(&b.rebatch(&[0, 2], false).unwrap()),
        ["[]", "[0 1]", "[]", "[2 3]", "[]", "[4 5]", "[]", "[6 7]", "[]"]
    );
    assert_eq!(
        strs(
            &range(5)
                .batch(2, ())
                .unwrap()
                .rebatch(&[3, 0], true)
                .unwrap()
        ),
        ["[0 1 2]", "[]"]
    );
    // The batch dimension is known where every size is the same and divides the input's.
    let known = range(8)
        .batch(4, BatchOptions::new().drop_remainder(true))
        .unwrap();
    let dims = |sizes: &[usize]| {
        known
            .rebatch(sizes, false)
            .unwrap()
            .element_spec()
            .to_string()
    };
    assert_eq!(dims(&[2, 2]), "TensorSpec(shape=(2,), dtype=int64)");
    assert_eq!(dims(&[3]), "TensorSpec(shape=(None,), dtype=int64)");
    assert_eq!(dims(&[8]), "TensorSpec(shape=(None,), dtype=int64)");
    assert_eq!(
        strs(
            &range(16)
                .batch(4, ())
                .unwrap()
                .rebatch(&[2, 1, 1], false)
                .unwrap()
        )[..6],
        ["[0 1]", "[2]", "[3]", "[4 5]", "[6]", "[7]"]
    );
    assert_eq!(
        strs(&range(7).batch(4, ()).unwrap().rebatch(&[3], true).unwrap()),
        ["[0 1 2]", "[3 4 5]"]
    );
    is_invalid(b.rebatch(&[0], false), "greater than zero");
}

#[test]
fn shuffle_repeat_take_skip_shard_enumerate() {
    let s = range(10)
        .shuffle(10, ShuffleOptions::new().seed(42))
        .unwrap();
    let first = strs(&s);
    let second = strs(&s);
    assert_ne!(first, second, "reshuffled each iteration");
    let fixed = range(10).shuffle(10, same_order(42)).unwrap();
    assert_eq!(strs(&fixed), strs(&fixed));
    assert_eq!(
        strs(&range(5).shuffle(1, ShuffleOptions::new().seed(3)).unwrap()),
        strs(&range(5))
    );
    is_invalid(range(3).shuffle(0, ()), "buffer_size");

    assert_eq!(strs(&range(3).repeat(Some(2))).concat(), "012012");
    assert_eq!(
        range(3).repeat(Some(0)).cardinality(),
        Cardinality::Finite(0)
    );
    assert_eq!(range(0).repeat(None).cardinality(), Cardinality::Finite(0));
    assert!(
        strs(&range(0).repeat(None)).is_empty(),
        "an empty endless repeat ends"
    );
    assert_eq!(strs(&range(10).take(3)), ["0", "1", "2"]);
    assert_eq!(strs(&range(10).skip(7)), ["7", "8", "9"]);
    assert_eq!(range(10).skip(-1).cardinality(), Cardinality::Finite(0));
    assert_eq!(range(10).take(-1).cardinality(), Cardinality::Finite(10));
    assert_eq!(strs(&range(10).shard(3, 0).unwrap()), ["0", "3", "6", "9"]);
    assert_eq!(strs(&range(10).shard(3, 2).unwrap()), ["2", "5", "8"]);
    is_invalid(range(10).shard(0, 0), "num_shards");
    is_invalid(range(10).shard(2, 2), "index");
    let e = Dataset::from_tensor_slices(i64s(&[1, 2, 3]))
        .unwrap()
        .enumerate(5);
    assert_eq!(strs(&e), ["(5, 1)", "(6, 2)", "(7, 3)"]);
}

#[test]
fn window_as_documented() {
    let batches = |ds: Dataset| {
        strs(
            &ds.flat_map(
                |w| {
                    let d = w.into_dataset()?;
                    d.batch(10, ())
                },
                None,
            )
            .unwrap(),
        )
    };
    assert_eq!(
        batches(range(7).window(3, None, 1, false).unwrap()),
        ["[0 1 2]", "[3 4 5]", "[6]"]
    );
    assert_eq!(
        batches(range(7).window(3, None, 1, true).unwrap()),
        ["[0 1 2]", "[3 4 5]"]
    );
    assert_eq!(
        batches(range(7).window(3, Some(2), 1, true).unwrap()),
        ["[0 1 2]", "[2 3 4]", "[4 5 6]"]
    );
    assert_eq!(
        batches(range(7).window(3, Some(1), 2, true).unwrap()),
        ["[0 2 4]", "[1 3 5]", "[2 4 6]"]
    );
    assert_eq!(
        batches(range(10).window(2, Some(5), 1, false).unwrap()),
        ["[0 1]", "[5 6]"]
    );
    // Tuple elements give tuples of datasets.
    let pairs = Dataset::zip(vec![range(4), Dataset::range(10, 14, 1).unwrap()])
        .unwrap()
        .window(2, None, 1, false)
        .unwrap();
    assert_eq!(
        pairs.element_spec().to_string(),
        "(DatasetSpec(TensorSpec(shape=(), dtype=int64)), DatasetSpec(TensorSpec(shape=(), \
         dtype=int64)))"
    );
    let w = pairs.to_vec().unwrap();
    let second = w[1].get(1).unwrap().clone().into_dataset().unwrap();
    assert_eq!(strs(&second), ["12", "13"]);
    assert_eq!(
        range(7).window(3, Some(2), 1, true).unwrap().cardinality(),
        Cardinality::Finite(3)
    );
    is_invalid(range(7).window(0, None, 1, false), "size");
    is_invalid(range(7).window(2, Some(0), 1, false), "shift");
    is_invalid(range(7).window(2, None, 0, false), "stride");
}

#[test]
fn scan_take_while_unique_reduce() {
    let sum = |s: Element, x: Element| -> npyflow::Result<(Element, Element)> {
        let v = int(&s) + int(&x);
        Ok((Tensor::scalar(v).into(), Tensor::scalar(v).into()))
    };
    assert_eq!(
        strs(&range(10).scan(Tensor::scalar(0i64).into(), sum).unwrap()),
        ["0", "1", "3", "6", "10", "15", "21", "28", "36", "45"]
    );
    // A state that changes dtype is a TypeError (Error::Dtype) when the dataset is made, as
    // in tf.data (the trace shows it).
    let drift = range(2).scan(Tensor::scalar(0i64).into(), |_, x| {
        Ok((Tensor::scalar(1.0f32).into(), x))
    });
    match drift {
        Err(Error::Dtype(m)) => assert!(m.contains("structure and dtypes"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a state of another dtype was taken"),
    }
    // One that changes only on some elements is an error at that element.
    let late = range(3)
        .scan(Tensor::scalar(0i64).into(), |_, x| {
            let v = int(&x);
            let state: Element = if v == 2 {
                Tensor::scalar(1.0f32).into()
            } else {
                Tensor::scalar(v).into()
            };
            Ok((state, x))
        })
        .unwrap();
    assert_eq!(strs(&late).len(), 3);
    // A state whose shape changes is relaxed: the output spec says (None,).
    let grow = range(3)
        .scan(
            Tensor::from_vec(vec![0i64], &[1]).unwrap().into(),
            |s, x| {
                let mut v = s.into_tensor()?.view::<i64>()?.to_vec();
                v.push(int(&x));
                let n = v.len();
                let out = Tensor::from_vec(v, &[n])?;
                Ok((out.clone().into(), out.into()))
            },
        )
        .unwrap();
    assert_eq!(
        grow.element_spec().to_string(),
        "TensorSpec(shape=(None,), dtype=int64)"
    );
    assert_eq!(strs(&grow), ["[0 0]", "[0 0 1]", "[0 0 1 2]"]);
    assert_eq!(
        strs(&range(10).take_while(|x| Ok(int(x) < 5))).concat(),
        "01234"
    );
    let u = Dataset::from_tensor_slices(i64s(&[1, 37, 2, 37, 2, 1]))
        .unwrap()
        .unique()
        .unwrap();
    assert_eq!(strs(&u), ["1", "37", "2"]);
    is_invalid(
        Dataset::from_tensors(Tensor::scalar(1.0f32)).unique(),
        "integer or string",
    );
    let total = range(5)
        .reduce(Tensor::scalar(0i64).into(), |a, x| {
            Ok(Tensor::scalar(int(&a) + int(&x)).into())
        })
        .unwrap();
    assert_eq!(total.to_string(), "10");
}

#[test]
fn group_by_window_and_buckets() {
    let g = range(10)
        .group_by_window(
            |x| Ok(int(x) % 2),
            |_, w| w.batch(5, ()),
            Some(5),
            None::<fn(i64) -> npyflow::Result<u64>>,
        )
        .unwrap();
    assert_eq!(strs(&g), ["[0 2 4 6 8]", "[1 3 5 7 9]"]);
    // Leftover groups come out at the end in key order.
    let g = range(7)
        .group_by_window(
            |x| Ok(2 - int(x) % 3),
            |_, w| w.batch(10, ()),
            Some(3),
            None::<fn(i64) -> npyflow::Result<u64>>,
        )
        .unwrap();
    assert_eq!(strs(&g), ["[0 3 6]", "[2 5]", "[1 4]"]);
    let per_key = range(6)
        .group_by_window(
            |x| Ok(int(x) % 2),
            |_, w| w.batch(10, ()),
            None,
            Some(|k: i64| Ok(if k == 0 { 1 } else { 3 })),
        )
        .unwrap();
    assert_eq!(strs(&per_key), ["[0]", "[2]", "[4]", "[1 3 5]"]);
    is_invalid(
        range(3).group_by_window(|_| Ok(0), |_, w| Ok(w), Some(2), Some(|_: i64| Ok(2))),
        "either window_size or window_size_func",
    );
    is_invalid(
        range(3).group_by_window(
            |_| Ok(0),
            |_, w| Ok(w),
            Some(0),
            None::<fn(i64) -> npyflow::Result<u64>>,
        ),
        "greater than zero",
    );

    // tf.data's documented bucket_by_sequence_length example.
    let elements: Vec<Vec<i64>> = vec![
        vec![0],
        vec![1, 2, 3, 4],
        vec![5, 6, 7],
        vec![7, 8, 9, 10, 11],
        vec![13, 14, 15, 16, 19, 20],
        vec![21, 22],
    ];
    let spec = ElementSpec::Tensor(TensorSpec {
        dtype: DType::Int64,
        shape: PartialShape::new(&[None]),
    });
    let src = Dataset::from_generator(spec, move || {
        let els = elements.clone();
        Ok(Box::new(els.into_iter().map(|v| Ok(i64s(&v).into()))))
    });
    let length = |e: &Element| Ok(e.as_tensor().unwrap().shape()[0] as i64);
    let b = src
        .bucket_by_sequence_length(length, &[3, 5], &[2, 2, 2], BucketOptions::default())
        .unwrap();
    assert_eq!(
        strs(&b),
        [
            "[[1 2 3 4]\n [5 6 7 0]]",
            "[[ 7  8  9 10 11  0]\n [13 14 15 16 19 20]]",
            "[[ 0  0]\n [21 22]]"
        ]
    );
    let padded = src
        .bucket_by_sequence_length(
            length,
            &[4, 7],
            &[2, 2, 2],
            BucketOptions {
                pad_to_bucket_boundary: true,
                padding_values: Some(vec![Tensor::scalar(-1i64)]),
                ..Default::default()
            },
        )
        .unwrap();
    let out = strs(&padded);
    assert_eq!(out[0], "[[ 0 -1 -1]\n [ 5  6  7]]");
    assert_eq!(out[1], "[[ 1  2  3  4 -1 -1]\n [ 7  8  9 10 11 -1]]");
    is_invalid(
        src.bucket_by_sequence_length(length, &[3], &[2], BucketOptions::default()),
        "len(bucket_batch_sizes) must equal len(bucket_boundaries) + 1",
    );
}

#[test]
fn cache_keeps_only_complete_passes() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let spec = ElementSpec::Tensor(TensorSpec {
        dtype: DType::Int64,
        shape: PartialShape::known(&[2]),
    });
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    let src = Dataset::from_generator(spec, move || {
        r.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new((0..4i64).map(|i| Ok(i64s(&[i, -i]).into()))))
    });
    // In memory: a partial pass is not kept; the first complete one is replayed.
    let mem = src.cache(None::<&str>).unwrap();
    assert_eq!(mem.iter().take(2).count(), 2);
    let full = strs(&mem);
    assert_eq!(full, ["[0 0]", "[ 1 -1]", "[ 2 -2]", "[ 3 -3]"]);
    assert_eq!(strs(&mem), full);
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    // In a file: the same, and the file outlives the dataset.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.bin");
    let on_disk = src.cache(Some(&path)).unwrap();
    assert_eq!(on_disk.iter().take(1).count(), 1);
    assert!(!path.exists(), "a partial pass left a cache");
    assert_eq!(strs(&on_disk), full);
    assert!(path.exists());
    let before = runs.load(Ordering::SeqCst);
    let reread = src.cache(Some(&path)).unwrap();
    assert_eq!(strs(&reread), full);
    assert_eq!(runs.load(Ordering::SeqCst), before, "read from the file");
    // A cache written by another pipeline is refused with a message.
    let other = range(3).cache(Some(&path)).unwrap();
    assert!(
        strs(&other)[0].contains("another pipeline"),
        "{:?}",
        strs(&other)
    );
    std::fs::write(&path, b"garbage").unwrap();
    assert!(strs(&reread)[0].contains("not an npyflow cache"));
}

/// tf.data's cache_test: testConcurrentWriters (a second writer of the same file is refused
/// while the first writes) and testCacheKnownCardinality (a pass that reads every element of
/// an input of known cardinality, without asking past its end, completes the cache).
#[test]
fn cache_writers_and_known_cardinality() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.bin");
    let ds = range(4).cache(Some(&path)).unwrap();
    let mut first = ds.iter();
    assert_eq!(int(&first.next().unwrap().unwrap()), 0);
    let second = range(4).cache(Some(&path)).unwrap();
    let e = second.iter().next().unwrap().unwrap_err();
    match e.root() {
        Error::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(17), "{e}"),
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("another iterator is writing"), "{e}");
    let rest: Vec<i64> = first.map(|e| int(&e.unwrap())).collect();
    assert_eq!(rest, [1, 2, 3]);
    assert_eq!(
        strs(&range(0).cache(Some(&path)).unwrap()),
        ["0", "1", "2", "3"]
    );

    for file in [None, Some(dir.path().join("shuffled.bin"))] {
        let shuffled = range(10)
            .shuffle(10, ShuffleOptions::default())
            .unwrap()
            .cache(file.as_ref())
            .unwrap();
        let read = |ds: &Dataset| -> Vec<i64> {
            let mut it = ds.iter();
            (0..10).map(|_| int(&it.next().unwrap().unwrap())).collect()
        };
        let once = read(&shuffled);
        assert_eq!(read(&shuffled), once, "{file:?}");
    }
}

#[test]
fn parallel_interleave_of_an_infinite_input_is_infinite() {
    let make = |_: Element| Ok(range(2));
    let endless = range(3).repeat(None);
    let parallel = InterleaveOptions::new().parallel(Parallelism::threads(2));
    let card = |o: InterleaveOptions| endless.interleave(make, o).unwrap().cardinality();
    assert_eq!(card(parallel), Cardinality::Infinite);
    assert_eq!(card(InterleaveOptions::new()), Cardinality::Unknown);
}

#[test]
fn prefetch_changes_nothing_but_timing() {
    let ds = range(100).map(Ok, ()).unwrap();
    assert_eq!(strs(&ds.prefetch(AUTOTUNE).unwrap()), strs(&ds));
    assert_eq!(strs(&ds.prefetch(0).unwrap()), strs(&ds));
    is_invalid(ds.prefetch(-2), "buffer_size");
    // Dropping a prefetching iterator early neither hangs nor panics.
    let endless = Dataset::counter(0, 1).prefetch(4).unwrap();
    let mut it = endless.iter();
    assert_eq!(int(&it.next().unwrap().unwrap()), 0);
    drop(it);
}

#[test]
fn cardinality_rules() {
    use Cardinality::*;
    let inf = range(3).repeat(None);
    assert_eq!(range(42).cardinality(), Finite(42));
    assert_eq!(inf.cardinality(), Infinite);
    assert_eq!(inf.take(5).cardinality(), Finite(5));
    assert_eq!(inf.skip(5).cardinality(), Infinite);
    assert_eq!(inf.batch(2, ()).unwrap().cardinality(), Infinite);
    assert_eq!(range(3).filter(|_| Ok(true)).cardinality(), Unknown);
    assert_eq!(range(3).filter(|_| Ok(true)).take(2).cardinality(), Unknown);
    assert_eq!(range(10).repeat(Some(3)).cardinality(), Finite(30));
    assert_eq!(range(10).batch(4, ()).unwrap().cardinality(), Finite(3));
    assert_eq!(
        range(10)
            .batch(4, BatchOptions::new().drop_remainder(true))
            .unwrap()
            .cardinality(),
        Finite(2)
    );
    assert_eq!(range(10).shard(3, 0).unwrap().cardinality(), Finite(4));
    assert_eq!(range(10).shard(3, 2).unwrap().cardinality(), Finite(3));
    assert_eq!(
        Dataset::zip(vec![range(3), inf.clone()])
            .unwrap()
            .cardinality(),
        Finite(3)
    );
    assert_eq!(
        Dataset::zip(vec![range(3), range(3).filter(|_| Ok(true))])
            .unwrap()
            .cardinality(),
        Unknown
    );
    assert_eq!(range(3).enumerate(0).cardinality(), Finite(3));
    assert_eq!(Finite(3).as_i64(), 3);
    assert_eq!(Infinite.as_i64(), -1);
    assert_eq!(Unknown.as_i64(), -2);
    assert_eq!(range(7).len().unwrap(), 7);
    assert_eq!(
        inf.len().unwrap_err().to_string(),
        "invalid argument: The dataset is infinite."
    );
    assert!(range(3)
        .filter(|_| Ok(true))
        .len()
        .unwrap_err()
        .to_string()
        .contains("unknown"));
}

#[test]
fn huge_arguments_are_bounded_or_refused_never_an_abort() {
    // Sizes are used as limits, never to allocate up front.
    assert_eq!(strs(&range(3).batch(1 << 40, ()).unwrap()), ["[0 1 2]"]);
    assert_eq!(
        strs(
            &range(3)
                .shuffle(1 << 40, ShuffleOptions::new().seed(1))
                .unwrap()
        )
        .len(),
        3
    );
    assert_eq!(strs(&range(3).prefetch(1 << 40).unwrap()).len(), 3);
    assert_eq!(
        strs(&range(3).map(Ok, Parallelism::threads(1 << 40)).unwrap()).len(),
        3
    );
    let w = range(5)
        .window(1 << 40, Some(1 << 40), 1 << 40, true)
        .unwrap();
    assert_eq!(w.cardinality(), Cardinality::Finite(0));
    assert!(strs(&w).is_empty());
    let w = range(5).window(2, Some(u64::MAX), u64::MAX, false).unwrap();
    assert_eq!(w.to_vec().unwrap().len(), 1);
    is_invalid(
        range(3).interleave(
            |x| Ok(Dataset::from_tensors(x)),
            InterleaveOptions::new().cycle_length(1 << 40),
        ),
        "cycle_length",
    );
}

/// Regressions found by review: each once gave wrong elements, a hang or a panic.
#[test]
fn review_regressions() {
    // A stopped choose stays stopped, even when batch asks again.
    let choice = Dataset::from_tensor_slices(i64s(&[0, 0, 1, 1])).unwrap();
    let ds = Dataset::choose_from_datasets(
        vec![
            Dataset::range(0, 1, 1).unwrap(),
            Dataset::range(10, 20, 1).unwrap(),
        ],
        &choice,
        true,
    )
    .unwrap();
    assert_eq!(strs(&ds.batch(3, ()).unwrap()), ["[0]"]);
    assert_eq!(
        strs(
            &ds.map(Ok, Parallelism::threads(2).deterministic(false))
                .unwrap()
        ),
        ["0"]
    );

    // A global shuffle under a counted repeat reshuffles each repetition.
    let rep = range(50)
        .global_shuffle(ShuffleOptions::new().seed(3))
        .unwrap()
        .repeat(Some(2));
    let v: Vec<i64> = rep.to_vec().unwrap().iter().map(int).collect();
    let (a, b) = v.split_at(50);
    assert_ne!(a, b);
    for half in [a, b] {
        let mut h = half.to_vec();
        h.sort_unstable();
        assert_eq!(h, (0..50).collect::<Vec<_>>());
    }

    // An error keeps its position in windows.
    let bad = range_failing_at_2(6, "bad");
    let w = bad
        .window(3, Some(3), 1, false)
        .unwrap()
        .flat_map(|w| w.into_dataset()?.batch(3, ()), None)
        .unwrap();
    let out = strs(&w);
    assert!(out[0].starts_with("ERR"), "{out:?}");
    assert_eq!(out[1..], ["[3 4 5]"]);

    // A second part that cannot open is one error, then the end.
    let spec = range(1).element_spec().clone();
    let broken = Dataset::from_generator(spec, || Err(Error::msg("no source")));
    let cat = range(2).concatenate(&broken).unwrap();
    let out = strs(&cat);
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(out[2].contains("no source"));

    // Shards whose first file is empty still gather.
    let dir = tempfile::tempdir().unwrap();
    let paths = [dir.path().join("e.npy"), dir.path().join("a.npy")];
    write_npy(&paths[0], &Tensor::zeros(DType::Int32, &[0, 2]).unwrap()).unwrap();
    write_npy(
        &paths[1],
        &Tensor::from_vec((0..6i32).collect(), &[3, 2]).unwrap(),
    )
    .unwrap();
    let sh = Dataset::from_npy_files(&paths)
        .unwrap()
        .global_shuffle(same_order(1))
        .unwrap()
        .batch(3, ())
        .unwrap();
    assert_eq!(sh.to_vec().unwrap().len(), 1);

    // Arguments that would index or allocate past the data are errors, not panics.
    let pairs = Dataset::zip(vec![range(3), range(3)]).unwrap();
    is_invalid(
        pairs.bucket_by_sequence_length(
            |_| Ok(1),
            &[2],
            &[1, 1],
            BucketOptions {
                padded_shapes: Some(vec![PartialShape::known(&[])]),
                ..Default::default()
            },
        ),
        "1 padded shapes for 2 tensors",
    );
    let huge = range(2).map(npyflow::ops::one_hot(1 << 62), ()).unwrap();
    assert!(strs(&huge)[0].starts_with("ERR"));
    assert!(range(2)
        .map(npyflow::ops::reshape(&[1 << 40, 1 << 40]), ())
        .is_err());

    // A panic under a prefetch is an error, not a quiet end.
    let spec = range(1).element_spec().clone();
    let panicky = Dataset::from_generator(spec, || {
        Ok(Box::new((0..5i64).map(|i| {
            assert!(i != 2, "boom");
            Ok(Tensor::scalar(i).into())
        })))
    });
    let out = strs(&panicky.prefetch(2).unwrap());
    assert_eq!(out[..2], ["0", "1"]);
    assert!(out[2].starts_with("ERR"), "{out:?}");
}

#[test]
fn an_unfinished_cache_file_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let ds = range(5).cache(Some(&path)).unwrap();
    let want = strs(&ds);
    // Cut the file as a crash while writing would: its end marker is gone.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 64]).unwrap();
    let again = range(5).cache(Some(&path)).unwrap();
    assert_eq!(strs(&again), want);
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "rewritten whole");
}
