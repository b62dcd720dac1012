//! Timed properties of leadership transfer (§3.10: `CONVERT_FOLLOWER` on a leader) and of the
//! planned stop ([`Input::Stop`]: SIGTERM or SIGINT), checked in every campaign beside those of
//! `props.rs`.
//!
//! - **The successor is the follower heard from last:** a leader that hands over (told
//!   `CONVERT_FOLLOWER`, or asked to stop) sends `TIMEOUT_NOW` to one peer it heard from within
//!   `election_min`, and to none only when it heard from nobody within it; that peer was heard
//!   from no earlier than any other (ties allowed). "Heard from" is what the world delivered to
//!   the leader in its term: an `APPEND_REPLY`, when it arrived (a vote does not count: a peer
//!   that voted may have gone down since, and only an answer to a heartbeat shows it up under
//!   this leader). No other step of a leader sends `TIMEOUT_NOW`.
//! - **A healthy handover takes about two round trips:** when a leader hands over on a healthy
//!   network (no loss, no reordering, every link up, nobody paused, a majority running counting
//!   the leader, the successor running, every other running node following the leader on a
//!   heartbeat recent enough that its own timer cannot fire before the bound), every running
//!   node but a stopping one follows one new leader of a later term within
//!   `4 * d + 2 * disk_max` (`TIMEOUT_NOW`, vote request, vote, first heartbeat; `d` the longest
//!   one-way delay), and no election timer starts a campaign meanwhile. A fault, a command or a
//!   restart in that time ends the watch.
//! - **A stopping follower or candidate changes nothing:** asked to stop, any node that does not
//!   lead stops at once, sending and persisting nothing, so no other node sees a message or a
//!   term change from it.
//! - **A stopping leader only hands over:** it becomes `Stopping` (having sent `TIMEOUT_NOW`) or
//!   stops; while stopping it sends nothing but `TIMEOUT_NOW` to its successor in the term it
//!   led, (pre-)votes, and the reply that tells a stale leader its term (never a heartbeat or an
//!   answer to a current one), never becomes anything but stopped, says it handed over to `n` only on an `APPEND_RPC` of a later
//!   term from `n`, and to no one only once `election_min` has passed.
//! - **A stop ends within its bound:** a node stopping since `s` is stopped by
//!   `s + election_min` (plus the kernel tick's lateness on that host model), unless its process
//!   dies or freezes first.
//!
//! At most one leader per term through all of it is `check.rs`'s Election Safety.

use super::check::{Checker, Violation};
use super::props::Step;
use crate::election::{Cause, Command, Event, Input, Kind, NodeId, Role, Time};

/// How often each property was put to the test (a property that is never exercised proves
/// nothing): counted per world, summed per campaign.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Handovers whose choice of successor was judged.
    pub choices: u64,
    /// Handovers that named a successor.
    pub named: u64,
    /// Handovers on a healthy network watched to completion, and how many completed (a fault or
    /// a command ended the others' watch).
    pub awaited: u64,
    pub completed: u64,
    /// The slowest completed watched handover, and the largest fraction of its bound it used
    /// (in percent).
    pub slowest_ms: Time,
    pub slowest_pct: u64,
    /// Planned stops of a leader, and of any other role.
    pub stops_leading: u64,
    pub stops_other: u64,
    /// Stops that ended while watched, and the longest.
    pub stops_ended: u64,
    pub longest_stop_ms: Time,
}

impl Seen {
    pub fn add(&mut self, o: &Seen) {
        self.choices += o.choices;
        self.named += o.named;
        self.awaited += o.awaited;
        self.completed += o.completed;
        self.slowest_ms = self.slowest_ms.max(o.slowest_ms);
        self.slowest_pct = self.slowest_pct.max(o.slowest_pct);
        self.stops_leading += o.stops_leading;
        self.stops_other += o.stops_other;
        self.stops_ended += o.stops_ended;
        self.longest_stop_ms = self.longest_stop_ms.max(o.longest_stop_ms);
    }
}

