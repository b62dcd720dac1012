//! The election core: Raft's leader election as a sans-IO state machine.
//!
//! `Node::step(now, input)` is the whole interface. It never reads a clock, a socket or the OS's
//! randomness: time comes in as `now` (milliseconds on any monotonic scale), randomness from a
//! PRNG seeded once at construction, and everything the node wants done comes back in an
//! [`Output`]: state to persist (before sending anything), messages to send, events to log and
//! the next deadline at which the caller must step it again with [`Input::Tick`].
//!
//! Rules implemented, with the section of Ongaro's dissertation ("Consensus: Bridging Theory and
//! Practice", 2014) that states them:
//! - Figure 3.1: terms, one vote per term, step down on any higher term, majority wins.
//! - §3.4: election timeouts drawn at random from a range at every reset.
//! - §9.6 PreVote: a node whose timer fires asks for pre-votes in `term + 1` without raising its
//!   own term; only a majority of pre-votes starts a real election.
//! - §6.2 CheckQuorum: a leader that has not heard from a majority within the minimum election
//!   timeout steps down.
//! - §4.2.3 leader stickiness: a node that heard from a leader within the minimum election
//!   timeout ignores (pre-)vote requests, except forced ones (§3.10 TimeoutNow, which is what the
//!   controller's `TIMEOUT` becomes).

/// Milliseconds on the caller's monotonic clock.
pub type Time = u64;
/// A member of the cluster: its index in the configured peer list.
pub type NodeId = usize;

/// The largest cluster the vote bitsets can hold.
pub const MAX_CLUSTER: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
    /// After the controller's `SHUTDOWN`: silent, deaf to peers, no timers.
    Stopped,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Follower => "Follower",
            Role::PreCandidate => "PreCandidate",
            Role::Candidate => "Candidate",
            Role::Leader => "Leader",
            Role::Stopped => "Stopped",
        }
    }
}

/// What must survive a crash: Figure 3.1's `currentTerm` and `votedFor`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: u64,
    pub voted_for: Option<NodeId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Leader heartbeat (`APPEND_RPC`).
    Append,
    /// A follower's answer to a heartbeat; carries its term, so a stale leader learns it is stale.
    AppendReply,
    /// `forced` marks a leadership transfer: it overrides leader stickiness.
    VoteRequest {
        forced: bool,
    },
    /// Sent only when the vote is granted; a refusal is silence.
    VoteAck,
    /// "Would you vote for me in `term`?" The receiver's own state does not change.
    PreVoteRequest,
    PreVoteAck,
}

/// A message between nodes. For pre-votes `term` is the term the sender proposes to campaign in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg {
    pub term: u64,
    pub kind: Kind,
}

/// The controller's requests that change a node (`LEADER_INFO` is a read: see [`Node::leader`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    ConvertFollower,
    Timeout,
    Shutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// The deadline returned by the previous step has passed.
    Tick,
    Receive {
        from: NodeId,
        msg: Msg,
    },
    Command(Command),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub id: NodeId,
    pub cluster_size: usize,
    /// Inclusive range of election timeouts, in milliseconds.
    pub election_min: u64,
    pub election_max: u64,
    pub heartbeat: u64,
    pub pre_vote: bool,
    pub check_quorum: bool,
}

impl Config {
    /// Defaults of the paper's experiments: 150-300 ms timeouts, 50 ms heartbeats.
    pub fn new(id: NodeId, cluster_size: usize) -> Config {
        Config {
            id,
            cluster_size,
            election_min: 150,
            election_max: 300,
            heartbeat: 50,
            pre_vote: true,
            check_quorum: true,
        }
    }

