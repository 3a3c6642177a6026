//! Example-based tests of the planner: exact error messages, rack spreading, balance
//! over many stripes, and deliberately wrong planners being caught.

use std::collections::BTreeMap;

use common::cluster::{
    check_placement, ClusterMap, DiskState, NodeState, Placement, PlacementViolation,
};
use common::ids::{NodeId, StripeId};

use crate::planner::{plan, RackCount, Rules};
use crate::test_support::*;
use crate::{plan_stripe, PlanError};

fn stripe(i: u64) -> StripeId {
    StripeId(u128::from(i))
}

fn set_state(map: &mut ClusterMap, ids: &[u64], state: NodeState) {
    for &id in ids {
        map.node_mut(NodeId(id)).unwrap().state = state;
    }
}

fn fill_node(map: &mut ClusterMap, id: u64) {
    for d in &mut map.node_mut(NodeId(id)).unwrap().disks {
        d.used_bytes = d.capacity_bytes;
    }
}

/// Racks with the given numbers of Up nodes (2 disks of 1 GiB each).
fn racks_of(sizes: &[usize]) -> ClusterMap {
    let mut map = ClusterMap::new();
    for (r, &size) in sizes.iter().enumerate() {
        for i in 0..size {
            let disks = vec![
                disk(0, GIB, 0, DiskState::Healthy),
                disk(1, GIB, 0, DiskState::Healthy),
            ];
            map.insert_node(node((100 * r + i) as u64, rack(r), NodeState::Up, disks));
        }
    }
    map
}

fn rack_counts(map: &ClusterMap, p: &Placement) -> Vec<usize> {
    let mut counts: Vec<usize> = per_rack(map, p).into_values().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    counts
}

