//! The Shale data node: stores erasure-coded fragments on its disks behind the `Disk`
//! seam, verifies a checksum on every block it returns, and serves them over gRPC.
//!
//! Architecture invariant: the data node never parses object metadata. It knows
//! fragment ids, codec parameters, lengths and bytes — nothing about buckets or keys.

pub mod config;
pub mod error;
pub mod format;
pub mod node;
pub mod scrub;
pub mod service;
pub mod store;

#[cfg(test)]
mod scrub_test;
#[cfg(test)]
mod store_test;

pub use config::DatanodeConfig;
pub use error::StoreError;
pub use node::{Damage, Datanode};
pub use scrub::{ScrubConfig, ScrubProgress};
pub use store::{Finding, FragmentStore, FragmentWriter, PutRequest, PutStart, StoreConfig};
