//! Scenario files: small scripts of inputs to real cores, each command followed by the trace it
//! produces in the core's canonical text (`Display` of `Msg`, `Event`, `Output`). The files are
//! `tests/sim/testdata/*.txt`; the test there fails on any difference. The browser playground
//! plays the same files step by step, and writes a learner's session as one.
//!
//! A file starts a zero-delay cluster (`nodes`, see `cluster.rs`) or a timed world (`world`,
//! see `world.rs`):
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
//! > stop n0                    the process is asked to end (SIGTERM: a leader hands over first)
//! > status                     every node's role, term, vote, leader and time to its timer
//!
//! > world 5 seed=7             five nodes in the simulator's timed world, all randomness from
//!                              the seed (options: timeout=150-300, heartbeat=50, delay=5-20 and
//!                              jitter=3 in ms per message, loss=0 in percent, pre_vote=off,
//!                              check_quorum=off)
//! > run 400                    400 ms pass in the world; only steps that log an event are shown
//! > command n1 TIMEOUT | stop n1 | status    as above
//! > crash n2 | restart n2      the process dies (its disk stays) | starts again from its disk
//! > cut n2 | cut n1 n2         n2 cut off from everyone | the link n1-n2 down, both ways
//! > heal | heal n2 | heal n1 n2    every cut | n2's cuts | the link n1-n2
//! ```
//!
//! A step is one line: `<ms> n<id> <input> -> <output>`. The safety invariants (`check.rs`, and
//! in the world the timed properties of `props.rs`) are checked after every step; a violation is
//! an error naming the line.

use super::cluster::{Cluster, Job};
use super::host::Host;
use super::net::{NetParams, PPM};
use super::world::{Fault, Setup, World};
use super::Step;
use crate::election::{check_cluster_size, Command, Config, Input, NodeId, Rng, Role, Time};
use std::fmt::Write;

/// A script error: the line number and what is wrong.
pub type Error = String;

/// The longest `run` a script may ask for: a day of simulated time.
pub const MAX_RUN_MS: Time = 86_400_000;

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

fn number(words: &[&str], key: &str, default: u64) -> Result<u64, Error> {
    option(words, key).map_or(Ok(default), |v| {
        v.parse().map_err(|_| format!("{key}={v} is not a number"))
    })
}

/// `key=LOW-HIGH`, e.g. `timeout=150-300`.
fn range(words: &[&str], key: &str, default: (u64, u64)) -> Result<(u64, u64), Error> {
    let Some(v) = option(words, key) else {
        return Ok(default);
    };
    let bad = || format!("{key}={v} is not a range like 150-300");
    let (low, high) = v.split_once('-').ok_or_else(bad)?;
    let (low, high) = (
        low.parse().map_err(|_| bad())?,
        high.parse().map_err(|_| bad())?,
    );
    if low > high {
        return Err(bad());
    }
    Ok((low, high))
}

