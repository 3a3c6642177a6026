//! [`DataPlane::rebuild_stripe`]: repair's primitive. Given a stripe's record (id, code,
//! data length, current placement), the fragment indexes to rebuild and a target location
//! for each, it reads `k` healthy fragments, rebuilds the missing ones byte-identical to
//! what the PUT wrote, writes them to their targets and returns the new placement (to be
//! committed with `ReplacePlacement`, whose `expected` is the record's placement).
//!
//! # Reads
//! Sources are tried in this order: fragments not being rebuilt — data, then parity,
//! nodes the plane suspects last — then the old locations of the fragments being
//! rebuilt (a fragment moved off a draining node may still be readable there). `k` are
//! read in parallel; each one that is missing, corrupt (the data node verifies every
//! block checksum and never returns failing bytes), unreachable, slower than
//! `fragment_read_timeout` or of the wrong length is skipped and the next candidate
//! is read, until `k` are in hand or none is left ([`RebuildError::NotEnoughHealthy`],
//! nothing written). Data fragments that lie wholly in the stripe's padding are zeros
//! and count as sources without a read.
//!
//! # Writes
//! The rebuilt fragments are written like a PUT writes them (`NodePool::put`: the same
//! fragment format, codec parameters and payload CRC32C, acknowledged by the data node
//! after fsync, the acknowledgement checked for id, length and checksum), all targets in
//! parallel. All or nothing: if any target write fails, the targets already written are
//! deleted (best effort) and the call fails with [`RebuildError::WriteFailed`], naming
//! the target; the caller re-plans without it and calls again.
//!
//! A target equal to the fragment's current location (rebuilding in place) works only
//! when that data node no longer indexes the fragment (the scrubber quarantines corrupt
//! fragments): a node that still holds it with the same checksum acknowledges the put as
//! a retry without writing.
//!
//! # Memory
//! At most `k` source fragments plus the rebuilt ones, plus the decoded stripe while
//! decoding: about `(2k + m) / k` stripes (~2.5 × 4 MiB at 8+4). Nothing scales with the
//! object.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use common::cluster::{ClusterMap, FragmentLocation};
use common::codec::{new_codec, CodecParams, ErasureCodec};
use common::ids::{FragmentId, NodeId, StripeId};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use meta_raft::state_machine::StripeRecord;

use super::node_pool::{FragmentError, GetFragment, PutFragment};
use super::stats::bump;
use super::{DataError, DataPlane};

/// Why a stripe could not be rebuilt. Nothing new is left on the data nodes after any
/// of these (targets written before a failure are deleted, best effort).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RebuildError {
    /// The request does not describe a rebuild (wrong number of locations, a target
    /// index out of range, no targets, a target on a node holding another fragment).
    #[error("cannot rebuild stripe {stripe}: {reason}")]
    InvalidRequest { stripe: StripeId, reason: String },

    /// The erasure-coding parameters are not usable, or decoding failed.
    #[error("stripe {stripe}: erasure coding: {reason}")]
    Codec { stripe: StripeId, reason: String },

    /// The cluster map could not be fetched.
    #[error("cluster map unavailable: {0}")]
    Topology(String),

    /// Fewer than `k` fragments could be read: the stripe cannot be rebuilt now (and
    /// is lost if they never come back).
    #[error(
        "stripe {stripe}: only {healthy} healthy fragments, {needed} are needed to rebuild \
         (failures: {})",
        failures.join("; ")
    )]
    NotEnoughHealthy {
        stripe: StripeId,
        healthy: usize,
        needed: usize,
        /// One line per source that failed: index, node, why.
        failures: Vec<String>,
    },

    /// Writing a rebuilt fragment to its target failed.
    #[error("stripe {stripe}: writing fragment {index} to {location} failed: {error}")]
    WriteFailed {
        stripe: StripeId,
        index: usize,
        location: FragmentLocation,
        error: String,
    },

    /// A task of the data path died (panic or runtime shutdown).
    #[error("rebuild task failed: {0}")]
    Task(String),
}

