//! Sources: tensors in memory, ranges and counters, `.npy` and `.npz` files, file lists and
//! user iterators.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::plumbing::{
    call_user, describe_node, own_pass, require, restore, BoxIter, Cardinality, Dataset,
    ElementIter, Node, Pass,
};
use super::remote::{ReadPlan, RemoteRows};
use super::state::{Randomness, State};
use crate::buffer::Buffer;
use crate::buffer::BufferPool;
use crate::dtype::DType;
use crate::element::{Element, ElementSpec, PartialShape, TensorSpec};
use crate::error::{Error, Result};
use crate::format::npy::read_npy;
use crate::format::npy::RemoteNpy;
use crate::format::npz::NpzArchive;
use crate::format::storage::{self, is_url, StorageOptions};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// How many rows ahead [`gather_rows`] touches.
const PREFETCH_AHEAD: usize = 16;

/// Whether `p` is a URL read through the storage layer.
fn path_is_url(p: &Path) -> bool {
    p.to_str().is_some_and(is_url)
}

/// `p` as a URL: itself, or a local path made absolute as a `file://` URL.
fn as_url(p: &Path) -> Result<String> {
    if let Some(s) = p.to_str().filter(|s| is_url(s)) {
        return Ok(s.to_string());
    }
    let abs = std::path::absolute(p).map_err(|e| Error::io(p, e))?;
    url::Url::from_file_path(&abs)
        .map(|u| u.to_string())
        .map_err(|_| {
            Error::InvalidArgument(format!("{}: not a path npyflow can read", p.display()))
        })
}

/// The rows `indices` of `t` stacked into a buffer from `pool`, copied in the order of
/// their place in `t` (so reads sweep forward through memory, as a sorted gather does) and
/// written to their places in the batch.
pub(crate) fn gather_rows(t: &Tensor, indices: &[u64], pool: &BufferPool) -> Result<Tensor> {
    let rows = t.rows().unwrap_or(0);
    let row = t.nbytes().checked_div(rows).unwrap_or(0);
    let mut shape = t.shape().to_vec();
    shape[0] = indices.len();
    let mut out = pool.take(row * indices.len())?;
    let dst = out.as_mut_slice();
    let src = t.as_bytes();
    let mut order: Vec<(u64, usize)> = indices.iter().copied().zip(0..).collect();
    order.sort_unstable();
    if let Some(&(last, _)) = order.last() {
        if last >= rows as u64 {
            return Err(Error::OutOfRange {
                index: usize::try_from(last).unwrap_or(usize::MAX),
                len: rows,
            });
        }
    }
    for (k, &(i, at)) in order.iter().enumerate() {
        // Touch a row a few ahead, so its first cache line and its page's translation are on
        // their way while this row is copied (a load the copy does not wait for).
        if let Some(&(ahead, _)) = order.get(k + PREFETCH_AHEAD) {
            std::hint::black_box(src.get(ahead as usize * row).copied());
        }
        let i = i as usize;
        dst[at * row..(at + 1) * row].copy_from_slice(&src[i * row..(i + 1) * row]);
    }
    // A file truncated under its map: what was copied may be zeros, so it is an error.
    t.check_intact()?;
    Tensor::new(t.dtype(), &shape, out.freeze())
}

/// The rows of an element whose tensors share their first dimension.
#[derive(Clone)]
struct Slices {
    element: Element,
    rows: u64,
    spec: ElementSpec,
}

