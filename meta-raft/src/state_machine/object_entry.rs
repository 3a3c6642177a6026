//! The listing summary of an object's current version, kept for every object whose
//! current version is not a delete marker (the `live` table), so LIST reads one small
//! row per object.

use serde::{Deserialize, Serialize};

use super::version::VersionRecord;

/// One object as ListObjects returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    pub key: String,
    pub version_id: String,
    pub seq: u64,
    pub created_ms: u64,
    pub size: u64,
    pub etag: String,
    pub owner: String,
    /// Names of the stored checksums (e.g. `crc32c`), in order.
    pub checksum_algorithms: Vec<String>,
}

impl ObjectEntry {
    /// The summary of `version` (which must not be a delete marker).
    pub fn of(version: &VersionRecord) -> Self {
        ObjectEntry {
            key: version.key.clone(),
            version_id: version.version_id.clone(),
            seq: version.seq,
            created_ms: version.created_ms,
            size: version.size,
            etag: version.etag.clone(),
            owner: version.owner.clone(),
            checksum_algorithms: version.checksums.keys().cloned().collect(),
        }
    }
}
