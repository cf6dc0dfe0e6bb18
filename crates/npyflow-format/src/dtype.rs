//! NumPy's data types, as npyflow holds them.
//!
//! A [`DType`] says what one element is; it carries no byte order, because tensors in
//! memory are always in the machine's native order. Files do carry one: [`ByteOrder`] and
//! [`DType::parse_descr`] / [`DType::descr`] translate between the two, using NumPy's
//! `dtype.str` notation (`"<f4"`, `"|b1"`, `">i8"`, `"<U5"`, `"<M8[ns]"`).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The byte order of multi-byte values in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Least significant byte first (`<`).
    Little,
    /// Most significant byte first (`>`).
    Big,
}

impl ByteOrder {
    /// The byte order of the machine npyflow runs on.
    pub const NATIVE: ByteOrder = if cfg!(target_endian = "little") {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };

    /// Whether this is the machine's own byte order.
    pub fn is_native(self) -> bool {
        self == Self::NATIVE
    }

    fn symbol(self) -> char {
        match self {
            ByteOrder::Little => '<',
            ByteOrder::Big => '>',
        }
    }
}

/// The unit of a `datetime64` or `timedelta64` value, as in NumPy's `M8[unit]`.
#[allow(missing_docs)] // the variants are NumPy's unit codes
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DateUnit {
    /// No unit yet (`M8`, NumPy's generic unit).
    Generic,
    Years,
    Months,
    Weeks,
    Days,
    Hours,
    Minutes,
    Seconds,
    Milliseconds,
    Microseconds,
    Nanoseconds,
    Picoseconds,
    Femtoseconds,
    Attoseconds,
}

impl DateUnit {
    const CODES: [(&'static str, DateUnit); 13] = [
        ("Y", DateUnit::Years),
        ("M", DateUnit::Months),
        ("W", DateUnit::Weeks),
        ("D", DateUnit::Days),
        ("h", DateUnit::Hours),
        ("m", DateUnit::Minutes),
        ("s", DateUnit::Seconds),
        ("ms", DateUnit::Milliseconds),
        ("us", DateUnit::Microseconds),
        ("ns", DateUnit::Nanoseconds),
        ("ps", DateUnit::Picoseconds),
        ("fs", DateUnit::Femtoseconds),
        ("as", DateUnit::Attoseconds),
    ];

    /// NumPy's code for the unit (`"ns"`, `"D"`, ...); empty for the generic unit.
    pub fn code(self) -> &'static str {
        Self::CODES
            .iter()
            .find(|(_, u)| *u == self)
            .map_or("", |(c, _)| c)
    }

    fn from_code(code: &str) -> Option<DateUnit> {
        // NumPy also spells microseconds "μs".
        if code == "\u{3bc}s" {
            return Some(DateUnit::Microseconds);
        }
        Self::CODES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, u)| *u)
    }
}

/// A datetime unit with its multiple, as in `M8[10ms]` (unit `ms`, multiple 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeUnit {
    /// The base unit.
    pub unit: DateUnit,
    /// How many base units one tick is; 1 for plain `M8[ms]`.
    pub multiple: u32,
}

impl TimeUnit {
    /// A unit with multiple 1.
    pub const fn new(unit: DateUnit) -> TimeUnit {
        TimeUnit { unit, multiple: 1 }
    }

    pub(crate) fn suffix(self) -> String {
        match (self.unit, self.multiple) {
            (DateUnit::Generic, _) => String::new(),
            (u, 1) => format!("[{}]", u.code()),
            (u, n) => format!("[{n}{}]", u.code()),
        }
    }

    fn parse_suffix(rest: &str, whole: &str) -> Result<TimeUnit> {
        if rest.is_empty() {
            return Ok(TimeUnit::new(DateUnit::Generic));
        }
        let inner = rest
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(|| unknown_descr(whole))?;
        let digits = inner.chars().take_while(char::is_ascii_digit).count();
        let (num, code) = inner.split_at(digits);
        let multiple = if num.is_empty() {
            1
        } else {
            num.parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| unknown_descr(whole))?
        };
        let unit = DateUnit::from_code(code).ok_or_else(|| unknown_descr(whole))?;
        Ok(TimeUnit { unit, multiple })
    }
}

