//! The cluster map as the placement planner sees it: nodes, the rack each belongs to,
//! their disks, states and space usage; plus the placement of one stripe and the
//! placement rule as a checker ([`check_placement`]).
//!
//! This is plain data. The metadata plane stores it in the root group (Raft), the
//! planner (`placement` crate) reads it, and the simulator checks placements against it.
//! Everything iterates in key order (`BTreeMap`), so nothing here depends on hashing or
//! insertion order.
//!
//! # The placement rule
//! A stripe coded `k+m` (k data + m parity fragments, any k rebuild it) is placed on
//! exactly `k+m` (node, disk) locations such that:
//! 1. no two fragments share a disk, and no two share a node;
//! 2. at most `m` fragments share a rack (with `m+1` in one rack, losing that rack loses
//!    the stripe);
//! 3. if the cluster has at least `k+m` *usable racks* — racks with at least one
//!    [`NodeState::Up`] node that has a [`DiskState::Healthy`] disk — every fragment is
//!    in a different rack.
//!
//! The rule is evaluated against the map as it is now: the verdict for a stored
//! placement can change when nodes go down or come up (that is what repair is for), but
//! never because disks filled up (space usage does not enter the rule).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{DiskId, NodeId, RackId};

/// The administrative / liveness state of a data node. Only [`NodeState::Up`] nodes
/// receive new fragments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NodeState {
    /// Serving and accepting new fragments.
    Up,
    /// Not reachable right now; expected back. Its fragments count as unavailable.
    Down,
    /// Being emptied by the operator: still serves reads, receives nothing new.
    Draining,
    /// Gone for good; its fragments must be rebuilt elsewhere.
    Dead,
}

impl NodeState {
    /// Whether a node in this state may receive new fragments.
    pub fn accepts_new_fragments(self) -> bool {
        self == NodeState::Up
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeState::Up => "up",
            NodeState::Down => "down",
            NodeState::Draining => "draining",
            NodeState::Dead => "dead",
        })
    }
}

/// The state of one disk of a data node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DiskState {
    Healthy,
    Failed,
}

impl fmt::Display for DiskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiskState::Healthy => "healthy",
            DiskState::Failed => "failed",
        })
    }
}

/// One disk of a data node, with its space accounting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskInfo {
    /// Index of the disk within its node (unique within the node).
    pub id: DiskId,
    pub state: DiskState,
    pub capacity_bytes: u64,
    /// May exceed `capacity_bytes` (over-reporting, shrunk disk); `free_bytes` is then 0.
    pub used_bytes: u64,
}

impl DiskInfo {
    /// Bytes still free: `capacity - used`, saturating at 0.
    pub fn free_bytes(&self) -> u64 {
        self.capacity_bytes.saturating_sub(self.used_bytes)
    }

    pub fn is_healthy(&self) -> bool {
        self.state == DiskState::Healthy
    }
}

/// One data node: where it is (rack), how to reach it, its state and disks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Must equal this node's key in [`ClusterMap::nodes`] (the key is authoritative).
    pub id: NodeId,
    /// The failure domain the node belongs to.
    pub rack: RackId,
    /// Network address of the node's data service (format settled by the issue that
    /// wires it; placement ignores it).
    pub addr: String,
    pub state: NodeState,
    pub disks: Vec<DiskInfo>,
}

impl NodeInfo {
    /// The disk with id `disk`, if the node has it.
    pub fn disk(&self, disk: DiskId) -> Option<&DiskInfo> {
        self.disks.iter().find(|d| d.id == disk)
    }

    /// The disk with id `disk`, mutably, if the node has it.
    pub fn disk_mut(&mut self, disk: DiskId) -> Option<&mut DiskInfo> {
        self.disks.iter_mut().find(|d| d.id == disk)
    }

