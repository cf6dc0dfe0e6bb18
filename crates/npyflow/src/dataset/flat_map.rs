//! `flat_map` and `interleave`: a dataset per element, their elements in one stream.

use std::sync::Arc;

use super::map::trace;
use super::options::InterleaveOptions;
use super::plumbing::{
    call_user, describe_node, restore, BoxIter, Cardinality, Dataset, ElementIter, Node,
};
use super::prefetch::prefetched;
use super::state::State;
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
    describe_node! { input: input; spec: spec; }
    fn name(&self) -> &'static str {
        if self.op == "flat_map" {
            "FlatMap"
        } else {
            "Interleave"
        }
    }
    /// Unknown, as tf.data's: the datasets made per element have no count known ahead.
    /// A parallel interleave (`num_parallel_calls`) of an infinite input is infinite, as
    /// tf.data's `ParallelInterleaveDataset` says (though it would wait forever if every
    /// dataset made were empty); tf.data's sequential interleave and `flat_map` say unknown
    /// there too, and so does npyflow.
    fn cardinality(&self) -> Cardinality {
        match (self.prefetch, self.input.cardinality()) {
            (Some(_), Cardinality::Infinite) => Cardinality::Infinite,
            _ => Cardinality::Unknown,
        }
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
            Some(n) => prefetched(|s| d.open_from(s), n, false, from),
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

/// How far each open dataset of a parallel interleave is read ahead: two blocks, at most
/// 1,024 elements.
fn read_ahead(block: usize) -> usize {
    block.saturating_mul(2).min(1024)
}

impl Dataset {
    /// tf.data's `flat_map`: `f` maps each element to a dataset, and the elements of those
    /// datasets follow one another in order. The output spec is traced as for
    /// [`map`](Dataset::map), unless `output_spec` declares the spec of the datasets `f`
    /// makes (for functions that cannot run on placeholders: they open files named by the
    /// element, say); a dataset of another spec is then an error where it is read.
    ///
    /// ```
    /// use npyflow::{Dataset, Tensor};
    /// let rows = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6, 7, 8, 9], &[3, 3])?;
    /// let ds = Dataset::from_tensor_slices(rows)?.flat_map(|row| Dataset::from_tensor_slices(row), None)?;
    /// assert_eq!(ds.to_vec()?.len(), 9);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn flat_map(
        &self,
        f: impl Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
        output_spec: Option<ElementSpec>,
    ) -> Result<Dataset> {
        self.interleave_node("flat_map", Arc::new(f), 1, 1, None, output_spec)
    }

    /// tf.data's `interleave(f, cycle_length, block_length, num_parallel_calls)`:
    /// `cycle_length` of the datasets `f` makes are read at once, `block_length` elements
    /// from each in turn; when one ends, the next input element's dataset takes its place.
    ///
    /// `options` ([`InterleaveOptions`], `()` for the defaults) set the lengths (a cycle of
    /// one dataset per core and blocks of one element by default, as tf.data's `AUTOTUNE`
    /// and 1), the spec of the datasets `f` makes when it cannot be traced (see
    /// [`flat_map`](Dataset::flat_map)), and a [`Parallelism`](super::Parallelism) that reads each open dataset
    /// ahead on its own thread (`2 * block_length` elements at most), so that slow inputs
    /// (files, decoding) overlap. The elements and their order are the same either way.
    ///
    /// Differs from tf.data: a parallel interleave has one thread per open dataset whatever
    /// the count asked for, and its output is always in the deterministic order.
    ///
    /// ```
    /// use npyflow::dataset::{InterleaveOptions, Parallelism};
    /// use npyflow::Dataset;
    /// // tf.data's documented example.
    /// let lengths = InterleaveOptions::new().cycle_length(2).block_length(4);
    /// let ds = Dataset::range(1, 6, 1)?
    ///     .interleave(|x| Ok(Dataset::from_tensors(x).repeat(Some(6))), lengths.clone())?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got.concat(), "111122221122333344443344555555");
    /// let parallel = Dataset::range(1, 6, 1)?.interleave(
    ///     |x| Ok(Dataset::from_tensors(x).repeat(Some(6))),
    ///     lengths.parallel(Parallelism::autotune()),
    /// )?;
    /// assert_eq!(parallel.to_vec()?, ds.to_vec()?);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn interleave(
        &self,
        f: impl Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
        options: impl Into<InterleaveOptions>,
    ) -> Result<Dataset> {
        let options = options.into();
        let (cycle, block) = options.lengths()?;
        let prefetch = options.parallelism.map(|_| read_ahead(block));
        self.interleave_node(
            "interleave",
            Arc::new(f),
            cycle,
            block,
            prefetch,
            options.output_spec,
        )
    }

    fn interleave_node(
        &self,
        op: &'static str,
        f: DatasetFn,
        cycle_length: usize,
        block_length: usize,
        prefetch: Option<usize>,
        output_spec: Option<ElementSpec>,
    ) -> Result<Dataset> {
        let (f, spec) = match output_spec {
            Some(spec) => (checked(f, spec.clone()), spec),
            None => {
                let spec = trace(op, self.element_spec(), &*f, |d: &Dataset| {
                    d.element_spec().clone()
                })?;
                (f, spec)
            }
        };
        Ok(Dataset::from_node(Interleave {
            input: self.clone(),
            f,
            cycle_length,
            block_length,
            spec,
            op,
            prefetch,
        }))
    }
}

/// `f`, with the datasets it makes checked against the declared `spec`.
fn checked(f: DatasetFn, spec: ElementSpec) -> DatasetFn {
    Arc::new(move |e| {
        let d = f(e)?;
        if spec.most_specific_compatible(d.element_spec()).is_none() {
            return Err(crate::Error::Pipeline(format!(
                "the function made a dataset of {}, not of the declared {spec}",
                d.element_spec()
            )));
        }
        Ok(d)
    })
}
