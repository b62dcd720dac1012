//! The protocol: which five-field datagram means which core input, and back.
//! Owns the request names and field meanings; must never decide anything about elections or
//! touch a socket.
//!
//! | request            | sender     | term                 | key        | value       |
//! |--------------------|------------|----------------------|------------|-------------|
//! | `APPEND_RPC`       | leader     | leader's term        | null       | null        |
//! | `APPEND_REPLY`     | follower   | follower's term      | null       | null        |
//! | `VOTE_REQUEST`     | candidate  | candidate's term     | `TRANSFER` when forced, else null | null |
//! | `VOTE_ACK`         | voter      | term of the vote     | null       | null        |
//! | `PRE_VOTE_REQUEST` | pre-candidate | proposed term     | null       | null        |
//! | `PRE_VOTE_ACK`     | voter      | proposed term        | null       | null        |
//! | `TIMEOUT_NOW`      | leader stepping down | leader's term | null  | null        |
//! | `LEADER_INFO`      | controller | any                  | any        | any         |
//! | (its reply)        | node       | node's term          | `LEADER`   | leader or null |
//! | `CONVERT_FOLLOWER`, `TIMEOUT`, `SHUTDOWN` | controller | any | any | any      |
//! | `STATUS`           | controller | any                  | any        | any         |
//! | (its reply)        | node       | node's term          | `STATUS`   | logfmt, see [`status_value`] |
//!
//! Request names are the protocol's constants, matched byte for byte: `leader_info`, `Shutdown`,
//! ` TIMEOUT` or `APPEND` are unknown requests (dropped, and the log line names them). Nothing is
//! trimmed either: no sender of this protocol pads a constant, and every second spelling a
//! receiver tolerates is one more way for stray bytes to become a command. Controller requests
//! are recognised whatever `sender_name` is.
use crate::json::Datagram;
use crate::raft::{Command, Kind, Msg, NodeId, Status};

/// `key` of a forced `VOTE_REQUEST`: a leadership transfer that overrides leader stickiness.
pub const TRANSFER: &str = "TRANSFER";
/// `key` of a `LEADER_INFO` reply.
pub const LEADER: &str = "LEADER";
/// `key` of a `STATUS` reply.
pub const STATUS: &str = "STATUS";

/// What a datagram asks of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    Peer {
        from: NodeId,
        msg: Msg,
    },
    Control(Command),
    /// `reply_shaped`: it carries `key: "LEADER"`, as a node's answer does. A node never answers
    /// one that comes from a peer's address, so two nodes can never be made to ping-pong.
    LeaderInfo {
        reply_shaped: bool,
    },
    /// A read-only request for [`status_value`]; `reply_shaped` as for `LeaderInfo` (`key:
    /// "STATUS"`), with the same rule.
    Status {
        reply_shaped: bool,
    },
}

/// The controller requests, by the command-line verb that sends each.
pub const CONTROL_VERBS: [(&str, &str); 4] = [
    ("leader-info", "LEADER_INFO"),
    ("convert-follower", "CONVERT_FOLLOWER"),
    ("timeout", "TIMEOUT"),
    ("shutdown", "SHUTDOWN"),
];

/// The request a command-line verb sends (`convert-follower` -> `CONVERT_FOLLOWER`).
pub fn request_for_verb(verb: &str) -> Option<&'static str> {
    CONTROL_VERBS
        .iter()
        .find(|(v, _)| *v == verb)
        .map(|(_, request)| *request)
}

/// Why a decoded datagram means nothing to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    NoRequest,
    UnknownRequest,
    NoSender,
    UnknownSender,
    NoTerm,
}

impl Reject {
    /// The reason in the log line of the dropped datagram.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::NoRequest => "no-request",
            Reject::UnknownRequest => "unknown-request",
            Reject::NoSender => "no-sender",
            Reject::UnknownSender => "unknown-sender",
            Reject::NoTerm => "no-term",
        }
    }
}

