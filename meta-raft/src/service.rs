//! `MetaGrpc`: the metadata service (`proto::meta::MetaService`) over the Raft groups a
//! meta node hosts ([`MetaGroupHost`]). Served on the node's one gRPC address next to the
//! Raft transport, so the addresses in Raft membership and in the group map are also the
//! addresses clients call.
//!
//! # Writes
//! One request is one Raft command: `raft.client_write(cmd)`. A business rejection
//! (`Response::Rejected`) becomes a typed wire error. A node that does not lead the group
//! answers `NOT_LEADER` with the leader's id and address when it knows them (from the
//! `ForwardToLeader` error, else from the group's membership in the Raft metrics). A
//! fresh leader refuses writes until a quorum has acknowledged it (openraft reports
//! "forward to leader" with reason `LeaseExpired`); the service retries that a few times
//! with a bounded backoff and answers `NO_QUORUM` if the lease never comes.
//!
//! # Reads
//! Every read is linearizable: `ensure_linearizable(ReadPolicy::ReadIndex)` first (the
//! leader confirms with a quorum and waits until its state machine applied everything
//! committed before the read arrived), then one redb read transaction on the local state
//! machine. A follower answers `NOT_LEADER`; a leader that cannot reach a quorum
//! `NO_QUORUM` (the gateway's 503).
//!
//! # Routing
//! Every object-group request names its group; the service checks the key (or the
//! listing range, or the bucket) against that group's range in the group map and answers
//! `WRONG_GROUP` otherwise. The map is read from this node's replica of the root group
//! (GroupId 0) without a barrier: it changes only when groups are split or moved, and a
//! replica that lags behind such a change could accept a request for a range it just gave
//! away (acceptable until splits exist; they must fence with the map version).
//!
//! Root-group requests (cluster map, group map, nodes, access keys) always go to group 0.
//! Bucket requests go to group 0 (the authority on names and owners) or to an object
//! group whose range overlaps the bucket's keys; the multi-group protocol is the client's
//! (`crate::client`).
//!
//! # Membership and status
//! `AddVoter` / `RemoveVoter` run on the group's leader (`NOT_LEADER` with a hint
//! elsewhere) through `GroupHost::add_voter` / `remove_voter`, bounded by
//! [`MEMBERSHIP_TIMEOUT`] (`UNAVAILABLE` after it: a learner still catching up; calling
//! again resumes), and answer the group's status after the change. They change the Raft
//! membership only; the client then records the new voters in the group map
//! (`SetGroupMembers`, a root command). `GroupStatus` answers the leader's view of a
//! group (or, with `local`, this node's own view) from openraft's metrics, without a
//! barrier.
//!
//! Serve it as `MetaServiceServer::new(MetaGrpc::new(host).with_clock(clock))` (the
//! node's clock, whose wall time the service stamps into commands) with
//! `.max_decoding_message_size(META_MESSAGE_BYTES_MAX)` and
//! `.max_encoding_message_size(META_MESSAGE_BYTES_MAX)` (the generated server type
//! differs between tokio and madsim, so this module does not name it).
//!
//! Every request must carry this cluster's id in the [`CLUSTER_ID_KEY`] metadata entry
//! (`WRONG_CLUSTER` otherwise). No input from the network may panic the service.

use std::sync::Arc;
use std::time::Duration;

use common::env::Clock;
use common::ids::GroupId;
use openraft::error::{ClientWriteError, ForwardReason, LinearizableReadError, RaftError};
use openraft::raft::ReadPolicy;
use openraft::rt::WatchReceiver;
use openraft::BasicNode;
use proto::convert::{node_state_from_wire, required, ConvertError};
use proto::meta as pb;
use proto::meta::meta_service_server::MetaService;
use proto::meta::MetaErrorCode;
use redb::{ReadTransaction, ReadableDatabase};
use tonic::{Request, Response, Status};

use crate::group_host::GroupHostError;
use crate::group_status::GroupStatus;
use crate::maintain_report::MaintainReportSlot;
use crate::state_machine::{
    self as sm, keys, AbortMultipartUpload, AccessKey, BucketRecord, Command,
    CompleteMultipartUpload, CreateMultipartUpload, CurrentVersion, DeleteObject, GcId, GroupMap,
    GroupRange, ListObjectsParams, ListUploadsParams, ListVersionsParams, PutObject, QueryError,
    Reason, RecordPart, ReplacePlacement, Response as SmResponse, RootCommand,
};
use crate::types::{MetaGroupHost, MetaRaft};
use crate::wire;

/// The metadata entry that carries the caller's cluster id.
pub const CLUSTER_ID_KEY: &str = "shale-cluster-id";

/// Largest metadata message accepted or sent. A version record of a very large object
/// lists every stripe, so this is well above tonic's 4 MiB default.
pub const META_MESSAGE_BYTES_MAX: usize = 64 << 20;

/// Most GC entries one `GcTake` returns.
pub const GC_TAKE_MAX: u32 = 1000;

/// The root group: cluster map, group map, bucket names and owners, access keys.
pub const ROOT_GROUP: GroupId = GroupId(0);

/// Attempts of a write while this node leads but cannot commit yet (fresh leader).
const WRITE_ATTEMPTS: u32 = 6;
const BACKOFF_INITIAL: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_millis(200);
/// A write that has not committed after this long is answered `UNAVAILABLE` (its outcome
/// is unknown: it may still commit; commands are safe to retry).
const WRITE_TIMEOUT: Duration = Duration::from_secs(4);
/// A read barrier that has not passed after this long is answered `NO_QUORUM`.
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// What `NO_QUORUM` / `UNAVAILABLE` suggest to wait before retrying (about an election).
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// A membership change (a learner catching up, then joint consensus) that has not
/// finished after this long is answered `UNAVAILABLE` (below the client's RPC timeout;
/// calling again resumes where it stopped).
pub const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(8);

// ---- routing helpers (shared with the client, which must route the same way) ----

