//! The orphan sweep, run by the root group's leader (one sweeper per cluster): deletes
//! fragments that no metadata references — left by PUTs and part uploads that never
//! committed (the gateway crashed after writing fragments, the client went away, the
//! commit was refused or its outcome unknown), or by a repair whose commit outcome was
//! unknown and did not happen.
//!
//! One sweep, every `orphan_sweep_interval_secs`:
//! 1. **Inventory.** List every disk of every Up or Draining data node
//!    (`ListFragments`, paged; `orphan_concurrency` disks at once). A disk that does not
//!    answer is left out of this sweep.
//! 2. **References, read after the inventory.** Walk every object group's stripe index
//!    (`ListStripes`: the stripes of *every* version, current or not, and of every part
//!    of every open multipart upload, with the placements as last replaced) and then its
//!    GC queue (`GcTake`, a read), through a `MetaClient` (linearizable reads on each
//!    group's leader; stripe ids are random, so any group may own a stripe). A stripe
//!    found in either is *referenced*; if any group cannot be read, the sweep decides
//!    nothing.
//! 3. **Grace.** The listed fragments of unreferenced stripes go to the
//!    [`OrphanTracker`]: a fragment is deleted only when this sweep and a sweep at least
//!    `orphan_grace_secs` earlier (on this leader's monotonic clock) both found it
//!    unreferenced. Anything else seen is forgotten, and a new leader starts with an
//!    empty memory (a full grace again).
//! 4. **Delete** the due fragments (`orphan_concurrency` at once, at most
//!    [`DELETES_PER_SWEEP`] per sweep), only while still leading in the same term.
//!
//! # Why a committed fragment is never deleted
//! The unit of reference is the stripe. Stripe ids are random 128-bit values drawn per
//! PUT / part upload and never reused, and a stripe is referenced exactly from the
//! commit of the version or part that wrote it until its GC entry is acknowledged (after
//! which it is garbage for good: nothing re-references a dropped stripe; repair never
//! writes a stripe its walk did not read referenced, and its commit is a
//! compare-and-set on the placement read). So the only way an unreferenced stripe
//! becomes referenced is its *first* commit, which happens within the longest PUT or
//! part upload D after its fragments were written. A fragment first seen unreferenced
//! at t0 was listed before t0, so was written before t0; its stripe, if it is ever
//! committed, is committed before t0 + D. The deciding sweep reads the references after
//! its own listing, at ≥ t0 + grace > t0 + D, through linearizable reads: a commit
//! would be visible. Reading the references after the listing matters: a commit that
//! lands between can only make a listed fragment look referenced, never the reverse (a
//! reference read first could miss a PUT that then commits and whose fragments the
//! listing shows). Versions whose placement a repair replaced are found at their new
//! locations by the same stripe id; their old copies are in the GC queue (the GC's to
//! delete). Deleting is therefore safe right after the deciding read; no extra
//! per-stripe check is needed (it would prove nothing more: it reads the same state).
//! `orphan_grace_secs` (6 h) must be far longer than the longest upload.
//!
//! Not collected: an extra copy of a *referenced* stripe at a location its placement
//! does not name (e.g. a repair's write whose commit outcome was unknown and did not
//! happen): the stripe is referenced, so the sweep keeps it (it wastes space only).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::cluster::NodeState;
use common::env::{Clock, Env};
use common::ids::StripeId;
use futures::future::BoxFuture;
use futures::StreamExt;
use meta_raft::client::MetaClient;
use meta_raft::maintain_config::MaintainConfig;
use meta_raft::state_machine as sm;

use crate::datanodes::DataNodes;
use crate::error::MaintainError;
use crate::host::Tick;
use crate::inventory::{self, Inventory};
use crate::local::{LocalGroups, ROOT_GROUP};
use crate::orphan_tracker::{Held, OrphanTracker};

/// Most orphans deleted by one sweep (the rest wait for the next one).
pub const DELETES_PER_SWEEP: usize = 10_000;

