//! A tiny Raft leader-election node.
//! Owns nothing but the module list; each module's doc says what it owns and must never do.
//!
//! | file            | concern                                                        |
//! |-----------------|----------------------------------------------------------------|
//! | `raft.rs`       | the election core: a sans-IO state machine (no clock, no I/O)  |
//! | `event.rs`      | what the core reports, and the canonical text of its values    |
//! | `json.rs`       | the flat five-field JSON codec                                 |
//! | `message.rs`    | which datagram means which core input, and back               |
//! | `runtime.rs`    | the single-threaded UDP loop around the core                   |
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
pub mod event;
pub mod json;
pub mod log;
pub mod message;
pub mod raft;
pub mod resolver;
pub mod runtime;
#[cfg(feature = "sim")]
pub mod sim;
pub mod storage;