fn switch(words: &[&str], key: &str) -> Result<bool, Error> {
    match option(words, key) {
        None | Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(v) => Err(format!("{key}={v}: on or off")),
    }
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

fn cluster_size(args: &[&str]) -> Result<usize, Error> {
    let n: usize = args
        .first()
        .and_then(|w| w.parse().ok())
        .ok_or("a cluster size is missing")?;
    check_cluster_size(n).map_err(|e| e.to_string())?;
    Ok(n)
}

fn run_ms(args: &[&str]) -> Result<Time, Error> {
    match args.first().and_then(|w| w.parse().ok()) {
        Some(ms) if ms <= MAX_RUN_MS => Ok(ms),
        _ => Err(format!("run needs ms, at most {MAX_RUN_MS}")),
    }
}

/// `nodes N [seed=S] [pre_vote=off] [check_quorum=off]`.
pub fn new_cluster(args: &[&str]) -> Result<Cluster, Error> {
    let n = cluster_size(args)?;
    let seed = number(args, "seed", 10)?;
    let mut cfg = Config::new(0, n);
    cfg.pre_vote = option(args, "pre_vote") != Some("off");
    cfg.check_quorum = option(args, "check_quorum") != Some("off");
    Ok(Cluster::new(cfg, |id| seed.wrapping_add(id as u64)))
}

/// `world N [seed=S] [timeout=150-300] [heartbeat=50] [delay=5-20] [jitter=3] [loss=0]
/// [pre_vote=off] [check_quorum=off]`.
pub fn new_world(args: &[&str]) -> Result<World, Error> {
    let n = cluster_size(args)?;
    let seed = number(args, "seed", 1)?;
    let mut cfg = Config::new(0, n);
    (cfg.election_timeout_min_ms, cfg.election_timeout_max_ms) =
        range(args, "timeout", (150, 300))?;
    cfg.heartbeat_ms = number(args, "heartbeat", 50)?;
    cfg.pre_vote = switch(args, "pre_vote")?;
    cfg.check_quorum = switch(args, "check_quorum")?;
    cfg.validate().map_err(|e| e.to_string())?;
    let (delay_min, delay_max) = range(args, "delay", (5, 20))?;
    let jitter = number(args, "jitter", 3)?;
    let loss = number(args, "loss", 0)?;
    if delay_max > 10_000 || jitter > 10_000 || loss > 100 {
        return Err("delay and jitter at most 10000 ms, loss at most 100 (percent)".into());
    }
    let mut net = NetParams::lan(delay_min, delay_max, jitter);
    net.loss_ppm = loss * (PPM / 100);
    let setup = Setup {
        n,
        cfg,
        net,
        host: Host::EXACT,
    };
    let mut world = World::new(setup, Rng::new(seed));
    world.record = Some(Vec::new());
    Ok(world)
}

/// Runs one command (its words after the `> `) on a zero-delay cluster, all of it at once;
/// what it writes is in the cluster's text.
pub fn run_command(c: &mut Cluster, verb: &str, args: &[&str]) -> Result<(), Error> {
    if let Some(mut job) = start_cluster(c, verb, args)? {
        while c.advance(&mut job)? {}
    }
    Ok(())
}

/// Starts a command on the cluster: simple ones are done at once, the others return their job.
fn start_cluster(c: &mut Cluster, verb: &str, args: &[&str]) -> Result<Option<Job>, Error> {
    let n = c.len();
    let node = |i: usize| node_arg(args.get(i).copied(), n);
    let job = match verb {
        "elect" => {
            elect(c, node(0)?)?;
            None
        }
        "tick" => {
            c.tick(node(0)?)?;
            None
        }
        "deliver" => {
            let pick = |key| option(args, key).map(|w| node_arg(Some(w), n)).transpose();
            Some(c.pass(pick("from")?, pick("to")?))
        }
        "stabilize" => Some(Job::Drain { loud: true }),
        "run" => Some(Job::Run {
            until: c.now() + run_ms(args)?,
        }),
        "cut" => {
            c.isolate(node(0)?);
            None
        }
        "heal" => {
            c.heal();
            None
        }
        "command" => {
            c.command(node(0)?, parse_command(args.get(1).copied())?)?;
            None
        }
        "stop" => {
            c.step(node(0)?, Input::Stop, true)?;
            None
        }
        "status" => {
            c.status();
            None
        }
        _ => return Err(format!("unknown command {verb:?}")),
    };
    Ok(job)
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

// ---- the timed world --------------------------------------------------------------------------

/// A world driven by a script: the world, and the cuts the script opened (`(a, b)`: the link
/// a-b; `(a, a)`: a cut off from everyone) with their episodes.
pub struct Scene {
    pub world: World,
    cuts: Vec<((NodeId, NodeId), usize)>,
}

impl Scene {
    pub fn new(world: World) -> Scene {
        Scene {
            world,
            cuts: Vec::new(),
        }
    }

    /// Whether the script cut the link `a`-`b` (or one of the two off).
    pub fn is_cut(&self, a: NodeId, b: NodeId) -> bool {
        !self.world.net.is_up(a, b) || !self.world.net.is_up(b, a)
    }

    /// The cuts the script opened: `(a, b)` a link, `(a, a)` a node cut off.
    pub fn cuts(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        self.cuts.iter().map(|&(k, _)| k)
    }

    fn cut(&mut self, key: (NodeId, NodeId)) -> Result<(), Error> {
        if self.cuts.iter().any(|&(k, _)| k == key) {
            return Ok(());
        }
        let (a, b) = key;
        let fault = if a == b {
            Fault::Split(1 << a)
        } else {
            Fault::Chain(a, b)
        };
        let ep = self.world.inject(fault)?;
        self.cuts.push((key, ep));
        Ok(())
    }

    /// Ends the cuts `which` selects.
    fn heal(&mut self, which: impl Fn((NodeId, NodeId)) -> bool) -> Result<(), Error> {
        let (gone, kept) = self.cuts.iter().partition(|&&(k, _)| which(k));
        self.cuts = kept;
        for (_, ep) in gone {
            self.world.end(ep)?;
        }
        Ok(())
    }

    /// Starts a command; a `run` returns the time it runs to.
    fn start(
        &mut self,
        verb: &str,
        args: &[&str],
        text: &mut String,
    ) -> Result<Option<Time>, Error> {
        let n = self.world.setup.n;
        let node = |i: usize| node_arg(args.get(i).copied(), n);
        let now = self.world.now();
        match verb {
            "run" => return Ok(Some(now + run_ms(args)?)),
            "command" => {
                let cmd = parse_command(args.get(1).copied())?;
                self.world.command(node(0)?, cmd)?;
            }
            "stop" => self.world.stop(node(0)?)?,
            "crash" => {
                let id = node(0)?;
                if !self.world.crashed(id) {
                    self.world.crash(id);
                    let _ = writeln!(text, "{now:>5} n{id} crash");
                }
            }
            "restart" => {
                let id = node(0)?;
                if self.world.crashed(id) {
                    self.world.restart(id)?;
                    let disk = self.world.disk(id);
                    let vote = disk.voted_for.map_or("none".into(), |v| format!("n{v}"));
                    let _ = writeln!(text, "{now:>5} n{id} restart t{} vote={vote}", disk.term);
                }
            }
            "cut" => {
                let a = node(0)?;
                let b = if args.len() > 1 { node(1)? } else { a };
                self.cut((a.min(b), a.max(b)))?;
            }
            "heal" => match args.len() {
                0 => self.heal(|_| true)?,
                1 => {
                    let a = node(0)?;
                    self.heal(|(x, y)| x == a || y == a)?;
                }
                _ => {
                    let (a, b) = (node(0)?, node(1)?);
                    self.heal(|k| k == (a.min(b), a.max(b)))?;
                }
            },
            "status" => self.status(text),
            _ => return Err(format!("unknown command {verb:?} in a world")),
        }
        Ok(None)
    }

    /// Runs the world up to `until`, stopping after the first event that steps a node. False
    /// when nothing was left to do before `until` (the clock is then at `until`).
    fn advance(&mut self, until: Time) -> Result<bool, Error> {
        let stepped = |w: &World| w.record.as_ref().is_some_and(|r| !r.is_empty());
        Ok(self.world.run_until_or(until, stepped)?.is_some())
    }

    fn status(&self, text: &mut String) {
        let w = &self.world;
        let n = w.setup.n;
        for id in 0..n {
            let name = |v: Option<NodeId>| v.map_or("none".to_string(), |v| format!("n{v}"));
            let node = w.node(id);
            let disk = w.disk(id);
            let (role, leader, timer) = if w.crashed(id) {
                ("Crashed", None, "none".to_string())
            } else {
                let timer = node.deadline().map_or("none".to_string(), |d| {
                    format!("+{}", d.saturating_sub(w.now()))
                });
                (node.role().as_str(), node.leader(), timer)
            };
            let apart: Vec<String> = (0..n)
                .filter(|&p| p != id && self.is_cut(id, p))
                .map(|p| format!("n{p}"))
                .collect();
            let cut = match apart.len() {
                0 => String::new(),
                k if k == n - 1 => " (cut off)".to_string(),
                _ => format!(" (cut from {})", apart.join(",")),
            };
            let _ = writeln!(
                text,
                "      n{id} {role:<12} t{} vote={} leader={} timer={timer}{cut}",
                disk.term,
                name(disk.voted_for),
                name(leader),
            );
        }
    }
}

// ---- playing a script -------------------------------------------------------------------------

/// What a script drives.
pub enum Sim {
    Cluster(Box<Cluster>),
    World(Box<Scene>),
}

/// The command under way.
enum Doing {
    Cluster(Job),
    World(Time),
}

/// A script played step by step: each [`Player::step`] runs the next command line, or one step
/// of the command under way (one delivery, one timer, one world event that steps a node). The
/// file as regenerated so far is [`Player::text`]; [`regenerate`] plays a file to its end.
pub struct Player {
    /// The file's lines without its old traces, with their line numbers.
    lines: Vec<(usize, String)>,
    next: usize,
    /// The line number of the command under way, for errors.
    line_no: usize,
    sim: Option<Sim>,
    doing: Option<Doing>,
    text: String,
    /// Every step since the last [`Player::take_steps`], when `keep_steps` is set.
    steps: Vec<Step>,
    pub keep_steps: bool,
    /// Where a live run's `> run` line goes, and when the run began.
    live: Option<(usize, Time)>,
}

impl Player {
    pub fn new(file: &str) -> Player {
        let lines = file
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim().is_empty() || l.starts_with('#') || l.starts_with("> "))
            .map(|(i, l)| (i + 1, l.to_string()))
            .collect();
        Player {
            lines,
            next: 0,
            line_no: 0,
            sim: None,
            doing: None,
            text: String::new(),
            steps: Vec::new(),
            keep_steps: false,
            live: None,
        }
    }

    /// The file as regenerated so far: comments and commands, each followed by its lines.
    pub fn text(&self) -> &str {
        &self.text
    }
    pub fn sim(&self) -> Option<&Sim> {
        self.sim.as_ref()
    }
    /// The simulated time.
    pub fn now(&self) -> Time {
        match &self.sim {
            Some(Sim::Cluster(c)) => c.now(),
            Some(Sim::World(s)) => s.world.now(),
            None => 0,
        }
    }
    /// Every line has run and no command is under way.
    pub fn done(&self) -> bool {
        self.doing.is_none() && self.next >= self.lines.len()
    }
    /// The steps since the last call (kept only with `keep_steps`).
    pub fn take_steps(&mut self) -> Vec<Step> {
        std::mem::take(&mut self.steps)
    }

    /// One step: of the command under way, else the next line (comments and blank lines on
    /// the way are copied). False at the end of the script.
    pub fn step(&mut self) -> Result<bool, Error> {
        loop {
            if self.doing.is_some() {
                let busy = self.advance().map_err(|e| self.at(e))?;
                self.collect();
                if busy {
                    return Ok(true);
                }
                self.doing = None;
            }
            let Some((no, line)) = self.lines.get(self.next).cloned() else {
                return Ok(false);
            };
            self.next += 1;
            self.line_no = no;
            self.text.push_str(&line);
            self.text.push('\n');
            if let Some(command) = line.strip_prefix("> ") {
                self.start(command).map_err(|e| self.at(e))?;
                self.collect();
                return Ok(true);
            }
        }
    }

    /// Plays the rest of the script.
    pub fn finish(&mut self) -> Result<(), Error> {
        while self.step()? {}
        Ok(())
    }

    fn at(&self, e: Error) -> Error {
        format!("line {}: {e}", self.line_no)
    }

    fn start(&mut self, command: &str) -> Result<(), Error> {
        let words: Vec<&str> = command.split_whitespace().collect();
        let (verb, args) = words.split_first().ok_or("empty command")?;
        match (*verb, &mut self.sim) {
            ("nodes", _) => {
                let mut c = new_cluster(args)?;
                c.record = Some(Vec::new());
                self.sim = Some(Sim::Cluster(Box::new(c)));
            }
            ("world", _) => self.sim = Some(Sim::World(Box::new(Scene::new(new_world(args)?)))),
            (_, None) => return Err("`nodes N` or `world N` must come first".into()),
            (_, Some(Sim::Cluster(c))) => {
                self.doing = start_cluster(c, verb, args)?.map(Doing::Cluster);
            }
            (_, Some(Sim::World(s))) => {
                self.doing = s.start(verb, args, &mut self.text)?.map(Doing::World);
            }
        }
        Ok(())
    }

    fn advance(&mut self) -> Result<bool, Error> {
        match (&mut self.doing, &mut self.sim) {
            (Some(Doing::Cluster(job)), Some(Sim::Cluster(c))) => Ok(c.advance(job)?),
            (Some(Doing::World(until)), Some(Sim::World(s))) => s.advance(*until),
            _ => Ok(false),
        }
    }

    /// Moves what the simulation wrote into the text, and its steps into `steps`.
    fn collect(&mut self) {
        let steps = match &mut self.sim {
            Some(Sim::Cluster(c)) => {
                self.text.push_str(&c.take_text());
                c.record.as_mut().map(std::mem::take)
            }
            Some(Sim::World(s)) => {
                let steps = s.world.record.as_mut().map(std::mem::take);
                for step in steps.iter().flatten() {
                    let shown = matches!(step.input, Input::Command(_) | Input::Stop)
                        || !step.output.events.is_empty();
                    if shown {
                        let _ = writeln!(self.text, "{step}");
                    }
                }
                steps
            }
            None => None,
        };
        if self.keep_steps {
            self.steps.extend(steps.into_iter().flatten());
        }
    }

    // ---- live: a session written as it happens ----------------------------------------------

    /// Appends a command to the script and runs it at once (a live session: the playground's
    /// buttons). A run under way is closed first, as a `> run` of the time it covered.
    /// A command that fails (a typo, a node that does not exist) is taken back: the file stays
    /// one that replays.
    pub fn command(&mut self, command: &str) -> Result<(), Error> {
        self.close_run();
        self.finish()?;
        let (lines, text) = (self.lines.len(), self.text.len());
        self.lines.push((lines + 1, format!("> {command}")));
        let done = self.finish();
        if done.is_err() && self.doing.is_none() {
            self.lines.truncate(lines);
            self.text.truncate(text);
            self.next = lines;
        }
        done
    }

    /// Time passes up to `until` (as one `> run` that grows until the next command), or, with
    /// `one`, only up to the next step of a node. Returns whether a node stepped.
    pub fn run_live(&mut self, until: Time, one: bool) -> Result<bool, Error> {
        self.finish()?;
        if self.sim.is_none() {
            return Err("`nodes N` or `world N` must come first".into());
        }
        if self.live.is_none() {
            self.live = Some((self.text.len(), self.now()));
        }
        let mut stepped = false;
        let result = loop {
            let busy = match &mut self.sim {
                Some(Sim::World(s)) => s.advance(until),
                Some(Sim::Cluster(c)) => c.advance(&mut Job::Run { until }),
                None => Ok(false),
            };
            match busy {
                Ok(true) if !one => stepped = true,
                Ok(busy) => break Ok(stepped || busy),
                Err(e) => break Err(e),
            }
        };
        self.collect();
        result
    }

    /// Ends a live run: its `> run` line goes in before the lines it wrote.
    fn close_run(&mut self) {
        if let Some((at, from)) = self.live.take() {
            let ms = self.now() - from;
            if ms > 0 || at < self.text.len() {
                let line = format!("> run {ms}");
                self.text.insert_str(at, &format!("{line}\n"));
                self.lines.push((self.lines.len() + 1, line));
                self.next = self.lines.len();
            }
        }
    }

    /// The session so far as a scenario file (a live run is closed first).
    pub fn export(&mut self) -> String {
        self.close_run();
        self.text.clone()
    }

    /// The text of the `> run` line a live run would close with now, and where it goes.
    pub fn live_run(&self) -> Option<(usize, Time)> {
        self.live.map(|(at, from)| (at, self.now() - from))
    }
}

/// The file with every trace regenerated: comments, blank lines and commands stay; the lines
/// after each command are what it produces now.
pub fn regenerate(text: &str) -> Result<String, Error> {
    let mut player = Player::new(text);
    player.finish()?;
    Ok(player.text)
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
