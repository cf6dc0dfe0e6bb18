//! Iterator state: what a pass has done, saved as bytes and restored into a fresh pass.
//!
//! Each iterator saves a [`State`]: its tag (the kind of iterator), a few numbers
//! (positions, counters, random generator states), the elements it holds that its input will
//! not give again (a shuffle buffer, results computed ahead), and the states of its inputs.
//! Restoring opens the pipeline with that tree: each node takes its part and opens its inputs
//! with theirs, so nothing is read twice and nothing is skipped.
//!
//! Random-access passes hold no elements: their state is the index of the next element and
//! the (seed, epoch) pairs their random nodes drew when the pass was made, which
//! [`with_draws`] records and replays.
//!
//! The encoding is little-endian and self-checking: a magic string, a format version, a
//! fingerprint of the pipeline's structure, the tree, and a CRC-32 of everything before it.
//! Decoding never trusts a length: each is checked against the bytes that remain.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use indexmap::IndexMap;

use super::map::Elements;
use super::Dataset;
use crate::buffer::BufferMut;
use crate::dtype::{ByteOrder, DType};
use crate::element::{Element, ElementSpec, PartialShape, TensorSpec};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

const MAGIC: &[u8; 14] = b"npyflow state\n";
const VERSION: u32 = 1;
/// How deep a decoded tree may nest (states and elements): far more than any pipeline, and
/// a bound on the decoder's recursion.
const MAX_DEPTH: usize = 512;

/// An error for a state that does not belong to this pipeline.
pub(crate) fn mismatch(what: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!(
        "the iterator state does not fit this pipeline: {what}"
    ))
}

/// One iterator's saved state. Built with the chaining methods, read with [`State::reader`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    tag: String,
    nums: Vec<u64>,
    /// Elements, each encoded when added (see [`encode_item`]).
    elems: Vec<Vec<u8>>,
    kids: Vec<Option<State>>,
}

impl State {
    pub(crate) fn new(tag: &str) -> State {
        State {
            tag: tag.to_string(),
            ..State::default()
        }
    }

    pub(crate) fn num(mut self, v: u64) -> State {
        self.nums.push(v);
        self
    }

    pub(crate) fn flag(self, v: bool) -> State {
        self.num(u64::from(v))
    }

    /// An element, or the error that stands in its place (kept as its message).
    pub(crate) fn item(mut self, item: &Result<Element>) -> Result<State> {
        self.elems.push(encode_item(item)?);
        Ok(self)
    }

    pub(crate) fn element(self, e: &Element) -> Result<State> {
        let mut s = self;
        let mut out = Vec::new();
        encode_element(e, &mut out)?;
        let mut bytes = vec![0u8];
        bytes.extend_from_slice(&out);
        s.elems.push(bytes);
        Ok(s)
    }

    /// A count, then the elements.
    pub(crate) fn elements<'a>(
        self,
        es: impl ExactSizeIterator<Item = &'a Element>,
    ) -> Result<State> {
        let mut s = self.num(es.len() as u64);
        for e in es {
            s = s.element(e)?;
        }
        Ok(s)
    }

    pub(crate) fn kid(mut self, s: State) -> State {
        self.kids.push(Some(s));
        self
    }

    pub(crate) fn kid_opt(mut self, s: Option<State>) -> State {
        self.kids.push(s);
        self
    }

    /// Reads the state back, after checking it was saved by a `tag` iterator.
    pub(crate) fn reader(self, tag: &str) -> Result<StateReader> {
        if self.tag != tag {
            return Err(mismatch(format!(
                "a {} iterator's state was given to a {tag} iterator",
                self.tag
            )));
        }
        Ok(StateReader {
            tag: self.tag,
            nums: self.nums.into(),
            elems: self.elems.into(),
            kids: self.kids.into(),
        })
    }

    /// The tag this state was saved with.
    pub(crate) fn tag(&self) -> &str {
        &self.tag
    }
}

