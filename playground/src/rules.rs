//! Which rule of the dissertation (Ongaro, "Consensus: Bridging Theory and Practice", 2014) a
//! step followed, read from the core's typed events: the cause of a role change, the verdict on
//! a vote, and otherwise the input. The quotes are the ones `tests/raft_rules.rs` tests.

use raft::election::{Cause, Command, Event, Input, Kind, Role, Verdict};
use raft::sim::Step;

/// The rule behind `step`. `stopped`: the node is stopped now (a step with no output then means
/// it ignored its input).
pub fn rule(step: &Step, stopped: bool) -> &'static str {
    let events = &step.output.events;
    if let Some(r) = events.iter().find_map(elected) {
        return r;
    }
    if let Some(r) = events.iter().find_map(became) {
        return r;
    }
    if let Some(r) = events.iter().find_map(vote) {
        return r;
    }
    for e in events {
        match e {
            Event::Lost { .. } => {
                return "§3.4: a candidate that cannot get a majority this term \"times out and \
                        starts a new election\"; until its timer fires it waits."
            }
            Event::Ignored { .. } => {
                return "Figure 3.1: \"Reply false if term < currentTerm\": a message from an \
                        older term changes nothing (its sender learns the newer term)."
            }
            Event::Leader { .. } => {
                return "§3.4: \"If the leader's term (included in its RPC) is at least as large \
                        as the candidate's current term, then the candidate recognizes the leader \
                        as legitimate\"; a follower learns its leader from the heartbeat."
            }
            _ => {}
        }
    }
    quiet(step, stopped)
}

fn elected(e: &Event) -> Option<&'static str> {
    matches!(e, Event::Elected { .. }).then_some(
        "§3.4: \"A candidate wins an election if it receives votes from a majority of the \
         servers in the full cluster for the same term.\" It sends heartbeats at once.",
    )
}

fn became(e: &Event) -> Option<&'static str> {
    let Event::Became { role, cause, .. } = *e else {
        return None;
    };
    Some(match (role, cause) {
        (Role::PreCandidate, _) => {
            "§9.6 PreVote: the election timeout elapsed; \"a candidate only increments its term \
             if it first learns from a majority of the cluster that they would be willing to \
             grant the candidate their votes\", so it asks first, in its current term."
        }
        (Role::Candidate, Cause::PreVoteWon) => {
            "§9.6 PreVote: a majority would grant its vote, so it starts the real election: \
             \"Increment currentTerm, Vote for self, Reset election timer, Send RequestVote \
             RPCs to all other servers\" (Figure 3.1)."
        }
        (Role::Candidate, Cause::ElectionTimeout) => {
            "Figure 3.1, Followers: \"If election timeout elapses without receiving \
             AppendEntries RPC from current leader or granting vote to candidate: convert to \
             candidate.\""
        }
        (Role::Candidate, Cause::TimeoutCommand | Cause::LeadershipTransfer) => {
            "§3.10 TimeoutNow: \"the target server starts a new election (incrementing its term \
             and becoming a candidate)\" at once, with a vote request marked TRANSFER that \
             overrides the others' leader stickiness (§4.2.3)."
        }
        (Role::Stopping, _) => {
            "§3.10 on a planned stop (SIGTERM): the leader hands over as on CONVERT_FOLLOWER, \
             TimeoutNow to the follower it heard from last, and waits without campaigning until \
             a leader of a later term appears or a minimum election timeout passes."
        }
        (Role::Stopped, Cause::PlannedStop) => {
            "A planned stop ends: the node is stopped, silent and deaf, and its process may exit \
             (here it waits; CONVERT_FOLLOWER brings it back, as a restart would)."
        }
        (_, Cause::LostQuorum) => {
            "§6.2 CheckQuorum: \"a leader steps down if an election timeout elapses without a \
             successful round of heartbeats to a majority of its cluster\"."
        }
        (_, Cause::HigherTerm) => {
            "Figure 3.1, All Servers: \"If RPC request or response contains term T > \
             currentTerm: set currentTerm = T, convert to follower.\""
        }
        (_, Cause::HeardLeader) => {
            "Figure 3.1, Candidates: \"If AppendEntries RPC received from new leader: convert \
             to follower.\""
        }
        (_, Cause::ConvertFollower) => {
            "§3.10 leadership transfer: told CONVERT_FOLLOWER, a leader steps down in its term \
             and \"sends a TimeoutNow request to the target server\", the follower it heard from \
             last; a candidate simply returns to follower."
        }
        (_, Cause::Shutdown) => {
            "The controller's SHUTDOWN: the node stops, silent and deaf, keeping its term and \
             vote, until TIMEOUT or CONVERT_FOLLOWER revives it."
        }
        (_, Cause::Revived) => {
            "The controller revived a stopped node: it comes back as a follower with the term \
             and vote it had (§3.8: they are persistent state)."
        }
        _ => "Figure 3.1: a change of role.",
    })
}

