//! redb over the `Disk` seam: `DiskBackend` implements `redb::StorageBackend` on a
//! `DiskFile`, and `open_database` opens (or creates) a redb database on a `Disk`.
//!
//! Why: madsim simulates the network and time but not disks. Its file system has no power
//! loss, and fsync is a no-op, so a simulated crash would never lose a metadata write and
//! a missing sync would go unnoticed. `SimDisk` is the one disk fault model Shale has (the
//! data node's fragments already use it). Routing redb through the same seam means a Raft
//! log or state machine in simulation sees exactly the crash model a fragment sees: writes
//! since the last `sync` are kept, torn at a 512-byte sector or lost, independently, and
//! `power_cut_after` can stop a commit between any two of its I/Os. In production the same
//! code runs on `RealDisk` (std::fs + fsync).
//!
//! What redb needs from the seam (redb 4.5, `ConcurrencyMode::ExclusiveWriter`, the
//! default):
//! - positional `read` / `write`, `len`, `set_len` (new bytes zeroed) and `sync_data`,
//!   which maps to `DiskFile::sync` (fsync of contents and length). A read past the end
//!   must fail; `read_exact_at` fails with `UnexpectedEof`, which redb reports as an I/O
//!   error, as it does for its own file backend.
//! - no locks: the lock methods keep redb's `Unsupported` defaults, so redb does not
//!   guard against a second open of the same file. Each database file must be opened by
//!   one `Database` at a time (meta-raft opens each group's files once).
//! - crash recovery is redb's own: every commit (`Durability::Immediate`, the default)
//!   writes its pages and the header slot and syncs once; on the next open after a crash
//!   redb verifies the checksums of the newest commit slot, falls back to the previous one
//!   if the last commit was torn, and rebuilds its allocator state.
//!
//! Creation is crash safe: redb initialises an empty file in several synced steps and
//! writes its magic number last, so a file that a crash left half-initialised is refused
//! forever ("magic number mismatch"). A real file system may make a new name durable
//! before the directory is synced, so `open_database` builds a new database under a
//! temporary name (`<path>.creating`) and renames it into place only once redb has
//! initialised and synced it; a file under the final name is always a redb database.

use std::fmt;
use std::io;
use std::sync::Arc;

use common::env::{parent_dir, Disk, DiskFile, OpenMode};
use redb::{Builder, Database, StorageBackend};

/// Suffix of the temporary name a new database is built under before it is renamed into
/// place. A leftover one is an unfinished creation and is removed on the next open.
pub const CREATING_SUFFIX: &str = ".creating";

/// A `redb::StorageBackend` over one `DiskFile`.
pub struct DiskBackend {
    file: Arc<dyn DiskFile>,
    /// For error messages and `Debug` only.
    path: String,
}

impl DiskBackend {
    /// Wraps an open file; `path` names it in error messages.
    pub fn new(file: Arc<dyn DiskFile>, path: impl Into<String>) -> Self {
        Self {
            file,
            path: path.into(),
        }
    }

    /// Adds the file and the operation to an I/O error, keeping its kind.
    fn context(&self, what: fmt::Arguments<'_>, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{} {what}: {e}", self.path))
    }
}

impl fmt::Debug for DiskBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskBackend")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl StorageBackend for DiskBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.file
            .len()
            .map_err(|e| self.context(format_args!("len"), e))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.file
            .read_exact_at(out, offset)
            .map_err(|e| self.context(format_args!("read {} bytes at {offset}", out.len()), e))
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.file
            .set_len(len)
            .map_err(|e| self.context(format_args!("set_len {len}"), e))
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.file
            .sync()
            .map_err(|e| self.context(format_args!("sync"), e))
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.file
            .write_at(data, offset)
            .map_err(|e| self.context(format_args!("write {} bytes at {offset}", data.len()), e))
    }
}

/// What failed while opening a database on a `Disk`.
#[derive(Debug, thiserror::Error)]
pub enum RedbDiskError {
    #[error("metadata database directory {dir:?} could not be created: {source}")]
    DirCreate { dir: String, source: io::Error },
    #[error("metadata database file {path:?} could not be looked up: {source}")]
    FileLookup { path: String, source: io::Error },
    #[error("metadata database file {path:?} could not be opened: {source}")]
    FileOpen { path: String, source: io::Error },
    #[error("unfinished metadata database {path:?} could not be removed: {source}")]
    LeftoverRemove { path: String, source: io::Error },
    #[error("new metadata database {from:?} could not be renamed to {to:?}: {source}")]
    FileRename {
        from: String,
        to: String,
        source: io::Error,
    },
    #[error("metadata database directory {dir:?} could not be synced: {source}")]
    DirSync { dir: String, source: io::Error },
    #[error("metadata database {path:?} could not be opened by redb: {source}")]
    DatabaseOpen {
        path: String,
        source: redb::DatabaseError,
    },
    /// The file failed redb's integrity check: its pages no longer match their
    /// checksums. This replica's state cannot be trusted; the node must be replaced (its
    /// groups re-replicated to a new node), never started on it.
    #[error(
        "metadata database {path:?} failed its integrity check ({detail}): the file was \
         altered since it was written (bit rot or a stray write), so this replica's state \
         cannot be trusted; remove this node from its groups and add a new one"
    )]
    Corrupted { path: String, detail: String },
}

