//! The GC property, checked after every command of random histories: **the GC never
//! deletes a fragment that a committed version or an open upload's part references, and
//! every fragment that stops being referenced is queued exactly once.**
//!
//! Histories run on the real state machine ([`Harness`]) over a tiny key space in a
//! versioned, an unversioned and a suspended bucket: puts (plain and conditional),
//! deletes, deletes of a version, multipart create / record part (re-recording a part
//! number replaces the part) / complete / abort, repair's `ReplacePlacement` (to a fresh
//! node, back to a location the fragment had before, or with a stale expected placement:
//! a lost compare-and-set), a GC worker that takes entries and acknowledges them later
//! (it deletes their fragments in between), and *delayed duplicates* of earlier
//! commands (a client or proposer retry whose first attempt committed; Raft may commit
//! both, with other commands in between).
//!
//! A model tracks what the worker holds and what it has deleted. After every step:
//! - no fragment in the queue, nor in the entries the worker holds, is referenced;
//! - no referenced fragment was deleted by the worker (unless repair wrote it again
//!   there since: a `ReplacePlacement` moving it back after the ack);
//! - the queue holds no fragment twice;
//! - every fragment referenced before the step and not after it was queued by the step
//!   (nothing leaks), and everything the step queued was referenced before it;
//! - entries leave the queue only through an acknowledgement.

use std::collections::{BTreeMap, BTreeSet};

use common::cluster::FragmentLocation;
use common::ids::{DiskId, NodeId, StripeId};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::test_support::*;
use super::workload::placement_of;
use super::*;

type Frag = (StripeId, u8, FragmentLocation);

const BUCKETS: [(&str, Versioning); 3] = [
    ("ver", Versioning::Enabled),
    ("unv", Versioning::Unversioned),
    ("sus", Versioning::Enabled),
];
const KEYS: [&str; 2] = ["a", "b"];

