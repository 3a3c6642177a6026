//! [`plan_stripe`]: choose the (node, disk) of every fragment of a new stripe.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use common::cluster::{
    check_placement, ClusterMap, DiskInfo, FragmentLocation, NodeState, Placement,
};
use common::ids::{DiskId, NodeId, RackId, StripeId};

use crate::error::{NodeCensus, PlanError};
use crate::hash::{order_hash, tie_hash};

/// Plans where the `k+m` fragments of stripe `stripe` go, each `fragment_bytes` long.
///
/// # Eligibility
/// A disk is eligible when its node is [`NodeState::Up`], the disk is healthy and it has
/// `free_bytes() >= fragment_bytes`. A node is eligible when it has an eligible disk.
///
/// # The rule (never weakened; see [`common::cluster`])
/// - no two fragments on one disk or one node;
/// - at most `m` fragments in any rack;
/// - exactly one fragment per rack when the cluster has at least `k+m` *usable* racks
///   (racks with an Up node that has a healthy disk, whether or not it has room: the
///   same count [`check_placement`] uses). If that many racks are usable but fewer than
///   `k+m` of them have room, planning fails ([`PlanError::NotEnoughRacksWithRoom`])
///   rather than doubling up fragments in a rack;
/// - otherwise fragments are spread over racks by water-filling: with `E_r` the
///   eligible nodes of rack `r`, the planner finds the lowest level `L <= m` such that
///   `sum_r min(L, E_r) >= k+m`, gives every rack `min(L-1, E_r)` fragments and tops up
///   the remaining ones with `L` in racks that have `E_r >= L`. So the fullest rack
///   holds as few fragments as possible (a rack loss costs the fewest fragments), and
///   rack counts differ by at most one except where a rack has too few eligible nodes.
///
/// # Balance
/// *Utilization* of a disk, a node or a rack is `(used + fragment_bytes) / capacity`,
/// summing `used_bytes` and `capacity_bytes` over its eligible disks (so: how full the
/// space that can still take data would be after one more fragment); it is compared
/// exactly, as a fraction of integers. Within the rule, the planner prefers the least
/// utilized rack, then within a rack the least utilized node, then within a node the
/// least utilized disk: it ranks eligible disks by (rack, node, disk utilization, tie
/// hash) and walks them in that order, taking each disk whose node is still unused and
/// whose rack is still below its quota (racks that may take an extra fragment get it in
/// that order too). Over many stripes, with usage fed back through
/// [`ClusterMap::add_usage`], racks, nodes and disks fill in proportion to their
/// capacity, as far as the rule allows (in one-per-rack mode a rack takes at most one
/// fragment per stripe however large it is; a node at most one). Measured bounds are in
/// `planner_test.rs`: on a homogeneous cluster per-disk usage stays within 1 fragment.
///
/// Equal utilizations (e.g. an empty, homogeneous cluster) are broken by a fixed hash
/// of (stripe, node, disk), so different stripes spread over all nodes. Finally the
/// chosen locations are ordered by another hash of the same inputs, so which nodes hold
/// data (fragments `0..k`, the ones normal reads touch) and which hold parity rotates
/// from stripe to stripe.
///
/// The usage the planner sees is whatever the map says: callers that plan many stripes
/// between map refreshes should `add_usage` to their copy after each plan, or every
/// stripe of that window lands on the same least-utilized disks.
///
/// # Determinism
/// The result depends only on the arguments (not on the order of disks inside a
/// node's `disks`, nor on anything process-specific): no clock, no I/O, no randomness.
///
/// # Errors
/// [`PlanError`] when `k`/`m` are invalid (`k, m >= 1`, `k+m <= 255`) or the rule
/// cannot be met; the message says what the cluster lacks.
///
/// # Panics
/// If the planned placement fails [`check_placement`] or uses an ineligible disk: a
/// planner bug, and crashing beats storing data in a placement that loses it.
pub fn plan_stripe(
    map: &ClusterMap,
    k: u8,
    m: u8,
    stripe: StripeId,
    fragment_bytes: u64,
) -> Result<Placement, PlanError> {
    let placement = plan(map, k, m, stripe, fragment_bytes, Rules::STRICT)?;
    if common::env::planted::active(common::env::planted::Bug::RackOverload) {
        if let Some(bad) = overload_one_rack(map, &placement, m, fragment_bytes) {
            return Ok(bad); // planted bug (simulation only): the check below is skipped
        }
    }
    let verdict = check_placement(map, &placement, k, m);
    assert!(
        verdict.is_ok(),
        "placement planner bug: the placement planned for stripe {stripe} ({k}+{m}) breaks \
         the placement rule: {verdict:?}; placement: {placement:?}"
    );
    for loc in &placement.locations {
        assert!(
            is_eligible(map, *loc, fragment_bytes),
            "placement planner bug: stripe {stripe} placed on ineligible {loc}"
        );
    }
    Ok(placement)
}