impl Slices {
    fn new(element: Element, what: &dyn Fn(usize) -> String) -> Result<Slices> {
        let tensors = element.tensors();
        require(!tensors.is_empty(), || {
            "from_tensor_slices needs at least one tensor".to_string()
        })?;
        require(!element.spec().has_dataset(), || {
            "from_tensor_slices takes tensors, not datasets".to_string()
        })?;
        let mut rows = None;
        for (i, t) in tensors.iter().enumerate() {
            let r = t.rows().ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{} is a scalar (rank 0): from_tensor_slices slices along the first axis, \
                     so every component needs at least one",
                    what(i)
                ))
            })?;
            match rows {
                Some((n, first)) if n != r => {
                    return Err(Error::InvalidArgument(format!(
                        "all components must have the same size in their first dimension: {} \
                         has {n}, {} has {r}",
                        what(first),
                        what(i)
                    )))
                }
                None => rows = Some((r, i)),
                _ => {}
            }
        }
        let spec = element.spec().unbatched()?;
        Ok(Slices {
            rows: rows.map_or(0, |(n, _)| n as u64),
            element,
            spec,
        })
    }
}

impl Node for Slices {
    describe_node! { name: "TensorSlice"; spec: spec; }
    own_pass!();
}

impl Pass for Slices {
    fn len(&self) -> u64 {
        self.rows
    }
    fn get(&self, index: u64) -> Result<Element> {
        self.element
            .map_tensors(&mut |t| t.row_view(index as usize))
    }
    fn get_range(&self, start: u64, end: u64) -> Option<Result<Element>> {
        Some(
            self.element
                .map_tensors(&mut |t| t.rows_view(start as usize..end as usize)),
        )
    }
    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        Some(
            self.element
                .map_tensors(&mut |t| gather_rows(t, indices, pool)),
        )
    }
}

/// One element, once.
#[derive(Clone)]
struct Tensors {
    element: Element,
    spec: ElementSpec,
}

impl Node for Tensors {
    describe_node! { name: "Tensor"; spec: spec; }
    own_pass!();
}

impl Pass for Tensors {
    fn len(&self) -> u64 {
        1
    }
    fn get(&self, _index: u64) -> Result<Element> {
        Ok(self.element.clone())
    }
}

fn int64_scalar_spec() -> ElementSpec {
    ElementSpec::Tensor(TensorSpec {
        dtype: DType::Int64,
        shape: PartialShape::known(&[]),
    })
}

#[derive(Clone)]
struct Range {
    start: i64,
    step: i64,
    len: u64,
    spec: ElementSpec,
}

impl Node for Range {
    describe_node! { name: "Range"; spec: spec; }
    own_pass!();
}

impl Pass for Range {
    fn len(&self) -> u64 {
        self.len
    }
    fn get(&self, index: u64) -> Result<Element> {
        // index < len, so the value lies between start and stop and cannot overflow.
        let v = i128::from(self.start) + i128::from(index) * i128::from(self.step);
        Ok(Tensor::scalar(v as i64).into())
    }
}

struct Counter {
    start: i64,
    step: i64,
    spec: ElementSpec,
}

impl Node for Counter {
    describe_node! { name: "Counter"; spec: spec; }
    fn cardinality(&self) -> Cardinality {
        Cardinality::Infinite
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let next = restore(from, "Counter", |r| Ok(r.num()? as i64))?.unwrap_or(self.start);
        Ok(Box::new(CounterIter {
            next,
            step: self.step,
        }))
    }
}

struct CounterIter {
    next: i64,
    step: i64,
}

impl ElementIter for CounterIter {
    fn next(&mut self) -> Option<Result<Element>> {
        let v = self.next;
        self.next = v.wrapping_add(self.step);
        Some(Ok(Tensor::scalar(v).into()))
    }
    fn save(&self) -> Result<State> {
        Ok(State::new("Counter").num(self.next as u64))
    }
}

/// The rows of several arrays with one row spec, read as one array.
#[derive(Clone)]
struct ShardedRows {
    parts: Vec<Tensor>,
    /// `starts[i]`: the global index of the first row of `parts[i]`; one more entry at the
    /// end holds the total.
    starts: Vec<u64>,
    spec: ElementSpec,
}

impl Node for ShardedRows {
    describe_node! { name: "NpyRows"; spec: spec; }
    own_pass!();
}

