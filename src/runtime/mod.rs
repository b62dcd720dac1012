//! The runtime: the thin loop around the election core. Owns the socket, the clock, the state
//! file and the log lines; must never decide anything about an election (the core does).
//!
//! ```text
//! loop {
//!     SIGTERM/SIGINT                               -> Node::step(Stop); exit once Stopped
//!     wait for a datagram, at most until the core's next deadline (set_read_timeout); an
//!     election timer's wait ends 10 ms early and sleeps precisely to it (thread::sleep), then
//!     reads what came meanwhile
//!     datagram -> json::parse -> route::route -> Node::step, an answer, or a drop
//!     deadline passed                              -> Node::step(Tick)
//!     Output: persist (fsync) -> send -> log
//! }
//! ```
//! With a cluster key, node datagrams pass `auth::Guard::open` between the source check and the
//! core, and `auth::Guard::seal` on the way out; the guard's announcements share the wait.
use crate::auth::{Guard, Verdict};
use crate::config::NodeConfig;
use crate::election::{Command, HardState, Input, Node, Output, Role};
use crate::json;
use crate::log::{clip, Line, RateLimit};
use crate::message::{self, Query, Request};
use crate::resolver::AddressBook;
pub use crate::route::Dropped;
use crate::route::{route, Context, Route, Source};
use crate::signal;
use crate::storage::{Held, Store};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

mod log;
mod setup;
use setup::{load_hard_state, log_lock_wait, make_guard, node_seed, save};

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
/// fires it one tick after that (up to 8 ms late at HZ=250), so election timers that fall in
/// one tick fire together and split votes. Their wait therefore ends this much before the
/// deadline, and a precise sleep (`nanosleep`, microseconds) covers the rest. A leader's
/// heartbeat needs no such precision (a few ms late is nothing against an election timeout,
/// and the core keeps the cadence): it waits on the socket alone.
const TIMER_SLACK: Duration = Duration::from_millis(10);
/// The longest single socket wait: beyond 63 ticks (252 ms at HZ=250) the kernel's timer wheel
/// rounds a timeout up to 8 ticks, so long waits are taken in pieces below that.
const COARSE_MAX: Duration = Duration::from_millis(200);
/// `set_read_timeout` rejects zero.
const MIN_WAIT: Duration = Duration::from_millis(1);
/// Datagrams read after a precise sleep before the tick runs.
const DRAIN_MAX: usize = 64;

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
    /// The socket's read timeout as last set (set again only when it changes).
    armed: Option<Option<Duration>>,
    /// The deadline whose late tick was preceded by a drain of the socket.
    drained_for: Option<u64>,
    /// Stop signals handled so far, and when the first one asked the node to stop.
    signals: usize,
    stop_at: Option<u64>,
    /// This process's exclusive hold on `DATA_DIR`, for as long as it runs.
    _held: Option<Held>,
}

