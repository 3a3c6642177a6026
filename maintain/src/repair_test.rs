//! Repair's pure decisions: fragment classification, what a stripe needs, the order of
//! the queue, target planning under the rack rule (blocked, never weakened), the byte
//! budget.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::cluster::{
    check_placement, ClusterMap, DiskInfo, DiskState, FragmentLocation, NodeInfo, NodeState,
    Placement,
};
use common::codec::{CodecId, CodecParams};
use common::env::Clock;
use common::ids::{DiskId, NodeId, RackId, StripeId};

use crate::repair_budget::RepairBudget;
use crate::repair_plan::{
    assess, classify_fragment, mark_misplaced, new_placement, plan_targets, Candidate,
    FragmentHealth, RepairQueue, TargetError, Verdict,
};

use FragmentHealth::{Damaged, Healthy, Lost, Misplaced, Moving, Unavailable};

fn disk(id: u32, state: DiskState) -> DiskInfo {
    DiskInfo {
        id: DiskId(id),
        state,
        capacity_bytes: 1 << 40,
        used_bytes: 0,
    }
}

/// `racks` racks of `per_rack` nodes (ids 1.., rack `r{n}`), all Up, disk 0 healthy,
/// disk 1 failed.
fn cluster(racks: u64, per_rack: u64) -> ClusterMap {
    let mut map = ClusterMap::new();
    for r in 0..racks {
        for i in 0..per_rack {
            let id = r * per_rack + i + 1;
            map.insert_node(NodeInfo {
                id: NodeId(id),
                rack: RackId(format!("r{r}")),
                addr: format!("10.0.0.{id}:7100"),
                state: NodeState::Up,
                disks: vec![disk(0, DiskState::Healthy), disk(1, DiskState::Failed)],
            });
        }
    }
    map
}

fn loc(node: u64) -> FragmentLocation {
    FragmentLocation {
        node: NodeId(node),
        disk: DiskId(0),
    }
}

fn set_state(map: &mut ClusterMap, node: u64, state: NodeState) {
    map.node_mut(NodeId(node)).expect("node").state = state;
}

fn codec(k: u8, m: u8) -> CodecParams {
    CodecParams {
        codec: CodecId::ReedSolomonSimd,
        k,
        m,
    }
}

fn health(map: &ClusterMap, placement: &[FragmentLocation]) -> Vec<FragmentHealth> {
    placement
        .iter()
        .map(|l| classify_fragment(map, *l, false))
        .collect()
}

#[test]
fn fragments_are_classified_by_node_and_disk_state_and_scrub() {
    let mut map = cluster(1, 5);
    set_state(&mut map, 2, NodeState::Down);
    set_state(&mut map, 3, NodeState::Draining);
    set_state(&mut map, 4, NodeState::Dead);
    assert_eq!(classify_fragment(&map, loc(1), false), Healthy);
    assert_eq!(classify_fragment(&map, loc(2), false), Unavailable);
    assert_eq!(classify_fragment(&map, loc(3), false), Moving);
    assert_eq!(classify_fragment(&map, loc(4), false), Lost);
    // Gone from the map, a failed disk, an unknown disk: lost.
    assert_eq!(classify_fragment(&map, loc(99), false), Lost);
    let failed = FragmentLocation {
        node: NodeId(1),
        disk: DiskId(1),
    };
    assert_eq!(classify_fragment(&map, failed, false), Lost);
    let unknown = FragmentLocation {
        node: NodeId(1),
        disk: DiskId(7),
    };
    assert_eq!(classify_fragment(&map, unknown, false), Lost);
    // Scrub findings: damaged on a serving node; a Down node's report waits.
    assert_eq!(classify_fragment(&map, loc(1), true), Damaged);
    assert_eq!(classify_fragment(&map, loc(3), true), Damaged);
    assert_eq!(classify_fragment(&map, loc(2), true), Unavailable);
    assert_eq!(classify_fragment(&map, loc(4), true), Lost);
}

