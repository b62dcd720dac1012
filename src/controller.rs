//! The controller: a client of the nodes, speaking exactly the reference controller's messages.
//! Owns the controller verbs and the status table; must never share state with a node (it only
//! talks to nodes over UDP, as any controller would).
use crate::config::{split_host_port, Peer, DEFAULT_PORT};
use crate::json::{self, Datagram};
use crate::message::{self, Query, Request};
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

pub const SENDER: &str = "Controller";

/// Where and how a controller talks.
#[derive(Clone, Debug)]
pub struct Client {
    pub bind: String,
    pub timeout: Duration,
}

impl Default for Client {
    fn default() -> Client {
        Client {
            bind: "0.0.0.0:0".into(),
            timeout: Duration::from_millis(1000),
        }
    }
}

/// A node's address: `--to host:port` if given, else its PEERS entry, else `NAME:5555`.
pub fn target(name: &str, to: Option<&str>, peers: &[Peer]) -> Result<SocketAddr, String> {
    let (host, port) = match to {
        Some(t) => split_host_port(t).ok_or_else(|| format!("--to {t:?}: expected host:port"))?,
        None => peers
            .iter()
            .find(|p| p.name == name)
            .map_or((name.to_string(), DEFAULT_PORT), |p| {
                (p.host.clone(), p.port)
            }),
    };
    resolve(&host, port)
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let all: Vec<SocketAddr> = addrs.collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| format!("{host} has no address"))
}

/// One node's answer to `LEADER_INFO`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub node: String,
    pub term: Option<u64>,
    pub leader: Option<String>,
    /// The reply exactly as it came.
    pub raw: String,
}

impl Answer {
    fn from_reply(d: &Datagram, fallback: &str, raw: &[u8]) -> Answer {
        Answer {
            raw: String::from_utf8_lossy(raw).into_owned(),
            node: d
                .sender_name
                .clone()
                .unwrap_or_else(|| fallback.to_string()),
            term: d.term,
            leader: d.value.clone(),
        }
    }
}

/// What `raft status` learned of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// It answered `LEADER_INFO`.
    Answer(Answer),
    /// It answered only `STATUS`, saying `role=Stopped`: stopped by `SHUTDOWN`, silent to
    /// `LEADER_INFO` on purpose. Its term, as `STATUS` gave it.
    Stopped(Option<u64>),
    /// Nothing within the timeout: down, unreachable, or its name does not resolve.
    Silent,
}

/// The term in a `STATUS` reply that says `role=Stopped`; `None` for any other datagram.
pub fn stopped_term(d: &Datagram) -> Option<Option<u64>> {
    if d.request.as_deref() != Some(Request::Status.name())
        || d.key.as_deref() != Some(message::STATUS)
    {
        return None;
    }
    let value = d.value.as_deref()?;
    let mut fields = value.split(' ').filter_map(|kv| kv.split_once('='));
    (fields.next()? == ("role", "Stopped")).then_some(d.term)
}

