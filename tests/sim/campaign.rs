//! Random campaigns: each seed draws a configuration, a network and a schedule of faults, runs
//! them, heals everything, and then demands a single agreed leader within a bound.
//!
//! Planned stops (SIGTERM) are drawn from a PRNG stream of their own, so a seed that draws none
//! replays exactly as it did before they existed (`replay` and `trace_digests` with
//! `SIM_PLANNED_STOPS=0` leave them out of every seed, to compare with an older build). `run_stops` is a second kind of campaign: the
//! leader stopped at every phase of its heartbeat cycle, on clean and lossy networks.

use raft::election::{Command, Config, NodeId, Rng, Time};
use raft::sim::handover::Seen;
use raft::sim::host::Host;
use raft::sim::net::{chance, NetParams, PPM};
use raft::sim::world::{Ev, Fault, Setup, Who, World};

/// What one seed measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    /// Simulated milliseconds the run covered.
    pub sim_ms: Time,
    /// From the heal to the start of the lasting agreement on one leader.
    pub converge_ms: Time,
    pub events: u64,
    pub elections: u64,
    /// How often the handover and planned-stop properties were put to the test.
    pub seen: Seen,
    /// Planned stops scheduled.
    pub stops: u64,
}

/// A failed seed: what broke, and how to see it again.
pub fn failure(seed: u64, n: usize, why: &str) -> String {
    format!(
        "simulation failed: seed {seed}, {n} nodes: {why}\n  replay: SIM_SEED={seed} SIM_NODES={n} \
         cargo test --profile checked --test sim replay -- --nocapture"
    )
}

/// The cluster size the campaign gives a seed: 5, 7 and 9 in turn (the even sizes have
/// campaigns of their own, on the same seeds: `SIM_NODES=4`).
pub fn nodes_for(seed: u64) -> usize {
    5 + 2 * (seed % 3) as usize
}

/// The cluster size the planned-stop campaign gives a seed: 4, 5, 6, 7 and 9 in turn.
pub fn stop_nodes_for(seed: u64) -> usize {
    [4, 5, 6, 7, 9][(seed % 5) as usize]
}

/// The two kinds of campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Random faults and commands ([`run`]).
    Faults,
    /// The leader stopped at every phase of its heartbeat ([`run_stops`]).
    Stops,
}

/// Runs one seed like [`run`] (or [`run_stops`]), without a trace, and turns a panic (an
/// assertion inside the core) into a failure that names the seed.
pub fn run_kind_caught(kind: Kind, seed: u64, n: usize) -> Result<Outcome, String> {
    let run = || match kind {
        Kind::Faults => run(seed, n, false).0,
        Kind::Stops => run_stops(seed, n, false).0,
    };
    std::panic::catch_unwind(run).unwrap_or_else(|panic| {
        let text = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        let why = format!("panicked: {text}");
        Err(match kind {
            Kind::Faults => failure(seed, n, &why),
            Kind::Stops => stop_failure(seed, n, &why),
        })
    })
}

/// Whether `replay` and `trace_digests` schedule planned stops: on, unless
/// `SIM_PLANNED_STOPS=0` (to compare traces with a build that had none). Campaigns always do.
pub fn planned_stops_on() -> bool {
    std::env::var("SIM_PLANNED_STOPS").map_or(true, |v| v.trim() != "0")
}

/// Runs one seed; returns its measurements, or the failure with its replay command. With
/// `trace`, also returns the event trace.
pub fn run(seed: u64, n: usize, trace: bool) -> (Result<Outcome, String>, String) {
    run_with(seed, n, trace, true)
}