#[derive(Clone, Debug)]
enum Op {
    /// 0 stripes: an inline body. `pre`: 0 none, 1 KeyAbsent, 2 If-Match the current
    /// ETag, 3 the current version id, 4 a stale version id.
    Put {
        bucket: usize,
        key: usize,
        stripes: u8,
        pre: u8,
    },
    Delete {
        bucket: usize,
        key: usize,
    },
    DeleteVersion {
        bucket: usize,
        key: usize,
        pick: usize,
    },
    /// Versioning of the "sus" bucket: Suspended or Enabled.
    Suspend(bool),
    CreateUpload {
        bucket: usize,
        key: usize,
    },
    /// Record part `part` (1..=3) of the `upload`-th open upload; a number already
    /// recorded replaces that part.
    RecordPart {
        upload: usize,
        part: u32,
        stripes: u8,
    },
    Complete {
        upload: usize,
        mask: u8,
    },
    Abort {
        upload: usize,
    },
    /// Repair moves fragment `frag` of the `pick`-th referenced stripe: `to` 0 a fresh
    /// node, 1 a location this fragment had before (maybe still queued, maybe deleted),
    /// 2 another fragment's current location of the same stripe. `stale`: the expected
    /// placement is out of date (the CAS loses).
    Replace {
        pick: usize,
        frag: u8,
        to: u8,
        stale: bool,
    },
    /// The GC worker takes up to `n` entries it does not hold yet (oldest first).
    GcTake {
        n: usize,
    },
    /// The worker has deleted the fragments of the first `n` entries it holds and
    /// acknowledges them (`n` = 0: it takes the whole queue, deletes and acknowledges
    /// everything).
    GcAck {
        n: usize,
    },
    /// Apply the `back`-th most recent accepted command again: a delayed duplicate.
    Retry {
        back: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let bucket = 0..BUCKETS.len();
    let key = 0..KEYS.len();
    prop_oneof![
        6 => (bucket.clone(), key.clone(), 0u8..3, 0u8..5)
            .prop_map(|(bucket, key, stripes, pre)| Op::Put { bucket, key, stripes, pre }),
        2 => (bucket.clone(), key.clone()).prop_map(|(bucket, key)| Op::Delete { bucket, key }),
        2 => (bucket.clone(), key.clone(), 0usize..4)
            .prop_map(|(bucket, key, pick)| Op::DeleteVersion { bucket, key, pick }),
        1 => any::<bool>().prop_map(Op::Suspend),
        2 => (bucket, key).prop_map(|(bucket, key)| Op::CreateUpload { bucket, key }),
        4 => (0usize..3, 1u32..4, 1u8..3)
            .prop_map(|(upload, part, stripes)| Op::RecordPart { upload, part, stripes }),
        2 => (0usize..3, any::<u8>()).prop_map(|(upload, mask)| Op::Complete { upload, mask }),
        1 => (0usize..3).prop_map(|upload| Op::Abort { upload }),
        4 => (0usize..8, 0u8..3, 0u8..3, prop::bool::weighted(0.2))
            .prop_map(|(pick, frag, to, stale)| Op::Replace { pick, frag, to, stale }),
        3 => (1usize..4).prop_map(|n| Op::GcTake { n }),
        3 => (0usize..4).prop_map(|n| Op::GcAck { n }),
        4 => (0usize..10).prop_map(|back| Op::Retry { back }),
    ]
}

struct Model {
    h: Harness,
    step: usize,
    next_id: u128,
    next_node: u64,
    /// Every accepted command, for retries.
    accepted: Vec<Command>,
    /// The history so far, for failure messages.
    history: Vec<String>,
    /// Entries the worker took and has not acknowledged.
    held: Vec<GcEntry>,
    /// Fragments the worker deleted (acknowledged entries).
    deleted: BTreeSet<Frag>,
    /// Every location each fragment `(stripe, index)` ever had.
    seen_locations: BTreeMap<(StripeId, u8), BTreeSet<FragmentLocation>>,
}

fn all_queued(h: &Harness) -> Vec<GcEntry> {
    gc_take(&h.read(), None, usize::MAX).expect("gc_take")
}

impl Model {
    fn new() -> Self {
        let mut h = Harness::new();
        // The per-command invariant checker of the other suites also asserts GC facts;
        // this suite makes its own, more detailed checks (and runs faster without it).
        h.check = false;
        for (name, versioning) in BUCKETS {
            h.create_bucket(name, versioning);
        }
        Model {
            h,
            step: 0,
            next_id: 0,
            next_node: 1_000_000,
            accepted: Vec::new(),
            history: Vec::new(),
            held: Vec::new(),
            deleted: BTreeSet::new(),
            seen_locations: BTreeMap::new(),
        }
    }

    fn fresh(&mut self) -> u128 {
        self.next_id += 1;
        self.next_id
    }

    fn stripes(&mut self, n: u8, data_len: u64) -> Vec<StripeRecord> {
        (0..n).map(|_| stripe(self.fresh(), data_len)).collect()
    }

    fn uploads(&self) -> Vec<MultipartUpload> {
        let params = ListUploadsParams {
            max_uploads: 1000,
            ..Default::default()
        };
        let mut out = Vec::new();
        for (name, _) in BUCKETS {
            if let Ok(page) = list_multipart_uploads(&self.h.read(), name, &params) {
                out.extend(page.uploads);
            }
        }
        out
    }

    fn current(&self, bucket: &str, key: &str) -> Option<VersionRecord> {
        match head_object(&self.h.read(), bucket, key).ok()? {
            CurrentVersion::Object(v) | CurrentVersion::DeleteMarker(v) => Some(v),
            _ => None,
        }
    }

