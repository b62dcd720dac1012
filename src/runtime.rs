//! The runtime: the thin loop around the election core. Owns the socket, the clock, the state
//! file and the log lines; must never decide anything about an election (the core does).
//!
//! ```text
//! loop {
//!     wait for a datagram, at most until 10 ms before the core's next deadline (set_read_timeout)
//!     within 10 ms of it: sleep precisely to it, then read what came meanwhile  (thread::sleep)
//!     datagram -> json::parse -> message::classify -> Node::step
//!     deadline passed                              -> Node::step(Tick)
//!     Output: persist (fsync) -> send -> log
//! }
//! ```
//! With a cluster key, node datagrams pass `auth::Guard::open` between the source check and the
//! core, and `auth::Guard::seal` on the way out; the guard's announcements share the wait.
use crate::auth::{self, Guard, Verdict};
use crate::config::NodeConfig;
use crate::json;
use crate::log::{clip, Line, RateLimit};
use crate::message::{self, Incoming, Reject};
use crate::raft::{Cause, Command, Event, Field, HardState, Input, Node, Output, Role};
use crate::resolver::AddressBook;
use crate::storage::{Held, Saved, Store};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Why the node stopped: `Config` and `State` exit with status 2, `Io` with 1.
#[derive(Debug)]
pub enum Exit {
    Clean,
    Config(String),
    State(String),
    Io(String),
}

/// One line a second per kind of dropped input is plenty.
const DROP_LOG_PERIOD_MS: u64 = 1000;

/// The socket's receive timeout is the loop's clock, but Linux rounds it up to its tick and
/// fires it one tick after that (up to 8 ms late at HZ=250), so timers that fall in one tick
/// fire together and split votes. A wait therefore ends this much before the deadline, and a
/// precise sleep (`nanosleep`, microseconds) covers the rest.
const TIMER_SLACK: Duration = Duration::from_millis(10);
/// The longest single socket wait: beyond 63 ticks (252 ms at HZ=250) the kernel's timer wheel
/// rounds a timeout up to 8 ticks, so long waits are taken in pieces below that.
const COARSE_MAX: Duration = Duration::from_millis(200);
/// `set_read_timeout` rejects zero.
const MIN_WAIT: Duration = Duration::from_millis(1);
/// Datagrams read after a precise sleep before the tick runs.
const DRAIN_MAX: usize = 64;

/// Why an input was dropped or an output not sent (the `reason` of `drop` and `send-failed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    Reject(Reject),
    BadJson,
    RecvError,
    /// A node message from an address that is not the named peer's.
    UntrustedSource,
    /// A `LEADER_INFO` answer arriving from a peer: never answered, so nodes cannot ping-pong.
    LeaderInfoReply,
    /// The same for a `STATUS` answer.
    StatusReply,
    ControllerNotAllowed,
    SendError,
    NoAddress,
    /// With a cluster key: no valid tag, or not fresh.
    Auth(auth::Reject),
}

impl Dropped {
    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::Reject(r) => r.as_str(),
            Dropped::BadJson => "bad-json",
            Dropped::RecvError => "recv-error",
            Dropped::UntrustedSource => "untrusted-source",
            Dropped::LeaderInfoReply => "leader-info-reply",
            Dropped::StatusReply => "status-reply",
            Dropped::ControllerNotAllowed => "controller-not-allowed",
            Dropped::SendError => "send-error",
            Dropped::NoAddress => "no-address",
            Dropped::Auth(r) => r.as_str(),
        }
    }
}

pub struct Runtime {
    cfg: NodeConfig,
    names: Vec<String>,
    node: Node,
    socket: UdpSocket,
    store: Option<Store>,
    book: AddressBook,
    start: Instant,
    limits: RateLimit,
    /// How long after its deadline the last tick ran, in microseconds (logged on campaigns).
    tick_late_us: u64,
    /// How long the last step's write of the term and vote took, in microseconds (logged).
    persist_us: u64,
    /// Present when a cluster key is configured.
    guard: Option<Guard>,
    /// This process's exclusive hold on `DATA_DIR`, for as long as it runs.
    _held: Option<Held>,
}

pub fn run(cfg: NodeConfig) -> Exit {
    match Runtime::start(cfg) {
        Ok(mut rt) => rt.serve(),
        Err(exit) => exit,
    }
}

