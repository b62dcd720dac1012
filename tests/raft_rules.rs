//! The election core, rule by rule.
//!
//! Each test checks one rule of Raft's leader election and quotes, in its doc comment, the
//! sentence of Diego Ongaro's dissertation ("Consensus: Bridging Theory and Practice", 2014) that
//! states it. Figure 3.1 is the condensed summary of the algorithm; the sections cited are the
//! ones where the rule is explained. Rules that come from the controller's commands rather than
//! from the paper quote the contract of `raft::election` instead.
//!
//! Nodes are driven directly through `Node::step`: single nodes are fed hand-made messages, and
//! small clusters deliver every `Output::send` synchronously (zero latency) through [`cluster`].
//! Time is a plain number of milliseconds; nothing here sleeps or reads a clock.

use raft::election::{
    Command, Config, Disregard, Event, HardState, Input, Kind, Msg, Node, NodeId, Output, Role,
    Status, Time, Verdict,
};
use raft::sim::cluster::Cluster;

// ---- configuration ------------------------------------------------------------------------------

/// `Config::new` defaults: 150-300 ms election timeouts, 50 ms heartbeats, PreVote and
/// CheckQuorum on.
const MIN: Time = 150;
const MAX: Time = 300;
const HEARTBEAT: Time = 50;

const APPEND: Kind = Kind::Append;
const APPEND_REPLY: Kind = Kind::AppendReply;
const VOTE: Kind = Kind::VoteRequest { forced: false };
const FORCED_VOTE: Kind = Kind::VoteRequest { forced: true };
const VOTE_ACK: Kind = Kind::VoteAck;
const PRE_VOTE: Kind = Kind::PreVoteRequest;
const PRE_VOTE_ACK: Kind = Kind::PreVoteAck;

fn config(id: NodeId, size: usize) -> Config {
    let cfg = Config::new(id, size);
    assert_eq!(
        (
            cfg.election_timeout_min_ms,
            cfg.election_timeout_max_ms,
            cfg.heartbeat_ms
        ),
        (MIN, MAX, HEARTBEAT)
    );
    assert!(cfg.pre_vote && cfg.check_quorum);
    cfg
}

fn without_pre_vote(mut cfg: Config) -> Config {
    cfg.pre_vote = false;
    cfg
}

fn without_check_quorum(mut cfg: Config) -> Config {
    cfg.check_quorum = false;
    cfg
}

/// Every node gets its own seed, as distinct processes of one cluster would.
fn seed(id: NodeId) -> u64 {
    0x5EED_0000 + id as u64
}

/// A node booting for the first time at time 0.
fn boot(cfg: Config) -> Node {
    Node::new(cfg, HardState::default(), seed(cfg.id), 0)
}

fn restart(cfg: Config, hard: HardState, now: Time) -> Node {
    Node::new(cfg, hard, seed(cfg.id), now)
}

// ---- driving one node ---------------------------------------------------------------------------

fn receive(node: &mut Node, now: Time, from: NodeId, term: u64, kind: Kind) -> Output {
    node.step(
        now,
        Input::Receive {
            from,
            msg: msg(term, kind),
        },
    )
}

fn msg(term: u64, kind: Kind) -> Msg {
    Msg { term, kind }
}

fn tick(node: &mut Node, now: Time) -> Output {
    node.step(now, Input::Tick)
}

/// Steps the node at its own deadline, as the runtime does when the timer expires. A timer that
/// fires is always rearmed later (or stopped): a node never asks to be woken in the past.
fn fire(node: &mut Node) -> (Time, Output) {
    let at = node.deadline().expect("a running node has a deadline");
    let out = tick(node, at);
    assert!(out.deadline.is_none_or(|next| next > at), "{out:?}");
    (at, out)
}

fn command(node: &mut Node, now: Time, cmd: Command) -> Output {
    node.step(now, Input::Command(cmd))
}

fn peers(node: &Node) -> Vec<NodeId> {
    let me = node.id();
    (0..node.config().cluster_size)
        .filter(|&p| p != me)
        .collect()
}

/// Recipients of the messages of exactly this kind and term.
fn sent(out: &Output, kind: Kind, term: u64) -> Vec<NodeId> {
    out.send
        .iter()
        .filter(|(_, m)| m.kind == kind && m.term == term)
        .map(|&(to, _)| to)
        .collect()
}

fn vote_requests(out: &Output) -> Vec<(NodeId, Msg)> {
    out.send
        .iter()
        .filter(|(_, m)| matches!(m.kind, Kind::VoteRequest { .. }))
        .copied()
        .collect()
}

fn hard(term: u64, voted_for: Option<NodeId>) -> HardState {
    HardState { term, voted_for }
}

// ---- building nodes in a given role -------------------------------------------------------------

/// Fires `cfg`'s timer and, with PreVote on, hands it the pre-votes it needs: a candidate of
/// term 1 that has only its own vote. Returns the time at which it became a candidate.
fn candidate(cfg: Config) -> (Node, Time) {
    let mut node = boot(cfg);
    let (now, _) = fire(&mut node);
    for peer in peers(&node) {
        if node.role() != Role::PreCandidate {
            break;
        }
        receive(&mut node, now, peer, 1, PRE_VOTE_ACK);
    }
    assert_eq!((node.role(), node.term()), (Role::Candidate, 1));
    (node, now)
}

/// A candidate of term 1 given just enough votes to win. Returns the time of the election and
/// the output of the step that made it leader.
fn leader(cfg: Config) -> (Node, Time, Output) {
    let (mut node, now) = candidate(cfg);
    for peer in peers(&node) {
        let out = receive(&mut node, now, peer, 1, VOTE_ACK);
        if node.role() == Role::Leader {
            return (node, now, out);
        }
    }
    panic!("a majority of votes did not elect the candidate");
}

/// A leader of term 1 whose first heartbeat every follower answered at once.
fn answered_leader(cfg: Config) -> (Node, Time) {
    let (mut node, elected, out) = leader(cfg);
    for to in sent(&out, APPEND, 1) {
        receive(&mut node, elected, to, 1, APPEND_REPLY);
    }
    (node, elected)
}

/// A follower of `leader` in `term`, having heard its heartbeat at `now` (before its own timer).
fn follower_of(cfg: Config, leader: NodeId, term: u64, now: Time) -> Node {
    let mut node = boot(cfg);
    assert!(now < node.deadline().unwrap());
    receive(&mut node, now, leader, term, APPEND);
    assert_eq!(node.leader(), Some(leader));
    node
}

/// Asserts the rule of Figure 3.1's "State" box: whenever an output asks for votes or grants one,
/// the vote it relies on is in `persist` (written before anything is sent).
fn assert_vote_persisted_before_sending(out: &Output, voter: NodeId, candidate: NodeId) {
    let asks_or_grants = out
        .send
        .iter()
        .filter(|(_, m)| matches!(m.kind, Kind::VoteRequest { .. } | Kind::VoteAck));
    for (_, m) in asks_or_grants {
        assert_eq!(
            out.persist,
            Some(hard(m.term, Some(candidate))),
            "node {voter} sent {m:?} without first persisting its vote for {candidate}"
        );
    }
}

// ---- a small cluster with synchronous delivery --------------------------------------------------

/// Nodes `0..size`, each with its own seed, every message delivered at once (`raft::sim`'s
/// zero-delay cluster: it checks the safety invariants, Election Safety among them, after every
/// step).
fn cluster(size: usize, tweak: impl Fn(Config) -> Config) -> Cluster {
    Cluster::new(tweak(config(0, size)), seed)
}

// ---- §3.4: followers and randomized election timeouts -------------------------------------------

/// §3.4: "When servers start up, they begin as followers. A server remains in follower state as
/// long as it receives valid RPCs from a leader or candidate."
#[test]
fn node_starts_as_follower_of_nobody_with_timer_in_election_range() {
    let now = 1_000;
    let node = Node::new(config(2, 5), HardState::default(), seed(2), now);
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.term(), 0);
    assert_eq!(node.leader(), None);
    assert_eq!(node.hard_state(), hard(0, None));
    let deadline = node.deadline().unwrap();
    assert!((now + MIN..=now + MAX).contains(&deadline), "{deadline}");
}

/// Contract of `Input::Tick`: "The deadline returned by the previous step has passed." A tick
/// that arrives early is harmless: nothing happens before the election timeout elapses.
#[test]
fn tick_before_the_deadline_changes_nothing() {
    let mut node = boot(config(0, 3));
    let deadline = node.deadline().unwrap();
    let out = tick(&mut node, deadline - 1);
    assert_eq!(out.send, vec![]);
    assert_eq!(out.persist, None);
    assert_eq!(out.deadline, Some(deadline));
    assert_eq!((node.role(), node.term()), (Role::Follower, 0));
}

/// Figure 3.1, Followers: "If election timeout elapses without receiving AppendEntries RPC from
/// current leader or granting vote to candidate: convert to candidate." With PreVote (§9.6) the
/// conversion is preceded by a pre-vote round: "a candidate only increments its term if it first
/// learns from a majority of the cluster that they would be willing to grant the candidate their
/// votes".
#[test]
fn follower_timeout_with_pre_vote_asks_for_pre_votes_without_raising_its_term() {
    let mut node = boot(config(0, 3));
    let (now, out) = fire(&mut node);
    assert_eq!(node.role(), Role::PreCandidate);
    assert_eq!(node.hard_state(), hard(0, None), "term and vote untouched");
    assert_eq!(out.persist, None);
    assert_eq!(sent(&out, PRE_VOTE, 1), vec![1, 2], "proposes term + 1");
    assert_eq!(vote_requests(&out), vec![]);
    let deadline = out.deadline.unwrap();
    assert!((now + MIN..=now + MAX).contains(&deadline));
}

/// Figure 3.1, Followers: "If election timeout elapses without receiving AppendEntries RPC from
/// current leader or granting vote to candidate: convert to candidate." §3.4: "To begin an
/// election, a follower increments its current term and transitions to candidate state."
#[test]
fn follower_timeout_without_pre_vote_becomes_candidate_in_next_term() {
    let mut node = boot(without_pre_vote(config(0, 3)));
    let (_, out) = fire(&mut node);
    assert_eq!((node.role(), node.term()), (Role::Candidate, 1));
    assert_eq!(node.leader(), None);
    assert_eq!(sent(&out, VOTE, 1), vec![1, 2]);
}

