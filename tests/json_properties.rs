//! The codec against the outside: randomized and differential tests of `raft::json`.
//!
//! Random inputs (mutated corpus entries and token soup, from `tests/common`, shared with
//! `tests/fuzz.rs`) must decode as serde_json reads them, up to the documented extensions; random
//! and tricky datagrams must emit within 1024 bytes, as JSON serde_json accepts, and decode back.
//! The grammar itself is unit-tested beside the code in `src/json.rs`.
use raft::election::Rng;
use raft::json::{emit, emit_capped, parse, Datagram, Error, MAX_DEPTH, MAX_OUTPUT};

mod common;
use common::{mutated, token_soup};

/// An independent reading of a term given as text: ASCII digits, optionally padded with ASCII
/// whitespace, in `u64` range.
fn decimal_text(text: &str) -> Option<u64> {
    let digits = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let all_digits = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    all_digits.then(|| digits.parse().ok()).flatten()
}

fn random_input(rng: &mut Rng) -> Vec<u8> {
    if rng.index(4) == 0 {
        return token_soup(rng, 24);
    }
    mutated(rng, 4)
}

fn datagram(sender: Option<&str>, term: Option<u64>, value: Option<&str>) -> Datagram {
    Datagram {
        sender_name: sender.map(str::to_string),
        request: Some("VOTE".to_string()),
        term,
        key: None,
        value: value.map(str::to_string),
    }
}

fn tricky_strings() -> Vec<String> {
    let mut all: Vec<String> = [
        "",
        "\"",
        "\\",
        "\\\"",
        "\"\\u0041\"",
        "/</script>",
        "\u{0}\u{1}\u{1f}\u{7f}\u{80}\u{9f}",
        "\u{8}\u{c}\n\r\t",
        "é😀\u{2028}\u{2029}\u{feff}\u{fffd}\u{ffff}\u{10000}\u{10ffff}",
        "Node1",
        "key with spaces = and \"quotes\"",
    ]
    .map(String::from)
    .to_vec();
    all.push((0u8..0x80).map(char::from).collect()); // all of ASCII
    all
}

#[test]
fn emit_round_trips() {
    for s in tricky_strings() {
        for term in [None, Some(0), Some(1), Some(u64::MAX)] {
            let d = Datagram {
                sender_name: Some(s.clone()),
                request: None,
                term,
                key: Some(s.clone()),
                value: Some(format!("v{s}")),
            };
            let bytes = emit(&d);
            assert_eq!(bytes, emit_capped(&d, usize::MAX), "fits without cutting");
            assert!(bytes.is_ascii(), "ensure_ascii style");
            assert_eq!(parse(&bytes), Ok(d));
        }
    }
}

#[test]
fn emit_output_parses_with_serde_json() {
    for s in tricky_strings() {
        let d = datagram(Some(&s), Some(12), Some(&s));
        let bytes = emit(&d);
        let v: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => panic!("{e}: {}", String::from_utf8_lossy(&bytes)),
        };
        assert_eq!(v["sender_name"].as_str(), Some(s.as_str()));
        assert_eq!(v["request"].as_str(), Some("VOTE"));
        assert_eq!(v["term"].as_u64(), Some(12));
        assert!(v["key"].is_null());
        assert_eq!(v["value"].as_str(), Some(s.as_str()));
        let keys: Vec<&String> = v
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys.len(), 5);
    }
}

fn depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Our reading of one field must match serde_json's reading of the same key.
fn check_field(ours: &Option<String>, theirs: Option<&serde_json::Value>) {
    use serde_json::Value as V;
    match theirs {
        None | Some(V::Null | V::Array(_) | V::Object(_)) => assert_eq!(ours, &None),
        Some(V::String(s)) => assert_eq!(ours.as_deref(), Some(s.as_str())),
        Some(V::Bool(b)) => assert_eq!(ours, &Some(b.to_string())),
        Some(V::Number(_)) => assert!(ours.is_some()),
    }
}