/// A leader handed over: from whom, in which term, to whom, and whether it is stopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Started {
    pub leader: NodeId,
    pub term: u64,
    pub successor: NodeId,
    pub stop: bool,
}

/// A handover on a healthy network, awaited until `by`.
#[derive(Clone, Copy, Debug)]
struct Pending {
    h: Started,
    since: Time,
    by: Time,
}

/// A planned stop of a leader under way.
#[derive(Clone, Copy, Debug)]
struct Stopping {
    since: Time,
    term: u64,
    successor: NodeId,
}

pub struct Handover {
    /// Per node, while it leads: when it last heard from each peer in its term (see the module).
    heard: Vec<Vec<Option<Time>>>,
    stopping: Vec<Option<Stopping>>,
    /// How many entries of `stopping` are set (most events have none to look at).
    stops: usize,
    pending: Option<Pending>,
    pub seen: Seen,
}

impl Handover {
    pub fn new(n: usize) -> Handover {
        Handover {
            heard: vec![vec![None; n]; n],
            stopping: vec![None; n],
            stops: 0,
            pending: None,
            seen: Seen::default(),
        }
    }

    /// After every step. `election_min`: the window of "heard lately" and the stop's bound.
    /// Returns the handover this step started, if any, for the world to judge whether to await it.
    pub fn step(
        &mut self,
        s: &Step,
        election_min: Time,
        check: &Checker,
    ) -> Result<Option<Started>, Violation> {
        let id = s.id;
        let quiet = s.events.is_empty();
        if !quiet && s.events.iter().any(|e| matches!(e, Event::Elected { .. })) {
            self.heard[id].iter_mut().for_each(|h| *h = None);
        }
        if let Input::Receive { from, msg } = s.input {
            if msg.kind == Kind::AppendReply && s.roles.0 == Role::Leader && msg.term == s.before.0
            {
                self.heard[id][from] = Some(s.now);
            }
        }
        if !quiet
            && self.pending.is_some()
            && (s.became(Role::PreCandidate, Cause::ElectionTimeout)
                || s.became(Role::Candidate, Cause::ElectionTimeout))
        {
            if let Some(p) = self.pending {
                return Err(format!(
                    "HANDOVER: n{id}'s election timer started a campaign {} ms into a handover on \
                     a healthy network (n{} to n{} in term {} at {} ms), which needs none",
                    s.now - p.since,
                    p.h.leader,
                    p.h.successor,
                    p.h.term,
                    p.since
                ));
            }
        }
        let handing_over = s.roles.0 == Role::Leader
            && matches!(
                s.input,
                Input::Command(Command::ConvertFollower) | Input::Stop
            );
        let started = if handing_over {
            self.choice(s, election_min)?
        } else {
            if s.roles.0 != Role::Stopping {
                if let Some((to, msg)) = s.sent_kind(Kind::TimeoutNow).next() {
                    return Err(format!(
                        "HANDOVER: n{id}, a {:?}, sent {msg} to n{to} on {:?}: only a leader \
                         handing over (or stopping) does",
                        s.roles.0, s.input
                    ));
                }
            }
            None
        };
        if s.input == Input::Stop || self.stopping[id].is_some() {
            self.stop(s, election_min, check, started)?;
        }
        if s.roles.0 == Role::Leader && s.roles.1 != Role::Leader {
            self.heard[id].iter_mut().for_each(|h| *h = None);
        }
        Ok(started)
    }

