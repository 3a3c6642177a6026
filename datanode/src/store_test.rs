//! Durability property suite (ShardStore-style): random operation sequences with random
//! crashes run against `FragmentStore` on `SimDisk` and against a tiny reference model.
//!
//! Properties:
//! - a fragment acknowledged before a crash reads back identical after it;
//! - a write that was not acknowledged (power cut mid-protocol) is afterwards either
//!   whole or absent — never partial;
//! - an acknowledged delete stays deleted;
//! - corrupted bytes are always detected: a read touching a corrupted block fails with
//!   `Corrupt` (or, if the header was hit, the fragment is quarantined on reopen);
//! - the space accounting equals the sum of the stored fragments' file sizes.
//!
//! proptest shrinks a failure to a minimal operation sequence.

use std::collections::BTreeMap;
use std::sync::Arc;

use common::env::{Disk, Rng, SimDisk, SimDiskFaults};
use common::ids::{FragmentId, StripeId};
use proptest::prelude::*;

use crate::format::{file_len, BLOCK_BYTES};
use crate::store::{FragmentStore, PutRequest, PutStart, StoreConfig};
use crate::StoreError;

const SLOTS: u8 = 6;

#[derive(Clone, Debug)]
enum Op {
    Put {
        slot: u8,
        len: usize,
        seed: u64,
    },
    /// A put during which the power fails after `cut` more mutating disk operations.
    PutCut {
        slot: u8,
        len: usize,
        seed: u64,
        cut: u8,
    },
    Read {
        slot: u8,
        from_pct: u8,
        len_pct: u8,
    },
    Delete {
        slot: u8,
    },
    DeleteCut {
        slot: u8,
        cut: u8,
    },
    Crash,
    /// Flip one bit at a relative position of the stored file (may hit the header).
    Corrupt {
        slot: u8,
        pos_pct: u16,
        bit: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    // Lengths cover empty, tiny, block-straddling and multi-block fragments.
    let len = prop_oneof![
        Just(0usize),
        1usize..300,
        (BLOCK_BYTES as usize - 3)..(BLOCK_BYTES as usize + 3),
        1usize..(3 * BLOCK_BYTES as usize),
    ];
    prop_oneof![
        4 => (slot.clone(), len.clone(), any::<u64>()).prop_map(|(slot, len, seed)| Op::Put { slot, len, seed }),
        2 => (slot.clone(), len, any::<u64>(), 0u8..12).prop_map(|(slot, len, seed, cut)| Op::PutCut { slot, len, seed, cut }),
        4 => (slot.clone(), any::<u8>(), any::<u8>()).prop_map(|(slot, from_pct, len_pct)| Op::Read { slot, from_pct, len_pct }),
        2 => slot.clone().prop_map(|slot| Op::Delete { slot }),
        1 => (slot.clone(), 0u8..3).prop_map(|(slot, cut)| Op::DeleteCut { slot, cut }),
        2 => Just(Op::Crash),
        1 => (slot, 0u16..1000, 0u8..8).prop_map(|(slot, pos_pct, bit)| Op::Corrupt { slot, pos_pct, bit }),
    ]
}

/// What the model knows about a slot.
#[derive(Clone, Debug, PartialEq)]
enum Known {
    Absent,
    Present(Vec<u8>),
    /// Either whole with these bytes, or absent (unacknowledged write or delete).
    Maybe(Vec<u8>),
    /// A bit of the stored file was flipped: no read may return bytes (from the
    /// corrupted block onward we cannot tell which reads are safe, so any successful read
    /// must still return exactly these bytes).
    Corrupted(Vec<u8>),
}

fn id(slot: u8) -> FragmentId {
    FragmentId {
        stripe: StripeId(0xabcd_0000_0000_0000_0000_0000_0000_0000 + u128::from(slot)),
        index: slot % 3,
    }
}

/// (length, CRC32C): compared instead of whole buffers so failures print short.
fn digest(b: &[u8]) -> (usize, u32) {
    (b.len(), crc32c::crc32c(b))
}

fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Rng::new(seed).fill_bytes(&mut v);
    v
}

fn request(slot: u8, data: &[u8]) -> PutRequest {
    PutRequest {
        id: id(slot),
        codec: common::codec::CodecId::ReedSolomonSimd.as_u8(),
        k: 2,
        m: 1,
        length: data.len() as u64,
        crc32c: crc32c::crc32c(data),
    }
}

