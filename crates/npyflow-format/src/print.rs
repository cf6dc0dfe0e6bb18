//! Tensors printed as NumPy prints arrays (`print(a)`, that is `str(a)`): `[1 2 3]`,
//! `[[1. 0.5]` / ` [2. 3. ]]`, `[ True False]`, `[b'a' b'bc']`, with NumPy's default options
//! (line width 75, arrays over 1,000 elements summarized with 3 items at each edge, floats
//! with up to 8 significant fractional digits).
//!
//! Differences from NumPy: complex numbers are printed without aligning the imaginary parts,
//! and datetime64/timedelta64 values as their integer counts followed by the unit
//! (`[0 1] days` style is not attempted: `17532[D]`).

use std::fmt::{self, Write};

use crate::dtype::DType;
use crate::tensor::Tensor;
use crate::tensor_ops::Value;

const LINE_WIDTH: usize = 75;
const THRESHOLD: usize = 1000;
const EDGE_ITEMS: usize = 3;
const PRECISION: usize = 8;

/// How floats of one array are written: positional with common padding, or scientific.
enum FloatStyle {
    Fixed { left: usize, right: usize },
    Exp { digits: usize },
}

/// The shortest digits that read back as `v` in its own precision, at most `PRECISION`
/// fractional digits, as (integer part, fractional part); `v` is finite.
fn positional(v: f64, is_f32: bool) -> (String, String) {
    let mut s = if is_f32 {
        format!("{}", v as f32)
    } else {
        format!("{v}")
    };
    if let Some(dot) = s.find('.') {
        if s.len() - dot - 1 > PRECISION {
            s = format!("{v:.PRECISION$}");
            while s.ends_with('0') {
                s.pop();
            }
        }
    }
    match s.split_once('.') {
        Some((i, f)) => (i.to_string(), f.to_string()),
        None => (s, String::new()),
    }
}

/// Shortest scientific digits of `v` (mantissa fraction digits), at most `PRECISION`.
fn exp_digits(v: f64, is_f32: bool) -> usize {
    let s = if is_f32 {
        format!("{:e}", v as f32)
    } else {
        format!("{v:e}")
    };
    let mantissa = s.split('e').next().unwrap_or("");
    mantissa
        .split_once('.')
        .map_or(0, |(_, f)| f.len())
        .min(PRECISION)
}

fn float_style(values: &[f64], is_f32: bool) -> FloatStyle {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let nonzero: Vec<f64> = finite
        .iter()
        .map(|v| v.abs())
        .filter(|&v| v != 0.0)
        .collect();
    if !nonzero.is_empty() {
        let max = nonzero.iter().copied().fold(f64::MIN, f64::max);
        let min = nonzero.iter().copied().fold(f64::MAX, f64::min);
        if max >= 1e8 || min < 1e-4 || max / min > 1e3 {
            let digits = finite
                .iter()
                .map(|&v| exp_digits(v, is_f32))
                .max()
                .unwrap_or(0);
            return FloatStyle::Exp { digits };
        }
    }
    let (mut left, mut right) = (0, 0);
    for &v in &finite {
        let (i, f) = positional(v, is_f32);
        left = left.max(i.len());
        right = right.max(f.len());
    }
    // nan and inf take the place of the whole number.
    for v in values.iter().filter(|v| !v.is_finite()) {
        left = left.max(special(*v).len().saturating_sub(right + 1));
    }
    FloatStyle::Fixed { left, right }
}

fn special(v: f64) -> &'static str {
    if v.is_nan() {
        "nan"
    } else if v > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

fn write_float(v: f64, is_f32: bool, style: &FloatStyle) -> String {
    match *style {
        FloatStyle::Fixed { left, right } => {
            if !v.is_finite() {
                return format!("{:>w$}", special(v), w = left + right + 1);
            }
            let (i, f) = positional(v, is_f32);
            format!("{i:>left$}.{f:<right$}")
        }
        FloatStyle::Exp { digits } => {
            if !v.is_finite() {
                return special(v).to_string();
            }
            let s = format!("{v:.digits$e}");
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let m = if digits == 0 {
                format!("{m}.")
            } else {
                m.to_string()
            };
            let (sign, e) = match e.strip_prefix('-') {
                Some(e) => ('-', e),
                None => ('+', e),
            };
            format!("{m}e{sign}{e:0>2}")
        }
    }
}