/// §3.4: "Raft uses randomized election timeouts to ensure that split votes are rare and that
/// they are resolved quickly. To prevent split votes in the first place, election timeouts are
/// chosen randomly from a fixed interval (e.g., 150–300 ms)." and "Each candidate restarts its
/// randomized election timeout at the start of an election".
#[test]
fn election_timeout_is_redrawn_from_the_range_at_every_reset() {
    // Resets by the node's own elections (an isolated node keeps timing out).
    let mut node = boot(without_pre_vote(config(0, 3)));
    let mut drawn = Vec::new();
    for _ in 0..50 {
        let (now, out) = fire(&mut node);
        let timeout = out.deadline.unwrap() - now;
        assert!((MIN..=MAX).contains(&timeout), "{timeout}");
        drawn.push(timeout);
    }
    // Resets by a leader's heartbeats.
    let mut node = boot(config(1, 3));
    for i in 0..50 {
        let now = 100 + i * HEARTBEAT;
        let out = receive(&mut node, now, 0, 1, APPEND);
        let timeout = out.deadline.unwrap() - now;
        assert!((MIN..=MAX).contains(&timeout), "{timeout}");
        drawn.push(timeout);
    }
    drawn.sort_unstable();
    drawn.dedup();
    assert!(
        drawn.len() > 30,
        "100 draws from 151 values gave only {drawn:?}"
    );
    let (lowest, highest) = (drawn[0], drawn[drawn.len() - 1]);
    assert!(
        lowest < MIN + 15 && highest > MAX - 15,
        "whole range used: {drawn:?}"
    );
}

/// §3.4: "election timeouts are chosen randomly from a fixed interval", so that "in most cases
/// only a single server will time out". Nodes started together with different seeds must not
/// share their timeouts.
#[test]
fn nodes_started_together_draw_different_timeouts() {
    let firsts: Vec<Time> = (0..64)
        .map(|id| boot(config(id, 64)).deadline().unwrap())
        .collect();
    let mut distinct = firsts.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > 32, "{firsts:?}");

    // Two nodes also differ over a sequence of resets, not only on their first draw.
    let timeouts = |id: NodeId| -> Vec<Time> {
        let mut node = boot(without_pre_vote(config(id, 3)));
        (0..10)
            .map(|_| {
                let (now, out) = fire(&mut node);
                out.deadline.unwrap() - now
            })
            .collect()
    };
    assert_ne!(timeouts(0), timeouts(1));
}

// ---- §3.4: candidates --------------------------------------------------------------------------

/// Figure 3.1, Candidates: "On conversion to candidate, start election: Increment currentTerm,
/// Vote for self, Reset election timer, Send RequestVote RPCs to all other servers."
#[test]
fn candidate_increments_term_votes_for_itself_and_requests_all_votes() {
    let mut node = boot(without_pre_vote(config(2, 5)));
    let (now, out) = fire(&mut node);
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.hard_state(), hard(1, Some(2)));
    assert_eq!(sent(&out, VOTE, 1), vec![0, 1, 3, 4]);
    let deadline = out.deadline.unwrap();
    assert!((now + MIN..=now + MAX).contains(&deadline), "timer reset");
}

/// Figure 3.1, State: "Persistent state on all servers: (Updated on stable storage before
/// responding to RPCs)". A vote request is only sent once `currentTerm` and `votedFor = self`
/// are in `Output::persist`, whichever way the election starts.
#[test]
fn candidate_persists_term_and_own_vote_before_requesting_votes() {
    // Its timer fires, PreVote off.
    let mut node = boot(without_pre_vote(config(0, 3)));
    let (_, out) = fire(&mut node);
    assert_eq!(out.persist, Some(hard(1, Some(0))));
    assert_vote_persisted_before_sending(&out, 0, 0);

    // It wins a pre-vote.
    let mut node = boot(config(0, 3));
    let (now, _) = fire(&mut node);
    let out = receive(&mut node, now, 1, 1, PRE_VOTE_ACK);
    assert_eq!(vote_requests(&out).len(), 2);
    assert_eq!(out.persist, Some(hard(1, Some(0))));
    assert_vote_persisted_before_sending(&out, 0, 0);

    // The controller's TIMEOUT.
    let mut node = boot(config(0, 3));
    let out = command(&mut node, 10, Command::Timeout);
    assert_eq!(vote_requests(&out).len(), 2);
    assert_eq!(out.persist, Some(hard(1, Some(0))));
    assert_vote_persisted_before_sending(&out, 0, 0);

    // A candidate's timer fires and it starts over in the next term.
    let (mut node, _) = candidate(without_pre_vote(config(0, 3)));
    let (_, out) = fire(&mut node);
    assert_eq!(out.persist, Some(hard(2, Some(0))));
    assert_vote_persisted_before_sending(&out, 0, 0);
}

/// §3.4: "A candidate wins an election if it receives votes from a majority of the servers in
/// the full cluster for the same term." Figure 3.1: "If votes received from majority of servers:
/// become leader."
#[test]
fn candidate_with_majority_of_votes_becomes_leader() {
    for (size, acks_needed) in [(3, 1), (5, 2), (7, 3)] {
        let (mut node, now) = candidate(config(0, size));
        for peer in 1..acks_needed {
            receive(&mut node, now, peer, 1, VOTE_ACK);
            assert_eq!(node.role(), Role::Candidate, "{size} nodes, {peer} acks");
        }
        let out = receive(&mut node, now, acks_needed, 1, VOTE_ACK);
        assert_eq!(node.role(), Role::Leader, "{size} nodes");
        assert_eq!(node.leader(), Some(0));
        assert_eq!(node.term(), 1);
        let votes = acks_needed + 1;
        let elected = Event::Elected {
            term: 1,
            votes,
            of: size,
            after_ms: 0, // the pre-votes and votes all came at once
        };
        assert!(out.events.contains(&elected), "{out:?}");
    }
}

/// §3.4: a candidate needs "votes from a majority of the servers in the full cluster": half of
/// an even cluster is not a majority, and neither is anything short of it.
#[test]
fn candidate_without_majority_stays_candidate() {
    for (size, acks) in [(4, 1), (5, 1), (7, 2)] {
        let (mut node, now) = candidate(config(0, size));
        for peer in 1..=acks {
            let out = receive(&mut node, now, peer, 1, VOTE_ACK);
            assert_eq!(sent(&out, APPEND, 1), vec![]);
        }
        assert_eq!(node.role(), Role::Candidate, "{size} nodes, {acks} acks");
        assert_eq!(node.leader(), None);
    }
}

/// §3.4: "Each server will vote for at most one candidate in a given term", so a vote that
/// arrives twice (a retried or duplicated reply) is still one vote.
#[test]
fn duplicate_vote_acks_from_one_peer_count_once() {
    let (mut node, now) = candidate(config(0, 5));
    for _ in 0..5 {
        receive(&mut node, now, 1, 1, VOTE_ACK);
    }
    assert_eq!(node.role(), Role::Candidate);
    receive(&mut node, now, 2, 1, VOTE_ACK);
    assert_eq!(node.role(), Role::Leader);
}

/// §3.4: votes count only "for the same term". Acks left over from an earlier election are
/// stale messages and are ignored (§3.3: "If a server receives a request with a stale term
/// number, it rejects the request.").
#[test]
fn vote_acks_from_an_earlier_term_do_not_count() {
    let (mut node, _) = candidate(without_pre_vote(config(0, 3)));
    let (now, _) = fire(&mut node);
    assert_eq!((node.role(), node.term()), (Role::Candidate, 2));
    receive(&mut node, now, 1, 1, VOTE_ACK);
    receive(&mut node, now, 2, 1, VOTE_ACK);
    assert_eq!(node.role(), Role::Candidate);
    receive(&mut node, now, 2, 2, VOTE_ACK);
    assert_eq!(node.role(), Role::Leader);
}

/// §3.4: "votes from a majority of the servers in the full cluster": only members vote. A
/// message claiming to come from the candidate itself or from outside the configured cluster
/// (a forged or misrouted datagram) is not a vote.
#[test]
fn votes_from_outside_the_cluster_do_not_count() {
    let (mut node, now) = candidate(config(0, 3));
    for stranger in [0, 3, 4, 63, 64, 1_000, NodeId::MAX] {
        let out = receive(&mut node, now, stranger, 1, VOTE_ACK);
        assert!(out.events.contains(&Event::Ignored {
            from: stranger,
            reason: Disregard::NotAPeer,
        }));
    }
    assert_eq!(node.role(), Role::Candidate);
    receive(&mut node, now, 2, 1, VOTE_ACK);
    assert_eq!(node.role(), Role::Leader);
}

/// Figure 3.1, Leaders: "Upon election: send initial empty AppendEntries RPCs (heartbeat) to
/// each server; repeat during idle periods to prevent election timeouts (§3.4)."
#[test]
fn new_leader_sends_heartbeats_at_once_and_then_every_heartbeat_interval() {
    let (mut node, elected, out) = leader(config(0, 3));
    assert_eq!(sent(&out, APPEND, 1), vec![1, 2]);
    assert_eq!(out.deadline, Some(elected + HEARTBEAT));

    for beat in 1..=10 {
        let due = elected + beat * HEARTBEAT;
        let early = tick(&mut node, due - 1);
        assert_eq!(early.send, vec![], "nothing before the interval");
        let out = tick(&mut node, due);
        assert_eq!(sent(&out, APPEND, 1), vec![1, 2], "beat {beat}");
        assert_eq!(out.deadline, Some(due + HEARTBEAT));
        for peer in [1, 2] {
            receive(&mut node, due, peer, 1, APPEND_REPLY);
        }
    }
    assert_eq!(node.role(), Role::Leader);
}

/// Figure 3.1, Candidates: "If AppendEntries RPC received from new leader: convert to
/// follower." §3.4: "If the leader's term (included in its RPC) is at least as large as the
/// candidate's current term, then the candidate recognizes the leader as legitimate and returns
/// to follower state."
#[test]
fn candidate_hearing_leader_of_its_own_term_becomes_follower() {
    let (mut node, now) = candidate(config(0, 3));
    let out = receive(&mut node, now + 5, 2, 1, APPEND);
    assert_eq!((node.role(), node.term()), (Role::Follower, 1));
    assert_eq!(node.leader(), Some(2));
    assert_eq!(node.hard_state(), hard(1, Some(0)), "its vote stands");
    assert_eq!(sent(&out, APPEND_REPLY, 1), vec![2]);
}

/// Figure 3.1, Candidates: "If election timeout elapses: start new election." §3.4: "each
/// candidate will time out and start a new election by incrementing its term and initiating
/// another round of RequestVote RPCs."
#[test]
fn candidate_whose_timer_fires_starts_new_election_in_higher_term() {
    let (mut node, _) = candidate(without_pre_vote(config(0, 3)));
    let (now, out) = fire(&mut node);
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.hard_state(), hard(2, Some(0)));
    assert_eq!(sent(&out, VOTE, 2), vec![1, 2]);
    assert!((now + MIN..=now + MAX).contains(&out.deadline.unwrap()));
}

