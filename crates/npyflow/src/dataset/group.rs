//! `group_by_window` and `bucket_by_sequence_length`: elements grouped by a key, each full
//! group reduced to a dataset.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::elements::Elements;
use super::map::trace;
use super::options::BatchOptions;
use super::plumbing::{
    call_user, describe_node, reopen, require, restore, BoxIter, Cardinality, Dataset, ElementIter,
    Node,
};
use super::state::State;
use crate::element::{Element, ElementSpec, PartialShape, TensorSpec};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

type KeyFn = Arc<dyn Fn(&Element) -> Result<i64> + Send + Sync>;
type ReduceFn = Arc<dyn Fn(i64, Dataset) -> Result<Dataset> + Send + Sync>;
type SizeFn = Arc<dyn Fn(i64) -> Result<u64> + Send + Sync>;

struct GroupByWindow {
    input: Dataset,
    key: KeyFn,
    reduce: ReduceFn,
    window_size: SizeFn,
    spec: ElementSpec,
}

fn window_dataset(spec: &ElementSpec, elements: Vec<Element>) -> Dataset {
    Dataset::from_node(Elements {
        elements: Arc::new(elements),
        spec: spec.clone(),
    })
}

impl Node for GroupByWindow {
    describe_node! { name: "GroupByWindow"; input: input; spec: spec; }
    fn cardinality(&self) -> Cardinality {
        match self.input.cardinality() {
            Cardinality::Infinite => Cardinality::Infinite,
            _ => Cardinality::Unknown,
        }
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let mut it = GroupIter {
            input: None,
            key_fn: Arc::clone(&self.key),
            reduce: Arc::clone(&self.reduce),
            size_fn: Arc::clone(&self.window_size),
            element_spec: self.input.element_spec().clone(),
            groups: BTreeMap::new(),
            current: None,
            index: 0,
            windows: 0,
        };
        let Some(s) = from else {
            it.input = Some(self.input.open()?);
            return Ok(Box::new(it));
        };
        restore(Some(s), "GroupByWindow", |r| {
            it.index = r.num()?;
            it.windows = r.num()?;
            let n = r.usize()?;
            for _ in 0..n {
                let key = r.num()? as i64;
                let size = r.num()?;
                it.groups.insert(key, (size, r.elements()?));
            }
            if r.flag()? {
                let key = r.num()? as i64;
                let members = r.elements()?;
                let state = r.kid()?;
                let w = it.windows.saturating_sub(1);
                let inner = it.open_window(key, members.clone(), w, Some(state))?;
                it.current = Some((key, members, inner));
            }
            it.input = reopen(&self.input, r)?;
            Ok(())
        })?;
        Ok(Box::new(it))
    }
}

struct GroupIter {
    /// The input, until it ends.
    input: Option<BoxIter>,
    key_fn: KeyFn,
    reduce: ReduceFn,
    size_fn: SizeFn,
    element_spec: ElementSpec,
    /// Groups by key, with each group's window size; sorted by key, so what is left at the
    /// end is flushed in key order, as in tf.data.
    groups: BTreeMap<i64, (u64, Vec<Element>)>,
    /// The window being given: its key and members (kept for saving) and its dataset's pass.
    current: Option<(i64, Vec<Element>, BoxIter)>,
    index: u64,
    windows: u64,
}

impl GroupIter {
    fn open_window(
        &self,
        key: i64,
        members: Vec<Element>,
        w: u64,
        from: Option<State>,
    ) -> Result<BoxIter> {
        let ds = window_dataset(&self.element_spec, members);
        let reduce = &self.reduce;
        call_user("group_by_window reduce_func", w, || reduce(key, ds))
            .and_then(|d| d.open_from(from))
    }

