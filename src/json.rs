//! The wire codec: one UDP datagram is one flat JSON object with five fields.
//!
//! # Accepted input
//!
//! A hand-written, non-recursive decoder for RFC 8259 JSON, with these rules:
//!
//! - At most [`MAX_INPUT`] bytes of UTF-8; one optional leading byte-order mark (U+FEFF) is
//!   skipped (RFC 8259 §8.1 allows it; Python's `json.loads(bytes)` does the same).
//! - The top level is exactly one object with optional whitespace (space, tab, CR, LF) around it.
//! - Strings: the escapes `\" \\ \/ \b \f \n \r \t \uXXXX`; a surrogate pair is combined into one
//!   character, a lone surrogate is an error ([`Error::LoneSurrogate`]); raw bytes below 0x20
//!   are an error.
//! - Numbers: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, plus Python's non-standard
//!   `NaN`, `Infinity` and `-Infinity`; literals `true`, `false`, `null`.
//! - Arrays and objects nest at most [`MAX_DEPTH`] levels, the top-level object included.
//! - Keys are compared after unescaping, case-sensitively; unknown keys are validated and
//!   skipped; for a duplicate key the last occurrence wins (as in Python).
//!
//! # Mapping to [`Datagram`]
//!
//! | JSON value                       | `sender_name`, `request`, `key`, `value` | `term`             |
//! |----------------------------------|-------------------------------------------|--------------------|
//! | missing, `null`                  | `None`                                    | `None`             |
//! | string                           | `Some(decoded text)`                      | `Some(n)` if the text is ASCII digits in `u64` range, optionally padded with ASCII whitespace, else `None` |
//! | number, `true`, `false`, `NaN`…  | `Some(source text)`, e.g. `"-1.5e3"`      | `Some(n)` if the number is a whole number in `u64` range (`3`, `3.0`, `30e-1`, `-0`), else `None` |
//! | array, object                    | `None`                                    | `None`             |
//!
//! A badly typed field is not an error: the message stays usable, that field is just absent.
//!
//! # Output
//!
//! [`emit`] writes exactly what Python's `json.dumps` writes for the same five-key dict (default
//! settings: `", "` and `": "` separators, `ensure_ascii=True`, so every non-ASCII character and
//! DEL become `\uXXXX`, lowercase hex, surrogate pairs above U+FFFF). If that would exceed
//! [`MAX_OUTPUT`] bytes, the longest strings are cut (at a character boundary, never inside an
//! escape) to a common escaped length so that the output fits; it is always valid JSON.
use std::borrow::Cow;
use std::fmt;

/// Largest datagram the decoder looks at; anything longer is dropped unread.
pub const MAX_INPUT: usize = 64 * 1024;
/// Every datagram a node emits fits in the reference controller's `recvfrom(1024)`.
pub const MAX_OUTPUT: usize = 1024;
/// Deepest nesting of arrays and objects the decoder accepts, the top-level object counting as 1.
pub const MAX_DEPTH: usize = 32;

/// The five fields of a message. `None` is JSON `null` or a missing field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Datagram {
    pub sender_name: Option<String>,
    pub request: Option<String>,
    pub term: Option<u64>,
    pub key: Option<String>,
    pub value: Option<String>,
}

/// Why a datagram was rejected. Offsets (`at=`) are byte offsets into the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Longer than [`MAX_INPUT`]; not looked at.
    TooLarge,
    /// Not valid UTF-8.
    NotUtf8,
    /// Nothing but whitespace (or a byte-order mark).
    Empty,
    /// The top-level value starts like JSON but is not an object (an array, a string, ...).
    NotAnObject,
    /// The input ends inside the object.
    Truncated,
    /// Arrays and objects nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// An unexpected byte.
    Syntax(usize),
    /// A malformed number (`01`, `+1`, `1.`, `-x`, `1e`), at its first byte.
    BadNumber(usize),
    /// An unknown escape or bad hex digits, at the backslash.
    BadEscape(usize),
    /// A `\uXXXX` surrogate without its partner, at the backslash.
    LoneSurrogate(usize),
    /// A raw control character (below 0x20) inside a string.
    ControlChar(usize),
    /// Something other than whitespace after the object.
    TrailingData(usize),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLarge => write!(f, "too-large"),
            Error::NotUtf8 => write!(f, "not-utf8"),
            Error::Empty => write!(f, "empty"),
            Error::NotAnObject => write!(f, "not-an-object"),
            Error::Truncated => write!(f, "truncated"),
            Error::TooDeep => write!(f, "too-deep"),
            Error::Syntax(at) => write!(f, "not-json at={at}"),
            Error::BadNumber(at) => write!(f, "bad-number at={at}"),
            Error::BadEscape(at) => write!(f, "bad-escape at={at}"),
            Error::LoneSurrogate(at) => write!(f, "lone-surrogate at={at}"),
            Error::ControlChar(at) => write!(f, "control-char at={at}"),
            Error::TrailingData(at) => write!(f, "trailing-data at={at}"),
        }
    }
}

