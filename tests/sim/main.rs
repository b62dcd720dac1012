//! Deterministic simulation of the election core.
//!
//! Every test here drives real `raft::election::Node`s through the simulated clock and network of
//! `raft::sim` (the world, its network and host models, the safety checker and the timed
//! properties live in the library, shared with the browser playground); a run is a pure
//! function of (seed, cluster size). Layout:
//! - `campaign.rs`: random fault schedules per seed (planned stops among them), liveness after
//!   the heal; and the planned-stop campaign (the leader stopped at every phase of its
//!   heartbeat);
//! - `script.rs` and `testdata/*.txt`: scenario files, the election stories as scripts with their
//!   exact traces (the place to read an election; the language is `raft::sim::script`);
//! - `scenarios.rs`: the same situations on a jittery LAN, with timing bounds;
//! - `experiments.rs`: failover-time and split-vote measurements against the Raft paper.
//!
//! `cargo test --profile checked --test sim` (what `make unit` runs; `--release` works too) runs
//! 10,000 random seeds of 5, 7 and 9 nodes, 500 each of 4 and 6 nodes, 500 seeds of the
//! planned-stop campaign, plus everything else. A failing seed prints its replay command;
//! `make sim SEEDS=1000000` runs a longer campaign.

mod adversary;
mod campaign;
mod experiments;
mod scenarios;
mod script;

use campaign::{nodes_for, stop_nodes_for, Kind, Outcome};
use raft::sim::handover::Seen;
use std::time::Instant;

/// Seeds the regular test run covers, split over three tests by cluster size.
const SEEDS: u64 = 10_000;
/// Seeds of each even cluster size (4 and 6 nodes) in the regular run (`make sim SIM_NODES=4`
/// runs more).
const EVEN_SEEDS: u64 = 500;
/// Seeds of the planned-stop campaign in the regular run (`SIM_CAMPAIGN=stops make sim` runs
/// more).
const STOP_SEEDS: u64 = 500;
/// Seeds of the adversary campaign in the regular run (`make sim-adversary` runs 100,000).
const ADVERSARY_SEEDS: u64 = 1_000;

/// Totals over a set of seeds.
#[derive(Default)]
struct Sweep {
    seeds: u64,
    sim_ms: u64,
    events: u64,
    elections: u64,
    /// Slowest convergence after the heal: (ms, seed, nodes).
    worst: (u64, u64, usize),
    converge: Vec<u64>,
    failures: Vec<String>,
    seen: Seen,
    stops: u64,
}

impl Sweep {
    fn add(&mut self, seed: u64, n: usize, result: Result<Outcome, String>) {
        self.seeds += 1;
        match result {
            Ok(o) => {
                self.seen.add(&o.seen);
                self.stops += o.stops;
                self.sim_ms += o.sim_ms;
                self.events += o.events;
                self.elections += o.elections;
                self.converge.push(o.converge_ms);
                if o.converge_ms > self.worst.0 {
                    self.worst = (o.converge_ms, seed, n);
                }
            }
            Err(e) => self.failures.push(e),
        }
    }

    fn merge(&mut self, other: Sweep) {
        self.seeds += other.seeds;
        self.sim_ms += other.sim_ms;
        self.events += other.events;
        self.elections += other.elections;
        self.converge.extend(other.converge);
        self.failures.extend(other.failures);
        self.seen.add(&other.seen);
        self.stops += other.stops;
        if other.worst.0 > self.worst.0 {
            self.worst = other.worst;
        }
    }

