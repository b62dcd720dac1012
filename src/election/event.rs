//! What the election core reports, and the one text form of its values.
//! Owns the events with their typed reasons and the canonical text (`Display`) of `Msg`, `Event`
//! and `Output` that log lines and traces share; must never decide anything (the core does).
use super::{NodeId, Output, Role};
use std::fmt;

/// Why a node changed role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    ElectionTimeout,
    PreVoteWon,
    LostQuorum,
    HigherTerm,
    HeardLeader,
    Shutdown,
    Revived,
    ConvertFollower,
    TimeoutCommand,
    /// A leader stepping down named this node its successor (`TIMEOUT_NOW`, §3.10).
    LeadershipTransfer,
    /// The process is asked to end (`Input::Stop`).
    PlannedStop,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::ElectionTimeout => "election-timeout",
            Cause::PreVoteWon => "pre-vote-won",
            Cause::LostQuorum => "lost-quorum",
            Cause::HigherTerm => "higher-term",
            Cause::HeardLeader => "heard-leader",
            Cause::Shutdown => "shutdown",
            Cause::Revived => "revived",
            Cause::ConvertFollower => "convert-follower",
            Cause::TimeoutCommand => "timeout-command",
            Cause::LeadershipTransfer => "leadership-transfer",
            Cause::PlannedStop => "planned-stop",
        }
    }
}

/// How a node answered a (pre-)vote request, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Granted,
    /// It heard from a live leader within the minimum election timeout (§4.2.3).
    LeaderLease,
    AlreadyVoted,
    StaleTerm,
}

impl Verdict {
    pub fn granted(self) -> bool {
        self == Verdict::Granted
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Granted => "granted",
            Verdict::LeaderLease => "leader-lease",
            Verdict::AlreadyVoted => "already-voted",
            Verdict::StaleTerm => "stale-term",
        }
    }
}

/// Why a message changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disregard {
    NotAPeer,
    StaleTerm,
    /// Two leaders in one term cannot happen; a forged or corrupted message can claim it.
    SecondLeaderClaim,
}

impl Disregard {
    pub fn as_str(self) -> &'static str {
        match self {
            Disregard::NotAPeer => "not-a-peer",
            Disregard::StaleTerm => "stale-term",
            Disregard::SecondLeaderClaim => "second-leader-claim",
        }
    }
}

/// Something worth a log line. The core decides what happened; the runtime decides how to say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Became {
        role: Role,
        term: u64,
        cause: Cause,
    },
    /// `after_ms`: since the campaign began (its first pre-vote or vote).
    Elected {
        term: u64,
        votes: usize,
        of: usize,
        after_ms: u64,
    },
    /// This node answered `candidate`'s (pre-)vote request for `term`.
    Vote {
        candidate: NodeId,
        term: u64,
        pre: bool,
        verdict: Verdict,
    },
    /// A candidate learnt that a majority will not grant it this term; it waits for its timer.
    Lost {
        term: u64,
        refused: usize,
    },
    Ignored {
        from: NodeId,
        reason: Disregard,
    },
    /// The term moved on (always up), as the node became `role`.
    Term {
        from: u64,
        to: u64,
        role: Role,
    },
    /// The node follows a leader it did not follow at the start of the step (its own election
    /// is [`Event::Elected`]).
    Leader {
        leader: NodeId,
    },
    /// A planned stop ends: `to` leads a later term (`None`: none was heard of within the bound),
    /// `after_ms` since the stop began.
    HandedOver {
        to: Option<NodeId>,
        after_ms: u64,
    },
}

/// One value of an event's canonical text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Node(NodeId),
    Num(u64),
    Flag(bool),
    Text(&'static str),
    /// `votes=3/5`.
    Ratio(usize, usize),
}

impl fmt::Display for Field {
    /// Nodes as `n<id>`; a caller with names renders [`Field::Node`] itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Field::Node(id) => write!(f, "n{id}"),
            Field::Num(n) => write!(f, "{n}"),
            Field::Flag(b) => write!(f, "{b}"),
            Field::Text(s) => f.write_str(s),
            Field::Ratio(a, b) => write!(f, "{a}/{b}"),
        }
    }
}

