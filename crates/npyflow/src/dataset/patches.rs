//! Patches of one large array: the windows of an N-d array over its leading axes, on a grid
//! of strides, read from the array (a memory-mapped `.npy`) by index.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::parallelism::{cores, AUTOTUNE, MAX_THREADS};
use super::plumbing::{describe_node, own_pass, require, Dataset, Node, Pass};
use crate::buffer::{BufferMut, BufferPool};
use crate::element::{Element, ElementSpec, PartialShape, TensorSpec};
use crate::error::{Error, Result, ResultExt};
use crate::format::npy::read_npy;
use crate::ops::BoxLayout;
use crate::tensor::Tensor;

/// Below this many bytes a batch of patches is copied by one thread: starting a second
/// costs more than it saves.
const PARALLEL_COPY_MIN_BYTES: usize = 1 << 20;

/// How many batches are copied on one thread after a batch whose helpers came too late.
const SOLO_BATCHES: usize = 16;

/// About how many bytes of patches a copying thread takes at a time.
const PATCHES_UNIT_BYTES: usize = 256 << 10;

/// The options of [`Dataset::from_npy_patches`] and [`Dataset::from_tensor_patches`]: the
/// window, its strides, and how many threads copy a batch of patches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchOptions {
    /// The window over the array's leading axes: `[h, w]` cuts an `(H, W, bands)` cube into
    /// patches of `(h, w, bands)`. Each entry at least 1.
    pub size: Vec<usize>,
    /// The step between patches along each windowed axis; `None`: the window itself (patches
    /// that tile the array without overlap).
    pub strides: Option<Vec<usize>>,
    /// Threads that copy one batch of patches into the batch's buffer (a `batch` right after
    /// the source copies its patches straight from the array); `None`: one (the thread
    /// that makes the batch). Batches under 1 MiB are copied by one thread whatever this is.
    pub num_parallel_reads: Option<usize>,
}

impl PatchOptions {
    /// Patches of `size` over the leading axes, strides equal to `size`, one copying thread.
    pub fn new(size: &[usize]) -> PatchOptions {
        PatchOptions {
            size: size.to_vec(),
            strides: None,
            num_parallel_reads: None,
        }
    }

    /// With the step between patches along each windowed axis.
    pub fn strides(self, strides: &[usize]) -> PatchOptions {
        PatchOptions {
            strides: Some(strides.to_vec()),
            ..self
        }
    }

    /// With `threads` threads copying each batch of patches.
    pub fn num_parallel_reads(self, threads: usize) -> PatchOptions {
        PatchOptions {
            num_parallel_reads: Some(threads),
            ..self
        }
    }

    /// The options from the fronts' integers (Python's, the command line's): `size` and
    /// `strides` positive, `num_parallel_reads` positive or [`AUTOTUNE`](super::AUTOTUNE)
    /// (one thread per core).
    pub fn from_tf(
        size: &[i64],
        strides: Option<&[i64]>,
        num_parallel_reads: Option<i64>,
    ) -> Result<PatchOptions> {
        let positive = |name: &str, v: &[i64]| -> Result<Vec<usize>> {
            v.iter()
                .map(|&d| {
                    usize::try_from(d).ok().filter(|&d| d > 0).ok_or_else(|| {
                        Error::InvalidArgument(format!(
                            "from_npy_patches: every entry of {name} must be positive, got \
                             {v:?}"
                        ))
                    })
                })
                .collect()
        };
        let threads = match num_parallel_reads {
            None => None,
            Some(AUTOTUNE) => Some(cores()),
            Some(n) if n > 0 => Some((n as usize).min(MAX_THREADS)),
            Some(n) => {
                return Err(Error::InvalidArgument(format!(
                    "from_npy_patches: num_parallel_reads must be positive or AUTOTUNE (-1), \
                     got {n}"
                )))
            }
        };
        Ok(PatchOptions {
            size: positive("size", size)?,
            strides: strides.map(|s| positive("strides", s)).transpose()?,
            num_parallel_reads: threads,
        })
    }
}

/// The patches of one array.
#[derive(Clone)]
struct Patches {
    array: Tensor,
    layout: BoxLayout,
    /// The box: the window, then the array's other axes whole.
    shape: Vec<usize>,
    strides: Vec<usize>,
    /// Patches along each windowed axis.
    grid: Vec<usize>,
    len: u64,
    threads: usize,
    /// Batches left to copy on one thread, after the helpers of a batch did too little of it
    /// (the machine ran them late): shared by the node's passes.
    solo: Arc<AtomicUsize>,
    spec: ElementSpec,
}

