//! `MaintainError`: why one step of a maintenance loop failed. Every failure is
//! retried on the loop's next tick; none is fatal to the meta node.

use std::time::Duration;

use common::ids::GroupId;
use meta_raft::state_machine::{QueryError, Reason};

#[derive(Debug, thiserror::Error)]
pub enum MaintainError {
    /// This node does not (or no longer) lead the group: another node's loop acts.
    #[error("node {node} does not lead group {group}")]
    NotLeader { group: GroupId, node: u64 },
    /// The group is not hosted here (or the node is shutting down).
    #[error("group {group} is not hosted on this node")]
    NotHosted { group: GroupId },
    /// Raft refused or failed (no quorum, stopped).
    #[error("group {group}: {message}")]
    Raft { group: GroupId, message: String },
    #[error("group {group}: {what} did not finish within {after:?}")]
    Timeout {
        group: GroupId,
        what: &'static str,
        after: Duration,
    },
    #[error("group {group}: reading the state machine: {source}")]
    Query {
        group: GroupId,
        #[source]
        source: QueryError,
    },
    /// The state machine refused the command (e.g. a compare-and-set that lost).
    #[error("group {group}: rejected: {reason}")]
    Rejected { group: GroupId, reason: Reason },
    /// A call to another meta node (through a `MetaClient`) failed.
    #[error("{what}: {message}")]
    Remote { what: &'static str, message: String },
    /// The command applied but answered something unexpected (a bug).
    #[error("group {group}: unexpected response {response}")]
    Unexpected { group: GroupId, response: String },
}
