//! A data node started with `meta = [...]` in its config registers itself in the root
//! group's cluster map (address, rack, disks) and then heartbeats its disk usage, so
//! gateways place fragments on it without any manual step.

use std::sync::Arc;
use std::time::Duration;

use common::cluster::{DiskInfo, DiskState, NodeInfo, NodeState};
use common::env::Env;
use common::ids::{NodeId, RackId};
use datanode::Datanode;
use meta_raft::client::MetaClient;

/// Interval between heartbeats.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

fn disks(node: &Datanode) -> Vec<DiskInfo> {
    node.usage()
        .into_iter()
        .map(|u| DiskInfo {
            id: u.disk,
            state: DiskState::Healthy,
            capacity_bytes: u.capacity_bytes,
            used_bytes: u.used_bytes,
        })
        .collect()
}

/// Registers `node` and heartbeats forever (until the task is dropped). Failures are
/// logged and retried: the metadata plane may be electing or briefly unreachable.
pub async fn register_and_heartbeat(
    env: Env,
    meta: MetaClient,
    node: Arc<Datanode>,
    id: u64,
    rack: String,
    addr: String,
) {
    let info = NodeInfo {
        id: NodeId(id),
        rack: RackId(rack),
        addr,
        state: NodeState::Up,
        disks: disks(&node),
    };
    loop {
        match meta.register_node(&info, env.clock().unix_ms()).await {
            Ok(()) => {
                tracing::info!(node = id, "registered with the metadata plane");
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "registering with the metadata plane; retrying");
                env.clock().sleep(Duration::from_secs(1)).await;
            }
        }
    }
    heartbeat_forever(env, meta, node, id).await
}

/// Heartbeats a registered node's disk usage every [`HEARTBEAT_EVERY`] forever (until
/// the task is dropped). The root leader's failure detector marks a node Down when its
/// heartbeats stop, and Up again when they resume.
pub async fn heartbeat_forever(env: Env, meta: MetaClient, node: Arc<Datanode>, id: u64) {
    loop {
        env.clock().sleep(HEARTBEAT_EVERY).await;
        if let Err(e) = meta
            .heartbeat(NodeId(id), env.clock().unix_ms(), &disks(&node))
            .await
        {
            tracing::warn!(error = %e, "heartbeat failed");
        }
    }
}
