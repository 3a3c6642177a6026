//! Raft transport over tonic. One `RaftService` per process carries the traffic of every
//! group it hosts (`RaftRegistry` maps group id → local Raft instance); each outgoing
//! connection is scoped to one group (`GrpcNetworkFactory`). Payloads are openraft's own
//! messages, postcard-encoded: this crate is the only one that knows their types.
//!
//! `pre_vote` is sent over the network (openraft's default grants every pre-vote, which
//! would defeat its purpose of keeping a partitioned node from disrupting the cluster).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use common::ids::GroupId;
use openraft::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::v2::RaftNetworkV2;
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft, RaftTypeConfig};
use proto::raft::raft_service_client::RaftServiceClient;
use proto::raft::raft_service_server::RaftService;
use proto::raft::{RaftReply, RaftRequest};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::log_store::{decode, encode};

/// Largest Raft message accepted (a whole snapshot travels in one message today).
pub const RAFT_MESSAGE_BYTES_MAX: usize = 256 << 20;

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
        }
    }

    fn raft(&self, req: &RaftRequest) -> Result<Raft<C, SM>, Status> {
        if req.cluster_id != self.cluster_id {
            tracing::warn!(theirs = %req.cluster_id, ours = %self.cluster_id, "raft message from another cluster refused");
            return Err(Status::failed_precondition(format!(
                "wrong cluster: this node belongs to cluster {:?}, the sender to {:?}",
                self.cluster_id, req.cluster_id
            )));
        }
        let group = req.group_id;
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

    async fn install_snapshot(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let req = req.into_inner();
        let raft = self.raft(&req)?;
        let (vote, meta, data): (VoteOf<C>, SnapshotMetaOf<C>, Vec<u8>) =
            decode(&req.payload).map_err(bad_payload)?;
        let snapshot = SnapshotOf::<C, Vec<u8>> {
            meta,
            snapshot: data,
        };
        reply(&raft.install_full_snapshot(vote, snapshot).await)
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

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<C>,
        snapshot: SnapshotOf<C, Vec<u8>>,
        _cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        let payload = encode(&(vote, snapshot.meta, snapshot.snapshot))
            .map_err(|e| StreamingError::Unreachable(Unreachable::new(&e)))?;
        let bytes = self
            .call(option.hard_ttl(), payload, |mut c, r| async move {
                c.install_snapshot(r).await
            })
            .await
            .map_err(|e| StreamingError::Unreachable(Unreachable::new(&e)))?;
        let res: Result<SnapshotResponse<C>, openraft::error::Fatal<C>> =
            decode(&bytes).map_err(|e| StreamingError::Unreachable(Unreachable::new(&e)))?;
        res.map_err(|e| {
            StreamingError::Unreachable(Unreachable::new(&TransportError(e.to_string())))
        })
    }
}
