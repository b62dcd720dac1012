//! Measurements against the Raft paper.