impl Runtime {
    pub fn start(cfg: NodeConfig) -> Result<Runtime, Exit> {
        let names: Vec<String> = cfg.peers.iter().map(|p| p.name.clone()).collect();
        let store = cfg.data_dir.as_ref().map(Store::new);
        let held = match &store {
            Some(s) => Some(
                s.lock(|| log_lock_wait(&cfg.name, s))
                    .map_err(|e| Exit::State(format!("cannot lock {}: {e}", s.path().display())))?,
            ),
            None => None,
        };
        let (hard, note) = match &store {
            Some(s) => load_hard_state(s, &names)?,
            None => (HardState::default(), None),
        };
        if let Some(s) = &store {
            // Find out now, not at the first election, that the state cannot be written.
            save(s, hard, &names)
                .map_err(|e| Exit::State(format!("cannot write {}: {e}", s.path().display())))?;
        }
        let bind = cfg.bind_addr();
        let socket =
            UdpSocket::bind(bind).map_err(|e| Exit::Config(format!("cannot bind {bind}: {e}")))?;
        let mut targets: Vec<(String, u16)> =
            cfg.peers.iter().map(|p| (p.host.clone(), p.port)).collect();
        targets.extend(cfg.controller_allow.iter().map(|h| (h.clone(), 0)));
        let book = AddressBook::new(&targets, bind.is_ipv4());
        let seed = node_seed(cfg.seed, &cfg.name);
        let node = Node::new(cfg.core, hard, seed, 0);
        let guard = make_guard(&cfg, &names)?;
        let rt = Runtime {
            names,
            node,
            socket,
            store,
            book,
            start: Instant::now(),
            limits: RateLimit::default(),
            tick_late_us: 0,
            persist_us: 0,
            guard,
            cfg,
            _held: held,
        };
        rt.log_start(bind, seed);
        if let Some(note) = note {
            rt.line("warning").kv("msg", note).emit();
        }
        Ok(rt)
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub fn serve(&mut self) -> Exit {
        let mut buf = vec![0u8; 65536];
        loop {
            for change in self.book.poll() {
                self.log_address(change);
            }
            let now = self.now();
            let deadline = self.node.deadline();
            if let Some(d) = deadline.filter(|&d| now >= d) {
                let late = self.start.elapsed().as_micros() as u64;
                self.tick_late_us = late.saturating_sub(d * 1000);
                if let Err(exit) = self.step(now, Input::Tick) {
                    return exit;
                }
                continue;
            }
            self.send_hellos(now);
            let deadline = earliest(deadline, self.guard.as_ref().and_then(Guard::deadline));
            let left = deadline.map(|d| {
                (self.start + Duration::from_millis(d)).saturating_duration_since(Instant::now())
            });
            let result = match left {
                // A deadline already past (a hello due) waits the shortest socket wait instead.
                Some(left) if left <= TIMER_SLACK && !left.is_zero() => {
                    self.sleep_then_drain(left, &mut buf)
                }
                _ => self.wait_for_datagram(left, &mut buf),
            };
            if let Err(exit) = result {
                return exit;
            }
        }
    }

    /// Waits for one datagram, at most until `TIMER_SLACK` before the deadline `left` from now.
    fn wait_for_datagram(&mut self, left: Option<Duration>, buf: &mut [u8]) -> Result<(), Exit> {
        let wait = left.map(|l| l.saturating_sub(TIMER_SLACK).clamp(MIN_WAIT, COARSE_MAX));
        if let Err(e) = self.socket.set_read_timeout(wait) {
            return Err(Exit::Io(format!("set_read_timeout: {e}")));
        }
        match self.socket.recv_from(buf) {
            Ok((n, src)) => self.on_datagram(&buf[..n], src),
            Err(e) => {
                self.on_recv_error(e);
                Ok(())
            }
        }
    }

    /// The last part of a wait: a precise sleep to the deadline, then whatever arrived meanwhile
    /// (it came before the deadline, so it is handled before the tick, as a precise timer would
    /// have it). At most `DRAIN_MAX` datagrams, so a flood cannot hold the tick off.
    fn sleep_then_drain(&mut self, left: Duration, buf: &mut [u8]) -> Result<(), Exit> {
        std::thread::sleep(left);
        self.socket
            .set_nonblocking(true)
            .map_err(|e| Exit::Io(format!("set_nonblocking: {e}")))?;
        let mut result = Ok(());
        for _ in 0..DRAIN_MAX {
            match self.socket.recv_from(buf) {
                Ok((n, src)) => result = self.on_datagram(&buf[..n], src),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => self.on_recv_error(e),
            }
            if result.is_err() {
                break;
            }
        }
        self.socket
            .set_nonblocking(false)
            .map_err(|e| Exit::Io(format!("set_nonblocking: {e}")))?;
        result
    }

    fn on_recv_error(&mut self, e: std::io::Error) {
        // A timeout, or a signal (e.g. the container was paused and resumed): look again.
        if !matches!(
            e.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
        ) {
            // e.g. ECONNREFUSED left by an ICMP "port unreachable" from a stopped peer.
            self.drop_input(Dropped::RecvError, &e.to_string(), None);
        }
    }

    fn on_datagram(&mut self, bytes: &[u8], src: SocketAddr) -> Result<(), Exit> {
        let from = Some((src, bytes.len()));
        let d = match json::parse(bytes) {
            Ok(d) => d,
            Err(e) => {
                self.drop_input(Dropped::BadJson, &e.to_string(), from);
                return Ok(());
            }
        };
        if self.guard.is_some() && d.request.as_deref() == Some(auth::HELLO) {
            self.on_hello(&d, src, bytes.len());
            return Ok(());
        }
        match message::classify(&d, &self.names) {
            Err(reject) => {
                let request = clip(d.request.as_deref().unwrap_or("null"));
                self.drop_input(Dropped::Reject(reject), &request, from);
                Ok(())
            }
            Ok(Incoming::Peer { from: id, msg }) => {
                let now = self.now();
                if !self.book.matches(id, src, now) {
                    let name = self.names[id].clone();
                    self.drop_input(Dropped::UntrustedSource, &name, from);
                    return Ok(());
                }
                if !self.authentic(id, &d, src, bytes.len()) {
                    return Ok(());
                }
                self.step(now, Input::Receive { from: id, msg })
            }
            Ok(Incoming::LeaderInfo { reply_shaped }) => {
                let from_peer = (0..self.names.len()).any(|i| self.book.known(i, src));
                if reply_shaped && from_peer {
                    self.drop_input(Dropped::LeaderInfoReply, "from a peer", from);
                } else if self.controller_allowed(src) {
                    self.answer_leader_info(src);
                }
                Ok(())
            }
            Ok(Incoming::Status { reply_shaped }) => {
                let from_peer = (0..self.names.len()).any(|i| self.book.known(i, src));
                if reply_shaped && from_peer {
                    self.drop_input(Dropped::StatusReply, "from a peer", from);
                } else if self.controller_allowed(src) {
                    self.answer_status(src);
                }
                Ok(())
            }
            Ok(Incoming::Control(cmd)) => self.on_command(cmd, &d, src),
        }
    }

    fn on_command(
        &mut self,
        cmd: Command,
        d: &json::Datagram,
        src: SocketAddr,
    ) -> Result<(), Exit> {
        if !self.controller_allowed(src) {
            return Ok(());
        }
        let request = cmd.as_str();
        let now = self.now();
        // Every request is obeyed; a flood of them is not written out line by line.
        if let Some(held) = self.limits.allow(request, now, 100) {
            self.line("request")
                .kv("request", request)
                .kv("from", src)
                .kv("sender", clip(d.sender_name.as_deref().unwrap_or("null")))
                .kv("suppressed", held)
                .emit();
        }
        self.step(self.now(), Input::Command(cmd))?;
        if cmd == Command::Shutdown && self.cfg.shutdown_exits {
            self.line("exit").kv("reason", "shutdown").emit();
            return Err(Exit::Clean);
        }
        Ok(())
    }

    fn controller_allowed(&mut self, src: SocketAddr) -> bool {
        if self.cfg.controller_allow.is_empty() {
            return true;
        }
        let now = self.now();
        let first = self.cfg.peers.len();
        let allowed = (first..first + self.cfg.controller_allow.len())
            .any(|i| self.book.has_ip(i, src.ip(), now));
        if !allowed {
            self.drop_input(
                Dropped::ControllerNotAllowed,
                &src.to_string(),
                Some((src, 0)),
            );
        }
        allowed
    }

    fn answer_leader_info(&mut self, src: SocketAddr) {
        let leader = self.node.leader().map(|i| self.names[i].clone());
        let reply = message::leader_info_reply(&self.cfg.name, self.node.term(), leader.as_deref());
        if let Err(e) = self.socket.send_to(&json::emit(&reply), src) {
            self.drop_input(Dropped::SendError, &e.to_string(), Some((src, 0)));
        }
        let now = self.now();
        // Pollers ask several times a second: one line per asking host per minute is plenty.
        let key = format!("leader-info-{}", src.ip());
        if let Some(held) = self.limits.allow(&key, now, 60 * DROP_LOG_PERIOD_MS) {
            self.line("request")
                .kv("request", "LEADER_INFO")
                .kv("from", src)
                .kv("leader", leader.as_deref().unwrap_or("null"))
                .kv("suppressed", held)
                .emit();
        }
    }

    /// `STATUS`: the core's read-only picture, sent back; a dashboard asks many times a second.
    fn answer_status(&mut self, src: SocketAddr) {
        let now = self.now();
        let st = self.node.status(now);
        let core = &self.cfg.core;
        let range = (core.election_timeout_min_ms, core.election_timeout_max_ms);
        let value = message::status_value(&st, &self.names, range);
        let reply = message::status_reply(&self.cfg.name, st.term, value);
        if let Err(e) = self.socket.send_to(&json::emit(&reply), src) {
            self.drop_input(Dropped::SendError, &e.to_string(), Some((src, 0)));
        }
        let key = format!("status-{}", src.ip());
        if let Some(held) = self.limits.allow(&key, now, 60 * DROP_LOG_PERIOD_MS) {
            self.line("request")
                .kv("request", "STATUS")
                .kv("from", src)
                .kv("suppressed", held)
                .emit();
        }
    }

    /// One step of the core, then its output in the order Raft requires: persist, send, log.
    fn step(&mut self, now: u64, input: Input) -> Result<(), Exit> {
        let out = self.node.step(now, input);
        self.apply(now, out)
    }

    fn apply(&mut self, now: u64, out: Output) -> Result<(), Exit> {
        if let Some(hard) = out.persist {
            let t = Instant::now();
            self.persist(hard)?;
            self.persist_us = t.elapsed().as_micros() as u64;
        }
        for (to, msg) in out.send {
            let Some(addr) = self.book.addr(to, now) else {
                let name = self.names[to].clone();
                self.drop_output(Dropped::NoAddress, &name);
                continue;
            };
            let mut d = message::encode(&self.cfg.name, msg);
            if let Some(guard) = &mut self.guard {
                guard.seal(to, &mut d);
            }
            if let Err(e) = self.socket.send_to(&json::emit(&d), addr) {
                self.drop_output(Dropped::SendError, &format!("{}: {e}", self.names[to]));
            }
        }
        for event in out.events {
            self.log_event(now, event);
        }
        Ok(())
    }

    fn persist(&mut self, hard: HardState) -> Result<(), Exit> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        save(store, hard, &self.names)
            .map_err(|e| Exit::Io(format!("cannot persist to {}: {e}", store.path().display())))
    }

