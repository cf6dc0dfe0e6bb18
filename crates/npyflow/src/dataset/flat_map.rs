//! `flat_map` and `interleave`: a dataset per element, their elements in one stream.

use std::sync::Arc;

use super::batch::check_parallel_calls;
use super::map::trace;
use super::parallel::MAX_THREADS;
use super::prefetch::prefetched;
use super::state::State;
use super::{
    call_user, require, restore, BoxIter, Cardinality, Dataset, ElementIter, Node, AUTOTUNE,
};
use crate::element::{Element, ElementSpec};
use crate::error::Result;

type DatasetFn = Arc<dyn Fn(Element) -> Result<Dataset> + Send + Sync>;

/// Interleaving with cycle length 1 and block length 1 is `flat_map`.
struct Interleave {
    input: Dataset,
    f: DatasetFn,
    cycle_length: usize,
    block_length: usize,
    spec: ElementSpec,
    op: &'static str,
    /// Elements each open input may be read ahead by its own thread (parallel interleave).
    prefetch: Option<usize>,
}

impl Node for Interleave {
    fn inputs(&self) -> Vec<&Dataset> {
        vec![&self.input]
    }
    fn name(&self) -> &'static str {
        if self.op == "flat_map" {
            "FlatMap"
        } else {
            "Interleave"
        }
    }
    fn spec(&self) -> &ElementSpec {
        &self.spec
    }
    fn cardinality(&self) -> Cardinality {
        Cardinality::Unknown
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let mut it = InterleaveIter {
            input: None,
            f: Arc::clone(&self.f),
            cycle_length: self.cycle_length,
            block_length: self.block_length,
            op: self.op,
            prefetch: self.prefetch,
            slots: (0..self.cycle_length).map(|_| None).collect(),
            open_slots: 0,
            cycle: 0,
            block: 0,
            index: 0,
        };
        let Some(s) = from else {
            it.input = Some(self.input.open()?);
            return Ok(Box::new(it));
        };
        restore(Some(s), "Interleave", |r| {
            it.cycle = r.usize()?;
            it.block = r.usize()?;
            it.index = r.num()?;
            if it.cycle >= it.cycle_length || it.block >= it.block_length {
                return Err(super::state::mismatch("interleave positions out of range"));
            }
            if r.flag()? {
                it.input = Some(self.input.open_from(Some(r.kid()?))?);
            }
            for k in 0..it.cycle_length {
                if r.flag()? {
                    let e = r.element()?;
                    let state = r.kid()?;
                    let inner = it.open_inner(e.clone(), k as u64, Some(state))?;
                    it.slots[k] = Some((e, inner));
                    it.open_slots += 1;
                }
            }
            Ok(())
        })?;
        Ok(Box::new(it))
    }
}

/// A pass of interleave (and flat_map, its cycle of one).
struct InterleaveIter {
    /// The input, until it ends.
    input: Option<BoxIter>,
    f: DatasetFn,
    cycle_length: usize,
    block_length: usize,
    op: &'static str,
    prefetch: Option<usize>,
    /// The open datasets, each with the input element it was made from (kept for saving).
    slots: Vec<Option<(Element, BoxIter)>>,
    open_slots: usize,
    cycle: usize,
    block: usize,
    /// The number of input elements taken.
    index: u64,
}

impl InterleaveIter {
    /// The dataset made from input element `e` (number `i`), opened fresh or from a state.
    fn open_inner(&self, e: Element, i: u64, from: Option<State>) -> Result<BoxIter> {
        let d = call_user(self.op, i, || (self.f)(e))?;
        match self.prefetch {
            Some(n) => prefetched(|s| d.open_from(s), n, from),
            None => d.open_from(from),
        }
    }

    fn advance(&mut self) {
        self.block = 0;
        self.cycle = (self.cycle + 1) % self.cycle_length;
    }
}

impl ElementIter for InterleaveIter {
    fn next(&mut self) -> Option<Result<Element>> {
        // tf.data's order: take `block_length` elements from the slot at `cycle`, then move
        // on; an empty slot is filled from the next input element; an exhausted one is
        // emptied and the cycle moves on.
        loop {
            if self.input.is_none() && self.open_slots == 0 {
                return None;
            }
            if let Some((_, it)) = self.slots[self.cycle].as_mut() {
                match it.next() {
                    Some(item) => {
                        self.block += 1;
                        if self.block == self.block_length {
                            self.advance();
                        }
                        return Some(item);
                    }
                    None => {
                        self.slots[self.cycle] = None;
                        self.open_slots -= 1;
                        self.advance();
                    }
                }
            } else if let Some(inp) = self.input.as_mut() {
                match inp.next() {
                    None => self.input = None,
                    Some(item) => {
                        let i = self.index;
                        self.index += 1;
                        let opened = item.and_then(|e| {
                            let it = self.open_inner(e.clone(), i, None)?;
                            Ok((e, it))
                        });
                        match opened {
                            Ok(slot) => {
                                self.slots[self.cycle] = Some(slot);
                                self.open_slots += 1;
                            }
                            Err(e) => return Some(Err(e)),
                        }
                    }
                }
            } else {
                self.advance();
            }
        }
    }

