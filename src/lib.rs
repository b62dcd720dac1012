//! A tiny Raft leader-election node.
//! Owns nothing but the module list; each module's doc says what it owns and must never do.
//!
//! | file            | concern                                                        |
//! |-----------------|----------------------------------------------------------------|
//! | `election/`     | the election core: a sans-IO state machine (no clock, no I/O), |
//! |                 | and what it reports with the canonical text (`event.rs`)       |
//! | `json.rs`       | the flat five-field JSON codec                                 |
//! | `message.rs`    | the wire table: which datagram means which core input, and back |
//! | `route.rs`      | what a node does with a datagram (a pure function)            |
//! | `signal.rs`     | SIGTERM/SIGINT caught (the crate's only `unsafe`)              |
//! | `runtime/`      | the single-threaded UDP loop around the core (`mod.rs`), its   |
//! |                 | log lines (`log.rs`) and start-up: state, guard, seed (`setup.rs`) |
//! | `config.rs`     | configuration from the environment                             |
//! | `storage.rs`    | durable term and vote                                          |
//! | `resolver.rs`   | peer addresses, looked up off the election loop                |
//! | `log.rs`        | logfmt lines and rate limits                                   |
//! | `controller.rs` | the controller verbs (a client of the nodes)                   |
//! | `sim/`          | the deterministic simulator, for the tests and the playground  |
#![deny(unsafe_code)]

pub mod auth;
pub mod config;
pub mod controller;
pub mod election;
pub mod json;
pub mod log;
pub mod message;
pub mod resolver;
pub mod route;
pub mod runtime;
pub mod signal;
#[cfg(feature = "sim")]
pub mod sim;
pub mod storage;