/// Stripes / GC entries per metadata page.
const PAGE: u32 = 1000;

/// The sweep's counters (totals since the loop started, plus the last sweep's figures).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrphanStats {
    /// Sweeps that finished (references read from every group).
    pub sweeps: u64,
    /// Sweeps abandoned (a group could not be read; nothing was decided).
    pub aborted: u64,
    /// Fragments listed by the last sweep.
    pub fragments_listed: u64,
    /// Disks the last sweep could not list.
    pub disks_unlisted: u64,
    /// Unreferenced fragments the last sweep saw (within their grace or due).
    pub unreferenced: u64,
    /// Orphan fragments deleted (total).
    pub deleted: u64,
    /// Deletes that failed (retried on a later sweep).
    pub delete_failures: u64,
}

/// The orphan sweep as a loop (root group's leader).
pub struct OrphanSweeper {
    local: LocalGroups,
    nodes: Arc<DataNodes>,
    cfg: MaintainConfig,
    clock: Clock,
    tracker: OrphanTracker,
    /// The root term the tracker's memory belongs to.
    term: Option<u64>,
    stats: Arc<Mutex<OrphanStats>>,
}

impl Tick for OrphanSweeper {
    fn tick(&mut self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            if let Err(e) = self.sweep().await {
                self.count(|s| s.aborted += 1);
                tracing::info!(error = %e, "orphan sweep abandoned; nothing deleted");
            }
            false
        })
    }
}

impl OrphanSweeper {
    pub fn new(_env: &Env, local: LocalGroups, nodes: Arc<DataNodes>, cfg: MaintainConfig) -> Self {
        Self {
            local,
            nodes,
            cfg,
            clock: Clock::new(),
            tracker: OrphanTracker::new(),
            term: None,
            stats: Arc::new(Mutex::new(OrphanStats::default())),
        }
    }

    /// The counters, shared: they keep counting after this call.
    pub fn stats_handle(&self) -> Arc<Mutex<OrphanStats>> {
        Arc::clone(&self.stats)
    }

