//! The fragment garbage collector, run by every object group's leader.
//!
//! An entry waits `gc_delay` in the queue before its fragments are deleted, so a GET
//! that read the version record just before an overwrite or delete can still read the
//! old fragments. The queue has no timestamps (apply is pure), so the leader measures
//! the wait on its own clock: every pass it samples the group's applied log index, and
//! an entry is old enough once a sample taken at least `gc_delay` ago had applied the
//! entry's log index ([`Watermark`]). A new leader has no old samples: it waits a full
//! delay first.
//!
//! A pass over one group: take a page of its GC queue (oldest first, from a cursor that
//! walks the whole queue, so entries stuck on an unreachable node never starve the rest),
//! delete every listed fragment on its data node, then acknowledge (`GcAck`, a Raft
//! command) the entries whose fragments are all gone. What happens to one fragment
//! ([`plan_fragment`]) depends on its node and disk in the cluster map (this node's
//! replica of the root group; a stale view only delays a delete):
//! - node Dead, or disk marked failed: nothing to delete any more (the bytes are gone
//!   or will never be read); counts as done ("abandoned").
//! - node Down, unknown to the map, or its location backing off after a failure: the
//!   entry stays queued and is retried on a later pass.
//! - otherwise: stat (for the byte count), then delete. Deleting an absent fragment
//!   succeeds, so a repeated pass (after a leader change) is harmless.
//!
//! Deletes run location by location: at most `gc_concurrency` locations at once, one
//! fragment at a time per location, stopping at a location's first failure. A failed
//! location backs off (doubling from the GC tick up to `gc_retry_max`), so an unreachable
//! node costs one timeout per backoff period, never a busy loop.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::{ClusterMap, DiskState, FragmentLocation, NodeState};
use common::env::{Clock, Instant};
use common::ids::{FragmentId, GroupId};
use futures::StreamExt;
use meta_raft::maintain_config::MaintainConfig;
use meta_raft::state_machine::{self as sm, Command, GcEntry, GcId, Response};

use crate::datanodes::{DataNodes, FragmentCallError};
use crate::error::MaintainError;
use crate::local::{LocalGroups, ROOT_GROUP};

/// Counters since the worker started (for logs, tests and metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Passes that found entries.
    pub passes: u64,
    /// GC entries acknowledged (removed from the queues).
    pub entries_acked: u64,
    /// Fragments deleted from data nodes.
    pub fragments_deleted: u64,
    /// Fragments that were already absent.
    pub fragments_absent: u64,
    /// Fragments on dead nodes or failed disks (counted done without a delete).
    pub fragments_abandoned: u64,
    /// Bytes of the deleted fragments (as the data nodes reported them).
    pub bytes_deleted: u64,
    /// Failed data node calls (the entry stays queued).
    pub failures: u64,
}

/// What to do with one queued fragment now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FragmentPlan {
    /// Delete it on its data node at `addr`.
    Delete { addr: String },
    /// Count it done without a call (dead node, failed disk).
    Abandon,
    /// Leave the entry queued for a later pass.
    Wait,
}

/// The pure decision for a fragment on `loc`, given the cluster map and whether the
/// location is backing off at the moment.
pub fn plan_fragment(map: &ClusterMap, loc: FragmentLocation, backing_off: bool) -> FragmentPlan {
    let Some(node) = map.node(loc.node) else {
        return FragmentPlan::Wait;
    };
    match node.state {
        NodeState::Dead => return FragmentPlan::Abandon,
        NodeState::Down => return FragmentPlan::Wait,
        NodeState::Up | NodeState::Draining => {}
    }
    if node
        .disk(loc.disk)
        .is_some_and(|d| d.state == DiskState::Failed)
    {
        return FragmentPlan::Abandon;
    }
    if backing_off {
        return FragmentPlan::Wait;
    }
    FragmentPlan::Delete {
        addr: node.addr.clone(),
    }
}

/// The next backoff after a failure: `initial` the first time, then doubling up to
/// `max`.
pub fn next_backoff(previous: Option<Duration>, initial: Duration, max: Duration) -> Duration {
    match previous {
        None => initial.min(max),
        Some(d) => (d * 2).min(max),
    }
}

/// Samples of a group's applied log index over time: which queued entries are at least
/// `delay` old (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Watermark {
    samples: VecDeque<(Instant, u64)>,
}

