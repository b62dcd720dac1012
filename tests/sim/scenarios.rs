//! Named situations, each deterministic.
