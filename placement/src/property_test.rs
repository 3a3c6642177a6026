//! Properties of the planner over random topologies: every plan obeys the rule and uses
//! only eligible disks, plans are deterministic, every refusal is truly infeasible (by
//! an independent counting argument, and by exhaustive search on small clusters), and
//! deliberately wrong planners are caught by the same properties.

use std::collections::BTreeMap;

use common::cluster::{check_placement, ClusterMap, DiskInfo, DiskState, NodeState, Placement};
use common::ids::{NodeId, RackId, StripeId};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

use crate::planner::{plan, RackCount, Rules};
use crate::test_support::*;
use crate::{plan_stripe, PlanError};

type Input = (Topology, u8, u8, u64, u128);

/// 1–20 racks of 1–6 nodes of 1–4 disks; k 1..=10, m 1..=4; fragments of 0–200 bytes on
/// disks of 0–1000 bytes, 0–110 % used.
fn input() -> impl Strategy<Value = Input> {
    (
        topology(1..=20, 1..=6, 1..=4),
        1u8..=10,
        1u8..=4,
        0u64..=200,
        any::<u128>(),
    )
}

/// Tests' own eligibility (not the planner's).
fn eligible_disk(d: &DiskInfo, fragment_bytes: u64) -> bool {
    d.state == DiskState::Healthy && d.capacity_bytes.saturating_sub(d.used_bytes) >= fragment_bytes
}

/// Used and capacity bytes summed over some eligible disks, plus one fragment.
#[derive(Clone, Copy, Debug, Default)]
struct Load {
    used: u128,
    capacity: u128,
}

impl Load {
    fn of<'a>(disks: impl IntoIterator<Item = &'a DiskInfo>, fragment_bytes: u64) -> Load {
        let mut l = Load {
            used: fragment_bytes.into(),
            capacity: 0,
        };
        for d in disks
            .into_iter()
            .filter(|d| eligible_disk(d, fragment_bytes))
        {
            l.used += u128::from(d.used_bytes);
            l.capacity += u128::from(d.capacity_bytes);
        }
        l
    }

    /// Strictly less utilized (capacity 0 = infinitely utilized). Test sizes are small,
    /// so cross-multiplying cannot overflow here.
    fn lt(self, other: Load) -> bool {
        match (self.capacity, other.capacity) {
            (0, _) => false,
            (_, 0) => true,
            (a, b) => self.used * b < other.used * a,
        }
    }
}

/// The rule holds, only eligible disks are used, racks are water-filled, and less
/// utilized racks, nodes and disks were preferred.
fn check_ok(
    map: &ClusterMap,
    k: u8,
    m: u8,
    fragment_bytes: u64,
    p: &Placement,
) -> Result<(), TestCaseError> {
    let n = usize::from(k) + usize::from(m);
    prop_assert_eq!(check_placement(map, p, k, m), Ok(()));
    for loc in &p.locations {
        let node = map.node(loc.node).unwrap();
        prop_assert_eq!(node.state, NodeState::Up);
        prop_assert!(eligible_disk(node.disk(loc.disk).unwrap(), fragment_bytes));
    }

    let f = Feasibility::of(map, k, m, fragment_bytes);
    prop_assert!(f.feasible(k, m));
    let level = f.level(n).unwrap();
    let counts = per_rack(map, p);
    prop_assert_eq!(
        *counts.values().max().unwrap(),
        level,
        "not water-filled: {:?}",
        counts
    );
    for (rack, &e) in &f.eligible_nodes {
        let got = counts.get(rack).copied().unwrap_or(0);
        prop_assert!(
            got >= e.min(level - 1),
            "rack {} got {} of {:?}",
            rack,
            got,
            counts
        );
    }

    // Balance, level by level (ties may go either way):
    // - a node's chosen disk is its least utilized eligible disk;
    // - in a rack, no unused eligible node is less utilized than a chosen node there;
    // - racks that could take one more fragment (E_r >= level) and got it are no more
    //   utilized than those that did not (in one-per-rack mode: chosen racks vs others).
    let disk_load = |d: &DiskInfo| Load::of([d], fragment_bytes);
    let node_load = |id: NodeId| Load::of(&map.node(id).unwrap().disks, fragment_bytes);
    let rack_load = |rack: &RackId| {
        let up = map
            .nodes
            .values()
            .filter(|n| n.state == NodeState::Up && &n.rack == rack);
        Load::of(up.flat_map(|n| &n.disks), fragment_bytes)
    };
    let chosen: BTreeMap<NodeId, &DiskInfo> = p
        .locations
        .iter()
        .map(|l| (l.node, map.disk(l.node, l.disk).unwrap()))
        .collect();
    for (&id, d) in &chosen {
        let node = map.node(id).unwrap();
        for other in node
            .disks
            .iter()
            .filter(|o| eligible_disk(o, fragment_bytes))
        {
            prop_assert!(
                !disk_load(other).lt(disk_load(d)),
                "node {} chose a fuller disk",
                id
            );
        }
        for other in map
            .nodes
            .values()
            .filter(|o| o.rack == node.rack && o.state == NodeState::Up)
        {
            let eligible = other.disks.iter().any(|d| eligible_disk(d, fragment_bytes));
            if eligible && !chosen.contains_key(&other.id) {
                prop_assert!(
                    !node_load(other.id).lt(node_load(id)),
                    "rack {} chose node {} over less utilized node {}",
                    node.rack,
                    id,
                    other.id
                );
            }
        }
    }
    let could_take_more: Vec<&RackId> = f
        .eligible_nodes
        .iter()
        .filter(|(_, &e)| e >= level)
        .map(|(r, _)| r)
        .collect();
    for got in could_take_more
        .iter()
        .filter(|r| counts.get(**r) == Some(&level))
    {
        for denied in could_take_more
            .iter()
            .filter(|r| counts.get(**r) != Some(&level))
        {
            prop_assert!(
                !rack_load(denied).lt(rack_load(got)),
                "rack {} got {} fragments but less utilized rack {} did not",
                got,
                level,
                denied
            );
        }
    }
    Ok(())
}