/// `[start, end)` of the object keys a listing of `bucket` with `prefix` can return, from
/// `lower` (inclusive; the resume position) on.
pub fn listing_range(bucket: &str, prefix: &str, lower: Option<Vec<u8>>) -> (Vec<u8>, Vec<u8>) {
    let prefix_start = keys::key_prefix(bucket, prefix);
    let end = keys::prefix_successor(&prefix_start).unwrap_or_else(|| keys::bucket_range(bucket).1);
    let start = match lower {
        Some(l) => keys::max_lower(prefix_start, l),
        None => prefix_start,
    };
    (start, end)
}

/// The smallest key `k` of `bucket` with `object_key(bucket, k) >= bound`: the listing
/// bound (`end_before`) equivalent to a group boundary. `Ok(None)` when `bound` is at or
/// after the end of the bucket's keys. `Err` when the boundary splits a UTF-8 character
/// of a key (group boundaries must fall between keys).
pub fn key_at_or_after(bucket: &str, bound: &[u8]) -> Result<Option<String>, String> {
    let (start, end) = keys::bucket_range(bucket);
    if bound >= end.as_slice() {
        return Ok(None);
    }
    if bound <= start.as_slice() {
        return Ok(Some(String::new()));
    }
    // start < bound < end implies bound starts with `start` (= bucket || 0x00).
    let rest = bound.get(start.len()..).unwrap_or_default();
    let mut key = Vec::with_capacity(rest.len());
    let mut i = 0;
    loop {
        match rest.get(i) {
            // bound = key_prefix(bucket, key): `key` itself is the first key at or after.
            None => break,
            Some(0) => match rest.get(i + 1) {
                // An escaped NUL inside the key.
                Some(0xFF) => {
                    key.push(0);
                    i += 2;
                }
                // key_prefix || 0x00 sorts before object_key(key) = key_prefix || 0x00 0x00.
                None => break,
                // Exactly object_key(key); anything after the terminator (a version or
                // upload suffix) sorts after it, and the next key is key || NUL.
                Some(0) => {
                    if i + 2 < rest.len() {
                        key.push(0);
                    }
                    break;
                }
                // Between object_key(key) and the keys that continue with NUL.
                Some(_) => {
                    key.push(0);
                    break;
                }
            },
            Some(&b) => {
                key.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(key)
        .map(Some)
        .map_err(|_| format!("group boundary {bound:?} splits a character of a key"))
}

// ---- errors ----

fn status(err: pb::MetaError) -> Status {
    proto::meta_status(&err)
}

fn error(code: MetaErrorCode, group: GroupId, message: impl Into<String>) -> Status {
    let mut e = proto::meta_error(code, message);
    e.group_id = group.0;
    if matches!(code, MetaErrorCode::NoQuorum | MetaErrorCode::Unavailable) {
        e.retry_after_ms = u64::try_from(RETRY_AFTER.as_millis()).unwrap_or(u64::MAX);
    }
    status(e)
}

fn malformed(e: ConvertError) -> Status {
    status(proto::meta_error(MetaErrorCode::Malformed, e.to_string()))
}

fn rejected(group: GroupId, r: &Reason) -> Status {
    status(wire::reason_error(group, r))
}

fn query_failed(group: GroupId, e: QueryError) -> Status {
    match e {
        QueryError::Rejected(r) => rejected(group, &r),
        QueryError::Storage(e) => error(MetaErrorCode::Internal, group, e.to_string()),
    }
}

fn bad_response(group: GroupId, what: &str, r: &SmResponse) -> Status {
    error(
        MetaErrorCode::Internal,
        group,
        format!("unexpected state machine response to {what}: {r}"),
    )
}

// ---- the service ----

/// The metadata service of one meta node.
pub struct MetaGrpc {
    host: Arc<MetaGroupHost>,
    /// Timeouts and backoff; its wall time stamps `SetNodeState`, `SetDiskState` and
    /// `GcAck`. Unskewed unless `with_clock` gives the node's clock.
    clock: Clock,
    maintain: MaintainReportSlot,
}

impl MetaGrpc {
    pub fn new(host: Arc<MetaGroupHost>) -> Self {
        Self {
            host,
            clock: Clock::new(),
            maintain: MaintainReportSlot::default(),
        }
    }

    /// Reads wall time (the `at_ms` the service stamps into commands) from `clock`, the
    /// node's clock, instead of an unskewed one.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Answers `MaintainStatus` from `slot` (where the process's maintenance loops
    /// publish); without it the node reports no loops.
    pub fn with_maintain_report(mut self, slot: MaintainReportSlot) -> Self {
        self.maintain = slot;
        self
    }

    fn check_cluster<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let theirs = req
            .metadata()
            .get(CLUSTER_ID_KEY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if theirs == self.host.cluster_id() {
            return Ok(());
        }
        Err(status(proto::meta_error(
            MetaErrorCode::WrongCluster,
            format!(
                "this meta node belongs to cluster {:?}, the caller to {theirs:?}",
                self.host.cluster_id()
            ),
        )))
    }

    fn raft(&self, group: GroupId) -> Result<MetaRaft, Status> {
        // A group this node does not host: the caller's member list is stale; it should
        // try another member.
        self.host.registry().get(group).ok_or_else(|| {
            error(
                MetaErrorCode::NotLeader,
                group,
                format!(
                    "group {group} is not hosted on node {}",
                    self.host.node_id()
                ),
            )
        })
    }

    /// The group map as this node's root replica knows it (no barrier; see module docs).
    fn group_map(&self) -> Result<GroupMap, Status> {
        let sm = self.host.state_machine(ROOT_GROUP).ok_or_else(|| {
            error(
                MetaErrorCode::Unavailable,
                ROOT_GROUP,
                "this node does not host the root group",
            )
        })?;
        let txn = sm
            .database()
            .begin_read()
            .map_err(|e| error(MetaErrorCode::Internal, ROOT_GROUP, e.to_string()))?;
        sm::group_map(&txn)
            .map_err(|e| query_failed(ROOT_GROUP, e))?
            .ok_or_else(|| {
                error(
                    MetaErrorCode::Unavailable,
                    ROOT_GROUP,
                    "the group map is not set yet",
                )
            })
    }

    fn object_group(&self, group: GroupId) -> Result<(GroupMap, GroupRange), Status> {
        let map = self.group_map()?;
        let range = map.group(group).cloned().ok_or_else(|| {
            error(
                MetaErrorCode::WrongGroup,
                group,
                format!(
                    "group {group} is not an object group (map version {})",
                    map.version
                ),
            )
        })?;
        Ok((map, range))
    }

    /// The object `(bucket, key)` belongs to `group`.
    fn route_key(&self, group: GroupId, bucket: &str, key: &str) -> Result<(), Status> {
        let (map, range) = self.object_group(group)?;
        let ok = keys::object_key(bucket, key);
        if range.contains(&ok) {
            return Ok(());
        }
        Err(error(
            MetaErrorCode::WrongGroup,
            group,
            format!(
                "{bucket}/{key} belongs to group {}, not {group} (map version {})",
                map.group_for(&ok).group,
                map.version
            ),
        ))
    }

    /// `group` is the root group or an object group holding keys of `bucket`.
    fn route_bucket(&self, group: GroupId, bucket: &str) -> Result<(), Status> {
        if group == ROOT_GROUP {
            return Ok(());
        }
        let (map, _) = self.object_group(group)?;
        let (start, end) = keys::bucket_range(bucket);
        if map
            .groups_overlapping(&start, Some(&end))
            .any(|g| g.group == group)
        {
            return Ok(());
        }
        Err(error(
            MetaErrorCode::WrongGroup,
            group,
            format!("group {group} holds no keys of bucket {bucket}"),
        ))
    }

    /// `group` holds part of `[start, end)` of `bucket` (or, for an empty range, part of
    /// the bucket); returns the listing bound equivalent to the group's end.
    fn route_listing(
        &self,
        group: GroupId,
        bucket: &str,
        (start, end): (Vec<u8>, Vec<u8>),
    ) -> Result<Option<String>, Status> {
        self.route_bucket(group, bucket)?;
        let (map, range) = self.object_group(group)?;
        if start < end
            && !map
                .groups_overlapping(&start, Some(&end))
                .any(|g| g.group == group)
        {
            return Err(error(
                MetaErrorCode::WrongGroup,
                group,
                format!("group {group} holds no keys of this listing of bucket {bucket}"),
            ));
        }
        match &range.end {
            None => Ok(None),
            Some(e) => {
                key_at_or_after(bucket, e).map_err(|m| error(MetaErrorCode::Internal, group, m))
            }
        }
    }

    /// The leader hint for `group`: `leader` from openraft, its address from `node` or
    /// from the group's membership.
    fn not_leader(
        &self,
        group: GroupId,
        raft: &MetaRaft,
        leader: Option<u64>,
        node: Option<BasicNode>,
    ) -> Status {
        let metrics = raft.metrics().borrow_watched().clone();
        let leader = leader
            .or(metrics.current_leader)
            .filter(|l| *l != self.host.node_id());
        let addr = node
            .map(|n| n.addr)
            .or_else(|| {
                leader.and_then(|l| {
                    metrics
                        .membership_config
                        .membership()
                        .get_node(&l)
                        .map(|n| n.addr.clone())
                })
            })
            .unwrap_or_default();
        let message = match leader {
            Some(l) => format!(
                "node {} does not lead group {group}; node {l} ({addr}) does",
                self.host.node_id()
            ),
            None => format!(
                "node {} does not lead group {group}; no leader known",
                self.host.node_id()
            ),
        };
        status(pb::MetaError {
            code: MetaErrorCode::NotLeader as i32,
            message,
            leader_id: leader,
            leader_addr: if leader.is_some() {
                addr
            } else {
                String::new()
            },
            group_id: group.0,
            ..pb::MetaError::default()
        })
    }

    /// This node leads `group` but may not write yet (its lease is not established).
    fn leads_without_lease(
        &self,
        raft: &MetaRaft,
        reason: ForwardReason,
        leader: Option<u64>,
    ) -> bool {
        let me = self.host.node_id();
        reason == ForwardReason::LeaseExpired
            || leader == Some(me)
            || (leader.is_none() && raft.metrics().borrow_watched().current_leader == Some(me))
    }

    /// Proposes `cmd` to `group` and waits until it is applied.
    async fn write(&self, group: GroupId, cmd: Command) -> Result<SmResponse, Status> {
        let raft = self.raft(group)?;
        let mut backoff = BACKOFF_INITIAL;
        for attempt in 1..=WRITE_ATTEMPTS {
            let result = self
                .clock
                .timeout(WRITE_TIMEOUT, raft.client_write(cmd.clone()))
                .await;
            let err = match result {
                Err(_) => {
                    return Err(error(
                        MetaErrorCode::Unavailable,
                        group,
                        format!("{cmd} did not commit within {WRITE_TIMEOUT:?}; outcome unknown"),
                    ))
                }
                Ok(Ok(r)) => {
                    return match r.data {
                        SmResponse::Rejected(reason) => Err(rejected(group, &reason)),
                        other => Ok(other),
                    }
                }
                Ok(Err(e)) => e,
            };
            match err {
                RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                    if !self.leads_without_lease(&raft, f.reason, f.leader_id) {
                        return Err(self.not_leader(group, &raft, f.leader_id, f.leader_node));
                    }
                    if attempt == WRITE_ATTEMPTS {
                        return Err(error(
                            MetaErrorCode::NoQuorum,
                            group,
                            format!(
                                "node {} leads group {group} but no quorum acknowledges it",
                                self.host.node_id()
                            ),
                        ));
                    }
                    self.clock.sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                // The entry was appended here but replaced by another leader's log. Its
                // outcome is unknown; the client retries at the new leader (commands
                // carry their ids, so a retried command is recognised).
                RaftError::APIError(ClientWriteError::LogEntryDiscarded(f)) => {
                    return Err(self.not_leader(group, &raft, f.leader_id, f.leader_node));
                }
                RaftError::APIError(other) => {
                    return Err(error(MetaErrorCode::Internal, group, other.to_string()))
                }
                RaftError::Fatal(e) => {
                    return Err(error(
                        MetaErrorCode::Unavailable,
                        group,
                        format!("raft of group {group} stopped: {e}"),
                    ))
                }
            }
        }
        Err(error(MetaErrorCode::NoQuorum, group, "no quorum"))
    }

    /// A linearizable read of `group`'s state machine: the leader read barrier, then `f`
    /// on a read transaction (off the async executor).
    async fn read<T, F>(&self, group: GroupId, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, QueryError> + Send + 'static,
    {
        let raft = self.raft(group)?;
        let barrier = async {
            if common::env::planted::active(common::env::planted::Bug::SkipReadBarrier) {
                return Ok(()); // planted bug (simulation only): read local state as is
            }
            raft.ensure_linearizable(ReadPolicy::ReadIndex)
                .await
                .map(|_| ())
        };
        match self.clock.timeout(READ_TIMEOUT, barrier).await {
            Ok(Ok(_)) => {}
            Ok(Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f)))) => {
                return Err(self.not_leader(group, &raft, f.leader_id, f.leader_node))
            }
            Ok(Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(q)))) => {
                return Err(error(MetaErrorCode::NoQuorum, group, q.to_string()))
            }
            Ok(Err(RaftError::Fatal(e))) => {
                return Err(error(
                    MetaErrorCode::Unavailable,
                    group,
                    format!("raft of group {group} stopped: {e}"),
                ))
            }
            Err(_) => {
                return Err(error(
                    MetaErrorCode::NoQuorum,
                    group,
                    format!("the read barrier did not pass within {READ_TIMEOUT:?}"),
                ))
            }
        }
        let sm = self
            .host
            .state_machine(group)
            .ok_or_else(|| error(MetaErrorCode::Unavailable, group, "state machine not open"))?;
        let db = Arc::clone(sm.database());
        let joined = common::env::spawn_blocking(move || {
            let txn = db
                .begin_read()
                .map_err(|e| QueryError::Storage(sm::ApplyError::Storage(e.into())))?;
            f(&txn)
        })
        .await;
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(query_failed(group, e)),
            Err(e) => Err(error(
                MetaErrorCode::Internal,
                group,
                format!("read task: {e}"),
            )),
        }
    }

    /// This node leads `group` (else `NOT_LEADER` with a hint).
    fn require_leader(&self, group: GroupId, raft: &MetaRaft) -> Result<(), Status> {
        let metrics = raft.metrics().borrow_watched().clone();
        if metrics.state == openraft::ServerState::Leader
            && metrics.current_leader == Some(self.host.node_id())
        {
            return Ok(());
        }
        Err(self.not_leader(group, raft, None, None))
    }

    /// This node's view of `group`.
    fn status_of(&self, group: GroupId, raft: &MetaRaft) -> GroupStatus {
        GroupStatus::from_metrics(group, &raft.metrics().borrow_watched())
    }

    /// Runs a membership change of `group` on this node (its leader), bounded by
    /// [`MEMBERSHIP_TIMEOUT`], and answers the group's status after it.
    async fn change_membership<F>(&self, group: GroupId, change: F) -> Result<GroupStatus, Status>
    where
        F: std::future::Future<Output = Result<(), GroupHostError>> + Send,
    {
        let raft = self.raft(group)?;
        self.require_leader(group, &raft)?;
        match self
            .clock
            .timeout(MEMBERSHIP_TIMEOUT, Box::pin(change))
            .await
        {
            Err(_) => Err(error(
                MetaErrorCode::Unavailable,
                group,
                format!(
                    "the membership change of group {group} did not finish within \
                     {MEMBERSHIP_TIMEOUT:?} (a new member may still be catching up); call again"
                ),
            )),
            Ok(Err(GroupHostError::NotLeader {
                leader,
                leader_node,
                ..
            })) => Err(self.not_leader(group, &raft, leader, leader_node)),
            Ok(Err(GroupHostError::MembershipRefused {
                busy: true,
                message,
                ..
            })) => Err(error(MetaErrorCode::Unavailable, group, message)),
            Ok(Err(GroupHostError::MembershipRefused { message, .. })) => Err(rejected(
                group,
                &Reason::InvalidArgument(format!("membership change refused: {message}")),
            )),
            Ok(Err(e)) => Err(error(MetaErrorCode::Internal, group, e.to_string())),
            Ok(Ok(())) => Ok(self.status_of(group, &raft)),
        }
    }

    /// Root-group commands answer `Empty` on success.
    async fn write_root(&self, cmd: RootCommand) -> Result<(), Status> {
        match self.write(ROOT_GROUP, Command::Root(cmd)).await? {
            SmResponse::Empty => Ok(()),
            other => Err(bad_response(ROOT_GROUP, "a root command", &other)),
        }
    }
}

