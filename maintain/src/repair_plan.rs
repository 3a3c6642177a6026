//! Repair's pure decisions (no I/O, no clock): how healthy each fragment of a stripe is
//! in the cluster map ([`classify_fragment`]), what a stripe needs ([`assess`]), which
//! stripes of a pass go first ([`RepairQueue`]) and where rebuilt fragments go
//! ([`plan_targets`]).
//!
//! # Fragment health
//! - *healthy*: its node is Up, its disk is known and not failed, scrub has not reported
//!   it damaged.
//! - *lost*: its node is Dead or gone from the map, or its disk failed or is unknown. It
//!   will never be read again: rebuild it elsewhere.
//! - *moving*: its node is Draining. It must move off, but the node still serves reads,
//!   so the old copy is a source for the rebuild (read last).
//! - *unavailable*: its node is Down. Not lost yet: nothing is rebuilt for it until the
//!   failure detector marks the node Dead (a restart or a network blip would otherwise
//!   cost a full copy). It stays in its slot when other fragments are repaired.
//! - *damaged*: a data node's scrubber listed it (a checksum failed, an I/O error):
//!   rebuild it elsewhere (the GC deletes the damaged copy once the move commits).
//! - *misplaced*: healthy, but where it is breaks the placement rule's hard part in the
//!   current map ([`mark_misplaced`]: a second fragment of the stripe on one node, or
//!   more than `m` in one rack, so one node or rack loss could cost more than `m`). It
//!   is read like a moving one and rebuilt elsewhere. The softer one-per-rack rule (when
//!   the cluster has `k+m` usable racks) moves data only for a stripe rebuilt anyway: a
//!   stripe with at most `m` per rack already survives any one rack, and re-placing
//!   every stripe when racks are added would be a rebalancing storm, not a repair; but a
//!   stripe placed two per rack before the cluster grew, once it loses a fragment, is
//!   brought to one per rack (the planner keeps one per rack in that mode, so repairing
//!   only the lost fragment would be blocked for good).
//!
//! # What a stripe needs
//! Readable fragments are the healthy and the moving ones. Fewer than `k` readable:
//! - and fewer than `k` even counting unavailable ones: **unrecoverable** — no write
//!   is ever made for it, it is logged and counted;
//! - else it waits for its Down nodes (nothing can be read now).
//!
//! Otherwise every lost, moving and damaged fragment is rebuilt; a stripe whose only
//! problem is unavailable fragments waits.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use common::cluster::{check_placement, ClusterMap, DiskState, FragmentLocation, NodeState};
use common::codec::CodecParams;
use common::ids::{NodeId, RackId, StripeId};
use meta_raft::state_machine::Response;
use placement::{plan_replacements, Placement, PlanError};

use crate::error::MaintainError;

/// The health of one fragment (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FragmentHealth {
    Healthy,
    Lost,
    Moving,
    Unavailable,
    Damaged,
    Misplaced,
}

impl FragmentHealth {
    /// Can be read now (a rebuild source).
    pub fn readable(self) -> bool {
        matches!(
            self,
            FragmentHealth::Healthy | FragmentHealth::Moving | FragmentHealth::Misplaced
        )
    }

    /// Must be rebuilt elsewhere.
    pub fn needs_rebuild(self) -> bool {
        matches!(
            self,
            FragmentHealth::Lost
                | FragmentHealth::Moving
                | FragmentHealth::Damaged
                | FragmentHealth::Misplaced
        )
    }
}

/// The health of the fragment stored on `loc`; `damaged` when a scrubber listed it.
pub fn classify_fragment(map: &ClusterMap, loc: FragmentLocation, damaged: bool) -> FragmentHealth {
    let Some(node) = map.node(loc.node) else {
        return FragmentHealth::Lost;
    };
    match node.state {
        NodeState::Dead => return FragmentHealth::Lost,
        NodeState::Down => return FragmentHealth::Unavailable,
        NodeState::Up | NodeState::Draining => {}
    }
    if node
        .disk(loc.disk)
        .is_none_or(|d| d.state == DiskState::Failed)
    {
        return FragmentHealth::Lost;
    }
    if damaged {
        return FragmentHealth::Damaged;
    }
    if node.state == NodeState::Draining {
        FragmentHealth::Moving
    } else {
        FragmentHealth::Healthy
    }
}

