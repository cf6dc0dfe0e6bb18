//! Between npyflow's tensors, elements and specs and Python's NumPy arrays, tuples, dicts and
//! spec objects, without copying array data where it can be shared.

use std::ffi::c_int;
use std::ptr;

use npyflow::{
    Buffer, BufferKind, BufferOwner, ByteOrder, DType, Dataset, Element, ElementSpec, PartialShape,
    Tensor, TensorSpec,
};
use numpy::npyffi::{self, npy_intp, NpyTypes, NPY_ARRAY_WRITEABLE, PY_ARRAY_API};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::type_object::PyTypeInfo;
use pyo3::types::{PyBool, PyDict, PyList, PyString, PyTuple, PyType};

use crate::errors::to_pyerr;

/// The Python objects of the pure-Python layer that the extension needs, handed over by
/// `npyflow/_dataset.py` when it is imported.
pub struct Registry {
    tensor_spec: Py<PyAny>,
    dataset_spec: Py<PyAny>,
    dataset_class: Py<PyAny>,
    to_array: Py<PyAny>,
    native_copy: Py<PyAny>,
    bool_scalar: Py<PyAny>,
}

static REGISTRY: PyOnceLock<Registry> = PyOnceLock::new();

/// Hands the extension the classes and helpers of the Python layer. Called once, by
/// `npyflow/_dataset.py`.
#[pyfunction]
#[pyo3(name = "_register")]
pub fn register(
    py: Python<'_>,
    tensor_spec: Py<PyAny>,
    dataset_spec: Py<PyAny>,
    dataset_class: Py<PyAny>,
    to_array: Py<PyAny>,
    native_copy: Py<PyAny>,
    bool_scalar: Py<PyAny>,
) {
    let _ = REGISTRY.set(
        py,
        Registry {
            tensor_spec,
            dataset_spec,
            dataset_class,
            to_array,
            native_copy,
            bool_scalar,
        },
    );
}

/// The Python layer's `npyflow.Tensor` class and its wrapper of NumPy scalars (the subclass
/// with `.numpy()`), for the values iteration yields. Handed over by `npyflow/_tensor.py`.
struct TensorTypes {
    tensor_class: Py<PyType>,
    wrap_scalar: Py<PyAny>,
    /// NumPy scalar type -> its subclass with `.numpy()` (None where there is none), filled
    /// by `wrap_scalar`: a type found here is called directly.
    scalar_types: Py<PyDict>,
}

static TENSOR_TYPES: PyOnceLock<TensorTypes> = PyOnceLock::new();

/// Hands the extension `npyflow.Tensor` and the function that wraps a NumPy scalar. Called
/// once, by `npyflow/_tensor.py`.
#[pyfunction]
#[pyo3(name = "_register_tensor")]
pub fn register_tensor(
    py: Python<'_>,
    tensor_class: Py<PyType>,
    wrap_scalar: Py<PyAny>,
    scalar_types: Py<PyDict>,
) {
    let _ = TENSOR_TYPES.set(
        py,
        TensorTypes {
            tensor_class,
            wrap_scalar,
            scalar_types,
        },
    );
}

/// A NumPy scalar as iteration yields it: an instance of its type's subclass with `.numpy()`.
fn wrap_scalar<'py>(
    py: Python<'py>,
    types: &TensorTypes,
    scalar: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    match types.scalar_types.bind(py).get_item(scalar.get_type())? {
        Some(sub) if !sub.is_none() => sub.call1((scalar,)),
        _ => types.wrap_scalar.bind(py).call1((scalar,)),
    }
}

/// A 0-d string tensor as iteration yields it (`bytes` or `str` with `.numpy()`), holding
/// its tensor's dtype in `_npyflow_dtype`: NumPy's scalar keeps only its own length, and a
/// function that returns it unchanged must give back the element's width.
fn wrap_string<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    let s = wrap_scalar(py, tensor_types(py)?, tensor_to_scalar(py, t)?)?;
    s.setattr(
        pyo3::intern!(py, "_npyflow_dtype"),
        descr_of(py, t.dtype())?,
    )?;
    Ok(s)
}

