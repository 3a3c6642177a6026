//! The repair loop, run by every object group's leader: restores full redundancy
//! (`k + m` fragments placed by the rack rule) of every stripe the group references.
//!
//! A pass over one group:
//! 1. **Find work.** Walk the group's stripe index page by page (`ListStripes` on the
//!    local replica after a read barrier) and classify every fragment against the
//!    cluster map and the scrubbers' damaged lists ([`crate::repair_plan`]: healthy,
//!    lost, moving, unavailable, damaged). Every `repair_inventory_secs` the pass also
//!    lists the Up data nodes' fragments first ([`crate::inventory`]): a fragment a
//!    placement puts on a listed disk that does not hold it is *missing* (a replaced
//!    disk, a file deleted by hand, a write lost before its fsync); confirmed with
//!    `StatFragment` (the listing may predate the commit), it counts as damaged. Stripes needing a rebuild go into a bounded
//!    priority queue ([`RepairQueue`], `repair_queue` entries): fewest healthy fragments
//!    first. Unrecoverable stripes (fewer than `k` fragments survive) are logged at
//!    error level and counted, never written to. The pass's backlog (stripes needing
//!    repair, by healthy fragments) is published when the walk ends.
//! 2. **Rebuild.** For each queued stripe, most urgent first, at most
//!    `repair_concurrency` at once and within `repair_bytes_per_sec`
//!    ([`RepairBudget`]): choose targets with the placement planner
//!    ([`plan_targets`]: rack rule kept, never on a node holding a fragment of the
//!    stripe, on a down / dead / draining node or failed disk, nor on a node whose old
//!    copy of the stripe is still in the GC queue). If the rule cannot be met the stripe
//!    is *blocked by placement* (logged, counted; the rule is never weakened). Then
//!    `DataPlane::rebuild_stripe` reads `k` sources and writes the rebuilt fragments
//!    (all or nothing).
//! 3. **Commit** with `ReplacePlacement { expected: the placement read, new }` — a
//!    compare-and-set through Raft, checked against the rule right before. If it is
//!    rejected (a concurrent overwrite, delete or repair won) the fragments just
//!    written are deleted (best effort) and the stripe is left to the next pass. If the
//!    outcome is unknown (timeout, lost leadership) nothing is deleted: the commit may
//!    have happened; unreferenced copies are the orphan sweep's. The apply queues the
//!    moved fragments' old copies for the GC.
//!
//! Crash safety: all progress is in Raft. A new or restarted leader walks again; a
//! committed repair is never redone (the stripe reads healthy).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::{ClusterMap, FragmentLocation, NodeState};
use common::env::{Clock, Env, Instant};
use common::ids::{FragmentId, GroupId, NodeId, StripeId};
use futures::future::BoxFuture;
use futures::StreamExt;
use gateway::data::{DataConfig, DataError, DataPlane, RebuildError, Topology};
use meta_raft::maintain_config::MaintainConfig;
use meta_raft::state_machine::{self as sm, Command, ReplacePlacement, StripeEntry, StripeRecord};

use crate::datanodes::DataNodes;
use crate::datanodes::FragmentCallError;
use crate::error::MaintainError;
use crate::inventory::{self, Inventory};
use crate::local::{LocalGroups, ROOT_GROUP};
use crate::repair_budget::RepairBudget;
use crate::repair_damaged::{list_damaged, Damaged};
use crate::repair_plan::{
    after_commit, assess, classify_fragment, fragment_bytes, mark_misplaced, new_placement,
    plan_targets, AfterCommit, Candidate, FragmentHealth, RepairQueue, TargetError, Verdict,
};

/// Stripes per `ListStripes` page.
const PAGE: u32 = 500;

/// A node a rebuilt fragment could not be written to receives no targets for this
/// long (the planner is deterministic: it would pick the same node again).
const AVOID_AFTER_WRITE_FAILURE: Duration = Duration::from_secs(60);

/// Unrecoverable stripes remembered so that each is logged once per leadership, not
/// every pass.
const REPORTED_MAX: usize = 10_000;