impl Pass for ShardedRows {
    fn len(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }
    fn get(&self, index: u64) -> Result<Element> {
        // The last part whose start is at or before index.
        let part = self.starts.partition_point(|&s| s <= index) - 1;
        let row = (index - self.starts[part]) as usize;
        Ok(self.parts[part].row_view(row)?.into())
    }
    fn get_range(&self, start: u64, end: u64) -> Option<Result<Element>> {
        // A slice when the rows lie in one file; stacked otherwise.
        let part = self.starts.partition_point(|&s| s <= start) - 1;
        let (first, next) = (self.starts[part], self.starts[part + 1]);
        (end <= next).then(|| {
            let range = (start - first) as usize..(end - first) as usize;
            Ok(self.parts[part].rows_view(range)?.into())
        })
    }
    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        if self.parts.len() == 1 {
            return Some(gather_rows(&self.parts[0], indices, pool).map(Element::from));
        }
        // Rows from several files: each row copied from its part.
        let gathered = (|| {
            let first = &self.parts[0];
            // From the row shape, not the first file's size (which may have no rows).
            let row = first.shape()[1..].iter().product::<usize>() * first.dtype().itemsize();
            let mut shape = first.shape().to_vec();
            shape[0] = indices.len();
            let mut out = pool.take(row * indices.len())?;
            let dst = out.as_mut_slice();
            for (at, &i) in indices.iter().enumerate() {
                let part = self.starts.partition_point(|&s| s <= i) - 1;
                let r = (i - self.starts[part]) as usize;
                let src = self.parts[part].as_bytes();
                dst[at * row..(at + 1) * row].copy_from_slice(&src[r * row..(r + 1) * row]);
            }
            self.parts.iter().try_for_each(Tensor::check_intact)?;
            Tensor::new(first.dtype(), &shape, out.freeze())
        })();
        Some(gathered.map(Element::from))
    }
}

/// A bytes scalar per string, all of one width (the longest), as NumPy's `S` dtype stores
/// them.
fn bytes_scalars(strings: &[Vec<u8>]) -> Result<(Vec<Tensor>, DType)> {
    let width = strings.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let dtype = DType::Bytes(width);
    let tensors = strings
        .iter()
        .map(|s| {
            let mut b = s.clone();
            b.resize(width, 0);
            Tensor::new(dtype, &[], Buffer::from_vec(b))
        })
        .collect::<Result<_>>()?;
    Ok((tensors, dtype))
}

struct ListFiles {
    files: Vec<Tensor>,
    shuffle: bool,
    random: Randomness,
    spec: ElementSpec,
}

impl Node for ListFiles {
    describe_node! { name: "ListFiles"; spec: spec; random: random; }
    fn cardinality(&self) -> Cardinality {
        Cardinality::Finite(self.files.len() as u64)
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let saved = restore(from, "ListFiles", |r| Ok((r.num()?, r.num()?, r.usize()?)))?;
        let (seed, epoch) = self
            .random
            .sequential(saved.map(|(s, e, _)| (s, e)), self.shuffle);
        let next = saved.map_or(0, |(_, _, n)| n);
        let mut order: Vec<Tensor> = self.files.clone();
        if self.shuffle {
            Rng::keyed(seed, &[epoch]).shuffle(&mut order);
        }
        Ok(Box::new(FilesIter {
            order,
            next,
            seed,
            epoch,
        }))
    }
    // Unshuffled, the files are a list read by index (tf.data's list_files(shuffle=False)
    // has random access too), so a global_shuffle can follow.
    fn is_random_access(&self) -> bool {
        !self.shuffle
    }
    fn pass(&self) -> Option<super::plumbing::PassRef> {
        if self.shuffle {
            return None;
        }
        Some(Arc::new(FilesPass(self.files.clone())))
    }
}

/// The files of an unshuffled `list_files`, by index.
struct FilesPass(Vec<Tensor>);