fn tensor_types(py: Python<'_>) -> PyResult<&TensorTypes> {
    TENSOR_TYPES.get(py).ok_or_else(|| {
        PyRuntimeError::new_err(
            "npyflow._npyflow is used through the npyflow package: import npyflow",
        )
    })
}

pub fn registry(py: Python<'_>) -> PyResult<&Registry> {
    REGISTRY.get(py).ok_or_else(|| {
        PyRuntimeError::new_err(
            "npyflow._npyflow is used through the npyflow package: import npyflow",
        )
    })
}

/// The memory of a NumPy array, kept alive (and so unmoved) by a reference to the array.
struct NumpyMemory {
    _array: Py<PyAny>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the pointer is into the data of the array that `_array` keeps alive; NumPy never
// moves or frees the data of a live array (resizing one that is referenced is refused), and
// npyflow only reads it. `Py` itself is Send and Sync, and its last reference may be dropped
// on any thread (PyO3 defers the decrement to a thread attached to Python).
unsafe impl Send for NumpyMemory {}
// SAFETY: as for Send: the data is only read, through shared references.
unsafe impl Sync for NumpyMemory {}

impl BufferOwner for NumpyMemory {
    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: see above; `len` bytes from `ptr` are the array's data.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The Python object behind every array npyflow hands out: it holds the tensor whose memory
/// the array shows, so the memory lives as long as the array (and any view of it).
#[pyclass(frozen, module = "npyflow._npyflow", name = "Memory")]
pub struct Memory {
    tensor: Tensor,
    writable: bool,
}

#[pymethods]
impl Memory {
    /// Where the bytes live: "heap" (npyflow's allocation), "mapped" (a memory-mapped file)
    /// or "foreign" (a NumPy array handed to npyflow).
    #[getter]
    fn kind(&self) -> &'static str {
        match self.tensor.buffer().kind() {
            BufferKind::Heap => "heap",
            BufferKind::Mapped => "mapped",
            BufferKind::Foreign => "foreign",
        }
    }

    /// The number of bytes shown.
    #[getter]
    fn nbytes(&self) -> usize {
        self.tensor.nbytes()
    }

    /// Whether the array over this memory may be written (memory no one else shares).
    #[getter]
    fn writable(&self) -> bool {
        self.writable
    }

