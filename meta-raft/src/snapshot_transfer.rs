//! Chunked snapshot transfer: how a group's leader sends a snapshot to a follower that
//! is behind its purged log, in pieces small enough that no single gRPC message ever
//! carries the state machine.
//!
//! **Protocol.** One transfer is a run of unary `InstallSnapshotChunk` calls (proto
//! `SnapshotChunk`), sent one at a time, each waiting for the previous answer:
//!
//! - every chunk carries the group, the cluster id, a `transfer_id` chosen by the sender
//!   for this attempt, the header (postcard `(leader vote, snapshot meta)`), the declared
//!   `total_len` of the whole snapshot, its `offset` and its `data`;
//! - chunks follow each other exactly (`offset` = bytes sent before), the last one has
//!   `done` and the MD5 `digest` of the whole snapshot;
//! - the receiver ([`crate::snapshot_receiver::SnapshotReceiver`]) answers each chunk with
//!   a [`SnapshotChunkReply`]: `Accepted { next_offset }`, or on the last chunk — after
//!   checking length and digest — openraft's own answer from `install_full_snapshot`
//!   (`Done`); `StaleVote(its vote)` when the sender's vote is older than its own (the
//!   sender reports it to openraft, which steps down); `Rejected(typed error)` for a chunk
//!   out of order, of an unknown or replaced transfer, too large, or a whole that does not
//!   match its length or digest.
//!
//! A failed chunk fails the whole attempt; openraft retries with a fresh snapshot, which
//! the sender sends under a new `transfer_id` from offset 0 (replacing the receiver's
//! partial one). Unary calls (rather than a client stream) keep every chunk under its own
//! deadline, behave identically under tokio and madsim, and make the receiver a plain
//! state machine, tested without a network.
//!
//! **Limits.** Chunks are openraft's `snapshot_max_chunk_size` ([`SNAPSHOT_CHUNK_BYTES`]
//! by default, clamped to 1..=[`SNAPSHOT_CHUNK_BYTES_MAX`]); each non-final chunk gets
//! openraft's `soft_ttl`, the final one also the time to install ([`install_ttl`]). A
//! transfer may declare at most [`SNAPSHOT_BYTES_MAX`]; a receiver keeps at most one
//! partial transfer per group, dropped after [`SNAPSHOT_IDLE_TIMEOUT`] without a chunk.
//! The snapshot itself (`Vec<u8>`) is split without copying (`Bytes::slice`).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use md5::{Digest, Md5};
use openraft::alias::{SnapshotOf, VoteOf};
use openraft::raft::SnapshotResponse;
use openraft::RaftTypeConfig;
use proto::raft::SnapshotChunk;
use serde::{Deserialize, Serialize};

use crate::log_store::encode;
use crate::snapshot_receiver::SnapshotReceiveError;

/// Default size of one chunk (openraft's `snapshot_max_chunk_size` in `raft_config`).
pub const SNAPSHOT_CHUNK_BYTES: usize = 2 << 20;

/// Largest chunk a sender ever sends, whatever the config asks.
pub const SNAPSHOT_CHUNK_BYTES_MAX: usize = 4 << 20;

/// Room for a chunk's header (vote, snapshot meta with the membership's addresses) and
/// protobuf framing on top of its data.
pub const SNAPSHOT_CHUNK_OVERHEAD_MAX: usize = 1 << 20;

/// Largest snapshot a transfer may declare. A sanity bound against a corrupt or hostile
/// declaration: the receiver buffers the whole snapshot in memory before installing it
/// (it is a `Vec<u8>`), so the real limit is memory until snapshots stream to disk.
pub const SNAPSHOT_BYTES_MAX: u64 = 4 << 30;

/// A partial transfer that received no chunk for this long is dropped (its sender gave
/// up or lost leadership); checked whenever a chunk arrives.
pub const SNAPSHOT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The final chunk's deadline includes the install (decode the image, rewrite every
/// table in one redb transaction): at least this long…
pub const SNAPSHOT_INSTALL_TIME_MIN: Duration = Duration::from_secs(10);

/// …plus the snapshot's size at this (pessimistic) install rate.
pub const SNAPSHOT_INSTALL_BYTES_PER_SEC: u64 = 8 << 20;

/// The deadline of the final chunk of a `total_len`-byte snapshot.
pub fn install_ttl(chunk_ttl: Duration, total_len: u64) -> Duration {
    chunk_ttl
        + SNAPSHOT_INSTALL_TIME_MIN
        + Duration::from_secs(total_len / SNAPSHOT_INSTALL_BYTES_PER_SEC)
}

