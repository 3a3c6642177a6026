//! The gRPC `DatanodeService`. Every request is validated (`proto::convert`) before it
//! touches a store; every failure is a typed status with a numbered `ErrorCode`; no input
//! from the network panics the node. Memory per stream is bounded: a put buffers at most
//! one incoming message plus one block; a get produces one chunk at a time, on demand.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use common::ids::{DiskId, FragmentId};
use futures::Stream;
use proto::convert::{required, ConvertError};
use proto::datanode as pb;
use proto::datanode::datanode_service_server::{DatanodeService, DatanodeServiceServer};
use proto::datanode::ErrorCode;
use proto::status_with_code;
use tonic::{Request, Response, Status, Streaming};

use crate::error::StoreError;
use crate::format::FragmentHeader;
use crate::node::Datanode;
use crate::store::{PutRequest, PutStart};

/// Largest data message accepted in a put stream.
pub const PUT_CHUNK_BYTES_MAX: usize = 4 << 20;
/// Size of the chunks a get stream sends.
pub const GET_CHUNK_BYTES: u64 = 256 << 10;
/// Largest page a list may ask for.
pub const LIST_LIMIT_MAX: u32 = 10_000;

pub fn store_status(e: &StoreError) -> Status {
    let code = match e {
        StoreError::NotFound(_) => ErrorCode::NotFound,
        StoreError::Corrupt { .. } => ErrorCode::Corrupt,
        StoreError::NoSpace(_) => ErrorCode::NoSpace,
        StoreError::InvalidArgument(_) => ErrorCode::InvalidArgument,
        StoreError::AlreadyExists(_) | StoreError::Busy(_) => ErrorCode::AlreadyExists,
        StoreError::TooLarge { .. } => ErrorCode::TooLarge,
        StoreError::ChecksumMismatch { .. } => ErrorCode::ChecksumMismatch,
        StoreError::UnknownDisk(_) => ErrorCode::UnknownDisk,
        StoreError::Io { .. } => ErrorCode::Io,
    };
    if matches!(e, StoreError::Corrupt { .. }) {
        tracing::warn!(error = %e, "corrupt fragment detected; reporting as lost");
    }
    status_with_code(code, e.to_string())
}

fn convert_status(e: &ConvertError) -> Status {
    status_with_code(ErrorCode::InvalidArgument, e.to_string())
}

fn invalid(msg: impl Into<String>) -> Status {
    status_with_code(ErrorCode::InvalidArgument, msg)
}

fn small(v: u32, field: &'static str) -> Result<u8, Status> {
    u8::try_from(v).map_err(|_| invalid(format!("{field} {v} exceeds 255")))
}

fn fragment_id(id: Option<&pb::FragmentId>) -> Result<FragmentId, Status> {
    let id = required(id, "id").map_err(|e| convert_status(&e))?;
    FragmentId::try_from(id).map_err(|e| convert_status(&e))
}

pub fn info(disk: DiskId, h: &FragmentHeader) -> pb::FragmentInfo {
    pb::FragmentInfo {
        id: Some(h.id.into()),
        disk: disk.0,
        codec: u32::from(h.codec),
        k: u32::from(h.k),
        m: u32::from(h.m),
        length: h.length,
        crc32c: h.crc32c,
    }
}

#[derive(Clone, Debug)]
pub struct DatanodeGrpc {
    node: Arc<Datanode>,
}

