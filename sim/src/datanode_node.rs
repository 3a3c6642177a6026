//! A simulated data node: a madsim node running the production `Datanode` and its gRPC
//! service on `SimDisk`s that the harness keeps across restarts.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use common::env::{Disk, Env, SimDisk, SimDiskFaults};
use common::ids::{DiskId, NodeId, RackId};
use datanode::{Datanode, StoreConfig};

pub const DATANODE_PORT: u16 = 7100;

/// One simulated data node and the disks that outlive its process.
pub struct SimDatanode {
    pub handle: madsim::runtime::NodeHandle,
    pub addr: SocketAddr,
    pub disks: Vec<Arc<SimDisk>>,
}

impl SimDatanode {
    /// Creates the node; its process (re)opens the stores and serves on every (re)start.
    pub fn start(env: &Env, id: NodeId, rack: &str, ip: IpAddr, disk_count: u32) -> Self {
        let disks: Vec<Arc<SimDisk>> = (0..disk_count)
            .map(|_| SimDisk::new(env.random_u64(), SimDiskFaults::default()))
            .collect();
        let addr = SocketAddr::new(ip, DATANODE_PORT);
        let node_env = env.fork();
        let rack = RackId(rack.to_string());
        let init_disks = disks.clone();
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
                    .map(|(i, d)| {
                        let disk: Arc<dyn Disk> = d.clone();
                        (DiskId(i as u32), disk, StoreConfig::default())
                    })
                    .collect();
                async move {
                    let node = Datanode::open(env, id, rack, disks).expect("stores open");
                    datanode::service::serve(Arc::new(node), addr, std::future::pending())
                        .await
                        .expect("serve");
                }
            })
            .build();
        Self {
            handle,
            addr,
            disks,
        }
    }

    /// Power loss: kill the process, crash its disks (unsynced writes lost or torn),
    /// start it again.
    pub fn crash_restart(&self) {
        let rt = madsim::runtime::Handle::current();
        rt.kill(self.handle.id());
        for d in &self.disks {
            d.crash();
        }
        rt.restart(self.handle.id());
    }
}
