//! The `Disk` seam: every byte Shale persists (fragments, and later redb's metadata)
//! goes through it, so the simulator can swap in `SimDisk`, which loses unsynced writes
//! on a crash, tears writes, rots bits and fails I/O.
//!
//! A `Disk` is rooted at one directory; paths are relative, `/`-separated, and may not
//! contain `..` or start with `/`. The interface is synchronous (redb's `StorageBackend`
//! is synchronous too); async callers run it through `Env::spawn_blocking` and wait out
//! `Disk::service_time` to model slow disks.
//!
//! Durability contract (what both implementations promise, and what the conformance
//! suite in `disk_test.rs` checks):
//! - `DiskFile::sync` makes the file's *contents* durable.
//! - Creating, renaming or removing a name becomes durable only after `sync_dir` of the
//!   parent directory. Directories created by `create_dir_all` are durable at once.
//! - Errors are `std::io::Error`; a full disk is `ErrorKind::StorageFull`.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// How to open a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Existing file, read only.
    Read,
    /// Existing file, read and write.
    ReadWrite,
    /// New file; fails with `AlreadyExists` if the name is taken.
    CreateNew,
    /// Open if it exists, create it otherwise; read and write.
    CreateOrOpen,
}

/// One entry of `Disk::list_dir`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
}

/// The kind of an I/O, for `Disk::service_time`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskOp {
    Read,
    Write,
    Sync,
}

pub trait Disk: Send + Sync + fmt::Debug {
    fn open(&self, path: &str, mode: OpenMode) -> io::Result<Arc<dyn DiskFile>>;
    fn remove_file(&self, path: &str) -> io::Result<()>;
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    fn create_dir_all(&self, path: &str) -> io::Result<()>;
    /// Entries of a directory, sorted by name.
    fn list_dir(&self, path: &str) -> io::Result<Vec<DirEntry>>;
    /// Makes creations, renames and removals of names in `path` durable.
    fn sync_dir(&self, path: &str) -> io::Result<()>;
    fn exists(&self, path: &str) -> io::Result<bool>;
    /// How long an operation of `bytes` should take. The real disk answers zero (the time
    /// is spent in the syscall); `SimDisk` draws a latency so async callers can sleep it.
    fn service_time(&self, _op: DiskOp, _bytes: usize) -> Duration {
        Duration::ZERO
    }
}

pub trait DiskFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the contents durable (fsync).
    fn sync(&self) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn set_len(&self, len: u64) -> io::Result<()>;

    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let n = self.read_at(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("short read at offset {}", offset + done as u64),
                ));
            }
            done += n;
        }
        Ok(())
    }
}

/// Checks a relative disk path: no empty components, no `.`/`..`, not absolute.
pub fn validate_path(path: &str) -> io::Result<()> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'));
    if bad {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid disk path {path:?}"),
        ));
    }
    Ok(())
}

/// The parent directory of a relative path ("" for the root).
pub fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    }
}
