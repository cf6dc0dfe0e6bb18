//! Elements (what a dataset yields) and element specs (what it promises to yield).
//!
//! An [`Element`] is a tensor, or a tuple or dict of elements, nested as deep as needed: the
//! same structures tf.data allows. An [`ElementSpec`] mirrors it with a [`TensorSpec`] per
//! tensor, whose shape may leave dimensions, or the rank, unknown.

use std::fmt;

use indexmap::IndexMap;
use smallvec::SmallVec;

use crate::dataset::plumbing::Dataset;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor_ops::same_string_kind;

/// One element of a dataset: a tensor, a tuple of elements, or a dict of elements whose keys
/// keep their insertion order; or a dataset, as the windows that
/// [`Dataset::window`](crate::dataset::Dataset::window) yields (tf.data's `DatasetSpec`).
///
/// Printed with `{}`, a tensor looks as NumPy prints an array and a tuple as a Python tuple of
/// them: `(1, [1 2])`.
#[derive(Clone, Debug, PartialEq)]
pub enum Element {
    /// A single tensor.
    Tensor(Tensor),
    /// A tuple, like `(image, label)`.
    Tuple(Vec<Element>),
    /// A dict, like `{"image": ..., "label": ...}`, in insertion order.
    Dict(IndexMap<String, Element>),
    /// A dataset, as an element of another dataset.
    Dataset(Dataset),
}

/// The error for a dataset element that is not a batch of datasets, where rows are asked.
fn not_a_batch() -> Error {
    Error::Pipeline(
        "a dataset element that is not a batch of datasets (a window, say) has no rows; \
         flat_map it instead"
            .into(),
    )
}

impl Element {
    /// The lengths of the batches of datasets in this element, pushed in order.
    fn dataset_batch_lengths(&self, out: &mut Vec<usize>) -> Result<()> {
        match self {
            Element::Tensor(_) => {}
            Element::Tuple(items) => {
                for e in items {
                    e.dataset_batch_lengths(out)?;
                }
            }
            Element::Dict(items) => {
                for e in items.values() {
                    e.dataset_batch_lengths(out)?;
                }
            }
            Element::Dataset(d) => {
                out.push(Element::batch_of_datasets(d).ok_or_else(not_a_batch)?.len())
            }
        }
        Ok(())
    }

    /// A tuple element from its parts.
    ///
    /// ```
    /// use npyflow::{Element, Tensor};
    /// let e = Element::tuple([Tensor::scalar(1i64), Tensor::scalar(2.0f32)]);
    /// assert_eq!(e.to_string(), "(1, 2.0)");
    /// ```
    pub fn tuple<E: Into<Element>>(items: impl IntoIterator<Item = E>) -> Element {
        Element::Tuple(items.into_iter().map(Into::into).collect())
    }

