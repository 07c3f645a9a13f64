//! Operator tools built into the binary: the load bench.

pub mod bench;
