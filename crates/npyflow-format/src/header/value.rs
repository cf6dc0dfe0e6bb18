//! From the parsed literal to an [`NpyHeader`]: exactly the keys `descr`, `fortran_order`
//! and `shape`, each of the kind NumPy writes, checked in that order.

use super::parse::Value;
use super::types::{NpyHeader, MAX_DIMS};
use crate::dtype::{ByteOrder, DType};
use crate::error::{Error, Result};
use crate::tensor::checked_nbytes;

/// The header a parsed dict describes, or why it describes none.
pub(super) fn header_from_value(value: Value) -> Result<NpyHeader> {
    let [descr, fortran, shape] = header_keys(value)?;
    let (dtype, byte_order) = dtype_of(descr)?;
    let fortran_order = fortran_order_of(fortran)?;
    let shape = shape_of(shape)?;
    checked_nbytes(dtype, &shape).map_err(|_| {
        Error::Header(format!(
            "shape {shape:?} of {} has more bytes than this machine can address",
            dtype.descr(byte_order)
        ))
    })?;
    Ok(NpyHeader {
        dtype,
        byte_order,
        fortran_order,
        shape,
    })
}

/// The values of `descr`, `fortran_order` and `shape`, in that order: each key exactly once,
/// and no other key.
fn header_keys(value: Value) -> Result<[Value; 3]> {
    let Value::Dict(pairs) = value else {
        return Err(Error::Header(format!(
            "the header is {}, not a dict",
            value.describe()
        )));
    };
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (key, v) in pairs {
        let Value::Str(k) = key else {
            return Err(Error::Header(format!(
                "a key of the header dict is {}, not a string",
                key.describe()
            )));
        };
        let slot = match k.as_str() {
            "descr" => &mut descr,
            "fortran_order" => &mut fortran,
            "shape" => &mut shape,
            _ => {
                return Err(Error::Header(format!(
                    "unexpected key {k:?}: the header must have exactly the keys 'descr', \
                     'fortran_order' and 'shape'"
                )))
            }
        };
        if slot.replace(v).is_some() {
            return Err(Error::Header(format!("the key {k:?} is given twice")));
        }
    }
    let missing = |k: &str| {
        Error::Header(format!(
            "missing key {k:?}: the header must have exactly the keys 'descr', 'fortran_order' \
             and 'shape'"
        ))
    };
    Ok([
        descr.ok_or_else(|| missing("descr"))?,
        fortran.ok_or_else(|| missing("fortran_order"))?,
        shape.ok_or_else(|| missing("shape"))?,
    ])
}

/// The dtype and byte order of a `descr` value (a dtype string; structured dtypes refused).
fn dtype_of(descr: Value) -> Result<(DType, ByteOrder)> {
    let (dtype, byte_order) = match descr {
        Value::Str(s) => DType::parse_descr(&s)?,
        Value::List(_) => {
            return Err(Error::Dtype(
                "the descr is a list: structured (record) dtypes are not supported".into(),
            ))
        }
        other => {
            return Err(Error::Header(format!(
                "'descr' is {}, not a dtype string",
                other.describe()
            )))
        }
    };
    if !dtype.has_byte_order() {
        // '>u1' and '|u1' are one dtype (NumPy reports both as '|u1').
        return Ok((dtype, ByteOrder::NATIVE));
    }
    Ok((dtype, byte_order))
}

/// A `fortran_order` value: `True` or `False`.
fn fortran_order_of(fortran: Value) -> Result<bool> {
    match fortran {
        Value::Bool(b) => Ok(b),
        other => Err(Error::Header(format!(
            "'fortran_order' is {}, not True or False",
            other.describe()
        ))),
    }
}

/// A `shape` value: a tuple of at most [`MAX_DIMS`] non-negative integers.
fn shape_of(shape: Value) -> Result<Vec<usize>> {
    let Value::Tuple(dims) = shape else {
        return Err(Error::Header(format!(
            "'shape' is {}, not a tuple of integers",
            shape.describe()
        )));
    };
    if dims.len() > MAX_DIMS {
        return Err(Error::Header(format!(
            "the shape has {} dimensions, more than the {MAX_DIMS} NumPy supports",
            dims.len()
        )));
    }
    dims.into_iter()
        .map(|d| match d {
            Value::Int(n) if n < 0 => {
                Err(Error::Header(format!("shape dimension {n} is negative")))
            }
            Value::Int(n) => usize::try_from(n).map_err(|_| {
                Error::Header(format!(
                    "shape dimension {n} is larger than memory can hold"
                ))
            }),
            other => Err(Error::Header(format!(
                "a shape dimension is {}, not an integer",
                other.describe()
            ))),
        })
        .collect()
}
