//! `from_npy_patches` / `from_tensor_patches`: every patch equals the box of the array that
//! an index-by-index definition picks, over random shapes, windows, strides and dtypes; read
//! one by one, in shuffled batches copied by several threads, and resumed from a state.

use npyflow::dataset::{BatchOptions, PatchOptions, Rng, ShuffleOptions};
use npyflow::format::npy::write_npy;
use npyflow::{DType, Dataset, Element, Error, Tensor};

/// A tensor of `shape` and `dtype` with bytes that differ from element to element.
fn array(dtype: DType, shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut rng = Rng::keyed(seed, &[]);
    let bytes: Vec<u8> = (0..n * dtype.itemsize())
        .map(|_| rng.below(256) as u8)
        .collect();
    // Bools must be 0 or 1.
    let bytes = if dtype == DType::Bool {
        bytes.into_iter().map(|b| b & 1).collect()
    } else {
        bytes
    };
    Tensor::new(dtype, shape, npyflow::Buffer::from_vec(bytes)).unwrap()
}

/// Patch `index` as the definition says: grid position `index` in C order, then every
/// element of the box read by its own flat index.
fn expected(t: &Tensor, size: &[usize], strides: &[usize], index: u64) -> Vec<u8> {
    let shape = t.shape();
    let grid: Vec<usize> = (0..size.len())
        .map(|a| (shape[a] - size[a]) / strides[a] + 1)
        .collect();
    let mut origin = vec![0usize; shape.len()];
    let mut rest = index as usize;
    for a in (0..grid.len()).rev() {
        origin[a] = (rest % grid[a]) * strides[a];
        rest /= grid[a];
    }
    let mut box_shape = size.to_vec();
    box_shape.extend_from_slice(&shape[size.len()..]);
    let item = t.dtype().itemsize();
    let bytes = t.as_bytes();
    let count: usize = box_shape.iter().product();
    let mut out = Vec::with_capacity(count * item);
    for k in 0..count {
        let mut rem = k;
        let mut flat = 0;
        let mut scale = 1;
        for a in (0..shape.len()).rev() {
            let i = rem % box_shape[a];
            rem /= box_shape[a];
            flat += (origin[a] + i) * scale;
            scale *= shape[a];
        }
        out.extend_from_slice(&bytes[flat * item..(flat + 1) * item]);
    }
    out
}

const DTYPES: [DType; 7] = [
    DType::Bool,
    DType::UInt8,
    DType::Int16,
    DType::Float32,
    DType::Int64,
    DType::Complex128,
    DType::Bytes(3),
];

