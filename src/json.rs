//! The wire codec: one UDP datagram is one flat JSON object with five fields.
//! Owns the bytes-to-`Datagram` grammar and its inverse; must never interpret a field (that is
//! `message.rs`) nor panic, recurse or allocate without bound on any input.
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
//! - missing or `null`: `None`.
//! - string: the text fields get the decoded text; `term` gets `Some(n)` if the text is ASCII
//!   digits in `u64` range, optionally padded with ASCII whitespace (`"3"`, `" 42 "`).
//! - number: the text fields get its source text (`"-1.5e3"`); `term` gets `Some(n)` if the
//!   number is a whole number in `u64` range, computed exactly without floats (`3`, `3.0`, `3e0`,
//!   `30e-1`, `-0`), and `None` otherwise (`3.5`, `-1`, `1e20`, `1e400`).
//! - `true`, `false`, `NaN`, `Infinity`, `-Infinity`: the text fields get the source text;
//!   `term` gets `None`.
//! - array or object: validated (within [`MAX_DEPTH`]), then `None` for every field.
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

    fn require(&mut self, want: u8) -> Result<(), Error> {
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
        self.require(b'{')?;
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
        self.require(b':')?;
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
        self.require(b'"')?;
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

// Below the top-level object, `MAX_DEPTH - 1` open containers must fit one bit each.
const _: () = assert!(
    MAX_DEPTH - 1 <= u32::BITS as usize,
    "OpenStack::bits is too narrow"
);

// Below the top-level object, `MAX_DEPTH - 1` open containers must fit one bit each.
const _: () = assert!(
    MAX_DEPTH - 1 <= u32::BITS as usize,
    "OpenStack::bits is too narrow"
);

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

/// The encoding with every string cut to at most `cap` bytes of escaped text (`usize::MAX`: the
/// whole encoding, however long).
pub fn emit_capped(d: &Datagram, cap: usize) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &[u8]) -> Datagram {
        match parse(input) {
            Ok(d) => d,
            Err(e) => panic!("{e} for {:?}", String::from_utf8_lossy(input)),
        }
    }

    fn err(input: &[u8]) -> Error {
        match parse(input) {
            Ok(d) => panic!("accepted {:?} as {d:?}", String::from_utf8_lossy(input)),
            Err(e) => e,
        }
    }

    fn datagram(
        sender_name: Option<&str>,
        request: Option<&str>,
        term: Option<u64>,
        key: Option<&str>,
        value: Option<&str>,
    ) -> Datagram {
        Datagram {
            sender_name: sender_name.map(String::from),
            request: request.map(String::from),
            term,
            key: key.map(String::from),
            value: value.map(String::from),
        }
    }

    /// `value` as decoded from `{"value": <json>}`.
    fn value_of(json: &str) -> Option<String> {
        ok(format!(r#"{{"value": {json}}}"#).as_bytes()).value
    }

    /// `term` as decoded from `{"term": <json>}`.
    fn term_of(json: &str) -> Option<u64> {
        ok(format!(r#"{{"term": {json}}}"#).as_bytes()).term
    }

    // ---- what Python sends and expects -------------------------------------------------------

    /// `json.dumps(dict.fromkeys(["sender_name", "request", "term", "key", "value"]))`
    const PY_TEMPLATE: &[u8] =
        br#"{"sender_name": null, "request": null, "term": null, "key": null, "value": null}"#;
    const PY_LEADER_INFO: &[u8] = br#"{"sender_name": "Controller", "request": "LEADER_INFO", "term": null, "key": null, "value": null}"#;
    const PY_REPLY: &[u8] = br#"{"sender_name": "Node1", "request": "LEADER_INFO", "term": 3, "key": "LEADER", "value": "Node1"}"#;

    #[test]
    fn python_template_all_null() {
        assert_eq!(ok(PY_TEMPLATE), Datagram::default());
        assert_eq!(emit(&Datagram::default()), PY_TEMPLATE);
    }

    #[test]
    fn python_filled_request() {
        let d = datagram(Some("Controller"), Some("LEADER_INFO"), None, None, None);
        assert_eq!(ok(PY_LEADER_INFO), d);
        assert_eq!(emit(&d), PY_LEADER_INFO);
    }

    #[test]
    fn python_node_reply() {
        let d = datagram(
            Some("Node1"),
            Some("LEADER_INFO"),
            Some(3),
            Some("LEADER"),
            Some("Node1"),
        );
        assert_eq!(ok(PY_REPLY), d);
        assert_eq!(emit(&d), PY_REPLY);
    }

    #[test]
    fn python_compact_separators() {
        // json.dumps(..., separators=(",", ":"))
        let input = br#"{"sender_name":"Controller","request":"LEADER_INFO","term":null,"key":null,"value":null}"#;
        let d = datagram(Some("Controller"), Some("LEADER_INFO"), None, None, None);
        assert_eq!(ok(input), d);
    }

    #[test]
    fn python_escapes_byte_exact() {
        // json.dumps({"sender_name": "Nöde \"1\"\\\n\t\x01\x7f/é😀", "request": None,
        //             "term": 18446744073709551615, "key": None, "value": "\b\f\r"})
        let python = br#"{"sender_name": "N\u00f6de \"1\"\\\n\t\u0001\u007f/\u00e9\ud83d\ude00", "request": null, "term": 18446744073709551615, "key": null, "value": "\b\f\r"}"#;
        let d = datagram(
            Some("Nöde \"1\"\\\n\t\u{1}\u{7f}/é😀"),
            None,
            Some(u64::MAX),
            None,
            Some("\u{8}\u{c}\r"),
        );
        assert_eq!(emit(&d), python);
        assert_eq!(ok(python), d);
    }

    #[test]
    fn other_key_orders() {
        let want = datagram(Some("N2"), Some("VOTE"), Some(7), Some("k"), Some("v"));
        let inputs: [&[u8]; 3] = [
            br#"{"value": "v", "key": "k", "term": 7, "request": "VOTE", "sender_name": "N2"}"#,
            br#"{"term": 7, "sender_name": "N2", "value": "v", "request": "VOTE", "key": "k"}"#,
            br#"{"key":"k","value":"v","sender_name":"N2","term":7,"request":"VOTE"}"#,
        ];
        for input in inputs {
            assert_eq!(ok(input), want);
        }
    }

    #[test]
    fn pretty_printed_template() {
        let message_json = b"{\n    \"sender_name\": null,\n    \"request\": null,\n    \"term\": null,\n    \"key\": null,\n    \"value\": null\n}\n";
        assert_eq!(ok(message_json), Datagram::default());
        assert!(parse(include_bytes!("../Message.json")).is_ok());
        let crlf_tabs =
            b"\r\n{\r\n\t\"request\" :\t\"STORE\" ,\r\n\t\"term\"\r\n:\r\n2\r\n}\r\n\t ";
        assert_eq!(
            ok(crlf_tabs),
            datagram(None, Some("STORE"), Some(2), None, None)
        );
    }

    #[test]
    fn whitespace_is_only_space_tab_cr_lf() {
        assert_eq!(err(b"\x0c{}"), Error::Syntax(0));
        assert_eq!(err(b"{\x0b}"), Error::Syntax(1));
        assert_eq!(err("{}\u{a0}".as_bytes()), Error::TrailingData(2));
    }

    // ---- strings -----------------------------------------------------------------------------

    #[test]
    fn short_escapes() {
        let v = value_of(r#""\" \\ \/ \b \f \n \r \t""#);
        assert_eq!(v.as_deref(), Some("\" \\ / \u{8} \u{c} \n \r \t"));
    }

    #[test]
    fn unicode_escapes() {
        assert_eq!(value_of(r#""caf\u00e9""#).as_deref(), Some("café"));
        assert_eq!(value_of(r#""caf\u00E9""#).as_deref(), Some("café"));
        assert_eq!(value_of(r#""\ud83d\ude00!""#).as_deref(), Some("😀!"));
        assert_eq!(value_of(r#""\uD83D\uDE00""#).as_deref(), Some("😀"));
        assert_eq!(
            value_of(r#""\u0000\u001f\uffff""#).as_deref(),
            Some("\0\u{1f}\u{ffff}")
        );
        assert_eq!(
            value_of("\"raw é 😀 \u{2028}\"").as_deref(),
            Some("raw é 😀 \u{2028}")
        );
        assert_eq!(value_of(r#""""#).as_deref(), Some(""));
        assert_eq!(
            value_of("\"\u{7f}\"").as_deref(),
            Some("\u{7f}"),
            "DEL is not a control char"
        );
    }

    #[test]
    fn lone_surrogates_are_errors() {
        // Offsets point at the backslash of the offending escape; `{"value": "` is 11 bytes.
        assert_eq!(err(br#"{"value": "\ud800"}"#), Error::LoneSurrogate(11));
        assert_eq!(err(br#"{"value": "\ud800x"}"#), Error::LoneSurrogate(11));
        assert_eq!(err(br#"{"value": "\ud800\n"}"#), Error::LoneSurrogate(11));
        assert_eq!(
            err(br#"{"value": "\ud800\u0041"}"#),
            Error::LoneSurrogate(11)
        );
        assert_eq!(
            err(br#"{"value": "\ud800\ud800"}"#),
            Error::LoneSurrogate(11)
        );
        assert_eq!(err(br#"{"value": "ab\udc00"}"#), Error::LoneSurrogate(13));
    }

    #[test]
    fn escaped_keys_match_after_decoding() {
        let d = ok(br#"{"sender\u005fname": "x", "t\u0065rm": 4}"#);
        assert_eq!(d, datagram(Some("x"), None, Some(4), None, None));
    }

    #[test]
    fn keys_are_case_sensitive() {
        let d = ok(br#"{"Term": 3, "SENDER_NAME": "x", "request ": "y", "value\u0000": 1}"#);
        assert_eq!(d, Datagram::default());
    }

    // ---- term --------------------------------------------------------------------------------

    #[test]
    fn term_integers() {
        assert_eq!(term_of("0"), Some(0));
        assert_eq!(term_of("42"), Some(42));
        assert_eq!(term_of("18446744073709551615"), Some(u64::MAX));
        assert_eq!(term_of("null"), None);
        assert_eq!(ok(b"{}").term, None);
    }

    #[test]
    fn term_numbers_as_strings() {
        assert_eq!(term_of(r#""3""#), Some(3));
        assert_eq!(term_of(r#"" 42 ""#), Some(42));
        assert_eq!(term_of(r#""\t7\n""#), Some(7));
        assert_eq!(term_of(r#""007""#), Some(7));
        assert_eq!(term_of(r#""18446744073709551615""#), Some(u64::MAX));
        for s in [
            r#""""#,
            r#"" ""#,
            r#""3.0""#,
            r#""+3""#,
            r#""-3""#,
            r#""1 2""#,
            r#""0x10""#,
            r#""three""#,
            r#""18446744073709551616""#,
            r#""\u0663""#, // ARABIC-INDIC DIGIT THREE
        ] {
            assert_eq!(term_of(s), None, "{s}");
        }
    }

    #[test]
    fn term_whole_floats_are_exact_integers() {
        assert_eq!(term_of("3.0"), Some(3));
        assert_eq!(term_of("3e0"), Some(3));
        assert_eq!(term_of("3E+0"), Some(3));
        assert_eq!(term_of("30e-1"), Some(3));
        assert_eq!(term_of("0.3e1"), Some(3));
        assert_eq!(term_of("1.50e1"), Some(15));
        assert_eq!(term_of("1e19"), Some(10_000_000_000_000_000_000));
        assert_eq!(term_of("-0"), Some(0));
        assert_eq!(term_of("-0.0e-7"), Some(0));
        assert_eq!(term_of("0e999999999999999999999"), Some(0));
        assert_eq!(term_of("1844674407370955161.5e1"), Some(u64::MAX));
    }

    #[test]
    fn term_unusable_values_are_none() {
        for json in [
            "3.5",
            "-1",
            "-1.0",
            "1e-1",
            "1e20",
            "1e400",
            "1e-400",
            "1e999999999999999999999",
            "18446744073709551616",
            "99999999999999999999999",
            "1844674407370955161.6e1",
            "NaN",
            "Infinity",
            "-Infinity",
            "true",
            "false",
            "[]",
            "[3]",
            "{}",
            r#"{"term": 3}"#,
        ] {
            assert_eq!(term_of(json), None, "{json}");
        }
    }

    // ---- text fields -------------------------------------------------------------------------

    #[test]
    fn non_string_text_fields_keep_source_text() {
        for json in [
            "5",
            "-0",
            "-1.5e3",
            "1E+400",
            "99999999999999999999999",
            "true",
            "false",
            "NaN",
            "Infinity",
            "-Infinity",
        ] {
            assert_eq!(value_of(json).as_deref(), Some(json));
        }
    }

    #[test]
    fn arrays_and_objects_in_text_fields_are_none() {
        assert_eq!(value_of("[]"), None);
        assert_eq!(value_of(r#"["a", 1]"#), None);
        assert_eq!(value_of(r#"{"a": {"b": null}}"#), None);
        assert_eq!(value_of("null"), None);
        // ... but they are still validated.
        assert_eq!(err(br#"{"value": [1, 2,]}"#), Error::Syntax(16));
        assert_eq!(err(br#"{"value": {"a" 1}}"#), Error::Syntax(15));
        assert_eq!(err(br#"{"value": [01]}"#), Error::BadNumber(11));
    }

    #[test]
    fn missing_fields_are_none() {
        assert_eq!(ok(b"{}"), Datagram::default());
        assert_eq!(ok(b" { } "), Datagram::default());
        assert_eq!(
            ok(br#"{"request": "TIMEOUT"}"#),
            datagram(None, Some("TIMEOUT"), None, None, None)
        );
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let input = br#"{"extra": {"a": [1, {"b": [true, null, "x\"]}", -2.5e-3]}], "c": {}},
            "request": "R", "list": [], "nested": [[[]], {}], "s": "\u00e9", "n": NaN,
            "term": 9, "o": {"term": 1, "value": "no"}}"#;
        assert_eq!(ok(input), datagram(None, Some("R"), Some(9), None, None));
    }

    #[test]
    fn duplicate_keys_last_wins() {
        assert_eq!(ok(br#"{"term": 1, "term": 2}"#).term, Some(2));
        assert_eq!(ok(br#"{"term": 1, "term": "x"}"#).term, None);
        assert_eq!(ok(br#"{"key": "a", "key": null}"#).key, None);
        assert_eq!(
            ok(br#"{"key": null, "key": "b"}"#).key.as_deref(),
            Some("b")
        );
    }

    #[test]
    fn nesting_up_to_max_depth() {
        let nested = |levels: usize| {
            let mut s = String::from(r#"{"x": "#);
            s.push_str(&"[".repeat(levels));
            s.push_str(&"]".repeat(levels));
            s.push('}');
            s
        };
        assert!(parse(nested(MAX_DEPTH - 1).as_bytes()).is_ok());
        assert_eq!(err(nested(MAX_DEPTH).as_bytes()), Error::TooDeep);
        let objects = format!(
            r#"{{{}"a": 1{}}}"#,
            r#""a": {"#.repeat(MAX_DEPTH - 1),
            "}".repeat(MAX_DEPTH - 1)
        );
        assert!(parse(objects.as_bytes()).is_ok());
        let too_deep = format!(r#"{{{}1"#, r#""a": {"#.repeat(MAX_DEPTH));
        assert_eq!(err(too_deep.as_bytes()), Error::TooDeep);
        // Deep enough to overflow a recursive decoder's stack: still just an error.
        let mut huge = b"{\"x\": ".to_vec();
        huge.resize(MAX_INPUT, b'[');
        assert_eq!(err(&huge), Error::TooDeep);
    }

    // ---- errors ------------------------------------------------------------------------------

    #[test]
    fn not_json() {
        assert_eq!(err(b"hello"), Error::Syntax(0));
        assert_eq!(err(b"<xml/>"), Error::Syntax(0));
        assert_eq!(err(b"{hello}"), Error::Syntax(1));
        assert_eq!(err(b"{'a': 1}"), Error::Syntax(1));
        assert_eq!(err(br#"{"a" 1}"#), Error::Syntax(5));
        assert_eq!(err(br#"{"a": 1,}"#), Error::Syntax(8));
        assert_eq!(err(br#"{,}"#), Error::Syntax(1));
        assert_eq!(err(br#"{"a": 1 "b": 2}"#), Error::Syntax(8));
        assert_eq!(err(br#"{"a": nul}"#), Error::Syntax(9));
        assert_eq!(err(br#"{"a": True}"#), Error::Syntax(6));
        assert_eq!(err(br#"{"a": nan}"#), Error::Syntax(7));
        assert_eq!(err(br#"{"a": .5}"#), Error::Syntax(6));
        assert_eq!(err(br#"{"a": 0x10}"#), Error::Syntax(7));
        assert_eq!(err(br#"{"a": [1 2]}"#), Error::Syntax(9));
        assert_eq!(err(br#"{"a": [1}"#), Error::Syntax(8));
        assert_eq!(err(br#"{"a": {"b": 1]}"#), Error::Syntax(13));
    }

    #[test]
    fn top_level_must_be_an_object() {
        for input in [
            &b"[]"[..],
            br#"[{"term": 1}]"#,
            br#""a string""#,
            b"42",
            b"-1",
            b"null",
            b"true",
            b"NaN",
            b" \n [1, 2] ",
        ] {
            assert_eq!(err(input), Error::NotAnObject);
        }
    }

    #[test]
    fn empty_input() {
        assert_eq!(err(b""), Error::Empty);
        assert_eq!(err(b" \t\r\n"), Error::Empty);
        assert_eq!(err(b"\xef\xbb\xbf"), Error::Empty);
    }

    #[test]
    fn truncated_at_many_points() {
        for input in [
            &b"{"[..],
            b"{ ",
            b"{\"",
            b"{\"term",
            b"{\"term\"",
            b"{\"term\":",
            b"{\"term\": ",
            b"{\"term\": 1",
            b"{\"term\": -",
            b"{\"term\": 1.",
            b"{\"term\": 1e",
            b"{\"term\": 1e+",
            b"{\"term\": 3,",
            b"{\"term\": 3, ",
            b"{\"term\": tr",
            b"{\"term\": -Inf",
            b"{\"value\": \"abc",
            b"{\"value\": \"\\",
            b"{\"value\": \"\\u00",
            b"{\"value\": \"\\ud83d",
            b"{\"value\": \"\\ud83d\\",
            b"{\"value\": \"\\ud83d\\u",
            b"{\"value\": \"\\ud83d\\ude0",
            b"{\"value\": \"x\"",
            b"{\"value\": [",
            b"{\"value\": [1,",
            b"{\"value\": {\"a\"",
            b"{\"value\": {\"a\": [{}]",
        ] {
            assert_eq!(
                err(input),
                Error::Truncated,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn every_prefix_of_a_valid_datagram_is_an_error() {
        let pretty = "{\n  \"sender_name\": \"Nöde😀\",\n  \"extra\": [1, {\"a\": -2.5e+3}, \"\\ud83d\\ude00\"],\n  \"term\": \"3\"\n}";
        let datagrams: [&[u8]; 5] = [
            PY_TEMPLATE,
            PY_LEADER_INFO,
            PY_REPLY,
            pretty.as_bytes(),
            br#"{"value": [true, false, null, NaN, -Infinity, {}, []], "key": "\"\\\/\b\f\n\r\t\u00e9"}"#,
        ];
        for full in datagrams {
            assert!(parse(full).is_ok());
            for cut in 0..full.len() {
                let prefix = &full[..cut];
                let want = if prefix.iter().all(|b| b" \t\r\n".contains(b)) {
                    Error::Empty
                } else if std::str::from_utf8(prefix).is_err() {
                    Error::NotUtf8
                } else {
                    Error::Truncated
                };
                assert_eq!(parse(prefix), Err(want), "cut at {cut} of {full:?}");
            }
        }
    }

    #[test]
    fn not_utf8() {
        assert_eq!(err(b"{\"value\": \"\xff\"}"), Error::NotUtf8);
        assert_eq!(
            err(b"{\"value\": \"\xc3\"}"),
            Error::NotUtf8,
            "cut sequence"
        );
        assert_eq!(
            err(b"{\"value\": \"\xc0\xaf\"}"),
            Error::NotUtf8,
            "overlong"
        );
        assert_eq!(
            err(b"{\"value\": \"\xed\xa0\x80\"}"),
            Error::NotUtf8,
            "surrogate"
        );
        assert_eq!(err(b"\xfe\xff{}"), Error::NotUtf8, "UTF-16 BOM");
    }

    #[test]
    fn too_large() {
        let mut input = br#"{"value": ""#.to_vec();
        input.resize(MAX_INPUT - 2, b'a');
        input.extend_from_slice(br#""}"#);
        assert_eq!(input.len(), MAX_INPUT);
        assert_eq!(ok(&input).value.map(|v| v.len()), Some(MAX_INPUT - 13));
        input.push(b' ');
        assert_eq!(err(&input), Error::TooLarge);
        // Checked before anything else, even UTF-8.
        assert_eq!(err(&vec![0xff; MAX_INPUT + 1]), Error::TooLarge);
    }

    #[test]
    fn trailing_data() {
        assert_eq!(err(b"{} x"), Error::TrailingData(3));
        assert_eq!(err(b"{}{}"), Error::TrailingData(2));
        assert_eq!(err(b"{}\0"), Error::TrailingData(2));
        assert_eq!(err(b"{},"), Error::TrailingData(2));
        assert_eq!(err(br#"{"term": 1}}"#), Error::TrailingData(11));
        assert_eq!(ok(b"{} \r\n\t"), Datagram::default());
    }

    #[test]
    fn raw_control_chars_in_strings() {
        assert_eq!(err(b"{\"value\": \"a\nb\"}"), Error::ControlChar(12));
        assert_eq!(err(b"{\"value\": \"\t\"}"), Error::ControlChar(11));
        assert_eq!(err(b"{\"value\": \"\0\"}"), Error::ControlChar(11));
        assert_eq!(err(b"{\"va\x1flue\": 1}"), Error::ControlChar(4));
        assert_eq!(err(b"{\"value\": \"\\u00e9\x01\"}"), Error::ControlChar(17));
    }

    #[test]
    fn bad_escapes() {
        assert_eq!(err(br#"{"value": "\x41"}"#), Error::BadEscape(11));
        assert_eq!(err(br#"{"value": "\'"}"#), Error::BadEscape(11));
        assert_eq!(err(br#"{"value": "\U0041"}"#), Error::BadEscape(11));
        assert_eq!(err(br#"{"value": "ab\u12G4"}"#), Error::BadEscape(13));
        assert_eq!(err(br#"{"value": "\u 123"}"#), Error::BadEscape(11));
        assert_eq!(err("{\"value\": \"\\é\"}".as_bytes()), Error::BadEscape(11));
        assert_eq!(err(br#"{"value": "\ud83d\uZZZZ"}"#), Error::BadEscape(17));
    }

    #[test]
    fn bad_numbers() {
        // `{"term": ` is 9 bytes.
        assert_eq!(err(br#"{"term": 01}"#), Error::BadNumber(9));
        assert_eq!(err(br#"{"term": 00}"#), Error::BadNumber(9));
        assert_eq!(err(br#"{"term": -01}"#), Error::BadNumber(9));
        assert_eq!(err(br#"{"term": +1}"#), Error::BadNumber(9));
        assert_eq!(err(br#"{"term": -}"#), Error::BadNumber(9));
        assert_eq!(err(br#"{"term": - 1}"#), Error::BadNumber(9));
        assert_eq!(err(br#"{"term": --1}"#), Error::BadNumber(9));
        assert_eq!(err(br#"{"term": 1.}"#), Error::BadNumber(9));
        assert_eq!(err(br#"{"term": 1.e5}"#), Error::BadNumber(9));
        assert_eq!(err(br#"{"term": 1e}"#), Error::BadNumber(9));
        assert_eq!(err(br#"{"term": 1e+}"#), Error::BadNumber(9));
        assert_eq!(err(br#"{"term": -NaN}"#), Error::BadNumber(9));
        assert_eq!(err(br#"{"term": -Inf}"#), Error::Syntax(13));
    }

    #[test]
    fn huge_numbers_are_values_not_errors() {
        let d = ok(br#"{"term": 1e400, "value": 123456789012345678901234567890, "x": -1e-400}"#);
        assert_eq!(d.term, None);
        assert_eq!(d.value.as_deref(), Some("123456789012345678901234567890"));
        let long = format!(r#"{{"term": {}}}"#, "9".repeat(10_000));
        assert_eq!(ok(long.as_bytes()).term, None);
    }

    #[test]
    fn python_nan_and_infinity() {
        // json.dumps({"term": float("nan"), "key": float("inf"), "value": -float("inf")})
        let d = ok(br#"{"term": NaN, "key": Infinity, "value": -Infinity}"#);
        assert_eq!(
            d,
            datagram(None, None, None, Some("Infinity"), Some("-Infinity"))
        );
        assert_eq!(ok(br#"{"term": Infinity}"#).term, None);
        assert_eq!(ok(br#"{"term": -Infinity}"#).term, None);
    }

    #[test]
    fn byte_order_mark_is_skipped_once() {
        let mut input = b"\xef\xbb\xbf".to_vec();
        input.extend_from_slice(PY_LEADER_INFO);
        assert_eq!(ok(&input), ok(PY_LEADER_INFO));
        assert_eq!(ok(b"\xef\xbb\xbf \n{}"), Datagram::default());
        assert_eq!(err(b" \xef\xbb\xbf{}"), Error::Syntax(1));
        assert_eq!(err(b"\xef\xbb\xbf\xef\xbb\xbf{}"), Error::Syntax(3));
        assert_eq!(err(b"{}\xef\xbb\xbf"), Error::TrailingData(2));
    }

    #[test]
    fn error_display_is_logfmt_friendly() {
        let cases = [
            (Error::TooLarge, "too-large"),
            (Error::NotUtf8, "not-utf8"),
            (Error::Empty, "empty"),
            (Error::NotAnObject, "not-an-object"),
            (Error::Truncated, "truncated"),
            (Error::TooDeep, "too-deep"),
            (Error::Syntax(17), "not-json at=17"),
            (Error::BadNumber(9), "bad-number at=9"),
            (Error::BadEscape(5), "bad-escape at=5"),
            (Error::LoneSurrogate(11), "lone-surrogate at=11"),
            (Error::ControlChar(12), "control-char at=12"),
            (Error::TrailingData(40), "trailing-data at=40"),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
            let reason = format!("reason={error}");
            let words: Vec<&str> = reason.split(' ').collect();
            assert!(
                words.iter().all(|w| w.matches('=').count() == 1),
                "{reason}"
            );
        }
    }

    // ---- encoder -----------------------------------------------------------------------------

    #[test]
    fn emit_exactly_max_output_is_not_cut() {
        let overhead = emit(&datagram(None, None, None, None, Some(""))).len();
        let value = "x".repeat(MAX_OUTPUT - overhead);
        let d = datagram(None, None, None, None, Some(&value));
        assert_eq!(emit(&d).len(), MAX_OUTPUT);
        assert_eq!(ok(&emit(&d)), d);
    }

    #[test]
    fn emit_cuts_the_longest_strings_to_fit() {
        let d = datagram(
            Some("Node1"),
            Some("STORE"),
            Some(5),
            Some(&"k".repeat(700)),
            Some(&"v".repeat(2000)),
        );
        let bytes = emit(&d);
        // Two fields cut to a common length: at most one byte of the budget is left over.
        assert!(bytes.len() >= MAX_OUTPUT - 1 && bytes.len() <= MAX_OUTPUT);
        let back = ok(&bytes);
        assert_eq!(back.sender_name.as_deref(), Some("Node1"));
        assert_eq!(back.request.as_deref(), Some("STORE"));
        assert_eq!(back.term, Some(5));
        let (key, value) = (back.key.unwrap_or_default(), back.value.unwrap_or_default());
        assert_eq!(key.len(), value.len(), "cut to a common length");
        assert!(key.chars().all(|c| c == 'k') && value.chars().all(|c| c == 'v'));
    }

    #[test]
    fn emit_cuts_at_char_boundaries_never_inside_an_escape() {
        for filler in ["é", "😀", "\"", "\u{1}", "a😀"] {
            let d = datagram(Some(&filler.repeat(1000)), None, Some(1), None, None);
            let bytes = emit(&d);
            assert!(bytes.len() <= MAX_OUTPUT);
            assert!(
                bytes.len() > MAX_OUTPUT - 12,
                "{filler}: only {}",
                bytes.len()
            );
            let name = ok(&bytes).sender_name.unwrap_or_default();
            assert!(d.sender_name.unwrap_or_default().starts_with(&name));
            assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok());
        }
    }
}