/// Reads a [`State`] in the order it was built.
pub(crate) struct StateReader {
    tag: String,
    nums: VecDeque<u64>,
    elems: VecDeque<Vec<u8>>,
    kids: VecDeque<Option<State>>,
}

impl StateReader {
    fn short(&self, what: &str) -> Error {
        mismatch(format!(
            "the {} iterator's state has too few {what}",
            self.tag
        ))
    }

    pub(crate) fn num(&mut self) -> Result<u64> {
        self.nums.pop_front().ok_or_else(|| self.short("numbers"))
    }

    pub(crate) fn usize(&mut self) -> Result<usize> {
        let v = self.num()?;
        usize::try_from(v).map_err(|_| mismatch(format!("{v} is too large")))
    }

    pub(crate) fn flag(&mut self) -> Result<bool> {
        Ok(self.num()? != 0)
    }

    pub(crate) fn item(&mut self) -> Result<Result<Element>> {
        let bytes = self
            .elems
            .pop_front()
            .ok_or_else(|| self.short("elements"))?;
        decode_item(&bytes)
    }

    pub(crate) fn element(&mut self) -> Result<Element> {
        self.item()?.map_err(|_| {
            mismatch(format!(
                "the {} iterator's state holds an error where an element belongs",
                self.tag
            ))
        })
    }

    /// A count, then that many elements (as [`State::elements`] wrote them).
    pub(crate) fn elements(&mut self) -> Result<Vec<Element>> {
        let n = self.usize()?;
        if n > self.elems.len() {
            return Err(self.short("elements"));
        }
        (0..n).map(|_| self.element()).collect()
    }

    /// An input's state, which must be there.
    pub(crate) fn kid(&mut self) -> Result<State> {
        self.kid_opt()?
            .ok_or_else(|| mismatch(format!("the {} iterator's state lacks an input", self.tag)))
    }

    pub(crate) fn kid_opt(&mut self) -> Result<Option<State>> {
        self.kids.pop_front().ok_or_else(|| self.short("inputs"))
    }

