//! `SnapshotReceiver`: the receiving side of the chunked snapshot transfer
//! (protocol in [`crate::snapshot_transfer`]). A pure state machine — chunks in, a
//! verdict out — owned by the process's `RaftGrpc`, which hands a completed snapshot
//! to openraft's `install_full_snapshot`.
//!
//! Rules: at most one partial transfer per group. A chunk at offset 0 under a new
//! `transfer_id` starts a transfer and replaces the partial one, unless that one has a
//! higher vote. Any other chunk must continue the partial transfer exactly (same id,
//! vote, meta and declared length; offset = bytes received). Every chunk's vote must be
//! at least the receiver's own (as openraft checks), and a declared length above the
//! limit is refused before anything is buffered. The last chunk is accepted only if the
//! bytes add up to the declared length and their MD5 matches. Nothing here panics on
//! what the network sends.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::Duration;

use common::env::Instant;
use common::ids::GroupId;
use md5::{Digest, Md5};
use openraft::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::vote::RaftVote;
use openraft::RaftTypeConfig;
use serde::{Deserialize, Serialize};

use crate::snapshot_transfer::{SNAPSHOT_BYTES_MAX, SNAPSHOT_IDLE_TIMEOUT};

/// Why a chunk was refused. Travels back to the sender inside the reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SnapshotReceiveError {
    #[error("snapshot declares {declared} bytes, more than the limit of {max}")]
    TooLarge { declared: u64, max: u64 },
    #[error("vote {sender} is older than this node's vote {local}")]
    StaleVote { sender: String, local: String },
    #[error("transfer {transfer_id}: chunk at offset {got}, expected offset {expected}")]
    OutOfOrder {
        transfer_id: u64,
        expected: u64,
        got: u64,
    },
    #[error("transfer {transfer_id}: chunk at offset {offset} but no such transfer in progress")]
    NoTransfer { transfer_id: u64, offset: u64 },
    #[error(
        "transfer {transfer_id} refused: a transfer with the higher vote {current} is in progress"
    )]
    Superseded { transfer_id: u64, current: String },
    #[error("transfer {transfer_id}: vote, snapshot meta or declared length changed mid-transfer")]
    HeaderChanged { transfer_id: u64 },
    #[error("transfer {transfer_id}: chunk ends at {end}, past the declared {declared} bytes")]
    Overrun {
        transfer_id: u64,
        declared: u64,
        end: u64,
    },
    #[error("transfer {transfer_id}: received {received} bytes, {declared} declared")]
    LengthMismatch {
        transfer_id: u64,
        declared: u64,
        received: u64,
    },
    #[error("transfer {transfer_id}: MD5 of the snapshot is {computed}, the sender says {sent}")]
    ChecksumMismatch {
        transfer_id: u64,
        computed: String,
        sent: String,
    },
}

/// Bounds of a receiver.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotLimits {
    /// Largest snapshot a transfer may declare.
    pub bytes_max: u64,
    /// A partial transfer without a chunk for this long is dropped.
    pub idle_timeout: Duration,
}

impl Default for SnapshotLimits {
    fn default() -> Self {
        Self {
            bytes_max: SNAPSHOT_BYTES_MAX,
            idle_timeout: SNAPSHOT_IDLE_TIMEOUT,
        }
    }
}

/// One chunk as it arrived (header decoded).
pub struct IncomingChunk<'a, C: RaftTypeConfig> {
    pub group: GroupId,
    pub transfer_id: u64,
    pub vote: VoteOf<C>,
    pub meta: SnapshotMetaOf<C>,
    pub total_len: u64,
    pub offset: u64,
    pub data: &'a [u8],
    pub done: bool,
    pub digest: &'a [u8],
}

/// What a chunk led to.
#[derive(Debug)]
pub enum Received<C: RaftTypeConfig> {
    /// Stored; the next chunk starts at `next_offset`.
    Accepted { next_offset: u64 },
    /// The whole snapshot, checked: install it with the sender's vote.
    Complete {
        vote: VoteOf<C>,
        snapshot: SnapshotOf<C, Vec<u8>>,
    },
}

struct Transfer<C: RaftTypeConfig> {
    id: u64,
    vote: VoteOf<C>,
    meta: SnapshotMetaOf<C>,
    total_len: u64,
    data: Vec<u8>,
    md5: Md5,
    last_chunk_at: Instant,
}

/// Counters of a receiver since it started (tests, diagnostics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotReceiveStats {
    /// Chunks stored, the completing ones included.
    pub chunks_accepted: u64,
    /// Chunks refused (any [`SnapshotReceiveError`]).
    pub chunks_refused: u64,
    /// Whole snapshots checked and handed over for installation.
    pub snapshots_completed: u64,
}

/// The partial transfers of one process, at most one per group.
pub struct SnapshotReceiver<C: RaftTypeConfig> {
    limits: SnapshotLimits,
    transfers: BTreeMap<GroupId, Transfer<C>>,
    stats: SnapshotReceiveStats,
}

impl<C: RaftTypeConfig> Default for SnapshotReceiver<C> {
    fn default() -> Self {
        Self::new(SnapshotLimits::default())
    }
}

/// `a >= b` in openraft's partial order of votes (incomparable is not).
fn vote_at_least<C: RaftTypeConfig>(a: &VoteOf<C>, b: &VoteOf<C>) -> bool {
    matches!(
        RaftVote::partial_cmp(a, b),
        Some(Ordering::Greater | Ordering::Equal)
    )
}

fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl<C: RaftTypeConfig> SnapshotReceiver<C> {
    pub fn new(limits: SnapshotLimits) -> Self {
        Self {
            limits,
            transfers: BTreeMap::new(),
            stats: SnapshotReceiveStats::default(),
        }
    }

    pub fn stats(&self) -> SnapshotReceiveStats {
        self.stats
    }

    /// The partial transfer of `group`: its id and the bytes received so far.
    pub fn in_progress(&self, group: GroupId) -> Option<(u64, u64)> {
        self.transfers
            .get(&group)
            .map(|t| (t.id, len_u64(t.data.len())))
    }

    /// Takes one chunk. `local_vote` is the receiving node's current vote for the group;
    /// `now` drives the idle expiry.
    pub fn receive(
        &mut self,
        now: Instant,
        local_vote: &VoteOf<C>,
        chunk: IncomingChunk<'_, C>,
    ) -> Result<Received<C>, SnapshotReceiveError> {
        let res = self.take(now, local_vote, chunk);
        match &res {
            Ok(Received::Accepted { .. }) => self.stats.chunks_accepted += 1,
            Ok(Received::Complete { .. }) => {
                self.stats.chunks_accepted += 1;
                self.stats.snapshots_completed += 1;
            }
            Err(_) => self.stats.chunks_refused += 1,
        }
        res
    }

    fn take(
        &mut self,
        now: Instant,
        local_vote: &VoteOf<C>,
        chunk: IncomingChunk<'_, C>,
    ) -> Result<Received<C>, SnapshotReceiveError> {
        let idle = self.limits.idle_timeout;
        self.transfers
            .retain(|_, t| now.saturating_duration_since(t.last_chunk_at) < idle);
        let group = chunk.group;
        let id = chunk.transfer_id;

        if !vote_at_least::<C>(&chunk.vote, local_vote) {
            // A partial transfer from before the local vote can never be installed either.
            if self
                .transfers
                .get(&group)
                .is_some_and(|t| !vote_at_least::<C>(&t.vote, local_vote))
            {
                self.transfers.remove(&group);
            }
            return Err(SnapshotReceiveError::StaleVote {
                sender: chunk.vote.to_string(),
                local: local_vote.to_string(),
            });
        }
        if chunk.total_len > self.limits.bytes_max {
            if self.transfers.get(&group).is_some_and(|t| t.id == id) {
                self.transfers.remove(&group);
            }
            return Err(SnapshotReceiveError::TooLarge {
                declared: chunk.total_len,
                max: self.limits.bytes_max,
            });
        }

        let current = self.transfers.get(&group);
        let starts_new = chunk.offset == 0 && current.is_none_or(|t| t.id != id);
        if starts_new {
            if let Some(t) = current {
                if !vote_at_least::<C>(&chunk.vote, &t.vote) {
                    return Err(SnapshotReceiveError::Superseded {
                        transfer_id: id,
                        current: t.vote.to_string(),
                    });
                }
            }
            self.transfers.insert(
                group,
                Transfer {
                    id,
                    vote: chunk.vote.clone(),
                    meta: chunk.meta.clone(),
                    total_len: chunk.total_len,
                    data: Vec::new(),
                    md5: Md5::new(),
                    last_chunk_at: now,
                },
            );
        }
        let Some(t) = self.transfers.get_mut(&group).filter(|t| t.id == id) else {
            return Err(SnapshotReceiveError::NoTransfer {
                transfer_id: id,
                offset: chunk.offset,
            });
        };
        if t.vote != chunk.vote || t.meta != chunk.meta || t.total_len != chunk.total_len {
            return Err(SnapshotReceiveError::HeaderChanged { transfer_id: id });
        }
        let received = len_u64(t.data.len());
        if chunk.offset != received {
            return Err(SnapshotReceiveError::OutOfOrder {
                transfer_id: id,
                expected: received,
                got: chunk.offset,
            });
        }
        let end = received.saturating_add(len_u64(chunk.data.len()));
        if end > t.total_len {
            let declared = t.total_len;
            self.transfers.remove(&group);
            return Err(SnapshotReceiveError::Overrun {
                transfer_id: id,
                declared,
                end,
            });
        }
        grow_toward(&mut t.data, chunk.data.len(), t.total_len);
        t.data.extend_from_slice(chunk.data);
        t.md5.update(chunk.data);
        t.last_chunk_at = now;
        if !chunk.done {
            return Ok(Received::Accepted { next_offset: end });
        }

        let Some(t) = self.transfers.remove(&group) else {
            return Err(SnapshotReceiveError::NoTransfer {
                transfer_id: id,
                offset: chunk.offset,
            });
        };
        if end != t.total_len {
            return Err(SnapshotReceiveError::LengthMismatch {
                transfer_id: id,
                declared: t.total_len,
                received: end,
            });
        }
        let computed = t.md5.finalize();
        if computed.as_slice() != chunk.digest {
            return Err(SnapshotReceiveError::ChecksumMismatch {
                transfer_id: id,
                computed: hex::encode(computed),
                sent: hex::encode(chunk.digest),
            });
        }
        Ok(Received::Complete {
            vote: t.vote,
            snapshot: SnapshotOf::<C, Vec<u8>> {
                meta: t.meta,
                snapshot: t.data,
            },
        })
    }
}

/// Makes room for `more` bytes, growing geometrically but never past the declared total
/// (so a complete snapshot has no slack, and a lying declaration allocates nothing up
/// front).
fn grow_toward(buf: &mut Vec<u8>, more: usize, total: u64) {
    let need = buf.len().saturating_add(more);
    if need <= buf.capacity() {
        return;
    }
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let target = need.max(buf.len().saturating_mul(2)).min(total.max(need));
    buf.reserve_exact(target - buf.len());
}
