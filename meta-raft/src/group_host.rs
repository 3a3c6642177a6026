//! `GroupHost`: the Raft groups one meta node hosts. Each group keeps its log and its
//! state machine in two redb databases (`groups/<id>/log.redb`, `groups/<id>/sm.redb`)
//! on the node's `Disk`, so a simulated crash hits them as power loss would. All groups
//! share the node's one `RaftService` (through the registry) and one channel per peer.

use std::collections::BTreeMap;
use std::sync::Arc;

use common::env::Disk;
use common::ids::GroupId;
use openraft::alias::{LogIdOf, StoredMembershipOf, VoteOf};
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft, RaftTypeConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::log_store::RedbLogStore;
use crate::network::{Channels, GrpcNetwork, GrpcNetworkFactory, RaftRegistry};
use crate::redb_disk::{open_database, RedbDiskError};
use crate::sm_store::{GroupLogic, RedbStateMachine};
use crate::snapshot_transfer::SNAPSHOT_CHUNK_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum GroupHostError {
    #[error("opening the {what} database of group {group}: {source}")]
    Database {
        group: GroupId,
        what: &'static str,
        #[source]
        source: RedbDiskError,
    },
    #[error("preparing storage of group {group}: {source}")]
    Storage {
        group: GroupId,
        #[source]
        source: std::io::Error,
    },
    #[error("starting raft for group {group}: {message}")]
    Raft { group: GroupId, message: String },
    #[error("invalid raft config: {0}")]
    Config(String),
    /// A membership change openraft refuses: `busy` when another change is still in
    /// progress (retry), otherwise it can never succeed as asked (it would leave the group
    /// empty, …).
    #[error("membership change of group {group} refused: {message}")]
    MembershipRefused {
        group: GroupId,
        busy: bool,
        message: String,
    },
    /// A membership change asked of a node that does not lead the group.
    #[error("this node does not lead group {group} (leader: {leader:?})")]
    NotLeader {
        group: GroupId,
        leader: Option<u64>,
        leader_node: Option<BasicNode>,
    },
}

impl GroupHostError {
    /// A failed membership change: `NotLeader` when the node should forward to a leader.
    fn membership<C>(group: GroupId, e: RaftError<C, ClientWriteError<C>>) -> Self
    where
        C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
    {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                GroupHostError::NotLeader {
                    group,
                    leader: f.leader_id,
                    leader_node: f.leader_node,
                }
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                GroupHostError::MembershipRefused {
                    group,
                    busy: matches!(e, ChangeMembershipError::InProgress(_)),
                    message: e.to_string(),
                }
            }
            other => GroupHostError::Raft {
                group,
                message: other.to_string(),
            },
        }
    }
}

/// Raft timing. Heartbeats every 100 ms, elections after 0.5–1 s of silence: quick
/// fail-over without flapping on a loaded machine. Snapshots go out in chunks of
/// [`SNAPSHOT_CHUNK_BYTES`], each chunk within 1.5 s (`soft_ttl` of the 2 s
/// `install_snapshot_timeout`; the last chunk also gets the install time, see
/// `snapshot_transfer`).
pub fn raft_config(cluster_id: &str) -> Result<Arc<Config>, GroupHostError> {
    let cfg = Config {
        cluster_name: cluster_id.to_string(),
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        install_snapshot_timeout: 2000,
        snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES as u64,
        ..Config::default()
    };
    cfg.validate()
        .map(Arc::new)
        .map_err(|e| GroupHostError::Config(e.to_string()))
}

pub struct GroupHost<C, L>
where
    C: RaftTypeConfig,
    L: GroupLogic<C>,
    C::R: Default,
    LogIdOf<C>: Serialize + DeserializeOwned,
    StoredMembershipOf<C>: Serialize + DeserializeOwned,
{
    node_id: u64,
    cluster_id: String,
    disk: Arc<dyn Disk>,
    config: Arc<Config>,
    channels: Channels,
    registry: Arc<RaftRegistry<C, RedbStateMachine<C, L>>>,
    machines: std::sync::Mutex<BTreeMap<GroupId, RedbStateMachine<C, L>>>,
}