/// [`run`], with or without the planned stops of the seed's own stream.
pub fn run_with(
    seed: u64,
    n: usize,
    trace: bool,
    planned_stops: bool,
) -> (Result<Outcome, String>, String) {
    let mut rng = Rng::new(seed);
    let setup = Setup {
        n,
        cfg: random_config(&mut rng, n),
        net: random_net(&mut rng),
        host: random_host(&mut rng),
    };
    let horizon = 1_000 + rng.below(14_001);
    let mut plan = plan_faults(&mut rng, &setup, horizon);
    let stops = if planned_stops {
        plan_planned_stops(seed, &setup, horizon, plan.len())
    } else {
        Vec::new()
    };
    let stop_count = stops.len() as u64 / 2;
    plan.extend(stops);
    let mut world = World::new(setup, rng);
    if trace {
        world = world.with_trace();
    }
    for (at, ev) in plan {
        world.schedule(at, ev);
    }
    let result = drive(&mut world, horizon)
        .map(|o| Outcome {
            stops: stop_count,
            ..o
        })
        .map_err(|why| failure(seed, n, &why));
    let mut text = world.take_trace();
    if trace {
        let bound = liveness_bound(&setup, setup.net.max_delay());
        text.insert_str(
            0,
            &format!("{setup:?}\nfault phase {horizon} ms, liveness bound {bound} ms after it\n"),
        );
    }
    (result, text)
}

/// The fault phase up to `horizon`, the heal, then liveness: an agreement that lasts.
fn drive(world: &mut World, horizon: Time) -> Result<Outcome, String> {
    world.run_until(horizon)?;
    if !world.healed() {
        return Err(format!(
            "not healed at the end of the fault phase ({horizon} ms)"
        ));
    }
    let bound = liveness_bound(&world.setup, world.net.params.max_delay());
    let (agreed_at, _, _) = world.lasting_agreement(horizon + bound)?.ok_or_else(|| {
        format!("LIVENESS: no lasting agreement on a leader within {bound} ms of the heal at {horizon} ms")
    })?;
    Ok(Outcome {
        sim_ms: world.now(),
        converge_ms: agreed_at - horizon,
        events: world.events,
        elections: world.check.elections,
        seen: world.seen(),
        stops: 0,
    })
}

/// How long after the heal the cluster may take to agree on a leader.
///
/// After the heal the network loses nothing and delivers within `d` = base + jitter. Messages
/// still in flight from the fault phase (reordered ones up to `max_delay`) land within
/// `max_delay`. Every lease (leader stickiness) runs out within `election_min` of its leader's
/// last heartbeat, and a node converted from leader waits at most one extra timeout range, so
/// within `2 * election_max` some node's timer fires with no lease blocking it. From then on each
/// round costs at most `election_max` (the next timer) plus a pre-vote and a vote round trip and
/// the first heartbeat (`5 * d`). A round fails only by a split vote, or because a node with a
/// higher term deposes the winner once (it cannot do so twice: after that all share its term).
/// Randomized timeouts make a split roughly a coin toss at worst (9 nodes, narrow range), so 20
/// rounds leave a failure probability around 1e-6 per run: generous, but still a bound that a
/// livelock (e.g. a lease that never expires) overruns at once.
pub fn liveness_bound(setup: &Setup, max_delay: u64) -> Time {
    let d = setup.net.delay_max + setup.net.jitter;
    let e = setup.cfg.election_timeout_max_ms;
    max_delay + 2 * e + 20 * (e + 5 * d)
}

fn random_config(rng: &mut Rng, n: usize) -> Config {
    // (election_min, election_max, heartbeat): the paper's default most of the time, then a faster
    // and a slower cluster, and a narrow range that makes split votes common.
    const TIMINGS: [(u64, u64, u64); 4] = [
        (150, 300, 50),
        (100, 200, 30),
        (300, 600, 100),
        (150, 180, 50),
    ];
    let (election_min, election_max, heartbeat) = match rng.below(10) {
        0..=5 => TIMINGS[0],
        6 => TIMINGS[1],
        7 | 8 => TIMINGS[2],
        _ => TIMINGS[3],
    };
    Config {
        election_timeout_min_ms: election_min,
        election_timeout_max_ms: election_max,
        heartbeat_ms: heartbeat,
        pre_vote: rng.below(4) != 0,
        check_quorum: rng.below(4) != 0,
        ..Config::new(0, n)
    }
}

/// Delays 1-15 ms per link with up to 5 ms jitter; during faults up to 10% loss, 5% duplicates
/// and 5% of messages held back by up to 50 ms. One network in three is clean (no loss, no
/// reordering), so the timed CheckQuorum properties (`props.rs`) apply during faults too.
fn random_net(rng: &mut Rng) -> NetParams {
    let lossy = rng.below(3) != 0;
    NetParams {
        delay_min: 1,
        delay_max: 2 + rng.below(14),
        jitter: rng.below(6),
        loss_ppm: if lossy { rng.below(PPM / 10) } else { 0 },
        dup_ppm: rng.below(PPM / 20),
        reorder_ppm: if lossy { rng.below(PPM / 20) } else { 0 },
        reorder_max: 50,
    }
}