impl Pass for FilesPass {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn get(&self, index: u64) -> Result<Element> {
        let len = self.0.len();
        usize::try_from(index)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|t| t.clone().into())
            .ok_or(Error::OutOfRange {
                index: usize::try_from(index).unwrap_or(usize::MAX),
                len,
            })
    }
}

struct FilesIter {
    order: Vec<Tensor>,
    next: usize,
    seed: u64,
    epoch: u64,
}

impl ElementIter for FilesIter {
    fn next(&mut self) -> Option<Result<Element>> {
        let t = self.order.get(self.next)?.clone();
        self.next += 1;
        Some(Ok(t.into()))
    }
    fn save(&self) -> Result<State> {
        Ok(State::new("ListFiles")
            .num(self.seed)
            .num(self.epoch)
            .num(self.next as u64))
    }
}

/// tf.data's `Dataset.random`: int64 draws without end, element `i` of a pass keyed by
/// (seed, epoch, i).
struct Random {
    rerandomize: bool,
    random: Randomness,
    spec: ElementSpec,
}

impl Node for Random {
    describe_node! { name: "Random"; spec: spec; random: random; }
    fn cardinality(&self) -> Cardinality {
        Cardinality::Infinite
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let saved = restore(from, "Random", |r| Ok((r.num()?, r.num()?, r.num()?)))?;
        let (seed, epoch) = self
            .random
            .sequential(saved.map(|(s, e, _)| (s, e)), self.rerandomize);
        let next = saved.map_or(0, |(_, _, n)| n);
        Ok(Box::new(RandomIter { seed, epoch, next }))
    }
}

struct RandomIter {
    seed: u64,
    epoch: u64,
    next: u64,
}

impl ElementIter for RandomIter {
    fn next(&mut self) -> Option<Result<Element>> {
        let draw = Rng::keyed(self.seed, &[self.epoch, self.next]).next_u64() >> 32;
        self.next = self.next.wrapping_add(1);
        Some(Ok(Tensor::scalar(draw as i64).into()))
    }
    fn save(&self) -> Result<State> {
        Ok(State::new("Random")
            .num(self.seed)
            .num(self.epoch)
            .num(self.next))
    }
}

/// The factory behind [`Dataset::from_generator`].
pub type GeneratorFactory =
    dyn Fn() -> Result<Box<dyn Iterator<Item = Result<Element>> + Send>> + Send + Sync;

struct Generator {
    factory: Arc<GeneratorFactory>,
    spec: ElementSpec,
}

impl Node for Generator {
    describe_node! { name: "Generator"; spec: spec; }
    fn cardinality(&self) -> Cardinality {
        Cardinality::Unknown
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let skip = restore(from, "Generator", |r| r.num())?.unwrap_or(0);
        let factory = Arc::clone(&self.factory);
        let inner = call_user("from_generator", 0, || factory())?;
        let mut it = GeneratorIter {
            inner,
            spec: self.spec.clone(),
            index: 0,
        };
        // A generator has no state to restore but its count: call it again and pass over
        // the elements already given.
        while it.index < skip {
            if it.next().is_none() {
                break;
            }
        }
        Ok(Box::new(it))
    }
}

struct GeneratorIter {
    inner: Box<dyn Iterator<Item = Result<Element>> + Send>,
    spec: ElementSpec,
    index: u64,
}

impl ElementIter for GeneratorIter {
    fn next(&mut self) -> Option<Result<Element>> {
        let i = self.index;
        let inner = &mut self.inner;
        let item = match call_user("from_generator", i, || Ok(inner.next())) {
            Ok(item) => item?,
            Err(e) => {
                self.index += 1;
                return Some(Err(e));
            }
        };
        self.index += 1;
        let spec = &self.spec;
        Some(item.and_then(|e| {
            if spec.is_compatible_with(&e) {
                Ok(e)
            } else {
                Err(Error::Pipeline(format!(
                    "from_generator: element {i} is {}, which does not match the declared \
                     spec {spec}",
                    e.spec()
                )))
            }
        }))
    }
    fn save(&self) -> Result<State> {
        Ok(State::new("Generator").num(self.index))
    }
}

