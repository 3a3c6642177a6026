//! The chunked snapshot transfer without a network: the receiver's state machine (order,
//! votes, replacement, length, digest, limits, idle expiry) and the sender's loop driven
//! straight into a receiver. The end-to-end transfer over gRPC is in `group_host_test`.

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use common::env::Instant;
use common::ids::GroupId;
use md5::{Digest, Md5};
use openraft::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::raft::SnapshotResponse;

use crate::snapshot_receiver::{
    IncomingChunk, Received, SnapshotLimits, SnapshotReceiveError, SnapshotReceiveStats,
    SnapshotReceiver,
};
use crate::snapshot_transfer::{
    send_snapshot, SnapshotChunkReply, SnapshotSendError, SnapshotSendPlan, SNAPSHOT_BYTES_MAX,
};
use crate::store_test::TestConfig;

type C = TestConfig;

const G: GroupId = GroupId(7);

/// Runs `f` in the runtime of the build (madsim's `Instant` needs its runtime).
fn run<F: Future<Output = ()>>(f: F) {
    common::env::BlockingRuntime::new(1).unwrap().block_on(f);
}

fn now() -> Instant {
    common::env::Clock::new().now()
}

fn vote(term: u64, node: u64) -> VoteOf<C> {
    VoteOf::<C>::new_committed(term, node)
}

fn meta(index: u64) -> SnapshotMetaOf<C> {
    SnapshotMetaOf::<C> {
        last_log_id: Some(openraft::testing::log_id::<C>(1, 1, index)),
        last_membership: Default::default(),
    }
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn md5(b: &[u8]) -> Vec<u8> {
    Md5::digest(b).to_vec()
}

/// A transfer of `bytes` cut into `size`-byte chunks, as a sender builds them.
struct Plan {
    id: u64,
    vote: VoteOf<C>,
    meta: SnapshotMetaOf<C>,
    bytes: Vec<u8>,
    size: usize,
    digest: Vec<u8>,
}

impl Plan {
    fn new(id: u64, term: u64, bytes: Vec<u8>, size: usize) -> Self {
        let digest = md5(&bytes);
        Self {
            id,
            vote: vote(term, 1),
            meta: meta(10),
            bytes,
            size,
            digest,
        }
    }

    fn count(&self) -> usize {
        self.bytes.len().div_ceil(self.size).max(1)
    }

    /// Chunk `i` (0-based).
    fn chunk(&self, i: usize) -> IncomingChunk<'_, C> {
        let start = (i * self.size).min(self.bytes.len());
        let end = (start + self.size).min(self.bytes.len());
        let done = i + 1 == self.count();
        IncomingChunk {
            group: G,
            transfer_id: self.id,
            vote: self.vote,
            meta: self.meta.clone(),
            total_len: self.bytes.len() as u64,
            offset: start as u64,
            data: &self.bytes[start..end],
            done,
            digest: if done { &self.digest } else { &[] },
        }
    }
}

