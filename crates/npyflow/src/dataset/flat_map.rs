//! `flat_map` and `interleave`: a dataset per element, their elements in one stream.

use std::sync::Arc;

use super::map::{first_output_spec, trace};
use super::options::InterleaveOptions;
use super::plumbing::{
    call_user, describe_node, require, restore, BoxIter, Cardinality, Dataset, ElementIter, Node,
    Piece,
};
use super::prefetch::prefetched;
use super::state::State;
use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result};

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

    /// The next elements in bulk (see [`ElementIter::next_rows`]), while no open dataset
    /// ends and no new one is opened: the order [`ElementIter::next`] takes is then
    /// arithmetic (blocks of `block_length` from each open dataset in turn), so each open
    /// dataset gives its share at once, as a view where it can. `None` where that order is
    /// not known ahead (a slot to fill, a dataset that cannot say how many rows it has left).
    fn bulk(&mut self, max: usize) -> Option<Vec<Piece>> {
        let b = self.block_length;
        // While the input has elements, every slot is open (an empty one is filled when its
        // turn comes); once it has ended, empty slots are skipped.
        if self.input.is_some() && self.open_slots != self.cycle_length {
            return None;
        }
        let open: Vec<usize> = (0..self.cycle_length)
            .filter(|&k| self.slots[k].is_some())
            .collect();
        let mut left = Vec::with_capacity(open.len());
        for &k in &open {
            left.push(self.slots[k].as_ref()?.1.remaining()?);
        }
        let c = open.len();
        // The turn of the first open slot at or after the cycle position (an empty slot at
        // the cycle position has block 0: a slot empties only as the cycle moves on).
        let first = open.iter().position(|&k| k >= self.cycle).unwrap_or(0);
        let period = c.checked_mul(b)?;
        let o = first * b + self.block;
        let total: u64 = left.iter().sum();
        let max = max.min(usize::try_from(total).unwrap_or(usize::MAX));
        // Positions 0..x of the period grid (from the start of turn 0) that open slot j gives.
        let before =
            |j: usize, x: usize| (x / period) * b + (x % period).saturating_sub(j * b).min(b);
        let demand = |j: usize, t: usize| before(j, o + t) - before(j, o);
        let fits = |t: usize| (0..c).all(|j| demand(j, t) as u64 <= left[j]);
        // The most positions taken before some open dataset would run out.
        let (mut lo, mut hi) = (0, max);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let t = lo;
        if t == 0 {
            return None;
        }
        let mut pieces = Vec::new();
        for (j, &slot) in open.iter().enumerate() {
            let n = demand(j, t);
            if n == 0 {
                continue;
            }
            // Where slot j's rows go: its first block (from the turn at or after `o`, maybe
            // entered part way), then whole blocks one period apart, then a last partial one.
            let turn0 = o / b;
            let k = turn0 + (j + c - turn0 % c) % c;
            let start0 = (k * b).max(o) - o;
            let len0 = ((k + 1) * b).min(o + t) - o - start0;
            let full = (n - len0) / b;
            let rest = (n - len0) % b;
            let mut layout: Vec<(usize, usize, usize, usize)> = Vec::with_capacity(3);
            let next_at = (k + c) * b - o;
            if len0 == b {
                layout.push((start0, b, period, len0 + full * b));
            } else {
                layout.push((start0, len0, 0, len0));
                if full > 0 {
                    layout.push((next_at, b, period, full * b));
                }
            }
            if rest > 0 {
                layout.push(((k + c * (full + 1)) * b - o, rest, 0, rest));
            }
            let it = &mut self.slots[slot].as_mut()?.1;
            place(it, n, &layout, &mut pieces);
        }
        // Where `next` would be after the last position taken.
        let last = o + t - 1;
        let slot = open[(last / b) % c];
        if last % b + 1 == b {
            self.cycle = (slot + 1) % self.cycle_length;
            self.block = 0;
        } else {
            self.cycle = slot;
            self.block = last % b + 1;
        }
        Some(pieces)
    }
}

