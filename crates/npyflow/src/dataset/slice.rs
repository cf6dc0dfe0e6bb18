//! `take`, `skip`, `shard` and `enumerate`: datasets that choose or number elements by
//! position. Over a random-access input they stay random-access. And
//! `assert_cardinality`, which counts them.

use std::sync::Arc;

use super::plumbing::{
    describe_node, require, restore, BoxIter, Cardinality, Dataset, ElementIter, Node, Numbered,
    Pass, PassRef,
};
use super::state::State;
use crate::buffer::BufferPool;
use crate::dtype::DType;
use crate::element::{Element, ElementSpec, PartialShape, TensorSpec};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Every `step`-th element from `start`, at most `limit` of them (`None`: to the end).
struct Stride {
    input: Dataset,
    start: u64,
    step: u64,
    limit: Option<u64>,
    name: &'static str,
}

impl Stride {
    fn count_of(&self, n: u64) -> u64 {
        let available = n.saturating_sub(self.start).div_ceil(self.step);
        self.limit.map_or(available, |l| l.min(available))
    }
}

impl Node for Stride {
    describe_node! { input: input; }
    fn name(&self) -> &'static str {
        self.name
    }
    fn cardinality(&self) -> Cardinality {
        match self.input.cardinality() {
            Cardinality::Finite(n) => Cardinality::Finite(self.count_of(n)),
            // An endless input gives `limit` elements, or an endless output.
            Cardinality::Infinite => self
                .limit
                .map_or(Cardinality::Infinite, Cardinality::Finite),
            Cardinality::Unknown => Cardinality::Unknown,
        }
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let (position, taken, input) =
            restore(from, "Stride", |r| Ok((r.num()?, r.num()?, r.kid()?)))?
                .map_or((0, 0, None), |(p, t, s)| (p, t, Some(s)));
        Ok(Box::new(StrideIter {
            input: self.input.open_from(input)?,
            start: self.start,
            step: self.step,
            limit: self.limit,
            position,
            taken,
        }))
    }
    fn is_random_access(&self) -> bool {
        self.input.is_random_access()
    }
    fn pass(&self) -> Option<PassRef> {
        let inner = self.input.pass()?;
        let len = self.count_of(inner.len());
        Some(Arc::new(StridePass {
            inner,
            start: self.start,
            step: self.step,
            len,
        }))
    }
}

struct StrideIter {
    input: BoxIter,
    start: u64,
    step: u64,
    limit: Option<u64>,
    /// Input elements taken.
    position: u64,
    /// Elements given.
    taken: u64,
}

impl ElementIter for StrideIter {
    fn next(&mut self) -> Option<Result<Element>> {
        if self.limit.is_some_and(|l| self.taken >= l) {
            return None;
        }
        loop {
            let item = self.input.next()?;
            let p = self.position;
            self.position += 1;
            if p >= self.start && (p - self.start) % self.step == 0 {
                self.taken += 1;
                return Some(item);
            }
            // A skipped element's error is dropped with it, as tf.data's skip does.
        }
    }
    fn save(&self) -> Result<State> {
        Ok(State::new("Stride")
            .num(self.position)
            .num(self.taken)
            .kid(self.input.save()?))
    }
}

struct StridePass {
    inner: PassRef,
    start: u64,
    step: u64,
    len: u64,
}

impl Pass for StridePass {
    fn len(&self) -> u64 {
        self.len
    }
    fn get(&self, index: u64) -> Result<Element> {
        self.inner.get(self.start + index * self.step)
    }
    fn get_range(&self, start: u64, end: u64) -> Option<Result<Element>> {
        if self.step != 1 {
            return None;
        }
        self.inner.get_range(self.start + start, self.start + end)
    }
    fn gather(&self, indices: &[u64], pool: &BufferPool) -> Option<Result<Element>> {
        let mapped: Vec<u64> = indices
            .iter()
            .map(|&i| self.start + i * self.step)
            .collect();
        self.inner.gather(&mapped, pool)
    }
}

struct Enumerate {
    input: Dataset,
    start: i64,
    spec: ElementSpec,
}

impl Node for Enumerate {
    describe_node! { name: "Enumerate"; input: input; spec: spec; }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        Ok(Box::new(EnumerateIter {
            input: Numbered::open(&self.input, from, "Enumerate")?,
            start: self.start,
        }))
    }
    fn is_random_access(&self) -> bool {
        self.input.is_random_access()
    }
    fn pass(&self) -> Option<PassRef> {
        Some(Arc::new(EnumeratePass {
            inner: self.input.pass()?,
            start: self.start,
        }))
    }
}

struct EnumerateIter {
    input: Numbered,
    start: i64,
}

impl ElementIter for EnumerateIter {
    fn next(&mut self) -> Option<Result<Element>> {
        let (i, item) = self.input.next()?;
        let n = self.start.wrapping_add(i as i64);
        Some(item.map(|e| Element::Tuple(vec![Tensor::scalar(n).into(), e])))
    }
    fn save(&self) -> Result<State> {
        self.input.save("Enumerate")
    }
}

struct EnumeratePass {
    inner: PassRef,
    start: i64,
}

impl Pass for EnumeratePass {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn get(&self, index: u64) -> Result<Element> {
        let n = self.start.wrapping_add(index as i64);
        Ok(Element::Tuple(vec![
            Tensor::scalar(n).into(),
            self.inner.get(index)?,
        ]))
    }
}

/// The input, checked to have `expected` elements as it is read.
struct AssertCardinality {
    input: Dataset,
    /// `None`: infinitely many.
    expected: Option<u64>,
}

