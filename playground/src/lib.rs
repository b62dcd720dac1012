//! The playground: the election core and the simulator's world (`raft::sim`) behind one text
//! interface for a browser page. The page sends a request (a line, sometimes with a body) and
//! gets JSON back; `ffi.rs` carries the bytes across the wasm boundary, everything else here is
//! safe Rust that the native tests call directly.
//!
//! Requests: `world ARGS` (a new live world: `raft::sim::script`'s `world` command), `load` +
//! a scenario file (played step by step), `step`, `advance MS` (time passes up to MS), `do
//! COMMAND` (a script command now: `command n1 TIMEOUT`, `crash n2`, `cut n0 n1`, ...), `state`,
//! `export` (the session as a scenario file), `regenerate` + a file, `determinism SEED`.
//!
//! Every answer is one JSON object: `ok`, `error`, `log` (the session's file text written since
//! the last answer), `closed` (the `> run` line a live run just ended with, if any), `state`
//! (what the page draws) and, for some requests, `text`.
#![deny(unsafe_code)]

mod ffi;
pub mod json;
pub mod rules;

use json::Object;
use raft::election::{Event, NodeId, Rng, Role, Time};
use raft::sim::script::{regenerate, Player, Sim};
use std::fmt::Write;

/// Segments of the election timeline kept (the oldest go first).
const TIMELINE_MAX: usize = 2_000;
/// How far `step` looks ahead for the next step of a node.
const STEP_HORIZON_MS: Time = 60_000;

/// A timeline segment: who led (None: nobody), in which term, from and to.
type Segment = (Option<NodeId>, u64, Time, Time);
/// A message in flight: (sent, arrives) in a timed world, then from, to and the message.
type Flying = (Option<(Time, Time)>, NodeId, NodeId, raft::election::Msg);