    /// Why this configuration cannot run, if it cannot.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.cluster_size == 0 || self.cluster_size > MAX_CLUSTER {
            return Err("cluster size must be 1..=64");
        }
        if self.id >= self.cluster_size {
            return Err("own id outside the cluster");
        }
        if self.election_min == 0 || self.election_min > self.election_max {
            return Err("election timeout range must be min-max with 0 < min <= max");
        }
        if self.heartbeat == 0 || self.heartbeat >= self.election_min {
            return Err("heartbeat must be above 0 and below the minimum election timeout");
        }
        Ok(())
    }

    pub fn majority(&self) -> usize {
        self.cluster_size / 2 + 1
    }
}

/// Something worth a log line. The core decides what happened; the runtime decides how to say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Became {
        role: Role,
        term: u64,
        reason: &'static str,
    },
    Elected {
        term: u64,
        votes: usize,
    },
    Vote {
        candidate: NodeId,
        term: u64,
        pre: bool,
        granted: bool,
        reason: &'static str,
    },
    Ignored {
        from: NodeId,
        reason: &'static str,
    },
    /// The term moved on (always up), as the node became `role`.
    Term {
        from: u64,
        to: u64,
        role: Role,
    },
}

/// What one step asks of the caller, in this order: persist, then send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Write this durably before sending any of `send`.
    pub persist: Option<HardState>,
    pub send: Vec<(NodeId, Msg)>,
    pub events: Vec<Event>,
    /// Step again with `Input::Tick` at this time; `None` means no timer runs (stopped).
    pub deadline: Option<Time>,
}

/// A read-only picture of a node at one instant, for the controller's `STATUS` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub role: Role,
    pub term: u64,
    pub voted_for: Option<NodeId>,
    pub leader: Option<NodeId>,
    /// Milliseconds until the timer fires: the election timeout, or a leader's next heartbeat;
    /// `None` when stopped (no timer runs).
    pub timer_ms: Option<u64>,
    /// Milliseconds since this node last heard from its leader: 0 when it leads, `None` when it
    /// knows no leader.
    pub heard_ms: Option<u64>,
}

/// One Raft node's election state.
#[derive(Clone, Debug)]
pub struct Node {
    cfg: Config,
    hard: HardState,
    role: Role,
    leader: Option<NodeId>,
    /// When we last heard from `leader` (a follower's view; drives stickiness).
    leader_contact: Time,
    /// Bitset of nodes that granted the current (pre-)vote.
    votes: u64,
    /// Leader only: when each peer last answered a heartbeat.
    last_heard: [Time; MAX_CLUSTER],
    /// Election timer (follower, candidates) or next heartbeat (leader).
    timer: Time,
    rng: Rng,
    out: Output,
}

impl Node {
    /// A node starting (or restarting) from `hard`, as a follower with a fresh election timer.
    pub fn new(cfg: Config, hard: HardState, seed: u64, now: Time) -> Node {
        debug_assert!(cfg.validate().is_ok());
        let mut node = Node {
            cfg,
            hard,
            role: Role::Follower,
            leader: None,
            leader_contact: 0,
            votes: 0,
            last_heard: [0; MAX_CLUSTER],
            timer: now,
            rng: Rng::new(seed),
            out: Output::default(),
        };
        node.reset_election_timer(now);
        node
    }

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn term(&self) -> u64 {
        self.hard.term
    }
    pub fn hard_state(&self) -> HardState {
        self.hard
    }
    /// The leader this node knows of in its current term (itself when it leads).
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn deadline(&self) -> Option<Time> {
        (self.role != Role::Stopped).then_some(self.timer)
    }

    /// What the node is doing at `now`; changes nothing.
    pub fn status(&self, now: Time) -> Status {
        let heard_ms = match self.leader {
            Some(l) if l == self.cfg.id => Some(0),
            Some(_) => Some(now.saturating_sub(self.leader_contact)),
            None => None,
        };
        Status {
            role: self.role,
            term: self.hard.term,
            voted_for: self.hard.voted_for,
            leader: self.leader,
            timer_ms: self.deadline().map(|d| d.saturating_sub(now)),
            heard_ms,
        }
    }

