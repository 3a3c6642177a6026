//! The root group's records: the cluster map (nodes, racks, disks, state, last
//! heartbeat), the group map (which object group owns which key range, and its
//! members), and access keys. Buckets are also created here first — the root group is
//! the authority on bucket names and owners — and then in every object group that holds
//! the bucket's keys (see `bucket.rs`).
//!
//! Like the rest of the state machine, apply is pure: times travel in the commands.

use std::collections::BTreeMap;

use common::cluster::{ClusterMap, DiskInfo, DiskState, NodeInfo, NodeState};
use common::ids::{DiskId, GroupId, NodeId};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::error::{ApplyError, QueryError};
use super::response::{Reason, Response};

const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("root_nodes");
const GROUP_MAP: TableDefinition<&[u8], &[u8]> = TableDefinition::new("root_group_map");
const ACCESS_KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("root_access_keys");
const GROUP_MAP_KEY: &[u8] = b"map";

/// One object group's key range `[start, end)` in the encoded object-key order of
/// `keys::object_key` (`end = None`: to the end of the key space), and its voters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRange {
    pub group: GroupId,
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
    pub members: BTreeMap<u64, String>,
}

impl GroupRange {
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|e| key < e)
    }
}

/// Most object groups a bootstrap split can make (the bucket-name alphabet has 38
/// symbols; more groups come from splitting later).
pub const BOOTSTRAP_GROUPS_MAX: u32 = 32;

/// Which group owns which range. `version` grows by one with every change, so a client
/// can tell a stale cached map from a fresh one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMap {
    pub version: u64,
    pub groups: Vec<GroupRange>,
}

impl GroupMap {
    /// `n` object groups (ids 1..=n) splitting the key space on the first byte of the
    /// bucket name into `n` nearly equal slices of the bucket-name alphabet
    /// (`0-9`, `.`, `-`, `a-z`), all with the same members.
    pub fn bootstrap(n: u32, members: &BTreeMap<u64, String>) -> Self {
        assert!(
            (1..=BOOTSTRAP_GROUPS_MAX).contains(&n),
            "bootstrap supports 1..={BOOTSTRAP_GROUPS_MAX} object groups"
        );
        let mut alphabet: Vec<u8> = b"-.0123456789abcdefghijklmnopqrstuvwxyz".to_vec();
        alphabet.sort_unstable();
        let n_usize = n as usize;
        let mut groups = Vec::with_capacity(n_usize);
        for i in 0..n_usize {
            let start = if i == 0 {
                Vec::new()
            } else {
                vec![alphabet[i * alphabet.len() / n_usize]]
            };
            let end = if i + 1 == n_usize {
                None
            } else {
                Some(vec![alphabet[(i + 1) * alphabet.len() / n_usize]])
            };
            groups.push(GroupRange {
                group: GroupId(i as u64 + 1),
                start,
                end,
                members: members.clone(),
            });
        }
        let map = Self { version: 1, groups };
        assert!(map.is_valid(), "bootstrap group map covers the key space");
        map
    }

    /// Ranges are sorted, contiguous, start at the empty key and end unbounded.
    pub fn is_valid(&self) -> bool {
        let Some(first) = self.groups.first() else {
            return false;
        };
        if !first.start.is_empty() {
            return false;
        }
        for w in self.groups.windows(2) {
            if w[0].end.as_ref() != Some(&w[1].start) || w[0].start >= w[1].start {
                return false;
            }
        }
        self.groups.last().is_some_and(|g| g.end.is_none())
    }

    /// The group owning an encoded object key.
    pub fn group_for(&self, key: &[u8]) -> &GroupRange {
        self.groups
            .iter()
            .find(|g| g.contains(key))
            .expect("a valid group map covers every key")
    }

    /// Groups overlapping `[start, end)`, in key order.
    pub fn groups_overlapping<'a>(
        &'a self,
        start: &'a [u8],
        end: Option<&'a [u8]>,
    ) -> impl Iterator<Item = &'a GroupRange> + 'a {
        self.groups.iter().filter(move |g| {
            let starts_before_end = end.is_none_or(|e| g.start.as_slice() < e);
            let ends_after_start = g.end.as_deref().is_none_or(|ge| ge > start);
            starts_before_end && ends_after_start
        })
    }

    pub fn group(&self, id: GroupId) -> Option<&GroupRange> {
        self.groups.iter().find(|g| g.group == id)
    }
}

