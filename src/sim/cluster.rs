//! The zero-delay cluster: real cores whose messages wait in one queue, in the order they were
//! sent, until the driver delivers them. The rule tests (`tests/raft_rules.rs`) and the scenario
//! files (`script.rs`) both drive it; the timed world with delays and faults is `world.rs`.
//!
//! Nothing happens by itself: a timer fires only in [`Cluster::tick`] or [`Cluster::run`], a
//! message arrives only in [`Cluster::deliver`], [`Cluster::stabilize`] or [`Cluster::run`].
//! The safety invariants of `check.rs` are checked after every step, as in the timed world.

use super::check::{Checker, Violation};
use super::Step;
use crate::election::{Command, Config, HardState, Input, Kind, Msg, Node, NodeId, Time};
use std::collections::VecDeque;
use std::fmt::Write;

/// A command that takes several steps, done one step at a time by [`Cluster::advance`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// One pass over the messages in flight when it began: those that match are delivered.
    Pass {
        from: Option<NodeId>,
        to: Option<NodeId>,
        pos: usize,
        left: usize,
    },
    /// Deliver until nothing is in flight; `loud`: write every delivery.
    Drain { loud: bool },
    /// Deliver, then fire timers due up to `until`; the clock ends at `until`.
    Run { until: Time },
}

pub struct Cluster {
    nodes: Vec<Node>,
    /// What each node persisted last (written at once: there is no disk time here).
    disks: Vec<HardState>,
    now: Time,
    /// Messages sent and not yet delivered: (from, to, message), oldest first.
    flight: VecDeque<(NodeId, NodeId, Msg)>,
    /// A cut node neither sends nor receives; its messages are lost when they would arrive.
    cut: Vec<bool>,
    check: Checker,
    pre_vote: bool,
    /// Every step is written to the text, not only those that log an event.
    pub verbose: bool,
    /// Nothing is written (a silent setup); wins over `verbose` and `loud`.
    pub mute: bool,
    /// When `Some`, every step is also kept here.
    pub record: Option<Vec<Step>>,
    text: String,
}

impl Cluster {
    /// `cfg.cluster_size` nodes booting at time 0 with empty disks; node `i` gets `cfg` with its
    /// own id and the PRNG seed `seed(i)`.
    pub fn new(cfg: Config, seed: impl Fn(NodeId) -> u64) -> Cluster {
        let n = cfg.cluster_size;
        let nodes = (0..n)
            .map(|id| Node::new(Config { id, ..cfg }, HardState::default(), seed(id), 0))
            .collect();
        Cluster {
            nodes,
            disks: vec![HardState::default(); n],
            now: 0,
            flight: VecDeque::new(),
            cut: vec![false; n],
            check: Checker::new(n),
            pre_vote: cfg.pre_vote,
            verbose: false,
            mute: false,
            record: None,
            text: String::new(),
        }
    }

    // ---- observation -------------------------------------------------------------------------

    pub fn now(&self) -> Time {
        self.now
    }
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    pub fn is_cut(&self, id: NodeId) -> bool {
        self.cut[id]
    }
    /// Messages in flight, oldest first: (from, to, message).
    pub fn in_flight(&self) -> impl Iterator<Item = &(NodeId, NodeId, Msg)> {
        self.flight.iter()
    }
    /// The safety checker, with its count of elections.
    pub fn checker(&self) -> &Checker {
        &self.check
    }

