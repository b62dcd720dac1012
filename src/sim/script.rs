//! Scenario files: small scripts of inputs to real cores, each command followed by the trace it
//! produces in the core's canonical text (`Display` of `Msg`, `Event`, `Output`). The files are
//! `tests/sim/testdata/*.txt`; the test there fails on any difference.
//!
//! ```text
//! # a comment, kept as it is
//! > nodes 3                    three nodes, node i seeded seed+i (options: seed=N, default 10;
//!                              pre_vote=off; check_quorum=off)
//! > elect n0                   setup, not shown: n0's timer fires first and it wins the
//!                              election (an error if another timer is due first or it loses)
//! > tick n0                    n0's timer fires: the clock moves to its deadline (no other
//!                              node's timer may be due before it)
//! > deliver from=n0 to=n2      deliver, in order, the messages in flight that match (zero delay)
//! > stabilize                  deliver until nothing is in flight
//! > run 400                    400 ms pass: timers fire when due, messages arrive at once;
//!                              only steps that log an event are shown
//! > cut n2 | heal              n2's links down both ways (in-flight messages too) | all up
//! > command n1 TIMEOUT         a controller request (TIMEOUT, SHUTDOWN, CONVERT_FOLLOWER)
//! > status                     every node's role, term, vote, leader and time to its timer
//! ```
//!
//! A step is one line: `<ms> n<id> <input> -> <output>`. The safety invariants (`check.rs`) are
//! checked after every step; a violation is an error naming the line.

use super::cluster::Cluster;
use crate::raft::{check_cluster_size, Command, Config, NodeId, Role, Time};

/// A script error: the line number and what is wrong.
pub type Error = String;

fn node_arg(word: Option<&str>, n: usize) -> Result<NodeId, Error> {
    let word = word.ok_or("a node is missing (n0, n1, ...)")?;
    match word.strip_prefix('n').and_then(|d| d.parse::<usize>().ok()) {
        Some(id) if id < n => Ok(id),
        _ => Err(format!("{word:?} is not a node of this cluster")),
    }
}

fn option<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    words
        .iter()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// The controller request named as on the wire.
pub fn parse_command(word: Option<&str>) -> Result<Command, Error> {
    match word {
        Some("TIMEOUT") => Ok(Command::Timeout),
        Some("SHUTDOWN") => Ok(Command::Shutdown),
        Some("CONVERT_FOLLOWER") => Ok(Command::ConvertFollower),
        other => Err(format!("unknown controller request {other:?}")),
    }
}

/// `nodes N [seed=S] [pre_vote=off] [check_quorum=off]`.
pub fn new_cluster(args: &[&str]) -> Result<Cluster, Error> {
    let n: usize = args
        .first()
        .and_then(|w| w.parse().ok())
        .ok_or("nodes needs a cluster size")?;
    check_cluster_size(n).map_err(|e| e.to_string())?;
    let seed: u64 = option(args, "seed").map_or(Ok(10), |s| s.parse().map_err(|_| "bad seed"))?;
    let mut cfg = Config::new(0, n);
    cfg.pre_vote = option(args, "pre_vote") != Some("off");
    cfg.check_quorum = option(args, "check_quorum") != Some("off");
    Ok(Cluster::new(cfg, |id| seed.wrapping_add(id as u64)))
}

/// Runs one command (its words after the `> `) on the cluster; what it writes is in the
/// cluster's text.
pub fn run_command(c: &mut Cluster, verb: &str, args: &[&str]) -> Result<(), Error> {
    let n = c.len();
    let node = |i: usize| node_arg(args.get(i).copied(), n);
    match verb {
        "elect" => elect(c, node(0)?)?,
        "tick" => c.tick(node(0)?)?,
        "deliver" => {
            let pick = |key| option(args, key).map(|w| node_arg(Some(w), n)).transpose();
            c.deliver(pick("from")?, pick("to")?)?;
        }
        "stabilize" => c.stabilize()?,
        "run" => {
            let ms: Time = args
                .first()
                .and_then(|w| w.parse().ok())
                .ok_or("run needs ms")?;
            c.run(c.now().saturating_add(ms))?;
        }
        "cut" => c.isolate(node(0)?),
        "heal" => c.heal(),
        "command" => c.command(node(0)?, parse_command(args.get(1).copied())?)?,
        "status" => c.status(),
        _ => return Err(format!("unknown command {verb:?}")),
    }
    Ok(())
}

/// `tick` and `stabilize` with nothing written; the node must end up leading.
fn elect(c: &mut Cluster, id: NodeId) -> Result<(), Error> {
    c.mute = true;
    let done = c.tick(id).and_then(|()| c.stabilize());
    c.mute = false;
    done?;
    if c.node(id).role() != Role::Leader {
        return Err(format!("n{id} did not win the election"));
    }
    Ok(())
}

/// The file with every trace regenerated: comments, blank lines and commands stay; the lines
/// after each command are what it produces now.
pub fn regenerate(text: &str) -> Result<String, Error> {
    let mut cluster: Option<Cluster> = None;
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let at = |e: Error| format!("line {}: {e}", i + 1);
        if line.trim().is_empty() || line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let Some(command) = line.strip_prefix("> ") else {
            continue; // an old trace line
        };
        out.push_str(line);
        out.push('\n');
        let words: Vec<&str> = command.split_whitespace().collect();
        let (verb, args) = words
            .split_first()
            .ok_or_else(|| at("empty command".into()))?;
        if *verb == "nodes" {
            cluster = Some(new_cluster(args).map_err(at)?);
            continue;
        }
        let c = cluster
            .as_mut()
            .ok_or_else(|| at("`nodes N` must come first".into()))?;
        run_command(c, verb, args).map_err(at)?;
        out.push_str(&c.take_text());
    }
    Ok(out)
}

/// The first lines where `want` and `got` differ, for a failure message.
pub fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let i = (0..w.len().max(g.len()))
        .find(|&i| w.get(i) != g.get(i))
        .unwrap_or(0);
    format!(
        "line {}:\n  file: {}\n  now:  {}",
        i + 1,
        w.get(i).unwrap_or(&"(end of file)"),
        g.get(i).unwrap_or(&"(end of trace)")
    )
}
