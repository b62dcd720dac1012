//! Configuration from the environment (flags mirror it): who we are, who our peers are, timings.
//! Owns reading the variables; must never hold a rule of its own about the core's settings
//! (those are `election::Config::validate`, called here).
//!
//! Parsing is a pure function of a lookup (`Fn(&str) -> Option<String>`), so it is tested without
//! touching the process environment.
use crate::election::{self, ConfigError as Rule};
use std::net::{IpAddr, SocketAddr};

pub const DEFAULT_PORT: u16 = 5555;

/// One member of the cluster as configured: `Name` or `Name=host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Peer {
    /// The address itself when `host` is an IP literal (no name lookup needed).
    pub fn literal_addr(&self) -> Option<SocketAddr> {
        self.host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    pub name: String,
    pub peers: Vec<Peer>,
    /// The core's settings (our id is the index of `name` in `peers`), valid by construction.
    pub core: election::Config,
    pub data_dir: Option<String>,
    /// `SHUTDOWN` exits the process (status 0) instead of going silent.
    pub shutdown_exits: bool,
    /// Hosts or addresses allowed to send controller requests; empty means anyone.
    pub controller_allow: Vec<String>,
    pub seed: Option<u64>,
    /// `CLUSTER_KEY[_FILE]`: node messages are authenticated when set.
    pub cluster_key: Option<KeySource>,
    /// `CLUSTER_KEY_PREVIOUS[_FILE]`: also accepted, during a key rotation.
    pub cluster_key_previous: Option<KeySource>,
}

/// Where a cluster key comes from; read at start by `auth::keyfile`. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The variable's value itself.
    Inline { var: &'static str, key: Vec<u8> },
    /// A file (e.g. a compose or swarm secret under /run/secrets).
    File { var: &'static str, path: String },
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Inline { var, .. } => write!(f, "{var}=(hidden)"),
            KeySource::File { var, path } => write!(f, "{var}={path}"),
        }
    }
}

/// A key from `VAR` or `VAR_FILE`, not both; an empty inline key is an error.
fn key_source(
    get: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    file_var: &'static str,
) -> Result<Option<KeySource>, ConfigError> {
    match (get(var), get(file_var)) {
        (Some(_), Some(_)) => err(var, format!("set {var} or {file_var}, not both")),
        (Some(k), None) if k.trim().is_empty() => err(var, "is empty"),
        (Some(k), None) => Ok(Some(KeySource::Inline {
            var,
            key: k.trim().as_bytes().to_vec(),
        })),
        (None, Some(p)) if p.trim().is_empty() => err(file_var, "is empty"),
        (None, Some(p)) => Ok(Some(KeySource::File {
            var: file_var,
            path: p.trim().to_string(),
        })),
        (None, None) => Ok(None),
    }
}

/// A configuration error: the variable at fault and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid {}: {}", self.var, self.problem)
    }
}

fn err<T>(var: &'static str, problem: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        var,
        problem: problem.into(),
    })
}

/// The cluster's members from `PEERS`, else `CLUSTER_SIZE`, else Node1..Node5.
pub fn peers_from(get: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Peer>, ConfigError> {
    let list = match (get("PEERS"), get("CLUSTER_SIZE")) {
        (Some(p), _) if !p.trim().is_empty() => p,
        (_, Some(n)) if !n.trim().is_empty() => match n.trim().parse::<usize>() {
            Ok(size) if election::check_cluster_size(size).is_ok() => default_names(size),
            Ok(_) => return err("CLUSTER_SIZE", format!("{n:?}: {}", Rule::ClusterSize)),
            Err(_) => return err("CLUSTER_SIZE", format!("{n:?} is not a number")),
        },
        _ => default_names(5),
    };
    let mut peers: Vec<Peer> = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let peer = parse_peer(entry)?;
        if peers.iter().any(|p| p.name == peer.name) {
            return err("PEERS", format!("{} is listed twice", peer.name));
        }
        peers.push(peer);
    }
    if let Err(rule) = election::check_cluster_size(peers.len()) {
        return err("PEERS", format!("{} members: {rule}", peers.len()));
    }
    Ok(peers)
}

