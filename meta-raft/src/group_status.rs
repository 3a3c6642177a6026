//! `GroupStatus`: one Raft group as one of its members sees it — role, leader, term,
//! voters and learners, log and apply progress, and (on the leader) how far each member's
//! log matches. Built from openraft's metrics; served by the `GroupStatus`,
//! `AddVoter` and `RemoveVoter` RPCs and printed by `shale admin status`.

use std::collections::BTreeMap;

use common::ids::GroupId;
use openraft::rt::WatchReceiver;
use openraft::{RaftMetrics, ServerState};

use crate::types::{GroupConfig, MetaGroupHost};

/// A member's role in a group, as reported.
pub const STATE_LEADER: &str = "LEADER";
pub const STATE_FOLLOWER: &str = "FOLLOWER";
pub const STATE_CANDIDATE: &str = "CANDIDATE";
pub const STATE_LEARNER: &str = "LEARNER";
pub const STATE_SHUTDOWN: &str = "SHUTDOWN";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    pub group: GroupId,
    /// The node that reported it.
    pub node_id: u64,
    /// One of the `STATE_*` constants.
    pub state: String,
    pub leader: Option<u64>,
    pub term: u64,
    /// Voters of the effective membership (the last, during a joint change): id → address.
    pub voters: BTreeMap<u64, String>,
    pub learners: BTreeMap<u64, String>,
    pub last_log_index: Option<u64>,
    pub committed_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// Leader only: the matched log index of each member (`None`: nothing matched yet).
    pub replication: BTreeMap<u64, Option<u64>>,
}

impl GroupStatus {
    pub fn from_metrics(group: GroupId, m: &RaftMetrics<GroupConfig>) -> Self {
        let membership = m.membership_config.membership();
        let addr = |id: &u64| {
            membership
                .get_node(id)
                .map(|n| n.addr.clone())
                .unwrap_or_default()
        };
        let state = match m.state {
            ServerState::Leader => STATE_LEADER,
            ServerState::Follower => STATE_FOLLOWER,
            ServerState::Candidate => STATE_CANDIDATE,
            ServerState::Learner => STATE_LEARNER,
            ServerState::Shutdown => STATE_SHUTDOWN,
        };
        GroupStatus {
            group,
            node_id: m.id,
            state: state.to_owned(),
            leader: m.current_leader,
            term: m.current_term,
            voters: membership.voter_ids().map(|id| (id, addr(&id))).collect(),
            learners: membership.learner_ids().map(|id| (id, addr(&id))).collect(),
            last_log_index: m.last_log_index,
            committed_index: m.local_committed.as_ref().map(|l| l.index),
            applied_index: m.last_applied.as_ref().map(|l| l.index),
            snapshot_index: m.snapshot.as_ref().map(|l| l.index),
            purged_index: m.purged.as_ref().map(|l| l.index),
            replication: m
                .replication
                .as_ref()
                .map(|r| {
                    r.iter()
                        .map(|(id, matched)| (*id, matched.as_ref().map(|l| l.index)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Every group `host` runs, as this node sees it (its own view, leader or not).
    pub fn local_all(host: &MetaGroupHost) -> Vec<GroupStatus> {
        let registry = host.registry();
        registry
            .group_ids()
            .into_iter()
            .filter_map(|g| {
                registry
                    .get(g)
                    .map(|raft| GroupStatus::from_metrics(g, &raft.metrics().borrow_watched()))
            })
            .collect()
    }

    pub fn is_leader(&self) -> bool {
        self.state == STATE_LEADER
    }
}
