//! `OrphanTracker`: the orphan sweep's memory and its one decision (pure: no I/O, the
//! caller passes the time). It remembers, on the sweeper's own monotonic clock, when
//! each unreferenced fragment (a location and a fragment id) was first seen
//! unreferenced, and says which ones have stayed unreferenced for the whole grace
//! period.
//!
//! Rules (the safety argument is in `orphans.rs`):
//! - a fragment is due only if it was seen unreferenced by a sweep at least `grace`
//!   before the current one *and* by the current one;
//! - a fragment the current sweep did not report unreferenced (it is referenced now, it
//!   is gone, or its disk could not be listed) is forgotten: if it shows up
//!   unreferenced again its grace starts over;
//! - a new leadership starts from nothing ([`OrphanTracker::reset`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::cluster::FragmentLocation;
use common::env::Instant;
use common::ids::FragmentId;

/// One fragment on one disk.
pub type Held = (FragmentLocation, FragmentId);

#[derive(Debug, Default)]
pub struct OrphanTracker {
    first_seen: BTreeMap<Held, Instant>,
}

impl OrphanTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything (a new leadership, or a sweep that could not finish).
    pub fn reset(&mut self) {
        self.first_seen.clear();
    }

    /// Records the sweep at `now`, which found `unreferenced` (the fragments of the
    /// disks it listed that no metadata read *after* the listing references). Returns
    /// the fragments first seen unreferenced at least `grace` before `now`, in order.
    pub fn observe(
        &mut self,
        now: Instant,
        unreferenced: &BTreeSet<Held>,
        grace: Duration,
    ) -> Vec<Held> {
        self.first_seen.retain(|h, _| unreferenced.contains(h));
        let mut due = Vec::new();
        for h in unreferenced {
            let first = *self.first_seen.entry(*h).or_insert(now);
            if now.saturating_duration_since(first) >= grace {
                due.push(*h);
            }
        }
        due
    }

    /// Forgets one fragment (deleted).
    pub fn forget(&mut self, h: &Held) {
        self.first_seen.remove(h);
    }

    /// When `h` was first seen unreferenced (still remembered).
    pub fn first_seen(&self, h: &Held) -> Option<Instant> {
        self.first_seen.get(h).copied()
    }

    /// Fragments remembered (unreferenced, within their grace or due).
    pub fn len(&self) -> usize {
        self.first_seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first_seen.is_empty()
    }
}