#[test]
fn a_stripe_is_repaired_waits_or_is_unrecoverable() {
    // 4+2.
    assert_eq!(assess(4, &[Healthy; 6]), Verdict::Healthy);
    // Down nodes are not lost yet: wait for the detector.
    let down = [Healthy, Unavailable, Healthy, Healthy, Unavailable, Healthy];
    assert_eq!(assess(4, &down), Verdict::Wait { unavailable: 2 });
    // Lost, moving and damaged fragments are rebuilt; a Down one stays in its slot
    // (3+3 here: three readable).
    let mixed = [Lost, Moving, Healthy, Damaged, Unavailable, Healthy];
    assert_eq!(
        assess(3, &mixed),
        Verdict::Repair {
            healthy: 2,
            rebuild: BTreeSet::from([0, 1, 3]),
        }
    );
    // Draining alone: moved (it is readable, so it counts as a source).
    let draining = [Moving, Healthy, Healthy, Healthy, Healthy, Healthy];
    assert_eq!(
        assess(4, &draining),
        Verdict::Repair {
            healthy: 5,
            rebuild: BTreeSet::from([0]),
        }
    );
    // Fewer than k readable, but Down nodes may bring it back: no write, wait.
    let dark = [Lost, Lost, Unavailable, Healthy, Healthy, Healthy];
    assert_eq!(
        assess(4, &dark),
        Verdict::Unreadable {
            readable: 3,
            unavailable: 1,
        }
    );
    // Fewer than k survive: unrecoverable (never written to).
    let gone = [Lost, Lost, Lost, Healthy, Damaged, Healthy];
    assert_eq!(
        assess(4, &gone),
        Verdict::Unrecoverable { readable: 2, k: 4 }
    );
}

#[test]
fn the_queue_keeps_the_least_healthy_stripes_first() {
    let mut q = RepairQueue::new(3);
    for (healthy, id) in [(5, 1u128), (3, 2), (4, 3), (2, 4), (5, 5), (3, 0)] {
        q.push(Candidate {
            healthy,
            stripe: StripeId(id),
            item: (),
        });
    }
    let order: Vec<(usize, u128)> = q
        .into_sorted()
        .into_iter()
        .map(|c| (c.healthy, c.stripe.0))
        .collect();
    assert_eq!(order, [(2, 4), (3, 0), (3, 2)]);
    let mut q = RepairQueue::new(2);
    for id in 0..5u128 {
        q.push(Candidate {
            healthy: 1,
            stripe: StripeId(id),
            item: (),
        });
    }
    assert_eq!((q.len(), q.overflow), (2, 3));
}

/// A 4+2 stripe that needs repair: its healthy count, the fragments to rebuild and where
/// they go (no nodes avoided).
fn assess_and_plan(
    map: &ClusterMap,
    placement: &[FragmentLocation],
    h: &[FragmentHealth],
    stripe: u128,
) -> (usize, BTreeSet<usize>, BTreeMap<usize, FragmentLocation>) {
    let Verdict::Repair { rebuild, healthy } = assess(4, h) else {
        panic!("{h:?}");
    };
    let targets = plan_targets(
        map,
        codec(4, 2),
        StripeId(stripe),
        4096,
        placement,
        &rebuild,
        &BTreeSet::new(),
    )
    .expect("targets");
    (healthy, rebuild, targets)
}

#[test]
fn a_lost_fragment_is_rebuilt_by_the_rack_rule() {
    // 6 racks of 2 nodes, 4+2 one fragment per rack (nodes 1, 3, 5, 7, 9, 11).
    let mut map = cluster(6, 2);
    let placement: Vec<_> = [1, 3, 5, 7, 9, 11].map(loc).to_vec();
    set_state(&mut map, 5, NodeState::Dead);
    let h = health(&map, &placement);
    let (healthy, rebuild, targets) = assess_and_plan(&map, &placement, &h, 7);
    assert_eq!((healthy, rebuild), (5, BTreeSet::from([2])));
    // One per rack: the only rack without a fragment is the dead node's, node 6.
    assert_eq!(targets.into_iter().collect::<Vec<_>>(), [(2, loc(6))]);
    let new = new_placement(&map, codec(4, 2), &placement, &[(2, loc(6))].into())
        .expect("the rule holds");
    check_placement(&map, &Placement { locations: new }, 4, 2).expect("rule");
}

#[test]
fn a_draining_fragment_moves_and_gc_pending_nodes_are_avoided() {
    // 3 racks of 3 nodes, 4+2: at most 2 per rack.
    let mut map = cluster(3, 3);
    let placement: Vec<_> = [1, 2, 4, 5, 7, 8].map(loc).to_vec();
    set_state(&mut map, 4, NodeState::Draining);
    let h = health(&map, &placement);
    let Verdict::Repair { rebuild, .. } = assess(4, &h) else {
        panic!("{h:?}");
    };
    assert_eq!(rebuild, BTreeSet::from([2]));
    let plan = |avoid: &[u64]| {
        plan_targets(
            &map,
            codec(4, 2),
            StripeId(9),
            4096,
            &placement,
            &rebuild,
            &avoid.iter().map(|n| NodeId(*n)).collect(),
        )
    };
    // Rack r1 has room for one: node 6 (4 is draining, 5 holds fragment 3).
    assert_eq!(plan(&[]).expect("targets")[&2], loc(6));
    // Node 6 holds an old copy of the stripe in the GC queue: nowhere else fits.
    assert!(matches!(plan(&[6]), Err(TargetError::Blocked(_))));
}

