//! The parser of the header's Python literal: dicts, tuples, lists, strings, integers,
//! `True`/`False`/`None`, never evaluated.

use crate::error::{Error, Result};

/// A Python literal, as far as headers need.
#[derive(Debug, PartialEq)]
pub(super) enum Value {
    Str(String),
    Int(i128),
    Float,
    Bool(bool),
    None,
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
}

impl Value {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float => "a float",
            Value::Bool(_) => "a bool",
            Value::None => "None",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
        }
    }
}

/// Nesting deeper than this is refused (a header never needs more than a few levels).
const MAX_DEPTH: usize = 32;

pub(super) struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    allow_long_suffix: bool,
    _text: &'a str,
}

impl<'a> Parser<'a> {
    pub(super) fn new(text: &'a str, allow_long_suffix: bool) -> Self {
        Parser {
            chars: text.chars().collect(),
            pos: 0,
            allow_long_suffix,
            _text: text,
        }
    }

    fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::Header(format!("{what} at character {} of the header", self.pos))
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c') {
                self.pos += 1;
            } else if c == '\\' && self.chars.get(self.pos + 1) == Some(&'\n') {
                self.pos += 2; // a line continuation
            } else if c == '#' {
                // a comment, to the end of the line
                while self.peek().is_some_and(|c| c != '\n') {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    pub(super) fn parse_document(&mut self) -> Result<Value> {
        self.skip_space();
        let v = self.parse_value(0)?;
        self.skip_space();
        if let Some(c) = self.peek() {
            return Err(self.err(format!("unexpected {c:?} after the dict")));
        }
        Ok(v)
    }

    fn expect_more(&self) -> Result<char> {
        self.peek()
            .ok_or_else(|| self.err("the header ends too soon"))
    }

    fn parse_value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.skip_space();
        let c = self.expect_more()?;
        match c {
            '{' => self.parse_dict(depth),
            '(' => self.parse_paren(depth),
            '[' => {
                self.pos += 1;
                Ok(Value::List(self.parse_items(']', depth)?.0))
            }
            '\'' | '"' => self.parse_strings(),
            'u' | 'U' | 'r' | 'R' if matches!(self.chars.get(self.pos + 1), Some('\'' | '"')) => {
                self.parse_strings()
            }
            '0'..='9' | '-' | '+' | '.' => self.parse_number(),
            c if c.is_alphabetic() || c == '_' => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "True" => Ok(Value::Bool(true)),
                    "False" => Ok(Value::Bool(false)),
                    "None" => Ok(Value::None),
                    _ => {
                        self.pos = start;
                        Err(self.err(format!("{word:?} is not a literal")))
                    }
                }
            }
            c => Err(self.err(format!("unexpected {c:?}"))),
        }
    }

    /// Items up to `close`, comma separated, an optional trailing comma. Returns the items
    /// and whether a comma was seen (to tell `(1)` from `(1,)`).
    fn parse_items(&mut self, close: char, depth: usize) -> Result<(Vec<Value>, bool)> {
        let mut items = Vec::new();
        let mut comma = false;
        loop {
            self.skip_space();
            if self.expect_more()? == close {
                self.pos += 1;
                return Ok((items, comma));
            }
            items.push(self.parse_value(depth + 1)?);
            self.skip_space();
            match self.expect_more()? {
                ',' => {
                    comma = true;
                    self.pos += 1;
                }
                c if c == close => {
                    self.pos += 1;
                    return Ok((items, comma));
                }
                c => return Err(self.err(format!("expected ',' or {close:?}, found {c:?}"))),
            }
        }
    }

    fn parse_paren(&mut self, depth: usize) -> Result<Value> {
        self.pos += 1;
        let (mut items, comma) = self.parse_items(')', depth)?;
        if items.len() == 1 && !comma {
            Ok(items.pop().expect("one item")) // (x) is x, not a tuple
        } else {
            Ok(Value::Tuple(items))
        }
    }

    fn parse_dict(&mut self, depth: usize) -> Result<Value> {
        self.pos += 1;
        let mut pairs = Vec::new();
        loop {
            self.skip_space();
            if self.expect_more()? == '}' {
                self.pos += 1;
                return Ok(Value::Dict(pairs));
            }
            let key = self.parse_value(depth + 1)?;
            self.skip_space();
            if self.expect_more()? != ':' {
                return Err(self.err("expected ':' after a dict key"));
            }
            self.pos += 1;
            let value = self.parse_value(depth + 1)?;
            pairs.push((key, value));
            self.skip_space();
            match self.expect_more()? {
                ',' => self.pos += 1,
                '}' => {
                    self.pos += 1;
                    return Ok(Value::Dict(pairs));
                }
                c => return Err(self.err(format!("expected ',' or '}}', found {c:?}"))),
            }
        }
    }

    /// One string literal, or several side by side, which Python joins.
    fn parse_strings(&mut self) -> Result<Value> {
        let mut out = String::new();
        loop {
            out.push_str(&self.parse_string()?);
            let save = self.pos;
            self.skip_space();
            let next = self.peek();
            let prefixed = matches!(next, Some('u' | 'U' | 'r' | 'R'))
                && matches!(self.chars.get(self.pos + 1), Some('\'' | '"'));
            if !(matches!(next, Some('\'' | '"')) || prefixed) {
                self.pos = save;
                return Ok(Value::Str(out));
            }
        }
    }

    fn parse_string(&mut self) -> Result<String> {
        let raw = matches!(self.peek(), Some('r' | 'R'));
        if matches!(self.peek(), Some('u' | 'U' | 'r' | 'R')) {
            self.pos += 1;
        }
        let quote = self.expect_more()?;
        self.pos += 1;
        let mut s = String::new();
        loop {
            let c = self
                .peek()
                .ok_or_else(|| self.err("a string is not closed"))?;
            self.pos += 1;
            match c {
                c if c == quote => return Ok(s),
                '\n' => return Err(self.err("a string runs past the end of its line")),
                '\\' if raw => {
                    // a raw string keeps the backslash, and it still escapes a quote
                    s.push('\\');
                    if let Some(e @ ('\\' | '\'' | '"')) = self.peek() {
                        s.push(e);
                        self.pos += 1;
                    }
                }
                '\\' => {
                    let e = self
                        .peek()
                        .ok_or_else(|| self.err("a string is not closed"))?;
                    self.pos += 1;
                    match e {
                        '\\' | '\'' | '"' => s.push(e),
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        'r' => s.push('\r'),
                        'a' => s.push('\x07'),
                        'b' => s.push('\x08'),
                        'f' => s.push('\x0c'),
                        'v' => s.push('\x0b'),
                        '0'..='7' => {
                            // up to three octal digits
                            let mut v = e.to_digit(8).unwrap_or(0);
                            for _ in 0..2 {
                                match self.peek().and_then(|c| c.to_digit(8)) {
                                    Some(d) => {
                                        v = v * 8 + d;
                                        self.pos += 1;
                                    }
                                    None => break,
                                }
                            }
                            s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                        }
                        '\n' => {}
                        'x' => s.push(self.parse_hex_escape(2)?),
                        'u' => s.push(self.parse_hex_escape(4)?),
                        'U' => s.push(self.parse_hex_escape(8)?),
                        other => {
                            // Python keeps unknown escapes as written.
                            s.push('\\');
                            s.push(other);
                        }
                    }
                }
                c => s.push(c),
            }
        }
    }

    fn parse_hex_escape(&mut self, digits: usize) -> Result<char> {
        let end = self.pos + digits;
        if end > self.chars.len() {
            return Err(self.err("a string escape is cut short"));
        }
        let hex: String = self.chars[self.pos..end].iter().collect();
        self.pos = end;
        u32::from_str_radix(&hex, 16)
            .ok()
            .filter(|_| hex.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(char::from_u32)
            .ok_or_else(|| self.err(format!("bad string escape {hex:?}")))
    }

    fn parse_number(&mut self) -> Result<Value> {
        let mut negative = false;
        // literal_eval allows one unary sign, with spaces, in front of a number.
        if let Some(c @ ('-' | '+')) = self.peek() {
            negative = c == '-';
            self.pos += 1;
            self.skip_space();
        }
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        {
            // an exponent sign belongs to the number: 1e-3
            self.pos += 1;
            if matches!(self.chars.get(self.pos - 1), Some('e' | 'E'))
                && matches!(self.peek(), Some('-' | '+'))
                && self.chars[start..self.pos - 1]
                    .iter()
                    .all(|c| c.is_ascii_digit() || *c == '.')
            {
                self.pos += 1;
            }
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        let digits = match word.strip_suffix('L') {
            Some(d) if self.allow_long_suffix => d,
            _ => word.as_str(),
        };
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if digits.len() > 1 && digits.starts_with('0') && digits.bytes().any(|b| b != b'0') {
                self.pos = start;
                return Err(self.err(format!("{word:?}: leading zeros are not allowed")));
            }
            let n: i128 = digits
                .parse()
                .map_err(|_| self.err(format!("the integer {word:?} is too large")))?;
            return Ok(Value::Int(if negative { -n } else { n }));
        }
        if !word.is_empty() && word.parse::<f64>().is_ok() && !word.contains(['i', 'I', 'n', 'N']) {
            return Ok(Value::Float);
        }
        self.pos = start;
        Err(self.err(format!(
            "{word:?} is not a number npyflow reads in a header"
        )))
    }
}