impl Node for AssertCardinality {
    describe_node! { name: "AssertCardinality"; input: input; }
    fn cardinality(&self) -> Cardinality {
        self.expected
            .map_or(Cardinality::Infinite, Cardinality::Finite)
    }
    fn is_random_access(&self) -> bool {
        // An input with random access knows its length: where that is the one expected,
        // the check holds and the pass is the input's (so a global_shuffle can follow).
        self.input.is_random_access()
            && self.expected.map(Cardinality::Finite) == Some(self.input.cardinality())
    }
    fn pass(&self) -> Option<PassRef> {
        if !self.is_random_access() {
            return None;
        }
        let inner = self.input.pass()?;
        (Some(inner.len()) == self.expected).then_some(inner)
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        Ok(Box::new(AssertCardinalityIter {
            input: Numbered::open(&self.input, from, "AssertCardinality")?,
            expected: self.expected,
            failed: false,
        }))
    }
}

struct AssertCardinalityIter {
    input: Numbered,
    expected: Option<u64>,
    failed: bool,
}

impl AssertCardinalityIter {
    fn fail(&mut self, contained: String) -> Option<Result<Element>> {
        self.failed = true;
        let expected = self
            .expected
            .map_or_else(|| "an infinite number of".to_string(), |n| n.to_string());
        Some(Err(Error::Pipeline(format!(
            "Input dataset was expected to contain {expected} elements but contained {contained} elements."
        ))))
    }
}

impl ElementIter for AssertCardinalityIter {
    fn next(&mut self) -> Option<Result<Element>> {
        if self.failed {
            return None;
        }
        match self.input.next() {
            Some((i, item)) => match self.expected {
                Some(n) if i >= n => self.fail(format!("at least {}", i + 1)),
                _ => Some(item),
            },
            None => {
                let seen = self.input.count();
                match self.expected {
                    Some(n) if seen == n => None,
                    _ => self.fail(format!("only {seen}")),
                }
            }
        }
    }
    fn save(&self) -> Result<State> {
        self.input.save("AssertCardinality")
    }
}

impl Dataset {
    /// tf.data's `tf.data.experimental.assert_cardinality(expected)`: the elements, with
    /// `cardinality()` `expected` (-1: infinite), and an error at the place where the input
    /// is found to have more or fewer ("Input dataset was expected to contain 3 elements but
    /// contained at least 4 elements."), as tf.data raises. After the error the pass ends.
    ///
    /// ```
    /// use npyflow::dataset::Cardinality;
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 5, 1)?.assert_cardinality(5)?;
    /// assert_eq!(ds.cardinality(), Cardinality::Finite(5));
    /// assert_eq!(ds.to_vec()?.len(), 5);
    /// assert!(Dataset::range(0, 5, 1)?.assert_cardinality(3)?.to_vec().is_err());
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn assert_cardinality(&self, expected: i64) -> Result<Dataset> {
        let expected = match expected {
            -1 => None,
            n => Some(u64::try_from(n).map_err(|_| {
                Error::InvalidArgument(format!(
                    "assert_cardinality: expected_cardinality must be -1 (infinite) or at least 0, got {n}"
                ))
            })?),
        };
        Ok(Dataset::from_node(AssertCardinality {
            input: self.clone(),
            expected,
        }))
    }

    /// tf.data's `take(count)`: the first `count` elements; all of them when `count` is
    /// negative (tf.data's -1).
    pub fn take(&self, count: i64) -> Dataset {
        Dataset::from_node(Stride {
            input: self.clone(),
            start: 0,
            step: 1,
            limit: u64::try_from(count).ok(),
            name: "Take",
        })
    }

    /// tf.data's `skip(count)`: all but the first `count` elements; none when `count` is
    /// negative (tf.data's -1 skips the whole dataset).
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 10, 1)?;
    /// assert_eq!(ds.skip(7).to_vec()?.len(), 3);
    /// assert_eq!(ds.skip(-1).to_vec()?.len(), 0);
    /// assert_eq!(ds.take(-1).to_vec()?.len(), 10);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn skip(&self, count: i64) -> Dataset {
        match u64::try_from(count) {
            Ok(n) => Dataset::from_node(Stride {
                input: self.clone(),
                start: n,
                step: 1,
                limit: None,
                name: "Skip",
            }),
            Err(_) => Dataset::from_node(Stride {
                input: self.clone(),
                start: 0,
                step: 1,
                limit: Some(0),
                name: "Skip",
            }),
        }
    }

    /// tf.data's `shard(num_shards, index)`: the elements whose position is `index` modulo
    /// `num_shards`. `num_shards` must be positive and `index` in `[0, num_shards)`.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 10, 1)?.shard(3, 1)?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["1", "4", "7"]);
    /// assert!(Dataset::range(0, 10, 1)?.shard(3, 3).is_err());
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn shard(&self, num_shards: u64, index: u64) -> Result<Dataset> {
        require(num_shards > 0, || {
            format!("shard: num_shards must be greater than zero, got {num_shards}")
        })?;
        require(index < num_shards, || {
            format!("shard: index must be in [0, {num_shards}), got {index}")
        })?;
        Ok(Dataset::from_node(Stride {
            input: self.clone(),
            start: index,
            step: num_shards,
            limit: None,
            name: "Shard",
        }))
    }

    /// tf.data's `enumerate(start)`: `(i, element)` tuples, `i` an int64 scalar counting from
    /// `start`.
    pub fn enumerate(&self, start: i64) -> Dataset {
        let spec = ElementSpec::Tuple(vec![
            ElementSpec::Tensor(TensorSpec {
                dtype: DType::Int64,
                shape: PartialShape::known(&[]),
            }),
            self.element_spec().clone(),
        ]);
        Dataset::from_node(Enumerate {
            input: self.clone(),
            start,
            spec,
        })
    }
}
