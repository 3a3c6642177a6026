//! Planted bugs: deliberate faults in the system under test that the checkers must
//! catch ("a checker that never fires proves nothing"). Two kinds:
//!
//! - bugs in the product's own code, behind the sim-only switches of
//!   [`common::env::planted`] (compiled only with `--cfg madsim`), turned on for the safety
//!   phase: `skip-read-barrier` (meta reads without `ensure_linearizable`: the
//!   linearizability checker must fire), `ack-before-sync` (data nodes never fsync a
//!   fragment; with a mass power loss the lost-writes checker must fire),
//!   `rack-overload` (the planner puts `m + 1` fragments in one rack: the fragments
//!   checker must fire) and `drop-version-on-apply` (the state machine acknowledges
//!   some versions without storing them: linearizability and list-after-write must
//!   fire), `skip-block-verify` (data nodes skip the block CRC check; with bits rotting
//!   at rest the corruption checker must fire) and `apply-reads-clock` (apply stamps a
//!   version with the replica's clock, a non-deterministic apply: the replicas checker
//!   must fire);
//! - faults of the world around the product, in the harness (below).
//!
//! Each product bug's scenario also runs without the bug (`sim/scenarios/control-*`),
//! and must pass there: what the checker reports is the bug's doing.
//!
//! The harness faults:
//! - `FsyncLies` on meta nodes: a `Disk` wrapper whose `sync` and `sync_dir` report
//!   success without making anything durable while its switch is on, i.e. a node that
//!   acknowledges a write before it is on disk. Paired with a crash of every meta node at
//!   once (the `mass_crash` fault), acknowledged writes vanish. (Data nodes that ack
//!   before fsync are the product bug `ack-before-sync`; their disks then also drop every
//!   unsynced write at a power loss.)
//! - `MisdirectedReads` on data nodes: while its switch is on, a read of a fragment file
//!   returns the bytes at the same offset of *another* fragment file of the same size (a
//!   disk that reads the wrong sector). It found a real bug (block CRCs covered only the
//!   payload, so the gateway served another object's bytes); since fragment format v2
//!   seeds each block's CRC with its identity, such reads fail instead, and the scenario
//!   is a regression test that must pass.
//! - `MisdirectedDeletes` on data nodes: while its switch is on, deleting a fragment
//!   file also deletes the next fragment file in path order (a file system freeing the
//!   wrong inode). Only garbage collection (and repair's clean-up) deletes fragments, so
//!   in `gc-race` this is a GC that frees live fragments: the gc-safety checker must fire.
//! - `DivergentReplica`: after the final reads, one replica of the root group writes a row
//!   the others never see (a non-deterministic apply). The replicas checker must fire.
//! - `CorruptResponses`: the path between clients and gateways flips one byte of every
//!   fifth GET body (past TCP's checksum). The product cannot prevent it; it proves the
//!   corruption checker fires on real runs.
//! - `UnhealedMajority`: "healing" leaves a majority of the meta nodes dead, so the
//!   liveness phase cannot succeed (the liveness checker must say so).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::env::planted::Bug;
use common::env::{DirEntry, Disk, DiskFile, DiskOp, OpenMode, SimDisk};
use serde::Deserialize;

/// Which planted bug a run carries: a fault of the world around the product (below),
/// or a bug in the product's own code behind a [`common::env::planted`] switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planted {
    /// Meta nodes' disks acknowledge `sync` without persisting (Raft log and state
    /// machine acknowledged before fsync).
    MetaFsyncLies,
    /// Data nodes' disks read fragment blocks from the wrong file.
    MisdirectedReads,
    /// A majority of meta nodes stays dead through the liveness phase.
    UnhealedMajority,
    /// Every fifth GET body reaches the client with one byte flipped.
    CorruptResponses,
    /// One replica's state machine gets a row the others do not have.
    DivergentReplica,
    /// Data nodes' disks delete the next fragment file along with the one asked for.
    MisdirectedDeletes,
    /// A product bug, switched on for the safety phase.
    Product(Bug),
}

impl Planted {
    const HARNESS: [Planted; 6] = [
        Planted::MetaFsyncLies,
        Planted::MisdirectedReads,
        Planted::UnhealedMajority,
        Planted::CorruptResponses,
        Planted::DivergentReplica,
        Planted::MisdirectedDeletes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Planted::MetaFsyncLies => "meta-fsync-lies",
            Planted::MisdirectedReads => "misdirected-reads",
            Planted::UnhealedMajority => "unhealed-majority",
            Planted::CorruptResponses => "corrupt-responses",
            Planted::DivergentReplica => "divergent-replica",
            Planted::MisdirectedDeletes => "misdirected-deletes",
            Planted::Product(b) => b.name(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::HARNESS
            .into_iter()
            .find(|p| p.name() == s)
            .or_else(|| Bug::parse(s).map(Planted::Product))
    }

    /// Switches the product bug (if this is one) on or off for this thread's simulation.
    pub fn set_product_bug(self, on: bool) {
        if let Planted::Product(b) = self {
            common::env::planted::set(b, on);
        }
    }
}

impl<'de> Deserialize<'de> for Planted {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Planted::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown planted bug {s:?}")))
    }
}

/// A `SimDisk` whose syncs are no-ops while `lying` is set.
#[derive(Debug)]
pub struct FsyncLies {
    inner: Arc<SimDisk>,
    lying: Arc<AtomicBool>,
}