fn default_names(n: usize) -> String {
    (1..=n)
        .map(|i| format!("Node{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_peer(entry: &str) -> Result<Peer, ConfigError> {
    let (name, addr) = match entry.split_once('=') {
        Some((n, a)) => (n.trim(), Some(a.trim())),
        None => (entry, None),
    };
    if !valid_name(name) {
        return err(
            "PEERS",
            format!("{name:?} is not a valid name (1-64 of A-Z a-z 0-9 . _ -)"),
        );
    }
    let (host, port) = match addr {
        None => (name.to_string(), DEFAULT_PORT),
        Some(a) => split_host_port(a).ok_or_else(|| ConfigError {
            var: "PEERS",
            problem: format!("{entry:?}: address must be host:port"),
        })?,
    };
    Ok(Peer {
        name: name.to_string(),
        host,
        port,
    })
}

/// `host:port`, `[v6]:port`; the port must be a number from 1 to 65535.
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    (!host.is_empty()).then(|| (host.to_string(), port))
}

pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// `CONTROLLER_ALLOW`: host names or IP addresses (no ports), comma-separated.
fn allow_list(v: Option<String>) -> Result<Vec<String>, ConfigError> {
    let mut hosts = Vec::new();
    for h in v.unwrap_or_default().split(',').map(str::trim) {
        if h.is_empty() {
            continue;
        }
        if h.parse::<IpAddr>().is_err() && !valid_name(h) {
            return err(
                "CONTROLLER_ALLOW",
                format!("{h:?} is not a host name or an IP address"),
            );
        }
        hosts.push(h.to_string());
    }
    Ok(hosts)
}

/// `150-300` (or a single `200`, meaning 200-200).
fn parse_range(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

fn parse_bool(var: &'static str, v: Option<String>, default: bool) -> Result<bool, ConfigError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => err(
            var,
            format!("{other:?} is not one of 1/0 true/false yes/no on/off"),
        ),
    }
}

/// `ELECTION_TIMEOUT_MS` and `HEARTBEAT_MS` as numbers (their rules are the core's).
fn timing(get: &dyn Fn(&str) -> Option<String>) -> Result<(u64, u64, u64), ConfigError> {
    let range = get("ELECTION_TIMEOUT_MS").unwrap_or_else(|| "150-300".into());
    let Some((min, max)) = parse_range(&range) else {
        return err(
            "ELECTION_TIMEOUT_MS",
            format!("{range:?} is not min-max in ms"),
        );
    };
    let hb = get("HEARTBEAT_MS").unwrap_or_else(|| "50".into());
    let Ok(heartbeat) = hb.trim().parse::<u64>() else {
        return err("HEARTBEAT_MS", format!("{hb:?} is not a number of ms"));
    };
    Ok((min, max, heartbeat))
}

/// The variable a broken core rule is set by, with its value.
fn rule_var(rule: Rule, get: &dyn Fn(&str) -> Option<String>) -> ConfigError {
    let (var, default) = match rule {
        Rule::ElectionTimeout => ("ELECTION_TIMEOUT_MS", "150-300"),
        Rule::Heartbeat => ("HEARTBEAT_MS", "50"),
        Rule::ClusterSize | Rule::IdOutsideCluster => ("PEERS", ""),
    };
    let value = get(var).unwrap_or_else(|| default.to_string());
    ConfigError {
        var,
        problem: format!("{value:?}: {rule}"),
    }
}

fn seed_from(v: Option<String>) -> Result<Option<u64>, ConfigError> {
    match v.filter(|s| !s.trim().is_empty()) {
        None => Ok(None),
        Some(s) => match s.trim().parse() {
            Ok(v) => Ok(Some(v)),
            Err(_) => err("SEED", format!("{s:?} is not a number")),
        },
    }
}

