//! Timed properties: what the extensions (leader stickiness, CheckQuorum, the pre-vote hold,
//! forced campaigns) and the timers promise over time, checked in every campaign, beside the
//! safety invariants of `check.rs`. Leadership transfer and the planned stop have theirs in
//! `handover.rs`.
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
//! - **Forced campaigns only on a current order:** a campaign that skips the pre-vote and
//!   overrides stickiness (cause `leadership-transfer` or `timeout-command`) starts only on a
//!   `TIMEOUT` command to that node, or on a `TIMEOUT_NOW` of term `t` sent by the leader elected
//!   in `t` to a node whose term was at most `t`, the campaign being in `t + 1` (so never on a
//!   stale, duplicated or overtaken one); a vote request marked forced leaves only in the step
//!   that starts such a campaign in its term; an unforced candidacy without a pre-vote starts
//!   only when the node's own timer fires.
//! - **Only a leader's heartbeat, a granted vote or the timer move a follower's timer:** a node
//!   that is a follower before and after a step, in the same term, changes its election
//!   deadline only on its timer's tick (the pre-vote hold moves it there), on an `APPEND_RPC` of
//!   its term from the leader it then follows, or when it grants its vote. A controller request
//!   or any other message that restarts it holds failover off.
//! - **The heartbeat cadence does not drift:** a leader elected at `e` asks to be woken at
//!   `e + heartbeat`, and at each heartbeat tick at `now` for the deadline `d` it asks for
//!   `d + heartbeat` (the grid `e + k * heartbeat`), however late the tick came (the kernel's
//!   tick always comes late); only a tick later than a whole interval (a paused process) starts
//!   a new grid at `now + heartbeat`. Between ticks nothing moves the deadline.
//! - **The pre-vote hold holds:** a node that granted a pre-vote at `g` starts no campaign of
//!   its own timer's before `g + heartbeat` (the core's departure from §9.6).
//!
//! Each is tracked from what the world knows (deliveries, links, statuses, the deadline each
//! step asks for), never from the node's own bookkeeping, so a node that gets its lease or its
//! quorum count wrong is caught.

use super::check::{Checker, Violation};
use crate::election::{
    Cause, Command, Config, Event, HardState, Input, Kind, Msg, NodeId, Role, Time, Verdict,
};

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
    /// Per leader: (term, the heartbeat deadline its grid gives next).
    beat: Vec<Option<(u64, Time)>>,
    /// Per node: when it last granted a pre-vote (its hold runs from there).
    pre_granted: Vec<Option<Time>>,
}

/// What the world tells the properties about one step of one node.
pub struct Step<'a> {
    pub id: NodeId,
    pub now: Time,
    pub input: Input,
    pub from: Option<(NodeId, Kind, u64)>,
    /// The node's term and leader before and after the step.
    pub before: (u64, Option<NodeId>),
    pub after: (u64, Option<NodeId>),
    /// The node's role before and after the step.
    pub roles: (Role, Role),
    /// The deadline the node had before the step, and the one it asks for after it.
    pub deadlines: (Option<Time>, Option<Time>),
    pub events: &'a [Event],
    pub sent: &'a [(NodeId, Msg)],
    pub persist: Option<HardState>,
}

impl Step<'_> {
    /// Whether one of the step's events is `Became { role, cause }` (any term).
    pub fn became(&self, role: Role, cause: Cause) -> bool {
        self.events.iter().any(
            |e| matches!(*e, Event::Became { role: r, cause: c, .. } if r == role && c == cause),
        )
    }

    /// The recipients of the messages of `kind` this step sent.
    pub fn sent_kind(&self, kind: Kind) -> impl Iterator<Item = (NodeId, Msg)> + '_ {
        self.sent
            .iter()
            .copied()
            .filter(move |(_, m)| m.kind == kind)
    }
}

impl Props {
    pub fn new(n: usize) -> Props {
        Props {
            heard: vec![None; n],
            lacking: vec![None; n],
            reachable: vec![None; n],
            beat: vec![None; n],
            pre_granted: vec![None; n],
        }
    }