impl Watermark {
    /// Records that `applied` was applied at `now` and returns the highest log index
    /// known to have been applied at least `delay` before `now` (`None`: nothing is old
    /// enough yet). Keeps only the samples still needed.
    pub fn sample(&mut self, now: Instant, applied: u64, delay: Duration) -> Option<u64> {
        if self.samples.back().is_none_or(|(_, a)| *a < applied) {
            self.samples.push_back((now, applied));
        }
        let old_enough = |t: &Instant| now.saturating_duration_since(*t) >= delay;
        // Drop samples superseded by a newer one that is old enough too.
        while self.samples.len() >= 2 && old_enough(&self.samples[1].0) {
            self.samples.pop_front();
        }
        self.samples
            .front()
            .filter(|(t, _)| old_enough(t))
            .map(|(_, a)| *a)
    }
}

#[derive(Clone, Copy, Debug)]
struct Backoff {
    until: Instant,
    delay: Duration,
}

/// One deletion job: fragment `id` on `loc`, for entry number `entry` of the page.
struct Job {
    entry: usize,
    id: FragmentId,
}

/// What happened to one location's jobs.
#[derive(Default)]
struct LocationOutcome {
    deleted: u64,
    absent: u64,
    bytes: u64,
    /// Entries (page positions) whose fragment here is not deleted.
    blocked: Vec<usize>,
    failure: Option<String>,
}

/// The GC of every object group this node leads. Call [`GcWorker::tick`] in a loop.
pub struct GcWorker {
    local: LocalGroups,
    nodes: Arc<DataNodes>,
    cfg: MaintainConfig,
    clock: Clock,
    /// Per led group: the term it is led in and the queue position to resume after.
    cursors: BTreeMap<GroupId, (u64, Option<GcId>)>,
    /// Per led group: the term and the age of its log (for `gc_delay`).
    ages: BTreeMap<GroupId, (u64, Watermark)>,
    backoff: BTreeMap<FragmentLocation, Backoff>,
    stats: Arc<Mutex<GcStats>>,
}

impl GcWorker {
    pub fn new(local: LocalGroups, nodes: Arc<DataNodes>, cfg: MaintainConfig) -> Self {
        Self {
            local,
            nodes,
            cfg,
            clock: Clock::new(),
            cursors: BTreeMap::new(),
            ages: BTreeMap::new(),
            backoff: BTreeMap::new(),
            stats: Arc::new(Mutex::new(GcStats::default())),
        }
    }

    /// The counters, shared: they keep counting after this call.
    pub fn stats_handle(&self) -> Arc<Mutex<GcStats>> {
        Arc::clone(&self.stats)
    }