    /// The successor a leader named (or did not name) when it handed over.
    fn choice(&mut self, s: &Step, window: Time) -> Result<Option<Started>, Violation> {
        let id = s.id;
        self.seen.choices += 1;
        let heard = &self.heard[id];
        let fresh = |p: NodeId| heard[p].is_some_and(|t| s.now - t < window);
        let latest = (0..heard.len())
            .filter(|&p| fresh(p))
            .max_by_key(|&p| heard[p]);
        let named: Vec<NodeId> = s.sent_kind(Kind::TimeoutNow).map(|(to, _)| to).collect();
        let ago = |p: NodeId| heard[p].map(|t| s.now - t);
        match (named.as_slice(), latest) {
            ([], None) => Ok(None),
            ([], Some(q)) => Err(format!(
                "HANDOVER: n{id} handed over to no one on {:?}, though it heard from n{q} {:?} ms \
                 ago (window {window} ms)",
                s.input,
                ago(q)
            )),
            (&[t], Some(q)) if fresh(t) && heard[t] >= heard[q] => {
                self.seen.named += 1;
                Ok(Some(Started {
                    leader: id,
                    term: s.before.0,
                    successor: t,
                    stop: s.input == Input::Stop,
                }))
            }
            (&[t], q) => Err(format!(
                "HANDOVER: n{id} named n{t} its successor on {:?}, last heard from {}; {} \
                 (window {window} ms)",
                s.input,
                ago(t).map_or("never".into(), |ms| format!("{ms} ms ago")),
                match q {
                    Some(q) => format!("n{q} was heard from last, {:?} ms ago", ago(q)),
                    None => "nobody was heard from within the window".into(),
                }
            )),
            (many, _) => Err(format!(
                "HANDOVER: n{id} sent TIMEOUT_NOW to {many:?} on {:?}: one successor at most",
                s.input
            )),
        }
    }

