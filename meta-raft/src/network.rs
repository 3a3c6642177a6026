//! Raft transport over tonic. One `RaftService` per process carries the traffic of every
//! group it hosts (`RaftRegistry` maps group id → local Raft instance); each outgoing
//! connection is scoped to one group (`GrpcNetworkFactory`). Payloads are openraft's own
//! messages, postcard-encoded: this crate is the only one that knows their types.
//!
//! `pre_vote` is sent over the network (openraft's default grants every pre-vote, which
//! would defeat its purpose of keeping a partitioned node from disrupting the cluster).
//!
//! Snapshots travel in chunks (`InstallSnapshotChunk`, protocol in
//! [`crate::snapshot_transfer`]); the receiving side keeps its partial transfers in a
//! [`SnapshotReceiver`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use common::ids::GroupId;
use futures::future::Either;
use openraft::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::v2::RaftNetworkV2;
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::rt::WatchReceiver;
use openraft::{BasicNode, Raft, RaftTypeConfig};
use proto::raft::raft_service_client::RaftServiceClient;
use proto::raft::raft_service_server::RaftService;
use proto::raft::{RaftReply, RaftRequest, SnapshotChunk};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::log_store::{decode, encode};
use crate::snapshot_receiver::{IncomingChunk, Received, SnapshotLimits, SnapshotReceiver};
use crate::snapshot_transfer::{
    send_snapshot, SnapshotChunkReply, SnapshotSendError, SnapshotSendPlan, SNAPSHOT_CHUNK_BYTES,
    SNAPSHOT_CHUNK_BYTES_MAX, SNAPSHOT_CHUNK_OVERHEAD_MAX,
};

/// Largest Raft message accepted, in both directions of every `RaftService` call.
///
/// No snapshot depends on it any more: snapshots travel in chunks of at most
/// [`SNAPSHOT_CHUNK_BYTES_MAX`] plus a small header (checked below at compile time). What
/// it bounds is AppendEntries. openraft batches up to `max_payload_entries` (300) entries
/// into one message with no byte limit, and one entry can be as large as the largest
/// command: a command arrives through the MetaService, whose messages are capped at
/// `service::META_MESSAGE_BYTES_MAX` (64 MiB: the version record of a very large object
/// lists every stripe), while inline object bodies are at most 64 KiB (the gateway's
/// `INLINE_MAX_BYTES_LIMIT`). An AppendEntries over the limit would be refused on every
/// retry and wedge replication to that follower for good, so the limit stays at four of
/// the largest commands rather than at what typical batches (kilobytes) need.
pub const RAFT_MESSAGE_BYTES_MAX: usize = 256 << 20;

const _: () =
    assert!(SNAPSHOT_CHUNK_BYTES_MAX + SNAPSHOT_CHUNK_OVERHEAD_MAX <= RAFT_MESSAGE_BYTES_MAX);
const _: () = assert!(SNAPSHOT_CHUNK_BYTES <= SNAPSHOT_CHUNK_BYTES_MAX);

/// The Raft instances this process hosts, by group.
pub struct RaftRegistry<C: RaftTypeConfig, SM: openraft::storage::RaftStateMachine<C>> {
    groups: RwLock<BTreeMap<GroupId, Raft<C, SM>>>,
}

impl<C, SM> Default for RaftRegistry<C, SM>
where
    C: RaftTypeConfig,
    SM: openraft::storage::RaftStateMachine<C>,
{
    fn default() -> Self {
        Self {
            groups: RwLock::new(BTreeMap::new()),
        }
    }
}

impl<C, SM> RaftRegistry<C, SM>
where
    C: RaftTypeConfig,
    SM: openraft::storage::RaftStateMachine<C>,
{
    pub fn insert(&self, group: GroupId, raft: Raft<C, SM>) {
        let mut g = self.groups.write().unwrap_or_else(|e| e.into_inner());
        let previous = g.insert(group, raft);
        assert!(previous.is_none(), "group {group} registered twice");
    }

    pub fn remove(&self, group: GroupId) -> Option<Raft<C, SM>> {
        self.groups
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&group)
    }

    pub fn get(&self, group: GroupId) -> Option<Raft<C, SM>> {
        self.groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group)
            .cloned()
    }

    pub fn group_ids(&self) -> Vec<GroupId> {
        self.groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }
}