impl Dataset {
    /// tf.data's `from_tensor_slices`: one element per row of `element`'s tensors (a tensor,
    /// or a tuple or dict of them, nested as deep as needed). Every tensor must have at least
    /// one axis, and all must share their first dimension. Rows share the tensors' memory.
    ///
    /// An empty array gives an empty dataset whose spec is the rows' spec.
    ///
    /// ```
    /// use npyflow::{Dataset, Element, Tensor};
    /// let x = Tensor::from_vec(vec![1i64, 2, 3, 4, 5], &[5])?;
    /// let ds = Dataset::from_tensor_slices(x)?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["1", "2", "3", "4", "5"]);
    ///
    /// let y = Tensor::from_vec(vec![0u8; 4], &[4])?;
    /// let bad = Dataset::from_tensor_slices(Element::tuple([Tensor::zeros(npyflow::DType::Int8, &[3])?, y]));
    /// assert!(bad.unwrap_err().to_string().contains("has 3, component 1 has 4"));
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn from_tensor_slices(element: impl Into<Element>) -> Result<Dataset> {
        let element = element.into();
        // Components named as Python indexes the element: `component 1`, `component 'x'`.
        let names = element.spec().component_names();
        let node = Slices::new(element, &|i| match names.get(i) {
            Some(name) if !name.is_empty() => format!("component {name}"),
            _ => "the tensor".to_string(),
        })?;
        Ok(Dataset::from_node(node))
    }

    /// tf.data's `from_tensors`: a dataset of exactly one element, `element` itself.
    pub fn from_tensors(element: impl Into<Element>) -> Dataset {
        let element = element.into();
        let spec = element.spec();
        Dataset::from_node(Tensors { element, spec })
    }