    /// The command `op` stands for in the current state (`None`: nothing to do).
    fn command(&mut self, op: &Op) -> Option<Command> {
        let n = self.step;
        Some(match op {
            Op::Put {
                bucket,
                key,
                stripes,
                pre,
            } => {
                let (bucket, key) = (BUCKETS[*bucket].0, KEYS[*key]);
                let body = if *stripes == 0 {
                    ObjectBody::Inline(vec![n as u8])
                } else {
                    ObjectBody::Stripes {
                        codec: CODEC,
                        stripes: self.stripes(*stripes, 10),
                    }
                };
                let mut p = put(bucket, key, &format!("v{n}"), body);
                p.created_ms = 1000 + n as u64;
                let current = self.current(bucket, key);
                p.preconditions = match (pre, current) {
                    (1, _) => vec![Precondition::KeyAbsent],
                    (2, Some(c)) => vec![Precondition::CurrentEtagEquals(c.etag)],
                    (3, Some(c)) => vec![Precondition::CurrentVersionEquals(c.version_id)],
                    (4, _) => vec![Precondition::CurrentVersionEquals("stale".to_owned())],
                    _ => Vec::new(),
                };
                Command::PutObject(p)
            }
            Op::Delete { bucket, key } => Command::DeleteObject(delete(
                BUCKETS[*bucket].0,
                KEYS[*key],
                None,
                &format!("m{n}"),
            )),
            Op::DeleteVersion { bucket, key, pick } => {
                let (bucket, key) = (BUCKETS[*bucket].0, KEYS[*key]);
                let versions = self.h.versions_of(bucket, key);
                let vid = versions
                    .get(pick % versions.len().max(1))
                    .map_or("missing".to_owned(), |v| v.version_id.clone());
                Command::DeleteObject(delete(bucket, key, Some(&vid), "_"))
            }
            Op::Suspend(suspend) => Command::SetBucketVersioning {
                name: "sus".to_owned(),
                versioning: if *suspend {
                    Versioning::Suspended
                } else {
                    Versioning::Enabled
                },
            },
            Op::CreateUpload { bucket, key } => Command::CreateMultipartUpload(
                super::multipart_test::create(BUCKETS[*bucket].0, KEYS[*key], &format!("u{n}")),
            ),
            Op::RecordPart {
                upload,
                part,
                stripes,
            } => {
                let uploads = self.uploads();
                let u = uploads.get(upload % uploads.len().max(1))?.clone();
                let stripes = self.stripes(*stripes, 60);
                let size = stripes.iter().map(|s| s.data_len).sum();
                let etag = format!("{:032x}", self.fresh());
                Command::RecordPart(RecordPart {
                    bucket: u.bucket,
                    key: u.key,
                    upload_id: u.upload_id,
                    part_number: *part,
                    size,
                    etag,
                    checksums: BTreeMap::new(),
                    stripes,
                    created_ms: 7,
                })
            }
            Op::Complete { upload, mask } => {
                let uploads = self.uploads();
                let u = uploads.get(upload % uploads.len().max(1))?.clone();
                let parts = list_parts(&self.h.read(), &u.bucket, &u.key, &u.upload_id, 0, 1000)
                    .map(|p| p.parts)
                    .unwrap_or_default();
                let listed = parts
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << (i % 8)) != 0)
                    .map(|(_, p)| CompletedPart {
                        part_number: p.part_number,
                        etag: p.etag.clone(),
                    })
                    .collect();
                Command::CompleteMultipartUpload(CompleteMultipartUpload {
                    bucket: u.bucket,
                    key: u.key,
                    upload_id: u.upload_id,
                    parts: listed,
                    min_part_size: 50,
                    version_id: format!("c{n}"),
                    created_ms: 9,
                    checksums: BTreeMap::new(),
                    preconditions: Vec::new(),
                })
            }
            Op::Abort { upload } => {
                let uploads = self.uploads();
                let u = uploads.get(upload % uploads.len().max(1))?.clone();
                Command::AbortMultipartUpload(AbortMultipartUpload {
                    bucket: u.bucket,
                    key: u.key,
                    upload_id: u.upload_id,
                })
            }
            Op::Replace {
                pick,
                frag,
                to,
                stale,
            } => {
                let stripes: BTreeSet<StripeId> = referenced_fragments(&self.h.read())
                    .into_iter()
                    .map(|(s, _, _)| s)
                    .collect();
                let stripe = *stripes.iter().nth(pick % stripes.len().max(1))?;
                let expected = placement_of(&self.h, stripe);
                let slot = usize::from(*frag) % expected.len();
                let index = slot as u8;
                let target = match to {
                    1 => {
                        let before = self
                            .seen_locations
                            .get(&(stripe, index))
                            .and_then(|l| l.iter().find(|l| **l != expected[slot]).copied());
                        before
                    }
                    2 => Some(expected[(slot + 1) % expected.len()]),
                    _ => None,
                };
                let target = target.unwrap_or_else(|| {
                    self.next_node += 1;
                    FragmentLocation {
                        node: NodeId(self.next_node),
                        disk: DiskId(0),
                    }
                });
                let mut new = expected.clone();
                new[slot] = target;
                let mut expected = expected;
                if *stale {
                    expected.swap(0, 1);
                }
                Command::ReplacePlacement(ReplacePlacement {
                    stripe,
                    expected,
                    new,
                })
            }
            Op::GcTake { .. } | Op::GcAck { .. } => return None,
            Op::Retry { back } => {
                let i = self.accepted.len().checked_sub(1 + back % 10)?;
                let cmd = self.accepted[i].clone();
                // A duplicate may arrive at any time, even after the GC deleted the
                // fragments it carries: the tombstones (`sm_collected`) refuse it.
                cmd
            }
        })
    }

    /// Runs one step and checks the property.
    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.step += 1;
        let before_refs = referenced_fragments(&self.h.read());
        let before_queue = all_queued(&self.h);
        let mut acked: BTreeSet<GcId> = BTreeSet::new();
        match op {
            Op::GcTake { n } => {
                let held: BTreeSet<GcId> = self.held.iter().map(|e| e.id).collect();
                let take: Vec<GcEntry> = before_queue
                    .iter()
                    .filter(|e| !held.contains(&e.id))
                    .take(*n)
                    .cloned()
                    .collect();
                self.history.push(format!(
                    "{}: gc take {:?}",
                    self.step,
                    take.iter().map(|e| e.id).collect::<Vec<_>>()
                ));
                self.held.extend(take);
            }
            Op::GcAck { n } => {
                if *n == 0 {
                    // The worker catches up: it takes the whole queue first.
                    let held: BTreeSet<GcId> = self.held.iter().map(|e| e.id).collect();
                    let rest: Vec<GcEntry> = before_queue
                        .iter()
                        .filter(|e| !held.contains(&e.id))
                        .cloned()
                        .collect();
                    self.held.extend(rest);
                }
                let n = if *n == 0 { self.held.len() } else { *n };
                let done: Vec<GcEntry> = self.held.drain(..n.min(self.held.len())).collect();
                // The worker deleted these fragments from their data nodes.
                self.deleted.extend(queued_fragments(&done));
                acked = done.iter().map(|e| e.id).collect();
                let cmd = Command::GcAck {
                    ids: acked.iter().copied().collect(),
                    at_ms: 0,
                };
                let r = self.h.apply(&cmd);
                self.history
                    .push(format!("{}: gc ack {acked:?} -> {r}", self.step));
            }
            _ => {
                let Some(cmd) = self.command(op) else {
                    return Ok(());
                };
                let r = self.h.apply(&cmd);
                let accepted = !matches!(r, Response::Rejected(_));
                self.history
                    .push(format!("{}: {op:?} = {cmd:?} -> {r}", self.step));
                if accepted {
                    if let Command::ReplacePlacement(c) = &cmd {
                        // Repair wrote these fragments anew: what the worker deleted
                        // there before is not what they hold now.
                        for (i, (old, new)) in (0u8..).zip(c.expected.iter().zip(&c.new)) {
                            if old != new {
                                self.deleted.remove(&(c.stripe, i, *new));
                            }
                        }
                    }
                    self.accepted.push(cmd);
                }
            }
        }
        let refs = referenced_fragments(&self.h.read());
        for (s, i, loc) in &refs {
            self.seen_locations
                .entry((*s, *i))
                .or_default()
                .insert(*loc);
        }
        let queue = all_queued(&self.h);
        let queued = queued_fragments(&queue);
        let queued_set: BTreeSet<Frag> = queued.iter().copied().collect();
        let history = || self.history.join("\n");

        prop_assert_eq!(
            queued.len(),
            queued_set.len(),
            "a fragment is queued twice\n{}",
            history()
        );
        let bad: Vec<_> = refs.intersection(&queued_set).collect();
        prop_assert!(
            bad.is_empty(),
            "referenced fragments are queued for GC: {:?}\n{}",
            bad,
            history()
        );
        let held: BTreeSet<Frag> = queued_fragments(&self.held).into_iter().collect();
        let bad: Vec<_> = refs.intersection(&held).collect();
        prop_assert!(
            bad.is_empty(),
            "referenced fragments are being deleted by the GC worker: {:?}\n{}",
            bad,
            history()
        );
        let bad: Vec<_> = refs.intersection(&self.deleted).collect();
        prop_assert!(
            bad.is_empty(),
            "referenced fragments were deleted by the GC: {:?}\n{}",
            bad,
            history()
        );
        let before_ids: BTreeSet<GcId> = before_queue.iter().map(|e| e.id).collect();
        let new_entries: Vec<GcEntry> = queue
            .iter()
            .filter(|e| !before_ids.contains(&e.id))
            .cloned()
            .collect();
        let newly_queued: BTreeSet<Frag> = queued_fragments(&new_entries).into_iter().collect();
        let released: BTreeSet<Frag> = before_refs.difference(&refs).copied().collect();
        let leaked: Vec<_> = released.difference(&newly_queued).collect();
        prop_assert!(
            leaked.is_empty(),
            "fragments stopped being referenced without being queued: {:?}\n{}",
            leaked,
            history()
        );
        let spurious: Vec<_> = newly_queued.difference(&before_refs).collect();
        prop_assert!(
            spurious.is_empty(),
            "queued fragments that were not referenced: {:?}\n{}",
            spurious,
            history()
        );
        let ids: BTreeSet<GcId> = queue.iter().map(|e| e.id).collect();
        let gone: BTreeSet<GcId> = before_ids.difference(&ids).copied().collect();
        prop_assert!(
            gone.is_subset(&acked),
            "GC entries {:?} left the queue without an acknowledgement\n{}",
            gone,
            history()
        );
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn gc_never_deletes_a_referenced_fragment_and_nothing_leaks(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        let mut m = Model::new();
        for op in &ops {
            m.run(op)?;
        }
        // The store's own invariants hold at the end too.
        check_invariants(&m.h.read());
    }
}

