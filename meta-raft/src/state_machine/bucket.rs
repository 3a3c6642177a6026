//! A bucket as the state machine records it.

use serde::{Deserialize, Serialize};

/// The S3 versioning state of a bucket. A bucket starts `Unversioned` (or `Enabled` if
/// created so) and, once versioned, only moves between `Enabled` and `Suspended`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Versioning {
    Unversioned,
    Enabled,
    Suspended,
}

/// One bucket: name, owner (access key id), creation time, versioning state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    /// The access key id that owns the bucket.
    pub owner: String,
    /// Milliseconds since the Unix epoch, as proposed (never read from a clock here).
    pub created_ms: u64,
    pub versioning: Versioning,
}