    /// Up, with at least one healthy disk (regardless of free space). A rack with at
    /// least one such node is a *usable rack* for the placement rule.
    pub fn is_usable(&self) -> bool {
        self.state.accepts_new_fragments() && self.disks.iter().any(DiskInfo::is_healthy)
    }
}

/// The cluster map: every data node by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMap {
    pub nodes: BTreeMap<NodeId, NodeInfo>,
}

impl ClusterMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts (or replaces) a node under its own id; returns the node it replaced.
    pub fn insert_node(&mut self, node: NodeInfo) -> Option<NodeInfo> {
        self.nodes.insert(node.id, node)
    }

    /// Every rack that has at least one node (in any state), in order.
    pub fn racks(&self) -> BTreeSet<&RackId> {
        self.nodes.values().map(|n| &n.rack).collect()
    }

    /// Racks with at least one usable node ([`NodeInfo::is_usable`]: Up, with a healthy
    /// disk), in order. Their number decides whether the placement rule demands one
    /// fragment per rack.
    pub fn usable_racks(&self) -> BTreeSet<&RackId> {
        self.nodes
            .values()
            .filter(|n| n.is_usable())
            .map(|n| &n.rack)
            .collect()
    }

    pub fn node(&self, id: NodeId) -> Option<&NodeInfo> {
        self.nodes.get(&id)
    }

    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut NodeInfo> {
        self.nodes.get_mut(&id)
    }

    /// The rack of node `id`, if the node is in the map.
    pub fn rack_of(&self, id: NodeId) -> Option<&RackId> {
        self.node(id).map(|n| &n.rack)
    }

    pub fn disk(&self, node: NodeId, disk: DiskId) -> Option<&DiskInfo> {
        self.node(node)?.disk(disk)
    }

    pub fn disk_mut(&mut self, node: NodeId, disk: DiskId) -> Option<&mut DiskInfo> {
        self.node_mut(node)?.disk_mut(disk)
    }

    /// Accounts `bytes_per_fragment` more used bytes (saturating) on every disk of
    /// `placement`. Locations naming a node or disk that is not in the map are skipped:
    /// the map may have changed since the placement was planned.
    pub fn add_usage(&mut self, placement: &Placement, bytes_per_fragment: u64) {
        for loc in &placement.locations {
            if let Some(d) = self.disk_mut(loc.node, loc.disk) {
                d.used_bytes = d.used_bytes.saturating_add(bytes_per_fragment);
            }
        }
    }

    /// The inverse of [`ClusterMap::add_usage`] (saturating at 0), e.g. after garbage
    /// collection freed a stripe's fragments.
    pub fn remove_usage(&mut self, placement: &Placement, bytes_per_fragment: u64) {
        for loc in &placement.locations {
            if let Some(d) = self.disk_mut(loc.node, loc.disk) {
                d.used_bytes = d.used_bytes.saturating_sub(bytes_per_fragment);
            }
        }
    }
}

/// Where one fragment lives: a disk of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FragmentLocation {
    pub node: NodeId,
    pub disk: DiskId,
}

impl fmt::Display for FragmentLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {} disk {}", self.node, self.disk)
    }
}

/// The placement of one stripe: `locations[i]` holds fragment `i` (`0..k` data,
/// `k..k+m` parity).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Placement {
    pub locations: Vec<FragmentLocation>,
}