    /// Advance the state machine by one input at time `now`.
    pub fn step(&mut self, now: Time, input: Input) -> Output {
        match input {
            Input::Tick => self.tick(now),
            Input::Receive { from, msg } => self.receive(now, from, msg),
            Input::Command(cmd) => self.command(now, cmd),
        }
        self.check_invariants();
        let mut out = std::mem::take(&mut self.out);
        out.deadline = self.deadline();
        out
    }

    // ---- timers ------------------------------------------------------------------------------

    fn tick(&mut self, now: Time) {
        if self.role == Role::Stopped || now < self.timer {
            return;
        }
        if self.role == Role::Leader {
            if self.cfg.check_quorum && !self.quorum_active(now) {
                self.become_follower(now, self.hard.term, None, "lost-quorum");
                return;
            }
            self.broadcast(Kind::Append, self.hard.term);
            // Keep the cadence: a tick that came late does not push every later heartbeat back.
            let next = self.timer + self.cfg.heartbeat;
            self.timer = if next > now {
                next
            } else {
                now + self.cfg.heartbeat
            };
        } else if self.cfg.pre_vote {
            self.start_pre_vote(now);
        } else {
            self.start_election(now, false, "election-timeout");
        }
    }

    fn reset_election_timer(&mut self, now: Time) {
        let span = self.cfg.election_max - self.cfg.election_min;
        self.timer = now + self.cfg.election_min + self.rng.below(span + 1);
    }

    /// §6.2: has a majority (counting ourselves) answered within the minimum election timeout?
    fn quorum_active(&self, now: Time) -> bool {
        let window = self.cfg.election_min;
        let heard = (0..self.cfg.cluster_size)
            .filter(|&p| p == self.cfg.id || now.saturating_sub(self.last_heard[p]) < window)
            .count();
        heard >= self.cfg.majority()
    }

    // ---- role changes ------------------------------------------------------------------------

    fn become_follower(&mut self, now: Time, term: u64, leader: Option<NodeId>, why: &'static str) {
        self.set_term(term, Role::Follower);
        let changed = self.role != Role::Follower;
        self.role = Role::Follower;
        self.leader = leader;
        self.leader_contact = now;
        self.votes = 0;
        self.reset_election_timer(now);
        if changed {
            self.event_became(why);
        }
    }

    fn start_pre_vote(&mut self, now: Time) {
        if self.at_last_term(now) {
            return;
        }
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes = 1 << self.cfg.id;
        self.reset_election_timer(now);
        self.event_became("election-timeout");
        self.broadcast(Kind::PreVoteRequest, self.hard.term + 1);
        if self.has_majority() {
            self.start_election(now, false, "pre-vote-won");
        }
    }

