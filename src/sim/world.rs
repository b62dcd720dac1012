//! The simulated world: a virtual clock and event queue driving `n` election cores over a
//! simulated network, with crashes, pauses, partitions and controller commands.
//!
//! A run is a pure function of its `Setup` and seed: one PRNG feeds every random choice (link
//! delays, loss, node seeds), events at the same millisecond run in the order they were
//! scheduled (a sequence number breaks ties), and nothing iterates a hash map.

use super::check::{Checker, Violation};
use super::handover::{Handover, Seen, Started};
use super::host::Host;
use super::net::{Net, NetParams};
use super::props::{self, Props};
use super::Step;
use crate::election::{
    Command, Config, Event, HardState, Input, Kind, Msg, Node, NodeId, Output, Rng, Role, Time,
};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt::Write;

/// Everything that defines a world besides the seed.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    pub n: usize,
    /// The configuration every node gets (its `id` and `cluster_size` are filled in).
    pub cfg: Config,
    pub net: NetParams,
    /// Timer precision and disk time of every node.
    pub host: Host,
}

/// A node named directly, or whoever leads when the fault starts (a random node if none does).
#[derive(Clone, Copy, Debug)]
pub enum Who {
    Node(NodeId),
    LeaderOr(NodeId),
}

/// A fault that starts at one time and is undone at another (an "episode").
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Symmetric partition: the nodes in the bitmask cannot talk to the others.
    Split(u64),
    /// The leader alone on one side.
    IsolateLeader,
    /// The leader and the `n / 2 - 1` nodes after it in a minority, the rest in a majority.
    LeaderMinority,
    /// Everything the node sends is lost; it still hears the others.
    Mute(Who),
    /// Everything sent to the node is lost; it still talks.
    Deafen(Who),
    /// One direction of one link.
    OneWay(NodeId, NodeId),
    /// Only the two nodes cannot talk: with a third node between them, a chain A - B - C.
    Chain(NodeId, NodeId),
    /// The process dies; it restarts from its persisted state when the episode ends.
    Crash(Who),
    /// The process dies at its next step that persists something, after persisting but before
    /// any of that step's messages leave.
    CrashAfterPersist(Who),
    /// The process is frozen: it steps nothing; what arrives waits in its socket buffer.
    Pause(Who),
    /// The controller's SHUTDOWN; the episode ends with the given revival command.
    Stop(Who, Command),
    /// The process is asked to end (SIGTERM: [`Input::Stop`]); once its core is stopped the
    /// process is gone, as after a crash. It starts again from its disk when the episode ends
    /// (or, if it is still handing over then, as soon as it has ended).
    PlannedStop(Who),
    /// Loss raised to this many parts per million.
    Lossy(u64),
}

/// How to undo an episode.
#[derive(Clone, Copy, Debug)]
enum Undo {
    Heal(usize),
    Restart(NodeId),
    Resume(NodeId),
    Revive(NodeId, Command),
    /// Start the process again once it has ended (a planned stop).
    Start(NodeId),
    Loss(u64),
}

#[derive(Clone, Copy, Debug)]
pub enum Ev {
    Tick {
        node: NodeId,
        gen: u64,
    },
    /// A message arrives; it left its sender at `sent`.
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: Msg,
        sent: Time,
    },
    Begin {
        ep: usize,
        fault: Fault,
    },
    End {
        ep: usize,
    },
    Command {
        who: Who,
        cmd: Command,
    },
    /// The end of the fault phase: every episode undone, every node running, no loss.
    HealAll,
}

struct Entry {
    at: Time,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest (time, seq) must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Up,
    Crashed,
    Paused,
}

/// One machine: the core, its disk, and what the harness keeps for it.
struct Slot {
    node: Node,
    disk: HardState,
    status: Status,
    /// Bumped whenever the pending tick becomes stale (new deadline, crash).
    gen: u64,
    deadline: Option<Time>,
    /// When the pending tick fires (the deadline as the host's timers round it).
    wake: Option<Time>,
    /// Messages that arrived while paused, in arrival order.
    inbox: Vec<(NodeId, Msg)>,
    crash_on_persist: bool,
    /// A planned stop is under way: the process ends once the core is stopped.
    planned: bool,
    /// Start the process again as soon as its planned stop has ended it.
    restart_on_exit: bool,
    /// How many times the process was started again (a new process reads no old buffer).
    lives: u64,
}