impl std::error::Error for Error {}

// ---- decoder ----------------------------------------------------------------------------------

/// Decodes one datagram. Never panics; see the module docs for the accepted grammar.
pub fn parse(bytes: &[u8]) -> Result<Datagram, Error> {
    if bytes.len() > MAX_INPUT {
        return Err(Error::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Error::NotUtf8)?;
    let mut p = Parser {
        text,
        bytes,
        pos: 0,
    };
    if text.starts_with('\u{feff}') {
        p.pos = '\u{feff}'.len_utf8();
    }
    p.skip_ws();
    match p.peek() {
        Some(b'{') => {}
        None => return Err(Error::Empty),
        Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n' | b'N' | b'I') => {
            return Err(Error::NotAnObject)
        }
        Some(_) => return Err(Error::Syntax(p.pos)),
    }
    let datagram = p.object()?;
    p.skip_ws();
    match p.peek() {
        None => Ok(datagram),
        Some(_) => Err(Error::TrailingData(p.pos)),
    }
}

/// One member value of the top-level object, borrowing from the input where it can.
enum Value<'a> {
    Null,
    /// A string, escapes resolved.
    Str(Cow<'a, str>),
    /// A number in the JSON grammar, as its source text.
    Number(&'a str),
    /// `true`, `false`, `NaN`, `Infinity` or `-Infinity`, as its source text.
    Word(&'a str),
    /// An array or object, validated and skipped.
    Nested,
}

impl Value<'_> {
    fn into_text(self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.into_owned()),
            Value::Number(s) | Value::Word(s) => Some(s.to_owned()),
            Value::Null | Value::Nested => None,
        }
    }

    fn into_term(self) -> Option<u64> {
        match self {
            Value::Number(n) => whole_number(n),
            Value::Str(s) => decimal_text(&s),
            Value::Null | Value::Word(_) | Value::Nested => None,
        }
    }
}

impl Datagram {
    fn assign(&mut self, key: &str, value: Value<'_>) {
        match key {
            "sender_name" => self.sender_name = value.into_text(),
            "request" => self.request = value.into_text(),
            "term" => self.term = value.into_term(),
            "key" => self.key = value.into_text(),
            "value" => self.value = value.into_text(),
            _ => {}
        }
    }
}

