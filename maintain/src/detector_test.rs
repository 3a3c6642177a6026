use std::time::Duration;

use common::cluster::NodeState;
use common::env::{Clock, Instant};
use common::ids::NodeId;

use crate::detector::{decide, Detector, NodeView, Timeouts, Transition, Watch};

const T: Timeouts = Timeouts {
    down_after: Duration::from_secs(30),
    dead_after: Duration::from_secs(600),
};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn start() -> Instant {
    Clock::new().now()
}

fn view(node: u64, state: NodeState, heartbeats: u64) -> NodeView {
    NodeView {
        node: NodeId(node),
        state,
        heartbeats,
    }
}

fn to(t: &Option<Transition>) -> Option<NodeState> {
    t.as_ref().map(|t| t.to)
}

#[test]
fn up_node_goes_down_after_the_timeout_with_a_reason() {
    let t0 = start();
    let w = Watch {
        heartbeats: 3,
        since: t0,
        heard: true,
    };
    assert_eq!(
        decide(NodeId(1), NodeState::Up, &w, t0 + secs(29), &T),
        None
    );
    let d = decide(NodeId(1), NodeState::Up, &w, t0 + secs(31), &T).unwrap();
    assert_eq!((d.from, d.to), (NodeState::Up, NodeState::Down));
    assert_eq!(d.reason, "no heartbeat for 31 s");
    // Still silent much later: one step at a time (Down first, then Dead).
    assert_eq!(
        to(&decide(NodeId(1), NodeState::Up, &w, t0 + secs(900), &T)),
        Some(NodeState::Down)
    );
}

#[test]
fn down_node_becomes_dead_after_the_dead_timeout() {
    let t0 = start();
    let w = Watch {
        heartbeats: 3,
        since: t0,
        heard: false,
    };
    assert_eq!(
        decide(NodeId(1), NodeState::Down, &w, t0 + secs(599), &T),
        None
    );
    let d = decide(NodeId(1), NodeState::Down, &w, t0 + secs(600), &T).unwrap();
    assert_eq!((d.from, d.to), (NodeState::Down, NodeState::Dead));
    assert_eq!(d.reason, "no heartbeat for 600 s");
}

#[test]
fn down_node_that_heartbeats_again_comes_up_but_only_if_heard() {
    let t0 = start();
    let heard = Watch {
        heartbeats: 4,
        since: t0,
        heard: true,
    };
    let d = decide(NodeId(1), NodeState::Down, &heard, t0 + secs(1), &T).unwrap();
    assert_eq!(
        (d.to, d.reason.as_str()),
        (NodeState::Up, "heartbeating again")
    );
    // Grace after an election is not a heartbeat: a Down node stays Down.
    let grace = Watch {
        heard: false,
        ..heard
    };
    assert_eq!(
        decide(NodeId(1), NodeState::Down, &grace, t0 + secs(1), &T),
        None
    );
}

#[test]
fn draining_and_dead_are_never_changed() {
    let t0 = start();
    for heard in [false, true] {
        let w = Watch {
            heartbeats: 1,
            since: t0,
            heard,
        };
        for now in [t0, t0 + secs(31), t0 + secs(10_000)] {
            assert_eq!(decide(NodeId(1), NodeState::Draining, &w, now, &T), None);
            assert_eq!(decide(NodeId(1), NodeState::Dead, &w, now, &T), None);
        }
    }
}

#[test]
fn observe_tracks_the_count_on_the_leaders_clock() {
    let t0 = start();
    let mut d = Detector::new();
    let nodes = |hb1: u64, hb2: u64| [view(1, NodeState::Up, hb1), view(2, NodeState::Up, hb2)];
    assert!(d.observe(7, t0, &nodes(10, 20), &T).is_empty());
    // Node 1 keeps heartbeating, node 2 falls silent.
    for s in (5..=25).step_by(5) {
        assert!(d
            .observe(7, t0 + secs(s), &nodes(10 + s, 20), &T)
            .is_empty());
    }
    let out = d.observe(7, t0 + secs(30), &nodes(40, 20), &T);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].node, out[0].to), (NodeId(2), NodeState::Down));
    assert_eq!(d.watch(NodeId(1)).unwrap().since, t0 + secs(30));
    assert!(d.watch(NodeId(1)).unwrap().heard);
}

#[test]
fn a_new_leader_gives_every_node_a_full_timeout_of_grace() {
    let t0 = start();
    let mut d = Detector::new();
    let nodes = [view(1, NodeState::Up, 5), view(2, NodeState::Down, 9)];
    assert!(d.observe(3, t0, &nodes, &T).is_empty());
    // Term 3 would have marked node 1 down at t0 + 30 s; a new term at t0 + 29 s
    // starts over.
    assert!(d.observe(4, t0 + secs(29), &nodes, &T).is_empty());
    assert!(d.observe(4, t0 + secs(58), &nodes, &T).is_empty());
    let out = d.observe(4, t0 + secs(59), &nodes, &T);
    assert_eq!(
        out.iter().map(|t| (t.node, t.to)).collect::<Vec<_>>(),
        [(NodeId(1), NodeState::Down)]
    );
    // Node 2 (already down) is not brought up by the grace, only by a heartbeat.
    let nodes = [view(1, NodeState::Down, 5), view(2, NodeState::Down, 10)];
    let out = d.observe(4, t0 + secs(60), &nodes, &T);
    assert_eq!(
        out.iter().map(|t| (t.node, t.to)).collect::<Vec<_>>(),
        [(NodeId(2), NodeState::Up)]
    );
}

#[test]
fn reset_forgets_and_removed_nodes_are_dropped() {
    let t0 = start();
    let mut d = Detector::new();
    d.observe(
        1,
        t0,
        &[view(1, NodeState::Up, 1), view(2, NodeState::Up, 1)],
        &T,
    );
    d.observe(1, t0 + secs(1), &[view(1, NodeState::Up, 1)], &T);
    assert!(d.watch(NodeId(2)).is_none());
    d.reset();
    assert!(d.watch(NodeId(1)).is_none());
    // After a reset, the same term starts over too.
    assert!(d
        .observe(1, t0 + secs(40), &[view(1, NodeState::Up, 1)], &T)
        .is_empty());
}