/// Marks as [`FragmentHealth::Misplaced`] the healthy fragments of a stripe coded
/// `codec` (`placement`, with `health`, index order) that must move for the stripe to
/// obey the placement rule in `map` (module docs): on a node that already holds a
/// fragment of the stripe with a lower index, or beyond the first `m` fragments (by
/// index) that stay in one rack; and when the stripe is rebuilt anyway in a cluster with
/// `k+m` usable racks, beyond the first one that stays in a rack. Fragments that stay are
/// the healthy and the unavailable ones (a Down node's fragment keeps its slot); the ones
/// rebuilt anyway (lost, moving, damaged) are leaving and do not count. Returns how many
/// were marked.
pub fn mark_misplaced(
    map: &ClusterMap,
    codec: CodecParams,
    placement: &[FragmentLocation],
    health: &mut [FragmentHealth],
) -> usize {
    let mut marked = mark_beyond(map, usize::from(codec.m), placement, health);
    let n = codec.data_fragments() + codec.parity_fragments();
    if health.iter().any(|h| h.needs_rebuild()) && map.usable_racks().len() >= n {
        marked += mark_beyond(map, 1, placement, health);
    }
    marked
}

/// [`mark_misplaced`] for one limit of fragments per rack.
fn mark_beyond(
    map: &ClusterMap,
    per_rack_max: usize,
    placement: &[FragmentLocation],
    health: &mut [FragmentHealth],
) -> usize {
    let mut nodes: BTreeSet<NodeId> = BTreeSet::new();
    let mut per_rack: BTreeMap<&RackId, usize> = BTreeMap::new();
    let mut marked = 0;
    for (loc, h) in placement.iter().zip(health.iter_mut()) {
        if *h != FragmentHealth::Healthy && *h != FragmentHealth::Unavailable {
            continue;
        }
        let Some(node) = map.node(loc.node) else {
            continue;
        };
        let in_rack = per_rack.entry(&node.rack).or_default();
        let fits = nodes.insert(loc.node) && *in_rack < per_rack_max;
        if fits {
            *in_rack += 1;
        } else if *h == FragmentHealth::Healthy {
            *h = FragmentHealth::Misplaced;
            marked += 1;
        }
    }
    marked
}

/// What one stripe needs (module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every fragment is healthy.
    Healthy,
    /// Only unavailable fragments (Down nodes) are missing: wait for the detector.
    Wait { unavailable: usize },
    /// Rebuild `rebuild` (fragment indexes); `healthy` fragments are fine now.
    Repair {
        healthy: usize,
        rebuild: BTreeSet<usize>,
    },
    /// Fewer than `k` readable fragments, but enough counting the Down ones: wait.
    Unreadable { readable: usize, unavailable: usize },
    /// Fewer than `k` fragments survive: lost. Never written to.
    Unrecoverable { readable: usize, k: usize },
}

/// The verdict for a stripe coded with `k` data fragments whose fragments have
/// `health` (index order).
pub fn assess(k: usize, health: &[FragmentHealth]) -> Verdict {
    let count = |f: fn(FragmentHealth) -> bool| health.iter().filter(|h| f(**h)).count();
    let healthy = count(|h| h == FragmentHealth::Healthy);
    let readable = count(FragmentHealth::readable);
    let unavailable = count(|h| h == FragmentHealth::Unavailable);
    if readable < k {
        return if readable + unavailable >= k {
            Verdict::Unreadable {
                readable,
                unavailable,
            }
        } else {
            Verdict::Unrecoverable { readable, k }
        };
    }
    let rebuild: BTreeSet<usize> = (0..health.len())
        .filter(|&i| health[i].needs_rebuild())
        .collect();
    if !rebuild.is_empty() {
        return Verdict::Repair { healthy, rebuild };
    }
    if unavailable > 0 {
        return Verdict::Wait { unavailable };
    }
    Verdict::Healthy
}

/// One stripe waiting for repair, ordered by urgency: fewest healthy fragments first,
/// then stripe id (a deterministic order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate<T> {
    pub healthy: usize,
    pub stripe: StripeId,
    pub item: T,
}

impl<T: Eq> PartialOrd for Candidate<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Eq> Ord for Candidate<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.healthy, self.stripe.0).cmp(&(other.healthy, other.stripe.0))
    }
}

/// The `capacity` most urgent candidates seen (a bounded max-heap: a new candidate
/// displaces the least urgent one kept when it is more urgent). Memory is bounded by
/// `capacity` however many stripes a pass walks.
#[derive(Debug)]
pub struct RepairQueue<T> {
    capacity: usize,
    heap: BinaryHeap<Candidate<T>>,
    /// Candidates dropped because the queue was full (repaired on a later pass).
    pub overflow: u64,
}