impl NodeConfig {
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<NodeConfig, ConfigError> {
        let peers = peers_from(get)?;
        let name = get("NODE_NAME")
            .filter(|n| !n.trim().is_empty())
            .or_else(|| get("HOSTNAME"))
            .map(|n| n.trim().to_string())
            .unwrap_or_default();
        let Some(id) = peers.iter().position(|p| p.name == name) else {
            let names: Vec<&str> = peers.iter().map(|p| p.name.as_str()).collect();
            return err(
                "NODE_NAME",
                format!("{name:?} is not in PEERS ({})", names.join(",")),
            );
        };
        let (min, max, heartbeat) = timing(get)?;
        let cluster_key = key_source(get, "CLUSTER_KEY", "CLUSTER_KEY_FILE")?;
        let cluster_key_previous =
            key_source(get, "CLUSTER_KEY_PREVIOUS", "CLUSTER_KEY_PREVIOUS_FILE")?;
        if cluster_key.is_none() && cluster_key_previous.is_some() {
            return err(
                "CLUSTER_KEY_PREVIOUS",
                "needs CLUSTER_KEY (or CLUSTER_KEY_FILE) too",
            );
        }
        let core = election::Config {
            id,
            cluster_size: peers.len(),
            election_timeout_min_ms: min,
            election_timeout_max_ms: max,
            heartbeat_ms: heartbeat,
            pre_vote: parse_bool("PRE_VOTE", get("PRE_VOTE"), true)?,
            check_quorum: parse_bool("CHECK_QUORUM", get("CHECK_QUORUM"), true)?,
        };
        core.validate().map_err(|rule| rule_var(rule, get))?;
        Ok(NodeConfig {
            name,
            peers,
            core,
            data_dir: get("DATA_DIR").filter(|d| !d.trim().is_empty()),
            shutdown_exits: parse_bool("SHUTDOWN_EXITS", get("SHUTDOWN_EXITS"), false)?,
            controller_allow: allow_list(get("CONTROLLER_ALLOW"))?,
            seed: seed_from(get("SEED"))?,
            cluster_key,
            cluster_key_previous,
        })
    }

    pub fn id(&self) -> usize {
        self.core.id
    }

    pub fn me(&self) -> &Peer {
        &self.peers[self.core.id]
    }