    /// Adds input element number `i` to its group; a group that is full comes back.
    fn add(&mut self, i: u64, e: Element) -> Result<Option<(i64, Vec<Element>)>> {
        let key_fn = &self.key_fn;
        let key = call_user("group_by_window key_func", i, || key_fn(&e))?;
        let entry = match self.groups.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let size_fn = &self.size_fn;
                match call_user("group_by_window window_size_func", i, || size_fn(key))? {
                    0 => {
                        return Err(Error::Pipeline(format!(
                            "group_by_window: the window size of key {key} must be greater \
                             than zero"
                        )))
                    }
                    s => v.insert((s, Vec::new())),
                }
            }
        };
        let (size, members) = entry;
        members.push(e);
        if members.len() as u64 >= *size {
            let members = std::mem::take(members);
            self.groups.remove(&key);
            Ok(Some((key, members)))
        } else {
            Ok(None)
        }
    }
}

impl ElementIter for GroupIter {
    fn next(&mut self) -> Option<Result<Element>> {
        loop {
            if let Some((_, _, it)) = self.current.as_mut() {
                match it.next() {
                    Some(item) => return Some(item),
                    None => self.current = None,
                }
            }
            // The next full window: from the input while it lasts, then the leftovers.
            let full = if let Some(inp) = self.input.as_mut() {
                match inp.next() {
                    None => {
                        self.input = None;
                        continue;
                    }
                    Some(Err(e)) => return Some(Err(e)),
                    Some(Ok(e)) => {
                        let i = self.index;
                        self.index += 1;
                        match self.add(i, e) {
                            Ok(full) => full,
                            Err(err) => return Some(Err(err)),
                        }
                    }
                }
            } else {
                let (key, (_, members)) = self.groups.pop_first()?;
                Some((key, members))
            };
            if let Some((key, members)) = full {
                let w = self.windows;
                self.windows += 1;
                match self.open_window(key, members.clone(), w, None) {
                    Ok(it) => self.current = Some((key, members, it)),
                    Err(e) => return Some(Err(e)),
                }
            }
        }
    }
    fn save(&self) -> Result<State> {
        let mut s = State::new("GroupByWindow")
            .num(self.index)
            .num(self.windows)
            .num(self.groups.len() as u64);
        for (key, (size, members)) in &self.groups {
            s = s.num(*key as u64).num(*size).elements(members.iter())?;
        }
        s = s.flag(self.current.is_some());
        if let Some((key, members, it)) = &self.current {
            s = s.num(*key as u64).elements(members.iter())?.kid(it.save()?);
        }
        let input = self.input.as_ref().map(|it| it.save()).transpose()?;
        Ok(s.kid_opt(input))
    }
}

/// The optional arguments of [`Dataset::bucket_by_sequence_length`], with tf.data's defaults.
#[derive(Clone, Debug, Default)]
pub struct BucketOptions {
    /// The shape to pad each tensor to, in [`Element::tensors`] order (see
    /// [`Dataset::padded_batch`]); the element spec's shapes when `None`.
    pub padded_shapes: Option<Vec<PartialShape>>,
    /// One padding scalar per tensor; zeros when `None`.
    pub padding_values: Option<Vec<Tensor>>,
    /// Pad unknown dimensions to the bucket's upper boundary less one, rather than to the
    /// longest element of the batch. Elements of the last bucket (no upper boundary) are then
    /// an error.
    pub pad_to_bucket_boundary: bool,
    /// Batch without padding (every element of a batch must then have one shape).
    pub no_padding: bool,
    /// Drop each bucket's last, short batch.
    pub drop_remainder: bool,
}

