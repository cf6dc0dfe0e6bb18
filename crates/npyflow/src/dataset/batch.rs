//! `batch` and `padded_batch`: consecutive elements stacked along a new first axis.

use std::sync::Arc;

use super::{require, BoxIter, Cardinality, Dataset, Node, RandomAccess};
use crate::element::{Element, ElementSpec, PartialShape, TensorSpec};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// How one batch is made from its elements.
#[derive(Clone)]
enum Assemble {
    Stack,
    /// For each tensor of the element (in [`Element::tensors`] order): the shape to pad to
    /// (unknown dimensions: the largest in the batch) and the padding value.
    Pad(Arc<Vec<(PartialShape, Tensor)>>),
}

impl Assemble {
    fn run(&self, elements: &[Element]) -> Result<Element> {
        match self {
            Assemble::Stack => Element::combine(elements, &mut |ts| {
                let owned: Vec<Tensor> = ts.iter().map(|t| (*t).clone()).collect();
                Tensor::stack(&owned)
            }),
            Assemble::Pad(pads) => {
                let mut k = 0;
                Element::combine(elements, &mut |ts| {
                    let (shape, fill) = &pads[k];
                    k += 1;
                    pad_and_stack(ts, shape, fill)
                })
            }
        }
    }
}

fn pad_and_stack(ts: &[&Tensor], shape: &PartialShape, fill: &Tensor) -> Result<Tensor> {
    let rank = ts[0].ndim();
    let dims = shape.dims().map_or_else(|| vec![None; rank], <[_]>::to_vec);
    let mut target = Vec::with_capacity(rank);
    for (axis, want) in dims.iter().enumerate() {
        let largest = ts
            .iter()
            .map(|t| t.shape().get(axis).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        match want {
            Some(w) if *w < largest => {
                return Err(Error::Pipeline(format!(
                    "padded_batch: cannot pad a dimension of {largest} to the smaller padded \
                     shape {shape}"
                )))
            }
            Some(w) => target.push(*w),
            None => target.push(largest),
        }
    }
    let padded = ts
        .iter()
        .map(|t| {
            if t.ndim() != rank {
                return Err(Error::Pipeline(format!(
                    "padded_batch: elements of rank {} and {rank} in one batch",
                    t.ndim()
                )));
            }
            t.pad_to(&target, fill)
        })
        .collect::<Result<Vec<_>>>()?;
    Tensor::stack(&padded)
}

struct Batch {
    input: Dataset,
    batch_size: usize,
    drop_remainder: bool,
    assemble: Assemble,
    spec: ElementSpec,
}

impl Node for Batch {
    fn name(&self) -> &'static str {
        match self.assemble {
            Assemble::Stack => "Batch",
            Assemble::Pad(_) => "PaddedBatch",
        }
    }
    fn spec(&self) -> &ElementSpec {
        &self.spec
    }
    fn cardinality(&self) -> Cardinality {
        let b = self.batch_size as u64;
        let drop = self.drop_remainder;
        self.input
            .cardinality()
            .map(|n| if drop { n / b } else { n.div_ceil(b) })
    }
    fn open(&self) -> Result<BoxIter> {
        let mut input = self.input.open()?;
        let (size, drop) = (self.batch_size, self.drop_remainder);
        let assemble = self.assemble.clone();
        let mut pending: Vec<Element> = Vec::with_capacity(size);
        Ok(Box::new(move || {
            pending.clear();
            let mut error = None;
            let mut taken = 0;
            // An error takes the place of the whole batch it falls in, and the batch's other
            // elements go with it: batch i is always made of elements i*size.., whether read
            // in order or by index.
            while taken < size {
                match input.next() {
                    Some(Ok(e)) => pending.push(e),
                    Some(Err(e)) => {
                        error.get_or_insert(e);
                    }
                    None => break,
                }
                taken += 1;
            }
            if drop && taken < size {
                return None;
            }
            if let Some(e) = error {
                return Some(Err(e));
            }
            if pending.is_empty() || (drop && pending.len() < size) {
                return None;
            }
            Some(assemble.run(&pending))
        }))
    }
    fn random_access(&self) -> Option<&dyn RandomAccess> {
        self.input
            .is_random_access()
            .then_some(self as &dyn RandomAccess)
    }
}

impl RandomAccess for Batch {
    fn len(&self) -> u64 {
        match self.cardinality() {
            Cardinality::Finite(n) => n,
            _ => 0,
        }
    }
    fn get(&self, index: u64) -> Result<Element> {
        let n = self.input.random_access().map_or(0, |r| r.len());
        let start = index * self.batch_size as u64;
        let end = (start + self.batch_size as u64).min(n);
        let elements = (start..end)
            .map(|i| self.input.get(i))
            .collect::<Result<Vec<_>>>()?;
        self.assemble.run(&elements)
    }
}

fn check_batch_size(op: &str, batch_size: usize) -> Result<()> {
    require(batch_size > 0, || {
        format!("{op}: batch_size must be greater than zero, got {batch_size}")
    })
}