    /// A dict element from `(key, value)` pairs, in their order.
    pub fn dict<K: Into<String>, E: Into<Element>>(
        items: impl IntoIterator<Item = (K, E)>,
    ) -> Element {
        Element::Dict(
            items
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The tensor, or an error naming what the element is instead.
    pub fn into_tensor(self) -> Result<Tensor> {
        match self {
            Element::Tensor(t) => Ok(t),
            other => Err(Error::Pipeline(format!(
                "expected a tensor, got {}",
                other.kind_name()
            ))),
        }
    }

    /// The tuple's parts, or an error naming what the element is instead.
    pub fn into_tuple(self) -> Result<Vec<Element>> {
        match self {
            Element::Tuple(items) => Ok(items),
            other => Err(Error::Pipeline(format!(
                "expected a tuple, got {}",
                other.kind_name()
            ))),
        }
    }

    /// The dataset, if this element is one (a window).
    pub fn into_dataset(self) -> Result<Dataset> {
        match self {
            Element::Dataset(d) => Ok(d),
            other => Err(Error::Pipeline(format!(
                "expected a dataset, got {}",
                other.kind_name()
            ))),
        }
    }

    /// Part `index` of a tuple element.
    pub fn get(&self, index: usize) -> Result<&Element> {
        match self {
            Element::Tuple(items) => items.get(index).ok_or(Error::OutOfRange {
                index,
                len: items.len(),
            }),
            other => Err(Error::Pipeline(format!(
                "cannot index {} with {index}: not a tuple",
                other.kind_name()
            ))),
        }
    }

    /// Value `key` of a dict element.
    pub fn get_key(&self, key: &str) -> Result<&Element> {
        match self {
            Element::Dict(items) => items
                .get(key)
                .ok_or_else(|| Error::Pipeline(format!("the element has no key {key:?}"))),
            other => Err(Error::Pipeline(format!(
                "cannot look up {key:?} in {}: not a dict",
                other.kind_name()
            ))),
        }
    }

    fn kind_name(&self) -> &'static str {
        match self {
            Element::Tensor(_) => "a tensor",
            Element::Tuple(_) => "a tuple",
            Element::Dict(_) => "a dict",
            Element::Dataset(_) => "a dataset",
        }
    }

    /// The element with each tensor replaced by `f(tensor)`, structure kept.
    pub fn map_tensors(&self, f: &mut impl FnMut(&Tensor) -> Result<Tensor>) -> Result<Element> {
        Ok(match self {
            Element::Tensor(t) => Element::Tensor(f(t)?),
            Element::Tuple(items) => Element::Tuple(
                items
                    .iter()
                    .map(|e| e.map_tensors(f))
                    .collect::<Result<_>>()?,
            ),
            Element::Dict(items) => Element::Dict(
                items
                    .iter()
                    .map(|(k, e)| Ok((k.clone(), e.map_tensors(f)?)))
                    .collect::<Result<_>>()?,
            ),
            Element::Dataset(d) => Element::Dataset(d.clone()),
        })
    }

    /// Combines elements of one structure tensor by tensor: the tensors at one place in every
    /// element go to `f` together (how batch stacks and rebatch joins). Dicts follow the
    /// first element's key order.
    pub fn combine(
        elements: &[Element],
        f: &mut impl FnMut(&[&Tensor]) -> Result<Tensor>,
    ) -> Result<Element> {
        let Some(first) = elements.first() else {
            return Err(Error::InvalidArgument("no elements to combine".into()));
        };
        let mismatch = || {
            Error::Pipeline(format!(
                "elements do not share one structure: {} and {}",
                first.spec(),
                elements
                    .iter()
                    .map(Element::spec)
                    .find(|s| *s != first.spec())
                    .map_or_else(String::new, |s| s.to_string())
            ))
        };
        Ok(match first {
            Element::Tensor(_) => {
                let ts: Vec<&Tensor> = elements
                    .iter()
                    .map(|e| e.as_tensor().ok_or_else(mismatch))
                    .collect::<Result<_>>()?;
                Element::Tensor(f(&ts)?)
            }
            Element::Tuple(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in 0..items.len() {
                    let parts: Vec<Element> = elements
                        .iter()
                        .map(|e| match e {
                            Element::Tuple(t) if t.len() == items.len() => Ok(t[i].clone()),
                            _ => Err(mismatch()),
                        })
                        .collect::<Result<_>>()?;
                    out.push(Element::combine(&parts, f)?);
                }
                Element::Tuple(out)
            }
            Element::Dict(items) => {
                let mut out = IndexMap::with_capacity(items.len());
                for k in items.keys() {
                    let parts: Vec<Element> = elements
                        .iter()
                        .map(|e| match e {
                            Element::Dict(d) if d.len() == items.len() => {
                                d.get(k).cloned().ok_or_else(mismatch)
                            }
                            _ => Err(mismatch()),
                        })
                        .collect::<Result<_>>()?;
                    out.insert(k.clone(), Element::combine(&parts, f)?);
                }
                Element::Dict(out)
            }
            // A batch of datasets is the dataset of those datasets (tf.data's DatasetSpec
            // with a batch dimension): unbatch or flat_map gives them back.
            Element::Dataset(_) => {
                let parts: Vec<Dataset> = elements
                    .iter()
                    .map(|e| match e {
                        Element::Dataset(d) => Ok(d.clone()),
                        _ => Err(mismatch()),
                    })
                    .collect::<Result<_>>()?;
                Element::Dataset(Dataset::from_datasets(parts)?)
            }
        })
    }

    /// The datasets of a batch of datasets (a dataset whose elements are datasets, held in
    /// memory), or `None` for any other dataset.
    fn batch_of_datasets(d: &Dataset) -> Option<&[Element]> {
        match d.node().elements() {
            Some((elements, ElementSpec::Dataset(_))) => Some(elements),
            _ => None,
        }
    }

    /// Rows `range` of every part: tensors' rows (views), and a batch of datasets' datasets.
    pub(crate) fn slice_rows(&self, range: std::ops::Range<usize>) -> Result<Element> {
        Ok(match self {
            Element::Tensor(t) => Element::Tensor(t.rows_view(range)?),
            Element::Tuple(items) => Element::Tuple(
                items
                    .iter()
                    .map(|e| e.slice_rows(range.clone()))
                    .collect::<Result<_>>()?,
            ),
            Element::Dict(items) => Element::Dict(
                items
                    .iter()
                    .map(|(k, e)| Ok((k.clone(), e.slice_rows(range.clone())?)))
                    .collect::<Result<_>>()?,
            ),
            Element::Dataset(d) => {
                let all = Element::batch_of_datasets(d).ok_or_else(not_a_batch)?;
                let parts = all
                    .get(range)
                    .ok_or_else(|| Error::Pipeline("rows past the batch of datasets".into()))?
                    .iter()
                    .map(|e| e.clone().into_dataset())
                    .collect::<Result<_>>()?;
                Element::Dataset(Dataset::from_datasets(parts)?)
            }
        })
    }

    /// Row `i` of every part: a tensor's row (a view), a batch of datasets' dataset `i`.
    pub(crate) fn row(&self, i: usize) -> Result<Element> {
        Ok(match self {
            Element::Tensor(t) => Element::Tensor(t.row_view(i)?),
            Element::Tuple(items) => {
                Element::Tuple(items.iter().map(|e| e.row(i)).collect::<Result<_>>()?)
            }
            Element::Dict(items) => Element::Dict(
                items
                    .iter()
                    .map(|(k, e)| Ok((k.clone(), e.row(i)?)))
                    .collect::<Result<_>>()?,
            ),
            Element::Dataset(d) => Element::batch_of_datasets(d)
                .ok_or_else(not_a_batch)?
                .get(i)
                .cloned()
                .ok_or_else(|| Error::Pipeline("a row past the batch of datasets".into()))?,
        })
    }

    /// The number of rows every tensor shares along its first axis (an unbatched element's
    /// batch size), or an error naming the sizes that differ or the scalar.
    pub fn rows(&self) -> Result<usize> {
        let mut rows: Option<usize> = None;
        let mut counts = Vec::new();
        for t in self.tensors() {
            counts.push(t.rows().ok_or_else(|| {
                Error::Pipeline("cannot split a scalar (a tensor with no axes) into rows".into())
            })?);
        }
        self.dataset_batch_lengths(&mut counts)?;
        for r in counts {
            match rows {
                Some(n) if n != r => {
                    return Err(Error::Pipeline(format!(
                        "the components have different first dimensions: {n} and {r}"
                    )))
                }
                _ => rows = Some(r),
            }
        }
        rows.ok_or_else(|| Error::Pipeline("an element with no tensors has no rows".into()))
    }
    /// The spec this element satisfies most precisely (every dimension known).
    pub fn spec(&self) -> ElementSpec {
        match self {
            Element::Tensor(t) => ElementSpec::Tensor(TensorSpec::of(t)),
            Element::Tuple(items) => ElementSpec::Tuple(items.iter().map(Element::spec).collect()),
            Element::Dict(items) => {
                ElementSpec::Dict(items.iter().map(|(k, v)| (k.clone(), v.spec())).collect())
            }
            Element::Dataset(d) => ElementSpec::Dataset(Box::new(d.element_spec().clone())),
        }
    }

    /// The tensors of the element in order (depth first, dicts in insertion order).
    ///
    /// ```
    /// use npyflow::{Element, Tensor};
    /// let e = Element::Tuple(vec![Tensor::scalar(1i32).into(), Tensor::scalar(2.5f32).into()]);
    /// assert_eq!(e.tensors().len(), 2);
    /// ```
    pub fn tensors(&self) -> Vec<&Tensor> {
        let mut out = Vec::new();
        self.collect_tensors(&mut out);
        out
    }

    fn collect_tensors<'a>(&'a self, out: &mut Vec<&'a Tensor>) {
        match self {
            Element::Tensor(t) => out.push(t),
            Element::Tuple(items) => items.iter().for_each(|e| e.collect_tensors(out)),
            Element::Dict(items) => items.values().for_each(|e| e.collect_tensors(out)),
            Element::Dataset(_) => {}
        }
    }

