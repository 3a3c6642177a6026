//! `Maintainer`: the maintenance loops of one meta process. [`Maintainer::start`] spawns
//! (through `common::env`) one task per enabled loop on the node's group host; each task
//! ticks on the env clock, asks [`LocalGroups`] which groups this node leads at that
//! moment, and works only for those. Dropping the `Maintainer` stops the tasks.
//!
//! Loops today: the failure detector (root group, `detector.rs`), the orphan sweep (root
//! group, `orphans.rs`), the GC (object groups, `gc.rs`) and repair (object groups,
//! `repair.rs`). A loop is a worker type holding a [`LocalGroups`] and a
//! [`crate::DataNodes`], whose `tick` checks `leader_term` per group and forgets its
//! per-group memory when the term changes, implementing [`Tick`], started in
//! [`Maintainer::start`] with [`spawn_loop`] (its own enable flag and tick in
//! `MaintainConfig`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::env::{Clock, Env, JoinHandle};
use meta_raft::maintain_config::MaintainConfig;
use meta_raft::maintain_report::{MaintainReportSlot, MaintainSettings};
use meta_raft::state_machine::{self as sm, Command, RootCommand};
use meta_raft::types::MetaGroupHost;

use crate::datanodes::DataNodes;
use crate::detector::{Detector, NodeView, Timeouts, Transition};
use crate::error::MaintainError;
use crate::gc::{GcStats, GcWorker};
use crate::local::{LocalGroups, ROOT_GROUP};
use crate::orphans::{OrphanStats, OrphanSweeper};
use crate::repair::{RepairStats, RepairWorker};
use futures::future::BoxFuture;

/// Counters of the loops (for logs, tests and metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MaintainStats {
    /// Node state changes the detector committed.
    pub node_transitions: u64,
    pub gc: GcStats,
    pub repair: RepairStats,
    pub orphans: OrphanStats,
}

/// One maintenance loop: `tick` does one round of work for the groups this node leads
/// now and says whether it made progress (more work is probably waiting: the loop goes
/// again at once instead of sleeping its period).
pub trait Tick: Send + 'static {
    fn tick(&mut self) -> BoxFuture<'_, bool>;
}

impl Tick for GcWorker {
    fn tick(&mut self) -> BoxFuture<'_, bool> {
        Box::pin(GcWorker::tick(self))
    }
}

impl Tick for RepairWorker {
    fn tick(&mut self) -> BoxFuture<'_, bool> {
        Box::pin(RepairWorker::tick(self))
    }
}

/// The failure detector as a loop (root group).
struct DetectorLoop {
    local: LocalGroups,
    clock: Clock,
    detector: Detector,
    timeouts: Timeouts,
    transitions: Arc<Mutex<u64>>,
}

impl Tick for DetectorLoop {
    fn tick(&mut self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            match self.detect_once().await {
                Ok(n) => *self.transitions.lock().unwrap_or_else(|e| e.into_inner()) += n,
                Err(e) => tracing::debug!(error = %e, "failure detector tick failed"),
            }
            false
        })
    }
}