impl<C, L> GroupHost<C, L>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
    L: GroupLogic<C>,
    C::R: Default,
    C::Entry: Serialize + DeserializeOwned,
    VoteOf<C>: Serialize + DeserializeOwned,
    LogIdOf<C>: Serialize + DeserializeOwned,
    StoredMembershipOf<C>: Serialize + DeserializeOwned,
    GrpcNetwork<C>: openraft::network::v2::RaftNetworkV2<C, SnapshotData = Vec<u8>>,
{
    pub fn new(
        node_id: u64,
        cluster_id: &str,
        disk: Arc<dyn Disk>,
    ) -> Result<Self, GroupHostError> {
        Self::with_raft_config(node_id, cluster_id, disk, raft_config(cluster_id)?)
    }

    /// Like [`GroupHost::new`] with another Raft config (tests: a tiny snapshot chunk
    /// size, snapshot policies).
    pub fn with_raft_config(
        node_id: u64,
        cluster_id: &str,
        disk: Arc<dyn Disk>,
        config: Arc<Config>,
    ) -> Result<Self, GroupHostError> {
        Ok(Self {
            node_id,
            cluster_id: cluster_id.to_string(),
            disk,
            config,
            channels: Channels::default(),
            registry: Arc::new(RaftRegistry::default()),
            machines: std::sync::Mutex::new(BTreeMap::new()),
        })
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    pub fn registry(&self) -> &Arc<RaftRegistry<C, RedbStateMachine<C, L>>> {
        &self.registry
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Groups that have storage on this node's disk (found on restart).
    pub fn groups_on_disk(&self) -> Vec<GroupId> {
        let Ok(entries) = self.disk.list_dir("groups") else {
            return Vec::new();
        };
        entries
            .into_iter()
            .filter(|e| e.is_dir)
            .filter_map(|e| e.name.parse::<u64>().ok().map(GroupId))
            .collect()
    }

    /// Opens (creating if needed) the storage of `group` and starts its Raft instance.
    pub async fn open_group(
        &self,
        group: GroupId,
    ) -> Result<Raft<C, RedbStateMachine<C, L>>, GroupHostError> {
        if let Some(r) = self.registry.get(group) {
            return Ok(r);
        }
        let dir = format!("groups/{}", group.0);
        let db = |what: &'static str| {
            open_database(&self.disk, &format!("{dir}/{what}.redb"))
                .map(Arc::new)
                .map_err(|source| GroupHostError::Database {
                    group,
                    what,
                    source,
                })
        };
        let log = RedbLogStore::<C>::new(db("log")?)
            .map_err(|source| GroupHostError::Storage { group, source })?;
        let sm = RedbStateMachine::<C, L>::new(db("sm")?)
            .map_err(|source| GroupHostError::Storage { group, source })?;
        let network =
            GrpcNetworkFactory::new(group, self.cluster_id.clone(), self.channels.clone());
        let raft = Raft::new(
            self.node_id,
            Arc::clone(&self.config),
            network,
            log,
            sm.clone(),
        )
        .await
        .map_err(|e| GroupHostError::Raft {
            group,
            message: e.to_string(),
        })?;
        self.registry.insert(group, raft.clone());
        self.machines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group, sm);
        Ok(raft)
    }

    /// The state machine of a hosted group (for reads after a barrier).
    pub fn state_machine(&self, group: GroupId) -> Option<RedbStateMachine<C, L>> {
        self.machines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group)
            .cloned()
    }

    /// Makes `members` the voters of `group` if it has never been initialised. Safe to
    /// call on every start by every member: openraft refuses a second initialisation,
    /// which is reported as `Ok(false)`.
    pub async fn bootstrap(
        &self,
        group: GroupId,
        members: &BTreeMap<u64, String>,
    ) -> Result<bool, GroupHostError> {
        let raft = self.open_group(group).await?;
        if raft
            .is_initialized()
            .await
            .map_err(|e| GroupHostError::Raft {
                group,
                message: e.to_string(),
            })?
        {
            return Ok(false);
        }
        let nodes: BTreeMap<u64, BasicNode> = members
            .iter()
            .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
            .collect();
        match raft.initialize(nodes).await {
            Ok(()) => Ok(true),
            Err(openraft::error::RaftError::APIError(
                openraft::error::InitializeError::NotAllowed(_),
            )) => Ok(false),
            Err(e) => Err(GroupHostError::Raft {
                group,
                message: e.to_string(),
            }),
        }
    }

    /// Adds node `id` (at `addr`) as a voter of `group`: first as a learner, waiting until
    /// it has caught up, then promoted (joint consensus). Runs on the group's leader; a
    /// follower gets [`GroupHostError::NotLeader`] naming the leader. Idempotent: adding
    /// a voter again changes nothing. The wait for the learner is unbounded: callers bound
    /// it (a dropped call leaves the learner in place; calling again resumes).
    pub async fn add_voter(
        &self,
        group: GroupId,
        id: u64,
        addr: &str,
    ) -> Result<(), GroupHostError> {
        let raft = self.raft(group)?;
        raft.add_learner(
            id,
            BasicNode {
                addr: addr.to_string(),
            },
            true,
        )
        .await
        .map_err(|e| GroupHostError::membership(group, e))?;
        raft.change_membership(
            openraft::ChangeMembers::AddVoterIds(std::collections::BTreeSet::from([id])),
            false,
        )
        .await
        .map_err(|e| GroupHostError::membership(group, e))?;
        Ok(())
    }

    /// Removes node `id` from `group`'s voters (and from the group). Runs on the leader;
    /// removing a node that is not a voter changes nothing.
    ///
    /// A leader asked to remove itself first hands leadership to the most up-to-date
    /// other voter and answers `NotLeader` naming it, so the caller retries there: a
    /// leader never proposes its own removal. (openraft 0.10.0-alpha.37 lets a leader
    /// whose uncommitted membership excludes it keep appending entries, and debug builds
    /// trip an assertion on the next membership entry; a transfer first also avoids the
    /// window where the group's leader is not a voter.)
    pub async fn remove_voter(&self, group: GroupId, id: u64) -> Result<(), GroupHostError> {
        let raft = self.raft(group)?;
        let metrics = openraft::rt::WatchReceiver::borrow_watched(&raft.metrics()).clone();
        if id == self.node_id && metrics.current_leader == Some(self.node_id) {
            let matched = |n: &u64| {
                metrics
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(n).cloned().flatten())
                    .map(|l| l.index)
            };
            let to = metrics
                .membership_config
                .membership()
                .voter_ids()
                .filter(|n| *n != self.node_id)
                .max_by_key(|n| (matched(n), std::cmp::Reverse(*n)));
            let Some(to) = to else {
                return Err(GroupHostError::MembershipRefused {
                    group,
                    busy: false,
                    message: "cannot remove the only voter".into(),
                });
            };
            raft.trigger()
                .transfer_leader(to)
                .await
                .map_err(|e| GroupHostError::Raft {
                    group,
                    message: e.to_string(),
                })?;
            let me = self.node_id;
            let moved = raft
                .wait(Some(std::time::Duration::from_secs(5)))
                .metrics(
                    |m| m.current_leader.is_some_and(|l| l != me),
                    "leadership moved away",
                )
                .await;
            let leader = moved.ok().and_then(|m| m.current_leader);
            let leader_node =
                leader.and_then(|l| metrics.membership_config.membership().get_node(&l).cloned());
            return Err(GroupHostError::NotLeader {
                group,
                leader,
                leader_node,
            });
        }
        raft.change_membership(
            openraft::ChangeMembers::RemoveVoters(std::collections::BTreeSet::from([id])),
            false,
        )
        .await
        .map_err(|e| GroupHostError::membership(group, e))?;
        Ok(())
    }

    fn raft(&self, group: GroupId) -> Result<Raft<C, RedbStateMachine<C, L>>, GroupHostError> {
        self.registry.get(group).ok_or(GroupHostError::Raft {
            group,
            message: "group is not hosted on this node".into(),
        })
    }

    /// Stops every group's Raft instance (graceful shutdown).
    pub async fn shutdown(&self) {
        for group in self.registry.group_ids() {
            if let Some(r) = self.registry.remove(group) {
                let _ = r.shutdown().await;
            }
        }
    }
}
