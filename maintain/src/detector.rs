//! The failure detector, run by the root group's leader.
//!
//! Every heartbeat a data node sends is a Raft command that bumps its record's
//! `heartbeats` count. The leader watches that count on **its own monotonic clock**:
//! a node is silent for as long as its count has not changed. The data node's `at_ms`
//! (its wall clock) is never compared with the leader's, so clock skew between them
//! cannot make a node look dead or alive.
//!
//! A leader knows nothing about heartbeats that arrived before it was elected, so a new
//! leader (a new term) starts every node's silence at zero: each node gets a full
//! timeout of grace before it can be marked down.
//!
//! Transitions ([`decide`]), each one a `SetNodeState` compare-and-set on the state it
//! saw, with a reason and the time, shown by `shale admin status`:
//! - Up, silent for `down_after` → Down ("no heartbeat for 31 s").
//! - Down, silent for `dead_after` → Dead (its fragments must be rebuilt elsewhere).
//! - Down, a heartbeat seen by this leader within `down_after` → Up.
//! - Draining and Dead are the operator's: never changed automatically. (A Dead node that
//!   heartbeats again stays Dead until an operator says otherwise: its fragments may
//!   already have been rebuilt.)

use std::collections::BTreeMap;
use std::time::Duration;

use common::cluster::NodeState;
use common::env::Instant;
use common::ids::NodeId;

/// How long silence lasts before a node is Down, then Dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub down_after: Duration,
    pub dead_after: Duration,
}

/// What this leader has seen of one node's heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    /// The heartbeat count last seen.
    pub heartbeats: u64,
    /// When (this leader's clock) the count last changed, or when this leader started
    /// watching the node.
    pub since: Instant,
    /// Whether this leader has seen the count change (a heartbeat arrived on its watch).
    pub heard: bool,
}

/// One node as the detector reads it from the root group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeView {
    pub node: NodeId,
    pub state: NodeState,
    pub heartbeats: u64,
}

/// A state change to propose: `from` is the state it was decided on (the
/// compare-and-set's expectation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub node: NodeId,
    pub from: NodeState,
    pub to: NodeState,
    pub reason: String,
}

/// The pure decision for one node in `state` with `watch` at `now`.
pub fn decide(
    node: NodeId,
    state: NodeState,
    watch: &Watch,
    now: Instant,
    t: &Timeouts,
) -> Option<Transition> {
    let silent = now.saturating_duration_since(watch.since);
    let to = |to: NodeState, reason: String| {
        Some(Transition {
            node,
            from: state,
            to,
            reason,
        })
    };
    match state {
        NodeState::Up if silent >= t.down_after => to(
            NodeState::Down,
            format!("no heartbeat for {} s", silent.as_secs()),
        ),
        NodeState::Down if watch.heard && silent < t.down_after => {
            to(NodeState::Up, "heartbeating again".to_owned())
        }
        NodeState::Down if silent >= t.dead_after => to(
            NodeState::Dead,
            format!("no heartbeat for {} s", silent.as_secs()),
        ),
        _ => None,
    }
}

/// The detector's memory while this node leads the root group.
#[derive(Debug, Default)]
pub struct Detector {
    term: Option<u64>,
    watches: BTreeMap<NodeId, Watch>,
}

impl Detector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything (this node stopped leading the root group).
    pub fn reset(&mut self) {
        self.term = None;
        self.watches.clear();
    }

    /// The watch kept for `node`, if any.
    pub fn watch(&self, node: NodeId) -> Option<&Watch> {
        self.watches.get(&node)
    }

    /// Updates the watches from the nodes as the root group holds them now (this node
    /// leading in `term`) and returns the transitions to propose, in node order. A term
    /// other than the last one starts over: every node gets a full timeout of grace.
    pub fn observe(
        &mut self,
        term: u64,
        now: Instant,
        nodes: &[NodeView],
        t: &Timeouts,
    ) -> Vec<Transition> {
        if self.term != Some(term) {
            self.watches.clear();
            self.term = Some(term);
        }
        let mut seen = BTreeMap::new();
        for n in nodes {
            let w = match self.watches.get(&n.node) {
                None => Watch {
                    heartbeats: n.heartbeats,
                    since: now,
                    heard: false,
                },
                Some(w) if w.heartbeats != n.heartbeats => Watch {
                    heartbeats: n.heartbeats,
                    since: now,
                    heard: true,
                },
                Some(w) => *w,
            };
            seen.insert(n.node, w);
        }
        self.watches = seen;
        nodes
            .iter()
            .filter_map(|n| decide(n.node, n.state, &self.watches[&n.node], now, t))
            .collect()
    }
}