pub struct World {
    pub setup: Setup,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Entry>,
    slots: Vec<Slot>,
    pub net: Net,
    pub rng: Rng,
    pub check: Checker,
    episodes: Vec<Option<Undo>>,
    /// Events handled so far.
    pub events: u64,
    /// The most recent `Event::Elected`: (time, node, term).
    pub last_elected: Option<(Time, NodeId, u64)>,
    /// Candidacies so far (every `Became Candidate`), to count split or failed votes.
    pub campaigns: u64,
    props: Props,
    /// The timed properties of handovers and planned stops (`handover.rs`).
    handover: Handover,
    /// When `Some`, every step of every node is also kept here.
    pub record: Option<Vec<Step>>,
    /// When each directed link (`from * n + to`) last carried a message, for `props.rs`.
    sent_at: Vec<Time>,
    trace: Option<String>,
}

impl World {
    /// Starts every node at time 0 from an empty disk. `rng` is the run's only source of
    /// randomness from here on.
    pub fn new(setup: Setup, mut rng: Rng) -> World {
        let net = Net::new(setup.n, setup.net, &mut rng);
        let mut w = World {
            setup,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            slots: Vec::with_capacity(setup.n),
            net,
            rng,
            check: Checker::new(setup.n),
            episodes: Vec::new(),
            events: 0,
            last_elected: None,
            campaigns: 0,
            props: Props::new(setup.n),
            handover: Handover::new(setup.n),
            record: None,
            sent_at: vec![0; setup.n * setup.n],
            trace: None,
        };
        for id in 0..setup.n {
            let node = Node::new(w.node_cfg(id), HardState::default(), w.rng.next_u64(), 0);
            w.slots.push(Slot {
                disk: node.hard_state(),
                node,
                status: Status::Up,
                gen: 0,
                deadline: None,
                wake: None,
                inbox: Vec::new(),
                crash_on_persist: false,
                planned: false,
                restart_on_exit: false,
                lives: 0,
            });
            w.arm(id);
        }
        w
    }

    /// Records one line per event from now on; see [`World::take_trace`].
    pub fn with_trace(mut self) -> World {
        self.trace = Some(String::new());
        self
    }

    pub fn take_trace(&mut self) -> String {
        self.trace.take().unwrap_or_default()
    }

    fn node_cfg(&self, id: NodeId) -> Config {
        Config {
            id,
            cluster_size: self.setup.n,
            ..self.setup.cfg
        }
    }

    // ---- observation -------------------------------------------------------------------------