/// Server side of the Raft transport.
pub struct RaftGrpc<C: RaftTypeConfig, SM: openraft::storage::RaftStateMachine<C>> {
    registry: Arc<RaftRegistry<C, SM>>,
    cluster_id: String,
    /// Partial incoming snapshot transfers, one per group at most.
    snapshots: Arc<Mutex<SnapshotReceiver<C>>>,
    clock: common::env::Clock,
}

impl<C, SM> RaftGrpc<C, SM>
where
    C: RaftTypeConfig,
    SM: openraft::storage::RaftStateMachine<C>,
{
    pub fn new(registry: Arc<RaftRegistry<C, SM>>, cluster_id: String) -> Self {
        Self {
            registry,
            cluster_id,
            snapshots: Arc::new(Mutex::new(SnapshotReceiver::default())),
            clock: common::env::Clock::new(),
        }
    }

    /// Replaces the bounds on incoming snapshot transfers (tests).
    pub fn with_snapshot_limits(mut self, limits: SnapshotLimits) -> Self {
        self.snapshots = Arc::new(Mutex::new(SnapshotReceiver::new(limits)));
        self
    }

    /// The incoming snapshot transfers (tests read its stats after the service moved
    /// into the server).
    pub fn snapshot_receiver(&self) -> Arc<Mutex<SnapshotReceiver<C>>> {
        Arc::clone(&self.snapshots)
    }

    fn raft(&self, req: &RaftRequest) -> Result<Raft<C, SM>, Status> {
        self.raft_of(&req.cluster_id, req.group_id)
    }

    fn raft_of(&self, cluster_id: &str, group: u64) -> Result<Raft<C, SM>, Status> {
        if cluster_id != self.cluster_id {
            tracing::warn!(theirs = %cluster_id, ours = %self.cluster_id, "raft message from another cluster refused");
            return Err(Status::failed_precondition(format!(
                "wrong cluster: this node belongs to cluster {:?}, the sender to {:?}",
                self.cluster_id, cluster_id
            )));
        }
        self.registry
            .get(GroupId(group))
            .ok_or_else(|| Status::not_found(format!("group {group} is not hosted here")))
    }
}

fn bad_payload(e: std::io::Error) -> Status {
    Status::invalid_argument(format!("malformed raft payload: {e}"))
}

fn reply<T: Serialize>(v: &T) -> Result<Response<RaftReply>, Status> {
    let payload = encode(v).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(RaftReply {
        payload: payload.into(),
    }))
}

#[tonic::async_trait]
impl<C, SM> RaftService for RaftGrpc<C, SM>
where
    C: RaftTypeConfig,
    SM: openraft::storage::RaftStateMachine<C, SnapshotData = Vec<u8>>,
    VoteRequest<C>: DeserializeOwned,
    AppendEntriesRequest<C>: DeserializeOwned,
    VoteOf<C>: DeserializeOwned,
    SnapshotMetaOf<C>: DeserializeOwned,
    C::Entry: Serialize,
{
    async fn vote(&self, req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req = req.into_inner();
        let raft = self.raft(&req)?;
        let rpc: VoteRequest<C> = decode(&req.payload).map_err(bad_payload)?;
        reply(&raft.vote(rpc).await)
    }

    async fn pre_vote(&self, req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req = req.into_inner();
        let raft = self.raft(&req)?;
        let rpc: VoteRequest<C> = decode(&req.payload).map_err(bad_payload)?;
        reply(&raft.pre_vote(rpc).await)
    }

    async fn append_entries(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let req = req.into_inner();
        let raft = self.raft(&req)?;
        let rpc: AppendEntriesRequest<C> = decode(&req.payload).map_err(bad_payload)?;
        reply(&raft.append_entries(rpc).await)
    }

    async fn install_snapshot_chunk(
        &self,
        req: Request<SnapshotChunk>,
    ) -> Result<Response<RaftReply>, Status> {
        let req = req.into_inner();
        let raft = self.raft_of(&req.cluster_id, req.group_id)?;
        let (vote, meta): (VoteOf<C>, SnapshotMetaOf<C>) =
            decode(&req.header).map_err(bad_payload)?;
        let local_vote = raft.metrics().borrow_watched().vote.clone();
        let received = self
            .snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .receive(
                self.clock.now(),
                &local_vote,
                IncomingChunk {
                    group: GroupId(req.group_id),
                    transfer_id: req.transfer_id,
                    vote,
                    meta,
                    total_len: req.total_len,
                    offset: req.offset,
                    data: &req.data,
                    done: req.done,
                    digest: &req.digest,
                },
            );
        let answer = match received {
            Ok(Received::Accepted { next_offset }) => {
                SnapshotChunkReply::<C>::Accepted { next_offset }
            }
            Ok(Received::Complete { vote, snapshot }) => {
                tracing::info!(group = req.group_id, bytes = req.total_len, meta = %snapshot.meta, "snapshot received, installing");
                match raft.install_full_snapshot(vote, snapshot).await {
                    Ok(resp) => SnapshotChunkReply::Done(resp),
                    Err(fatal) => SnapshotChunkReply::Fatal(fatal.to_string()),
                }
            }
            Err(crate::snapshot_receiver::SnapshotReceiveError::StaleVote { .. }) => {
                SnapshotChunkReply::StaleVote(local_vote)
            }
            Err(e) => {
                tracing::warn!(group = req.group_id, error = %e, "snapshot chunk refused");
                SnapshotChunkReply::Rejected(e)
            }
        };
        reply(&answer)
    }
}