#[test]
fn the_surplus_of_an_overloaded_rack_is_moved_by_the_rule() {
    // 4 racks of 3 nodes, 4+2: at most 2 per rack. Rack r0 holds 3 (nodes 1, 2, 3).
    let map = cluster(4, 3);
    let placement: Vec<_> = [1, 2, 3, 4, 7, 10].map(loc).to_vec();
    assert!(check_placement(
        &map,
        &Placement {
            locations: placement.clone()
        },
        4,
        2
    )
    .is_err());
    let mut h = health(&map, &placement);
    assert_eq!(mark_misplaced(&map, codec(4, 2), &placement, &mut h), 1);
    // The third fragment in r0 (index 2) moves; it is still a source for the rebuild.
    assert_eq!(h, [Healthy, Healthy, Misplaced, Healthy, Healthy, Healthy]);
    assert!(Misplaced.readable() && Misplaced.needs_rebuild());
    let (healthy, rebuild, targets) = assess_and_plan(&map, &placement, &h, 5);
    assert_eq!((healthy, rebuild), (5, BTreeSet::from([2])));
    let to = targets[&2];
    assert!(![1, 2, 3].contains(&to.node.0), "stays in r0: {to}");
    let new = new_placement(&map, codec(4, 2), &placement, &targets).expect("the rule holds");
    check_placement(&map, &Placement { locations: new }, 4, 2).expect("rule");
    // Once moved, nothing is misplaced.
    let mut moved = placement.clone();
    moved[2] = to;
    let mut h = health(&map, &moved);
    assert_eq!(mark_misplaced(&map, codec(4, 2), &moved, &mut h), 0);
    assert_eq!(assess(4, &h), Verdict::Healthy);
}

#[test]
fn a_two_per_rack_stripe_that_loses_a_fragment_goes_one_per_rack() {
    // 6 racks of 2 nodes, 4+2: with k+m = 6 usable racks the rule wants one per rack.
    // The stripe was placed two per rack in r0 and r1 before the cluster grew.
    let mut map = cluster(6, 2);
    let placement: Vec<_> = [1, 2, 3, 4, 5, 7].map(loc).to_vec();
    // Healthy, it stays where it is: the preference alone moves no data.
    let mut h = health(&map, &placement);
    assert_eq!(mark_misplaced(&map, codec(4, 2), &placement, &mut h), 0);
    assert_eq!(assess(4, &h), Verdict::Healthy);
    // It loses fragment 4 (node 5): rebuilding only that one is blocked for good (the
    // planner keeps at most one per rack in this mode) ...
    set_state(&mut map, 5, NodeState::Dead);
    let only_lost = plan_targets(
        &map,
        codec(4, 2),
        StripeId(11),
        4096,
        &placement,
        &BTreeSet::from([4]),
        &BTreeSet::new(),
    );
    assert!(
        matches!(only_lost, Err(TargetError::Blocked(_))),
        "{only_lost:?}"
    );
    // ... so the second fragment in r0 and in r1 move along with it.
    let mut h = health(&map, &placement);
    assert_eq!(mark_misplaced(&map, codec(4, 2), &placement, &mut h), 2);
    assert_eq!(h, [Healthy, Misplaced, Healthy, Misplaced, Lost, Healthy]);
    let (healthy, rebuild, targets) = assess_and_plan(&map, &placement, &h, 11);
    assert_eq!((healthy, rebuild), (3, BTreeSet::from([1, 3, 4])));
    let new = new_placement(&map, codec(4, 2), &placement, &targets).expect("the rule holds");
    check_placement(&map, &Placement { locations: new }, 4, 2).expect("one per rack");
}

#[test]
fn misplacement_counts_the_fragments_that_stay() {
    let mut map = cluster(4, 3);
    // Two fragments on node 1: the second (by index) moves.
    let twice: Vec<_> = [1, 4, 1, 7, 10, 11].map(loc).to_vec();
    let mut h = health(&map, &twice);
    assert_eq!(mark_misplaced(&map, codec(4, 2), &twice, &mut h), 1);
    assert_eq!(h[2], Misplaced);
    // r0 holds 3, but node 1 is Dead: its fragment is rebuilt anyway and leaves, so the
    // two that stay fit and nothing more moves (the rebuild goes outside r0 by the rule).
    let placement: Vec<_> = [1, 2, 3, 4, 7, 10].map(loc).to_vec();
    set_state(&mut map, 1, NodeState::Dead);
    let mut h = health(&map, &placement);
    assert_eq!(mark_misplaced(&map, codec(4, 2), &placement, &mut h), 0);
    assert_eq!(h[..3], [Lost, Healthy, Healthy]);
    // A Down node keeps its slot, so its fragment counts toward r0: the healthy one past
    // the quota moves.
    set_state(&mut map, 1, NodeState::Down);
    let mut h = health(&map, &placement);
    assert_eq!(mark_misplaced(&map, codec(4, 2), &placement, &mut h), 1);
    assert_eq!(h[..3], [Unavailable, Healthy, Misplaced]);
    // A stripe within the rule is left alone.
    let fine: Vec<_> = [1, 2, 4, 5, 7, 10].map(loc).to_vec();
    set_state(&mut map, 1, NodeState::Up);
    let mut h = health(&map, &fine);
    assert_eq!(mark_misplaced(&map, codec(4, 2), &fine, &mut h), 0);
    assert!(h.iter().all(|x| *x == Healthy));
}

