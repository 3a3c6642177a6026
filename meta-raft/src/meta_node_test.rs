//! The clock a `MetaNode` is started with is the one its meta service reads wall time
//! from: the times it stamps into commands (`SetNodeState`, `SetDiskState`) carry the
//! clock's offset, and a skew changed while the node serves reaches them too.

use std::sync::Arc;
use std::time::Duration;

use common::cluster::{DiskInfo, DiskState, NodeInfo, NodeState};
use common::env::{BlockingRuntime, Clock, Disk, SimDisk, SimDiskFaults};
use common::ids::{DiskId, NodeId, RackId};

use crate::client::MetaClient;
use crate::config::{MemberConfig, MetaConfig};
use crate::meta_node::MetaNode;

const CLUSTER: &str = "meta-node-clock";
const HOUR_MS: u64 = 3_600_000;

fn free_addr() -> String {
    common::env::free_loopback_addr()
        .expect("free loopback address")
        .to_string()
}

/// Connects once the single node leads the root group and the group map is written.
async fn connect(addr: &str) -> MetaClient {
    let mut last = None;
    for _ in 0..100 {
        match MetaClient::connect(vec![addr.to_owned()], CLUSTER).await {
            Ok(c) => return c,
            Err(e) => last = Some(e),
        }
        Clock::new().sleep(Duration::from_millis(100)).await;
    }
    panic!("no meta service at {addr}: {last:?}");
}

/// Unskewed wall time.
fn real_ms() -> u64 {
    Clock::new().unix_ms()
}

#[test]
fn the_meta_service_stamps_commands_with_the_nodes_skewed_clock() {
    let rt = BlockingRuntime::new(2).expect("runtime");
    rt.block_on(async {
        let addr = free_addr();
        let config = MetaConfig {
            cluster_id: CLUSTER.into(),
            node_id: 1,
            listen: addr.clone(),
            data_dir: "/unused".into(),
            object_groups: 1,
            join: false,
            members: vec![MemberConfig {
                node_id: 1,
                addr: addr.clone(),
            }],
            maintain: Default::default(),
        };
        let disk: Arc<dyn Disk> = SimDisk::new(1, SimDiskFaults::default());
        // The node's clock runs an hour ahead; the test keeps a handle sharing its offset.
        let clock = Clock::new();
        clock.set_wall_offset(Duration::from_millis(HOUR_MS), true);
        let node = Arc::new(
            MetaNode::start(config, disk, clock.clone())
                .await
                .expect("start"),
        );
        assert_eq!(node.clock().wall_offset_ms(), 3_600_000);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = common::env::spawn("test-meta-node", {
            let node = Arc::clone(&node);
            async move {
                node.serve(async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
            }
        });
        let c = connect(&addr).await;

        let info = NodeInfo {
            id: NodeId(7),
            rack: RackId("r1".into()),
            addr: "127.0.0.1:9".into(),
            state: NodeState::Up,
            disks: vec![DiskInfo {
                id: DiskId(0),
                state: DiskState::Healthy,
                capacity_bytes: 100,
                used_bytes: 1,
            }],
        };
        c.register_node(&info, 1).await.expect("register");

        // `SetNodeState` is stamped by the service: an hour ahead of real time.
        let before = real_ms();
        c.set_node_state(NodeId(7), NodeState::Draining, "maintenance")
            .await
            .expect("set node state");
        let after = real_ms();
        let nodes = c.nodes().await.expect("nodes");
        let stamped = nodes[0].state_changed_ms;
        assert!(
            (before + HOUR_MS..=after + HOUR_MS).contains(&stamped),
            "state_changed_ms {stamped} is not an hour ahead of [{before}, {after}]"
        );

        // The skew changes while the node serves (as the simulator's `skew` does): the
        // service follows it. Now two hours behind.
        clock.set_wall_offset(Duration::from_millis(2 * HOUR_MS), false);
        let before = real_ms();
        c.set_disk_state(NodeId(7), DiskId(0), DiskState::Failed, "bad sectors")
            .await
            .expect("set disk state");
        let after = real_ms();
        let nodes = c.nodes().await.expect("nodes");
        let stamped = nodes[0].failed_disks[&DiskId(0)].at_ms;
        assert!(
            (before - 2 * HOUR_MS..=after - 2 * HOUR_MS).contains(&stamped),
            "disk failure at_ms {stamped} is not two hours behind [{before}, {after}]"
        );

        let _ = stop.send(());
        server.await.expect("server task");
    });
}
