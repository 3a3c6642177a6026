//! Errors of the state machine. Business outcomes are not errors: a command that S3
//! semantics refuse is applied as `Ok(Response::Rejected(reason))`, so the Raft log keeps
//! applying. [`ApplyError`] means the storage failed or holds a record it cannot read;
//! the caller must not commit the transaction.

use super::response::Reason;

/// The storage under the state machine failed, or a stored record is unreadable.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("metadata storage failed: {0}")]
    Storage(#[from] redb::Error),
    #[error("corrupt metadata in table {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
}

impl From<redb::TableError> for ApplyError {
    fn from(e: redb::TableError) -> Self {
        ApplyError::Storage(e.into())
    }
}

impl From<redb::StorageError> for ApplyError {
    fn from(e: redb::StorageError) -> Self {
        ApplyError::Storage(e.into())
    }
}

/// Why a query gave no answer: what it names does not exist or the arguments are
/// invalid ([`Reason`]), or the storage failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Rejected(Reason),
    #[error(transparent)]
    Storage(#[from] ApplyError),
}

impl From<Reason> for QueryError {
    fn from(r: Reason) -> Self {
        QueryError::Rejected(r)
    }
}

impl From<redb::TableError> for QueryError {
    fn from(e: redb::TableError) -> Self {
        QueryError::Storage(e.into())
    }
}

impl From<redb::StorageError> for QueryError {
    fn from(e: redb::StorageError) -> Self {
        QueryError::Storage(e.into())
    }
}