#[test]
fn patches_equal_the_boxes_the_definition_picks() {
    let mut rng = Rng::keyed(15, &[]);
    let dir = tempfile::tempdir().unwrap();
    for case in 0..120u64 {
        let nd = 1 + rng.below(4) as usize;
        let shape: Vec<usize> = (0..nd).map(|_| 1 + rng.below(7) as usize).collect();
        let k = 1 + rng.below(nd as u64) as usize;
        let size: Vec<usize> = shape[..k]
            .iter()
            .map(|&d| 1 + rng.below(d as u64) as usize)
            .collect();
        let strides: Vec<usize> = (0..k).map(|_| 1 + rng.below(4) as usize).collect();
        let dtype = DTYPES[case as usize % DTYPES.len()];
        let t = array(dtype, &shape, case);
        let path = dir.path().join(format!("a{case}.npy"));
        write_npy(&path, &t).unwrap();
        let options = PatchOptions::new(&size)
            .strides(&strides)
            .num_parallel_reads(1 + (case % 3) as usize);
        let ds = Dataset::from_npy_patches(&path, options.clone()).unwrap();
        let n: usize = (0..k)
            .map(|a| (shape[a] - size[a]) / strides[a] + 1)
            .product();
        assert_eq!(
            ds.len().unwrap(),
            n as u64,
            "{shape:?} {size:?} {strides:?}"
        );
        let got = ds.to_vec().unwrap();
        for (i, e) in got.iter().enumerate() {
            let p = e.clone().into_tensor().unwrap();
            assert_eq!(p.dtype(), dtype);
            assert_eq!(&p.shape()[..k], &size[..]);
            assert_eq!(&p.shape()[k..], &shape[k..]);
            assert_eq!(
                p.as_bytes(),
                expected(&t, &size, &strides, i as u64),
                "case {case}: patch {i} of {shape:?} size {size:?} strides {strides:?}"
            );
        }
        // Shuffled batches (copied straight into the batch buffer) hold the same patches as
        // the shuffled elements one by one.
        let shuffled = ds
            .global_shuffle(
                ShuffleOptions::new()
                    .seed(case)
                    .reshuffle_each_iteration(false),
            )
            .unwrap();
        let one_by_one = shuffled.to_vec().unwrap();
        let batches = shuffled
            .batch(4, BatchOptions::new())
            .unwrap()
            .to_vec()
            .unwrap();
        let unbatched: Vec<Element> = batches
            .iter()
            .flat_map(|b| {
                let b = b.clone().into_tensor().unwrap();
                (0..b.shape()[0])
                    .map(move |r| Element::from(b.row(r).unwrap()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(unbatched, one_by_one, "case {case}");
        // The in-memory form reads the same patches.
        let mem = Dataset::from_tensor_patches(t.clone(), options).unwrap();
        assert_eq!(mem.to_vec().unwrap(), got, "case {case}");
    }
}

#[test]
fn large_batches_copied_by_several_threads_equal_one_thread() {
    // 64 patches of 32 x 32 x 16 float32 = 4 MiB a batch: above the size where the copy is
    // split between threads.
    let t = array(DType::Float32, &[160, 96, 16], 7);
    let base = PatchOptions::new(&[32, 32]).strides(&[8, 16]);
    let one = Dataset::from_tensor_patches(t.clone(), base.clone()).unwrap();
    let four = Dataset::from_tensor_patches(t.clone(), base.num_parallel_reads(4)).unwrap();
    let shuffle = |d: &Dataset| {
        d.global_shuffle(ShuffleOptions::new().seed(3))
            .unwrap()
            .batch(64, BatchOptions::new())
            .unwrap()
            .to_vec()
            .unwrap()
    };
    let (a, b) = (shuffle(&one), shuffle(&four));
    assert_eq!(a.len(), 17 * 5 / 64 + 1);
    assert_eq!(a, b);
    // And each batch row is the patch the shuffle put there.
    let perm = one
        .global_shuffle(ShuffleOptions::new().seed(3))
        .unwrap()
        .to_vec()
        .unwrap();
    let first = b[0].clone().into_tensor().unwrap();
    for (r, want) in perm.iter().take(64).enumerate() {
        assert_eq!(&Element::from(first.row(r).unwrap()), want);
    }
}

#[test]
fn a_resumed_shuffled_pass_goes_on_where_it_was() {
    let t = array(DType::UInt8, &[40, 30, 3], 9);
    let ds = Dataset::from_tensor_patches(t, PatchOptions::new(&[8, 8]).strides(&[4, 4]))
        .unwrap()
        .global_shuffle(
            ShuffleOptions::new()
                .seed(1)
                .reshuffle_each_iteration(false),
        )
        .unwrap()
        .batch(5, BatchOptions::new())
        .unwrap();
    let all = ds.to_vec().unwrap();
    for at in [0, 1, 7, all.len() - 1] {
        let mut it = ds.iter();
        for _ in 0..at {
            it.next().unwrap().unwrap();
        }
        let state = it.get_state().unwrap();
        assert!(state.len() < 200, "a state of {} bytes", state.len());
        let mut resumed = ds.iter();
        resumed.set_state(&state).unwrap();
        let rest: Vec<Element> = resumed.map(|e| e.unwrap()).collect();
        assert_eq!(rest, all[at..]);
    }
}

#[test]
fn windows_over_the_first_axis_are_views_of_the_map() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("series.npy");
    let t = array(DType::Float64, &[100, 3], 2);
    write_npy(&path, &t).unwrap();
    let ds = Dataset::from_npy_patches(&path, PatchOptions::new(&[10]).strides(&[7])).unwrap();
    let p = ds.get(3).unwrap().into_tensor().unwrap();
    assert_eq!(p.as_bytes(), &t.as_bytes()[21 * 24..31 * 24]);
    assert_eq!(p.buffer().kind(), npyflow::BufferKind::Mapped);
}

#[test]
fn bad_windows_are_refused_naming_the_file_and_argument() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cube.npy");
    write_npy(&path, &array(DType::Int8, &[6, 5, 2], 1)).unwrap();
    let err = |o: PatchOptions| match Dataset::from_npy_patches(&path, o) {
        Err(Error::InvalidArgument(m)) => m,
        Err(other) => panic!("expected an argument error, got {other}"),
        Ok(_) => panic!("accepted"),
    };
    let m = err(PatchOptions::new(&[7, 2]));
    assert!(m.contains("cube.npy") && m.contains("axis 0"), "{m}");
    let m = err(PatchOptions::new(&[1, 1, 1, 1]));
    assert!(m.contains("between 1 and 3"), "{m}");
    let m = err(PatchOptions::new(&[2, 2]).strides(&[1]));
    assert!(m.contains("strides"), "{m}");
    let m = err(PatchOptions::new(&[2, 0]));
    assert!(m.contains("positive"), "{m}");
    assert!(PatchOptions::from_tf(&[2, -1], None, None).is_err());
    assert!(PatchOptions::from_tf(&[2], None, Some(0)).is_err());
    let missing = Dataset::from_npy_patches(dir.path().join("nope.npy"), PatchOptions::new(&[1]));
    assert!(missing.unwrap_err().to_string().contains("nope.npy"));
}