    /// The tensor, if this element is a single tensor.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            Element::Tensor(t) => Some(t),
            _ => None,
        }
    }
}

impl From<Tensor> for Element {
    fn from(t: Tensor) -> Element {
        Element::Tensor(t)
    }
}

impl From<Dataset> for Element {
    fn from(d: Dataset) -> Element {
        Element::Dataset(d)
    }
}

/// `items` as Python writes a tuple: `(a, b)`, and `(a,)` for one item.
fn write_tuple(f: &mut fmt::Formatter<'_>, items: &[impl fmt::Display]) -> fmt::Result {
    f.write_str("(")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    if items.len() == 1 {
        f.write_str(",")?;
    }
    f.write_str(")")
}

/// `items` as Python writes a dict: `{'k': v, ...}`.
fn write_dict(
    f: &mut fmt::Formatter<'_>,
    items: &IndexMap<String, impl fmt::Display>,
) -> fmt::Result {
    f.write_str("{")?;
    for (i, (k, item)) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "'{k}': {item}")?;
    }
    f.write_str("}")
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Tensor(t) => write!(f, "{t}"),
            Element::Tuple(items) => write_tuple(f, items),
            Element::Dict(items) => write_dict(f, items),
            Element::Dataset(d) => write!(f, "{d:?}"),
        }
    }
}

