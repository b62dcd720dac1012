//! The wire codec: one UDP datagram is one flat JSON object with five fields.
//! (Interface stub; the full decoder lands with its tests.)
use std::fmt;

/// Largest datagram the decoder looks at; anything longer is dropped unread.
pub const MAX_INPUT: usize = 64 * 1024;
/// Every datagram a node emits fits in the reference controller's `recvfrom(1024)`.
pub const MAX_OUTPUT: usize = 1024;

/// The five fields of a message. `None` is JSON `null` or a missing field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Datagram {
    pub sender_name: Option<String>,
    pub request: Option<String>,
    pub term: Option<u64>,
    pub key: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    TooLarge,
    NotUtf8,
    Syntax(usize),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLarge => write!(f, "too-large"),
            Error::NotUtf8 => write!(f, "not-utf8"),
            Error::Syntax(at) => write!(f, "syntax at={at}"),
        }
    }
}

pub fn parse(bytes: &[u8]) -> Result<Datagram, Error> {
    if bytes.len() > MAX_INPUT {
        return Err(Error::TooLarge);
    }
    let _ = std::str::from_utf8(bytes).map_err(|_| Error::NotUtf8)?;
    Err(Error::Syntax(0))
}

pub fn emit(d: &Datagram) -> Vec<u8> {
    fn s(o: &Option<String>) -> String {
        o.as_ref().map_or("null".into(), |v| format!("\"{v}\""))
    }
    let term = d.term.map_or("null".into(), |t| t.to_string());
    format!(
        "{{\"sender_name\": {}, \"request\": {}, \"term\": {}, \"key\": {}, \"value\": {}}}",
        s(&d.sender_name),
        s(&d.request),
        term,
        s(&d.key),
        s(&d.value)
    )
    .into_bytes()
}
