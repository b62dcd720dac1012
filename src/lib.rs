//! A tiny Raft leader-election node: a sans-IO election core (`raft`), a flat JSON codec (`json`),
//! the mapping between the two (`message`), and the thin UDP runtime around them.
#![deny(unsafe_code)]

pub mod json;
pub mod raft;