/// A shape whose rank, or some of whose dimensions, may be unknown, like tf's `TensorShape`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartialShape(Option<SmallVec<[Option<usize>; 4]>>);

impl PartialShape {
    /// A shape of unknown rank.
    pub fn unknown() -> PartialShape {
        PartialShape(None)
    }

    /// A shape of known rank; `None` dimensions are unknown.
    pub fn new(dims: &[Option<usize>]) -> PartialShape {
        PartialShape(Some(dims.into()))
    }

    /// A fully known shape.
    pub fn known(dims: &[usize]) -> PartialShape {
        PartialShape(Some(dims.iter().map(|&d| Some(d)).collect()))
    }

    /// The dimensions, or `None` if the rank is unknown.
    pub fn dims(&self) -> Option<&[Option<usize>]> {
        self.0.as_deref()
    }

    /// The rank, if known.
    pub fn rank(&self) -> Option<usize> {
        self.0.as_ref().map(|d| d.len())
    }

    /// Whether every dimension is known.
    pub fn is_fully_defined(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|d| d.iter().all(Option::is_some))
    }

    /// Whether a tensor of `shape` fits this partial shape.
    pub fn is_compatible_with(&self, shape: &[usize]) -> bool {
        match &self.0 {
            None => true,
            Some(dims) => {
                dims.len() == shape.len()
                    && dims
                        .iter()
                        .zip(shape)
                        .all(|(d, &s)| d.is_none_or(|d| d == s))
            }
        }
    }

    /// The most precise shape that both `self` and `other` fit (tf's
    /// `most_specific_compatible_shape`): known where both agree, unknown where they differ.
    pub fn most_specific_compatible(&self, other: &PartialShape) -> PartialShape {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) if a.len() == b.len() => PartialShape(Some(
                a.iter()
                    .zip(b)
                    .map(|(x, y)| if x == y { *x } else { None })
                    .collect(),
            )),
            _ => PartialShape(None),
        }
    }
}

impl fmt::Display for PartialShape {
    /// Like Python's tuple of dims with `None` for unknown ones: `(None, 3)`, `(7,)`, `<unknown>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(dims) = &self.0 else {
            return f.write_str("<unknown>");
        };
        f.write_str("(")?;
        for (i, d) in dims.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match d {
                Some(d) => write!(f, "{d}")?,
                None => f.write_str("None")?,
            }
        }
        if dims.len() == 1 {
            f.write_str(",")?;
        }
        f.write_str(")")
    }
}