    // ---- logging -----------------------------------------------------------------------------

    fn line(&self, event: &str) -> Line {
        self.line_as(event, self.node.term(), self.node.role())
    }

    /// A line stamped with the term and role an event happened in (a step can pass through
    /// several: a one-node cluster becomes candidate and leader in one step).
    fn line_as(&self, event: &str, term: u64, role: Role) -> Line {
        Line::new(&format!("node={}", self.cfg.name))
            .kv("term", term)
            .kv("role", role.as_str())
            .kv("event", event)
    }

    /// An event's line: its canonical fields, with members by name. Lines about ignored
    /// messages are rate-limited per reason.
    fn log_event(&mut self, now: u64, event: Event) {
        let held = match event {
            Event::Ignored { reason, .. } => {
                let key = format!("ignored-{}", reason.as_str());
                match self.limits.allow(&key, now, DROP_LOG_PERIOD_MS) {
                    Some(held) => Some(held),
                    None => return,
                }
            }
            _ => None,
        };
        let (term, role) = event
            .stamp()
            .unwrap_or((self.node.term(), self.node.role()));
        let line = self.line_as(event.name(), term, role);
        self.timing(event_fields(line, &event, &self.names, held), &event)
            .emit();
    }

    /// What explains an election's timing: how late a timer fired (the kernel rounds socket
    /// timeouts up to its tick) and how long writing the term and vote took.
    fn timing(&self, mut line: Line, event: &Event) -> Line {
        let (timer, disk) = match *event {
            Event::Became { role, cause, .. } => {
                (cause == Cause::ElectionTimeout, role == Role::Candidate)
            }
            Event::Vote {
                pre: false,
                verdict,
                ..
            } => (false, verdict.granted()),
            _ => (false, false),
        };
        if timer {
            line = line.kv("late_us", self.tick_late_us);
        }
        if disk {
            line = line.kv("persist_us", self.persist_us);
        }
        line
    }

