//! Typed errors of the fragment store. Storage errors carry what was being done (verb)
//! to what (subject), as openraft's `StorageError` does.

use std::io;

use common::ids::FragmentId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("fragment {0} not found")]
    NotFound(FragmentId),
    /// A checksum failed. The bytes are never returned; the fragment counts as lost and
    /// is reported for repair.
    #[error("fragment {id} is corrupt: {detail}")]
    Corrupt { id: FragmentId, detail: String },
    /// The disk is full; retriable on another disk or after GC.
    #[error("no space: {0}")]
    NoSpace(String),
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    #[error("fragment {0} already exists with different contents")]
    AlreadyExists(FragmentId),
    #[error("fragment {0} is being written by another request")]
    Busy(FragmentId),
    #[error("fragment of {length} bytes exceeds the limit of {max} bytes")]
    TooLarge { length: u64, max: u64 },
    #[error("checksum mismatch for {id}: declared {declared:#010x}, received {actual:#010x}")]
    ChecksumMismatch {
        id: FragmentId,
        declared: u32,
        actual: u32,
    },
    #[error("this node has no disk {0}")]
    UnknownDisk(u32),
    #[error("disk I/O error while {verb} {subject}: {source}")]
    Io {
        verb: &'static str,
        subject: String,
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    /// Wraps an I/O error; a full disk becomes `NoSpace`.
    pub fn io(verb: &'static str, subject: impl Into<String>, source: io::Error) -> Self {
        let subject = subject.into();
        if source.kind() == io::ErrorKind::StorageFull {
            return StoreError::NoSpace(format!("disk full while {verb} {subject}: {source}"));
        }
        StoreError::Io {
            verb,
            subject,
            source,
        }
    }

    /// Whether the caller may retry (possibly elsewhere).
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            StoreError::NoSpace(_) | StoreError::Busy(_) | StoreError::Io { .. }
        )
    }
}
