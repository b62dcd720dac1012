//! Randomized decoder test: `raft::json::parse` and `raft::message::classify` on many random
//! inputs, standard library only.
//!
//! ```text
//! make fuzz                        # FUZZ_ITERS=1000000 by default
//! FUZZ_ITERS=10000000 FUZZ_SEED=7 cargo test --profile checked --test fuzz -- --ignored --nocapture
//! ```
//!
//! Inputs: mutated valid messages, token soup, random bytes, deep nesting, long numbers, invalid
//! UTF-8 and sizes around the 64 KiB limit. For each one: nothing panics (in the checked profile
//! an arithmetic overflow would too); an accepted datagram classifies without panicking; emitting
//! it gives at most 1024 bytes that decode again, to the same datagram and the same
//! classification when nothing had to be cut. A failure prints the input and its seed.
use raft::json::{emit, parse, Datagram, MAX_INPUT, MAX_OUTPUT};
use raft::message::{classify, Incoming, Reject};
use std::collections::BTreeMap;
use std::time::Instant;

/// The core's own seeded PRNG, so a failing case reproduces from its seed.
use raft::raft::Rng;

mod common;
use common::{mutated, token_soup, BYTES, CORPUS};

fn random_input(rng: &mut Rng) -> Vec<u8> {
    match rng.index(20) {
        0 => (0..rng.index(64)).map(|_| rng.next_u64() as u8).collect(),
        1 => (0..rng.index(200)).map(|_| *rng.pick(BYTES)).collect(),
        2 | 3 => token_soup(rng, 32),
        4 => {
            let depth = 1 + rng.index(64);
            let (open, close) = *rng.pick(&[("[", "]"), ("{\"a\":", "}")]);
            format!(
                "{{\"term\": 1, \"x\": {}0{}}}",
                open.repeat(depth),
                close.repeat(depth)
            )
            .into_bytes()
        }
        5 => {
            let digits: String = (0..1 + rng.index(400))
                .map(|_| (b'0' + rng.index(10) as u8) as char)
                .collect();
            let exp = *rng.pick(&["", "e5", "e-400", ".0", ".5", "e+19", "E0"]);
            format!("{{\"sender_name\": \"Node1\", \"request\": \"APPEND_RPC\", \"term\": {digits}{exp}}}")
                .into_bytes()
        }
        6 if rng.index(200) == 0 => {
            // Around the size limit: valid JSON padded with spaces to MAX_INPUT - 1 ..= MAX_INPUT + 1.
            let mut v = rng.pick(&CORPUS).as_bytes().to_vec();
            v.resize(MAX_INPUT - 1 + rng.index(3), b' ');
            v
        }
        _ => mutated(rng, 8),
    }
}

fn peers() -> Vec<String> {
    (1..=5).map(|i| format!("Node{i}")).collect()
}

fn text_len(d: &Datagram) -> usize {
    [&d.sender_name, &d.request, &d.key, &d.value]
        .iter()
        .map(|f| f.as_ref().map_or(0, |s| s.chars().count()))
        .sum()
}

fn kind(r: &Result<Incoming, Reject>) -> String {
    match r {
        Ok(Incoming::Peer { msg, .. }) => format!("peer {:?}", msg.kind),
        Ok(Incoming::Control(c)) => format!("control {c:?}"),
        Ok(Incoming::LeaderInfo { .. }) => "leader-info".into(),
        Ok(Incoming::Status { .. }) => "status".into(),
        Err(why) => format!("dropped {}", why.as_str()),
    }
}

/// One input through the decoder and the classifier; returns the classification (or the
/// decoder's error) for the summary.
fn check(input: &[u8], peers: &[String]) -> String {
    let d = match parse(input) {
        Ok(d) => d,
        Err(e) => {
            assert!(input.len() <= MAX_INPUT || e == raft::json::Error::TooLarge);
            return format!("rejected {}", e.to_string().split(' ').next().unwrap_or(""));
        }
    };
    let class = classify(&d, peers);
    let bytes = emit(&d);
    assert!(bytes.len() <= MAX_OUTPUT, "emitted {} bytes", bytes.len());
    let back = parse(&bytes).expect("our own output decodes");
    // Each character escapes to at most 12 bytes (a surrogate pair): short fields are never cut.
    if text_len(&d) * 12 + 120 < MAX_OUTPUT {
        assert_eq!(back, d);
        assert_eq!(classify(&back, peers), class);
    }
    kind(&class)
}

fn run(iters: u64, seed: u64) {
    let peers = peers();
    let mut rng = Rng::new(seed);
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut bytes = 0usize;
    let t0 = Instant::now();
    for i in 0..iters {
        let input = random_input(&mut rng);
        bytes += input.len();
        match std::panic::catch_unwind(|| check(&input, &peers)) {
            Ok(k) => *seen.entry(k).or_default() += 1,
            Err(_) => panic!(
                "case {i} (FUZZ_SEED={seed}): {:?}",
                String::from_utf8_lossy(&input[..input.len().min(2000)])
            ),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "fuzz: {iters} inputs ({:.1} MB) in {secs:.2} s = {:.0} inputs/s, seed {seed}",
        bytes as f64 / 1e6,
        iters as f64 / secs
    );
    for (k, n) in &seen {
        println!("  {n:>9}  {k}");
    }
    let accepted: u64 = seen
        .iter()
        .filter(|(k, _)| !k.starts_with("rejected"))
        .map(|(_, n)| n)
        .sum();
    assert!(accepted * 20 > iters, "only {accepted} inputs decoded");
}

/// A quick pass in the ordinary suite, so the generator stays honest.
#[test]
fn random_inputs_smoke() {
    run(20_000, 0x5eed);
}

/// `make fuzz`: FUZZ_ITERS inputs (default 10^6), FUZZ_SEED (default 1).
#[test]
#[ignore]
fn random_inputs_at_scale() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    run(env("FUZZ_ITERS", 1_000_000), env("FUZZ_SEED", 1));
}