    // ---- authentication (with a cluster key) ------------------------------------------------

    /// The guard's verdict on a node datagram from peer `from`; a rejection is logged.
    fn authentic(&mut self, from: usize, d: &json::Datagram, src: SocketAddr, len: usize) -> bool {
        let now = self.now();
        let Some(guard) = &mut self.guard else {
            return true;
        };
        match guard.open(from, d, now) {
            Verdict::Deliver => true,
            Verdict::Hello => false,
            Verdict::Drop(why) => {
                let detail = format!("{} {}", self.names[from], why.explain());
                self.drop_input(Dropped::Auth(why), &detail, Some((src, len)));
                false
            }
        }
    }

    /// An `AUTH_HELLO`: from a configured peer at its own address, then through the guard.
    fn on_hello(&mut self, d: &json::Datagram, src: SocketAddr, len: usize) {
        let sender = d.sender_name.as_deref().unwrap_or("");
        let Some(from) = self.names.iter().position(|n| n == sender) else {
            let why = Dropped::Reject(Reject::UnknownSender);
            self.drop_input(why, &clip(sender), Some((src, len)));
            return;
        };
        let now = self.now();
        if !self.book.matches(from, src, now) {
            self.drop_input(Dropped::UntrustedSource, sender, Some((src, len)));
            return;
        }
        self.authentic(from, d, src, len);
    }