/// Classify a decoded datagram. `peers` are the configured names, in id order.
pub fn classify(d: &Datagram, peers: &[String]) -> Result<Incoming, Reject> {
    let Some(request) = d.request.as_deref() else {
        return Err(Reject::NoRequest);
    };
    let kind = match request {
        "LEADER_INFO" => {
            let reply_shaped = d.key.as_deref() == Some(LEADER);
            return Ok(Incoming::LeaderInfo { reply_shaped });
        }
        "STATUS" => {
            let reply_shaped = d.key.as_deref() == Some(STATUS);
            return Ok(Incoming::Status { reply_shaped });
        }
        "CONVERT_FOLLOWER" => return Ok(Incoming::Control(Command::ConvertFollower)),
        "TIMEOUT" => return Ok(Incoming::Control(Command::Timeout)),
        "SHUTDOWN" => return Ok(Incoming::Control(Command::Shutdown)),
        "APPEND_RPC" => Kind::Append,
        "APPEND_REPLY" => Kind::AppendReply,
        "VOTE_REQUEST" => Kind::VoteRequest {
            forced: d.key.as_deref() == Some(TRANSFER),
        },
        "VOTE_ACK" => Kind::VoteAck,
        "PRE_VOTE_REQUEST" => Kind::PreVoteRequest,
        "PRE_VOTE_ACK" => Kind::PreVoteAck,
        "TIMEOUT_NOW" => Kind::TimeoutNow,
        _ => return Err(Reject::UnknownRequest),
    };
    let sender = d.sender_name.as_deref().ok_or(Reject::NoSender)?;
    let from = peers
        .iter()
        .position(|p| p == sender)
        .ok_or(Reject::UnknownSender)?;
    let term = d.term.ok_or(Reject::NoTerm)?;
    Ok(Incoming::Peer {
        from,
        msg: Msg { term, kind },
    })
}

/// The datagram a node sends for a core message.
pub fn encode(me: &str, msg: Msg) -> Datagram {
    let forced = matches!(msg.kind, Kind::VoteRequest { forced: true });
    Datagram {
        sender_name: Some(me.to_string()),
        request: Some(msg.kind.as_str().to_string()),
        term: Some(msg.term),
        key: forced.then(|| TRANSFER.to_string()),
        value: None,
    }
}

/// The answer to `LEADER_INFO`.
pub fn leader_info_reply(me: &str, term: u64, leader: Option<&str>) -> Datagram {
    Datagram {
        sender_name: Some(me.to_string()),
        request: Some("LEADER_INFO".to_string()),
        term: Some(term),
        key: Some(LEADER.to_string()),
        value: leader.map(str::to_string),
    }
}

/// The `value` of a `STATUS` reply: one logfmt line, names quoted only when they must be,
/// `none` for an absent value.
///
/// `role=Follower term=4 voted_for=Node2 leader=Node2 timer_ms=173 heard_ms=23 election_ms=150-300`
///
/// `timer_ms` is the time left before the timer fires (a leader's: its next heartbeat);
/// `heard_ms` the time since the node last heard from its leader (0 on the leader itself);
/// `election_ms` the configured timeout range, so a reader can scale `timer_ms`.
pub fn status_value(st: &Status, names: &[String], election_ms: (u64, u64)) -> String {
    let name = |id: Option<NodeId>| {
        id.and_then(|i| names.get(i))
            .map_or_else(|| "none".to_string(), |n| crate::log::value(n))
    };
    let ms = |v: Option<u64>| v.map_or_else(|| "none".to_string(), |v| v.to_string());
    format!(
        "role={} term={} voted_for={} leader={} timer_ms={} heard_ms={} election_ms={}-{}",
        st.role.as_str(),
        st.term,
        name(st.voted_for),
        name(st.leader),
        ms(st.timer_ms),
        ms(st.heard_ms),
        election_ms.0,
        election_ms.1
    )
}