pub fn run(cfg: NodeConfig) -> Exit {
    if let Err(e) = signal::install() {
        Line::new(&format!("node={}", cfg.name))
            .kv("event", "warning")
            .kv("msg", format!("{e}: a stop ends the process at once"))
            .emit();
    }
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
            // Find out now, not at the first election, that the state cannot be written, or
            // does not read back as written.
            let path = s.path();
            save(s, hard, &names)
                .map_err(|e| Exit::State(format!("cannot write {}: {e}", path.display())))?;
            match load_hard_state(s, &names) {
                Ok((back, None)) if back == hard => {}
                other => {
                    let got = other.map(|(h, _)| h);
                    let msg = format!("{}: wrote {hard:?}, read back {got:?}", path.display());
                    return Err(Exit::State(msg));
                }
            }
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
            armed: None,
            drained_for: None,
            signals: 0,
            stop_at: None,
            _held: held,
            cfg,
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
            if let Err(exit) = self.turn(&mut buf) {
                return exit;
            }
        }
    }

    /// One turn of the loop: a stop signal, address changes, then a timer that is due or a wait
    /// for one datagram.
    fn turn(&mut self, buf: &mut [u8]) -> Result<(), Exit> {
        self.on_signals()?;
        let now = self.now();
        for change in self.book.poll() {
            if let (Some(guard), Ok(_)) = (&mut self.guard, &change.addrs) {
                if change.index < self.names.len() {
                    guard.reachable(change.index, now);
                }
            }
            self.log_address(change);
        }
        self.book.refresh_stale(now);
        let timer = self.node.deadline();
        if let Some(d) = timer.filter(|&d| now >= d) {
            let late_us = (self.start.elapsed().as_micros() as u64).saturating_sub(d * 1000);
            // Later than any wait's own slack: the process was held up (a busy machine, a paused
            // container), and what arrived meanwhile came before the deadline, so it is read
            // first, as a punctual timer would have had it (a leader's CheckQuorum counts the
            // replies waiting in the socket). Once per deadline; the drain may move it.
            if late_us > TIMER_SLACK.as_micros() as u64 && self.drained_for != Some(d) {
                self.drained_for = Some(d);
                return self.drain(buf);
            }
            self.tick_late_us = late_us;
            return self.step(now, Input::Tick);
        }
        // A node stopped by SHUTDOWN sends nothing, announcements included.
        let stopped = self.node.role() == Role::Stopped;
        if !stopped {
            self.send_hellos(now);
        }
        let hello = self.guard.as_ref().and_then(Guard::deadline);
        let deadline = earliest(timer, hello.filter(|_| !stopped));
        let left = deadline.map(|d| {
            (self.start + Duration::from_millis(d)).saturating_duration_since(Instant::now())
        });
        let precise = deadline == timer && self.node.role() != Role::Leader;
        match left {
            Some(left) if precise && left <= TIMER_SLACK && !left.is_zero() => {
                self.sleep_then_drain(left, buf)
            }
            Some(left) if precise => {
                self.wait_for_datagram(Some(left.saturating_sub(TIMER_SLACK)), buf)
            }
            left => self.wait_for_datagram(left, buf),
        }
    }

    /// Waits for one datagram, at most `wait` (whole milliseconds, so that the read timeout is
    /// set again only when it changes; waits beyond `COARSE_MAX` are taken in pieces).
    fn wait_for_datagram(&mut self, wait: Option<Duration>, buf: &mut [u8]) -> Result<(), Exit> {
        let wait = wait.map(|w| {
            let ms = Duration::from_millis(w.as_millis() as u64);
            ms.clamp(MIN_WAIT, COARSE_MAX)
        });
        if self.armed != Some(wait) {
            self.socket
                .set_read_timeout(wait)
                .map_err(|e| Exit::Io(format!("set_read_timeout: {e}")))?;
            self.armed = Some(wait);
        }
        match self.socket.recv_from(buf) {
            Ok((n, src)) => self.on_datagram(&buf[..n], src),
            Err(e) => {
                self.on_recv_error(e);
                Ok(())
            }
        }
    }

    /// The last part of an election timer's wait: a precise sleep to the deadline, then
    /// whatever arrived meanwhile (it came before the deadline, so it is handled before the
    /// tick, as a precise timer would have it). At most `DRAIN_MAX` datagrams, so a flood cannot
    /// hold the tick off.
    fn sleep_then_drain(&mut self, left: Duration, buf: &mut [u8]) -> Result<(), Exit> {
        std::thread::sleep(left);
        self.drain(buf)
    }

    /// Whatever is waiting in the socket now, at most `DRAIN_MAX` datagrams (so a flood cannot
    /// hold a tick off), without waiting for more.
    fn drain(&mut self, buf: &mut [u8]) -> Result<(), Exit> {
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

    /// SIGTERM or SIGINT: the first asks the core to stop (a leader hands over; the process ends
    /// once the node is stopped, see [`Runtime::step`]); a second one ends it at once.
    fn on_signals(&mut self) -> Result<(), Exit> {
        let received = signal::received();
        if received == self.signals {
            return Ok(());
        }
        let first = self.signals == 0;
        self.signals = received;
        let now = self.now();
        if !first || received > 1 {
            self.line("exit")
                .kv("reason", "second-signal")
                .kv("signal", signal::last_name())
                .emit();
            return Err(Exit::Clean);
        }
        self.stop_at = Some(now);
        self.line("signal").kv("signal", signal::last_name()).emit();
        self.step(now, Input::Stop)
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

    /// Receive, route, act: every decision about the datagram is [`route`]'s.
    fn on_datagram(&mut self, bytes: &[u8], addr: SocketAddr) -> Result<(), Exit> {
        let from = Some((addr, bytes.len()));
        let d = match json::parse(bytes) {
            Ok(d) => d,
            Err(e) => {
                self.drop_input(Dropped::BadJson, &e.to_string(), from);
                return Ok(());
            }
        };
        let now = self.now();
        let src = Source {
            addr,
            members: self.book.members_at(addr, self.names.len()),
            controller: self.controller_allowed(addr, now),
        };
        let ctx = Context {
            names: &self.names,
            keyed: self.guard.is_some(),
            stopped: self.node.role() == Role::Stopped,
        };
        match route(&d, &src, &ctx) {
            Route::Peer { from: id, msg } => {
                if self.authentic(id, &d, from) {
                    return self.step(now, Input::Receive { from: id, msg });
                }
            }
            Route::Hello { from: id } => {
                self.authentic(id, &d, from);
            }
            Route::Untrusted { claimed } => {
                self.book.recheck(claimed, now);
                let name = self.names[claimed].clone();
                self.drop_input(Dropped::UntrustedSource, &name, from);
            }
            Route::Command(cmd) => return self.on_command(cmd, &d, addr),
            Route::Answer(query) => self.answer(query, addr),
            Route::Drop(why, detail) => self.drop_input(why, &detail, from),
        }
        Ok(())
    }

    fn on_command(
        &mut self,
        cmd: Command,
        d: &json::Datagram,
        src: SocketAddr,
    ) -> Result<(), Exit> {
        let request = Request::from(cmd).name();
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
        self.step(now, Input::Command(cmd))?;
        if cmd == Command::Shutdown && self.cfg.shutdown_exits {
            self.line("exit").kv("reason", "shutdown").emit();
            return Err(Exit::Clean);
        }
        Ok(())
    }

    /// May `src` send controller requests? Anyone may, unless `CONTROLLER_ALLOW` names hosts.
    fn controller_allowed(&mut self, src: SocketAddr, now: u64) -> bool {
        let first = self.cfg.peers.len();
        let hosts = first..first + self.cfg.controller_allow.len();
        hosts.is_empty()
            || hosts
                .into_iter()
                .any(|i| self.book.has_ip(i, src.ip(), now))
    }

    /// `LEADER_INFO` or `STATUS`: the core's read-only picture, sent back. Pollers (a dashboard,
    /// a grader's loop) ask many times a second: one line per query and asking host per minute.
    fn answer(&mut self, query: Query, src: SocketAddr) {
        let now = self.now();
        let st = self.node.status(now);
        let leader = st.leader.map(|i| self.names[i].clone());
        let value = match query {
            Query::LeaderInfo => leader.clone(),
            Query::Status => {
                let core = &self.cfg.core;
                let range = (core.election_timeout_min_ms, core.election_timeout_max_ms);
                Some(message::status_value(&st, &self.names, range))
            }
        };
        let reply = message::reply(query, &self.cfg.name, st.term, value);
        if let Err(e) = self.socket.send_to(&json::emit(&reply), src) {
            self.drop_input(Dropped::SendError, &e.to_string(), Some((src, 0)));
        }
        let request = query.request().name();
        let key = format!("{request}-{}", src.ip());
        if let Some(held) = self.limits.allow(&key, now, 60 * DROP_LOG_PERIOD_MS) {
            let mut line = self.line("request").kv("request", request).kv("from", src);
            if query == Query::LeaderInfo {
                line = line.kv("leader", leader.as_deref().unwrap_or("null"));
            }
            line.kv("suppressed", held).emit();
        }
    }

    /// One step of the core, then its output in the order Raft requires: persist, send, log.
    /// After a stop signal, the process ends once the core has stopped.
    fn step(&mut self, now: u64, input: Input) -> Result<(), Exit> {
        let out = self.node.step(now, input);
        self.apply(now, out)?;
        match self.stop_at {
            Some(at) if self.node.role() == Role::Stopped => {
                self.line("exit")
                    .kv("reason", "signal")
                    .kv("signal", signal::last_name())
                    .kv("stop_ms", now - at)
                    .emit();
                Err(Exit::Clean)
            }
            _ => Ok(()),
        }
    }

    fn apply(&mut self, now: u64, out: Output) -> Result<(), Exit> {
        if let Some(hard) = out.persist {
            assert_eq!(
                hard,
                self.node.hard_state(),
                "the core's current state is persisted"
            );
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

    // ---- authentication (with a cluster key) ------------------------------------------------

    /// The guard's verdict on a node datagram (or hello) from member `from`, true to deliver it
    /// to the core; a rejection is logged. Without a key everything is delivered.
    fn authentic(
        &mut self,
        from: usize,
        d: &json::Datagram,
        src: Option<(SocketAddr, usize)>,
    ) -> bool {
        let now = self.now();
        let Some(guard) = &mut self.guard else {
            return true;
        };
        match guard.open(from, d, now) {
            Verdict::Deliver => true,
            Verdict::Hello => false,
            Verdict::Drop(why) => {
                let detail = format!("{} {}", self.names[from], why.explain());
                self.drop_input(Dropped::Auth(why), &detail, src);
                false
            }
        }
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
}

fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

#[cfg(test)]
mod tests;