impl Patches {
    fn new(array: Tensor, options: PatchOptions, what: &str) -> Result<Patches> {
        let PatchOptions {
            size,
            strides,
            num_parallel_reads,
        } = options;
        let dims = array.shape().to_vec();
        require(!size.is_empty() && size.len() <= dims.len(), || {
            format!(
                "{what}: the patch size {size:?} must have between 1 and {} entries (the array \
                 has shape {dims:?}; patches are windows over its leading axes)",
                dims.len()
            )
        })?;
        let strides = strides.unwrap_or_else(|| size.clone());
        require(strides.len() == size.len(), || {
            format!(
                "{what}: strides {strides:?} must have one entry per windowed axis, as the \
                 patch size {size:?} has"
            )
        })?;
        require(size.iter().chain(&strides).all(|&d| d > 0), || {
            format!(
                "{what}: patch sizes and strides must be positive, got {size:?} and {strides:?}"
            )
        })?;
        require(num_parallel_reads != Some(0), || {
            format!("{what}: num_parallel_reads must be positive")
        })?;
        for (axis, (&s, &d)) in size.iter().zip(&dims).enumerate() {
            require(s <= d, || {
                format!(
                    "{what}: a patch of {s} along axis {axis} does not fit in the array's {d} \
                     (shape {dims:?})"
                )
            })?;
        }
        let grid: Vec<usize> = size
            .iter()
            .zip(&strides)
            .zip(&dims)
            .map(|((&s, &st), &d)| (d - s) / st + 1)
            .collect();
        let len = grid
            .iter()
            .try_fold(1u64, |acc, &g| acc.checked_mul(g as u64))
            .ok_or_else(|| Error::InvalidArgument(format!("{what}: too many patches")))?;
        let mut shape = size.clone();
        shape.extend_from_slice(&dims[size.len()..]);
        let layout = BoxLayout::new(&dims, array.dtype().itemsize(), &shape);
        let spec = ElementSpec::Tensor(TensorSpec {
            dtype: array.dtype(),
            shape: PartialShape::known(&shape),
        });
        Ok(Patches {
            array,
            layout,
            shape,
            strides,
            grid,
            len,
            threads: num_parallel_reads.unwrap_or(1),
            solo: Arc::new(AtomicUsize::new(0)),
            spec,
        })
    }

    /// Where patch `index` starts along every axis of the array.
    fn offsets(&self, index: u64) -> Vec<usize> {
        let mut offsets = vec![0usize; self.shape.len()];
        let mut rest = index;
        for a in (0..self.grid.len()).rev() {
            let g = self.grid[a] as u64;
            offsets[a] = (rest % g) as usize * self.strides[a];
            rest /= g;
        }
        offsets
    }

    /// Copies the patches `order` (patch index, place in `dst`) into `dst`, patch by patch.
    fn copy_into(&self, order: &[(u64, usize)], dst: &mut [u8]) {
        let src = self.array.as_bytes();
        let bytes = self.layout.nbytes();
        for &(index, place) in order {
            let at = place * bytes;
            self.layout
                .copy(src, &self.offsets(index), &mut dst[at..at + bytes]);
        }
    }
}

impl Node for Patches {
    describe_node! { name: "NpyPatches"; spec: spec; }
    own_pass!();
}

impl Pass for Patches {
    fn len(&self) -> u64 {
        self.len
    }

    fn get(&self, index: u64) -> Result<Element> {
        if index >= self.len {
            return Err(Error::OutOfRange {
                index: usize::try_from(index).unwrap_or(usize::MAX),
                len: usize::try_from(self.len).unwrap_or(usize::MAX),
            });
        }
        let offsets = self.offsets(index);
        let patch = if self.layout.is_contiguous() {
            // One run of the array: a view of it, no copy.
            let start = self.layout.start(&offsets);
            let buffer = self
                .array
                .buffer()
                .slice(start..start + self.layout.nbytes())?;
            Tensor::new(self.array.dtype(), &self.shape, buffer)?
        } else {
            let mut out = BufferMut::zeroed(self.layout.nbytes())?;
            self.layout
                .copy(self.array.as_bytes(), &offsets, out.as_mut_slice());
            Tensor::new(self.array.dtype(), &self.shape, out.freeze())?
        };
        // A file truncated under its map reads zeros: an error, not data.
        patch.check_intact()?;
        self.array.check_intact()?;
        Ok(patch.into())
    }

    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        Some((|| {
            if let Some(&bad) = indices.iter().find(|&&i| i >= self.len) {
                return Err(Error::OutOfRange {
                    index: usize::try_from(bad).unwrap_or(usize::MAX),
                    len: usize::try_from(self.len).unwrap_or(usize::MAX),
                });
            }
            let bytes = self.layout.nbytes();
            let mut out = pool.take(bytes * indices.len())?;
            let dst = out.as_mut_slice();
            // Patches are copied in the order of their place in the array, so reads sweep
            // forward. Several threads share the work patch by patch (a counter hands out
            // the next few), so a thread the machine runs late takes fewer: the batch never
            // waits for a fixed half of it.
            let mut order: Vec<(u64, usize)> = indices.iter().copied().zip(0..).collect();
            order.sort_unstable();
            let solo = self
                .solo
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok();
            let threads = if bytes * indices.len() >= PARALLEL_COPY_MIN_BYTES && !solo {
                self.threads.min(indices.len())
            } else {
                1
            };
            if threads <= 1 || bytes == 0 {
                self.copy_into(&order, dst);
            } else {
                let slots: Vec<Mutex<&mut [u8]>> = dst.chunks_mut(bytes).map(Mutex::new).collect();
                let unit = (PATCHES_UNIT_BYTES / bytes).max(1);
                let next = AtomicUsize::new(0);
                let by_helpers = AtomicUsize::new(0);
                let work = |helper: bool| loop {
                    let from = next.fetch_add(unit, Ordering::Relaxed);
                    if from >= order.len() {
                        break;
                    }
                    if helper {
                        by_helpers.fetch_add(unit, Ordering::Relaxed);
                    }
                    let src = self.array.as_bytes();
                    for &(index, place) in &order[from..(from + unit).min(order.len())] {
                        let mut slot = slots[place]
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        self.layout.copy(src, &self.offsets(index), &mut slot);
                    }
                };
                std::thread::scope(|scope| {
                    for _ in 1..threads {
                        scope.spawn(|| work(true));
                    }
                    work(false);
                });
                // Helpers that took under a quarter of their even share were mostly waited
                // for (a busy machine runs them late): copy the next batches on this thread
                // alone, then try again.
                let even = order.len() * (threads - 1) / threads;
                if by_helpers.load(Ordering::Relaxed) * 4 < even {
                    self.solo.store(SOLO_BATCHES, Ordering::Relaxed);
                }
            }
            self.array.check_intact()?;
            let mut shape = Vec::with_capacity(self.shape.len() + 1);
            shape.push(indices.len());
            shape.extend_from_slice(&self.shape);
            Ok(Tensor::new(self.array.dtype(), &shape, out.freeze())?.into())
        })())
    }
}