#[test]
fn a_rack_loss_blocks_repair_instead_of_weakening_the_rule() {
    // 3 racks of 2 nodes, 4+2, two fragments per rack; rack r2 is lost.
    let mut map = cluster(3, 2);
    let placement: Vec<_> = [1, 2, 3, 4, 5, 6].map(loc).to_vec();
    set_state(&mut map, 5, NodeState::Dead);
    set_state(&mut map, 6, NodeState::Dead);
    let h = health(&map, &placement);
    let Verdict::Repair { rebuild, healthy } = assess(4, &h) else {
        panic!("{h:?}");
    };
    assert_eq!((healthy, rebuild.clone()), (4, BTreeSet::from([4, 5])));
    // Racks r0 and r1 already hold m = 2 each; more would break the rule.
    let r = plan_targets(
        &map,
        codec(4, 2),
        StripeId(3),
        4096,
        &placement,
        &rebuild,
        &BTreeSet::new(),
    );
    assert!(
        matches!(&r, Err(TargetError::Blocked(why)) if !why.is_empty()),
        "{r:?}"
    );
    // A new rack makes it placeable again.
    for id in [20, 21] {
        map.insert_node(NodeInfo {
            id: NodeId(id),
            rack: RackId("r9".into()),
            addr: String::new(),
            state: NodeState::Up,
            disks: vec![disk(0, DiskState::Healthy)],
        });
    }
    let t = plan_targets(
        &map,
        codec(4, 2),
        StripeId(3),
        4096,
        &placement,
        &rebuild,
        &BTreeSet::new(),
    )
    .expect("placeable in the new rack");
    let nodes: BTreeSet<u64> = t.values().map(|l| l.node.0).collect();
    assert_eq!(nodes, BTreeSet::from([20, 21]));
}

#[test]
fn the_budget_spreads_bytes_over_time() {
    let clock = Clock::new();
    let t0 = clock.now();
    let mut b = RepairBudget::new(1000);
    // One second of budget is there at once; beyond it, the debt is waited for.
    assert_eq!(b.reserve(t0, 1000), Duration::ZERO);
    assert_eq!(b.reserve(t0, 500), Duration::from_millis(500));
    // A second later the debt is paid and half a second of budget is back.
    assert_eq!(b.reserve(t0 + Duration::from_secs(1), 500), Duration::ZERO);
    // Idle time never banks more than one second.
    assert_eq!(
        b.reserve(t0 + Duration::from_secs(100), 2000),
        Duration::from_secs(1)
    );
}

#[test]
fn a_lost_compare_and_set_deletes_what_was_written_an_unknown_outcome_keeps_it() {
    use crate::error::MaintainError;
    use crate::repair_plan::{after_commit, AfterCommit};
    use common::ids::GroupId;
    use meta_raft::state_machine::{Reason, Response};

    let group = GroupId(1);
    assert_eq!(
        after_commit(&Ok(Response::PlacementReplaced { moved: 1 })),
        AfterCommit::Committed
    );
    // Lost to a concurrent overwrite / delete / repair, or refused: nothing references
    // the new fragments.
    for reason in [
        Reason::PlacementMismatch,
        Reason::NoSuchStripe(StripeId(4)),
        Reason::InvalidArgument("queued for deletion".into()),
    ] {
        assert_eq!(
            after_commit(&Err(MaintainError::Rejected { group, reason })),
            AfterCommit::DeleteWritten
        );
    }
    // The commit may have happened: never delete.
    for e in [
        MaintainError::Timeout {
            group,
            what: "a write",
            after: Duration::from_secs(5),
        },
        MaintainError::NotLeader { group, node: 2 },
        MaintainError::Raft {
            group,
            message: "stopped".into(),
        },
    ] {
        assert_eq!(after_commit(&Err(e)), AfterCommit::KeepWritten);
    }
    assert_eq!(
        after_commit(&Ok(Response::GcAcked { removed: 0 })),
        AfterCommit::KeepWritten
    );
}
