//! `meta::NodeInfo` / `DiskInfo` / `NodeState` / `DiskState` ⇄ the cluster-map types in
//! `common::cluster`.

use common::cluster::{DiskInfo, DiskState, NodeInfo, NodeState};
use common::ids::{DiskId, NodeId, RackId};

use super::ConvertError;
use crate::meta as pb;

/// A node state from its wire number (`UNSPECIFIED` and unknown numbers are errors).
pub fn node_state_from_wire(field: &'static str, v: i32) -> Result<NodeState, ConvertError> {
    match pb::NodeState::try_from(v) {
        Ok(pb::NodeState::Up) => Ok(NodeState::Up),
        Ok(pb::NodeState::Down) => Ok(NodeState::Down),
        Ok(pb::NodeState::Draining) => Ok(NodeState::Draining),
        Ok(pb::NodeState::Dead) => Ok(NodeState::Dead),
        Ok(pb::NodeState::Unspecified) | Err(_) => {
            Err(ConvertError::new(field, format!("invalid node state {v}")))
        }
    }
}

pub fn node_state_to_wire(s: NodeState) -> i32 {
    let wire = match s {
        NodeState::Up => pb::NodeState::Up,
        NodeState::Down => pb::NodeState::Down,
        NodeState::Draining => pb::NodeState::Draining,
        NodeState::Dead => pb::NodeState::Dead,
    };
    wire as i32
}

/// A disk state from its wire number (`UNSPECIFIED` and unknown numbers are errors).
pub fn disk_state_from_wire(field: &'static str, v: i32) -> Result<DiskState, ConvertError> {
    match pb::DiskState::try_from(v) {
        Ok(pb::DiskState::Healthy) => Ok(DiskState::Healthy),
        Ok(pb::DiskState::Failed) => Ok(DiskState::Failed),
        Ok(pb::DiskState::Unspecified) | Err(_) => {
            Err(ConvertError::new(field, format!("invalid disk state {v}")))
        }
    }
}

pub fn disk_state_to_wire(s: DiskState) -> i32 {
    let wire = match s {
        DiskState::Healthy => pb::DiskState::Healthy,
        DiskState::Failed => pb::DiskState::Failed,
    };
    wire as i32
}

impl TryFrom<&pb::DiskInfo> for DiskInfo {
    type Error = ConvertError;

    fn try_from(m: &pb::DiskInfo) -> Result<Self, ConvertError> {
        let state = match pb::DiskState::try_from(m.state) {
            Ok(pb::DiskState::Healthy) => DiskState::Healthy,
            Ok(pb::DiskState::Failed) => DiskState::Failed,
            Ok(pb::DiskState::Unspecified) | Err(_) => {
                return Err(ConvertError::new(
                    "disk_info.state",
                    format!("invalid disk state {}", m.state),
                ))
            }
        };
        Ok(DiskInfo {
            id: DiskId(m.disk_id),
            state,
            capacity_bytes: m.capacity_bytes,
            used_bytes: m.used_bytes,
        })
    }
}

impl From<&DiskInfo> for pb::DiskInfo {
    fn from(d: &DiskInfo) -> Self {
        pb::DiskInfo {
            disk_id: d.id.0,
            state: match d.state {
                DiskState::Healthy => pb::DiskState::Healthy,
                DiskState::Failed => pb::DiskState::Failed,
            } as i32,
            capacity_bytes: d.capacity_bytes,
            used_bytes: d.used_bytes,
        }
    }
}

impl TryFrom<&pb::NodeInfo> for NodeInfo {
    type Error = ConvertError;

    fn try_from(m: &pb::NodeInfo) -> Result<Self, ConvertError> {
        if m.rack.is_empty() {
            return Err(ConvertError::new("node_info.rack", "missing"));
        }
        Ok(NodeInfo {
            id: NodeId(m.node_id),
            rack: RackId(m.rack.clone()),
            addr: m.addr.clone(),
            state: node_state_from_wire("node_info.state", m.state)?,
            disks: m
                .disks
                .iter()
                .map(DiskInfo::try_from)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl From<&NodeInfo> for pb::NodeInfo {
    fn from(n: &NodeInfo) -> Self {
        pb::NodeInfo {
            node_id: n.id.0,
            rack: n.rack.0.clone(),
            addr: n.addr.clone(),
            state: node_state_to_wire(n.state),
            disks: n.disks.iter().map(pb::DiskInfo::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeInfo {
        NodeInfo {
            id: NodeId(4),
            rack: RackId("r1".into()),
            addr: "10.0.0.4:7000".into(),
            state: NodeState::Draining,
            disks: vec![DiskInfo {
                id: DiskId(0),
                state: DiskState::Failed,
                capacity_bytes: 100,
                used_bytes: 7,
            }],
        }
    }

    #[test]
    fn node_info_round_trips_and_rejects_unspecified_states() {
        let n = node();
        let wire = pb::NodeInfo::from(&n);
        assert_eq!(NodeInfo::try_from(&wire), Ok(n));
        let mut bad = wire.clone();
        bad.state = 0;
        assert_eq!(
            NodeInfo::try_from(&bad).unwrap_err().field,
            "node_info.state"
        );
        let mut bad = wire.clone();
        bad.disks[0].state = 77;
        assert_eq!(
            NodeInfo::try_from(&bad).unwrap_err().field,
            "disk_info.state"
        );
        let mut bad = wire;
        bad.rack.clear();
        assert_eq!(
            NodeInfo::try_from(&bad).unwrap_err().field,
            "node_info.rack"
        );
    }
}