/// §9.6: "a candidate only increments its term if it first learns from a majority of the cluster
/// that they would be willing to grant the candidate their votes". A candidate that times out
/// with PreVote on therefore polls again before its next term.
#[test]
fn candidate_whose_timer_fires_with_pre_vote_polls_before_raising_its_term() {
    let (mut node, _) = candidate(config(0, 3));
    let (now, out) = fire(&mut node);
    assert_eq!(node.role(), Role::PreCandidate);
    assert_eq!(node.hard_state(), hard(1, Some(0)));
    assert_eq!(out.persist, None);
    assert_eq!(sent(&out, PRE_VOTE, 2), vec![1, 2]);
    assert_eq!(vote_requests(&out), vec![]);

    receive(&mut node, now, 2, 2, PRE_VOTE_ACK);
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.hard_state(), hard(2, Some(0)));
}

/// §3.4: a candidate wins with "votes from a majority of the servers in the full cluster"; the
/// majority of a one-server cluster is the server's own vote.
#[test]
fn single_node_cluster_elects_itself() {
    for cfg in [config(0, 1), without_pre_vote(config(0, 1))] {
        let mut node = boot(cfg);
        let (elected, out) = fire(&mut node);
        assert_eq!(node.role(), Role::Leader, "pre_vote: {}", cfg.pre_vote);
        assert_eq!(node.hard_state(), hard(1, Some(0)));
        assert_eq!(out.persist, Some(hard(1, Some(0))));
        assert_eq!(out.send, vec![]);
        // CheckQuorum counts the leader itself: it stays leader with nobody to hear from.
        for _ in 0..20 {
            let (_, out) = fire(&mut node);
            assert_eq!(out.send, vec![]);
        }
        assert_eq!((node.role(), node.term()), (Role::Leader, 1));
        assert_eq!(node.deadline(), Some(elected + 21 * HEARTBEAT));
    }
}

// ---- Figure 3.1, RequestVote: one vote per term -------------------------------------------------

/// Figure 3.1, RequestVote RPC, receiver implementation: "If votedFor is null or candidateId,
/// and candidate's log is at least as up-to-date as receiver's log, grant vote (§3.4, §3.6)."
#[test]
fn follower_grants_its_vote_to_the_first_candidate_of_a_term() {
    let mut node = boot(config(0, 3));
    let out = receive(&mut node, 20, 1, 1, VOTE);
    assert_eq!(out.send, vec![(1, msg(1, VOTE_ACK))]);
    assert_eq!(node.hard_state(), hard(1, Some(1)));
    assert_eq!(node.role(), Role::Follower);
}

/// Figure 3.1, State: "Persistent state on all servers: (Updated on stable storage before
/// responding to RPCs)". §3.8: "each server persists its current term and vote; this is
/// necessary to prevent the server from voting twice in the same term".
#[test]
fn vote_is_persisted_before_the_ack_is_sent() {
    let mut node = boot(config(0, 3));
    let out = receive(&mut node, 20, 1, 1, VOTE);
    assert_eq!(out.persist, Some(hard(1, Some(1))));
    assert_vote_persisted_before_sending(&out, 0, 1);

    // Also when the vote comes with a term change and a step down.
    let (mut node, now) = candidate(config(0, 3));
    let out = receive(&mut node, now, 2, 4, VOTE);
    assert_eq!(sent(&out, VOTE_ACK, 4), vec![2]);
    assert_eq!(out.persist, Some(hard(4, Some(2))));
    assert_vote_persisted_before_sending(&out, 0, 2);
}

/// §3.4: "Each server will vote for at most one candidate in a given term, on a
/// first-come-first-served basis." A refusal is silence: no `VoteAck` is sent.
#[test]
fn follower_refuses_a_second_candidate_in_the_same_term() {
    let mut node = boot(config(0, 5));
    receive(&mut node, 20, 1, 1, VOTE);
    for rival in [2, 3, 4] {
        let out = receive(&mut node, 30, rival, 1, VOTE);
        assert_eq!(out.send, vec![], "no vote for {rival}");
        assert_eq!(out.persist, None);
        assert!(out.events.contains(&Event::Vote {
            candidate: rival,
            term: 1,
            pre: false,
            verdict: Verdict::AlreadyVoted,
        }));
    }
    let forced = receive(&mut node, 30, 2, 1, FORCED_VOTE);
    assert_eq!(
        forced.send,
        vec![],
        "a forced request does not buy a second vote"
    );
    assert_eq!(node.hard_state(), hard(1, Some(1)));
}

/// Figure 3.1, RequestVote: grant "If votedFor is null or candidateId": a candidate that retries
/// its request (its first reply was lost) gets the same vote again.
#[test]
fn follower_grants_again_to_the_candidate_it_voted_for() {
    let mut node = boot(config(0, 3));
    receive(&mut node, 20, 1, 1, VOTE);
    let retry = receive(&mut node, 40, 1, 1, VOTE);
    assert_eq!(sent(&retry, VOTE_ACK, 1), vec![1]);
    assert_eq!(retry.persist, None, "the vote is already durable");
    assert_eq!(node.hard_state(), hard(1, Some(1)));
}

/// §3.4: a candidate "votes for itself", so it has no vote left for a rival of its own term.
#[test]
fn candidate_refuses_rival_candidates_of_its_term() {
    let (mut node, now) = candidate(config(0, 3));
    let out = receive(&mut node, now, 1, 1, VOTE);
    assert_eq!(out.send, vec![]);
    assert_eq!(node.hard_state(), hard(1, Some(0)));
    assert_eq!(node.role(), Role::Candidate);
}

// ---- §3.3: terms ------------------------------------------------------------------------------

/// Figure 3.1, Rules for Servers, All Servers: "If RPC request or response contains term T >
/// currentTerm: set currentTerm = T, convert to follower (§3.3)." §3.3: "If a candidate or leader
/// discovers that its term is out of date, it immediately reverts to follower state."
///
/// `votedFor` belongs to a term, so it is cleared with the new term (unless the message itself
/// earns the vote). A leader's non-forced vote requests are the one exception, left to leader
/// stickiness (§4.2.3, see `leader_ignores_vote_requests_while_it_leads`).
#[test]
fn higher_term_message_turns_any_role_into_follower_of_that_term() {
    type Make = fn() -> (Node, Time);
    let makers: [(&str, Make); 4] = [
        ("follower", || (follower_of(config(0, 3), 1, 1, 10), 10)),
        ("pre-candidate", || {
            let mut node = boot(config(0, 3));
            let (now, _) = fire(&mut node);
            (node, now)
        }),
        ("candidate", || candidate(config(0, 3))),
        ("leader", || {
            let (node, now, _) = leader(config(0, 3));
            (node, now)
        }),
    ];
    for (role, make) in makers {
        for kind in [APPEND, APPEND_REPLY, VOTE, FORCED_VOTE, VOTE_ACK] {
            let (mut node, now) = make();
            if kind == VOTE && matches!(role, "leader" | "follower") {
                continue; // within the leader's lease: §4.2.3
            }
            let out = receive(&mut node, now + 1, 2, 7, kind);
            assert_eq!(node.role(), Role::Follower, "{role} got {kind:?}");
            assert_eq!(node.term(), 7, "{role} got {kind:?}");
            let vote = matches!(kind, Kind::VoteRequest { .. }).then_some(2);
            assert_eq!(node.hard_state(), hard(7, vote), "{role} got {kind:?}");
            assert_eq!(out.persist, Some(hard(7, vote)), "{role} got {kind:?}");
            let leader = (kind == APPEND).then_some(2);
            assert_eq!(node.leader(), leader, "{role} got {kind:?}");
        }
    }
}

/// Figure 3.1, RequestVote and AppendEntries receivers: "Reply false if term < currentTerm
/// (§3.3)." §3.3: "If a server receives a request with a stale term number, it rejects the
/// request." Refusals are silent, except towards a stale leader, which must learn the newer term
/// (next test).
#[test]
fn lower_term_messages_are_ignored() {
    let kinds = [
        APPEND,
        APPEND_REPLY,
        VOTE,
        FORCED_VOTE,
        VOTE_ACK,
        PRE_VOTE,
        PRE_VOTE_ACK,
    ];
    let at_term_3 = |role: Role| -> Node {
        let mut node = restart(config(0, 5), hard(3, None), 0);
        match role {
            Role::Follower => {}
            Role::PreCandidate => {
                fire(&mut node);
            }
            Role::Candidate | Role::Leader | Role::Stopping => {
                node = restart(without_pre_vote(config(0, 5)), hard(2, None), 0);
                let (now, _) = fire(&mut node);
                if role != Role::Candidate {
                    receive(&mut node, now, 1, 3, VOTE_ACK);
                    receive(&mut node, now, 2, 3, VOTE_ACK);
                }
                if role == Role::Stopping {
                    receive(&mut node, now, 1, 3, APPEND_REPLY);
                    node.step(now, Input::Stop);
                }
            }
            Role::Stopped => unreachable!(),
        }
        assert_eq!((node.role(), node.term()), (role, 3));
        node
    };
    let roles = [
        Role::Follower,
        Role::PreCandidate,
        Role::Candidate,
        Role::Leader,
        Role::Stopping,
    ];
    for role in roles {
        for kind in kinds {
            let mut node = at_term_3(role);
            let before = node.hard_state();
            let deadline = node.deadline();
            let out = receive(&mut node, deadline.unwrap() - 1, 1, 2, kind);
            assert_eq!(node.role(), role, "{role:?} got {kind:?}");
            assert_eq!(node.hard_state(), before, "{role:?} got {kind:?}");
            assert_eq!(out.persist, None);
            assert_eq!(
                out.deadline, deadline,
                "{role:?} got {kind:?}: timer untouched"
            );
            let expected = if kind == APPEND {
                vec![(1, msg(3, APPEND_REPLY))]
            } else {
                vec![]
            };
            assert_eq!(out.send, expected, "{role:?} got {kind:?}");
        }
    }
}