impl Client {
    fn socket(&self) -> Result<UdpSocket, String> {
        // `0.0.0.0:0` (any port), `Controller:5555` (the reference controller's), `127.0.0.1`...
        let addr = match self.bind.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => match self.bind.rsplit_once(':') {
                Some((host, port)) => {
                    let port = port
                        .parse()
                        .map_err(|_| format!("--bind {:?}: bad port", self.bind))?;
                    resolve(host, port)?
                }
                None => resolve(&self.bind, 0)?,
            },
        };
        UdpSocket::bind(addr).map_err(|e| format!("cannot bind {addr}: {e}"))
    }

    /// Send a request that expects no reply (`CONVERT_FOLLOWER`, `TIMEOUT`, `SHUTDOWN`).
    pub fn send(&self, request: &str, to: SocketAddr) -> Result<(), String> {
        let socket = self.socket()?;
        let request = Request::from_verb(request).map_or(request, |r| r.name());
        let bytes = json::emit(&message::control_request(SENDER, request));
        socket
            .send_to(&bytes, to)
            .map(|_| ())
            .map_err(|e| format!("cannot send to {to}: {e}"))
    }

    /// Ask each target for `LEADER_INFO` from one socket; answers by target name (None: silent).
    pub fn leader_info(
        &self,
        targets: &[(String, SocketAddr)],
    ) -> Result<Vec<Option<Answer>>, String> {
        self.query(Query::LeaderInfo, targets)
    }

    /// Ask each target `query` from one socket; answers by target name (None: silent).
    pub fn query(
        &self,
        query: Query,
        targets: &[(String, SocketAddr)],
    ) -> Result<Vec<Option<Answer>>, String> {
        let request = query.request().name();
        let mut answers: Vec<Option<Answer>> = vec![None; targets.len()];
        self.exchange(&[request], targets, |i, d, raw| {
            if d.request.as_deref() == Some(request) {
                answers[i] = Some(Answer::from_reply(d, &targets[i].0, raw));
            }
            answers.iter().all(Option::is_some)
        })?;
        Ok(answers)
    }

    /// `LEADER_INFO` and `STATUS` to each target from one socket: what each one is, by target.
    /// A node stopped by `SHUTDOWN` answers only `STATUS`, so it is told from a silent one
    /// without waiting the whole timeout.
    pub fn survey(&self, targets: &[(String, SocketAddr)]) -> Result<Vec<Seen>, String> {
        let requests = [Request::LeaderInfo.name(), Request::Status.name()];
        let mut seen: Vec<Seen> = vec![Seen::Silent; targets.len()];
        self.exchange(&requests, targets, |i, d, raw| {
            if d.request.as_deref() == Some(Request::LeaderInfo.name()) {
                seen[i] = Seen::Answer(Answer::from_reply(d, &targets[i].0, raw));
            } else if let Some(term) = stopped_term(d).filter(|_| seen[i] == Seen::Silent) {
                seen[i] = Seen::Stopped(term);
            }
            !seen.contains(&Seen::Silent)
        })?;
        Ok(seen)
    }

    /// Each of `requests` to every target from one socket, then every reply from a target to
    /// `take(target, reply, its bytes)` until `take` says all is in (true) or the timeout passed.
    fn exchange(
        &self,
        requests: &[&str],
        targets: &[(String, SocketAddr)],
        mut take: impl FnMut(usize, &Datagram, &[u8]) -> bool,
    ) -> Result<(), String> {
        let socket = self.socket()?;
        for request in requests {
            let bytes = json::emit(&message::control_request(SENDER, request));
            for (_, addr) in targets {
                // A target that cannot be reached is simply one that does not answer.
                let _ = socket.send_to(&bytes, addr);
            }
        }
        let deadline = Instant::now() + self.timeout;
        let mut buf = [0u8; 2048];
        let mut done = targets.is_empty();
        while !done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket
                .set_read_timeout(Some(left))
                .map_err(|e| format!("set_read_timeout: {e}"))?;
            let Ok((n, src)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(d) = json::parse(&buf[..n]) else {
                continue;
            };
            let slot = targets
                .iter()
                .position(|(name, addr)| *addr == src || d.sender_name.as_deref() == Some(name));
            if let Some(i) = slot {
                done = take(i, &d, &buf[..n]);
            }
        }
        Ok(())
    }
}

/// The status table, and whether every node that is not stopped answered naming one leader.
/// A node stopped by `SHUTDOWN` is shown as `stopped` (its `STATUS` says so), one that said
/// nothing as `no answer`.
pub fn status_table(names: &[String], seen: &[Seen]) -> (String, bool) {
    let mut out = format!("{:<10} {:<10} {}\n", "NODE", "LEADER", "TERM");
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut stopped, mut silent) = (Vec::new(), 0);
    for (name, s) in names.iter().zip(seen) {
        match s {
            Seen::Answer(a) => {
                let leader = a.leader.as_deref().unwrap_or("-");
                let term = a.term.map_or("-".into(), |t| t.to_string());
                out.push_str(&format!("{name:<10} {leader:<10} {term}\n"));
                *votes.entry(leader).or_default() += 1;
            }
            Seen::Stopped(term) => {
                let term = term.map_or("-".into(), |t| t.to_string());
                out.push_str(&format!("{name:<10} stopped (term {term})\n"));
                stopped.push(name.as_str());
            }
            Seen::Silent => {
                out.push_str(&format!("{name:<10} no answer\n"));
                silent += 1;
            }
        }
    }
    let agreed = votes.len() == 1 && !votes.contains_key("-") && silent == 0;
    let running = names.len() - stopped.len();
    let summary = match votes
        .iter()
        .filter(|(l, _)| **l != "-")
        .max_by_key(|(_, n)| **n)
    {
        Some((leader, n)) if agreed => format!("leader: {leader} ({n}/{running} agree)"),
        Some((leader, n)) => format!("no agreement: {leader} named by {n}/{running}"),
        None => "no leader known".to_string(),
    };
    out.push_str(&summary);
    if !stopped.is_empty() {
        out.push_str(&format!("; stopped: {}", stopped.join(",")));
    }
    out.push('\n');
    (out, agreed)
}