    fn __repr__(&self) -> String {
        format!(
            "<npyflow memory: {} bytes, {}{}>",
            self.tensor.nbytes(),
            self.kind(),
            if self.writable { "" } else { ", read-only" }
        )
    }
}

/// NumPy's dtype object for a dtype.
pub fn descr_of(py: Python<'_>, dtype: DType) -> PyResult<Bound<'_, PyArrayDescr>> {
    use numpy::dtype as d;
    Ok(match dtype {
        DType::Bool => d::<bool>(py),
        DType::Int8 => d::<i8>(py),
        DType::Int16 => d::<i16>(py),
        DType::Int32 => d::<i32>(py),
        DType::Int64 => d::<i64>(py),
        DType::UInt8 => d::<u8>(py),
        DType::UInt16 => d::<u16>(py),
        DType::UInt32 => d::<u32>(py),
        DType::UInt64 => d::<u64>(py),
        DType::Float16 => d::<half::f16>(py),
        DType::Float32 => d::<f32>(py),
        DType::Float64 => d::<f64>(py),
        DType::Complex64 => d::<num_complex::Complex<f32>>(py),
        DType::Complex128 => d::<num_complex::Complex<f64>>(py),
        other => PyArrayDescr::new(py, other.descr(ByteOrder::NATIVE))?,
    })
}

/// npyflow's dtype for a NumPy dtype, and whether data of that dtype is in the machine's
/// byte order. Object, structured and other dtypes npyflow lacks are a TypeError.
pub fn dtype_of(descr: &Bound<'_, PyArrayDescr>) -> PyResult<(DType, bool)> {
    let size = descr.itemsize();
    let fast = match (descr.kind(), size) {
        (b'b', 1) => Some(DType::Bool),
        (b'i', 1) => Some(DType::Int8),
        (b'i', 2) => Some(DType::Int16),
        (b'i', 4) => Some(DType::Int32),
        (b'i', 8) => Some(DType::Int64),
        (b'u', 1) => Some(DType::UInt8),
        (b'u', 2) => Some(DType::UInt16),
        (b'u', 4) => Some(DType::UInt32),
        (b'u', 8) => Some(DType::UInt64),
        (b'f', 2) => Some(DType::Float16),
        (b'f', 4) => Some(DType::Float32),
        (b'f', 8) => Some(DType::Float64),
        (b'c', 8) => Some(DType::Complex64),
        (b'c', 16) => Some(DType::Complex128),
        (b'S', n) if n > 0 => Some(DType::Bytes(n)),
        (b'U', n) if n > 0 && n % 4 == 0 => Some(DType::Unicode(n / 4)),
        _ => None,
    };
    let native = match descr.byteorder() {
        b'<' => cfg!(target_endian = "little"),
        b'>' => cfg!(target_endian = "big"),
        _ => true,
    };
    if let Some(d) = fast {
        return Ok((d, native));
    }
    if descr.has_fields() || descr.has_subarray() {
        return Err(PyTypeError::new_err(format!(
            "npyflow does not support structured dtypes: {}",
            descr.str()?
        )));
    }
    let s: String = descr.getattr("str")?.extract()?;
    let (dtype, order) = DType::parse_descr(&s)
        .map_err(|e| PyTypeError::new_err(format!("unsupported dtype {s:?}: {e}")))?;
    Ok((dtype, !dtype.has_byte_order() || order.is_native()))
}

/// A NumPy array over the tensor's memory, without a copy: its base is a [`Memory`] that
/// holds the tensor. Writable only when no one else shares the memory.
pub fn tensor_to_array(py: Python<'_>, tensor: Tensor) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: the type object of ndarray, which NumPy's API keeps for the process.
    let array_type = unsafe { npyffi::get_type_object(py, NpyTypes::PyArray_Type) };
    tensor_to_array_of(py, tensor, array_type)
}

/// [`tensor_to_array`], made as an instance of `subtype` (ndarray or a subclass of it).
fn tensor_to_array_of(
    py: Python<'_>,
    mut tensor: Tensor,
    subtype: *mut pyo3::ffi::PyTypeObject,
) -> PyResult<Bound<'_, PyAny>> {
    let descr = descr_of(py, tensor.dtype())?;
    let mut dims: Vec<npy_intp> = tensor.shape().iter().map(|&d| d as npy_intp).collect();
    let (data, writable) = match tensor.bytes_mut() {
        Some(bytes) => (bytes.as_mut_ptr(), true),
        None => (tensor.as_bytes().as_ptr().cast_mut(), false),
    };
    // Moving the tensor into its holder moves no bytes: `data` stays valid.
    let memory = Bound::new(py, Memory { tensor, writable })?;
    let flags: c_int = if writable { NPY_ARRAY_WRITEABLE } else { 0 };
    // SAFETY: NewFromDescr steals the descr reference and, with strides NULL, reads the
    // data as C-contiguous: exactly the tensor's layout. SetBaseObject steals the reference
    // to `memory`, which keeps the data alive for the array's lifetime.
    // `subtype` is ndarray or a subclass of it, so NewFromDescr makes an array of it.
    unsafe {
        let raw = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            subtype,
            descr.into_dtype_ptr(),
            dims.len() as c_int,
            dims.as_mut_ptr(),
            ptr::null_mut(),
            data.cast(),
            flags,
            ptr::null_mut(),
        );
        let array = Bound::from_owned_ptr_or_err(py, raw)?;
        if PY_ARRAY_API.PyArray_SetBaseObject(py, raw.cast(), memory.into_any().into_ptr()) < 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(array)
    }
}

/// A NumPy scalar (`np.int64(3)`, `np.bytes_(b"a")`) holding the value of a 0-d tensor.
pub fn tensor_to_scalar<'py>(py: Python<'py>, tensor: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    let descr = descr_of(py, tensor.dtype())?;
    // An aligned copy of the value, which NumPy copies again into the scalar.
    let bytes = tensor.as_bytes();
    let mut aligned = vec![0u64; bytes.len().div_ceil(8).max(1)];
    bytemuck_copy(&mut aligned, bytes);
    // SAFETY: `aligned` holds one element of `descr`, in native order; PyArray_Scalar copies
    // it and does not steal `descr`.
    unsafe {
        let raw = PY_ARRAY_API.PyArray_Scalar(
            py,
            aligned.as_mut_ptr().cast(),
            descr.as_dtype_ptr(),
            ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(py, raw)
    }
}

