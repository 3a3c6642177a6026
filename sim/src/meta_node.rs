//! A simulated meta node: a madsim node running the production `MetaNode` on a `SimDisk`
//! that outlives restarts. The harness keeps a handle to the running `MetaNode` so
//! scenarios can drive its groups directly (from inside the node's network identity).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::env::{Clock, Disk, Env, SimDisk, SimDiskFaults};
use meta_raft::config::{MaintainConfig, MemberConfig, MetaConfig};
use meta_raft::meta_node::MetaNode;

pub const META_PORT: u16 = 7200;

pub struct SimMetaNode {
    pub id: u64,
    pub handle: madsim::runtime::NodeHandle,
    pub addr: SocketAddr,
    pub disk: Arc<SimDisk>,
    running: Arc<Mutex<Option<Arc<MetaNode>>>>,
    /// The running process's maintenance loops (their counters).
    maintainer: Arc<Mutex<Option<maintain::Maintainer>>>,
    /// The wall-clock skew of this node (ms, positive: ahead), applied to every
    /// incarnation's clock, which both the meta service and the maintenance loops read:
    /// the times the node stamps into commands (`SetNodeState` by the failure detector
    /// or an operator, `SetDiskState`, `GcAck`).
    wall_offset_ms: Arc<AtomicI64>,
    /// The current incarnation's clock (the meta service's and the maintenance loops').
    clock: Arc<Mutex<Option<Clock>>>,
    /// Why process starts failed (the disk unreadable or erring). A failed start is
    /// retried a second later, as a supervisor would.
    pub start_errors: Arc<Mutex<Vec<String>>>,
}

fn apply_offset(clock: &Clock, offset_ms: i64) {
    clock.set_wall_offset(
        Duration::from_millis(offset_ms.unsigned_abs()),
        offset_ms >= 0,
    );
}

/// The config every meta node of a simulated cluster gets.
pub fn meta_config(id: u64, ips: &[IpAddr], object_groups: u32) -> MetaConfig {
    meta_config_with(id, ips, object_groups, maintain_config())
}

/// `meta_config` with given maintenance loops (a scenario's `[maintain]`).
pub fn meta_config_with(
    id: u64,
    ips: &[IpAddr],
    object_groups: u32,
    maintain: MaintainConfig,
) -> MetaConfig {
    MetaConfig {
        cluster_id: "sim".into(),
        node_id: id,
        listen: SocketAddr::new(ips[id as usize - 1], META_PORT).to_string(),
        data_dir: "/sim".into(),
        object_groups,
        join: false,
        maintain,
        members: ips
            .iter()
            .enumerate()
            .map(|(i, ip)| MemberConfig {
                node_id: i as u64 + 1,
                addr: SocketAddr::new(*ip, META_PORT).to_string(),
            })
            .collect(),
    }
}

/// The maintenance loops of a simulated meta node, on scenario time scales (runs last
/// tens of seconds): data nodes heartbeat every second, so 3 s of silence is Down; Dead
/// after 60 s (a fault lasts seconds: no node dies for good unless a scenario's
/// `[maintain]` shortens it); GC acts after 5 s.
/// Fields not named here keep `MaintainConfig`'s defaults.
pub fn maintain_config() -> MaintainConfig {
    MaintainConfig {
        down_after_secs: 3,
        dead_after_secs: 60,
        detector_tick_ms: 500,
        gc_tick_ms: 500,
        gc_delay_secs: 5,
        gc_batch: 64,
        gc_concurrency: 8,
        gc_retry_max_secs: 5,
        fragment_timeout_ms: 2000,
        repair_tick_ms: 2000,
        repair_bytes_per_sec: 64 << 20,
        repair_concurrency: 4,
        repair_queue: 256,
        ..MaintainConfig::default()
    }
}

impl SimMetaNode {
    pub fn start(config: MetaConfig, disk_seed: u64) -> Self {
        let disk = SimDisk::new(disk_seed, SimDiskFaults::default());
        let served: Arc<dyn Disk> = disk.clone();
        Self::start_on(config, disk, served)
    }