/// The type of one element of a tensor: one of NumPy's numeric, string or time dtypes.
///
/// Sizes of the string types count characters, as NumPy's `S5` and `U5` do: `Bytes(5)` is 5
/// bytes, `Unicode(5)` is 5 UTF-32 code points (20 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// `bool`, one byte, 0 or 1.
    Bool,
    /// `int8`.
    Int8,
    /// `int16`.
    Int16,
    /// `int32`.
    Int32,
    /// `int64`.
    Int64,
    /// `uint8`.
    UInt8,
    /// `uint16`.
    UInt16,
    /// `uint32`.
    UInt32,
    /// `uint64`.
    UInt64,
    /// `float16`, IEEE 754 half precision.
    Float16,
    /// `float32`.
    Float32,
    /// `float64`.
    Float64,
    /// `complex64`: two `float32`, real then imaginary.
    Complex64,
    /// `complex128`: two `float64`, real then imaginary.
    Complex128,
    /// Fixed-width bytes, NumPy's `S<n>`, zero-padded.
    Bytes(usize),
    /// Fixed-width unicode, NumPy's `U<n>`: n UTF-32 code points, zero-padded.
    Unicode(usize),
    /// `datetime64[unit]`: a signed 64-bit count of units since 1970-01-01.
    DateTime64(TimeUnit),
    /// `timedelta64[unit]`: a signed 64-bit count of units.
    TimeDelta64(TimeUnit),
}

fn unknown_descr(descr: &str) -> Error {
    Error::Dtype(format!("unknown dtype descriptor {descr:?}"))
}

impl DType {
    /// Bytes per element.
    ///
    /// ```
    /// use npyflow_format::DType;
    /// assert_eq!(DType::Complex64.itemsize(), 8);
    /// assert_eq!(DType::Unicode(5).itemsize(), 20);
    /// ```
    pub fn itemsize(self) -> usize {
        match self {
            DType::Bool | DType::Int8 | DType::UInt8 => 1,
            DType::Int16 | DType::UInt16 | DType::Float16 => 2,
            DType::Int32 | DType::UInt32 | DType::Float32 => 4,
            DType::Int64
            | DType::UInt64
            | DType::Float64
            | DType::Complex64
            | DType::DateTime64(_)
            | DType::TimeDelta64(_) => 8,
            DType::Complex128 => 16,
            DType::Bytes(n) => n,
            // Unicode sizes are checked at construction from a descriptor; saturate otherwise.
            DType::Unicode(n) => n.saturating_mul(4),
        }
    }

    /// The alignment a typed view of this dtype needs, as NumPy defines it
    /// (a complex number aligns like its float parts, a string like its characters): the
    /// [`swap_unit`](Self::swap_unit), the part every value is made of.
    pub fn alignment(self) -> usize {
        self.swap_unit()
    }

    /// The size of the units whose bytes are reversed to change byte order: the whole
    /// element for numbers, each part of a complex number, each character of a unicode string,
    /// and 1 (nothing to swap) for single bytes.
    pub fn swap_unit(self) -> usize {
        match self {
            DType::Complex64 => 4,
            DType::Complex128 => 8,
            DType::Bytes(_) => 1,
            DType::Unicode(_) => 4,
            other => other.itemsize(),
        }
    }

    /// Whether the byte order matters for this dtype (NumPy writes `|` where it does not).
    pub fn has_byte_order(self) -> bool {
        self.swap_unit() > 1
    }

    /// NumPy's `dtype.kind`: `b`, `i`, `u`, `f`, `c`, `S`, `U`, `M` or `m`.
    pub fn kind(self) -> char {
        match self {
            DType::Bool => 'b',
            DType::Int8 | DType::Int16 | DType::Int32 | DType::Int64 => 'i',
            DType::UInt8 | DType::UInt16 | DType::UInt32 | DType::UInt64 => 'u',
            DType::Float16 | DType::Float32 | DType::Float64 => 'f',
            DType::Complex64 | DType::Complex128 => 'c',
            DType::Bytes(_) => 'S',
            DType::Unicode(_) => 'U',
            DType::DateTime64(_) => 'M',
            DType::TimeDelta64(_) => 'm',
        }
    }

    /// The width of a string dtype in characters (`Bytes(n)` and `Unicode(n)` give `n`);
    /// `None` for any other dtype.
    ///
    /// ```
    /// use npyflow_format::DType;
    /// assert_eq!(DType::Unicode(5).string_width(), Some(5));
    /// assert_eq!(DType::Float32.string_width(), None);
    /// ```
    pub fn string_width(self) -> Option<usize> {
        match self {
            DType::Bytes(n) | DType::Unicode(n) => Some(n),
            _ => None,
        }
    }

