//! `DataNodes`: the data node calls the maintenance loops make (stat, delete, list), over
//! one lazily connected channel per node (rebuilt when its address changes), each call
//! bounded by a timeout on the env clock.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use common::env::Clock;
use common::ids::{DiskId, FragmentId, NodeId};
use proto::datanode as pb;
use proto::datanode::datanode_service_client::DatanodeServiceClient;
use proto::datanode::ErrorCode;
use tonic::transport::{Channel, Endpoint};

/// Why one data node call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FragmentCallError {
    /// The data node does not have the fragment.
    #[error("fragment not found")]
    NotFound,
    /// Transport failure, timeout, or a refusal (disk failed, busy, I/O error): try again
    /// later.
    #[error("{0}")]
    Failed(String),
}

impl FragmentCallError {
    fn from_status(s: &tonic::Status) -> Self {
        match proto::error_code(s) {
            ErrorCode::NotFound => FragmentCallError::NotFound,
            code => FragmentCallError::Failed(format!("{code:?}: {}", s.message())),
        }
    }
}

#[derive(Debug)]
pub struct DataNodes {
    clock: Clock,
    timeout: Duration,
    channels: Mutex<BTreeMap<NodeId, (String, Channel)>>,
}

impl DataNodes {
    /// Every call is bounded by `timeout` (connecting included).
    pub fn new(timeout: Duration) -> Self {
        Self {
            clock: Clock::new(),
            timeout,
            channels: Mutex::new(BTreeMap::new()),
        }
    }

    fn client(
        &self,
        node: NodeId,
        addr: &str,
    ) -> Result<DatanodeServiceClient<Channel>, FragmentCallError> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let channel = match channels.get(&node) {
            Some((a, ch)) if a == addr => ch.clone(),
            _ => {
                let ch = Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(|e| {
                        FragmentCallError::Failed(format!(
                            "bad address {addr:?} of node {node}: {e}"
                        ))
                    })?
                    .connect_timeout(self.timeout)
                    .tcp_nodelay(true)
                    .connect_lazy();
                channels.insert(node, (addr.to_owned(), ch.clone()));
                ch
            }
        };
        Ok(DatanodeServiceClient::new(channel))
    }

    async fn bounded<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, FragmentCallError> {
        match self.clock.timeout(self.timeout, fut).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => Err(FragmentCallError::from_status(&s)),
            Err(_) => Err(FragmentCallError::Failed(format!(
                "{what} timed out after {:?}",
                self.timeout
            ))),
        }
    }

    /// The length of fragment `id` on `disk` of `node` (at `addr`).
    pub async fn stat(
        &self,
        node: NodeId,
        addr: &str,
        disk: DiskId,
        id: FragmentId,
    ) -> Result<u64, FragmentCallError> {
        let mut c = self.client(node, addr)?;
        let req = pb::StatFragmentRequest {
            id: Some(id.into()),
            disk: disk.0,
            verify: false,
        };
        let r = self.bounded("stat", c.stat_fragment(req)).await?;
        Ok(r.info.map_or(0, |i| i.length))
    }

    /// Deletes fragment `id`; `Ok(existed)`. Deleting an absent fragment succeeds.
    pub async fn delete(
        &self,
        node: NodeId,
        addr: &str,
        disk: DiskId,
        id: FragmentId,
    ) -> Result<bool, FragmentCallError> {
        let mut c = self.client(node, addr)?;
        let req = pb::DeleteFragmentRequest {
            id: Some(id.into()),
            disk: disk.0,
        };
        match self.bounded("delete", c.delete_fragment(req)).await {
            Ok(r) => Ok(r.existed),
            Err(FragmentCallError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One page of the fragments on `disk` of `node`, after `after`: the ids and
    /// whether more follow.
    pub async fn list(
        &self,
        node: NodeId,
        addr: &str,
        disk: DiskId,
        after: Option<FragmentId>,
        limit: u32,
    ) -> Result<(Vec<FragmentId>, bool), FragmentCallError> {
        let mut c = self.client(node, addr)?;
        let req = pb::ListFragmentsRequest {
            disk: disk.0,
            after: after.map(Into::into),
            limit,
        };
        let r = self.bounded("list", c.list_fragments(req)).await?;
        let mut ids = Vec::with_capacity(r.fragments.len());
        for f in &r.fragments {
            let id = f
                .id
                .as_ref()
                .ok_or_else(|| FragmentCallError::Failed("listed fragment without id".into()))?;
            ids.push(
                FragmentId::try_from(id)
                    .map_err(|e| FragmentCallError::Failed(format!("listed fragment: {e}")))?,
            );
        }
        Ok((ids, r.truncated))
    }
}
