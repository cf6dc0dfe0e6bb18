//! Elements, element specs and errors as bytes, for the elements a state holds.

use indexmap::IndexMap;

use super::tree::{mismatch, State, StateReader};
use crate::buffer::BufferMut;
use crate::dataset::elements::Elements;
use crate::dataset::plumbing::Dataset;
use crate::dtype::{ByteOrder, DType};
use crate::element::{Element, ElementSpec, PartialShape, TensorSpec};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// How deeply states and elements may nest before decoding refuses them.
/// A bound on the decoder's recursion too: far more than any pipeline nests.
pub(super) const MAX_DEPTH: usize = 512;

pub(super) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub(super) fn encode_element(e: &Element, out: &mut Vec<u8>) -> Result<()> {
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

/// A count, then that many items read by `item` (the parts of a tuple).
fn decode_tuple<T>(
    c: &mut Cursor<'_>,
    mut item: impl FnMut(&mut Cursor<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = c.count(1)?;
    (0..n).map(|_| item(c)).collect()
}

/// A count, then that many keys, each followed by its item read by `item` (a dict).
fn decode_dict<T>(
    c: &mut Cursor<'_>,
    mut item: impl FnMut(&mut Cursor<'_>) -> Result<T>,
) -> Result<IndexMap<String, T>> {
    let n = c.count(9)?;
    let mut items = IndexMap::with_capacity(n);
    for _ in 0..n {
        let k = c.string()?;
        items.insert(k, item(c)?);
    }
    Ok(items)
}

fn decode_spec(c: &mut Cursor<'_>, depth: usize) -> Result<ElementSpec> {
    if depth > MAX_DEPTH {
        return Err(Error::InvalidArgument(
            "the iterator state nests too deeply".into(),
        ));
    }
    Ok(match c.u8()? {
        0 => {
            let dtype = TensorSpec::dtype_from_descr(&c.string()?)?;
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
        1 => ElementSpec::Tuple(decode_tuple(c, |c| decode_spec(c, depth + 1))?),
        2 => ElementSpec::Dict(decode_dict(c, |c| decode_spec(c, depth + 1))?),
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
pub(super) fn encode_item(item: &Result<Element>) -> Result<Vec<u8>> {
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
pub(super) struct Cursor<'a> {
    pub(super) data: &'a [u8],
    pub(super) at: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
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

    pub(super) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A count of things of at least `min_size` bytes each: never more than the bytes left
    /// could hold, so a forged count cannot make the decoder allocate.
    pub(super) fn count(&mut self, min_size: usize) -> Result<usize> {
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

    pub(super) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.count(1)?;
        self.take(n)
    }

    pub(super) fn string(&mut self) -> Result<String> {
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
        1 => Ok(Element::Tuple(decode_tuple(c, |c| {
            decode_element(c, depth + 1)
        })?)),
        2 => Ok(Element::Dict(decode_dict(c, |c| {
            decode_element(c, depth + 1)
        })?)),
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

pub(super) fn decode_item(bytes: &[u8]) -> Result<Result<Element>> {
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

/// The elements a state holds (its other parts are in [`super::tree`]).
impl State {
    /// An element, or the error that stands in its place (kept as its message).
    pub(crate) fn item(self, item: &Result<Element>) -> Result<State> {
        Ok(self.push_encoded(encode_item(item)?))
    }

    pub(crate) fn element(self, e: &Element) -> Result<State> {
        let s = self;
        let mut out = Vec::new();
        encode_element(e, &mut out)?;
        let mut bytes = vec![0u8];
        bytes.extend_from_slice(&out);
        Ok(s.push_encoded(bytes))
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
}

impl StateReader {
    pub(crate) fn item(&mut self) -> Result<Result<Element>> {
        decode_item(&self.pop_encoded()?)
    }

    pub(crate) fn element(&mut self) -> Result<Element> {
        self.item()?.map_err(|_| {
            mismatch(format!(
                "the {} iterator's state holds an error where an element belongs",
                self.tag()
            ))
        })
    }

    /// A count, then that many elements (as [`State::elements`] wrote them).
    pub(crate) fn elements(&mut self) -> Result<Vec<Element>> {
        let n = self.usize()?;
        if n > self.encoded_left() {
            return Err(self.short("elements"));
        }
        (0..n).map(|_| self.element()).collect()
    }
}