    /// A string dtype at another width, of its kind (`Bytes(3)` at 5 is `Bytes(5)`); any
    /// other dtype as it is.
    ///
    /// ```
    /// use npyflow_format::DType;
    /// assert_eq!(DType::Bytes(3).with_string_width(5), DType::Bytes(5));
    /// assert_eq!(DType::Int8.with_string_width(5), DType::Int8);
    /// ```
    pub fn with_string_width(self, width: usize) -> DType {
        match self {
            DType::Bytes(_) => DType::Bytes(width),
            DType::Unicode(_) => DType::Unicode(width),
            other => other,
        }
    }

    /// Whether the dtype is bool, an integer or a float: the dtypes with a min, max and sum.
    pub fn is_real_number(self) -> bool {
        matches!(self.kind(), 'b' | 'i' | 'u' | 'f')
    }

    /// NumPy's `dtype.str` for this dtype stored in `order`: `"<f4"`, `"|b1"`, `"<U5"`,
    /// `"<M8[ns]"`. Single-byte types get `|` whatever the order.
    ///
    /// ```
    /// use npyflow_format::{ByteOrder, DType};
    /// assert_eq!(DType::Float32.descr(ByteOrder::Big), ">f4");
    /// assert_eq!(DType::Bool.descr(ByteOrder::Little), "|b1");
    /// assert_eq!(DType::Bytes(3).descr(ByteOrder::Little), "|S3");
    /// ```
    pub fn descr(self, order: ByteOrder) -> String {
        let prefix = if self.has_byte_order() {
            order.symbol()
        } else {
            '|'
        };
        let body = match self {
            DType::Bytes(n) => format!("S{n}"),
            DType::Unicode(n) => format!("U{n}"),
            DType::DateTime64(u) => format!("M8{}", u.suffix()),
            DType::TimeDelta64(u) => format!("m8{}", u.suffix()),
            other => format!("{}{}", other.kind(), other.itemsize()),
        };
        format!("{prefix}{body}")
    }

    /// Parses a dtype descriptor as NumPy's `np.dtype(str)` would for the types npyflow
    /// supports: a type string with an optional byte-order mark (`"<f4"`, `"|S5"`, `"M8[ns]"`),
    /// a one-character code (`"f"`, `"?"`, `"q"`), or a name (`"float32"`). Returns the dtype
    /// and the byte order of the data it describes (`|` and `=` mean native).
    ///
    /// Object arrays are refused with a message saying why (they hold pickles), and so are
    /// the dtypes npyflow does not support: structured, void and long double.
    ///
    /// ```
    /// use npyflow_format::{ByteOrder, DType};
    /// assert_eq!(DType::parse_descr(">i8").unwrap(), (DType::Int64, ByteOrder::Big));
    /// assert!(DType::parse_descr("|O").unwrap_err().to_string().contains("pickle"));
    /// ```
    pub fn parse_descr(descr: &str) -> Result<(DType, ByteOrder)> {
        let (order, body) = match descr.chars().next() {
            Some('<') => (ByteOrder::Little, &descr[1..]),
            Some('>') => (ByteOrder::Big, &descr[1..]),
            Some('|') | Some('=') => (ByteOrder::NATIVE, &descr[1..]),
            _ => (ByteOrder::NATIVE, descr),
        };
        if body.len() == descr.len() {
            if let Some(dtype) = Self::from_name(body) {
                return Ok((dtype, order));
            }
        }
        Self::parse_body(body, descr)?
            .ok_or_else(|| unknown_descr(descr))
            .map(|d| (d, order))
    }