/// A cursor over valid UTF-8. It only ever stops on ASCII bytes, so its slices are `str`s.
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn eat(&mut self, want: u8) -> bool {
        let found = self.peek() == Some(want);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, want: u8) -> Result<(), Error> {
        match self.peek() {
            Some(byte) if byte == want => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(Error::Syntax(self.pos)),
            None => Err(Error::Truncated),
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.peek() {
            self.pos += 1;
        }
    }

    fn slice(&self, start: usize, end: usize) -> Result<&'a str, Error> {
        self.text.get(start..end).ok_or(Error::Syntax(start))
    }

    /// The top-level object: its members go into a `Datagram`.
    fn object(&mut self) -> Result<Datagram, Error> {
        let mut datagram = Datagram::default();
        self.expect(b'{')?;
        self.skip_ws();
        if self.eat(b'}') {
            return Ok(datagram);
        }
        loop {
            let key = self.key()?;
            let value = self.value()?;
            datagram.assign(&key, value);
            self.skip_ws();
            match self.bump() {
                Some(b',') => self.skip_ws(),
                Some(b'}') => return Ok(datagram),
                Some(_) => return Err(Error::Syntax(self.pos - 1)),
                None => return Err(Error::Truncated),
            }
        }
    }

    /// `"name"` `:` and the whitespace after it.
    fn key(&mut self) -> Result<Cow<'a, str>, Error> {
        let key = self.string()?;
        self.skip_ws();
        self.expect(b':')?;
        self.skip_ws();
        Ok(key)
    }

    fn value(&mut self) -> Result<Value<'a>, Error> {
        match self.peek() {
            Some(b'[' | b'{') => self.skip_nested().map(|()| Value::Nested),
            _ => self.scalar(),
        }
    }

    /// Any value but an array or object.
    fn scalar(&mut self) -> Result<Value<'a>, Error> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'n') => self.word("null").map(|_| Value::Null),
            Some(b't') => self.word("true").map(Value::Word),
            Some(b'f') => self.word("false").map(Value::Word),
            Some(b'N') => self.word("NaN").map(Value::Word),
            Some(b'I') => self.word("Infinity").map(Value::Word),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'+') => Err(Error::BadNumber(self.pos)),
            Some(_) => Err(Error::Syntax(self.pos)),
            None => Err(Error::Truncated),
        }
    }

    /// Validates and skips one array or object without recursion: the open containers are
    /// kept in a bit stack, and each step expects either a value or a `,` / closing bracket.
    fn skip_nested(&mut self) -> Result<(), Error> {
        let mut open = OpenStack::default();
        let mut want_value = true;
        loop {
            if want_value {
                want_value = self.enter_value(&mut open)?;
            } else {
                want_value = self.after_value(&mut open)?;
            }
            if open.is_empty() {
                return Ok(());
            }
            self.skip_ws();
        }
    }

    /// Consumes an opening bracket (and the key of a first member), an empty container or a
    /// scalar. Returns whether a value comes next.
    fn enter_value(&mut self, open: &mut OpenStack) -> Result<bool, Error> {
        let object = match self.peek() {
            Some(b'[') => false,
            Some(b'{') => true,
            _ => return self.scalar().map(|_| false),
        };
        self.pos += 1;
        open.push(object)?;
        self.skip_ws();
        if self.eat(if object { b'}' } else { b']' }) {
            open.pop();
            return Ok(false);
        }
        if object {
            self.key()?;
        }
        Ok(true)
    }

    /// Consumes a `,` (and the next key inside an object) or a closing bracket.
    /// Returns whether a value comes next.
    fn after_value(&mut self, open: &mut OpenStack) -> Result<bool, Error> {
        let object = open.top_is_object();
        match self.bump() {
            Some(b',') if object => {
                self.skip_ws();
                self.key().map(|_| true)
            }
            Some(b',') => Ok(true),
            Some(b'}') if object => Ok(open.pop()),
            Some(b']') if !object => Ok(open.pop()),
            Some(_) => Err(Error::Syntax(self.pos - 1)),
            None => Err(Error::Truncated),
        }
    }

    /// A literal such as `null`; returns its text.
    fn word(&mut self, word: &'static str) -> Result<&'static str, Error> {
        for &want in word.as_bytes() {
            match self.bump() {
                Some(byte) if byte == want => {}
                Some(_) => return Err(Error::Syntax(self.pos - 1)),
                None => return Err(Error::Truncated),
            }
        }
        Ok(word)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, or `-Infinity`.
    fn number(&mut self) -> Result<Value<'a>, Error> {
        let start = self.pos;
        self.eat(b'-');
        if self.peek() == Some(b'I') {
            self.word("Infinity")?;
            return self.slice(start, self.pos).map(Value::Word);
        }
        match self.bump() {
            Some(b'0') if matches!(self.peek(), Some(b'0'..=b'9')) => {
                return Err(Error::BadNumber(start))
            }
            Some(b'0'..=b'9') => self.skip_digits(),
            Some(_) => return Err(Error::BadNumber(start)),
            None => return Err(Error::Truncated),
        }
        if self.eat(b'.') {
            self.digits(start)?;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _sign = self.eat(b'+') || self.eat(b'-');
            self.digits(start)?;
        }
        self.slice(start, self.pos).map(Value::Number)
    }

    /// One or more digits, for the number starting at `start`.
    fn digits(&mut self, start: usize) -> Result<(), Error> {
        match self.peek() {
            Some(b'0'..=b'9') => {
                self.skip_digits();
                Ok(())
            }
            Some(_) => Err(Error::BadNumber(start)),
            None => Err(Error::Truncated),
        }
    }

    fn skip_digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    /// A string; borrowed from the input unless it contains escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, Error> {
        self.expect(b'"')?;
        let mut text = Cow::Borrowed(self.plain_run()?);
        loop {
            match self.bump() {
                Some(b'"') => return Ok(text),
                Some(b'\\') => text.to_mut().push(self.escape()?),
                Some(_) => return Err(Error::ControlChar(self.pos - 1)),
                None => return Err(Error::Truncated),
            }
            let run = self.plain_run()?;
            if !run.is_empty() {
                text.to_mut().push_str(run);
            }
        }
    }

    /// The longest run of string bytes that need no decoding.
    fn plain_run(&mut self) -> Result<&'a str, Error> {
        let start = self.pos;
        while let Some(byte) = self.peek() {
            if byte == b'"' || byte == b'\\' || byte < 0x20 {
                break;
            }
            self.pos += 1;
        }
        self.slice(start, self.pos)
    }

    /// The escape after a backslash (already consumed).
    fn escape(&mut self) -> Result<char, Error> {
        let at = self.pos - 1;
        let c = match self.bump() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => return self.unicode_escape(at),
            Some(_) => return Err(Error::BadEscape(at)),
            None => return Err(Error::Truncated),
        };
        Ok(c)
    }

    /// `XXXX` after `\u`, with a second `\uXXXX` if the first is a high surrogate.
    fn unicode_escape(&mut self, at: usize) -> Result<char, Error> {
        let code = match self.hex4(at)? {
            high @ 0xD800..=0xDBFF => {
                let low = self.low_surrogate(at)?;
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(Error::LoneSurrogate(at)),
            unit => unit,
        };
        char::from_u32(code).ok_or(Error::LoneSurrogate(at))
    }

    /// The `\uXXXX` low surrogate that must follow a high one (escaped at `at`).
    fn low_surrogate(&mut self, at: usize) -> Result<u32, Error> {
        match (self.peek(), self.bytes.get(self.pos + 1)) {
            (Some(b'\\'), Some(b'u')) => self.pos += 2,
            (None, _) | (Some(b'\\'), None) => return Err(Error::Truncated),
            _ => return Err(Error::LoneSurrogate(at)),
        }
        match self.hex4(self.pos - 2)? {
            low @ 0xDC00..=0xDFFF => Ok(low),
            _ => Err(Error::LoneSurrogate(at)),
        }
    }

    /// Four hex digits of the `\u` escape at `at`.
    fn hex4(&mut self, at: usize) -> Result<u32, Error> {
        let mut unit = 0;
        for _ in 0..4 {
            let byte = self.bump().ok_or(Error::Truncated)?;
            let digit = char::from(byte).to_digit(16).ok_or(Error::BadEscape(at))?;
            unit = unit * 16 + digit;
        }
        Ok(unit)
    }
}

