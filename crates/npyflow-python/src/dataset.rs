//! The core dataset as a Python object, its sources and transformations. The pure-Python
//! `npyflow.Dataset` normalizes tf.data's arguments and calls these; they translate to the
//! core and hold no pipeline logic of their own.

use std::path::PathBuf;
use std::sync::Arc;

use npyflow::dataset::{
    count_from_tf, positive_from_tf, BatchOptions, BucketOptions, InterleaveOptions, MapOptions,
    Parallelism, ShuffleOptions,
};
use npyflow::{Dataset, Element, PartialShape, Tensor};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::convert::{
    dtype_of, element_to_py, py_to_element, py_to_tensor, shape_from_py, spec_from_py, spec_to_py,
    tensor_to_array, truth, unwrap_dataset, wrap_dataset, Scalars,
};
use crate::errors::{core, with_python, Trace};
pub use crate::handle::CoreDataset;
use crate::iter::DatasetIterator;

pub(crate) fn wrap(py: Python<'_>, result: npyflow::Result<Dataset>) -> PyResult<CoreDataset> {
    core(py, result).map(|inner| CoreDataset { inner })
}

/// `value` as a count that must not be negative (the core's check, as a ValueError).
fn non_negative(op: &str, name: &str, value: i64) -> PyResult<u64> {
    count_from_tf(op, name, value).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// `value` as a size that must be positive (the core's check, as a ValueError).
fn positive(op: &str, name: &str, value: i64) -> PyResult<u64> {
    positive_from_tf(op, name, value).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// A Python callable a transformation runs.
struct UserFn {
    f: Py<PyAny>,
}

impl UserFn {
    fn new(f: Py<PyAny>) -> Arc<UserFn> {
        Arc::new(UserFn { f })
    }

    /// Calls the function on an element as tf.data does: a tuple's parts are the positional
    /// arguments, anything else is the one argument. Tensors arrive as NumPy arrays (0-d
    /// arrays for scalars, but 0-d strings as iteration yields them), windows as datasets.
    fn call<'py>(&self, py: Python<'py>, element: Element) -> PyResult<Bound<'py, PyAny>> {
        let f = self.f.bind(py);
        match element {
            Element::Tuple(items) => {
                let args = items
                    .into_iter()
                    .map(|e| element_to_py(py, e, Scalars::Arrays))
                    .collect::<PyResult<Vec<_>>>()?;
                f.call1(PyTuple::new(py, args)?)
            }
            other => f.call1((element_to_py(py, other, Scalars::Arrays)?,)),
        }
    }
}

/// The Python function `f` as the predicate of `op` (filter, take_while): what it returns
/// must be a bool, as `op` takes one.
fn predicate(
    f: Py<PyAny>,
    op: &'static str,
) -> impl Fn(&Element) -> npyflow::Result<bool> + Send + Sync + 'static {
    let uf = UserFn::new(f);
    move |e| {
        with_python(|py| {
            let out = uf.call(py, e.clone())?;
            truth(py, &out, op)
        })
    }
}

fn returned_dataset(py: Python<'_>, obj: &Bound<'_, PyAny>, op: &str) -> PyResult<Dataset> {
    unwrap_dataset(py, obj)?.ok_or_else(|| {
        PyTypeError::new_err(format!(
            "{op}: the function must return a Dataset, got {}",
            obj.get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string())
        ))
    })
}

/// A pair `(a, b)` returned by a function (a tuple or list of two).
fn returned_pair<'py>(
    obj: &Bound<'py, PyAny>,
    op: &str,
    what: &str,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let parts: Option<Vec<Bound<'py, PyAny>>> = if let Ok(t) = obj.cast::<PyTuple>() {
        Some(t.iter().collect())
    } else if let Ok(l) = obj.cast::<PyList>() {
        Some(l.iter().collect())
    } else {
        None
    };
    match parts {
        Some(mut p) if p.len() == 2 => {
            let b = p.pop().expect("two parts");
            let a = p.pop().expect("two parts");
            Ok((a, b))
        }
        _ => Err(PyTypeError::new_err(format!(
            "{op}: the function must return {what}, got {}",
            obj.repr()?
        ))),
    }
}