    fn report(&mut self, label: &str, wall: f64) {
        self.converge.sort_unstable();
        let pct = |p: usize| {
            self.converge
                .get(self.converge.len().saturating_sub(1) * p / 100)
                .copied()
                .unwrap_or(0)
        };
        println!(
            "{label}: {} seeds in {wall:.2} s = {:.0} seeds/s, {:.0} simulated s per wall s, {} events, {} elections",
            self.seeds,
            self.seeds as f64 / wall,
            self.sim_ms as f64 / 1000.0 / wall,
            self.events,
            self.elections,
        );
        println!(
            "{label}: agreement after heal: median {} ms, p99 {} ms, max {} ms (seed {}, {} nodes)",
            pct(50),
            pct(99),
            self.worst.0,
            self.worst.1,
            self.worst.2,
        );
        let s = &self.seen;
        println!(
            "{label}: {} planned stops scheduled ({} of a leader, {} of another role, {} ended \
             watched, longest {} ms); {} handovers judged ({} named a successor), {} on a healthy \
             network awaited, {} completed, slowest {} ms ({} % of its bound)",
            self.stops,
            s.stops_leading,
            s.stops_other,
            s.stops_ended,
            s.longest_stop_ms,
            s.choices,
            s.named,
            s.awaited,
            s.completed,
            s.slowest_ms,
            s.slowest_pct,
        );
    }

    /// Fails the test with every failure (at most 20 shown), each with its replay command.
    fn assert_ok(&self) {
        if !self.failures.is_empty() {
            let shown: Vec<&str> = self.failures.iter().take(20).map(String::as_str).collect();
            panic!(
                "{} of {} seeds failed:\n{}",
                self.failures.len(),
                self.seeds,
                shown.join("\n")
            );
        }
    }
}

fn sweep_kind(kind: Kind, seeds: impl Iterator<Item = u64>, nodes: Option<usize>) -> Sweep {
    let mut s = Sweep::default();
    for seed in seeds {
        let n = nodes.unwrap_or_else(|| match kind {
            Kind::Faults => nodes_for(seed),
            Kind::Stops => stop_nodes_for(seed),
        });
        s.add(seed, n, campaign::run_kind_caught(kind, seed, n));
    }
    s
}

/// The campaign's share of cluster size `n`: every seed below `SEEDS` with `nodes_for == n`.
/// The properties of planned stops and handovers must have been put to the test.
fn campaign_for(n: usize) {
    let start = Instant::now();
    let mut s = sweep_kind(
        Kind::Faults,
        (0..SEEDS).filter(|&seed| nodes_for(seed) == n),
        None,
    );
    s.report(
        &format!("campaign {n} nodes"),
        start.elapsed().as_secs_f64(),
    );
    s.assert_ok();
    assert_exercised(&s, 100, false);
}

/// Seeds `0..EVEN_SEEDS` at an even cluster size, where a majority is more than half and a
/// split in two halves elects no one.
fn campaign_even(n: usize) {
    let start = Instant::now();
    let mut s = sweep_kind(Kind::Faults, 0..EVEN_SEEDS, Some(n));
    s.report(
        &format!("campaign {n} nodes"),
        start.elapsed().as_secs_f64(),
    );
    s.assert_ok();
    assert_exercised(&s, 20, false);
}

/// The handover and planned-stop properties were checked at least `at_least` times each (the
/// planned-stop campaign stops only leaders).
fn assert_exercised(s: &Sweep, at_least: u64, only_leaders: bool) {
    let seen = &s.seen;
    let others = if only_leaders {
        at_least
    } else {
        seen.stops_other
    };
    for (what, count) in [
        ("planned stops of a leader", seen.stops_leading),
        ("planned stops of another role", others),
        ("planned stops that ended", seen.stops_ended),
        ("handover choices", seen.named),
        ("healthy handovers completed", seen.completed),
    ] {
        assert!(
            count >= at_least,
            "only {count} {what}: the property is barely tested"
        );
    }
}

#[test]
fn campaign_5_nodes() {
    campaign_for(5);
}

#[test]
fn campaign_7_nodes() {
    campaign_for(7);
}

#[test]
fn campaign_9_nodes() {
    campaign_for(9);
}

#[test]
fn campaign_4_nodes() {
    campaign_even(4);
}

#[test]
fn campaign_6_nodes() {
    campaign_even(6);
}

/// The leader stopped at every phase of its heartbeat, `STOP_SEEDS` seeds over 4, 5, 6, 7 and 9
/// nodes. Most handovers on a clean network must have been watched to completion.
#[test]
fn planned_stop_campaign() {
    let start = Instant::now();
    let mut s = sweep_kind(Kind::Stops, 0..STOP_SEEDS, None);
    s.report("planned-stop campaign", start.elapsed().as_secs_f64());
    s.assert_ok();
    assert_exercised(&s, 100, true);
}

