//! The commands of an object group's state machine. Everything a command does depends
//! only on the current state, the command and the log index: timestamps, version ids,
//! upload ids and placements travel inside it, chosen by the proposer.

use std::collections::BTreeMap;
use std::fmt;

use common::cluster::FragmentLocation;
use common::codec::CodecParams;
use common::ids::StripeId;
use serde::{Deserialize, Serialize};

use super::body::{ObjectBody, StripeRecord};
use super::bucket::Versioning;
use super::gc::GcId;
use super::version::ObjectMeta;

/// A condition on the object's current version (its newest version, which may be a
/// delete marker), checked atomically with the write. All conditions must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precondition {
    /// `If-None-Match: *`: no current version, or the current version is a delete marker.
    /// Otherwise `PreconditionFailed`.
    KeyAbsent,
    /// `If-Match: etag` (unquoted; surrounding quotes are ignored): the current version is
    /// an object with this ETag. `NoSuchKey` if there is no current object, otherwise
    /// `PreconditionFailed` on a mismatch.
    CurrentEtagEquals(String),
    /// The current version (object or delete marker) has this version id; otherwise
    /// `PreconditionFailed` (compare-and-set on the version pointer).
    CurrentVersionEquals(String),
}

/// Commit a new version of an object: the atomic pointer flip.
///
/// In an `Enabled` bucket the version gets `version_id` and older versions stay. In an
/// `Unversioned` or `Suspended` bucket it becomes the null version, replacing the existing
/// null version, whose stripes go to the GC queue in the same command (stripes the new
/// version also lists — a retried command — are kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutObject {
    pub bucket: String,
    pub key: String,
    /// Used in `Enabled` buckets; must not be `"null"`. If this key already has a version
    /// with this id, the command is a retry: `Committed` if that version has the same
    /// body and ETag (nothing changes), `VersionIdConflict` otherwise.
    pub version_id: String,
    pub created_ms: u64,
    pub owner: String,
    pub size: u64,
    pub etag: String,
    pub checksums: BTreeMap<String, String>,
    pub meta: ObjectMeta,
    /// `Inline` or `Stripes` (`Multipart` bodies come only from completing an upload);
    /// `size` must equal the body's length.
    pub body: ObjectBody,
    pub preconditions: Vec<Precondition>,
}

/// Delete an object (S3 DeleteObject).
///
/// Without `version_id`: `Unversioned` removes the null version (stripes → GC; no effect
/// if there is none, still `Deleted`); `Enabled` adds a delete marker with
/// `marker_version_id`; `Suspended` adds a null delete marker replacing the null version.
/// With `version_id`: removes exactly that version (`NoSuchVersion` if absent); the next
/// newest version becomes current.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteObject {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub created_ms: u64,
    pub owner: String,
    /// The id of the delete marker an `Enabled` bucket creates (must not be `"null"`).
    /// If this key already has a delete marker with this id, the command is a retry and
    /// answers `Deleted` again without change.
    pub marker_version_id: String,
    /// Checked against the current version (also when `version_id` names another one).
    pub preconditions: Vec<Precondition>,
}

/// Repair's compare-and-set of one stripe's placement. The stripe is found through the
/// stripe index (a version or an uploaded part). Rejected with `NoSuchStripe` if no
/// record references it any more, `PlacementMismatch` if its placement is not
/// `expected`. Fragments whose location changed go to the GC queue (old location).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplacePlacement {
    pub stripe: StripeId,
    pub expected: Vec<FragmentLocation>,
    pub new: Vec<FragmentLocation>,
}

/// Start a multipart upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateMultipartUpload {
    pub bucket: String,
    pub key: String,
    /// Chosen by the proposer. A retry (same id, same bucket and key) is `UploadCreated`
    /// again without change; the same id for another object is `UploadIdConflict`.
    pub upload_id: String,
    pub initiated_ms: u64,
    pub owner: String,
    pub meta: ObjectMeta,
    pub codec: CodecParams,
    pub checksum_algorithm: Option<String>,
}

/// Record an uploaded part. A part with the same number is replaced and its stripes go to
/// the GC queue (except stripes the new part also lists — a retried command).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPart {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    /// 1..=10000.
    pub part_number: u32,
    /// Must equal the sum of the stripes' `data_len`.
    pub size: u64,
    /// Lowercase hex MD5 of the part (32 hex digits).
    pub etag: String,
    pub checksums: BTreeMap<String, String>,
    /// Coded with the upload's codec.
    pub stripes: Vec<StripeRecord>,
    pub created_ms: u64,
}