fn int_scalar(py: Python<'_>, value: i64) -> PyResult<Bound<'_, PyAny>> {
    tensor_to_array(py, Tensor::scalar(value))
}

fn shapes_from_py(shapes: Option<Vec<Bound<'_, PyAny>>>) -> PyResult<Option<Vec<PartialShape>>> {
    shapes
        .map(|v| v.iter().map(|s| shape_from_py(s, true)).collect())
        .transpose()
}

fn values_from_py(
    py: Python<'_>,
    values: Option<Vec<Bound<'_, PyAny>>>,
) -> PyResult<Option<Vec<Tensor>>> {
    values
        .map(|v| v.iter().map(|x| py_to_tensor(py, x)).collect())
        .transpose()
}

pub(crate) fn cores(datasets: &[PyRef<'_, CoreDataset>]) -> Vec<Dataset> {
    datasets.iter().map(|d| d.inner.clone()).collect()
}

#[pymethods]
impl CoreDataset {
    /// The element spec, as TensorSpec objects in tuples and dicts.
    #[getter]
    fn element_spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spec_to_py(py, self.inner.element_spec())
    }

    /// The operation that made the dataset, as tf.data names its dataset classes
    /// (`TensorSlice`, `Batch`, ...).
    #[getter]
    fn name(&self) -> String {
        let debug = format!("{:?}", self.inner);
        let name = debug
            .strip_prefix('<')
            .and_then(|s| s.split(" element_spec=").next())
            .unwrap_or("Dataset");
        name.strip_suffix("Dataset").unwrap_or(name).to_owned()
    }

    fn cardinality(&self) -> i64 {
        self.inner.cardinality().as_i64()
    }

    fn is_random_access(&self) -> bool {
        self.inner.is_random_access()
    }

    /// A new pass. `threaded`: the pipeline runs threads (prefetch), so the pass is driven
    /// from its own thread and a wait for it can be interrupted with Ctrl-C. `tensors`: it
    /// yields `npyflow.Tensor` arrays and scalars with `.numpy()` rather than plain NumPy.
    #[pyo3(signature = (threaded, tensors=false))]
    fn iter(&self, threaded: bool, tensors: bool) -> PyResult<DatasetIterator> {
        let scalars = if tensors {
            Scalars::Tensors
        } else {
            Scalars::Numpy
        };
        DatasetIterator::new(&self.inner, threaded, scalars)
    }

    #[pyo3(signature = (f, signature=None, num_parallel_calls=None, deterministic=None))]
    fn map(
        &self,
        py: Python<'_>,
        f: Py<PyAny>,
        signature: Option<Bound<'_, PyAny>>,
        num_parallel_calls: Option<i64>,
        deterministic: Option<bool>,
    ) -> PyResult<CoreDataset> {
        let uf = UserFn::new(f);
        let trace = Trace::start();
        let tracer = trace.clone();
        let mut options = core(py, MapOptions::from_tf(num_parallel_calls, deterministic))?;
        // Under AUTOTUNE, whether the stage's threads beat one call at a time is measured
        // while it runs: a function holding the GIL gains nothing from threads, and loses to
        // the GIL's hand-overs.
        options.parallelism = options.parallelism.map(Parallelism::measure_gain);
        let run = move |e: Element| {
            tracer.run(|py| {
                let out = uf.call(py, e)?;
                py_to_element(py, &out, true)
            })
        };
        options = match signature {
            Some(sig) => options.output_spec(spec_from_py(py, &sig)?),
            // Never on made-up values: on the first element of the input.
            None => options.spec_from_first_element(),
        };
        let result = self.inner.map(run, options);
        let hint = "; give output_signature= to declare it instead";
        trace
            .finish(py, "map", hint, result)
            .map(|inner| CoreDataset { inner })
    }

    fn map_ops(
        &self,
        py: Python<'_>,
        ops: Vec<(String, Bound<'_, PyTuple>, Option<Bound<'_, PyAny>>)>,
        num_parallel_calls: Option<i64>,
        deterministic: Option<bool>,
    ) -> PyResult<CoreDataset> {
        // The core's ops: consecutive ones fuse into one pass, and into a following batch.
        let options = core(py, MapOptions::from_tf(num_parallel_calls, deterministic))?;
        let mut ds = self.inner.clone();
        for (kind, params, component) in ops {
            let op = match kind.as_str() {
                "cast" => {
                    let descr = numpy::PyArrayDescr::new(py, params.get_item(0)?)?;
                    npyflow::ops::cast(dtype_of(&descr)?.0)
                }
                "scale" => npyflow::ops::affine(
                    params.get_item(0)?.extract()?,
                    params.get_item(1)?.extract()?,
                ),
                "normalize" => {
                    let mean: Vec<f64> = params.get_item(0)?.extract()?;
                    let std: Vec<f64> = params.get_item(1)?.extract()?;
                    npyflow::ops::normalize(&mean, &std)
                }
                "one_hot" => npyflow::ops::one_hot(params.get_item(0)?.extract()?),
                "reshape" => {
                    let shape: Vec<i64> = params.get_item(0)?.extract()?;
                    npyflow::ops::reshape(&shape)
                }
                "transpose" => {
                    let perm: Vec<usize> = params.get_item(0)?.extract()?;
                    npyflow::ops::transpose(&perm)
                }
                "random_flip" => npyflow::ops::random_flip(
                    params.get_item(0)?.extract()?,
                    params.get_item(1)?.extract()?,
                ),
                "random_crop" => {
                    let size: Vec<usize> = params.get_item(0)?.extract()?;
                    npyflow::ops::random_crop(&size, params.get_item(1)?.extract()?)
                }
                other => return Err(PyValueError::new_err(format!("unknown op {other:?}"))),
            };
            let op = match component {
                None => op,
                Some(c) if c.is_none() => op,
                Some(c) => match c.extract::<String>() {
                    Ok(k) => op.key(&k),
                    Err(_) => {
                        op.component(non_negative("ops", "component", c.extract()?)? as usize)
                    }
                },
            };
            let next = ds.map(op, options.clone());
            ds = core(py, next)?;
        }
        Ok(CoreDataset { inner: ds })
    }

    /// A map by an op graph traced from the Python function `f` (see `npyflow/_trace.py`):
    /// `nodes` as `(kind, args)` in order, `output` the structure of node ids; `f` computes
    /// the elements whose result NumPy leaves to the platform.
    #[pyo3(signature = (nodes, output, f, num_parallel_calls=None, deterministic=None))]
    fn map_graph(
        &self,
        py: Python<'_>,
        nodes: Vec<(String, Bound<'_, PyTuple>)>,
        output: Bound<'_, PyAny>,
        f: Py<PyAny>,
        num_parallel_calls: Option<i64>,
        deterministic: Option<bool>,
    ) -> PyResult<CoreDataset> {
        let options = core(py, MapOptions::from_tf(num_parallel_calls, deterministic))?;
        let graph = build_graph(py, self.inner.element_spec(), &nodes, &output)?;
        let uf = UserFn::new(f);
        let graph = graph.with_fallback(move |e| {
            with_python(|py| {
                let out = uf.call(py, e)?;
                py_to_element(py, &out, true)
            })
        });
        wrap(py, self.inner.map(npyflow::ops::graph(graph), options))
    }

    /// A filter by a traced predicate (see `map_graph`); its output must be a bool scalar.
    fn filter_graph(
        &self,
        py: Python<'_>,
        nodes: Vec<(String, Bound<'_, PyTuple>)>,
        output: Bound<'_, PyAny>,
        f: Py<PyAny>,
    ) -> PyResult<CoreDataset> {
        let graph = build_graph(py, self.inner.element_spec(), &nodes, &output)?;
        let scalar_bool = npyflow::ElementSpec::Tensor(npyflow::TensorSpec {
            dtype: npyflow::DType::Bool,
            shape: PartialShape::known(&[]),
        });
        if graph.output_spec() != &scalar_bool {
            return Err(PyTypeError::new_err(
                "filter: the traced predicate does not return a bool scalar",
            ));
        }
        let uf = UserFn::new(f);
        let graph = graph.with_fallback(move |e| {
            with_python(|py| {
                let out = uf.call(py, e)?;
                py_to_element(py, &out, true)
            })
        });
        Ok(CoreDataset {
            inner: self.inner.filter(move |e: &Element| {
                let out = graph.apply(e.clone())?;
                out.into_tensor()?.to_bool_scalar("filter's predicate")
            }),
        })
    }

    fn filter(&self, f: Py<PyAny>) -> CoreDataset {
        CoreDataset {
            inner: self.inner.filter(predicate(f, "filter")),
        }
    }

    fn take_while(&self, f: Py<PyAny>) -> CoreDataset {
        CoreDataset {
            inner: self.inner.take_while(predicate(f, "take_while")),
        }
    }

    fn flat_map(&self, py: Python<'_>, f: Py<PyAny>) -> PyResult<CoreDataset> {
        let uf = UserFn::new(f);
        let trace = Trace::start();
        let tracer = trace.clone();
        // The spec comes from the dataset made for the first element, never from made-up
        // values (a function may open the file an element names).
        let result = self.inner.flat_map_with(
            move |e| {
                tracer.run(|py| {
                    let out = uf.call(py, e)?;
                    returned_dataset(py, &out, "flat_map")
                })
            },
            InterleaveOptions::new().spec_from_first_element(),
        );
        trace
            .finish(py, "flat_map", "", result)
            .map(|inner| CoreDataset { inner })
    }

    #[pyo3(signature = (f, cycle_length, block_length, num_parallel_calls=None, deterministic=None))]
    fn interleave(
        &self,
        py: Python<'_>,
        f: Py<PyAny>,
        cycle_length: Option<i64>,
        block_length: Option<i64>,
        num_parallel_calls: Option<i64>,
        deterministic: Option<bool>,
    ) -> PyResult<CoreDataset> {
        let options = core(
            py,
            InterleaveOptions::from_tf(
                cycle_length,
                block_length,
                num_parallel_calls,
                deterministic,
            ),
        )?
        .spec_from_first_element();
        let uf = UserFn::new(f);
        let trace = Trace::start();
        let tracer = trace.clone();
        let run = move |e| {
            tracer.run(|py| {
                let out = uf.call(py, e)?;
                returned_dataset(py, &out, "interleave")
            })
        };
        let result = self.inner.interleave(run, options);
        trace
            .finish(py, "interleave", "", result)
            .map(|inner| CoreDataset { inner })
    }

    #[pyo3(signature = (batch_size, drop_remainder, num_parallel_calls=None, deterministic=None))]
    fn batch(
        &self,
        py: Python<'_>,
        batch_size: i64,
        drop_remainder: bool,
        num_parallel_calls: Option<i64>,
        deterministic: Option<bool>,
    ) -> PyResult<CoreDataset> {
        let n = non_negative("batch", "batch_size", batch_size)? as usize;
        let options = core(
            py,
            BatchOptions::from_tf(drop_remainder, num_parallel_calls, deterministic),
        )?;
        wrap(py, self.inner.batch(n, options))
    }

    #[pyo3(signature = (batch_size, padded_shapes, padding_values, drop_remainder))]
    fn padded_batch(
        &self,
        py: Python<'_>,
        batch_size: i64,
        padded_shapes: Option<Vec<Bound<'_, PyAny>>>,
        padding_values: Option<Vec<Bound<'_, PyAny>>>,
        drop_remainder: bool,
    ) -> PyResult<CoreDataset> {
        let n = non_negative("padded_batch", "batch_size", batch_size)?;
        let shapes = shapes_from_py(padded_shapes)?;
        let values = values_from_py(py, padding_values)?;
        wrap(
            py,
            self.inner
                .padded_batch(n as usize, shapes, values, drop_remainder),
        )
    }

    fn unbatch(&self, py: Python<'_>) -> PyResult<CoreDataset> {
        wrap(py, self.inner.unbatch())
    }

    fn rebatch(
        &self,
        py: Python<'_>,
        batch_sizes: Vec<i64>,
        drop_remainder: bool,
    ) -> PyResult<CoreDataset> {
        let sizes = batch_sizes
            .iter()
            .map(|&b| non_negative("rebatch", "batch_size", b).map(|b| b as usize))
            .collect::<PyResult<Vec<_>>>()?;
        wrap(py, self.inner.rebatch(&sizes, drop_remainder))
    }

    #[pyo3(signature = (buffer_size, seed, reshuffle_each_iteration))]
    fn shuffle(
        &self,
        py: Python<'_>,
        buffer_size: i64,
        seed: Option<i64>,
        reshuffle_each_iteration: bool,
    ) -> PyResult<CoreDataset> {
        let n = positive("shuffle", "buffer_size", buffer_size)?;
        wrap(
            py,
            self.inner.shuffle(
                n as usize,
                ShuffleOptions {
                    seed: seed.map(|s| s as u64),
                    reshuffle_each_iteration,
                },
            ),
        )
    }

    #[pyo3(signature = (seed, reshuffle_each_iteration))]
    fn global_shuffle(
        &self,
        py: Python<'_>,
        seed: Option<i64>,
        reshuffle_each_iteration: bool,
    ) -> PyResult<CoreDataset> {
        wrap(
            py,
            self.inner.global_shuffle(ShuffleOptions {
                seed: seed.map(|s| s as u64),
                reshuffle_each_iteration,
            }),
        )
    }

    fn block_shuffle(
        &self,
        py: Python<'_>,
        block_size: u64,
        window: u64,
        seed: Option<i64>,
        reshuffle_each_iteration: bool,
    ) -> PyResult<CoreDataset> {
        wrap(
            py,
            self.inner.block_shuffle(
                block_size,
                window,
                seed.map(|s| s as u64),
                reshuffle_each_iteration,
            ),
        )
    }

    #[pyo3(signature = (count))]
    fn repeat(&self, count: Option<i64>) -> CoreDataset {
        CoreDataset {
            inner: self.inner.repeat(count.and_then(|c| u64::try_from(c).ok())),
        }
    }

    fn take(&self, count: i64) -> CoreDataset {
        CoreDataset {
            inner: self.inner.take(count),
        }
    }

    fn skip(&self, count: i64) -> CoreDataset {
        CoreDataset {
            inner: self.inner.skip(count),
        }
    }

    fn distributed_batch(
        &self,
        py: Python<'_>,
        batch_size: i64,
        num_workers: i64,
        worker_index: i64,
    ) -> PyResult<CoreDataset> {
        let b = positive("distributed_batch", "batch_size", batch_size)? as usize;
        let w = positive("distributed_batch", "num_workers", num_workers)?;
        let i = non_negative("distributed_batch", "worker_index", worker_index)?;
        wrap(py, self.inner.distributed_batch(b, w, i))
    }

    fn shard(&self, py: Python<'_>, num_shards: i64, index: i64) -> PyResult<CoreDataset> {
        let n = positive("shard", "num_shards", num_shards)?;
        let i = non_negative("shard", "index", index)?;
        wrap(py, self.inner.shard(n, i))
    }

    fn assert_cardinality(&self, py: Python<'_>, expected: i64) -> PyResult<CoreDataset> {
        wrap(py, self.inner.assert_cardinality(expected))
    }

    fn enumerate(&self, start: i64) -> CoreDataset {
        CoreDataset {
            inner: self.inner.enumerate(start),
        }
    }

    #[pyo3(signature = (size, shift, stride, drop_remainder))]
    fn window(
        &self,
        py: Python<'_>,
        size: i64,
        shift: Option<i64>,
        stride: i64,
        drop_remainder: bool,
    ) -> PyResult<CoreDataset> {
        let size = positive("window", "size", size)?;
        let shift = shift.map(|s| positive("window", "shift", s)).transpose()?;
        let stride = positive("window", "stride", stride)?;
        wrap(py, self.inner.window(size, shift, stride, drop_remainder))
    }

    fn scan(
        &self,
        py: Python<'_>,
        initial_state: Bound<'_, PyAny>,
        f: Py<PyAny>,
    ) -> PyResult<CoreDataset> {
        let initial = py_to_element(py, &initial_state, false)?;
        let uf = UserFn::new(f);
        let trace = Trace::start();
        let tracer = trace.clone();
        let result = self.inner.scan(initial, move |state, e| {
            tracer.run(|py| {
                let s = element_to_py(py, state, Scalars::Arrays)?;
                let x = element_to_py(py, e, Scalars::Arrays)?;
                let out = uf.f.bind(py).call1((s, x))?;
                let (new_state, output) =
                    returned_pair(&out, "scan", "a pair (new_state, output_element)")?;
                Ok((
                    py_to_element(py, &new_state, false)?,
                    py_to_element(py, &output, true)?,
                ))
            })
        });
        trace
            .finish(py, "scan", "", result)
            .map(|inner| CoreDataset { inner })
    }

    fn unique(&self, py: Python<'_>) -> PyResult<CoreDataset> {
        wrap(py, self.inner.unique())
    }

    #[pyo3(signature = (key_func, reduce_func, window_size, window_size_func))]
    fn group_by_window(
        &self,
        py: Python<'_>,
        key_func: Py<PyAny>,
        reduce_func: Py<PyAny>,
        window_size: Option<i64>,
        window_size_func: Option<Py<PyAny>>,
    ) -> PyResult<CoreDataset> {
        let window_size = window_size
            .map(|w| non_negative("group_by_window", "window_size", w))
            .transpose()?;
        let key = UserFn::new(key_func);
        let reduce = UserFn::new(reduce_func);
        let key_fn = move |e: &Element| {
            with_python(|py| {
                let out = key.call(py, e.clone())?;
                out.extract::<i64>()
            })
        };
        let trace = Trace::start();
        let tracer = trace.clone();
        let reduce_fn = move |k: i64, window: Dataset| {
            tracer.run(|py| {
                let out = reduce
                    .f
                    .bind(py)
                    .call1((int_scalar(py, k)?, wrap_dataset(py, window)?))?;
                returned_dataset(py, &out, "group_by_window")
            })
        };
        let result = match window_size_func {
            Some(f) => {
                let sf = UserFn::new(f);
                let size_fn = move |k: i64| {
                    with_python(|py| {
                        let v: i64 = sf.f.bind(py).call1((int_scalar(py, k)?,))?.extract()?;
                        positive("group_by_window", "window_size_func's result", v)
                    })
                };
                self.inner
                    .group_by_window(key_fn, reduce_fn, window_size, Some(size_fn))
            }
            None => self.inner.group_by_window(
                key_fn,
                reduce_fn,
                window_size,
                None::<fn(i64) -> npyflow::Result<u64>>,
            ),
        };
        trace
            .finish(py, "group_by_window", "", result)
            .map(|inner| CoreDataset { inner })
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (element_length_func, bucket_boundaries, bucket_batch_sizes, padded_shapes, padding_values, pad_to_bucket_boundary, no_padding, drop_remainder))]
    fn bucket_by_sequence_length(
        &self,
        py: Python<'_>,
        element_length_func: Py<PyAny>,
        bucket_boundaries: Vec<i64>,
        bucket_batch_sizes: Vec<i64>,
        padded_shapes: Option<Vec<Bound<'_, PyAny>>>,
        padding_values: Option<Vec<Bound<'_, PyAny>>>,
        pad_to_bucket_boundary: bool,
        no_padding: bool,
        drop_remainder: bool,
    ) -> PyResult<CoreDataset> {
        let sizes = bucket_batch_sizes
            .iter()
            .map(|&b| {
                non_negative("bucket_by_sequence_length", "bucket_batch_sizes", b)
                    .map(|b| b as usize)
            })
            .collect::<PyResult<Vec<_>>>()?;
        let options = BucketOptions {
            padded_shapes: shapes_from_py(padded_shapes)?,
            padding_values: values_from_py(py, padding_values)?,
            pad_to_bucket_boundary,
            no_padding,
            drop_remainder,
        };
        let uf = UserFn::new(element_length_func);
        let length = move |e: &Element| {
            with_python(|py| {
                let out = uf.call(py, e.clone())?;
                out.extract::<i64>()
            })
        };
        wrap(
            py,
            self.inner
                .bucket_by_sequence_length(length, &bucket_boundaries, &sizes, options),
        )
    }

    /// `shared`: a file several pipelines may fill at once (a snapshot's; see
    /// `Dataset::cache_shared`).
    #[pyo3(signature = (filename, shared=false))]
    fn cache(
        &self,
        py: Python<'_>,
        filename: Option<PathBuf>,
        shared: bool,
    ) -> PyResult<CoreDataset> {
        match filename {
            Some(path) if shared => wrap(py, self.inner.cache_shared(path)),
            filename => wrap(py, self.inner.cache(filename)),
        }
    }

    fn prefetch(&self, py: Python<'_>, buffer_size: i64) -> PyResult<CoreDataset> {
        wrap(py, self.inner.prefetch(buffer_size))
    }

    /// tf.data's `Options.autotune` (`enabled`, `cpu_budget`, `ram_budget`) for the whole
    /// pipeline this dataset ends.
    #[pyo3(signature = (enabled=None, cpu_budget=None, ram_budget=None))]
    fn with_autotune(
        &self,
        py: Python<'_>,
        enabled: Option<bool>,
        cpu_budget: Option<i64>,
        ram_budget: Option<i64>,
    ) -> PyResult<CoreDataset> {
        let autotune = npyflow::dataset::AutotuneOptions::from_tf(enabled, cpu_budget, ram_budget);
        wrap(
            py,
            autotune.and_then(|a| {
                self.inner
                    .with_options(npyflow::dataset::Options::new().autotune(a))
            }),
        )
    }

    /// tf.data's `Options.experimental_optimization.map_parallelization` for the whole
    /// pipeline this dataset ends.
    fn with_map_parallelization(&self, py: Python<'_>, on: bool) -> PyResult<CoreDataset> {
        let options = npyflow::dataset::Options::new().map_parallelization(on);
        wrap(py, self.inner.with_options(options))
    }

    fn ignore_errors(&self, log_warning: bool) -> CoreDataset {
        CoreDataset {
            inner: self.inner.ignore_errors(log_warning),
        }
    }

    fn concatenate(&self, py: Python<'_>, other: PyRef<'_, CoreDataset>) -> PyResult<CoreDataset> {
        wrap(py, self.inner.concatenate(&other.inner))
    }

    /// tf.data's `reduce`, run with Python detached except inside `f`.
    fn reduce<'py>(
        &self,
        py: Python<'py>,
        initial_state: Bound<'py, PyAny>,
        f: Py<PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let initial = py_to_element(py, &initial_state, false)?;
        let uf = UserFn::new(f);
        let dataset = self.inner.clone();
        let result = py.detach(move || {
            dataset.reduce(initial, move |state, e| {
                with_python(|py| {
                    let s = element_to_py(py, state, Scalars::Arrays)?;
                    let x = element_to_py(py, e, Scalars::Arrays)?;
                    let out = uf.f.bind(py).call1((s, x))?;
                    py_to_element(py, &out, false)
                })
            })
        });
        element_to_py(py, core(py, result)?, Scalars::Numpy)
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

fn graph_error(m: String) -> PyErr {
    PyValueError::new_err(format!("op graph: {m}"))
}

/// The op graph of a trace: `nodes` are `(kind, args)` with node ids for operands.
fn build_graph(
    py: Python<'_>,
    spec: &npyflow::ElementSpec,
    nodes: &[(String, Bound<'_, PyTuple>)],
    output: &Bound<'_, PyAny>,
) -> PyResult<npyflow::ops::graph::Graph> {
    use npyflow::ops::graph::{BinaryOp, GraphBuilder, Index, Output, Part, ReduceOp, UnaryOp};
    let mut g = GraphBuilder::new(spec);
    let mut vals = Vec::with_capacity(nodes.len());
    let val = |vals: &Vec<npyflow::ops::graph::Value>, id: usize| {
        vals.get(id)
            .copied()
            .ok_or_else(|| graph_error(format!("node {id} is used before it is made")))
    };
    let dtype = |obj: Bound<'_, PyAny>| -> PyResult<npyflow::DType> {
        let descr = numpy::PyArrayDescr::new(py, obj)?;
        Ok(dtype_of(&descr)?.0)
    };
    for (kind, args) in nodes {
        let arg = |i: usize| args.get_item(i);
        let id = |i: usize| -> PyResult<usize> { arg(i)?.extract() };
        let v = match kind.as_str() {
            "input" => {
                let path = arg(0)?
                    .try_iter()?
                    .map(|p| {
                        let p = p?;
                        match p.extract::<String>() {
                            Ok(k) => Ok(Part::Key(k)),
                            Err(_) => Ok(Part::Index(p.extract()?)),
                        }
                    })
                    .collect::<PyResult<Vec<_>>>()?;
                g.input(&path)
            }
            "const" => g.constant(py_to_tensor(py, &arg(0)?)?),
            "cast" => g.cast(val(&vals, id(0)?)?, dtype(arg(1)?)?),
            "unary" => {
                let name: String = arg(0)?.extract()?;
                let op = match name.as_str() {
                    "negative" => UnaryOp::Negative,
                    "abs" => UnaryOp::Abs,
                    "square" => UnaryOp::Square,
                    "sqrt" => UnaryOp::Sqrt,
                    "floor" => UnaryOp::Floor,
                    "ceil" => UnaryOp::Ceil,
                    "trunc" => UnaryOp::Trunc,
                    "rint" => UnaryOp::Rint,
                    "reciprocal" => UnaryOp::Reciprocal,
                    "sign" => UnaryOp::Sign,
                    "isnan" => UnaryOp::IsNan,
                    "isinf" => UnaryOp::IsInf,
                    "isfinite" => UnaryOp::IsFinite,
                    "logical_not" => UnaryOp::LogicalNot,
                    "invert" => UnaryOp::Invert,
                    other => return Err(graph_error(format!("unknown unary op {other:?}"))),
                };
                g.unary(op, val(&vals, id(1)?)?)
            }
            "binary" => {
                let name: String = arg(0)?.extract()?;
                let op = match name.as_str() {
                    "add" => BinaryOp::Add,
                    "subtract" => BinaryOp::Subtract,
                    "multiply" => BinaryOp::Multiply,
                    "divide" => BinaryOp::Divide,
                    "floor_divide" => BinaryOp::FloorDivide,
                    "remainder" => BinaryOp::Remainder,
                    "maximum" => BinaryOp::Maximum,
                    "minimum" => BinaryOp::Minimum,
                    "bitwise_and" => BinaryOp::BitwiseAnd,
                    "bitwise_or" => BinaryOp::BitwiseOr,
                    "bitwise_xor" => BinaryOp::BitwiseXor,
                    "logical_and" => BinaryOp::LogicalAnd,
                    "logical_or" => BinaryOp::LogicalOr,
                    "logical_xor" => BinaryOp::LogicalXor,
                    "equal" => BinaryOp::Equal,
                    "not_equal" => BinaryOp::NotEqual,
                    "less" => BinaryOp::Less,
                    "less_equal" => BinaryOp::LessEqual,
                    "greater" => BinaryOp::Greater,
                    "greater_equal" => BinaryOp::GreaterEqual,
                    other => return Err(graph_error(format!("unknown binary op {other:?}"))),
                };
                g.binary(op, val(&vals, id(1)?)?, val(&vals, id(2)?)?)
            }
            "select" => g.select(
                val(&vals, id(0)?)?,
                val(&vals, id(1)?)?,
                val(&vals, id(2)?)?,
            ),
            "slice" => {
                let entries = arg(1)?
                    .try_iter()?
                    .map(|e| {
                        let e = e?;
                        let tag: String = e.get_item(0)?.extract()?;
                        Ok(match tag.as_str() {
                            "range" => Index::Range {
                                start: e.get_item(1)?.extract()?,
                                stop: e.get_item(2)?.extract()?,
                                step: e.get_item(3)?.extract()?,
                            },
                            "at" => Index::At(e.get_item(1)?.extract()?),
                            _ => Index::NewAxis,
                        })
                    })
                    .collect::<PyResult<Vec<_>>>()?;
                g.slice(val(&vals, id(0)?)?, &entries)
            }
            "reshape" => {
                let shape: Vec<i64> = arg(1)?.extract()?;
                g.reshape(val(&vals, id(0)?)?, &shape)
            }
            "transpose" => {
                let perm: Vec<usize> = arg(1)?.extract()?;
                g.transpose(val(&vals, id(0)?)?, &perm)
            }
            "concat" => {
                let ids: Vec<usize> = arg(0)?.extract()?;
                let xs = ids
                    .iter()
                    .map(|&i| val(&vals, i))
                    .collect::<PyResult<Vec<_>>>()?;
                g.concat(&xs, arg(1)?.extract()?)
            }
            "reduce" => {
                let name: String = arg(0)?.extract()?;
                let op = match name.as_str() {
                    "sum" => ReduceOp::Sum,
                    "prod" => ReduceOp::Prod,
                    "max" => ReduceOp::Max,
                    "min" => ReduceOp::Min,
                    "any" => ReduceOp::Any,
                    "all" => ReduceOp::All,
                    other => return Err(graph_error(format!("unknown reduction {other:?}"))),
                };
                let axes: Vec<usize> = arg(2)?.extract()?;
                g.reduce(op, val(&vals, id(1)?)?, &axes, arg(3)?.extract()?)
            }
            other => return Err(graph_error(format!("unknown node kind {other:?}"))),
        };
        vals.push(core(py, v)?);
    }
    fn out(
        vals: &[npyflow::ops::graph::Value],
        obj: &Bound<'_, PyAny>,
    ) -> PyResult<npyflow::ops::graph::Output> {
        let tag: String = obj.get_item(0)?.extract()?;
        let body = obj.get_item(1)?;
        Ok(match tag.as_str() {
            "value" => {
                let id: usize = body.extract()?;
                Output::Value(
                    vals.get(id)
                        .copied()
                        .ok_or_else(|| graph_error(format!("no node {id}")))?,
                )
            }
            "tuple" => Output::Tuple(
                body.try_iter()?
                    .map(|o| out(vals, &o?))
                    .collect::<PyResult<_>>()?,
            ),
            _ => Output::Dict(
                body.try_iter()?
                    .map(|kv| {
                        let kv = kv?;
                        Ok((kv.get_item(0)?.extract()?, out(vals, &kv.get_item(1)?)?))
                    })
                    .collect::<PyResult<_>>()?,
            ),
        })
    }
    let output = out(&vals, output)?;
    core(py, g.build(output))
}