/// Replays one seed of the planned-stop campaign with its trace (`SIM_SEED`, `SIM_NODES`).
#[test]
fn replay_stops() {
    let seed = env_u64("SIM_SEED").unwrap_or(1);
    let n = env_u64("SIM_NODES").map_or_else(|| stop_nodes_for(seed), |n| n as usize);
    let (result, trace) = campaign::run_stops(seed, n, true);
    println!("{trace}");
    match result {
        Ok(o) => println!("seed {seed}, {n} nodes: ok {o:?}"),
        Err(e) => panic!("{e}"),
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
    )
}

/// Replays one seed and prints its trace:
/// `SIM_SEED=.. SIM_NODES=.. cargo test --profile checked --test sim replay -- --nocapture`
/// (`SIM_PLANNED_STOPS=0`: without the seed's planned stops, as a build before them ran it).
/// Without `SIM_SEED` it replays seed 1 (a smoke test).
#[test]
fn replay() {
    let seed = env_u64("SIM_SEED").unwrap_or(1);
    let n = env_u64("SIM_NODES").map_or_else(|| nodes_for(seed), |n| n as usize);
    let (result, trace) = campaign::run_with(seed, n, true, campaign::planned_stops_on());
    println!("{trace}");
    match result {
        Ok(o) => println!("seed {seed}, {n} nodes: ok {o:?}"),
        Err(e) => panic!("{e}"),
    }
}

/// Same seed, same trace, byte for byte; a different seed, a different trace.
#[test]
fn same_seed_same_trace() {
    for seed in [3, 4, 5] {
        let n = nodes_for(seed);
        let first = campaign::run(seed, n, true).1;
        let second = campaign::run(seed, n, true).1;
        assert!(first.len() > 1000, "trace too short to mean anything");
        assert!(first == second, "seed {seed} gave two different traces");
    }
    let a = campaign::run(10, 5, true).1;
    let b = campaign::run(11, 5, true).1;
    assert_ne!(a, b, "different seeds gave the same trace");
}

/// The long campaign behind `make sim`: `SIM_SEEDS` seeds from `SIM_START` (default 0 and
/// 100,000), cluster sizes mixed unless `SIM_NODES` is set, on `SIM_THREADS` threads (default:
/// all cores); `SIM_CAMPAIGN=stops` runs the planned-stop campaign instead. Prints seeds/s and
/// simulated seconds per wall second.
#[test]
#[ignore = "long; run with `make sim`"]
fn campaign_long() {
    let kind = match std::env::var("SIM_CAMPAIGN").as_deref() {
        Ok("stops") => Kind::Stops,
        Ok("faults") | Err(_) => Kind::Faults,
        Ok(other) => panic!("SIM_CAMPAIGN={other}: faults or stops"),
    };
    let start_seed = env_u64("SIM_START").unwrap_or(0);
    let count = env_u64("SIM_SEEDS").unwrap_or(100_000);
    let nodes = env_u64("SIM_NODES").map(|n| n as usize);
    let threads = env_u64("SIM_THREADS")
        .map(|t| t.max(1))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |p| p.get() as u64));
    let start = Instant::now();
    let mut total = Sweep::default();
    let parts: Vec<Sweep> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let seeds = (start_seed..start_seed + count).filter(move |s| s % threads == t);
                scope.spawn(move || sweep_kind(kind, seeds, nodes))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("campaign thread panicked"))
            .collect()
    });
    for part in parts {
        total.merge(part);
    }
    let wall = start.elapsed().as_secs_f64();
    total.report(
        &format!(
            "campaign seeds {start_seed}..{} on {threads} threads",
            start_seed + count
        ),
        wall,
    );
    println!(
        "per thread: {:.0} seeds/s",
        total.seeds as f64 / wall / threads as f64
    );
    total.assert_ok();
}