/// The dtype and (partial) shape of one tensor of an element, like `tf.TensorSpec`.
///
/// A string dtype of width 0 (`DType::Bytes(0)` or `DType::Unicode(0)`, NumPy's `S` and `U`
/// without a size) is a string of any width, as tf.data's `tf.string`: a spec a function's
/// output was inferred from says so, since its strings' lengths follow the data. A string
/// spec with a width admits that width only; a map whose declared spec has wider strings
/// than the function returns widens them, as NumPy's `astype` would.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorSpec {
    /// The element type.
    pub dtype: DType,
    /// The shape, possibly partly unknown.
    pub shape: PartialShape,
}

impl TensorSpec {
    /// The exact spec of a tensor.
    pub fn of(t: &Tensor) -> TensorSpec {
        TensorSpec {
            dtype: t.dtype(),
            shape: PartialShape::known(t.shape()),
        }
    }

    /// Whether `t` fits the spec: its dtype (strings of any width, for a string dtype of
    /// width 0) and its shape.
    pub fn is_compatible_with(&self, t: &Tensor) -> bool {
        dtype_fits(self.dtype, t.dtype()) && self.shape.is_compatible_with(t.shape())
    }

    /// A spec's dtype from its NumPy descriptor (`"<f4"`, `"|S16"`), where a string dtype may
    /// have no width (`"|S0"`, `"<U0"`: strings of any width). A file's dtype always has one
    /// ([`DType::parse_descr`] refuses `S0`).
    pub(crate) fn dtype_from_descr(descr: &str) -> Result<DType> {
        Ok(match descr.trim_start_matches(['|', '<', '>', '=']) {
            "S0" => DType::Bytes(0),
            "U0" => DType::Unicode(0),
            _ => DType::parse_descr(descr)?.0,
        })
    }

    /// `t` widened to fit the spec, where the spec is of strings wider than `t`'s (as NumPy
    /// casts strings to a wider dtype); `None` when `t` does not fit even so.
    fn widened(&self, t: &Tensor) -> Option<Tensor> {
        match self.dtype.string_width() {
            Some(n) if n > 0 => t
                .widen_strings(n)
                .ok()
                .filter(|w| self.is_compatible_with(w)),
            _ => None,
        }
    }
}

/// Whether a tensor of `dtype` fits a spec of dtype `spec`: the same dtype, or a string of
/// the spec's kind where the spec's width is 0 (any width).
pub(crate) fn dtype_fits(spec: DType, dtype: DType) -> bool {
    spec == dtype || (spec.string_width() == Some(0) && same_string_kind(spec, dtype))
}

/// The dtype of a value made for a spec of `dtype` (a placeholder, a padding value): a string
/// of any width as one character, the width NumPy gives an empty string; others as they are.
pub(crate) fn one_wide(dtype: DType) -> DType {
    match dtype.string_width() {
        Some(0) => dtype.with_string_width(1),
        _ => dtype,
    }
}

impl fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TensorSpec(shape={}, dtype={})", self.shape, self.dtype)
    }
}

/// The structure, dtypes and shapes of a dataset's elements, like tf.data's `element_spec`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElementSpec {
    /// A single tensor.
    Tensor(TensorSpec),
    /// A tuple.
    Tuple(Vec<ElementSpec>),
    /// A dict in insertion order.
    Dict(IndexMap<String, ElementSpec>),
    /// A dataset whose elements have the inner spec (tf.data's `DatasetSpec`).
    Dataset(Box<ElementSpec>),
}

impl ElementSpec {
    /// Whether `e` has this structure and each of its tensors fits its spec. Dicts match by
    /// key, whatever their order, as in tf.data.
    ///
    /// ```
    /// use npyflow::{Element, ElementSpec, PartialShape, Tensor, TensorSpec, DType};
    /// let spec = ElementSpec::Tensor(TensorSpec {
    ///     dtype: DType::Float32,
    ///     shape: PartialShape::new(&[None, Some(2)]),
    /// });
    /// let e: Element = Tensor::from_vec(vec![0f32; 6], &[3, 2]).unwrap().into();
    /// assert!(spec.is_compatible_with(&e));
    /// ```
    pub fn is_compatible_with(&self, e: &Element) -> bool {
        match (self, e) {
            (ElementSpec::Tensor(s), Element::Tensor(t)) => s.is_compatible_with(t),
            (ElementSpec::Tuple(s), Element::Tuple(t)) => {
                s.len() == t.len() && s.iter().zip(t).all(|(s, t)| s.is_compatible_with(t))
            }
            (ElementSpec::Dict(s), Element::Dict(t)) => {
                s.len() == t.len()
                    && s.iter()
                        .all(|(k, s)| t.get(k).is_some_and(|t| s.is_compatible_with(t)))
            }
            (ElementSpec::Dataset(s), Element::Dataset(d)) => {
                s.most_specific_compatible(d.element_spec()).is_some()
            }
            _ => false,
        }
    }

