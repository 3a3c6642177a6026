//! The streaming GET pipeline. A read is cut into per-stripe segments; each segment is a
//! task ([`read_segment`]) and up to `read_stripes_in_flight` of them run at once (the
//! one being streamed plus prefetched ones), results yielded in object order.
//!
//! A healthy segment reads only the byte ranges of the data fragments that cover it, in
//! parallel, and concatenates them: no decode. When a needed data fragment is missing,
//! corrupt, unreachable, on a suspect node, or slower than `hedge_after`, the segment
//! also reads whole fragments from other indexes (non-suspect data fragments first, then
//! parity, suspect nodes last) until `k` are in hand, decodes the stripe and slices it;
//! whichever path completes first serves the segment. Every fragment's length is checked
//! against the stripe record, every block checksum by the data node.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use common::cluster::ClusterMap;
use common::codec::{new_codec, ErasureCodec};
use common::env::JoinHandle;
use common::ids::FragmentId;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesUnordered, StreamExt};
use meta_raft::state_machine::{ObjectBody, StripeRecord};

use super::node_pool::{FragmentError, GetFragment};
use super::stats::bump;
use super::{DataError, DataPlane};

/// The bytes `[start, end)` of one stripe (stripe offsets).
struct Segment {
    stripe: StripeRecord,
    start: u64,
    end: u64,
}

pub(crate) fn read(
    plane: DataPlane,
    body: &ObjectBody,
    range: Range<u64>,
) -> BoxStream<'static, Result<Bytes, DataError>> {
    let len = body.data_len();
    if range.start > range.end || range.end > len {
        return error(DataError::InvalidRange {
            start: range.start,
            end: range.end,
            len,
        });
    }
    if range.start == range.end {
        return futures::stream::empty().boxed();
    }
    let params = match body {
        ObjectBody::Inline(bytes) => {
            // Both bounds are <= bytes.len(), checked above.
            let (a, b) = (range.start as usize, range.end as usize);
            let slice = Bytes::copy_from_slice(&bytes[a..b]);
            return futures::stream::once(async move { Ok(slice) }).boxed();
        }
        ObjectBody::Stripes { codec, .. } | ObjectBody::Multipart { codec, .. } => *codec,
    };
    let codec = match new_codec(params) {
        Ok(c) => c,
        Err(e) => return error(DataError::Codec(e.to_string())),
    };
    let mut segments = Vec::new();
    let mut offset = 0u64;
    for stripe in body.stripes() {
        let (s0, s1) = (offset, offset + stripe.data_len);
        offset = s1;
        let (a, b) = (range.start.max(s0), range.end.min(s1));
        if a < b {
            segments.push(Segment {
                stripe: stripe.clone(),
                start: a - s0,
                end: b - s0,
            });
        }
    }
    let depth = plane.inner.cfg.read_stripes_in_flight.max(1);
    let state = ReadState {
        plane,
        codec,
        segments: segments.into_iter(),
        pending: VecDeque::new(),
        ready: VecDeque::new(),
        done: false,
        depth,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(b) = st.ready.pop_front() {
                return Some((Ok(b), st));
            }
            if st.done {
                return None;
            }
            while st.pending.len() < st.depth {
                let Some(seg) = st.segments.next() else { break };
                let plane = st.plane.clone();
                let codec = Arc::clone(&st.codec);
                let handle = st.plane.inner.env.spawn("read-stripe", async move {
                    read_segment(plane, codec, seg).await
                });
                st.pending.push_back(AbortOnDrop(handle));
            }
            let next = st.pending.pop_front()?;
            match next.await {
                Ok(Ok(pieces)) => st.ready.extend(pieces),
                Ok(Err(e)) => {
                    st.done = true;
                    st.pending.clear();
                    return Some((Err(e), st));
                }
                Err(e) => {
                    st.done = true;
                    st.pending.clear();
                    return Some((Err(DataError::Task(e.to_string())), st));
                }
            }
        }
    })
    .boxed()
}