/// With a key, an adversary that replays and forges without it has no effect (adversary.rs).
#[test]
fn adversary_changes_nothing_with_a_key() {
    let start = Instant::now();
    match adversary::campaign(0, ADVERSARY_SEEDS) {
        Ok(summary) => println!("{summary} in {:.1} s", start.elapsed().as_secs_f64()),
        Err(f) => panic!(
            "{} seeds failed:\n{}",
            f.len(),
            f[..f.len().min(20)].join("\n")
        ),
    }
}

/// The same adversary without a key takes the cluster over: the checks above can fail.
#[test]
fn adversary_takes_over_without_a_key() {
    let (mut moved, mut delivered, seeds) = (0, 0, 100);
    for seed in 0..seeds {
        let p = adversary::Params {
            n: 5,
            keyed: false,
            adversary: true,
            crashes: false,
            run_ms: 3_000,
        };
        let r = adversary::run(seed, p).expect("an unkeyed run reports, it does not fail");
        moved += u64::from(r.max_term >= u64::MAX - 1);
        delivered += u64::from(r.injected_delivered > 0);
    }
    assert_eq!(delivered, seeds, "forgeries reach the core without a key");
    assert!(
        moved >= seeds * 9 / 10,
        "term 2^64-1 in only {moved}/{seeds} seeds"
    );
}

/// A keyed run without the adversary still elects and keeps a leader through crashes.
#[test]
fn a_keyed_cluster_elects_through_loss_and_restarts() {
    for seed in 0..50 {
        let p = adversary::Params {
            n: 5,
            keyed: true,
            adversary: false,
            crashes: true,
            run_ms: 3_000,
        };
        let r = adversary::run(seed, p).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(r.leader_at_end.is_some());
    }
}

/// `make sim-adversary`: `SIM_SEEDS` (default 100,000) adversary seeds from `SIM_START`, on
/// every core.
#[test]
#[ignore = "long; run with `make sim-adversary`"]
fn adversary_long() {
    let start_seed = env_u64("SIM_START").unwrap_or(0);
    let count = env_u64("SIM_SEEDS").unwrap_or(100_000);
    let threads = env_u64("SIM_THREADS")
        .map(|t| t.max(1))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |p| p.get() as u64));
    let start = Instant::now();
    let chunk = count.div_ceil(threads);
    let results: Vec<Result<String, Vec<String>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let from = start_seed + t * chunk;
                let n = chunk.min((start_seed + count).saturating_sub(from));
                scope.spawn(move || adversary::campaign(from, n))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("adversary thread panicked"))
            .collect()
    });
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(summary) => println!("{summary}"),
            Err(f) => failures.extend(f),
        }
    }
    println!(
        "adversary seeds {start_seed}..{}: {} failures in {:.1} s",
        start_seed + count,
        failures.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{}",
        failures[..failures.len().min(20)].join("\n")
    );
}

/// One line per seed, `seed nodes bytes digest outcome`, with the FNV-1a digest of the seed's
/// full trace: `SIM_SEEDS=300 cargo test --profile checked --test sim trace_digests -- --ignored
/// --nocapture > before.txt`. Two builds replay alike when their lists are equal. `stops=k`
/// says how many planned stops the seed drew; with `SIM_PLANNED_STOPS=0` there are none, to
/// compare with a build that had none.
#[test]
#[ignore = "a tool: compare its output between two builds"]
fn trace_digests() {
    let start_seed = env_u64("SIM_START").unwrap_or(0);
    let count = env_u64("SIM_SEEDS").unwrap_or(300);
    for seed in start_seed..start_seed + count {
        let n = nodes_for(seed);
        let (result, trace) = campaign::run_with(seed, n, true, campaign::planned_stops_on());
        let digest = trace.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let outcome = match result {
            Ok(o) if o.stops > 0 => format!(
                "ok converge={} events={} stops={}",
                o.converge_ms, o.events, o.stops
            ),
            Ok(o) => format!("ok converge={} events={}", o.converge_ms, o.events),
            Err(e) => format!("FAILED {}", e.lines().next().unwrap_or("")),
        };
        println!(
            "seed {seed} n={n} bytes={} fnv={digest:016x} {outcome}",
            trace.len()
        );
    }
}
