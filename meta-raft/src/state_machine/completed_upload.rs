//! Completed multipart uploads, remembered so that a retried CompleteMultipartUpload (its
//! first answer was lost) gets the same answer, as S3 gives.
//!
//! Completing an upload writes a [`CompletedUpload`] under the upload id (`sm_completed`)
//! and the upload id under the version's row key (`sm_completed_by_version`). A retried
//! Complete that finds no upload in progress looks here: the same bucket, key and part
//! list (numbers and ETags) answer the original `Committed`; anything else is
//! `NoSuchUpload`.
//!
//! Growth is bounded by the versions themselves: the record lives exactly as long as the
//! version the upload produced. Removing that version (deleted by id, overwritten as the
//! null version, deleted in an unversioned bucket) removes the record in the same command,
//! after which a retry answers `NoSuchUpload`. A record is smaller than the version's own
//! manifest (part numbers and ETags only), so it at most doubles the per-part metadata of
//! multipart objects.

use serde::{Deserialize, Serialize};

/// What a completed upload produced, and the part list that completed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedUpload {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    /// The version the upload became (`"null"` in unversioned and suspended buckets).
    pub version_id: String,
    /// That version's seq (the log index of the completing command).
    pub seq: u64,
    /// The listed parts: part number and lowercase hex MD5, in the order given.
    pub parts: Vec<(u32, String)>,
}
