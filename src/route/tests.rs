//! The routing table as tests: explicit rows for each kind of datagram, then every combination
//! of request, sender, source address, key and stop checked against the rules it must obey.
use super::*;
use crate::election::Kind;

const NAMES: [&str; 3] = ["Node1", "Node2", "Node3"];

fn names() -> Vec<String> {
    NAMES.map(String::from).to_vec()
}

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, last], 5555))
}

/// Member `i` lives at 127.0.0.(i+1); 127.0.0.9 is no member.
fn from_member(i: usize) -> Source {
    Source {
        addr: addr(i as u8 + 1),
        members: 1 << i,
        controller: true,
    }
}

fn from_stranger() -> Source {
    Source {
        addr: addr(9),
        members: 0,
        controller: true,
    }
}

fn dgram(sender: Option<&str>, request: &str, term: Option<u64>, key: Option<&str>) -> Datagram {
    Datagram {
        sender_name: sender.map(str::to_string),
        request: Some(request.to_string()),
        term,
        key: key.map(str::to_string),
        value: None,
    }
}

fn go(d: &Datagram, src: Source, keyed: bool, stopped: bool) -> Route {
    let names = names();
    let ctx = Context {
        names: &names,
        keyed,
        stopped,
    };
    route(d, &src, &ctx)
}

fn drop(why: Dropped, detail: &str) -> Route {
    Route::Drop(why, detail.to_string())
}

#[test]
fn each_kind_of_datagram_takes_its_documented_route() {
    let append = Msg {
        term: 2,
        kind: Kind::Append,
    };
    let ctrl = from_stranger();
    let not_allowed = Source {
        controller: false,
        ..ctrl
    };
    let unknown = Dropped::Reject(Reject::UnknownRequest);
    #[rustfmt::skip]
    let rows: Vec<(Datagram, Source, bool, bool, Route)> = vec![
        // datagram                                            source          keyed  stopped  route
        (dgram(Some("Node2"), "APPEND_RPC", Some(2), None),    from_member(1), false, false, Route::Peer { from: 1, msg: append }),
        (dgram(Some("Node2"), "APPEND_RPC", Some(2), None),    from_member(1), true,  false, Route::Peer { from: 1, msg: append }),
        (dgram(Some("Node2"), "APPEND_RPC", Some(2), None),    from_member(2), false, false, Route::Untrusted { claimed: 1 }),
        (dgram(Some("Node2"), "APPEND_RPC", Some(2), None),    from_stranger(), false, false, Route::Untrusted { claimed: 1 }),
        (dgram(Some("Node2"), "APPEND_RPC", Some(2), None),    from_member(1), false, true,  drop(Dropped::Stopped, "APPEND_RPC")),
        (dgram(Some("Node9"), "APPEND_RPC", Some(2), None),    from_member(1), false, false, drop(Dropped::Reject(Reject::UnknownSender), "APPEND_RPC")),
        (dgram(None, "VOTE_ACK", Some(2), None),               from_member(1), false, false, drop(Dropped::Reject(Reject::NoSender), "VOTE_ACK")),
        (dgram(Some("Node2"), "VOTE_ACK", None, None),         from_member(1), false, false, drop(Dropped::Reject(Reject::NoTerm), "VOTE_ACK")),
        (dgram(Some("Node2"), "AUTH_HELLO", Some(0), None),    from_member(1), true,  false, Route::Hello { from: 1 }),
        (dgram(Some("Node2"), "AUTH_HELLO", Some(0), None),    from_member(0), true,  false, Route::Untrusted { claimed: 1 }),
        (dgram(Some("Node2"), "AUTH_HELLO", Some(0), None),    from_member(1), true,  true,  drop(Dropped::Stopped, "AUTH_HELLO")),
        (dgram(Some("Node7"), "AUTH_HELLO", Some(0), None),    from_member(1), true,  false, drop(Dropped::Reject(Reject::UnknownSender), "Node7")),
        (dgram(Some("Node2"), "AUTH_HELLO", Some(0), None),    from_member(1), false, false, drop(unknown, "AUTH_HELLO")),
        (dgram(Some("Controller"), "LEADER_INFO", None, None), ctrl,           false, false, Route::Answer(Query::LeaderInfo)),
        (dgram(Some("Controller"), "LEADER_INFO", None, None), ctrl,           false, true,  drop(Dropped::Stopped, "LEADER_INFO")),
        (dgram(Some("Controller"), "LEADER_INFO", None, None), not_allowed,    false, false, drop(Dropped::ControllerNotAllowed, "127.0.0.9:5555")),
        (dgram(Some("Node1"), "LEADER_INFO", Some(3), Some("LEADER")), from_member(0), false, false, drop(Dropped::LeaderInfoReply, "from a peer")),
        (dgram(Some("Node1"), "LEADER_INFO", Some(3), Some("LEADER")), ctrl,   false, false, Route::Answer(Query::LeaderInfo)),
        (dgram(Some("Node1"), "LEADER_INFO", Some(3), None),   from_member(0), false, false, Route::Answer(Query::LeaderInfo)),
        (dgram(Some("Controller"), "STATUS", None, None),      ctrl,           false, true,  Route::Answer(Query::Status)),
        (dgram(Some("Node1"), "STATUS", Some(3), Some("STATUS")), from_member(0), false, false, drop(Dropped::StatusReply, "from a peer")),
        (dgram(Some("Controller"), "TIMEOUT", None, None),     ctrl,           false, false, Route::Command(Command::Timeout)),
        (dgram(Some("Controller"), "TIMEOUT", None, None),     ctrl,           false, true,  Route::Command(Command::Timeout)),
        (dgram(Some("Controller"), "CONVERT_FOLLOWER", None, None), ctrl,      true,  true,  Route::Command(Command::ConvertFollower)),
        (dgram(Some("Controller"), "SHUTDOWN", None, None),    ctrl,           false, false, Route::Command(Command::Shutdown)),
        (dgram(Some("Controller"), "SHUTDOWN", None, None),    ctrl,           false, true,  drop(Dropped::Stopped, "SHUTDOWN")),
        (dgram(Some("Controller"), "SHUTDOWN", None, None),    not_allowed,    false, false, drop(Dropped::ControllerNotAllowed, "127.0.0.9:5555")),
        // A LEADER_INFO reply echoed back with only `request` changed is still a command.
        (dgram(Some("Node1"), "CONVERT_FOLLOWER", Some(3), Some("LEADER")), ctrl, false, false, Route::Command(Command::ConvertFollower)),
        (dgram(Some("Controller"), "RESTART", None, None),     ctrl,           false, false, drop(unknown, "RESTART")),
        (dgram(Some("Controller"), "view log", None, None),    ctrl,           false, true,  drop(unknown, "view log")),
        (Datagram::default(),                                  ctrl,           false, false, drop(Dropped::Reject(Reject::NoRequest), "null")),
    ];
    for (i, (d, src, keyed, stopped, want)) in rows.into_iter().enumerate() {
        assert_eq!(go(&d, src, keyed, stopped), want, "row {i}: {d:?}");
    }
}