/// Reads `n` elements of `it` into `pieces`, at the places `layout` gives them: (position,
/// rows per block, distance between blocks, rows), in order. Runs where `it` gives them, one
/// element at a time otherwise.
fn place(
    it: &mut BoxIter,
    n: usize,
    layout: &[(usize, usize, usize, usize)],
    pieces: &mut Vec<Piece>,
) {
    let position = |mut q: usize| {
        for &(at, run, step, count) in layout {
            if q < count {
                return at + (q / run) * step + q % run;
            }
            q -= count;
        }
        unreachable!("a row past the layout")
    };
    let mut got = 0;
    while got < n {
        let Some((rows, m)) = it.next_run(n - got) else {
            let item = it.next().unwrap_or_else(|| {
                Err(Error::Pipeline(
                    "interleave: a dataset ended before the count of rows it said it had left"
                        .into(),
                ))
            });
            pieces.push(Piece::one(item, position(got)));
            got += 1;
            continue;
        };
        // Rows got..got + m, split along the layout's parts (and at a block boundary
        // where a part is entered part way through a block).
        let mut q = got;
        let mut base = 0;
        for &(at, run, step, count) in layout {
            let (lo, hi) = (q.max(base), (got + m).min(base + count));
            while q < hi && q >= lo {
                let inner = q - base;
                let aligned = inner % run == 0;
                let take = if aligned {
                    hi - q
                } else {
                    (run - inner % run).min(hi - q)
                };
                pieces.push(Piece::run(
                    rows.clone(),
                    q - got,
                    take,
                    at + (inner / run) * step + inner % run,
                    if aligned { run } else { take },
                    step,
                ));
                q += take;
            }
            base += count;
        }
        got += m;
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

    fn next_rows(&mut self, max: usize) -> Option<Vec<Piece>> {
        self.bulk(max)
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
        let spec = SpecFrom::of(output_spec, false);
        self.interleave_node("flat_map", Arc::new(f), 1, 1, None, spec)
    }

    /// [`flat_map`](Dataset::flat_map) with the spec of the datasets `f` makes found as
    /// `options` say ([`InterleaveOptions::output_spec`] or
    /// [`InterleaveOptions::spec_from_first_element`]). A flat map reads one dataset at a
    /// time, in order: `options` with a cycle length, a block length or parallelism are
    /// refused.
    ///
    /// ```
    /// use npyflow::dataset::InterleaveOptions;
    /// use npyflow::{Dataset, Element, Error};
    /// let ds = Dataset::range(1, 4, 1)?.flat_map_with(
    ///     // A function that cannot run on placeholders: it refuses 0.
    ///     |x: Element| match x.into_tensor()?.to_i64_scalar("x")? {
    ///         0 => Err(Error::msg("no zeros here")),
    ///         n => Dataset::range(0, n, 1),
    ///     },
    ///     InterleaveOptions::new().spec_from_first_element(),
    /// )?;
    /// assert_eq!(ds.to_vec()?.len(), 1 + 2 + 3);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn flat_map_with(
        &self,
        f: impl Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
        options: impl Into<InterleaveOptions>,
    ) -> Result<Dataset> {
        let options = options.into();
        require(
            options.cycle_length.is_none()
                && options.block_length == 1
                && options.parallelism.is_none(),
            || {
                "flat_map: a flat map reads one dataset at a time; give cycle_length, \
                 block_length or parallelism to interleave"
                    .to_string()
            },
        )?;
        let spec = SpecFrom::of(options.output_spec, options.spec_from_first_element);
        self.interleave_node("flat_map", Arc::new(f), 1, 1, None, spec)
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
            SpecFrom::of(options.output_spec, options.spec_from_first_element),
        )
    }

    fn interleave_node(
        &self,
        op: &'static str,
        f: DatasetFn,
        cycle_length: usize,
        block_length: usize,
        prefetch: Option<usize>,
        spec_from: SpecFrom,
    ) -> Result<Dataset> {
        let (f, spec) = match spec_from {
            SpecFrom::Declared(spec) => (checked(f, spec.clone(), "the declared"), spec),
            SpecFrom::Placeholders => {
                let spec = trace(op, self.element_spec(), &*f, |d: &Dataset| {
                    d.element_spec().clone()
                })?;
                (f, spec)
            }
            SpecFrom::FirstElement => {
                // The spec of the dataset made for the first element, as that dataset states
                // it (its unknown dimensions are the ones it cannot know), with its strings
                // of any width. An empty input makes no dataset: placeholders are tried
                // then, and its own spec kept where the function fails on them.
                let spec = match first_output_spec(op, self, &*f, |d: &Dataset| {
                    ElementSpec::Dataset(Box::new(d.element_spec().clone()))
                })? {
                    Some(ElementSpec::Dataset(inner)) => inner.with_any_string_width(),
                    _ => trace(op, self.element_spec(), &*f, |d: &Dataset| {
                        d.element_spec().clone()
                    })
                    .unwrap_or_else(|_| self.element_spec().clone()),
                };
                let what = "the structure of the dataset made for the first element,";
                (checked(f, spec.clone(), what), spec)
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

/// Where the spec of the datasets an interleave's function makes comes from.
enum SpecFrom {
    /// Declared by the caller (and checked on each dataset).
    Declared(ElementSpec),
    /// Found by calling the function on placeholder elements.
    Placeholders,
    /// Found from the dataset it makes for the input's first element.
    FirstElement,
}

impl SpecFrom {
    fn of(declared: Option<ElementSpec>, from_first_element: bool) -> SpecFrom {
        match declared {
            Some(spec) => SpecFrom::Declared(spec),
            None if from_first_element => SpecFrom::FirstElement,
            None => SpecFrom::Placeholders,
        }
    }
}

/// `f`, with the datasets it makes checked against `spec` (`what` it is, in words): their
/// structure and dtypes must be its.
fn checked(f: DatasetFn, spec: ElementSpec, what: &'static str) -> DatasetFn {
    Arc::new(move |e| {
        let d = f(e)?;
        if spec.most_specific_compatible(d.element_spec()).is_none() {
            return Err(crate::Error::Pipeline(format!(
                "the function made a dataset of {}, not of {what} {spec}",
                d.element_spec()
            )));
        }
        Ok(d)
    })
}

#[cfg(test)]
mod tests {
    use super::super::plumbing::PieceRows;
    use super::*;
    use crate::dataset::InterleaveOptions;
    use crate::tensor::Tensor;

    /// Two datasets of rows 0..10 and 100..110, interleaved in blocks of `block`.
    fn two(block: usize) -> Dataset {
        Dataset::range(0, 2, 1)
            .unwrap()
            .interleave(
                |e: Element| {
                    let i = e.into_tensor()?.to_i64_scalar("i")?;
                    let rows: Vec<i64> = (0..10).map(|r| i * 100 + r).collect();
                    Dataset::from_tensor_slices(Tensor::from_vec(rows, &[10])?)
                },
                InterleaveOptions::new().cycle_length(2).block_length(block),
            )
            .unwrap()
    }

    /// The values at positions `0..n` of the pieces, and whether every row came in a run.
    fn placed(pieces: &[Piece]) -> (Vec<i64>, bool) {
        let n: usize = pieces.iter().map(Piece::count).sum();
        let mut out = vec![None; n];
        let mut all_runs = true;
        for p in pieces {
            match &p.rows {
                PieceRows::Run { rows, first, count } => {
                    let v = rows.as_tensor().unwrap().view::<i64>().unwrap().to_vec();
                    for i in 0..*count {
                        assert!(out[p.position(i)].replace(v[first + i]).is_none());
                    }
                }
                PieceRows::One(e) => {
                    all_runs = false;
                    let v = e
                        .as_ref()
                        .unwrap()
                        .as_tensor()
                        .unwrap()
                        .view::<i64>()
                        .unwrap()[0];
                    assert!(out[p.at].replace(v).is_none());
                }
            }
        }
        (out.into_iter().map(Option::unwrap).collect(), all_runs)
    }

    #[test]
    fn open_datasets_give_their_share_of_a_batch_as_runs() {
        for block in [1, 3] {
            let ds = two(block);
            let want: Vec<i64> = ds
                .to_vec()
                .unwrap()
                .iter()
                .map(|e| e.as_tensor().unwrap().view::<i64>().unwrap()[0])
                .collect();
            let mut it = ds.open().unwrap();
            // Reads open the datasets one by one; once both are open, the order is known.
            let mut got = Vec::new();
            let pieces = loop {
                if let Some(pieces) = it.next_rows(7) {
                    break pieces;
                }
                let e = it.next().unwrap().unwrap();
                got.push(e.as_tensor().unwrap().view::<i64>().unwrap()[0]);
                assert!(got.len() <= block + 1, "bulk once both datasets are open");
            };
            let (vals, all_runs) = placed(&pieces);
            assert!(all_runs, "rows of tensors come as views");
            assert_eq!(vals.len(), 7);
            got.extend(vals);
            // Up to the end of both datasets, then one by one (ends, then nothing).
            while let Some(pieces) = it.next_rows(100) {
                got.extend(placed(&pieces).0);
            }
            while let Some(e) = it.next() {
                got.push(e.unwrap().as_tensor().unwrap().view::<i64>().unwrap()[0]);
            }
            assert_eq!(got, want, "block {block}");
        }
    }
}
