//! What a node does before its loop starts: its durable state read (and checked), its message
//! guard made, its PRNG seeded. Owns the glue between the state file's names and the core's
//! member ids; must never run during the loop but to persist.
use super::Exit;
use crate::auth::{self, Guard};
use crate::config::NodeConfig;
use crate::election::{HardState, Role};
use crate::log::Line;
use crate::storage::{Saved, Store};

/// The message guard when a cluster key is configured: keys read, this start's epoch saved.
pub(super) fn make_guard(cfg: &NodeConfig, names: &[String]) -> Result<Option<Guard>, Exit> {
    let Some(src) = &cfg.cluster_key else {
        return Ok(None);
    };
    let current = auth::keyfile::load(src).map_err(Exit::Config)?;
    let previous = match &cfg.cluster_key_previous {
        Some(p) => Some(auth::keyfile::load(p).map_err(Exit::Config)?),
        None => None,
    };
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let dir = cfg.data_dir.as_deref().map(std::path::Path::new);
    let epoch = auth::epoch::next(dir, now_us).map_err(Exit::State)?;
    let keys = auth::Keys::new(&current, previous.as_deref());
    let hello_ms = cfg.core.heartbeat_ms;
    Ok(Some(Guard::new(
        keys,
        names.to_vec(),
        cfg.id(),
        epoch,
        hello_ms,
        0,
    )))
}

/// Another process holds `DATA_DIR`: an earlier incarnation of this node that has not exited
/// yet (Swarm can start a task's replacement first). Said once; stamped with the stored term.
pub(super) fn log_lock_wait(name: &str, store: &Store) {
    let term = store.load().ok().flatten().map_or(0, |s| s.term);
    Line::new(&format!("node={name}"))
        .kv("term", term)
        .kv("role", Role::Follower.as_str())
        .kv("event", "warning")
        .kv(
            "msg",
            "another process holds DATA_DIR (an earlier run of this node still stopping?): waiting for it to exit",
        )
        .emit();
}

/// The saved term and vote, and a warning worth logging, if any.
pub(super) fn load_hard_state(
    store: &Store,
    names: &[String],
) -> Result<(HardState, Option<String>), Exit> {
    let loaded = store.load();
    let path = store.path();
    let Some(saved) = loaded.map_err(|e| Exit::State(format!("{}: {e}", path.display())))? else {
        return Ok((HardState::default(), None));
    };
    let Some(name) = saved.voted_for else {
        let hard = HardState {
            term: saved.term,
            voted_for: None,
        };
        return Ok((hard, None));
    };
    if let Some(id) = names.iter().position(|n| *n == name) {
        let hard = HardState {
            term: saved.term,
            voted_for: Some(id),
        };
        return Ok((hard, None));
    }
    // The vote went to a node no longer in PEERS (the cluster was resized). Moving on to the next
    // term with no vote is always safe in Raft; forgetting the vote within its term is not.
    let term = saved.term.checked_add(1).ok_or_else(|| {
        Exit::State(format!(
            "{}: votes for {name}, not in PEERS",
            store.path().display()
        ))
    })?;
    let note = format!(
        "saved vote for {name} (not in PEERS) in term {}: starting at term {term}",
        saved.term
    );
    Ok((
        HardState {
            term,
            voted_for: None,
        },
        Some(note),
    ))
}

pub(super) fn save(store: &Store, hard: HardState, names: &[String]) -> std::io::Result<()> {
    store.save(&Saved {
        term: hard.term,
        voted_for: hard.voted_for.map(|i| names[i].clone()),
    })
}

/// Each node's PRNG seed. Nodes started in the same millisecond must still draw different
/// timeouts (identical ones split every vote), so the seed mixes the node's name with either the
/// configured `SEED` (reproducible runs) or the time and pid.
pub(super) fn node_seed(base: Option<u64>, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a over the name
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let base = base.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ ((std::process::id() as u64) << 32)
    });
    crate::election::Rng::new(base ^ h).next_u64()
}
