//! A batch reads an interleave of row sources in bulk (each open dataset's share of a batch
//! at once, as a view) and writes the rows, through fused op maps, to their places: the
//! batches, errors and saved states are those of reading the rows one by one.

use npyflow::dataset::{InterleaveOptions, MapOptions};
use npyflow::format::npy::write_npy;
use npyflow::{ops, DType, Dataset, Element, Error, Tensor};
use proptest::prelude::*;

use crate::common::{batch_on, proptest_config, restored, save_after, show};

/// The rows of dataset `i` of `lens.len()`: `(x, y)` with `x` uint8 rows of 3 and `y` int64,
/// their values telling the dataset and the row apart; an error at row `bad` where set.
fn rows(i: usize, len: usize, bad: Option<usize>) -> npyflow::Result<Dataset> {
    let x = Tensor::from_vec(
        (0..len * 3).map(|k| (i * 37 + k) as u8).collect(),
        &[len, 3],
    )?;
    let y = Tensor::from_vec(
        (0..len as i64).map(|r| i as i64 * 1000 + r).collect(),
        &[len],
    )?;
    let ds = Dataset::from_tensor_slices(Element::tuple([x, y]))?;
    // The spec is declared: found by a call on a placeholder element (y = 0), the function
    // would fail there when the bad row is row 0.
    let spec = ds.element_spec().clone();
    match bad {
        Some(row) => ds.map(
            move |e: Element| {
                let y = e.get(1)?.as_tensor().unwrap().to_i64_scalar("y")?;
                if y % 1000 == row as i64 {
                    return Err(Error::Function(format!("bad row {y}")));
                }
                Ok(e)
            },
            MapOptions::new().output_spec(spec),
        ),
        None => Ok(ds),
    }
}

#[derive(Clone, Debug)]
struct Case {
    lens: Vec<usize>,
    cycle: usize,
    block: usize,
    batch: usize,
    drop: bool,
    threads: Option<i64>,
    ops: bool,
    /// (dataset, row) of an error.
    bad: Option<(usize, usize)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(0usize..30, 1..7),
        1usize..5,
        1usize..4,
        1usize..40,
        any::<bool>(),
        prop::option::of(1i64..4),
        any::<bool>(),
        prop::option::of((0usize..7, 0usize..30)),
    )
        .prop_map(
            |(lens, cycle, block, batch, drop, threads, ops, bad)| Case {
                lens,
                cycle,
                block,
                batch,
                drop,
                threads,
                ops,
                bad,
            },
        )
}

/// The case's pipeline; `one_by_one` puts a closure map (which reads its input element by
/// element) between the interleave and the batch.
fn build(c: &Case, one_by_one: bool) -> Dataset {
    let lens = c.lens.clone();
    let bad = c.bad;
    let mut ds = Dataset::range(0, lens.len() as i64, 1)
        .unwrap()
        .interleave(
            move |e: Element| {
                let i = e.into_tensor()?.to_i64_scalar("i")? as usize;
                // (Tracing the function's spec calls it with a placeholder index.)
                let len = lens.get(i).copied().unwrap_or(0);
                rows(i, len, bad.filter(|b| b.0 == i).map(|b| b.1))
            },
            InterleaveOptions::new()
                .cycle_length(c.cycle)
                .block_length(c.block),
        )
        .unwrap();
    if one_by_one {
        ds = ds.map(|e: Element| Ok(e), ()).unwrap();
    }
    if c.ops {
        ds = ds
            .map(ops::cast(DType::Float32).component(0), ())
            .unwrap()
            .map(ops::scale(0.5).component(0), ())
            .unwrap();
    }
    ds.batch(c.batch, batch_on(c.drop, c.threads)).unwrap()
}

