//! Tests of `DiskBackend` and `open_database`: round trips on `RealDisk` and `SimDisk`,
//! durability across simulated crashes, crashes during creation, torn last commits, and a
//! power-cut property (acknowledged commits are never lost; an interrupted one is all or
//! nothing).

use std::collections::BTreeMap;
use std::io::{self, ErrorKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::env::{
    parent_dir, DirEntry, Disk, DiskFile, OpenMode, RealDisk, SimDisk, SimDiskFaults,
};
use proptest::prelude::*;
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, StorageBackend, TableDefinition,
    TableError,
};

use super::{open_database, DiskBackend, RedbDiskError, CREATING_SUFFIX};

const TABLES: [TableDefinition<u32, &[u8]>; 2] =
    [TableDefinition::new("t0"), TableDefinition::new("t1")];

/// (table index, key) → value: the whole user-visible contents of a test database.
type Model = BTreeMap<(usize, u32), Vec<u8>>;

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("shale-redb-disk-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sim(seed: u64, faults: SimDiskFaults) -> (Arc<SimDisk>, Arc<dyn Disk>) {
    let sim = SimDisk::new(seed, faults);
    let disk: Arc<dyn Disk> = sim.clone();
    (sim, disk)
}

/// A crash loses every write since the last sync: no luck can hide a missing sync.
fn lose_all() -> SimDiskFaults {
    SimDiskFaults {
        crash_keep_prob: 0.0,
        crash_tear_prob: 0.0,
        ..SimDiskFaults::default()
    }
}

fn value(tag: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (tag as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}

/// One change: insert `Some(value)` or remove (`None`) `key` in table `table`.
type Change = (usize, u32, Option<Vec<u8>>);

/// Applies `changes` in one write transaction with the given durability.
fn commit(db: &Database, changes: &[Change], durability: Durability) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(durability)?;
    for (table, key, v) in changes {
        let mut t = txn.open_table(TABLES[*table])?;
        match v {
            Some(v) => {
                t.insert(key, v.as_slice())?;
            }
            None => {
                t.remove(key)?;
            }
        }
    }
    txn.commit()?;
    Ok(())
}

fn apply(model: &mut Model, changes: &[Change]) {
    for (table, key, v) in changes {
        match v {
            Some(v) => model.insert((*table, *key), v.clone()),
            None => model.remove(&(*table, *key)),
        };
    }
}

fn read_all(db: &Database) -> Model {
    let txn = db.begin_read().unwrap();
    let mut out = Model::new();
    for (i, def) in TABLES.iter().enumerate() {
        let t = match txn.open_table(*def) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => continue,
            Err(e) => panic!("opening table {i}: {e}"),
        };
        for entry in t.iter().unwrap() {
            let (k, v) = entry.unwrap();
            out.insert((i, k.value()), v.value().to_vec());
        }
    }
    out
}

fn reopen(disk: &Arc<dyn Disk>, path: &str) -> Database {
    match open_database(disk, path) {
        Ok(db) => db,
        Err(e) => panic!("reopening {path} after a crash failed: {e}"),
    }
}

// ---- the backend itself ----