/// Why a placement breaks the placement rule (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlacementViolation {
    #[error("invalid erasure code {k}+{m}: k and m must each be at least 1 and k+m at most 255")]
    InvalidCode { k: u8, m: u8 },

    #[error(
        "a stripe coded {k}+{m} needs exactly {expected} fragment locations, \
         but the placement has {actual}"
    )]
    WrongFragmentCount {
        k: u8,
        m: u8,
        expected: usize,
        actual: usize,
    },

    #[error("fragment {index} is placed on node {node}, which is not in the cluster map")]
    UnknownNode { index: usize, node: NodeId },

    #[error("fragment {index} is placed on disk {disk} of node {node}, which has no such disk")]
    UnknownDisk {
        index: usize,
        node: NodeId,
        disk: DiskId,
    },

    #[error(
        "fragments {first} and {second} are both on disk {disk} of node {node}; \
         losing that disk would lose both"
    )]
    SharedDisk {
        first: usize,
        second: usize,
        node: NodeId,
        disk: DiskId,
    },

    #[error(
        "fragments {first} and {second} are both on node {node}; \
         losing that node would lose both"
    )]
    SharedNode {
        first: usize,
        second: usize,
        node: NodeId,
    },

    #[error(
        "rack {rack} holds {count} fragments of a stripe coded {k}+{m}; at most {m} may \
         share a rack, or losing that rack loses the stripe"
    )]
    RackOverloaded {
        rack: RackId,
        count: usize,
        k: u8,
        m: u8,
    },

    #[error(
        "rack {rack} holds {count} fragments of a stripe coded {k}+{m}; the cluster has \
         {usable_racks} racks with usable nodes, at least one per fragment ({}), so every \
         fragment must be in a different rack",
        usize::from(*k) + usize::from(*m)
    )]
    NotOnePerRack {
        rack: RackId,
        count: usize,
        k: u8,
        m: u8,
        usable_racks: usize,
    },
}

