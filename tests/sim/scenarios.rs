//! Named situations, each deterministic: a fixed seed, the paper's default timing (150-300 ms
//! election timeouts, 50 ms heartbeats, PreVote and CheckQuorum on) unless a test says otherwise,
//! and a LAN with 1-15 ms links plus up to 2 ms jitter. `testdata/*.txt` tells the same stories
//! step by step with zero-delay links; these check them against delays and timing bounds.

use raft::election::{Command, Config, NodeId, Rng, Role, Time};
use raft::sim::host::Host;
use raft::sim::net::NetParams;
use raft::sim::world::{Fault, Setup, World};

const SEED: u64 = 42;

fn cluster_with(n: usize, cfg: Config) -> World {
    let setup = Setup {
        n,
        cfg,
        net: NetParams::lan(1, 15, 2),
        host: Host::EXACT,
    };
    World::new(setup, Rng::new(SEED))
}

fn cluster(n: usize) -> World {
    cluster_with(n, Config::new(0, n))
}

/// Runs until one leader is agreed on and stays; returns it and its term.
fn settle(w: &mut World) -> (NodeId, u64) {
    let deadline = w.now() + 10_000;
    let (_, leader, term) = w
        .lasting_agreement(deadline)
        .unwrap()
        .expect("no lasting leader within 10 s");
    (leader, term)
}

/// Runs until `cond` holds, at most `limit` ms; returns how long that took.
fn within(w: &mut World, limit: Time, cond: impl FnMut(&World) -> bool) -> Time {
    let start = w.now();
    let at = w
        .run_until_or(start + limit, cond)
        .unwrap()
        .unwrap_or_else(|| panic!("condition not reached within {limit} ms"));
    at - start
}

fn leads_after(w: &World, term: u64) -> Option<NodeId> {
    w.leader().filter(|&l| w.node(l).term() > term)
}

/// A follower cut off for ten election timeouts comes back without disturbing anyone: with
/// PreVote it never raised its term, so the leader and everyone's term stay as they were.
#[test]
fn disruptive_rejoin() {
    let mut w = cluster(5);
    let (leader, term) = settle(&mut w);
    let follower = (leader + 1) % 5;
    let elections = w.check.elections;
    let ep = w.inject(Fault::Split(1 << follower)).unwrap();
    w.run_until(w.now() + 10 * 300).unwrap();
    assert_eq!(
        w.node(follower).term(),
        term,
        "the isolated follower raised its term"
    );
    w.end(ep).unwrap();
    w.run_until(w.now() + 2_000).unwrap();
    assert_eq!(w.agreed(), Some((leader, term)));
    assert_eq!(
        w.check.elections, elections,
        "the rejoin caused an election"
    );
}

/// The contrast: without PreVote the isolated follower's term grows with every timeout, and on
/// its return the leader hears that term (in a heartbeat reply) and steps down.
#[test]
fn disruptive_rejoin_without_prevote_deposes_the_leader() {
    let mut w = cluster_with(
        5,
        Config {
            pre_vote: false,
            ..Config::new(0, 5)
        },
    );
    let (leader, term) = settle(&mut w);
    let follower = (leader + 1) % 5;
    let ep = w.inject(Fault::Split(1 << follower)).unwrap();
    w.run_until(w.now() + 10 * 300).unwrap();
    let high = w.node(follower).term();
    assert!(high >= term + 5, "expected a term per timeout, got {high}");
    w.end(ep).unwrap();
    let (_, new_term) = settle(&mut w);
    assert!(
        new_term >= high,
        "the leader was not deposed: term {new_term}"
    );
}

/// A leader cut off with a minority steps down by CheckQuorum within about one election timeout
/// (its last majority reply plus `election_min`, noticed at the next heartbeat); the majority
/// elects a new leader; after the heal the old leader follows it.
#[test]
fn leader_in_minority() {
    let mut w = cluster(5);
    let cfg = w.setup.cfg;
    let (old, term) = settle(&mut w);
    let minority = [old, (old + 1) % 5];
    let ep = w.inject(Fault::LeaderMinority).unwrap();
    let stepped = within(&mut w, 2_000, |w| w.node(old).role() != Role::Leader);
    assert!(
        stepped <= cfg.election_timeout_min_ms + cfg.heartbeat_ms,
        "stepped down after {stepped} ms"
    );
    within(&mut w, 3_000, |w| {
        leads_after(w, term).is_some_and(|l| !minority.contains(&l))
    });
    assert!(
        minority.iter().all(|&m| w.node(m).term() == term),
        "the minority raised its term"
    );
    w.end(ep).unwrap();
    let (new, _) = settle(&mut w);
    assert!(!minority.contains(&new));
    assert_eq!(w.node(old).role(), Role::Follower);
    assert_eq!(w.node(old).leader(), Some(new));
}

