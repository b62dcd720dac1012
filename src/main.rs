//! `raft`: a Raft leader-election node and its controller in one binary.
//! Owns the command line and exit statuses; must never hold node or controller logic of its own.
use raft::config::{self, NodeConfig};
use raft::controller::{self, Client};
use raft::message::{Query, Request};
use raft::runtime::{self, Exit};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage: raft <command> [options]

node                        run a node (configured by the environment; flags mirror it:
                            --name --peers --cluster-size --election-timeout-ms --heartbeat-ms
                            --data-dir --pre-vote --check-quorum --shutdown-exits --seed
                            --controller-allow)
leader-info NODE            ask NODE who leads; prints its reply
convert-follower NODE       tell NODE to become a follower
timeout NODE                tell NODE to start an election now
shutdown NODE               tell NODE to stop all activity
status                      ask every node of PEERS; exit 0 when all that are not stopped
                            (SHUTDOWN) name one leader
watch                       print a line whenever the leader or term changes (runs until killed)
health                      exit 0 when the local node answers STATUS (container health checks)

controller options: --to HOST:PORT   --bind ADDR (default 0.0.0.0:0)   --timeout-ms MS
                    --interval-ms MS (watch)
PEERS (Name or Name=host:port, comma-separated) tells the controller where nodes are.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let parsed = match Args::parse(rest) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    let allowed = allowed_flags(cmd);
    if let Some(flag) = parsed.flags.keys().find(|f| !allowed.contains(&f.as_str())) {
        return usage_error(&format!("{cmd}: unknown option --{flag}"));
    }
    let result = match cmd.as_str() {
        "node" => return node(&parsed),
        verb if Request::from_verb(verb).is_some() => request(cmd, &parsed),
        "status" => status(&parsed),
        "watch" => watch(&parsed),
        "health" => health(&parsed),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(true)
        }
        other => return usage_error(&format!("unknown command {other:?}")),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("raft {cmd}: {e}");
            ExitCode::from(1)
        }
    }
}

/// The options each command takes; anything else is a mistake worth stopping for.
fn allowed_flags(cmd: &str) -> &'static [&'static str] {
    match cmd {
        "node" => &[
            "name",
            "peers",
            "cluster-size",
            "election-timeout-ms",
            "heartbeat-ms",
            "data-dir",
            "pre-vote",
            "check-quorum",
            "shutdown-exits",
            "seed",
            "controller-allow",
        ],
        verb if Request::from_verb(verb).is_some() => {
            &["peers", "cluster-size", "bind", "timeout-ms", "to"]
        }
        "status" => &["peers", "cluster-size", "bind", "timeout-ms"],
        "watch" => &["peers", "cluster-size", "bind", "timeout-ms", "interval-ms"],
        "health" => &["to", "bind", "timeout-ms", "name", "peers"],
        _ => &[],
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("raft: {msg}\n\n{USAGE}");
    ExitCode::from(2)
}

/// `--flag value` pairs and positional words.
struct Args {
    flags: HashMap<String, String>,
    positional: Vec<String>,
}

impl Args {
    fn parse(args: &[String]) -> Result<Args, String> {
        let mut flags = HashMap::new();
        let mut positional = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if let Some(flag) = a.strip_prefix("--") {
                let (k, v) = match flag.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => {
                        let v = it.next().ok_or_else(|| format!("--{flag} needs a value"))?;
                        (flag.to_string(), v.clone())
                    }
                };
                flags.insert(k, v);
            } else {
                positional.push(a.clone());
            }
        }
        Ok(Args { flags, positional })
    }

    fn client(&self) -> Result<Client, String> {
        let mut c = Client::default();
        if let Some(b) = self.flags.get("bind") {
            c.bind = b.clone();
        }
        if let Some(t) = self.flags.get("timeout-ms") {
            let ms: u64 = t
                .parse()
                .map_err(|_| format!("--timeout-ms {t:?}: not a number"))?;
            c.timeout = Duration::from_millis(ms);
        }
        Ok(c)
    }
}

/// Environment variable for a node flag: `--name` is `NODE_NAME`, `--data-dir` is `DATA_DIR`...
fn env_name(flag: &str) -> String {
    if flag == "name" {
        return "NODE_NAME".into();
    }
    flag.replace('-', "_").to_ascii_uppercase()
}

fn lookup(args: &Args) -> impl Fn(&str) -> Option<String> + '_ {
    move |var: &str| {
        args.flags
            .iter()
            .find(|(k, _)| env_name(k) == var)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(var).ok())
            .or_else(|| (var == "HOSTNAME").then(host_name).flatten())
    }
}

/// The kernel's host name: shells rarely export `HOSTNAME`, containers always set the file.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(name.trim().to_string()).filter(|n| !n.is_empty())
}

