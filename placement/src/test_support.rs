//! Cluster builders, a random-topology generator and an independent feasibility oracle,
//! shared by the planner tests.

use std::collections::{BTreeMap, BTreeSet};

use common::cluster::{ClusterMap, DiskInfo, DiskState, NodeInfo, NodeState, Placement};
use common::ids::{DiskId, NodeId, RackId};
use proptest::prelude::*;

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

pub fn rack(i: usize) -> RackId {
    RackId(format!("r{i:02}"))
}

pub fn disk(id: u32, capacity_bytes: u64, used_bytes: u64, state: DiskState) -> DiskInfo {
    DiskInfo {
        id: DiskId(id),
        state,
        capacity_bytes,
        used_bytes,
    }
}

pub fn node(id: u64, rack: RackId, state: NodeState, disks: Vec<DiskInfo>) -> NodeInfo {
    NodeInfo {
        id: NodeId(id),
        rack,
        addr: format!("node-{id}:7001"),
        state,
        disks,
    }
}

/// `racks` racks of `nodes_per_rack` Up nodes with `disks_per_node` empty healthy disks
/// of `capacity` bytes. Node ids are `100 * rack + i`.
pub fn homogeneous(
    racks: usize,
    nodes_per_rack: usize,
    disks_per_node: u32,
    capacity: u64,
) -> ClusterMap {
    let mut map = ClusterMap::new();
    for r in 0..racks {
        for i in 0..nodes_per_rack {
            let disks = (0..disks_per_node).map(|d| disk(d, capacity, 0, DiskState::Healthy));
            map.insert_node(node(
                (100 * r + i) as u64,
                rack(r),
                NodeState::Up,
                disks.collect(),
            ));
        }
    }
    map
}

/// Generated description of one disk: (state, capacity, used as a percentage of it).
pub type DiskSpec = (DiskState, u64, u64);
/// (node state, disks).
pub type NodeSpec = (NodeState, Vec<DiskSpec>);
/// Racks of nodes.
pub type Topology = Vec<Vec<NodeSpec>>;

pub fn node_state() -> impl Strategy<Value = NodeState> {
    prop_oneof![
        7 => Just(NodeState::Up),
        1 => Just(NodeState::Down),
        1 => Just(NodeState::Draining),
        1 => Just(NodeState::Dead),
    ]
}

pub fn disk_state() -> impl Strategy<Value = DiskState> {
    prop_oneof![6 => Just(DiskState::Healthy), 1 => Just(DiskState::Failed)]
}

/// Capacities 0..=1000 bytes, usage 0..=110 % of capacity (some disks over-full).
pub fn topology(
    racks: std::ops::RangeInclusive<usize>,
    nodes: std::ops::RangeInclusive<usize>,
    disks: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Topology> {
    let disk = (disk_state(), 0u64..=1000, 0u64..=110);
    let node = (node_state(), prop::collection::vec(disk, disks));
    prop::collection::vec(prop::collection::vec(node, nodes), racks)
}

/// Builds the map: racks `r00..`, node ids `1000 * rack + i + 1`, disk ids `0..`.
pub fn build(topology: &Topology) -> ClusterMap {
    let mut map = ClusterMap::new();
    for (r, nodes) in topology.iter().enumerate() {
        for (i, (state, disks)) in nodes.iter().enumerate() {
            let disks = disks
                .iter()
                .enumerate()
                .map(|(d, &(st, cap, pct))| disk(d as u32, cap, cap * pct / 100, st))
                .collect();
            map.insert_node(node((1000 * r + i + 1) as u64, rack(r), *state, disks));
        }
    }
    map
}

/// Independent of the planner: what the rule allows for a stripe of `n = k+m`
/// fragments of `fragment_bytes` in `map`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feasibility {
    /// Racks with an Up node that has a healthy disk.
    pub usable_racks: usize,
    /// Per rack (all racks): Up nodes with a healthy disk with room.
    pub eligible_nodes: BTreeMap<RackId, usize>,
    /// 1 when usable racks >= n, else m.
    pub cap: usize,
    /// sum over racks of min(cap, eligible nodes).
    pub max_placeable: usize,
}

impl Feasibility {
    pub fn of(map: &ClusterMap, k: u8, m: u8, fragment_bytes: u64) -> Self {
        let n = usize::from(k) + usize::from(m);
        let mut usable = BTreeSet::new();
        let mut eligible_nodes: BTreeMap<RackId, usize> = BTreeMap::new();
        for node in map.nodes.values() {
            let e = eligible_nodes.entry(node.rack.clone()).or_default();
            if node.state != NodeState::Up {
                continue;
            }
            if node.disks.iter().any(|d| d.state == DiskState::Healthy) {
                usable.insert(node.rack.clone());
            }
            if node.disks.iter().any(|d| {
                d.state == DiskState::Healthy
                    && d.capacity_bytes.saturating_sub(d.used_bytes) >= fragment_bytes
            }) {
                *e += 1;
            }
        }
        let cap = if usable.len() >= n { 1 } else { usize::from(m) };
        let max_placeable = eligible_nodes.values().map(|&e| e.min(cap)).sum();
        Feasibility {
            usable_racks: usable.len(),
            eligible_nodes,
            cap,
            max_placeable,
        }
    }

    pub fn feasible(&self, k: u8, m: u8) -> bool {
        self.max_placeable >= usize::from(k) + usize::from(m)
    }

    /// The water level: the lowest per-rack maximum any valid placement can have.
    pub fn level(&self, n: usize) -> Option<usize> {
        (1..=self.cap).find(|&l| {
            self.eligible_nodes
                .values()
                .map(|&e| e.min(l))
                .sum::<usize>()
                >= n
        })
    }
}

/// Fragments per rack of a placement (racks looked up in `map`).
pub fn per_rack(map: &ClusterMap, p: &Placement) -> BTreeMap<RackId, usize> {
    let mut out = BTreeMap::new();
    for loc in &p.locations {
        *out.entry(
            map.node(loc.node)
                .expect("placed on a known node")
                .rack
                .clone(),
        )
        .or_default() += 1;
    }
    out
}

/// (used, capacity) bytes of every disk, in map order.
pub fn disk_usage(map: &ClusterMap) -> Vec<(u64, u64)> {
    map.nodes
        .values()
        .flat_map(|n| n.disks.iter().map(|d| (d.used_bytes, d.capacity_bytes)))
        .collect()
}
