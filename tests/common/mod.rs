//! What the randomized decoder tests share: a corpus of valid datagrams, the tokens and bytes
//! mutations draw from, and one mutator. Used by `tests/fuzz.rs` and `tests/json_properties.rs`.
#![allow(dead_code)] // each test binary uses its own part

use raft::election::Rng;

/// Valid datagrams: what Python sends, node messages, odd spellings, nesting, escapes, duplicates.
pub const CORPUS: [&str; 16] = [

    r#"{"sender_name": "Node1", "request": "APPEND_RPC", "term": 3, "key": null, "value": null}"#,
    r#"{"sender_name": "Node2", "request": "VOTE_REQUEST", "term": 4, "key": "TRANSFER", "value": null}"#,
    r#"{"sender_name": "Node3", "request": "PRE_VOTE_REQUEST", "term": 5, "key": null, "value": null}"#,
    r#"{"sender_name": "Node1", "request": "PRE_VOTE_ACK", "term": 6, "key": null, "value": null}"#,
    r#"{"request": "CONVERT_FOLLOWER"}"#,
    r#"{"sender_name": "Node4", "request": "VOTE_ACK", "term": "7", "key": null, "value": null}"#,
    r#"{"sender_name": "Node5", "request": "APPEND_REPLY", "term": 2.0, "key": null, "value": null}"#,
    r#"{"sender_name": "Controller", "request": "LEADER_INFO", "term": null, "key": null, "value": null}"#,
    r#"{"sender_name": "Node3", "request": "LEADER_INFO", "term": 4, "key": "LEADER", "value": "Node2"}"#,
    "{\n    \"sender_name\": \"Controller\",\n    \"request\": \"TIMEOUT\",\n    \"term\": NaN\n}",
    r#"{"x": [1, -0.5e-3, {"y": [true, false, null]}], "value": "\u00e9\ud83d\ude00", "request": "SHUTDOWN"}"#,
    r#"{"sender_name": null, "request": null, "term": null, "key": null, "value": null}"#,
    r#"{"sender_name": "Node1", "request": "LEADER_INFO", "term": 3, "key": "LEADER", "value": "Node1"}"#,
    "{\n    \"sender_name\": null,\n    \"request\": \"VOTE\",\n    \"term\": \"4\",\n    \"key\": 1.5e3,\n    \"value\": null\n}",
    r#"{"value": "\u00e9\ud83d\ude00\"\\\n", "x": [1, -0.5e-3, {"y": [true, false, null]}, {}], "term": 3e0}"#,
    r#"{"key":"k","value":"v","term":18446744073709551615,"term":7,"z":[[[[]]]]}"#,
];

/// JSON fragments a mutation inserts: structure, keys, tricky strings and numbers, extensions.
pub const TOKENS: [&str; 40] = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\"",
    "\\",
    "\"term\"",
    "\"request\"",
    "\"sender_name\"",
    "\"key\"",
    "\"value\"",
    "\"Node1\"",
    "\"APPEND_RPC\"",
    "\"\\ud800\"",
    "\"\\u00e9\"",
    "0",
    "-",
    "1e400",
    "18446744073709551615",
    "18446744073709551616",
    "3.0",
    "null",
    "true",
    "NaN",
    "-Infinity",
    "\u{feff}",
    "\"TRANSFER\"",
    "\n",
    "\"x\"",
    "\"\\ud83d\\ude00\"",
    "\"é\"",
    "1",
    "3.5",
    "-0",
    "2E-1",
    "01",
    "false",
];

/// Single bytes a mutation writes: structure, digits, letters of literals, controls, bad UTF-8.
pub const BYTES: &[u8] =
    b"{}[]\":,\\ \t\r\n0123456789-+.eEunlfatrsINb/\x00\x1f\x7f\xc3\xa9\xed\xa0\x80\xff";

/// One random edit: overwrite, insert a byte or a token, delete, duplicate a run, or truncate.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    let at = rng.index(input.len() + 1);
    match rng.index(6) {
        0 if at < input.len() => input[at] = *rng.pick(BYTES),
        1 => input.insert(at, *rng.pick(BYTES)),
        2 => {
            let token = rng.pick(&TOKENS).as_bytes();
            input.splice(at..at, token.iter().copied());
        }
        3 => {
            let end = (at + rng.index(8)).min(input.len());
            input.drain(at..end);
        }
        4 => {
            let end = (at + rng.index(24)).min(input.len());
            let copy = input[at..end].to_vec();
            let to = rng.index(input.len() + 1);
            input.splice(to..to, copy);
        }
        _ => input.truncate(at),
    }
}

/// A corpus entry with 1 to `max_edits` mutations.
pub fn mutated(rng: &mut Rng, max_edits: usize) -> Vec<u8> {
    let mut input = rng.pick(&CORPUS).as_bytes().to_vec();
    for _ in 0..=rng.index(max_edits) {
        mutate(rng, &mut input);
    }
    input
}

/// `{` followed by up to `max_tokens` random tokens.
pub fn token_soup(rng: &mut Rng, max_tokens: usize) -> Vec<u8> {
    let mut soup = b"{".to_vec();
    for _ in 0..rng.index(max_tokens) {
        soup.extend_from_slice(rng.pick(&TOKENS).as_bytes());
    }
    soup
}
