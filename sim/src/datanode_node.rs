//! A simulated data node: a madsim node running the production `Datanode` and its gRPC
//! service on `SimDisk`s that the harness keeps across restarts.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::{DiskInfo, DiskState};
use common::env::{Disk, Env, SimDisk, SimDiskFaults};
use common::ids::{DiskId, NodeId, RackId};
use datanode::{Datanode, ScrubConfig, StoreConfig};
use meta_raft::client::MetaClient;

pub const DATANODE_PORT: u16 = 7100;

/// Between two heartbeats of a simulated data node.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// The scrubber of a simulated data node: a pass every 10 s of virtual time (the first
/// 10 s after each start) at 128 KiB/s — every fragment is re-verified a few times per
/// scenario, at a pace that leaves the workload's disk time alone.
pub fn sim_scrub() -> ScrubConfig {
    ScrubConfig {
        interval: Duration::from_secs(10),
        bytes_per_sec: 128 << 10,
    }
}

/// Heartbeats `node`'s disk usage to the root group forever. A heartbeat before the
/// node is registered is refused; it simply tries again next time.
async fn heartbeat(env: Env, meta: Vec<String>, node: Arc<Datanode>) {
    let client = loop {
        match MetaClient::connect(meta.clone(), "sim").await {
            Ok(c) => break c,
            Err(_) => env.clock().sleep(HEARTBEAT_EVERY).await,
        }
    };
    loop {
        env.clock().sleep(HEARTBEAT_EVERY).await;
        let disks: Vec<DiskInfo> = node
            .usage()
            .into_iter()
            .map(|u| DiskInfo {
                id: u.disk,
                state: DiskState::Healthy,
                capacity_bytes: u.capacity_bytes,
                used_bytes: u.used_bytes,
            })
            .collect();
        let _ = client
            .heartbeat(node.node_id(), env.clock().unix_ms(), &disks)
            .await;
    }
}

/// One simulated data node and the disks that outlive its process.
pub struct SimDatanode {
    pub handle: madsim::runtime::NodeHandle,
    pub addr: SocketAddr,
    pub disks: Vec<Arc<SimDisk>>,
    /// The node's environment (shared by every incarnation): its clock dates the
    /// heartbeats, damage reports and scrub passes, so `skew` moves them.
    pub env: Env,
    /// Why process starts failed (the stores did not open). A failed start is retried a
    /// second later, as a supervisor would.
    pub start_errors: Arc<Mutex<Vec<String>>>,
}

impl SimDatanode {
    /// Creates the node; its process (re)opens the stores and serves on every (re)start.
    pub fn start(env: &Env, id: NodeId, rack: &str, ip: IpAddr, disk_count: u32) -> Self {
        let disks: Vec<Arc<SimDisk>> = (0..disk_count)
            .map(|_| SimDisk::new(env.random_u64(), SimDiskFaults::default()))
            .collect();
        let served = disks.iter().map(|d| d.clone() as Arc<dyn Disk>).collect();
        Self::start_on(env, id, rack, ip, disks, served, Vec::new())
    }

    /// Like `start`, on given disks: `disks` are crashed on power loss, `served` (the
    /// same disks, possibly wrapped, e.g. by a planted bug) are what the node uses. With
    /// `meta` seeds, the process heartbeats to the metadata plane every
    /// [`HEARTBEAT_EVERY`] (as `shale datanode` does), so the failure detector sees it.
    pub fn start_on(
        env: &Env,
        id: NodeId,
        rack: &str,
        ip: IpAddr,
        disks: Vec<Arc<SimDisk>>,
        served: Vec<Arc<dyn Disk>>,
        meta: Vec<String>,
    ) -> Self {
        let addr = SocketAddr::new(ip, DATANODE_PORT);
        let node_env = env.fork();
        let skew_env = node_env.clone();
        let rack = RackId(rack.to_string());
        let init_disks = served;
        let start_errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let errors = Arc::clone(&start_errors);
        let handle = madsim::runtime::Handle::current()
            .create_node()
            .name(format!("datanode-{id}"))
            .ip(ip)
            .init(move || {
                let env = node_env.clone();
                let rack = rack.clone();
                let disks: Vec<(DiskId, Arc<dyn Disk>, StoreConfig)> = init_disks
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (DiskId(i as u32), Arc::clone(d), StoreConfig::default()))
                    .collect();
                let errors = Arc::clone(&errors);
                let meta = meta.clone();
                async move {
                    let node = loop {
                        match Datanode::open(env.clone(), id, rack.clone(), disks.clone()) {
                            Ok(node) => break node.with_scrub(sim_scrub()),
                            Err(e) => {
                                errors
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(e.to_string());
                                env.clock().sleep(Duration::from_secs(1)).await;
                            }
                        }
                    };
                    let node = Arc::new(node);
                    let _heartbeat = (!meta.is_empty()).then(|| {
                        env.spawn(
                            "sim-heartbeat",
                            heartbeat(env.clone(), meta, Arc::clone(&node)),
                        )
                    });
                    datanode::service::serve(node, addr, std::future::pending())
                        .await
                        .expect("serve");
                }
            })
            .build();
        Self {
            handle,
            addr,
            disks,
            env: skew_env,
            start_errors,
        }
    }

    /// Sets this node's wall-clock offset (positive: ahead), in milliseconds.
    pub fn skew(&self, offset_ms: i64) {
        self.env.clock().set_wall_offset(
            Duration::from_millis(offset_ms.unsigned_abs()),
            offset_ms >= 0,
        );
    }

    /// Power loss: kill the process, crash its disks (unsynced writes lost or torn),
    /// start it again.
    pub fn crash_restart(&self) {
        self.kill();
        self.restart();
    }

    /// Power loss without the restart: the process dies, its disks drop unsynced writes.
    pub fn kill(&self) {
        madsim::runtime::Handle::current().kill(self.handle.id());
        for d in &self.disks {
            d.crash();
        }
    }

    /// Starts the process again (after `kill`).
    pub fn restart(&self) {
        madsim::runtime::Handle::current().restart(self.handle.id());
    }
}