fn check_term(ours: Option<u64>, theirs: Option<&serde_json::Value>) {
    use serde_json::Value as V;
    match theirs {
        Some(V::Number(n)) if n.is_u64() => assert_eq!(ours, n.as_u64()),
        Some(V::Number(n)) if n.is_i64() => assert_eq!(ours, None),
        Some(V::Number(_)) => {} // floats: whole ones are read exactly, see term tests
        Some(V::String(s)) => assert_eq!(ours, decimal_text(s)),
        _ => assert_eq!(ours, None),
    }
}

/// Compares one input against serde_json (strict RFC 8259, last duplicate key wins).
/// Intentional differences: we also accept a leading BOM and NaN/Infinity, we reject
/// nesting deeper than MAX_DEPTH, and serde_json rejects numbers beyond f64 range.
fn differential(input: &[u8]) -> bool {
    let ours = parse(input);
    let theirs = serde_json::from_slice::<serde_json::Value>(input);
    let extension = input.starts_with(b"\xef\xbb\xbf")
        || input.windows(3).any(|w| w == b"NaN")
        || input.windows(8).any(|w| w == b"Infinity");
    match (&ours, &theirs) {
        (Ok(d), Ok(v)) => {
            let o = v.as_object();
            assert!(o.is_some(), "we accepted a non-object");
            let get = |k: &str| o.and_then(|o| o.get(k));
            check_field(&d.sender_name, get("sender_name"));
            check_field(&d.request, get("request"));
            check_term(d.term, get("term"));
            check_field(&d.key, get("key"));
            check_field(&d.value, get("value"));
        }
        (Ok(_), Err(e)) => assert!(
            extension || e.to_string().contains("number out of range"),
            "serde_json: {e}"
        ),
        (Err(Error::TooDeep), Ok(v)) => assert!(depth(v) > MAX_DEPTH),
        (Err(Error::NotAnObject), Ok(v)) => assert!(!v.is_object()),
        (Err(e), Ok(_)) => panic!("we rejected valid JSON: {e}"),
        (Err(_), Err(_)) => {}
    }
    ours.is_ok()
}

#[test]
fn random_inputs_never_panic_and_agree_with_serde_json() {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for i in 0..100_000 {
        let input = random_input(&mut rng);
        let result = std::panic::catch_unwind(|| differential(&input));
        match result {
            Ok(true) => accepted += 1,
            Ok(false) => {}
            Err(_) => panic!("case {i}: {:?}", String::from_utf8_lossy(&input)),
        }
    }
    assert!(accepted > 5_000, "only {accepted} inputs were valid");
}

#[test]
fn random_datagrams_emit_within_bounds_and_round_trip() {
    let palette = [
        'a', 'Z', ' ', '"', '\\', '\n', '\u{1}', '\u{7f}', 'é', '😀', '\u{ffff}',
    ];
    let mut rng = Rng::new(42);
    let text = |rng: &mut Rng| {
        (rng.index(5) > 0).then(|| {
            let max = if rng.index(4) == 0 { 1500 } else { 40 };
            let len = rng.index(max);
            (0..len).map(|_| *rng.pick(&palette)).collect::<String>()
        })
    };
    for _ in 0..3_000 {
        let d = Datagram {
            sender_name: text(&mut rng),
            request: text(&mut rng),
            term: (rng.index(3) > 0).then(|| rng.next_u64() >> rng.index(64)),
            key: text(&mut rng),
            value: text(&mut rng),
        };
        let full_len = emit_capped(&d, usize::MAX).len();
        let bytes = emit(&d);
        assert!(bytes.len() <= MAX_OUTPUT);
        assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok());
        let back = parse(&bytes).expect("our own output decodes");
        if full_len <= MAX_OUTPUT {
            assert_eq!(back, d);
            continue;
        }
        assert_eq!(back.term, d.term);
        let pairs = [
            (&back.sender_name, &d.sender_name),
            (&back.request, &d.request),
            (&back.key, &d.key),
            (&back.value, &d.value),
        ];
        for (cut, original) in pairs {
            let (cut, original) = (cut.as_deref(), original.as_deref());
            assert_eq!(cut.is_some(), original.is_some());
            assert!(original.unwrap_or("").starts_with(cut.unwrap_or("")));
        }
    }
}