/// Figure 3.1, AppendEntries RPC: the reply carries "currentTerm, for leader to update itself".
/// §9.6 describes the consequence: a larger term propagates "through its AppendEntries response.
/// This will force the cluster leader to step down".
#[test]
fn stale_leader_steps_down_when_an_append_reply_carries_a_newer_term() {
    let (mut old_leader, now, beat) = leader(config(0, 3));
    let mut follower = restart(config(1, 3), hard(2, None), now);

    let append = beat.send.iter().find(|(to, _)| *to == 1).unwrap().1;
    assert_eq!(append, msg(1, APPEND));
    let reply = follower.step(
        now,
        Input::Receive {
            from: 0,
            msg: append,
        },
    );
    assert_eq!(reply.send, vec![(0, msg(2, APPEND_REPLY))]);
    assert_eq!(follower.leader(), None, "a stale leader is nobody's leader");

    let msg = reply.send[0].1;
    let out = old_leader.step(now, Input::Receive { from: 1, msg });
    assert_eq!(old_leader.role(), Role::Follower);
    assert_eq!(old_leader.hard_state(), hard(2, None));
    assert_eq!(old_leader.leader(), None);
    assert_eq!(out.persist, Some(hard(2, None)));
}

// ---- Figure 3.1, Followers: what resets the election timer ------------------------------------

/// Figure 3.1, Followers: "If election timeout elapses without receiving AppendEntries RPC from
/// current leader or granting vote to candidate: convert to candidate." Heartbeats keep pushing
/// the timeout back, so a follower of a live leader never campaigns.
#[test]
fn heartbeats_reset_the_follower_election_timer() {
    let mut node = boot(config(1, 3));
    let mut now = 10;
    for _ in 0..100 {
        let out = receive(&mut node, now, 0, 1, APPEND);
        let deadline = out.deadline.unwrap();
        assert!((now + MIN..=now + MAX).contains(&deadline));
        now += HEARTBEAT;
        assert!(now < deadline);
        let tick_out = tick(&mut node, now);
        assert_eq!(tick_out.send, vec![]);
    }
    assert_eq!((node.role(), node.leader()), (Role::Follower, Some(0)));
    assert_eq!(node.term(), 1);
}

/// Figure 3.1, Followers: the timeout counts from the last AppendEntries "or granting vote to
/// candidate".
#[test]
fn granting_a_vote_resets_the_election_timer() {
    // A vote in a new term, and a vote in the term the node is already in.
    for (start, request_term) in [(hard(0, None), 1), (hard(3, None), 3)] {
        let mut node = restart(config(0, 3), start, 0);
        let first = node.deadline().unwrap();
        let now = first - 1;
        let out = receive(&mut node, now, 1, request_term, VOTE);
        assert_eq!(sent(&out, VOTE_ACK, request_term), vec![1]);
        let deadline = out.deadline.unwrap();
        assert!((now + MIN..=now + MAX).contains(&deadline));
        assert_eq!(
            tick(&mut node, first).send,
            vec![],
            "old deadline passes quietly"
        );
    }
}

/// Figure 3.1, Followers: only receiving AppendEntries from the current leader or *granting* a
/// vote defers the election. Refusing a vote, whether for a second candidate or a stale one,
/// leaves the timer running.
#[test]
fn refusing_a_vote_does_not_reset_the_election_timer() {
    let mut node = restart(config(0, 5), hard(3, Some(1)), 0);
    let deadline = node.deadline();
    let now = deadline.unwrap() - 1;

    let rival = receive(&mut node, now, 2, 3, VOTE);
    assert_eq!((rival.send.len(), rival.deadline), (0, deadline));
    let stale = receive(&mut node, now, 3, 2, VOTE);
    assert_eq!((stale.send.len(), stale.deadline), (0, deadline));

    let (_, out) = fire(&mut node);
    assert_eq!(node.role(), Role::PreCandidate, "the timer fired on time");
    assert_eq!(sent(&out, PRE_VOTE, 4).len(), 4);
}

/// Departs from §9.6, where a pre-vote is only a question ("the receiver's state does not
/// change"): a node that has just granted a pre-vote holds its own timeout back for one heartbeat
/// interval. That pre-candidate, once it has a majority, writes its term and vote to disk and
/// sends the real request; without the hold, a granter whose timer fires in that gap (a
/// millisecond or more) starts a rival campaign for the same term, and the vote splits. With
/// PreVote on that gap was the largest cause of split votes after a leader failed. The timer
/// itself is not reset (the deadline is unchanged): if no request follows, the node campaigns
/// when the hold ends.
#[test]
fn granting_a_pre_vote_holds_the_own_timeout_back_for_a_heartbeat() {
    let mut node = restart(config(0, 5), hard(3, Some(1)), 0);
    let deadline = node.deadline().unwrap();
    let granted_at = deadline - 1;
    let pre_vote = receive(&mut node, granted_at, 4, 4, PRE_VOTE);
    assert_eq!(sent(&pre_vote, PRE_VOTE_ACK, 4), vec![4]);
    assert_eq!(pre_vote.deadline, Some(deadline), "the timer is not reset");
    assert_eq!(pre_vote.persist, None, "a pre-vote persists nothing");

    let held = tick(&mut node, deadline);
    assert_eq!(
        node.role(),
        Role::Follower,
        "no rival campaign while the request is due"
    );
    assert!(held.send.is_empty());
    assert_eq!(held.deadline, Some(granted_at + HEARTBEAT));

    // The pre-candidate's request arrives: the node votes, as if the hold had never been.
    let mut voter = node.clone();
    let vote = receive(&mut voter, granted_at + 2, 4, 4, VOTE);
    assert_eq!(sent(&vote, VOTE_ACK, 4), vec![4]);

    // No request came: the node campaigns when the hold ends.
    let (at, out) = fire(&mut node);
    assert_eq!(at, granted_at + HEARTBEAT);
    assert_eq!(node.role(), Role::PreCandidate);
    assert_eq!(sent(&out, PRE_VOTE, 4).len(), 4);
}

// ---- §9.6: PreVote ----------------------------------------------------------------------------

/// §9.6: "In the Pre-Vote algorithm, a candidate only increments its term if it first learns from
/// a majority of the cluster that they would be willing to grant the candidate their votes". A
/// pre-vote is a question, not a vote: answering it changes neither the receiver's term nor its
/// `votedFor`, and persists nothing.
#[test]
fn granting_a_pre_vote_changes_neither_term_nor_vote() {
    let mut node = restart(config(0, 5), hard(2, Some(3)), 0);
    let deadline = node.deadline();
    let out = receive(&mut node, 10, 1, 3, PRE_VOTE);
    assert_eq!(out.send, vec![(1, msg(3, PRE_VOTE_ACK))]);
    assert_eq!(node.hard_state(), hard(2, Some(3)));
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(out.persist, None);
    assert_eq!(out.deadline, deadline);

    // The same question from another node gets the same answer: nothing was promised.
    let out = receive(&mut node, 10, 2, 3, PRE_VOTE);
    assert_eq!(sent(&out, PRE_VOTE_ACK, 3), vec![2]);
}

/// §9.6: the pre-candidate asks whether the others would vote for it in the term it would
/// campaign in; a voter already at that term (or past it) would not (Figure 3.1: "Reply false if
/// term < currentTerm"), nor would it grant a second vote in its own term.
#[test]
fn pre_vote_is_refused_unless_the_proposed_term_is_above_the_receivers() {
    let mut node = restart(config(0, 3), hard(4, None), 0);
    for proposed in [1, 3, 4] {
        let out = receive(&mut node, 10, 1, proposed, PRE_VOTE);
        assert_eq!(out.send, vec![], "proposed term {proposed}");
    }
    let out = receive(&mut node, 10, 1, 5, PRE_VOTE);
    assert_eq!(sent(&out, PRE_VOTE_ACK, 5), vec![1]);
    assert_eq!(node.hard_state(), hard(4, None));
}

/// §9.6: voters grant a pre-vote only if they "have not received heartbeats from a valid leader
/// for at least a baseline election timeout". A leader, hearing from itself, refuses too.
#[test]
fn pre_vote_is_refused_while_hearing_from_a_leader() {
    let heard = 100;
    let mut node = follower_of(config(1, 3), 0, 1, heard);
    let out = receive(&mut node, heard + MIN - 1, 2, 2, PRE_VOTE);
    assert_eq!(out.send, vec![]);
    assert!(out.events.contains(&Event::Vote {
        candidate: 2,
        term: 2,
        pre: true,
        verdict: Verdict::LeaderLease,
    }));
    let out = receive(&mut node, heard + MIN, 2, 2, PRE_VOTE);
    assert_eq!(
        sent(&out, PRE_VOTE_ACK, 2),
        vec![2],
        "the lease has run out"
    );

    let (mut leader, now, _) = leader(config(0, 3));
    let out = receive(&mut leader, now + 1, 2, 2, PRE_VOTE);
    assert_eq!(out.send, vec![]);
    assert_eq!((leader.role(), leader.term()), (Role::Leader, 1));
}

/// §9.6: "a candidate only increments its term if it first learns from a majority of the cluster
/// that they would be willing to grant the candidate their votes". Only answers about the term
/// it proposes (its term + 1) count, and each voter counts once.
#[test]
fn pre_candidate_needs_a_majority_of_pre_votes_for_its_next_term() {
    let mut node = restart(config(0, 5), hard(3, None), 0);
    let (now, _) = fire(&mut node);
    assert_eq!(node.role(), Role::PreCandidate);

    for wrong_term in [2, 3, 5, 6] {
        receive(&mut node, now, 1, wrong_term, PRE_VOTE_ACK);
        receive(&mut node, now, 2, wrong_term, PRE_VOTE_ACK);
    }
    assert_eq!((node.role(), node.term()), (Role::PreCandidate, 3));

    receive(&mut node, now, 1, 4, PRE_VOTE_ACK);
    let out = receive(&mut node, now, 1, 4, PRE_VOTE_ACK);
    assert_eq!((node.role(), node.term()), (Role::PreCandidate, 3));
    assert_eq!((out.send.len(), out.persist), (0, None));

    let out = receive(&mut node, now, 3, 4, PRE_VOTE_ACK);
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.hard_state(), hard(4, Some(0)));
    assert_eq!(sent(&out, VOTE, 4), vec![1, 2, 3, 4]);
}

/// §3.4: "A server remains in follower state as long as it receives valid RPCs from a leader".
/// A pre-candidate whose poll was only a late heartbeat away goes back to following the leader
/// of its term, and a late pre-vote no longer starts an election.
#[test]
fn pre_candidate_hearing_the_leader_of_its_term_returns_to_follower() {
    let mut node = follower_of(config(1, 3), 0, 2, 10);
    let (now, _) = fire(&mut node);
    assert_eq!((node.role(), node.leader()), (Role::PreCandidate, None));
    let out = receive(&mut node, now + 1, 0, 2, APPEND);
    assert_eq!((node.role(), node.leader()), (Role::Follower, Some(0)));
    assert_eq!(sent(&out, APPEND_REPLY, 2), vec![0]);
    receive(&mut node, now + 2, 2, 3, PRE_VOTE_ACK);
    assert_eq!((node.role(), node.term()), (Role::Follower, 2));
}

