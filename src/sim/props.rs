//! Timed properties: what the extensions (leader stickiness, CheckQuorum) promise over time,
//! checked in every campaign, beside the safety invariants of `check.rs`.
//!
//! - **Stickiness holds at every node:** with CheckQuorum on, a node that heard a heartbeat from
//!   the leader it follows less than `election_min` ago grants neither a pre-vote nor an
//!   unforced vote (§4.2.3). So a node cut off for a while cannot win pre-votes from followers
//!   of a healthy leader and depose it when the cut heals.
//! - **Only heartbeats make a lease:** a follower refuses a (pre-)vote for its leader's lease
//!   only within `election_min` of a heartbeat it accepted from that leader. Nothing else (a
//!   controller command, a restart, a vote) extends it, so a silent leader's followers grant
//!   pre-votes on time and failover is not held off.
//! - **A leader without a majority steps down in time:** with CheckQuorum on, a leader that has
//!   been unable to reach a majority (counting itself: peers that run, are not stopped, and have
//!   both links to it up) no longer leads `election_min + heartbeat + max_delay` later (§6.2),
//!   plus the lateness of a kernel tick when the host model has one.
//! - **A leader with a majority stays:** on a clean network (no loss, no reordering), a leader
//!   whose majority has been reachable for `election_min + heartbeat + 2 * d` never steps down
//!   for lost quorum; `d` is the longest one-way delay.
//!
//! Each is tracked from what the world knows (deliveries, links, statuses), never from the
//! node's own bookkeeping, so a node that gets its lease or its quorum count wrong is caught.

use super::check::Violation;
use crate::raft::{Cause, Event, Kind, NodeId, Role, Time, Verdict};

/// The longest a kernel tick can delay a timer in the host model (a level-1 bucket at HZ=250).
pub const TICK_SLACK: Time = 40;

#[derive(Clone, Debug, Default)]
pub struct Props {
    /// Per node: (term, leader, time) of the last heartbeat it accepted from the leader it follows.
    heard: Vec<Option<(u64, NodeId, Time)>>,
    /// Per leader: since when it has lacked a reachable majority.
    lacking: Vec<Option<Time>>,
    /// Per leader: since when it has had a reachable majority on a clean network.
    reachable: Vec<Option<Time>>,
}

/// What the world tells the properties about one step of one node.
pub struct Step<'a> {
    pub id: NodeId,
    pub now: Time,
    pub from: Option<(NodeId, Kind, u64)>,
    /// The node's term and leader before and after the step.
    pub before: (u64, Option<NodeId>),
    pub after: (u64, Option<NodeId>),
    pub events: &'a [Event],
}

impl Props {
    pub fn new(n: usize) -> Props {
        Props {
            heard: vec![None; n],
            lacking: vec![None; n],
            reachable: vec![None; n],
        }
    }

    /// Stickiness, after every step. `check_quorum`: stickiness is on; `election_min`: its span.
    pub fn step(
        &mut self,
        s: &Step,
        check_quorum: bool,
        election_min: Time,
    ) -> Result<(), Violation> {
        let grants = s.events.iter().any(|e| {
            matches!(
                e,
                Event::Vote {
                    verdict: Verdict::Granted,
                    ..
                }
            )
        });
        if let (true, true, Some((_, kind, _))) = (check_quorum, grants, s.from) {
            let unforced = matches!(
                kind,
                Kind::PreVoteRequest | Kind::VoteRequest { forced: false }
            );
            if let (true, Some((term, leader, at))) = (unforced, self.heard[s.id]) {
                if (term, Some(leader)) == s.before && s.now < at + election_min {
                    return Err(format!(
                        "STICKINESS: n{} granted a {kind:?} {} ms after a heartbeat from its \
                         leader n{leader} of term {term}",
                        s.id,
                        s.now - at
                    ));
                }
            }
        }
        let lease_refusal = s.events.iter().any(|e| {
            matches!(
                e,
                Event::Vote {
                    verdict: Verdict::LeaderLease,
                    ..
                }
            )
        });
        if check_quorum && lease_refusal && s.before.1 != Some(s.id) {
            let fresh = matches!(self.heard[s.id], Some((term, leader, at))
                if (term, Some(leader)) == s.before && s.now < at + election_min);
            if !fresh {
                return Err(format!(
                    "LEASE: n{} refused a vote for a lease on {:?} without a heartbeat from it \
                     within {election_min} ms (last accepted: {:?})",
                    s.id, s.before.1, self.heard[s.id]
                ));
            }
        }
        if let Some((from, Kind::Append, term)) = s.from {
            if s.after == (term, Some(from)) {
                self.heard[s.id] = Some((term, from, s.now));
            }
        }
        Ok(())
    }

    /// A crashed node forgets whom it followed.
    pub fn forget(&mut self, id: NodeId) {
        self.heard[id] = None;
    }

    /// CheckQuorum in both directions, after every event. `leading`: whether the node runs and
    /// leads; `reach`: nodes (counting itself) it can reach both ways; `clean`: no loss and no
    /// reordering right now; `last_word`: the last time a node it cannot reach now sent it
    /// anything (that may still arrive and count).
    #[allow(clippy::too_many_arguments)]
    pub fn quorum(
        &mut self,
        id: NodeId,
        now: Time,
        leading: bool,
        reach: usize,
        majority: usize,
        clean: bool,
        last_word: Time,
        step_down_bound: Time,
    ) -> Result<(), Violation> {
        if !leading {
            self.lacking[id] = None;
            self.reachable[id] = None;
            return Ok(());
        }
        if reach < majority {
            self.reachable[id] = None;
            let since = (*self.lacking[id].get_or_insert(now)).max(last_word);
            if now > since + step_down_bound {
                return Err(format!(
                    "CHECKQUORUM: n{id} still leads {} ms after losing its majority",
                    now - since
                ));
            }
        } else {
            self.lacking[id] = None;
            if !clean {
                self.reachable[id] = None;
            } else {
                self.reachable[id].get_or_insert(now);
            }
        }
        Ok(())
    }

    /// A leader stepped down for lost quorum: it must not have had a reachable majority on a
    /// clean network for `window` ms.
    pub fn stepped_down(&self, id: NodeId, now: Time, window: Time) -> Result<(), Violation> {
        match self.reachable[id] {
            Some(since) if now >= since + window => Err(format!(
                "CHECKQUORUM: n{id} stepped down for lost quorum with a majority reachable for {} ms",
                now - since
            )),
            _ => Ok(()),
        }
    }
}

/// Whether a step's events include a leader stepping down because it lost its quorum.
pub fn lost_quorum(events: &[Event]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            Event::Became {
                role: Role::Follower,
                cause: Cause::LostQuorum,
                ..
            }
        )
    })
}
