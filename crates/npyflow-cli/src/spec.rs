//! Pipelines written as a chain of calls, for `npyflow bench --pipeline`:
//! `shuffle(10000, seed=0).map(cast(float32)).batch(256)`.
//!
//! The text is parsed into calls, then each call becomes the `Dataset` method of the same
//! name; nothing here decides how a pipeline runs.

use anyhow::{anyhow, bail, Context, Result};
use npyflow::dataset::{
    positive_from_tf, AutotuneOptions, BatchOptions, Dataset, MapOptions, Options, ShuffleOptions,
};
use npyflow::ops::{self, Op};
use npyflow::{DType, AUTOTUNE};

/// A value in a call's arguments.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number, integer or not.
    Num(f64),
    /// A bare word: a dtype, `AUTOTUNE`, `True`/`False`, `None`.
    Word(String),
    /// A quoted string.
    Str(String),
    /// `[a, b, ...]`.
    List(Vec<Value>),
    /// A nested call, like `cast(float32)` inside `map(...)`.
    Call(Call),
}

/// `name(positional..., key=value...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The method or op name.
    pub name: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments, in order.
    pub kwargs: Vec<(String, Value)>,
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

/// A syntax error at byte `at` of the pipeline's text.
#[derive(Debug)]
struct SyntaxError {
    at: usize,
    message: String,
}

type Parsed<T> = std::result::Result<T, SyntaxError>;

fn fail<T>(at: usize, message: impl Into<String>) -> Parsed<T> {
    Err(SyntaxError {
        at,
        message: message.into(),
    })
}

/// The pipeline's text with a caret under character `at`, for an error message.
fn point_at(text: &str, at: usize) -> String {
    let at = at.min(text.len());
    let column = text.get(..at).map_or(at, |t| t.chars().count());
    format!("  {text}\n  {}^", " ".repeat(column))
}