    /// The most precise spec that elements of both `self` and `other` satisfy, or `None` when
    /// their structures or dtypes differ (tf.data's rule for concatenate and the
    /// `sample_from_datasets` family).
    pub fn most_specific_compatible(&self, other: &ElementSpec) -> Option<ElementSpec> {
        Some(match (self, other) {
            (ElementSpec::Tensor(a), ElementSpec::Tensor(b))
                if a.dtype == b.dtype || same_string_kind(a.dtype, b.dtype) =>
            {
                ElementSpec::Tensor(TensorSpec {
                    // Strings of two widths: strings of any width.
                    dtype: if a.dtype == b.dtype {
                        a.dtype
                    } else {
                        a.dtype.with_string_width(0)
                    },
                    shape: a.shape.most_specific_compatible(&b.shape),
                })
            }
            (ElementSpec::Tuple(a), ElementSpec::Tuple(b)) if a.len() == b.len() => {
                ElementSpec::Tuple(
                    a.iter()
                        .zip(b)
                        .map(|(a, b)| a.most_specific_compatible(b))
                        .collect::<Option<_>>()?,
                )
            }
            (ElementSpec::Dict(a), ElementSpec::Dict(b)) if a.len() == b.len() => {
                ElementSpec::Dict(
                    a.iter()
                        .map(|(k, a)| Some((k.clone(), a.most_specific_compatible(b.get(k)?)?)))
                        .collect::<Option<_>>()?,
                )
            }
            (ElementSpec::Dataset(a), ElementSpec::Dataset(b)) => {
                ElementSpec::Dataset(Box::new(a.most_specific_compatible(b)?))
            }
            _ => return None,
        })
    }

    /// The spec with its strings of any width (see [`TensorSpec`]): the spec of a function's
    /// output inferred from one element, whose strings' lengths follow the data.
    pub(crate) fn with_any_string_width(&self) -> ElementSpec {
        self.map_specs(&mut |s| TensorSpec {
            dtype: s.dtype.with_string_width(0),
            shape: s.shape.clone(),
        })
    }

    /// `e` with each string tensor narrower than its spec's width widened to it, when that
    /// makes `e` fit this spec (a function returned shorter strings than its declared
    /// output spec); `None` when `e` does not fit even so.
    pub(crate) fn widened(&self, e: &Element) -> Option<Element> {
        Some(match (self, e) {
            (ElementSpec::Tensor(s), Element::Tensor(t)) if s.is_compatible_with(t) => e.clone(),
            (ElementSpec::Tensor(s), Element::Tensor(t)) => Element::Tensor(s.widened(t)?),
            (ElementSpec::Tuple(s), Element::Tuple(t)) if s.len() == t.len() => Element::Tuple(
                s.iter()
                    .zip(t)
                    .map(|(s, t)| s.widened(t))
                    .collect::<Option<_>>()?,
            ),
            (ElementSpec::Dict(s), Element::Dict(t)) if s.len() == t.len() => Element::Dict(
                t.iter()
                    .map(|(k, t)| Some((k.clone(), s.get(k)?.widened(t)?)))
                    .collect::<Option<_>>()?,
            ),
            _ if self.is_compatible_with(e) => e.clone(),
            _ => return None,
        })
    }