fn node(args: &Args) -> ExitCode {
    let cfg = match NodeConfig::from_lookup(&lookup(args)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("raft node: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime::run(cfg) {
        Exit::Clean => ExitCode::SUCCESS,
        Exit::Config(e) | Exit::State(e) => {
            eprintln!("raft node: {e}");
            ExitCode::from(2)
        }
        Exit::Io(e) => {
            eprintln!("raft node: {e}");
            ExitCode::from(1)
        }
    }
}

fn peers(args: &Args) -> Result<Vec<config::Peer>, String> {
    config::peers_from(&lookup(args)).map_err(|e| e.to_string())
}

fn request(cmd: &str, args: &Args) -> Result<bool, String> {
    let [name] = args.positional.as_slice() else {
        return Err(format!(
            "usage: raft {cmd} NODE [--to HOST:PORT] [--bind ADDR]"
        ));
    };
    let to = controller::target(
        name,
        args.flags.get("to").map(String::as_str),
        &peers(args)?,
    )?;
    let client = args.client()?;
    if cmd != "leader-info" {
        client.send(cmd, to)?;
        let request = Request::from_verb(cmd).map_or(cmd, |r| r.name());
        println!("sent {request} to {name} ({to})");
        return Ok(true);
    }
    match client.leader_info(&[(name.clone(), to)])?.pop().flatten() {
        Some(a) => {
            println!("{}", a.raw);
            Ok(true)
        }
        None => Err(format!(
            "no answer from {name} ({to}) within {:?}",
            client.timeout
        )),
    }
}

/// Ask every node of PEERS for LEADER_INFO: names in order, and each one's answer. A node whose
/// name does not resolve (its container is down) is not asked, and has no answer.
fn ask_all(
    args: &Args,
    client: &Client,
) -> Result<(Vec<String>, Vec<Option<controller::Answer>>), String> {
    let (names, targets) = targets(args)?;
    let mut answers = client.leader_info(&targets)?.into_iter();
    let by_name = names
        .iter()
        .map(|n| match targets.iter().any(|(t, _)| t == n) {
            true => answers.next().flatten(),
            false => None,
        })
        .collect();
    Ok((names, by_name))
}

/// Every node of PEERS by name, and the address of each whose name resolves.
type Targets = (Vec<String>, Vec<(String, SocketAddr)>);

fn targets(args: &Args) -> Result<Targets, String> {
    let peers = peers(args)?;
    let names: Vec<String> = peers.iter().map(|p| p.name.clone()).collect();
    let targets = peers
        .iter()
        .filter_map(|p| {
            let addr = controller::target(&p.name, None, std::slice::from_ref(p)).ok()?;
            Some((p.name.clone(), addr))
        })
        .collect();
    Ok((names, targets))
}

/// The table of what every node says; a node stopped by `SHUTDOWN` (silent to `LEADER_INFO`,
/// its `STATUS` says so) is shown as stopped, a silent one as `no answer`.
fn status(args: &Args) -> Result<bool, String> {
    let (names, targets) = targets(args)?;
    let mut seen = args.client()?.survey(&targets)?.into_iter();
    let seen: Vec<controller::Seen> = names
        .iter()
        .map(|n| match targets.iter().any(|(t, _)| t == n) {
            true => seen.next().unwrap_or(controller::Seen::Silent),
            false => controller::Seen::Silent,
        })
        .collect();
    let (table, agreed) = controller::status_table(&names, &seen);
    print!("{table}");
    Ok(agreed)
}

fn watch(args: &Args) -> Result<bool, String> {
    let interval = match args.flags.get("interval-ms") {
        Some(v) => v
            .parse()
            .map_err(|_| format!("--interval-ms {v:?}: not a number"))?,
        None => 250,
    };
    let mut client = args.client()?;
    client.timeout = Duration::from_millis(interval.max(50));
    let mut last = String::new();
    loop {
        let (_, answers) = ask_all(args, &client)?;
        let now = controller::summary(&answers);
        if now != last {
            println!("t={} {now}", raft::log::wall_clock());
            last = now;
        }
        std::thread::sleep(Duration::from_millis(interval));
    }
}

fn health(args: &Args) -> Result<bool, String> {
    // The node's own address when its configuration says where it listens, else loopback.
    let own = NodeConfig::from_lookup(&lookup(args))
        .ok()
        .map(|c| c.bind_addr())
        .filter(|a| !a.ip().is_unspecified())
        .map(|a| a.to_string());
    let to = args.flags.get("to").cloned().or(own);
    let to = controller::target(
        "local",
        Some(to.as_deref().unwrap_or("127.0.0.1:5555")),
        &[],
    )?;
    let mut client = args.client()?;
    if !args.flags.contains_key("timeout-ms") {
        client.timeout = Duration::from_millis(500);
    }
    // STATUS, which a node stopped by SHUTDOWN still answers: stopped is not unhealthy (an
    // orchestrator would otherwise replace the container and undo the stop).
    Ok(client.query(Query::Status, &[("local".into(), to)])?[0].is_some())
}