impl Event {
    /// The event's name in log lines (`event=...`) and traces.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Became { .. } => "become",
            Event::Elected { .. } => "elected",
            Event::Vote { pre: true, .. } => "pre-vote",
            Event::Vote { pre: false, .. } => "vote",
            Event::Lost { .. } => "lost",
            Event::Ignored { .. } => "ignored",
            Event::Term { .. } => "term",
            Event::Leader { .. } => "leader",
            Event::HandedOver { .. } => "handed-over",
        }
    }

    /// The term and role the event happened in when they are not the node's at the end of the
    /// step (one step can pass through several roles).
    pub fn stamp(&self) -> Option<(u64, Role)> {
        match *self {
            Event::Became { role, term, .. } => Some((term, role)),
            Event::Term { to, role, .. } => Some((to, role)),
            _ => None,
        }
    }

    /// The event's fields, in the order log lines and traces write them.
    pub fn fields(&self) -> Vec<(&'static str, Field)> {
        use Field::*;
        match *self {
            Event::Became { role, cause, .. } => {
                vec![
                    ("to", Text(role.as_str())),
                    ("reason", Text(cause.as_str())),
                ]
            }
            Event::Elected {
                votes,
                of,
                after_ms,
                ..
            } => vec![("votes", Ratio(votes, of)), ("after_ms", Num(after_ms))],
            Event::Vote {
                candidate,
                term,
                verdict,
                ..
            } => vec![
                ("candidate", Node(candidate)),
                ("for_term", Num(term)),
                ("granted", Flag(verdict.granted())),
                ("reason", Text(verdict.as_str())),
            ],
            Event::Lost { term, refused } => {
                vec![("for_term", Num(term)), ("refused", Num(refused as u64))]
            }
            Event::Ignored { from, reason } => {
                vec![("from", Node(from)), ("reason", Text(reason.as_str()))]
            }
            Event::Term { from, .. } => vec![("from", Num(from))],
            Event::Leader { leader } => vec![("leader", Node(leader))],
            Event::HandedOver { to, after_ms } => vec![
                ("to", to.map_or(Text("none"), Node)),
                ("after_ms", Num(after_ms)),
            ],
        }
    }
}

/// The canonical text: `become t1 to=Candidate reason=pre-vote-won`, `vote candidate=n2 ...`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        if let Some((term, _)) = self.stamp() {
            write!(f, " t{term}")?;
        }
        for (key, value) in self.fields() {
            write!(f, " {key}={value}")?;
        }
        Ok(())
    }
}

/// One line: `persist t1 vote=n0; <event>; ...; send <msg> to n1,n2`, or `-` when empty. Equal
/// consecutive messages are grouped; the deadline is left out.
impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(h) = self.persist {
            let vote = h.voted_for.map_or("none".to_string(), |v| format!("n{v}"));
            parts.push(format!("persist t{} vote={vote}", h.term));
        }
        parts.extend(self.events.iter().map(Event::to_string));
        let mut rest = &self.send[..];
        while let Some(&(_, msg)) = rest.first() {
            let group = rest.iter().take_while(|(_, m)| *m == msg).count();
            let to: Vec<String> = rest[..group].iter().map(|(t, _)| format!("n{t}")).collect();
            parts.push(format!("send {msg} to {}", to.join(",")));
            rest = &rest[group..];
        }
        if parts.is_empty() {
            return f.write_str("-");
        }
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::election::{HardState, Kind, Msg};

    #[test]
    fn canonical_text_of_messages_events_and_outputs() {
        let forced = Msg {
            term: 3,
            kind: Kind::VoteRequest { forced: true },
        };
        assert_eq!(forced.to_string(), "VOTE_REQUEST(TRANSFER) t3");
        let vote = Event::Vote {
            candidate: 2,
            term: 4,
            pre: true,
            verdict: Verdict::LeaderLease,
        };
        assert_eq!(
            vote.to_string(),
            "pre-vote candidate=n2 for_term=4 granted=false reason=leader-lease"
        );
        let became = Event::Became {
            role: Role::Candidate,
            term: 1,
            cause: Cause::PreVoteWon,
        };
        assert_eq!(
            became.to_string(),
            "become t1 to=Candidate reason=pre-vote-won"
        );
        let append = Msg {
            term: 1,
            kind: Kind::Append,
        };
        let out = Output {
            persist: Some(HardState {
                term: 1,
                voted_for: Some(0),
            }),
            send: vec![(1, append), (2, append), (2, forced)],
            events: vec![became],
            deadline: Some(9),
        };
        assert_eq!(
            out.to_string(),
            "persist t1 vote=n0; become t1 to=Candidate reason=pre-vote-won; \
             send APPEND_RPC t1 to n1,n2; send VOTE_REQUEST(TRANSFER) t3 to n2"
        );
        assert_eq!(Output::default().to_string(), "-");
    }
}