/// Shared cache of channels to peers, by address (one HTTP/2 connection per peer, shared
/// by every group).
#[derive(Clone, Default)]
pub struct Channels {
    by_addr: Arc<RwLock<BTreeMap<String, Channel>>>,
}

impl Channels {
    fn get(&self, addr: &str) -> Result<Channel, String> {
        if let Some(c) = self
            .by_addr
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(addr)
        {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("bad peer address {addr}: {e}"))?;
        let channel = endpoint.connect_lazy();
        self.by_addr
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(addr.to_string(), channel.clone());
        Ok(channel)
    }
}

/// Creates per-target clients for one group.
pub struct GrpcNetworkFactory {
    group: GroupId,
    cluster_id: String,
    channels: Channels,
}

impl GrpcNetworkFactory {
    pub fn new(group: GroupId, cluster_id: String, channels: Channels) -> Self {
        Self {
            group,
            cluster_id,
            channels,
        }
    }
}

impl<C> RaftNetworkFactory<C> for GrpcNetworkFactory
where
    C: RaftTypeConfig<Node = BasicNode>,
    GrpcNetwork<C>: RaftNetworkV2<C>,
{
    type Network = GrpcNetwork<C>;

    async fn new_client(&mut self, target: C::NodeId, node: &BasicNode) -> GrpcNetwork<C> {
        GrpcNetwork {
            group: self.group,
            cluster_id: self.cluster_id.clone(),
            target,
            client: self.channels.get(&node.addr).map(|c| {
                RaftServiceClient::new(c).max_decoding_message_size(RAFT_MESSAGE_BYTES_MAX)
            }),
        }
    }
}

