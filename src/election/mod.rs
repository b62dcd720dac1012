//! The election core: Raft's leader election as a sans-IO state machine.
//! Owns every election decision and each role's data; must never read a clock, a socket, a file
//! or the OS's randomness.
//!
//! `Node::step(now, input)` is the whole interface. Time comes in as `now` (milliseconds on any
//! monotonic scale), randomness from a PRNG seeded once at construction, and everything the node
//! wants done comes back in an [`Output`]: state to persist (before sending anything), messages to
//! send, events to log and the next deadline at which the caller must step it again with
//! [`Input::Tick`]. What one role needs (a follower's leader, a candidate's votes, a leader's
//! replies) lives inside that role's variant of [`State`], so a transition cannot leave it stale.
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
//! - §3.10 leadership transfer: a leader told `CONVERT_FOLLOWER` steps down and sends
//!   `TimeoutNow` to the follower it heard from last, which campaigns at once (forced).
//! - Departure from §9.6: granting a pre-vote holds the granter's own timeout back for one
//!   heartbeat interval, so the pre-candidate's real request does not meet a rival campaign.
//! - §3.10 on a planned stop ([`Input::Stop`]): a leader hands over as on `CONVERT_FOLLOWER`,
//!   then waits (stopping, never campaigning) until it hears a leader of a later term or a bound
//!   of one minimum election timeout passes; any other role stops at once.
use std::fmt;

pub mod event;
pub use event::{Cause, Disregard, Event, Field, Verdict};

/// Milliseconds on the caller's monotonic clock.
pub type Time = u64;
/// A member of the cluster: its index in the configured peer list.
pub type NodeId = usize;

/// The largest cluster the vote bitsets can hold.
pub const MAX_CLUSTER: usize = 64;
const _: () = assert!(
    MAX_CLUSTER <= Votes::BITS,
    "a vote bitset needs a bit per member"
);
/// The longest election timeout accepted: a minute is already far beyond any useful setting.
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// Which role a node is in (the role's data is private to the node: see [`Node::leader`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
    /// A leader asked to stop ([`Input::Stop`]), waiting for its successor to take over.
    Stopping,
    /// After the controller's `SHUTDOWN`, or at the end of a planned stop: silent, deaf to
    /// peers, no timers.
    Stopped,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Follower => "Follower",
            Role::PreCandidate => "PreCandidate",
            Role::Candidate => "Candidate",
            Role::Leader => "Leader",
            Role::Stopping => "Stopping",
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
    /// §3.10 TimeoutNow: a leader stepping down asks its chosen successor to campaign at once.
    TimeoutNow,
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
    /// The process is asked to end (SIGTERM, SIGINT). A leader hands leadership over first; the
    /// caller may end the process once the node is [`Role::Stopped`].
    Stop,
}

// ---- configuration ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub id: NodeId,
    pub cluster_size: usize,
    /// Inclusive range from which every election timeout is drawn.
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_ms: u64,
    pub pre_vote: bool,
    pub check_quorum: bool,
}

/// Why a [`Config`] cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    ClusterSize,
    IdOutsideCluster,
    ElectionTimeout,
    Heartbeat,
}

impl ConfigError {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigError::ClusterSize => "cluster size must be 1..=64",
            ConfigError::IdOutsideCluster => "own id outside the cluster",
            ConfigError::ElectionTimeout => {
                "election timeout range must be min-max in ms with 0 < min <= max <= 60000"
            }
            ConfigError::Heartbeat => {
                "heartbeat must be a number of ms above 0 and below the minimum election timeout"
            }
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const _: () = assert!(
    MAX_CLUSTER == 64 && MAX_TIMEOUT_MS == 60_000,
    "update the texts above"
);

impl Config {
    /// Defaults of the paper's experiments: 150-300 ms timeouts, 50 ms heartbeats.
    pub fn new(id: NodeId, cluster_size: usize) -> Config {
        Config {
            id,
            cluster_size,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_ms: 50,
            pre_vote: true,
            check_quorum: true,
        }
    }