    pub fn now(&self) -> Time {
        self.now
    }
    pub fn node(&self, id: NodeId) -> &Node {
        &self.slots[id].node
    }
    pub fn deadline(&self, id: NodeId) -> Option<Time> {
        self.slots[id].deadline
    }
    /// How often the handover and planned-stop properties were put to the test.
    pub fn seen(&self) -> Seen {
        self.handover.seen
    }
    /// The process is dead (its disk stays): see [`World::crash`].
    pub fn crashed(&self, id: NodeId) -> bool {
        self.slots[id].status == Status::Crashed
    }
    /// The process is frozen: see [`Fault::Pause`].
    pub fn paused(&self, id: NodeId) -> bool {
        self.slots[id].status == Status::Paused
    }
    /// What the node has persisted.
    pub fn disk(&self, id: NodeId) -> HardState {
        self.slots[id].disk
    }
    /// Messages on their way, in no particular order: (sent, arrives, from, to, message). One
    /// lost on a cut link still shows until it would have arrived.
    pub fn in_flight(&self) -> impl Iterator<Item = (Time, Time, NodeId, NodeId, Msg)> + '_ {
        self.queue.iter().filter_map(|e| match e.ev {
            Ev::Deliver {
                from,
                to,
                msg,
                sent,
            } => Some((sent, e.at, from, to, msg)),
            _ => None,
        })
    }
    /// When the earliest queued event happens (it may be a superseded tick that does nothing).
    pub fn next_event_at(&self) -> Option<Time> {
        self.queue.peek().map(|e| e.at)
    }

    /// The running leader with the highest term, if any node is leading.
    pub fn leader(&self) -> Option<NodeId> {
        (0..self.setup.n)
            .filter(|&i| {
                self.slots[i].status == Status::Up && self.slots[i].node.role() == Role::Leader
            })
            .max_by_key(|&i| self.slots[i].node.term())
    }

    /// Every node runs and names the same leader, in the same term, and that node leads.
    pub fn agreed(&self) -> Option<(NodeId, u64)> {
        let first = &self.slots[0].node;
        let (leader, term) = (first.leader()?, first.term());
        let same = self.slots.iter().all(|s| {
            s.status == Status::Up && s.node.leader() == Some(leader) && s.node.term() == term
        });
        (same && self.slots[leader].node.role() == Role::Leader).then_some((leader, term))
    }

    /// The first time before `deadline` from which all nodes agree on one leader and keep
    /// agreeing, with no election anywhere, for three maximum election timeouts. Returns that
    /// time with the leader and its term.
    ///
    /// An agreement right after a heal can be stale: the nodes cut off from an old leader have
    /// not timed out yet, and the leader is about to step down because it missed a majority
    /// (CheckQuorum). So an agreement counts only if it lasts; an election during the window
    /// restarts the search.
    pub fn lasting_agreement(
        &mut self,
        deadline: Time,
    ) -> Result<Option<(Time, NodeId, u64)>, Violation> {
        let window = 3 * self.setup.cfg.election_timeout_max_ms;
        while let Some(at) = self.run_until_or(deadline, |w| w.agreed().is_some())? {
            let agreed = self.agreed();
            let elections = self.check.elections;
            let changed = self.run_until_or(at + window, |w| {
                w.check.elections != elections || w.agreed() != agreed
            })?;
            if let (None, Some((leader, term))) = (changed, agreed) {
                return Ok(Some((at, leader, term)));
            }
        }
        Ok(None)
    }

    /// Nothing is broken: all links up, every node running and not stopped.
    pub fn healed(&self) -> bool {
        self.net.all_up()
            && self
                .slots
                .iter()
                .all(|s| s.status == Status::Up && s.node.role() != Role::Stopped)
    }

    // ---- the clock ---------------------------------------------------------------------------

    pub fn schedule(&mut self, at: Time, ev: Ev) {
        self.seq += 1;
        self.queue.push(Entry {
            at,
            seq: self.seq,
            ev,
        });
    }

    /// Runs every event up to and including time `until`; the clock ends at `until`.
    pub fn run_until(&mut self, until: Time) -> Result<(), Violation> {
        self.run_until_or(until, |_| false).map(|_| ())
    }

    /// Runs events up to `until`, stopping early at the first event after which `done` holds;
    /// returns that time. The clock ends at the stop time, or at `until`.
    pub fn run_until_or(
        &mut self,
        until: Time,
        mut done: impl FnMut(&World) -> bool,
    ) -> Result<Option<Time>, Violation> {
        while self.queue.peek().is_some_and(|e| e.at <= until) {
            if let Some(Entry { at, ev, .. }) = self.queue.pop() {
                self.now = at;
                self.events += 1;
                self.handle(ev)
                    .and_then(|()| self.quorum_props())
                    .and_then(|()| self.transfer_props())
                    .map_err(|v| format!("t={at} ms: {v}"))?;
                if done(self) {
                    return Ok(Some(at));
                }
            }
        }
        self.now = self.now.max(until);
        Ok(None)
    }

    fn handle(&mut self, ev: Ev) -> Result<(), Violation> {
        match ev {
            Ev::Tick { node, gen } => self.on_tick(node, gen),
            Ev::Deliver { from, to, msg, .. } => self.on_deliver(from, to, msg),
            Ev::Begin { ep, fault } => self.begin(ep, fault),
            Ev::End { ep } => self.end(ep),
            Ev::Command { who, cmd } => {
                let id = self.resolve(who);
                self.command(id, cmd)
            }
            Ev::HealAll => self.heal_all(),
        }
    }

    fn on_tick(&mut self, id: NodeId, gen: u64) -> Result<(), Violation> {
        let slot = &mut self.slots[id];
        if gen != slot.gen {
            return Ok(()); // superseded by a later deadline, or the process died
        }
        match slot.status {
            Status::Up => self.step(id, Input::Tick, || "tick".into()),
            // A paused node's tick waits for the resume, which re-arms it; a dead one's is gone.
            Status::Paused | Status::Crashed => Ok(()),
        }
    }

    fn on_deliver(&mut self, from: NodeId, to: NodeId, msg: Msg) -> Result<(), Violation> {
        // A partition that opened while the message was in flight loses it too.
        if !self.net.is_up(from, to) || self.slots[to].status == Status::Crashed {
            return Ok(());
        }
        if self.slots[to].status == Status::Paused {
            self.slots[to].inbox.push((from, msg));
            return Ok(());
        }
        self.step(to, Input::Receive { from, msg }, || {
            format!("recv {msg} from n{from}")
        })
    }

    // ---- stepping a node ---------------------------------------------------------------------

    /// Steps a running node, then does what its output asks in the required order: persist,
    /// then send, then re-arm the timer. Invariants are checked in between.
    fn step(
        &mut self,
        id: NodeId,
        input: Input,
        what: impl FnOnce() -> String,
    ) -> Result<(), Violation> {
        let now = self.now;
        let slot = &mut self.slots[id];
        let was_stopped = slot.node.role() == Role::Stopped;
        let before = (slot.node.term(), slot.node.leader());
        let (role_before, deadline_before) = (slot.node.role(), slot.node.deadline());
        if input == Input::Stop {
            slot.planned = true;
        }
        let out = slot.node.step(now, input);
        let after = (slot.node.term(), slot.node.leader());
        let role_after = slot.node.role();
        // A deadline may be overdue after other inputs (a paused node reads its buffer before
        // its late tick), but a tick that does not move the timer forward would spin forever.
        if input == Input::Tick && out.deadline.is_some_and(|d| d <= now) {
            return Err(format!(
                "n{id} ticked but asked to be woken at {:?} again",
                out.deadline
            ));
        }
        if was_stopped && !matches!(input, Input::Command(_)) && !stays_stopped(&slot.node, &out) {
            return Err(format!(
                "n{id} is stopped but reacted to {input:?}: {out:?}"
            ));
        }
        let old = slot.disk;
        if let Some(hard) = out.persist {
            self.check.persisted(id, old, hard)?;
            slot.disk = hard;
        }
        let crash = slot.crash_on_persist && out.persist.is_some();
        let forced = match input {
            Input::Command(cmd) => cmd == Command::Timeout,
            Input::Receive { msg, .. } => msg.kind == Kind::TimeoutNow,
            Input::Tick | Input::Stop => false,
        };
        let needs_pre_vote = self.setup.cfg.pre_vote && !forced;
        self.check
            .after_step(id, &slot.node, slot.disk, &out.events, needs_pre_vote)?;
        let step = props::Step {
            id,
            now,
            input,
            from: match input {
                Input::Receive { from, msg } => Some((from, msg.kind, msg.term)),
                _ => None,
            },
            before,
            after,
            roles: (role_before, role_after),
            deadlines: (deadline_before, out.deadline),
            events: &out.events,
            sent: &out.send,
            persist: out.persist,
        };
        self.step_props(&step)?;
        self.note_elected(id, &out);
        if let Some(record) = &mut self.record {
            let (at, node, output) = (now, id, out.clone());
            record.push(Step {
                at,
                node,
                input,
                output,
            });
        }
        let lost = if crash {
            " (crash after persist: sends lost)"
        } else {
            ""
        };
        self.log(id, || format!("{} -> {out}{lost}", what()));
        if crash {
            self.crash(id); // persisted, but the step's messages never leave
            return Ok(());
        }
        let disk = self.slots[id].disk;
        let held = match out.persist {
            Some(_) => self.setup.host.disk_delay(&mut self.rng),
            None => 0,
        };
        for &(to, msg) in &out.send {
            self.check.sent(id, disk, to, msg)?;
            self.send(id, to, msg, held);
        }
        if self.slots[id].planned && self.slots[id].node.role() == Role::Stopped {
            return self.exit(id); // the planned stop is over: the process ends
        }
        // Re-arm only on a new deadline: most steps keep it, and each re-arm leaves a stale
        // tick in the queue. With a kernel tick the runtime re-arms its socket timeout after
        // every datagram, and where the wheel puts the timer depends on when it was armed.
        let slot = &self.slots[id];
        let moved = match (out.deadline, slot.wake) {
            (Some(d), Some(w)) => self.setup.host.wake(self.now, d) != w,
            (d, w) => d.is_some() != w.is_some(),
        };
        if out.deadline != slot.deadline || moved {
            self.arm(id);
        }
        Ok(())
    }

    /// The timed properties of `props.rs` and `handover.rs` that one step can break.
    fn step_props(&mut self, step: &props::Step) -> Result<(), Violation> {
        let cfg = self.setup.cfg;
        self.props
            .step(step, cfg.check_quorum, cfg.election_timeout_min_ms)?;
        self.props.timers(step, &cfg, &self.check)?;
        if let Some(h) = self
            .handover
            .step(step, cfg.election_timeout_min_ms, &self.check)?
        {
            if let Some(by) = self.healthy_handover(h) {
                self.handover.await_handover(h, self.now, by);
            }
        }
        if cfg.check_quorum && props::lost_quorum(step.events) {
            let p = self.setup.net;
            let d = p.delay_max + p.jitter + self.setup.host.disk_max + self.tick_slack();
            let window = cfg.election_timeout_min_ms + cfg.heartbeat_ms + 2 * d;
            self.props.stepped_down(step.id, self.now, window)?;
        }
        Ok(())
    }

    /// Whether a handover that just started runs on a healthy network (see `handover.rs`), and
    /// if so by when it must be over: `4 * d + 2 * disk_max`.
    fn healthy_handover(&self, h: Started) -> Option<Time> {
        let p = self.net.params;
        let d = p.delay_max + p.jitter;
        let by = self.now + 4 * d + 2 * self.setup.host.disk_max;
        let clean = p.loss_ppm == 0 && p.reorder_ppm == 0 && self.net.all_up();
        let running = |s: &Slot| s.status == Status::Up && s.node.role() != Role::Stopped;
        if !clean
            || self.slots.iter().any(|s| s.status == Status::Paused)
            || !running(&self.slots[h.successor])
            || self.slots.iter().filter(|s| running(s)).count() < self.setup.n / 2 + 1
        {
            return None;
        }
        let min = self.setup.cfg.election_timeout_min_ms;
        let settled = (0..self.setup.n)
            .filter(|&f| f != h.leader && running(&self.slots[f]))
            .all(|f| {
                let node = &self.slots[f].node;
                node.leader() == Some(h.leader)
                    && node.term() == h.term
                    && matches!(self.props.heard(f),
                        Some((term, leader, at)) if (term, leader) == (h.term, h.leader) && at + min > by)
            });
        settled.then_some(by)
    }

    /// The handover and planned-stop properties that time alone can break, after every event.
    fn transfer_props(&mut self) -> Result<(), Violation> {
        if !self.handover.busy() {
            return Ok(());
        }
        let bound = self.setup.cfg.election_timeout_min_ms + self.tick_slack();
        for id in 0..self.setup.n {
            if !self.handover.is_stopping(id) {
                continue;
            }
            let s = &self.slots[id];
            let (running, role) = (s.status == Status::Up, s.node.role());
            self.handover
                .stop_bound(id, self.now, running, role, bound)?;
        }
        let Some(h) = self.handover.awaited() else {
            return Ok(());
        };
        let leads = |i: NodeId| {
            let s = &self.slots[i];
            (s.status == Status::Up && s.node.role() == Role::Leader && s.node.term() > h.term)
                .then_some((i, s.node.term()))
        };
        let done = (0..self.setup.n).find_map(leads).is_some_and(|(l, term)| {
            (0..self.setup.n).all(|i| {
                let s = &self.slots[i];
                let counted = s.status == Status::Up
                    && !matches!(s.node.role(), Role::Stopped | Role::Stopping)
                    && i != l
                    && !(h.stop && i == h.leader);
                !counted || (s.node.leader() == Some(l) && s.node.term() == term)
            })
        });
        self.handover.resolve(self.now, done)
    }

    fn tick_slack(&self) -> Time {
        if self.setup.host.tick > 0 {
            props::TICK_SLACK
        } else {
            0
        }
    }

    /// CheckQuorum seen from outside, after every event: see `props.rs`.
    fn quorum_props(&mut self) -> Result<(), Violation> {
        let cfg = self.setup.cfg;
        if !cfg.check_quorum {
            return Ok(());
        }
        let p = self.net.params;
        let clean = p.loss_ppm == 0 && p.reorder_ppm == 0;
        let bound =
            cfg.election_timeout_min_ms + cfg.heartbeat_ms + p.max_delay() + self.tick_slack();
        let n = self.setup.n;
        let majority = n / 2 + 1;
        for id in 0..n {
            let leading =
                self.slots[id].status == Status::Up && self.slots[id].node.role() == Role::Leader;
            if !leading && !self.props.watching(id) {
                continue; // nothing to check or to forget
            }
            let (mut reach, mut last_word) = (0, 0);
            if leading {
                reach = 1 + (0..n).filter(|&q| q != id && self.reaches(id, q)).count();
            }
            if leading && reach < majority {
                last_word = (0..n)
                    .filter(|&q| q != id && !self.reaches(id, q))
                    .map(|q| self.sent_at[q * n + id])
                    .max()
                    .unwrap_or(0);
            }
            let now = self.now;
            self.props
                .quorum(id, now, leading, reach, majority, clean, last_word, bound)?;
        }
        Ok(())
    }

    /// `b` runs, is not stopped, and both links between `a` and `b` are up.
    fn reaches(&self, a: NodeId, b: NodeId) -> bool {
        let s = &self.slots[b];
        s.status == Status::Up
            && s.node.role() != Role::Stopped
            && self.net.is_up(a, b)
            && self.net.is_up(b, a)
    }

    fn note_elected(&mut self, id: NodeId, out: &Output) {
        for ev in &out.events {
            match *ev {
                Event::Elected { term, .. } => self.last_elected = Some((self.now, id, term)),
                Event::Became {
                    role: Role::Candidate,
                    ..
                } => self.campaigns += 1,
                _ => {}
            }
        }
    }

    /// Schedules the node's next tick, superseding any earlier one.
    fn arm(&mut self, id: NodeId) {
        let slot = &mut self.slots[id];
        slot.gen += 1;
        slot.deadline = slot.node.deadline();
        slot.wake = slot.deadline.map(|at| self.setup.host.wake(self.now, at));
        if let Some(at) = slot.wake {
            let ev = Ev::Tick {
                node: id,
                gen: slot.gen,
            };
            self.schedule(at, ev);
        }
    }

    /// Sends a message that leaves `held` ms from now (after the step's write to disk).
    fn send(&mut self, from: NodeId, to: NodeId, msg: Msg, held: Time) {
        if !self.net.is_up(from, to) {
            return;
        }
        self.sent_at[from * self.setup.n + to] = self.now + held;
        for delay in self
            .net
            .transit(from, to, &mut self.rng)
            .into_iter()
            .flatten()
        {
            let sent = self.now + held;
            self.schedule(
                sent + delay,
                Ev::Deliver {
                    from,
                    to,
                    msg,
                    sent,
                },
            );
        }
    }

    // ---- faults and commands -----------------------------------------------------------------

    fn resolve(&mut self, who: Who) -> NodeId {
        match who {
            Who::Node(id) => id,
            Who::LeaderOr(id) => self.leader().unwrap_or(id),
        }
    }

    /// Starts fault episode `ep` now.
    pub fn begin(&mut self, ep: usize, fault: Fault) -> Result<(), Violation> {
        self.handover.disturbed();
        let undo = self.start_fault(fault)?;
        self.log_world(|| format!("begin #{ep} {fault:?} ({undo:?})"));
        if self.episodes.len() <= ep {
            self.episodes.resize(ep + 1, None);
        }
        self.episodes[ep] = Some(undo);
        Ok(())
    }

    /// Starts a fault now and returns its episode number, for [`World::end`].
    pub fn inject(&mut self, fault: Fault) -> Result<usize, Violation> {
        let ep = self.episodes.len();
        self.begin(ep, fault)?;
        Ok(ep)
    }

    fn start_fault(&mut self, fault: Fault) -> Result<Undo, Violation> {
        let n = self.setup.n;
        let undo = match fault {
            Fault::Split(mask) => Undo::Heal(self.net.cut(split_links(n, mask))),
            Fault::IsolateLeader => {
                let l = self.resolve(Who::LeaderOr(0));
                Undo::Heal(self.net.cut(split_links(n, 1 << l)))
            }
            Fault::LeaderMinority => {
                let minority = self.leader_minority();
                Undo::Heal(self.net.cut(split_links(n, minority)))
            }
            Fault::Mute(who) => {
                let a = self.resolve(who);
                Undo::Heal(
                    self.net
                        .cut((0..n).filter(|&b| b != a).map(|b| (a, b)).collect()),
                )
            }
            Fault::Deafen(who) => {
                let a = self.resolve(who);
                Undo::Heal(
                    self.net
                        .cut((0..n).filter(|&b| b != a).map(|b| (b, a)).collect()),
                )
            }
            Fault::OneWay(a, b) => Undo::Heal(self.net.cut(vec![(a, b)])),
            Fault::Chain(a, c) => Undo::Heal(self.net.cut(vec![(a, c), (c, a)])),
            Fault::Crash(who) => {
                let id = self.resolve(who);
                self.crash(id);
                Undo::Restart(id)
            }
            Fault::CrashAfterPersist(who) => {
                let id = self.resolve(who);
                self.slots[id].crash_on_persist = self.slots[id].status != Status::Crashed;
                Undo::Restart(id)
            }
            Fault::Pause(who) => {
                let id = self.resolve(who);
                if self.slots[id].status == Status::Up {
                    self.slots[id].status = Status::Paused;
                }
                Undo::Resume(id)
            }
            Fault::Stop(who, revive) => {
                let id = self.resolve(who);
                self.command(id, Command::Shutdown)?;
                Undo::Revive(id, revive)
            }
            Fault::PlannedStop(who) => {
                let id = self.resolve(who);
                self.stop(id)?;
                Undo::Start(id)
            }
            Fault::Lossy(ppm) => {
                let prev = self.net.params.loss_ppm;
                self.net.params.loss_ppm = ppm;
                Undo::Loss(prev)
            }
        };
        Ok(undo)
    }

    /// The leader (or node 0) and the next nodes after it, `n / 2 - 1` more: a minority.
    fn leader_minority(&mut self) -> u64 {
        let n = self.setup.n;
        let l = self.resolve(Who::LeaderOr(0));
        (0..n / 2)
            .map(|k| 1u64 << ((l + k) % n))
            .fold(0, |m, b| m | b)
    }

    /// Ends episode `ep` (once; later calls do nothing).
    pub fn end(&mut self, ep: usize) -> Result<(), Violation> {
        let Some(undo) = self.episodes.get_mut(ep).and_then(Option::take) else {
            return Ok(());
        };
        self.handover.disturbed();
        self.log_world(|| format!("end #{ep} ({undo:?})"));
        match undo {
            Undo::Heal(cut) => self.net.heal(cut),
            Undo::Restart(id) => {
                self.slots[id].crash_on_persist = false;
                self.restart(id)?;
            }
            Undo::Resume(id) => self.resume(id)?,
            Undo::Revive(id, cmd) => self.command(id, cmd)?,
            Undo::Start(id) if self.slots[id].planned => self.slots[id].restart_on_exit = true,
            Undo::Start(id) => self.restart(id)?,
            Undo::Loss(ppm) => self.net.params.loss_ppm = ppm,
        }
        Ok(())
    }

    /// Ends every episode, restarts, resumes and revives every node, and makes the network
    /// healthy: no loss, no reordering beyond jitter (duplicates stay; they are harmless).
    pub fn heal_all(&mut self) -> Result<(), Violation> {
        self.log_world(|| "heal all".into());
        self.handover.disturbed();
        for id in 0..self.setup.n {
            // A process still handing over ends first, then starts again.
            let slot = &mut self.slots[id];
            slot.restart_on_exit = slot.planned;
        }
        for ep in 0..self.episodes.len() {
            self.end(ep)?;
        }
        self.net.heal_all();
        self.net.params.loss_ppm = 0;
        self.net.params.reorder_ppm = 0;
        for id in 0..self.setup.n {
            self.slots[id].crash_on_persist = false;
            self.restart(id)?;
            self.resume(id)?;
            if self.slots[id].node.role() == Role::Stopped {
                self.command(id, Command::ConvertFollower)?;
            }
        }
        Ok(())
    }

    /// A controller request. A crashed or paused process cannot answer: the request is lost.
    pub fn command(&mut self, id: NodeId, cmd: Command) -> Result<(), Violation> {
        if self.slots[id].status != Status::Up {
            return Ok(());
        }
        self.handover.disturbed();
        self.step(id, Input::Command(cmd), || format!("command {cmd}"))
    }

    /// The process is asked to end (SIGTERM): [`Input::Stop`]. A crashed or paused process
    /// cannot hear it.
    pub fn stop(&mut self, id: NodeId) -> Result<(), Violation> {
        if self.slots[id].status != Status::Up {
            return Ok(());
        }
        self.handover.disturbed();
        self.step(id, Input::Stop, || "stop".into())
    }

    /// The planned stop is over and the process ends: memory and timers gone, disk kept, as
    /// after a crash. It starts again at once if the episode has ended meanwhile.
    fn exit(&mut self, id: NodeId) -> Result<(), Violation> {
        let slot = &mut self.slots[id];
        slot.status = Status::Crashed;
        slot.gen += 1;
        slot.inbox.clear();
        slot.crash_on_persist = false;
        slot.planned = false;
        let again = std::mem::take(&mut slot.restart_on_exit);
        self.props.forget(id);
        self.handover.forget(id);
        self.log(id, || "exit".into());
        if again {
            self.start_again(id)?;
        }
        Ok(())
    }

    /// The process dies: its memory and timers are gone, its disk stays.
    pub fn crash(&mut self, id: NodeId) {
        let slot = &mut self.slots[id];
        if slot.status == Status::Crashed {
            return;
        }
        slot.status = Status::Crashed;
        slot.gen += 1;
        self.props.forget(id);
        slot.inbox.clear();
        slot.crash_on_persist = false;
        slot.planned = false;
        slot.restart_on_exit = false;
        self.handover.forget(id);
        self.handover.disturbed();
        self.log(id, || "crash".into());
    }

    /// A crashed process starts again from its disk, with fresh randomness.
    pub fn restart(&mut self, id: NodeId) -> Result<(), Violation> {
        if self.slots[id].status != Status::Crashed {
            return Ok(());
        }
        self.handover.disturbed();
        self.start_again(id)
    }

    fn start_again(&mut self, id: NodeId) -> Result<(), Violation> {
        let seed = self.rng.next_u64();
        let node = Node::new(self.node_cfg(id), self.slots[id].disk, seed, self.now);
        let slot = &mut self.slots[id];
        slot.node = node;
        slot.status = Status::Up;
        slot.lives += 1;
        self.check
            .after_step(id, &slot.node, slot.disk, &[], false)?;
        let disk = slot.disk;
        self.log(id, || format!("restart from {disk:?}"));
        self.arm(id);
        Ok(())
    }

    /// A paused process runs again: it reads what waited in its buffer, then sees its timer.
    pub fn resume(&mut self, id: NodeId) -> Result<(), Violation> {
        if self.slots[id].status != Status::Paused {
            return Ok(());
        }
        self.handover.disturbed();
        self.slots[id].status = Status::Up;
        self.log(id, || "resume".into());
        let life = self.slots[id].lives;
        for (from, msg) in std::mem::take(&mut self.slots[id].inbox) {
            if self.slots[id].status != Status::Up || self.slots[id].lives != life {
                // It crashed while reading (after persisting), or its planned stop ended and
                // a new process started: the rest is gone.
                break;
            }
            let what = || format!("recv {msg} from n{from} (buffered)");
            self.step(id, Input::Receive { from, msg }, what)?;
        }
        // The timer that came due while paused fires now (after the buffer, as an event loop
        // that finds both the socket readable and the timer expired would do).
        self.arm(id);
        Ok(())
    }

    // ---- trace -------------------------------------------------------------------------------

    /// One trace line about a node; `what` is only formatted when tracing.
    fn log(&mut self, id: NodeId, what: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            let _ = writeln!(t, "{:>8} n{id} {}", self.now, what());
        }
    }

    /// One trace line about the world (faults, heals).
    fn log_world(&mut self, what: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            let _ = writeln!(t, "{:>8} -- {}", self.now, what());
        }
    }
}

/// A stopped node is deaf and silent: nothing but a controller command changes it.
fn stays_stopped(node: &Node, out: &Output) -> bool {
    node.role() == Role::Stopped
        && out.persist.is_none()
        && out.send.is_empty()
        && out.deadline.is_none()
}

/// Both directions of every link between the nodes in `mask` and the others.
pub fn split_links(n: usize, mask: u64) -> Vec<(NodeId, NodeId)> {
    let inside = |i: usize| mask & (1 << i) != 0;
    let mut links = Vec::new();
    for a in 0..n {
        for b in 0..n {
            if inside(a) != inside(b) {
                links.push((a, b));
            }
        }
    }
    links
}