fn put(store: &Arc<FragmentStore>, slot: u8, data: &[u8]) -> Result<(), StoreError> {
    match store.begin_put(request(slot, data))? {
        PutStart::AlreadyStored(_) => Ok(()),
        PutStart::Writer(mut w) => {
            // Feed in uneven chunks, as a network stream would.
            for chunk in data.chunks(40_000) {
                w.write(chunk)?;
            }
            w.finish().map(|_| ())
        }
    }
}

fn open(disk: &Arc<SimDisk>) -> Arc<FragmentStore> {
    let d: Arc<dyn Disk> = disk.clone();
    Arc::new(FragmentStore::open(d, StoreConfig::default()).expect("store opens after a crash"))
}

struct Harness {
    disk: Arc<SimDisk>,
    store: Arc<FragmentStore>,
    model: BTreeMap<u8, Known>,
}

impl Harness {
    fn crash(&mut self) {
        self.disk.crash();
        self.store = open(&self.disk);
        // Resolve every uncertain slot by looking, and check it is whole or absent.
        for slot in 0..SLOTS {
            let known = self.model.get(&slot).cloned().unwrap_or(Known::Absent);
            if let Known::Maybe(bytes) = known {
                let now = match self.store.stat(id(slot)) {
                    None => Known::Absent,
                    Some(h) => {
                        let got = self.store.read(id(slot), 0, h.length).expect("whole");
                        assert_eq!(
                            digest(&got),
                            digest(&bytes),
                            "unacknowledged write came back partial"
                        );
                        Known::Present(bytes)
                    }
                };
                self.model.insert(slot, now);
            }
        }
    }