impl FsyncLies {
    pub fn new(inner: Arc<SimDisk>, lying: Arc<AtomicBool>) -> Arc<Self> {
        Arc::new(Self { inner, lying })
    }
}

#[derive(Debug)]
struct LyingFile {
    inner: Arc<dyn DiskFile>,
    lying: Arc<AtomicBool>,
}

impl Disk for FsyncLies {
    fn open(&self, path: &str, mode: OpenMode) -> io::Result<Arc<dyn DiskFile>> {
        let inner = self.inner.open(path, mode)?;
        Ok(Arc::new(LyingFile {
            inner,
            lying: Arc::clone(&self.lying),
        }))
    }
    fn remove_file(&self, path: &str) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn create_dir_all(&self, path: &str) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn list_dir(&self, path: &str) -> io::Result<Vec<DirEntry>> {
        self.inner.list_dir(path)
    }
    fn sync_dir(&self, path: &str) -> io::Result<()> {
        if self.lying.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.inner.sync_dir(path)
    }
    fn exists(&self, path: &str) -> io::Result<bool> {
        self.inner.exists(path)
    }
    fn service_time(&self, op: DiskOp, bytes: usize) -> Duration {
        self.inner.service_time(op, bytes)
    }
}

impl DiskFile for LyingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        if self.lying.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.inner.sync()
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

/// A `SimDisk` whose fragment reads, while `on` is set, come from another fragment file
/// of the same length (the next one in path order).
#[derive(Debug)]
pub struct MisdirectedReads {
    inner: Arc<SimDisk>,
    on: Arc<AtomicBool>,
}

impl MisdirectedReads {
    pub fn new(inner: Arc<SimDisk>, on: Arc<AtomicBool>) -> Arc<Self> {
        Arc::new(Self { inner, on })
    }
}

#[derive(Debug)]
struct MisdirectedFile {
    inner: Arc<dyn DiskFile>,
    disk: Arc<SimDisk>,
    path: String,
    on: Arc<AtomicBool>,
}

impl MisdirectedFile {
    /// Another fragment file as long as this one, if any.
    fn neighbour(&self) -> Option<Arc<dyn DiskFile>> {
        let len = self.inner.len().ok()?;
        let paths: Vec<String> = self
            .disk
            .file_paths()
            .into_iter()
            .filter(|p| p.starts_with("frags/") && *p != self.path)
            .collect();
        let after = paths.iter().position(|p| *p > self.path).unwrap_or(0);
        paths
            .iter()
            .cycle()
            .skip(after)
            .take(paths.len())
            .filter_map(|p| self.disk.open(p, OpenMode::Read).ok())
            .find(|f| f.len().ok() == Some(len))
    }
}

impl Disk for MisdirectedReads {
    fn open(&self, path: &str, mode: OpenMode) -> io::Result<Arc<dyn DiskFile>> {
        Ok(Arc::new(MisdirectedFile {
            inner: self.inner.open(path, mode)?,
            disk: Arc::clone(&self.inner),
            path: path.to_owned(),
            on: Arc::clone(&self.on),
        }))
    }
    fn remove_file(&self, path: &str) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn create_dir_all(&self, path: &str) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn list_dir(&self, path: &str) -> io::Result<Vec<DirEntry>> {
        self.inner.list_dir(path)
    }
    fn sync_dir(&self, path: &str) -> io::Result<()> {
        self.inner.sync_dir(path)
    }
    fn exists(&self, path: &str) -> io::Result<bool> {
        self.inner.exists(path)
    }
    fn service_time(&self, op: DiskOp, bytes: usize) -> Duration {
        self.inner.service_time(op, bytes)
    }
}

impl DiskFile for MisdirectedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if self.on.load(Ordering::Relaxed) && self.path.starts_with("frags/") {
            if let Some(other) = self.neighbour() {
                return other.read_at(buf, offset);
            }
        }
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

/// A `SimDisk` that, while `on` is set, removes the next fragment file in path order
/// along with each fragment file it is asked to remove.
#[derive(Debug)]
pub struct MisdirectedDeletes {
    inner: Arc<SimDisk>,
    on: Arc<AtomicBool>,
}

impl MisdirectedDeletes {
    pub fn new(inner: Arc<SimDisk>, on: Arc<AtomicBool>) -> Arc<Self> {
        Arc::new(Self { inner, on })
    }
}

impl Disk for MisdirectedDeletes {
    fn open(&self, path: &str, mode: OpenMode) -> io::Result<Arc<dyn DiskFile>> {
        self.inner.open(path, mode)
    }
    fn remove_file(&self, path: &str) -> io::Result<()> {
        if self.on.load(Ordering::Relaxed) && path.starts_with("frags/") {
            let next = self
                .inner
                .file_paths()
                .into_iter()
                .find(|p| p.starts_with("frags/") && p.as_str() > path);
            if let Some(next) = next {
                let _ = self.inner.remove_file(&next);
            }
        }
        self.inner.remove_file(path)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn create_dir_all(&self, path: &str) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn list_dir(&self, path: &str) -> io::Result<Vec<DirEntry>> {
        self.inner.list_dir(path)
    }
    fn sync_dir(&self, path: &str) -> io::Result<()> {
        self.inner.sync_dir(path)
    }
    fn exists(&self, path: &str) -> io::Result<bool> {
        self.inner.exists(path)
    }
    fn service_time(&self, op: DiskOp, bytes: usize) -> Duration {
        self.inner.service_time(op, bytes)
    }
}