/// The arrays (0) and objects (1) open while skipping a nested value, innermost in bit 0.
#[derive(Default)]
struct OpenStack {
    bits: u32,
    len: usize,
}

impl OpenStack {
    fn push(&mut self, object: bool) -> Result<(), Error> {
        // The top-level object is one level of MAX_DEPTH; at most 31 more fit in `bits`.
        if self.len + 1 >= MAX_DEPTH {
            return Err(Error::TooDeep);
        }
        self.bits = (self.bits << 1) | u32::from(object);
        self.len += 1;
        Ok(())
    }

    /// Closes the innermost container; returns false (no value follows a closing bracket).
    fn pop(&mut self) -> bool {
        self.bits >>= 1;
        self.len = self.len.saturating_sub(1);
        false
    }

    fn top_is_object(&self) -> bool {
        self.bits & 1 == 1
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The term in a string such as `"3"` or `" 42 "`: ASCII digits only, in `u64` range.
fn decimal_text(text: &str) -> Option<u64> {
    let digits = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The value of a (validated) JSON number if it is a whole number in `u64` range, computed in
/// exact decimal: `3`, `3.0`, `30e-1`, `0.3e1` and `-0` qualify; `3.5`, `-1` and `1e20` do not.
fn whole_number(number: &str) -> Option<u64> {
    let (negative, number) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (mantissa, exponent) = number.split_once(['e', 'E']).unwrap_or((number, "0"));
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = int.bytes().chain(frac.bytes());
    let last_nonzero = digits
        .clone()
        .enumerate()
        .filter(|&(_, b)| b != b'0')
        .last();
    let Some((last, _)) = last_nonzero else {
        return Some(0); // 0, -0, 0.000, 0e99
    };
    if negative {
        return None;
    }
    // value = (digits up to `last`) * 10^scale
    let trailing_zeros = (int.len() + frac.len() - 1 - last) as i64;
    let scale = exponent_value(exponent) + trailing_zeros - frac.len() as i64;
    if scale < 0 {
        return None;
    }
    let significand = digits.take(last + 1).try_fold(0u64, |v, b| {
        v.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })?;
    // At most 20 rounds: the significand is at least 1, so overflow stops the fold.
    (0..scale).try_fold(significand, |v, _| v.checked_mul(10))
}

/// `[+-]?[0-9]+` as an `i64`, saturated far beyond any exponent that can matter.
fn exponent_value(exponent: &str) -> i64 {
    const CAP: i64 = 1_000_000_000;
    let magnitude = |digits: &str| {
        digits
            .bytes()
            .fold(0i64, |v, b| (v * 10 + i64::from(b - b'0')).min(CAP))
    };
    match exponent.strip_prefix('-') {
        Some(digits) => -magnitude(digits),
        None => magnitude(exponent.strip_prefix('+').unwrap_or(exponent)),
    }
}

// ---- encoder ----------------------------------------------------------------------------------

/// Encodes a datagram exactly as Python's `json.dumps` would, in at most [`MAX_OUTPUT`] bytes
/// (cutting the longest strings if needed; see the module docs).
pub fn emit(d: &Datagram) -> Vec<u8> {
    let full = emit_capped(d, usize::MAX);
    if full.len() <= MAX_OUTPUT {
        return full;
    }
    // Find the largest escaped length `cap` such that the strings, each cut to `cap`, fit.
    let budget = MAX_OUTPUT.saturating_sub(emit_capped(d, 0).len());
    let lengths = [&d.sender_name, &d.request, &d.key, &d.value].map(|field| {
        field
            .as_deref()
            .map_or(0, |s| s.chars().map(escaped_len).sum())
    });
    let fits = |cap: usize| lengths.iter().map(|&len| len.min(cap)).sum::<usize>() <= budget;
    let cap = (0..=budget).rev().find(|&cap| fits(cap)).unwrap_or(0);
    emit_capped(d, cap)
}

/// The encoding with every string cut to at most `cap` bytes of escaped text.
fn emit_capped(d: &Datagram, cap: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"{\"sender_name\": ");
    push_string(&mut out, d.sender_name.as_deref(), cap);
    out.extend_from_slice(b", \"request\": ");
    push_string(&mut out, d.request.as_deref(), cap);
    out.extend_from_slice(b", \"term\": ");
    match d.term {
        Some(term) => out.extend_from_slice(term.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b", \"key\": ");
    push_string(&mut out, d.key.as_deref(), cap);
    out.extend_from_slice(b", \"value\": ");
    push_string(&mut out, d.value.as_deref(), cap);
    out.push(b'}');
    out
}

/// `null`, or the quoted string with as many whole characters as fit in `cap` escaped bytes.
fn push_string(out: &mut Vec<u8>, text: Option<&str>, cap: usize) {
    let Some(text) = text else {
        return out.extend_from_slice(b"null");
    };
    out.push(b'"');
    let mut room = cap;
    for c in text.chars() {
        let len = escaped_len(c);
        if len > room {
            break;
        }
        room -= len;
        push_escaped(out, c);
    }
    out.push(b'"');
}

/// Bytes `push_escaped` writes for `c`.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
        ' '..='~' => 1,
        _ => 6 * c.len_utf16(),
    }
}

/// One character the way Python's `ensure_ascii` encoder writes it.
fn push_escaped(out: &mut Vec<u8>, c: char) {
    let short = match c {
        '"' => b'"',
        '\\' => b'\\',
        '\u{8}' => b'b',
        '\u{c}' => b'f',
        '\n' => b'n',
        '\r' => b'r',
        '\t' => b't',
        ' '..='~' => return out.push(c as u8),
        _ => {
            let mut units = [0u16; 2];
            for &unit in c.encode_utf16(&mut units).iter() {
                push_unicode_escape(out, unit);
            }
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

fn push_unicode_escape(out: &mut Vec<u8>, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[usize::from((unit >> shift) & 0xF)]);
    }
}