/// An S3 access key: the id clients send, the secret they sign with, the user it belongs
/// to (bucket ownership is by user).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    pub user: String,
    pub created_ms: u64,
}

/// A node as the root group records it: its map entry plus liveness bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub info: NodeInfo,
    pub last_heartbeat_ms: u64,
    /// Why the state last changed, for `shale admin status`.
    pub state_reason: String,
    /// When the state last changed (the proposer's wall clock; 0: at registration).
    pub state_changed_ms: u64,
    /// Heartbeats (and registrations) applied so far. The failure detector watches this
    /// count change on its own clock, never the data node's `at_ms` (clock skew).
    pub heartbeats: u64,
    /// Disks an operator marked failed, with why and when. A heartbeat keeps them
    /// failed (the data node cannot overrule the operator); marking a disk healthy
    /// removes the entry.
    pub failed_disks: BTreeMap<DiskId, DiskFailure>,
}

/// Why and when a disk was marked failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskFailure {
    pub reason: String,
    pub at_ms: u64,
}

impl NodeRecord {
    /// Forces the disks in `failed_disks` to `Failed` in `info`.
    fn apply_failed_disks(&mut self) {
        for d in &mut self.info.disks {
            if self.failed_disks.contains_key(&d.id) {
                d.state = DiskState::Failed;
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RootCommand {
    /// Sets the first map (version 1) or replaces it with `version = current + 1`.
    SetGroupMap(GroupMap),
    /// Adds a node or updates its address, rack and disks (state is kept if known).
    RegisterNode {
        info: NodeInfo,
        at_ms: u64,
    },
    Heartbeat {
        node: NodeId,
        at_ms: u64,
        disks: Vec<DiskInfo>,
    },
    /// Sets a node's state (operator or failure detector). With `expect`, only if the
    /// node is in that state now (else rejected, nothing written): the detector's
    /// compare-and-set, so it never overrides a state someone else just set.
    SetNodeState {
        node: NodeId,
        state: NodeState,
        reason: String,
        at_ms: u64,
        expect: Option<NodeState>,
    },
    CreateAccessKey(AccessKey),
    DeleteAccessKey {
        id: String,
    },
    /// Records `members` as the voters of object group `group` (after a membership
    /// change). The map's version grows by one, unless the members are already these.
    SetGroupMembers {
        group: GroupId,
        members: BTreeMap<u64, String>,
    },
    /// Removes a Draining or Dead node from the cluster map (operator, after it was
    /// emptied); rejected for an Up or Down node.
    RemoveNode {
        node: NodeId,
    },
    /// Marks a disk of a node failed (with a reason) or healthy again (operator).
    SetDiskState {
        node: NodeId,
        disk: DiskId,
        state: DiskState,
        reason: String,
        at_ms: u64,
    },
}

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, ApplyError> {
    postcard::to_allocvec(v).map_err(|e| ApplyError::Corrupt {
        table: "root",
        detail: format!("encode: {e}"),
    })
}

fn dec<T: for<'de> Deserialize<'de>>(table: &'static str, b: &[u8]) -> Result<T, ApplyError> {
    postcard::from_bytes(b).map_err(|e| ApplyError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

fn node_key(id: NodeId) -> [u8; 8] {
    id.0.to_le_bytes()
}

/// Applies a root-group command. Checks first, then writes (a rejection writes nothing).
pub fn apply_root(txn: &WriteTransaction, cmd: &RootCommand) -> Result<Response, ApplyError> {
    match cmd {
        RootCommand::SetGroupMap(map) => {
            if !map.is_valid() {
                return Ok(Response::Rejected(Reason::InvalidArgument(
                    "group map must be sorted, contiguous and cover the key space".into(),
                )));
            }
            let mut t = txn.open_table(GROUP_MAP)?;
            let current: Option<GroupMap> = match t.get(GROUP_MAP_KEY)? {
                Some(v) => Some(dec("root_group_map", v.value())?),
                None => None,
            };
            let expected = current.as_ref().map_or(1, |c| c.version + 1);
            if map.version != expected {
                return Ok(Response::Rejected(Reason::InvalidArgument(format!(
                    "group map version {} is not the next one ({expected})",
                    map.version
                ))));
            }
            t.insert(GROUP_MAP_KEY, enc(map)?.as_slice())?;
            Ok(Response::Empty)
        }
        RootCommand::SetGroupMembers { group, members } => {
            let mut t = txn.open_table(GROUP_MAP)?;
            let current: Option<GroupMap> = match t.get(GROUP_MAP_KEY)? {
                Some(v) => Some(dec("root_group_map", v.value())?),
                None => None,
            };
            let Some(mut map) = current else {
                return Ok(Response::Rejected(Reason::InvalidArgument(
                    "there is no group map yet".into(),
                )));
            };
            if members.is_empty() {
                return Ok(Response::Rejected(Reason::InvalidArgument(format!(
                    "group {group} needs at least one member"
                ))));
            }
            let Some(range) = map.groups.iter_mut().find(|g| g.group == *group) else {
                return Ok(Response::Rejected(Reason::InvalidArgument(format!(
                    "group {group} is not in the group map"
                ))));
            };
            if range.members == *members {
                return Ok(Response::Empty);
            }
            range.members = members.clone();
            map.version += 1;
            t.insert(GROUP_MAP_KEY, enc(&map)?.as_slice())?;
            Ok(Response::Empty)
        }
        RootCommand::RegisterNode { info, at_ms } => {
            let mut t = txn.open_table(NODES)?;
            let key = node_key(info.id);
            let previous: Option<NodeRecord> = match t.get(key.as_slice())? {
                Some(v) => Some(dec("root_nodes", v.value())?),
                None => None,
            };
            let record = match previous {
                Some(mut r) => {
                    let state = r.info.state;
                    r.info = info.clone();
                    r.info.state = state;
                    r.last_heartbeat_ms = *at_ms;
                    r.heartbeats += 1;
                    r.apply_failed_disks();
                    r
                }
                None => NodeRecord {
                    info: info.clone(),
                    last_heartbeat_ms: *at_ms,
                    state_reason: "registered".into(),
                    state_changed_ms: *at_ms,
                    heartbeats: 1,
                    failed_disks: BTreeMap::new(),
                },
            };
            t.insert(key.as_slice(), enc(&record)?.as_slice())?;
            Ok(Response::Empty)
        }
        RootCommand::Heartbeat { node, at_ms, disks } => {
            let mut t = txn.open_table(NODES)?;
            let key = node_key(*node);
            let Some(mut record) = (match t.get(key.as_slice())? {
                Some(v) => Some(dec::<NodeRecord>("root_nodes", v.value())?),
                None => None,
            }) else {
                return Ok(Response::Rejected(Reason::InvalidArgument(format!(
                    "heartbeat from unregistered node {node}"
                ))));
            };
            // Heartbeats may arrive out of order; time never moves backwards.
            record.last_heartbeat_ms = record.last_heartbeat_ms.max(*at_ms);
            record.heartbeats += 1;
            record.info.disks = disks.clone();
            record.apply_failed_disks();
            t.insert(key.as_slice(), enc(&record)?.as_slice())?;
            Ok(Response::Empty)
        }
        RootCommand::SetNodeState {
            node,
            state,
            reason,
            at_ms,
            expect,
        } => {
            let mut t = txn.open_table(NODES)?;
            let key = node_key(*node);
            let Some(mut record) = (match t.get(key.as_slice())? {
                Some(v) => Some(dec::<NodeRecord>("root_nodes", v.value())?),
                None => None,
            }) else {
                return Ok(Response::Rejected(Reason::InvalidArgument(format!(
                    "no node {node}"
                ))));
            };
            if let Some(e) = expect {
                if record.info.state != *e {
                    return Ok(Response::Rejected(Reason::InvalidArgument(format!(
                        "node {node} is {}, not {e}",
                        record.info.state
                    ))));
                }
            }
            record.info.state = *state;
            record.state_reason = reason.clone();
            record.state_changed_ms = *at_ms;
            t.insert(key.as_slice(), enc(&record)?.as_slice())?;
            Ok(Response::Empty)
        }
        RootCommand::RemoveNode { node } => {
            let mut t = txn.open_table(NODES)?;
            let key = node_key(*node);
            let Some(record) = (match t.get(key.as_slice())? {
                Some(v) => Some(dec::<NodeRecord>("root_nodes", v.value())?),
                None => None,
            }) else {
                return Ok(Response::Rejected(Reason::InvalidArgument(format!(
                    "no node {node}"
                ))));
            };
            if !matches!(record.info.state, NodeState::Draining | NodeState::Dead) {
                return Ok(Response::Rejected(Reason::InvalidArgument(format!(
                    "node {node} is {}: drain it (or declare it dead) before removing it",
                    record.info.state
                ))));
            }
            t.remove(key.as_slice())?;
            Ok(Response::Empty)
        }
        RootCommand::SetDiskState {
            node,
            disk,
            state,
            reason,
            at_ms,
        } => {
            let mut t = txn.open_table(NODES)?;
            let key = node_key(*node);
            let Some(mut record) = (match t.get(key.as_slice())? {
                Some(v) => Some(dec::<NodeRecord>("root_nodes", v.value())?),
                None => None,
            }) else {
                return Ok(Response::Rejected(Reason::InvalidArgument(format!(
                    "no node {node}"
                ))));
            };
            let Some(d) = record.info.disk_mut(*disk) else {
                return Ok(Response::Rejected(Reason::InvalidArgument(format!(
                    "node {node} has no disk {disk}"
                ))));
            };
            d.state = *state;
            match state {
                DiskState::Failed => {
                    record.failed_disks.insert(
                        *disk,
                        DiskFailure {
                            reason: reason.clone(),
                            at_ms: *at_ms,
                        },
                    );
                }
                DiskState::Healthy => {
                    record.failed_disks.remove(disk);
                }
            }
            t.insert(key.as_slice(), enc(&record)?.as_slice())?;
            Ok(Response::Empty)
        }
        RootCommand::CreateAccessKey(key) => {
            if key.id.is_empty() || key.secret.is_empty() || key.user.is_empty() {
                return Ok(Response::Rejected(Reason::InvalidArgument(
                    "access key id, secret and user must not be empty".into(),
                )));
            }
            let mut t = txn.open_table(ACCESS_KEYS)?;
            if t.get(key.id.as_bytes())?.is_some() {
                return Ok(Response::Rejected(Reason::InvalidArgument(format!(
                    "access key {} exists",
                    key.id
                ))));
            }
            t.insert(key.id.as_bytes(), enc(key)?.as_slice())?;
            Ok(Response::Empty)
        }
        RootCommand::DeleteAccessKey { id } => {
            let mut t = txn.open_table(ACCESS_KEYS)?;
            if t.remove(id.as_bytes())?.is_none() {
                return Ok(Response::Rejected(Reason::InvalidArgument(format!(
                    "no access key {id}"
                ))));
            }
            Ok(Response::Empty)
        }
    }
}

fn storage(e: impl Into<redb::Error>) -> QueryError {
    QueryError::Storage(ApplyError::Storage(e.into()))
}

fn read_all<T: for<'de> Deserialize<'de>>(
    txn: &ReadTransaction,
    def: TableDefinition<&[u8], &[u8]>,
    name: &'static str,
) -> Result<Vec<T>, QueryError> {
    let t = match txn.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(storage(e)),
    };
    let mut out = Vec::new();
    for item in t.iter().map_err(storage)? {
        let (_, v) = item.map_err(storage)?;
        out.push(dec(name, v.value()).map_err(QueryError::Storage)?);
    }
    Ok(out)
}

/// Every registered node with its liveness bookkeeping, by node id.
pub fn nodes(txn: &ReadTransaction) -> Result<Vec<NodeRecord>, QueryError> {
    read_all(txn, NODES, "root_nodes")
}

/// The cluster map the placement planner works from.
pub fn cluster_map(txn: &ReadTransaction) -> Result<ClusterMap, QueryError> {
    let mut map = ClusterMap::default();
    for r in nodes(txn)? {
        map.nodes.insert(r.info.id, r.info);
    }
    Ok(map)
}

pub fn group_map(txn: &ReadTransaction) -> Result<Option<GroupMap>, QueryError> {
    let t = match txn.open_table(GROUP_MAP) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(storage(e)),
    };
    match t.get(GROUP_MAP_KEY).map_err(storage)? {
        Some(v) => Ok(Some(
            dec("root_group_map", v.value()).map_err(QueryError::Storage)?,
        )),
        None => Ok(None),
    }
}

pub fn access_key(txn: &ReadTransaction, id: &str) -> Result<Option<AccessKey>, QueryError> {
    let t = match txn.open_table(ACCESS_KEYS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(storage(e)),
    };
    match t.get(id.as_bytes()).map_err(storage)? {
        Some(v) => Ok(Some(
            dec("root_access_keys", v.value()).map_err(QueryError::Storage)?,
        )),
        None => Ok(None),
    }
}

pub fn access_keys(txn: &ReadTransaction) -> Result<Vec<AccessKey>, QueryError> {
    read_all(txn, ACCESS_KEYS, "root_access_keys")
}