/// Opens the redb database at `path` on `disk`, creating it (and its parent directory)
/// if absent. After a crash, redb repairs the file on open: commits that returned `Ok`
/// are kept, and an interrupted commit is either wholly present or wholly absent.
///
/// A new database is initialised under `<path>.creating`, renamed to `path` and made
/// durable with `sync_dir` of the parent, so a crash during creation leaves either no
/// database or a complete empty one.
pub fn open_database(disk: &Arc<dyn Disk>, path: &str) -> Result<Database, RedbDiskError> {
    let dir = parent_dir(path);
    disk.create_dir_all(dir)
        .map_err(|source| RedbDiskError::DirCreate {
            dir: dir.to_string(),
            source,
        })?;
    let lookup = |source| RedbDiskError::FileLookup {
        path: path.to_string(),
        source,
    };
    if disk.exists(path).map_err(lookup)? {
        let file =
            disk.open(path, OpenMode::ReadWrite)
                .map_err(|source| RedbDiskError::FileOpen {
                    path: path.to_string(),
                    source,
                })?;
        // Never the case for a file `open_database` made (it is renamed into place after
        // redb synced it); treat an empty one, which holds no data, as absent.
        if !file.is_empty().map_err(lookup)? {
            return build(file, path);
        }
    }
    create(disk, path)
}

/// Builds a new database under the temporary name and renames it to `path`.
fn create(disk: &Arc<dyn Disk>, path: &str) -> Result<Database, RedbDiskError> {
    let dir = parent_dir(path);
    let tmp = format!("{path}{CREATING_SUFFIX}");
    if disk
        .exists(&tmp)
        .map_err(|source| RedbDiskError::FileLookup {
            path: tmp.clone(),
            source,
        })?
    {
        tracing::info!(path = %tmp, "removing an unfinished metadata database creation");
        disk.remove_file(&tmp)
            .map_err(|source| RedbDiskError::LeftoverRemove {
                path: tmp.clone(),
                source,
            })?;
    }
    let file = disk
        .open(&tmp, OpenMode::CreateNew)
        .map_err(|source| RedbDiskError::FileOpen {
            path: tmp.clone(),
            source,
        })?;
    // redb initialises the empty file and syncs it before returning.
    let db = build(file, path)?;
    disk.rename(&tmp, path)
        .map_err(|source| RedbDiskError::FileRename {
            from: tmp.clone(),
            to: path.to_string(),
            source,
        })?;
    disk.sync_dir(dir)
        .map_err(|source| RedbDiskError::DirSync {
            dir: dir.to_string(),
            source,
        })?;
    tracing::debug!(path, "created metadata database");
    Ok(db)
}

/// Begins a write transaction on a metadata database. It commits in two phases (data
/// synced, then the header slot flipped and synced: two fsyncs). With redb's default
/// one-phase commit, an open whose newest commit fails its checksums falls back to the
/// previous commit, which is right for a commit torn by a crash but silently drops an
/// acknowledged commit whose pages rotted at rest: a Raft log that forgets entries it
/// acknowledged, or a state machine that forgets applies. After a two-phase commit the
/// newest commit is complete on disk, so an open that finds it corrupt refuses the file
/// ([`RedbDiskError::Corrupted`]) instead.
pub fn begin_write(db: &Database) -> Result<redb::WriteTransaction, redb::TransactionError> {
    let mut txn = db.begin_write()?;
    txn.set_two_phase_commit(true);
    Ok(txn)
}

/// redb's page cache per database. redb's default is 1 GiB per database, and a meta
/// node opens several (one per hosted group), so a busy node's memory would grow toward
/// gigabytes; metadata pages are small and the OS page cache keeps the file warm.
pub const CACHE_BYTES: usize = 16 << 20;

/// Opens (or initialises) the database in `file`. Every open verifies the checksum of
/// every page of the committed trees (redb's `check_integrity_on_open`): a file altered
/// since redb wrote it (bit rot, a stray write) is refused with
/// [`RedbDiskError::Corrupted`], where a plain open would trust it, and could panic on
/// it or serve the rotten rows as this replica's state. The cost is one read of the
/// file per open (a node start): about 0.5–1 s per 500 MiB (BENCHMARKS.md, `meta_open`).
fn build(file: Arc<dyn DiskFile>, path: &str) -> Result<Database, RedbDiskError> {
    Builder::new()
        .set_cache_size(CACHE_BYTES)
        .set_check_integrity_on_open(true)
        .create_with_backend(DiskBackend::new(file, path))
        .map_err(|source| match source {
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
                RedbDiskError::Corrupted {
                    path: path.to_string(),
                    detail,
                }
            }
            source => RedbDiskError::DatabaseOpen {
                path: path.to_string(),
                source,
            },
        })
}

#[cfg(test)]
#[path = "redb_disk_test.rs"]
mod tests;