impl Parser<'_> {
    fn space(&mut self) {
        while self.text.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.space();
        self.text.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Parsed<()> {
        match self.peek() {
            Some(got) if got == c => {
                self.pos += 1;
                Ok(())
            }
            got => fail(
                self.pos,
                format!(
                    "expected '{}', found {}",
                    c as char,
                    got.map_or("the end".to_string(), |g| format!("'{}'", g as char))
                ),
            ),
        }
    }

    fn word(&mut self) -> Parsed<String> {
        self.space();
        let start = self.pos;
        while self
            .text
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.pos += 1;
        }
        if start == self.pos {
            return match self.text.get(start) {
                Some(&c) => fail(start, format!("expected a name, found '{}'", c as char)),
                None => fail(start, "expected a name, found the end"),
            };
        }
        Ok(String::from_utf8_lossy(&self.text[start..self.pos]).into_owned())
    }

    fn call(&mut self) -> Parsed<Call> {
        let name = self.word()?;
        self.expect(b'(')?;
        let mut call = Call {
            name,
            args: Vec::new(),
            kwargs: Vec::new(),
        };
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(call);
        }
        loop {
            // A keyword argument is a word followed by '='.
            let save = self.pos;
            let is_kw = self.word().is_ok() && self.peek() == Some(b'=');
            self.pos = save;
            if is_kw {
                let key = self.word()?;
                self.expect(b'=')?;
                call.kwargs.push((key, self.value()?));
            } else {
                if !call.kwargs.is_empty() {
                    self.space();
                    return fail(
                        self.pos,
                        format!(
                            "a positional argument after keyword arguments in {}()",
                            call.name
                        ),
                    );
                }
                call.args.push(self.value()?);
            }
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    return Ok(call);
                }
                _ => return fail(self.pos, "expected ',' or ')'"),
            }
        }
    }

    /// The values of a list or tuple up to `close` (the opening bracket read), and whether a
    /// comma came after the last one.
    fn items(&mut self, close: u8) -> Parsed<(Vec<Value>, bool)> {
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok((items, trailing_comma));
            }
            items.push(self.value()?);
            trailing_comma = false;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    trailing_comma = true;
                }
                Some(c) if c == close => {}
                _ => return fail(self.pos, format!("expected ',' or '{}'", close as char)),
            }
        }
    }

    fn value(&mut self) -> Parsed<Value> {
        match self.peek() {
            // A list, or a tuple (taken as a list): `[1, 2]`, `(1, 2)`, `(1,)`; `(x)` is x.
            Some(b'[') => {
                self.pos += 1;
                Ok(Value::List(self.items(b']')?.0))
            }
            Some(b'(') => {
                self.pos += 1;
                let (mut items, trailing_comma) = self.items(b')')?;
                if items.len() == 1 && !trailing_comma {
                    return Ok(items.remove(0));
                }
                Ok(Value::List(items))
            }
            Some(q @ (b'\'' | b'"')) => {
                self.pos += 1;
                let start = self.pos;
                while self.text.get(self.pos).is_some_and(|&c| c != q) {
                    self.pos += 1;
                }
                let s = String::from_utf8_lossy(&self.text[start..self.pos]).into_owned();
                self.expect(q)?;
                Ok(Value::Str(s))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => {
                let start = self.pos;
                self.pos += 1;
                while self.text.get(self.pos).is_some_and(|c| {
                    c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+' | b'/')
                }) {
                    self.pos += 1;
                }
                let s = std::str::from_utf8(&self.text[start..self.pos]).unwrap_or("");
                // `1/255` is allowed, for readable scales.
                let num = match s.split_once('/') {
                    Some((a, b)) => a
                        .parse::<f64>()
                        .ok()
                        .zip(b.parse::<f64>().ok())
                        .map(|(a, b)| a / b),
                    None => s.parse::<f64>().ok(),
                };
                match num {
                    Some(n) => Ok(Value::Num(n)),
                    None => fail(start, format!("{s:?} is not a number")),
                }
            }
            Some(_) => {
                let save = self.pos;
                let w = self.word()?;
                if self.peek() == Some(b'(') {
                    self.pos = save;
                    Ok(Value::Call(self.call()?))
                } else {
                    Ok(Value::Word(w))
                }
            }
            None => fail(self.pos, "the pipeline ends in the middle of a call"),
        }
    }
}

/// Parses `a(..).b(..)...` into its calls. A syntax error shows the text with a caret
/// under the character at fault.
pub fn parse(text: &str) -> Result<Vec<Call>> {
    let mut p = Parser {
        text: text.as_bytes(),
        pos: 0,
    };
    let mut parse_all = || -> Parsed<Vec<Call>> {
        let mut calls = vec![p.call()?];
        while p.peek() == Some(b'.') {
            p.pos += 1;
            calls.push(p.call()?);
        }
        if p.peek().is_some() {
            return fail(p.pos, "unexpected text after the last call");
        }
        Ok(calls)
    };
    parse_all().map_err(|e| {
        anyhow!(
            "{} (character {}):\n{}\n(see `npyflow bench --help` for the syntax)",
            e.message,
            e.at + 1,
            point_at(text, e.at)
        )
    })
}

/// The syntax of `--pipeline`, and every transformation and op it knows (`npyflow bench
/// --help` shows it).
pub const SYNTAX: &str = "\
A pipeline is a chain of calls, written as in Python: name(args).name(args)...
Each call is the tf.data transformation of that name, with tf.data's parameters, given by
position or by keyword (name=value). Values: integers and decimals (1/255 is allowed),
True, False, None, AUTOTUNE, dtype names (float32, uint8, ...), 'strings', lists [1, 2]
and tuples (1, 2) (the same thing here), and, inside map, op calls.

