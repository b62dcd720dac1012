//! Deterministic simulation of the election core: real `raft::election::Node`s driven by a virtual
//! clock and a simulated network. Owns the simulated world and the scenario-file language that
//! the simulator tests (`tests/sim/`), the rule tests and the browser playground share; must
//! never read a clock, a socket or the OS's randomness, and the node binary never calls it (the
//! linker drops it: `cargo build --release` gives the same binary with or without it).
//!
//! | file         | concern                                                                  |
//! |--------------|--------------------------------------------------------------------------|
//! | `net.rs`     | links with delay, jitter, loss, duplication, reordering, and cuts        |
//! | `host.rs`    | when a timer really fires (the kernel's tick), disk time before sending  |
//! | `world.rs`   | the timed world: event queue, nodes and disks, crashes, pauses, faults   |
//! | `check.rs`   | the safety invariants, checked after every step                          |
//! | `props.rs`   | the timed properties of stickiness, CheckQuorum, timers, forced campaigns |
//! | `handover.rs`| the timed properties of leadership transfer and of the planned stop      |
//! | `cluster.rs` | the zero-delay cluster: messages wait until delivered, timers fire on cue |
//! | `script.rs`  | scenario files: commands to a cluster, each followed by its trace        |
//!
//! A run is a pure function of its inputs and seeds: nothing iterates a hash map, and one PRNG
//! per world feeds every random choice.

pub mod check;
pub mod cluster;
pub mod handover;
pub mod host;
pub mod net;
pub mod props;
pub mod script;
pub mod world;

use crate::election::{Input, NodeId, Output, Time};
use std::fmt;

/// One step of one node as a harness saw it. Its `Display` is the scenario files' line:
/// `  155 n1 recv VOTE_REQUEST t1 from n0 -> persist t1 vote=n0; ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub at: Time,
    pub node: NodeId,
    pub input: Input,
    pub output: Output,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>5} n{} ", self.at, self.node)?;
        match self.input {
            Input::Tick => f.write_str("tick")?,
            Input::Receive { from, msg } => write!(f, "recv {msg} from n{from}")?,
            Input::Command(cmd) => write!(f, "command {cmd}")?,
            Input::Stop => f.write_str("stop")?,
        }
        write!(f, " -> {}", self.output)
    }
}
