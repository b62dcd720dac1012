//! `raft local N`: a cluster of plain processes on loopback, the way to try it without Docker.
//!
//! Node K listens on 127.0.0.(10+K):5555 and keeps its state in a fresh temporary folder.
use crate::controller::{status_table, Client};
use std::fs::File;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Children are killed when this is dropped, also on an early return.
struct Cluster(Vec<Child>);

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn peers_for(n: usize) -> String {
    (1..=n)
        .map(|k| format!("Node{k}=127.0.0.{}:5555", 10 + k))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn run(args: &[String], interval: Option<&String>) -> Result<bool, String> {
    let n: usize = match args.first() {
        None => 5,
        Some(s) => s
            .parse()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or("N must be 1 to 64")?,
    };
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    let dir = std::env::temp_dir().join(format!("raft-local-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let peers = peers_for(n);
    let mut cluster = Cluster(Vec::new());
    for k in 1..=n {
        let name = format!("Node{k}");
        let log = File::create(dir.join(format!("{name}.log"))).map_err(|e| e.to_string())?;
        let child = Command::new(&exe)
            .arg("node")
            .env("NODE_NAME", &name)
            .env("PEERS", &peers)
            .env("DATA_DIR", dir.join(&name))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        cluster.0.push(child);
    }
    println!(
        "{n} nodes on 127.0.0.11.. port 5555; logs and state in {}",
        dir.display()
    );
    let targets: Vec<(String, SocketAddr)> = (1..=n)
        .map(|k| {
            (
                format!("Node{k}"),
                SocketAddr::from(([127, 0, 0, 10 + k as u8], 5555)),
            )
        })
        .collect();
    let names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
    let client = Client {
        timeout: Duration::from_millis(200),
        ..Client::default()
    };
    let started = Instant::now();
    let mut table;
    loop {
        let answers = client.leader_info(&targets)?;
        let agreed;
        (table, agreed) = status_table(&names, &answers);
        if agreed || started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    print!("{table}");
    println!("(after {} ms)\n", started.elapsed().as_millis());
    println!("Drive it from another shell:\n  export PEERS={peers}");
    println!("  raft status | raft leader-info Node1 | raft timeout Node2 | raft shutdown Node3");
    println!("Watching (Ctrl-C stops the cluster):");
    let exe_watch = Command::new(&exe)
        .arg("watch")
        .args(
            interval
                .map(|i| vec!["--interval-ms".to_string(), i.clone()])
                .unwrap_or_default(),
        )
        .env("PEERS", &peers)
        .status()
        .map_err(|e| format!("cannot run watch: {e}"))?;
    drop(cluster);
    Ok(exe_watch.success())
}