/// A one-line summary of the cluster for `watch`: leader(s) named, terms, how many answered.
pub fn summary(answers: &[Option<Answer>]) -> String {
    let mut leaders: BTreeMap<String, usize> = BTreeMap::new();
    let mut max_term = 0;
    let mut answered = 0;
    for a in answers.iter().flatten() {
        answered += 1;
        max_term = max_term.max(a.term.unwrap_or(0));
        *leaders
            .entry(a.leader.clone().unwrap_or_else(|| "none".into()))
            .or_default() += 1;
    }
    let named: Vec<String> = leaders.iter().map(|(l, n)| format!("{l}:{n}")).collect();
    format!(
        "leaders={} max_term={max_term} answered={answered}/{}",
        named.join(","),
        answers.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(node: &str, leader: Option<&str>, term: u64) -> Option<Answer> {
        Some(Answer {
            node: node.into(),
            term: Some(term),
            leader: leader.map(str::to_string),
            raw: String::new(),
        })
    }

    fn seen(node: &str, leader: Option<&str>, term: u64) -> Seen {
        answer(node, leader, term).map_or(Seen::Silent, Seen::Answer)
    }

    #[test]
    fn status_agrees_only_when_every_running_node_names_one_leader() {
        let names: Vec<String> = ["Node1", "Node2", "Node3"].map(String::from).to_vec();
        let all = [
            seen("Node1", Some("Node2"), 3),
            seen("Node2", Some("Node2"), 3),
            seen("Node3", Some("Node2"), 3),
        ];
        let (table, ok) = status_table(&names, &all);
        assert!(ok, "{table}");
        assert!(table.ends_with("\nleader: Node2 (3/3 agree)\n"), "{table}");

        let silent = [all[0].clone(), all[1].clone(), Seen::Silent];
        let (table, ok) = status_table(&names, &silent);
        assert!(!ok);
        assert!(table.contains("\nNode3      no answer\n"), "{table}");
        assert!(
            table.contains("no agreement: Node2 named by 2/3"),
            "{table}"
        );

        let split = [all[0].clone(), all[1].clone(), seen("Node3", None, 4)];
        assert!(!status_table(&names, &split).1);
    }

    /// A node stopped by `SHUTDOWN` is shown as such, never as an error or a silent node, and
    /// the others' agreement is still an agreement.
    #[test]
    fn a_stopped_node_is_shown_stopped_and_does_not_spoil_agreement() {
        let names: Vec<String> = ["Node1", "Node2", "Node3"].map(String::from).to_vec();
        let one_stopped = [
            seen("Node1", Some("Node2"), 4),
            seen("Node2", Some("Node2"), 4),
            Seen::Stopped(Some(3)),
        ];
        let (table, ok) = status_table(&names, &one_stopped);
        assert!(ok, "{table}");
        assert_eq!(
            table,
            "NODE       LEADER     TERM\n\
             Node1      Node2      4\n\
             Node2      Node2      4\n\
             Node3      stopped (term 3)\n\
             leader: Node2 (2/2 agree); stopped: Node3\n"
        );
        let (table, ok) = status_table(
            &names,
            &[Seen::Stopped(None), Seen::Stopped(Some(2)), Seen::Silent],
        );
        assert!(!ok);
        assert!(table.contains("Node1      stopped (term -)\n"), "{table}");
        assert!(
            table.ends_with("no leader known; stopped: Node1,Node2\n"),
            "{table}"
        );
    }

    #[test]
    fn only_a_status_reply_saying_stopped_is_stopped() {
        let status = |value: &str| Datagram {
            sender_name: Some("Node1".into()),
            request: Some("STATUS".into()),
            term: Some(7),
            key: Some("STATUS".into()),
            value: Some(value.into()),
        };
        let stopped = status("role=Stopped term=7 voted_for=none leader=none timer_ms=none");
        assert_eq!(stopped_term(&stopped), Some(Some(7)));
        assert_eq!(stopped_term(&status("role=Follower term=7")), None);
        assert_eq!(stopped_term(&status("term=7 role=Stopped")), None);
        let mut request = stopped.clone();
        request.key = None;
        assert_eq!(stopped_term(&request), None, "a request, not a reply");
        let mut other = stopped;
        other.request = Some("LEADER_INFO".into());
        assert_eq!(stopped_term(&other), None);
    }

    #[test]
    fn targets_come_from_to_then_peers_then_the_name() {
        let peers = vec![Peer {
            name: "Node1".into(),
            host: "127.0.0.11".into(),
            port: 6000,
        }];
        assert_eq!(
            target("Node1", None, &peers),
            Ok("127.0.0.11:6000".parse().unwrap())
        );
        assert_eq!(
            target("Node1", Some("127.0.0.9:7"), &peers),
            Ok("127.0.0.9:7".parse().unwrap())
        );
        assert!(target("Node1", Some("nonsense"), &peers).is_err());
        assert_eq!(
            target("127.0.0.5", None, &peers),
            Ok("127.0.0.5:5555".parse().unwrap())
        );
    }

    #[test]
    fn summary_counts_leaders_named() {
        let s = summary(&[answer("a", Some("B"), 2), answer("b", Some("B"), 3), None]);
        assert_eq!(s, "leaders=B:2 max_term=3 answered=2/3");
    }
}