    /// Like `start`, on a given disk: `disk` is crashed on power loss, `served` (the
    /// same disk, possibly wrapped, e.g. by a planted bug) is what the node uses.
    pub fn start_on(config: MetaConfig, disk: Arc<SimDisk>, served: Arc<dyn Disk>) -> Self {
        let addr: SocketAddr = config.listen.parse().expect("sim listen address");
        let running: Arc<Mutex<Option<Arc<MetaNode>>>> = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&running);
        let maintainer: Arc<Mutex<Option<maintain::Maintainer>>> = Arc::new(Mutex::new(None));
        let maintainer_slot = Arc::clone(&maintainer);
        let init_disk = served;
        let id = config.node_id;
        let wall_offset_ms = Arc::new(AtomicI64::new(0));
        let clock: Arc<Mutex<Option<Clock>>> = Arc::new(Mutex::new(None));
        let (offset_slot, clock_slot) = (Arc::clone(&wall_offset_ms), Arc::clone(&clock));
        let start_errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let errors = Arc::clone(&start_errors);
        let handle = madsim::runtime::Handle::current()
            .create_node()
            .name(format!("meta-{id}"))
            .ip(addr.ip())
            .init(move || {
                let config = config.clone();
                let disk: Arc<dyn Disk> = init_disk.clone();
                let slot = Arc::clone(&slot);
                let maintainer_slot = Arc::clone(&maintainer_slot);
                let offset_slot = Arc::clone(&offset_slot);
                let clock_slot = Arc::clone(&clock_slot);
                let errors = Arc::clone(&errors);
                async move {
                    let maintain = config.maintain.clone();
                    // This incarnation's environment: its clock (skewed by the node's
                    // offset, and by later `skew` calls) is the meta service's and the
                    // maintenance loops'.
                    let menv = Env::seeded(id);
                    apply_offset(menv.clock(), offset_slot.load(Ordering::Relaxed));
                    *clock_slot.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(menv.clock().clone());
                    let node = loop {
                        match MetaNode::start(
                            config.clone(),
                            Arc::clone(&disk),
                            menv.clock().clone(),
                        )
                        .await
                        {
                            Ok(node) => break Arc::new(node),
                            Err(e) => {
                                errors
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(e.to_string());
                                madsim::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    };
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&node));
                    // Failure detector, GC and repair where this node leads; their tasks
                    // live as long as this incarnation of the process (the slot only
                    // keeps the counters readable).
                    let m = maintain::Maintainer::start(&menv, Arc::clone(node.host()), maintain);
                    *maintainer_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
                    node.serve(std::future::pending()).await.expect("serve");
                }
            })
            .build();
        Self {
            id,
            handle,
            addr,
            disk,
            running,
            maintainer,
            wall_offset_ms,
            clock,
            start_errors,
        }
    }

    /// The process dies and starts again; the disk keeps everything (no power loss).
    pub fn process_restart(&self) {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let h = madsim::runtime::Handle::current();
        h.kill(self.handle.id());
        h.restart(self.handle.id());
    }

    /// Sets this node's wall-clock offset (positive: ahead), in milliseconds; it holds
    /// across restarts until set back to 0.
    pub fn skew(&self, offset_ms: i64) {
        self.wall_offset_ms.store(offset_ms, Ordering::Relaxed);
        if let Some(c) = self
            .clock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            apply_offset(c, offset_ms);
        }
    }

    /// The maintenance counters of the process's latest incarnation, if it started.
    pub fn maintain_stats(&self) -> Option<maintain::MaintainStats> {
        self.maintainer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|m| m.stats())
    }

    /// Whether the last start of this node failed because a metadata file failed its
    /// integrity check (bit rot): the node stays down until replaced.
    pub fn refuses_its_disk(&self) -> bool {
        self.start_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .is_some_and(|e| e.contains("failed its integrity check"))
    }

    /// The running process's `MetaNode`, if it has started.
    pub fn node(&self) -> Option<Arc<MetaNode>> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs `fut` inside this node (its network identity), on its current incarnation (a
    /// `NodeHandle` captured before a restart spawns into the killed one).
    pub fn spawn<F>(&self, fut: F) -> madsim::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        madsim::runtime::Handle::current()
            .get_node(self.handle.id())
            .expect("simulated node exists")
            .spawn(fut)
    }

    /// Power loss: kill, crash the disk (unsynced writes lost or torn), restart.
    pub fn crash_restart(&self) {
        self.kill();
        self.restart();
    }

    /// Power loss without the restart: the process dies, its disk drops unsynced writes.
    pub fn kill(&self) {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
        madsim::runtime::Handle::current().kill(self.handle.id());
        self.disk.crash();
    }

    /// Starts the process again (after `kill`).
    pub fn restart(&self) {
        madsim::runtime::Handle::current().restart(self.handle.id());
    }
}
