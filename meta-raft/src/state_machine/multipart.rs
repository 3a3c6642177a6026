//! Multipart uploads in progress and their parts.

use std::collections::BTreeMap;

use common::codec::CodecParams;
use serde::{Deserialize, Serialize};

use super::body::StripeRecord;
use super::version::ObjectMeta;

/// The S3 part number range.
pub const MIN_PART_NUMBER: u32 = 1;
pub const MAX_PART_NUMBER: u32 = 10_000;

/// A multipart upload in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartUpload {
    pub bucket: String,
    pub key: String,
    /// Chosen by the proposer; unique in the group.
    pub upload_id: String,
    /// The log index of the command that created it.
    pub seq: u64,
    pub initiated_ms: u64,
    /// The access key id that initiated the upload (owner of the completed object).
    pub owner: String,
    /// Headers the completed object will carry.
    pub meta: ObjectMeta,
    /// The erasure code every part's stripes use.
    pub codec: CodecParams,
    /// `x-amz-checksum-algorithm` given at create, if any.
    pub checksum_algorithm: Option<String>,
}

/// One uploaded part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub upload_id: String,
    /// 1..=10000.
    pub part_number: u32,
    pub size: u64,
    /// Lowercase hex MD5 of the part's bytes (no quotes).
    pub etag: String,
    pub checksums: BTreeMap<String, String>,
    pub stripes: Vec<StripeRecord>,
    pub created_ms: u64,
    /// The log index of the command that recorded it.
    pub seq: u64,
}