fn bytemuck_copy(dst: &mut [u64], src: &[u8]) {
    for (i, chunk) in src.chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        dst[i] = u64::from_ne_bytes(word);
    }
}

/// How 0-d tensors reach Python.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scalars {
    /// As 0-d arrays (what user functions get, as tf.data passes 0-d tensors), except 0-d
    /// strings, which come as iteration yields them (bytes or str with `.numpy()`), so that
    /// a function can use `decode` and the other methods of Python's strings on them.
    Arrays,
    /// As NumPy scalars (what `as_numpy_iterator` yields, as tf.data's does).
    Numpy,
    /// As iteration yields them: arrays as `npyflow.Tensor` (an ndarray subclass with tf's
    /// `.numpy()`), 0-d tensors as NumPy scalars with `.numpy()`.
    Tensors,
}

/// An element as Python values: arrays, tuples, dicts, and datasets for windows.
pub fn element_to_py(
    py: Python<'_>,
    element: Element,
    scalars: Scalars,
) -> PyResult<Bound<'_, PyAny>> {
    Ok(match element {
        Element::Tensor(t) if scalars == Scalars::Numpy && t.ndim() == 0 => {
            tensor_to_scalar(py, &t)?
        }
        Element::Tensor(t)
            if scalars != Scalars::Numpy && t.ndim() == 0 && t.dtype().string_width().is_some() =>
        {
            wrap_string(py, &t)?
        }
        Element::Tensor(t) if scalars == Scalars::Tensors => {
            let types = tensor_types(py)?;
            if t.ndim() == 0 {
                wrap_scalar(py, types, tensor_to_scalar(py, &t)?)?
            } else {
                tensor_to_array_of(py, t, types.tensor_class.as_ptr().cast())?
            }
        }
        Element::Tensor(t) => tensor_to_array(py, t)?,
        // tf.data's None component (an empty structure): npyflow holds it as an empty tuple.
        Element::Tuple(items) if items.is_empty() => py.None().into_bound(py),
        Element::Tuple(items) => {
            let items = items
                .into_iter()
                .map(|e| element_to_py(py, e, scalars))
                .collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, items)?.into_any()
        }
        Element::Dict(items) => {
            let dict = PyDict::new(py);
            for (k, v) in items {
                dict.set_item(k, element_to_py(py, v, scalars)?)?;
            }
            dict.into_any()
        }
        Element::Dataset(d) => wrap_dataset(py, d)?,
    })
}