/// A refusal is right: the counting argument says no placement exists, and the error
/// variant agrees with the facts it states.
fn check_err(
    map: &ClusterMap,
    k: u8,
    m: u8,
    fragment_bytes: u64,
    e: &PlanError,
) -> Result<(), TestCaseError> {
    let n = usize::from(k) + usize::from(m);
    let f = Feasibility::of(map, k, m, fragment_bytes);
    prop_assert!(
        !f.feasible(k, m),
        "refused a feasible stripe ({:?}): {}",
        f,
        e
    );
    let eligible: usize = f.eligible_nodes.values().sum();
    match e {
        PlanError::InvalidCode { .. } => prop_assert!(false, "valid code refused: {}", e),
        PlanError::TooFewRacks {
            needed,
            usable_racks,
            ..
        } => {
            prop_assert_eq!(*usable_racks, f.usable_racks);
            prop_assert_eq!(*needed, n.div_ceil(usize::from(m)));
            prop_assert!(usable_racks < needed);
        }
        PlanError::TooFewNodes { needed, census, .. } => {
            prop_assert_eq!(*needed, n);
            prop_assert_eq!(census.eligible, eligible);
            prop_assert_eq!(census.total(), map.nodes.len());
            prop_assert!(eligible < n);
        }
        PlanError::NotEnoughRacksWithRoom {
            usable_racks,
            racks_with_room,
            full_racks,
            ..
        } => {
            prop_assert!(*usable_racks >= n && *racks_with_room < n && eligible >= n);
            prop_assert_eq!(*usable_racks, f.usable_racks);
            prop_assert_eq!(racks_with_room + full_racks.len(), *usable_racks);
        }
        PlanError::RacksTooUneven { placeable, .. } => {
            prop_assert!(f.usable_racks < n && eligible >= n);
            prop_assert_eq!(*placeable, f.max_placeable);
        }
        PlanError::WrongSlotCount { .. }
        | PlanError::KeptBreaksRule { .. }
        | PlanError::NoReplacement { .. } => {
            prop_assert!(false, "plan_stripe never returns {}", e);
        }
    }
    Ok(())
}

fn with_reversed_disks(map: &ClusterMap) -> ClusterMap {
    let mut map = map.clone();
    for n in map.nodes.values_mut() {
        n.disks.reverse();
    }
    map
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn plans_obey_the_rule_or_the_stripe_is_infeasible((topo, k, m, fb, s) in input()) {
        let map = build(&topo);
        let result = plan_stripe(&map, k, m, StripeId(s), fb);
        match &result {
            Ok(p) => check_ok(&map, k, m, fb, p)?,
            Err(e) => check_err(&map, k, m, fb, e)?,
        }
        prop_assert_eq!(&result, &plan_stripe(&map, k, m, StripeId(s), fb));
        prop_assert_eq!(&result, &plan_stripe(&with_reversed_disks(&map), k, m, StripeId(s), fb));
    }

    /// Exhaustive search on small clusters: try every set of k+m eligible nodes (on each
    /// node's first eligible disk; the disk does not matter to the rule) through
    /// `check_placement`. The planner succeeds exactly when one of them passes.
    #[test]
    fn small_clusters_agree_with_exhaustive_search(
        topo in topology(1..=4, 1..=3, 1..=2),
        k in 1u8..=4,
        m in 1u8..=3,
        fb in 0u64..=200,
        s in any::<u128>(),
    ) {
        let map = build(&topo);
        let n = usize::from(k) + usize::from(m);
        let nodes: Vec<_> = map
            .nodes
            .values()
            .filter(|node| node.state == NodeState::Up)
            .filter_map(|node| {
                let d = node.disks.iter().find(|d| eligible_disk(d, fb))?;
                Some(common::cluster::FragmentLocation { node: node.id, disk: d.id })
            })
            .collect();
        let mut exists = false;
        // Subsets of up to 12 nodes as bit masks.
        for mask in 0u32..(1 << nodes.len()) {
            if mask.count_ones() as usize != n {
                continue;
            }
            let locations =
                (0..nodes.len()).filter(|i| mask & (1 << i) != 0).map(|i| nodes[i]).collect();
            if check_placement(&map, &Placement { locations }, k, m).is_ok() {
                exists = true;
                break;
            }
        }
        let result = plan_stripe(&map, k, m, StripeId(s), fb);
        prop_assert_eq!(result.is_ok(), exists, "{:?}", result);
    }
}