#[test]
fn error_messages_say_what_is_missing() {
    // 16 nodes in 4 racks; 9 eligible.
    let mut few_nodes = homogeneous(4, 4, 2, GIB);
    set_state(&mut few_nodes, &[0, 101, 202], NodeState::Down);
    set_state(&mut few_nodes, &[3], NodeState::Draining);
    set_state(&mut few_nodes, &[103], NodeState::Dead);
    for d in &mut few_nodes.node_mut(NodeId(300)).unwrap().disks {
        d.state = DiskState::Failed;
    }
    fill_node(&mut few_nodes, 301);

    let mut all_full = homogeneous(6, 4, 2, GIB);
    for id in all_full.nodes.keys().map(|n| n.0).collect::<Vec<_>>() {
        fill_node(&mut all_full, id);
    }
    let mut almost_full = homogeneous(6, 4, 2, GIB);
    for n in almost_full.nodes.values_mut() {
        for d in &mut n.disks {
            d.used_bytes = GIB - MIB / 2;
        }
    }

    // 13 racks of 2 nodes, racks r03 and r07 full: one per rack is required, 11 can take.
    let mut full_racks = homogeneous(13, 2, 1, GIB);
    for id in [300, 301, 700, 701] {
        fill_node(&mut full_racks, id);
    }

    let cases: Vec<(&str, ClusterMap, u8, u8, &str)> = vec![
        (
            "two racks for 8+4",
            homogeneous(2, 6, 2, GIB),
            8,
            4,
            "8+4 needs at least 3 racks to survive a rack loss (at most 4 of its 12 fragments \
             per rack); the cluster has 2 racks with usable nodes",
        ),
        (
            "one rack for 1+1",
            homogeneous(1, 6, 2, GIB),
            1,
            1,
            "1+1 needs at least 2 racks to survive a rack loss (at most 1 of its 2 fragments \
             per rack); the cluster has 1 rack with usable nodes",
        ),
        (
            "empty cluster",
            ClusterMap::new(),
            2,
            1,
            "2+1 needs at least 3 racks to survive a rack loss (at most 1 of its 3 fragments \
             per rack); the cluster has 0 racks with usable nodes",
        ),
        (
            "too few nodes",
            few_nodes,
            8,
            4,
            "8+4 needs 12 nodes with a healthy disk that has 1.0 MiB free; the cluster has 9 \
             (of 16 nodes: 3 down, 1 draining, 1 dead, 1 with no healthy disk, 1 with no room \
             left on a healthy disk)",
        ),
        (
            "too few nodes, none excluded",
            homogeneous(4, 2, 2, GIB),
            8,
            4,
            "8+4 needs 12 nodes with a healthy disk that has 1.0 MiB free; the cluster has 8 \
             nodes",
        ),
        (
            "all disks full",
            all_full,
            8,
            4,
            "8+4 needs 12 nodes with a healthy disk that has 1.0 MiB free; the cluster has 0 \
             (of 24 nodes: 24 with no room left on a healthy disk)",
        ),
        (
            "every disk has less than a fragment free",
            almost_full,
            8,
            4,
            "8+4 needs 12 nodes with a healthy disk that has 1.0 MiB free; the cluster has 0 \
             (of 24 nodes: 24 with no room left on a healthy disk)",
        ),
        (
            "nodes crowded in two racks",
            racks_of(&[5, 5, 2]),
            8,
            4,
            "8+4 allows at most 4 fragments per rack, and the nodes with a healthy disk that \
             has 1.0 MiB free are spread over the usable racks as r00: 5, r01: 5, r02: 2, \
             which can hold only 10 of the 12 fragments",
        ),
        (
            "k+m racks usable but some full",
            full_racks,
            8,
            4,
            "8+4 must put each of its 12 fragments in a different rack because the cluster has \
             13 racks with usable nodes, but only 11 racks have a node with a healthy disk that \
             has 1.0 MiB free (no room in r03, r07)",
        ),
        (
            "k = 0",
            homogeneous(6, 4, 2, GIB),
            0,
            4,
            "invalid erasure code 0+4: k and m must each be at least 1 and k+m at most 255",
        ),
        (
            "m = 0",
            homogeneous(6, 4, 2, GIB),
            8,
            0,
            "invalid erasure code 8+0: k and m must each be at least 1 and k+m at most 255",
        ),
        (
            "k + m = 256",
            homogeneous(6, 4, 2, GIB),
            200,
            56,
            "invalid erasure code 200+56: k and m must each be at least 1 and k+m at most 255",
        ),
    ];
    for (what, map, k, m, want) in cases {
        let got = plan_stripe(&map, k, m, stripe(7), MIB)
            .expect_err(what)
            .to_string();
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn one_fragment_per_rack_when_there_are_enough_racks() {
    for racks in [12, 13, 20] {
        let map = homogeneous(racks, 3, 2, GIB);
        for s in 0..50 {
            let p = plan_stripe(&map, 8, 4, stripe(s), MIB).unwrap();
            assert_eq!(rack_counts(&map, &p), vec![1; 12], "{racks} racks");
        }
    }
}

#[test]
fn fewer_racks_are_water_filled() {
    // (rack sizes, k, m, expected per-rack counts, largest first)
    let cases: Vec<(&[usize], u8, u8, &[usize])> = vec![
        (&[4, 4, 4], 8, 4, &[4, 4, 4]),
        (&[6, 6, 6, 6, 6], 8, 4, &[3, 3, 2, 2, 2]),
        (&[6, 6, 6, 6, 6, 6], 8, 4, &[2, 2, 2, 2, 2, 2]),
        (
            &[10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10],
            8,
            4,
            &[2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        ),
        // A small rack takes all it can, the rest is spread evenly over the others.
        (&[1, 6, 6, 6], 8, 4, &[4, 4, 3, 1]),
        (&[2, 2, 9, 9], 8, 4, &[4, 4, 2, 2]),
        (&[3, 3], 2, 2, &[2, 2]),
        (&[5, 5, 5], 1, 2, &[1, 1, 1]),
    ];
    for (sizes, k, m, want) in cases {
        let map = racks_of(sizes);
        for s in 0..20 {
            let p = plan_stripe(&map, k, m, stripe(s), MIB).unwrap();
            assert_eq!(rack_counts(&map, &p), want, "racks {sizes:?}, {k}+{m}");
        }
    }
}

#[test]
fn only_eligible_disks_are_used() {
    let mut map = homogeneous(6, 4, 3, GIB);
    set_state(&mut map, &[0, 100], NodeState::Down);
    set_state(&mut map, &[200], NodeState::Draining);
    set_state(&mut map, &[300], NodeState::Dead);
    for n in map.nodes.values_mut() {
        n.disks[0].state = DiskState::Failed;
        n.disks[1].used_bytes = GIB - 1;
    }
    for s in 0..200 {
        let p = plan_stripe(&map, 8, 4, stripe(s), 1024).unwrap();
        for loc in &p.locations {
            assert!(![0, 100, 200, 300].contains(&loc.node.0));
            assert_eq!(loc.disk.0, 2, "disk 0 failed, disk 1 full");
        }
    }
}

#[test]
fn planning_is_deterministic_and_ignores_disk_order() {
    let mut map = homogeneous(7, 3, 4, 10 * GIB);
    for (i, n) in map.nodes.values_mut().enumerate() {
        for (j, d) in n.disks.iter_mut().enumerate() {
            d.used_bytes = ((i * 7 + j * 3) % 5) as u64 * GIB;
        }
    }
    let mut reversed = map.clone();
    for n in reversed.nodes.values_mut() {
        n.disks.reverse();
    }
    for s in 0..100 {
        let a = plan_stripe(&map, 8, 4, stripe(s), MIB).unwrap();
        assert_eq!(a, plan_stripe(&map, 8, 4, stripe(s), MIB).unwrap());
        assert_eq!(a, plan_stripe(&reversed, 8, 4, stripe(s), MIB).unwrap());
    }
}

/// Pinned output: a change here changes where new stripes go (and breaks replay of
/// recorded simulation seeds). Update deliberately.
#[test]
fn placement_is_pinned() {
    let map = homogeneous(6, 4, 2, GIB);
    let p = plan_stripe(&map, 4, 2, StripeId(0xfeed), MIB).unwrap();
    let got: Vec<(u64, u32)> = p.locations.iter().map(|l| (l.node.0, l.disk.0)).collect();
    assert_eq!(got, PINNED_PLACEMENT);
}

const PINNED_PLACEMENT: [(u64, u32); 6] =
    [(202, 1), (2, 0), (100, 0), (500, 0), (301, 1), (403, 0)];

/// Without usage feedback (an empty, homogeneous cluster), the hash alone must spread
/// stripes over every node and disk, and rotate which nodes hold data fragments.
#[test]
fn equal_usage_spreads_stripes_over_all_nodes() {
    let map = homogeneous(6, 4, 2, GIB);
    let stripes = 1200u64;
    let mut per_node: BTreeMap<u64, usize> = BTreeMap::new();
    let mut per_disk: BTreeMap<(u64, u32), usize> = BTreeMap::new();
    let mut first_fragment: BTreeMap<u64, usize> = BTreeMap::new();
    for s in 0..stripes {
        let p = plan_stripe(&map, 8, 4, stripe(s), MIB).unwrap();
        for loc in &p.locations {
            *per_node.entry(loc.node.0).or_default() += 1;
            *per_disk.entry((loc.node.0, loc.disk.0)).or_default() += 1;
        }
        *first_fragment.entry(p.locations[0].node.0).or_default() += 1;
    }
    // 12 of 24 nodes per stripe: 600 each expected; binomial sd ~17.
    assert_eq!(per_node.len(), 24);
    assert!(
        per_node.values().all(|&c| (500..=700).contains(&c)),
        "{per_node:?}"
    );
    assert_eq!(per_disk.len(), 48);
    assert!(
        per_disk.values().all(|&c| (220..=380).contains(&c)),
        "{per_disk:?}"
    );
    // Fragment 0 (data) on each node 1/24 of the time: 50 expected.
    assert_eq!(first_fragment.len(), 24);
    assert!(
        first_fragment.values().all(|&c| (20..=90).contains(&c)),
        "{first_fragment:?}"
    );
}

/// Places `stripes` stripes, feeding usage back after each; returns the largest spread
/// seen after any stripe of `metric(map)`.
fn place_many(
    map: &mut ClusterMap,
    k: u8,
    m: u8,
    fragment_bytes: u64,
    stripes: u64,
    metric: impl Fn(&ClusterMap) -> f64,
) -> f64 {
    let mut worst: f64 = 0.0;
    for s in 0..stripes {
        let p = plan_stripe(map, k, m, stripe(s), fragment_bytes).unwrap();
        map.add_usage(&p, fragment_bytes);
        worst = worst.max(metric(map));
    }
    worst
}

/// max - min of used bytes per disk, in fragments.
fn disk_spread_in_fragments(map: &ClusterMap, fragment_bytes: u64) -> f64 {
    let used: Vec<u64> = disk_usage(map).into_iter().map(|(u, _)| u).collect();
    (used.iter().max().unwrap() - used.iter().min().unwrap()) as f64 / fragment_bytes as f64
}

/// max - min of used/capacity per disk.
fn utilization_spread(map: &ClusterMap) -> f64 {
    let u: Vec<f64> = disk_usage(map)
        .into_iter()
        .map(|(u, c)| u as f64 / c as f64)
        .collect();
    u.iter().cloned().fold(f64::MIN, f64::max) - u.iter().cloned().fold(f64::MAX, f64::min)
}

/// Balance bound on homogeneous clusters, 2000 stripes of 8+4 with usage fed back:
/// measured max - min of per-disk usage is 1 fragment after every stripe (the least
/// possible: each stripe adds one fragment to 12 of the disks), whether the planner is
/// water-filling (6 or 5 racks) or one per rack (14 racks). Asserted: <= 1 fragment.
#[test]
fn homogeneous_cluster_stays_balanced() {
    for (racks, nodes, disks) in [(6, 4, 2), (14, 2, 2), (5, 3, 3)] {
        let mut map = homogeneous(racks, nodes, disks, 64 * GIB);
        let worst = place_many(&mut map, 8, 4, MIB, 2000, |m| {
            disk_spread_in_fragments(m, MIB)
        });
        let end = disk_spread_in_fragments(&map, MIB);
        assert!(
            worst <= 1.0,
            "{racks}x{nodes}x{disks}: per-disk spread reached {worst} fragments (end: {end})"
        );
    }
}

/// `racks x nodes x 2` cluster whose disks have 1, 2, 3 or 4 `unit`s of capacity,
/// mixed within every node and rack (so rack and node totals differ too).
fn mixed_capacities(racks: usize, nodes: usize, unit: u64) -> ClusterMap {
    let mut map = homogeneous(racks, nodes, 2, unit);
    for (i, n) in map.nodes.values_mut().enumerate() {
        for (j, d) in n.disks.iter_mut().enumerate() {
            d.capacity_bytes = unit * (1 + ((i + 3 * j) % 4) as u64);
        }
    }
    map
}

/// Mixed capacities, 2000 stripes of 8+4 x 1 MiB, usage fed back after each.
/// Bounds (measured), on max - min of used/capacity over all disks, after every stripe:
/// - 8 racks x 3 nodes (water-filling, 1 or 2 fragments per rack): at most one
///   fragment on the smallest disk (1 MiB / 400 MiB = 0.0025): disks fill in
///   proportion to capacity.
/// - 14 racks x 2 nodes (one per rack; racks alternate 8 and 12 units): the rule
///   limits balance. Proportional filling would need the 12-unit racks to take ~1.03
///   fragments per stripe, but they can take at most 1, so the 8-unit racks run ahead
///   and the spread grows linearly with fill: measured 0.031 at 2000 stripes (43 %
///   full), 0.068 at the end (96 % full); asserted <= 0.035 here.
#[test]
fn heterogeneous_cluster_fills_in_proportion_to_capacity() {
    let unit = 400 * MIB;
    let one_fragment_on_smallest = MIB as f64 / unit as f64;
    for (racks, nodes, bound) in [
        (8, 3, one_fragment_on_smallest * (1.0 + 1e-9)),
        (14, 2, 0.035),
    ] {
        let mut map = mixed_capacities(racks, nodes, unit);
        let worst = place_many(&mut map, 8, 4, MIB, 2000, utilization_spread);
        let end = utilization_spread(&map);
        let (used, cap) = disk_usage(&map)
            .into_iter()
            .fold((0, 0), |(u, c), (du, dc)| (u + du, c + dc));
        assert!(
            worst <= bound,
            "{racks}x{nodes}: utilization spread reached {worst:.5} ({:.2} fragments on the \
             smallest disk), end {end:.5}, cluster {:.1} % full",
            worst / one_fragment_on_smallest,
            100.0 * used as f64 / cap as f64
        );
    }
}

/// Filling a cluster with 8+4 stripes until the planner refuses: how much of the raw
/// capacity is used by then (measured). Homogeneous, and mixed capacities on 8 racks:
/// all of it. Mixed on 14 racks (one per rack, racks of 8 and 12 units): 96 %, then
/// the 8-unit racks are full and the planner refuses to double fragments up (see the
/// heterogeneous balance test for why those racks fill first).
#[test]
fn clusters_fill_up_before_planning_fails() {
    let slots = 100 * MIB; // a 1-unit disk holds 100 fragments
    let cases = [
        ("homogeneous", homogeneous(6, 4, 2, slots), 1.0),
        ("mixed, 8 racks", mixed_capacities(8, 3, slots), 1.0),
        ("mixed, 14 racks", mixed_capacities(14, 2, slots), 0.95),
    ];
    for (what, mut map, min_fill) in cases {
        let mut s = 0;
        let err = loop {
            match plan_stripe(&map, 8, 4, stripe(s), MIB) {
                Ok(p) => map.add_usage(&p, MIB),
                Err(e) => break e,
            }
            s += 1;
        };
        let (used, cap) = disk_usage(&map)
            .into_iter()
            .fold((0, 0), |(u, c), (du, dc)| (u + du, c + dc));
        let fill = used as f64 / cap as f64;
        assert!(
            fill >= min_fill,
            "{what}: full at {:.2} % after {s} stripes: {err}",
            fill * 100.0
        );
        if min_fill == 1.0 {
            assert!(
                matches!(err, PlanError::TooFewNodes { .. }),
                "{what}: {err}"
            );
        } else {
            assert!(
                matches!(err, PlanError::NotEnoughRacksWithRoom { .. }),
                "{what}: {err}"
            );
        }
    }
}

/// A deliberately wrong planner (per-rack limit m+1) on a cluster where the correct one
/// refuses: check_placement catches it.
#[test]
fn planner_allowing_m_plus_one_per_rack_is_caught() {
    let map = racks_of(&[5, 5, 2]);
    assert!(matches!(
        plan_stripe(&map, 8, 4, stripe(1), MIB),
        Err(PlanError::RacksTooUneven { placeable: 10, .. })
    ));
    let bad = Rules {
        extra_per_rack: 1,
        ..Rules::STRICT
    };
    let p = plan(&map, 8, 4, stripe(1), MIB, bad).expect("the mutant places it");
    assert!(matches!(
        check_placement(&map, &p, 8, 4),
        Err(PlacementViolation::RackOverloaded { count: 5, .. })
    ));
}

/// A deliberately weakened planner that decides "one per rack" by counting only racks
/// with room (so a full rack silently doubles fragments up elsewhere) is caught.
#[test]
fn planner_weakening_one_per_rack_when_a_rack_is_full_is_caught() {
    let mut map = homogeneous(12, 2, 1, GIB);
    fill_node(&mut map, 500);
    fill_node(&mut map, 501);
    assert!(matches!(
        plan_stripe(&map, 8, 4, stripe(1), MIB),
        Err(PlanError::NotEnoughRacksWithRoom {
            racks_with_room: 11,
            ..
        })
    ));
    let weak = Rules {
        one_per_rack_counts: RackCount::WithRoom,
        ..Rules::STRICT
    };
    let p = plan(&map, 8, 4, stripe(1), MIB, weak).expect("the mutant places it");
    assert!(matches!(
        check_placement(&map, &p, 8, 4),
        Err(PlacementViolation::NotOnePerRack {
            count: 2,
            usable_racks: 12,
            ..
        })
    ));
}

#[test]
fn zero_byte_fragments_and_zero_capacity_disks() {
    // Zero-capacity disks are eligible for 0-byte fragments but sort last.
    let mut map = homogeneous(3, 2, 2, GIB);
    for n in map.nodes.values_mut() {
        n.disks[0].capacity_bytes = 0;
    }
    let p = plan_stripe(&map, 2, 1, stripe(3), 0).unwrap();
    assert!(p.locations.iter().all(|l| l.disk.0 == 1));
    // Only zero-capacity disks: still placeable for 0 bytes, not for 1.
    for n in map.nodes.values_mut() {
        n.disks.truncate(1);
    }
    assert!(plan_stripe(&map, 2, 1, stripe(3), 0).is_ok());
    assert!(matches!(
        plan_stripe(&map, 2, 1, stripe(3), 1),
        Err(PlanError::TooFewNodes { .. })
    ));
}

#[test]
fn extreme_sizes_do_not_overflow() {
    let mut map = homogeneous(3, 2, 2, u64::MAX);
    map.node_mut(NodeId(0)).unwrap().disks[0].used_bytes = u64::MAX - 5;
    map.node_mut(NodeId(100)).unwrap().disks[1].used_bytes = u64::MAX; // full
    let p = plan_stripe(&map, 2, 1, stripe(3), 5).unwrap();
    assert_eq!(p.locations.len(), 3);
    let p = plan_stripe(&map, 2, 1, stripe(3), u64::MAX).unwrap();
    assert!(!p.locations.iter().any(|l| l.node.0 == 0 && l.disk.0 == 0));
}

#[test]
fn the_widest_code_fits_on_a_wide_cluster() {
    let map = homogeneous(255, 1, 1, GIB);
    let p = plan_stripe(&map, 200, 55, stripe(9), MIB).unwrap();
    assert_eq!(p.locations.len(), 255);
}
