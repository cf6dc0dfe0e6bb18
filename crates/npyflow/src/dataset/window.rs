//! `window`: overlapping or strided runs of elements, each a small dataset.

use std::collections::VecDeque;
use std::sync::Arc;

use super::map::Elements;
use super::{require, BoxIter, Cardinality, Dataset, Node};
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
    match spec {
        ElementSpec::Tuple(items) => Element::Tuple(
            items
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let parts: Vec<Element> = elements
                        .iter()
                        .filter_map(|e| match e {
                            Element::Tuple(t) => t.get(i).cloned(),
                            _ => None,
                        })
                        .collect();
                    window_element(s, &parts)
                })
                .collect(),
        ),
        ElementSpec::Dict(items) => Element::Dict(
            items
                .iter()
                .map(|(k, s)| {
                    let parts: Vec<Element> = elements
                        .iter()
                        .filter_map(|e| match e {
                            Element::Dict(d) => d.get(k).cloned(),
                            _ => None,
                        })
                        .collect();
                    (k.clone(), window_element(s, &parts))
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
    fn name(&self) -> &'static str {
        "Window"
    }
    fn spec(&self) -> &ElementSpec {
        &self.spec
    }
    fn cardinality(&self) -> Cardinality {
        self.input.cardinality().map(|n| self.count(n))
    }
    fn open(&self) -> Result<BoxIter> {
        let mut input = Some(self.input.open()?);
        let (size, shift, stride, drop) = (self.size, self.shift, self.stride, self.drop_remainder);
        let element_spec = self.input.element_spec().clone();
        // Elements from position `first` on, those a window may still need. An error keeps
        // its position, so the windows after it are the same as without it.
        let mut buffer: VecDeque<Slot> = VecDeque::new();
        let mut first = 0u64;
        let mut start = 0u64;
        Ok(Box::new(move || {
            let last = start.saturating_add((size - 1).saturating_mul(stride));
            while first + (buffer.len() as u64) <= last {
                let Some(it) = input.as_mut() else { break };
                match it.next() {
                    Some(Ok(e)) => buffer.push_back(Slot::Element(e)),
                    Some(Err(e)) => buffer.push_back(Slot::Error(e.to_string(), Some(e))),
                    None => input = None,
                }
            }
            let available = first + buffer.len() as u64;
            let positions: Vec<u64> = (0..size)
                .map_while(|k| start.checked_add(k.checked_mul(stride)?))
                .take_while(|&p| p < available)
                .collect();
            if positions.is_empty() || (drop && (positions.len() as u64) < size) {
                return None;
            }
            // A window holding an error is that error (the first time it is met; a copy of
            // its message in the windows that overlap it later).
            let mut members = Vec::with_capacity(positions.len());
            let mut error = None;
            for p in positions {
                match buffer.get_mut((p - first) as usize) {
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
            start = start.saturating_add(shift);
            while first < start && !buffer.is_empty() {
                buffer.pop_front();
                first += 1;
            }
            // Past the end of the buffer (a shift larger than the window): skip inputs.
            while first < start {
                match input.as_mut().and_then(|it| it.next()) {
                    Some(_) => first += 1,
                    None => {
                        input = None;
                        break;
                    }
                }
            }
            Some(match error {
                Some(e) => Err(e),
                None => Ok(window_element(&element_spec, &members)),
            })
        }))
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
    ///     .flat_map(|w| w.into_dataset()?.batch(3, false))?;
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
