//! The fragment GC queue: fragments that no live version, part or upload references any
//! more, waiting for a GC worker to delete them from their data nodes.
//!
//! An entry is queued in the same command that stops referencing the fragments (the
//! overwrite, the delete, the abort, the placement change), so a fragment is never
//! forgotten and never queued while still referenced. A worker takes the oldest entries
//! ([`super::gc_take`]), deletes every listed fragment (deleting an absent fragment
//! succeeds), then acknowledges the entries with [`super::Command::GcAck`].
//!
//! Caution for repair: an entry names a fragment by `(stripe, index, location)`. If a
//! placement change puts fragment `index` back on a location whose old copy is still
//! queued, the worker would delete the new copy. The state machine refuses such a
//! `ReplacePlacement` (found through the per-stripe index `sm_gc_by_stripe`, see
//! [`super::gc_pending_of`]) until the entry is acknowledged, and repair avoids those
//! nodes when it plans.

use common::cluster::FragmentLocation;
use common::ids::StripeId;
use serde::{Deserialize, Serialize};

/// Names one GC entry: the log index of the command that queued it and its position
/// among the entries that command queued. Entries are taken in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GcId {
    pub log_index: u64,
    pub ordinal: u32,
}

/// One fragment to delete: fragment `index` of the entry's stripe, on `location`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GcFragment {
    pub index: u8,
    pub location: FragmentLocation,
}

/// Fragments of one stripe to delete: all of them when the stripe is no longer
/// referenced, or only those a placement change moved away.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcEntry {
    pub id: GcId,
    pub stripe: StripeId,
    pub fragments: Vec<GcFragment>,
}