    /// tf.data's `range(start, stop, step)`: int64 scalars from `start` while below `stop`
    /// (above it for a negative `step`), as Python's `range`. A `step` of 0 is refused.
    ///
    /// Unlike tf.data there is no one-argument form: `range(5)` is `range(0, 5, 1)`.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let v: Vec<String> = Dataset::range(5, 1, -2)?.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(v, ["5", "3"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn range(start: i64, stop: i64, step: i64) -> Result<Dataset> {
        require(step != 0, || "range: step must not be zero".to_string())?;
        let span = i128::from(stop) - i128::from(start);
        let step128 = i128::from(step);
        let len = if (span > 0) == (step > 0) && span != 0 {
            // ceil(span / step) for span and step of one sign
            (span + step128 - step128.signum()) / step128
        } else {
            0
        };
        Ok(Dataset::from_node(Range {
            start,
            step,
            len: len as u64,
            spec: int64_scalar_spec(),
        }))
    }

    /// tf.data's `counter(start, step)`: int64 scalars `start, start + step, ...` without end
    /// (wrapping around at the int64 limits).
    pub fn counter(start: i64, step: i64) -> Dataset {
        Dataset::from_node(Counter {
            start,
            step,
            spec: int64_scalar_spec(),
        })
    }

    /// The rows of a `.npy` file, memory-mapped: no copy of the file is made when its data
    /// is native-endian, C-order and aligned (otherwise it is converted once, when the
    /// dataset is made). tf.data has no counterpart; it is `from_tensor_slices(np.load(path,
    /// mmap_mode='r'))` without the copy into a tensor.
    ///
    /// A file truncated by another process while mapped does not crash the process: rows
    /// past its new end are errors naming the file (see [`read_npy`]).
    ///
    /// A URL (`s3://`, `gs://`, `az://`, `http(s)://`, `file://`) is read by range: see
    /// [`Dataset::from_npy_with`].
    pub fn from_npy(path: impl AsRef<Path>) -> Result<Dataset> {
        Self::from_npy_files([path])
    }

    /// [`Dataset::from_npy`] with storage options for URLs (credentials, endpoint, retries,
    /// read-ahead; see [`storage`](crate::format::storage) and [`StorageOptions`]). A remote
    /// `.npy` is never downloaded whole: its header is read by one ranged GET when the
    /// dataset is made, its rows by ranged GETs as they are read, in blocks of
    /// `block_bytes` (8 MiB) read ahead within `read_ahead_bytes` (128 MiB), and a batch of
    /// scattered rows (after a global shuffle) by few coalesced requests in flight together.
    /// A row that cannot be read after the retries is an error at its element, naming the
    /// URL and byte range; the pass goes on. tf.data has no `.npy` reader; its file readers
    /// take `gs://` paths through TensorFlow's file systems.
    ///
    /// ```
    /// use npyflow::{Dataset, Tensor, format::{npy::write_npy, storage::StorageOptions}};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("x.npy");
    /// write_npy(&path, &Tensor::from_vec((0..6i64).collect(), &[3, 2])?)?;
    /// let url = format!("file://{}", path.display());
    /// let ds = Dataset::from_npy_with(&url, &StorageOptions::new())?;
    /// assert_eq!(ds.to_vec()?[2].to_string(), "[4 5]");
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn from_npy_with(path: impl AsRef<Path>, storage: &StorageOptions) -> Result<Dataset> {
        Self::from_npy_files_with([path], storage)
    }

    /// [`Dataset::from_npy_files`] with storage options for the URLs among `paths` (see
    /// [`Dataset::from_npy_with`]).
    pub fn from_npy_files_with<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
        storage: &StorageOptions,
    ) -> Result<Dataset> {
        let paths: Vec<PathBuf> = paths.into_iter().map(|p| p.as_ref().to_owned()).collect();
        if !paths.iter().any(|p| path_is_url(p)) {
            return Self::from_local_npy_files(&paths);
        }
        let plan = ReadPlan::from_options(storage)?;
        let mut parts = Vec::new();
        let mut first: Option<(String, TensorSpec)> = None;
        for p in &paths {
            let url = as_url(p)?;
            let f = RemoteNpy::open(&url, storage, &Default::default())?;
            let h = f.header();
            if h.shape.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "{}: the array is a scalar; its rows cannot be a dataset (use from_tensors)",
                    f.object().url()
                )));
            }
            let row_spec = TensorSpec {
                dtype: h.dtype,
                shape: PartialShape::known(&h.shape[1..]),
            };
            let name = f.object().url().to_string();
            match &first {
                Some((fu, spec)) if *spec != row_spec => {
                    return Err(Error::InvalidArgument(format!(
                        "{name} has rows of {} {}, but {fu} has rows of {} {}",
                        row_spec.dtype, row_spec.shape, spec.dtype, spec.shape
                    )))
                }
                None => first = Some((name, row_spec)),
                _ => {}
            }
            parts.push(f);
        }
        let (_, spec) =
            first.ok_or_else(|| Error::InvalidArgument("from_npy_files: no files given".into()))?;
        Ok(Dataset::from_node(RemoteRows::new(
            parts,
            ElementSpec::Tensor(spec),
            plan,
        )))
    }

    /// The rows of several `.npy` files read as one array, in the order given (a sharded
    /// array on disk). Every file must have the same dtype and the same shape after the first
    /// axis; the error names the first file that differs.
    pub fn from_npy_files<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> Result<Dataset> {
        Self::from_npy_files_with(paths, &StorageOptions::new())
    }

    /// Local `.npy` files, memory-mapped.
    fn from_local_npy_files(paths: &[PathBuf]) -> Result<Dataset> {
        let mut parts = Vec::new();
        let mut starts = vec![0u64];
        let mut first: Option<(PathBuf, TensorSpec)> = None;
        for p in paths {
            let p: &Path = p.as_ref();
            let t = read_npy(p)?; // its errors name the file
            if t.ndim() == 0 {
                return Err(Error::InvalidArgument(format!(
                    "{}: the array is a scalar; its rows cannot be a dataset (use from_tensors)",
                    p.display()
                )));
            }
            let row_spec = TensorSpec {
                dtype: t.dtype(),
                shape: PartialShape::known(&t.shape()[1..]),
            };
            match &first {
                Some((fp, spec)) if *spec != row_spec => {
                    return Err(Error::InvalidArgument(format!(
                        "{} has rows of {} {}, but {} has rows of {} {}",
                        p.display(),
                        row_spec.dtype,
                        row_spec.shape,
                        fp.display(),
                        spec.dtype,
                        spec.shape
                    )))
                }
                None => first = Some((p.to_path_buf(), row_spec)),
                _ => {}
            }
            starts.push(starts.last().unwrap_or(&0) + t.shape()[0] as u64);
            parts.push(t);
        }
        let (_, spec) =
            first.ok_or_else(|| Error::InvalidArgument("from_npy_files: no files given".into()))?;
        Ok(Dataset::from_node(ShardedRows {
            parts,
            starts,
            spec: ElementSpec::Tensor(spec),
        }))
    }

    /// The rows of members of an `.npz` archive, as dict elements keyed by member name (all
    /// members, in archive order, when `keys` is `None`). Stored, aligned members are mapped;
    /// deflated ones are inflated once, when the dataset is made.
    ///
    /// A URL is read by range (see [`Dataset::from_npz_with`]).
    pub fn from_npz(path: impl AsRef<Path>, keys: Option<&[&str]>) -> Result<Dataset> {
        Self::from_npz_with(path, keys, &StorageOptions::new())
    }

    /// [`Dataset::from_npz`] with storage options for a URL: the archive's directory and
    /// headers are read by ranged GETs from its end, each stored member by one ranged GET,
    /// each deflated member streamed through the inflater; the members are then held in
    /// memory, as for a local archive's deflated members.
    pub fn from_npz_with(
        path: impl AsRef<Path>,
        keys: Option<&[&str]>,
        storage: &StorageOptions,
    ) -> Result<Dataset> {
        let path = path.as_ref();
        let archive = if path_is_url(path) {
            NpzArchive::open_url(&as_url(path)?, storage, &Default::default())?
        } else {
            NpzArchive::open(path)?
        };
        let keys: Vec<String> = match keys {
            Some(k) => k.iter().map(|s| s.to_string()).collect(),
            None => archive.keys().map(str::to_string).collect(),
        };
        require(!keys.is_empty(), || {
            format!("{}: no members to read", path.display())
        })?;
        let mut dict = indexmap::IndexMap::new();
        for k in &keys {
            dict.insert(k.clone(), Element::from(archive.load(k)?));
        }
        let node = Slices::new(Element::Dict(dict), &|i| {
            format!("{}: member '{}'", path.display(), keys[i])
        })?;
        Ok(Dataset::from_node(node))
    }

    /// tf.data's `Dataset.random(seed, rerandomize_each_iteration)`: int64 scalars drawn
    /// uniformly from `0..2**32` (tf.data's range), without end. npyflow's own draws, not
    /// TensorFlow's: element *i* of a pass is keyed by (seed, epoch, *i*), so a restored
    /// iterator goes on with the same numbers. `seed: None` draws a seed when the dataset is
    /// made. Every pass gives the same numbers unless `rerandomize_each_iteration`, as in
    /// tf.data.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let ds = Dataset::random(Some(4), false).take(3);
    /// let a = ds.to_vec()?;
    /// assert_eq!(a, ds.to_vec()?);
    /// assert_eq!(a.len(), 3);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn random(seed: Option<u64>, rerandomize_each_iteration: bool) -> Dataset {
        Dataset::from_node(Random {
            rerandomize: rerandomize_each_iteration,
            random: Randomness::new(seed),
            spec: int64_scalar_spec(),
        })
    }

    /// tf.data's `list_files(pattern, shuffle, seed)`: the paths matching a glob pattern, as
    /// bytes scalars, sorted; shuffled on each pass when `shuffle` is set (tf.data's default),
    /// seeded by `seed` (a fresh seed when `None`). No match is an error naming the pattern.
    ///
    /// The pattern is matched once, when the dataset is made.
    ///
    /// A URL pattern (`s3://bucket/data/*.npy`) lists the store: see
    /// [`Dataset::list_files_with`].
    pub fn list_files(pattern: &str, shuffle: bool, seed: Option<u64>) -> Result<Dataset> {
        Self::list_files_with(pattern, shuffle, seed, &StorageOptions::new())
    }

    /// [`Dataset::list_files`] with storage options for a URL pattern. The objects matching
    /// are listed once (`*` does not cross `/`, `**` does), as URLs, sorted. An
    /// `http(s)://` server cannot be listed; a pattern without glob characters names one
    /// object.
    pub fn list_files_with(
        pattern: &str,
        shuffle: bool,
        seed: Option<u64>,
        storage: &StorageOptions,
    ) -> Result<Dataset> {
        if is_url(pattern) {
            let names: Vec<Vec<u8>> = storage::list(pattern, storage)?
                .into_iter()
                .map(|o| o.url.into_bytes())
                .collect();
            return Self::list_names(names, pattern, shuffle, seed);
        }
        let paths = glob::glob(pattern)
            .map_err(|e| Error::InvalidArgument(format!("list_files: pattern {pattern:?}: {e}")))?;
        let mut names: Vec<Vec<u8>> = Vec::new();
        for p in paths {
            let p = p.map_err(|e| {
                Error::io(e.path().to_path_buf(), std::io::Error::other(e.to_string()))
            })?;
            names.push(p.to_string_lossy().into_owned().into_bytes());
        }
        Self::list_names(names, pattern, shuffle, seed)
    }

    fn list_names(
        mut names: Vec<Vec<u8>>,
        pattern: &str,
        shuffle: bool,
        seed: Option<u64>,
    ) -> Result<Dataset> {
        names.sort();
        let pattern = storage::display_url(pattern);
        require(!names.is_empty(), || {
            format!("list_files: no files matched pattern: {pattern}")
        })?;
        let (files, dtype) = bytes_scalars(&names)?;
        Ok(Dataset::from_node(ListFiles {
            files,
            shuffle,
            random: Randomness::new(seed),
            spec: ElementSpec::Tensor(TensorSpec {
                dtype,
                shape: PartialShape::known(&[]),
            }),
        }))
    }

    /// tf.data's `from_generator`: elements from an iterator that `factory` makes anew for
    /// each pass. Like tf.data's `output_signature`, `spec` declares the elements; one that
    /// does not fit it is an error at its position. The cardinality is unknown.
    ///
    /// ```
    /// use npyflow::{Dataset, DType, ElementSpec, PartialShape, Tensor, TensorSpec};
    /// let spec = ElementSpec::Tensor(TensorSpec { dtype: DType::Int64, shape: PartialShape::known(&[]) });
    /// let ds = Dataset::from_generator(spec, || {
    ///     Ok(Box::new((0..3i64).map(|i| Ok(Tensor::scalar(i * i).into()))))
    /// });
    /// assert_eq!(ds.to_vec()?.last().unwrap().to_string(), "4");
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn from_generator(
        spec: ElementSpec,
        factory: impl Fn() -> Result<Box<dyn Iterator<Item = Result<Element>> + Send>>
            + Send
            + Sync
            + 'static,
    ) -> Dataset {
        Dataset::from_node(Generator {
            factory: Arc::new(factory),
            spec,
        })
    }
}