Transformations:
  map(op, ..., num_parallel_calls=None, deterministic=None)   ops applied in order
  batch(batch_size, drop_remainder=False, num_parallel_calls=None, deterministic=None)
  shuffle(buffer_size, seed=None, reshuffle_each_iteration=True)
  global_shuffle(seed=None, reshuffle_each_iteration=True)    (npyflow's own: no buffer)
  prefetch(buffer_size=AUTOTUNE)
  take(count)   skip(count)   repeat(count=None)   shard(num_shards, index)
  unbatch()   rebatch(batch_size, drop_remainder=False)   (batch_size: a size or a list)
  cache(filename='')   enumerate(start=0)   assert_cardinality(expected_cardinality)
  with_options(autotune=None, cpu_budget=None, ram_budget=None)   tf.data's
      Options.autotune for the whole pipeline: AUTOTUNE stages tuned while it runs (False:
      not), within cpu_budget threads and ram_budget bytes of buffers (None: the cores, half
      the memory)

Ops, for map (each also takes component=: a tuple index or a dict key, to apply it to one
part of the element only; without it, to every tensor):
  cast(dtype)   scale(factor)   affine(factor, offset)   normalize(mean, std)
  one_hot(depth)   reshape(shape)   transpose(perm)
  random_flip(axis, seed=0)   random_crop(size, seed=0)

Example, for images and labels given with --x and --y (the element is the tuple (x, y)):
  --pipeline \"shuffle(10000, seed=0).map(cast(float32, component=0), scale(1/255, component=0)).batch(256)\"";

impl std::fmt::Display for Value {
    /// As the pipeline's syntax writes it: `2`, `0.5`, `float32`, `'x'`, `[1, 2]`, `cast(float32)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |f: &mut std::fmt::Formatter<'_>, items: &[Value]| -> std::fmt::Result {
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            Ok(())
        };
        match self {
            Value::Num(n) => write!(f, "{n}"),
            Value::Word(w) => f.write_str(w),
            Value::Str(s) => write!(f, "'{s}'"),
            Value::List(items) => {
                f.write_str("[")?;
                join(f, items)?;
                f.write_str("]")
            }
            Value::Call(c) => {
                write!(f, "{}(", c.name)?;
                join(f, &c.args)?;
                for (i, (k, v)) in c.kwargs.iter().enumerate() {
                    if i > 0 || !c.args.is_empty() {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl Value {
    fn int(&self) -> Result<i64> {
        match self {
            // A float's integers past 2^63 would saturate to i64::MAX, quietly: refused as
            // tf.data refuses a Python int that does not fit in int64.
            Value::Num(n) if n.fract() == 0.0 && (-(2f64.powi(63))..2f64.powi(63)).contains(n) => {
                Ok(*n as i64)
            }
            Value::Num(n) if n.fract() == 0.0 => {
                bail!("expected an integer that fits in 64 bits (int64), got {n}")
            }
            Value::Word(w) if w == "AUTOTUNE" => Ok(AUTOTUNE),
            other => bail!("expected an integer, got {other}"),
        }
    }
    /// A count, size, axis or index: an integer that is not negative (a negative one cast
    /// to `usize` would ask for 2^64 - n of something).
    fn count(&self) -> Result<usize> {
        let n = self.int()?;
        usize::try_from(n).map_err(|_| anyhow!("expected a non-negative integer, got {n}"))
    }
    fn float(&self) -> Result<f64> {
        match self {
            Value::Num(n) => Ok(*n),
            other => bail!("expected a number, got {other}"),
        }
    }
    fn boolean(&self) -> Result<bool> {
        match self {
            Value::Word(w) if w == "True" || w == "true" => Ok(true),
            Value::Word(w) if w == "False" || w == "false" => Ok(false),
            other => bail!("expected True or False, got {other}"),
        }
    }
    fn list(&self) -> Result<&[Value]> {
        match self {
            Value::List(v) => Ok(v),
            other => bail!("expected a list, got {other}"),
        }
    }
}

impl Call {
    /// Argument `i`, or keyword `key`.
    fn arg(&self, i: usize, key: &str) -> Option<&Value> {
        self.kwargs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .or_else(|| self.args.get(i))
    }

    /// Argument `i` or keyword `key`, which must be given.
    fn need(&self, i: usize, key: &str) -> Result<&Value> {
        self.arg(i, key)
            .ok_or_else(|| anyhow!("{}() needs its argument {key}", self.name))
    }

    /// Argument `i` or keyword `key`, True or False; `default` when not given.
    fn flag(&self, i: usize, key: &str, default: bool) -> Result<bool> {
        self.arg(i, key)
            .map_or(Ok(default), Value::boolean)
            .with_context(|| format!("argument {key}"))
    }

    /// Argument `i` or keyword `key`, which must be given: a size, a positive integer (the
    /// core's check, which names the call and the argument).
    fn size(&self, i: usize, key: &str) -> Result<usize> {
        let n = self
            .need(i, key)?
            .int()
            .with_context(|| format!("argument {key}"))?;
        Ok(positive_from_tf(&self.name, key, n)? as usize)
    }

    fn check_keys(&self, allowed: &[&str]) -> Result<()> {
        for (i, (k, _)) in self.kwargs.iter().enumerate() {
            if !allowed.contains(&k.as_str()) {
                bail!(
                    "{}() has no argument {k:?} (it takes {allowed:?})",
                    self.name
                );
            }
            if self.kwargs[..i].iter().any(|(other, _)| other == k) {
                bail!("{}() got argument {k:?} twice", self.name);
            }
        }
        Ok(())
    }

    /// Refuses, as Python would, more positional arguments than `positional` names, an
    /// unknown keyword, and an argument given twice (by position and by keyword, or twice by
    /// keyword). `keyword_only` names the arguments that can only be given by keyword.
    fn check_params(&self, positional: &[&str], keyword_only: &[&str]) -> Result<()> {
        if self.args.len() > positional.len() {
            bail!(
                "{}() takes at most {} positional argument{}, {} given",
                self.name,
                positional.len(),
                if positional.len() == 1 { "" } else { "s" },
                self.args.len()
            );
        }
        let allowed: Vec<&str> = positional.iter().chain(keyword_only).copied().collect();
        self.check_keys(&allowed)?;
        for (k, _) in &self.kwargs {
            if positional[..self.args.len()].contains(&k.as_str()) {
                bail!(
                    "{}() got argument {k:?} both by position and by keyword",
                    self.name
                );
            }
        }
        Ok(())
    }

    fn seed(&self, i: usize) -> Result<Option<u64>> {
        match self.arg(i, "seed") {
            None => Ok(None),
            Some(Value::Word(w)) if w == "None" => Ok(None),
            Some(v) => Ok(Some(v.int().context("argument seed")? as u64)),
        }
    }
}

/// The built-in op a nested call names.
fn op(call: &Call) -> Result<Op> {
    let params: &[&str] = match call.name.as_str() {
        "cast" => &["dtype"],
        "scale" => &["factor"],
        "affine" => &["factor", "offset"],
        "normalize" => &["mean", "std"],
        "one_hot" => &["depth"],
        "reshape" => &["shape"],
        "transpose" => &["perm"],
        "random_flip" => &["axis", "seed"],
        "random_crop" => &["size", "seed"],
        _ => &[],
    };
    if !params.is_empty() {
        call.check_params(params, &["component"])?;
    }
    let ints = |v: &Value| -> Result<Vec<i64>> { v.list()?.iter().map(Value::int).collect() };
    let counts = |v: &Value| -> Result<Vec<usize>> { v.list()?.iter().map(Value::count).collect() };
    let op = match call.name.as_str() {
        "cast" => {
            let dtype = match call.need(0, "dtype")? {
                Value::Word(w) | Value::Str(w) => DType::parse_descr(w)?.0,
                other => bail!("cast(): expected a dtype, got {other}"),
            };
            ops::cast(dtype)
        }
        "scale" => ops::scale(call.need(0, "factor")?.float().context("argument factor")?),
        "affine" => ops::affine(
            call.need(0, "factor")?.float().context("argument factor")?,
            call.need(1, "offset")?.float().context("argument offset")?,
        ),
        "normalize" => {
            let floats =
                |v: &Value| -> Result<Vec<f64>> { v.list()?.iter().map(Value::float).collect() };
            ops::normalize(
                &floats(call.need(0, "mean")?).context("argument mean")?,
                &floats(call.need(1, "std")?).context("argument std")?,
            )
        }
        "one_hot" => ops::one_hot(call.need(0, "depth")?.count().context("argument depth")?),
        "reshape" => ops::reshape(&ints(call.need(0, "shape")?).context("argument shape")?),
        "transpose" => ops::transpose(&counts(call.need(0, "perm")?).context("argument perm")?),
        "random_flip" => ops::random_flip(
            call.need(0, "axis")?.count().context("argument axis")?,
            call.seed(1)?.unwrap_or(0),
        ),
        "random_crop" => ops::random_crop(
            &counts(call.need(0, "size")?).context("argument size")?,
            call.seed(1)?.unwrap_or(0),
        ),
        other => bail!(
            "unknown op {other} (cast, scale, affine, normalize, one_hot, reshape, transpose, \
             random_flip, random_crop)"
        ),
    };
    Ok(match call.arg(usize::MAX, "component") {
        None => op,
        Some(v @ Value::Num(_)) => op.component(v.count().context("argument component")?),
        Some(Value::Word(k) | Value::Str(k)) => op.key(k),
        Some(other) => bail!("argument component: expected an index or a key, got {other}"),
    })
}

/// Applies the calls to `ds`, each as the `Dataset` method of its name.
pub fn apply(mut ds: Dataset, calls: &[Call]) -> Result<Dataset> {
    for call in calls {
        ds = apply_one(&ds, call).map_err(|e| {
            // npyflow's own checks name the transformation already (`invalid argument:
            // batch: batch_size must be ...`): said once.
            let text = e.to_string();
            let named = text
                .strip_prefix("invalid argument: ")
                .unwrap_or(&text)
                .starts_with(&format!("{}: ", call.name));
            if named {
                e
            } else {
                e.context(format!("in {}()", call.name))
            }
        })?;
    }
    Ok(ds)
}

fn apply_one(ds: &Dataset, c: &Call) -> Result<Dataset> {
    const PARALLEL: &[&str] = &["num_parallel_calls", "deterministic"];
    let params: &[&str] = match c.name.as_str() {
        "map" | "unbatch" => &[],
        "batch" => &["batch_size", "drop_remainder"],
        "shuffle" => &["buffer_size", "seed", "reshuffle_each_iteration"],
        "global_shuffle" => &["seed", "reshuffle_each_iteration"],
        "prefetch" => &["buffer_size"],
        "take" | "skip" | "repeat" => &["count"],
        "shard" => &["num_shards", "index"],
        "rebatch" => &["batch_size", "drop_remainder"],
        "cache" => &["filename"],
        "enumerate" => &["start"],
        "assert_cardinality" => &["expected_cardinality"],
        "with_options" => &[],
        _ => return Err(unknown_transformation(&c.name)),
    };
    match c.name.as_str() {
        // Any number of ops.
        "map" => c.check_keys(PARALLEL)?,
        "with_options" => c.check_params(&[], &["autotune", "cpu_budget", "ram_budget"])?,
        "batch" => c.check_params(params, PARALLEL)?,
        _ => c.check_params(params, &[])?,
    }
    // tf.data's keywords, read as given; the core checks them.
    let parallel = |c: &Call| -> Result<(Option<i64>, Option<bool>)> {
        let n = c
            .arg(usize::MAX, "num_parallel_calls")
            .map(|v| v.int().context("argument num_parallel_calls"));
        let det = c
            .arg(usize::MAX, "deterministic")
            .map(|v| v.boolean().context("argument deterministic"));
        Ok((n.transpose()?, det.transpose()?))
    };
    Ok(match c.name.as_str() {
        "map" => {
            if c.args.is_empty() {
                bail!("map() needs at least one op, like map(cast(float32))");
            }
            let (n, det) = parallel(c)?;
            let options = MapOptions::from_tf(n, det)?;
            let mut out = ds.clone();
            for (k, a) in c.args.iter().enumerate() {
                let Value::Call(inner) = a else {
                    bail!("map(): argument {k} is not an op call");
                };
                out = out.map(op(inner)?, options.clone())?;
            }
            out
        }
        "batch" => {
            let size = c.size(0, "batch_size")?;
            let drop = c.flag(1, "drop_remainder", false)?;
            let (n, det) = parallel(c)?;
            ds.batch(size, BatchOptions::from_tf(drop, n, det)?)?
        }
        "shuffle" => {
            let n = c.size(0, "buffer_size")?;
            let re = c.flag(2, "reshuffle_each_iteration", true)?;
            let options = ShuffleOptions {
                seed: c.seed(1)?,
                reshuffle_each_iteration: re,
            };
            ds.shuffle(n, options)?
        }
        "global_shuffle" => {
            let re = c.flag(1, "reshuffle_each_iteration", true)?;
            ds.global_shuffle(ShuffleOptions {
                seed: c.seed(0)?,
                reshuffle_each_iteration: re,
            })?
        }
        "prefetch" => ds.prefetch(
            c.arg(0, "buffer_size")
                .map_or(Ok(AUTOTUNE), Value::int)
                .context("argument buffer_size")?,
        )?,
        "take" => ds.take(c.need(0, "count")?.int().context("argument count")?),
        "skip" => ds.skip(c.need(0, "count")?.int().context("argument count")?),
        "repeat" => match c.arg(0, "count") {
            None => ds.repeat(None),
            Some(Value::Word(w)) if w == "None" => ds.repeat(None),
            Some(v) => {
                let n = v.int().context("argument count")?;
                ds.repeat(u64::try_from(n).ok())
            }
        },
        "shard" => ds.shard(
            c.need(0, "num_shards")?
                .count()
                .context("argument num_shards")? as u64,
            c.need(1, "index")?.count().context("argument index")? as u64,
        )?,
        "unbatch" => ds.unbatch()?,
        "rebatch" => {
            let sizes = match c.need(0, "batch_size")? {
                Value::List(items) => items.iter().map(Value::count).collect::<Result<_>>(),
                v => v.count().map(|n| vec![n]),
            }
            .context("argument batch_size")?;
            ds.rebatch(&sizes, c.flag(1, "drop_remainder", false)?)?
        }
        "cache" => ds.cache(c.arg(0, "filename").map(|v| match v {
            Value::Str(s) | Value::Word(s) => s.clone(),
            _ => String::new(),
        }))?,
        "enumerate" => ds.enumerate(
            c.arg(0, "start")
                .map_or(Ok(0), Value::int)
                .context("argument start")?,
        ),
        "assert_cardinality" => ds.assert_cardinality(
            c.need(0, "expected_cardinality")?
                .int()
                .context("argument expected_cardinality")?,
        )?,
        "with_options" => {
            let get = |key: &str| -> Result<Option<i64>> {
                match c.arg(usize::MAX, key) {
                    None => Ok(None),
                    Some(Value::Word(w)) if w == "None" => Ok(None),
                    Some(v) => v.int().map(Some).with_context(|| format!("argument {key}")),
                }
            };
            let enabled = c
                .arg(usize::MAX, "autotune")
                .map(Value::boolean)
                .transpose()
                .context("argument autotune")?;
            let autotune =
                AutotuneOptions::from_tf(enabled, get("cpu_budget")?, get("ram_budget")?)?;
            ds.with_options(Options::new().autotune(autotune))?
        }
        other => return Err(unknown_transformation(other)),
    })
}

fn unknown_transformation(name: &str) -> anyhow::Error {
    anyhow!(
        "unknown transformation {name:?} (map, batch, shuffle, global_shuffle, prefetch, take, \
         skip, repeat, shard, unbatch, rebatch, cache, enumerate, assert_cardinality, \
         with_options)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chains() {
        let calls =
            parse("shuffle(10000, seed=0).map(cast(float32), scale(1/255)).batch(256)").unwrap();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].args, [Value::Num(10000.0)]);
        assert_eq!(calls[0].kwargs, [("seed".to_string(), Value::Num(0.0))]);
        assert!(matches!(&calls[1].args[1], Value::Call(c) if c.args == [Value::Num(1.0 / 255.0)]));
        assert!(parse("batch(256").is_err());
        assert!(parse("batch(256) x").is_err());
        assert!(parse("batch(a=1, 2)").is_err());
    }

    /// Issue 17: a tuple argument was "expected a name at character 60", with no caret.
    #[test]
    fn tuples_are_lists_and_errors_point_at_the_character() {
        let calls = parse("map(normalize((0.5, 0.5), mean_unused=(1,))).rebatch((2, 2))").unwrap();
        let Value::Call(op) = &calls[0].args[0] else {
            panic!("not an op: {:?}", calls[0].args[0]);
        };
        assert_eq!(
            op.args[0],
            Value::List(vec![Value::Num(0.5), Value::Num(0.5)])
        );
        assert_eq!(op.kwargs[0].1, Value::List(vec![Value::Num(1.0)]));
        assert_eq!(parse("take((3))").unwrap()[0].args, [Value::Num(3.0)]);
        let ds = Dataset::range(0, 8, 1).unwrap().batch(4, ()).unwrap();
        let out = apply(ds, &parse("rebatch([1, 3])").unwrap()).unwrap();
        let got: Vec<String> = out
            .to_vec()
            .unwrap()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(got, ["[0]", "[1 2 3]", "[4]", "[5 6 7]"]);

        let text = "batch(4).map(cast(float32), ?)";
        let e = format!("{:#}", parse(text).unwrap_err());
        let lines: Vec<&str> = e.lines().collect();
        assert!(
            lines[0].contains("found '?'") && lines[0].contains("character 29"),
            "{e}"
        );
        assert_eq!(lines[1], format!("  {text}"));
        assert_eq!(lines[2].find('^'), Some(2 + text.find('?').unwrap()), "{e}");
        assert!(e.contains("npyflow bench --help"), "{e}");
        // Arguments are shown as the pipeline writes them, not as Rust's debug form.
        let ds = Dataset::range(0, 8, 1).unwrap();
        let e = format!("{:#}", apply(ds, &parse("take('x')").unwrap()).unwrap_err());
        assert!(e.contains("got 'x'") && !e.contains("Str("), "{e}");
    }

    #[test]
    fn builds_pipelines() {
        let ds = Dataset::range(0, 10, 1).unwrap();
        let out = apply(
            ds.clone(),
            &parse("map(cast(float64), scale(2)).batch(4, drop_remainder=True)").unwrap(),
        )
        .unwrap();
        assert_eq!(out.to_vec().unwrap()[0].to_string(), "[0. 2. 4. 6.]");
        assert_eq!(out.len().unwrap(), 2);
        let e = apply(ds.clone(), &parse("batch(0)").unwrap()).unwrap_err();
        assert!(format!("{e:#}").contains("batch_size"), "{e:#}");
        let e = apply(ds, &parse("frobnicate(1)").unwrap()).unwrap_err();
        assert!(format!("{e:#}").contains("unknown transformation"), "{e:#}");
    }

    /// Found while reading what the pipeline_spec fuzzer made of `prefetch(...)`: keywords
    /// that no transformation takes, extra positional arguments and arguments given twice
    /// were silently ignored (`batch(4, batch_size=8)` made batches of 8). They are refused,
    /// as Python refuses them.
    #[test]
    fn arguments_are_checked_as_python_checks_them() {
        let ds = Dataset::range(0, 10, 1).unwrap();
        for (bad, why) in [
            ("prefetch(bogus=1)", "no argument \"bogus\""),
            ("take(1, 2)", "at most 1 positional argument, 2 given"),
            ("unbatch(1)", "at most 0 positional arguments"),
            ("batch(4, batch_size=8)", "both by position and by keyword"),
            ("shuffle(4, seed=1, seed=2)", "got argument \"seed\" twice"),
            ("repeat(count=2, times=3)", "no argument \"times\""),
            ("shard(2, 0, 1)", "at most 2 positional arguments"),
            ("map(cast(float32, bogus=1))", "no argument \"bogus\""),
            ("map(scale(2, 3))", "at most 1 positional argument"),
            ("map(scale(2), bogus=1)", "no argument \"bogus\""),
            ("enumerate(0, start=1)", "both by position and by keyword"),
        ] {
            let e = apply(ds.clone(), &parse(bad).unwrap()).unwrap_err();
            assert!(format!("{e:#}").contains(why), "{bad}: {e:#}");
        }
        for good in [
            "batch(batch_size=4, drop_remainder=True, num_parallel_calls=2, deterministic=False)",
            "take(count=3).skip(1).repeat(count=2).enumerate(start=5)",
            "take(3).assert_cardinality(expected_cardinality=3)",
            "map(cast(dtype=float64), affine(factor=2, offset=1), num_parallel_calls=2)",
            "shuffle(4, seed=1, reshuffle_each_iteration=False).prefetch(buffer_size=2)",
        ] {
            let out = apply(ds.clone(), &parse(good).unwrap()).unwrap();
            assert!(!out.to_vec().unwrap().is_empty(), "{good}");
        }
    }

    /// Found by the pipeline_spec fuzzer (timeout-2ded8eae444cb7fcf4a5afd6bc061848646f5775):
    /// `repeat().rebatch(-18.)` hung, filling a batch of 2^64 - 18 rows from an endless
    /// input: negative sizes, counts, axes and indices were cast to `usize` unchecked. They
    /// are errors when the pipeline is built.
    #[test]
    fn negative_sizes_are_refused_not_wrapped() {
        let ds = Dataset::range(0, 10, 1).unwrap();
        for bad in [
            "repeat().rebatch(-18.)",
            "shard(-2, 0)",
            "shard(2, -1)",
            "map(one_hot(-3))",
            "map(transpose([-1]))",
            "map(random_flip(-1))",
            "map(random_crop([-2]))",
            "map(scale(2, component=-1))",
            "map(scale(2, component=0.5))",
        ] {
            let e = apply(ds.clone(), &parse(bad).unwrap()).unwrap_err();
            assert!(format!("{e:#}").contains("integer"), "{bad}: {e:#}");
        }
    }

    /// Found by the pipeline_spec fuzzer (leak-d1f06040f9a7cefa323b4cfc904cff611eea6200: 20
    /// chained prefetches after a rebatch): LeakSanitizer counted the memory of prefetch
    /// threads that were still ending after their iterator was dropped. Not a leak (a
    /// dropped prefetch stops at its next send, and its thread ends), so the fuzzer runs
    /// without leak detection; this pins that the threads do end.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_threads_of_a_dropped_pipeline_end() {
        let prefetchers = || {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.starts_with("npyflow-prefetc"))
                .count()
        };
        let text = format!("batch(2).rebatch(1){}", ".prefetch(2)".repeat(20));
        let calls = parse(&text).unwrap();
        for _ in 0..5 {
            let ds = apply(Dataset::range(0, 10, 1).unwrap(), &calls).unwrap();
            for e in ds.iter().take(3) {
                e.unwrap();
            }
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while prefetchers() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(prefetchers(), 0);
    }
}