impl<T: Eq> RepairQueue<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            heap: BinaryHeap::new(),
            overflow: 0,
        }
    }

    pub fn push(&mut self, c: Candidate<T>) {
        if self.heap.len() < self.capacity {
            self.heap.push(c);
            return;
        }
        self.overflow += 1;
        if self.heap.peek().is_some_and(|worst| c < *worst) {
            self.heap.pop();
            self.heap.push(c);
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The kept candidates, most urgent first.
    pub fn into_sorted(self) -> Vec<Candidate<T>> {
        self.heap.into_sorted_vec()
    }
}

/// Why no target placement could be chosen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The placement rule cannot be met with the nodes left (e.g. too few racks after a
    /// rack loss): the stripe is *blocked by placement*; the rule is never weakened.
    #[error("blocked by placement: {0}")]
    Blocked(String),
}

/// Bytes of each fragment of a stripe of `data_len` bytes coded `codec` (an upper
/// bound of the codec's exact length: free-space checks and the repair budget).
pub fn fragment_bytes(codec: CodecParams, data_len: u64) -> u64 {
    data_len.div_ceil(u64::from(codec.k.max(1))) + 2
}

/// New locations for fragments `rebuild` of stripe `stripe` (placement `placement`):
/// the planner's choice ([`plan_replacements`]) with the other fragments kept where they
/// are, never on a node in `avoid` (the caller passes the nodes holding an old copy of
/// the stripe still queued for GC, and nodes whose writes just failed) nor on the node
/// of a fragment being rebuilt. The result obeys the placement rule in `map` itself
/// (checked here: the planner checks it in a view where avoided nodes count as down).
pub fn plan_targets(
    map: &ClusterMap,
    codec: CodecParams,
    stripe: StripeId,
    data_len: u64,
    placement: &[FragmentLocation],
    rebuild: &BTreeSet<usize>,
    avoid: &BTreeSet<NodeId>,
) -> Result<BTreeMap<usize, FragmentLocation>, TargetError> {
    let current: Vec<Option<FragmentLocation>> = placement
        .iter()
        .enumerate()
        .map(|(i, loc)| (!rebuild.contains(&i)).then_some(*loc))
        .collect();
    let mut exclude = avoid.clone();
    exclude.extend(
        rebuild
            .iter()
            .filter_map(|&i| placement.get(i))
            .map(|l| l.node),
    );
    let planned = plan_replacements(
        map,
        codec.k,
        codec.m,
        stripe,
        fragment_bytes(codec, data_len),
        &current,
        &exclude,
    )
    .map_err(|e: PlanError| TargetError::Blocked(e.to_string()))?;
    check_placement(map, &planned, codec.k, codec.m).map_err(|v| {
        TargetError::Blocked(format!(
            "the planned placement breaks the rule in the cluster map: {v}"
        ))
    })?;
    let targets = rebuild
        .iter()
        .map(|&i| (i, planned.locations[i]))
        .collect::<BTreeMap<_, _>>();
    debug_assert!(targets.values().all(|t| !exclude.contains(&t.node)));
    Ok(targets)
}

/// The new placement `targets` make of `placement`, checked against the rule in `map`
/// once more right before the commit (a durability path asserts its invariant).
pub fn new_placement(
    map: &ClusterMap,
    codec: CodecParams,
    placement: &[FragmentLocation],
    targets: &BTreeMap<usize, FragmentLocation>,
) -> Result<Vec<FragmentLocation>, TargetError> {
    let mut locations = placement.to_vec();
    for (&i, loc) in targets {
        if let Some(slot) = locations.get_mut(i) {
            *slot = *loc;
        }
    }
    let p = Placement { locations };
    check_placement(map, &p, codec.k, codec.m)
        .map_err(|v| TargetError::Blocked(format!("the new placement breaks the rule: {v}")))?;
    Ok(p.locations)
}

/// What becomes of the fragments a rebuild wrote, given how its `ReplacePlacement`
/// ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterCommit {
    /// Committed: the new placement references them.
    Committed,
    /// Rejected (the compare-and-set lost to an overwrite, a delete or another repair;
    /// or the apply refused the placement): nothing references them, delete them.
    DeleteWritten,
    /// Unknown (timeout, lost leadership, Raft error, an unexpected answer): the commit
    /// may have happened, so they are kept; if it did not, they are orphans (the orphan
    /// sweep's), and the stripe is repaired again on a later pass.
    KeepWritten,
}

/// The decision for a commit's result (see [`AfterCommit`]).
pub fn after_commit(result: &Result<Response, MaintainError>) -> AfterCommit {
    match result {
        Ok(Response::PlacementReplaced { .. }) => AfterCommit::Committed,
        Err(MaintainError::Rejected { .. }) => AfterCommit::DeleteWritten,
        Ok(_) | Err(_) => AfterCommit::KeepWritten,
    }
}