    fn send_hellos(&mut self, now: u64) {
        let Some(guard) = &mut self.guard else { return };
        if guard.deadline().is_none_or(|t| t > now) {
            return;
        }
        for (to, d) in guard.due_hellos(now) {
            let Some(addr) = self.book.addr(to, now) else {
                continue; // not resolved yet; the next announcement will try again
            };
            if let Err(e) = self.socket.send_to(&json::emit(&d), addr) {
                self.drop_output(Dropped::SendError, &format!("{}: {e}", self.names[to]));
            }
        }
    }

    fn drop_input(&mut self, why: Dropped, detail: &str, src: Option<(SocketAddr, usize)>) {
        let now = self.now();
        let reason = why.as_str();
        if let Some(held) = self.limits.allow(reason, now, DROP_LOG_PERIOD_MS) {
            let mut line = self.line("drop").kv("reason", reason).kv("detail", detail);
            if let Some((addr, len)) = src {
                line = line.kv("from", addr).kv("bytes", len);
            }
            line.kv("suppressed", held).emit();
        }
    }

    fn drop_output(&mut self, why: Dropped, detail: &str) {
        let now = self.now();
        let reason = why.as_str();
        if let Some(held) = self.limits.allow(reason, now, DROP_LOG_PERIOD_MS) {
            self.line("send-failed")
                .kv("reason", reason)
                .kv("detail", detail)
                .kv("suppressed", held)
                .emit();
        }
    }

    fn log_address(&mut self, change: crate::resolver::Change) {
        let name = match self.names.get(change.index) {
            Some(n) => n.clone(),
            None => self.cfg.controller_allow[change.index - self.names.len()].clone(),
        };
        match change.addrs {
            Ok(addrs) => {
                let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                self.line("address")
                    .kv("peer", name)
                    .kv("addrs", list.join(","))
                    .emit();
            }
            Err(e) => {
                let key = format!("resolve-{name}");
                let now = self.now();
                if let Some(held) = self.limits.allow(&key, now, 10 * DROP_LOG_PERIOD_MS) {
                    self.line("address")
                        .kv("peer", name)
                        .kv("error", e)
                        .kv("suppressed", held)
                        .emit();
                }
            }
        }
    }