/// One entry of the client's CompleteMultipartUpload list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedPart {
    pub part_number: u32,
    /// The part's ETag as the client sent it (surrounding quotes are ignored).
    pub etag: String,
}

/// Complete a multipart upload: check the list, build the manifest, commit the version
/// exactly like [`PutObject`] (versioning, preconditions, null-version replacement).
///
/// Checks, in order: the upload exists for this bucket and key (`NoSuchUpload`); the list
/// is not empty (`NoParts`) and has at most 10,000 entries (`TooManyParts`); part numbers
/// strictly ascend (`InvalidPartOrder`); every listed part was uploaded with that ETag
/// (`InvalidPart`); every listed part but the last has at least `min_part_size` bytes
/// (`EntityTooSmall`); then the preconditions. The ETag is
/// `hex(md5(md5(part 1) || … || md5(part N))) + "-N"`. Uploaded parts not listed go to the
/// GC queue; the upload disappears. A Complete for an upload that already completed
/// with the same bucket, key and part list answers the same `Committed` while the version
/// it made exists (`NoSuchUpload` otherwise; see `completed_upload.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteMultipartUpload {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub parts: Vec<CompletedPart>,
    /// S3: 5 MiB.
    pub min_part_size: u64,
    /// Used in `Enabled` buckets (see [`PutObject::version_id`]).
    pub version_id: String,
    pub created_ms: u64,
    /// The completed object's checksums (the gateway computes composite values).
    pub checksums: BTreeMap<String, String>,
    pub preconditions: Vec<Precondition>,
}

/// Abort a multipart upload: every part goes to the GC queue, the upload disappears.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortMultipartUpload {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
}

/// A command of an object group's state machine (see [`super::apply()`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// `BucketAlreadyExists` / `BucketAlreadyOwnedByYou` if the name is taken.
    CreateBucket {
        name: String,
        owner: String,
        created_ms: u64,
        versioning: Versioning,
    },
    /// Only if this state machine holds no version or delete marker of the bucket
    /// (`BucketNotEmpty`); multipart uploads in progress are aborted (parts → GC).
    ///
    /// This checks *this group's* state only. When a bucket's key range spans several
    /// groups, proving the whole bucket empty (and keeping it so while deleting) is the
    /// caller's job.
    DeleteBucket {
        name: String,
    },
    /// `Enabled` or `Suspended` (a bucket never returns to `Unversioned`).
    SetBucketVersioning {
        name: String,
        versioning: Versioning,
    },
    PutObject(PutObject),
    DeleteObject(DeleteObject),
    ReplacePlacement(ReplacePlacement),
    CreateMultipartUpload(CreateMultipartUpload),
    RecordPart(RecordPart),
    CompleteMultipartUpload(CompleteMultipartUpload),
    AbortMultipartUpload(AbortMultipartUpload),
    /// Remove GC entries whose fragments the worker deleted (unknown ids are ignored),
    /// keeping a tombstone of each; `at_ms` is the proposer's wall clock, which orders
    /// the tombstones for pruning (0: unknown, nothing is pruned).
    GcAck {
        ids: Vec<GcId>,
        at_ms: u64,
    },
    /// Cluster map, group map and access keys (root group only).
    Root(super::root::RootCommand),
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::CreateBucket { name, .. } => write!(f, "create-bucket {name}"),
            Command::DeleteBucket { name } => write!(f, "delete-bucket {name}"),
            Command::SetBucketVersioning { name, versioning } => {
                write!(f, "set-versioning {name} {versioning:?}")
            }
            Command::PutObject(c) => write!(f, "put {}/{}", c.bucket, c.key),
            Command::DeleteObject(c) => match &c.version_id {
                Some(v) => write!(f, "delete {}/{} version {v}", c.bucket, c.key),
                None => write!(f, "delete {}/{}", c.bucket, c.key),
            },
            Command::ReplacePlacement(c) => write!(f, "replace-placement {}", c.stripe),
            Command::CreateMultipartUpload(c) => {
                write!(f, "create-upload {}/{} {}", c.bucket, c.key, c.upload_id)
            }
            Command::RecordPart(c) => write!(f, "record-part {} #{}", c.upload_id, c.part_number),
            Command::CompleteMultipartUpload(c) => write!(f, "complete-upload {}", c.upload_id),
            Command::AbortMultipartUpload(c) => write!(f, "abort-upload {}", c.upload_id),
            Command::GcAck { ids, .. } => write!(f, "gc-ack {} entries", ids.len()),
            Command::Root(c) => write!(f, "root {c:?}"),
        }
    }
}
