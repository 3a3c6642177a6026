//! Shale's deterministic simulation harness: the real cluster code on madsim nodes, with
//! `common::env`'s simulated disks and clocks. Compiled only with `--cfg madsim`
//! (`RUSTFLAGS="--cfg madsim" cargo test -p sim`); in the normal build it is empty.
//!
//! What exists now: data nodes and meta nodes on `SimDisk`s, killed and restarted with
//! their disks losing unsynced writes; the S3 gateway serving real S3 HTTP over madsim's
//! TCP (`gateway_node`), driven by `gateway::client`'s SigV4 client. The scenario runner, fault
//! schedules and invariant checkers arrive with issue 5.

#[cfg(madsim)]
pub mod datanode_node;
#[cfg(madsim)]
pub mod gateway_node;
#[cfg(madsim)]
pub mod meta_node;
