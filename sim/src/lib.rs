//! Shale's deterministic simulation harness: the real cluster code on madsim nodes, with
//! `common::env`'s simulated disks and clocks. Compiled only with `--cfg madsim`
//! (`RUSTFLAGS="--cfg madsim" cargo test -p sim`); in the normal build it is empty.
//!
//! What exists now (issue 2): data nodes on `SimDisk` inside madsim, driven over madsim's
//! simulated gRPC, killed and restarted with the disk losing unsynced writes. The
//! scenario runner, fault schedules and invariant checkers arrive with issue 5.

#[cfg(madsim)]
pub mod datanode_node;
#[cfg(madsim)]
pub mod meta_node;