/// What [`DataPlane::rebuild_stripe`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuilt {
    /// The record's placement with every rebuilt index at its target: the `new` of the
    /// `ReplacePlacement` to commit (its `expected` is the record's placement).
    pub placement: Vec<FragmentLocation>,
    /// The indexes rebuilt (the targets' keys), in order.
    pub rebuilt: Vec<usize>,
    /// The fragment indexes read as sources (zero padding fragments not included).
    pub sources: Vec<usize>,
    /// Sources that were tried and skipped: index, node, why (for repair's report).
    pub skipped: Vec<String>,
}

type Fetch = BoxFuture<'static, (usize, Result<Bytes, FragmentError>)>;

impl DataPlane {
    /// Rebuilds fragments `targets.keys()` of the stripe `stripe` (coded `codec`) and
    /// writes each to `targets[index]`; see the module docs. `stripe.placement` is the
    /// placement as recorded (`k + m` locations).
    pub async fn rebuild_stripe(
        &self,
        codec: CodecParams,
        stripe: &StripeRecord,
        targets: &BTreeMap<usize, FragmentLocation>,
    ) -> Result<Rebuilt, RebuildError> {
        let id = stripe.id;
        let invalid = |reason: String| RebuildError::InvalidRequest { stripe: id, reason };
        let coder = new_codec(codec).map_err(|e| RebuildError::Codec {
            stripe: id,
            reason: e.to_string(),
        })?;
        let (k, n) = (codec.data_fragments(), codec.total_fragments());
        if stripe.placement.len() != n {
            return Err(invalid(format!(
                "{} fragment locations for a {}+{} stripe",
                stripe.placement.len(),
                codec.k,
                codec.m
            )));
        }
        if targets.is_empty() {
            return Err(invalid("no fragment to rebuild".into()));
        }
        if let Some(&i) = targets.keys().find(|&&i| i >= n) {
            return Err(invalid(format!(
                "fragment index {i} out of range for {}+{}",
                codec.k, codec.m
            )));
        }
        let mut placement = stripe.placement.clone();
        for (&i, loc) in targets {
            placement[i] = *loc;
        }
        let mut nodes: BTreeMap<NodeId, usize> = BTreeMap::new();
        for (i, loc) in placement.iter().enumerate() {
            if let Some(other) = nodes.insert(loc.node, i) {
                if targets.contains_key(&i) || targets.contains_key(&other) {
                    return Err(invalid(format!(
                        "fragments {other} and {i} would both be on node {}",
                        loc.node
                    )));
                }
            }
        }
        let data_len = usize::try_from(stripe.data_len)
            .map_err(|_| invalid(format!("data length {} too large", stripe.data_len)))?;
        let frag_len = coder.fragment_len(data_len) as u64;
        let inner = &self.inner;
        let map = inner.topology.cluster_map().await.map_err(|e| match e {
            DataError::Topology(m) => RebuildError::Topology(m),
            other => RebuildError::Topology(other.to_string()),
        })?;

        let sources = self
            .read_sources(&map, stripe, targets, k, frag_len)
            .await?;
        let read: Vec<usize> = sources.fragments.keys().copied().collect();
        let fragments = self
            .reconstruct(&coder, stripe, &sources, targets, frag_len)
            .await?;
        drop(sources.fragments);
        self.write_targets(&map, codec, stripe.id, targets, fragments)
            .await?;
        Ok(Rebuilt {
            placement,
            rebuilt: targets.keys().copied().collect(),
            sources: read,
            skipped: sources.skipped,
        })
    }

