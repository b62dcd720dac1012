//! Safety invariants, checked by the harness after every step of every node.
//!
//! The checker sees what a real deployment could observe: the state each node persisted, the
//! events it reported, the messages it sent and its public accessors. It keeps the whole history
//! it needs (one leader per term, one vote per term and node) so that a violation anywhere in a
//! run is caught at the step that commits it, across crashes and restarts.

use crate::election::{Event, HardState, Kind, Msg, Node, NodeId, Role, Verdict};
use std::collections::BTreeMap;

pub type Violation = String;

pub struct Checker {
    majority: usize,
    /// Election Safety: the node that became leader in each term, from `Event::Elected`.
    leaders: BTreeMap<u64, NodeId>,
    /// One vote per term: `(term, voter) -> candidate`, from persisted state.
    votes: BTreeMap<(u64, NodeId), NodeId>,
    /// PreVote: who granted each `(term, candidate)` a pre-vote, as a bitset of voters.
    pre_votes: BTreeMap<(u64, NodeId), u64>,
    /// The highest term each node has ever had, across restarts.
    max_term: Vec<u64>,
    /// How many times anyone became leader.
    pub elections: u64,
}

impl Checker {
    pub fn new(n: usize) -> Checker {
        Checker {
            majority: n / 2 + 1,
            leaders: BTreeMap::new(),
            votes: BTreeMap::new(),
            pre_votes: BTreeMap::new(),
            max_term: vec![0; n],
            elections: 0,
        }
    }

    /// The leader elected in `term`, if any was.
    pub fn leader_of(&self, term: u64) -> Option<NodeId> {
        self.leaders.get(&term).copied()
    }

    /// A step asked `id` to persist `new` over `old`: terms only grow and a vote is never changed.
    pub fn persisted(
        &mut self,
        id: NodeId,
        old: HardState,
        new: HardState,
    ) -> Result<(), Violation> {
        if new.term < old.term {
            return Err(format!(
                "n{id} persisted term {} below {}",
                new.term, old.term
            ));
        }
        if new.term == old.term && old.voted_for.is_some() && new.voted_for != old.voted_for {
            return Err(format!(
                "n{id} changed its vote in term {}: {old:?} -> {new:?}",
                new.term
            ));
        }
        if let Some(c) = new.voted_for {
            let prev = *self.votes.entry((new.term, id)).or_insert(c);
            if prev != c {
                return Err(format!(
                    "n{id} voted twice in term {}: for n{prev} and n{c}",
                    new.term
                ));
            }
        }
        Ok(())
    }

    /// After a step (or a restart): the node's state, its events and its role are consistent with
    /// the history so far. `needs_pre_vote`: PreVote is on and the step was not a TIMEOUT command,
    /// so any campaign it starts must have won a pre-vote.
    pub fn after_step(
        &mut self,
        id: NodeId,
        node: &Node,
        disk: HardState,
        events: &[Event],
        needs_pre_vote: bool,
    ) -> Result<(), Violation> {
        if node.hard_state() != disk {
            return Err(format!(
                "n{id} runs on {:?} but persisted {disk:?}: a change was not handed out to persist",
                node.hard_state()
            ));
        }
        if node.term() < self.max_term[id] {
            return Err(format!(
                "n{id} term went back from {} to {}",
                self.max_term[id],
                node.term()
            ));
        }
        self.max_term[id] = node.term();
        for ev in events {
            self.event(id, node, disk, ev, needs_pre_vote)?;
        }
        self.role(id, node, disk)
    }

    fn event(
        &mut self,
        id: NodeId,
        node: &Node,
        disk: HardState,
        ev: &Event,
        needs_pre_vote: bool,
    ) -> Result<(), Violation> {
        match *ev {
            Event::Elected { term, votes, .. } => self.elected(id, node, term, votes),
            Event::Vote {
                candidate,
                term,
                pre: true,
                verdict: Verdict::Granted,
                ..
            } => {
                *self.pre_votes.entry((term, candidate)).or_insert(0) |= 1 << id;
                Ok(())
            }
            Event::Became {
                role: Role::Candidate,
                term,
                ..
            } if needs_pre_vote => self.campaign_allowed(id, term),
            Event::Vote {
                candidate,
                term,
                pre: false,
                verdict: Verdict::Granted,
                ..
            } if (disk.term, disk.voted_for) != (term, Some(candidate)) => Err(format!(
                "n{id} granted its term-{term} vote to n{candidate} but persisted {disk:?}"
            )),
            _ => Ok(()),
        }
    }