    /// Checks that everything was read: a state with more in it came from another pipeline.
    pub(crate) fn finish(self) -> Result<()> {
        if self.nums.is_empty() && self.elems.is_empty() && self.kids.is_empty() {
            Ok(())
        } else {
            Err(mismatch(format!(
                "the {} iterator's state holds more than this pipeline's",
                self.tag
            )))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Random draws of passes.

/// One random draw made when a pass was created: the seed used, the epoch, and whether the
/// node reshuffles (draws a new epoch) on each pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Draw {
    pub(crate) seed: u64,
    pub(crate) epoch: u64,
    pub(crate) reshuffles: bool,
}

struct DrawLog {
    replay: Option<VecDeque<Draw>>,
    recorded: Vec<Draw>,
    failed: Option<String>,
}

thread_local! {
    static DRAWS: RefCell<Vec<DrawLog>> = const { RefCell::new(Vec::new()) };
}

/// A random node's seed: given, or drawn when the dataset is built. Restoring a state adopts
/// the state's seed, so a pipeline built again with `seed: None` goes on with the saved
/// run's seed in its later passes too.
#[derive(Debug)]
pub(crate) struct Seed(AtomicU64);

impl Seed {
    pub(crate) fn new(seed: Option<u64>) -> Seed {
        Seed(AtomicU64::new(seed.unwrap_or_else(super::rng::fresh_seed)))
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Takes the seed of a restored state.
    pub(crate) fn adopt(&self, seed: u64) {
        self.0.store(seed, Ordering::Relaxed);
    }
}

/// A sequential pass of a random node restored with `seed` and `epoch`: the node takes the
/// seed, and its counter moves past the epoch, so the passes it opens later get new ones.
pub(crate) fn resumed(
    node_seed: &Seed,
    counter: &AtomicU64,
    seed: u64,
    epoch: u64,
    reshuffles: bool,
) {
    node_seed.adopt(seed);
    if reshuffles {
        counter.fetch_max(epoch.saturating_add(1), Ordering::Relaxed);
    }
}

/// The epoch for a new sequential pass of a random node: the next of its counter when it
/// reshuffles, 0 when it does not. (Sequential iterators save their epoch themselves.)
pub(crate) fn next_epoch(counter: &AtomicU64, reshuffles: bool) -> u64 {
    if reshuffles {
        counter.fetch_add(1, Ordering::Relaxed)
    } else {
        0
    }
}

/// The (seed, epoch) a random node uses for a new pass. Outside [`with_draws`], the node's
/// own seed and the next epoch of its counter (epoch 0 always when it does not reshuffle).
/// Inside, the draw is recorded, or replayed from a saved state; a replayed epoch moves the
/// counter past it, so the passes after a restored one get new epochs.
pub(crate) fn draw(seed: &Seed, counter: &AtomicU64, reshuffles: bool) -> (u64, u64) {
    let fresh = || Draw {
        seed: seed.get(),
        epoch: next_epoch(counter, reshuffles),
        reshuffles,
    };
    let d = DRAWS.with(|logs| {
        let mut logs = logs.borrow_mut();
        let Some(log) = logs.last_mut() else {
            return fresh();
        };
        let d = match log.replay.as_mut() {
            Some(replay) => match replay.pop_front() {
                Some(d) if d.reshuffles == reshuffles => {
                    seed.adopt(d.seed);
                    if reshuffles {
                        counter.fetch_max(d.epoch.saturating_add(1), Ordering::Relaxed);
                    }
                    d
                }
                Some(_) | None => {
                    log.failed
                        .get_or_insert_with(|| "its random draws differ".to_string());
                    fresh()
                }
            },
            None => fresh(),
        };
        log.recorded.push(d);
        d
    });
    (d.seed, d.epoch)
}

/// Runs `f` (which makes a pass) recording the draws of the random nodes it creates, or
/// replaying `replay`. Returns what `f` returned and the draws made.
pub(crate) fn with_draws<T>(
    replay: Option<Vec<Draw>>,
    f: impl FnOnce() -> T,
) -> Result<(T, Vec<Draw>)> {
    DRAWS.with(|logs| {
        logs.borrow_mut().push(DrawLog {
            replay: replay.map(VecDeque::from),
            recorded: Vec::new(),
            failed: None,
        })
    });
    // Popped even if `f` panics, so a later pass on this thread is not recorded into it.
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            DRAWS.with(|logs| logs.borrow_mut().pop());
        }
    }
    let pop = Pop;
    let out = f();
    let log = DRAWS.with(|logs| {
        let mut logs = logs.borrow_mut();
        let last = logs.last_mut().expect("pushed above");
        DrawLog {
            replay: last.replay.take(),
            recorded: std::mem::take(&mut last.recorded),
            failed: last.failed.take(),
        }
    });
    drop(pop);
    if let Some(why) = log.failed {
        return Err(mismatch(why));
    }
    if log.replay.is_some_and(|r| !r.is_empty()) {
        return Err(mismatch("it made fewer random draws"));
    }
    Ok((out, log.recorded))
}

/// Runs `f` (which makes a pass) and returns, with its result, the draws made in it, whether
/// or not an outer [`with_draws`] is recording or replaying them.
pub(crate) fn observe<T>(f: impl FnOnce() -> T) -> (T, Vec<Draw>) {
    let start = DRAWS.with(|logs| logs.borrow().last().map(|log| log.recorded.len()));
    let Some(start) = start else {
        let mut out = None;
        let draws = with_draws(None, || out = Some(f()))
            .map(|((), d)| d)
            .unwrap_or_default();
        return (out.expect("f ran"), draws);
    };
    let out = f();
    let draws = DRAWS.with(|logs| {
        logs.borrow()
            .last()
            .map(|log| log.recorded.get(start..).unwrap_or_default().to_vec())
            .unwrap_or_default()
    });
    (out, draws)
}

/// The draws of repetition `r` of a pass whose first repetition drew `first`: the same
/// seeds, and epochs moved on by `r` where the node reshuffles.
pub(crate) fn shifted(first: &[Draw], r: u64) -> Vec<Draw> {
    first
        .iter()
        .map(|d| Draw {
            epoch: if d.reshuffles {
                d.epoch.wrapping_add(r)
            } else {
                d.epoch
            },
            ..*d
        })
        .collect()
}

pub(crate) fn save_draws(mut s: State, draws: &[Draw]) -> State {
    s = s.num(draws.len() as u64);
    for d in draws {
        s = s.num(d.seed).num(d.epoch).flag(d.reshuffles);
    }
    s
}

pub(crate) fn read_draws(r: &mut StateReader) -> Result<Vec<Draw>> {
    let n = r.usize()?;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        out.push(Draw {
            seed: r.num()?,
            epoch: r.num()?,
            reshuffles: r.flag()?,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Elements as bytes.

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn encode_element(e: &Element, out: &mut Vec<u8>) -> Result<()> {
    match e {
        Element::Tensor(t) => {
            // Its dtype, shape and bytes (C order, native byte order, as every tensor is).
            out.push(0);
            put_str(out, &t.dtype().descr(ByteOrder::NATIVE));
            put_u64(out, t.ndim() as u64);
            for &d in t.shape() {
                put_u64(out, d as u64);
            }
            put_u64(out, t.nbytes() as u64);
            out.extend_from_slice(t.as_bytes());
        }
        Element::Tuple(items) => {
            out.push(1);
            put_u64(out, items.len() as u64);
            for item in items {
                encode_element(item, out)?;
            }
        }
        Element::Dict(items) => {
            out.push(2);
            put_u64(out, items.len() as u64);
            for (k, item) in items {
                put_str(out, k);
                encode_element(item, out)?;
            }
        }
        Element::Dataset(d) => {
            // A window's (or a group's) elements, held in memory: saved as they are.
            let (elements, spec) = d.node().elements().ok_or_else(|| {
                Error::InvalidArgument(
                    "an iterator holding a dataset as an element cannot be saved, except the \
                     datasets of window and group_by_window"
                        .into(),
                )
            })?;
            out.push(3);
            encode_spec(spec, out);
            put_u64(out, elements.len() as u64);
            for e in elements {
                encode_element(e, out)?;
            }
        }
    }
    Ok(())
}

const UNKNOWN: u64 = u64::MAX;

fn encode_spec(spec: &ElementSpec, out: &mut Vec<u8>) {
    match spec {
        ElementSpec::Tensor(t) => {
            out.push(0);
            put_str(out, &t.dtype.descr(ByteOrder::NATIVE));
            match t.shape.dims() {
                None => put_u64(out, UNKNOWN),
                Some(dims) => {
                    put_u64(out, dims.len() as u64);
                    for d in dims {
                        put_u64(out, d.map_or(UNKNOWN, |d| d as u64));
                    }
                }
            }
        }
        ElementSpec::Tuple(items) => {
            out.push(1);
            put_u64(out, items.len() as u64);
            for s in items {
                encode_spec(s, out);
            }
        }
        ElementSpec::Dict(items) => {
            out.push(2);
            put_u64(out, items.len() as u64);
            for (k, s) in items {
                put_str(out, k);
                encode_spec(s, out);
            }
        }
        ElementSpec::Dataset(s) => {
            out.push(3);
            encode_spec(s, out);
        }
    }
}

fn decode_spec(c: &mut Cursor<'_>, depth: usize) -> Result<ElementSpec> {
    if depth > MAX_DEPTH {
        return Err(Error::InvalidArgument(
            "the iterator state nests too deeply".into(),
        ));
    }
    Ok(match c.u8()? {
        0 => {
            let (dtype, _): (DType, _) = DType::parse_descr(&c.string()?)?;
            let rank = c.u64()?;
            let shape = if rank == UNKNOWN {
                PartialShape::unknown()
            } else {
                let rank = c.count_of(rank, 8)?;
                let dims = (0..rank)
                    .map(|_| {
                        c.u64().map(|d| {
                            (d != UNKNOWN).then(|| usize::try_from(d).unwrap_or(usize::MAX))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                PartialShape::new(&dims)
            };
            ElementSpec::Tensor(TensorSpec { dtype, shape })
        }
        1 => {
            let n = c.count(1)?;
            ElementSpec::Tuple(
                (0..n)
                    .map(|_| decode_spec(c, depth + 1))
                    .collect::<Result<_>>()?,
            )
        }
        2 => {
            let n = c.count(9)?;
            let mut items = IndexMap::with_capacity(n);
            for _ in 0..n {
                let k = c.string()?;
                items.insert(k, decode_spec(c, depth + 1)?);
            }
            ElementSpec::Dict(items)
        }
        3 => ElementSpec::Dataset(Box::new(decode_spec(c, depth + 1)?)),
        k => {
            return Err(Error::InvalidArgument(format!(
                "the iterator state is damaged: spec kind {k} at byte {}",
                c.at - 1
            )))
        }
    })
}

/// An item as bytes: 0 and an element, or 1 and an error's message.
fn encode_item(item: &Result<Element>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match item {
        Ok(e) => {
            out.push(0);
            encode_element(e, &mut out)?;
        }
        Err(e) => {
            out.push(1);
            put_str(&mut out, &e.to_string());
        }
    }
    Ok(out)
}

/// A cursor over bytes that checks every length against what is left.
struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "the iterator state is cut short: {n} bytes wanted at byte {}, {} there",
                    self.at,
                    self.data.len()
                ))
            })?;
        let out = &self.data[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A count of things of at least `min_size` bytes each: never more than the bytes left
    /// could hold, so a forged count cannot make the decoder allocate.
    fn count(&mut self, min_size: usize) -> Result<usize> {
        let n = self.u64()?;
        self.count_of(n, min_size)
    }

    /// `n`, read already, checked as [`Cursor::count`] checks.
    fn count_of(&mut self, n: u64, min_size: usize) -> Result<usize> {
        let left = (self.data.len() - self.at) as u64;
        if n > left / min_size.max(1) as u64 {
            return Err(Error::InvalidArgument(format!(
                "the iterator state is damaged: a count of {n} at byte {}",
                self.at - 8
            )));
        }
        Ok(n as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.count(1)?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String> {
        let at = self.at;
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| {
            Error::InvalidArgument(format!(
                "the iterator state is damaged: bad text at byte {at}"
            ))
        })
    }
}

fn decode_element(c: &mut Cursor<'_>, depth: usize) -> Result<Element> {
    if depth > MAX_DEPTH {
        return Err(Error::InvalidArgument(
            "the iterator state nests too deeply".into(),
        ));
    }
    match c.u8()? {
        0 => {
            let (dtype, _) = DType::parse_descr(&c.string()?)?;
            let ndim = c.count(8)?;
            let shape = (0..ndim)
                .map(|_| c.u64().map(|d| usize::try_from(d).unwrap_or(usize::MAX)))
                .collect::<Result<Vec<usize>>>()?;
            let data = c.bytes()?;
            // Copied into an aligned buffer of its own; Tensor::new checks the size.
            let mut buf = BufferMut::zeroed(data.len())?;
            buf.as_mut_slice().copy_from_slice(data);
            Ok(Element::Tensor(Tensor::new(dtype, &shape, buf.freeze())?))
        }
        1 => {
            let n = c.count(1)?;
            let items = (0..n)
                .map(|_| decode_element(c, depth + 1))
                .collect::<Result<_>>()?;
            Ok(Element::Tuple(items))
        }
        2 => {
            let n = c.count(9)?;
            let mut items = IndexMap::with_capacity(n);
            for _ in 0..n {
                let k = c.string()?;
                items.insert(k, decode_element(c, depth + 1)?);
            }
            Ok(Element::Dict(items))
        }
        3 => {
            let spec = decode_spec(c, depth + 1)?;
            let n = c.count(1)?;
            let elements = (0..n)
                .map(|_| decode_element(c, depth + 1))
                .collect::<Result<Vec<_>>>()?;
            if let Some(bad) = elements.iter().find(|e| !spec.is_compatible_with(e)) {
                return Err(Error::InvalidArgument(format!(
                    "the iterator state is damaged: a dataset of {spec} holds {}",
                    bad.spec()
                )));
            }
            Ok(Element::Dataset(Dataset::from_node(Elements {
                elements: std::sync::Arc::new(elements),
                spec,
            })))
        }
        k => Err(Error::InvalidArgument(format!(
            "the iterator state is damaged: element kind {k} at byte {}",
            c.at - 1
        ))),
    }
}

fn decode_item(bytes: &[u8]) -> Result<Result<Element>> {
    let mut c = Cursor { data: bytes, at: 0 };
    let item = match c.u8()? {
        0 => Ok(decode_element(&mut c, 0)?),
        1 => Err(Error::Pipeline(c.string()?)),
        k => {
            return Err(Error::InvalidArgument(format!(
                "the iterator state is damaged: item kind {k}"
            )))
        }
    };
    Ok(item)
}

fn encode_state(s: &State, out: &mut Vec<u8>) {
    put_str(out, &s.tag);
    put_u64(out, s.nums.len() as u64);
    for &n in &s.nums {
        put_u64(out, n);
    }
    put_u64(out, s.elems.len() as u64);
    for e in &s.elems {
        put_u64(out, e.len() as u64);
        out.extend_from_slice(e);
    }
    put_u64(out, s.kids.len() as u64);
    for k in &s.kids {
        match k {
            Some(k) => {
                out.push(1);
                encode_state(k, out);
            }
            None => out.push(0),
        }
    }
}

fn decode_state(c: &mut Cursor<'_>, depth: usize) -> Result<State> {
    if depth > MAX_DEPTH {
        return Err(Error::InvalidArgument(
            "the iterator state nests too deeply".into(),
        ));
    }
    let tag = c.string()?;
    let n = c.count(8)?;
    let nums = (0..n).map(|_| c.u64()).collect::<Result<_>>()?;
    let n = c.count(8)?;
    let elems = (0..n)
        .map(|_| c.bytes().map(<[u8]>::to_vec))
        .collect::<Result<_>>()?;
    let n = c.count(1)?;
    let mut kids = Vec::with_capacity(n);
    for _ in 0..n {
        kids.push(match c.u8()? {
            0 => None,
            1 => Some(decode_state(c, depth + 1)?),
            k => {
                return Err(Error::InvalidArgument(format!(
                    "the iterator state is damaged: input marker {k} at byte {}",
                    c.at - 1
                )))
            }
        });
    }
    Ok(State {
        tag,
        nums,
        elems,
        kids,
    })
}

/// The state as bytes, stamped with the pipeline's fingerprint.
pub(crate) fn to_bytes(s: &State, fingerprint: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    put_u64(&mut out, fingerprint);
    encode_state(s, &mut out);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes bytes from [`to_bytes`], checking that they are whole and were saved from a
/// pipeline of this `fingerprint`.
pub(crate) fn from_bytes(bytes: &[u8], fingerprint: u64) -> Result<State> {
    let bad = |why: &str| Error::InvalidArgument(format!("not an npyflow iterator state: {why}"));
    if bytes.len() < MAGIC.len() + 4 + 8 + 4 || !bytes.starts_with(MAGIC) {
        return Err(bad("it does not start with npyflow's mark"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(bad("its checksum does not match (damaged or cut short)"));
    }
    let mut c = Cursor {
        data: body,
        at: MAGIC.len(),
    };
    let version = u32::from_le_bytes(c.take(4)?.try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(bad(&format!(
            "format version {version}, and this npyflow reads version {VERSION}"
        )));
    }
    let saved = c.u64()?;
    if saved != fingerprint {
        return Err(mismatch(
            "it was saved from a pipeline of another structure (other transformations, \
             element specs or sizes)",
        ));
    }
    let s = decode_state(&mut c, 0)?;
    if c.at != body.len() {
        return Err(bad("bytes follow its end"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        let e = Element::Tuple(vec![
            Tensor::from_vec(vec![1.5f32, 2.5], &[2]).unwrap().into(),
            Element::Dict(
                [("k".to_string(), Tensor::scalar(7i64).into())]
                    .into_iter()
                    .collect(),
            ),
        ]);
        State::new("Outer")
            .num(3)
            .flag(true)
            .item(&Ok(e))
            .unwrap()
            .item(&Err(Error::Pipeline("bad row".into())))
            .unwrap()
            .kid(State::new("Inner").num(u64::MAX))
            .kid_opt(None)
    }

    #[test]
    fn round_trips() {
        let bytes = to_bytes(&sample(), 42);
        let s = from_bytes(&bytes, 42).unwrap();
        let mut r = s.reader("Outer").unwrap();
        assert_eq!(r.num().unwrap(), 3);
        assert!(r.flag().unwrap());
        let e = r.item().unwrap().unwrap();
        assert_eq!(e.to_string(), "([1.5 2.5], {'k': 7})");
        assert_eq!(e.tensors()[0].dtype(), crate::dtype::DType::Float32);
        assert!(r
            .item()
            .unwrap()
            .unwrap_err()
            .to_string()
            .contains("bad row"));
        let mut inner = r.kid().unwrap().reader("Inner").unwrap();
        assert_eq!(inner.num().unwrap(), u64::MAX);
        inner.finish().unwrap();
        assert!(r.kid_opt().unwrap().is_none());
        r.finish().unwrap();
    }

    #[test]
    fn refuses_other_pipelines_and_damage() {
        let bytes = to_bytes(&sample(), 42);
        let e = from_bytes(&bytes, 43).unwrap_err().to_string();
        assert!(e.contains("another structure"), "{e}");
        assert!(sample().reader("Other").is_err());
        for cut in [0, 5, bytes.len() / 2, bytes.len() - 1] {
            assert!(from_bytes(&bytes[..cut], 42).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        assert!(from_bytes(&flipped, 42)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        let r = sample().reader("Outer").unwrap();
        assert!(r.finish().unwrap_err().to_string().contains("more than"));
    }

    #[test]
    fn forged_counts_do_not_allocate() {
        // A valid frame around a body whose count claims 2^60 numbers.
        let mut body = Vec::new();
        body.extend_from_slice(MAGIC);
        body.extend_from_slice(&VERSION.to_le_bytes());
        put_u64(&mut body, 1);
        put_str(&mut body, "X");
        put_u64(&mut body, 1 << 60);
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        let e = from_bytes(&body, 1).unwrap_err().to_string();
        assert!(e.contains("damaged"), "{e}");
    }

    #[test]
    fn draws_record_and_replay() {
        let counter = AtomicU64::new(5);
        let (nine, eight) = (Seed::new(Some(9)), Seed::new(Some(8)));
        let ((), rec) = with_draws(None, || {
            assert_eq!(draw(&nine, &counter, true), (9, 5));
            assert_eq!(draw(&eight, &counter, false), (8, 0));
        })
        .unwrap();
        assert_eq!(rec.len(), 2);
        let fresh = AtomicU64::new(0);
        let (one, two) = (Seed::new(Some(1)), Seed::new(Some(2)));
        let ((), again) = with_draws(Some(rec.clone()), || {
            assert_eq!(draw(&one, &fresh, true), (9, 5));
            assert_eq!(draw(&two, &fresh, false), (8, 0));
        })
        .unwrap();
        assert_eq!(again, rec);
        // The seeds were adopted.
        assert_eq!((one.get(), two.get()), (9, 8));
        // The counter moved past the replayed epoch.
        assert_eq!(fresh.load(Ordering::Relaxed), 6);
        // Too few draws, or other kinds, are mismatches.
        assert!(with_draws(Some(rec.clone()), || draw(&one, &fresh, true)).is_err());
        assert!(with_draws(Some(rec), || {
            draw(&one, &fresh, false);
            draw(&one, &fresh, false);
        })
        .is_err());
    }
}