/// Found by the property above: a retried write after repair moved one of its fragments
/// must answer as the first attempt did and keep the repaired placement (writing the
/// old one again referenced the old copy, queued or already deleted by the GC, and
/// leaked the repaired copy).
#[test]
fn a_retried_write_after_repair_keeps_the_repaired_placement() {
    for bucket in ["unv", "ver"] {
        let mut m = Model::new();
        let first = Command::PutObject(put(bucket, "k", "v1", striped(1, 1)));
        let r1 = m.h.apply(&first);
        assert!(matches!(r1, Response::Committed { .. }), "{r1:?}");
        let old = placement_of(&m.h, StripeId(1));
        let mut new = old.clone();
        new[0] = FragmentLocation {
            node: NodeId(777),
            disk: DiskId(0),
        };
        let moved = m.h.apply(&Command::ReplacePlacement(ReplacePlacement {
            stripe: StripeId(1),
            expected: old,
            new: new.clone(),
        }));
        assert_eq!(moved, Response::PlacementReplaced { moved: 1 });
        for ack in [false, true] {
            if ack {
                let ids = m.h.gc().iter().map(|e| e.id).collect();
                m.h.apply(&Command::GcAck { ids, at_ms: 0 });
            }
            assert_eq!(m.h.apply(&first), r1, "{bucket}, acked {ack}");
            assert_eq!(
                placement_of(&m.h, StripeId(1)),
                new,
                "{bucket}, acked {ack}"
            );
        }
    }
    // The same for an uploaded part.
    let mut m = Model::new();
    m.h.apply(&Command::CreateMultipartUpload(
        super::multipart_test::create("unv", "k", "u1"),
    ));
    let part = Command::RecordPart(RecordPart {
        bucket: "unv".to_owned(),
        key: "k".to_owned(),
        upload_id: "u1".to_owned(),
        part_number: 1,
        size: 60,
        etag: format!("{:032x}", 1),
        checksums: BTreeMap::new(),
        stripes: vec![stripe(5, 60)],
        created_ms: 7,
    });
    assert_eq!(m.h.apply(&part), Response::PartRecorded);
    let old = placement_of(&m.h, StripeId(5));
    let mut new = old.clone();
    new[2] = FragmentLocation {
        node: NodeId(778),
        disk: DiskId(0),
    };
    m.h.apply(&Command::ReplacePlacement(ReplacePlacement {
        stripe: StripeId(5),
        expected: old,
        new: new.clone(),
    }));
    assert_eq!(m.h.apply(&part), Response::PartRecorded);
    assert_eq!(placement_of(&m.h, StripeId(5)), new);
    assert_eq!(m.h.gc().len(), 1, "only the moved copy is queued");
}

