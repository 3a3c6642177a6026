//! Data path throughput: in-process PUT and GET of 64 MiB (8+4, 4 MiB stripes) through
//! 12 local data nodes (4 racks of 3) on real disks under the temp dir, printing MiB/s.
//! Not a timed test: `cargo bench -p gateway --bench data_path --ignore-rust-version`.
//! Fragment writes are fsynced, so PUT speed depends on the disk under the temp dir.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::cluster::{ClusterMap, DiskInfo, DiskState, NodeInfo, NodeState};
use common::codec::DEFAULT_PARAMS;
use common::env::{Clock, Disk, Env, RealDisk};
use common::ids::{DiskId, NodeId, RackId};
use datanode::{Datanode, StoreConfig};
use futures::StreamExt;
use gateway::data::{DataConfig, DataPlane, StaticTopology};
use meta_raft::state_machine::ObjectBody;

const OBJECT: usize = 64 << 20;
const ROUNDS: usize = 3;

fn main() {
    let rt = common::env::BlockingRuntime::new(2).expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let root: PathBuf =
        std::env::temp_dir().join(format!("shale-bench-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let env = Env::seeded(1);
    let clock = Clock::new();
    let mut map = ClusterMap::new();
    let mut stops = Vec::new();
    for n in 0..12u64 {
        let id = NodeId(n + 1);
        let rack = RackId(format!("r{}", n % 4));
        let dir = root.join(format!("node-{}", id.0));
        std::fs::create_dir_all(&dir).expect("dir");
        let disk: Arc<dyn Disk> = Arc::new(RealDisk::open(&dir).expect("disk"));
        let node = Datanode::open(
            env.fork(),
            id,
            rack.clone(),
            vec![(DiskId(0), disk, StoreConfig::default())],
        )
        .expect("datanode");
        let addr: SocketAddr = common::env::free_loopback_addr().expect("port");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = common::env::spawn("bench-datanode", async move {
            let _ = datanode::service::serve(Arc::new(node), addr, async {
                let _ = rx.await;
            })
            .await;
        });
        stops.push((tx, server));
        map.insert_node(NodeInfo {
            id,
            rack,
            addr: addr.to_string(),
            state: NodeState::Up,
            disks: vec![DiskInfo {
                id: DiskId(0),
                state: DiskState::Healthy,
                capacity_bytes: 1 << 40,
                used_bytes: 0,
            }],
        });
    }
    clock.sleep(Duration::from_millis(300)).await;
    let topology = Arc::new(StaticTopology::new(map));
    let data: Vec<u8> = (0..OBJECT)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let data = Bytes::from(data);
    println!(
        "data path: {} MiB objects, {DEFAULT_PARAMS}, 4 MiB stripes, 12 local data nodes",
        OBJECT >> 20
    );
    let configs = [
        (
            "default (codec on the blocking pool)",
            DataConfig::default(),
        ),
        (
            "codec inline on the task",
            DataConfig {
                blocking_codec_bytes: usize::MAX,
                ..DataConfig::default()
            },
        ),
    ];
    for (name, cfg) in configs {
        println!("config: {name}");
        let plane = DataPlane::new(env.fork(), cfg, topology.clone());
        rounds(&plane, &clock, &data).await;
    }
    for (tx, server) in stops {
        let _ = tx.send(());
        let _ = clock.timeout(Duration::from_secs(10), server).await;
    }
    let _ = std::fs::remove_dir_all(&root);
}

async fn rounds(plane: &DataPlane, clock: &Clock, data: &Bytes) {
    for round in 0..ROUNDS {
        // PUT: the body arrives in 64 KiB chunks, as from an HTTP body.
        let start = clock.now();
        let mut w = plane.writer(DEFAULT_PARAMS);
        let mut pos = 0;
        while pos < data.len() {
            let end = (pos + (64 << 10)).min(data.len());
            w.write(data.slice(pos..end)).await.expect("write");
            pos = end;
        }
        let stripes = w.finish().await.expect("finish");
        let put = clock.now().duration_since(start);
        let body = ObjectBody::Stripes {
            codec: DEFAULT_PARAMS,
            stripes: stripes.clone(),
        };
        let start = clock.now();
        let mut s = plane.read(&body, 0..OBJECT as u64);
        let mut n = 0usize;
        while let Some(piece) = s.next().await {
            n += piece.expect("read").len();
        }
        let get = clock.now().duration_since(start);
        assert_eq!(n, OBJECT);
        let mib = (OBJECT >> 20) as f64;
        println!(
            "  round {round}: PUT {:.0} MiB/s ({:.0} ms), GET {:.0} MiB/s ({:.0} ms)",
            mib / put.as_secs_f64(),
            put.as_secs_f64() * 1e3,
            mib / get.as_secs_f64(),
            get.as_secs_f64() * 1e3
        );
        plane.delete_stripes(&stripes).await;
    }
}