/// Repair's counters. "Pass" figures describe the last finished walk of each led group
/// (summed over groups); totals count since the loop started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairStats {
    /// Walks finished.
    pub passes: u64,
    /// Stripes seen by the last walks.
    pub stripes_scanned: u64,
    /// Stripes needing a rebuild, by how many healthy fragments they have (last walks).
    pub backlog: BTreeMap<usize, u64>,
    /// Stripes waiting for Down nodes (nothing lost yet; last walks).
    pub waiting: u64,
    /// Stripes with fewer than `k` readable fragments that may come back (last walks).
    pub unreadable: u64,
    /// Stripes with fewer than `k` surviving fragments: lost (last walks).
    pub unrecoverable: u64,
    /// Stripes whose repair the placement rule blocks (last walks).
    pub blocked_by_placement: u64,
    /// Stripes of the backlog repaired since the walks that counted it.
    pub pass_repaired: u64,
    /// Totals since start.
    pub repaired_stripes: u64,
    pub repaired_fragments: u64,
    /// Bytes of rebuilt fragments written.
    pub repaired_bytes: u64,
    /// Rebuilds or commits that failed (retried on a later pass).
    pub failures: u64,
    /// Commits that lost their compare-and-set (the stripe changed meanwhile).
    pub cas_lost: u64,
    /// Damaged fragments the scrubbers reported (last walk).
    pub damaged_reported: u64,
    /// Rebuilt bytes per second over the current or last pass.
    pub rate_bytes_per_sec: u64,
    /// Inventories taken (every `repair_inventory_secs`).
    pub inventories: u64,
    /// Fragments the inventory found missing on Up nodes and a stat confirmed (total).
    pub missing_found: u64,
}

impl RepairStats {
    /// Stripes needing a rebuild in the last walks.
    pub fn backlog_total(&self) -> u64 {
        self.backlog.values().sum()
    }
}

/// The data plane's cluster map: this node's replica of the root group.
struct LocalTopology(LocalGroups);

impl Topology for LocalTopology {
    fn cluster_map(&self) -> BoxFuture<'_, Result<Arc<ClusterMap>, DataError>> {
        Box::pin(async move {
            self.0
                .read_local(ROOT_GROUP, sm::cluster_map)
                .await
                .map(Arc::new)
                .map_err(|e| DataError::Topology(e.to_string()))
        })
    }
}

/// What one stripe's repair came to.
#[derive(Debug)]
enum Outcome {
    Repaired {
        fragments: u64,
        bytes: u64,
    },
    Blocked(String),
    CasLost,
    Failed(String),
    /// Leadership was lost: stop the pass.
    NotLeader,
}

/// The repair loop of every object group this node leads.
pub struct RepairWorker {
    local: LocalGroups,
    nodes: Arc<DataNodes>,
    plane: DataPlane,
    cfg: MaintainConfig,
    clock: Clock,
    budget: Arc<Mutex<RepairBudget>>,
    stats: Arc<Mutex<RepairStats>>,
    /// Per group: the last walk's figures (summed into the stats).
    walks: BTreeMap<GroupId, Walk>,
    /// Nodes whose rebuilt-fragment write failed, avoided until the instant.
    failed_targets: Mutex<BTreeMap<NodeId, Instant>>,
    /// Unrecoverable stripes already logged.
    reported: BTreeSet<StripeId>,
    /// When the last inventory was taken.
    inventory_at: Option<Instant>,
}

/// One group's last walk.
#[derive(Clone, Debug, Default)]
struct Walk {
    scanned: u64,
    backlog: BTreeMap<usize, u64>,
    waiting: u64,
    unreadable: u64,
    unrecoverable: u64,
    blocked: u64,
    repaired: u64,
}

/// A queued stripe: what the walk read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Work {
    entry: StripeEntry,
    rebuild: BTreeSet<usize>,
}

