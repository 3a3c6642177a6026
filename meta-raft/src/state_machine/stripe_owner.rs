//! The stripe index: which record references a stripe. Every stripe belongs to exactly
//! one version or one uploaded part; the index enforces that (a command that would make
//! a second record reference a stripe is rejected) and lets repair find the record to
//! update from a stripe id alone.

use serde::{Deserialize, Serialize};

/// The record that references a stripe.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StripeOwner {
    /// A version of an object (the version committed at log index `seq`).
    Version {
        bucket: String,
        key: String,
        version_id: String,
        seq: u64,
    },
    /// A part of a multipart upload in progress.
    Part { upload_id: String, part_number: u32 },
}
