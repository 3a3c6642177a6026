//! `LocalGroups`: the Raft groups hosted by this meta process, as the maintenance loops
//! use them — am I the leader (and in which term), a linearizable read of a group's state
//! machine, a write that commits only while this node leads. No network hop: the loops
//! run on the leader, so a write from a node that lost leadership fails instead of being
//! forwarded (it never acts on a stale view).

use std::sync::Arc;
use std::time::Duration;

use common::env::Clock;
use common::ids::GroupId;
use meta_raft::state_machine::{ApplyError, Command, QueryError, Response};
use meta_raft::types::{MetaGroupHost, MetaRaft};
use openraft::error::{ClientWriteError, LinearizableReadError, RaftError};
use openraft::raft::ReadPolicy;
use openraft::rt::WatchReceiver;
use redb::{ReadTransaction, ReadableDatabase};

use crate::error::MaintainError;

/// The root group (cluster map).
pub const ROOT_GROUP: GroupId = GroupId(0);

/// A read barrier or a write that has not finished after this long is abandoned (the
/// loop retries on its next tick; commands are safe to repeat).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct LocalGroups {
    host: Arc<MetaGroupHost>,
    clock: Clock,
}

impl std::fmt::Debug for LocalGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalGroups")
            .field("node", &self.host.node_id())
            .finish_non_exhaustive()
    }
}

impl LocalGroups {
    pub fn new(host: Arc<MetaGroupHost>) -> Self {
        Self::with_clock(host, Clock::new())
    }

    /// `new`, stamping commands with `clock`'s wall time (the maintenance env's clock,
    /// so a simulated skew of the node reaches every time this node records).
    pub fn with_clock(host: Arc<MetaGroupHost>, clock: Clock) -> Self {
        Self { host, clock }
    }

    /// This node's wall clock, unix ms (stamped into commands that record a time).
    pub fn wall_ms(&self) -> u64 {
        self.clock.unix_ms()
    }

    pub fn node_id(&self) -> u64 {
        self.host.node_id()
    }

    /// The cluster this node belongs to (what a `MetaClient` must present).
    pub fn cluster_id(&self) -> String {
        self.host.cluster_id().to_owned()
    }

    /// The object groups hosted here, in id order.
    pub fn object_groups(&self) -> Vec<GroupId> {
        let mut groups: Vec<GroupId> = self
            .host
            .registry()
            .group_ids()
            .into_iter()
            .filter(|g| *g != ROOT_GROUP)
            .collect();
        groups.sort_unstable();
        groups
    }

    fn raft(&self, group: GroupId) -> Result<MetaRaft, MaintainError> {
        self.host
            .registry()
            .get(group)
            .ok_or(MaintainError::NotHosted { group })
    }

    /// `Some(term)` when this node leads `group` in `term` (as its Raft metrics say now).
    /// A new term means a new leadership: whatever a loop observed before is stale.
    pub fn leader_term(&self, group: GroupId) -> Option<u64> {
        let raft = self.host.registry().get(group)?;
        let m = raft.metrics().borrow_watched().clone();
        (m.state == openraft::ServerState::Leader && m.current_leader == Some(self.node_id()))
            .then_some(m.current_term)
    }

    /// The log index this node's replica of `group` has applied.
    pub fn applied_index(&self, group: GroupId) -> Option<u64> {
        let raft = self.host.registry().get(group)?;
        let m = raft.metrics().borrow_watched().clone();
        m.last_applied.map(|l| l.index)
    }

    fn not_leader(&self, group: GroupId) -> MaintainError {
        MaintainError::NotLeader {
            group,
            node: self.node_id(),
        }
    }

    /// A linearizable read of `group` (the leader read barrier, then `f` on a read
    /// transaction off the async executor).
    pub async fn read<T, F>(&self, group: GroupId, f: F) -> Result<T, MaintainError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, QueryError> + Send + 'static,
    {
        let raft = self.raft(group)?;
        match self
            .clock
            .timeout(
                CALL_TIMEOUT,
                raft.ensure_linearizable(ReadPolicy::ReadIndex),
            )
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(_)))) => {
                return Err(self.not_leader(group))
            }
            Ok(Err(e)) => {
                return Err(MaintainError::Raft {
                    group,
                    message: e.to_string(),
                })
            }
            Err(_) => {
                return Err(MaintainError::Timeout {
                    group,
                    what: "the read barrier",
                    after: CALL_TIMEOUT,
                })
            }
        }
        self.read_local(group, f).await
    }

    /// A read of this node's replica of `group` without a barrier (it may lag the
    /// leader). The GC reads the cluster map like this: a stale node state only delays
    /// a delete.
    pub async fn read_local<T, F>(&self, group: GroupId, f: F) -> Result<T, MaintainError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, QueryError> + Send + 'static,
    {
        let sm = self
            .host
            .state_machine(group)
            .ok_or(MaintainError::NotHosted { group })?;
        let db = Arc::clone(sm.database());
        let joined = common::env::spawn_blocking(move || {
            let txn = db
                .begin_read()
                .map_err(|e| QueryError::Storage(ApplyError::Storage(e.into())))?;
            f(&txn)
        })
        .await;
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(MaintainError::Query { group, source }),
            Err(e) => Err(MaintainError::Raft {
                group,
                message: format!("read task: {e}"),
            }),
        }
    }

    /// Proposes `cmd` to `group` on this node (its leader) and waits until it is applied.
    /// A business rejection is [`MaintainError::Rejected`].
    pub async fn write(&self, group: GroupId, cmd: Command) -> Result<Response, MaintainError> {
        let raft = self.raft(group)?;
        if self.leader_term(group).is_none() {
            return Err(self.not_leader(group));
        }
        match self
            .clock
            .timeout(CALL_TIMEOUT, raft.client_write(cmd))
            .await
        {
            Ok(Ok(r)) => match r.data {
                Response::Rejected(reason) => Err(MaintainError::Rejected { group, reason }),
                other => Ok(other),
            },
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                Err(self.not_leader(group))
            }
            Ok(Err(e)) => Err(MaintainError::Raft {
                group,
                message: e.to_string(),
            }),
            Err(_) => Err(MaintainError::Timeout {
                group,
                what: "a write",
                after: CALL_TIMEOUT,
            }),
        }
    }
}