/// §9.6, the problem PreVote solves: "When a server is partitioned, it will not receive
/// heartbeats. It will soon increment its term to start an election, although it won't be able
/// to collect enough votes to become leader." With PreVote it never gets past the poll.
#[test]
fn partitioned_node_with_pre_vote_never_raises_its_term() {
    let mut node = boot(config(0, 5));
    for _ in 0..200 {
        let (_, out) = fire(&mut node);
        assert_eq!(out.persist, None);
        assert_eq!(vote_requests(&out), vec![]);
        assert_eq!(sent(&out, PRE_VOTE, 1).len(), 4);
    }
    assert_eq!(
        (node.role(), node.hard_state()),
        (Role::PreCandidate, hard(0, None))
    );

    // Without PreVote the same node counts terms up for as long as it is cut off.
    let mut node = boot(without_pre_vote(config(0, 5)));
    for _ in 0..200 {
        fire(&mut node);
    }
    assert_eq!((node.role(), node.term()), (Role::Candidate, 200));
}

/// §9.6: "When the server regains connectivity sometime later, its larger term number will
/// propagate to the rest of the cluster (either through the server's RequestVote requests or
/// through its AppendEntries response). This will force the cluster leader to step down". With
/// PreVote the rejoining server has no larger term, and the leader stays.
#[test]
fn rejoining_partitioned_node_does_not_depose_the_leader_with_pre_vote() {
    let rejoin = |pre_vote: bool| -> (NodeId, u64, Cluster) {
        let mut cluster = cluster(3, |c| Config { pre_vote, ..c });
        cluster.run(1_000).unwrap();
        let leader = cluster.agreed_leader().expect("a leader within a second");
        let term = cluster.node(leader).term();
        let cut = (leader + 1) % 3;
        cluster.isolate(cut);
        cluster.run(6_000).unwrap();
        assert_eq!(
            cluster.agreed_leader(),
            Some(leader),
            "majority side unaffected"
        );
        cluster.reconnect(cut);
        cluster.run(8_000).unwrap();
        (leader, term, cluster)
    };

    let (leader, term, cluster) = rejoin(true);
    assert_eq!(cluster.agreed_leader(), Some(leader));
    assert!(cluster.nodes().iter().all(|n| n.term() == term));

    let (_, term, cluster) = rejoin(false);
    let new_term = cluster.node(cluster.agreed_leader().unwrap()).term();
    assert!(
        new_term > term + 10,
        "without PreVote: {term} -> {new_term}"
    );
}

// ---- §6.2: CheckQuorum ------------------------------------------------------------------------

/// §6.2: "a leader steps down if an election timeout elapses without a successful round of
/// heartbeats to a majority of its cluster". The window is the minimum election timeout, counted
/// from the last answer; the check runs at each heartbeat.
#[test]
fn leader_without_answers_from_a_majority_steps_down_after_election_min() {
    // (cluster size, peers that answer every heartbeat)
    for (size, answering) in [(3, vec![]), (5, vec![]), (5, vec![1]), (7, vec![1, 2])] {
        let (mut node, elected, _) = leader(config(0, size));
        let term = node.term();
        loop {
            let (now, out) = fire(&mut node);
            if now - elected < MIN {
                assert_eq!(node.role(), Role::Leader, "{size} nodes, at {now}");
                assert_eq!(sent(&out, APPEND, term).len(), size - 1);
                for &peer in &answering {
                    receive(&mut node, now, peer, term, APPEND_REPLY);
                }
            } else {
                let late = now - elected;
                assert!(late < MIN + HEARTBEAT, "first heartbeat after election_min");
                assert_eq!(node.role(), Role::Follower, "{size} nodes, {answering:?}");
                assert_eq!(
                    node.hard_state(),
                    hard(term, Some(0)),
                    "same term, vote kept"
                );
                assert_eq!(node.leader(), None);
                assert_eq!(out.send, vec![], "no heartbeat from a deposed leader");
                break;
            }
        }
    }
}

/// §6.2: the leader steps down only "if an election timeout elapses without a successful round
/// of heartbeats to a majority of its cluster"; a leader that keeps hearing from a majority
/// (itself included) stays leader indefinitely.
#[test]
fn leader_hearing_from_a_majority_stays_leader() {
    for (size, answering) in [(3, vec![1]), (5, vec![1, 2]), (7, vec![4, 5, 6])] {
        let (mut node, _, _) = leader(config(0, size));
        for _ in 0..100 {
            let (now, _) = fire(&mut node);
            for &peer in &answering {
                receive(&mut node, now, peer, 1, APPEND_REPLY);
            }
        }
        assert_eq!(
            (node.role(), node.term()),
            (Role::Leader, 1),
            "{size} nodes"
        );
    }
    // Answers need not come at every heartbeat, only within election_min of each other.
    let (mut node, _, _) = leader(config(0, 3));
    for beat in 0..100 {
        let (now, _) = fire(&mut node);
        if beat % 2 == 0 {
            receive(&mut node, now, 1 + beat % 4 / 2, 1, APPEND_REPLY);
        }
    }
    assert_eq!(node.role(), Role::Leader);
}

/// CheckQuorum is an option (§6.2 describes it as the leader's way to learn it is cut off);
/// without it a leader never deposes itself.
#[test]
fn leader_without_check_quorum_keeps_leading_alone() {
    let (mut node, _, _) = leader(without_check_quorum(config(0, 3)));
    for _ in 0..100 {
        let (_, out) = fire(&mut node);
        assert_eq!(sent(&out, APPEND, 1), vec![1, 2]);
    }
    assert_eq!(node.role(), Role::Leader);
}

// ---- §4.2.3: leader stickiness ----------------------------------------------------------------

/// §4.2.3: "if a server receives a RequestVote request within the minimum election timeout of
/// hearing from a current leader, it does not update its term or grant its vote."
#[test]
fn follower_hearing_from_a_leader_ignores_vote_requests() {
    let heard = 100;
    let mut node = follower_of(config(1, 3), 0, 1, heard);
    let deadline = node.deadline();
    let out = receive(&mut node, heard + MIN - 1, 2, 2, VOTE);
    assert_eq!(out.send, vec![]);
    assert_eq!(out.persist, None);
    assert_eq!(out.deadline, deadline, "timer untouched");
    assert_eq!(
        node.hard_state(),
        hard(1, None),
        "term not updated, no vote"
    );
    assert_eq!((node.role(), node.leader()), (Role::Follower, Some(0)));
}

/// §4.2.3: "RequestVote messages should be processed by other servers even when they believe a
/// current cluster leader exists. Those RequestVote requests can include a special flag to
/// indicate this behavior ("I have permission to disrupt the leader—it told me to!")."
#[test]
fn follower_hearing_from_a_leader_grants_forced_vote_requests() {
    let heard = 100;
    let mut node = follower_of(config(1, 3), 0, 1, heard);
    let out = receive(&mut node, heard + 1, 2, 2, FORCED_VOTE);
    assert_eq!(out.send, vec![(2, msg(2, VOTE_ACK))]);
    assert_eq!(node.hard_state(), hard(2, Some(2)));
    assert_eq!(node.leader(), None);
}

/// §4.2.3: the lease lasts "the minimum election timeout" from the last heartbeat; "This does not
/// affect normal elections, where each server waits at least a minimum election timeout before
/// starting an election."
#[test]
fn follower_grants_vote_requests_once_the_leader_is_silent_for_election_min() {
    let heard = 100;
    let mut node = follower_of(config(1, 3), 0, 1, heard);
    receive(&mut node, heard + MIN - 1, 2, 2, VOTE);
    assert_eq!(node.term(), 1);
    let out = receive(&mut node, heard + MIN, 2, 2, VOTE);
    assert_eq!(sent(&out, VOTE_ACK, 2), vec![2]);
    assert_eq!(node.hard_state(), hard(2, Some(2)));
}

/// §4.2.3: "if a leader is able to get heartbeats to its cluster, then it will not be deposed by
/// larger term numbers." The leader is its own current leader: it ignores ordinary vote requests
/// (CheckQuorum deposes it if it loses its cluster), but a forced one deposes it.
#[test]
fn leader_ignores_vote_requests_while_it_leads() {
    let (mut node, now, _) = leader(config(0, 3));
    let out = receive(&mut node, now + 1, 2, 5, VOTE);
    assert_eq!((out.send.len(), out.persist), (0, None));
    assert_eq!((node.role(), node.term()), (Role::Leader, 1));

    let out = receive(&mut node, now + 1, 2, 5, FORCED_VOTE);
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.hard_state(), hard(5, Some(2)));
    assert_eq!(sent(&out, VOTE_ACK, 5), vec![2]);
}

/// §4.2.3's lease is only safe together with CheckQuorum (§6.2), which bounds how long a cut-off
/// leader keeps its followers loyal; without CheckQuorum, a higher term wins as Figure 3.1 says.
#[test]
fn leader_stickiness_is_off_without_check_quorum() {
    let mut node = follower_of(without_check_quorum(config(1, 3)), 0, 1, 100);
    let out = receive(&mut node, 101, 2, 2, VOTE);
    assert_eq!(sent(&out, VOTE_ACK, 2), vec![2]);
    assert_eq!(node.hard_state(), hard(2, Some(2)));

    let (mut node, now, _) = leader(without_check_quorum(config(0, 3)));
    receive(&mut node, now + 1, 2, 5, VOTE);
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.hard_state(), hard(5, Some(2)));
}

// ---- the controller's commands ----------------------------------------------------------------

/// §3.10: the controller's TIMEOUT is leadership transfer's TimeoutNow: "This request has the
/// same effect as the target server's election timer firing: the target server starts a new
/// election (incrementing its term and becoming a candidate)." It skips PreVote, and its requests
/// carry §4.2.3's flag ("I have permission to disrupt the leader").
#[test]
fn timeout_command_starts_a_forced_election_in_the_next_term() {
    let mut node = follower_of(config(1, 3), 0, 4, 100);
    let out = command(&mut node, 101, Command::Timeout);
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.hard_state(), hard(5, Some(1)));
    assert_eq!(node.leader(), None);
    assert_eq!(sent(&out, FORCED_VOTE, 5), vec![0, 2]);
    assert_eq!(sent(&out, PRE_VOTE, 5), vec![]);
    assert_eq!(out.persist, Some(hard(5, Some(1))));
    assert!((101 + MIN..=101 + MAX).contains(&out.deadline.unwrap()));
}