    fn start_election(&mut self, now: Time, forced: bool, why: &'static str) {
        if self.at_last_term(now) {
            return;
        }
        self.set_term(self.hard.term + 1, Role::Candidate);
        self.set_vote(self.cfg.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.votes = 1 << self.cfg.id;
        self.reset_election_timer(now);
        self.event_became(why);
        self.broadcast(Kind::VoteRequest { forced }, self.hard.term);
        if self.has_majority() {
            self.become_leader(now);
        }
    }

    /// No term follows `u64::MAX`, which only a forged message can bring (peers accept any term).
    /// There a node cannot campaign: it waits another timeout instead of wrapping to term 0 (or
    /// overflowing), and its vote in that term stays the one it gave.
    fn at_last_term(&mut self, now: Time) -> bool {
        if self.hard.term < u64::MAX {
            return false;
        }
        self.reset_election_timer(now);
        true
    }

    fn become_leader(&mut self, now: Time) {
        debug_assert_eq!(self.role, Role::Candidate);
        debug_assert_eq!(self.hard.voted_for, Some(self.cfg.id));
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.last_heard = [now; MAX_CLUSTER];
        let votes = self.votes.count_ones() as usize;
        self.out.events.push(Event::Elected {
            term: self.hard.term,
            votes,
        });
        self.broadcast(Kind::Append, self.hard.term);
        self.timer = now + self.cfg.heartbeat;
    }

    fn has_majority(&self) -> bool {
        self.votes.count_ones() as usize >= self.cfg.majority()
    }

    // ---- messages ----------------------------------------------------------------------------

    fn receive(&mut self, now: Time, from: NodeId, msg: Msg) {
        if self.role == Role::Stopped {
            return;
        }
        if from >= self.cfg.cluster_size || from == self.cfg.id {
            return self.ignore(from, "not-a-peer");
        }
        match msg.kind {
            Kind::PreVoteRequest => return self.on_pre_vote_request(now, from, msg.term),
            Kind::PreVoteAck => return self.on_pre_vote_ack(now, from, msg.term),
            Kind::VoteRequest { forced: false } if self.in_lease(now) => {
                return self.refuse(from, msg.term, false, "leader-lease");
            }
            _ => {}
        }
        if msg.term > self.hard.term {
            let leader = (msg.kind == Kind::Append).then_some(from);
            self.become_follower(now, msg.term, leader, "higher-term");
        }
        if msg.term < self.hard.term {
            // A stale leader learns our term from the reply and steps down (Figure 3.1).
            if msg.kind == Kind::Append {
                self.send(from, Kind::AppendReply, self.hard.term);
            }
            return self.ignore(from, "stale-term");
        }
        match msg.kind {
            Kind::Append => self.on_append(now, from),
            Kind::AppendReply => self.last_heard[from] = now,
            Kind::VoteRequest { .. } => self.on_vote_request(now, from),
            Kind::VoteAck => self.on_vote_ack(now, from),
            Kind::PreVoteRequest | Kind::PreVoteAck => {}
        }
    }

    /// §4.2.3: a node that heard from a live leader recently will not help depose it.
    fn in_lease(&self, now: Time) -> bool {
        if !self.cfg.check_quorum {
            return false; // without CheckQuorum a leader could hold its lease forever
        }
        match self.leader {
            Some(l) if l == self.cfg.id => true,
            Some(_) => now < self.leader_contact + self.cfg.election_min,
            None => false,
        }
    }

    fn on_append(&mut self, now: Time, from: NodeId) {
        if self.role == Role::Leader {
            // Two leaders in one term cannot happen; a forged or corrupted message can claim it.
            return self.ignore(from, "second-leader-claim");
        }
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(now, self.hard.term, Some(from), "heard-leader");
        }
        self.leader_contact = now;
        self.reset_election_timer(now);
        self.send(from, Kind::AppendReply, self.hard.term);
    }

    fn on_vote_request(&mut self, now: Time, from: NodeId) {
        match self.hard.voted_for {
            Some(v) if v != from => self.refuse(from, self.hard.term, false, "already-voted"),
            _ => {
                self.set_vote(from);
                self.reset_election_timer(now);
                self.grant(from, self.hard.term, false);
                self.send(from, Kind::VoteAck, self.hard.term);
            }
        }
    }

    fn on_vote_ack(&mut self, now: Time, from: NodeId) {
        if self.role == Role::Candidate {
            self.votes |= 1 << from;
            if self.has_majority() {
                self.become_leader(now);
            }
        }
    }

    /// §9.6: grant when the proposed term is ahead of ours and we are not following a live leader.
    fn on_pre_vote_request(&mut self, now: Time, from: NodeId, term: u64) {
        if self.in_lease(now) {
            return self.refuse(from, term, true, "leader-lease");
        }
        if term <= self.hard.term {
            return self.refuse(from, term, true, "stale-term");
        }
        self.grant(from, term, true);
        self.send(from, Kind::PreVoteAck, term);
    }

    fn on_pre_vote_ack(&mut self, now: Time, from: NodeId, term: u64) {
        if self.role == Role::PreCandidate && Some(term) == self.hard.term.checked_add(1) {
            self.votes |= 1 << from;
            if self.has_majority() {
                self.start_election(now, false, "pre-vote-won");
            }
        }
    }

