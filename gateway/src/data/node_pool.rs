//! `NodePool`: one lazily connected gRPC channel per data node (keyed by node id,
//! rebuilt when the node's address changes), and the three fragment calls the data path
//! makes over it: streaming put, ranged streaming get, delete. Every call is bounded by a
//! timeout on the env clock; every reply is checked (lengths, checksum, ids) before use.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::cluster::NodeInfo;
use common::codec::CodecParams;
use common::env::Clock;
use common::ids::{DiskId, FragmentId, NodeId};
use proto::datanode as pb;
use proto::datanode::datanode_service_client::DatanodeServiceClient;
use proto::datanode::ErrorCode;
use tonic::transport::{Channel, Endpoint};

/// Largest message a get stream may carry to us (the data node sends 256 KiB chunks).
const GET_MESSAGE_BYTES_MAX: usize = 8 << 20;

/// Why one fragment call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FragmentError {
    /// The data node does not have the fragment.
    #[error("fragment not found")]
    NotFound,
    /// A block checksum failed on the data node; the bytes were not returned.
    #[error("fragment corrupt: {0}")]
    Corrupt(String),
    /// Transport failure, timeout, or the node says it is unavailable.
    #[error("node unreachable: {0}")]
    Unreachable(String),
    /// The node refused the request with another numbered code.
    #[error("refused ({code:?}): {message}")]
    Refused { code: ErrorCode, message: String },
    /// The reply does not match the request (length, checksum, id).
    #[error("bad reply: {0}")]
    BadReply(String),
}

impl FragmentError {
    /// Whether the failure says something about the node rather than the fragment.
    pub fn is_node_failure(&self) -> bool {
        matches!(self, FragmentError::Unreachable(_))
    }

    fn from_status(s: &tonic::Status) -> Self {
        let message = s.message().to_owned();
        match proto::error_code(s) {
            ErrorCode::NotFound => FragmentError::NotFound,
            ErrorCode::Corrupt => FragmentError::Corrupt(message),
            ErrorCode::Unavailable | ErrorCode::Unspecified => {
                FragmentError::Unreachable(format!("{:?}: {message}", s.code()))
            }
            code => FragmentError::Refused { code, message },
        }
    }
}

/// What to put: one fragment's bytes, its checksum and codec parameters.
pub(crate) struct PutFragment {
    pub id: FragmentId,
    pub disk: DiskId,
    pub params: CodecParams,
    pub data: Bytes,
    pub crc32c: u32,
}

/// What to read: `len` bytes at `offset` of a fragment that must be `fragment_len` long.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GetFragment {
    pub id: FragmentId,
    pub disk: DiskId,
    pub offset: u64,
    pub len: u64,
    pub fragment_len: u64,
}

#[derive(Debug)]
pub(crate) struct NodePool {
    clock: Clock,
    connect_timeout: Duration,
    channels: Mutex<BTreeMap<NodeId, (String, Channel)>>,
}

impl NodePool {
    pub fn new(clock: Clock, connect_timeout: Duration) -> Self {
        Self {
            clock,
            connect_timeout,
            channels: Mutex::new(BTreeMap::new()),
        }
    }

