//! Scenario files: `testdata/*.txt`, small scripts of inputs to real cores, each command followed
//! by the trace it produces in the core's canonical text (`Display` of `Msg`, `Event`, `Output`).
//!
//! ```text
//! # a comment, kept as it is
//! > nodes 3                    three nodes, node i seeded seed+i (options: seed=N, default 10;
//!                              pre_vote=off; check_quorum=off)
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
//! A step is one line: `<ms> n<id> <input> -> <output>`. The test fails on any difference from the
//! file; `UPDATE=1 cargo test --profile checked --test sim scenario_files` rewrites the traces.
use raft::raft::{Command, Config, HardState, Input, Msg, Node, NodeId, Time};
use std::collections::VecDeque;
use std::fmt::Write;
use std::path::Path;

/// The cluster a script drives: cores, messages in flight, and the cut nodes.
struct Bench {
    nodes: Vec<Node>,
    now: Time,
    flight: VecDeque<(NodeId, NodeId, Msg)>,
    cut: Vec<bool>,
    out: String,
}

/// A script error: the line number and what is wrong.
type Fault = String;

fn node_arg(word: Option<&str>, n: usize) -> Result<NodeId, Fault> {
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

impl Bench {
    fn new(words: &[&str]) -> Result<Bench, Fault> {
        let n: usize = words
            .first()
            .and_then(|w| w.parse().ok())
            .ok_or("nodes needs a cluster size")?;
        let seed: u64 =
            option(words, "seed").map_or(Ok(10), |s| s.parse().map_err(|_| "bad seed"))?;
        let mut cfg = Config::new(0, n);
        cfg.pre_vote = option(words, "pre_vote") != Some("off");
        cfg.check_quorum = option(words, "check_quorum") != Some("off");
        let nodes = (0..n)
            .map(|id| {
                Node::new(
                    Config { id, ..cfg },
                    HardState::default(),
                    seed + id as u64,
                    0,
                )
            })
            .collect();
        Ok(Bench {
            nodes,
            now: 0,
            flight: VecDeque::new(),
            cut: vec![false; n],
            out: String::new(),
        })
    }

    fn run_command(&mut self, verb: &str, args: &[&str]) -> Result<(), Fault> {
        let n = self.nodes.len();
        match verb {
            "tick" => {
                let id = node_arg(args.first().copied(), n)?;
                let at = self.nodes[id]
                    .deadline()
                    .ok_or("a stopped node has no timer")?;
                let first = (0..n)
                    .filter_map(|i| Some((self.nodes[i].deadline()?, i)))
                    .min();
                if let Some((due, other)) = first.filter(|&(due, _)| due < at) {
                    return Err(format!("n{other}'s timer is due first, at {due}"));
                }
                self.now = self.now.max(at);
                self.step(id, Input::Tick, true);
            }
            "deliver" => {
                let from = option(args, "from")
                    .map(|w| node_arg(Some(w), n))
                    .transpose()?;
                let to = option(args, "to")
                    .map(|w| node_arg(Some(w), n))
                    .transpose()?;
                self.deliver(from, to);
            }
            "stabilize" => {
                while !self.flight.is_empty() {
                    self.deliver(None, None);
                }
            }
            "run" => {
                let ms: Time = args
                    .first()
                    .and_then(|w| w.parse().ok())
                    .ok_or("run needs ms")?;
                self.run(self.now + ms);
            }
            "cut" => self.cut[node_arg(args.first().copied(), n)?] = true,
            "heal" => self.cut = vec![false; n],
            "command" => {
                let id = node_arg(args.first().copied(), n)?;
                let cmd = match args.get(1).copied() {
                    Some("TIMEOUT") => Command::Timeout,
                    Some("SHUTDOWN") => Command::Shutdown,
                    Some("CONVERT_FOLLOWER") => Command::ConvertFollower,
                    other => return Err(format!("unknown controller request {other:?}")),
                };
                self.step(id, Input::Command(cmd), true);
            }
            "status" => self.status(),
            _ => return Err(format!("unknown command {verb:?}")),
        }
        Ok(())
    }

    /// Steps node `id`; writes the step's line if `loud` or if it logged an event. Its messages
    /// join the end of the flight queue.
    fn step(&mut self, id: NodeId, input: Input, loud: bool) {
        let out = self.nodes[id].step(self.now, input);
        if loud || !out.events.is_empty() {
            let what = match input {
                Input::Tick => "tick".to_string(),
                Input::Receive { from, msg } => format!("recv {msg} from n{from}"),
                Input::Command(cmd) => format!("command {cmd}"),
                Input::Stop => "stop".to_string(),
            };
            let _ = writeln!(self.out, "{:>5} n{id} {what} -> {out}", self.now);
        }
        self.flight
            .extend(out.send.iter().map(|&(to, msg)| (id, to, msg)));
    }

    /// One pass over what is in flight now: matching messages are delivered (or lost on a cut
    /// link), the others stay in flight in their order.
    fn deliver(&mut self, from: Option<NodeId>, to: Option<NodeId>) {
        let pending = std::mem::take(&mut self.flight);
        let mut kept = VecDeque::new();
        for (src, dst, msg) in pending {
            if from.is_some_and(|f| f != src) || to.is_some_and(|t| t != dst) {
                kept.push_back((src, dst, msg));
            } else {
                self.arrive(src, dst, msg, true);
            }
        }
        kept.append(&mut self.flight);
        self.flight = kept;
    }

    fn arrive(&mut self, from: NodeId, to: NodeId, msg: Msg, loud: bool) {
        if self.cut[from] || self.cut[to] {
            if loud {
                let _ = writeln!(self.out, "{:>5} n{to} lost {msg} from n{from}", self.now);
            }
            return;
        }
        self.step(to, Input::Receive { from, msg }, loud);
    }

    /// Time passes until `until`: messages arrive at once, timers fire when due (lowest id first
    /// on a tie). Only steps that log an event are written.
    fn run(&mut self, until: Time) {
        loop {
            if let Some((from, to, msg)) = self.flight.pop_front() {
                self.arrive(from, to, msg, false);
                continue;
            }
            let next = (0..self.nodes.len())
                .filter_map(|id| Some((self.nodes[id].deadline()?, id)))
                .min();
            match next {
                Some((at, id)) if at <= until => {
                    self.now = self.now.max(at);
                    self.step(id, Input::Tick, false);
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    fn status(&mut self) {
        for (id, node) in self.nodes.iter().enumerate() {
            let name = |v: Option<NodeId>| v.map_or("none".to_string(), |v| format!("n{v}"));
            let timer = node.deadline().map_or("none".to_string(), |d| {
                format!("+{}", d.saturating_sub(self.now))
            });
            let cut = if self.cut[id] { " (cut)" } else { "" };
            let _ = writeln!(
                self.out,
                "      n{id} {:<12} t{} vote={} leader={} timer={timer}{cut}",
                node.role().as_str(),
                node.term(),
                name(node.hard_state().voted_for),
                name(node.leader()),
            );
        }
    }
}

/// The file with every trace regenerated: comments, blank lines and commands stay; the lines
/// after each command are what it produces now.
fn regenerate(text: &str) -> Result<String, Fault> {
    let mut bench: Option<Bench> = None;
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let at = |e: Fault| format!("line {}: {e}", i + 1);
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
            bench = Some(Bench::new(args).map_err(at)?);
            continue;
        }
        let b = bench
            .as_mut()
            .ok_or_else(|| at("`nodes N` must come first".into()))?;
        b.run_command(verb, args).map_err(at)?;
        out.push_str(&std::mem::take(&mut b.out));
    }
    Ok(out)
}

/// The first lines where `want` and `got` differ, for the failure message.
fn first_difference(want: &str, got: &str) -> String {
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

#[test]
fn scenario_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim/testdata");
    let update = std::env::var("UPDATE").is_ok_and(|v| v == "1");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/sim/testdata")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 7,
        "scenario files missing from {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("a readable scenario file");
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let got = regenerate(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        if update {
            std::fs::write(&path, &got).expect("scenario file written");
        } else if got != text {
            failures.push(format!("{name}: {}", first_difference(&text, &got)));
        }
    }
    assert!(
        failures.is_empty(),
        "traces differ (if the change is intended: UPDATE=1 cargo test --profile checked \
         --test sim scenario_files)\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_script_error_names_its_line() {
    let bad = regenerate("# x\n> nodes 3\n> tick n7\n").unwrap_err();
    assert!(bad.starts_with("line 3:"), "{bad}");
    let early = regenerate("> nodes 3 seed=10\n> tick n1\n").unwrap_err();
    assert!(early.contains("n0's timer is due first"), "{early}");
    let unknown = regenerate("> nodes 3\n> dance\n").unwrap_err();
    assert!(unknown.contains("unknown command"), "{unknown}");
    assert!(regenerate("> tick n0\n").is_err(), "no cluster yet");
}

#[test]
fn a_changed_trace_is_a_difference() {
    let script = "> nodes 3\n> tick n0\n";
    let trace = regenerate(script).unwrap();
    assert!(trace.lines().count() > 2, "{trace}");
    assert_eq!(regenerate(&trace).unwrap(), trace, "regenerating is stable");
    let edited = trace.replacen("tick ->", "tick =>", 1);
    assert_ne!(regenerate(&edited).unwrap(), edited);
}
