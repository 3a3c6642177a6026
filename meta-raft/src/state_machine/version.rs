//! A version: one immutable write of an object (or a delete marker).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::body::ObjectBody;

/// The version id of the null version (unversioned and versioning-suspended writes).
pub const NULL_VERSION_ID: &str = "null";

/// The headers stored with an object and returned on GET/HEAD.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub expires: Option<String>,
    /// `x-amz-meta-*` headers, names without the prefix.
    pub user_metadata: BTreeMap<String, String>,
}

/// One version of an object, or a delete marker (`is_delete_marker`, empty inline body).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub bucket: String,
    pub key: String,
    /// Chosen by the proposer in versioning-enabled buckets; [`NULL_VERSION_ID`] otherwise.
    pub version_id: String,
    /// Commit order: the Raft log index of the command that created this version.
    pub seq: u64,
    /// Milliseconds since the Unix epoch, as proposed.
    pub created_ms: u64,
    /// The access key id that wrote the version.
    pub owner: String,
    pub size: u64,
    /// Lowercase hex MD5, or `md5-of-md5s-N` for multipart (no quotes); empty for markers.
    pub etag: String,
    /// Checksums by algorithm name (e.g. `crc32c`) → base64 value, as S3 returns them.
    pub checksums: BTreeMap<String, String>,
    pub meta: ObjectMeta,
    pub body: ObjectBody,
    pub is_delete_marker: bool,
}