fn commit_response(
    group: GroupId,
    what: &str,
    r: SmResponse,
) -> Result<Response<pb::CommitResponse>, Status> {
    match r {
        SmResponse::Committed {
            version_id,
            seq,
            etag,
            size,
        } => Ok(Response::new(pb::CommitResponse {
            version_id,
            seq,
            etag,
            size,
        })),
        other => Err(bad_response(group, what, &other)),
    }
}

#[tonic::async_trait]
impl MetaService for MetaGrpc {
    // ---- buckets ----

    async fn create_bucket(
        &self,
        req: Request<pb::CreateBucketRequest>,
    ) -> Result<Response<pb::CreateBucketResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let versioning = wire::versioning_from_wire("create_bucket.versioning", m.versioning)
            .map_err(malformed)?;
        self.route_bucket(group, &m.name)?;
        let cmd = Command::CreateBucket {
            name: m.name,
            owner: m.owner,
            created_ms: m.created_ms,
            versioning,
        };
        match self.write(group, cmd).await? {
            SmResponse::BucketCreated => Ok(Response::new(pb::CreateBucketResponse {})),
            other => Err(bad_response(group, "create-bucket", &other)),
        }
    }

    async fn delete_bucket(
        &self,
        req: Request<pb::DeleteBucketRequest>,
    ) -> Result<Response<pb::DeleteBucketResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        self.route_bucket(group, &m.name)?;
        match self
            .write(group, Command::DeleteBucket { name: m.name })
            .await?
        {
            SmResponse::BucketDeleted { aborted_uploads } => {
                Ok(Response::new(pb::DeleteBucketResponse { aborted_uploads }))
            }
            other => Err(bad_response(group, "delete-bucket", &other)),
        }
    }

    async fn get_bucket(
        &self,
        req: Request<pb::GetBucketRequest>,
    ) -> Result<Response<pb::GetBucketResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        self.route_bucket(group, &m.name)?;
        let name = m.name;
        let bucket: BucketRecord = self
            .read(group, move |txn| {
                sm::get_bucket(txn, &name)?.ok_or(QueryError::Rejected(Reason::NoSuchBucket))
            })
            .await?;
        Ok(Response::new(pb::GetBucketResponse {
            bucket: Some((&bucket).into()),
        }))
    }

    async fn list_buckets(
        &self,
        req: Request<pb::ListBucketsRequest>,
    ) -> Result<Response<pb::ListBucketsResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        if group != ROOT_GROUP {
            self.object_group(group)?;
        }
        let owner = m.owner;
        let buckets = self
            .read(group, move |txn| sm::list_buckets(txn, owner.as_deref()))
            .await?;
        Ok(Response::new(pb::ListBucketsResponse {
            buckets: buckets.iter().map(pb::Bucket::from).collect(),
        }))
    }

    async fn set_bucket_versioning(
        &self,
        req: Request<pb::SetBucketVersioningRequest>,
    ) -> Result<Response<pb::SetBucketVersioningResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let versioning =
            wire::versioning_from_wire("set_bucket_versioning.versioning", m.versioning)
                .map_err(malformed)?;
        self.route_bucket(group, &m.name)?;
        let cmd = Command::SetBucketVersioning {
            name: m.name,
            versioning,
        };
        match self.write(group, cmd).await? {
            SmResponse::VersioningSet => Ok(Response::new(pb::SetBucketVersioningResponse {})),
            other => Err(bad_response(group, "set-versioning", &other)),
        }
    }

    // ---- objects ----

    async fn put_object(
        &self,
        req: Request<pb::PutObjectRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let cmd = PutObject::try_from(&m).map_err(malformed)?;
        self.route_key(group, &cmd.bucket, &cmd.key)?;
        let r = self.write(group, Command::PutObject(cmd)).await?;
        commit_response(group, "put", r)
    }

    async fn get_object(
        &self,
        req: Request<pb::GetObjectRequest>,
    ) -> Result<Response<pb::GetObjectResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        self.route_key(group, &m.bucket, &m.key)?;
        let (bucket, key, version_id) = (m.bucket, m.key, m.version_id);
        let version = self
            .read(group, move |txn| match version_id {
                Some(v) => sm::get_version(txn, &bucket, &key, &v),
                None => Ok(match sm::head_object(txn, &bucket, &key)? {
                    CurrentVersion::Object(v) | CurrentVersion::DeleteMarker(v) => Some(v),
                    CurrentVersion::Absent => None,
                }),
            })
            .await?;
        Ok(Response::new(pb::GetObjectResponse {
            version: version.as_ref().map(pb::Version::from),
        }))
    }

    async fn delete_object(
        &self,
        req: Request<pb::DeleteObjectRequest>,
    ) -> Result<Response<pb::DeleteObjectResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let cmd = DeleteObject::try_from(&m).map_err(malformed)?;
        self.route_key(group, &cmd.bucket, &cmd.key)?;
        match self.write(group, Command::DeleteObject(cmd)).await? {
            SmResponse::Deleted {
                version_id,
                delete_marker,
            } => Ok(Response::new(pb::DeleteObjectResponse {
                version_id,
                delete_marker,
            })),
            other => Err(bad_response(group, "delete", &other)),
        }
    }

    async fn list_objects(
        &self,
        req: Request<pb::ListObjectsRequest>,
    ) -> Result<Response<pb::ListObjectsResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let lower = m
            .start_after
            .as_ref()
            .map(|s| keys::after_object(&m.bucket, s));
        let range = listing_range(&m.bucket, &m.prefix, lower);
        let end_before = self.route_listing(group, &m.bucket, range)?;
        let bucket = m.bucket;
        let params = ListObjectsParams {
            prefix: m.prefix,
            delimiter: m.delimiter,
            start_after: m.start_after,
            max_keys: m.max_keys,
            end_before,
        };
        let page = self
            .read(group, move |txn| sm::list_objects(txn, &bucket, &params))
            .await?;
        Ok(Response::new(pb::ListObjectsResponse {
            entries: page.entries.iter().map(pb::ObjectEntry::from).collect(),
            common_prefixes: page.common_prefixes,
            is_truncated: page.is_truncated,
            next: page.next,
        }))
    }

    async fn list_object_versions(
        &self,
        req: Request<pb::ListObjectVersionsRequest>,
    ) -> Result<Response<pb::ListObjectVersionsResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let version_marker = m.version_id_marker.clone().filter(|v| !v.is_empty());
        let lower = m.key_marker.as_ref().map(|k| match version_marker {
            Some(_) => keys::object_key(&m.bucket, k),
            None => keys::after_object(&m.bucket, k),
        });
        let range = listing_range(&m.bucket, &m.prefix, lower);
        let end_before = self.route_listing(group, &m.bucket, range)?;
        let bucket = m.bucket;
        let params = ListVersionsParams {
            prefix: m.prefix,
            delimiter: m.delimiter,
            key_marker: m.key_marker,
            version_id_marker: version_marker,
            max_keys: m.max_keys,
            end_before,
        };
        let page = self
            .read(group, move |txn| {
                sm::list_object_versions(txn, &bucket, &params)
            })
            .await?;
        Ok(Response::new(pb::ListObjectVersionsResponse {
            versions: page.versions.iter().map(pb::VersionEntry::from).collect(),
            common_prefixes: page.common_prefixes,
            is_truncated: page.is_truncated,
            next_key_marker: page.next_key_marker,
            next_version_id_marker: page.next_version_id_marker,
        }))
    }

    async fn replace_placement(
        &self,
        req: Request<pb::ReplacePlacementRequest>,
    ) -> Result<Response<pb::ReplacePlacementResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let cmd = ReplacePlacement::try_from(&m).map_err(malformed)?;
        self.object_group(group)?;
        match self.write(group, Command::ReplacePlacement(cmd)).await? {
            SmResponse::PlacementReplaced { moved } => {
                Ok(Response::new(pb::ReplacePlacementResponse { moved }))
            }
            other => Err(bad_response(group, "replace-placement", &other)),
        }
    }

    async fn list_stripes(
        &self,
        req: Request<pb::ListStripesRequest>,
    ) -> Result<Response<pb::ListStripesResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let after = if m.after.is_empty() {
            None
        } else {
            Some(
                proto::convert::stripe_id_from_wire("list_stripes.after", &m.after)
                    .map_err(malformed)?,
            )
        };
        self.object_group(group)?;
        let limit = m.limit;
        let page = self
            .read(group, move |txn| sm::list_stripes(txn, after, limit))
            .await?;
        Ok(Response::new(pb::ListStripesResponse {
            stripes: page.stripes.iter().map(pb::StripeEntry::from).collect(),
            truncated: page.is_truncated,
        }))
    }

    // ---- multipart ----

    async fn create_multipart_upload(
        &self,
        req: Request<pb::CreateMultipartUploadRequest>,
    ) -> Result<Response<pb::CreateMultipartUploadResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let cmd = CreateMultipartUpload::try_from(&m).map_err(malformed)?;
        self.route_key(group, &cmd.bucket, &cmd.key)?;
        match self
            .write(group, Command::CreateMultipartUpload(cmd))
            .await?
        {
            SmResponse::UploadCreated => Ok(Response::new(pb::CreateMultipartUploadResponse {})),
            other => Err(bad_response(group, "create-upload", &other)),
        }
    }

    async fn get_upload(
        &self,
        req: Request<pb::GetUploadRequest>,
    ) -> Result<Response<pb::GetUploadResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        self.route_key(group, &m.bucket, &m.key)?;
        let upload = self
            .read(group, move |txn| {
                if sm::get_bucket(txn, &m.bucket)?.is_none() {
                    return Err(Reason::NoSuchBucket.into());
                }
                sm::get_upload(txn, &m.upload_id)?
                    .filter(|u| u.bucket == m.bucket && u.key == m.key)
                    .ok_or(QueryError::Rejected(Reason::NoSuchUpload))
            })
            .await?;
        Ok(Response::new(pb::GetUploadResponse {
            upload: Some((&upload).into()),
        }))
    }

    async fn record_part(
        &self,
        req: Request<pb::RecordPartRequest>,
    ) -> Result<Response<pb::RecordPartResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let cmd = RecordPart::try_from(&m).map_err(malformed)?;
        self.route_key(group, &cmd.bucket, &cmd.key)?;
        match self.write(group, Command::RecordPart(cmd)).await? {
            SmResponse::PartRecorded => Ok(Response::new(pb::RecordPartResponse {})),
            other => Err(bad_response(group, "record-part", &other)),
        }
    }

    async fn complete_multipart_upload(
        &self,
        req: Request<pb::CompleteMultipartUploadRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let cmd = CompleteMultipartUpload::try_from(&m).map_err(malformed)?;
        self.route_key(group, &cmd.bucket, &cmd.key)?;
        let r = self
            .write(group, Command::CompleteMultipartUpload(cmd))
            .await?;
        commit_response(group, "complete-upload", r)
    }

    async fn abort_multipart_upload(
        &self,
        req: Request<pb::AbortMultipartUploadRequest>,
    ) -> Result<Response<pb::AbortMultipartUploadResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let cmd = AbortMultipartUpload::from(&m);
        self.route_key(group, &cmd.bucket, &cmd.key)?;
        match self
            .write(group, Command::AbortMultipartUpload(cmd))
            .await?
        {
            SmResponse::UploadAborted { parts } => {
                Ok(Response::new(pb::AbortMultipartUploadResponse { parts }))
            }
            other => Err(bad_response(group, "abort-upload", &other)),
        }
    }

    async fn list_parts(
        &self,
        req: Request<pb::ListPartsRequest>,
    ) -> Result<Response<pb::ListPartsResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        self.route_key(group, &m.bucket, &m.key)?;
        let page = self
            .read(group, move |txn| {
                sm::list_parts(
                    txn,
                    &m.bucket,
                    &m.key,
                    &m.upload_id,
                    m.part_number_marker,
                    m.max_parts,
                )
            })
            .await?;
        Ok(Response::new(pb::ListPartsResponse {
            upload: Some((&page.upload).into()),
            parts: page.parts.iter().map(pb::Part::from).collect(),
            is_truncated: page.is_truncated,
            next_part_number_marker: page.next_part_number_marker,
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: Request<pb::ListMultipartUploadsRequest>,
    ) -> Result<Response<pb::ListMultipartUploadsResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let upload_marker = m.upload_id_marker.clone().filter(|u| !u.is_empty());
        let lower = m.key_marker.as_ref().map(|k| match upload_marker {
            Some(_) => keys::object_key(&m.bucket, k),
            None => keys::after_object(&m.bucket, k),
        });
        let range = listing_range(&m.bucket, &m.prefix, lower);
        let end_before = self.route_listing(group, &m.bucket, range)?;
        let bucket = m.bucket;
        let params = ListUploadsParams {
            prefix: m.prefix,
            delimiter: m.delimiter,
            key_marker: m.key_marker,
            upload_id_marker: upload_marker,
            max_uploads: m.max_uploads,
            end_before,
        };
        let page = self
            .read(group, move |txn| {
                sm::list_multipart_uploads(txn, &bucket, &params)
            })
            .await?;
        Ok(Response::new(pb::ListMultipartUploadsResponse {
            uploads: page.uploads.iter().map(pb::MultipartUpload::from).collect(),
            common_prefixes: page.common_prefixes,
            is_truncated: page.is_truncated,
            next_key_marker: page.next_key_marker,
            next_upload_id_marker: page.next_upload_id_marker,
        }))
    }

    // ---- GC queue ----

    async fn gc_take(
        &self,
        req: Request<pb::GcTakeRequest>,
    ) -> Result<Response<pb::GcTakeResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        self.object_group(group)?;
        let after = m.after.as_ref().map(GcId::from);
        let limit = m.limit.min(GC_TAKE_MAX) as usize;
        let entries = self
            .read(group, move |txn| sm::gc_take(txn, after, limit))
            .await?;
        Ok(Response::new(pb::GcTakeResponse {
            entries: entries.iter().map(pb::GcEntry::from).collect(),
        }))
    }

    async fn gc_ack(
        &self,
        req: Request<pb::GcAckRequest>,
    ) -> Result<Response<pb::GcAckResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        self.object_group(group)?;
        let ids = m.ids.iter().map(GcId::from).collect();
        match self
            .write(
                group,
                Command::GcAck {
                    ids,
                    at_ms: self.clock.unix_ms(),
                },
            )
            .await?
        {
            SmResponse::GcAcked { removed } => Ok(Response::new(pb::GcAckResponse { removed })),
            other => Err(bad_response(group, "gc-ack", &other)),
        }
    }

    // ---- root group ----

    async fn get_cluster_map(
        &self,
        req: Request<pb::GetClusterMapRequest>,
    ) -> Result<Response<pb::GetClusterMapResponse>, Status> {
        self.check_cluster(&req)?;
        let nodes = self.read(ROOT_GROUP, sm::nodes).await?;
        Ok(Response::new(pb::GetClusterMapResponse {
            nodes: nodes.iter().map(pb::NodeRecord::from).collect(),
        }))
    }

    async fn get_group_map(
        &self,
        req: Request<pb::GetGroupMapRequest>,
    ) -> Result<Response<pb::GetGroupMapResponse>, Status> {
        self.check_cluster(&req)?;
        let map = self.read(ROOT_GROUP, sm::group_map).await?;
        let map = map.ok_or_else(|| {
            error(
                MetaErrorCode::Unavailable,
                ROOT_GROUP,
                "the group map is not set yet",
            )
        })?;
        Ok(Response::new(pb::GetGroupMapResponse {
            map: Some((&map).into()),
        }))
    }

    async fn register_node(
        &self,
        req: Request<pb::RegisterNodeRequest>,
    ) -> Result<Response<pb::RegisterNodeResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let info = common::cluster::NodeInfo::try_from(
            required(m.info.as_ref(), "register_node.info").map_err(malformed)?,
        )
        .map_err(malformed)?;
        self.write_root(RootCommand::RegisterNode {
            info,
            at_ms: m.at_ms,
        })
        .await?;
        Ok(Response::new(pb::RegisterNodeResponse {}))
    }

    async fn heartbeat(
        &self,
        req: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let disks = wire::disks(&m.disks).map_err(malformed)?;
        self.write_root(RootCommand::Heartbeat {
            node: common::ids::NodeId(m.node_id),
            at_ms: m.at_ms,
            disks,
        })
        .await?;
        Ok(Response::new(pb::HeartbeatResponse {}))
    }

    async fn set_node_state(
        &self,
        req: Request<pb::SetNodeStateRequest>,
    ) -> Result<Response<pb::SetNodeStateResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let state = node_state_from_wire("set_node_state.state", m.state).map_err(malformed)?;
        self.write_root(RootCommand::SetNodeState {
            node: common::ids::NodeId(m.node_id),
            state,
            reason: m.reason,
            at_ms: self.clock.unix_ms(),
            expect: None,
        })
        .await?;
        Ok(Response::new(pb::SetNodeStateResponse {}))
    }

    async fn create_access_key(
        &self,
        req: Request<pb::CreateAccessKeyRequest>,
    ) -> Result<Response<pb::CreateAccessKeyResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let key =
            AccessKey::from(required(m.key.as_ref(), "create_access_key.key").map_err(malformed)?);
        self.write_root(RootCommand::CreateAccessKey(key)).await?;
        Ok(Response::new(pb::CreateAccessKeyResponse {}))
    }

    async fn get_access_key(
        &self,
        req: Request<pb::GetAccessKeyRequest>,
    ) -> Result<Response<pb::GetAccessKeyResponse>, Status> {
        self.check_cluster(&req)?;
        let id = req.into_inner().id;
        let key = self
            .read(ROOT_GROUP, move |txn| sm::access_key(txn, &id))
            .await?;
        Ok(Response::new(pb::GetAccessKeyResponse {
            key: key.as_ref().map(pb::AccessKey::from),
        }))
    }

    async fn list_access_keys(
        &self,
        req: Request<pb::ListAccessKeysRequest>,
    ) -> Result<Response<pb::ListAccessKeysResponse>, Status> {
        self.check_cluster(&req)?;
        let keys = self.read(ROOT_GROUP, sm::access_keys).await?;
        Ok(Response::new(pb::ListAccessKeysResponse {
            keys: keys.iter().map(pb::AccessKey::from).collect(),
        }))
    }

    async fn delete_access_key(
        &self,
        req: Request<pb::DeleteAccessKeyRequest>,
    ) -> Result<Response<pb::DeleteAccessKeyResponse>, Status> {
        self.check_cluster(&req)?;
        let id = req.into_inner().id;
        self.write_root(RootCommand::DeleteAccessKey { id }).await?;
        Ok(Response::new(pb::DeleteAccessKeyResponse {}))
    }

    async fn set_group_members(
        &self,
        req: Request<pb::SetGroupMembersRequest>,
    ) -> Result<Response<pb::SetGroupMembersResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        if m.members.values().any(String::is_empty) {
            return Err(malformed(ConvertError::new(
                "set_group_members.members",
                "a member without an address",
            )));
        }
        self.write_root(RootCommand::SetGroupMembers {
            group: GroupId(m.group_id),
            members: m.members.into_iter().collect(),
        })
        .await?;
        Ok(Response::new(pb::SetGroupMembersResponse {}))
    }

    async fn set_disk_state(
        &self,
        req: Request<pb::SetDiskStateRequest>,
    ) -> Result<Response<pb::SetDiskStateResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let state = proto::convert::disk_state_from_wire("set_disk_state.state", m.state)
            .map_err(malformed)?;
        self.write_root(RootCommand::SetDiskState {
            node: common::ids::NodeId(m.node_id),
            disk: common::ids::DiskId(m.disk_id),
            state,
            reason: m.reason,
            at_ms: self.clock.unix_ms(),
        })
        .await?;
        Ok(Response::new(pb::SetDiskStateResponse {}))
    }

    async fn remove_node(
        &self,
        req: Request<pb::RemoveNodeRequest>,
    ) -> Result<Response<pb::RemoveNodeResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        self.write_root(RootCommand::RemoveNode {
            node: common::ids::NodeId(m.node_id),
        })
        .await?;
        Ok(Response::new(pb::RemoveNodeResponse {}))
    }

    // ---- membership and status of any group ----

    async fn group_status(
        &self,
        req: Request<pb::GroupStatusRequest>,
    ) -> Result<Response<pb::GroupStatusResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let raft = self.raft(group)?;
        let status = self.status_of(group, &raft);
        if !m.local && !status.is_leader() {
            return Err(self.not_leader(group, &raft, None, None));
        }
        Ok(Response::new(pb::GroupStatusResponse {
            status: Some((&status).into()),
        }))
    }

    async fn maintain_status(
        &self,
        req: Request<pb::MaintainStatusRequest>,
    ) -> Result<Response<pb::MaintainStatusResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let raft = self.raft(group)?;
        if !m.local && !self.status_of(group, &raft).is_leader() {
            return Err(self.not_leader(group, &raft, None, None));
        }
        Ok(Response::new(pb::MaintainStatusResponse {
            report: self
                .maintain
                .report()
                .as_ref()
                .map(pb::MaintainReport::from),
        }))
    }

    async fn add_voter(
        &self,
        req: Request<pb::AddVoterRequest>,
    ) -> Result<Response<pb::AddVoterResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        if m.addr.is_empty() {
            return Err(malformed(ConvertError::new("add_voter.addr", "missing")));
        }
        let status = self
            .change_membership(group, self.host.add_voter(group, m.node_id, &m.addr))
            .await?;
        Ok(Response::new(pb::AddVoterResponse {
            status: Some((&status).into()),
        }))
    }

    async fn remove_voter(
        &self,
        req: Request<pb::RemoveVoterRequest>,
    ) -> Result<Response<pb::RemoveVoterResponse>, Status> {
        self.check_cluster(&req)?;
        let m = req.into_inner();
        let group = GroupId(m.group_id);
        let status = self
            .change_membership(group, self.host.remove_voter(group, m.node_id))
            .await?;
        Ok(Response::new(pb::RemoveVoterResponse {
            status: Some((&status).into()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_boundaries_become_listing_bounds() {
        let ok = keys::object_key;
        // A boundary before or after the bucket.
        assert_eq!(key_at_or_after("b", b"a"), Ok(Some(String::new())));
        assert_eq!(key_at_or_after("b", b"b"), Ok(Some(String::new())));
        assert_eq!(key_at_or_after("b", b"c"), Ok(None));
        assert_eq!(key_at_or_after("b", &keys::bucket_range("b").1), Ok(None));
        // Boundaries at keys, key prefixes and inside an object's rows.
        assert_eq!(key_at_or_after("b", &ok("b", "m")), Ok(Some("m".into())));
        assert_eq!(
            key_at_or_after("b", &keys::key_prefix("b", "m/x")),
            Ok(Some("m/x".into()))
        );
        assert_eq!(
            key_at_or_after("b", &keys::version_key(&ok("b", "m"), 3)),
            Ok(Some("m\0".into()))
        );
        assert_eq!(
            key_at_or_after("b", &ok("b", "a\0z")),
            Ok(Some("a\0z".into()))
        );
        let mut mid = keys::key_prefix("b", "q");
        mid.push(0);
        assert_eq!(key_at_or_after("b", &mid), Ok(Some("q".into())));
        mid.push(7);
        assert_eq!(key_at_or_after("b", &mid), Ok(Some("q\0".into())));
        // A boundary inside a character is refused, not guessed.
        let mut split = keys::key_prefix("b", "");
        split.push(0xC3);
        assert!(key_at_or_after("b", &split).is_err());
    }

    /// The bound is exactly right: for every key, `key < bound_key` iff its object key
    /// sorts before the boundary.
    #[test]
    fn listing_bounds_agree_with_object_key_order() {
        let keys_: Vec<&str> = vec![
            "", "\0", "a", "a\0", "a\0\0", "a\u{1}", "ab", "m", "m\0", "m/", "z", "é",
        ];
        let mut bounds: Vec<Vec<u8>> = keys_.iter().map(|k| keys::object_key("b", k)).collect();
        bounds.extend(keys_.iter().map(|k| keys::key_prefix("b", k)));
        bounds.extend(keys_.iter().map(|k| keys::after_object("b", k)));
        bounds.extend(
            keys_
                .iter()
                .map(|k| keys::version_key(&keys::object_key("b", k), 9)),
        );
        for bound in &bounds {
            let k = key_at_or_after("b", bound).unwrap().unwrap();
            for key in &keys_ {
                assert_eq!(
                    *key < k.as_str(),
                    keys::object_key("b", key) < *bound,
                    "key {key:?} bound {bound:?} -> {k:?}"
                );
            }
        }
    }
}