    /// Nodes that lead (in any term).
    pub fn leaders(&self) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|&id| self.nodes[id].role() == crate::election::Role::Leader)
            .collect()
    }

    /// The one leader every node that is not cut off agrees on, in one term, if there is one.
    pub fn agreed_leader(&self) -> Option<NodeId> {
        let mut connected = (0..self.nodes.len())
            .filter(|&id| !self.cut[id])
            .map(|id| &self.nodes[id]);
        let first = connected.next()?;
        let (leader, term) = (first.leader()?, first.term());
        connected
            .all(|n| n.leader() == Some(leader) && n.term() == term)
            .then_some(leader)
    }

    /// The earliest timer, lowest id first on a tie: (deadline, node).
    pub fn next_timer(&self) -> Option<(Time, NodeId)> {
        (0..self.nodes.len())
            .filter_map(|id| Some((self.nodes[id].deadline()?, id)))
            .min()
    }

    /// The lines written since the last call.
    pub fn take_text(&mut self) -> String {
        std::mem::take(&mut self.text)
    }

    // ---- driving -----------------------------------------------------------------------------

    /// Cuts a node off (both ways, messages already in flight too).
    pub fn isolate(&mut self, id: NodeId) {
        self.cut[id] = true;
    }
    /// Reconnects one node.
    pub fn reconnect(&mut self, id: NodeId) {
        self.cut[id] = false;
    }
    /// Reconnects every node.
    pub fn heal(&mut self) {
        self.cut.iter_mut().for_each(|c| *c = false);
    }

    /// Steps node `id`; writes the step's line if `loud`, verbose, or if it logged an event. Its
    /// messages join the end of the queue.
    pub fn step(&mut self, id: NodeId, input: Input, loud: bool) -> Result<(), Violation> {
        let now = self.now;
        let out = self.nodes[id].step(now, input);
        if input == Input::Tick && out.deadline.is_some_and(|d| d <= now) {
            return Err(format!(
                "n{id} ticked at {now} but rearmed at {:?}",
                out.deadline
            ));
        }
        if let Some(hard) = out.persist {
            self.check.persisted(id, self.disks[id], hard)?;
            self.disks[id] = hard;
        }
        let forced = match input {
            Input::Command(cmd) => cmd == Command::Timeout,
            Input::Receive { msg, .. } => msg.kind == Kind::TimeoutNow,
            Input::Tick | Input::Stop => false,
        };
        let node = &self.nodes[id];
        self.check.after_step(
            id,
            node,
            self.disks[id],
            &out.events,
            self.pre_vote && !forced,
        )?;
        for &(to, msg) in &out.send {
            self.check.sent(id, self.disks[id], to, msg)?;
        }
        self.flight
            .extend(out.send.iter().map(|&(to, msg)| (id, to, msg)));
        let shown = !self.mute && (loud || self.verbose || !out.events.is_empty());
        if shown || self.record.is_some() {
            let step = Step {
                at: now,
                node: id,
                input,
                output: out,
            };
            if shown {
                let _ = writeln!(self.text, "{step}");
            }
            if let Some(record) = &mut self.record {
                record.push(step);
            }
        }
        Ok(())
    }

    /// Node `id`'s timer fires: the clock moves to its deadline. No other timer may be due first.
    pub fn tick(&mut self, id: NodeId) -> Result<(), Violation> {
        let at = self.nodes[id]
            .deadline()
            .ok_or("a stopped node has no timer")?;
        if let Some((due, other)) = self.next_timer().filter(|&(due, _)| due < at) {
            return Err(format!("n{other}'s timer is due first, at {due}"));
        }
        self.now = self.now.max(at);
        self.step(id, Input::Tick, true)
    }

    /// A controller request, at the current time.
    pub fn command(&mut self, id: NodeId, cmd: Command) -> Result<(), Violation> {
        self.step(id, Input::Command(cmd), true)
    }

    /// One pass over what is in flight now: matching messages are delivered (or lost on a cut
    /// link), the others stay in flight in their order. Each delivery is written.
    pub fn deliver(&mut self, from: Option<NodeId>, to: Option<NodeId>) -> Result<(), Violation> {
        let mut job = self.pass(from, to);
        while self.advance(&mut job)? {}
        Ok(())
    }

    /// Delivers until nothing is in flight, writing every delivery.
    pub fn stabilize(&mut self) -> Result<(), Violation> {
        let mut job = Job::Drain { loud: true };
        while self.advance(&mut job)? {}
        Ok(())
    }

    /// Steps `id` with `input` and delivers everything that follows from it, writing only steps
    /// that log an event.
    pub fn settle(&mut self, id: NodeId, input: Input) -> Result<(), Violation> {
        self.step(id, input, false)?;
        let mut job = Job::Drain { loud: false };
        while self.advance(&mut job)? {}
        Ok(())
    }

    /// Time passes until `until`: messages arrive at once, timers fire when due (lowest id first
    /// on a tie). Only steps that log an event are written. The clock ends at `until`.
    pub fn run(&mut self, until: Time) -> Result<(), Violation> {
        let mut job = Job::Run { until };
        while self.advance(&mut job)? {}
        Ok(())
    }

    /// The pass of [`Cluster::deliver`], to be done step by step with [`Cluster::advance`].
    pub fn pass(&self, from: Option<NodeId>, to: Option<NodeId>) -> Job {
        Job::Pass {
            from,
            to,
            pos: 0,
            left: self.flight.len(),
        }
    }

    /// Does one step of `job`: one delivery (or loss), or one timer. False when the job had
    /// nothing left to do (it is over).
    pub fn advance(&mut self, job: &mut Job) -> Result<bool, Violation> {
        match job {
            Job::Pass {
                from,
                to,
                pos,
                left,
            } => {
                // The messages the pass has not looked at are at `pos..pos + left`: a delivery
                // removes its message there, and what it sends joins the end of the queue.
                let Some(&(src, dst, msg)) = self.flight.get(*pos).filter(|_| *left > 0) else {
                    return Ok(false);
                };
                *left -= 1;
                if from.is_none_or(|f| f == src) && to.is_none_or(|t| t == dst) {
                    self.flight.remove(*pos);
                    self.arrive(src, dst, msg, true)?;
                } else {
                    *pos += 1;
                }
                Ok(true)
            }
            Job::Drain { loud } => match self.flight.pop_front() {
                Some((from, to, msg)) => self.arrive(from, to, msg, *loud).map(|()| true),
                None => Ok(false),
            },
            Job::Run { until } => {
                if let Some((from, to, msg)) = self.flight.pop_front() {
                    return self.arrive(from, to, msg, false).map(|()| true);
                }
                match self.next_timer() {
                    Some((at, id)) if at <= *until => {
                        self.now = self.now.max(at);
                        self.step(id, Input::Tick, false).map(|()| true)
                    }
                    _ => {
                        self.now = self.now.max(*until);
                        Ok(false)
                    }
                }
            }
        }
    }

    fn arrive(&mut self, from: NodeId, to: NodeId, msg: Msg, loud: bool) -> Result<(), Violation> {
        if self.cut[from] || self.cut[to] {
            if !self.mute && (loud || self.verbose) {
                let _ = writeln!(self.text, "{:>5} n{to} lost {msg} from n{from}", self.now);
            }
            return Ok(());
        }
        self.step(to, Input::Receive { from, msg }, loud)
    }

    /// Every node's role, term, vote, leader and time to its timer, one line each.
    pub fn status(&mut self) {
        for (id, node) in self.nodes.iter().enumerate() {
            let name = |v: Option<NodeId>| v.map_or("none".to_string(), |v| format!("n{v}"));
            let timer = node.deadline().map_or("none".to_string(), |d| {
                format!("+{}", d.saturating_sub(self.now))
            });
            let cut = if self.cut[id] { " (cut)" } else { "" };
            let _ = writeln!(
                self.text,
                "      n{id} {:<12} t{} vote={} leader={} timer={timer}{cut}",
                node.role().as_str(),
                node.term(),
                name(node.hard_state().voted_for),
                name(node.leader()),
            );
        }
    }
}
