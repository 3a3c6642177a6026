//! The inventory's answers for repair's missing-fragment detection.

use common::cluster::FragmentLocation;
use common::ids::{DiskId, FragmentId, NodeId, StripeId};

use crate::inventory::Inventory;

fn loc(node: u64, disk: u32) -> FragmentLocation {
    FragmentLocation {
        node: NodeId(node),
        disk: DiskId(disk),
    }
}

fn frag(stripe: u128, index: u8) -> FragmentId {
    FragmentId {
        stripe: StripeId(stripe),
        index,
    }
}

#[test]
fn a_fragment_absent_from_a_listed_disk_is_missing() {
    let mut inv = Inventory::default();
    inv.insert(loc(1, 0), [frag(1, 0), frag(2, 3)]);
    inv.insert(loc(1, 1), []);
    assert!(!inv.missing(loc(1, 0), frag(1, 0)));
    assert_eq!(inv.holds(loc(1, 0), frag(1, 0)), Some(true));
    assert!(
        inv.missing(loc(1, 0), frag(1, 1)),
        "another index of a held stripe"
    );
    assert!(
        inv.missing(loc(1, 1), frag(1, 0)),
        "held on another disk of the node"
    );
    assert!(
        inv.missing(loc(1, 1), frag(9, 0)),
        "an empty (replaced) disk"
    );
    assert_eq!(inv.len(), 2);
    assert_eq!(inv.disks(), 2);
}

#[test]
fn a_disk_that_was_not_listed_is_unknown_never_missing() {
    let mut inv = Inventory::default();
    inv.insert(loc(1, 0), [frag(1, 0)]);
    inv.failed = 1;
    assert_eq!(inv.holds(loc(2, 0), frag(1, 0)), None);
    assert!(!inv.missing(loc(2, 0), frag(1, 0)));
    assert!(!inv.missing(loc(1, 7), frag(1, 0)));
    assert_eq!(
        inv.stripes().into_iter().collect::<Vec<_>>(),
        vec![StripeId(1)]
    );
}
