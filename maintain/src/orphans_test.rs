//! The orphan sweep's decisions: which listed fragments are unreferenced, and when the
//! grace lets one be deleted.

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::FragmentLocation;
use common::env::{Clock, Instant};
use common::ids::{DiskId, FragmentId, NodeId, StripeId};

use crate::inventory::Inventory;
use crate::orphan_tracker::{Held, OrphanTracker};
use crate::orphans::unreferenced;

const GRACE: Duration = Duration::from_secs(6 * 3600);

fn loc(node: u64) -> FragmentLocation {
    FragmentLocation {
        node: NodeId(node),
        disk: DiskId(0),
    }
}

fn frag(stripe: u128, index: u8) -> FragmentId {
    FragmentId {
        stripe: StripeId(stripe),
        index,
    }
}

fn start() -> Instant {
    Clock::new().now()
}

fn set(items: &[Held]) -> BTreeSet<Held> {
    items.iter().copied().collect()
}

#[test]
fn referenced_stripes_are_never_unreferenced_whatever_their_location() {
    let mut inv = Inventory::default();
    inv.insert(loc(1), [frag(1, 0), frag(2, 0)]);
    inv.insert(loc(2), [frag(1, 1), frag(3, 4)]);
    let referenced: BTreeSet<StripeId> = [StripeId(1), StripeId(3)].into();
    assert_eq!(
        unreferenced(&inv, &referenced),
        set(&[(loc(1), frag(2, 0))])
    );
    // Nothing referenced: every listed fragment is a candidate.
    assert_eq!(unreferenced(&inv, &BTreeSet::new()).len(), 4);
}

#[test]
fn a_fragment_is_not_deleted_before_its_grace() {
    let t0 = start();
    let mut t = OrphanTracker::new();
    let h = (loc(1), frag(7, 2));
    let un = set(&[h]);
    assert!(t.observe(t0, &un, GRACE).is_empty(), "first sight");
    assert_eq!(t.first_seen(&h), Some(t0));
    assert!(t
        .observe(t0 + GRACE - Duration::from_secs(1), &un, GRACE)
        .is_empty());
    assert_eq!(t.observe(t0 + GRACE, &un, GRACE), vec![h]);
    t.forget(&h);
    assert!(t.is_empty());
}

#[test]
fn a_fragment_referenced_between_sweeps_is_never_deleted() {
    let t0 = start();
    let mut t = OrphanTracker::new();
    let h = (loc(1), frag(7, 2));
    assert!(t.observe(t0, &set(&[h]), GRACE).is_empty());
    // The PUT committed: the next sweep finds the stripe referenced.
    assert!(t
        .observe(t0 + Duration::from_secs(60), &BTreeSet::new(), GRACE)
        .is_empty());
    assert_eq!(t.first_seen(&h), None, "forgotten once referenced");
    // Later sweeps that report it referenced never make it due.
    for hours in 1..48 {
        let now = t0 + Duration::from_secs(hours * 3600);
        assert!(t.observe(now, &BTreeSet::new(), GRACE).is_empty());
    }
    // Unreferenced again (its version deleted and the GC acknowledged, yet a copy is
    // left): a full grace starts over.
    let t1 = t0 + Duration::from_secs(48 * 3600);
    assert!(t.observe(t1, &set(&[h]), GRACE).is_empty());
    assert!(t.observe(t1 + GRACE / 2, &set(&[h]), GRACE).is_empty());
    assert_eq!(t.observe(t1 + GRACE, &set(&[h]), GRACE), vec![h]);
}

#[test]
fn an_unlisted_disk_restarts_the_grace_and_a_reset_forgets_everything() {
    let t0 = start();
    let mut t = OrphanTracker::new();
    let a = (loc(1), frag(1, 0));
    let b = (loc(2), frag(2, 0));
    assert!(t.observe(t0, &set(&[a, b]), GRACE).is_empty());
    // Node 2 did not answer the next listing: b is forgotten, a keeps its age.
    assert!(t.observe(t0 + GRACE / 2, &set(&[a]), GRACE).is_empty());
    assert_eq!(t.observe(t0 + GRACE, &set(&[a, b]), GRACE), vec![a]);
    assert_eq!(t.first_seen(&b), Some(t0 + GRACE));
    // A new leadership: nothing is due before a full grace.
    t.reset();
    assert!(t.observe(t0 + 2 * GRACE, &set(&[a, b]), GRACE).is_empty());
    assert_eq!(t.len(), 2);
}

#[test]
fn only_fragments_seen_by_both_sweeps_are_due() {
    let t0 = start();
    let mut t = OrphanTracker::new();
    let old = (loc(1), frag(1, 0));
    let new = (loc(1), frag(2, 0));
    assert!(t.observe(t0, &set(&[old]), GRACE).is_empty());
    // A fragment first listed at the deciding sweep is not due, however old the sweep.
    assert_eq!(
        t.observe(t0 + 3 * GRACE, &set(&[old, new]), GRACE),
        vec![old]
    );
}