#[test]
fn backend_reads_writes_and_fails_past_the_end() {
    let (_sim, disk) = sim(1, SimDiskFaults::default());
    let file = disk.open("b", OpenMode::CreateNew).unwrap();
    let b = DiskBackend::new(file, "b");
    assert_eq!(b.len().unwrap(), 0);
    b.set_len(100).unwrap();
    assert_eq!(b.len().unwrap(), 100);
    let mut buf = [0xffu8; 100];
    b.read(0, &mut buf).unwrap();
    assert_eq!(buf, [0u8; 100], "set_len must zero new bytes");
    b.write(10, b"hello").unwrap();
    let mut got = [0u8; 5];
    b.read(10, &mut got).unwrap();
    assert_eq!(&got, b"hello");
    b.read(100, &mut []).unwrap();
    let err = b.read(98, &mut [0u8; 4]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
    assert!(err.to_string().contains("b read 4 bytes at 98"), "{err}");
    b.set_len(12).unwrap();
    assert_eq!(b.len().unwrap(), 12);
    b.sync_data().unwrap();
    b.close().unwrap();
}

#[test]
fn backend_sync_data_makes_writes_survive_a_crash() {
    let (sim, disk) = sim(2, lose_all());
    disk.create_dir_all("d").unwrap();
    let file = disk.open("d/f", OpenMode::CreateNew).unwrap();
    disk.sync_dir("d").unwrap();
    let b = DiskBackend::new(file, "d/f");
    b.write(0, b"synced").unwrap();
    b.sync_data().unwrap();
    b.write(6, b"-lost").unwrap();
    sim.crash();
    let b = DiskBackend::new(disk.open("d/f", OpenMode::ReadWrite).unwrap(), "d/f");
    assert_eq!(b.len().unwrap(), 6, "the unsynced write must be lost");
    let mut got = [0u8; 6];
    b.read(0, &mut got).unwrap();
    assert_eq!(&got, b"synced", "sync_data must reach DiskFile::sync");
}

#[test]
fn backend_errors_keep_their_kind_and_name_the_file() {
    let (sim, disk) = sim(3, SimDiskFaults::default());
    let b = DiskBackend::new(disk.open("f", OpenMode::CreateNew).unwrap(), "f");
    sim.power_cut_after(0);
    let err = b.write(0, b"x").unwrap_err();
    assert!(
        err.to_string().starts_with("f write 1 bytes at 0: "),
        "{err}"
    );
    assert!(b.sync_data().is_err());
}

// ---- round trips ----

fn round_trip(disk: &Arc<dyn Disk>, path: &str) {
    let db = open_database(disk, path).unwrap();
    let changes: Vec<Change> = (0..20)
        .map(|k| (k as usize % 2, k, Some(value(k, 100 + k as usize * 50))))
        .collect();
    commit(&db, &changes, Durability::Immediate).unwrap();
    commit(&db, &[(1, 1, None)], Durability::Immediate).unwrap();
    let mut want = Model::new();
    apply(&mut want, &changes);
    apply(&mut want, &[(1, 1, None)]);
    assert_eq!(read_all(&db), want);
    drop(db);
    let db = open_database(disk, path).unwrap();
    assert_eq!(read_all(&db), want);
    drop(db);
    let names: Vec<String> = disk
        .list_dir(parent_dir(path))
        .unwrap()
        .into_iter()
        .filter(|e| !e.is_dir)
        .map(|DirEntry { name, .. }| name)
        .collect();
    let file_name = path.rsplit('/').next().unwrap();
    assert_eq!(names, vec![file_name.to_string()], "no leftover files");
}

#[test]
fn round_trip_on_real_disk() {
    let tmp = TempDir::new("round-trip");
    let disk: Arc<dyn Disk> = Arc::new(RealDisk::open(&tmp.0).unwrap());
    round_trip(&disk, "groups/7/state.redb");
    round_trip(&disk, "top.redb");
}

#[test]
fn round_trip_on_sim_disk() {
    let (_sim, disk) = sim(4, SimDiskFaults::default());
    round_trip(&disk, "groups/7/state.redb");
    round_trip(&disk, "top.redb");
}

#[test]
fn opening_a_file_that_is_not_a_database_fails() {
    let (_sim, disk) = sim(5, SimDiskFaults::default());
    let f = disk.open("junk.redb", OpenMode::CreateNew).unwrap();
    f.write_at(b"not a redb file", 0).unwrap();
    let err = open_database(&disk, "junk.redb").unwrap_err();
    assert!(
        matches!(err, RedbDiskError::DatabaseOpen { .. }),
        "unexpected error: {err}"
    );
    assert!(err.to_string().contains("junk.redb"), "{err}");
}

/// Bit rot at rest in a committed page: the next open refuses the file (no panic, no
/// rotten row served), naming it; the same file unrotted opens with every row.
#[test]
fn a_rotten_page_is_refused_on_open() {
    let marker = [0xA5u8; 512];
    for bit in [0u8, 3, 7] {
        let (sim, disk) = sim(11 + u64::from(bit), SimDiskFaults::default());
        let db = open_database(&disk, "m/sm.redb").unwrap();
        let mut want = Model::new();
        for i in 0..20u32 {
            let c = [(1, i, Some(value(i, 300)))];
            commit(&db, &c, Durability::Immediate).unwrap();
            apply(&mut want, &c);
        }
        let c = [(0, 7, Some(marker.to_vec()))];
        commit(&db, &c, Durability::Immediate).unwrap();
        apply(&mut want, &c);
        drop(db);
        assert_eq!(read_all(&reopen(&disk, "m/sm.redb")), want, "clean reopen");

        // Flip one bit inside the marker row's bytes, wherever redb put them.
        let f = disk.open("m/sm.redb", OpenMode::Read).unwrap();
        let mut bytes = vec![0u8; f.len().unwrap() as usize];
        f.read_exact_at(&mut bytes, 0).unwrap();
        let at = bytes
            .windows(marker.len())
            .position(|w| w == marker)
            .expect("the marker row is in the file");
        sim.corrupt("m/sm.redb", (at + 100) as u64, 1 << bit)
            .unwrap();

        let err = open_database(&disk, "m/sm.redb").unwrap_err();
        assert!(
            matches!(err, RedbDiskError::Corrupted { .. }),
            "bit {bit}: unexpected error: {err}"
        );
        assert!(err.to_string().contains("m/sm.redb"), "{err}");
    }
}

#[test]
fn an_empty_file_under_the_name_becomes_a_new_database() {
    let (sim, disk) = sim(7, SimDiskFaults::default());
    disk.create_dir_all("d").unwrap();
    disk.open("d/db.redb", OpenMode::CreateNew).unwrap();
    disk.sync_dir("d").unwrap();
    let db = open_database(&disk, "d/db.redb").unwrap();
    commit(&db, &[(0, 1, Some(vec![1]))], Durability::Immediate).unwrap();
    sim.crash();
    drop(db);
    let db = reopen(&disk, "d/db.redb");
    assert_eq!(read_all(&db).len(), 1);
}

// ---- crashes ----

#[test]
fn committed_transactions_survive_a_crash() {
    for seed in 0..8 {
        let (sim, disk) = sim(100 + seed, SimDiskFaults::default());
        let db = open_database(&disk, "m/log.redb").unwrap();
        let mut want = Model::new();
        for i in 0..40u32 {
            let c = [(0, i, Some(value(i, 16 + (i as usize * 37) % 900)))];
            commit(&db, &c, Durability::Immediate).unwrap();
            apply(&mut want, &c);
        }
        // Power loss with the database still open: it never writes a clean shutdown.
        sim.crash();
        drop(db);
        let db = reopen(&disk, "m/log.redb");
        assert_eq!(read_all(&db), want, "seed {seed}");
    }
}

/// The sanity check that the crash model bites: with every unsynced write lost, a durable
/// commit survives (fails if `sync_data` did not sync) and a `Durability::None` commit does
/// not (fails if the crash kept unsynced writes).
#[test]
fn durable_commits_survive_and_unsynced_ones_do_not() {
    let (sim, disk) = sim(6, lose_all());
    let db = open_database(&disk, "db.redb").unwrap();
    commit(
        &db,
        &[(0, 1, Some(b"durable".to_vec()))],
        Durability::Immediate,
    )
    .unwrap();
    commit(&db, &[(0, 2, Some(b"volatile".to_vec()))], Durability::None).unwrap();
    assert_eq!(read_all(&db).len(), 2);
    sim.crash();
    drop(db);
    let db = reopen(&disk, "db.redb");
    let want: Model = [((0, 1), b"durable".to_vec())].into();
    assert_eq!(read_all(&db), want);
}

/// A disk on which every new name, rename and removal becomes durable at once, as a
/// journalling file system may make it before the directory is synced.
#[derive(Debug)]
struct EagerNames(Arc<SimDisk>);

impl Disk for EagerNames {
    fn open(&self, path: &str, mode: OpenMode) -> io::Result<Arc<dyn DiskFile>> {
        let existed = self.0.exists(path)?;
        let f = self.0.open(path, mode)?;
        if !existed {
            self.0.sync_dir(parent_dir(path))?;
        }
        Ok(f)
    }
    fn remove_file(&self, path: &str) -> io::Result<()> {
        self.0.remove_file(path)?;
        self.0.sync_dir(parent_dir(path))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.0.rename(from, to)?;
        self.0.sync_dir(parent_dir(from))?;
        self.0.sync_dir(parent_dir(to))
    }
    fn create_dir_all(&self, path: &str) -> io::Result<()> {
        self.0.create_dir_all(path)
    }
    fn list_dir(&self, path: &str) -> io::Result<Vec<DirEntry>> {
        self.0.list_dir(path)
    }
    fn sync_dir(&self, path: &str) -> io::Result<()> {
        self.0.sync_dir(path)
    }
    fn exists(&self, path: &str) -> io::Result<bool> {
        self.0.exists(path)
    }
}

/// Cuts the power at every mutating operation of a database creation in turn: after the
/// crash the database opens, empty and writable, and no temporary file is left behind.
#[test]
fn a_crash_during_creation_leaves_no_database_or_an_empty_one() {
    for eager in [false, true] {
        for seed in 0..4u64 {
            let mut n = 0u64;
            loop {
                let sim = SimDisk::new(seed * 1000 + n, SimDiskFaults::default());
                let disk: Arc<dyn Disk> = if eager {
                    Arc::new(EagerNames(sim.clone()))
                } else {
                    sim.clone()
                };
                sim.power_cut_after(n);
                let first = open_database(&disk, "g/db.redb");
                let cut = sim.is_powered_off();
                assert_eq!(
                    first.is_err(),
                    cut,
                    "eager {eager} n {n}: {:?}",
                    first.err()
                );
                sim.crash();
                drop(first);
                let db = reopen(&disk, "g/db.redb");
                assert!(read_all(&db).is_empty());
                commit(&db, &[(0, 1, Some(vec![1]))], Durability::Immediate).unwrap();
                drop(db);
                let db = reopen(&disk, "g/db.redb");
                assert_eq!(read_all(&db).len(), 1);
                drop(db);
                let tmp_name = format!("db.redb{CREATING_SUFFIX}");
                let names = disk.list_dir("g").unwrap();
                assert!(
                    names.iter().all(|e| e.name != tmp_name),
                    "eager {eager} n {n}: leftover {names:?}"
                );
                if !cut {
                    break;
                }
                n += 1;
                assert!(n < 100, "creation never finished");
            }
            assert!(n >= 3, "creation took only {n} mutating operations");
        }
    }
}

/// Cuts the power at every I/O of one large commit (values spanning many sectors, so
/// pending writes tear at crash): the database opens and holds either the previous
/// state or the new one, never a mix.
#[test]
fn a_torn_last_commit_is_all_or_nothing() {
    let mut torn = 0;
    let mut outcomes = [0usize; 2];
    for seed in 0..6u64 {
        let mut n = 0u64;
        loop {
            let (sim, disk) = sim(seed * 1000 + n, SimDiskFaults::default());
            let db = open_database(&disk, "db.redb").unwrap();
            let base: Vec<Change> = (0..30).map(|k| (0, k, Some(value(k, 700)))).collect();
            commit(&db, &base, Durability::Immediate).unwrap();
            let mut before = Model::new();
            apply(&mut before, &base);
            let big: Vec<Change> = (0..30)
                .map(|k| (k as usize % 2, k, Some(value(k + 1000, 1500))))
                .chain((0..10).map(|k| (0, k * 3, None)))
                .collect();
            let mut after = before.clone();
            apply(&mut after, &big);

            sim.power_cut_after(n);
            let result = commit(&db, &big, Durability::Immediate);
            let cut = sim.is_powered_off();
            sim.crash();
            drop(db);
            torn += sim.stats().writes_torn_in_crash;
            let db = reopen(&disk, "db.redb");
            let got = read_all(&db);
            if result.is_ok() {
                assert_eq!(got, after, "seed {seed} n {n}: acknowledged commit lost");
            } else {
                assert!(
                    got == before || got == after,
                    "seed {seed} n {n}: mixed state"
                );
            }
            outcomes[usize::from(got == after)] += 1;
            // Still writable after the repair.
            commit(&db, &[(1, 999, Some(vec![9]))], Durability::Immediate).unwrap();
            if !cut {
                break;
            }
            n += 1;
            assert!(n < 1000, "commit never finished");
        }
    }
    assert!(torn > 0, "no write was torn: the test exercised nothing");
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "outcomes {outcomes:?}");
}