    fn count(&self, f: impl FnOnce(&mut GcStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// One pass over every object group this node leads. Returns whether any entry was
    /// acknowledged (the caller goes again at once instead of sleeping a tick).
    pub async fn tick(&mut self) -> bool {
        let mut progress = false;
        for group in self.local.object_groups() {
            let Some(term) = self.local.leader_term(group) else {
                self.cursors.remove(&group);
                self.ages.remove(&group);
                continue;
            };
            match self.pass(group, term).await {
                Ok(p) => progress |= p,
                Err(MaintainError::NotLeader { .. }) => {
                    self.cursors.remove(&group);
                    self.ages.remove(&group);
                }
                Err(e) => tracing::debug!(%group, error = %e, "gc pass failed; retrying later"),
            }
        }
        progress
    }

    /// One page of `group`'s queue.
    async fn pass(&mut self, group: GroupId, term: u64) -> Result<bool, MaintainError> {
        let after = match self.cursors.get(&group) {
            Some((t, after)) if *t == term => *after,
            _ => None,
        };
        if self.ages.get(&group).is_none_or(|(t, _)| *t != term) {
            self.ages.insert(group, (term, Watermark::default()));
        }
        let applied = self.local.applied_index(group).unwrap_or(0);
        let now = self.clock.now();
        let delay = self.cfg.gc_delay();
        let Some(old_enough) = self
            .ages
            .get_mut(&group)
            .and_then(|(_, w)| w.sample(now, applied, delay))
        else {
            return Ok(false);
        };
        let batch = self.cfg.gc_batch as usize;
        let mut entries = self
            .local
            .read(group, move |txn| sm::gc_take(txn, after, batch))
            .await?;
        // At the end of the queue, or of its old enough part, start from its head next
        // time.
        let full = entries.len() == batch;
        entries.retain(|e| e.id.log_index <= old_enough);
        let next = if full && entries.len() == batch {
            entries.last().map(|e| e.id)
        } else {
            None
        };
        self.cursors.insert(group, (term, next));
        if entries.is_empty() {
            return Ok(false);
        }
        self.count(|s| s.passes += 1);
        let map = self.local.read_local(ROOT_GROUP, sm::cluster_map).await?;
        let done = self.delete_entries(&entries, &map).await;
        let ids: Vec<GcId> = entries
            .iter()
            .zip(&done)
            .filter(|(_, d)| **d)
            .map(|(e, _)| e.id)
            .collect();
        if ids.is_empty() {
            return Ok(false);
        }
        let n = ids.len();
        match self
            .local
            .write(
                group,
                Command::GcAck {
                    ids,
                    at_ms: self.local.wall_ms(),
                },
            )
            .await?
        {
            Response::GcAcked { removed } => {
                self.count(|s| s.entries_acked += u64::from(removed));
                tracing::info!(%group, entries = n, removed, "gc acknowledged entries");
                Ok(true)
            }
            other => Err(MaintainError::Unexpected {
                group,
                response: other.to_string(),
            }),
        }
    }

    /// Deletes the fragments of `entries`; returns, per entry, whether all are done.
    async fn delete_entries(&mut self, entries: &[GcEntry], map: &ClusterMap) -> Vec<bool> {
        let now = self.clock.now();
        let mut done = vec![true; entries.len()];
        let mut jobs: BTreeMap<FragmentLocation, (String, Vec<Job>)> = BTreeMap::new();
        let mut abandoned = 0u64;
        for (i, e) in entries.iter().enumerate() {
            for f in &e.fragments {
                let backing_off = self.backoff.get(&f.location).is_some_and(|b| now < b.until);
                match plan_fragment(map, f.location, backing_off) {
                    FragmentPlan::Abandon => abandoned += 1,
                    FragmentPlan::Wait => done[i] = false,
                    FragmentPlan::Delete { addr } => {
                        jobs.entry(f.location)
                            .or_insert_with(|| (addr, Vec::new()))
                            .1
                            .push(Job {
                                entry: i,
                                id: FragmentId {
                                    stripe: e.stripe,
                                    index: f.index,
                                },
                            });
                    }
                }
            }
        }
        let nodes = Arc::clone(&self.nodes);
        let outcomes: Vec<(FragmentLocation, LocationOutcome)> =
            futures::stream::iter(jobs.into_iter().map(|(loc, (addr, jobs))| {
                let nodes = Arc::clone(&nodes);
                async move { (loc, delete_at(&nodes, loc, &addr, jobs).await) }
            }))
            .buffer_unordered(self.cfg.gc_concurrency as usize)
            .collect()
            .await;
        // Completion order varies; apply the outcomes in location order.
        let outcomes: BTreeMap<FragmentLocation, LocationOutcome> = outcomes.into_iter().collect();
        let mut stats = GcStats {
            fragments_abandoned: abandoned,
            ..GcStats::default()
        };
        for (loc, o) in outcomes {
            stats.fragments_deleted += o.deleted;
            stats.fragments_absent += o.absent;
            stats.bytes_deleted += o.bytes;
            for i in o.blocked {
                done[i] = false;
            }
            match o.failure {
                None => {
                    self.backoff.remove(&loc);
                }
                Some(why) => {
                    stats.failures += 1;
                    let delay = next_backoff(
                        self.backoff.get(&loc).map(|b| b.delay),
                        self.cfg.gc_tick(),
                        self.cfg.gc_retry_max(),
                    );
                    tracing::info!(%loc, error = %why, retry_in = ?delay, "gc delete failed");
                    self.backoff.insert(
                        loc,
                        Backoff {
                            until: now + delay,
                            delay,
                        },
                    );
                }
            }
        }
        self.count(|s| {
            s.fragments_deleted += stats.fragments_deleted;
            s.fragments_absent += stats.fragments_absent;
            s.fragments_abandoned += stats.fragments_abandoned;
            s.bytes_deleted += stats.bytes_deleted;
            s.failures += stats.failures;
        });
        done
    }
}

/// Deletes `jobs` on one location, one at a time, stopping at the first failure (the
/// rest stay queued).
async fn delete_at(
    nodes: &DataNodes,
    loc: FragmentLocation,
    addr: &str,
    jobs: Vec<Job>,
) -> LocationOutcome {
    let mut out = LocationOutcome::default();
    let mut jobs = jobs.into_iter();
    for job in jobs.by_ref() {
        let len = match nodes.stat(loc.node, addr, loc.disk, job.id).await {
            Ok(len) => len,
            Err(FragmentCallError::NotFound) => {
                out.absent += 1;
                continue;
            }
            Err(FragmentCallError::Failed(why)) => {
                out.blocked.push(job.entry);
                out.failure = Some(why);
                break;
            }
        };
        match nodes.delete(loc.node, addr, loc.disk, job.id).await {
            Ok(true) => {
                out.deleted += 1;
                out.bytes += len;
            }
            Ok(false) => out.absent += 1,
            Err(e) => {
                out.blocked.push(job.entry);
                out.failure = Some(e.to_string());
                break;
            }
        }
    }
    out.blocked.extend(jobs.map(|j| j.entry));
    out
}