fn vote(e: &Event) -> Option<&'static str> {
    let Event::Vote { pre, verdict, .. } = *e else {
        return None;
    };
    Some(match (pre, verdict) {
        (true, Verdict::Granted) => {
            "§9.6 PreVote: it would vote for this candidate (no leader heard lately, the term is \
             newer); a pre-vote changes neither its term nor its vote."
        }
        (false, Verdict::Granted) => {
            "Figure 3.1, RequestVote: \"If votedFor is null or candidateId ... grant vote\"; the \
             vote is persisted before the answer is sent."
        }
        (_, Verdict::LeaderLease) => {
            "§4.2.3: \"if a server receives a RequestVote request within the minimum election \
             timeout of hearing from a current leader, it does not update its term or grant its \
             vote.\""
        }
        (_, Verdict::AlreadyVoted) => {
            "§3.4: \"Each server will vote for at most one candidate in a given term, on a \
             first-come-first-served basis.\""
        }
        (_, Verdict::StaleTerm) => {
            "Figure 3.1, RequestVote: \"Reply false if term < currentTerm.\""
        }
    })
}

/// A step that logged no event: read from its input.
fn quiet(step: &Step, stopped: bool) -> &'static str {
    let sends = |k: Kind| step.output.send.iter().any(|(_, m)| m.kind == k);
    match step.input {
        _ if stopped && !matches!(step.input, Input::Command(_)) => {
            "A stopped node (SHUTDOWN) is deaf: it ignores every message and runs no timer."
        }
        Input::Tick if sends(Kind::Append) => {
            "Figure 3.1, Leaders: send heartbeats \"during idle periods to prevent election \
             timeouts (§3.4)\"."
        }
        Input::Tick => "The timer fired early or was held back; nothing is due yet.",
        Input::Receive { msg, .. } => match msg.kind {
            Kind::Append => {
                "§3.4: \"A server remains in follower state as long as it receives valid RPCs \
                 from a leader\": the heartbeat resets its election timer."
            }
            Kind::AppendReply => {
                "§6.2 CheckQuorum: the leader notes who answered its heartbeat; a majority of \
                 recent answers keeps it leading."
            }
            Kind::VoteAck | Kind::PreVoteAck => {
                "§3.4: a vote counted; no majority yet, or the election is already decided."
            }
            _ => "Figure 3.1: the message changes nothing here.",
        },
        Input::Command(Command::ConvertFollower) => {
            "CONVERT_FOLLOWER on a follower changes nothing: being told is not hearing from a \
             leader, so neither its timer nor its lease moves."
        }
        Input::Command(_) => "A controller request that changes nothing in this role.",
        Input::Stop => "A stop asked again: the node is already stopping or stopped.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::election::{Msg, Output};

    fn step(input: Input, events: Vec<Event>) -> Step {
        Step {
            at: 0,
            node: 0,
            input,
            output: Output {
                events,
                ..Output::default()
            },
        }
    }

    #[test]
    fn each_cause_and_verdict_names_its_section() {
        let became = |role, cause| Event::Became {
            role,
            term: 1,
            cause,
        };
        let cases = [
            (became(Role::Follower, Cause::LostQuorum), "§6.2"),
            (became(Role::PreCandidate, Cause::ElectionTimeout), "§9.6"),
            (became(Role::Candidate, Cause::LeadershipTransfer), "§3.10"),
            (became(Role::Follower, Cause::ConvertFollower), "§3.10"),
            (became(Role::Follower, Cause::HigherTerm), "Figure 3.1"),
        ];
        for (event, section) in cases {
            let r = rule(&step(Input::Tick, vec![event]), false);
            assert!(r.starts_with(section), "{event:?}: {r}");
        }
        let lease = Event::Vote {
            candidate: 1,
            term: 2,
            pre: true,
            verdict: Verdict::LeaderLease,
        };
        let msg = Msg {
            term: 2,
            kind: Kind::PreVoteRequest,
        };
        let input = Input::Receive { from: 1, msg };
        assert!(rule(&step(input, vec![lease]), false).starts_with("§4.2.3"));
        assert!(rule(&step(input, vec![]), true).contains("stopped"));
    }
}