    /// The planned stop's rules, step by step.
    fn stop(
        &mut self,
        s: &Step,
        election_min: Time,
        check: &Checker,
        started: Option<Started>,
    ) -> Result<(), Violation> {
        let id = s.id;
        let (before, after) = s.roles;
        if s.input == Input::Stop {
            match before {
                Role::Leader => {
                    self.seen.stops_leading += 1;
                    match (after, started) {
                        (Role::Stopping, Some(h)) => {
                            let st = Stopping {
                                since: s.now,
                                term: h.term,
                                successor: h.successor,
                            };
                            self.set_stopping(id, Some(st));
                        }
                        (Role::Stopped, None) => {}
                        _ => {
                            return Err(format!(
                                "STOP: leader n{id} asked to stop became {after:?} having sent \
                                 {:?}: it hands over (Stopping) or stops",
                                s.sent
                            ))
                        }
                    }
                }
                Role::Stopping | Role::Stopped => {
                    if after != before || !s.sent.is_empty() {
                        return Err(format!(
                            "STOP: n{id}, {before:?}, asked to stop again became {after:?} and \
                             sent {:?}",
                            s.sent
                        ));
                    }
                }
                _ => {
                    self.seen.stops_other += 1;
                    let quiet = s.sent.is_empty() && s.persist.is_none() && s.before.0 == s.after.0;
                    if after != Role::Stopped || !quiet {
                        return Err(format!(
                            "STOP: n{id}, a {before:?} asked to stop, must stop at once and change \
                             nothing for the others: it became {after:?}, sent {:?}, persisted \
                             {:?}",
                            s.sent, s.persist
                        ));
                    }
                }
            }
            return Ok(());
        }
        let Some(st) = self.stopping[id] else {
            return Ok(());
        };
        if before != Role::Stopping {
            return Ok(());
        }
        if !matches!(after, Role::Stopping | Role::Stopped) {
            return Err(format!(
                "STOP: stopping n{id} became {after:?} on {:?}",
                s.input
            ));
        }
        let stale_leader = match s.input {
            Input::Receive { from, msg } => (msg.kind == Kind::Append).then_some((from, msg.term)),
            _ => None,
        };
        for &(to, msg) in s.sent {
            let ok = match msg.kind {
                Kind::TimeoutNow => to == st.successor && msg.term == st.term,
                Kind::VoteAck | Kind::PreVoteAck => true,
                Kind::AppendReply => stale_leader.is_some_and(|(l, t)| l == to && t < msg.term),
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "STOP: stopping n{id} sent {msg} to n{to} on {:?} (successor n{}, term {})",
                    s.input, st.successor, st.term
                ));
            }
        }
        for e in s.events {
            let Event::HandedOver { to, after_ms } = *e else {
                continue;
            };
            let ok = match (to, s.input) {
                (Some(l), Input::Receive { from, msg }) => {
                    from == l
                        && msg.kind == Kind::Append
                        && msg.term > st.term
                        && check.leader_of(msg.term) == Some(l)
                }
                (Some(_), _) => false,
                (None, _) => s.now >= st.since + election_min,
            };
            if !ok || after_ms != s.now - st.since {
                return Err(format!(
                    "STOP: n{id}, stopping since {} ms in term {}, said it handed over to {to:?} \
                     after {after_ms} ms on {:?}",
                    st.since, st.term, s.input
                ));
            }
        }
        if after == Role::Stopped {
            self.set_stopping(id, None);
            self.seen.stops_ended += 1;
            self.seen.longest_stop_ms = self.seen.longest_stop_ms.max(s.now - st.since);
        }
        Ok(())
    }

    /// A stop that has not ended within its bound, after every event. `running`: whether the
    /// node's process runs (not crashed, not frozen); `role`: its role now.
    pub fn stop_bound(
        &mut self,
        id: NodeId,
        now: Time,
        running: bool,
        role: Role,
        bound: Time,
    ) -> Result<(), Violation> {
        let Some(st) = self.stopping[id] else {
            return Ok(());
        };
        if !running || role != Role::Stopping {
            self.set_stopping(id, None);
            return Ok(());
        }
        if now > st.since + bound {
            return Err(format!(
                "STOP: n{id} still stopping {} ms after it was asked to (bound {bound} ms)",
                now - st.since
            ));
        }
        Ok(())
    }

    /// Whether node `id` has a stop under way.
    pub fn is_stopping(&self, id: NodeId) -> bool {
        self.stopping[id].is_some()
    }

    /// Whether anything waits for time to pass: a stop under way or a handover awaited.
    pub fn busy(&self) -> bool {
        self.stops > 0 || self.pending.is_some()
    }

    fn set_stopping(&mut self, id: NodeId, st: Option<Stopping>) {
        match (self.stopping[id].is_some(), st.is_some()) {
            (false, true) => self.stops += 1,
            (true, false) => self.stops -= 1,
            _ => {}
        }
        self.stopping[id] = st;
    }

    /// A handover the world judged healthy: it must complete by `by`.
    pub fn await_handover(&mut self, h: Started, since: Time, by: Time) {
        self.seen.awaited += 1;
        self.pending = Some(Pending { h, since, by });
    }

    /// Something happened that the healthy-handover property does not cover (a fault, a
    /// command, a restart): the watch ends.
    pub fn disturbed(&mut self) {
        self.pending = None;
    }

    /// The handover awaited: (leader, term, since), if any.
    pub fn awaited(&self) -> Option<Started> {
        self.pending.map(|p| p.h)
    }

    /// After every event: `done` says whether every running node but a stopping one follows one
    /// leader of a term above the handover's.
    pub fn resolve(&mut self, now: Time, done: bool) -> Result<(), Violation> {
        let Some(p) = self.pending else {
            return Ok(());
        };
        if done {
            self.pending = None;
            self.seen.completed += 1;
            let took = now - p.since;
            self.seen.slowest_ms = self.seen.slowest_ms.max(took);
            let bound = (p.by - p.since).max(1);
            self.seen.slowest_pct = self.seen.slowest_pct.max(100 * took / bound);
            return Ok(());
        }
        if now > p.by {
            return Err(format!(
                "HANDOVER: n{} handed term {} over to n{} at {} ms on a healthy network, and no \
                 leader of a later term was agreed by {} ms ({} ms: about two round trips)",
                p.h.leader,
                p.h.term,
                p.h.successor,
                p.since,
                p.by,
                p.by - p.since
            ));
        }
        Ok(())
    }

    /// A crashed node's stop is over (its process is gone).
    pub fn forget(&mut self, id: NodeId) {
        self.set_stopping(id, None);
        self.heard[id].iter_mut().for_each(|h| *h = None);
    }
}