    fn save(&self) -> Result<State> {
        let mut s = State::new("Interleave")
            .num(self.cycle as u64)
            .num(self.block as u64)
            .num(self.index)
            .flag(self.input.is_some());
        if let Some(input) = &self.input {
            s = s.kid(input.save()?);
        }
        for slot in &self.slots {
            s = s.flag(slot.is_some());
            if let Some((e, it)) = slot {
                s = s.element(e)?.kid(it.save()?);
            }
        }
        Ok(s)
    }
}

/// The most datasets an interleave keeps open (tf.data has no limit; npyflow reserves a slot
/// for each).
const MAX_CYCLE: i64 = 1 << 16;

/// How far each open dataset of a parallel interleave is read ahead: two blocks, at most
/// 1,024 elements.
fn read_ahead(block: usize) -> usize {
    block.saturating_mul(2).min(1024)
}

/// A parallel interleave runs a thread per open dataset: at most `MAX_THREADS` of them.
fn check_parallel_cycle(cycle: usize) -> Result<()> {
    require(cycle <= MAX_THREADS, || {
        format!(
            "interleave: a parallel interleave runs a thread per open dataset, and \
             cycle_length {cycle} is more than npyflow's {MAX_THREADS}"
        )
    })
}

/// tf.data's checks of interleave's arguments, and the cycle length AUTOTUNE stands for.
fn interleave_args(cycle_length: i64, block_length: i64) -> Result<(usize, usize)> {
    require(cycle_length > 0 || cycle_length == AUTOTUNE, || {
        format!("interleave: cycle_length must be positive or AUTOTUNE, got {cycle_length}")
    })?;
    require(block_length > 0, || {
        format!("interleave: block_length must be positive, got {block_length}")
    })?;
    require(cycle_length <= MAX_CYCLE, || {
        format!("interleave: cycle_length {cycle_length} is more than npyflow's {MAX_CYCLE}")
    })?;
    let cycle = if cycle_length == AUTOTUNE {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cycle_length as usize
    };
    Ok((cycle, block_length as usize))
}

