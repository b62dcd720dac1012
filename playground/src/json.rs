//! Just enough JSON writing for the page's answers: objects built field by field.

use std::fmt::Write;

/// A JSON string literal.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// An object under construction: `{"a":1,"b":"x"}`.
pub struct Object<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Object<'a> {
    pub fn new(out: &'a mut String) -> Object<'a> {
        out.push('{');
        Object { out, first: true }
    }

    /// Starts a field; its value is written next into [`Object::raw`]'s string.
    fn key(&mut self, key: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        string(self.out, key);
        self.out.push(':');
        self.out
    }

    pub fn num(&mut self, key: &str, v: u64) -> &mut Self {
        let _ = write!(self.key(key), "{v}");
        self
    }
    pub fn opt(&mut self, key: &str, v: Option<u64>) -> &mut Self {
        match v {
            Some(v) => self.num(key, v),
            None => self.raw(key, "null"),
        }
    }
    pub fn bool(&mut self, key: &str, v: bool) -> &mut Self {
        self.raw(key, if v { "true" } else { "false" })
    }
    pub fn str(&mut self, key: &str, v: &str) -> &mut Self {
        string(self.key(key), v);
        self
    }
    pub fn opt_str(&mut self, key: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.str(key, v),
            None => self.raw(key, "null"),
        }
    }
    /// A value already in JSON.
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key).push_str(json);
        self
    }
    pub fn end(&mut self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_objects() {
        let mut s = String::new();
        Object::new(&mut s)
            .num("a", 1)
            .str("b", "x\"y\\z\n\u{1}é")
            .opt("c", None)
            .bool("d", true)
            .end();
        assert_eq!(s, r#"{"a":1,"b":"x\"y\\z\n\u0001é","c":null,"d":true}"#);
    }
}