impl RepairWorker {
    pub fn new(env: &Env, local: LocalGroups, nodes: Arc<DataNodes>, cfg: MaintainConfig) -> Self {
        let data = DataConfig {
            connect_timeout: cfg.fragment_timeout(),
            ..DataConfig::default()
        };
        let plane = DataPlane::new(env.clone(), data, Arc::new(LocalTopology(local.clone())));
        Self {
            budget: Arc::new(Mutex::new(RepairBudget::new(cfg.repair_bytes_per_sec))),
            local,
            nodes,
            plane,
            cfg,
            clock: Clock::new(),
            stats: Arc::new(Mutex::new(RepairStats::default())),
            walks: BTreeMap::new(),
            failed_targets: Mutex::new(BTreeMap::new()),
            reported: BTreeSet::new(),
            inventory_at: None,
        }
    }

    /// The counters, shared: they keep counting after this call.
    pub fn stats_handle(&self) -> Arc<Mutex<RepairStats>> {
        Arc::clone(&self.stats)
    }

    fn count(&self, f: impl FnOnce(&mut RepairStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Publishes the walks' figures (summed over the groups still led).
    fn publish(&self) {
        let mut s = RepairStats {
            backlog: BTreeMap::new(),
            ..RepairStats::default()
        };
        for w in self.walks.values() {
            s.stripes_scanned += w.scanned;
            for (h, n) in &w.backlog {
                *s.backlog.entry(*h).or_default() += n;
            }
            s.waiting += w.waiting;
            s.unreadable += w.unreadable;
            s.unrecoverable += w.unrecoverable;
            s.blocked_by_placement += w.blocked;
            s.pass_repaired += w.repaired;
        }
        self.count(|t| {
            t.stripes_scanned = s.stripes_scanned;
            t.backlog = s.backlog;
            t.waiting = s.waiting;
            t.unreadable = s.unreadable;
            t.unrecoverable = s.unrecoverable;
            t.blocked_by_placement = s.blocked_by_placement;
            t.pass_repaired = s.pass_repaired;
        });
    }

    /// One pass over every object group this node leads. Returns whether a stripe was
    /// repaired (more work is likely: the caller goes again at once).
    pub async fn tick(&mut self) -> bool {
        let led: Vec<(GroupId, u64)> = self
            .local
            .object_groups()
            .into_iter()
            .filter_map(|g| self.local.leader_term(g).map(|t| (g, t)))
            .collect();
        self.walks.retain(|g, _| led.iter().any(|(l, _)| l == g));
        if led.is_empty() {
            self.reported.clear();
            self.publish();
            return false;
        }
        let map = match self.local.read_local(ROOT_GROUP, sm::cluster_map).await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "repair: no cluster map; retrying later");
                return false;
            }
        };
        let (damaged, silent) = list_damaged(
            &map,
            self.cfg.fragment_timeout(),
            self.cfg.gc_concurrency as usize,
        )
        .await;
        if silent > 0 {
            tracing::debug!(
                nodes = silent,
                "repair: data nodes did not list damaged fragments"
            );
        }
        self.count(|s| s.damaged_reported = damaged.len() as u64);
        let inventory = self.inventory_if_due(&map).await;
        let mut progress = false;
        for (group, term) in led {
            match self
                .pass(group, term, &map, &damaged, inventory.as_ref())
                .await
            {
                Ok(p) => progress |= p,
                Err(MaintainError::NotLeader { .. }) => {
                    self.walks.remove(&group);
                }
                Err(e) => {
                    tracing::debug!(%group, error = %e, "repair pass failed; retrying later")
                }
            }
        }
        self.publish();
        progress
    }

    /// The Up data nodes' inventory, when `repair_inventory_secs` have passed since the
    /// last one (used by the pass that took it only, then dropped: an older listing
    /// would make every newer fragment a suspect to stat).
    async fn inventory_if_due(&mut self, map: &ClusterMap) -> Option<Inventory> {
        let every = self.cfg.repair_inventory()?;
        let now = self.clock.now();
        if self
            .inventory_at
            .is_some_and(|at| now.saturating_duration_since(at) < every)
        {
            return None;
        }
        self.inventory_at = Some(now);
        let inv = inventory::take(
            &self.nodes,
            map,
            &[NodeState::Up],
            self.cfg.repair_concurrency as usize,
        )
        .await;
        self.count(|s| s.inventories += 1);
        tracing::debug!(
            disks = inv.disks(),
            unlisted = inv.failed,
            fragments = inv.len(),
            "repair: inventory taken"
        );
        Some(inv)
    }

    /// Whether the fragment `id` a placement puts on `loc` is missing there: absent from
    /// the inventory, and a stat (now) confirms it. A failed stat is not a confirmation.
    async fn confirmed_missing(
        &self,
        map: &ClusterMap,
        inventory: Option<&Inventory>,
        loc: FragmentLocation,
        id: FragmentId,
    ) -> bool {
        if !inventory.is_some_and(|inv| inv.missing(loc, id)) {
            return false;
        }
        let Some(node) = map.node(loc.node) else {
            return false;
        };
        match self.nodes.stat(loc.node, &node.addr, loc.disk, id).await {
            Err(FragmentCallError::NotFound) => true,
            Ok(_) => false,
            Err(e) => {
                tracing::debug!(%loc, fragment = ?id, error = %e,
                    "repair: could not stat a fragment missing from the inventory");
                false
            }
        }
    }

    /// Walks `group`, then repairs what the walk queued.
    async fn pass(
        &mut self,
        group: GroupId,
        term: u64,
        map: &ClusterMap,
        damaged: &BTreeSet<Damaged>,
        inventory: Option<&Inventory>,
    ) -> Result<bool, MaintainError> {
        let (walk, queue) = self.walk(group, map, damaged, inventory).await?;
        self.count(|s| s.passes += 1);
        let queued = queue.into_sorted();
        self.walks.insert(group, walk);
        self.publish();
        if queued.is_empty() {
            return Ok(false);
        }
        tracing::info!(
            %group, stripes = queued.len(),
            most_urgent_healthy = queued.first().map_or(0, |c| c.healthy),
            "repair: rebuilding stripes"
        );
        let started = self.clock.now();
        let concurrency = self.cfg.repair_concurrency as usize;
        let this = &*self;
        let mut outcomes = futures::stream::iter(queued.into_iter().map(|c| async move {
            if this.local.leader_term(group) != Some(term) {
                return (c.stripe, Outcome::NotLeader);
            }
            let o = this.repair_one(group, map, c.item).await;
            (c.stripe, o)
        }))
        .buffer_unordered(concurrency);
        let mut repaired = 0u64;
        let mut blocked = 0u64;
        let mut pass_bytes = 0u64;
        let mut lost_leadership = false;
        while let Some((stripe, outcome)) = outcomes.next().await {
            match outcome {
                Outcome::Repaired { fragments, bytes } => {
                    repaired += 1;
                    pass_bytes += bytes;
                    let secs = self
                        .clock
                        .now()
                        .saturating_duration_since(started)
                        .as_secs_f64()
                        .max(0.001);
                    self.count(|s| {
                        s.repaired_stripes += 1;
                        s.repaired_fragments += fragments;
                        s.repaired_bytes += bytes;
                        s.pass_repaired += 1;
                        s.rate_bytes_per_sec = (pass_bytes as f64 / secs) as u64;
                    });
                }
                Outcome::Blocked(why) => {
                    blocked += 1;
                    tracing::debug!(%group, %stripe, reason = %why, "repair blocked by placement");
                }
                Outcome::CasLost => {
                    self.count(|s| s.cas_lost += 1);
                    tracing::info!(%group, %stripe, "repair lost its compare-and-set; the stripe changed");
                }
                Outcome::Failed(why) => {
                    self.count(|s| s.failures += 1);
                    tracing::info!(%group, %stripe, error = %why, "repair failed; retrying on a later pass");
                }
                Outcome::NotLeader => lost_leadership = true,
            }
        }
        drop(outcomes);
        if blocked > 0 {
            tracing::warn!(
                %group, stripes = blocked,
                "repair blocked by placement: the rack rule cannot be met with the nodes \
                 left (add nodes or racks); the stripes stay degraded"
            );
        }
        if let Some(w) = self.walks.get_mut(&group) {
            w.repaired = repaired;
            w.blocked = blocked;
        }
        if lost_leadership {
            self.walks.remove(&group);
        }
        Ok(repaired > 0)
    }

    /// Reads every stripe of `group` and classifies it.
    async fn walk(
        &mut self,
        group: GroupId,
        map: &ClusterMap,
        damaged: &BTreeSet<Damaged>,
        inventory: Option<&Inventory>,
    ) -> Result<(Walk, RepairQueue<Work>), MaintainError> {
        let mut walk = Walk::default();
        let mut queue = RepairQueue::new(self.cfg.repair_queue as usize);
        let mut after: Option<StripeId> = None;
        let mut reported = std::mem::take(&mut self.reported);
        let result = loop {
            let page = match self
                .local
                .read(group, move |txn| sm::list_stripes(txn, after, PAGE))
                .await
            {
                Ok(p) => p,
                Err(e) => break Err(e),
            };
            let last = page.stripes.last().map(|s| s.id);
            for entry in page.stripes {
                walk.scanned += 1;
                let mut health: Vec<FragmentHealth> = Vec::with_capacity(entry.placement.len());
                for (index, loc) in (0u8..).zip(&entry.placement) {
                    let id = FragmentId {
                        stripe: entry.id,
                        index,
                    };
                    let mut h = classify_fragment(map, *loc, damaged.contains(&(*loc, id)));
                    if h == FragmentHealth::Healthy
                        && self.confirmed_missing(map, inventory, *loc, id).await
                    {
                        tracing::warn!(
                            %group, stripe = %entry.id, index, %loc,
                            "fragment missing on an Up data node; rebuilding it elsewhere"
                        );
                        self.count(|s| s.missing_found += 1);
                        h = FragmentHealth::Damaged;
                    }
                    health.push(h);
                }
                let misplaced = mark_misplaced(map, entry.codec, &entry.placement, &mut health);
                if misplaced > 0 {
                    tracing::info!(
                        %group, stripe = %entry.id, misplaced, placement = ?entry.placement,
                        "stripe breaks the placement rule (a node or rack holds too many of \
                         its fragments); moving the surplus"
                    );
                }
                match assess(entry.codec.data_fragments(), &health) {
                    Verdict::Healthy => {}
                    Verdict::Wait { .. } => walk.waiting += 1,
                    Verdict::Unreadable { .. } => walk.unreadable += 1,
                    Verdict::Unrecoverable { readable, k } => {
                        walk.unrecoverable += 1;
                        if !fresh(&mut reported, entry.id) {
                            continue;
                        }
                        tracing::error!(
                            %group, stripe = %entry.id, owner = ?entry.owner, readable, k,
                            placement = ?entry.placement,
                            "UNRECOVERABLE stripe: fewer than k fragments survive; data lost"
                        );
                    }
                    Verdict::Repair { healthy, rebuild } => {
                        *walk.backlog.entry(healthy).or_default() += 1;
                        queue.push(Candidate {
                            healthy,
                            stripe: entry.id,
                            item: Work { entry, rebuild },
                        });
                    }
                }
            }
            match last {
                Some(last) if page.is_truncated => after = Some(last),
                _ => break Ok(()),
            }
        };
        self.reported = reported;
        if walk.unrecoverable > 0 {
            tracing::error!(
                %group, stripes = walk.unrecoverable,
                "UNRECOVERABLE stripes: fewer than k fragments survive (data lost)"
            );
        }
        result.map(|()| (walk, queue))
    }

    /// Rebuilds and commits one stripe.
    async fn repair_one(&self, group: GroupId, map: &ClusterMap, work: Work) -> Outcome {
        let Work { entry, rebuild } = work;
        let codec = entry.codec;
        let stripe = entry.id;
        // Nodes holding an old copy of this stripe still queued for the GC: a new copy
        // there could be deleted by it (the state machine refuses it too).
        let pending = match self
            .local
            .read(group, move |txn| sm::gc_pending_of(txn, stripe))
            .await
        {
            Ok(p) => p,
            Err(MaintainError::NotLeader { .. }) => return Outcome::NotLeader,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let mut avoid: BTreeSet<NodeId> = pending.iter().map(|f| f.location.node).collect();
        {
            let now = self.clock.now();
            let mut failed = self
                .failed_targets
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            failed.retain(|_, until| *until > now);
            avoid.extend(failed.keys().copied());
        }
        let targets = match plan_targets(
            map,
            codec,
            stripe,
            entry.data_len,
            &entry.placement,
            &rebuild,
            &avoid,
        ) {
            Ok(t) => t,
            Err(TargetError::Blocked(why)) => return Outcome::Blocked(why),
        };
        let frag = fragment_bytes(codec, entry.data_len);
        let bytes = frag * (codec.data_fragments() + targets.len()) as u64;
        let wait = self
            .budget
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reserve(self.clock.now(), bytes);
        if !wait.is_zero() {
            self.clock.sleep(wait).await;
        }
        let record = StripeRecord {
            id: stripe,
            data_len: entry.data_len,
            placement: entry.placement.clone(),
        };
        let rebuilt = match self.plane.rebuild_stripe(codec, &record, &targets).await {
            Ok(r) => r,
            Err(e @ RebuildError::NotEnoughHealthy { .. }) => {
                return Outcome::Failed(format!("sources: {e}"))
            }
            Err(e) => {
                if let RebuildError::WriteFailed { location, .. } = &e {
                    let until = self.clock.now() + AVOID_AFTER_WRITE_FAILURE;
                    self.failed_targets
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(location.node, until);
                }
                return Outcome::Failed(e.to_string());
            }
        };
        // The invariant, once more right before the commit: the rule holds in the map.
        let new = match new_placement(map, codec, &entry.placement, &targets) {
            Ok(p) => p,
            Err(TargetError::Blocked(why)) => {
                self.delete_written(stripe, &targets, map).await;
                return Outcome::Blocked(why);
            }
        };
        assert_eq!(
            new, rebuilt.placement,
            "repair bug: the rebuilt placement of stripe {stripe} is not the planned one"
        );
        let cmd = Command::ReplacePlacement(ReplacePlacement {
            stripe,
            expected: entry.placement.clone(),
            new,
        });
        let result = self.local.write(group, cmd).await;
        match after_commit(&result) {
            AfterCommit::Committed => {
                tracing::info!(
                    %group, %stripe, fragments = ?rebuilt.rebuilt, sources = ?rebuilt.sources,
                    "stripe repaired"
                );
                Outcome::Repaired {
                    fragments: targets.len() as u64,
                    bytes: frag * targets.len() as u64,
                }
            }
            AfterCommit::DeleteWritten => {
                if let Err(e) = &result {
                    tracing::debug!(%group, %stripe, error = %e, "repair commit rejected");
                }
                self.delete_written(stripe, &targets, map).await;
                Outcome::CasLost
            }
            AfterCommit::KeepWritten => match result {
                Err(MaintainError::NotLeader { .. }) => Outcome::NotLeader,
                Err(e) => Outcome::Failed(format!("commit outcome unknown: {e}")),
                Ok(other) => Outcome::Failed(format!("unexpected response {other}")),
            },
        }
    }

    /// Best-effort deletion of the fragments a rebuild wrote (its commit lost).
    async fn delete_written(
        &self,
        stripe: StripeId,
        targets: &BTreeMap<usize, FragmentLocation>,
        map: &ClusterMap,
    ) {
        for (&index, loc) in targets {
            let Some(node) = map.node(loc.node) else {
                continue;
            };
            let id = FragmentId {
                stripe,
                index: u8::try_from(index).unwrap_or(u8::MAX),
            };
            if let Err(e) = self.nodes.delete(loc.node, &node.addr, loc.disk, id).await {
                tracing::info!(%stripe, index, %loc, error = %e,
                    "could not delete a rebuilt fragment whose commit lost (orphan)");
            }
        }
    }
}

/// Whether `stripe` is reported for the first time (remembered, up to a bound).
fn fresh(reported: &mut BTreeSet<StripeId>, stripe: StripeId) -> bool {
    if reported.contains(&stripe) {
        return false;
    }
    if reported.len() < REPORTED_MAX {
        reported.insert(stripe);
    }
    true
}