impl Dataset {
    /// tf.data's `flat_map`: `f` maps each element to a dataset, and the elements of those
    /// datasets follow one another in order. The output spec is traced as for
    /// [`map`](Dataset::map).
    ///
    /// ```
    /// use npyflow::{Dataset, Tensor};
    /// let rows = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6, 7, 8, 9], &[3, 3])?;
    /// let ds = Dataset::from_tensor_slices(rows)?.flat_map(|row| Dataset::from_tensor_slices(row))?;
    /// assert_eq!(ds.to_vec()?.len(), 9);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn flat_map(
        &self,
        f: impl Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
    ) -> Result<Dataset> {
        self.interleave_impl("flat_map", f, 1, 1, None)
    }

    /// tf.data's `interleave(f, cycle_length, block_length)`: `cycle_length` of the datasets
    /// `f` makes are read at once, `block_length` elements from each in turn; when one ends,
    /// the next input element's dataset takes its place. `cycle_length` [`AUTOTUNE`] (-1)
    /// means the number of CPU cores, as in tf.data; other values must be positive, and so
    /// must `block_length`.
    ///
    /// ```
    /// use npyflow::{Dataset, Tensor};
    /// // tf.data's documented example.
    /// let ds = Dataset::range(1, 6, 1)?.interleave(
    ///     |x| Ok(Dataset::from_tensors(x).repeat(Some(6))), 2, 4)?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got.concat(), "111122221122333344443344555555");
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn interleave(
        &self,
        f: impl Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
        cycle_length: i64,
        block_length: i64,
    ) -> Result<Dataset> {
        let (cycle, block) = interleave_args(cycle_length, block_length)?;
        self.interleave_impl("interleave", f, cycle, block, None)
    }

    /// tf.data's `interleave(f, cycle_length, block_length, num_parallel_calls)`: the same
    /// elements in the same order as [`interleave`](Dataset::interleave), with each of the
    /// `cycle_length` open datasets read ahead by its own thread (`2 * block_length` elements
    /// at most), so slow inputs (files, decoding) overlap.
    ///
    /// Differs from tf.data: the output is always in the deterministic order, and the number
    /// of threads is the cycle length (`num_parallel_calls` only switches the parallel mode
    /// on, and must be positive or AUTOTUNE).
    pub fn interleave_parallel(
        &self,
        f: impl Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
        cycle_length: i64,
        block_length: i64,
        num_parallel_calls: i64,
    ) -> Result<Dataset> {
        check_parallel_calls("interleave", num_parallel_calls)?;
        let (cycle, block) = interleave_args(cycle_length, block_length)?;
        check_parallel_cycle(cycle)?;
        self.interleave_impl("interleave", f, cycle, block, Some(read_ahead(block)))
    }

    fn interleave_impl(
        &self,
        op: &'static str,
        f: impl Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
        cycle_length: usize,
        block_length: usize,
        prefetch: Option<usize>,
    ) -> Result<Dataset> {
        let traced = trace(op, self.element_spec(), &f, |d: &Dataset| {
            d.element_spec().clone()
        })?;
        Ok(self.interleave_node(op, f, cycle_length, block_length, prefetch, traced))
    }

    fn interleave_node(
        &self,
        op: &'static str,
        f: impl Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
        cycle_length: usize,
        block_length: usize,
        prefetch: Option<usize>,
        traced: ElementSpec,
    ) -> Dataset {
        Dataset::from_node(Interleave {
            input: self.clone(),
            f: Arc::new(f),
            cycle_length,
            block_length,
            spec: traced,
            op,
            prefetch,
        })
    }

    /// [`flat_map`](Dataset::flat_map) with the spec of the datasets `f` makes declared
    /// rather than traced, for functions that cannot run on placeholders (they open files
    /// named by the element, say). A dataset of another spec is an error when it is read.
    pub fn flat_map_with_spec(
        &self,
        f: impl Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
        spec: ElementSpec,
    ) -> Dataset {
        self.interleave_node("flat_map", checked(f, spec.clone()), 1, 1, None, spec)
    }

    /// [`interleave`](Dataset::interleave), or with `num_parallel_calls`
    /// [`interleave_parallel`](Dataset::interleave_parallel), with the spec of the datasets
    /// `f` makes declared rather than traced.
    ///
    /// ```
    /// use npyflow::{Dataset, DType, ElementSpec, PartialShape, Tensor, TensorSpec};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # for i in 0..3 {
    /// #     let t = Tensor::from_vec(vec![i as f32; 8], &[4, 2]).unwrap();
    /// #     npyflow::format::npy::write_npy(dir.path().join(format!("part-{i}.npy")), &t).unwrap();
    /// # }
    /// let rows = ElementSpec::Tensor(TensorSpec { dtype: DType::Float32, shape: PartialShape::known(&[2]) });
    /// let pattern = format!("{}/part-*.npy", dir.path().display());
    /// let ds = Dataset::list_files(&pattern, false, None)?.interleave_with_spec(
    ///     |path| {
    ///         let t = path.into_tensor()?;
    ///         let name = String::from_utf8_lossy(t.as_bytes()).trim_end_matches('\0').to_string();
    ///         Dataset::from_npy(name)
    ///     },
    ///     rows, 2, 1, None)?;
    /// assert_eq!(ds.to_vec()?.len(), 12);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn interleave_with_spec(
        &self,
        f: impl Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
        spec: ElementSpec,
        cycle_length: i64,
        block_length: i64,
        num_parallel_calls: Option<i64>,
    ) -> Result<Dataset> {
        let (cycle, block) = interleave_args(cycle_length, block_length)?;
        let prefetch = match num_parallel_calls {
            Some(n) => {
                check_parallel_calls("interleave", n)?;
                check_parallel_cycle(cycle)?;
                Some(read_ahead(block))
            }
            None => None,
        };
        let f = checked(f, spec.clone());
        Ok(self.interleave_node("interleave", f, cycle, block, prefetch, spec))
    }
}

/// `f`, with the datasets it makes checked against the declared `spec`.
fn checked(
    f: impl Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
    spec: ElementSpec,
) -> impl Fn(Element) -> Result<Dataset> + Send + Sync + 'static {
    move |e| {
        let d = f(e)?;
        if spec.most_specific_compatible(d.element_spec()).is_none() {
            return Err(crate::Error::Pipeline(format!(
                "the function made a dataset of {}, not of the declared {spec}",
                d.element_spec()
            )));
        }
        Ok(d)
    }
}
