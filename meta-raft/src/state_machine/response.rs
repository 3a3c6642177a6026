//! What applying a command answers.

use std::fmt;

use common::ids::StripeId;
use serde::{Deserialize, Serialize};

/// The result of one applied command. `Rejected` is a business outcome (the command had
/// no effect at all); everything else describes the effect.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// For log entries that carry no command (blank and membership entries).
    #[default]
    Empty,
    BucketCreated,
    /// The bucket is gone; its multipart uploads in progress were aborted (parts → GC).
    BucketDeleted {
        aborted_uploads: u32,
    },
    VersioningSet,
    /// A version was committed (PutObject or CompleteMultipartUpload) — or, for a retried
    /// command whose version already exists unchanged, found (`seq` is the original).
    Committed {
        /// The stored version id (`"null"` in unversioned and suspended buckets).
        version_id: String,
        seq: u64,
        etag: String,
        size: u64,
    },
    /// DeleteObject. `version_id` is the id of the delete marker created, or of the version
    /// removed (`None` for a removal in an unversioned bucket); `delete_marker` says whether
    /// that version is a delete marker (S3's `x-amz-delete-marker`).
    Deleted {
        version_id: Option<String>,
        delete_marker: bool,
    },
    /// ReplacePlacement; `moved` fragments changed location (their old copies → GC).
    PlacementReplaced {
        moved: u32,
    },
    UploadCreated,
    PartRecorded,
    /// AbortMultipartUpload; the upload's `parts` went to the GC queue.
    UploadAborted {
        parts: u32,
    },
    /// GcAck; `removed` entries were in the queue (unknown ids are ignored).
    GcAcked {
        removed: u32,
    },
    Rejected(Reason),
}

/// Why a command was rejected, or a query could not answer. Variants named after S3 error
/// codes map to them one to one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Reason {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("the bucket name is taken by another owner")]
    BucketAlreadyExists,
    #[error("the bucket already exists and is yours")]
    BucketAlreadyOwnedByYou,
    #[error("the bucket is not empty")]
    BucketNotEmpty,
    #[error("invalid bucket name (empty, or contains a NUL byte)")]
    InvalidBucketName,
    #[error("the key is longer than 1024 bytes")]
    KeyTooLong,
    #[error("no such key")]
    NoSuchKey,
    #[error("no such version")]
    NoSuchVersion,
    #[error("a precondition does not hold")]
    PreconditionFailed,
    #[error("no such multipart upload")]
    NoSuchUpload,
    #[error("part {part_number} was not uploaded or its etag does not match")]
    InvalidPart { part_number: u32 },
    #[error("the parts are not in ascending order of part number")]
    InvalidPartOrder,
    #[error("part {part_number} is smaller than the minimum part size")]
    EntityTooSmall { part_number: u32 },
    #[error("part numbers must be between 1 and 10000")]
    InvalidPartNumber,
    #[error("a multipart upload has at most 10000 parts")]
    TooManyParts,
    #[error("the part list is empty")]
    NoParts,
    #[error("the version id is already used by a different version of this key")]
    VersionIdConflict,
    #[error("the upload id is already used by a different upload")]
    UploadIdConflict,
    #[error("stripe {0} is already referenced by another record")]
    StripeInUse(StripeId),
    #[error("no record references stripe {0}")]
    NoSuchStripe(StripeId),
    #[error("the stripe's placement differs from the expected one")]
    PlacementMismatch,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Response::Rejected(r) => write!(f, "rejected: {r}"),
            other => write!(f, "{other:?}"),
        }
    }
}
