//! `window`: overlapping or strided runs of elements, each a small dataset.

use std::collections::VecDeque;
use std::sync::Arc;

use super::elements::Elements;
use super::plumbing::{
    describe_node, reopen, require, restore, BoxIter, Cardinality, Dataset, ElementIter, Node,
};
use super::state::State;
use crate::element::{Element, ElementSpec};
use crate::error::{Error, Result};

/// One buffered input position: an element, or the error in its place.
enum Slot {
    Element(Element),
    Error(String, Option<Error>),
}

struct Window {
    input: Dataset,
    size: u64,
    shift: u64,
    stride: u64,
    drop_remainder: bool,
    spec: ElementSpec,
}

impl Window {
    /// The number of windows over `n` elements.
    fn count(&self, n: u64) -> u64 {
        let span = (self.size - 1)
            .saturating_mul(self.stride)
            .saturating_add(1);
        if self.drop_remainder {
            if n >= span {
                (n - span) / self.shift + 1
            } else {
                0
            }
        } else {
            n.div_ceil(self.shift)
        }
    }
}

/// A window as tf.data makes it: the element's structure, with a dataset in place of each
/// tensor (the window's values of that tensor).
fn window_element(spec: &ElementSpec, elements: &[Element]) -> Element {
    // The values of one part of the elements, taken out of each by `part`.
    let parts = |part: &dyn Fn(&Element) -> Option<&Element>| -> Vec<Element> {
        elements.iter().filter_map(|e| part(e).cloned()).collect()
    };
    match spec {
        ElementSpec::Tuple(items) => Element::Tuple(
            items
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let values = parts(&|e| match e {
                        Element::Tuple(t) => t.get(i),
                        _ => None,
                    });
                    window_element(s, &values)
                })
                .collect(),
        ),
        ElementSpec::Dict(items) => Element::Dict(
            items
                .iter()
                .map(|(k, s)| {
                    let values = parts(&|e| match e {
                        Element::Dict(d) => d.get(k),
                        _ => None,
                    });
                    (k.clone(), window_element(s, &values))
                })
                .collect(),
        ),
        leaf => Element::Dataset(Dataset::from_node(Elements {
            elements: Arc::new(elements.to_vec()),
            spec: leaf.clone(),
        })),
    }
}

fn window_spec(spec: &ElementSpec) -> ElementSpec {
    match spec {
        ElementSpec::Tuple(items) => ElementSpec::Tuple(items.iter().map(window_spec).collect()),
        ElementSpec::Dict(items) => ElementSpec::Dict(
            items
                .iter()
                .map(|(k, s)| (k.clone(), window_spec(s)))
                .collect(),
        ),
        leaf => ElementSpec::Dataset(Box::new(leaf.clone())),
    }
}

impl Node for Window {
    describe_node! { name: "Window"; input: input; spec: spec; }
    fn cardinality(&self) -> Cardinality {
        self.input.cardinality().map(|n| self.count(n))
    }
    fn open(&self, from: Option<State>) -> Result<BoxIter> {
        let mut it = WindowIter {
            input: None,
            size: self.size,
            shift: self.shift,
            stride: self.stride,
            drop: self.drop_remainder,
            element_spec: self.input.element_spec().clone(),
            buffer: VecDeque::new(),
            first: 0,
            start: 0,
        };
        let Some(s) = from else {
            it.input = Some(self.input.open()?);
            return Ok(Box::new(it));
        };
        restore(Some(s), "Window", |r| {
            it.first = r.num()?;
            it.start = r.num()?;
            // The buffer never starts after the next window (a forged state could make the
            // windows creep towards it for ever).
            if it.first > it.start {
                return Err(super::state::mismatch(format!(
                    "a window's buffer starts at {} after the window at {}",
                    it.first, it.start
                )));
            }
            let n = r.usize()?;
            for _ in 0..n {
                it.buffer.push_back(match r.item()? {
                    Ok(e) => Slot::Element(e),
                    Err(e) => Slot::Error(e.to_string(), Some(e)),
                });
            }
            it.input = reopen(&self.input, r)?;
            Ok(())
        })?;
        Ok(Box::new(it))
    }
}

struct WindowIter {
    /// The input, until it ends.
    input: Option<BoxIter>,
    size: u64,
    shift: u64,
    stride: u64,
    drop: bool,
    element_spec: ElementSpec,
    /// Elements from position `first` on, those a window may still need. An error keeps
    /// its position, so the windows after it are the same as without it.
    buffer: VecDeque<Slot>,
    first: u64,
    /// Where the next window starts.
    start: u64,
}

