//! Background maintenance that runs inside every meta node process (`shale meta`,
//! `shale dev`, the simulated meta nodes): loops that act only for the Raft groups this
//! node currently leads, so exactly one runner works per group, and whatever they decide
//! is a Raft command (the work survives leader changes because its state lives in Raft).
//!
//! - [`Maintainer`] (`host.rs`): starts the loops on a meta node's [`MetaGroupHost`]
//!   with the `[maintain]` section of the meta config ([`MaintainConfig`]); dropping it
//!   stops them.
//! - [`Detector`] (`detector.rs`, root-group leader): data nodes whose heartbeat count
//!   stops changing (on the leader's own monotonic clock) become Down, then Dead; a Down
//!   node heartbeating again becomes Up. [`decide`] is the pure decision.
//! - [`GcWorker`] (`gc.rs`, object-group leaders): takes the group's fragment GC queue,
//!   deletes the fragments on their data nodes, acknowledges the finished entries.
//! - [`RepairWorker`] (`repair.rs`, object-group leaders): finds stripes with lost,
//!   moving (draining node) or damaged (scrub) fragments, rebuilds them onto a placement
//!   that keeps the rack rule and commits it with a compare-and-set (`ReplacePlacement`);
//!   pure decisions in `repair_plan.rs`, the byte-rate limit in `repair_budget.rs`.
//! - `report.rs`: the counters as a `MaintainReport` ([`Maintainer::publish_to`]) for the
//!   `MaintainStatus` rpc, `shale admin status` and the metrics endpoint.
//! - [`OrphanSweeper`] (`orphans.rs`, root-group leader): deletes fragments no metadata
//!   references (uncommitted PUTs), after a grace period (`orphan_tracker.rs`).
//! - [`Inventory`] (`inventory.rs`): the data nodes' fragment lists (`ListFragments`),
//!   used by the orphan sweep and by repair to find fragments missing on Up nodes.
//! - [`LocalGroups`] (`local.rs`): leadership, linearizable reads and writes of the
//!   groups hosted by this process, without a network hop.
//! - [`DataNodes`] (`datanodes.rs`): the data node calls the loops make.
//!
//! Determinism: time, spawning and randomness come from `common::env`; every collection
//! whose order reaches behaviour is a `BTreeMap`.
//!
//! [`MetaGroupHost`]: meta_raft::types::MetaGroupHost

pub mod datanodes;
pub mod detector;
pub mod error;
pub mod gc;
pub mod host;
pub mod inventory;
pub mod local;
pub mod orphan_tracker;
pub mod orphans;
pub mod repair;
pub mod repair_budget;
pub mod repair_damaged;
pub mod repair_plan;
pub mod report;

#[cfg(test)]
mod detector_test;
#[cfg(test)]
mod gc_test;
#[cfg(test)]
mod inventory_test;
#[cfg(test)]
mod orphans_test;
#[cfg(test)]
mod repair_test;

pub use datanodes::{DataNodes, FragmentCallError};
pub use detector::{decide, Detector, NodeView, Timeouts, Transition, Watch};
pub use error::MaintainError;
pub use gc::{GcStats, GcWorker};
pub use host::{MaintainStats, Maintainer};
pub use inventory::Inventory;
pub use local::LocalGroups;
pub use meta_raft::maintain_config::MaintainConfig;
pub use orphan_tracker::OrphanTracker;
pub use orphans::{OrphanStats, OrphanSweeper};
pub use repair::{RepairStats, RepairWorker};