/// A scalar float as NumPy's `str(np.float64(v))`: the shortest repr, with `.0` kept.
fn scalar_float(v: f64, is_f32: bool) -> String {
    if !v.is_finite() {
        return special(v).to_string();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = if is_f32 {
            format!("{:e}", v as f32)
        } else {
            format!("{v:e}")
        };
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, e) = match e.strip_prefix('-') {
            Some(e) => ('-', e),
            None => ('+', e),
        };
        return format!("{m}e{sign}{e:0>2}");
    }
    let s = if is_f32 {
        format!("{}", v as f32)
    } else {
        format!("{v}")
    };
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

fn string_item(t: &Tensor, index: usize) -> String {
    let size = t.dtype().itemsize();
    let raw = &t.as_bytes()[index * size..(index + 1) * size];
    match t.dtype() {
        DType::Bytes(_) => {
            let end = raw.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            let mut s = String::from("b'");
            for &b in &raw[..end] {
                match b {
                    b'\'' => s.push_str("\\'"),
                    b'\\' => s.push_str("\\\\"),
                    b'\n' => s.push_str("\\n"),
                    b'\t' => s.push_str("\\t"),
                    0x20..=0x7e => s.push(b as char),
                    _ => {
                        let _ = write!(s, "\\x{b:02x}");
                    }
                }
            }
            s.push('\'');
            s
        }
        _ => {
            let mut chars: Vec<char> = raw
                .chunks_exact(4)
                .map(|c| {
                    let u = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
                    char::from_u32(u).unwrap_or('\u{fffd}')
                })
                .collect();
            while chars.last() == Some(&'\0') {
                chars.pop();
            }
            let s: String = chars.into_iter().collect();
            format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
        }
    }
}

/// Which flat indices are shown: all, or the edges of each axis when summarizing.
fn shown_indices(shape: &[usize], summarize: bool) -> Vec<usize> {
    let mut out = Vec::new();
    fn walk(shape: &[usize], axis: usize, base: usize, summarize: bool, out: &mut Vec<usize>) {
        if axis == shape.len() {
            out.push(base);
            return;
        }
        let n = shape[axis];
        let stride: usize = shape[axis + 1..].iter().product();
        let idx: Vec<usize> = if summarize && n > 2 * EDGE_ITEMS {
            (0..EDGE_ITEMS).chain(n - EDGE_ITEMS..n).collect()
        } else {
            (0..n).collect()
        };
        for i in idx {
            walk(shape, axis + 1, base + i * stride, summarize, out);
        }
    }
    walk(shape, 0, 0, summarize, &mut out);
    out
}

/// Every shown element of `t` as text, padded to one width, keyed by flat index.
fn element_words(t: &Tensor, shown: &[usize]) -> Vec<(usize, String)> {
    let dtype = t.dtype();
    let is_f32 = matches!(dtype, DType::Float32 | DType::Float16 | DType::Complex64);
    let values: Vec<Option<Value>> = shown.iter().map(|&i| t.value(i).ok().flatten()).collect();
    let mut words: Vec<String> = match dtype.kind() {
        'f' => {
            let vals: Vec<f64> = values
                .iter()
                .map(|v| match v {
                    Some(Value::Float(f)) => *f,
                    _ => 0.0,
                })
                .collect();
            let style = float_style(&vals, is_f32);
            vals.iter()
                .map(|&v| write_float(v, is_f32, &style))
                .collect()
        }
        'c' => {
            let (re, im): (Vec<f64>, Vec<f64>) = values
                .iter()
                .map(|v| match v {
                    Some(Value::Complex(r, i)) => (*r, *i),
                    _ => (0.0, 0.0),
                })
                .unzip();
            let rs = float_style(&re, is_f32);
            let is = float_style(&im.iter().map(|v| v.abs()).collect::<Vec<_>>(), is_f32);
            re.iter()
                .zip(&im)
                .map(|(&r, &i)| {
                    let sign = if i < 0.0 || (i == 0.0 && i.is_sign_negative()) {
                        '-'
                    } else {
                        '+'
                    };
                    let iw = write_float(i.abs(), is_f32, &is);
                    format!("{}{sign}{}j", write_float(r, is_f32, &rs), iw.trim())
                })
                .collect()
        }
        'S' | 'U' => shown.iter().map(|&i| string_item(t, i)).collect(),
        _ => values
            .iter()
            .map(|v| match v {
                Some(Value::Bool(b)) => if *b { "True" } else { "False" }.to_string(),
                Some(Value::Int(i)) => i.to_string(),
                Some(Value::UInt(u)) => u.to_string(),
                _ => String::new(),
            })
            .collect(),
    };
    if matches!(dtype, DType::DateTime64(_) | DType::TimeDelta64(_)) {
        let unit = match dtype {
            DType::DateTime64(u) | DType::TimeDelta64(u) => u.suffix(),
            _ => unreachable!(),
        };
        for w in &mut words {
            w.push_str(&unit);
        }
    }
    // Numbers are right-aligned to one width; NumPy leaves strings as they are.
    let width = if matches!(dtype.kind(), 'S' | 'U') {
        0
    } else {
        words.iter().map(|w| w.chars().count()).max().unwrap_or(0)
    };
    shown
        .iter()
        .zip(words)
        .map(|(&i, w)| (i, format!("{w:>width$}")))
        .collect()
}