    // ---- controller --------------------------------------------------------------------------

    fn command(&mut self, now: Time, cmd: Command) {
        match cmd {
            Command::Shutdown => {
                if self.role != Role::Stopped {
                    self.role = Role::Stopped;
                    self.leader = None;
                    self.votes = 0;
                    self.event_became("shutdown");
                }
            }
            Command::ConvertFollower => {
                let revived = self.role == Role::Stopped;
                let was_leader = self.role == Role::Leader;
                let leader = if was_leader || revived {
                    None
                } else {
                    self.leader
                };
                let why = if revived {
                    "revived"
                } else {
                    "convert-follower"
                };
                let contact = self.leader_contact;
                self.become_follower(now, self.hard.term, leader, why);
                self.leader_contact = contact; // being told is not hearing from the leader
                if was_leader {
                    // Give the others the first chance: wait one extra timeout range.
                    self.timer += self.cfg.election_max - self.cfg.election_min + 1;
                }
            }
            Command::Timeout => self.start_election(now, true, "timeout-command"),
        }
    }

    // ---- small helpers -----------------------------------------------------------------------

    /// Move to `term` (never down) on the way to becoming `role`.
    fn set_term(&mut self, term: u64, role: Role) {
        debug_assert!(term >= self.hard.term, "terms never decrease");
        if term > self.hard.term {
            self.out.events.push(Event::Term {
                from: self.hard.term,
                to: term,
                role,
            });
            self.hard = HardState {
                term,
                voted_for: None,
            };
            self.out.persist = Some(self.hard);
        }
    }

    fn set_vote(&mut self, id: NodeId) {
        debug_assert!(self.hard.voted_for.is_none() || self.hard.voted_for == Some(id));
        if self.hard.voted_for != Some(id) {
            self.hard.voted_for = Some(id);
            self.out.persist = Some(self.hard);
        }
    }

    fn broadcast(&mut self, kind: Kind, term: u64) {
        let me = self.cfg.id;
        for peer in (0..self.cfg.cluster_size).filter(|&p| p != me) {
            self.send(peer, kind, term);
        }
    }

    fn send(&mut self, to: NodeId, kind: Kind, term: u64) {
        self.out.send.push((to, Msg { term, kind }));
    }

    fn event_became(&mut self, reason: &'static str) {
        self.out.events.push(Event::Became {
            role: self.role,
            term: self.hard.term,
            reason,
        });
    }

    fn grant(&mut self, candidate: NodeId, term: u64, pre: bool) {
        self.vote_event(candidate, term, pre, true, "granted");
    }

    fn refuse(&mut self, candidate: NodeId, term: u64, pre: bool, reason: &'static str) {
        self.vote_event(candidate, term, pre, false, reason);
    }

    fn vote_event(
        &mut self,
        candidate: NodeId,
        term: u64,
        pre: bool,
        granted: bool,
        reason: &'static str,
    ) {
        self.out.events.push(Event::Vote {
            candidate,
            term,
            pre,
            granted,
            reason,
        });
    }

    fn ignore(&mut self, from: NodeId, reason: &'static str) {
        self.out.events.push(Event::Ignored { from, reason });
    }

    /// TigerBeetle style: the state machine checks itself after every step (debug builds).
    fn check_invariants(&self) {
        debug_assert!(self.votes.count_ones() as usize <= self.cfg.cluster_size);
        debug_assert!(self.role != Role::Leader || self.leader == Some(self.cfg.id));
        debug_assert!(self.role != Role::Leader || self.hard.voted_for == Some(self.cfg.id));
        debug_assert!(
            !matches!(self.role, Role::Candidate | Role::PreCandidate) || self.leader.is_none()
        );
    }
}

/// A small PRNG (SplitMix64): deterministic, seedable, good enough for timeouts.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n == 0`), without modulo bias worth mentioning for small `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// An index into something of length `n` (0 when `n == 0`).
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// One of `items`, which must not be empty.
    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.index(items.len())]
    }
}
