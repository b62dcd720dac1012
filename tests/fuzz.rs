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
//!
//! The MAC path too: the mutation seeds include datagrams genuinely sealed for Node1 under a
//! cluster key, and every input that classifies as a node message (or is an `AUTH_HELLO`) goes
//! through Node1's `auth::Guard::open`. Nothing panics, and a datagram is delivered only when
//! every field the tag covers is that of a genuinely sealed one, and each of those at most once.
use raft::auth::{Guard, Keys, Verdict, HELLO};
use raft::json::{emit, parse, Datagram, MAX_INPUT, MAX_OUTPUT};
use raft::message::{classify, Incoming, Reject};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// The core's own seeded PRNG, so a failing case reproduces from its seed.
use raft::election::Rng;

mod common;
use common::{mutated, token_soup, BYTES, CORPUS};

/// Node1's guard, and datagrams sealed for it by Node2 and Node3 (as JSON).
struct Mac {
    guard: Guard,
    sealed: Vec<Vec<u8>>,
    /// The covered fields of each sealed datagram, and those delivered so far.
    genuine: BTreeSet<String>,
    delivered: BTreeSet<String>,
}

fn covered(d: &Datagram) -> String {
    format!(
        "{:?}",
        (&d.sender_name, &d.request, d.term, &d.key, &d.value)
    )
}

impl Mac {
    fn new() -> Mac {
        let keys = || Keys::new(b"fuzz key", Some(b"old fuzz key"));
        let names = peers();
        let mut guard = Guard::new(keys(), names.clone(), 0, 1_000, 50, 0);
        let mut sealed = Vec::new();
        for from in [1, 2] {
            let mut peer = Guard::new(keys(), names.clone(), from, 2_000 + from as u64, 50, 0);
            // Each side announces itself, so the sealed datagrams carry Node1's epoch.
            for (to, d) in peer.due_hellos(0) {
                if to == 0 {
                    assert_eq!(guard.open(from, &d, 0), Verdict::Hello);
                    sealed.push(emit(&d));
                }
            }
            for (to, d) in guard.due_hellos(0) {
                if to == from {
                    peer.open(0, &d, 0);
                }
            }
            for (i, seed) in CORPUS[..4].iter().enumerate() {
                let mut d = parse(seed.as_bytes()).unwrap();
                d.sender_name = Some(names[from].clone());
                d.term = Some(i as u64 + 1);
                peer.seal(0, &mut d);
                sealed.push(emit(&d));
            }
        }
        let genuine = sealed.iter().map(|b| covered(&parse(b).unwrap())).collect();
        Mac {
            guard,
            sealed,
            genuine,
            delivered: BTreeSet::new(),
        }
    }

    /// The guard's verdict on a node datagram, with the delivery rules asserted.
    fn open(&mut self, d: &Datagram, from: Option<usize>) -> Option<Verdict> {
        let from = from.or_else(|| {
            let name = d.sender_name.as_deref()?;
            peers().iter().position(|p| p == name)
        })?;
        let v = self.guard.open(from, d, 1);
        if v == Verdict::Deliver {
            let c = covered(d);
            assert!(
                self.genuine.contains(&c),
                "delivered a made-up datagram: {d:?}"
            );
            assert!(self.delivered.insert(c), "delivered twice: {d:?}");
        }
        Some(v)
    }
}

fn random_input(rng: &mut Rng, mac: &Mac) -> Vec<u8> {
    if rng.index(4) == 0 {
        let mut input = rng.pick(&mac.sealed).clone();
        for _ in 0..rng.index(4) {
            common::mutate(rng, &mut input);
        }
        return input;
    }
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
        Ok(Incoming::Query { query, .. }) => format!("query {query:?}"),
        Err(why) => format!("dropped {}", why.as_str()),
    }
}

/// One input through the decoder and the classifier; returns the classification (or the
/// decoder's error) for the summary.
fn check(input: &[u8], peers: &[String], mac: &mut Mac) -> String {
    let d = match parse(input) {
        Ok(d) => d,
        Err(e) => {
            assert!(input.len() <= MAX_INPUT || e == raft::json::Error::TooLarge);
            return format!("rejected {}", e.to_string().split(' ').next().unwrap_or(""));
        }
    };
    let class = classify(&d, peers);
    let verdict = match &class {
        Ok(Incoming::Peer { from, .. }) => mac.open(&d, Some(*from)),
        _ if d.request.as_deref() == Some(HELLO) => mac.open(&d, None),
        _ => None,
    };
    let bytes = emit(&d);
    assert!(bytes.len() <= MAX_OUTPUT, "emitted {} bytes", bytes.len());
    let back = parse(&bytes).expect("our own output decodes");
    // Each character escapes to at most 12 bytes (a surrogate pair): short fields are never cut.
    if text_len(&d) * 12 + 120 < MAX_OUTPUT {
        assert_eq!(back, d);
        assert_eq!(classify(&back, peers), class);
    }
    match verdict {
        Some(v) => format!("{} -> mac {v:?}", kind(&class)),
        None => kind(&class),
    }
}

fn run(iters: u64, seed: u64) {
    let peers = peers();
    let mut rng = Rng::new(seed);
    let mut mac = Mac::new();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut bytes = 0usize;
    let t0 = Instant::now();
    for i in 0..iters {
        let input = random_input(&mut rng, &mac);
        bytes += input.len();
        let (inp, ps) = (&input, &peers);
        let mut mac = std::panic::AssertUnwindSafe(&mut mac);
        match std::panic::catch_unwind(move || check(inp, ps, &mut mac)) {
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
    let delivered: u64 = seen
        .iter()
        .filter(|(k, _)| k.ends_with("mac Deliver"))
        .map(|(_, n)| n)
        .sum();
    let bad_mac: u64 = seen
        .iter()
        .filter(|(k, _)| k.contains("BadMac"))
        .map(|(_, n)| n)
        .sum();
    assert!(
        delivered > 0 && bad_mac > 100,
        "the MAC path was not exercised"
    );
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