    /// The spec with each tensor spec replaced by `f(spec)`, structure kept.
    pub fn map_specs(&self, f: &mut impl FnMut(&TensorSpec) -> TensorSpec) -> ElementSpec {
        match self {
            ElementSpec::Tensor(s) => ElementSpec::Tensor(f(s)),
            ElementSpec::Tuple(items) => {
                ElementSpec::Tuple(items.iter().map(|s| s.map_specs(f)).collect())
            }
            ElementSpec::Dict(items) => ElementSpec::Dict(
                items
                    .iter()
                    .map(|(k, s)| (k.clone(), s.map_specs(f)))
                    .collect(),
            ),
            ElementSpec::Dataset(s) => ElementSpec::Dataset(s.clone()),
        }
    }

    /// The spec of a batch of these elements: a first dimension of `batch` (`None`: unknown)
    /// in front of every tensor.
    pub fn batched(&self, batch: Option<usize>) -> ElementSpec {
        match self {
            // A batch of datasets is a dataset of datasets (see [`Element::combine`]).
            ElementSpec::Dataset(_) => ElementSpec::Dataset(Box::new(self.clone())),
            ElementSpec::Tuple(items) => {
                ElementSpec::Tuple(items.iter().map(|s| s.batched(batch)).collect())
            }
            ElementSpec::Dict(items) => ElementSpec::Dict(
                items
                    .iter()
                    .map(|(k, s)| (k.clone(), s.batched(batch)))
                    .collect(),
            ),
            ElementSpec::Tensor(s) => ElementSpec::Tensor(TensorSpec {
                dtype: s.dtype,
                shape: match s.shape.dims() {
                    Some(d) => {
                        let mut dims = vec![batch];
                        dims.extend_from_slice(d);
                        PartialShape::new(&dims)
                    }
                    None => PartialShape::unknown(),
                },
            }),
        }
    }

    /// The spec of one row of these elements: every tensor's first dimension removed, and a
    /// batch of datasets' datasets. Fails if a tensor is a scalar, or a dataset is not a
    /// batch of datasets.
    pub fn unbatched(&self) -> Result<ElementSpec> {
        Ok(match self {
            ElementSpec::Dataset(inner) => match inner.as_ref() {
                ElementSpec::Dataset(_) => inner.as_ref().clone(),
                _ => {
                    return Err(Error::InvalidArgument(
                        "cannot unbatch a dataset element that is not a batch of datasets (a \
                         window, say): flat_map it instead"
                            .into(),
                    ))
                }
            },
            ElementSpec::Tuple(items) => {
                ElementSpec::Tuple(items.iter().map(|s| s.unbatched()).collect::<Result<_>>()?)
            }
            ElementSpec::Dict(items) => ElementSpec::Dict(
                items
                    .iter()
                    .map(|(k, s)| Ok((k.clone(), s.unbatched()?)))
                    .collect::<Result<_>>()?,
            ),
            ElementSpec::Tensor(s) => ElementSpec::Tensor(TensorSpec {
                dtype: s.dtype,
                shape: match s.shape.dims() {
                    Some([]) => {
                        return Err(Error::InvalidArgument(
                            "cannot unbatch an element with a scalar (rank-0) component".into(),
                        ))
                    }
                    Some(d) => PartialShape::new(&d[1..]),
                    None => PartialShape::unknown(),
                },
            }),
        })
    }

    /// Whether this spec holds a dataset anywhere.
    pub fn has_dataset(&self) -> bool {
        match self {
            ElementSpec::Tensor(_) => false,
            ElementSpec::Tuple(items) => items.iter().any(ElementSpec::has_dataset),
            ElementSpec::Dict(items) => items.values().any(ElementSpec::has_dataset),
            ElementSpec::Dataset(_) => true,
        }
    }