    /// A client for `node` over its cached channel (a new one if its address changed).
    fn client(&self, node: &NodeInfo) -> Result<DatanodeServiceClient<Channel>, FragmentError> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let channel = match channels.get(&node.id) {
            Some((addr, ch)) if *addr == node.addr => ch.clone(),
            _ => {
                let endpoint = Endpoint::from_shared(format!("http://{}", node.addr))
                    .map_err(|e| {
                        FragmentError::Unreachable(format!(
                            "bad address {:?} of node {}: {e}",
                            node.addr, node.id
                        ))
                    })?
                    .connect_timeout(self.connect_timeout)
                    .tcp_nodelay(true);
                let ch = endpoint.connect_lazy();
                channels.insert(node.id, (node.addr.clone(), ch.clone()));
                ch
            }
        };
        Ok(DatanodeServiceClient::new(channel).max_decoding_message_size(GET_MESSAGE_BYTES_MAX))
    }

    async fn bounded<T>(
        &self,
        timeout: Duration,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, FragmentError>>,
    ) -> Result<T, FragmentError> {
        match self.clock.timeout(timeout, fut).await {
            Ok(r) => r,
            Err(e) => Err(FragmentError::Unreachable(format!("{what} {e}"))),
        }
    }

    /// Streams one fragment to `node` (header, then `chunk_bytes` data messages); Ok once
    /// the node acknowledged it durable (after fsync) with the right length and checksum.
    pub async fn put(
        &self,
        node: &NodeInfo,
        put: PutFragment,
        chunk_bytes: usize,
        timeout: Duration,
    ) -> Result<(), FragmentError> {
        let mut client = self.client(node)?;
        let len = put.data.len() as u64;
        let header = pb::PutFragmentHeader {
            id: Some(put.id.into()),
            disk: put.disk.0,
            codec: u32::from(put.params.codec.as_u8()),
            k: u32::from(put.params.k),
            m: u32::from(put.params.m),
            length: len,
            crc32c: put.crc32c,
        };
        let mut msgs = vec![pb::PutFragmentRequest {
            part: Some(pb::put_fragment_request::Part::Header(header)),
        }];
        let chunk = chunk_bytes.max(1);
        let mut pos = 0;
        while pos < put.data.len() {
            let end = (pos + chunk).min(put.data.len());
            msgs.push(pb::PutFragmentRequest {
                part: Some(pb::put_fragment_request::Part::Data(
                    put.data.slice(pos..end),
                )),
            });
            pos = end;
        }
        let (id, crc) = (put.id, put.crc32c);
        self.bounded(timeout, "fragment write", async move {
            let reply = client
                .put_fragment(futures::stream::iter(msgs))
                .await
                .map_err(|s| FragmentError::from_status(&s))?
                .into_inner();
            let info = reply
                .info
                .ok_or_else(|| FragmentError::BadReply("put reply without info".into()))?;
            let got_id = info.id.as_ref().map(FragmentId::try_from);
            if got_id != Some(Ok(id)) || info.length != len || info.crc32c != crc {
                return Err(FragmentError::BadReply(format!(
                    "put of {id} ({len} bytes, crc {crc:08x}) acknowledged as {:?} ({} bytes, \
                     crc {:08x})",
                    got_id, info.length, info.crc32c
                )));
            }
            Ok(())
        })
        .await
    }

    /// Reads `len > 0` bytes at `offset` of a fragment that must be `fragment_len` long.
    pub async fn get(
        &self,
        node: &NodeInfo,
        get: GetFragment,
        timeout: Duration,
    ) -> Result<Bytes, FragmentError> {
        let GetFragment {
            id,
            disk,
            offset,
            len,
            fragment_len,
        } = get;
        let mut client = self.client(node)?;
        let req = pb::GetFragmentRequest {
            id: Some(id.into()),
            disk: disk.0,
            offset,
            length: len,
        };
        self.bounded(timeout, "fragment read", async move {
            let mut stream = client
                .get_fragment(req)
                .await
                .map_err(|s| FragmentError::from_status(&s))?
                .into_inner();
            let cap = usize::try_from(len).unwrap_or(0).min(64 << 20);
            let mut out = BytesMut::with_capacity(cap);
            let mut first = true;
            while let Some(chunk) = stream
                .message()
                .await
                .map_err(|s| FragmentError::from_status(&s))?
            {
                if first {
                    first = false;
                    let info = chunk.info.as_ref().ok_or_else(|| {
                        FragmentError::BadReply("first chunk without fragment info".into())
                    })?;
                    if info.length != fragment_len {
                        return Err(FragmentError::BadReply(format!(
                            "fragment {id} is {} bytes, the stripe needs {fragment_len}",
                            info.length
                        )));
                    }
                }
                if out.len() as u64 + chunk.data.len() as u64 > len {
                    return Err(FragmentError::BadReply(format!(
                        "more than the {len} bytes asked of {id}"
                    )));
                }
                out.extend_from_slice(&chunk.data);
            }
            if out.len() as u64 != len {
                return Err(FragmentError::BadReply(format!(
                    "{} of the {len} bytes asked of {id}",
                    out.len()
                )));
            }
            Ok(out.freeze())
        })
        .await
    }

    /// Deletes one fragment; Ok(whether it existed).
    pub async fn delete(
        &self,
        node: &NodeInfo,
        disk: DiskId,
        id: FragmentId,
        timeout: Duration,
    ) -> Result<bool, FragmentError> {
        let mut client = self.client(node)?;
        let req = pb::DeleteFragmentRequest {
            id: Some(id.into()),
            disk: disk.0,
        };
        self.bounded(timeout, "fragment delete", async move {
            let reply = client
                .delete_fragment(req)
                .await
                .map_err(|s| FragmentError::from_status(&s))?;
            Ok(reply.into_inner().existed)
        })
        .await
    }
}
