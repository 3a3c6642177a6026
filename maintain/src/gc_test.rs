use std::time::Duration;

use common::cluster::{ClusterMap, DiskInfo, DiskState, FragmentLocation, NodeInfo, NodeState};
use common::ids::{DiskId, NodeId, RackId};

use crate::gc::{next_backoff, plan_fragment, FragmentPlan, Watermark};

fn map() -> ClusterMap {
    let mut map = ClusterMap::new();
    for (id, state) in [
        (1, NodeState::Up),
        (2, NodeState::Down),
        (3, NodeState::Draining),
        (4, NodeState::Dead),
    ] {
        map.insert_node(NodeInfo {
            id: NodeId(id),
            rack: RackId("r".into()),
            addr: format!("10.0.0.{id}:7100"),
            state,
            disks: vec![
                DiskInfo {
                    id: DiskId(0),
                    state: DiskState::Healthy,
                    capacity_bytes: 100,
                    used_bytes: 0,
                },
                DiskInfo {
                    id: DiskId(1),
                    state: DiskState::Failed,
                    capacity_bytes: 100,
                    used_bytes: 0,
                },
            ],
        });
    }
    map
}

fn loc(node: u64, disk: u32) -> FragmentLocation {
    FragmentLocation {
        node: NodeId(node),
        disk: DiskId(disk),
    }
}

#[test]
fn plan_follows_node_and_disk_state() {
    let m = map();
    let delete = |n: u64| FragmentPlan::Delete {
        addr: format!("10.0.0.{n}:7100"),
    };
    assert_eq!(plan_fragment(&m, loc(1, 0), false), delete(1));
    assert_eq!(plan_fragment(&m, loc(3, 0), false), delete(3));
    // Down: retried later; Dead: nothing left to delete.
    assert_eq!(plan_fragment(&m, loc(2, 0), false), FragmentPlan::Wait);
    assert_eq!(plan_fragment(&m, loc(4, 0), false), FragmentPlan::Abandon);
    // A failed disk's contents count as gone.
    assert_eq!(plan_fragment(&m, loc(1, 1), false), FragmentPlan::Abandon);
    // A location backing off waits; a node the map does not know (yet) waits.
    assert_eq!(plan_fragment(&m, loc(1, 0), true), FragmentPlan::Wait);
    assert_eq!(plan_fragment(&m, loc(9, 0), false), FragmentPlan::Wait);
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let s = Duration::from_secs;
    assert_eq!(next_backoff(None, s(2), s(60)), s(2));
    assert_eq!(next_backoff(Some(s(2)), s(2), s(60)), s(4));
    assert_eq!(next_backoff(Some(s(40)), s(2), s(60)), s(60));
    assert_eq!(next_backoff(Some(s(60)), s(2), s(60)), s(60));
    assert_eq!(next_backoff(None, s(90), s(60)), s(60));
}

#[test]
fn watermark_releases_entries_only_after_the_delay() {
    let t0 = common::env::Clock::new().now();
    let s = Duration::from_secs;
    let d = s(60);
    let mut w = Watermark::default();
    // A fresh leader: nothing is old enough, whatever the index.
    assert_eq!(w.sample(t0, 100, d), None);
    assert_eq!(w.sample(t0 + s(30), 150, d), None);
    assert_eq!(w.sample(t0 + s(59), 150, d), None);
    // 60 s after the first sample, everything applied by then (index 100) may go.
    assert_eq!(w.sample(t0 + s(60), 160, d), Some(100));
    assert_eq!(w.sample(t0 + s(89), 170, d), Some(100));
    assert_eq!(w.sample(t0 + s(90), 170, d), Some(150));
    assert_eq!(w.sample(t0 + s(200), 170, d), Some(170));
    // No delay: everything applied so far.
    let mut w = Watermark::default();
    assert_eq!(w.sample(t0, 7, Duration::ZERO), Some(7));
}