impl ElementIter for WindowIter {
    fn next(&mut self) -> Option<Result<Element>> {
        let (size, shift, stride) = (self.size, self.shift, self.stride);
        let last = self.start.saturating_add((size - 1).saturating_mul(stride));
        while self.first + (self.buffer.len() as u64) <= last {
            let Some(it) = self.input.as_mut() else { break };
            match it.next() {
                Some(Ok(e)) => self.buffer.push_back(Slot::Element(e)),
                Some(Err(e)) => self.buffer.push_back(Slot::Error(e.to_string(), Some(e))),
                None => self.input = None,
            }
        }
        let available = self.first + self.buffer.len() as u64;
        let start = self.start;
        let positions: Vec<u64> = (0..size)
            .map_while(|k| start.checked_add(k.checked_mul(stride)?))
            .take_while(|&p| p < available)
            .collect();
        if positions.is_empty() || (self.drop && (positions.len() as u64) < size) {
            return None;
        }
        // A window holding an error is that error (the first time it is met; a copy of its
        // message in the windows that overlap it later).
        let mut members = Vec::with_capacity(positions.len());
        let mut error = None;
        for p in positions {
            match self.buffer.get_mut((p - self.first) as usize) {
                Some(Slot::Element(e)) => members.push(e.clone()),
                Some(Slot::Error(msg, original)) if error.is_none() => {
                    error = Some(
                        original
                            .take()
                            .unwrap_or_else(|| Error::Pipeline(msg.clone())),
                    );
                }
                _ => {}
            }
        }
        self.start = self.start.saturating_add(shift);
        while self.first < self.start && !self.buffer.is_empty() {
            self.buffer.pop_front();
            self.first += 1;
        }
        // Past the end of the buffer (a shift larger than the window): skip inputs.
        while self.first < self.start {
            match self.input.as_mut().and_then(|it| it.next()) {
                Some(_) => self.first += 1,
                None => {
                    self.input = None;
                    break;
                }
            }
        }
        Some(match error {
            Some(e) => Err(e),
            None => Ok(window_element(&self.element_spec, &members)),
        })
    }
    fn save(&self) -> Result<State> {
        let mut s = State::new("Window")
            .num(self.first)
            .num(self.start)
            .num(self.buffer.len() as u64);
        for slot in &self.buffer {
            s = match slot {
                Slot::Element(e) => s.item(&Ok(e.clone()))?,
                Slot::Error(msg, _) => s.item(&Err(Error::Pipeline(msg.clone())))?,
            };
        }
        let input = self.input.as_ref().map(|it| it.save()).transpose()?;
        Ok(s.kid_opt(input))
    }
}

impl Dataset {
    /// tf.data's `window(size, shift, stride, drop_remainder)`: window *k* holds the elements
    /// at positions `k * shift + j * stride` for `j` in `0..size`. `shift` defaults to `size`.
    /// Windows at the end are shorter, or dropped with `drop_remainder`. `size`, `shift` and
    /// `stride` must be positive.
    ///
    /// Each window is a dataset, as in tf.data: an element whose tensors are replaced by
    /// [`Element::Dataset`]s. Turn them into tensors with `flat_map(|w| w.into_dataset()?.
    /// batch(size, false))`.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// // tf.data's documented example: range(7).window(3, shift=2, stride=1)
    /// let ds = Dataset::range(0, 7, 1)?
    ///     .window(3, Some(2), 1, false)?
    ///     .flat_map(|w| w.into_dataset()?.batch(3, ()), None)?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["[0 1 2]", "[2 3 4]", "[4 5 6]", "[6]"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn window(
        &self,
        size: u64,
        shift: Option<u64>,
        stride: u64,
        drop_remainder: bool,
    ) -> Result<Dataset> {
        let shift = shift.unwrap_or(size);
        require(size > 0, || {
            format!("window: size must be positive, got {size}")
        })?;
        require(shift > 0, || {
            format!("window: shift must be positive, got {shift}")
        })?;
        require(stride > 0, || {
            format!("window: stride must be positive, got {stride}")
        })?;
        Ok(Dataset::from_node(Window {
            input: self.clone(),
            size,
            shift,
            stride,
            drop_remainder,
            spec: window_spec(self.element_spec()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_state_with_the_buffer_after_the_window_is_refused() {
        // Found by the iterator_state fuzzer: a buffer start far after the next window made
        // the windows creep towards it, one empty window a call, for ever.
        let ds = Dataset::range(0, 10, 1)
            .unwrap()
            .window(3, Some(2), 1, false)
            .unwrap();
        let forged = State::new("Window")
            .num(1 << 62)
            .num(0)
            .num(0)
            .kid_opt(None);
        let err = ds.node().open(Some(forged)).err().unwrap().to_string();
        assert!(err.contains("after the window"), "{err}");
        // The state the iterator saves restores.
        let mut it = ds.iter();
        it.next();
        let state = it.get_state().unwrap();
        let mut again = ds.iter();
        again.set_state(&state).unwrap();
        assert_eq!(again.count(), 4);
    }
}