/// One seed in four runs on the loopback host model: timers rounded by a 4 ms kernel tick and
/// its timer wheel, and 0-3 ms of disk time before a step that persists sends anything.
fn random_host(rng: &mut Rng) -> Host {
    match rng.below(4) {
        0 => Host {
            tick: 4,
            disk_min: 0,
            disk_max: 3,
        },
        _ => Host::EXACT,
    }
}

/// Fault episodes at random times before `horizon`, each undone by `horizon` at the latest,
/// plus a final heal. The events are returned in scheduling order.
fn plan_faults(rng: &mut Rng, setup: &Setup, horizon: Time) -> Vec<(Time, Ev)> {
    let mut plan = Vec::new();
    // From a few faults to a storm: up to one starting every 250 ms on average.
    let episodes = 2 + rng.below(horizon / 250) as usize;
    for ep in 0..episodes {
        let start = rng.below(horizon);
        let (fault, length) = random_fault(rng, setup);
        match fault {
            Some(fault) => {
                plan.push((start, Ev::Begin { ep, fault }));
                plan.push(((start + length).min(horizon), Ev::End { ep }));
            }
            None => plan.push((start, random_command(rng, setup.n))),
        }
    }
    plan.push((horizon, Ev::HealAll));
    plan
}

/// A fault and how long it lasts, or `None` for an instant controller command.
fn random_fault(rng: &mut Rng, setup: &Setup) -> (Option<Fault>, Time) {
    let n = setup.n;
    let e = setup.cfg.election_timeout_max_ms;
    let who = random_who(rng, n);
    let a = rng.below(n as u64) as NodeId;
    let b = (a + 1 + rng.below(n as u64 - 1) as usize) % n;
    let length = 50 + rng.below(3_000);
    let fault = match rng.below(20) {
        0 | 1 => Fault::Split(random_mask(rng, n)),
        2 | 3 => Fault::IsolateLeader,
        4 | 5 => Fault::LeaderMinority,
        6 => Fault::Mute(who),
        7 => Fault::Deafen(who),
        8 => Fault::OneWay(a, b),
        9 | 10 => Fault::Chain(a, b),
        11 | 12 => Fault::Crash(who),
        13 | 14 => Fault::CrashAfterPersist(who),
        // Paused for longer than an election timeout, so the others move on meanwhile.
        15 | 16 => return (Some(Fault::Pause(who)), e + 1 + rng.below(2 * e)),
        17 => {
            let revive = if chance(rng, PPM / 2) {
                Command::ConvertFollower
            } else {
                Command::Timeout
            };
            Fault::Stop(who, revive)
        }
        18 => Fault::Lossy(PPM / 5 + rng.below(PPM * 2 / 5)),
        _ => return (None, 0),
    };
    (Some(fault), length)
}

/// The seed's own stream for planned stops: its draws move nothing else in the run.
const STOP_STREAM: u64 = 0x5349_4754_4552_4d00; // "SIGTERM"

/// Planned-stop episodes for half the seeds, one to three each, three in four on the leader,
/// starting anywhere in the fault phase (so at any phase of a heartbeat cycle). Episode numbers
/// follow the `first_ep` of the other faults. Empty for the other half: those seeds replay as
/// they did before planned stops existed.
fn plan_planned_stops(seed: u64, setup: &Setup, horizon: Time, first_ep: usize) -> Vec<(Time, Ev)> {
    let mut rng = Rng::new(seed ^ STOP_STREAM);
    if rng.below(2) == 0 {
        return Vec::new();
    }
    let mut plan = Vec::new();
    for k in 0..1 + rng.below(3) as usize {
        let ep = first_ep + k;
        let start = rng.below(horizon);
        let id = rng.below(setup.n as u64) as NodeId;
        let who = if rng.below(4) == 0 {
            Who::Node(id)
        } else {
            Who::LeaderOr(id)
        };
        let length = 50 + rng.below(1_500);
        plan.push((
            start,
            Ev::Begin {
                ep,
                fault: Fault::PlannedStop(who),
            },
        ));
        plan.push(((start + length).min(horizon), Ev::End { ep }));
    }
    plan
}