    fn check_accounting(&self) {
        let (all, _) = self.store.list(None, usize::MAX);
        let sum: u64 = all.iter().map(|h| h.file_len()).sum();
        assert_eq!(self.store.used_bytes(), sum, "space accounting drifted");
        for h in &all {
            assert_eq!(h.file_len(), file_len(h.length, BLOCK_BYTES));
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Put { slot, len, seed } => {
                let data = payload(len, seed);
                let before = self.model.get(&slot).cloned().unwrap_or(Known::Absent);
                let res = put(&self.store, slot, &data);
                match before {
                    Known::Absent => {
                        res.expect("put to an empty slot succeeds");
                        self.model.insert(slot, Known::Present(data));
                    }
                    Known::Corrupted(old) => {
                        // If the corruption hit the header, reopening quarantined the
                        // file and the id is free again; otherwise the put is refused
                        // (or is an identical retry).
                        match res {
                            Ok(()) => {
                                let got = self.store.read(id(slot), 0, data.len() as u64);
                                if digest(&old) != digest(&data) {
                                    assert_eq!(got.ok().map(|g| digest(&g)), Some(digest(&data)));
                                    self.model.insert(slot, Known::Present(data));
                                }
                            }
                            Err(StoreError::AlreadyExists(_)) => {}
                            Err(e) => panic!("unexpected {e}"),
                        }
                    }
                    Known::Present(old) | Known::Maybe(old) => {
                        if old.len() == data.len() && crc32c::crc32c(&old) == crc32c::crc32c(&data)
                        {
                            assert!(res.is_ok(), "identical retry must succeed: {res:?}");
                        } else {
                            assert!(matches!(res, Err(StoreError::AlreadyExists(_))), "{res:?}");
                        }
                    }
                }
            }
            Op::PutCut {
                slot,
                len,
                seed,
                cut,
            } => {
                let data = payload(len, seed);
                if self.model.get(&slot).is_some_and(|k| *k != Known::Absent) {
                    return;
                }
                self.disk.power_cut_after(u64::from(cut));
                let res = put(&self.store, slot, &data);
                let acked = res.is_ok();
                self.disk.crash(); // power was cut (or the cut never fired): restart
                self.model.insert(
                    slot,
                    if acked {
                        Known::Present(data)
                    } else {
                        Known::Maybe(data)
                    },
                );
                self.store = open(&self.disk);
                self.crash_resolve_only();
            }
            Op::Read {
                slot,
                from_pct,
                len_pct,
            } => {
                let known = self.model.get(&slot).cloned().unwrap_or(Known::Absent);
                match known {
                    Known::Absent => {
                        assert!(matches!(
                            self.store.read(id(slot), 0, 0),
                            Err(StoreError::NotFound(_))
                        ));
                    }
                    Known::Present(bytes) => {
                        let n = bytes.len() as u64;
                        let from = n * u64::from(from_pct) / 255;
                        let len = (n - from) * u64::from(len_pct) / 255;
                        let got = self
                            .store
                            .read(id(slot), from, len)
                            .expect("read of a stored fragment");
                        assert_eq!(
                            digest(&got),
                            digest(&bytes[from as usize..(from + len) as usize]),
                            "read returned wrong bytes"
                        );
                    }
                    Known::Corrupted(bytes) => {
                        // A read either fails, or returns exactly the original bytes (it
                        // did not touch the corrupted block). Never wrong bytes.
                        let whole = self.store.read(id(slot), 0, bytes.len() as u64);
                        match whole {
                            Ok(got) => {
                                assert_eq!(digest(&got), digest(&bytes), "corrupt bytes returned")
                            }
                            Err(StoreError::Corrupt { .. } | StoreError::NotFound(_)) => {}
                            Err(e) => panic!("unexpected error {e}"),
                        }
                    }
                    Known::Maybe(_) => unreachable!("resolved at crash"),
                }
            }
            Op::Delete { slot } => {
                self.store.delete(id(slot)).expect("delete");
                self.model.insert(slot, Known::Absent);
            }
            Op::DeleteCut { slot, cut } => {
                let known = self.model.get(&slot).cloned().unwrap_or(Known::Absent);
                let Known::Present(bytes) = known else { return };
                self.disk.power_cut_after(u64::from(cut));
                let acked = self.store.delete(id(slot)).is_ok();
                self.disk.crash();
                self.model.insert(
                    slot,
                    if acked {
                        Known::Absent
                    } else {
                        Known::Maybe(bytes)
                    },
                );
                self.store = open(&self.disk);
                self.crash_resolve_only();
            }
            Op::Crash => self.crash(),
            Op::Corrupt { slot, pos_pct, bit } => {
                let Some(Known::Present(bytes)) = self.model.get(&slot).cloned() else {
                    return;
                };
                let path = self
                    .disk
                    .file_paths()
                    .into_iter()
                    .find(|p| {
                        p.starts_with("frags/")
                            && p.ends_with(&format!("{}.{}", id(slot).stripe, id(slot).index))
                    })
                    .expect("stored fragment has a file");
                let flen = file_len(bytes.len() as u64, BLOCK_BYTES);
                let at = flen * u64::from(pos_pct) / 1000;
                self.disk
                    .corrupt(&path, at.min(flen - 1), 1 << bit)
                    .expect("corrupt");
                self.model.insert(slot, Known::Corrupted(bytes));
                // Whole-fragment verification must notice, whatever byte was hit.
                assert!(matches!(
                    self.store.verify(id(slot)),
                    Err(StoreError::Corrupt { .. })
                ));
            }
        }
        self.check_accounting();
    }