/// The planted `RackOverload` bug: `placement` rewritten so that one rack (the first
/// with at least `m + 1` eligible nodes) holds `m + 1` fragments, by moving fragments
/// from other racks onto unused eligible nodes of that rack. `None` when no rack has
/// enough eligible nodes.
fn overload_one_rack(
    map: &ClusterMap,
    placement: &Placement,
    m: u8,
    fragment_bytes: u64,
) -> Option<Placement> {
    let want = usize::from(m) + 1;
    let mut by_rack: BTreeMap<&RackId, Vec<FragmentLocation>> = BTreeMap::new();
    for n in map.nodes.values() {
        if !n.state.accepts_new_fragments() {
            continue;
        }
        if let Some(d) = n.disks.iter().find(|d| disk_is_eligible(d, fragment_bytes)) {
            by_rack.entry(&n.rack).or_default().push(FragmentLocation {
                node: n.id,
                disk: d.id,
            });
        }
    }
    let (rack, eligible) = by_rack.into_iter().find(|(_, e)| e.len() >= want)?;
    let mut out = placement.clone();
    let in_rack = |loc: &FragmentLocation| map.rack_of(loc.node) == Some(rack);
    let mut spare = eligible
        .into_iter()
        .filter(|c| !out.locations.iter().any(|l| l.node == c.node))
        .collect::<Vec<_>>()
        .into_iter();
    let mut held = out.locations.iter().filter(|l| in_rack(l)).count();
    for loc in out.locations.iter_mut() {
        if held >= want {
            break;
        }
        if !in_rack(loc) {
            *loc = spare.next()?;
            held += 1;
        }
    }
    (held >= want).then_some(out)
}

/// Whether `loc` may receive a new fragment of `fragment_bytes` bytes.
pub fn is_eligible(map: &ClusterMap, loc: FragmentLocation, fragment_bytes: u64) -> bool {
    map.node(loc.node).is_some_and(|n| {
        n.state.accepts_new_fragments()
            && n.disk(loc.disk)
                .is_some_and(|d| disk_is_eligible(d, fragment_bytes))
    })
}

pub(crate) fn disk_is_eligible(disk: &DiskInfo, fragment_bytes: u64) -> bool {
    disk.is_healthy() && disk.free_bytes() >= fragment_bytes
}

/// Knobs that exist only so tests can build deliberately wrong planners (mutants) and
/// show that `check_placement` and the properties catch them. [`Rules::STRICT`] is the
/// placement rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rules {
    /// Added to `m` as the per-rack limit. 0 in the real rule.
    pub extra_per_rack: usize,
    /// Which racks are counted to decide on one fragment per rack: usable racks (the
    /// rule) or only racks with room (a silently weakened rule).
    pub one_per_rack_counts: RackCount,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RackCount {
    Usable,
    #[cfg_attr(not(test), allow(dead_code))]
    WithRoom,
}

impl Rules {
    pub const STRICT: Rules = Rules {
        extra_per_rack: 0,
        one_per_rack_counts: RackCount::Usable,
    };
}

/// A node's best eligible disk, with the utilizations it is ranked by.
struct Candidate {
    /// Index into the usable racks.
    rack: usize,
    node: NodeId,
    disk: DiskId,
    rack_load: Utilization,
    node_load: Utilization,
    disk_load: Utilization,
    tie: u64,
}

/// `(used + fragment) / capacity` as an exact fraction of (sums of) byte counts;
/// capacity 0 counts as infinitely utilized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Utilization {
    used: u128,
    capacity: u128,
}

impl Utilization {
    pub(crate) fn of(disk: &DiskInfo) -> Self {
        Utilization {
            used: disk.used_bytes.into(),
            capacity: disk.capacity_bytes.into(),
        }
    }

    pub(crate) fn add(&mut self, other: Utilization) {
        self.used += other.used;
        self.capacity += other.capacity;
    }

    pub(crate) fn after_write(self, fragment_bytes: u64) -> Self {
        Utilization {
            used: self.used + u128::from(fragment_bytes),
            ..self
        }
    }
}

impl Ord for Utilization {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.capacity, other.capacity) {
            (0, 0) => Ordering::Equal,
            (0, _) => Ordering::Greater,
            (_, 0) => Ordering::Less,
            (a, b) => cmp_fractions(self.used, a, other.used, b),
        }
    }
}