/// Checks `placement` of a stripe coded `k+m` against the placement rule (module docs)
/// in the current `map`. Returns the first violation found, checking in this order:
/// the code itself, the number of locations, that every location exists in the map,
/// disk and node distinctness (lowest fragment indices first), then racks (in rack
/// order): at most `m` per rack, then one per rack when there are `k+m` usable racks.
///
/// It does not look at node/disk states or free space of the chosen locations: a
/// placement made earlier stays valid when its disks fill up or fail (a failed disk is
/// a repair matter). Planners check eligibility themselves.
pub fn check_placement(
    map: &ClusterMap,
    placement: &Placement,
    k: u8,
    m: u8,
) -> Result<(), PlacementViolation> {
    let n = usize::from(k) + usize::from(m);
    if k == 0 || m == 0 || n > 255 {
        return Err(PlacementViolation::InvalidCode { k, m });
    }
    let locs = &placement.locations;
    if locs.len() != n {
        return Err(PlacementViolation::WrongFragmentCount {
            k,
            m,
            expected: n,
            actual: locs.len(),
        });
    }

    let mut racks: Vec<&RackId> = Vec::with_capacity(n);
    for (index, loc) in locs.iter().enumerate() {
        let Some(node) = map.node(loc.node) else {
            return Err(PlacementViolation::UnknownNode {
                index,
                node: loc.node,
            });
        };
        if node.disk(loc.disk).is_none() {
            return Err(PlacementViolation::UnknownDisk {
                index,
                node: loc.node,
                disk: loc.disk,
            });
        }
        racks.push(&node.rack);
    }

    // n <= 255: the quadratic scan is cheaper than building sets.
    for second in 0..n {
        for first in 0..second {
            let (a, b) = (locs[first], locs[second]);
            if a == b {
                return Err(PlacementViolation::SharedDisk {
                    first,
                    second,
                    node: a.node,
                    disk: a.disk,
                });
            }
        }
    }
    for second in 0..n {
        for first in 0..second {
            if locs[first].node == locs[second].node {
                return Err(PlacementViolation::SharedNode {
                    first,
                    second,
                    node: locs[first].node,
                });
            }
        }
    }

    let mut per_rack: BTreeMap<&RackId, usize> = BTreeMap::new();
    for rack in racks {
        *per_rack.entry(rack).or_default() += 1;
    }
    if let Some((rack, &count)) = per_rack.iter().find(|(_, &c)| c > usize::from(m)) {
        return Err(PlacementViolation::RackOverloaded {
            rack: (*rack).clone(),
            count,
            k,
            m,
        });
    }
    let usable_racks = map.usable_racks().len();
    if usable_racks >= n {
        if let Some((rack, &count)) = per_rack.iter().find(|(_, &c)| c > 1) {
            return Err(PlacementViolation::NotOnePerRack {
                rack: (*rack).clone(),
                count,
                k,
                m,
                usable_racks,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(id: u32, state: DiskState) -> DiskInfo {
        DiskInfo {
            id: DiskId(id),
            state,
            capacity_bytes: 100,
            used_bytes: 0,
        }
    }

    fn node(id: u64, rack: &str, state: NodeState, disks: Vec<DiskInfo>) -> NodeInfo {
        NodeInfo {
            id: NodeId(id),
            rack: RackId(rack.to_owned()),
            addr: format!("10.0.0.{id}:7000"),
            state,
            disks,
        }
    }

    /// `racks` racks named r0.., each with `per_rack` Up nodes of two healthy disks.
    /// Node ids are `rack * 10 + i`.
    fn grid(racks: u64, per_rack: u64) -> ClusterMap {
        let mut map = ClusterMap::new();
        for r in 0..racks {
            for i in 0..per_rack {
                let disks = vec![disk(0, DiskState::Healthy), disk(1, DiskState::Healthy)];
                map.insert_node(node(r * 10 + i, &format!("r{r}"), NodeState::Up, disks));
            }
        }
        map
    }

    fn loc(node: u64, disk: u32) -> FragmentLocation {
        FragmentLocation {
            node: NodeId(node),
            disk: DiskId(disk),
        }
    }

    fn placement(locs: &[(u64, u32)]) -> Placement {
        Placement {
            locations: locs.iter().map(|&(n, d)| loc(n, d)).collect(),
        }
    }

    #[test]
    fn cluster_disk_free_bytes_saturates() {
        let mut d = disk(0, DiskState::Healthy);
        d.used_bytes = 40;
        assert_eq!(d.free_bytes(), 60);
        d.used_bytes = 140;
        assert_eq!(d.free_bytes(), 0);
    }

    #[test]
    fn cluster_map_lookups_and_usable_racks() {
        let mut map = grid(3, 2);
        map.insert_node(node(
            90,
            "r9",
            NodeState::Draining,
            vec![disk(0, DiskState::Healthy)],
        ));
        map.insert_node(node(
            80,
            "r8",
            NodeState::Up,
            vec![disk(0, DiskState::Failed)],
        ));
        let racks: Vec<&str> = map.racks().iter().map(|r| r.0.as_str()).collect();
        assert_eq!(racks, ["r0", "r1", "r2", "r8", "r9"]);
        let usable: Vec<&str> = map.usable_racks().iter().map(|r| r.0.as_str()).collect();
        assert_eq!(usable, ["r0", "r1", "r2"]);
        assert_eq!(map.rack_of(NodeId(21)), Some(&RackId("r2".into())));
        assert!(map.node(NodeId(5)).is_none());
        assert_eq!(
            map.disk(NodeId(10), DiskId(1)).map(|d| d.id),
            Some(DiskId(1))
        );
        assert!(map.disk(NodeId(10), DiskId(2)).is_none());
    }

    #[test]
    fn cluster_add_and_remove_usage() {
        let mut map = grid(2, 1);
        let p = placement(&[(0, 1), (10, 0), (77, 0), (10, 9)]);
        map.add_usage(&p, 30);
        map.add_usage(&p, 30);
        assert_eq!(map.disk(NodeId(0), DiskId(1)).unwrap().used_bytes, 60);
        assert_eq!(map.disk(NodeId(10), DiskId(0)).unwrap().used_bytes, 60);
        assert_eq!(map.disk(NodeId(0), DiskId(0)).unwrap().used_bytes, 0);
        map.remove_usage(&p, 100);
        assert_eq!(map.disk(NodeId(0), DiskId(1)).unwrap().used_bytes, 0);
        map.disk_mut(NodeId(0), DiskId(1)).unwrap().used_bytes = u64::MAX - 1;
        map.add_usage(&p, 30);
        assert_eq!(map.disk(NodeId(0), DiskId(1)).unwrap().used_bytes, u64::MAX);
    }

    #[test]
    fn cluster_check_accepts_valid_placements() {
        // 4 usable racks < 2+3: up to 3 per rack.
        let map = grid(4, 3);
        let p = placement(&[(0, 0), (1, 1), (2, 0), (10, 0), (20, 1)]);
        assert_eq!(check_placement(&map, &p, 2, 3), Ok(()));
        // 4 usable racks >= 2+2: one per rack.
        let p = placement(&[(0, 0), (10, 1), (20, 0), (30, 0)]);
        assert_eq!(check_placement(&map, &p, 2, 2), Ok(()));
    }

    /// Table of (what, map, placement, k, m, expected message).
    #[test]
    fn cluster_check_reports_each_violation() {
        let map = grid(4, 3);
        let mut down = grid(4, 3);
        for id in [30, 31, 32] {
            down.node_mut(NodeId(id)).unwrap().state = NodeState::Down;
        }
        let cases: Vec<(&str, &ClusterMap, Placement, u8, u8, &str)> = vec![
            (
                "k = 0",
                &map,
                placement(&[(0, 0)]),
                0,
                1,
                "invalid erasure code 0+1: k and m must each be at least 1 and k+m at most 255",
            ),
            (
                "k + m > 255",
                &map,
                placement(&[]),
                200,
                56,
                "invalid erasure code 200+56: k and m must each be at least 1 and k+m at most 255",
            ),
            (
                "too few locations",
                &map,
                placement(&[(0, 0), (10, 0)]),
                2,
                1,
                "a stripe coded 2+1 needs exactly 3 fragment locations, but the placement has 2",
            ),
            (
                "unknown node",
                &map,
                placement(&[(0, 0), (10, 0), (99, 0)]),
                2,
                1,
                "fragment 2 is placed on node 99, which is not in the cluster map",
            ),
            (
                "unknown disk",
                &map,
                placement(&[(0, 0), (10, 7), (20, 0)]),
                2,
                1,
                "fragment 1 is placed on disk 7 of node 10, which has no such disk",
            ),
            (
                "same disk",
                &map,
                placement(&[(0, 0), (10, 0), (0, 0)]),
                2,
                1,
                "fragments 0 and 2 are both on disk 0 of node 0; losing that disk would lose both",
            ),
            (
                "same node",
                &map,
                placement(&[(10, 0), (0, 1), (0, 0)]),
                2,
                1,
                "fragments 1 and 2 are both on node 0; losing that node would lose both",
            ),
            (
                "m + 1 in a rack",
                &map,
                placement(&[(0, 0), (1, 0), (2, 0), (10, 0), (20, 0)]),
                3,
                2,
                "rack r0 holds 3 fragments of a stripe coded 3+2; at most 2 may share a rack, \
                 or losing that rack loses the stripe",
            ),
            (
                "two in a rack with k+m usable racks",
                &map,
                placement(&[(0, 0), (1, 0), (10, 0)]),
                1,
                2,
                "rack r0 holds 2 fragments of a stripe coded 1+2; the cluster has 4 racks with \
                 usable nodes, at least one per fragment (3), so every fragment must be in a \
                 different rack",
            ),
        ];
        for (what, map, p, k, m, want) in cases {
            let got = check_placement(map, &p, k, m).expect_err(what).to_string();
            assert_eq!(got, want, "{what}");
        }
        // Same placement, but rack r3 is down: 3 usable racks < 2+2, two per rack is fine.
        let p = placement(&[(0, 0), (1, 0), (10, 0), (11, 1)]);
        assert!(check_placement(&map, &p, 2, 2).is_err());
        assert_eq!(check_placement(&down, &p, 2, 2), Ok(()));
    }
}
