//! Planted bugs: deliberate faults in the system under test that the checkers must
//! catch ("a checker that never fires proves nothing"). They live entirely in the
//! harness, so the product carries no fault switch.
//!
//! - `FsyncLies` on meta nodes or data nodes: a `Disk` wrapper whose `sync` and
//!   `sync_dir` report success without making anything durable while its switch is on,
//!   i.e. a node that acknowledges a write before it is on disk. Paired with a crash of
//!   every node of that kind at once (the `mass_crash` fault), acknowledged writes vanish.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::env::{DirEntry, Disk, DiskFile, DiskOp, OpenMode, SimDisk};
use serde::Deserialize;

/// Which planted bug a run carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Planted {
    /// Meta nodes' disks acknowledge `sync` without persisting (Raft log and state
    /// machine acknowledged before fsync).
    MetaFsyncLies,
    /// Data nodes' disks acknowledge `sync` without persisting (a fragment acknowledged
    /// before fsync).
    DatanodeFsyncLies,
}

impl Planted {
    pub fn name(self) -> &'static str {
        match self {
            Planted::MetaFsyncLies => "meta-fsync-lies",
            Planted::DatanodeFsyncLies => "datanode-fsync-lies",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "meta-fsync-lies" => Some(Planted::MetaFsyncLies),
            "datanode-fsync-lies" => Some(Planted::DatanodeFsyncLies),
            _ => None,
        }
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