    /// PreVote: a node campaigns in `term` only after a majority (itself included) granted it a
    /// pre-vote for that very term.
    fn campaign_allowed(&self, id: NodeId, term: u64) -> Result<(), Violation> {
        let granted = self.pre_votes.get(&(term, id)).copied().unwrap_or(0) | 1 << id;
        if (granted.count_ones() as usize) < self.majority {
            return Err(format!(
                "n{id} campaigns in term {term} with pre-votes only from {granted:#b}"
            ));
        }
        Ok(())
    }

    /// Election Safety, and the votes behind the win: a majority persisted a vote for the winner.
    fn elected(
        &mut self,
        id: NodeId,
        node: &Node,
        term: u64,
        votes: usize,
    ) -> Result<(), Violation> {
        self.elections += 1;
        if term != node.term() {
            return Err(format!(
                "n{id} elected in term {term} while in term {}",
                node.term()
            ));
        }
        if let Some(other) = self.leaders.insert(term, id) {
            if other != id {
                return Err(format!(
                    "ELECTION SAFETY: n{other} and n{id} both leaders of term {term}"
                ));
            }
        }
        let backing = self
            .votes
            .range((term, 0)..(term + 1, 0))
            .filter(|(_, &c)| c == id)
            .count();
        if votes < self.majority || backing < self.majority {
            return Err(format!(
                "n{id} became leader of term {term} with {votes} votes counted, {backing} persisted"
            ));
        }
        Ok(())
    }

    /// Role observations: a leader leads the term it was elected in; a follower follows only the
    /// leader elected in its own term; a candidate voted for itself.
    fn role(&self, id: NodeId, node: &Node, disk: HardState) -> Result<(), Violation> {
        let term = node.term();
        match (node.role(), node.leader()) {
            (Role::Leader, l) if l != Some(id) || self.leader_of(term) != Some(id) => Err(format!(
                "n{id} is Leader in term {term} but was elected there: {:?}, names leader {l:?}",
                self.leader_of(term)
            )),
            (Role::Candidate, _) if disk.voted_for != Some(id) => Err(format!(
                "n{id} is Candidate in term {term} without its own vote"
            )),
            (Role::Candidate | Role::PreCandidate | Role::Stopped, Some(l)) => {
                Err(format!("n{id} is {:?} but names leader n{l}", node.role()))
            }
            (_, Some(l)) if self.leader_of(term) != Some(l) => Err(format!(
                "n{id} follows n{l} in term {term}, whose elected leader is {:?}",
                self.leader_of(term)
            )),
            _ => Ok(()),
        }
    }

    /// A message may leave only once the state it depends on is persisted (`disk`).
    pub fn sent(&self, id: NodeId, disk: HardState, to: NodeId, msg: Msg) -> Result<(), Violation> {
        let ok = match msg.kind {
            Kind::Append => msg.term == disk.term && self.leader_of(msg.term) == Some(id),
            Kind::AppendReply => msg.term == disk.term,
            Kind::VoteRequest { .. } => msg.term == disk.term && disk.voted_for == Some(id),
            Kind::VoteAck => msg.term == disk.term && disk.voted_for == Some(to),
            // A pre-vote proposes the next term without persisting anything.
            Kind::PreVoteRequest => msg.term == disk.term + 1,
            Kind::PreVoteAck => msg.term > disk.term,
            // Only the term's leader hands leadership over, and only as it steps down.
            Kind::TimeoutNow => msg.term == disk.term && self.leader_of(msg.term) == Some(id),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "n{id} sent {msg:?} to n{to} with persisted {disk:?}"
            ))
        }
    }
}
