//! Shale's metadata plane: many Raft groups (openraft) per process, each with its log and
//! state machine in redb on the `Disk` seam. Work in progress (issue 3).

pub mod client;
pub mod config;
pub mod group_host;
pub mod group_status;
pub mod log_store;
pub mod maintain_config;
pub mod maintain_report;
pub mod meta_node;
pub mod network;
pub mod redb_disk;
pub mod runtime;
pub mod service;
pub mod sm_store;
pub mod snapshot_receiver;
pub mod snapshot_transfer;
pub mod state_machine;
pub mod types;
pub mod wire;

#[cfg(test)]
mod client_test;
#[cfg(test)]
mod group_host_test;
#[cfg(test)]
mod service_test;
#[cfg(test)]
mod snapshot_transfer_test;
#[cfg(test)]
mod store_test;