impl Dataset {
    /// tf.data's `batch(batch_size, drop_remainder)`: `batch_size` consecutive elements
    /// stacked along a new first axis; the last batch is smaller, or dropped with
    /// `drop_remainder`. Elements of one batch must have the same shapes (see
    /// [`padded_batch`](Dataset::padded_batch)). A `batch_size` of 0 is refused.
    ///
    /// An error from the input takes the place of the batch it falls in, and the batch's other
    /// elements are dropped with it. tf.data drops only those gathered before the error and
    /// starts the next batch after it, which shifts every later batch; npyflow keeps batch
    /// *i* made of the same elements however the pass runs.
    ///
    /// ```
    /// use npyflow::Dataset;
    /// let ds = Dataset::range(0, 8, 1)?.batch(3, false)?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["[0 1 2]", "[3 4 5]", "[6 7]"]);
    /// assert_eq!(Dataset::range(0, 8, 1)?.batch(3, true)?.to_vec()?.len(), 2);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn batch(&self, batch_size: usize, drop_remainder: bool) -> Result<Dataset> {
        check_batch_size("batch", batch_size)?;
        require(!self.element_spec().has_dataset(), || {
            "batch: elements holding datasets cannot be batched".to_string()
        })?;
        let spec = self
            .element_spec()
            .batched(drop_remainder.then_some(batch_size));
        Ok(Dataset::from_node(Batch {
            input: self.clone(),
            batch_size,
            drop_remainder,
            assemble: Assemble::Stack,
            spec,
        }))
    }

    /// tf.data's `padded_batch(batch_size, padded_shapes, padding_values, drop_remainder)`:
    /// like [`batch`](Dataset::batch), with each tensor first padded at the end of its axes.
    ///
    /// `padded_shapes` gives one shape per tensor of the element, in
    /// [`Element::tensors`] order (depth first, dicts in key order); an unknown dimension
    /// (`None`) is padded to the largest in the batch. When `None`, every tensor's spec shape
    /// is used, so unknown dimensions pad to the largest. `padding_values` gives one scalar
    /// per tensor, of its dtype (zeros, or empty strings, when `None`). A known padded
    /// dimension smaller than an element's is an error at that batch.
    ///
    /// Differs from tf.data: shapes and values are given as flat lists rather than
    /// structures mirroring the element.
    ///
    /// ```
    /// use npyflow::{Dataset, Tensor};
    /// // tf.data's documented example: range(1, 5).map(lambda x: fill([x], x)).padded_batch(2)
    /// let ds = Dataset::range(1, 5, 1)?
    ///     .map(|x| {
    ///         let n = x.into_tensor()?.to_i64_scalar("x")?;
    ///         Ok(Tensor::from_vec(vec![n; n as usize], &[n as usize])?.into())
    ///     })?
    ///     .padded_batch(2, None, None, false)?;
    /// let got: Vec<String> = ds.to_vec()?.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(got, ["[[1 0]\n [2 2]]", "[[3 3 3 0]\n [4 4 4 4]]"]);
    /// # Ok::<(), npyflow::Error>(())
    /// ```
    pub fn padded_batch(
        &self,
        batch_size: usize,
        padded_shapes: Option<Vec<PartialShape>>,
        padding_values: Option<Vec<Tensor>>,
        drop_remainder: bool,
    ) -> Result<Dataset> {
        check_batch_size("padded_batch", batch_size)?;
        let specs: Vec<TensorSpec> = self
            .element_spec()
            .tensor_specs()
            .into_iter()
            .cloned()
            .collect();
        require(!self.element_spec().has_dataset(), || {
            "padded_batch: elements holding datasets cannot be batched".to_string()
        })?;
        let shapes = match padded_shapes {
            Some(s) => {
                require(s.len() == specs.len(), || {
                    format!(
                        "padded_batch: {} padded shapes for {} tensors per element",
                        s.len(),
                        specs.len()
                    )
                })?;
                for (i, (want, spec)) in s.iter().zip(&specs).enumerate() {
                    let fits = match (want.dims(), spec.shape.dims()) {
                        (Some(w), Some(have)) => {
                            w.len() == have.len()
                                && w.iter().zip(have).all(|(w, h)| match (w, h) {
                                    (Some(w), Some(h)) => w >= h,
                                    _ => true,
                                })
                        }
                        _ => true,
                    };
                    require(fits, || {
                        format!(
                            "padded_batch: the padded shape {want} of tensor {i} does not fit \
                             its shape {}",
                            spec.shape
                        )
                    })?;
                }
                s
            }
            None => specs.iter().map(|s| s.shape.clone()).collect(),
        };
        let values = match padding_values {
            Some(v) => {
                require(v.len() == specs.len(), || {
                    format!(
                        "padded_batch: {} padding values for {} tensors per element",
                        v.len(),
                        specs.len()
                    )
                })?;
                for (i, (v, spec)) in v.iter().zip(&specs).enumerate() {
                    require(v.ndim() == 0 && v.dtype() == spec.dtype, || {
                        format!(
                            "padded_batch: padding value {i} must be a {} scalar, got a {} \
                             tensor of shape {:?}",
                            spec.dtype,
                            v.dtype(),
                            v.shape()
                        )
                    })?;
                }
                v
            }
            None => specs
                .iter()
                .map(|s| Tensor::zeros(s.dtype, &[]))
                .collect::<Result<_>>()?,
        };
        let mut k = 0;
        let spec = self
            .element_spec()
            .map_specs(&mut |s| {
                let shape = &shapes[k];
                k += 1;
                TensorSpec {
                    dtype: s.dtype,
                    shape: shape.clone(),
                }
            })
            .batched(drop_remainder.then_some(batch_size));
        Ok(Dataset::from_node(Batch {
            input: self.clone(),
            batch_size,
            drop_remainder,
            assemble: Assemble::Pad(Arc::new(shapes.into_iter().zip(values).collect())),
            spec,
        }))
    }
}