/// §3.10 with §4.2.3: the forced election wins even though every other server has just heard
/// from the current leader.
#[test]
fn timeout_command_moves_leadership_despite_stickiness() {
    let mut cluster = cluster(3, |c| c);
    cluster.run(1_000).unwrap();
    let old = cluster.agreed_leader().unwrap();
    let term = cluster.node(old).term();
    let target = (old + 1) % 3;
    cluster
        .settle(target, Input::Command(Command::Timeout))
        .unwrap();
    assert_eq!(cluster.agreed_leader(), Some(target));
    assert_eq!(cluster.node(target).term(), term + 1);
    cluster.run(3_000).unwrap();
    assert_eq!(cluster.agreed_leader(), Some(target));
}

/// §3.10: TimeoutNow makes its target start "a new election (incrementing its term and becoming
/// a candidate)", whatever its role: a leader told to time out campaigns again in a higher term.
#[test]
fn timeout_command_on_a_leader_starts_an_election_in_a_higher_term() {
    let (mut node, now, _) = leader(config(0, 3));
    let out = command(&mut node, now + 10, Command::Timeout);
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.hard_state(), hard(2, Some(0)));
    assert_eq!(node.leader(), None);
    assert_eq!(sent(&out, FORCED_VOTE, 2), vec![1, 2]);
    receive(&mut node, now + 10, 2, 2, VOTE_ACK);
    assert_eq!((node.role(), node.term()), (Role::Leader, 2));
}

/// §3.10, leadership transfer: "the prior leader sends a TimeoutNow request to the target
/// server". A leader told `CONVERT_FOLLOWER` becomes a follower of the same term (vote kept,
/// nothing to persist), sends `TimeoutNow` to the follower that answered it last (the likeliest
/// to be up and connected), and itself waits one extra timeout range, so that if that node does
/// not win, another one gets the first chance.
#[test]
fn convert_follower_on_a_leader_hands_leadership_to_the_follower_heard_last() {
    let (mut node, elected, _) = leader(config(0, 5));
    receive(&mut node, elected + 10, 3, 1, APPEND_REPLY);
    receive(&mut node, elected + 12, 1, 1, APPEND_REPLY);
    receive(&mut node, elected + 12, 4, 1, APPEND_REPLY);
    let now = elected + 20;
    let out = command(&mut node, now, Command::ConvertFollower);
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.hard_state(), hard(1, Some(0)), "same term, vote kept");
    assert_eq!(node.leader(), None);
    assert_eq!(out.persist, None);
    // 1 and 4 answered last, at the same time: the lower id wins the tie.
    assert_eq!(out.send, vec![(1, msg(1, Kind::TimeoutNow))]);
    let deadline = out.deadline.unwrap();
    let range = MAX - MIN;
    assert!(
        (now + MAX + 1..=now + MAX + 1 + range).contains(&deadline),
        "{deadline}"
    );
}

/// §3.10: a leader with no follower heard within the minimum election timeout has no successor
/// worth naming; it steps down and normal elections follow.
#[test]
fn convert_follower_on_a_leader_that_heard_nobody_lately_names_no_successor() {
    let (mut node, elected, _) = leader(config(0, 3));
    let out = command(&mut node, elected + MIN, Command::ConvertFollower);
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(out.send, vec![]);
}

/// §3.10: TimeoutNow "has the same effect as the target server's election timer firing": the
/// target starts a forced election in the next term at once, without pre-votes and despite the
/// lease it holds on the leader that sent it. A leader never obeys one (there is one leader per
/// term, so only a forged message can reach it), and one from an earlier term is stale.
#[test]
fn timeout_now_makes_a_follower_campaign_at_once_and_leaves_a_leader_leading() {
    let mut node = follower_of(config(1, 3), 0, 4, 100);
    let out = receive(&mut node, 101, 0, 4, Kind::TimeoutNow);
    assert_eq!(
        (node.role(), node.hard_state()),
        (Role::Candidate, hard(5, Some(1)))
    );
    assert_eq!(sent(&out, FORCED_VOTE, 5), vec![0, 2]);
    assert_eq!(sent(&out, PRE_VOTE, 5), vec![]);

    let mut stale = follower_of(config(1, 3), 0, 4, 100);
    let out = receive(&mut stale, 101, 0, 3, Kind::TimeoutNow);
    assert_eq!(
        (stale.role(), stale.term(), out.send.len()),
        (Role::Follower, 4, 0)
    );

    let (mut lead, now, _) = leader(config(0, 3));
    let out = receive(&mut lead, now + 1, 1, 1, Kind::TimeoutNow);
    assert_eq!(
        (lead.role(), lead.term(), out.send.len()),
        (Role::Leader, 1, 0)
    );
}

/// `Command::ConvertFollower` on a leader, seen from the cluster: the successor wins in the same
/// round trip (every message here is delivered at once), in the next term, and keeps leading.
#[test]
fn converted_leader_hands_over_to_another_node_at_once() {
    let mut cluster = cluster(3, |c| c);
    cluster.run(1_000).unwrap();
    let old = cluster.agreed_leader().unwrap();
    let term = cluster.node(old).term();
    cluster
        .settle(old, Input::Command(Command::ConvertFollower))
        .unwrap();
    let new = cluster.agreed_leader().expect("a new leader at once");
    assert_ne!(new, old);
    assert_eq!(cluster.node(new).term(), term + 1);
    cluster.run(3_000).unwrap();
    assert_eq!(cluster.agreed_leader(), Some(new));
}

/// `Command::ConvertFollower` on a follower: nothing changes, in particular neither its lease nor
/// its timer. Being told is not hearing from the leader: a follower of a leader that has gone
/// silent still times out when it would have, however often it is told, and still grants
/// pre-votes once the lease has run out.
#[test]
fn convert_follower_on_a_follower_renews_neither_lease_nor_timer() {
    let mut node = follower_of(config(1, 5), 0, 4, 100);
    let deadline = node.deadline().unwrap();
    let mut now = 100;
    while now + 10 < deadline {
        now += 10;
        let out = command(&mut node, now, Command::ConvertFollower);
        assert_eq!(
            (out.deadline, out.send.len(), out.persist),
            (Some(deadline), 0, None)
        );
        assert_eq!((node.role(), node.leader()), (Role::Follower, Some(0)));
    }
    let lease_end = 100 + MIN;
    command(&mut node, lease_end - 1, Command::ConvertFollower);
    let pre_vote = receive(&mut node, lease_end, 2, 5, PRE_VOTE);
    assert_eq!(
        sent(&pre_vote, PRE_VOTE_ACK, 5),
        vec![2],
        "the lease ran out"
    );
    let mut fresh = follower_of(config(1, 5), 0, 4, 100);
    let (at, out) = fire(&mut fresh);
    assert_eq!(at, deadline, "told or not, the same deadline");
    assert_eq!(sent(&out, PRE_VOTE, 5).len(), 4);
}

/// Figure 3.1 and Election Safety: there is at most one leader per term, so an AppendEntries of
/// the leader's own term can only be forged or corrupted. The leader keeps leading, in the same
/// term, and does not answer it.
#[test]
fn leader_receiving_an_append_of_its_own_term_stays_leader() {
    let (mut node, now, _) = leader(config(0, 3));
    let out = receive(&mut node, now + 1, 1, 1, APPEND);
    assert_eq!(
        (node.role(), node.term(), node.leader()),
        (Role::Leader, 1, Some(0))
    );
    assert_eq!((out.send.len(), out.persist), (0, None));
    assert_eq!(
        tick(&mut node, now + HEARTBEAT).send.len(),
        2,
        "it goes on sending heartbeats"
    );
}

/// `Command::ConvertFollower` on a candidate or pre-candidate: back to follower in the current
/// term, with a fresh timer from the ordinary range.
#[test]
fn convert_follower_makes_a_candidate_a_follower_of_the_same_term() {
    let (mut cand, now) = candidate(config(0, 3));
    let mut pre = boot(config(1, 3));
    fire(&mut pre);
    for node in [&mut cand, &mut pre] {
        let hard_before = node.hard_state();
        let out = command(node, now + 7, Command::ConvertFollower);
        assert_eq!(node.role(), Role::Follower);
        assert_eq!(node.hard_state(), hard_before);
        assert_eq!(out.send, vec![]);
        let deadline = out.deadline.unwrap();
        assert!((now + 7 + MIN..=now + 7 + MAX).contains(&deadline));
    }
}

/// `Command::Shutdown`: `Role::Stopped`, "silent, deaf to peers, no timers".
#[test]
fn shutdown_stops_the_node_silent_and_deaf() {
    let (mut node, now, _) = leader(config(0, 3));
    let out = command(&mut node, now, Command::Shutdown);
    assert_eq!(node.role(), Role::Stopped);
    assert_eq!(node.leader(), None);
    assert_eq!((out.deadline, out.send.len()), (None, 0));

    for t in [now + HEARTBEAT, now + MAX, now + 10 * MAX] {
        assert_eq!(tick(&mut node, t).send, vec![], "no heartbeat, no election");
    }
    for kind in [APPEND, VOTE, FORCED_VOTE, PRE_VOTE, VOTE_ACK, APPEND_REPLY] {
        let out = receive(&mut node, now + 1, 1, 9, kind);
        assert_eq!(out.send, vec![], "{kind:?}");
        assert_eq!(out.persist, None, "{kind:?}");
        assert_eq!(out.deadline, None, "{kind:?}");
    }
    assert_eq!(node.role(), Role::Stopped);
    assert_eq!(node.hard_state(), hard(1, Some(0)));
    assert_eq!(command(&mut node, now, Command::Shutdown).deadline, None);
}

/// `Command::ConvertFollower` revives a stopped node "with its HardState kept": it comes back as
/// a follower of nobody, with its term and vote, and its timer running.
#[test]
fn convert_follower_revives_a_stopped_node_with_its_hard_state() {
    let mut node = restart(config(0, 3), hard(6, Some(2)), 0);
    command(&mut node, 10, Command::Shutdown);
    let out = command(&mut node, 5_000, Command::ConvertFollower);
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.hard_state(), hard(6, Some(2)));
    assert_eq!(node.leader(), None);
    assert_eq!(out.persist, None);
    assert!((5_000 + MIN..=5_000 + MAX).contains(&out.deadline.unwrap()));

    assert_eq!(
        receive(&mut node, 5_001, 1, 6, VOTE).send,
        vec![],
        "still voted"
    );
    assert_eq!(
        sent(&receive(&mut node, 5_001, 2, 6, VOTE), VOTE_ACK, 6),
        vec![2]
    );
}