/// Every request (and two that do not exist) from every kind of sender and address, with and
/// without a key, running and stopped: the rules hold whatever the combination.
#[test]
fn every_combination_obeys_the_rules() {
    let mut requests: Vec<&str> = Request::ALL.iter().map(|r| r.name()).collect();
    requests.extend(["GETLOG", ""]);
    let senders = [Some("Node2"), Some("Controller"), Some("Node9"), None];
    let sources = [
        from_member(1),
        from_member(0),
        from_stranger(),
        Source {
            controller: false,
            ..from_stranger()
        },
    ];
    let mut seen = 0;
    for request in &requests {
        for sender in senders {
            for key in [None, Some("LEADER"), Some("STATUS"), Some("TRANSFER")] {
                for src in sources {
                    for (keyed, stopped) in
                        [(false, false), (false, true), (true, false), (true, true)]
                    {
                        let d = dgram(sender, request, Some(1), key);
                        let got = go(&d, src, keyed, stopped);
                        check_rules(&d, src, keyed, stopped, &got);
                        seen += 1;
                    }
                }
            }
        }
    }
    assert_eq!(seen, 15 * 4 * 4 * 4 * 4);
}

fn check_rules(d: &Datagram, src: Source, keyed: bool, stopped: bool, got: &Route) {
    let request = d.request.as_deref().and_then(Request::parse);
    let case = format!("{d:?} {src:?} keyed={keyed} stopped={stopped} -> {got:?}");
    match got {
        Route::Peer { from, msg } => {
            assert!(!stopped, "a stopped node hears no peer: {case}");
            assert!(src.is_member(*from), "a peer only from its address: {case}");
            assert_eq!(d.sender_name.as_deref(), Some(NAMES[*from]), "{case}");
            assert_eq!(Some(Request::from(msg.kind)), request, "{case}");
        }
        Route::Hello { from } => {
            assert!(keyed && !stopped && src.is_member(*from), "{case}");
            assert_eq!(request, Some(Request::AuthHello), "{case}");
        }
        Route::Untrusted { claimed } => {
            assert!(!src.is_member(*claimed), "{case}");
            assert_eq!(d.sender_name.as_deref(), Some(NAMES[*claimed]), "{case}");
        }
        Route::Command(cmd) => {
            assert!(src.controller, "{case}");
            assert_eq!(request, Some(Request::from(*cmd)), "{case}");
            assert!(!stopped || *cmd != Command::Shutdown, "{case}");
        }
        Route::Answer(q) => {
            assert!(src.controller, "{case}");
            assert_eq!(request, Some(q.request()), "{case}");
            assert!(
                !stopped || *q == Query::Status,
                "a stopped node only shows STATUS: {case}"
            );
            let reply_key = match q {
                Query::LeaderInfo => "LEADER",
                Query::Status => "STATUS",
            };
            let reply_shaped = d.key.as_deref() == Some(reply_key);
            assert!(
                !(reply_shaped && src.members != 0),
                "never answer a node's reply: {case}"
            );
        }
        Route::Drop(why, _) => {
            let revival = matches!(
                request,
                Some(Request::Status | Request::ConvertFollower | Request::Timeout)
            );
            if *why == Dropped::Stopped {
                assert!(stopped && !revival, "{case}");
            }
            let controller = matches!(
                request,
                Some(Request::LeaderInfo | Request::ConvertFollower | Request::Timeout)
            ) || revival;
            let reply_from_member = src.members != 0
                && matches!(d.key.as_deref(), Some("LEADER" | "STATUS"))
                && matches!(request, Some(Request::LeaderInfo | Request::Status));
            if controller && src.controller && !reply_from_member {
                assert!(
                    stopped && !revival,
                    "a controller request was dropped: {case}"
                );
            }
        }
    }
}