    /// Where each tensor of [`ElementSpec::tensor_specs`] sits, as Python indexes the
    /// element: `1` (a tuple index), `'image'` (a dict key), `[0]['a']` (nested), and the
    /// empty string for an element that is one tensor. Error messages name components so.
    ///
    /// ```
    /// use npyflow::{Element, Tensor};
    /// let e = Element::tuple([
    ///     Element::from(Tensor::scalar(1i64)),
    ///     Element::dict([("a", Tensor::scalar(2i64)), ("b", Tensor::scalar(3i64))]),
    /// ]);
    /// assert_eq!(e.spec().component_names(), ["0", "[1]['a']", "[1]['b']"]);
    /// assert_eq!(Element::from(Tensor::scalar(1i64)).spec().component_names(), [""]);
    /// ```
    pub fn component_names(&self) -> Vec<String> {
        fn walk(spec: &ElementSpec, path: &mut Vec<String>, out: &mut Vec<String>) {
            match spec {
                ElementSpec::Tensor(_) => out.push(match path.as_slice() {
                    [one] => one.clone(),
                    many => many.iter().map(|p| format!("[{p}]")).collect(),
                }),
                ElementSpec::Tuple(items) => {
                    for (i, item) in items.iter().enumerate() {
                        path.push(i.to_string());
                        walk(item, path, out);
                        path.pop();
                    }
                }
                ElementSpec::Dict(items) => {
                    for (k, item) in items {
                        path.push(format!("{k:?}").replace('"', "'"));
                        walk(item, path, out);
                        path.pop();
                    }
                }
                ElementSpec::Dataset(_) => {}
            }
        }
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), &mut out);
        out
    }

    /// The tensor specs in the order of [`Element::tensors`].
    pub fn tensor_specs(&self) -> Vec<&TensorSpec> {
        match self {
            ElementSpec::Tensor(s) => vec![s],
            ElementSpec::Tuple(items) => items.iter().flat_map(ElementSpec::tensor_specs).collect(),
            ElementSpec::Dict(items) => {
                items.values().flat_map(ElementSpec::tensor_specs).collect()
            }
            ElementSpec::Dataset(_) => Vec::new(),
        }
    }
}

impl fmt::Display for ElementSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElementSpec::Tensor(s) => write!(f, "{s}"),
            ElementSpec::Tuple(items) => write_tuple(f, items),
            ElementSpec::Dict(items) => write_dict(f, items),
            ElementSpec::Dataset(s) => write!(f, "DatasetSpec({s})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_shapes() {
        let s = PartialShape::new(&[None, Some(3)]);
        assert!(s.is_compatible_with(&[10, 3]));
        assert!(!s.is_compatible_with(&[10, 4]));
        assert!(!s.is_compatible_with(&[3]));
        assert!(PartialShape::unknown().is_compatible_with(&[1, 2, 3]));
        assert_eq!(s.to_string(), "(None, 3)");
        assert_eq!(PartialShape::known(&[7]).to_string(), "(7,)");
        assert_eq!(PartialShape::known(&[]).to_string(), "()");
        let m =
            PartialShape::known(&[2, 3]).most_specific_compatible(&PartialShape::known(&[5, 3]));
        assert_eq!(m, s);
        assert_eq!(
            PartialShape::known(&[2]).most_specific_compatible(&PartialShape::known(&[2, 3])),
            PartialShape::unknown()
        );
        assert!(!s.is_fully_defined());
        assert!(PartialShape::known(&[2]).is_fully_defined());
    }

    #[test]
    fn specs_follow_structure() {
        let img = Tensor::from_vec(vec![0u8; 12], &[2, 2, 3]).unwrap();
        let label = Tensor::scalar(3i64);
        let mut d = IndexMap::new();
        d.insert("label".to_string(), Element::from(label.clone()));
        d.insert("image".to_string(), Element::from(img.clone()));
        let e = Element::Tuple(vec![img.clone().into(), Element::Dict(d)]);
        let spec = e.spec();
        assert!(spec.is_compatible_with(&e));
        assert_eq!(
            spec.to_string(),
            "(TensorSpec(shape=(2, 2, 3), dtype=uint8), {'label': TensorSpec(shape=(), \
             dtype=int64), 'image': TensorSpec(shape=(2, 2, 3), dtype=uint8)})"
        );
        assert_eq!(e.tensors()[1], &label);
        assert_eq!(spec.tensor_specs().len(), 3);
        // Same keys in another order are the same structure; another key is not.
        let mut d2 = IndexMap::new();
        d2.insert("image".to_string(), Element::from(img.clone()));
        d2.insert("label".to_string(), Element::from(label));
        let e2 = Element::Tuple(vec![img.clone().into(), Element::Dict(d2.clone())]);
        assert!(spec.is_compatible_with(&e2));
        d2.insert("other".to_string(), Element::from(img.clone()));
        d2.swap_remove("label");
        let e3 = Element::Tuple(vec![img.into(), Element::Dict(d2)]);
        assert!(!spec.is_compatible_with(&e3));
    }
}