    fn log_start(&self, bind: SocketAddr, seed: u64) {
        let peers: Vec<String> = self
            .cfg
            .peers
            .iter()
            .map(|p| format!("{}={}:{}", p.name, p.host, p.port))
            .collect();
        let hard = self.node.hard_state();
        let core = self.cfg.core;
        self.line("start")
            .kv("bind", bind)
            .kv("peers", peers.join(","))
            .kv(
                "election_ms",
                format!(
                    "{}-{}",
                    core.election_timeout_min_ms, core.election_timeout_max_ms
                ),
            )
            .kv("heartbeat_ms", core.heartbeat_ms)
            .kv("pre_vote", core.pre_vote)
            .kv("check_quorum", core.check_quorum)
            .kv("data_dir", self.cfg.data_dir.as_deref().unwrap_or("none"))
            .kv(
                "voted_for",
                hard.voted_for.map_or("none", |i| self.names[i].as_str()),
            )
            .kv("seed", seed)
            .kv("auth", self.guard.as_ref().map_or("off", |_| "hmac-sha256"))
            .kv(
                "epoch",
                self.guard
                    .as_ref()
                    .map_or("none".to_string(), |g| format!("{:x}", g.epoch())),
            )
            .emit();
        if self.store.is_none() {
            self.line("warning")
                .kv(
                    "msg",
                    "DATA_DIR is not set: term and vote are not durable across restarts",
                )
                .emit();
        }
    }
}

/// An event's fields after the line's stamp, members by name (`?` for an id outside the cluster),
/// then `suppressed` when the line is rate-limited.
fn event_fields(mut line: Line, event: &Event, names: &[String], held: Option<u64>) -> Line {
    for (key, value) in event.fields() {
        line = match value {
            Field::Node(id) => line.kv(key, names.get(id).map_or("?", |s| s.as_str())),
            other => line.kv(key, other),
        };
    }
    match held {
        Some(held) => line.kv("suppressed", held),
        None => line,
    }
}

/// The message guard when a cluster key is configured: keys read, this start's epoch saved.
fn make_guard(cfg: &NodeConfig, names: &[String]) -> Result<Option<Guard>, Exit> {
    let Some(src) = &cfg.cluster_key else {
        return Ok(None);
    };
    let current = auth::keyfile::load(src).map_err(Exit::Config)?;
    let previous = match &cfg.cluster_key_previous {
        Some(p) => Some(auth::keyfile::load(p).map_err(Exit::Config)?),
        None => None,
    };
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let dir = cfg.data_dir.as_deref().map(std::path::Path::new);
    let epoch = auth::epoch::next(dir, now_us).map_err(Exit::State)?;
    let keys = auth::Keys::new(&current, previous.as_deref());
    let hello_ms = cfg.core.heartbeat_ms;
    Ok(Some(Guard::new(
        keys,
        names.to_vec(),
        cfg.id(),
        epoch,
        hello_ms,
        0,
    )))
}

/// Another process holds `DATA_DIR`: an earlier incarnation of this node that has not exited
/// yet (Swarm can start a task's replacement first). Said once; stamped with the stored term.
fn log_lock_wait(name: &str, store: &Store) {
    let term = store.load().ok().flatten().map_or(0, |s| s.term);
    Line::new(&format!("node={name}"))
        .kv("term", term)
        .kv("role", Role::Follower.as_str())
        .kv("event", "warning")
        .kv(
            "msg",
            "another process holds DATA_DIR (an earlier run of this node still stopping?): waiting for it to exit",
        )
        .emit();
}

fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// The saved term and vote, and a warning worth logging, if any.
fn load_hard_state(store: &Store, names: &[String]) -> Result<(HardState, Option<String>), Exit> {
    let loaded = store.load();
    let path = store.path();
    let Some(saved) = loaded.map_err(|e| Exit::State(format!("{}: {e}", path.display())))? else {
        return Ok((HardState::default(), None));
    };
    let Some(name) = saved.voted_for else {
        let hard = HardState {
            term: saved.term,
            voted_for: None,
        };
        return Ok((hard, None));
    };
    if let Some(id) = names.iter().position(|n| *n == name) {
        let hard = HardState {
            term: saved.term,
            voted_for: Some(id),
        };
        return Ok((hard, None));
    }
    // The vote went to a node no longer in PEERS (the cluster was resized). Moving on to the next
    // term with no vote is always safe in Raft; forgetting the vote within its term is not.
    let term = saved.term.checked_add(1).ok_or_else(|| {
        Exit::State(format!(
            "{}: votes for {name}, not in PEERS",
            store.path().display()
        ))
    })?;
    let note = format!(
        "saved vote for {name} (not in PEERS) in term {}: starting at term {term}",
        saved.term
    );
    Ok((
        HardState {
            term,
            voted_for: None,
        },
        Some(note),
    ))
}