    /// The address to bind: our own entry when it is an IP literal, else every interface.
    pub fn bind_addr(&self) -> SocketAddr {
        let me = self.me();
        me.literal_addr()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], me.port)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        NodeConfig::from_lookup(&move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_five_nodes_on_5555_with_paper_timeouts() {
        let c = cfg(&[("NODE_NAME", "Node3")]).unwrap();
        assert_eq!(c.peers.len(), 5);
        assert_eq!(c.id(), 2);
        assert_eq!(c.peers[4].host, "Node5");
        assert_eq!(c.peers[4].port, 5555);
        assert_eq!(c.core, election::Config::new(2, 5));
        assert!(!c.shutdown_exits);
        assert_eq!(c.bind_addr(), "0.0.0.0:5555".parse().unwrap());
        assert_eq!(c.data_dir, None);
    }

    #[test]
    fn host_name_is_the_default_node_name() {
        let c = cfg(&[("HOSTNAME", "Node2")]).unwrap();
        assert_eq!(c.name, "Node2");
    }

    #[test]
    fn cluster_size_names_node1_to_n() {
        let c = cfg(&[("NODE_NAME", "Node7"), ("CLUSTER_SIZE", "7")]).unwrap();
        assert_eq!(c.peers.len(), 7);
        assert_eq!(c.id(), 6);
    }

    #[test]
    fn explicit_addresses_bind_their_ip_literal() {
        let c = cfg(&[
            ("NODE_NAME", "B"),
            ("PEERS", "A=127.0.0.11:5555, B=127.0.0.12:6000,C=[::1]:7"),
        ])
        .unwrap();
        assert_eq!(c.bind_addr(), "127.0.0.12:6000".parse().unwrap());
        assert_eq!(c.peers[2].literal_addr(), Some("[::1]:7".parse().unwrap()));
    }

    #[test]
    fn each_invalid_setting_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("NODE_NAME", "Node9")], "NODE_NAME"),
            (&[("NODE_NAME", "A"), ("PEERS", "A,A")], "PEERS"),
            (&[("NODE_NAME", "A"), ("PEERS", "A=host")], "PEERS"),
            (&[("NODE_NAME", "A"), ("PEERS", "A=host:0")], "PEERS"),
            (&[("NODE_NAME", "A"), ("PEERS", "A=host:99999")], "PEERS"),
            (&[("NODE_NAME", "A b"), ("PEERS", "A b")], "PEERS"),
            (
                &[("NODE_NAME", "Node1"), ("CLUSTER_SIZE", "0")],
                "CLUSTER_SIZE",
            ),
            (
                &[("NODE_NAME", "Node1"), ("CLUSTER_SIZE", "x")],
                "CLUSTER_SIZE",
            ),
            (
                &[("NODE_NAME", "Node1"), ("ELECTION_TIMEOUT_MS", "300-150")],
                "ELECTION_TIMEOUT_MS",
            ),
            (
                &[("NODE_NAME", "Node1"), ("ELECTION_TIMEOUT_MS", "0-10")],
                "ELECTION_TIMEOUT_MS",
            ),
            (
                &[("NODE_NAME", "Node1"), ("ELECTION_TIMEOUT_MS", "fast")],
                "ELECTION_TIMEOUT_MS",
            ),
            (
                &[("NODE_NAME", "Node1"), ("HEARTBEAT_MS", "150")],
                "HEARTBEAT_MS",
            ),
            (
                &[("NODE_NAME", "Node1"), ("HEARTBEAT_MS", "0")],
                "HEARTBEAT_MS",
            ),
            (&[("NODE_NAME", "Node1"), ("PRE_VOTE", "maybe")], "PRE_VOTE"),
            (&[("NODE_NAME", "Node1"), ("SEED", "-1")], "SEED"),
            (
                &[
                    ("NODE_NAME", "Node1"),
                    ("ELECTION_TIMEOUT_MS", "150-99999999"),
                ],
                "ELECTION_TIMEOUT_MS",
            ),
            (
                &[
                    ("NODE_NAME", "Node1"),
                    ("CONTROLLER_ALLOW", "Controller:5555"),
                ],
                "CONTROLLER_ALLOW",
            ),
            (
                &[("NODE_NAME", "Node1"), ("CLUSTER_KEY", " ")],
                "CLUSTER_KEY",
            ),
            (
                &[("NODE_NAME", "Node1"), ("CLUSTER_KEY_FILE", "")],
                "CLUSTER_KEY_FILE",
            ),
            (
                &[
                    ("NODE_NAME", "Node1"),
                    ("CLUSTER_KEY", "k"),
                    ("CLUSTER_KEY_FILE", "/run/secrets/k"),
                ],
                "CLUSTER_KEY",
            ),
            (
                &[("NODE_NAME", "Node1"), ("CLUSTER_KEY_PREVIOUS", "old")],
                "CLUSTER_KEY_PREVIOUS",
            ),
        ];
        for (vars, var) in cases {
            let e = cfg(vars).expect_err(&format!("{vars:?} should be rejected"));
            assert_eq!(e.var, *var, "{vars:?}: {e}");
        }
    }

    #[test]
    fn cluster_keys_come_from_a_variable_or_a_file_and_never_show_in_debug() {
        let c = cfg(&[("NODE_NAME", "Node1")]).unwrap();
        assert_eq!((c.cluster_key, c.cluster_key_previous), (None, None));
        let c = cfg(&[
            ("NODE_NAME", "Node1"),
            ("CLUSTER_KEY_FILE", "/run/secrets/cluster_key"),
            ("CLUSTER_KEY_PREVIOUS", " old-secret\n"),
        ])
        .unwrap();
        assert_eq!(
            c.cluster_key,
            Some(KeySource::File {
                var: "CLUSTER_KEY_FILE",
                path: "/run/secrets/cluster_key".into()
            })
        );
        assert_eq!(
            c.cluster_key_previous,
            Some(KeySource::Inline {
                var: "CLUSTER_KEY_PREVIOUS",
                key: b"old-secret".to_vec()
            })
        );
        assert!(!format!("{c:?}").contains("old-secret"));
    }

    #[test]
    fn a_single_number_is_a_fixed_timeout() {
        let c = cfg(&[("NODE_NAME", "Node1"), ("ELECTION_TIMEOUT_MS", "200")]).unwrap();
        let t = c.core;
        assert_eq!(
            (t.election_timeout_min_ms, t.election_timeout_max_ms),
            (200, 200)
        );
    }

    #[test]
    fn switches_and_allow_list_parse() {
        let c = cfg(&[
            ("NODE_NAME", "Node1"),
            ("PRE_VOTE", "off"),
            ("SHUTDOWN_EXITS", "1"),
            ("CONTROLLER_ALLOW", "Controller, 127.0.0.1,::1"),
        ])
        .unwrap();
        assert!(!c.core.pre_vote && c.core.check_quorum && c.shutdown_exits);
        assert_eq!(c.controller_allow, vec!["Controller", "127.0.0.1", "::1"]);
    }
}