    /// Every rule a runnable configuration obeys, in one place.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_cluster_size(self.cluster_size)?;
        if self.id >= self.cluster_size {
            return Err(ConfigError::IdOutsideCluster);
        }
        let (min, max) = (self.election_timeout_min_ms, self.election_timeout_max_ms);
        if min == 0 || min > max || max > MAX_TIMEOUT_MS {
            return Err(ConfigError::ElectionTimeout);
        }
        if self.heartbeat_ms == 0 || self.heartbeat_ms >= min {
            return Err(ConfigError::Heartbeat);
        }
        Ok(())
    }

    pub fn majority(&self) -> usize {
        self.cluster_size / 2 + 1
    }
}

/// The cluster-size rule alone, for callers that learn the size before the rest.
pub fn check_cluster_size(n: usize) -> Result<(), ConfigError> {
    match n {
        1..=MAX_CLUSTER => Ok(()),
        _ => Err(ConfigError::ClusterSize),
    }
}

// ---- votes -----------------------------------------------------------------------------------

/// Where a (pre-)vote stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tally {
    /// A majority granted.
    Won,
    /// So many refused that a majority can no longer grant.
    Lost,
    Pending,
}

/// The outcome of a count of `granted` and `refused` among `cluster_size` voters.
pub fn tally(granted: usize, refused: usize, cluster_size: usize) -> Tally {
    assert!(granted <= cluster_size);
    assert!(refused <= cluster_size);
    assert!(granted + refused <= cluster_size, "one answer per voter");
    let majority = cluster_size / 2 + 1;
    if granted >= majority {
        Tally::Won
    } else if refused > cluster_size - majority {
        Tally::Lost
    } else {
        Tally::Pending
    }
}

/// Who granted and who refused one (pre-)vote, one bit per member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Votes {
    granted: u64,
    refused: u64,
}

impl Votes {
    const BITS: usize = u64::BITS as usize;

    fn own(id: NodeId) -> Votes {
        Votes {
            granted: 1 << id,
            refused: 0,
        }
    }

    fn grant(&mut self, id: NodeId) {
        self.granted |= 1 << id;
        self.refused &= !(1 << id);
    }

    fn refuse(&mut self, id: NodeId) {
        if self.granted & (1 << id) == 0 {
            self.refused |= 1 << id;
        }
    }

    fn granted(&self) -> usize {
        self.granted.count_ones() as usize
    }

    fn tally(&self, cluster_size: usize) -> Tally {
        assert_eq!(
            self.granted & self.refused,
            0,
            "a voter both granted and refused"
        );
        tally(
            self.granted(),
            self.refused.count_ones() as usize,
            cluster_size,
        )
    }
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

// ---- the node --------------------------------------------------------------------------------

/// A follower's leader, and when it last heard from it (this drives stickiness).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Contact {
    leader: NodeId,
    at: Time,
}

/// A pre-vote or vote under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Campaign {
    votes: Votes,
    /// When this run of campaigning began: its first pre-vote or vote since it last followed.
    since: Time,
}

/// A role with the data only that role has.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Follower {
        leader: Option<Contact>,
    },
    PreCandidate(Campaign),
    Candidate(Campaign),
    /// `last_heard[p]`: when member `p` last answered a heartbeat (§6.2), or the election for
    /// those that have not yet; `answered`: one bit per member that has answered in this term.
    Leader {
        last_heard: Box<[Time]>,
        answered: u64,
    },
    Stopping(Handover),
    Stopped,
}

/// A planned stop under way: who was asked to take over, when, and in which term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Handover {
    successor: NodeId,
    since: Time,
    term: u64,
}

impl State {
    fn role(&self) -> Role {
        match self {
            State::Follower { .. } => Role::Follower,
            State::PreCandidate(_) => Role::PreCandidate,
            State::Candidate(_) => Role::Candidate,
            State::Leader { .. } => Role::Leader,
            State::Stopping(_) => Role::Stopping,
            State::Stopped => Role::Stopped,
        }
    }
}

/// One Raft node's election state.
#[derive(Clone, Debug)]
pub struct Node {
    cfg: Config,
    hard: HardState,
    state: State,
    /// Election timer (follower, candidates) or next heartbeat (leader).
    timer: Time,
    /// Until then a timeout starts no campaign: we granted a pre-vote and the real request of
    /// that pre-candidate is on its way (see `on_pre_vote_request`).
    hold_until: Time,
    rng: Rng,
    out: Output,
}