proptest! {
    #![proptest_config(proptest_config(64))]

    #[test]
    fn bulk_batches_equal_batches_of_single_rows(c in case(), at in 0usize..8) {
        let fused = build(&c, false);
        let single = build(&c, true);
        let want: Vec<String> = single.iter().map(show).collect();
        let got: Vec<String> = fused.iter().map(show).collect();
        prop_assert_eq!(&got, &want);
        // Restored after `at` batches, the bulk pass goes on as the single-row one does.
        let at = at.min(want.len());
        let (head, state, tail) = save_after(&fused, at);
        prop_assert_eq!(&head[..], &want[..at]);
        prop_assert_eq!(&tail[..], &want[at..]);
        prop_assert_eq!(restored(&|| build(&c, false), &state), want[at..].to_vec());
    }
}

/// The rows an interleave of files of `lens` rows gives, as (file, row), by tf.data's
/// algorithm written out on its own: `block` rows from the file at the cycle position, then
/// the next position; a file found at its end is closed and the cycle moves on; an empty
/// position takes the next file.
fn interleave_order(lens: &[usize], cycle: usize, block: usize) -> Vec<(usize, usize)> {
    let mut order = Vec::new();
    let mut slots: Vec<Option<(usize, usize)>> = vec![None; cycle];
    let (mut open, mut next_file, mut c, mut in_block) = (0, 0, 0, 0);
    while next_file < lens.len() || open > 0 {
        match slots[c] {
            Some((f, r)) if r < lens[f] => {
                order.push((f, r));
                slots[c] = Some((f, r + 1));
                in_block += 1;
                if in_block == block {
                    in_block = 0;
                    c = (c + 1) % cycle;
                }
            }
            Some(_) => {
                slots[c] = None;
                open -= 1;
                in_block = 0;
                c = (c + 1) % cycle;
            }
            None if next_file < lens.len() => {
                slots[c] = Some((next_file, 0));
                next_file += 1;
                open += 1;
            }
            None => {
                in_block = 0;
                c = (c + 1) % cycle;
            }
        }
    }
    order
}

/// `.npy` files of `lens` rows of `cols` float32 interleaved (`cycle`, `block`), `x * 2`,
/// batches of `batch`, on 1 and 2 threads, against the same rows read one by one and
/// against the values computed here.
fn check_npy_shards_scaled(lens: &[usize], cols: usize, cycle: usize, block: usize, batch: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    let mut files = Vec::new();
    for (i, &n) in lens.iter().enumerate() {
        let vals: Vec<f32> = (0..n * cols)
            .map(|k| (i * 1_000_000 + k) as f32 * 0.25)
            .collect();
        let t = Tensor::from_vec(vals.clone(), &[n, cols]).unwrap();
        let p = dir.path().join(format!("part-{i}.npy"));
        write_npy(&p, &t).unwrap();
        paths.push(p);
        files.push(vals);
    }
    let expected: Vec<f32> = interleave_order(lens, cycle, block)
        .into_iter()
        .flat_map(|(f, r)| files[f][r * cols..(r + 1) * cols].iter().map(|v| v * 2.0))
        .collect();
    let build = |one_by_one: bool, threads: Option<i64>| {
        let paths = paths.clone();
        let mut rows = Dataset::range(0, paths.len() as i64, 1)
            .unwrap()
            .interleave(
                move |i: Element| {
                    let i = i.into_tensor()?.to_i64_scalar("i")? as usize;
                    Dataset::from_npy(&paths[i])
                },
                InterleaveOptions::new()
                    .cycle_length(cycle)
                    .block_length(block),
            )
            .unwrap();
        if one_by_one {
            rows = rows.map(|e: Element| Ok(e), ()).unwrap();
        }
        rows.map(ops::scale(2.0), ())
            .unwrap()
            .batch(batch, batch_on(false, threads))
            .unwrap()
    };
    let single: Vec<Element> = build(true, None).to_vec().unwrap();
    for threads in [None, Some(1), Some(2)] {
        assert_eq!(build(false, threads).to_vec().unwrap(), single);
    }
    let flat: Vec<f32> = single
        .iter()
        .flat_map(|b| b.as_tensor().unwrap().view::<f32>().unwrap().to_vec())
        .collect();
    assert_eq!(flat, expected);
}

