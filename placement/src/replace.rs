//! [`plan_replacements`]: choose new locations for some fragments of a stripe (writes that
//! failed) while the others stay where they are.

use std::collections::{BTreeMap, BTreeSet};

use common::cluster::{
    check_placement, ClusterMap, FragmentLocation, NodeState, Placement, PlacementViolation,
};
use common::ids::{NodeId, RackId, StripeId};

use crate::error::PlanError;
use crate::hash::tie_hash;
use crate::planner::{disk_is_eligible, is_eligible, Utilization};

/// `map` as seen without the nodes in `exclude`: they are marked [`NodeState::Down`], so
/// they receive nothing and (like any down node) do not make their rack usable.
pub fn view_without(map: &ClusterMap, exclude: &BTreeSet<NodeId>) -> ClusterMap {
    let mut view = map.clone();
    for id in exclude {
        if let Some(n) = view.node_mut(*id) {
            n.state = NodeState::Down;
        }
    }
    view
}

/// Re-places the fragments of stripe `stripe` (coded `k+m`, fragments of
/// `fragment_bytes`) whose slot in `current` is `None`; slots that are `Some` keep their
/// location unchanged. Nodes in `exclude_nodes` receive nothing (a gateway passes the
/// nodes whose writes just failed and the ones it suspects).
///
/// # The rule
/// The result obeys the placement rule ([`check_placement`]) in
/// [`view_without`]`(map, exclude_nodes)`: the map as it is with the excluded nodes taken
/// as down. That is the same view [`crate::plan_stripe`] would plan a fresh stripe in; a
/// stripe placed there and partly re-placed here is valid in it. New locations are
/// eligible disks ([`is_eligible`]) of nodes that hold no other fragment of the stripe,
/// in racks still below the limit (1 per rack when the view has at least `k+m` usable
/// racks, else `m`).
///
/// # Choice
/// Missing slots are filled in index order; each takes the candidate node whose rack
/// holds the fewest fragments of the stripe so far, then the least utilized node, then
/// the least utilized disk, ties broken by the planner's fixed hash of (stripe, node,
/// disk). Deterministic: the result depends only on the arguments. Filling greedily
/// never fails when some valid completion exists (each pick uses one unit of one rack's
/// spare capacity, and the completion exists iff the spare capacities add up to the
/// number of missing slots).
///
/// # Errors
/// [`PlanError::InvalidCode`], [`PlanError::WrongSlotCount`] for malformed input;
/// [`PlanError::KeptBreaksRule`] when the kept fragments already break the rule in the
/// view (two on one node, or more in a rack than it allows); [`PlanError::NoReplacement`]
/// when too few eligible nodes fit.
///
/// # Panics
/// If the result fails [`check_placement`] in the view: a planner bug.
pub fn plan_replacements(
    map: &ClusterMap,
    k: u8,
    m: u8,
    stripe: StripeId,
    fragment_bytes: u64,
    current: &[Option<FragmentLocation>],
    exclude_nodes: &BTreeSet<NodeId>,
) -> Result<Placement, PlanError> {
    let n = usize::from(k) + usize::from(m);
    if k == 0 || m == 0 || n > 255 {
        return Err(PlanError::InvalidCode { k, m });
    }
    if current.len() != n {
        return Err(PlanError::WrongSlotCount {
            k,
            m,
            actual: current.len(),
        });
    }
    let view = view_without(map, exclude_nodes);
    let one_per_rack = view.usable_racks().len() >= n;
    let per_rack = if one_per_rack { 1 } else { usize::from(m) };

    // The kept fragments: their nodes and racks.
    let kept_err = |reason: String| PlanError::KeptBreaksRule { k, m, reason };
    let mut used_nodes: BTreeSet<NodeId> = BTreeSet::new();
    let mut rack_count: BTreeMap<RackId, usize> = BTreeMap::new();
    for (index, loc) in current.iter().enumerate() {
        let Some(loc) = loc else { continue };
        let Some(node) = view.node(loc.node) else {
            return Err(kept_err(
                PlacementViolation::UnknownNode {
                    index,
                    node: loc.node,
                }
                .to_string(),
            ));
        };
        if node.disk(loc.disk).is_none() {
            return Err(kept_err(
                PlacementViolation::UnknownDisk {
                    index,
                    node: loc.node,
                    disk: loc.disk,
                }
                .to_string(),
            ));
        }
        if !used_nodes.insert(loc.node) {
            return Err(kept_err(format!(
                "two kept fragments are on node {}",
                loc.node
            )));
        }
        let c = rack_count.entry(node.rack.clone()).or_default();
        *c += 1;
        if *c > per_rack {
            return Err(kept_err(format!(
                "rack {} holds {c} of them, at most {per_rack} allowed",
                node.rack
            )));
        }
    }

    // One candidate per eligible node that holds nothing of the stripe: its best disk.
    struct Candidate {
        rack: RackId,
        node: NodeId,
        disk: common::ids::DiskId,
        node_load: Utilization,
        disk_load: Utilization,
        tie: u64,
    }
    let mut candidates: Vec<Candidate> = Vec::new();
    for (&id, node) in &view.nodes {
        if !node.state.accepts_new_fragments() || used_nodes.contains(&id) {
            continue;
        }
        let disks: Vec<_> = node
            .disks
            .iter()
            .filter(|d| disk_is_eligible(d, fragment_bytes))
            .collect();
        let mut node_load = Utilization::default();
        for d in &disks {
            node_load.add(Utilization::of(d));
        }
        let best = disks
            .iter()
            .map(|d| {
                (
                    Utilization::of(d).after_write(fragment_bytes),
                    tie_hash(stripe, id, d.id),
                    d.id,
                )
            })
            .min();
        if let Some((disk_load, tie, disk)) = best {
            candidates.push(Candidate {
                rack: node.rack.clone(),
                node: id,
                disk,
                node_load: node_load.after_write(fragment_bytes),
                disk_load,
                tie,
            });
        }
    }

    let missing = current.iter().filter(|c| c.is_none()).count();
    let mut per_rack_candidates: BTreeMap<&RackId, usize> = BTreeMap::new();
    for c in &candidates {
        *per_rack_candidates.entry(&c.rack).or_default() += 1;
    }
    let placeable: usize = per_rack_candidates
        .iter()
        .map(|(r, &e)| e.min(per_rack - rack_count.get(*r).copied().unwrap_or(0)))
        .sum();
    if placeable < missing {
        return Err(PlanError::NoReplacement {
            k,
            m,
            missing,
            placeable,
            per_rack,
            fragment_bytes,
        });
    }

    let mut taken = vec![false; candidates.len()];
    let mut locations = Vec::with_capacity(n);
    for slot in current {
        if let Some(loc) = slot {
            locations.push(*loc);
            continue;
        }
        let best = candidates
            .iter()
            .enumerate()
            .filter(|(i, c)| !taken[*i] && rack_count.get(&c.rack).copied().unwrap_or(0) < per_rack)
            .min_by(|(_, a), (_, b)| {
                let ra = rack_count.get(&a.rack).copied().unwrap_or(0);
                let rb = rack_count.get(&b.rack).copied().unwrap_or(0);
                ra.cmp(&rb)
                    .then(a.node_load.cmp(&b.node_load))
                    .then(a.disk_load.cmp(&b.disk_load))
                    .then(a.tie.cmp(&b.tie))
                    .then(a.node.cmp(&b.node))
            })
            .map(|(i, _)| i)
            .expect("placeable >= missing: a candidate remains for every missing slot");
        taken[best] = true;
        let c = &candidates[best];
        *rack_count.entry(c.rack.clone()).or_default() += 1;
        locations.push(FragmentLocation {
            node: c.node,
            disk: c.disk,
        });
    }

    let placement = Placement { locations };
    let verdict = check_placement(&view, &placement, k, m);
    assert!(
        verdict.is_ok(),
        "placement planner bug: replacements for stripe {stripe} ({k}+{m}) break the rule: \
         {verdict:?}; placement: {placement:?}"
    );
    for (slot, loc) in current.iter().zip(&placement.locations) {
        assert!(
            slot.is_some() || is_eligible(&view, *loc, fragment_bytes),
            "placement planner bug: stripe {stripe} re-placed on ineligible {loc}"
        );
    }
    Ok(placement)
}