fn accepted(r: Result<Received<C>, SnapshotReceiveError>) -> u64 {
    match r {
        Ok(Received::Accepted { next_offset }) => next_offset,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

fn complete(r: Result<Received<C>, SnapshotReceiveError>) -> (VoteOf<C>, SnapshotOf<C, Vec<u8>>) {
    match r {
        Ok(Received::Complete { vote, snapshot }) => (vote, snapshot),
        other => panic!("expected Complete, got {other:?}"),
    }
}

fn refused(r: Result<Received<C>, SnapshotReceiveError>) -> SnapshotReceiveError {
    match r {
        Err(e) => e,
        Ok(other) => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn chunks_in_order_are_assembled_and_checked() {
    run(async {
        let mut rx = SnapshotReceiver::<C>::default();
        let local = vote(3, 1);
        let p = Plan::new(1, 3, data(1000), 7);
        assert_eq!(p.count(), 143);
        for i in 0..p.count() - 1 {
            let next = accepted(rx.receive(now(), &local, p.chunk(i)));
            assert_eq!(next, ((i + 1) * 7) as u64);
            assert_eq!(rx.in_progress(G), Some((1, next)));
        }
        let (v, snap) = complete(rx.receive(now(), &local, p.chunk(p.count() - 1)));
        assert_eq!(v, p.vote);
        assert_eq!(snap.meta, p.meta);
        assert_eq!(snap.snapshot, p.bytes);
        assert_eq!(rx.in_progress(G), None, "a completed transfer is gone");
        assert_eq!(
            rx.stats(),
            SnapshotReceiveStats {
                chunks_accepted: 143,
                chunks_refused: 0,
                snapshots_completed: 1,
            }
        );
    });
}

#[test]
fn an_empty_snapshot_is_one_final_chunk() {
    run(async {
        let mut rx = SnapshotReceiver::<C>::default();
        let p = Plan::new(1, 3, Vec::new(), 4);
        let (_, snap) = complete(rx.receive(now(), &vote(3, 1), p.chunk(0)));
        assert!(snap.snapshot.is_empty());
    });
}

#[test]
fn wrong_or_duplicate_offsets_are_refused_and_the_transfer_survives() {
    run(async {
        let mut rx = SnapshotReceiver::<C>::default();
        let local = vote(3, 1);
        let p = Plan::new(9, 3, data(100), 10);
        accepted(rx.receive(now(), &local, p.chunk(0)));
        accepted(rx.receive(now(), &local, p.chunk(1)));
        // Skipping ahead.
        assert_eq!(
            refused(rx.receive(now(), &local, p.chunk(3))),
            SnapshotReceiveError::OutOfOrder {
                transfer_id: 9,
                expected: 20,
                got: 30
            }
        );
        // A duplicate of the last chunk, and of the first.
        assert!(matches!(
            refused(rx.receive(now(), &local, p.chunk(1))),
            SnapshotReceiveError::OutOfOrder {
                expected: 20,
                got: 10,
                ..
            }
        ));
        assert!(matches!(
            refused(rx.receive(now(), &local, p.chunk(0))),
            SnapshotReceiveError::OutOfOrder {
                expected: 20,
                got: 0,
                ..
            }
        ));
        assert_eq!(rx.in_progress(G), Some((9, 20)));
        for i in 2..9 {
            accepted(rx.receive(now(), &local, p.chunk(i)));
        }
        let (_, snap) = complete(rx.receive(now(), &local, p.chunk(9)));
        assert_eq!(snap.snapshot, p.bytes, "stray chunks did not corrupt it");
        assert_eq!(rx.stats().chunks_refused, 3);
    });
}

#[test]
fn a_chunk_of_no_transfer_in_progress_is_refused() {
    run(async {
        let mut rx = SnapshotReceiver::<C>::default();
        let p = Plan::new(4, 3, data(50), 10);
        assert_eq!(
            refused(rx.receive(now(), &vote(3, 1), p.chunk(2))),
            SnapshotReceiveError::NoTransfer {
                transfer_id: 4,
                offset: 20
            }
        );
        assert_eq!(rx.in_progress(G), None);
    });
}

#[test]
fn a_stale_vote_is_refused_and_drops_a_stale_partial_transfer() {
    run(async {
        let mut rx = SnapshotReceiver::<C>::default();
        let old = Plan::new(1, 3, data(100), 10);
        accepted(rx.receive(now(), &vote(3, 1), old.chunk(0)));
        // The node has since voted in term 5: the term-3 leader is deposed.
        let local = vote(5, 1);
        let e = refused(rx.receive(now(), &local, old.chunk(1)));
        assert!(
            matches!(e, SnapshotReceiveError::StaleVote { .. }),
            "got {e:?}"
        );
        assert_eq!(
            rx.in_progress(G),
            None,
            "the stale partial transfer is gone"
        );
        // A new transfer from a stale leader cannot start either.
        let e = refused(rx.receive(now(), &local, Plan::new(2, 4, data(10), 10).chunk(0)));
        assert!(matches!(e, SnapshotReceiveError::StaleVote { .. }));
        // The current leader's can.
        let p = Plan::new(3, 5, data(10), 10);
        complete(rx.receive(now(), &local, p.chunk(0)));
        // Votes are ordered by (term, node id): a lower one in the same term is stale too.
        let mut p = Plan::new(4, 5, data(10), 10);
        p.vote = vote(5, 0);
        assert!(matches!(
            refused(rx.receive(now(), &local, p.chunk(0))),
            SnapshotReceiveError::StaleVote { .. }
        ));
    });
}

#[test]
fn a_new_transfer_replaces_a_partial_one_unless_its_vote_is_lower() {
    run(async {
        let mut rx = SnapshotReceiver::<C>::default();
        let local = vote(3, 1);
        let first = Plan::new(1, 4, data(100), 10);
        for i in 0..3 {
            accepted(rx.receive(now(), &local, first.chunk(i)));
        }
        // A lower-voted sender cannot take over the partial transfer.
        let lower = Plan::new(2, 3, data(100), 10);
        assert!(matches!(
            refused(rx.receive(now(), &local, lower.chunk(0))),
            SnapshotReceiveError::Superseded { transfer_id: 2, .. }
        ));
        assert_eq!(rx.in_progress(G), Some((1, 30)));
        // The same leader retrying (new id) replaces it; so would a higher vote.
        let mut retry = Plan::new(3, 4, data(120), 10);
        retry.meta = meta(12);
        accepted(rx.receive(now(), &local, retry.chunk(0)));
        assert_eq!(rx.in_progress(G), Some((3, 10)));
        // The replaced transfer's chunks are now refused.
        assert_eq!(
            refused(rx.receive(now(), &local, first.chunk(3))),
            SnapshotReceiveError::NoTransfer {
                transfer_id: 1,
                offset: 30
            }
        );
        let higher = Plan::new(4, 6, data(80), 10);
        accepted(rx.receive(now(), &local, higher.chunk(0)));
        assert_eq!(rx.in_progress(G), Some((4, 10)));
        for i in 1..7 {
            accepted(rx.receive(now(), &local, higher.chunk(i)));
        }
        let (v, snap) = complete(rx.receive(now(), &local, higher.chunk(7)));
        assert_eq!((v, snap.snapshot), (vote(6, 1), data(80)));
        // Transfers of other groups are independent.
        let mut other = Plan::new(5, 6, data(30), 10);
        accepted(rx.receive(now(), &local, other.chunk(0)));
        other.id = 6;
        let mut c = other.chunk(0);
        c.group = GroupId(8);
        accepted(rx.receive(now(), &local, c));
        assert_eq!(rx.in_progress(G), Some((5, 10)));
        assert_eq!(rx.in_progress(GroupId(8)), Some((6, 10)));
    });
}

#[test]
fn a_changed_header_mid_transfer_is_refused() {
    run(async {
        let mut rx = SnapshotReceiver::<C>::default();
        let local = vote(3, 1);
        let p = Plan::new(1, 3, data(40), 10);
        accepted(rx.receive(now(), &local, p.chunk(0)));
        let mut c = p.chunk(1);
        c.meta = meta(11);
        assert_eq!(
            refused(rx.receive(now(), &local, c)),
            SnapshotReceiveError::HeaderChanged { transfer_id: 1 }
        );
        let mut c = p.chunk(1);
        c.total_len = 41;
        assert_eq!(
            refused(rx.receive(now(), &local, c)),
            SnapshotReceiveError::HeaderChanged { transfer_id: 1 }
        );
        let mut c = p.chunk(1);
        c.vote = vote(4, 1);
        assert_eq!(
            refused(rx.receive(now(), &local, c)),
            SnapshotReceiveError::HeaderChanged { transfer_id: 1 }
        );
        accepted(rx.receive(now(), &local, p.chunk(1)));
    });
}

#[test]
fn length_mismatches_are_refused() {
    run(async {
        let local = vote(3, 1);
        // Done before the declared length.
        let mut rx = SnapshotReceiver::<C>::default();
        let p = Plan::new(1, 3, data(100), 10);
        for i in 0..4 {
            accepted(rx.receive(now(), &local, p.chunk(i)));
        }
        let mut c = p.chunk(4);
        c.done = true;
        c.digest = &p.digest;
        assert_eq!(
            refused(rx.receive(now(), &local, c)),
            SnapshotReceiveError::LengthMismatch {
                transfer_id: 1,
                declared: 100,
                received: 50
            }
        );
        assert_eq!(rx.in_progress(G), None, "a broken transfer is dropped");

        // More bytes than declared.
        let mut rx = SnapshotReceiver::<C>::default();
        let p = Plan::new(2, 3, data(100), 60);
        accepted(rx.receive(now(), &local, p.chunk(0)));
        let mut c = p.chunk(1);
        let long = data(60);
        c.data = &long;
        assert_eq!(
            refused(rx.receive(now(), &local, c)),
            SnapshotReceiveError::Overrun {
                transfer_id: 2,
                declared: 100,
                end: 120
            }
        );
        assert_eq!(rx.in_progress(G), None);
    });
}

#[test]
fn checksum_mismatches_are_refused() {
    run(async {
        let local = vote(3, 1);
        // A flipped bit in one chunk.
        let mut rx = SnapshotReceiver::<C>::default();
        let p = Plan::new(1, 3, data(30), 10);
        let mut bad = p.bytes[10..20].to_vec();
        bad[3] ^= 0x10;
        accepted(rx.receive(now(), &local, p.chunk(0)));
        let mut c = p.chunk(1);
        c.data = &bad;
        accepted(rx.receive(now(), &local, c));
        let e = refused(rx.receive(now(), &local, p.chunk(2)));
        assert!(
            matches!(
                e,
                SnapshotReceiveError::ChecksumMismatch { transfer_id: 1, .. }
            ),
            "got {e:?}"
        );
        assert_eq!(rx.in_progress(G), None);

        // A missing digest.
        let mut rx = SnapshotReceiver::<C>::default();
        let p = Plan::new(2, 3, data(5), 10);
        let mut c = p.chunk(0);
        c.digest = &[];
        assert!(matches!(
            refused(rx.receive(now(), &local, c)),
            SnapshotReceiveError::ChecksumMismatch { transfer_id: 2, .. }
        ));
    });
}

#[test]
fn an_oversized_declaration_is_refused_before_buffering() {
    run(async {
        let local = vote(3, 1);
        let mut rx = SnapshotReceiver::<C>::new(SnapshotLimits {
            bytes_max: 1000,
            ..SnapshotLimits::default()
        });
        let ok = Plan::new(1, 3, data(1000), 500);
        accepted(rx.receive(now(), &local, ok.chunk(0)));
        let big = Plan::new(2, 3, data(1001), 500);
        assert_eq!(
            refused(rx.receive(now(), &local, big.chunk(0))),
            SnapshotReceiveError::TooLarge {
                declared: 1001,
                max: 1000
            }
        );
        assert_eq!(rx.in_progress(G), Some((1, 500)), "the good one is kept");

        // The default limit, with a declaration only (no bytes behind it).
        let mut rx = SnapshotReceiver::<C>::default();
        let p = Plan::new(3, 3, data(10), 10);
        let mut c = p.chunk(0);
        c.total_len = SNAPSHOT_BYTES_MAX + 1;
        assert!(matches!(
            refused(rx.receive(now(), &local, c)),
            SnapshotReceiveError::TooLarge { .. }
        ));
        assert_eq!(rx.in_progress(G), None);
    });
}

#[test]
fn an_idle_partial_transfer_expires() {
    run(async {
        let limits = SnapshotLimits {
            idle_timeout: Duration::from_secs(5),
            ..SnapshotLimits::default()
        };
        let mut rx = SnapshotReceiver::<C>::new(limits);
        let local = vote(3, 1);
        let p = Plan::new(1, 3, data(30), 10);
        let t0 = now();
        accepted(rx.receive(t0, &local, p.chunk(0)));
        accepted(rx.receive(t0 + Duration::from_secs(4), &local, p.chunk(1)));
        assert_eq!(
            refused(rx.receive(t0 + Duration::from_secs(9), &local, p.chunk(2))),
            SnapshotReceiveError::NoTransfer {
                transfer_id: 1,
                offset: 20
            }
        );
    });
}

fn plan(chunk_bytes: usize) -> SnapshotSendPlan {
    SnapshotSendPlan {
        group_id: G.0,
        cluster_id: "c".into(),
        transfer_id: 77,
        chunk_bytes,
        chunk_ttl: Duration::from_secs(1),
    }
}

/// The sender's loop straight into a receiver: the chunks it cuts are the ones the
/// receiver accepts, and the final answer is the receiver's.
#[test]
fn the_sender_cuts_and_the_receiver_reassembles() {
    run(async {
        for (len, chunk) in [(1000usize, 64usize), (64, 64), (65, 64), (0, 64), (10, 0)] {
            let rx = RefCell::new(SnapshotReceiver::<C>::default());
            let sent = RefCell::new(Vec::new());
            let local = vote(3, 1);
            let snapshot = SnapshotOf::<C, Vec<u8>> {
                meta: meta(10),
                snapshot: data(len),
            };
            let resp = send_snapshot::<C, _, _>(plan(chunk), vote(3, 1), snapshot, |c, _ttl| {
                sent.borrow_mut().push((c.offset, c.data.len(), c.done));
                let (v, m): (VoteOf<C>, SnapshotMetaOf<C>) =
                    crate::log_store::decode(&c.header).unwrap();
                assert_eq!((c.group_id, c.transfer_id), (G.0, 77));
                let r = rx.borrow_mut().receive(
                    now(),
                    &local,
                    IncomingChunk {
                        group: GroupId(c.group_id),
                        transfer_id: c.transfer_id,
                        vote: v,
                        meta: m,
                        total_len: c.total_len,
                        offset: c.offset,
                        data: &c.data,
                        done: c.done,
                        digest: &c.digest,
                    },
                );
                let reply = match r {
                    Ok(Received::Accepted { next_offset }) => {
                        SnapshotChunkReply::Accepted { next_offset }
                    }
                    Ok(Received::Complete { snapshot, .. }) => {
                        assert_eq!(snapshot.snapshot, data(len));
                        SnapshotChunkReply::Done(SnapshotResponse::new(vote(3, 1)))
                    }
                    Err(e) => SnapshotChunkReply::Rejected(e),
                };
                std::future::ready(Ok(reply))
            })
            .await
            .unwrap();
            assert_eq!(resp.vote, vote(3, 1));
            let sent = sent.into_inner();
            let per = chunk.max(1);
            assert_eq!(
                sent.len(),
                len.div_ceil(per).max(1),
                "len {len} chunk {chunk}"
            );
            assert!(sent.iter().all(|(_, n, _)| *n <= per));
            assert!(sent.last().unwrap().2, "the last chunk is done");
            assert_eq!(rx.borrow().stats().snapshots_completed, 1);
        }
    });
}

#[test]
fn the_sender_reports_refusals_stale_votes_and_transport_errors() {
    run(async {
        let snap = || SnapshotOf::<C, Vec<u8>> {
            meta: meta(10),
            snapshot: data(100),
        };
        // A refused chunk fails the attempt, naming the offset.
        let r = send_snapshot::<C, _, _>(plan(10), vote(3, 1), snap(), |c, _| {
            std::future::ready(Ok(if c.offset < 30 {
                SnapshotChunkReply::Accepted {
                    next_offset: c.offset + 10,
                }
            } else {
                SnapshotChunkReply::Rejected(SnapshotReceiveError::NoTransfer {
                    transfer_id: 77,
                    offset: c.offset,
                })
            }))
        })
        .await;
        assert!(
            matches!(r, Err(SnapshotSendError::Rejected { offset: 30, .. })),
            "{r:?}"
        );
        // A receiver with a newer vote stops the transfer; its vote is the answer.
        let r = send_snapshot::<C, _, _>(plan(10), vote(3, 1), snap(), |_, _| {
            std::future::ready(Ok(SnapshotChunkReply::StaleVote(vote(5, 2))))
        })
        .await
        .unwrap();
        assert_eq!(r.vote, vote(5, 2));
        // A wrong next offset is a protocol error, not silently skipped data.
        let r = send_snapshot::<C, _, _>(plan(10), vote(3, 1), snap(), |_, _| {
            std::future::ready(Ok(SnapshotChunkReply::Accepted { next_offset: 50 }))
        })
        .await;
        assert!(
            matches!(r, Err(SnapshotSendError::Protocol { offset: 0, .. })),
            "{r:?}"
        );
        // A transport failure.
        let r = send_snapshot::<C, _, _>(plan(10), vote(3, 1), snap(), |_, _| {
            std::future::ready(Err::<SnapshotChunkReply<C>, _>("down".to_string()))
        })
        .await;
        assert!(
            matches!(r, Err(SnapshotSendError::Transport { offset: 0, .. })),
            "{r:?}"
        );
    });
}

/// The final chunk's deadline grows with the snapshot (install time).
#[test]
fn the_last_chunk_gets_the_install_time() {
    run(async {
        let ttls = RefCell::new(Vec::new());
        let snapshot = SnapshotOf::<C, Vec<u8>> {
            meta: meta(10),
            snapshot: data(30),
        };
        let _ = send_snapshot::<C, _, _>(plan(10), vote(3, 1), snapshot, |c, ttl| {
            ttls.borrow_mut().push(ttl);
            std::future::ready(Ok(if c.done {
                SnapshotChunkReply::Done(SnapshotResponse::new(vote(3, 1)))
            } else {
                SnapshotChunkReply::Accepted {
                    next_offset: c.offset + 10,
                }
            }))
        })
        .await
        .unwrap();
        let ttls = ttls.into_inner();
        assert_eq!(ttls[..2], [Duration::from_secs(1); 2]);
        assert_eq!(
            ttls[2],
            crate::snapshot_transfer::install_ttl(Duration::from_secs(1), 30)
        );
        assert!(ttls[2] >= Duration::from_secs(11));
    });
}