fn save(store: &Store, hard: HardState, names: &[String]) -> std::io::Result<()> {
    store.save(&Saved {
        term: hard.term,
        voted_for: hard.voted_for.map(|i| names[i].clone()),
    })
}

/// Each node's PRNG seed. Nodes started in the same millisecond must still draw different
/// timeouts (identical ones split every vote), so the seed mixes the node's name with either the
/// configured `SEED` (reproducible runs) or the time and pid.
fn node_seed(base: Option<u64>, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a over the name
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let base = base.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ ((std::process::id() as u64) << 32)
    });
    crate::raft::Rng::new(base ^ h).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(tag: &str, text: &str) -> Store {
        let dir = std::env::temp_dir().join(format!("raft-rt-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(crate::storage::FILE_NAME), text).unwrap();
        Store::new(dir)
    }

    /// The lines the Python suites parse, byte for byte after the time stamp.
    #[test]
    fn event_lines_keep_their_format() {
        use crate::raft::{Cause, Disregard, Verdict};
        let names: Vec<String> = ["Node1", "Node2", "Node3"].map(String::from).to_vec();
        let cases = [
            (
                Event::Became {
                    role: Role::Candidate,
                    term: 1,
                    cause: Cause::PreVoteWon,
                },
                None,
                "node=Node1 term=1 role=Candidate event=become to=Candidate reason=pre-vote-won",
            ),
            (
                Event::Elected {
                    term: 1,
                    votes: 2,
                    of: 3,
                    after_ms: 5,
                },
                None,
                "node=Node1 term=1 role=Leader event=elected votes=2/3 after_ms=5",
            ),
            (
                Event::Vote {
                    candidate: 1,
                    term: 4,
                    pre: false,
                    verdict: Verdict::Granted,
                },
                None,
                "node=Node1 term=1 role=Leader event=vote candidate=Node2 for_term=4 granted=true reason=granted",
            ),
            (
                Event::Vote {
                    candidate: 2,
                    term: 4,
                    pre: true,
                    verdict: Verdict::LeaderLease,
                },
                None,
                "node=Node1 term=1 role=Leader event=pre-vote candidate=Node3 for_term=4 granted=false reason=leader-lease",
            ),
            (
                Event::Term {
                    from: 3,
                    to: 4,
                    role: Role::Follower,
                },
                None,
                "node=Node1 term=4 role=Follower event=term from=3",
            ),
            (
                Event::Ignored {
                    from: 9,
                    reason: Disregard::NotAPeer,
                },
                Some(2),
                "node=Node1 term=1 role=Leader event=ignored from=? reason=not-a-peer suppressed=2",
            ),
            (
                Event::Leader { leader: 2 },
                None,
                "node=Node1 term=1 role=Leader event=leader leader=Node3",
            ),
        ];
        for (event, held, want) in cases {
            let (term, role) = event.stamp().unwrap_or((1, Role::Leader));
            let line = Line::new("node=Node1")
                .kv("term", term)
                .kv("role", role.as_str())
                .kv("event", event.name());
            let text = event_fields(line, &event, &names, held).into_string();
            let (_, rest) = text.split_once(' ').unwrap_or_default();
            assert_eq!(rest, want);
        }
    }

    #[test]
    fn a_saved_vote_loads_as_the_member_it_names() {
        let names: Vec<String> = ["Node1", "Node2"].map(String::from).to_vec();
        let store = store_with("member", "term=7\nvoted_for=Node2\n");
        let (hard, note) = load_hard_state(&store, &names).unwrap();
        assert_eq!(
            hard,
            HardState {
                term: 7,
                voted_for: Some(1)
            }
        );
        assert_eq!(note, None);
    }

    #[test]
    fn a_vote_for_a_removed_member_moves_to_the_next_term_without_a_vote() {
        let names: Vec<String> = ["Node1", "Node2"].map(String::from).to_vec();
        let store = store_with("removed", "term=7\nvoted_for=Node9\n");
        let (hard, note) = load_hard_state(&store, &names).unwrap();
        assert_eq!(
            hard,
            HardState {
                term: 8,
                voted_for: None
            }
        );
        assert!(note.is_some_and(|n| n.contains("Node9")));
        let last = store_with("last", &format!("term={}\nvoted_for=Node9\n", u64::MAX));
        assert!(matches!(
            load_hard_state(&last, &names),
            Err(Exit::State(_))
        ));
    }
}
