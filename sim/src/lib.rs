//! Shale's deterministic simulation harness: the real cluster code on madsim nodes, with
//! `common::env`'s simulated disks and clocks. Compiled only with `--cfg madsim`
//! (`RUSTFLAGS="--cfg madsim" cargo test -p sim`); in the normal build it is empty.
//!
//! - `meta_node`, `datanode_node`, `gateway_node`: the production `MetaNode`,
//!   `Datanode` and S3 `Gateway` as madsim nodes (disks that outlive restarts).
//! - `cluster`: `SimCluster`, a whole cluster from a scenario's shape, and the fault
//!   levers (power loss of a node or rack, clogs and partitions, pauses, bad disks,
//!   lossy network, clock skew).
//! - `scenario`: scenario files (`sim/scenarios/*.toml`) and the per-seed plan.
//! - `workload`: S3 clients over a small key space, recording the `history`.
//! - `checker`: the invariants, one file each.
//! - `runner`: one scenario, one seed, one report.
//! - `planted`: deliberate faults that prove the checkers fire.
//!
//! Fault model (`scenario::FaultKind`): power loss of a data node, a meta node, a whole
//! rack or every node of a kind (`SimDisk` drops unsynced writes and tears in-flight
//! ones); a gateway killed; a rack, a node or a group's leader cut off; symmetric
//! partitions; swizzle-clog; process pause; a data node's disk returning EIO, rotting
//! bits, slowing down or filling up; bits of stored fragments flipping at rest; a data
//! node replaced for good by a new empty one; packet loss and latency; a gateway's clock
//! skewed inside or beyond the SigV4 window, a meta or data node's clock skewed by up to
//! an hour. Each run is a safety phase (faults on), then
//! every fault healed, a recovery pause, a liveness phase and final reads; scenarios
//! checking full redundancy or GC safety then give repair a bounded wait.
//!
//! Run: `scripts/sim.sh --scenario NAME --seed N` (or `--seeds A..B --jobs J
//! --check-determinism`); `cargo test -p sim --test scenarios` runs each scenario for
//! fixed seeds, the determinism check and the planted faults.

#[cfg(madsim)]
pub mod checker;
#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod datanode_node;
#[cfg(madsim)]
pub mod gateway_node;
#[cfg(madsim)]
pub mod history;
#[cfg(madsim)]
pub mod meta_node;
#[cfg(madsim)]
pub mod planted;
#[cfg(madsim)]
pub mod runner;
#[cfg(madsim)]
pub mod scenario;
#[cfg(madsim)]
pub mod workload;