/// Elections in 60 simulated seconds after one link of a 5-node cluster fails for good.
fn elections_with_missing_link(cfg: Config, leader_side: bool) -> u64 {
    let mut w = cluster_with(5, cfg);
    let (leader, _) = settle(&mut w);
    let (a, c) = if leader_side {
        (leader, (leader + 1) % 5)
    } else {
        ((leader + 1) % 5, (leader + 2) % 5)
    };
    w.inject(Fault::Chain(a, c)).unwrap();
    let before = w.check.elections;
    w.run_until(w.now() + 60_000).unwrap();
    w.check.elections - before
}

/// Partial connectivity: 5 nodes, one missing link (A - B - C with A and C apart), either between
/// the leader and a follower or between two followers. With PreVote and CheckQuorum the cut-off
/// follower can never win a pre-vote against nodes that hear the leader, so the leader stays.
/// The other combinations are printed for comparison.
#[test]
fn partial_connectivity() {
    for (pre_vote, check_quorum) in [(true, true), (true, false), (false, true), (false, false)] {
        let cfg = Config {
            pre_vote,
            check_quorum,
            ..Config::new(0, 5)
        };
        let leader_link = elections_with_missing_link(cfg, true);
        let follower_link = elections_with_missing_link(cfg, false);
        println!(
            "pre_vote={pre_vote} check_quorum={check_quorum}: elections in 60 s with the \
             leader-follower link cut {leader_link}, a follower-follower link cut {follower_link}"
        );
        if pre_vote && check_quorum {
            assert!(leader_link <= 2 && follower_link <= 2);
        }
    }
}

/// TIMEOUT on a follower: it campaigns at once, forced past the others' leader stickiness, and
/// leads the next term after one round trip.
#[test]
fn timeout_on_follower() {
    let mut w = cluster(5);
    let (leader, term) = settle(&mut w);
    let follower = (leader + 2) % 5;
    w.command(follower, Command::Timeout).unwrap();
    let took = within(&mut w, 1_000, |w| w.node(follower).role() == Role::Leader);
    assert_eq!(w.node(follower).term(), term + 1);
    assert!(took <= 2 * 17, "took {took} ms: more than a round trip");
    assert_eq!(settle(&mut w), (follower, term + 1));
}

/// CONVERT_FOLLOWER on the leader: it steps down (and holds back one extra timeout range), and
/// the cluster has a leader again within about one election timeout.
#[test]
fn convert_follower_on_leader() {
    let mut w = cluster(5);
    let cfg = w.setup.cfg;
    let (leader, term) = settle(&mut w);
    w.command(leader, Command::ConvertFollower).unwrap();
    assert_eq!(w.node(leader).role(), Role::Follower);
    let took = within(&mut w, 3_000, |w| leads_after(w, term).is_some());
    assert!(took <= cfg.election_timeout_max_ms + 100, "took {took} ms");
    settle(&mut w);
}

/// SHUTDOWN of the leader: it falls silent and deaf (its term stays while the others elect a new
/// leader); revived by CONVERT_FOLLOWER or TIMEOUT it rejoins and all agree again.
#[test]
fn shutdown_leader_then_revive() {
    for revive in [Command::ConvertFollower, Command::Timeout] {
        let mut w = cluster(5);
        let cfg = w.setup.cfg;
        let (leader, term) = settle(&mut w);
        w.command(leader, Command::Shutdown).unwrap();
        assert_eq!(w.node(leader).role(), Role::Stopped);
        let took = within(&mut w, 3_000, |w| leads_after(w, term).is_some());
        assert!(
            took <= 2 * cfg.election_timeout_max_ms + 100,
            "took {took} ms"
        );
        w.run_until(w.now() + 2_000).unwrap();
        assert_eq!(w.node(leader).role(), Role::Stopped);
        assert_eq!(
            w.node(leader).term(),
            term,
            "a stopped node heard something"
        );
        w.command(leader, revive).unwrap();
        assert_ne!(w.node(leader).role(), Role::Stopped);
        settle(&mut w);
    }
}

/// A leader paused for longer than an election timeout: the others elect a new leader; when it
/// resumes it reads the new leader's heartbeats from its buffer and follows, with no election.
#[test]
fn paused_leader_resumes_as_follower() {
    let mut w = cluster(5);
    let (old, term) = settle(&mut w);
    let ep = w
        .inject(Fault::Pause(raft::sim::world::Who::Node(old)))
        .unwrap();
    within(&mut w, 3_000, |w| leads_after(w, term).is_some());
    w.run_until(w.now() + 600).unwrap();
    let (new, new_term) = (w.leader().unwrap(), w.node(w.leader().unwrap()).term());
    let elections = w.check.elections;
    w.end(ep).unwrap();
    assert_eq!(w.node(old).role(), Role::Follower);
    assert_eq!(w.node(old).leader(), Some(new));
    w.run_until(w.now() + 2_000).unwrap();
    assert_eq!(w.agreed(), Some((new, new_term)));
    assert_eq!(w.check.elections, elections);
}