/// The answer to one `SnapshotChunk` (postcard in `RaftReply.payload`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum SnapshotChunkReply<C: RaftTypeConfig> {
    /// Stored; the next chunk starts at `next_offset`.
    Accepted { next_offset: u64 },
    /// The last chunk: the whole snapshot was checked and handed to openraft, which
    /// answered this (installed, or refused for its vote).
    Done(SnapshotResponse<C>),
    /// The sender's vote is older than the receiver's (given here): refused.
    StaleVote(VoteOf<C>),
    /// The chunk was refused; the transfer must restart from offset 0.
    Rejected(SnapshotReceiveError),
    /// The receiver's Raft instance stopped.
    Fatal(String),
}

/// Why sending a snapshot failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotSendError {
    #[error("snapshot of {len} bytes exceeds the transfer limit of {max} bytes")]
    TooLarge { len: u64, max: u64 },
    /// The chunk did not get an answer (network, deadline, remote refused the call).
    #[error("sending snapshot chunk at offset {offset}: {message}")]
    Transport { offset: u64, message: String },
    #[error("snapshot chunk at offset {offset} refused: {source}")]
    Rejected {
        offset: u64,
        #[source]
        source: SnapshotReceiveError,
    },
    #[error("snapshot chunk at offset {offset}: unexpected answer: {message}")]
    Protocol { offset: u64, message: String },
    #[error("the receiving raft stopped: {0}")]
    Fatal(String),
    #[error("encoding the snapshot header: {0}")]
    Encode(#[source] std::io::Error),
}

/// Who a transfer goes to and how it is cut.
pub struct SnapshotSendPlan {
    pub group_id: u64,
    pub cluster_id: String,
    pub transfer_id: u64,
    /// Bytes per chunk (clamped to 1..=[`SNAPSHOT_CHUNK_BYTES_MAX`]).
    pub chunk_bytes: usize,
    /// Deadline of each non-final chunk.
    pub chunk_ttl: Duration,
}

/// Sends `snapshot` in chunks through `send_chunk(chunk, deadline)` (one unary call each)
/// and returns the receiver's final answer. Cancellation is the caller's: dropping the
/// future stops the transfer between (or inside) chunks.
pub async fn send_snapshot<C, F, Fut>(
    plan: SnapshotSendPlan,
    vote: VoteOf<C>,
    snapshot: SnapshotOf<C, Vec<u8>>,
    mut send_chunk: F,
) -> Result<SnapshotResponse<C>, SnapshotSendError>
where
    C: RaftTypeConfig,
    F: FnMut(SnapshotChunk, Duration) -> Fut,
    Fut: Future<Output = Result<SnapshotChunkReply<C>, String>>,
{
    let SnapshotOf::<C, Vec<u8>> { meta, snapshot } = snapshot;
    let total = u64::try_from(snapshot.len()).unwrap_or(u64::MAX);
    if total > SNAPSHOT_BYTES_MAX {
        return Err(SnapshotSendError::TooLarge {
            len: total,
            max: SNAPSHOT_BYTES_MAX,
        });
    }
    let header = Bytes::from(encode(&(vote, meta)).map_err(SnapshotSendError::Encode)?);
    // Owns the Vec without copying; every chunk is a slice of it.
    let data = Bytes::from(snapshot);
    let chunk_bytes = plan.chunk_bytes.clamp(1, SNAPSHOT_CHUNK_BYTES_MAX);
    let mut md5 = Md5::new();
    let mut start = 0usize;
    loop {
        let end = start.saturating_add(chunk_bytes).min(data.len());
        let piece = data.slice(start..end);
        md5.update(&piece);
        let done = end == data.len();
        let offset = start as u64;
        let chunk = SnapshotChunk {
            group_id: plan.group_id,
            cluster_id: plan.cluster_id.clone(),
            transfer_id: plan.transfer_id,
            header: header.clone(),
            total_len: total,
            offset,
            data: piece,
            done,
            digest: if done {
                Bytes::copy_from_slice(&md5.clone().finalize())
            } else {
                Bytes::new()
            },
        };
        let ttl = if done {
            install_ttl(plan.chunk_ttl, total)
        } else {
            plan.chunk_ttl
        };
        let reply = send_chunk(chunk, ttl)
            .await
            .map_err(|message| SnapshotSendError::Transport { offset, message })?;
        match reply {
            SnapshotChunkReply::Accepted { next_offset } if !done && next_offset == end as u64 => {
                start = end;
            }
            SnapshotChunkReply::Done(resp) if done => return Ok(resp),
            // Openraft compares the vote and steps down if it is higher.
            SnapshotChunkReply::StaleVote(vote) => return Ok(SnapshotResponse::new(vote)),
            SnapshotChunkReply::Rejected(source) => {
                return Err(SnapshotSendError::Rejected { offset, source })
            }
            SnapshotChunkReply::Fatal(m) => return Err(SnapshotSendError::Fatal(m)),
            other => {
                return Err(SnapshotSendError::Protocol {
                    offset,
                    message: format!("{other:?} after a chunk ending at {end} (done: {done})"),
                })
            }
        }
    }
}
