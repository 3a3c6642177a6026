//! The deterministic state machine of an object group: pure functions over redb
//! transactions. No Raft, no async, no clock, no randomness — timestamps, version ids,
//! upload ids and placements travel inside [`Command`]s, and the caller passes the Raft
//! log index, which orders versions ("last writer wins" = commit order).
//!
//! - [`apply()`]`(txn, log_index, &cmd)` applies one command. S3 business outcomes
//!   (precondition failed, no such bucket, invalid part order, …) are
//!   `Ok(Response::Rejected(reason))` and change nothing; [`ApplyError`] is only for
//!   storage failures and unreadable records.
//! - Queries take a `&redb::ReadTransaction`: [`get_bucket`], [`list_buckets`],
//!   [`head_object`], [`get_version`], [`get_upload`], [`stripe_owner()`], [`gc_take`],
//!   [`list_objects()`], [`list_object_versions`], [`list_multipart_uploads`],
//!   [`list_parts`], [`list_stripes()`] (repair's walk over the stripe index).
//!
//! Storage layout: [`tables`] (one table per record kind, all `&[u8] -> &[u8]` with
//! postcard values). Key encodings and the `(bucket, key)` order that also defines the
//! ranges groups own: [`keys`].
//!
//! # Invariants (checked by the tests after every command)
//! - Determinism: the same state and command give the same response and the same bytes
//!   in every table (only ordered maps; nothing depends on hashing or insertion order).
//! - A rejected command writes nothing.
//! - The current version of an object is its newest version (highest seq). The `sm_live`
//!   table holds exactly the objects whose current version is not a delete marker.
//! - Every stripe belongs to exactly one version or one part (the `sm_stripes` index);
//!   a fragment that stops being referenced is queued for GC in the same command, exactly
//!   once, and a referenced fragment is never queued.
//! - A completed multipart upload is remembered exactly as long as the version it
//!   produced exists ([`completed_upload`]), so a retried Complete answers the same.
//!
//! # Scope: one group
//! Bucket records live in every state machine that holds objects of the bucket; a
//! bucket-wide decision (is it empty? its versioning state) is per group, and keeping
//! several groups agreeing is the caller's job.

pub mod apply;
mod apply_multipart;
pub mod body;
pub mod bucket;
pub mod command;
pub mod completed_upload;
pub mod error;
pub mod gc;
pub mod keys;
pub mod list_objects;
pub mod list_stripes;
pub mod list_uploads;
pub mod list_versions;
pub mod multipart;
pub mod object_entry;
pub mod query;
pub mod response;
pub mod root;
#[cfg(test)]
mod root_test;
mod scan;
pub mod stripe_owner;
pub mod tables;
pub mod version;

pub use apply::{apply, MAX_KEY_LEN};
pub use apply_multipart::{multipart_etag, MAX_PARTS};
pub use body::{ObjectBody, PartManifestEntry, StripeRecord};
pub use bucket::{BucketRecord, Versioning};
pub use command::{
    AbortMultipartUpload, Command, CompleteMultipartUpload, CompletedPart, CreateMultipartUpload,
    DeleteObject, Precondition, PutObject, RecordPart, ReplacePlacement,
};
pub use completed_upload::CompletedUpload;
pub use error::{ApplyError, QueryError};
pub use gc::{GcEntry, GcFragment, GcId};
pub use list_objects::{list_objects, ListObjectsPage, ListObjectsParams, MAX_LIST_KEYS};
pub use list_stripes::{list_stripes, ListStripesPage, StripeEntry, MAX_LIST_STRIPES};
pub use list_uploads::{
    list_multipart_uploads, list_parts, ListPartsPage, ListUploadsPage, ListUploadsParams,
};
pub use list_versions::{list_object_versions, ListVersionsPage, ListVersionsParams, VersionEntry};
pub use multipart::{MultipartUpload, PartRecord, MAX_PART_NUMBER, MIN_PART_NUMBER};
pub use object_entry::ObjectEntry;
pub use query::{
    gc_pending_of, gc_take, get_bucket, get_upload, get_version, head_object, list_buckets,
    stripe_owner, CurrentVersion,
};
pub use response::{Reason, Response};
pub use root::{
    access_key, access_keys, apply_root, cluster_map, group_map, nodes, AccessKey, DiskFailure,
    GroupMap, GroupRange, NodeRecord, RootCommand,
};
pub use stripe_owner::StripeOwner;
pub use tables::create_all as create_tables;
pub use version::{ObjectMeta, VersionRecord, NULL_VERSION_ID};

#[cfg(test)]
mod determinism_test;
#[cfg(test)]
mod gc_property_test;
#[cfg(test)]
mod gc_test;
#[cfg(test)]
mod keys_test;
#[cfg(test)]
mod list_stripes_test;
#[cfg(test)]
mod listing_test;
#[cfg(test)]
mod multipart_test;
#[cfg(test)]
mod precondition_test;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod versioning_test;
#[cfg(test)]
mod workload;