impl DetectorLoop {
    /// If this node leads the root group: observe every node and propose the
    /// transitions. Returns how many committed.
    async fn detect_once(&mut self) -> Result<u64, MaintainError> {
        let Some(term) = self.local.leader_term(ROOT_GROUP) else {
            self.detector.reset();
            return Ok(0);
        };
        let records = self.local.read(ROOT_GROUP, sm::nodes).await?;
        let views: Vec<NodeView> = records
            .iter()
            .map(|r| NodeView {
                node: r.info.id,
                state: r.info.state,
                heartbeats: r.heartbeats,
            })
            .collect();
        let now = self.clock.now();
        let transitions = self.detector.observe(term, now, &views, &self.timeouts);
        let mut committed = 0;
        for t in transitions {
            match self.propose(&t).await {
                Ok(()) => {
                    committed += 1;
                    tracing::warn!(
                        node = %t.node, from = %t.from, to = %t.to, reason = %t.reason,
                        "data node state changed"
                    );
                }
                Err(MaintainError::Rejected { reason, .. }) => {
                    tracing::debug!(node = %t.node, %reason, "node state changed meanwhile");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(committed)
    }

    async fn propose(&self, t: &Transition) -> Result<(), MaintainError> {
        let cmd = Command::Root(RootCommand::SetNodeState {
            node: t.node,
            state: t.to,
            reason: t.reason.clone(),
            at_ms: self.clock.unix_ms(),
            expect: Some(t.from),
        });
        self.local.write(ROOT_GROUP, cmd).await.map(drop)
    }
}

/// The running loops; dropping it stops them.
pub struct Maintainer {
    tasks: Vec<JoinHandle<()>>,
    node_id: u64,
    settings: MaintainSettings,
    /// Where [`Self::publish_to`] registered the report (cleared on drop).
    published: Option<MaintainReportSlot>,
    transitions: Arc<Mutex<u64>>,
    gc: Arc<Mutex<GcStats>>,
    repair: Arc<Mutex<RepairStats>>,
    orphans: Arc<Mutex<OrphanStats>>,
}

impl std::fmt::Debug for Maintainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maintainer")
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl Maintainer {
    /// Starts the loops `config` enables on `host` (a meta node's groups).
    pub fn start(env: &Env, host: Arc<MetaGroupHost>, config: MaintainConfig) -> Self {
        let node_id = host.node_id();
        let local = LocalGroups::with_clock(host, env.clock().clone());
        let transitions = Arc::new(Mutex::new(0u64));
        let nodes = Arc::new(DataNodes::new(config.fragment_timeout()));
        let repair_worker =
            RepairWorker::new(env, local.clone(), Arc::clone(&nodes), config.clone());
        let repair = repair_worker.stats_handle();
        let sweeper = OrphanSweeper::new(env, local.clone(), Arc::clone(&nodes), config.clone());
        let orphans = sweeper.stats_handle();
        let worker = GcWorker::new(local.clone(), nodes, config.clone());
        let gc = worker.stats_handle();
        let mut tasks = Vec::new();
        if config.detector {
            let detector = DetectorLoop {
                local: local.clone(),
                clock: env.clock().clone(),
                detector: Detector::new(),
                timeouts: Timeouts {
                    down_after: config.down_after(),
                    dead_after: config.dead_after(),
                },
                transitions: Arc::clone(&transitions),
            };
            tasks.push(spawn_loop(
                env,
                "maintain-detector",
                config.detector_tick(),
                detector,
            ));
        }
        if config.gc {
            tasks.push(spawn_loop(env, "maintain-gc", config.gc_tick(), worker));
        }
        if config.repair {
            tasks.push(spawn_loop(
                env,
                "maintain-repair",
                config.repair_tick(),
                repair_worker,
            ));
        }
        if config.orphan_sweep {
            tasks.push(spawn_loop(
                env,
                "maintain-orphans",
                config.orphan_sweep_interval(),
                sweeper,
            ));
        }
        Self {
            tasks,
            node_id,
            settings: MaintainSettings::from(&config),
            published: None,
            transitions,
            gc,
            repair,
            orphans,
        }
    }

    pub fn stats(&self) -> MaintainStats {
        MaintainStats {
            node_transitions: *self.transitions.lock().unwrap_or_else(|e| e.into_inner()),
            gc: *self.gc.lock().unwrap_or_else(|e| e.into_inner()),
            repair: self
                .repair
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            orphans: self
                .orphans
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

impl Maintainer {
    /// Registers this node's report (settings and live counters) in `slot`, where the
    /// `MaintainStatus` rpc and the metrics endpoint read it; cleared when the loops stop.
    pub fn publish_to(&mut self, slot: &MaintainReportSlot) {
        let (node_id, settings) = (self.node_id, self.settings);
        let transitions = Arc::clone(&self.transitions);
        let gc = Arc::clone(&self.gc);
        let repair = Arc::clone(&self.repair);
        let orphans = Arc::clone(&self.orphans);
        slot.set(move || {
            let stats = MaintainStats {
                node_transitions: *transitions.lock().unwrap_or_else(|e| e.into_inner()),
                gc: *gc.lock().unwrap_or_else(|e| e.into_inner()),
                repair: repair.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                orphans: orphans.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            };
            crate::report::report(node_id, settings, &stats)
        });
        self.published = Some(slot.clone());
    }
}

impl Drop for Maintainer {
    fn drop(&mut self) {
        if let Some(slot) = &self.published {
            slot.clear();
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Spawns a loop that runs `t.tick()` and then sleeps `every` — or, after progress,
/// only a millisecond (other tasks run; the queue is probably not empty yet).
pub fn spawn_loop(
    env: &Env,
    name: &'static str,
    every: Duration,
    mut t: impl Tick,
) -> JoinHandle<()> {
    let clock = env.clock().clone();
    env.spawn(name, async move {
        loop {
            let progress = t.tick().await;
            let pause = if progress {
                Duration::from_millis(1)
            } else {
                every
            };
            clock.sleep(pause).await;
        }
    })
}
