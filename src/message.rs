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
//! | `AUTH_HELLO`       | keyed node | 0                    | null       | seal (see `auth`) |
//!
//! Every name is declared once, in [`Request`]; the core's messages and commands map onto it.
//!
//! Request names are the protocol's constants, matched byte for byte: `leader_info`, `Shutdown`,
//! ` TIMEOUT` or `APPEND` are unknown requests (dropped, and the log line names them). Nothing is
//! trimmed either: no sender of this protocol pads a constant, and every second spelling a
//! receiver tolerates is one more way for stray bytes to become a command. Controller requests
//! are recognised whatever `sender_name` is.
use crate::election::{Command, Kind, Msg, NodeId, Status};
use crate::json::Datagram;
use std::fmt;

/// Declares a wire enum once: each variant beside its exact spelling, with `ALL`, `name` and
/// `parse` derived from that one list (so no name is ever written twice).
macro_rules! wire_names {
    ($(#[$meta:meta])* pub enum $ty:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $ty { $($(#[$vmeta])* $variant,)+ }

        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant,)+];

            /// The spelling on the wire.
            pub const fn name(self) -> &'static str {
                match self { $($ty::$variant => $text,)+ }
            }

            /// The variant spelled exactly `text`, byte for byte.
            pub fn parse(text: &str) -> Option<$ty> {
                match text { $($text => Some($ty::$variant),)+ _ => None }
            }
        }
    };
}

wire_names! {
    /// Every `request` this protocol knows.
    pub enum Request {
        AppendRpc = "APPEND_RPC",
        AppendReply = "APPEND_REPLY",
        VoteRequest = "VOTE_REQUEST",
        VoteAck = "VOTE_ACK",
        PreVoteRequest = "PRE_VOTE_REQUEST",
        PreVoteAck = "PRE_VOTE_ACK",
        TimeoutNow = "TIMEOUT_NOW",
        LeaderInfo = "LEADER_INFO",
        ConvertFollower = "CONVERT_FOLLOWER",
        Timeout = "TIMEOUT",
        Shutdown = "SHUTDOWN",
        Status = "STATUS",
        /// A keyed node's epoch announcement (see `auth`).
        AuthHello = "AUTH_HELLO",
    }
}

impl Request {
    /// The command-line verb that sends this request (`raft convert-follower Node2`).
    pub const fn verb(self) -> Option<&'static str> {
        match self {
            Request::LeaderInfo => Some("leader-info"),
            Request::ConvertFollower => Some("convert-follower"),
            Request::Timeout => Some("timeout"),
            Request::Shutdown => Some("shutdown"),
            _ => None,
        }
    }

    /// The request a command-line verb sends (`convert-follower` -> `CONVERT_FOLLOWER`).
    pub fn from_verb(verb: &str) -> Option<Request> {
        Request::ALL
            .iter()
            .copied()
            .find(|r| r.verb() == Some(verb))
    }

    /// What a datagram with this request asks of a node, given its `key` (`None` for a node
    /// message, whose meaning needs the sender and term too).
    fn meaning(self, key: Option<&str>) -> Meaning {
        let reply_shaped = |k: &str| key == Some(k);
        match self {
            Request::AppendRpc => Meaning::Peer(Kind::Append),
            Request::AppendReply => Meaning::Peer(Kind::AppendReply),
            Request::VoteRequest => Meaning::Peer(Kind::VoteRequest {
                forced: key == Some(TRANSFER),
            }),
            Request::VoteAck => Meaning::Peer(Kind::VoteAck),
            Request::PreVoteRequest => Meaning::Peer(Kind::PreVoteRequest),
            Request::PreVoteAck => Meaning::Peer(Kind::PreVoteAck),
            Request::TimeoutNow => Meaning::Peer(Kind::TimeoutNow),
            Request::LeaderInfo => Meaning::Query(Query::LeaderInfo, reply_shaped(LEADER)),
            Request::Status => Meaning::Query(Query::Status, reply_shaped(STATUS)),
            Request::ConvertFollower => Meaning::Control(Command::ConvertFollower),
            Request::Timeout => Meaning::Control(Command::Timeout),
            Request::Shutdown => Meaning::Control(Command::Shutdown),
            // Only a keyed node's guard reads it (see `route`); to the protocol it is unknown.
            Request::AuthHello => Meaning::Unknown,
        }
    }
}

impl From<Kind> for Request {
    fn from(kind: Kind) -> Request {
        match kind {
            Kind::Append => Request::AppendRpc,
            Kind::AppendReply => Request::AppendReply,
            Kind::VoteRequest { .. } => Request::VoteRequest,
            Kind::VoteAck => Request::VoteAck,
            Kind::PreVoteRequest => Request::PreVoteRequest,
            Kind::PreVoteAck => Request::PreVoteAck,
            Kind::TimeoutNow => Request::TimeoutNow,
        }
    }
}

impl From<Command> for Request {
    fn from(cmd: Command) -> Request {
        match cmd {
            Command::ConvertFollower => Request::ConvertFollower,
            Command::Timeout => Request::Timeout,
            Command::Shutdown => Request::Shutdown,
        }
    }
}

/// `TIMEOUT`: a command's canonical text is its request name.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Request::from(*self).name())
    }
}