/// The answer to `STATUS`.
pub fn status_reply(me: &str, term: u64, value: String) -> Datagram {
    Datagram {
        sender_name: Some(me.to_string()),
        request: Some("STATUS".to_string()),
        term: Some(term),
        key: Some(STATUS.to_string()),
        value: Some(value),
    }
}

/// A controller request, exactly as the reference controller fills its template. `request` is
/// sent as given: one of the constants, or (to test a node) anything else.
pub fn control_request(sender: &str, request: &str) -> Datagram {
    Datagram {
        sender_name: Some(sender.to_string()),
        request: Some(request.to_string()),
        ..Datagram::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEADER_INFO: Incoming = Incoming::LeaderInfo {
        reply_shaped: false,
    };

    fn peers() -> Vec<String> {
        (1..=5).map(|i| format!("Node{i}")).collect()
    }

    fn dgram(
        sender: Option<&str>,
        request: &str,
        term: Option<u64>,
        key: Option<&str>,
    ) -> Datagram {
        Datagram {
            sender_name: sender.map(str::to_string),
            request: Some(request.to_string()),
            term,
            key: key.map(str::to_string),
            value: None,
        }
    }

    #[test]
    fn every_node_message_round_trips_through_a_datagram() {
        let kinds = [
            Kind::Append,
            Kind::AppendReply,
            Kind::VoteRequest { forced: false },
            Kind::VoteRequest { forced: true },
            Kind::VoteAck,
            Kind::PreVoteRequest,
            Kind::PreVoteAck,
            Kind::TimeoutNow,
        ];
        for kind in kinds {
            let msg = Msg { term: 9, kind };
            let d = encode("Node2", msg);
            assert_eq!(classify(&d, &peers()), Ok(Incoming::Peer { from: 1, msg }));
        }
    }

    #[test]
    fn request_names_are_exact_constants() {
        let p = peers();
        for near in [
            "leader_info",
            "Leader_Info",
            "leader-info",
            "LEADER-INFO",
            " LEADER_INFO",
            "LEADER_INFO ",
            "LEADER_INFO\n",
            "Shutdown",
            "shutdown",
            "timeout",
            "status",
            " STATUS",
            "CONVERT FOLLOWER",
            "APPEND",
            "append_rpc",
            "VOTE_REQUEST\u{0}",
            "ＴＩＭＥＯＵＴ",
            "",
        ] {
            for sender in [Some("Controller"), Some("Node1")] {
                let d = dgram(sender, near, Some(1), None);
                assert_eq!(classify(&d, &p), Err(Reject::UnknownRequest), "{near:?}");
            }
        }
    }

    #[test]
    fn verbs_map_to_the_constants_and_nothing_else() {
        assert_eq!(
            request_for_verb("convert-follower"),
            Some("CONVERT_FOLLOWER")
        );
        assert_eq!(request_for_verb("leader-info"), Some("LEADER_INFO"));
        assert_eq!(request_for_verb("TIMEOUT"), None);
        for (_, request) in CONTROL_VERBS {
            let d = control_request("Controller", request);
            assert!(matches!(
                classify(&d, &peers()),
                Ok(Incoming::Control(_) | Incoming::LeaderInfo { .. })
            ));
        }
    }

    #[test]
    fn controller_requests_ignore_sender() {
        for (req, want) in [
            ("LEADER_INFO", LEADER_INFO),
            (
                "CONVERT_FOLLOWER",
                Incoming::Control(Command::ConvertFollower),
            ),
            ("TIMEOUT", Incoming::Control(Command::Timeout)),
            ("SHUTDOWN", Incoming::Control(Command::Shutdown)),
            (
                "STATUS",
                Incoming::Status {
                    reply_shaped: false,
                },
            ),
        ] {
            for sender in [Some("Controller"), None, Some("Node3"), Some("anyone")] {
                assert_eq!(
                    classify(&dgram(sender, req, None, None), &peers()),
                    Ok(want.clone())
                );
            }
        }
    }

    #[test]
    fn peer_messages_need_a_known_sender_and_a_term() {
        let p = peers();
        assert_eq!(
            classify(&dgram(Some("Node9"), "APPEND_RPC", Some(1), None), &p),
            Err(Reject::UnknownSender)
        );
        assert_eq!(
            classify(&dgram(None, "APPEND_RPC", Some(1), None), &p),
            Err(Reject::NoSender)
        );
        assert_eq!(
            classify(&dgram(Some("Node1"), "VOTE_ACK", None, None), &p),
            Err(Reject::NoTerm)
        );
        assert_eq!(
            classify(&dgram(Some("Node1"), "HELLO", Some(1), None), &p),
            Err(Reject::UnknownRequest)
        );
        assert_eq!(classify(&Datagram::default(), &p), Err(Reject::NoRequest));
    }

    #[test]
    fn a_reply_shaped_leader_info_is_marked() {
        let reply = leader_info_reply("Node1", 3, Some("Node1"));
        let got = classify(&reply, &peers());
        assert_eq!(got, Ok(Incoming::LeaderInfo { reply_shaped: true }));
    }

    #[test]
    fn the_leader_info_reply_has_the_documented_shape() {
        let d = leader_info_reply("Node3", 4, Some("Node2"));
        assert_eq!(
            crate::json::emit(&d),
            br#"{"sender_name": "Node3", "request": "LEADER_INFO", "term": 4, "key": "LEADER", "value": "Node2"}"#
        );
        let none = leader_info_reply("Node3", 4, None);
        assert_eq!(none.value, None);
    }

    #[test]
    fn a_reply_shaped_status_is_marked() {
        let reply = status_reply("Node1", 3, String::new());
        let got = classify(&reply, &peers());
        assert_eq!(got, Ok(Incoming::Status { reply_shaped: true }));
    }

    #[test]
    fn the_status_reply_has_the_documented_shape() {
        let st = Status {
            role: crate::raft::Role::Follower,
            term: 4,
            voted_for: Some(1),
            leader: Some(1),
            timer_ms: Some(173),
            heard_ms: Some(23),
        };
        let value = status_value(&st, &peers(), (150, 300));
        let d = status_reply("Node3", 4, value);
        assert_eq!(
            crate::json::emit(&d),
            br#"{"sender_name": "Node3", "request": "STATUS", "term": 4, "key": "STATUS", "value": "role=Follower term=4 voted_for=Node2 leader=Node2 timer_ms=173 heard_ms=23 election_ms=150-300"}"#
        );
    }

    #[test]
    fn status_value_says_none_for_what_is_absent_and_quotes_odd_names() {
        let st = Status {
            role: crate::raft::Role::Stopped,
            term: 0,
            voted_for: Some(0),
            leader: None,
            timer_ms: None,
            heard_ms: None,
        };
        let names = vec!["a b".to_string(), "x\"y".to_string()];
        assert_eq!(
            status_value(&st, &names, (10, 20)),
            r#"role=Stopped term=0 voted_for="a b" leader=none timer_ms=none heard_ms=none election_ms=10-20"#
        );
        // The longest names a configuration allows still fit one reply datagram.
        let long = vec!["N".repeat(64); 2];
        let st = Status {
            role: crate::raft::Role::PreCandidate,
            term: u64::MAX,
            voted_for: Some(0),
            leader: Some(1),
            timer_ms: Some(u64::MAX),
            heard_ms: Some(u64::MAX),
        };
        let d = status_reply(
            &"N".repeat(64),
            u64::MAX,
            status_value(&st, &long, (60000, 60000)),
        );
        let bytes = crate::json::emit(&d);
        assert!(bytes.len() <= crate::json::MAX_OUTPUT);
        assert_eq!(crate::json::parse(&bytes).unwrap(), d, "nothing was cut");
    }
}