/// The Python `npyflow.Dataset` over a core dataset.
pub fn wrap_dataset(py: Python<'_>, dataset: Dataset) -> PyResult<Bound<'_, PyAny>> {
    let core = Bound::new(py, crate::handle::CoreDataset { inner: dataset })?;
    registry(py)?
        .dataset_class
        .bind(py)
        .call_method1("_from_core", (core,))
}

/// The core dataset of a Python `npyflow.Dataset`, or `None` when `obj` is not one.
pub fn unwrap_dataset(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Option<Dataset>> {
    if !obj.is_instance(registry(py)?.dataset_class.bind(py))? {
        return Ok(None);
    }
    let core = obj.getattr("_ds")?;
    let core = core.cast::<crate::handle::CoreDataset>()?;
    Ok(Some(core.get().inner.clone()))
}

/// A tensor from a NumPy array, or from anything `np.asarray` takes (Python numbers and
/// lists follow tf.data's rules: int32 or int64, float32, bytes for str).
///
/// The array's memory is shared, not copied, when it is C-contiguous, aligned and
/// native-endian; otherwise it is copied once into that layout.
pub fn py_to_tensor(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let array = if PyUntypedArray::is_type_of(obj) {
        obj.clone()
    } else {
        registry(py)?.to_array.bind(py).call1((obj,))?
    };
    let array = array.cast_into::<PyUntypedArray>().map_err(PyErr::from)?;
    array_to_tensor(py, array)
}

fn array_to_tensor(py: Python<'_>, array: Bound<'_, PyUntypedArray>) -> PyResult<Tensor> {
    let (dtype, native) = dtype_of(&array.dtype())?;
    let array = if native && array.is_c_contiguous() && array.is_aligned() {
        array
    } else {
        // One copy, into C order and native byte order.
        registry(py)?
            .native_copy
            .bind(py)
            .call1((array,))?
            .cast_into::<PyUntypedArray>()
            .map_err(PyErr::from)?
    };
    let shape: Vec<usize> = array.shape().to_vec();
    let len = shape
        .iter()
        .try_fold(dtype.itemsize(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| PyValueError::new_err("the array has more bytes than fit in memory"))?;
    // SAFETY: the pointer is the array's data field, read while the array is alive.
    let ptr = unsafe { (*array.as_array_ptr()).fields.data } as *const u8;
    let buffer = Buffer::from_owner(NumpyMemory {
        _array: array.into_any().unbind(),
        ptr,
        len,
    });
    Tensor::new(dtype, &shape, buffer).map_err(|e| to_pyerr(py, e))
}

/// An element from Python values: tuples (and, where `top_list_is_tuple`, a list at the top,
/// as tf.data takes a list a function returns), dicts with str keys, datasets, and arrays.
pub fn py_to_element(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    top_list_is_tuple: bool,
) -> PyResult<Element> {
    if obj.is_none() {
        // tf.data takes None as an empty structure (NoneTensorSpec).
        return Ok(Element::Tuple(Vec::new()));
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return Ok(Element::Tuple(
            tuple
                .iter()
                .map(|x| py_to_element(py, &x, false))
                .collect::<PyResult<_>>()?,
        ));
    }
    if top_list_is_tuple {
        if let Ok(list) = obj.cast::<PyList>() {
            return Ok(Element::Tuple(
                list.iter()
                    .map(|x| py_to_element(py, &x, false))
                    .collect::<PyResult<_>>()?,
            ));
        }
    }
    if let Ok(list) = obj.cast::<PyList>() {
        // A list of datasets is a batch of datasets (a tensor of datasets in tf.data):
        // npyflow holds it as the dataset of those datasets.
        if !list.is_empty() {
            let mut datasets = Vec::with_capacity(list.len());
            for item in list.iter() {
                match unwrap_dataset(py, &item)? {
                    Some(d) => datasets.push(d),
                    None => break,
                }
            }
            if datasets.len() == list.len() {
                let batch = Dataset::from_datasets(datasets).map_err(|e| to_pyerr(py, e))?;
                return Ok(Element::Dataset(batch));
            }
        }
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut items = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            if k.cast::<PyString>().is_err() {
                return Err(PyTypeError::new_err(format!(
                    "dict keys of elements must be str, got {}",
                    k.repr()?
                )));
            }
            let key: String = k.extract()?;
            items.push((key, py_to_element(py, &v, false)?));
        }
        return Ok(Element::dict(items));
    }
    if let Some(d) = unwrap_dataset(py, obj)? {
        return Ok(Element::Dataset(d));
    }
    Ok(Element::Tensor(py_to_tensor(py, obj)?))
}

/// Whether a predicate's result is true: a Python bool, a NumPy bool scalar or a 0-d bool
/// array. Anything else is a TypeError naming `op`.
pub fn truth(py: Python<'_>, obj: &Bound<'_, PyAny>, op: &str) -> PyResult<bool> {
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(b.is_true());
    }
    let is_bool = if let Ok(a) = obj.cast::<PyUntypedArray>() {
        a.ndim() == 0 && a.dtype().kind() == b'b'
    } else {
        obj.is_instance(registry(py)?.bool_scalar.bind(py))?
    };
    if is_bool {
        return obj.is_truthy();
    }
    Err(PyTypeError::new_err(format!(
        "{op}: the function must return a scalar bool, got {}",
        obj.repr()?
    )))
}

fn shape_to_py<'py>(py: Python<'py>, shape: &PartialShape) -> PyResult<Bound<'py, PyAny>> {
    match shape.dims() {
        None => Ok(py.None().into_bound(py)),
        Some(dims) => Ok(PyTuple::new(py, dims.iter().copied())?.into_any()),
    }
}