    fn parse_body(body: &str, whole: &str) -> Result<Option<DType>> {
        let refuse_object = || {
            Error::Dtype(format!(
                "{whole:?} is an object array: its elements are pickled Python objects, and \
                 npyflow refuses pickles (they can run arbitrary code)"
            ))
        };
        let mut chars = body.chars();
        let Some(code) = chars.next() else {
            return Ok(None);
        };
        let rest = chars.as_str();
        // Single-character codes, with NumPy's meaning on 64-bit Linux and macOS.
        if rest.is_empty() {
            let dtype = match code {
                '?' => DType::Bool,
                'b' => DType::Int8,
                'B' => DType::UInt8,
                'h' => DType::Int16,
                'H' => DType::UInt16,
                'i' => DType::Int32,
                'I' => DType::UInt32,
                'l' | 'q' | 'p' => DType::Int64,
                'L' | 'Q' | 'P' => DType::UInt64,
                'e' => DType::Float16,
                'f' => DType::Float32,
                'd' => DType::Float64,
                'F' => DType::Complex64,
                'D' => DType::Complex128,
                'M' => DType::DateTime64(TimeUnit::new(DateUnit::Generic)),
                'm' => DType::TimeDelta64(TimeUnit::new(DateUnit::Generic)),
                'O' => return Err(refuse_object()),
                'g' | 'G' => {
                    return Err(Error::Dtype(format!(
                        "{whole:?} is a long double, which npyflow does not support"
                    )))
                }
                _ => return Ok(None),
            };
            return Ok(Some(dtype));
        }
        let sized = |n: &str| -> Result<usize> {
            if !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(unknown_descr(whole));
            }
            n.parse::<usize>().map_err(|_| {
                Error::Dtype(format!(
                    "{whole:?}: the element size does not fit in memory"
                ))
            })
        };
        let dtype = match code {
            'b' if rest == "1" => DType::Bool,
            'i' | 'u' | 'f' | 'c' => {
                let size = sized(rest)?;
                match (code, size) {
                    ('i', 1) => DType::Int8,
                    ('i', 2) => DType::Int16,
                    ('i', 4) => DType::Int32,
                    ('i', 8) => DType::Int64,
                    ('u', 1) => DType::UInt8,
                    ('u', 2) => DType::UInt16,
                    ('u', 4) => DType::UInt32,
                    ('u', 8) => DType::UInt64,
                    ('f', 2) => DType::Float16,
                    ('f', 4) => DType::Float32,
                    ('f', 8) => DType::Float64,
                    ('c', 8) => DType::Complex64,
                    ('c', 16) => DType::Complex128,
                    ('f', 12 | 16) | ('c', 24 | 32) => {
                        return Err(Error::Dtype(format!(
                            "{whole:?} is a long double, which npyflow does not support"
                        )))
                    }
                    _ => return Err(unknown_descr(whole)),
                }
            }
            'S' | 'a' | 'U' => {
                let n = sized(rest)?;
                if n == 0 {
                    return Err(Error::Dtype(format!(
                        "{whole:?} has no size; a string dtype in a file needs one"
                    )));
                }
                if code == 'U' {
                    if n.checked_mul(4).is_none() {
                        return Err(Error::Dtype(format!(
                            "{whole:?}: the element size does not fit in memory"
                        )));
                    }
                    DType::Unicode(n)
                } else {
                    DType::Bytes(n)
                }
            }
            'M' | 'm' => {
                let unit_part = rest.strip_prefix('8').ok_or_else(|| unknown_descr(whole))?;
                let unit = TimeUnit::parse_suffix(unit_part, whole)?;
                if code == 'M' {
                    DType::DateTime64(unit)
                } else {
                    DType::TimeDelta64(unit)
                }
            }
            'O' => return Err(refuse_object()),
            'V' => {
                return Err(Error::Dtype(format!(
                    "{whole:?} is a void (raw record) dtype, which npyflow does not support"
                )))
            }
            _ => return Ok(None),
        };
        Ok(Some(dtype))
    }

    fn from_name(name: &str) -> Option<DType> {
        Some(match name {
            "bool" => DType::Bool,
            "int8" => DType::Int8,
            "int16" => DType::Int16,
            "int32" => DType::Int32,
            "int64" => DType::Int64,
            "uint8" => DType::UInt8,
            "uint16" => DType::UInt16,
            "uint32" => DType::UInt32,
            "uint64" => DType::UInt64,
            "float16" => DType::Float16,
            "float32" => DType::Float32,
            "float64" => DType::Float64,
            "complex64" => DType::Complex64,
            "complex128" => DType::Complex128,
            _ => return None,
        })
    }
}

impl fmt::Display for DType {
    /// NumPy's `str(dtype)` for native order: `float32`, `|S5`, `<U5`, `datetime64[ns]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DType::Bool => f.write_str("bool"),
            DType::Bytes(_) | DType::Unicode(_) => f.write_str(&self.descr(ByteOrder::NATIVE)),
            DType::DateTime64(u) => write!(f, "datetime64{}", u.suffix()),
            DType::TimeDelta64(u) => write!(f, "timedelta64{}", u.suffix()),
            DType::Complex64 | DType::Complex128 => write!(f, "complex{}", self.itemsize() * 8),
            other => {
                let name = match other.kind() {
                    'i' => "int",
                    'u' => "uint",
                    _ => "float",
                };
                write!(f, "{name}{}", other.itemsize() * 8)
            }
        }
    }
}