/// Found by the property above: a delayed duplicate of a write whose stripes an
/// overwrite released (queued for GC) is refused instead of referencing them again.
#[test]
fn a_delayed_duplicate_of_a_released_write_is_refused() {
    let mut m = Model::new();
    let first = Command::PutObject(put("unv", "k", "v1", striped(1, 1)));
    m.h.apply(&first);
    m.h.apply(&Command::PutObject(put("unv", "k", "v2", striped(2, 1))));
    assert_eq!(m.h.gc_stripes(), vec![StripeId(1)]);
    assert_eq!(
        m.h.apply(&first),
        Response::Rejected(Reason::StripeInUse(StripeId(1)))
    );
    check_invariants(&m.h.read());
}

/// Even after the GC deleted the fragments and acknowledged the entry, a late duplicate
/// of the released write is refused (the `sm_collected` tombstone); tombstones older
/// than a day are pruned by a later acknowledgement, oldest first.
#[test]
fn a_duplicate_after_the_gc_collected_its_fragments_is_refused_until_pruned() {
    use crate::state_machine::apply::COLLECTED_RETENTION_MS;
    let mut m = Model::new();
    let first = Command::PutObject(put("unv", "k", "v1", striped(1, 1)));
    m.h.apply(&first);
    m.h.apply(&Command::PutObject(put("unv", "k", "v2", striped(2, 1))));
    let ids: Vec<GcId> = all_queued(&m.h).iter().map(|e| e.id).collect();
    let t0 = 1_000_000_000_000;
    assert_eq!(
        m.h.apply(&Command::GcAck { ids, at_ms: t0 }),
        Response::GcAcked { removed: 1 }
    );
    assert!(all_queued(&m.h).is_empty());
    assert_eq!(
        m.h.apply(&first),
        Response::Rejected(Reason::StripeInUse(StripeId(1)))
    );
    // A day later another acknowledgement prunes the old tombstone.
    m.h.apply(&Command::PutObject(put("unv", "k", "v3", striped(3, 1))));
    let ids: Vec<GcId> = all_queued(&m.h).iter().map(|e| e.id).collect();
    m.h.apply(&Command::GcAck {
        ids,
        at_ms: t0 + COLLECTED_RETENTION_MS + 1,
    });
    let dump = m.h.read();
    let collected =
        crate::state_machine::tables::open_read(&dump, crate::state_machine::tables::COLLECTED)
            .expect("open")
            .expect("table");
    let keys: Vec<StripeId> = crate::state_machine::tables::rows_in(&collected, &[], None)
        .expect("rows")
        .into_iter()
        .map(|(k, _)| StripeId::from_bytes(k[..16].try_into().expect("16 bytes")))
        .collect();
    assert_eq!(
        keys,
        vec![StripeId(2)],
        "stripe 1's tombstone pruned, 2's kept"
    );
    check_invariants(&m.h.read());
}