/// A partial shape from Python: `None` (unknown rank) or a sequence of ints and `None`s;
/// a negative dimension is unknown when `negative_is_unknown`, an error otherwise.
pub fn shape_from_py(obj: &Bound<'_, PyAny>, negative_is_unknown: bool) -> PyResult<PartialShape> {
    if obj.is_none() {
        return Ok(PartialShape::unknown());
    }
    let mut dims = Vec::new();
    for d in obj.try_iter()? {
        let d = d?;
        if d.is_none() {
            dims.push(None);
            continue;
        }
        let v: i64 = d.extract()?;
        if v < 0 {
            if negative_is_unknown {
                dims.push(None);
            } else {
                return Err(PyValueError::new_err(format!(
                    "a dimension must be >= 0, got {v}"
                )));
            }
        } else {
            dims.push(Some(v as usize));
        }
    }
    Ok(PartialShape::new(&dims))
}

/// An element spec as Python spec objects: `TensorSpec`s in tuples and dicts, `DatasetSpec`
/// for windows.
pub fn spec_to_py<'py>(py: Python<'py>, spec: &ElementSpec) -> PyResult<Bound<'py, PyAny>> {
    let reg = registry(py)?;
    Ok(match spec {
        ElementSpec::Tensor(s) => reg
            .tensor_spec
            .bind(py)
            .call1((shape_to_py(py, &s.shape)?, descr_of(py, s.dtype)?))?,
        ElementSpec::Tuple(items) if items.is_empty() => py.None().into_bound(py),
        ElementSpec::Tuple(items) => PyTuple::new(
            py,
            items
                .iter()
                .map(|s| spec_to_py(py, s))
                .collect::<PyResult<Vec<_>>>()?,
        )?
        .into_any(),
        ElementSpec::Dict(items) => {
            let dict = PyDict::new(py);
            for (k, s) in items {
                dict.set_item(k, spec_to_py(py, s)?)?;
            }
            dict.into_any()
        }
        ElementSpec::Dataset(inner) => {
            reg.dataset_spec.bind(py).call1((spec_to_py(py, inner)?,))?
        }
    })
}

/// An element spec from Python spec objects (as `from_generator`'s `output_signature`).
pub fn spec_from_py(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<ElementSpec> {
    let reg = registry(py)?;
    if obj.is_instance(reg.tensor_spec.bind(py))? {
        let shape = shape_from_py(&obj.getattr("shape")?, false)?;
        let descr = PyArrayDescr::new(py, obj.getattr("dtype")?)?;
        // A string dtype without a width (tf.string, NumPy's `S`): strings of any width.
        let dtype = match (descr.kind(), descr.itemsize()) {
            (b'S', 0) => DType::Bytes(0),
            (b'U', 0) => DType::Unicode(0),
            _ => dtype_of(&descr)?.0,
        };
        return Ok(ElementSpec::Tensor(TensorSpec { dtype, shape }));
    }
    if obj.is_none() {
        return Ok(ElementSpec::Tuple(Vec::new()));
    }
    if obj.is_instance(reg.dataset_spec.bind(py))? {
        let inner = spec_from_py(py, &obj.getattr("element_spec")?)?;
        return Ok(ElementSpec::Dataset(Box::new(inner)));
    }
    if obj.cast::<PyTuple>().is_ok() || obj.cast::<PyList>().is_ok() {
        return Ok(ElementSpec::Tuple(
            obj.try_iter()?
                .map(|x| spec_from_py(py, &x?))
                .collect::<PyResult<_>>()?,
        ));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut items = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            items.push((k.extract::<String>()?, spec_from_py(py, &v)?));
        }
        return Ok(ElementSpec::Dict(items.into_iter().collect()));
    }
    Err(PyTypeError::new_err(format!(
        "expected a TensorSpec, or a tuple or dict of them, got {}",
        obj.repr()?
    )))
}
