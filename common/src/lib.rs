//! Shale's shared foundation: domain ids, the cluster map, the erasure codec wrapper,
//! and `env` — the only seams through which the rest of the code touches time,
//! randomness, disks and task spawning (so the same code runs on tokio and in madsim).

pub mod cluster;
pub mod codec;
pub mod config;
pub mod env;
pub mod ids;
