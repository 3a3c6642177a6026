//! `StripeWriter`: the streaming PUT pipeline of one body. Bytes are cut into stripes of
//! `stripe_data_bytes`; each full stripe becomes a task that encodes it, plans its
//! placement and writes its `k+m` fragments in parallel (see [`put_stripe`]). At most
//! `max_stripes_in_flight` such tasks exist per writer: `write` waits for the oldest
//! before starting another (backpressure to the client).

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use common::cluster::{ClusterMap, FragmentLocation, Placement};
use common::codec::{new_codec, CodecParams, ErasureCodec};
use common::env::{Instant, JoinHandle};
use common::ids::{FragmentId, NodeId, StripeId};
use meta_raft::state_machine::StripeRecord;

use super::node_pool::PutFragment;
use super::stats::bump;
use super::{DataError, DataPlane};

/// Writes one body as erasure-coded stripes. Finish with [`StripeWriter::finish`] (the
/// stripes to commit) or [`StripeWriter::abort`] (delete what was written). A writer
/// dropped without either leaves its fragments for garbage collection.
pub struct StripeWriter {
    plane: DataPlane,
    params: CodecParams,
    codec: Result<Arc<dyn ErasureCodec>, DataError>,
    /// The stripe being filled.
    buf: BytesMut,
    /// Stripe tasks in object order.
    in_flight: VecDeque<JoinHandle<Result<StripeRecord, DataError>>>,
    done: Vec<StripeRecord>,
    bytes_written: u64,
    failed: Option<DataError>,
    /// Stripes of this writer alive in memory (dispatched, task not finished).
    live: Arc<AtomicUsize>,
    high_water: usize,
    /// When the writer was created: no fragment of it is older (`max_upload`).
    started: Instant,
}

impl std::fmt::Debug for StripeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeWriter")
            .field("params", &self.params)
            .field("bytes_written", &self.bytes_written)
            .field("in_flight", &self.in_flight.len())
            .field("done", &self.done.len())
            .finish_non_exhaustive()
    }
}