impl Dataset {
    /// Patches of one large `.npy` array: the windows of `options.size` over its leading
    /// axes, on a grid of `options.strides`, in C order of their positions (the last
    /// windowed axis fastest). A cube `(H, W, bands)` with `size = [h, w]` gives patches
    /// `(h, w, bands)`; there are `((H - h) / sh + 1) * ((W - w) / sw + 1)` of them (windows
    /// that would cross the array's end are left out, tf's `padding="VALID"`).
    ///
    /// The file is memory-mapped and each patch is copied from the map when it is read, so
    /// memory does not grow with the array: nothing is loaded when the dataset is made, and
    /// a `batch` right after it (or after a [`global_shuffle`](Dataset::global_shuffle) of
    /// it) copies its patches straight from the map into the batch's buffer, run by run,
    /// with [`PatchOptions::num_parallel_reads`] threads. A patch that is one contiguous
    /// run of the file (windows over the first axis alone) is a view of the map, no copy.
    /// The dataset is random-access: `global_shuffle`, `get`, `shard` and tiny iterator
    /// states work as over rows.
    ///
    /// tf.data has no counterpart. `tf.image.extract_patches` is the nearest: it takes a
    /// batch of images already in memory (4-D, windows over two axes only) and returns every
    /// patch at once, each flattened into the depth axis, so the output is as large as the
    /// image times the overlap; it has dilation (`rates`) and `padding="SAME"`, which this
    /// does not.
    ///
    /// ```
    /// use npyflow::dataset::PatchOptions;
    /// use npyflow::format::npy::write_npy;
    /// use npyflow::{Dataset, Tensor};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("cube.npy");
    /// // A 4 x 5 image with 2 bands.
    /// write_npy(&path, &Tensor::from_vec((0..40i32).collect(), &[4, 5, 2])?)?;
    /// let ds = Dataset::from_npy_patches(&path, PatchOptions::new(&[2, 2]).strides(&[2, 1]))?;
    /// assert_eq!(ds.len()?, 2 * 4);
    /// let p = ds.get(5)?.into_tensor()?; // grid position (1, 1): rows 2..4, columns 1..3
    /// assert_eq!(p.shape(), &[2, 2, 2]);
    /// assert_eq!(p.view::<i32>()?, &[22, 23, 24, 25, 32, 33, 34, 35]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn from_npy_patches(path: impl AsRef<Path>, options: PatchOptions) -> Result<Dataset> {
        let path = path.as_ref();
        let array = read_npy(path).context(path.display())?;
        let what = format!("from_npy_patches: {}", path.display());
        Ok(Dataset::from_node(Patches::new(array, options, &what)?))
    }

    /// [`from_npy_patches`](Dataset::from_npy_patches) over a tensor already in memory (or
    /// one that [`read_npy`] mapped).
    ///
    /// ```
    /// use npyflow::dataset::PatchOptions;
    /// use npyflow::{Dataset, Tensor};
    /// let series = Tensor::from_vec((0..10i64).collect(), &[10])?;
    /// // Sliding windows of 4 with a step of 3: [0..4], [3..7], [6..10].
    /// let ds = Dataset::from_tensor_patches(series, PatchOptions::new(&[4]).strides(&[3]))?;
    /// assert_eq!(ds.to_vec()?[2].to_string(), "[6 7 8 9]");
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn from_tensor_patches(array: Tensor, options: PatchOptions) -> Result<Dataset> {
        Ok(Dataset::from_node(Patches::new(
            array,
            options,
            "from_tensor_patches",
        )?))
    }
}
