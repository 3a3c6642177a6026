//! Rack-aware placement planner: pure functions from a cluster map to fragment
//! placements. No async, no I/O, no clock; the only "randomness" is a fixed hash of the
//! inputs, so the same inputs give the same placement in every process and in the
//! simulator.
//!
//! - [`plan_stripe`] places the `k+m` fragments of a new stripe (rules, balance and
//!   tie-breaking are documented there).
//! - [`plan_replacements`] re-places some fragments of a stripe (failed writes) while
//!   the others stay, avoiding nodes the caller excludes.
//! - The placement rule itself, as a checker usable anywhere, is
//!   [`common::cluster::check_placement`]; the planner asserts it on every result.
//! - [`PlanError`] says, in operator terms, why a stripe cannot be placed.

pub mod durability;
mod error;
mod hash;
mod planner;
mod replace;

#[cfg(test)]
mod planner_test;
#[cfg(test)]
mod property_test;
#[cfg(test)]
mod replace_test;
#[cfg(test)]
mod test_support;

pub use common::cluster::{
    check_placement, ClusterMap, DiskInfo, DiskState, FragmentLocation, NodeInfo, NodeState,
    Placement, PlacementViolation,
};
pub use error::{Bytes, NodeCensus, PlanError};
pub use planner::{is_eligible, plan_stripe};
pub use replace::{plan_replacements, view_without};