/// `Command::Timeout` also revives a stopped node: it campaigns (§3.10) from the term it had.
#[test]
fn timeout_revives_a_stopped_node_into_a_forced_election() {
    let mut node = restart(config(0, 3), hard(6, Some(2)), 0);
    command(&mut node, 10, Command::Shutdown);
    let out = command(&mut node, 5_000, Command::Timeout);
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.hard_state(), hard(7, Some(0)));
    assert_eq!(sent(&out, FORCED_VOTE, 7), vec![1, 2]);
    assert!(out.deadline.is_some());
}

/// The contract of `Role::Stopped`: "silent, deaf to peers, no timers", while the rest of the
/// cluster carries on around it (elections forced by `TIMEOUT`, heartbeats, vote requests in
/// ever higher terms all reach it). Every step it takes sends nothing, persists nothing, reports
/// nothing and arms no timer, and its term and vote stay as they were. Either revival request
/// brings it back into the cluster: `CONVERT_FOLLOWER` as a follower of whoever leads,
/// `TIMEOUT` through a forced election.
#[test]
fn a_stopped_node_is_deaf_and_silent_until_a_revival_request() {
    for revival in [Command::ConvertFollower, Command::Timeout] {
        let mut cluster = cluster(5, |c| c);
        cluster.run(1_000).unwrap();
        let stopped = cluster.agreed_leader().expect("a first leader");
        let hard_before = cluster.node(stopped).hard_state();
        cluster
            .settle(stopped, Input::Command(Command::Shutdown))
            .unwrap();
        cluster.record = Some(Vec::new());
        let live: Vec<NodeId> = (0..5).filter(|&id| id != stopped).collect();
        for (i, &t) in [2_000, 4_000, 6_000].iter().enumerate() {
            cluster.run(t).unwrap();
            // A forced election in a higher term: vote requests reach the stopped node too.
            cluster
                .settle(live[i], Input::Command(Command::Timeout))
                .unwrap();
        }
        cluster.run(10_000).unwrap();
        let trace = cluster.record.take().unwrap_or_default();
        let mut steps = 0;
        for step in trace.iter().filter(|s| s.node == stopped) {
            let (at, out) = (step.at, &step.output);
            steps += 1;
            assert_eq!(out.send, vec![], "sent at {at}");
            assert_eq!(out.persist, None, "persisted at {at}");
            assert_eq!(out.events, vec![], "reported at {at}");
            assert_eq!(out.deadline, None, "a timer at {at}");
        }
        assert!(
            steps > 100,
            "the cluster's messages reached it ({steps} steps)"
        );
        let node = cluster.node(stopped);
        assert_eq!((node.role(), node.leader()), (Role::Stopped, None));
        assert_eq!(node.hard_state(), hard_before, "term and vote untouched");
        let leader = cluster.node(live[0]).leader().expect("the others lead on");
        let term = cluster.node(leader).term();
        assert!(
            term >= hard_before.term + 3,
            "three forced elections: term {term}"
        );

        cluster.settle(stopped, Input::Command(revival)).unwrap();
        assert_ne!(cluster.node(stopped).role(), Role::Stopped);
        assert!(
            cluster.node(stopped).deadline().is_some(),
            "its timer runs again"
        );
        cluster.run(11_000).unwrap();
        let now = cluster.agreed_leader().expect("all five agree again");
        assert_eq!(cluster.node(stopped).leader(), Some(now), "{revival:?}");
        if revival == Command::ConvertFollower {
            assert_eq!(
                now, leader,
                "a revived follower does not disturb the leader"
            );
        }
    }
}

// ---- §3.10 on a planned stop (SIGTERM) ----------------------------------------------------------

/// §3.10 applied to a planned stop: a leader asked to stop hands over exactly as on
/// `CONVERT_FOLLOWER` (TimeoutNow to the follower that answered last) but will not run again:
/// it sends no more heartbeats that would renew its followers' leases, names no leader, keeps
/// its term and vote, and asks to be woken one heartbeat interval later.
#[test]
fn stop_on_a_leader_hands_over_to_the_follower_heard_last_and_stops_heartbeats() {
    let (mut node, elected, _) = leader(config(0, 5));
    receive(&mut node, elected + 10, 3, 1, APPEND_REPLY);
    receive(&mut node, elected + 12, 4, 1, APPEND_REPLY);
    receive(&mut node, elected + 11, 2, 1, APPEND_REPLY);
    let now = elected + 20;
    let out = node.step(now, Input::Stop);
    assert_eq!(node.role(), Role::Stopping);
    assert_eq!(node.leader(), None);
    assert_eq!(node.hard_state(), hard(1, Some(0)), "term and vote kept");
    assert_eq!(out.persist, None);
    assert_eq!(out.send, vec![(4, msg(1, Kind::TimeoutNow))]);
    assert_eq!(out.deadline, Some(now + HEARTBEAT));
    let (_, out) = fire(&mut node);
    assert_eq!(sent(&out, APPEND, 1), vec![], "no heartbeat while stopping");
}

/// The stop ends when a leader of a later term is heard: the node says whom it handed over to
/// and how long it took, and stops (it neither follows nor answers that heartbeat).
#[test]
fn a_stopping_leader_stops_once_a_leader_of_a_later_term_is_heard() {
    let (mut node, elected) = answered_leader(config(0, 3));
    node.step(elected, Input::Stop);
    assert_eq!(node.role(), Role::Stopping);
    let out = receive(&mut node, elected + 4, 1, 2, APPEND);
    assert_eq!(node.role(), Role::Stopped);
    assert_eq!(node.hard_state(), hard(2, None), "the later term is kept");
    assert_eq!(out.persist, Some(hard(2, None)));
    assert!(out.events.contains(&Event::HandedOver {
        to: Some(1),
        after_ms: 4
    }));
    assert_eq!(out.send, vec![], "no reply to the new leader");
    assert_eq!(out.deadline, None, "no timer runs");
}

/// A stopping node keeps its word: it grants its vote once per term (a successor in a small or
/// even-sized cluster may need it) without restarting any timer, and never campaigns. Once the
/// term has moved on, it stops asking its successor again.
#[test]
fn a_stopping_node_votes_once_per_term_but_never_campaigns() {
    let (mut node, elected) = answered_leader(config(0, 4));
    node.step(elected, Input::Stop);
    let deadline = node.deadline();
    let out = receive(&mut node, elected + 2, 1, 2, FORCED_VOTE);
    assert_eq!(out.persist, Some(hard(2, Some(1))));
    assert_eq!(out.send, vec![(1, msg(2, VOTE_ACK))]);
    assert_eq!((node.role(), node.deadline()), (Role::Stopping, deadline));
    let out = receive(&mut node, elected + 3, 2, 2, FORCED_VOTE);
    assert_eq!(out.send, vec![], "one vote per term");
    let (_, out) = fire(&mut node);
    assert_eq!(node.role(), Role::Stopping);
    assert_eq!(
        out.send,
        vec![],
        "the term moved on: no TimeoutNow again, no campaign"
    );
    for cmd in [Command::Timeout, Command::ConvertFollower] {
        let out = command(&mut node, elected + 60, cmd);
        assert_eq!(
            (node.role(), out.send.len()),
            (Role::Stopping, 0),
            "{cmd:?}"
        );
    }
}

/// A lost TimeoutNow costs one heartbeat interval, not an election timeout: the successor is
/// asked again each interval. After one minimum election timeout (when the followers' own timers
/// start to fire anyway) the node stops whatever happened, naming no successor.
#[test]
fn a_stopping_leader_asks_again_each_heartbeat_and_stops_after_the_minimum_timeout() {
    let (mut node, elected) = answered_leader(config(0, 3));
    node.step(elected, Input::Stop);
    let mut asked = 1;
    while node.role() == Role::Stopping {
        let (at, out) = fire(&mut node);
        asked += sent(&out, Kind::TimeoutNow, 1).len();
        assert!(at <= elected + MIN, "{at}");
        if node.role() == Role::Stopped {
            assert_eq!(at, elected + MIN);
            assert!(out.events.contains(&Event::HandedOver {
                to: None,
                after_ms: MIN
            }));
        }
    }
    assert_eq!(asked as u64, MIN / HEARTBEAT, "at 0, 50 and 100 ms");
}

/// A follower or a candidate that stops changes nothing for the others: it stops at once and
/// sends nothing (its term and vote are already on disk). So does a leader that heard from no
/// follower lately: it has no successor worth naming. A stopped node stays stopped.
#[test]
fn stop_anywhere_but_on_a_leader_with_a_live_follower_stops_at_once_and_sends_nothing() {
    let follower = follower_of(config(1, 3), 0, 1, 10);
    let mut pre = boot(config(0, 3));
    fire(&mut pre);
    let (cand, _) = candidate(without_pre_vote(config(0, 3)));
    let (lonely, elected, _) = leader(config(0, 3));
    let mut stopped = boot(config(2, 3));
    command(&mut stopped, 0, Command::Shutdown);
    for mut node in [follower, pre, cand, lonely, stopped] {
        let (role, hard_before) = (node.role(), node.hard_state());
        let out = node.step(elected + MIN, Input::Stop);
        assert_eq!(node.role(), Role::Stopped, "{role:?}");
        assert_eq!((out.send.len(), out.persist), (0, None), "{role:?}");
        assert_eq!(node.hard_state(), hard_before, "{role:?}");
        assert_eq!(out.deadline, None, "{role:?}");
    }
}

/// A leader names as successor only a follower that has answered a heartbeat of its term: one
/// that has not may have been down since before the election, however recent that was.
#[test]
fn a_successor_is_a_follower_that_answered_in_this_term() {
    let (mut node, elected, _) = leader(config(0, 5));
    let out = command(&mut node, elected + 1, Command::ConvertFollower);
    assert_eq!(out.send, vec![], "nobody answered yet: no successor");
    let (mut node, elected, _) = leader(config(0, 5));
    receive(&mut node, elected + 1, 3, 1, APPEND_REPLY);
    let out = node.step(elected + 2, Input::Stop);
    assert_eq!(out.send, vec![(3, msg(1, Kind::TimeoutNow))]);
}

/// `SHUTDOWN` during a planned stop ends it at once.
#[test]
fn shutdown_ends_a_planned_stop_at_once() {
    let (mut node, elected) = answered_leader(config(0, 3));
    node.step(elected, Input::Stop);
    command(&mut node, elected + 1, Command::Shutdown);
    assert_eq!((node.role(), node.deadline()), (Role::Stopped, None));
}