    /// After a cut-and-restart: resolve uncertain slots, and check that every
    /// acknowledged fragment survived.
    fn crash_resolve_only(&mut self) {
        for slot in 0..SLOTS {
            match self.model.get(&slot).cloned().unwrap_or(Known::Absent) {
                Known::Maybe(bytes) => {
                    let now = match self.store.stat(id(slot)) {
                        None => Known::Absent,
                        Some(h) => {
                            let got = self.store.read(id(slot), 0, h.length).expect("whole");
                            assert_eq!(
                                digest(&got),
                                digest(&bytes),
                                "unacknowledged write came back partial"
                            );
                            Known::Present(bytes)
                        }
                    };
                    self.model.insert(slot, now);
                }
                Known::Present(bytes) => {
                    let got = self.store.read(id(slot), 0, bytes.len() as u64);
                    assert_eq!(
                        got.ok().map(|g| digest(&g)),
                        Some(digest(&bytes)),
                        "acknowledged fragment lost"
                    );
                }
                Known::Absent => {
                    assert!(
                        self.store.stat(id(slot)).is_none(),
                        "deleted fragment came back"
                    );
                }
                Known::Corrupted(_) => {}
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model_across_crashes(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..40)) {
        let disk = SimDisk::new(seed, SimDiskFaults::default());
        let store = open(&disk);
        let mut h = Harness { disk, store, model: BTreeMap::new() };
        for op in &ops {
            h.apply(op);
        }
        // Final crash: everything acknowledged must still be there.
        h.crash();
        h.crash_resolve_only();
    }
}

#[test]
fn full_disk_is_a_clear_retriable_error_and_changes_nothing() {
    let disk = SimDisk::new(1, SimDiskFaults::default());
    let d: Arc<dyn Disk> = disk.clone();
    let cfg = StoreConfig {
        capacity_bytes: 200_000,
        ..StoreConfig::default()
    };
    let store = Arc::new(FragmentStore::open(d, cfg).unwrap());
    put(&store, 0, &payload(150_000, 1)).unwrap();
    let err = put(&store, 1, &payload(100_000, 2)).unwrap_err();
    assert!(matches!(err, StoreError::NoSpace(_)), "{err}");
    assert!(err.is_retriable());
    assert_eq!(store.fragment_count(), 1);
    assert!(store.stat(id(1)).is_none());
}

#[test]
fn simulated_enospc_mid_write_is_no_space_and_leaves_nothing() {
    let disk = SimDisk::new(
        1,
        SimDiskFaults {
            capacity_bytes: Some(100_000),
            ..SimDiskFaults::default()
        },
    );
    let store = open(&disk);
    let err = put(&store, 0, &payload(150_000, 1)).unwrap_err();
    assert!(matches!(err, StoreError::NoSpace(_)), "{err}");
    assert_eq!(store.used_bytes(), 0);
    assert!(
        disk.file_paths().is_empty(),
        "partial file left: {:?}",
        disk.file_paths()
    );
}

#[test]
fn bad_requests_are_typed_errors_and_change_nothing() {
    let disk = SimDisk::new(1, SimDiskFaults::default());
    let store = open(&disk);
    let data = payload(1000, 3);
    let mut req = request(0, &data);
    req.id.index = 3; // k+m = 3
    assert!(matches!(
        store.begin_put(req),
        Err(StoreError::InvalidArgument(_))
    ));
    let mut req = request(0, &data);
    req.codec = 99;
    assert!(matches!(
        store.begin_put(req),
        Err(StoreError::InvalidArgument(_))
    ));
    let mut req = request(0, &data);
    req.length = 1 << 40;
    assert!(matches!(
        store.begin_put(req),
        Err(StoreError::TooLarge { .. })
    ));

    // Wrong checksum.
    let mut req = request(0, &data);
    req.crc32c ^= 1;
    let PutStart::Writer(mut w) = store.begin_put(req).unwrap() else {
        panic!()
    };
    w.write(&data).unwrap();
    assert!(matches!(
        w.finish(),
        Err(StoreError::ChecksumMismatch { .. })
    ));
    // Short and long bodies.
    let PutStart::Writer(mut w) = store.begin_put(request(0, &data)).unwrap() else {
        panic!()
    };
    w.write(&data[..10]).unwrap();
    assert!(matches!(w.finish(), Err(StoreError::InvalidArgument(_))));
    let PutStart::Writer(mut w) = store.begin_put(request(0, &data)).unwrap() else {
        panic!()
    };
    assert!(matches!(
        w.write(&payload(1001, 3)),
        Err(StoreError::InvalidArgument(_))
    ));
    drop(w);
    // Bad ranges.
    put(&store, 0, &data).unwrap();
    assert!(matches!(
        store.read(id(0), 900, 101),
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.read(id(0), u64::MAX, 2),
        Err(StoreError::InvalidArgument(_))
    ));
    assert_eq!(store.fragment_count(), 1);
    assert_eq!(store.used_bytes(), file_len(1000, BLOCK_BYTES));
    // A concurrent second writer of the same id is refused.
    let PutStart::Writer(_w) = store.begin_put(request(1, &data)).unwrap() else {
        panic!()
    };
    assert!(matches!(
        store.begin_put(request(1, &data)),
        Err(StoreError::Busy(_))
    ));
}

#[test]
fn list_pages_in_id_order() {
    let disk = SimDisk::new(1, SimDiskFaults::default());
    let store = open(&disk);
    for slot in 0..5 {
        put(&store, slot, &payload(10, u64::from(slot))).unwrap();
    }
    let (p1, more) = store.list(None, 2);
    assert!(more);
    let (p2, more) = store.list(Some(p1[1].id), 2);
    assert!(more);
    let (p3, more) = store.list(Some(p2[1].id), 2);
    assert!(!more);
    let ids: Vec<FragmentId> = p1.iter().chain(&p2).chain(&p3).map(|h| h.id).collect();
    assert_eq!(ids, (0..5).map(id).collect::<Vec<_>>());
}

#[test]
fn header_corruption_is_quarantined_on_reopen() {
    let disk = SimDisk::new(1, SimDiskFaults::default());
    let store = open(&disk);
    put(&store, 0, &payload(5000, 1)).unwrap();
    let path = disk
        .file_paths()
        .into_iter()
        .find(|p| p.starts_with("frags/"))
        .unwrap();
    disk.corrupt(&path, 20, 0x01).unwrap();
    let store = open(&disk);
    assert!(store.stat(id(0)).is_none());
    assert!(disk.file_paths().iter().any(|p| p.starts_with("corrupt/")));
}

/// A misdirected read: the blocks of another fragment of the same size (valid data with
/// valid per-block checksums) under this fragment's header are detected, not served.
#[test]
fn blocks_of_another_fragment_fail_their_checksums() {
    use common::env::OpenMode;
    let disk = SimDisk::new(1, SimDiskFaults::default());
    let store = open(&disk);
    let len = 3 * BLOCK_BYTES as usize + 100;
    put(&store, 0, &payload(len, 1)).unwrap();
    put(&store, 1, &payload(len, 2)).unwrap();
    let path_of = |slot: u8| {
        let name = format!("{}.{}", id(slot).stripe, id(slot).index);
        disk.file_paths()
            .into_iter()
            .find(|p| p.starts_with("frags/") && p.ends_with(&name))
            .unwrap()
    };
    let d: Arc<dyn Disk> = disk.clone();
    let file_len = file_len(len as u64, BLOCK_BYTES) as usize;
    let mut blocks = vec![0u8; file_len - 64];
    d.open(&path_of(0), OpenMode::Read)
        .unwrap()
        .read_exact_at(&mut blocks, 64)
        .unwrap();
    d.open(&path_of(1), OpenMode::ReadWrite)
        .unwrap()
        .write_at(&blocks, 64)
        .unwrap();
    for (offset, length) in [(0, 10), (BLOCK_BYTES as u64 + 5, 1000), (0, len as u64)] {
        match store.read(id(1), offset, length) {
            Err(StoreError::Corrupt { .. }) => {}
            other => panic!("read {offset}+{length} of swapped blocks: {other:?}"),
        }
    }
    // The source fragment itself still reads.
    assert_eq!(
        digest(&store.read(id(0), 0, len as u64).unwrap()),
        digest(&payload(len, 1))
    );
}

/// I/O errors reading some fragment files at open skip those files (not served, not
/// quarantined: the error may be transient) instead of failing the whole store; the
/// next open with a healthy disk serves them again.
#[test]
fn unreadable_files_at_open_are_skipped_not_fatal() {
    let disk = SimDisk::new(7, SimDiskFaults::default());
    let store = open(&disk);
    for slot in 0..SLOTS {
        put(
            &store,
            slot,
            &payload(1000 + usize::from(slot), u64::from(slot)),
        )
        .unwrap();
    }
    drop(store);
    disk.set_faults(SimDiskFaults {
        read_error_prob: 0.5,
        ..SimDiskFaults::default()
    });
    let d: Arc<dyn Disk> = disk.clone();
    let store = FragmentStore::open(d, StoreConfig::default()).expect("opens despite EIOs");
    let skipped = store.unreadable_at_open().len() as u64;
    assert!(
        skipped > 0,
        "with half the reads failing some file is skipped"
    );
    assert_eq!(store.fragment_count() + skipped, u64::from(SLOTS));
    assert!(!disk.file_paths().iter().any(|p| p.starts_with("corrupt/")));
    disk.set_faults(SimDiskFaults::default());
    let store = open(&disk);
    assert_eq!(store.fragment_count(), u64::from(SLOTS));
    assert!(store.unreadable_at_open().is_empty());
    for slot in 0..SLOTS {
        let want = payload(1000 + usize::from(slot), u64::from(slot));
        let got = store.read(id(slot), 0, want.len() as u64).unwrap();
        assert_eq!(digest(&got), digest(&want));
    }
}