impl FromStr for DType {
    type Err = Error;

    /// Parses a descriptor with [`DType::parse_descr`] and keeps the dtype; a
    /// descriptor with a non-native byte order is accepted (the order is a property of data,
    /// not of the dtype).
    fn from_str(s: &str) -> Result<DType> {
        DType::parse_descr(s).map(|(d, _)| d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_FIXED: [DType; 14] = [
        DType::Bool,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Float16,
        DType::Float32,
        DType::Float64,
        DType::Complex64,
        DType::Complex128,
    ];

    #[test]
    fn descr_round_trips_in_both_orders() {
        let mut all = ALL_FIXED.to_vec();
        all.extend([
            DType::Bytes(7),
            DType::Unicode(3),
            DType::DateTime64(TimeUnit::new(DateUnit::Nanoseconds)),
            DType::TimeDelta64(TimeUnit {
                unit: DateUnit::Milliseconds,
                multiple: 10,
            }),
            DType::DateTime64(TimeUnit::new(DateUnit::Generic)),
        ]);
        for d in all {
            for order in [ByteOrder::Little, ByteOrder::Big] {
                let s = d.descr(order);
                let (back, back_order) = DType::parse_descr(&s).unwrap();
                assert_eq!(back, d, "{s}");
                if d.has_byte_order() {
                    assert_eq!(back_order, order, "{s}");
                }
            }
        }
    }

    #[test]
    fn numpy_spellings() {
        // What NumPy prints for dtype.str.
        let cases = [
            (DType::Bool, "|b1"),
            (DType::Int8, "|i1"),
            (DType::UInt8, "|u1"),
            (DType::Int16, "<i2"),
            (DType::Float16, "<f2"),
            (DType::Complex64, "<c8"),
            (DType::Complex128, "<c16"),
            (DType::Unicode(5), "<U5"),
            (DType::Bytes(5), "|S5"),
            (DType::DateTime64(TimeUnit::new(DateUnit::Days)), "<M8[D]"),
            (
                DType::TimeDelta64(TimeUnit::new(DateUnit::Microseconds)),
                "<m8[us]",
            ),
        ];
        for (d, s) in cases {
            assert_eq!(d.descr(ByteOrder::Little), s);
        }
        assert_eq!(DType::Float32.to_string(), "float32");
        assert_eq!(DType::Complex128.to_string(), "complex128");
        assert_eq!(
            DType::DateTime64(TimeUnit::new(DateUnit::Nanoseconds)).to_string(),
            "datetime64[ns]"
        );
    }

    #[test]
    fn codes_and_names() {
        assert_eq!("f".parse::<DType>().unwrap(), DType::Float32);
        assert_eq!("?".parse::<DType>().unwrap(), DType::Bool);
        assert_eq!("q".parse::<DType>().unwrap(), DType::Int64);
        assert_eq!("float64".parse::<DType>().unwrap(), DType::Float64);
        assert_eq!("=u2".parse::<DType>().unwrap(), DType::UInt16);
        assert_eq!("|i4".parse::<DType>().unwrap(), DType::Int32);
        assert_eq!(
            "M8[25s]".parse::<DType>().unwrap(),
            DType::DateTime64(TimeUnit {
                unit: DateUnit::Seconds,
                multiple: 25
            })
        );
    }

    #[test]
    fn refusals_say_why() {
        let msg = |s: &str| DType::parse_descr(s).unwrap_err().to_string();
        assert!(msg("|O").contains("pickle"));
        assert!(msg("O").contains("pickle"));
        assert!(msg("<f16").contains("long double"));
        assert!(msg("|V8").contains("void"));
        assert!(msg("<x4").contains("unknown"));
        assert!(msg("").contains("unknown"));
        assert!(msg("<i3").contains("unknown"));
        assert!(msg("|S0").contains("no size"));
        assert!(msg("<U99999999999999999999").contains("fit"));
        assert!(msg("<U9999999999999999999").contains("fit"));
        assert!(msg("<M8[fortnight]").contains("unknown"));
        assert!(msg("<M8[0s]").contains("unknown"));
        assert!(msg(">float32").contains("unknown"));
    }

    #[test]
    fn alignment_divides_itemsize() {
        for d in ALL_FIXED {
            assert_eq!(d.itemsize() % d.alignment(), 0);
            assert_eq!(d.itemsize() % d.swap_unit(), 0);
        }
    }
}