/// `VOTE_REQUEST t3`, `VOTE_REQUEST(TRANSFER) t3` for a forced one.
impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let forced = matches!(self.kind, Kind::VoteRequest { forced: true });
        let transfer = if forced { "(TRANSFER)" } else { "" };
        let name = Request::from(self.kind).name();
        write!(f, "{name}{transfer} t{}", self.term)
    }
}

/// `key` of a forced `VOTE_REQUEST`: a leadership transfer that overrides leader stickiness.
pub const TRANSFER: &str = "TRANSFER";
/// `key` of a `LEADER_INFO` reply.
pub const LEADER: &str = "LEADER";
/// `key` of a `STATUS` reply.
pub const STATUS: &str = "STATUS";

/// A read-only request, answered from the node's state without stepping it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    LeaderInfo,
    Status,
}

impl Query {
    pub fn request(self) -> Request {
        match self {
            Query::LeaderInfo => Request::LeaderInfo,
            Query::Status => Request::Status,
        }
    }
}

enum Meaning {
    Peer(Kind),
    Control(Command),
    Query(Query, bool),
    Unknown,
}

/// What a datagram asks of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    Peer {
        from: NodeId,
        msg: Msg,
    },
    Control(Command),
    /// `reply_shaped`: it carries the `key` a node's answer carries (`LEADER`, `STATUS`). A node
    /// never answers one that comes from a peer's address, so two nodes can never be made to
    /// ping-pong.
    Query {
        query: Query,
        reply_shaped: bool,
    },
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

/// Classify a decoded datagram. `peers` are the configured names, in id order. Controller
/// requests are recognised whatever their sender; node messages need a member's name and a term.
pub fn classify(d: &Datagram, peers: &[String]) -> Result<Incoming, Reject> {
    let request = d.request.as_deref().ok_or(Reject::NoRequest)?;
    let request = Request::parse(request).ok_or(Reject::UnknownRequest)?;
    let kind = match request.meaning(d.key.as_deref()) {
        Meaning::Control(cmd) => return Ok(Incoming::Control(cmd)),
        Meaning::Query(query, reply_shaped) => {
            return Ok(Incoming::Query {
                query,
                reply_shaped,
            })
        }
        Meaning::Unknown => return Err(Reject::UnknownRequest),
        Meaning::Peer(kind) => kind,
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
        request: Some(Request::from(msg.kind).name().to_string()),
        term: Some(msg.term),
        key: forced.then(|| TRANSFER.to_string()),
        value: None,
    }
}

/// The answer to a query: `key` says which (`LEADER`, `STATUS`); `value` is the leader's name
/// (or null), or the [`status_value`] line.
pub fn reply(query: Query, me: &str, term: u64, value: Option<String>) -> Datagram {
    let key = match query {
        Query::LeaderInfo => LEADER,
        Query::Status => STATUS,
    };
    Datagram {
        sender_name: Some(me.to_string()),
        request: Some(query.request().name().to_string()),
        term: Some(term),
        key: Some(key.to_string()),
        value,
    }
}

/// The answer to `LEADER_INFO`.
pub fn leader_info_reply(me: &str, term: u64, leader: Option<&str>) -> Datagram {
    reply(Query::LeaderInfo, me, term, leader.map(str::to_string))
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
    reply(Query::Status, me, term, Some(value))
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

    const LEADER_INFO: Incoming = Incoming::Query {
        query: Query::LeaderInfo,
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
            Request::from_verb("convert-follower"),
            Some(Request::ConvertFollower)
        );
        assert_eq!(Request::from_verb("leader-info"), Some(Request::LeaderInfo));
        assert_eq!(Request::from_verb("TIMEOUT"), None);
        assert_eq!(Request::from_verb("status"), None, "status asks every node");
        let verbs = Request::ALL.iter().filter_map(|r| r.verb());
        assert_eq!(verbs.count(), 4);
        for request in Request::ALL.iter().filter(|r| r.verb().is_some()) {
            let d = control_request("Controller", request.name());
            assert!(matches!(
                classify(&d, &peers()),
                Ok(Incoming::Control(_) | Incoming::Query { .. })
            ));
        }
    }

    /// The table is the protocol: every name parses back to its variant, and no two variants
    /// share a name.
    #[test]
    fn every_request_name_is_declared_once_and_parses_back() {
        for &r in Request::ALL {
            assert_eq!(Request::parse(r.name()), Some(r));
            let same = Request::ALL.iter().filter(|o| o.name() == r.name());
            assert_eq!(same.count(), 1, "{r:?}");
        }
        assert_eq!(Request::ALL.len(), 13);
        assert_eq!(crate::auth::HELLO, "AUTH_HELLO");
        for cmd in [
            Command::ConvertFollower,
            Command::Timeout,
            Command::Shutdown,
        ] {
            assert_eq!(cmd.to_string(), Request::from(cmd).name());
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
                Incoming::Query {
                    query: Query::Status,
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
        let want = Incoming::Query {
            query: Query::LeaderInfo,
            reply_shaped: true,
        };
        assert_eq!(got, Ok(want));
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
        let want = Incoming::Query {
            query: Query::Status,
            reply_shaped: true,
        };
        assert_eq!(got, Ok(want));
    }

    #[test]
    fn the_status_reply_has_the_documented_shape() {
        let st = Status {
            role: crate::election::Role::Follower,
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
            role: crate::election::Role::Stopped,
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
            role: crate::election::Role::PreCandidate,
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
