//! `plan_replacements`: kept fragments stay, new ones obey the rule in the view without
//! the excluded nodes, refusals are truly infeasible (independent count), deterministic.

use std::collections::{BTreeMap, BTreeSet};

use common::cluster::{check_placement, ClusterMap, DiskState, FragmentLocation, NodeState};
use common::ids::{DiskId, NodeId, RackId, StripeId};
use proptest::prelude::*;

use crate::test_support::*;
use crate::{plan_replacements, plan_stripe, view_without, PlanError};

/// Independent of the planner: how many of `missing` slots can be filled in `view`
/// next to the kept locations.
fn spare_capacity(
    view: &ClusterMap,
    n: usize,
    m: u8,
    fragment_bytes: u64,
    kept: &[FragmentLocation],
) -> usize {
    let usable: BTreeSet<&RackId> = view
        .nodes
        .values()
        .filter(|x| {
            x.state == NodeState::Up && x.disks.iter().any(|d| d.state == DiskState::Healthy)
        })
        .map(|x| &x.rack)
        .collect();
    let cap = if usable.len() >= n { 1 } else { usize::from(m) };
    let kept_nodes: BTreeSet<NodeId> = kept.iter().map(|l| l.node).collect();
    let mut kept_per_rack: BTreeMap<&RackId, usize> = BTreeMap::new();
    for l in kept {
        *kept_per_rack.entry(&view.nodes[&l.node].rack).or_default() += 1;
    }
    let mut free: BTreeMap<&RackId, usize> = BTreeMap::new();
    for (id, x) in &view.nodes {
        let ok = x.state == NodeState::Up
            && !kept_nodes.contains(id)
            && x.disks.iter().any(|d| {
                d.state == DiskState::Healthy
                    && d.capacity_bytes.saturating_sub(d.used_bytes) >= fragment_bytes
            });
        if ok {
            *free.entry(&x.rack).or_default() += 1;
        }
    }
    free.iter()
        .map(|(r, &e)| e.min(cap.saturating_sub(kept_per_rack.get(r).copied().unwrap_or(0))))
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn replacements_keep_slots_and_obey_the_rule(
        topo in topology(1..=8, 1..=4, 1..=2),
        k in 1u8..=5,
        m in 1u8..=3,
        fragment_bytes in 0u64..=150,
        stripe in any::<u128>(),
        lost_mask in any::<u32>(),
        exclude_mask in any::<u64>(),
        exclude_lost in any::<bool>(),
    ) {
        let map = build(&topo);
        let n = usize::from(k) + usize::from(m);
        let stripe = StripeId(stripe);
        let Ok(first) = plan_stripe(&map, k, m, stripe, fragment_bytes) else {
            return Ok(());
        };
        let current: Vec<Option<FragmentLocation>> = first
            .locations
            .iter()
            .enumerate()
            .map(|(i, l)| if lost_mask & (1 << i) != 0 { None } else { Some(*l) })
            .collect();
        let mut exclude: BTreeSet<NodeId> = map
            .nodes
            .keys()
            .enumerate()
            .filter(|(i, _)| exclude_mask & (1 << (i % 64)) != 0 && i % 3 == 0)
            .map(|(_, id)| *id)
            .collect();
        if exclude_lost {
            for (i, l) in first.locations.iter().enumerate() {
                if current[i].is_none() {
                    exclude.insert(l.node);
                }
            }
        }
        let view = view_without(&map, &exclude);
        let kept: Vec<FragmentLocation> = current.iter().flatten().copied().collect();
        let missing = n - kept.len();
        let spare = spare_capacity(&view, n, m, fragment_bytes, &kept);
        let got = plan_replacements(&map, k, m, stripe, fragment_bytes, &current, &exclude);
        match &got {
            Ok(p) => {
                prop_assert_eq!(p.locations.len(), n);
                for (slot, loc) in current.iter().zip(&p.locations) {
                    match slot {
                        Some(kept) => prop_assert_eq!(kept, loc),
                        None => {
                            prop_assert!(!exclude.contains(&loc.node));
                            prop_assert!(crate::is_eligible(&view, *loc, fragment_bytes));
                        }
                    }
                }
                prop_assert_eq!(check_placement(&view, p, k, m), Ok(()));
                prop_assert!(spare >= missing);
            }
            Err(PlanError::NoReplacement { .. }) => {
                prop_assert!(spare < missing, "refused but {} spare >= {} missing", spare, missing);
            }
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
        let again = plan_replacements(&map, k, m, stripe, fragment_bytes, &current, &exclude);
        prop_assert_eq!(got, again);
    }
}

fn loc(node: u64, disk: u32) -> FragmentLocation {
    FragmentLocation {
        node: NodeId(node),
        disk: DiskId(disk),
    }
}

#[test]
fn a_failed_fragment_moves_to_another_node_of_a_rack_below_its_limit() {
    // 4 racks x 4 nodes: 8+4 puts 3 per rack (limit 4).
    let map = homogeneous(4, 4, 1, GIB);
    let stripe = StripeId(7);
    let first = plan_stripe(&map, 8, 4, stripe, MIB).unwrap();
    let lost = first.locations[2].node;
    let mut current: Vec<_> = first.locations.iter().copied().map(Some).collect();
    current[2] = None;
    let exclude = BTreeSet::from([lost]);
    let p = plan_replacements(&map, 8, 4, stripe, MIB, &current, &exclude).unwrap();
    assert_ne!(p.locations[2].node, lost);
    let used: BTreeSet<NodeId> = p.locations.iter().map(|l| l.node).collect();
    assert_eq!(used.len(), 12);
    for (i, l) in p.locations.iter().enumerate() {
        if i != 2 {
            assert_eq!(*l, first.locations[i]);
        }
    }
}

#[test]
fn no_room_is_refused_with_a_reason() {
    // 3 racks x 4 nodes, 8+4: every node holds a fragment, none is left for a replacement.
    let map = homogeneous(3, 4, 1, GIB);
    let first = plan_stripe(&map, 8, 4, StripeId(1), MIB).unwrap();
    let mut current: Vec<_> = first.locations.iter().copied().map(Some).collect();
    let lost = first.locations[0].node;
    current[0] = None;
    let err = plan_replacements(
        &map,
        8,
        4,
        StripeId(1),
        MIB,
        &current,
        &BTreeSet::from([lost]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot re-place 1 of the 12 fragments of a 8+4 stripe: only 0 other nodes with a \
         healthy disk that has 1.0 MiB free fit the rack rule (at most 4 fragments per rack) \
         next to the fragments it keeps"
    );
}

#[test]
fn malformed_inputs_and_kept_violations_are_errors() {
    let map = homogeneous(4, 2, 1, GIB);
    let none = BTreeSet::new();
    assert_eq!(
        plan_replacements(&map, 2, 1, StripeId(1), 1, &[None, None], &none),
        Err(PlanError::WrongSlotCount {
            k: 2,
            m: 1,
            actual: 2
        })
    );
    assert_eq!(
        plan_replacements(&map, 0, 1, StripeId(1), 1, &[None], &none),
        Err(PlanError::InvalidCode { k: 0, m: 1 })
    );
    // 4 usable racks >= 2+1: one per rack, but two kept fragments share rack r00.
    let err = plan_replacements(
        &map,
        2,
        1,
        StripeId(1),
        1,
        &[Some(loc(0, 0)), Some(loc(1, 0)), None],
        &none,
    )
    .unwrap_err();
    assert!(matches!(err, PlanError::KeptBreaksRule { .. }), "{err}");
    let err = plan_replacements(
        &map,
        2,
        1,
        StripeId(1),
        1,
        &[Some(loc(0, 0)), Some(loc(0, 0)), None],
        &none,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("two kept fragments are on node 0"),
        "{err}"
    );
    let err = plan_replacements(
        &map,
        2,
        1,
        StripeId(1),
        1,
        &[Some(loc(999, 0)), None, None],
        &none,
    )
    .unwrap_err();
    assert!(err.to_string().contains("not in the cluster map"), "{err}");
}

#[test]
fn all_slots_missing_is_a_fresh_valid_placement_avoiding_excluded_nodes() {
    let map = homogeneous(4, 4, 2, GIB);
    let exclude: BTreeSet<NodeId> = [NodeId(0), NodeId(100)].into();
    let p = plan_replacements(&map, 8, 4, StripeId(3), MIB, &[None; 12], &exclude).unwrap();
    assert!(p.locations.iter().all(|l| !exclude.contains(&l.node)));
    assert_eq!(
        check_placement(&view_without(&map, &exclude), &p, 8, 4),
        Ok(())
    );
}