impl PartialOrd for Utilization {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares `a/b` with `c/d` exactly (`b, d > 0`). Cross-multiplies when that cannot
/// overflow (always, for realistic byte counts), else falls back to Euclid's steps.
pub(crate) fn cmp_fractions(a: u128, b: u128, c: u128, d: u128) -> Ordering {
    match (a.checked_mul(d), c.checked_mul(b)) {
        (Some(ad), Some(cb)) => ad.cmp(&cb),
        _ => cmp_fractions_euclid(a, b, c, d),
    }
}

/// `a/b` vs `c/d` without multiplying: compare integer parts, then the remainders'
/// reciprocals, and so on (a continued-fraction expansion; terminates like Euclid).
pub(crate) fn cmp_fractions_euclid(a: u128, b: u128, c: u128, d: u128) -> Ordering {
    let (mut a, mut b, mut c, mut d) = (a, b, c, d);
    let mut flipped = false;
    loop {
        let (qa, ra) = (a / b, a % b);
        let (qc, rc) = (c / d, c % d);
        let ord = match (qa.cmp(&qc), ra == 0, rc == 0) {
            (Ordering::Equal, true, true) => Ordering::Equal,
            (Ordering::Equal, true, false) => Ordering::Less,
            (Ordering::Equal, false, true) => Ordering::Greater,
            (Ordering::Equal, false, false) => {
                // ra/b < rc/d  <=>  b/ra > d/rc
                (a, b, c, d) = (b, ra, d, rc);
                flipped = !flipped;
                continue;
            }
            (ord, _, _) => ord,
        };
        return if flipped { ord.reverse() } else { ord };
    }
}

/// The planner proper, without the final assertion (so mutants can be tested).
pub(crate) fn plan(
    map: &ClusterMap,
    k: u8,
    m: u8,
    stripe: StripeId,
    fragment_bytes: u64,
    rules: Rules,
) -> Result<Placement, PlanError> {
    let n = usize::from(k) + usize::from(m);
    if k == 0 || m == 0 || n > 255 {
        return Err(PlanError::InvalidCode { k, m });
    }

    // Every eligible node is in a usable rack, so usable racks index everything.
    let usable: Vec<&RackId> = map.usable_racks().into_iter().collect();
    let rack_index: BTreeMap<&RackId, usize> =
        usable.iter().enumerate().map(|(i, r)| (*r, i)).collect();

    let mut census = NodeCensus::default();
    let mut eligible_nodes = vec![0usize; usable.len()];
    let mut rack_loads = vec![Utilization::default(); usable.len()];
    // (rack, node id, its eligible disks, the node's load over them)
    let mut nodes: Vec<(usize, NodeId, Vec<&DiskInfo>, Utilization)> = Vec::new();
    for (&id, node) in &map.nodes {
        match node.state {
            NodeState::Up => {}
            NodeState::Down => census.down += 1,
            NodeState::Draining => census.draining += 1,
            NodeState::Dead => census.dead += 1,
        }
        if !node.state.accepts_new_fragments() {
            continue;
        }
        if !node.is_usable() {
            census.no_healthy_disk += 1;
            continue;
        }
        let disks: Vec<&DiskInfo> = node
            .disks
            .iter()
            .filter(|d| disk_is_eligible(d, fragment_bytes))
            .collect();
        if disks.is_empty() {
            census.no_room += 1;
            continue;
        }
        census.eligible += 1;
        let rack = rack_index[&node.rack];
        eligible_nodes[rack] += 1;
        let mut load = Utilization::default();
        for d in &disks {
            load.add(Utilization::of(d));
        }
        rack_loads[rack].add(load);
        nodes.push((rack, id, disks, load));
    }
    // Only a node's best disk can ever be taken: all its disks share the rack and node
    // keys, so the best comes first in the walk, and once it is skipped (rack closed) or
    // taken (node used) the others are skipped too. One candidate per node suffices.
    let mut candidates: Vec<Candidate> = nodes
        .into_iter()
        .map(|(rack, node, disks, load)| {
            let (disk_load, tie, disk) = disks
                .iter()
                .map(|d| {
                    let disk_load = Utilization::of(d).after_write(fragment_bytes);
                    (disk_load, tie_hash(stripe, node, d.id), d.id)
                })
                .min()
                .expect("eligible nodes have an eligible disk");
            Candidate {
                rack,
                node,
                disk,
                rack_load: rack_loads[rack].after_write(fragment_bytes),
                node_load: load.after_write(fragment_bytes),
                disk_load,
                tie,
            }
        })
        .collect();

    let racks_with_room = eligible_nodes.iter().filter(|&&e| e > 0).count();
    let deciding_racks = match rules.one_per_rack_counts {
        RackCount::Usable => usable.len(),
        RackCount::WithRoom => racks_with_room,
    };
    let one_per_rack = deciding_racks >= n;
    let per_rack_limit = if one_per_rack {
        1
    } else {
        usize::from(m) + rules.extra_per_rack
    };

    if !one_per_rack && usable.len() * per_rack_limit < n {
        return Err(PlanError::TooFewRacks {
            k,
            m,
            needed: n.div_ceil(per_rack_limit),
            usable_racks: usable.len(),
        });
    }
    if census.eligible < n {
        return Err(PlanError::TooFewNodes {
            k,
            m,
            needed: n,
            fragment_bytes,
            census,
        });
    }
    let fits = |level: usize| eligible_nodes.iter().map(|&e| e.min(level)).sum::<usize>();
    let placeable = fits(per_rack_limit);
    if placeable < n {
        return Err(if one_per_rack {
            PlanError::NotEnoughRacksWithRoom {
                k,
                m,
                usable_racks: usable.len(),
                racks_with_room,
                fragment_bytes,
                full_racks: usable
                    .iter()
                    .zip(&eligible_nodes)
                    .filter(|(_, &e)| e == 0)
                    .map(|(r, _)| (*r).clone())
                    .collect(),
            }
        } else {
            PlanError::RacksTooUneven {
                k,
                m,
                fragment_bytes,
                placeable,
                eligible_nodes_per_rack: usable
                    .iter()
                    .zip(&eligible_nodes)
                    .map(|(r, &e)| ((*r).clone(), e))
                    .collect(),
            }
        });
    }

    // Water-filling quotas: every rack gets `base[r]`, `extra` racks among those with
    // `E_r >= level` get one more. Reachable whatever the greedy order (see below).
    let level = (1..=per_rack_limit)
        .find(|&l| fits(l) >= n)
        .expect("fits(per_rack_limit) >= n was checked above");
    let base: Vec<usize> = eligible_nodes.iter().map(|&e| e.min(level - 1)).collect();
    let mut extra = n - base.iter().sum::<usize>();

    candidates.sort_unstable_by(|a, b| {
        a.rack_load
            .cmp(&b.rack_load)
            .then(a.node_load.cmp(&b.node_load))
            .then(a.disk_load.cmp(&b.disk_load))
            .then(a.tie.cmp(&b.tie))
            .then(a.node.cmp(&b.node))
            .then(a.disk.cmp(&b.disk))
    });

    // Greedy walk. A rack is open while below its base, or at its base (= level-1) with
    // E_r >= level while extras remain. Taking a disk never makes the rest unreachable:
    // a rack below base always has an unused eligible node left (base <= E_r), and
    // while extras remain some rack with E_r >= level is still at its base (there are
    // at least `extra` such racks since fits(level) >= n).
    let mut taken = vec![0usize; usable.len()];
    let mut used_nodes: BTreeSet<NodeId> = BTreeSet::new();
    let mut chosen: Vec<&Candidate> = Vec::with_capacity(n);
    for c in &candidates {
        if chosen.len() == n {
            break;
        }
        if used_nodes.contains(&c.node) {
            continue;
        }
        let r = c.rack;
        if taken[r] < base[r] {
            // within the base quota
        } else if extra > 0 && taken[r] == base[r] && eligible_nodes[r] >= level {
            extra -= 1;
        } else {
            continue;
        }
        taken[r] += 1;
        used_nodes.insert(c.node);
        chosen.push(c);
    }
    assert_eq!(chosen.len(), n, "water-filling quotas are always reachable");

    chosen.sort_unstable_by_key(|c| (order_hash(stripe, c.node, c.disk), c.node, c.disk));
    Ok(Placement {
        locations: chosen
            .into_iter()
            .map(|c| FragmentLocation {
                node: c.node,
                disk: c.disk,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn euclid_comparison_matches_cross_multiplication(
            a in 0u64..=u64::MAX, b in 1u64..=u64::MAX, c in 0u64..=u64::MAX, d in 1u64..=u64::MAX,
            small in any::<bool>(),
        ) {
            // Half the cases with small numbers, where equal fractions are common.
            let (a, b, c, d) = if small { (a % 20, b % 20 + 1, c % 20, d % 20 + 1) } else { (a, b, c, d) };
            let (a, b, c, d) = (u128::from(a), u128::from(b), u128::from(c), u128::from(d));
            prop_assert_eq!(cmp_fractions_euclid(a, b, c, d), (a * d).cmp(&(c * b)));
        }
    }

    #[test]
    fn huge_fractions_compare_without_overflow() {
        let max = u128::MAX;
        // 1 - 1/max > 1 - 1/(max-1)
        assert_eq!(
            cmp_fractions(max - 1, max, max - 2, max - 1),
            Ordering::Greater
        );
        assert_eq!(cmp_fractions(max, max - 1, max, max - 1), Ordering::Equal);
        assert_eq!(cmp_fractions(max, 1, max - 1, 1), Ordering::Greater);
        assert_eq!(cmp_fractions(max / 2, max, 1, 2), Ordering::Less);
    }
}