/// The planned-stop campaign's failure, with its replay command.
pub fn stop_failure(seed: u64, n: usize, why: &str) -> String {
    format!(
        "planned-stop simulation failed: seed {seed}, {n} nodes: {why}\n  replay: SIM_SEED={seed} \
         SIM_NODES={n} cargo test --profile checked --test sim replay_stops -- --nocapture"
    )
}

/// Its own stream for the planned-stop campaign's setup.
const STOP_CAMPAIGN: u64 = 0x5354_4f50_5048_4153; // "STOPPHAS"

/// The planned-stop campaign: a random configuration, network (two in three lossy, with
/// duplicates and reordering) and host; three times, wait for a leader, stop it at phase
/// `(seed + 17 * round) % heartbeat` after one of its heartbeats, give the stop and the handover
/// two maximum election timeouts, start the process again. Then heal and demand a lasting
/// agreement, as the other campaign does. The properties of `handover.rs` and `props.rs` are
/// checked at every step.
pub fn run_stops(seed: u64, n: usize, trace: bool) -> (Result<Outcome, String>, String) {
    let mut rng = Rng::new(seed ^ STOP_CAMPAIGN);
    let setup = Setup {
        n,
        cfg: random_config(&mut rng, n),
        net: random_net(&mut rng),
        host: random_host(&mut rng),
    };
    let mut world = World::new(setup, rng);
    if trace {
        world = world.with_trace();
    }
    let result = drive_stops(&mut world, seed).map_err(|why| stop_failure(seed, n, &why));
    let mut text = world.take_trace();
    if trace {
        text.insert_str(0, &format!("{setup:?}\n"));
    }
    (result, text)
}

fn drive_stops(world: &mut World, seed: u64) -> Result<Outcome, String> {
    let cfg = world.setup.cfg;
    let (e, hb) = (cfg.election_timeout_max_ms, cfg.heartbeat_ms);
    let bound = liveness_bound(&world.setup, world.net.params.max_delay());
    for round in 0..3 {
        let now = world.now();
        world
            .run_until_or(now + bound, |w| w.leader().is_some())?
            .ok_or_else(|| format!("LIVENESS: no leader within {bound} ms of {now} ms"))?;
        let leader = world.leader().ok_or("no leader")?;
        // Through the leader's next heartbeat, then into its cycle by the round's phase.
        let beat = world.deadline(leader).ok_or("a leader without a timer")?;
        world.run_until(beat)?;
        world.run_until(beat + (seed + 17 * round) % hb)?;
        let now = world.now();
        let ep = world
            .inject(Fault::PlannedStop(Who::LeaderOr(leader)))
            .map_err(|v| format!("t={now} ms: {v}"))?;
        world.run_until(now + 2 * e)?;
        let end = now + 2 * e;
        world.end(ep).map_err(|v| format!("t={end} ms: {v}"))?;
    }
    let healed_at = world.now();
    world.heal_all()?;
    let (agreed_at, _, _) = world.lasting_agreement(healed_at + bound)?.ok_or_else(|| {
        format!("LIVENESS: no lasting agreement within {bound} ms of the heal at {healed_at} ms")
    })?;
    Ok(Outcome {
        sim_ms: world.now(),
        converge_ms: agreed_at - healed_at,
        events: world.events,
        elections: world.check.elections,
        seen: world.seen(),
        stops: 3,
    })
}

fn random_command(rng: &mut Rng, n: usize) -> Ev {
    let cmd = if chance(rng, PPM / 2) {
        Command::ConvertFollower
    } else {
        Command::Timeout
    };
    Ev::Command {
        who: random_who(rng, n),
        cmd,
    }
}

fn random_who(rng: &mut Rng, n: usize) -> Who {
    let id = rng.below(n as u64) as NodeId;
    if chance(rng, PPM / 2) {
        Who::LeaderOr(id)
    } else {
        Who::Node(id)
    }
}

/// A non-empty proper subset of the nodes.
fn random_mask(rng: &mut Rng, n: usize) -> u64 {
    1 + rng.below((1u64 << n) - 2)
}