/// W3's pipeline in small: `.npy` shard files of different lengths interleaved, `x * 2`,
/// batched.
#[test]
fn npy_shards_interleaved_and_scaled_in_bulk() {
    check_npy_shards_scaled(&[70, 0, 33, 128, 5, 64], 4, 3, 2, 16);
}

/// As W3 has them (rows of 1 KiB, blocks of one row, cycle 4), with files of many pages, so
/// that each batch reads its rows a page ahead of where it writes, up to the end of each
/// file's share and of each file.
#[test]
fn npy_shards_of_many_pages_interleaved_and_scaled_in_bulk() {
    check_npy_shards_scaled(&[300, 41, 0, 257, 64, 1, 129, 200], 256, 4, 1, 100);
}

/// Interleaved float32 rows (blocks of one row: a run per row) scaled into the batch, with
/// the factors float32 holds exactly (the product in float32) and those it does not (0.1:
/// the product in float64, rounded once), with and without a `cast(float32)` before: each
/// value is the float64 product rounded to float32, computed here.
#[test]
fn interleaved_float32_rows_scale_as_in_float64() {
    let files: Vec<Vec<f32>> = (0..3)
        .map(|i| {
            (0..5 * 4)
                .map(|k| (i * 100 + k) as f32 / 3.0 - 7.0)
                .collect()
        })
        .collect();
    for factor in [2.0, -0.5, 0.1, 1.0 / 3.0] {
        for cast in [false, true] {
            let inputs = files.clone();
            let rows = Dataset::range(0, 3, 1)
                .unwrap()
                .interleave(
                    move |i: Element| {
                        let i = i.into_tensor()?.to_i64_scalar("i")? as usize;
                        Dataset::from_tensor_slices(Tensor::from_vec(inputs[i].clone(), &[5, 4])?)
                    },
                    InterleaveOptions::new().cycle_length(3).block_length(1),
                )
                .unwrap();
            let rows = if cast {
                rows.map(ops::cast(DType::Float32), ()).unwrap()
            } else {
                rows
            };
            let got: Vec<f32> = rows
                .map(ops::scale(factor), ())
                .unwrap()
                .batch(6, ())
                .unwrap()
                .to_vec()
                .unwrap()
                .iter()
                .flat_map(|b| b.as_tensor().unwrap().view::<f32>().unwrap().to_vec())
                .collect();
            // Row r of file f is at position 3 * r + f.
            let expected: Vec<f32> = (0..15)
                .flat_map(|p| files[p % 3][(p / 3) * 4..(p / 3 + 1) * 4].to_vec())
                .map(|v| (f64::from(v) * factor) as f32)
                .collect();
            assert_eq!(got, expected, "factor {factor}, cast {cast}");
        }
    }
}

#[derive(Clone, Debug)]
struct MoveCase {
    n: usize,
    /// Image height, width, channels.
    hwc: (usize, usize, usize),
    /// A crop to (height, width), else a flip of `axis`.
    crop: Option<(usize, usize)>,
    axis: usize,
    /// The op on the images of (images, labels), else on a single tensor.
    tuple: bool,
    shuffle: bool,
    batch: usize,
    drop: bool,
    threads: Option<i64>,
}

fn move_case() -> impl Strategy<Value = MoveCase> {
    (
        (1usize..40, (1usize..6, 1usize..6, 1usize..4)),
        prop::option::of((1usize..6, 1usize..6)),
        0usize..3,
        any::<bool>(),
        any::<bool>(),
        1usize..12,
        any::<bool>(),
        prop::option::of(1i64..4),
    )
        .prop_map(
            |((n, hwc), crop, axis, tuple, shuffle, batch, drop, threads)| MoveCase {
                n,
                hwc,
                // A crop that fits (random ones larger than the image fail, in both pipelines).
                crop: crop.map(|(h, w)| (h.min(hwc.0), w.min(hwc.1))),
                axis,
                tuple,
                shuffle,
                batch,
                drop,
                threads,
            },
        )
}