/// A client for one (group, target) pair.
pub struct GrpcNetwork<C: RaftTypeConfig> {
    group: GroupId,
    cluster_id: String,
    target: C::NodeId,
    client: Result<RaftServiceClient<Channel>, String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

impl<C: RaftTypeConfig> GrpcNetwork<C> {
    async fn call<F, Fut>(
        &mut self,
        ttl: Duration,
        payload: Vec<u8>,
        f: F,
    ) -> Result<Vec<u8>, TransportError>
    where
        F: FnOnce(RaftServiceClient<Channel>, RaftRequest) -> Fut,
        Fut: Future<Output = Result<Response<RaftReply>, Status>>,
    {
        let client = self.client.clone().map_err(TransportError)?;
        let req = RaftRequest {
            group_id: self.group.0,
            payload: payload.into(),
            cluster_id: self.cluster_id.clone(),
        };
        let clock = common::env::Clock::new();
        match clock.timeout(ttl, f(client, req)).await {
            Ok(Ok(resp)) => Ok(resp.into_inner().payload.to_vec()),
            Ok(Err(status)) => Err(TransportError(format!(
                "group {} to node {}: {status}",
                self.group, self.target
            ))),
            Err(e) => Err(TransportError(format!(
                "group {} to node {}: {e}",
                self.group, self.target
            ))),
        }
    }
}

impl<C: RaftTypeConfig> GrpcNetwork<C> {
    /// One request/response RPC: encode, send with a deadline, decode the remote
    /// `Result`. A transport failure or a stopped remote Raft is "unreachable".
    async fn rpc<Req, Resp, F, Fut>(
        &mut self,
        ttl: Duration,
        req: &Req,
        f: F,
    ) -> Result<Resp, RPCError<C>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        openraft::error::RaftError<C>: DeserializeOwned,
        F: FnOnce(RaftServiceClient<Channel>, RaftRequest) -> Fut,
        Fut: Future<Output = Result<Response<RaftReply>, Status>>,
    {
        let payload = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let bytes = self.call(ttl, payload, f).await.map_err(unreachable_err)?;
        let res: Result<Resp, openraft::error::RaftError<C>> =
            decode(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        remote(res)
    }
}

fn unreachable_err<C: RaftTypeConfig>(e: TransportError) -> RPCError<C> {
    RPCError::Unreachable(Unreachable::new(&e))
}

fn remote<C: RaftTypeConfig, T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, RPCError<C>> {
    // The remote Raft stopped (fatal): it cannot answer, which is "unreachable".
    r.map_err(|e| RPCError::Unreachable(Unreachable::new(&TransportError(e.to_string()))))
}

impl<C> RaftNetworkV2<C> for GrpcNetwork<C>
where
    C: RaftTypeConfig<Node = BasicNode>,
    VoteRequest<C>: Serialize,
    AppendEntriesRequest<C>: Serialize,
    VoteResponse<C>: DeserializeOwned,
    AppendEntriesResponse<C>: DeserializeOwned,
    SnapshotResponse<C>: DeserializeOwned,
    VoteOf<C>: Serialize,
    SnapshotMetaOf<C>: Serialize,
    openraft::error::RaftError<C>: DeserializeOwned,
    openraft::error::Fatal<C>: DeserializeOwned,
{
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        self.rpc(option.hard_ttl(), &rpc, |mut c, r| async move {
            c.append_entries(r).await
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.rpc(option.hard_ttl(), &rpc, |mut c, r| async move {
            c.vote(r).await
        })
        .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.rpc(option.hard_ttl(), &rpc, |mut c, r| async move {
            c.pre_vote(r).await
        })
        .await
    }

    /// Sends the snapshot in chunks (see [`crate::snapshot_transfer`]), giving up when
    /// openraft cancels the replication. Each chunk has `option.soft_ttl()`, the last one
    /// also the install time.
    async fn full_snapshot(
        &mut self,
        vote: VoteOf<C>,
        snapshot: SnapshotOf<C, Vec<u8>>,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        let client = self
            .client
            .clone()
            .map_err(|e| StreamingError::Unreachable(Unreachable::new(&TransportError(e))))?;
        let plan = SnapshotSendPlan {
            group_id: self.group.0,
            cluster_id: self.cluster_id.clone(),
            transfer_id: common::env::entropy_seed(),
            chunk_bytes: option.snapshot_chunk_size().unwrap_or(SNAPSHOT_CHUNK_BYTES),
            chunk_ttl: option.soft_ttl(),
        };
        let clock = common::env::Clock::new();
        let send = send_snapshot::<C, _, _>(plan, vote, snapshot, |chunk, ttl| {
            let mut client = client.clone();
            let clock = clock.clone();
            async move {
                let resp = match clock
                    .timeout(ttl, client.install_snapshot_chunk(chunk))
                    .await
                {
                    Ok(Ok(resp)) => resp,
                    Ok(Err(status)) => return Err(status.to_string()),
                    Err(elapsed) => return Err(elapsed.to_string()),
                };
                decode::<SnapshotChunkReply<C>>(&resp.into_inner().payload)
                    .map_err(|e| format!("malformed reply: {e}"))
            }
        });
        let cancel = std::pin::pin!(cancel);
        let send = std::pin::pin!(send);
        let res = match futures::future::select(cancel, send).await {
            Either::Left((closed, _)) => return Err(StreamingError::Closed(closed)),
            Either::Right((res, _)) => res,
        };
        res.map_err(|e| {
            let retry_now = matches!(
                e,
                SnapshotSendError::Rejected { .. } | SnapshotSendError::Protocol { .. }
            );
            let e = TransportError(format!(
                "snapshot of group {} to node {}: {e}",
                self.group, self.target
            ));
            tracing::warn!(error = %e, "snapshot transfer failed");
            // A refused chunk restarts the transfer at once; anything else backs off.
            if retry_now {
                StreamingError::Network(NetworkError::new(&e))
            } else {
                StreamingError::Unreachable(Unreachable::new(&e))
            }
        })
    }
}