impl Dataset {
    /// tf.data's `group_by_window(key_func, reduce_func, window_size, window_size_func)`:
    /// elements are gathered into groups by `key_func`; when a group holds its window size of
    /// elements, `reduce_func(key, window)` turns it into a dataset whose elements are
    /// output. At the end of the input, the groups left over are reduced in key order.
    ///
    /// Give exactly one of `window_size` (the same size for every key) and
    /// `window_size_func` (a size per key), as tf.data requires.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// // tf.data's documented example: even and odd numbers, in windows of 5.
    /// let ds = Dataset::range(0, 10, 1)?.group_by_window(
    ///     |x| Ok(x.as_tensor().unwrap().to_i64_scalar("x")? % 2),
    ///     |_key, window| window.batch(5, ()),
    ///     Some(5),
    ///     None::<fn(i64) -> npyflow::Result<u64>>,
    /// )?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["[0 2 4 6 8]", "[1 3 5 7 9]"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn group_by_window<S>(
        &self,
        key_func: impl Fn(&Element) -> Result<i64> + Send + Sync + 'static,
        reduce_func: impl Fn(i64, Dataset) -> Result<Dataset> + Send + Sync + 'static,
        window_size: Option<u64>,
        window_size_func: Option<S>,
    ) -> Result<Dataset>
    where
        S: Fn(i64) -> Result<u64> + Send + Sync + 'static,
    {
        let size_fn: SizeFn = match (window_size, window_size_func) {
            (Some(n), None) => {
                require(n > 0, || {
                    format!("group_by_window: window_size must be greater than zero, got {n}")
                })?;
                Arc::new(move |_| Ok(n))
            }
            (None, Some(f)) => Arc::new(f),
            _ => {
                return Err(Error::InvalidArgument(
                    "group_by_window: give either window_size or window_size_func, not both \
                     and not neither"
                        .into(),
                ))
            }
        };
        let input_spec = self.element_spec().clone();
        let spec = trace(
            "group_by_window reduce_func",
            &ElementSpec::Tuple(Vec::new()),
            |_| reduce_func(0, window_dataset(&input_spec, Vec::new())),
            |d: &Dataset| d.element_spec().clone(),
        )?;
        Ok(self.grouped(key_func, reduce_func, size_fn, spec))
    }

    fn grouped(
        &self,
        key_func: impl Fn(&Element) -> Result<i64> + Send + Sync + 'static,
        reduce_func: impl Fn(i64, Dataset) -> Result<Dataset> + Send + Sync + 'static,
        window_size: SizeFn,
        spec: ElementSpec,
    ) -> Dataset {
        Dataset::from_node(GroupByWindow {
            input: self.clone(),
            key: Arc::new(key_func),
            reduce: Arc::new(reduce_func),
            window_size,
            spec,
        })
    }

    /// tf.data's `bucket_by_sequence_length`: elements are put in buckets by
    /// `element_length_func` (bucket *i* holds lengths in `[boundaries[i-1], boundaries[i])`,
    /// the first from 0, the last without end), and each bucket is batched by its own size
    /// from `bucket_batch_sizes` (one more than there are boundaries), padding as
    /// [`padded_batch`](Dataset::padded_batch) does unless `options.no_padding`.
    ///
    /// ```
    /// use npyflow::{Dataset, DType, Element, ElementSpec, PartialShape, Tensor, TensorSpec};
    /// use npyflow::dataset::{BucketOptions, MapOptions};
    /// let lengths = [1usize, 2, 1, 5, 2, 6];
    /// let rows = ElementSpec::Tensor(TensorSpec { dtype: DType::Int64, shape: PartialShape::new(&[None]) });
    /// let ds = Dataset::range(0, 6, 1)?
    ///     .map(move |i: Element| {
    ///         let n = lengths[i.into_tensor()?.to_i64_scalar("i")? as usize];
    ///         Ok(Tensor::from_vec(vec![n as i64; n], &[n])?.into())
    ///     }, MapOptions::new().output_spec(rows))?
    ///     .bucket_by_sequence_length(
    ///         |e| Ok(e.as_tensor().unwrap().shape()[0] as i64), &[3], &[2, 2], BucketOptions::default())?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["[[1 0]\n [2 2]]", "[[1 0]\n [2 2]]", "[[5 5 5 5 5 0]\n [6 6 6 6 6 6]]"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn bucket_by_sequence_length(
        &self,
        element_length_func: impl Fn(&Element) -> Result<i64> + Send + Sync + 'static,
        bucket_boundaries: &[i64],
        bucket_batch_sizes: &[usize],
        options: BucketOptions,
    ) -> Result<Dataset> {
        require(
            bucket_batch_sizes.len() == bucket_boundaries.len() + 1,
            || {
                format!(
                    "bucket_by_sequence_length: len(bucket_batch_sizes) must equal \
                 len(bucket_boundaries) + 1, got {} and {}",
                    bucket_batch_sizes.len(),
                    bucket_boundaries.len()
                )
            },
        )?;
        require(bucket_boundaries.windows(2).all(|w| w[0] < w[1]), || {
            format!(
                "bucket_by_sequence_length: bucket_boundaries must be strictly increasing, \
                     got {bucket_boundaries:?}"
            )
        })?;
        require(bucket_batch_sizes.iter().all(|&b| b > 0), || {
            format!(
                "bucket_by_sequence_length: batch sizes must be greater than zero, got \
                 {bucket_batch_sizes:?}"
            )
        })?;
        let tensors = self.element_spec().tensor_specs().len();
        if let Some(shapes) = &options.padded_shapes {
            require(shapes.len() == tensors, || {
                format!(
                    "bucket_by_sequence_length: {} padded shapes for {tensors} tensors per \
                     element",
                    shapes.len()
                )
            })?;
        }
        let boundaries: Arc<Vec<i64>> = Arc::new(bucket_boundaries.to_vec());
        let sizes: Arc<Vec<usize>> = Arc::new(bucket_batch_sizes.to_vec());
        let b = Arc::clone(&boundaries);
        let key = move |e: &Element| -> Result<i64> {
            let len = element_length_func(e)?;
            Ok(b.partition_point(|&bound| bound <= len) as i64)
        };
        let s = Arc::clone(&sizes);
        let size_of = move |bucket: i64| -> Result<u64> { Ok(s[bucket as usize] as u64) };
        let opts = options;
        // The spec, as tf.data gives it: every bucket's batches, so the batch dimension and any
        // padded dimension that varies by bucket are unknown.
        let padded = match (&opts.padded_shapes, opts.no_padding) {
            (Some(shapes), false) if !opts.pad_to_bucket_boundary => Some(shapes.clone()),
            _ => None,
        };
        let mut k = 0;
        let spec = self
            .element_spec()
            .map_specs(&mut |s| {
                let shape = padded
                    .as_ref()
                    .map_or_else(|| s.shape.clone(), |p| p[k].clone());
                k += 1;
                TensorSpec {
                    dtype: s.dtype,
                    shape,
                }
            })
            .batched(None);
        let reduce = move |bucket: i64, window: Dataset| -> Result<Dataset> {
            let batch = sizes[bucket as usize];
            if opts.no_padding {
                return window.batch(
                    batch,
                    BatchOptions::new().drop_remainder(opts.drop_remainder),
                );
            }
            let mut shapes = opts.padded_shapes.clone();
            if opts.pad_to_bucket_boundary {
                let Some(&upper) = boundaries.get(bucket as usize) else {
                    return Err(Error::Pipeline(
                        "bucket_by_sequence_length: with pad_to_bucket_boundary, every element \
                         must be shorter than the largest boundary"
                            .into(),
                    ));
                };
                let base: Vec<PartialShape> = shapes.unwrap_or_else(|| {
                    window
                        .element_spec()
                        .tensor_specs()
                        .iter()
                        .map(|s| s.shape.clone())
                        .collect()
                });
                let pad = (upper - 1).max(0) as usize;
                shapes = Some(
                    base.iter()
                        .map(|s| match s.dims() {
                            Some(d) => PartialShape::new(
                                &d.iter().map(|x| Some(x.unwrap_or(pad))).collect::<Vec<_>>(),
                            ),
                            None => s.clone(),
                        })
                        .collect(),
                );
            }
            debug_assert!(shapes.as_ref().is_none_or(|s| s.len() == tensors));
            window.padded_batch(
                batch,
                shapes,
                opts.padding_values.clone(),
                opts.drop_remainder,
            )
        };
        Ok(self.grouped(key, reduce, Arc::new(size_of), spec))
    }
}