fn images(c: &MoveCase) -> Tensor {
    let (h, w, ch) = c.hwc;
    Tensor::from_vec(
        (0..c.n * h * w * ch)
            .map(|k| (k * 31 % 251) as u8)
            .collect(),
        &[c.n, h, w, ch],
    )
    .unwrap()
}

/// The case's pipeline over two epochs; `one_by_one` adds a closure map after the op, which
/// reads the op's results element by element.
fn build_moved(c: &MoveCase, one_by_one: bool) -> Dataset {
    let x = images(c);
    let mut op = match c.crop {
        Some((oh, ow)) => ops::random_crop(&[oh, ow, c.hwc.2], 7),
        None => ops::random_flip(c.axis, 7),
    };
    let mut ds = if c.tuple {
        op = op.component(0);
        let y = Tensor::from_vec((0..c.n as i64).collect(), &[c.n]).unwrap();
        Dataset::from_tensor_slices(Element::tuple([x, y])).unwrap()
    } else {
        Dataset::from_tensor_slices(x).unwrap()
    };
    if c.shuffle {
        ds = ds
            .global_shuffle(npyflow::dataset::ShuffleOptions::new().seed(3))
            .unwrap();
    }
    ds = ds.map(op, ()).unwrap();
    if one_by_one {
        ds = ds.map(|e: Element| Ok(e), ()).unwrap();
    }
    ds.batch(c.batch, batch_on(c.drop, c.threads))
        .unwrap()
        .repeat(Some(2))
}

/// Whether `out` (h' x w' x c) is a window of `img` (h x w x c), or `img` or its flip along
/// `axis` for a flip.
fn plausible(img: &[u8], hwc: (usize, usize, usize), out: &[u8], c: &MoveCase) -> bool {
    let (h, w, ch) = hwc;
    let at = |y: usize, x: usize, k: usize| img[(y * w + x) * ch + k];
    match c.crop {
        Some((oh, ow)) => (0..=h - oh).any(|oy| {
            (0..=w - ow).any(|ox| {
                (0..oh).all(|y| {
                    (0..ow).all(|x| {
                        (0..ch).all(|k| out[(y * ow + x) * ch + k] == at(oy + y, ox + x, k))
                    })
                })
            })
        }),
        None => {
            let flipped: Vec<u8> = (0..h * w * ch)
                .map(|i| {
                    let (y, x, k) = (i / (w * ch), i / ch % w, i % ch);
                    match c.axis {
                        0 => at(h - 1 - y, x, k),
                        1 => at(y, w - 1 - x, k),
                        _ => at(y, x, ch - 1 - k),
                    }
                })
                .collect();
            out == img || out == flipped
        }
    }
}

proptest! {
    #![proptest_config(proptest_config(64))]

    /// `random_crop` and `random_flip` written straight into the batch buffer give the
    /// batches of the op applied element by element, every epoch; each result is a window
    /// (or the image, or its flip) of its source image.
    #[test]
    fn moved_rows_written_into_batches_equal_the_op_one_by_one(c in move_case()) {
        let fused: Vec<String> = build_moved(&c, false).iter().map(show).collect();
        let single: Vec<String> = build_moved(&c, true).iter().map(show).collect();
        prop_assert_eq!(&fused, &single);
        // Without a shuffle, batch rows are the images in order.
        if !c.shuffle {
            let x = images(&c);
            let (h, w, ch) = c.hwc;
            let img = h * w * ch;
            let per_epoch = if c.drop { c.n / c.batch * c.batch } else { c.n };
            let mut i = 0;
            for b in build_moved(&c, false).iter() {
                let b = b.unwrap();
                let t = if c.tuple { b.get(0).unwrap().as_tensor().unwrap().clone() } else { b.as_tensor().unwrap().clone() };
                let per = t.nbytes() / t.shape()[0];
                for r in 0..t.shape()[0] {
                    let k = i % per_epoch;
                    let src = &x.as_bytes()[k * img..(k + 1) * img];
                    prop_assert!(plausible(src, c.hwc, &t.as_bytes()[r * per..(r + 1) * per], &c));
                    i += 1;
                }
            }
        }
    }
}