impl Node {
    /// A node starting (or restarting) from `hard`, as a follower with a fresh election timer.
    pub fn new(cfg: Config, hard: HardState, seed: u64, now: Time) -> Node {
        assert!(cfg.validate().is_ok());
        let mut node = Node {
            cfg,
            hard,
            state: State::Follower { leader: None },
            timer: now,
            hold_until: 0,
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
        self.state.role()
    }
    pub fn term(&self) -> u64 {
        self.hard.term
    }
    pub fn hard_state(&self) -> HardState {
        self.hard
    }
    /// The leader this node knows of in its current term (itself when it leads).
    pub fn leader(&self) -> Option<NodeId> {
        match self.state {
            State::Follower { leader } => leader.map(|c| c.leader),
            State::Leader { .. } => Some(self.cfg.id),
            _ => None,
        }
    }
    pub fn deadline(&self) -> Option<Time> {
        (self.state != State::Stopped).then_some(self.timer)
    }

    /// What the node is doing at `now`; changes nothing.
    pub fn status(&self, now: Time) -> Status {
        let heard_ms = match self.state {
            State::Leader { .. } => Some(0),
            State::Follower {
                leader: Some(contact),
            } => Some(now.saturating_sub(contact.at)),
            _ => None,
        };
        Status {
            role: self.state.role(),
            term: self.hard.term,
            voted_for: self.hard.voted_for,
            leader: self.leader(),
            timer_ms: self.deadline().map(|d| d.saturating_sub(now)),
            heard_ms,
        }
    }

    /// Advance the state machine by one input at time `now`.
    pub fn step(&mut self, now: Time, input: Input) -> Output {
        let (leader_before, term_before) = (self.leader(), self.hard.term);
        let was_stopped = self.state == State::Stopped;
        match input {
            Input::Tick => self.tick(now),
            Input::Receive { from, msg } => self.receive(now, from, msg),
            Input::Command(cmd) => self.command(now, cmd),
            Input::Stop => self.stop(now),
        }
        let leader = self.leader();
        if let Some(l) = leader.filter(|&l| l != self.cfg.id && leader != leader_before) {
            self.out.events.push(Event::Leader { leader: l });
        }
        assert!(self.hard.term >= term_before, "terms never decrease");
        if was_stopped && matches!(input, Input::Tick | Input::Receive { .. }) {
            // A stopped node is deaf and silent: only the controller wakes it.
            assert_eq!(self.state, State::Stopped);
            assert!(self.out.send.is_empty());
            assert!(self.out.persist.is_none());
        }
        self.check_invariants();
        let mut out = std::mem::take(&mut self.out);
        out.deadline = self.deadline();
        out
    }

    // ---- timers ------------------------------------------------------------------------------

    fn tick(&mut self, now: Time) {
        if self.state == State::Stopped || now < self.timer {
            return;
        }
        if let State::Stopping(h) = self.state {
            return self.handover_tick(now, h);
        }
        if let State::Leader { last_heard, .. } = &self.state {
            if self.cfg.check_quorum && !self.quorum_active(last_heard, now) {
                return self.become_follower(now, self.hard.term, None, Cause::LostQuorum);
            }
            self.broadcast(Kind::Append, self.hard.term);
            // Keep the cadence: a tick that came late does not push every later heartbeat back.
            let next = self.timer + self.cfg.heartbeat_ms;
            self.timer = if next > now {
                next
            } else {
                now + self.cfg.heartbeat_ms
            };
        } else if now < self.hold_until {
            self.timer = self.hold_until;
        } else if self.cfg.pre_vote {
            self.start_pre_vote(now);
        } else {
            self.start_election(now, false, Cause::ElectionTimeout);
        }
    }

    fn reset_election_timer(&mut self, now: Time) {
        if self.role() == Role::Stopping {
            return; // its one timer is the handover's
        }
        let (min, max) = (
            self.cfg.election_timeout_min_ms,
            self.cfg.election_timeout_max_ms,
        );
        self.timer = now + min + self.rng.below(max - min + 1);
    }

    /// §6.2: has a majority (counting ourselves) answered within the minimum election timeout?
    fn quorum_active(&self, last_heard: &[Time], now: Time) -> bool {
        let window = self.cfg.election_timeout_min_ms;
        let heard = (0..self.cfg.cluster_size)
            .filter(|&p| p == self.cfg.id || now.saturating_sub(last_heard[p]) < window)
            .count();
        heard >= self.cfg.majority()
    }

    // ---- role changes ------------------------------------------------------------------------

    fn become_follower(&mut self, now: Time, term: u64, leader: Option<Contact>, why: Cause) {
        self.set_term(term, Role::Follower);
        let changed = self.role() != Role::Follower;
        self.state = State::Follower { leader };
        self.reset_election_timer(now);
        if changed {
            self.event_became(why);
        }
    }

    /// When the current run of campaigning began, or `now` if this starts one.
    fn campaign_since(&self, now: Time) -> Time {
        match self.state {
            State::PreCandidate(c) | State::Candidate(c) => c.since,
            _ => now,
        }
    }

    fn start_pre_vote(&mut self, now: Time) {
        if self.at_last_term(now) {
            return;
        }
        let since = self.campaign_since(now);
        self.state = State::PreCandidate(Campaign {
            votes: Votes::own(self.cfg.id),
            since,
        });
        self.reset_election_timer(now);
        self.event_became(Cause::ElectionTimeout);
        self.broadcast(Kind::PreVoteRequest, self.hard.term + 1);
        self.count_votes(now);
    }

    fn start_election(&mut self, now: Time, forced: bool, why: Cause) {
        if self.at_last_term(now) {
            return;
        }
        let since = self.campaign_since(now);
        self.set_term(self.hard.term + 1, Role::Candidate);
        self.set_vote(self.cfg.id);
        self.state = State::Candidate(Campaign {
            votes: Votes::own(self.cfg.id),
            since,
        });
        self.reset_election_timer(now);
        self.event_became(why);
        self.broadcast(Kind::VoteRequest { forced }, self.hard.term);
        self.count_votes(now);
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

    /// Acts on the current campaign's tally: a won pre-vote starts the election, a won vote
    /// leads; a lost one is reported once and then waits for the timer, as a pending one does.
    fn count_votes(&mut self, now: Time) {
        let (State::PreCandidate(c) | State::Candidate(c)) = self.state else {
            return;
        };
        match (c.votes.tally(self.cfg.cluster_size), self.role()) {
            (Tally::Won, Role::PreCandidate) => {
                self.start_election(now, false, Cause::PreVoteWon);
            }
            (Tally::Won, _) => self.become_leader(now, c),
            (Tally::Lost | Tally::Pending, _) => {}
        }
    }

    fn become_leader(&mut self, now: Time, campaign: Campaign) {
        assert_eq!(self.role(), Role::Candidate);
        assert_eq!(self.hard.voted_for, Some(self.cfg.id));
        assert!(
            campaign.votes.granted() >= self.cfg.majority(),
            "a leader has a majority"
        );
        self.state = State::Leader {
            last_heard: vec![now; self.cfg.cluster_size].into_boxed_slice(),
            answered: 0,
        };
        self.out.events.push(Event::Elected {
            term: self.hard.term,
            votes: campaign.votes.granted(),
            of: self.cfg.cluster_size,
            after_ms: now.saturating_sub(campaign.since),
        });
        self.broadcast(Kind::Append, self.hard.term);
        self.timer = now + self.cfg.heartbeat_ms;
    }

    // ---- messages ----------------------------------------------------------------------------

    fn receive(&mut self, now: Time, from: NodeId, msg: Msg) {
        if self.state == State::Stopped {
            return;
        }
        if from >= self.cfg.cluster_size || from == self.cfg.id {
            return self.ignore(from, Disregard::NotAPeer);
        }
        match msg.kind {
            Kind::PreVoteRequest => return self.on_pre_vote_request(now, from, msg.term),
            Kind::PreVoteAck => return self.on_pre_vote_ack(now, from, msg.term),
            Kind::VoteRequest { forced: false } if self.in_lease(now) => {
                return self.answer(from, msg.term, false, Verdict::LeaderLease);
            }
            _ => {}
        }
        if msg.term > self.hard.term && self.role() == Role::Stopping {
            self.set_term(msg.term, Role::Stopping);
        } else if msg.term > self.hard.term {
            let leader = (msg.kind == Kind::Append).then_some(Contact {
                leader: from,
                at: now,
            });
            self.become_follower(now, msg.term, leader, Cause::HigherTerm);
        }
        if msg.term < self.hard.term {
            // A stale leader learns our term from the reply and steps down (Figure 3.1).
            if msg.kind == Kind::Append {
                self.send(from, Kind::AppendReply, self.hard.term);
            }
            return self.ignore(from, Disregard::StaleTerm);
        }
        if let State::Stopping(h) = self.state {
            return self.receive_stopping(now, from, msg.kind, h);
        }
        match msg.kind {
            Kind::Append => self.on_append(now, from),
            Kind::AppendReply => self.on_append_reply(now, from),
            Kind::VoteRequest { .. } => self.on_vote_request(now, from),
            Kind::VoteAck => self.on_vote_ack(now, from),
            Kind::TimeoutNow => self.on_timeout_now(now, from),
            Kind::PreVoteRequest | Kind::PreVoteAck => {}
        }
    }

    /// §4.2.3: a node that heard from a live leader recently will not help depose it.
    fn in_lease(&self, now: Time) -> bool {
        if !self.cfg.check_quorum {
            return false; // without CheckQuorum a leader could hold its lease forever
        }
        match self.state {
            State::Leader { .. } => true,
            State::Follower {
                leader: Some(Contact { at, .. }),
            } => now < at + self.cfg.election_timeout_min_ms,
            _ => false,
        }
    }

    fn on_append(&mut self, now: Time, from: NodeId) {
        if self.role() == Role::Leader {
            return self.ignore(from, Disregard::SecondLeaderClaim);
        }
        let contact = Some(Contact {
            leader: from,
            at: now,
        });
        match self.state {
            State::Follower { leader: Some(c) } if c.leader == from => {
                self.state = State::Follower { leader: contact };
            }
            _ => self.become_follower(now, self.hard.term, contact, Cause::HeardLeader),
        }
        self.reset_election_timer(now);
        self.send(from, Kind::AppendReply, self.hard.term);
    }

    fn on_append_reply(&mut self, now: Time, from: NodeId) {
        if let State::Leader {
            last_heard,
            answered,
        } = &mut self.state
        {
            last_heard[from] = now;
            *answered |= 1 << from;
        }
    }

    fn on_vote_request(&mut self, now: Time, from: NodeId) {
        match self.hard.voted_for {
            Some(v) if v != from => {
                self.answer(from, self.hard.term, false, Verdict::AlreadyVoted);
                // A rival candidate of our term voted for itself: it will not vote for us.
                self.record_refusal(from);
            }
            _ => {
                self.set_vote(from);
                self.reset_election_timer(now);
                self.answer(from, self.hard.term, false, Verdict::Granted);
                self.send(from, Kind::VoteAck, self.hard.term);
            }
        }
    }

    fn record_refusal(&mut self, from: NodeId) {
        let State::Candidate(c) = &mut self.state else {
            return;
        };
        let before = c.votes.tally(self.cfg.cluster_size);
        c.votes.refuse(from);
        let refused = c.votes.refused.count_ones() as usize;
        if before != Tally::Lost && c.votes.tally(self.cfg.cluster_size) == Tally::Lost {
            let term = self.hard.term;
            self.out.events.push(Event::Lost { term, refused });
        }
    }

    fn on_vote_ack(&mut self, now: Time, from: NodeId) {
        if let State::Candidate(c) = &mut self.state {
            c.votes.grant(from);
            self.count_votes(now);
        }
    }

    /// §9.6: grant when the proposed term is ahead of ours and we are not following a live leader.
    fn on_pre_vote_request(&mut self, now: Time, from: NodeId, term: u64) {
        if self.in_lease(now) {
            return self.answer(from, term, true, Verdict::LeaderLease);
        }
        if term <= self.hard.term {
            return self.answer(from, term, true, Verdict::StaleTerm);
        }
        self.answer(from, term, true, Verdict::Granted);
        self.send(from, Kind::PreVoteAck, term);
        // Departs from §9.6, where a pre-vote changes nothing at the granter: for one heartbeat
        // interval (a bound on the broadcast time) our own timeout waits, so that the real
        // request this pre-candidate sends once it has a majority finds us still a voter, not a
        // rival that timed out while that request was on disk or on the wire.
        self.hold_until = now + self.cfg.heartbeat_ms;
    }

    /// §3.10: "This request has the same effect as the target server's election timer firing":
    /// a forced election, as the controller's `TIMEOUT` starts. Only a leader of our term (or a
    /// later one) sends it; a leader never obeys one.
    fn on_timeout_now(&mut self, now: Time, from: NodeId) {
        if self.role() == Role::Leader {
            return self.ignore(from, Disregard::SecondLeaderClaim);
        }
        self.start_election(now, true, Cause::LeadershipTransfer);
    }

    fn on_pre_vote_ack(&mut self, now: Time, from: NodeId, term: u64) {
        let proposed = self.hard.term.checked_add(1);
        if let State::PreCandidate(c) = &mut self.state {
            if Some(term) == proposed {
                c.votes.grant(from);
                self.count_votes(now);
            }
        }
    }

    // ---- controller --------------------------------------------------------------------------

    /// A stopping node is on its way out: `SHUTDOWN` ends the stop at once, the other
    /// commands change nothing.
    fn command(&mut self, now: Time, cmd: Command) {
        match (cmd, self.role()) {
            (Command::Shutdown, Role::Stopped) => {}
            (Command::Shutdown, _) => self.halt(Cause::Shutdown),
            (_, Role::Stopping) => {}
            (Command::ConvertFollower, _) => self.convert_follower(now),
            (Command::Timeout, _) => self.start_election(now, true, Cause::TimeoutCommand),
        }
    }

    /// A leader hands leadership over; a follower changes nothing, neither its lease nor its
    /// timer (being told is not hearing from the leader, and repeated commands must not hold
    /// failover off); a candidate follows no one; a stopped node comes back.
    fn convert_follower(&mut self, now: Time) {
        match self.state {
            State::Leader { .. } => self.hand_over(now),
            State::Follower { .. } | State::Stopping(_) => {}
            State::Stopped => self.become_follower(now, self.hard.term, None, Cause::Revived),
            State::PreCandidate(_) | State::Candidate(_) => {
                self.become_follower(now, self.hard.term, None, Cause::ConvertFollower)
            }
        }
    }

    /// §3.10: the leader steps down, tells its successor to campaign at once, and waits one
    /// extra timeout range itself, so that if the successor does not win, another node gets the
    /// first chance in normal elections.
    fn hand_over(&mut self, now: Time) {
        let target = self.transfer_target(now);
        self.become_follower(now, self.hard.term, None, Cause::ConvertFollower);
        let (min, max) = (
            self.cfg.election_timeout_min_ms,
            self.cfg.election_timeout_max_ms,
        );
        self.timer += max - min + 1;
        if let Some(t) = target {
            self.send(t, Kind::TimeoutNow, self.hard.term);
        }
    }

    /// The successor: the follower that answered last, so the likeliest to be up and connected
    /// (ties to the lower id); `None` when none answered within the minimum election timeout.
    /// A member that has not answered in this term at all is never named, however recent the
    /// election (it may be down since before it).
    fn transfer_target(&self, now: Time) -> Option<NodeId> {
        let State::Leader {
            last_heard,
            answered,
        } = &self.state
        else {
            return None;
        };
        let (me, window) = (self.cfg.id, self.cfg.election_timeout_min_ms);
        (0..self.cfg.cluster_size)
            .filter(|&p| p != me && answered & (1 << p) != 0)
            .filter(|&p| now.saturating_sub(last_heard[p]) < window)
            .max_by_key(|&p| (last_heard[p], std::cmp::Reverse(p)))
    }

    // ---- planned stop ------------------------------------------------------------------------

    /// [`Input::Stop`]: a leader hands over to the follower it heard from last and waits for it
    /// (§3.10, as on `CONVERT_FOLLOWER`, but it will not run for leader again); a leader that
    /// heard from no follower lately, and every other role, stops at once: a follower's or a
    /// candidate's absence changes nothing the others' timers do not already cover.
    fn stop(&mut self, now: Time) {
        match self.state {
            State::Stopping(_) | State::Stopped => {}
            State::Leader { .. } => match self.transfer_target(now) {
                Some(successor) => {
                    let term = self.hard.term;
                    self.state = State::Stopping(Handover {
                        successor,
                        since: now,
                        term,
                    });
                    self.timer = now + self.cfg.heartbeat_ms;
                    self.event_became(Cause::PlannedStop);
                    self.send(successor, Kind::TimeoutNow, term);
                }
                None => self.halt(Cause::PlannedStop),
            },
            _ => self.halt(Cause::PlannedStop),
        }
    }

    /// Every heartbeat interval of a stop the successor is asked again while no later term is
    /// known (a lost `TIMEOUT_NOW` costs one interval, not an election timeout); after one
    /// minimum election timeout the node stops whatever happened, which is when the followers'
    /// own timers would have started an election anyway.
    fn handover_tick(&mut self, now: Time, h: Handover) {
        let bound = h.since + self.cfg.election_timeout_min_ms;
        if now >= bound {
            return self.finish_stop(now, None, h);
        }
        if self.hard.term == h.term {
            self.send(h.successor, Kind::TimeoutNow, h.term);
        }
        self.timer = (self.timer + self.cfg.heartbeat_ms).min(bound);
    }

    /// A message of the current term to a stopping node, which keeps its word (it adopted any
    /// later term, and votes once per term, which a successor in a small cluster may need) but
    /// never campaigns, follows or answers a heartbeat: a leader of a later term ends the stop.
    fn receive_stopping(&mut self, now: Time, from: NodeId, kind: Kind, h: Handover) {
        match kind {
            Kind::Append if self.hard.term > h.term => self.finish_stop(now, Some(from), h),
            Kind::Append => self.ignore(from, Disregard::SecondLeaderClaim),
            Kind::VoteRequest { .. } => self.on_vote_request(now, from),
            _ => {}
        }
    }

    fn finish_stop(&mut self, now: Time, leader: Option<NodeId>, h: Handover) {
        self.out.events.push(Event::HandedOver {
            to: leader,
            after_ms: now - h.since,
        });
        self.halt(Cause::PlannedStop);
    }

    fn halt(&mut self, cause: Cause) {
        self.state = State::Stopped;
        self.event_became(cause);
    }

    // ---- small helpers -----------------------------------------------------------------------

    /// Move to `term` (never down) on the way to becoming `role`.
    fn set_term(&mut self, term: u64, role: Role) {
        assert!(term >= self.hard.term, "terms never decrease");
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
        assert!(self.hard.voted_for.is_none() || self.hard.voted_for == Some(id));
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
        assert!(to < self.cfg.cluster_size);
        assert_ne!(to, self.cfg.id, "a node never sends to itself");
        self.out.send.push((to, Msg { term, kind }));
    }

    fn event_became(&mut self, cause: Cause) {
        self.out.events.push(Event::Became {
            role: self.role(),
            term: self.hard.term,
            cause,
        });
    }

    fn answer(&mut self, candidate: NodeId, term: u64, pre: bool, verdict: Verdict) {
        self.out.events.push(Event::Vote {
            candidate,
            term,
            pre,
            verdict,
        });
    }

    fn ignore(&mut self, from: NodeId, reason: Disregard) {
        self.out.events.push(Event::Ignored { from, reason });
    }

    /// What the types cannot say, checked after every step, in the shipped binary too (an
    /// election node is all control plane: a broken invariant must stop it, not spread). A
    /// candidate and a leader have voted for themselves; a follower never follows itself.
    fn check_invariants(&self) {
        let me = self.cfg.id;
        match &self.state {
            State::Leader { .. } | State::Candidate(_) => {
                assert_eq!(self.hard.voted_for, Some(me));
            }
            State::Follower { leader: Some(c) } => {
                assert_ne!(c.leader, me, "a follower never follows itself");
                assert!(c.leader < self.cfg.cluster_size);
            }
            State::Stopping(h) => {
                assert_ne!(h.successor, me, "a node never hands over to itself");
                assert!(h.term <= self.hard.term);
                assert!(self.leader().is_none());
            }
            State::Follower { leader: None } | State::PreCandidate(_) | State::Stopped => {
                assert!(self.leader().is_none());
            }
        }
        if let State::PreCandidate(c) | State::Candidate(c) = &self.state {
            let members = u64::MAX >> (Votes::BITS - self.cfg.cluster_size);
            assert!(
                c.votes.granted & (1 << me) != 0,
                "a candidate votes for itself"
            );
            assert_eq!(
                c.votes.granted & !members,
                0,
                "a vote from outside the cluster"
            );
            assert_eq!(
                c.votes.refused & !members,
                0,
                "a refusal from outside the cluster"
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_is_won_lost_or_pending() {
        use Tally::*;
        // (granted, refused, cluster size) -> outcome
        let table = [
            ((1, 0, 1), Won),
            ((1, 0, 2), Pending),
            ((2, 0, 2), Won),
            ((1, 1, 2), Lost),
            ((1, 0, 3), Pending),
            ((2, 0, 3), Won),
            ((1, 1, 3), Pending),
            ((1, 2, 3), Lost),
            ((2, 1, 3), Won),
            ((2, 1, 4), Pending),
            ((1, 2, 4), Lost),
            ((3, 1, 4), Won),
            ((2, 2, 5), Pending),
            ((2, 3, 5), Lost),
            ((3, 2, 5), Won),
            ((32, 32, 64), Lost),
            ((33, 0, 64), Won),
            ((32, 31, 64), Pending),
        ];
        for ((granted, refused, n), want) in table {
            assert_eq!(
                tally(granted, refused, n),
                want,
                "{granted}+{refused} of {n}"
            );
        }
    }

    #[test]
    fn a_vote_counts_once_and_a_grant_overrides_a_refusal() {
        let mut v = Votes::own(0);
        v.refuse(0);
        assert_eq!(
            (v.granted(), v.refused),
            (1, 0),
            "we never refuse ourselves"
        );
        v.refuse(1);
        v.refuse(1);
        assert_eq!(v.refused.count_ones(), 1);
        v.grant(1);
        assert_eq!((v.granted(), v.refused), (2, 0));
        assert_eq!(v.tally(3), Tally::Won);
        assert_eq!(Votes::own(63).granted(), 1);
    }

    #[test]
    fn config_rules_name_what_is_wrong() {
        let ok = Config::new(0, 5);
        assert_eq!(ok.validate(), Ok(()));
        let cases = [
            (Config::new(0, 0), ConfigError::ClusterSize),
            (Config::new(0, MAX_CLUSTER + 1), ConfigError::ClusterSize),
            (Config::new(5, 5), ConfigError::IdOutsideCluster),
            (
                Config {
                    election_timeout_min_ms: 0,
                    ..ok
                },
                ConfigError::ElectionTimeout,
            ),
            (
                Config {
                    election_timeout_min_ms: 301,
                    ..ok
                },
                ConfigError::ElectionTimeout,
            ),
            (
                Config {
                    election_timeout_max_ms: MAX_TIMEOUT_MS + 1,
                    ..ok
                },
                ConfigError::ElectionTimeout,
            ),
            (
                Config {
                    heartbeat_ms: 0,
                    ..ok
                },
                ConfigError::Heartbeat,
            ),
            (
                Config {
                    heartbeat_ms: 150,
                    ..ok
                },
                ConfigError::Heartbeat,
            ),
        ];
        for (cfg, want) in cases {
            assert_eq!(cfg.validate(), Err(want), "{cfg:?}");
        }
        let edge = Config {
            election_timeout_min_ms: MAX_TIMEOUT_MS,
            election_timeout_max_ms: MAX_TIMEOUT_MS,
            heartbeat_ms: MAX_TIMEOUT_MS - 1,
            ..Config::new(MAX_CLUSTER - 1, MAX_CLUSTER)
        };
        assert_eq!(edge.validate(), Ok(()));
    }

    /// A candidate refused by a majority (rivals of its own term, each voting for itself) says
    /// so once, and stays a candidate until its timer fires.
    #[test]
    fn a_candidate_refused_by_a_majority_knows_it_lost() {
        let cfg = Config {
            pre_vote: false,
            ..Config::new(0, 5)
        };
        let mut node = Node::new(cfg, HardState::default(), 1, 0);
        let at = node.deadline().unwrap_or(0);
        node.step(at, Input::Tick);
        assert_eq!(node.role(), Role::Candidate);
        let rival = |node: &mut Node, from| {
            let msg = Msg {
                term: 1,
                kind: Kind::VoteRequest { forced: false },
            };
            node.step(at, Input::Receive { from, msg }).events
        };
        for from in [1, 2] {
            let events = rival(&mut node, from);
            assert!(!events.iter().any(|e| matches!(e, Event::Lost { .. })));
        }
        let events = rival(&mut node, 3);
        assert!(events.contains(&Event::Lost {
            term: 1,
            refused: 3
        }));
        assert!(!rival(&mut node, 3)
            .iter()
            .any(|e| matches!(e, Event::Lost { .. })));
        assert_eq!(node.role(), Role::Candidate);
    }
}