/// One page's session.
pub struct Session {
    player: Player,
    /// How much of the player's text the page has.
    sent: usize,
    /// Per node: its last step's line and the rule behind it.
    last: Vec<Option<(String, &'static str)>>,
    /// Per node: the same for its last step that logged an event (a change, or a vote).
    change: Vec<Option<(String, &'static str)>>,
    /// Per node: the term it leads, as its events said.
    leading: Vec<Option<u64>>,
    timeline: Vec<Segment>,
    /// Per node: since when it has been down, cut off or stopped, if it is.
    open: Vec<Option<(&'static str, Time)>>,
    /// Such periods that ended: (node, what, from, to).
    marks: Vec<(NodeId, &'static str, Time, Time)>,
    steps: u64,
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Session {
    pub fn new() -> Session {
        Session {
            player: Player::new(""),
            sent: 0,
            last: Vec::new(),
            change: Vec::new(),
            leading: Vec::new(),
            timeline: Vec::new(),
            open: Vec::new(),
            marks: Vec::new(),
            steps: 0,
        }
    }

    fn reset(&mut self, file: &str) {
        *self = Session::new();
        self.player = Player::new(file);
        self.player.keep_steps = true;
    }

    /// Answers one request (see the module's doc). Never panics on any input.
    pub fn handle(&mut self, request: &str) -> String {
        let (head, body) = request.split_once('\n').unwrap_or((request, ""));
        let (verb, rest) = head.split_once(' ').unwrap_or((head, ""));
        let live_before = self.player.live_run();
        let mut text = None;
        let result = match verb {
            "world" => {
                self.reset("");
                self.player.command(&format!("world {rest}"))
            }
            "load" => {
                self.reset(body);
                Ok(())
            }
            "step" => self.step(),
            "advance" => match rest.trim().parse::<Time>() {
                Ok(t) => self.player.run_live(t, false).map(|_| ()),
                Err(_) => Err(format!("advance needs a time, not {rest:?}")),
            },
            "do" => self.player.command(rest.trim()),
            "state" => Ok(()),
            "export" => {
                let file = self.player.export();
                let replays = regenerate(&file).is_ok_and(|again| again == file);
                text = Some(file);
                if replays {
                    Ok(())
                } else {
                    Err("the exported file does not replay identically".into())
                }
            }
            "regenerate" => regenerate(body).map(|t| text = Some(t)),
            "determinism" => match rest.trim().parse::<u64>() {
                Ok(seed) => {
                    text = Some(determinism_trace(seed));
                    Ok(())
                }
                Err(_) => Err(format!("determinism needs a seed, not {rest:?}")),
            },
            _ => Err(format!("unknown request {verb:?}")),
        };
        self.observe();
        self.answer(result.err(), live_before, text)
    }

    /// The next step: of the file under way, else of the live session.
    fn step(&mut self) -> Result<(), String> {
        if !self.player.done() {
            return self.player.step().map(|_| ());
        }
        let until = self.player.now() + STEP_HORIZON_MS;
        self.player.run_live(until, true).map(|_| ())
    }

    /// Takes in the steps since the last request: each node's last step and rule, who leads.
    fn observe(&mut self) {
        let n = self.len();
        self.last.resize(n, None);
        self.change.resize(n, None);
        self.leading.resize(n, None);
        for step in self.player.take_steps() {
            let Some(node) = self.last.get_mut(step.node) else {
                continue;
            };
            let stopped = step.output.deadline.is_none();
            *node = Some((step.to_string(), rules::rule(&step, stopped)));
            if !step.output.events.is_empty() {
                self.change[step.node] = node.clone();
            }
            for e in &step.output.events {
                match *e {
                    Event::Elected { term, .. } => self.leading[step.node] = Some(term),
                    Event::Became { role, .. } if role != Role::Leader => {
                        self.leading[step.node] = None
                    }
                    _ => {}
                }
            }
            self.steps += 1;
            self.mark(step.at);
        }
        for id in 0..n {
            if self.role(id) != Some(Role::Leader) {
                self.leading[id] = None;
            }
        }
        self.mark(self.player.now());
        self.mark_nodes();
    }

    /// Opens and closes each node's periods of being down (crashed), cut off or stopped.
    fn mark_nodes(&mut self) {
        let (n, now) = (self.len(), self.player.now());
        self.open.resize(n, None);
        for id in 0..n {
            let kind = match (self.role(id), self.node_cut(id)) {
                (None, _) => Some("crashed"),
                (Some(Role::Stopped), _) => Some("stopped"),
                (_, true) => Some("cut"),
                _ => None,
            };
            if self.open[id].map(|(k, _)| k) == kind {
                continue;
            }
            if let Some((k, from)) = self.open[id].take() {
                self.marks.push((id, k, from, now));
                if self.marks.len() > TIMELINE_MAX {
                    self.marks.remove(0);
                }
            }
            self.open[id] = kind.map(|k| (k, now));
        }
    }

    /// Every link of the node is down.
    fn node_cut(&self, id: NodeId) -> bool {
        match self.player.sim() {
            Some(Sim::Cluster(c)) => c.is_cut(id),
            Some(Sim::World(s)) => {
                let n = s.world.setup.n;
                n > 1 && (0..n).all(|p| p == id || s.is_cut(id, p))
            }
            None => false,
        }
    }

    /// The timeline at `at`: the leader with the highest term leads the cluster.
    fn mark(&mut self, at: Time) {
        let lead = (0..self.leading.len())
            .filter_map(|id| Some((self.leading[id]?, id)))
            .max();
        let now = (lead.map(|(_, id)| id), lead.map_or(0, |(t, _)| t));
        match self.timeline.last_mut() {
            Some(last) if (last.0, last.1) == now => last.3 = at,
            last => {
                if let Some(last) = last {
                    last.3 = at;
                }
                self.timeline.push((now.0, now.1, at, at));
                if self.timeline.len() > TIMELINE_MAX {
                    self.timeline.remove(0);
                }
            }
        }
    }

    fn len(&self) -> usize {
        match self.player.sim() {
            Some(Sim::Cluster(c)) => c.len(),
            Some(Sim::World(s)) => s.world.setup.n,
            None => 0,
        }
    }

    /// The node's role; None while its process is down.
    fn role(&self, id: NodeId) -> Option<Role> {
        match self.player.sim() {
            Some(Sim::Cluster(c)) => Some(c.node(id).role()),
            Some(Sim::World(s)) if !s.world.crashed(id) => Some(s.world.node(id).role()),
            _ => None,
        }
    }

    fn answer(
        &mut self,
        error: Option<String>,
        live_before: Option<(usize, Time)>,
        text: Option<String>,
    ) -> String {
        let all = self.player.text();
        // A live run that ended put its `> run` line at its start, which the page already has.
        let mut closed = None;
        if let (Some((at, _)), None) = (live_before, self.player.live_run()) {
            if let Some(line) = all.get(at..).and_then(|rest| rest.lines().next()) {
                if line.starts_with("> run ") && at <= self.sent {
                    closed = Some(line.to_string());
                    self.sent += line.len() + 1;
                }
            }
        }
        let log = all.get(self.sent..).unwrap_or("");
        let mut out = String::new();
        let mut o = Object::new(&mut out);
        o.bool("ok", error.is_none())
            .opt_str("error", error.as_deref())
            .str("log", log)
            .opt_str("closed", closed.as_deref())
            .raw("state", &self.state());
        if let Some(text) = &text {
            o.str("text", text);
        }
        o.end();
        self.sent = all.len();
        out
    }

    /// What the page draws, as JSON.
    pub fn state(&self) -> String {
        let mut out = String::new();
        let mut o = Object::new(&mut out);
        let (mode, cfg) = match self.player.sim() {
            Some(Sim::Cluster(c)) => ("nodes", Some(*c.node(0).config())),
            Some(Sim::World(s)) => ("world", Some(s.world.setup.cfg)),
            None => ("none", None),
        };
        o.str("mode", mode)
            .num("now", self.player.now())
            .bool("done", self.player.done())
            .opt("run", self.player.live_run().map(|(_, ms)| ms))
            .num("n", self.len() as u64)
            .num("steps", self.steps);
        if let Some(cfg) = cfg {
            let mut c = String::new();
            Object::new(&mut c)
                .num("min", cfg.election_timeout_min_ms)
                .num("max", cfg.election_timeout_max_ms)
                .num("heartbeat", cfg.heartbeat_ms)
                .bool("pre_vote", cfg.pre_vote)
                .bool("check_quorum", cfg.check_quorum)
                .end();
            o.raw("cfg", &c);
        }
        o.raw("nodes", &self.nodes_json())
            .raw("flight", &self.flight_json())
            .raw("cuts", &self.cuts_json())
            .raw("timeline", &self.timeline_json())
            .raw("marks", &self.marks_json());
        let elections = match self.player.sim() {
            Some(Sim::Cluster(c)) => c.checker().elections,
            Some(Sim::World(s)) => s.world.check.elections,
            None => 0,
        };
        o.num("elections", elections).end();
        out
    }

    fn nodes_json(&self) -> String {
        let mut out = String::from("[");
        for id in 0..self.len() {
            if id > 0 {
                out.push(',');
            }
            let (node, crashed, cut) = match self.player.sim() {
                Some(Sim::Cluster(c)) => (c.node(id), false, c.is_cut(id)),
                Some(Sim::World(s)) => {
                    let w = &s.world;
                    let apart = (0..w.setup.n)
                        .filter(|&p| p != id && s.is_cut(id, p))
                        .count();
                    (
                        w.node(id),
                        w.crashed(id),
                        apart + 1 == w.setup.n && apart > 0,
                    )
                }
                None => break,
            };
            let hard = node.hard_state();
            let role = if crashed {
                "Crashed"
            } else {
                node.role().as_str()
            };
            let last = self.last.get(id).and_then(Option::as_ref);
            let change = self.change.get(id).and_then(Option::as_ref);
            let mut o = Object::new(&mut out);
            o.num("id", id as u64)
                .str("role", role)
                .num("term", hard.term)
                .opt("vote", hard.voted_for.map(|v| v as u64))
                .opt(
                    "leader",
                    node.leader().filter(|_| !crashed).map(|l| l as u64),
                )
                .opt("deadline", node.deadline().filter(|_| !crashed))
                .bool("crashed", crashed)
                .bool("cut", cut)
                .opt_str("last", last.map(|l| l.0.as_str()))
                .opt_str("rule", last.map(|l| l.1))
                .opt_str("change", change.map(|l| l.0.as_str()))
                .opt_str("change_rule", change.map(|l| l.1));
            o.end();
        }
        out.push(']');
        out
    }

    /// `[from, to, "KIND", term, transfer, sent, arrives]`; in a zero-delay cluster the times
    /// are null and the order is the queue's.
    fn flight_json(&self) -> String {
        let mut rows: Vec<Flying> = match self.player.sim() {
            Some(Sim::Cluster(c)) => c.in_flight().map(|&(f, t, m)| (None, f, t, m)).collect(),
            Some(Sim::World(s)) => {
                let mut v: Vec<_> = s
                    .world
                    .in_flight()
                    .map(|(sent, at, f, t, m)| (Some((sent, at)), f, t, m))
                    .collect();
                v.sort_by_key(|r| (r.0, r.1, r.2));
                v
            }
            None => Vec::new(),
        };
        rows.truncate(500);
        let mut out = String::from("[");
        for (i, (times, from, to, msg)) in rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let forced = matches!(msg.kind, raft::election::Kind::VoteRequest { forced: true });
            let (sent, at) = match times {
                Some((s, a)) => (s.to_string(), a.to_string()),
                None => ("null".into(), "null".into()),
            };
            let _ = write!(
                out,
                "[{from},{to},\"{}\",{},{},{sent},{at}]",
                raft::message::Request::from(msg.kind).name(),
                msg.term,
                u8::from(forced)
            );
        }
        out.push(']');
        out
    }

    /// Pairs `[a, b]` whose link is down (either way).
    fn cuts_json(&self) -> String {
        let n = self.len();
        let mut pairs = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                let cut = match self.player.sim() {
                    Some(Sim::Cluster(c)) => c.is_cut(a) || c.is_cut(b),
                    Some(Sim::World(s)) => s.is_cut(a, b),
                    None => false,
                };
                if cut {
                    pairs.push(format!("[{a},{b}]"));
                }
            }
        }
        format!("[{}]", pairs.join(","))
    }

    /// `[node, "crashed" | "stopped" | "cut", from, to]`; `to` is null while it lasts.
    fn marks_json(&self) -> String {
        let closed = self
            .marks
            .iter()
            .map(|&(id, k, from, to)| (id, k, from, Some(to)));
        let open = (0..self.open.len())
            .filter_map(|id| self.open[id].map(|(k, from)| (id, k, from, None)));
        let rows: Vec<String> = closed
            .chain(open)
            .map(|(id, k, from, to)| {
                let to = to.map_or("null".to_string(), |t: Time| t.to_string());
                format!("[{id},\"{k}\",{from},{to}]")
            })
            .collect();
        format!("[{}]", rows.join(","))
    }

    fn timeline_json(&self) -> String {
        let rows: Vec<String> = self
            .timeline
            .iter()
            .map(|&(l, term, from, to)| {
                let l = l.map_or("null".to_string(), |l| l.to_string());
                format!("[{l},{term},{from},{to}]")
            })
            .collect();
        format!("[{}]", rows.join(","))
    }
}

/// A world script made from `seed`: a random setup, then runs and faults at random. The
/// native build and the wasm build must both turn it into the same trace.
pub fn determinism_script(seed: u64) -> String {
    let mut rng = Rng::new(seed ^ 0x5eed_da7a);
    let n = 3 + (seed % 7) as usize;
    let (min, max, hb) = *rng.pick(&[(150, 300, 50), (100, 200, 30), (300, 600, 100)]);
    let on = |rng: &mut Rng| if rng.below(4) == 0 { "off" } else { "on" };
    let (pre_vote, check_quorum) = (on(&mut rng), on(&mut rng));
    let (delay, jitter) = (1 + rng.below(20), rng.below(6));
    let loss = *rng.pick(&[0, 0, 1, 5]);
    let mut s = format!(
        "> world {n} seed={seed} timeout={min}-{max} heartbeat={hb} delay={delay}-{} \
         jitter={jitter} loss={loss} pre_vote={pre_vote} check_quorum={check_quorum}\n",
        delay + rng.below(20)
    );
    for _ in 0..8 {
        let _ = writeln!(s, "> run {}", 50 + rng.below(1500));
        let (a, b) = (rng.index(n), rng.index(n));
        let cmd = *rng.pick(&["TIMEOUT", "CONVERT_FOLLOWER", "SHUTDOWN"]);
        let line = match rng.below(8) {
            0 | 1 => format!("command n{a} {cmd}"),
            2 => format!("crash n{a}"),
            3 => format!("restart n{a}"),
            4 => format!("cut n{a}"),
            5 => format!("cut n{a} n{b}"),
            6 => format!("stop n{a}"),
            _ => "heal".to_string(),
        };
        let _ = writeln!(s, "> {line}");
    }
    for a in 0..n {
        let _ = writeln!(s, "> restart n{a}\n> command n{a} CONVERT_FOLLOWER");
    }
    s.push_str("> heal\n> run 3000\n> status\n");
    s
}

/// The scenario text of [`determinism_script`] played out, then every step of every node in
/// full (`Debug`: input, state to persist, messages, events, deadline). An error (a broken
/// invariant) ends the trace with its message.
pub fn determinism_trace(seed: u64) -> String {
    let mut player = Player::new(&determinism_script(seed));
    player.keep_steps = true;
    let mut steps = String::new();
    let end = loop {
        match player.step() {
            Ok(true) => {}
            Ok(false) => break String::new(),
            Err(e) => break format!("error: {e}\n"),
        }
        for step in player.take_steps() {
            let _ = writeln!(steps, "{step:?}");
        }
    };
    format!("{}{end}{steps}", player.text())
}