    /// Reads `k` healthy fragments (counting known-zero padding fragments).
    async fn read_sources(
        &self,
        map: &Arc<ClusterMap>,
        stripe: &StripeRecord,
        targets: &BTreeMap<usize, FragmentLocation>,
        k: usize,
        frag_len: u64,
    ) -> Result<Sources, RebuildError> {
        let inner = &self.inner;
        let n = stripe.placement.len();
        // Data fragments past the data are all padding: zeros, known without reading.
        let zeros: BTreeSet<usize> = (0..k)
            .filter(|&i| i as u64 * frag_len >= stripe.data_len)
            .collect();
        let suspects = inner.suspects.current();
        let suspect = |i: usize| suspects.contains(&stripe.placement[i].node);
        let kept = |i: &usize| !targets.contains_key(i) && !zeros.contains(i);
        let mut order: Vec<usize> = (0..n).filter(|i| kept(i) && !suspect(*i)).collect();
        order.extend((0..n).filter(|i| kept(i) && suspect(*i)));
        order.extend(targets.keys().copied().filter(|i| !zeros.contains(i)));
        let mut order = order.into_iter();

        let timeout = inner.cfg.fragment_read_timeout;
        let fetch = |i: usize| -> Fetch {
            let plane = self.clone();
            let map = Arc::clone(map);
            let loc = stripe.placement[i];
            let id = FragmentId {
                stripe: stripe.id,
                index: u8::try_from(i).unwrap_or(u8::MAX),
            };
            Box::pin(async move {
                let r = match map.node(loc.node) {
                    Some(node) => {
                        let get = GetFragment {
                            id,
                            disk: loc.disk,
                            offset: 0,
                            len: frag_len,
                            fragment_len: frag_len,
                        };
                        plane.inner.pool.get(node, get, timeout).await
                    }
                    None => Err(FragmentError::Unreachable(format!(
                        "node {} is not in the cluster map",
                        loc.node
                    ))),
                };
                (i, r)
            })
        };

        let mut fragments: BTreeMap<usize, Bytes> = BTreeMap::new();
        let mut skipped = Vec::new();
        let mut pending: FuturesUnordered<Fetch> = FuturesUnordered::new();
        let want = k.saturating_sub(zeros.len());
        for i in order.by_ref().take(want) {
            pending.push(fetch(i));
        }
        while fragments.len() < want {
            let Some((i, result)) = pending.next().await else {
                return Err(RebuildError::NotEnoughHealthy {
                    stripe: stripe.id,
                    healthy: fragments.len() + zeros.len(),
                    needed: k,
                    failures: skipped,
                });
            };
            match result {
                // The data node verified every block; the length is checked by the pool.
                Ok(bytes) => {
                    assert_eq!(bytes.len() as u64, frag_len, "pool checks the length");
                    fragments.insert(i, bytes);
                }
                Err(e) => {
                    let node = stripe.placement[i].node;
                    tracing::warn!(stripe = %stripe.id, index = i, %node, error = %e, "rebuild: source fragment unreadable");
                    bump(&inner.counters.fragment_read_failures, 1);
                    if e.is_node_failure() {
                        inner.suspects.mark(node);
                    }
                    skipped.push(format!("fragment {i} on node {node}: {e}"));
                    if let Some(next) = order.next() {
                        pending.push(fetch(next));
                    }
                }
            }
        }
        Ok(Sources {
            fragments,
            zeros,
            skipped,
        })
    }

