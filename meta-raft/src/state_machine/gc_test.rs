//! GC: every fragment that stops being referenced by a live version or part is queued
//! exactly once, in the command that dropped it; no referenced fragment is ever queued.

use std::collections::BTreeSet;

use common::cluster::FragmentLocation;
use common::ids::{DiskId, NodeId, StripeId};
use proptest::prelude::*;

use super::test_support::*;
use super::workload::{op_spec, placement_of, Driver};
use super::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn unreferenced_fragments_are_queued_exactly_once(ops in prop::collection::vec(op_spec(), 1..60)) {
        let mut d = Driver::new();
        for op in &ops {
            d.step(op);
        }
        let txn = d.h.read();
        let referenced = referenced_fragments(&txn);
        let queued = queued_fragments(&gc_take(&txn, None, usize::MAX).unwrap());
        let released: Vec<_> = queued.iter().chain(&d.collected).copied().collect();
        let released_set: BTreeSet<_> = released.iter().copied().collect();
        prop_assert_eq!(released.len(), released_set.len(), "a fragment was queued twice");
        prop_assert!(referenced.is_disjoint(&released_set), "a referenced fragment was queued");
        let all: BTreeSet<_> = referenced.union(&released_set).copied().collect();
        prop_assert_eq!(&all, &d.introduced, "a fragment was lost (neither referenced nor queued)");
    }
}

#[test]
fn replace_placement_is_a_compare_and_set_and_queues_moved_fragments() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Enabled);
    h.apply(&Command::PutObject(put("bk", "k", "v1", striped(1, 2))));
    let old = placement_of(&h, StripeId(2));
    let new_loc = FragmentLocation {
        node: NodeId(999),
        disk: DiskId(3),
    };
    let mut new = old.clone();
    new[1] = new_loc;
    let cmd = |expected: Vec<FragmentLocation>| {
        Command::ReplacePlacement(ReplacePlacement {
            stripe: StripeId(2),
            expected,
            new: new.clone(),
        })
    };
    assert_eq!(
        h.apply(&cmd(old.clone())),
        Response::PlacementReplaced { moved: 1 }
    );
    assert_eq!(placement_of(&h, StripeId(2)), new);
    let gc = h.gc();
    assert_eq!(gc.len(), 1);
    assert_eq!((gc[0].stripe, gc[0].fragments.len()), (StripeId(2), 1));
    assert_eq!(
        (gc[0].fragments[0].index, gc[0].fragments[0].location),
        (1, old[1])
    );
    // The same CAS again: the placement moved on.
    assert_eq!(
        h.apply(&cmd(old.clone())),
        Response::Rejected(Reason::PlacementMismatch)
    );
    // A wrong length is refused.
    let short = Command::ReplacePlacement(ReplacePlacement {
        stripe: StripeId(2),
        expected: new.clone(),
        new: vec![new_loc],
    });
    assert!(matches!(
        h.apply(&short),
        Response::Rejected(Reason::InvalidArgument(_))
    ));
    // Once the version is gone, so is the stripe.
    h.apply(&Command::DeleteObject(delete("bk", "k", Some("v1"), "_")));
    assert_eq!(
        h.apply(&cmd(new.clone())),
        Response::Rejected(Reason::NoSuchStripe(StripeId(2)))
    );
    let queued: Vec<_> = h
        .gc()
        .iter()
        .map(|e| (e.stripe, e.fragments.len()))
        .collect();
    assert_eq!(
        queued,
        [(StripeId(2), 1), (StripeId(1), 3), (StripeId(2), 3)]
    );
    // The old copies at the moved location are queued once; the new one on deletion.
    let all = queued_fragments(&h.gc());
    assert!(all.contains(&(StripeId(2), 1, old[1])) && all.contains(&(StripeId(2), 1, new_loc)));
}

#[test]
fn gc_take_pages_oldest_first_and_ack_removes_entries() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Unversioned);
    h.apply(&Command::PutObject(put("bk", "k", "x", striped(1, 3))));
    h.apply(&Command::PutObject(put("bk", "k", "x", striped(10, 1))));
    h.apply(&Command::DeleteObject(delete("bk", "k", None, "_")));
    let all = h.gc();
    let ids: Vec<(u64, u32)> = all.iter().map(|e| (e.id.log_index, e.id.ordinal)).collect();
    assert_eq!(ids, [(3, 0), (3, 1), (3, 2), (4, 0)]);
    let page = gc_take(&h.read(), Some(all[1].id), 10).unwrap();
    assert_eq!(page, all[2..].to_vec());
    assert_eq!(gc_take(&h.read(), None, 2).unwrap(), all[..2].to_vec());
    let ack = Command::GcAck {
        ids: vec![
            all[0].id,
            all[3].id,
            GcId {
                log_index: 77,
                ordinal: 0,
            },
        ],
        at_ms: 0,
    };
    assert_eq!(h.apply(&ack), Response::GcAcked { removed: 2 });
    assert_eq!(h.gc(), all[1..3].to_vec());
}

/// Repair's caution: a placement change must not put fragment `i` back on a location
/// whose old copy of the same stripe and index still waits in the GC queue (the GC
/// worker would delete the new copy). Refused until the entry is acknowledged; the
/// per-stripe GC index follows queueing and acknowledgement.
#[test]
fn replace_placement_refuses_a_location_whose_old_copy_is_queued() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Enabled);
    h.apply(&Command::PutObject(put("bk", "k", "v1", striped(1, 2))));
    let old = placement_of(&h, StripeId(2));
    let away = FragmentLocation {
        node: NodeId(999),
        disk: DiskId(3),
    };
    let mut moved = old.clone();
    moved[1] = away;
    let replace = |expected: &[FragmentLocation], new: &[FragmentLocation]| {
        Command::ReplacePlacement(ReplacePlacement {
            stripe: StripeId(2),
            expected: expected.to_vec(),
            new: new.to_vec(),
        })
    };
    assert_eq!(
        h.apply(&replace(&old, &moved)),
        Response::PlacementReplaced { moved: 1 }
    );
    let pending = gc_pending_of(&h.read(), StripeId(2)).unwrap();
    assert_eq!(
        pending,
        [GcFragment {
            index: 1,
            location: old[1]
        }]
    );
    assert!(gc_pending_of(&h.read(), StripeId(1)).unwrap().is_empty());
    // Back to the old location of fragment 1: its old copy there is still queued.
    let back = h.apply(&replace(&moved, &old));
    assert!(
        matches!(&back, Response::Rejected(Reason::InvalidArgument(why)) if why.contains("queued")),
        "{back:?}"
    );
    assert_eq!(placement_of(&h, StripeId(2)), moved, "nothing changed");
    // Another index may go there (a different fragment file), and fragment 1 elsewhere.
    let mut other = moved.clone();
    other[1] = FragmentLocation {
        node: NodeId(998),
        disk: DiskId(0),
    };
    assert_eq!(
        h.apply(&replace(&moved, &other)),
        Response::PlacementReplaced { moved: 1 }
    );
    // Once the GC acknowledged the old copies, the location is free again.
    let ids: Vec<GcId> = h.gc().iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(
        h.apply(&Command::GcAck { ids, at_ms: 0 }),
        Response::GcAcked { removed: 2 }
    );
    assert!(gc_pending_of(&h.read(), StripeId(2)).unwrap().is_empty());
    assert_eq!(
        h.apply(&replace(&other, &old)),
        Response::PlacementReplaced { moved: 1 }
    );
    assert_eq!(placement_of(&h, StripeId(2)), old);
}
