//! Elements (what a dataset yields) and element specs (what it promises to yield).
//!
//! An [`Element`] is a tensor, or a tuple or dict of elements, nested as deep as needed: the
//! same structures tf.data allows. An [`ElementSpec`] mirrors it with a [`TensorSpec`] per
//! tensor, whose shape may leave dimensions, or the rank, unknown.

use std::fmt;

use indexmap::IndexMap;
use smallvec::SmallVec;

use crate::dtype::DType;
use crate::tensor::Tensor;

/// One element of a dataset: a tensor, a tuple of elements, or a dict of elements whose keys
/// keep their insertion order.
#[derive(Clone, Debug, PartialEq)]
pub enum Element {
    /// A single tensor.
    Tensor(Tensor),
    /// A tuple, like `(image, label)`.
    Tuple(Vec<Element>),
    /// A dict, like `{"image": ..., "label": ...}`, in insertion order.
    Dict(IndexMap<String, Element>),
}

impl Element {
    /// The spec this element satisfies most precisely (every dimension known).
    pub fn spec(&self) -> ElementSpec {
        match self {
            Element::Tensor(t) => ElementSpec::Tensor(TensorSpec::of(t)),
            Element::Tuple(items) => ElementSpec::Tuple(items.iter().map(Element::spec).collect()),
            Element::Dict(items) => {
                ElementSpec::Dict(items.iter().map(|(k, v)| (k.clone(), v.spec())).collect())
            }
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

    /// Whether `t` fits the spec.
    pub fn is_compatible_with(&self, t: &Tensor) -> bool {
        self.dtype == t.dtype() && self.shape.is_compatible_with(t.shape())
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
            _ => false,
        }
    }

    /// The tensor specs in the order of [`Element::tensors`].
    pub fn tensor_specs(&self) -> Vec<&TensorSpec> {
        match self {
            ElementSpec::Tensor(s) => vec![s],
            ElementSpec::Tuple(items) => items.iter().flat_map(ElementSpec::tensor_specs).collect(),
            ElementSpec::Dict(items) => {
                items.values().flat_map(ElementSpec::tensor_specs).collect()
            }
        }
    }
}

impl fmt::Display for ElementSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElementSpec::Tensor(s) => write!(f, "{s}"),
            ElementSpec::Tuple(items) => {
                f.write_str("(")?;
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{s}")?;
                }
                if items.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
            ElementSpec::Dict(items) => {
                f.write_str("{")?;
                for (i, (k, s)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "'{k}': {s}")?;
                }
                f.write_str("}")
            }
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