    /// The last heartbeat node `id` accepted from the leader it follows: (term, leader, time).
    pub fn heard(&self, id: NodeId) -> Option<(u64, NodeId, Time)> {
        self.heard[id]
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

    /// A crashed node forgets whom it followed, whether it leads, and its hold.
    pub fn forget(&mut self, id: NodeId) {
        self.heard[id] = None;
        self.beat[id] = None;
        self.pre_granted[id] = None;
    }

    /// Forced campaigns, the follower's timer, the heartbeat cadence and the pre-vote hold,
    /// after every step (see the module's list).
    pub fn timers(&mut self, s: &Step, cfg: &Config, check: &Checker) -> Result<(), Violation> {
        if !s.events.is_empty() || !s.sent.is_empty() {
            forced_campaigns(s, check)?;
        }
        match s.roles {
            (Role::Follower, Role::Follower) => follower_timer(s)?,
            (_, Role::Leader) | (Role::Leader, _) => self.cadence(s, cfg.heartbeat_ms)?,
            _ => {}
        }
        if s.events.is_empty() {
            return Ok(());
        }
        self.hold(s, cfg.heartbeat_ms)
    }

    fn cadence(&mut self, s: &Step, heartbeat: Time) -> Result<(), Violation> {
        let id = s.id;
        let elected = s.events.iter().find_map(|e| match *e {
            Event::Elected { term, .. } => Some(term),
            _ => None,
        });
        let expected = match (elected, self.beat[id]) {
            (Some(term), _) => Some((term, s.now + heartbeat)),
            (None, Some((term, due))) if s.roles == (Role::Leader, Role::Leader) => {
                let next = match s.input {
                    // The heartbeat tick: the next beat on the grid, unless even that has passed.
                    Input::Tick if s.now >= due && due + heartbeat > s.now => due + heartbeat,
                    Input::Tick if s.now >= due => s.now + heartbeat,
                    _ => due,
                };
                Some((term, next))
            }
            _ => None,
        };
        self.beat[id] = None;
        let Some((term, due)) =
            expected.filter(|&(t, _)| (s.roles.1, s.after.0) == (Role::Leader, t))
        else {
            return Ok(());
        };
        if s.deadlines.1 != Some(due) {
            return Err(format!(
                "CADENCE: n{id}, leader of term {term}, asked to be woken at {:?} after {:?} at \
                 {} ms (deadline was {:?}); its heartbeat grid gives {due}",
                s.deadlines.1, s.input, s.now, s.deadlines.0
            ));
        }
        self.beat[id] = Some((term, due));
        Ok(())
    }

    fn hold(&mut self, s: &Step, heartbeat: Time) -> Result<(), Violation> {
        let own_timer = s.became(Role::PreCandidate, Cause::ElectionTimeout)
            || s.became(Role::Candidate, Cause::ElectionTimeout);
        if let (true, Some(g)) = (own_timer, self.pre_granted[s.id]) {
            if s.now < g + heartbeat {
                return Err(format!(
                    "HOLD: n{} granted a pre-vote at {g} ms and its own timer started a campaign \
                     {} ms later, within the hold of {heartbeat} ms",
                    s.id,
                    s.now - g
                ));
            }
        }
        let grants = s.events.iter().any(|e| {
            matches!(
                e,
                Event::Vote {
                    pre: true,
                    verdict: Verdict::Granted,
                    ..
                }
            )
        });
        if grants {
            self.pre_granted[s.id] = Some(s.now);
        }
        Ok(())
    }

    /// Whether [`Props::quorum`] keeps anything for node `id` (it did lead).
    pub fn watching(&self, id: NodeId) -> bool {
        self.lacking[id].is_some() || self.reachable[id].is_some()
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

/// Forced campaigns only on a current order; forced vote requests only from them; unforced
/// candidacies without a pre-vote only on the node's own timer.
fn forced_campaigns(s: &Step, check: &Checker) -> Result<(), Violation> {
    let id = s.id;
    let mut forced_terms = Vec::new();
    for e in s.events {
        let Event::Became {
            role: Role::Candidate,
            term,
            cause,
        } = *e
        else {
            continue;
        };
        let ok = match (cause, s.input) {
            (Cause::LeadershipTransfer, Input::Receive { from, msg }) => {
                msg.kind == Kind::TimeoutNow
                    && term == msg.term + 1
                    && s.before.0 <= msg.term
                    && check.leader_of(msg.term) == Some(from)
            }
            (Cause::TimeoutCommand, Input::Command(Command::Timeout)) => true,
            (Cause::ElectionTimeout, Input::Tick) => true,
            (Cause::PreVoteWon, _) => true,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "FORCED: n{id} became candidate of term {term} (cause {}) on {:?} in term {}, \
                 whose leader was {:?}",
                cause.as_str(),
                s.input,
                s.before.0,
                match s.input {
                    Input::Receive { msg, .. } => check.leader_of(msg.term),
                    _ => None,
                }
            ));
        }
        if matches!(cause, Cause::LeadershipTransfer | Cause::TimeoutCommand) {
            forced_terms.push(term);
        }
    }
    for (to, msg) in s.sent_kind(Kind::VoteRequest { forced: true }) {
        if !forced_terms.contains(&msg.term) {
            return Err(format!(
                "FORCED: n{id} sent a forced {msg} to n{to} without starting a forced campaign \
                 in that term (on {:?})",
                s.input
            ));
        }
    }
    Ok(())
}

/// A follower's election deadline moves only on its timer, a heartbeat of its term from the
/// leader it then follows, or a vote it grants.
fn follower_timer(s: &Step) -> Result<(), Violation> {
    let same = s.roles == (Role::Follower, Role::Follower) && s.before.0 == s.after.0;
    if !same || s.deadlines.0 == s.deadlines.1 {
        return Ok(());
    }
    let heartbeat = matches!(s.input, Input::Receive { from, msg }
        if msg.kind == Kind::Append && msg.term == s.after.0 && s.after.1 == Some(from));
    let voted = s.events.iter().any(|e| {
        matches!(
            e,
            Event::Vote {
                pre: false,
                verdict: Verdict::Granted,
                ..
            }
        )
    });
    if s.input == Input::Tick || heartbeat || voted {
        return Ok(());
    }
    Err(format!(
        "TIMER: n{}, follower of {:?} in term {}, moved its election deadline from {:?} to {:?} \
         on {:?}",
        s.id, s.after.1, s.after.0, s.deadlines.0, s.deadlines.1, s.input
    ))
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