fn error(e: DataError) -> BoxStream<'static, Result<Bytes, DataError>> {
    futures::stream::once(async move { Err(e) }).boxed()
}

struct ReadState {
    plane: DataPlane,
    codec: Arc<dyn ErasureCodec>,
    segments: std::vec::IntoIter<Segment>,
    pending: VecDeque<AbortOnDrop<Result<Vec<Bytes>, DataError>>>,
    ready: VecDeque<Bytes>,
    done: bool,
    depth: usize,
}

/// A task handle that cancels the task when dropped (a client that goes away stops its
/// prefetches).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = <JoinHandle<T> as Future>::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The byte range of a data fragment that the segment needs.
    Range,
    /// A whole fragment, for decoding.
    Whole,
}

type Fetch = BoxFuture<'static, (Kind, usize, Result<Bytes, FragmentError>)>;

/// Reads one segment; returns its bytes as pieces in order.
async fn read_segment(
    plane: DataPlane,
    codec: Arc<dyn ErasureCodec>,
    seg: Segment,
) -> Result<Vec<Bytes>, DataError> {
    let inner = &plane.inner;
    let params = codec.params();
    let (k, n) = (params.data_fragments(), params.total_fragments());
    let stripe = &seg.stripe;
    let bad = |reason: String| DataError::BadRecord {
        stripe: stripe.id,
        reason,
    };
    if stripe.placement.len() != n {
        return Err(bad(format!(
            "{} fragment locations for a {}+{} stripe",
            stripe.placement.len(),
            params.k,
            params.m
        )));
    }
    let data_len = usize::try_from(stripe.data_len)
        .map_err(|_| bad(format!("data length {} too large", stripe.data_len)))?;
    let frag_len = codec.fragment_len(data_len) as u64;
    if frag_len == 0 || seg.end > stripe.data_len || seg.start >= seg.end {
        return Err(bad(format!(
            "segment {}..{} of a {} byte stripe",
            seg.start, seg.end, stripe.data_len
        )));
    }
    let map = inner.topology.cluster_map().await?;
    let suspects = inner.suspects.current();
    let suspect = |i: usize| suspects.contains(&stripe.placement[i].node);

    // Data fragments past the data are all padding: zeros, known without reading.
    let zeros: BTreeSet<usize> = (0..k)
        .filter(|&i| i as u64 * frag_len >= stripe.data_len)
        .collect();
    // (index, offset, length) of the data fragment ranges the segment covers.
    let first = seg.start / frag_len;
    let last = (seg.end - 1) / frag_len;
    let needed: Vec<(usize, u64, u64)> = (first..=last)
        .map(|i| {
            let base = i * frag_len;
            let off = seg.start.max(base) - base;
            let end = seg.end.min(base + frag_len) - base;
            (i as usize, off, end - off)
        })
        .collect();
    // The bytes a data fragment holds before its padding.
    let content = |i: usize| -> u64 {
        stripe
            .data_len
            .saturating_sub(i as u64 * frag_len)
            .min(frag_len)
    };

    let timeout = inner.cfg.fragment_read_timeout;
    let fetch = |kind: Kind, i: usize, off: u64, len: u64| -> Fetch {
        let plane = plane.clone();
        let map: Arc<ClusterMap> = Arc::clone(&map);
        let loc = stripe.placement[i];
        let id = FragmentId {
            stripe: stripe.id,
            index: u8::try_from(i).unwrap_or(u8::MAX),
        };
        Box::pin(async move {
            let r = match map.node(loc.node) {
                Some(node) => {
                    plane
                        .inner
                        .pool
                        .get(
                            node,
                            GetFragment {
                                id,
                                disk: loc.disk,
                                offset: off,
                                len,
                                fragment_len: frag_len,
                            },
                            timeout,
                        )
                        .await
                }
                None => Err(FragmentError::Unreachable(format!(
                    "node {} is not in the cluster map",
                    loc.node
                ))),
            };
            (kind, i, r)
        })
    };

    let mut pending: FuturesUnordered<Fetch> = FuturesUnordered::new();
    let mut parts: BTreeMap<usize, Bytes> = BTreeMap::new();
    let mut whole: BTreeMap<usize, Bytes> = BTreeMap::new();
    let mut failed: BTreeSet<usize> = BTreeSet::new();
    let mut range_pending: BTreeSet<usize> = BTreeSet::new();
    let mut whole_tried: BTreeSet<usize> = BTreeSet::new();
    let mut last_failure = String::from("none");
    let mut degraded = false;

    for &(i, off, len) in &needed {
        if suspect(i) {
            degraded = true;
        } else {
            range_pending.insert(i);
            pending.push(fetch(Kind::Range, i, off, len));
        }
    }

    // Launches whole-fragment reads until `k` are in hand or in flight.
    let launch_whole = |pending: &mut FuturesUnordered<Fetch>,
                        whole: &BTreeMap<usize, Bytes>,
                        failed: &BTreeSet<usize>,
                        range_pending: &BTreeSet<usize>,
                        whole_tried: &mut BTreeSet<usize>| {
        let outstanding = whole_tried
            .iter()
            .filter(|i| !whole.contains_key(i) && !failed.contains(i))
            .count();
        let mut have = whole.len() + zeros.len() + outstanding;
        // Non-suspect data, non-suspect parity, then fragments whose range read is
        // still running (slow), then suspects.
        let mut order: Vec<usize> = (0..n)
            .filter(|i| !suspect(*i) && !range_pending.contains(i))
            .collect();
        order.extend((0..n).filter(|i| !suspect(*i) && range_pending.contains(i)));
        order.extend((0..n).filter(|i| suspect(*i)));
        for i in order {
            if have >= k {
                break;
            }
            if zeros.contains(&i)
                || whole.contains_key(&i)
                || failed.contains(&i)
                || whole_tried.contains(&i)
            {
                continue;
            }
            whole_tried.insert(i);
            pending.push(fetch(Kind::Whole, i, 0, frag_len));
            have += 1;
        }
    };
    if degraded {
        launch_whole(
            &mut pending,
            &whole,
            &failed,
            &range_pending,
            &mut whole_tried,
        );
    }

    let hedge = inner.env.clock().sleep(inner.cfg.hedge_after);
    tokio::pin!(hedge);
    loop {
        if needed.iter().all(|(i, _, _)| parts.contains_key(i)) {
            bump(&inner.counters.stripes_read, 1);
            return Ok(needed
                .iter()
                .filter_map(|(i, _, _)| parts.remove(i))
                .collect());
        }
        if whole.len() + zeros.len() >= k {
            bump(&inner.counters.stripes_read, 1);
            bump(&inner.counters.degraded_reads, 1);
            return decode(&plane, &codec, stripe, frag_len, whole, &zeros, &seg).await;
        }
        if pending.is_empty() {
            if !degraded {
                degraded = true;
                launch_whole(
                    &mut pending,
                    &whole,
                    &failed,
                    &range_pending,
                    &mut whole_tried,
                );
                if !pending.is_empty() {
                    continue;
                }
            }
            return Err(DataError::NotEnoughReadable {
                stripe: stripe.id,
                readable: whole.len() + zeros.len(),
                needed: k,
                last_failure,
            });
        }
        let next = if degraded {
            pending.next().await
        } else {
            tokio::select! {
                biased;
                r = pending.next() => r,
                () = &mut hedge => {
                    degraded = true;
                    bump(&inner.counters.hedged_reads, 1);
                    tracing::debug!(stripe = %stripe.id, "data fragment slow; reading parity too");
                    launch_whole(&mut pending, &whole, &failed, &range_pending, &mut whole_tried);
                    continue;
                }
            }
        };
        let Some((kind, i, result)) = next else {
            continue;
        };
        if kind == Kind::Range {
            range_pending.remove(&i);
        }
        match result {
            Ok(bytes) => {
                match kind {
                    Kind::Range => {
                        let (off, len) = needed
                            .iter()
                            .find(|(j, _, _)| *j == i)
                            .map(|&(_, o, l)| (o, l))
                            .unwrap_or((0, 0));
                        if off == 0 && len == content(i) {
                            whole.insert(i, pad(&bytes, frag_len));
                        }
                        parts.insert(i, bytes);
                    }
                    Kind::Whole => {
                        // A whole data fragment also serves its range directly.
                        if let Some(&(_, off, len)) = needed.iter().find(|(j, _, _)| *j == i) {
                            parts
                                .entry(i)
                                .or_insert_with(|| bytes.slice(off as usize..(off + len) as usize));
                        }
                        whole.insert(i, bytes);
                    }
                }
            }
            Err(e) => {
                let node = stripe.placement[i].node;
                tracing::warn!(stripe = %stripe.id, index = i, %node, error = %e, "fragment read failed");
                bump(&inner.counters.fragment_read_failures, 1);
                if e.is_node_failure() {
                    inner.suspects.mark(node);
                }
                last_failure = format!("fragment {i} on node {node}: {e}");
                failed.insert(i);
                degraded = true;
                launch_whole(
                    &mut pending,
                    &whole,
                    &failed,
                    &range_pending,
                    &mut whole_tried,
                );
            }
        }
    }
}