struct Printer<'a> {
    shape: &'a [usize],
    summarize: bool,
    words: std::collections::HashMap<usize, String>,
}

impl Printer<'_> {
    /// The text of the sub-array at `axis` starting at flat index `base`; `indent` is the
    /// number of brackets open before it.
    fn block(&self, axis: usize, base: usize, out: &mut String) {
        let n = self.shape[axis];
        let stride: usize = self.shape[axis + 1..].iter().product();
        let depth = axis + 1;
        let idx: Vec<Option<usize>> = if self.summarize && n > 2 * EDGE_ITEMS {
            (0..EDGE_ITEMS)
                .map(Some)
                .chain(std::iter::once(None))
                .chain((n - EDGE_ITEMS..n).map(Some))
                .collect()
        } else {
            (0..n).map(Some).collect()
        };
        out.push('[');
        if axis + 1 == self.shape.len() {
            // The innermost axis: words on lines of at most LINE_WIDTH - depth characters.
            let limit = LINE_WIDTH - depth;
            let prefix = " ".repeat(depth);
            let mut line_len = out.len() - out.rfind('\n').map_or(0, |p| p + 1);
            for (k, i) in idx.iter().enumerate() {
                let word = match i {
                    Some(i) => self.words[&(base + i * stride)].as_str(),
                    None => "...",
                };
                if k > 0 {
                    if line_len + 1 + word.len() > limit {
                        out.push('\n');
                        out.push_str(&prefix);
                        line_len = prefix.len();
                    } else {
                        out.push(' ');
                        line_len += 1;
                    }
                }
                out.push_str(word);
                line_len += word.len();
            }
        } else {
            let blank_lines = self.shape.len() - axis - 2;
            for (k, i) in idx.iter().enumerate() {
                if k > 0 {
                    out.push('\n');
                    for _ in 0..blank_lines {
                        out.push('\n');
                    }
                    out.push_str(&" ".repeat(depth));
                }
                match i {
                    Some(i) => self.block(axis + 1, base + i * stride, out),
                    None => out.push_str("..."),
                }
            }
        }
        out.push(']');
    }
}