    fn count(&self, f: impl FnOnce(&mut OrphanStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// One sweep (module docs), if this node leads the root group.
    async fn sweep(&mut self) -> Result<(), MaintainError> {
        let Some(term) = self.local.leader_term(ROOT_GROUP) else {
            self.tracker.reset();
            self.term = None;
            return Ok(());
        };
        if self.term != Some(term) {
            self.tracker.reset();
            self.term = Some(term);
        }
        let map = self.local.read(ROOT_GROUP, sm::cluster_map).await?;
        let concurrency = self.cfg.orphan_concurrency as usize;
        // 1. The inventory first ...
        let inv = inventory::take(
            &self.nodes,
            &map,
            &[NodeState::Up, NodeState::Draining],
            concurrency,
        )
        .await;
        self.count(|s| {
            s.fragments_listed = inv.len() as u64;
            s.disks_unlisted = inv.failed as u64;
        });
        // 2. ... then the references (see the safety argument).
        let wanted = inv.stripes();
        let referenced = match self.referenced(&wanted).await {
            Ok(r) => r,
            Err(e) => {
                // Nothing decided: keep the memory (it only ever delays a delete).
                return Err(e);
            }
        };
        let unreferenced = unreferenced(&inv, &referenced);
        // 3. Grace.
        let now = self.clock.now();
        let mut due = self
            .tracker
            .observe(now, &unreferenced, self.cfg.orphan_grace());
        self.count(|s| {
            s.sweeps += 1;
            s.unreferenced = unreferenced.len() as u64;
        });
        if !unreferenced.is_empty() {
            tracing::info!(
                unreferenced = unreferenced.len(),
                due = due.len(),
                listed = inv.len(),
                "orphan sweep: unreferenced fragments found"
            );
        }
        if due.is_empty() {
            return Ok(());
        }
        due.truncate(DELETES_PER_SWEEP);
        // 4. Delete, only while still leading in the term that decided.
        if self.local.leader_term(ROOT_GROUP) != Some(term) {
            return Ok(());
        }
        let this = &*self;
        let map = &map;
        let results: Vec<(Held, Result<bool, String>)> =
            futures::stream::iter(due.into_iter().map(|h| async move {
                let (loc, id) = h;
                let r = match map.node(loc.node) {
                    Some(n) => this
                        .nodes
                        .delete(loc.node, &n.addr, loc.disk, id)
                        .await
                        .map_err(|e| e.to_string()),
                    None => Err("node left the cluster map".to_owned()),
                };
                (h, r)
            }))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut deleted = 0u64;
        let mut failed = 0u64;
        for ((loc, id), r) in results {
            match r {
                Ok(_) => {
                    deleted += 1;
                    self.tracker.forget(&(loc, id));
                    tracing::info!(%loc, fragment = ?id, "orphan fragment deleted");
                }
                Err(e) => {
                    failed += 1;
                    tracing::debug!(%loc, fragment = ?id, error = %e, "deleting an orphan failed");
                }
            }
        }
        self.count(|s| {
            s.deleted += deleted;
            s.delete_failures += failed;
        });
        tracing::info!(deleted, failed, "orphan sweep: orphans deleted");
        Ok(())
    }

    /// The stripes of `wanted` that some object group references (stripe index or GC
    /// queue), read through the groups' leaders.
    async fn referenced(
        &self,
        wanted: &BTreeSet<StripeId>,
    ) -> Result<BTreeSet<StripeId>, MaintainError> {
        let mut found = BTreeSet::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        let client = self.client().await?;
        let remote =
            |what: &'static str, e: meta_raft::client::MetaClientError| MaintainError::Remote {
                what,
                message: e.to_string(),
            };
        let groups = client
            .object_groups()
            .await
            .map_err(|e| remote("the group map", e))?;
        for group in groups {
            let mut after = None;
            loop {
                let page = client
                    .list_stripes(group, after, PAGE)
                    .await
                    .map_err(|e| remote("listing stripes", e))?;
                after = page.stripes.last().map(|s| s.id);
                found.extend(
                    page.stripes
                        .iter()
                        .map(|s| s.id)
                        .filter(|id| wanted.contains(id)),
                );
                if !page.is_truncated || after.is_none() {
                    break;
                }
            }
            // The GC queue after the stripe index: a stripe dropped from the index during
            // the walk was queued before this read starts.
            let mut after = None;
            loop {
                let entries = client
                    .gc_take(group, after, PAGE)
                    .await
                    .map_err(|e| remote("reading the GC queue", e))?;
                after = entries.last().map(|e| e.id);
                found.extend(
                    entries
                        .iter()
                        .map(|e| e.stripe)
                        .filter(|id| wanted.contains(id)),
                );
                if entries.len() < PAGE as usize || after.is_none() {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// A client of the metadata plane, seeded with every meta node of this node's
    /// replica of the group map (made per sweep: membership may have changed).
    async fn client(&self) -> Result<MetaClient, MaintainError> {
        let map = self.local.read_local(ROOT_GROUP, sm::group_map).await?;
        let seeds: BTreeSet<String> = map
            .iter()
            .flat_map(|m| m.groups.iter())
            .flat_map(|g| g.members.values().cloned())
            .collect();
        if seeds.is_empty() {
            return Err(MaintainError::Remote {
                what: "the group map",
                message: "no meta node addresses".into(),
            });
        }
        MetaClient::connect(seeds.into_iter().collect(), self.local.cluster_id())
            .await
            .map_err(|e| MaintainError::Remote {
                what: "connecting to the metadata plane",
                message: e.to_string(),
            })
    }
}

/// The fragments of `inv` whose stripe is not in `referenced`.
pub fn unreferenced(inv: &Inventory, referenced: &BTreeSet<StripeId>) -> BTreeSet<Held> {
    inv.fragments()
        .filter(|(_, id)| !referenced.contains(&id.stripe))
        .collect()
}