/// Decrements a writer's live-stripe count when a stripe task ends (however it ends).
struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl StripeWriter {
    pub(crate) fn new(plane: DataPlane, params: CodecParams) -> Self {
        let codec = new_codec(params).map_err(|e| DataError::Codec(e.to_string()));
        Self {
            params,
            codec,
            buf: BytesMut::new(),
            in_flight: VecDeque::new(),
            done: Vec::new(),
            bytes_written: 0,
            failed: None,
            live: Arc::new(AtomicUsize::new(0)),
            high_water: 0,
            started: plane.inner.env.clock().now(),
            plane,
        }
    }

    /// Object bytes accepted so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// The most stripes this writer held in memory at once (never above
    /// `max_stripes_in_flight`).
    pub fn stripes_in_flight_high_water(&self) -> usize {
        self.high_water
    }

    fn stripe_bytes(&self) -> usize {
        self.plane.inner.cfg.stripe_data_bytes.max(1)
    }

    /// Appends object bytes. Every full stripe is encoded and dispatched; waits while
    /// `max_stripes_in_flight` stripes are still being written. After an error the writer
    /// is failed: call `abort`.
    pub async fn write(&mut self, mut data: Bytes) -> Result<(), DataError> {
        if let Some(e) = &self.failed {
            return Err(DataError::WriterFailed(e.to_string()));
        }
        if let Err(e) = &self.codec {
            return Err(e.clone());
        }
        let stripe = self.stripe_bytes();
        while !data.is_empty() {
            if self.buf.is_empty() && data.len() >= stripe {
                let s = data.split_to(stripe);
                self.bytes_written += s.len() as u64;
                self.dispatch(s).await?;
                continue;
            }
            if self.buf.capacity() == 0 {
                self.buf.reserve(stripe);
            }
            let take = (stripe - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data.split_to(take));
            self.bytes_written += take as u64;
            if self.buf.len() == stripe {
                let s = self.buf.split().freeze();
                self.dispatch(s).await?;
            }
        }
        Ok(())
    }

    /// Flushes the last (short) stripe, waits for every fragment write and returns the
    /// stripes in object order (none for an empty body). On failure everything written
    /// is deleted (best effort) before the error is returned.
    pub async fn finish(mut self) -> Result<Vec<StripeRecord>, DataError> {
        let result = self.finish_inner().await;
        match result {
            Ok(()) => Ok(std::mem::take(&mut self.done)),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn finish_inner(&mut self) -> Result<(), DataError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if let Err(e) = &self.codec {
            return Err(e.clone());
        }
        if !self.buf.is_empty() {
            let s = self.buf.split().freeze();
            self.dispatch(s).await?;
        }
        while !self.in_flight.is_empty() {
            self.reap_one().await?;
        }
        // Too old to commit safely: the orphan sweep may already count these fragments
        // as unreferenced for long enough (its grace must exceed `max_upload`).
        let elapsed = self
            .plane
            .inner
            .env
            .clock()
            .now()
            .saturating_duration_since(self.started);
        let max = self.plane.inner.cfg.max_upload;
        if elapsed > max {
            return Err(DataError::UploadTooLong {
                elapsed_secs: elapsed.as_secs(),
                max_secs: max.as_secs(),
            });
        }
        Ok(())
    }

    /// Stops: waits for the stripes in flight, then deletes every fragment written
    /// (best effort; what cannot be deleted now is garbage for collection).
    pub async fn abort(mut self) {
        while !self.in_flight.is_empty() {
            // Errors: the failed stripe task already removed its own fragments.
            let _ = self.reap_one().await;
        }
        let stripes = std::mem::take(&mut self.done);
        if !stripes.is_empty() {
            let deleted = self.plane.delete_stripes(&stripes).await;
            tracing::debug!(stripes = stripes.len(), deleted, "aborted write cleaned up");
        }
    }

    /// Waits for the oldest stripe task.
    async fn reap_one(&mut self) -> Result<(), DataError> {
        let Some(handle) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let result = match handle.await {
            Ok(r) => r,
            Err(e) => Err(DataError::Task(e.to_string())),
        };
        match result {
            Ok(record) => {
                self.done.push(record);
                Ok(())
            }
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Starts the task that writes one stripe, after waiting for room.
    async fn dispatch(&mut self, data: Bytes) -> Result<(), DataError> {
        let max = self.plane.inner.cfg.max_stripes_in_flight.max(1);
        while self.in_flight.len() >= max {
            self.reap_one().await?;
        }
        let codec = match &self.codec {
            Ok(c) => Arc::clone(c),
            Err(e) => return Err(e.clone()),
        };
        let live = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.high_water = self.high_water.max(live);
        self.plane
            .inner
            .counters
            .writer_stripes_high_water
            .fetch_max(live as u64, Ordering::Relaxed);
        let guard = LiveGuard(Arc::clone(&self.live));
        let id = StripeId(self.plane.inner.env.random_u128());
        let plane = self.plane.clone();
        let handle = self.plane.inner.env.spawn("put-stripe", async move {
            let _guard = guard;
            put_stripe(&plane, codec, id, data).await
        });
        self.in_flight.push_back(handle);
        Ok(())
    }
}

/// One encoded fragment ready to send.
struct Encoded {
    data: Bytes,
    crc32c: u32,
}

fn encode(codec: &dyn ErasureCodec, data: &[u8]) -> Result<Vec<Encoded>, DataError> {
    let fragments = codec
        .encode(data)
        .map_err(|e| DataError::Codec(e.to_string()))?;
    Ok(fragments
        .into_iter()
        .map(|f| Encoded {
            crc32c: crc32c::crc32c(&f),
            data: Bytes::from(f),
        })
        .collect())
}

/// Encodes, places and writes one stripe. Write rule: all `k+m` fragments; a failed
/// write marks its node suspect and the fragment is re-placed elsewhere (rack rule kept,
/// `replace_rounds` times); if some still fail, at least `k+1` durable fragments are
/// accepted (the others keep their planned location and await repair), fewer is an
/// error and the written fragments are deleted.
async fn put_stripe(
    plane: &DataPlane,
    codec: Arc<dyn ErasureCodec>,
    id: StripeId,
    data: Bytes,
) -> Result<StripeRecord, DataError> {
    let inner = &plane.inner;
    let params = codec.params();
    let (k, m, n) = (params.k, params.m, params.total_fragments());
    let data_len = data.len();
    let fragments = if data_len >= inner.cfg.blocking_codec_bytes {
        let codec = Arc::clone(&codec);
        inner
            .env
            .spawn_blocking(move || encode(codec.as_ref(), &data))
            .await
            .map_err(|e| DataError::Task(e.to_string()))??
    } else {
        encode(codec.as_ref(), &data)?
    };
    if fragments.len() != n {
        return Err(DataError::Codec(format!(
            "encoder returned {} fragments, expected {n}",
            fragments.len()
        )));
    }
    let frag_len = fragments[0].data.len() as u64;

    let map = inner.topology.cluster_map().await?;
    let suspects = inner.suspects.current();
    let placement = plan(&map, k, m, id, frag_len, &suspects)?;
    let mut locs = placement.locations;
    let mut durable = vec![false; n];
    let mut excluded = suspects;
    let mut last_failure = String::new();

    for round in 0..=inner.cfg.replace_rounds {
        let todo: Vec<usize> = (0..n).filter(|&i| !durable[i]).collect();
        if todo.is_empty() {
            break;
        }
        if round > 0 {
            let current: Vec<Option<FragmentLocation>> =
                (0..n).map(|i| durable[i].then_some(locs[i])).collect();
            match placement::plan_replacements(&map, k, m, id, frag_len, &current, &excluded) {
                Ok(p) => {
                    for &i in &todo {
                        locs[i] = p.locations[i];
                    }
                    bump(&inner.counters.fragments_replaced, todo.len() as u64);
                }
                Err(e) => {
                    tracing::warn!(stripe = %id, error = %e, "cannot re-place failed fragments");
                    break;
                }
            }
        }
        let writes = todo.iter().map(|&i| {
            let loc = locs[i];
            let put = PutFragment {
                id: FragmentId {
                    stripe: id,
                    index: u8::try_from(i).unwrap_or(u8::MAX),
                },
                disk: loc.disk,
                params,
                data: fragments[i].data.clone(),
                crc32c: fragments[i].crc32c,
            };
            let map = &map;
            async move {
                match map.node(loc.node) {
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
                    None => Err(super::node_pool::FragmentError::Unreachable(format!(
                        "node {} is not in the cluster map",
                        loc.node
                    ))),
                }
            }
        });
        let results = futures::future::join_all(writes).await;
        for (&i, r) in todo.iter().zip(results) {
            match r {
                Ok(()) => {
                    durable[i] = true;
                    bump(&inner.counters.fragments_written, 1);
                }
                Err(e) => {
                    let node = locs[i].node;
                    tracing::warn!(stripe = %id, index = i, %node, error = %e, "fragment write failed");
                    bump(&inner.counters.fragment_write_failures, 1);
                    inner.suspects.mark(node);
                    excluded.insert(node);
                    last_failure = format!("fragment {i} on node {node}: {e}");
                }
            }
        }
    }

    let record = StripeRecord {
        id,
        data_len: data_len as u64,
        placement: locs,
    };
    let count = durable.iter().filter(|d| **d).count();
    let needed = usize::from(k) + 1;
    if count == n {
        bump(&inner.counters.stripes_written, 1);
        return Ok(record);
    }
    if count >= needed {
        let missing: Vec<usize> = (0..n).filter(|&i| !durable[i]).collect();
        tracing::warn!(
            stripe = %id, durable = count, total = n, ?missing,
            "stripe written with missing fragments; they await repair"
        );
        bump(&inner.counters.stripes_written, 1);
        bump(&inner.counters.stripes_under_replicated, 1);
        bump(&inner.counters.fragments_missing, (n - count) as u64);
        return Ok(record);
    }
    // Not enough: remove what was written (best effort).
    let written: Vec<_> = (0..n)
        .filter(|&i| durable[i])
        .map(|i| {
            let index = u8::try_from(i).unwrap_or(u8::MAX);
            (FragmentId { stripe: id, index }, record.placement[i])
        })
        .collect();
    let deleted = plane.delete_fragments(written).await;
    tracing::warn!(stripe = %id, durable = count, deleted, "stripe write failed");
    Err(DataError::NotEnoughDurable {
        stripe: id,
        durable: count,
        total: n,
        needed,
        last_failure,
    })
}

/// Plans a fresh stripe away from suspect nodes; if that is impossible (too few nodes
/// left), on the whole map (a suspect may well be fine again).
fn plan(
    map: &ClusterMap,
    k: u8,
    m: u8,
    id: StripeId,
    frag_len: u64,
    suspects: &BTreeSet<NodeId>,
) -> Result<Placement, DataError> {
    if !suspects.is_empty() {
        let view = placement::view_without(map, suspects);
        if let Ok(p) = placement::plan_stripe(&view, k, m, id, frag_len) {
            return Ok(p);
        }
    }
    placement::plan_stripe(map, k, m, id, frag_len)
        .map_err(|error| DataError::Placement { stripe: id, error })
}