/// The handover seen from the cluster: the successor wins in the same round trip (every message
/// here is delivered at once) without any election timer firing, and the stopping leader stops.
#[test]
fn a_planned_stop_of_the_leader_hands_over_at_once() {
    let mut cluster = cluster(5, |c| c);
    cluster.run(1_000).unwrap();
    let old = cluster.agreed_leader().unwrap();
    let term = cluster.node(old).term();
    cluster.settle(old, Input::Stop).unwrap();
    assert_eq!(cluster.node(old).role(), Role::Stopped);
    cluster.isolate(old); // its process has ended
    let new = cluster.agreed_leader().expect("a new leader at once");
    assert_ne!(new, old);
    assert_eq!(cluster.node(new).term(), term + 1);
}

// ---- §3.8: restarts ---------------------------------------------------------------------------

/// §3.8: "each server persists its current term and vote; this is necessary to prevent the
/// server from voting twice in the same term". A node rebuilt from its `HardState` starts as a
/// follower with that term and vote.
#[test]
fn restarted_node_keeps_its_term_and_vote() {
    let mut node = restart(config(0, 3), hard(5, Some(1)), 2_000);
    assert_eq!((node.role(), node.leader()), (Role::Follower, None));
    assert_eq!(node.hard_state(), hard(5, Some(1)));
    assert!((2_000 + MIN..=2_000 + MAX).contains(&node.deadline().unwrap()));

    let other = receive(&mut node, 2_010, 2, 5, VOTE);
    assert_eq!(other.send, vec![], "no second vote in term 5");
    let same = receive(&mut node, 2_010, 1, 5, VOTE);
    assert_eq!(sent(&same, VOTE_ACK, 5), vec![1]);
    let next = receive(&mut node, 2_010, 2, 6, VOTE);
    assert_eq!(sent(&next, VOTE_ACK, 6), vec![2]);
    assert_eq!(node.hard_state(), hard(6, Some(2)));
}

/// A restarted candidate's own vote survives too: it campaigns again from the next term.
#[test]
fn restarted_node_campaigns_from_its_persisted_term() {
    let mut node = restart(without_pre_vote(config(0, 3)), hard(9, Some(0)), 0);
    let (_, out) = fire(&mut node);
    assert_eq!(node.hard_state(), hard(10, Some(0)));
    assert_eq!(sent(&out, VOTE, 10), vec![1, 2]);
}

// ---- whole elections --------------------------------------------------------------------------

/// Figure 3.2, Election Safety: "at most one leader can be elected in a given term." §3.4: the
/// winner "sends heartbeat messages to all of the other servers to establish its authority and
/// prevent new elections." (The cluster checks Election Safety after every step.)
#[test]
fn cluster_elects_one_leader_that_keeps_its_term() {
    for size in [1, 2, 3, 4, 5, 7] {
        for pre_vote in [true, false] {
            let mut cluster = cluster(size, |c| Config { pre_vote, ..c });
            cluster.run(1_000).unwrap();
            let leader = cluster.agreed_leader().expect("a leader within a second");
            let term = cluster.node(leader).term();
            cluster.run(20_000).unwrap();
            assert_eq!(cluster.agreed_leader(), Some(leader), "{size} nodes");
            assert_eq!(cluster.node(leader).term(), term);
            assert_eq!(cluster.leaders(), vec![leader]);
        }
    }
}

/// §3.4: "If a follower receives no communication over a period of time called the election
/// timeout, then it assumes there is no viable leader and begins an election to choose a new
/// leader." A majority that loses its leader elects another; the old one, revived, follows it.
#[test]
fn cluster_replaces_a_stopped_leader_and_the_revived_one_follows() {
    let mut cluster = cluster(5, |c| c);
    cluster.run(1_000).unwrap();
    let old = cluster.agreed_leader().unwrap();
    let term = cluster.node(old).term();
    cluster
        .settle(old, Input::Command(Command::Shutdown))
        .unwrap();
    cluster.run(2_000).unwrap();
    let new = cluster.node((old + 1) % 5).leader().expect("a new leader");
    assert_ne!(new, old);
    assert!(cluster.node(new).term() > term);

    cluster
        .settle(old, Input::Command(Command::ConvertFollower))
        .unwrap();
    cluster.run(3_000).unwrap();
    assert_eq!(cluster.agreed_leader(), Some(new));
    assert_eq!(cluster.node(old).role(), Role::Follower);
}

/// The core's contract: it "never reads a clock, a socket or the OS's randomness": randomness
/// comes from a PRNG seeded once at construction, so the same seed and the same inputs give the
/// same outputs, step for step.
#[test]
fn same_seed_and_inputs_give_identical_outputs() {
    let run = || {
        let mut cluster = cluster(5, |c| c);
        cluster.record = Some(Vec::new());
        cluster.run(1_000).unwrap();
        let leader = cluster.agreed_leader().unwrap();
        cluster.isolate(leader);
        cluster.run(3_000).unwrap();
        cluster.reconnect(leader);
        cluster
            .settle((leader + 2) % 5, Input::Command(Command::Timeout))
            .unwrap();
        cluster.run(5_000).unwrap();
        cluster.record.unwrap()
    };
    let first = run();
    assert!(first.len() > 100);
    assert_eq!(first, run());

    // A copy of a node answers like the node itself.
    let mut node = boot(config(0, 5));
    let mut twin = node.clone();
    let inputs = [
        (10, Input::Tick),
        (
            200,
            Input::Receive {
                from: 3,
                msg: msg(1, VOTE),
            },
        ),
        (400, Input::Tick),
        (600, Input::Tick),
        (610, Input::Command(Command::Timeout)),
        (620, Input::Command(Command::ConvertFollower)),
    ];
    for (now, input) in inputs {
        assert_eq!(node.step(now, input), twin.step(now, input));
    }
}

/// Contract of `raft::election`: terms never decrease and a node votes once per term, even at the
/// last term a `u64` holds (reachable only through a forged message): there the node neither
/// wraps to term 0 nor overflows; it just cannot campaign.
#[test]
fn at_the_last_term_a_node_does_not_campaign_wrap_or_vote_twice() {
    for cfg in [config(0, 5), without_pre_vote(config(0, 5))] {
        let mut node = boot(cfg);
        receive(&mut node, 10, 1, u64::MAX, APPEND);
        assert_eq!((node.term(), node.leader()), (u64::MAX, Some(1)));
        receive(&mut node, 20, 2, u64::MAX, VOTE);
        let voted = node.hard_state();
        for _ in 0..5 {
            let (_, out) = fire(&mut node);
            assert!(out.send.is_empty() && out.persist.is_none(), "{out:?}");
        }
        let out = command(&mut node, 5_000, Command::Timeout);
        assert!(out.send.is_empty() && out.persist.is_none(), "{out:?}");
        assert_eq!((node.term(), node.hard_state()), (u64::MAX, voted));
        assert_ne!(node.role(), Role::Candidate);
        // A pre-vote ack for the (non-existent) next term is just ignored.
        let out = receive(&mut node, 6_000, 3, u64::MAX, PRE_VOTE_ACK);
        assert!(out.send.is_empty() && out.persist.is_none(), "{out:?}");
    }
}

// ---- the controller's STATUS request -------------------------------------------------------

/// Contract of `Node::status`: "what the node is doing at `now`; changes nothing". A follower
/// reports its leader, how long ago it heard it, and the time left on its election timer.
#[test]
fn status_of_a_follower_counts_down_its_timer_and_up_since_the_leader() {
    let mut node = follower_of(config(0, 5), 2, 3, 40);
    let deadline = node.deadline().unwrap();
    let twin = node.clone();
    let st = node.status(60);
    assert_eq!(
        st,
        Status {
            role: Role::Follower,
            term: 3,
            voted_for: None,
            leader: Some(2),
            timer_ms: Some(deadline - 60),
            heard_ms: Some(20),
        }
    );
    assert_eq!(
        node.status(deadline + 5).timer_ms,
        Some(0),
        "never negative"
    );
    // Asking changed nothing: the node behaves exactly as its untouched twin.
    let mut twin = twin;
    assert_eq!(
        node.step(deadline, Input::Tick),
        twin.step(deadline, Input::Tick)
    );
}

/// A leader names itself, has heard "itself" 0 ms ago, and its timer is the next heartbeat.
#[test]
fn status_of_a_leader_names_itself_and_its_heartbeat() {
    let (node, now, _) = leader(config(1, 3));
    let st = node.status(now + 10);
    assert_eq!((st.role, st.term), (Role::Leader, 1));
    assert_eq!((st.voted_for, st.leader), (Some(1), Some(1)));
    assert_eq!((st.timer_ms, st.heard_ms), (Some(HEARTBEAT - 10), Some(0)));
}

/// Candidates know no leader; a stopped node runs no timer but keeps its term and vote.
#[test]
fn status_of_candidates_and_stopped_nodes() {
    let (mut node, now) = candidate(config(0, 5));
    let st = node.status(now);
    assert_eq!(
        (st.role, st.term, st.voted_for),
        (Role::Candidate, 1, Some(0))
    );
    assert_eq!((st.leader, st.heard_ms), (None, None));
    assert!((MIN..=MAX).contains(&st.timer_ms.unwrap()));

    let mut pre = boot(config(0, 5));
    let (at, _) = fire(&mut pre);
    assert_eq!(pre.status(at).role, Role::PreCandidate);
    assert_eq!(pre.status(at).term, 0, "a pre-vote does not raise the term");

    command(&mut node, now + 1, Command::Shutdown);
    let st = node.status(now + 2);
    assert_eq!(
        (st.role, st.term, st.voted_for),
        (Role::Stopped, 1, Some(0))
    );
    assert_eq!((st.leader, st.timer_ms, st.heard_ms), (None, None, None));
}

/// The contract of `raft::election`: the core, not the runtime, says when a node starts following a
/// leader, once per change of leader, after the step's other events; a node's own election is
/// `Elected`, not this.
#[test]
fn following_a_new_leader_is_reported_once() {
    let is_leader_event = |e: &Event| matches!(e, Event::Leader { .. });
    let mut node = boot(config(1, 3));
    let out = receive(&mut node, 10, 0, 1, APPEND);
    assert_eq!(out.events.last(), Some(&Event::Leader { leader: 0 }));
    let out = receive(&mut node, 20, 0, 1, APPEND);
    assert!(!out.events.iter().any(is_leader_event), "{out:?}");
    let out = receive(&mut node, 30, 2, 2, APPEND);
    assert_eq!(out.events.last(), Some(&Event::Leader { leader: 2 }));
    let out = command(&mut node, 40, Command::ConvertFollower);
    assert!(!out.events.iter().any(is_leader_event), "{out:?}");

    let (mut cand, now) = candidate(config(0, 3));
    let out = receive(&mut cand, now, 1, 1, VOTE_ACK);
    assert_eq!(cand.role(), Role::Leader);
    assert!(!out.events.iter().any(is_leader_event), "{out:?}");
}
