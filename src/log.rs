//! Log lines people can read and machines can check: one logfmt line per event on stderr.
//! Owns the line format, value quoting and rate limits; must never decide what is worth saying
//! (events come from the core, drops from the runtime).
//!
//! `t=1732630000.123 node=Node3 term=4 role=Leader event=elected votes=3/5 after_ms=187`
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch with milliseconds: `1732630000.123`.
pub fn wall_clock() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// A value as logfmt wants it: bare when it can be, else quoted with `"` and `\` escaped.
pub fn value(v: &str) -> String {
    let bare = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\');
    if bare {
        return v.to_string();
    }
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(s, "\\u{{{:x}}}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Text from the network, cut to a length a log line can carry.
pub fn clip(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        None => s.to_string(),
        Some((cut, _)) => format!("{}...({} bytes)", &s[..cut], s.len()),
    }
}

/// Builds one line: `Line::new("node=Node1 ...").kv("event", "vote").to_string()`.
pub struct Line(String);

impl Line {
    pub fn new(prefix: &str) -> Line {
        Line(format!("t={} {prefix}", wall_clock()))
    }

    pub fn kv(mut self, key: &str, v: impl std::fmt::Display) -> Line {
        let _ = write!(self.0, " {key}={}", value(&v.to_string()));
        self
    }

    /// The line as it would be written (without the newline).
    pub fn into_string(self) -> String {
        self.0
    }

    pub fn emit(self) {
        eprintln!("{}", self.0);
    }
}

/// At most one line per key per `period_ms`; counts what it held back.
#[derive(Default)]
pub struct RateLimit {
    seen: HashMap<String, (u64, u64)>,
}

impl RateLimit {
    /// `Some(suppressed)` when a line may be written now, `None` when it must be held back.
    pub fn allow(&mut self, key: &str, now_ms: u64, period_ms: u64) -> Option<u64> {
        if self.seen.len() > 1024 {
            self.seen.clear(); // bounds memory when keys carry addresses (many senders)
        }
        match self.seen.get_mut(key) {
            Some((last, held)) if now_ms < *last + period_ms => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let n = *held;
                *last = now_ms;
                *held = 0;
                Some(n)
            }
            None => {
                self.seen.insert(key.to_string(), (now_ms, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_text_is_clipped() {
        assert_eq!(clip("SHUTDOWN"), "SHUTDOWN");
        let long = "é".repeat(100);
        assert_eq!(clip(&long), format!("{}...(200 bytes)", "é".repeat(64)));
    }

    #[test]
    fn values_are_quoted_only_when_needed() {
        assert_eq!(value("Node1"), "Node1");
        assert_eq!(value("127.0.0.1:5555"), "127.0.0.1:5555");
        assert_eq!(value(""), "\"\"");
        assert_eq!(value("a b"), "\"a b\"");
        assert_eq!(value("x=\"y\""), "\"x=\\\"y\\\"\"");
        assert_eq!(value("\n"), "\"\\u{a}\"");
    }

    #[test]
    fn rate_limit_lets_one_through_per_period_and_counts_the_rest() {
        let mut r = RateLimit::default();
        assert_eq!(r.allow("bad-json", 0, 1000), Some(0));
        assert_eq!(r.allow("bad-json", 10, 1000), None);
        assert_eq!(r.allow("bad-json", 20, 1000), None);
        assert_eq!(r.allow("other", 20, 1000), Some(0));
        assert_eq!(r.allow("bad-json", 1000, 1000), Some(2));
        assert_eq!(r.allow("bad-json", 1001, 1000), None);
    }
}