/// `bytes` zero-padded to `len` (a data fragment's tail is padding).
fn pad(bytes: &Bytes, len: u64) -> Bytes {
    if bytes.len() as u64 >= len {
        return bytes.clone();
    }
    let mut b = BytesMut::with_capacity(len as usize);
    b.extend_from_slice(bytes);
    b.resize(len as usize, 0);
    b.freeze()
}

/// Rebuilds the stripe from `k` whole fragments (and known-zero ones) and slices the
/// segment out of it.
async fn decode(
    plane: &DataPlane,
    codec: &Arc<dyn ErasureCodec>,
    stripe: &StripeRecord,
    frag_len: u64,
    whole: BTreeMap<usize, Bytes>,
    zeros: &BTreeSet<usize>,
    seg: &Segment,
) -> Result<Vec<Bytes>, DataError> {
    let n = codec.params().total_fragments();
    let data_len = stripe.data_len as usize;
    let zero = if zeros.is_empty() {
        Bytes::new()
    } else {
        Bytes::from(vec![0u8; frag_len as usize])
    };
    let mut slots: Vec<Option<Bytes>> = vec![None; n];
    for (i, b) in whole {
        slots[i] = Some(b);
    }
    for &i in zeros {
        slots[i] = Some(zero.clone());
    }
    let codec = Arc::clone(codec);
    let id = stripe.id;
    let run = move || -> Result<Vec<u8>, DataError> {
        let refs: Vec<Option<&[u8]>> = slots.iter().map(|s| s.as_deref()).collect();
        codec
            .reconstruct(&refs, data_len)
            .map_err(|e| DataError::NotEnoughReadable {
                stripe: id,
                readable: refs.iter().flatten().count(),
                needed: codec.params().data_fragments(),
                last_failure: format!("decode failed: {e}"),
            })
    };
    let data = if data_len >= plane.inner.cfg.blocking_codec_bytes {
        plane
            .inner
            .env
            .spawn_blocking(run)
            .await
            .map_err(|e| DataError::Task(e.to_string()))??
    } else {
        run()?
    };
    if data.len() != data_len {
        return Err(DataError::BadRecord {
            stripe: id,
            reason: format!("decoded {} bytes, expected {data_len}", data.len()),
        });
    }
    Ok(vec![
        Bytes::from(data).slice(seg.start as usize..seg.end as usize)
    ])
}