    /// Rebuilds the target fragments from the sources, each with its CRC32C.
    async fn reconstruct(
        &self,
        coder: &Arc<dyn ErasureCodec>,
        stripe: &StripeRecord,
        sources: &Sources,
        targets: &BTreeMap<usize, FragmentLocation>,
        frag_len: u64,
    ) -> Result<Vec<(Bytes, u32)>, RebuildError> {
        let n = stripe.placement.len();
        let zero = Bytes::from(vec![
            0u8;
            if sources.zeros.is_empty() {
                0
            } else {
                frag_len as usize
            }
        ]);
        let mut slots: Vec<Option<Bytes>> = vec![None; n];
        for (&i, b) in &sources.fragments {
            slots[i] = Some(b.clone());
        }
        for &i in &sources.zeros {
            slots[i] = Some(zero.clone());
        }
        let wanted: Vec<usize> = targets.keys().copied().collect();
        let coder = Arc::clone(coder);
        let (id, data_len) = (stripe.id, stripe.data_len as usize);
        let run = move || -> Result<Vec<(Bytes, u32)>, RebuildError> {
            let refs: Vec<Option<&[u8]>> = slots.iter().map(|s| s.as_deref()).collect();
            let rebuilt = coder
                .reconstruct_fragments(&refs, data_len, &wanted)
                .map_err(|e| RebuildError::Codec {
                    stripe: id,
                    reason: format!("rebuilding fragments {wanted:?}: {e}"),
                })?;
            assert_eq!(rebuilt.len(), wanted.len(), "one fragment per wanted index");
            // A rebuilt fragment that was also read must come out identical: the
            // sources agree with each other (a cheap consistency check when it applies).
            for (f, &i) in rebuilt.iter().zip(&wanted) {
                assert_eq!(
                    f.len() as u64,
                    frag_len,
                    "rebuilt fragment {i} has the wrong length"
                );
                if let Some(read) = &slots[i] {
                    if read.as_ref() != f.as_slice() {
                        return Err(RebuildError::Codec {
                            stripe: id,
                            reason: format!("fragment {i} as read differs from its rebuild"),
                        });
                    }
                }
            }
            Ok(rebuilt
                .into_iter()
                .map(|f| {
                    let crc = crc32c::crc32c(&f);
                    (Bytes::from(f), crc)
                })
                .collect())
        };
        let bytes = stripe.data_len as usize;
        if bytes >= self.inner.cfg.blocking_codec_bytes {
            self.inner
                .env
                .spawn_blocking(run)
                .await
                .map_err(|e| RebuildError::Task(e.to_string()))?
        } else {
            run()
        }
    }

    /// Writes every rebuilt fragment to its target, in parallel; all or nothing.
    async fn write_targets(
        &self,
        map: &Arc<ClusterMap>,
        codec: CodecParams,
        stripe: StripeId,
        targets: &BTreeMap<usize, FragmentLocation>,
        fragments: Vec<(Bytes, u32)>,
    ) -> Result<(), RebuildError> {
        let inner = &self.inner;
        let writes = targets
            .iter()
            .zip(fragments)
            .map(|((&i, &loc), (data, crc32c))| {
                let id = FragmentId {
                    stripe,
                    index: u8::try_from(i).unwrap_or(u8::MAX),
                };
                let put = PutFragment {
                    id,
                    disk: loc.disk,
                    params: codec,
                    data,
                    crc32c,
                };
                async move {
                    let r = match map.node(loc.node) {
                        Some(node) => {
                            inner
                                .pool
                                .put(
                                    node,
                                    put,
                                    inner.cfg.put_chunk_bytes,
                                    inner.cfg.fragment_write_timeout,
                                )
                                .await
                        }
                        None => Err(FragmentError::Unreachable(format!(
                            "node {} is not in the cluster map",
                            loc.node
                        ))),
                    };
                    (i, id, loc, r)
                }
            });
        let results = futures::future::join_all(writes).await;
        let mut written = Vec::new();
        let mut failure = None;
        for (i, id, loc, r) in results {
            match r {
                Ok(()) => {
                    bump(&inner.counters.fragments_written, 1);
                    written.push((id, loc));
                }
                Err(e) => {
                    tracing::warn!(%stripe, index = i, %loc, error = %e, "rebuild: target write failed");
                    bump(&inner.counters.fragment_write_failures, 1);
                    if e.is_node_failure() {
                        inner.suspects.mark(loc.node);
                    }
                    failure.get_or_insert(RebuildError::WriteFailed {
                        stripe,
                        index: i,
                        location: loc,
                        error: e.to_string(),
                    });
                }
            }
        }
        match failure {
            None => Ok(()),
            Some(e) => {
                let deleted = self.delete_fragments(written).await;
                tracing::warn!(%stripe, deleted, "rebuild failed; removed the targets written");
                Err(e)
            }
        }
    }
}

/// The fragments in hand for a rebuild.
struct Sources {
    /// Index → whole fragment bytes (verified by the data node).
    fragments: BTreeMap<usize, Bytes>,
    /// Data fragments that are all padding.
    zeros: BTreeSet<usize>,
    skipped: Vec<String>,
}