// ---- the power-cut property ----

fn change_strategy() -> impl Strategy<Value = Change> {
    (
        0usize..2,
        0u32..24,
        prop_oneof![
            3 => (any::<u32>(), 0usize..1400).prop_map(|(t, l)| Some(value(t, l))),
            1 => Just(None),
        ],
    )
}

fn txns_strategy() -> impl Strategy<Value = Vec<Vec<Change>>> {
    prop::collection::vec(prop::collection::vec(change_strategy(), 1..5), 1..14)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Before transaction `cut_at`, the power is armed to fail at the `cut_after`-th
    /// mutating operation. Everything acknowledged before the first failed commit must
    /// survive the crash, and the failed commit is either wholly present or absent.
    #[test]
    fn power_cut_loses_no_acknowledged_commit(
        seed in any::<u64>(),
        txns in txns_strategy(),
        cut_at in 0usize..14,
        cut_after in 0u64..24,
    ) {
        let (sim, disk) = sim(seed, SimDiskFaults::default());
        let db = open_database(&disk, "p/db.redb").unwrap();
        let mut acked = Model::new();
        let mut unknown = None;
        for (i, changes) in txns.iter().enumerate() {
            if i == cut_at.min(txns.len() - 1) {
                sim.power_cut_after(cut_after);
            }
            let mut next = acked.clone();
            apply(&mut next, changes);
            match commit(&db, changes, Durability::Immediate) {
                Ok(()) => acked = next,
                Err(_) => {
                    prop_assert!(sim.is_powered_off(), "a commit failed without a power cut");
                    unknown = Some(next);
                    break;
                }
            }
        }
        sim.crash();
        drop(db);
        let db = reopen(&disk, "p/db.redb");
        let got = read_all(&db);
        let ok = got == acked || unknown.as_ref() == Some(&got);
        prop_assert!(ok, "after the crash: {:?}\nacknowledged: {:?}\ninterrupted: {:?}",
            got.keys().collect::<Vec<_>>(),
            acked.keys().collect::<Vec<_>>(),
            unknown.as_ref().map(|m| m.keys().collect::<Vec<_>>()));

        // The repaired database takes new commits, which survive another crash.
        let mut model = got;
        let extra = [(1, 5000, Some(value(7, 300)))];
        commit(&db, &extra, Durability::Immediate).unwrap();
        apply(&mut model, &extra);
        sim.crash();
        drop(db);
        let db = reopen(&disk, "p/db.redb");
        prop_assert_eq!(read_all(&db), model);
    }
}