/// What [`run_property_against`] checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Everything the main property checks.
    Full,
    /// Only "every Ok plan passes `check_placement`".
    RuleOnly,
}

/// Runs the main property (2000 deterministic cases) against a planner built with
/// `rules`; returns the first failure (before shrinking's end: the shrunk reason).
fn run_property_against(rules: Rules, check: Check) -> Option<String> {
    let config = Config {
        cases: 2000,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&input(), |(topo, k, m, fb, s)| {
        let map = build(&topo);
        match (plan(&map, k, m, StripeId(s), fb, rules), check) {
            (Ok(p), Check::RuleOnly) => {
                let verdict = check_placement(&map, &p, k, m);
                prop_assert!(verdict.is_ok(), "{:?}", verdict);
                Ok(())
            }
            (Err(_), Check::RuleOnly) => Ok(()),
            (Ok(p), Check::Full) => check_ok(&map, k, m, fb, &p),
            (Err(e), Check::Full) => check_err(&map, k, m, fb, &e),
        }
    });
    match result {
        Ok(()) => None,
        Err(TestError::Fail(why, _)) => Some(why.to_string()),
        Err(e) => panic!("unexpected: {e}"),
    }
}

#[test]
fn the_property_passes_for_the_real_rules() {
    assert_eq!(run_property_against(Rules::STRICT, Check::Full), None);
}

/// Mutant 1: per-rack limit m+1. `check_placement` alone catches it, and so does the
/// full property.
#[test]
fn the_property_catches_a_planner_allowing_m_plus_one_per_rack() {
    let bad = Rules {
        extra_per_rack: 1,
        ..Rules::STRICT
    };
    let why = run_property_against(bad, Check::RuleOnly).expect("check_placement catches it");
    assert!(why.contains("RackOverloaded"), "{why}");
    assert!(run_property_against(bad, Check::Full).is_some());
}

/// Mutant 2: "one per rack" decided by counting only racks with room, so a full rack
/// silently doubles fragments up elsewhere.
#[test]
fn the_property_catches_a_planner_weakening_one_per_rack() {
    let bad = Rules {
        one_per_rack_counts: RackCount::WithRoom,
        ..Rules::STRICT
    };
    let why = run_property_against(bad, Check::RuleOnly).expect("check_placement catches it");
    assert!(why.contains("NotOnePerRack"), "{why}");
    assert!(run_property_against(bad, Check::Full).is_some());
}

/// The generator reaches every outcome, so the properties above are not vacuous.
#[test]
fn generated_topologies_cover_every_outcome() {
    let mut runner = TestRunner::deterministic();
    let strategy = input();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..1500 {
        let (topo, k, m, fb, s) = strategy.new_tree(&mut runner).unwrap().current();
        let map = build(&topo);
        let n = usize::from(k) + usize::from(m);
        let outcome = match plan_stripe(&map, k, m, StripeId(s), fb) {
            Ok(_) if map.usable_racks().len() >= n => "ok, one per rack",
            Ok(_) => "ok, water-filled",
            Err(PlanError::InvalidCode { .. }) => "invalid code",
            Err(PlanError::TooFewRacks { .. }) => "too few racks",
            Err(PlanError::TooFewNodes { .. }) => "too few nodes",
            Err(PlanError::NotEnoughRacksWithRoom { .. }) => "racks without room",
            Err(PlanError::RacksTooUneven { .. }) => "racks too uneven",
            Err(
                PlanError::WrongSlotCount { .. }
                | PlanError::KeptBreaksRule { .. }
                | PlanError::NoReplacement { .. },
            ) => "replacement errors (never from plan_stripe)",
        };
        *seen.entry(outcome).or_default() += 1;
    }
    for outcome in [
        "ok, one per rack",
        "ok, water-filled",
        "too few racks",
        "too few nodes",
        "racks without room",
        "racks too uneven",
    ] {
        assert!(
            seen.get(outcome).copied().unwrap_or(0) >= 5,
            "{outcome} rare: {seen:?}"
        );
    }
}