impl fmt::Display for Tensor {
    /// Prints the tensor as NumPy's `print(array)` does: NumPy's default options (line width
    /// 75, more than 1,000 elements summarized); complex numbers without aligned imaginary
    /// parts, and times as counts with their unit.
    ///
    /// ```
    /// use npyflow_format::Tensor;
    /// let t = Tensor::from_vec(vec![1i64, 2, 3, 4], &[2, 2]).unwrap();
    /// assert_eq!(t.to_string(), "[[1 2]\n [3 4]]");
    /// assert_eq!(Tensor::scalar(0.5f64).to_string(), "0.5");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ndim() == 0 {
            let is_f32 = matches!(self.dtype(), DType::Float32 | DType::Float16);
            return match self.value(0).ok().flatten() {
                Some(Value::Float(v)) => f.write_str(&scalar_float(v, is_f32)),
                Some(Value::Complex(re, im)) => {
                    let sign = if im < 0.0 { '-' } else { '+' };
                    write!(
                        f,
                        "({}{sign}{}j)",
                        scalar_float(re, is_f32),
                        scalar_float(im.abs(), is_f32)
                    )
                }
                _ => {
                    let words = element_words(self, &[0]);
                    f.write_str(words[0].1.trim_start())
                }
            };
        }
        if self.size() == 0 {
            return f.write_str("[]");
        }
        let summarize = self.size() > THRESHOLD;
        let shown = shown_indices(self.shape(), summarize);
        let printer = Printer {
            shape: self.shape(),
            summarize,
            words: element_words(self, &shown).into_iter().collect(),
        };
        let mut out = String::new();
        printer.block(0, 0, &mut out);
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f64s(v: &[f64]) -> String {
        Tensor::from_vec(v.to_vec(), &[v.len()])
            .unwrap()
            .to_string()
    }

    #[test]
    fn floats_as_numpy() {
        // Each expected string is what NumPy 2 prints for the same array.
        assert_eq!(f64s(&[1.5, 2.25]), "[1.5  2.25]");
        assert_eq!(f64s(&[0.1, 1.0]), "[0.1 1. ]");
        assert_eq!(f64s(&[1e-5, 1.0]), "[1.e-05 1.e+00]");
        assert_eq!(f64s(&[1e-5, 1.5e10]), "[1.0e-05 1.5e+10]");
        assert_eq!(f64s(&[123456789.0, 1.0]), "[1.23456789e+08 1.00000000e+00]");
        assert_eq!(
            f64s(&[f64::NAN, 1.0, f64::NEG_INFINITY]),
            "[ nan   1. -inf]"
        );
        assert_eq!(f64s(&[1.0 / 3.0, 2.0 / 3.0]), "[0.33333333 0.66666667]");
        assert_eq!(f64s(&[-1.5, 2.0]), "[-1.5  2. ]");
        assert_eq!(f64s(&[0.0, -0.0]), "[ 0. -0.]");
        let m = Tensor::from_vec((0..6).map(|i| i as f64 * 0.5).collect(), &[2, 3]).unwrap();
        assert_eq!(m.to_string(), "[[0.  0.5 1. ]\n [1.5 2.  2.5]]");
        assert_eq!(
            Tensor::from_vec(vec![0.1f32], &[1]).unwrap().to_string(),
            "[0.1]"
        );
        assert_eq!(Tensor::scalar(1.0f64).to_string(), "1.0");
        assert_eq!(Tensor::scalar(0.1f32).to_string(), "0.1");
    }

    #[test]
    fn integers_bools_strings() {
        let t = Tensor::from_vec((0..24i64).collect(), &[2, 3, 4]).unwrap();
        assert_eq!(
            t.to_string(),
            "[[[ 0  1  2  3]\n  [ 4  5  6  7]\n  [ 8  9 10 11]]\n\n [[12 13 14 15]\n  [16 17 18 \
             19]\n  [20 21 22 23]]]"
        );
        assert_eq!(
            Tensor::from_bools(&[true, false], &[2])
                .unwrap()
                .to_string(),
            "[ True False]"
        );
        let s = Tensor::new(
            DType::Bytes(2),
            &[2],
            crate::Buffer::from_vec(b"a\0bc".to_vec()),
        )
        .unwrap();
        assert_eq!(s.to_string(), "[b'a' b'bc']");
        assert_eq!(Tensor::scalar(5i64).to_string(), "5");
        assert_eq!(
            Tensor::zeros(DType::Int8, &[2, 0]).unwrap().to_string(),
            "[]"
        );
    }

    #[test]
    fn wraps_and_summarizes() {
        let t = Tensor::from_vec((0..30i64).map(|i| i * 1000).collect(), &[30]).unwrap();
        assert_eq!(
            t.to_string(),
            "[    0  1000  2000  3000  4000  5000  6000  7000  8000  9000 10000 11000\n 12000 \
             13000 14000 15000 16000 17000 18000 19000 20000 21000 22000 23000\n 24000 25000 \
             26000 27000 28000 29000]"
        );
        let big = Tensor::from_vec((0..2000i64).collect(), &[2000]).unwrap();
        assert_eq!(big.to_string(), "[   0    1    2 ... 1997 1998 1999]");
    }
}