impl DatanodeGrpc {
    pub fn new(node: Arc<Datanode>) -> Self {
        Self { node }
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::GetFragmentChunk, Status>> + Send>>;

#[tonic::async_trait]
impl DatanodeService for DatanodeGrpc {
    async fn put_fragment(
        &self,
        request: Request<Streaming<pb::PutFragmentRequest>>,
    ) -> Result<Response<pb::PutFragmentResponse>, Status> {
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| invalid("empty put stream"))?;
        let Some(pb::put_fragment_request::Part::Header(h)) = first.part else {
            return Err(invalid("the first message of a put must be its header"));
        };
        let disk = DiskId(h.disk);
        let req = PutRequest {
            id: fragment_id(h.id.as_ref())?,
            codec: small(h.codec, "codec")?,
            k: small(h.k, "k")?,
            m: small(h.m, "m")?,
            length: h.length,
            crc32c: h.crc32c,
        };
        let mut writer = match self.node.begin_put(disk, req).await {
            Ok(PutStart::AlreadyStored(stored)) => {
                return Ok(Response::new(pb::PutFragmentResponse {
                    info: Some(info(disk, &stored)),
                }))
            }
            Ok(PutStart::Writer(w)) => w,
            Err(e) => return Err(store_status(&e)),
        };
        // Dropping `writer` on any early return removes the partial file.
        while let Some(msg) = stream.message().await? {
            match msg.part {
                Some(pb::put_fragment_request::Part::Data(data)) => {
                    if data.len() > PUT_CHUNK_BYTES_MAX {
                        return Err(status_with_code(
                            ErrorCode::TooLarge,
                            format!(
                                "data message of {} bytes exceeds {PUT_CHUNK_BYTES_MAX}",
                                data.len()
                            ),
                        ));
                    }
                    let (w, res) = self.node.write(disk, writer, data).await;
                    writer = w;
                    res.map_err(|e| store_status(&e))?;
                }
                Some(pb::put_fragment_request::Part::Header(_)) => {
                    return Err(invalid("a put stream carries exactly one header"));
                }
                None => return Err(invalid("empty put message")),
            }
        }
        let stored = self
            .node
            .finish(disk, writer)
            .await
            .map_err(|e| store_status(&e))?;
        Ok(Response::new(pb::PutFragmentResponse {
            info: Some(info(disk, &stored)),
        }))
    }

    type GetFragmentStream = ChunkStream;

    async fn get_fragment(
        &self,
        request: Request<pb::GetFragmentRequest>,
    ) -> Result<Response<Self::GetFragmentStream>, Status> {
        let req = request.into_inner();
        let disk = DiskId(req.disk);
        let id = fragment_id(req.id.as_ref())?;
        let header = self.node.stat(disk, id).map_err(|e| store_status(&e))?;
        let length = if req.length == 0 {
            header.length.checked_sub(req.offset)
        } else {
            Some(req.length)
        };
        let end = length
            .and_then(|l| req.offset.checked_add(l))
            .filter(|&e| e <= header.length)
            .ok_or_else(|| {
                invalid(format!(
                    "range {}+{} outside fragment {id} of {} bytes",
                    req.offset, req.length, header.length
                ))
            })?;
        let node = Arc::clone(&self.node);
        let first = Some(info(disk, &header));
        let state = (node, req.offset, first, false);
        let stream = futures::stream::unfold(state, move |(node, pos, first, failed)| async move {
            if failed || (pos >= end && first.is_none()) {
                return None;
            }
            // Chunks end on multiples of GET_CHUNK_BYTES so reads stay block aligned.
            let chunk_end = ((pos / GET_CHUNK_BYTES + 1) * GET_CHUNK_BYTES).min(end);
            match node.read(disk, id, pos, chunk_end - pos).await {
                Ok(data) => {
                    let msg = pb::GetFragmentChunk {
                        info: first,
                        data: Bytes::from(data),
                    };
                    Some((Ok(msg), (node, chunk_end, None, false)))
                }
                Err(e) => Some((Err(store_status(&e)), (node, chunk_end, None, true))),
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn delete_fragment(
        &self,
        request: Request<pb::DeleteFragmentRequest>,
    ) -> Result<Response<pb::DeleteFragmentResponse>, Status> {
        let req = request.into_inner();
        let id = fragment_id(req.id.as_ref())?;
        let existed = self
            .node
            .delete(DiskId(req.disk), id)
            .await
            .map_err(|e| store_status(&e))?;
        Ok(Response::new(pb::DeleteFragmentResponse { existed }))
    }

    async fn stat_fragment(
        &self,
        request: Request<pb::StatFragmentRequest>,
    ) -> Result<Response<pb::StatFragmentResponse>, Status> {
        let req = request.into_inner();
        let disk = DiskId(req.disk);
        let id = fragment_id(req.id.as_ref())?;
        let h = if req.verify {
            self.node.verify(disk, id).await
        } else {
            self.node.stat(disk, id)
        }
        .map_err(|e| store_status(&e))?;
        Ok(Response::new(pb::StatFragmentResponse {
            info: Some(info(disk, &h)),
        }))
    }

    async fn list_fragments(
        &self,
        request: Request<pb::ListFragmentsRequest>,
    ) -> Result<Response<pb::ListFragmentsResponse>, Status> {
        let req = request.into_inner();
        let disk = DiskId(req.disk);
        let after = match req.after.as_ref() {
            Some(a) => Some(FragmentId::try_from(a).map_err(|e| convert_status(&e))?),
            None => None,
        };
        if req.limit == 0 || req.limit > LIST_LIMIT_MAX {
            return Err(invalid(format!(
                "limit must be 1..={LIST_LIMIT_MAX}, got {}",
                req.limit
            )));
        }
        let (page, truncated) = self
            .node
            .list_present(disk, after, req.limit as usize)
            .await
            .map_err(|e| store_status(&e))?;
        Ok(Response::new(pb::ListFragmentsResponse {
            fragments: page.iter().map(|h| info(disk, h)).collect(),
            truncated,
        }))
    }

    async fn health(
        &self,
        _request: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        let damaged = self.node.damaged();
        Ok(Response::new(pb::HealthResponse {
            node_id: self.node.node_id().0,
            rack: self.node.rack().0.clone(),
            disks: self
                .node
                .usage()
                .into_iter()
                .map(|u| pb::DiskHealth {
                    disk: u.disk.0,
                    capacity_bytes: u.capacity_bytes,
                    used_bytes: u.used_bytes,
                    fragments: u.fragments,
                    healthy: true,
                    damaged: damaged.iter().filter(|d| d.disk == u.disk).count() as u64,
                })
                .collect(),
            scrub: Some(scrub_status(&self.node)),
        }))
    }

    async fn list_damaged(
        &self,
        _request: Request<pb::ListDamagedRequest>,
    ) -> Result<Response<pb::ListDamagedResponse>, Status> {
        Ok(Response::new(pb::ListDamagedResponse {
            damaged: self
                .node
                .damaged()
                .into_iter()
                .map(|d| pb::DamagedFragment {
                    id: Some(d.id.into()),
                    disk: d.disk.0,
                    what: d.finding.what,
                    found_ms: d.finding.at_ms,
                    quarantined: d.finding.quarantined,
                })
                .collect(),
            scrub: Some(scrub_status(&self.node)),
        }))
    }
}

fn scrub_status(node: &Datanode) -> pb::ScrubStatus {
    let p = node.scrub_progress();
    let cfg = node.scrub_config();
    pb::ScrubStatus {
        pass: p.pass,
        running: p.running,
        pass_started_ms: p.pass_started_ms,
        pass_finished_ms: p.pass_finished_ms,
        bytes_verified: p.bytes_verified,
        pass_bytes_verified: p.pass_bytes_verified,
        fragments_verified: p.fragments_verified,
        pass_fragments_verified: p.pass_fragments_verified,
        damaged_found: p.damaged_found,
        interval_secs: cfg.interval.as_secs(),
        bytes_per_sec: cfg.bytes_per_sec,
    }
}

/// Serves the node until `shutdown` resolves, running its scrubber ([`crate::scrub`],
/// on the node's schedule) alongside: every way of starting a data node (`shale
/// datanode`, `shale dev`, the simulator) scrubs.
pub async fn serve(
    node: Arc<Datanode>,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let scrubber = node
        .env()
        .spawn("datanode-scrub", crate::scrub::run(Arc::clone(&node)));
    let served = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(
            DatanodeServiceServer::new(DatanodeGrpc::new(node))
                .max_decoding_message_size(PUT_CHUNK_BYTES_MAX + 4096),
        )
        .serve_with_shutdown(addr, shutdown)
        .await;
    scrubber.abort();
    served
}
