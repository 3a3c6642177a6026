//! `Suspects`: the gateway-local memory of data nodes that just failed a request. New
//! placements avoid them and reads try them last, for `suspect_for` of env-clock time.
//! Nothing here is shared with other gateways: the cluster map's node states are the
//! cluster-wide truth, this only bridges the time until they catch up.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use common::env::{Clock, Instant};
use common::ids::NodeId;

#[derive(Debug)]
pub(crate) struct Suspects {
    clock: Clock,
    suspect_for: Duration,
    until: Mutex<BTreeMap<NodeId, Instant>>,
}

impl Suspects {
    pub fn new(clock: Clock, suspect_for: Duration) -> Self {
        Self {
            clock,
            suspect_for,
            until: Mutex::new(BTreeMap::new()),
        }
    }

    /// Suspects `node` from now for `suspect_for`.
    pub fn mark(&self, node: NodeId) {
        let until = self.clock.now() + self.suspect_for;
        let mut map = self.until.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(node, until);
    }

    /// The nodes suspected now (expired entries are dropped).
    pub fn current(&self) -> BTreeSet<NodeId> {
        let now = self.clock.now();
        let mut map = self.until.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, until| *until > now);
        map.keys().copied().collect()
    }
}
