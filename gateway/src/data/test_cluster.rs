//! Test support: real data nodes (`datanode::Datanode` + its gRPC service) on loopback
//! ports over temporary directories, with a cluster map that names them, plus helpers to
//! stop nodes, corrupt fragments on disk and count stored fragments.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::cluster::{ClusterMap, DiskInfo, DiskState, NodeInfo, NodeState};
use common::codec::{CodecId, CodecParams};
use common::env::{Disk, Env, JoinHandle, RealDisk};
use common::ids::{DiskId, FragmentId, NodeId, RackId};
use datanode::{Datanode, StoreConfig};
use proto::datanode as pb;
use proto::datanode::datanode_service_client::DatanodeServiceClient;
use tonic::transport::Channel;

use super::{DataConfig, DataPlane, StaticTopology};

pub const CAPACITY: u64 = 1 << 40;

pub fn rt() -> common::env::BlockingRuntime {
    common::env::BlockingRuntime::new(2).expect("runtime")
}

pub fn params(k: u8, m: u8) -> CodecParams {
    CodecParams::new(CodecId::ReedSolomonSimd, k, m).expect("codec params")
}

/// Deterministic test bytes.
pub fn bytes_of(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("shale-gw-data-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        Self(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct TestNode {
    addr: SocketAddr,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

pub struct TestCluster {
    nodes: BTreeMap<NodeId, TestNode>,
    pub topology: Arc<StaticTopology>,
    env: Env,
    _root: TempDir,
}

fn free_addr() -> SocketAddr {
    common::env::free_loopback_addr().expect("free loopback address")
}

impl TestCluster {
    /// `racks` racks of `per_rack` nodes with one disk each; node ids `1..`, racks `r0..`.
    pub async fn start(racks: usize, per_rack: usize) -> Self {
        let root = TempDir::new("cluster");
        let env = Env::seeded(7);
        let mut map = ClusterMap::new();
        let mut nodes = BTreeMap::new();
        for r in 0..racks {
            for i in 0..per_rack {
                let id = NodeId((r * per_rack + i + 1) as u64);
                let rack = RackId(format!("r{r}"));
                let dir = root.path().join(format!("node-{}", id.0));
                std::fs::create_dir_all(&dir).expect("node dir");
                let disk: Arc<dyn Disk> = Arc::new(RealDisk::open(&dir).expect("open disk"));
                let store = StoreConfig {
                    capacity_bytes: CAPACITY,
                    ..StoreConfig::default()
                };
                let node =
                    Datanode::open(env.fork(), id, rack.clone(), vec![(DiskId(0), disk, store)])
                        .expect("open datanode");
                let addr = free_addr();
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let server = common::env::spawn("test-datanode", async move {
                    let _ = datanode::service::serve(Arc::new(node), addr, async {
                        let _ = rx.await;
                    })
                    .await;
                });
                map.insert_node(NodeInfo {
                    id,
                    rack,
                    addr: addr.to_string(),
                    state: NodeState::Up,
                    disks: vec![DiskInfo {
                        id: DiskId(0),
                        state: DiskState::Healthy,
                        capacity_bytes: CAPACITY,
                        used_bytes: 0,
                    }],
                });
                nodes.insert(
                    id,
                    TestNode {
                        addr,
                        dir,
                        stop: Some(tx),
                        server: Some(server),
                    },
                );
            }
        }
        let cluster = Self {
            nodes,
            topology: Arc::new(StaticTopology::new(map)),
            env,
            _root: root,
        };
        for id in cluster.node_ids() {
            cluster.wait_ready(id).await;
        }
        cluster
    }

    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    pub fn plane(&self, cfg: DataConfig) -> DataPlane {
        DataPlane::new(self.env.fork(), cfg, self.topology.clone())
    }

    async fn wait_ready(&self, id: NodeId) {
        for _ in 0..500 {
            if let Some(mut c) = self.client(id).await {
                if c.health(pb::HealthRequest {}).await.is_ok() {
                    return;
                }
            }
            self.env.clock().sleep(Duration::from_millis(10)).await;
        }
        panic!("data node {id} did not come up");
    }

    async fn client(&self, id: NodeId) -> Option<DatanodeServiceClient<Channel>> {
        let addr = self.nodes.get(&id)?.addr;
        DatanodeServiceClient::connect(format!("http://{addr}"))
            .await
            .ok()
    }

    /// Stops a node's server (its fragments stay on disk).
    pub async fn stop(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        if let Some(tx) = node.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = node.server.take() {
            let _ = self
                .env
                .clock()
                .timeout(Duration::from_secs(10), server)
                .await;
        }
    }

    /// Fragments stored on a node (ListFragments on its disk).
    pub async fn fragments(&self, id: NodeId) -> Vec<FragmentId> {
        let mut c = self.client(id).await.expect("node is running");
        let reply = c
            .list_fragments(pb::ListFragmentsRequest {
                disk: 0,
                after: None,
                limit: 10_000,
            })
            .await
            .expect("list")
            .into_inner();
        assert!(!reply.truncated);
        reply
            .fragments
            .iter()
            .map(|f| FragmentId::try_from(f.id.as_ref().expect("id")).expect("valid id"))
            .collect()
    }

    /// Total fragments on all running nodes.
    pub async fn fragment_count(&self) -> usize {
        let mut n = 0;
        for (id, node) in &self.nodes {
            if node.server.is_some() {
                n += self.fragments(*id).await.len();
            }
        }
        n
    }

    /// Flips a payload byte of a stored fragment file (the data node must then refuse it
    /// as corrupt).
    pub fn corrupt(&self, node: NodeId, id: FragmentId) {
        let hex = id.stripe.to_string();
        let path = self.nodes[&node]
            .dir
            .join("frags")
            .join(&hex[..2])
            .join(format!("{}.{}", id.stripe, id.index));
        let mut bytes = std::fs::read(&path).expect("fragment file");
        let at = 64 + 1; // the first block's payload, after the 64-byte header
        assert!(bytes.len() > at, "fragment file too short to corrupt");
        bytes[at] ^= 0xFF;
        std::fs::write(&path, bytes).expect("write corrupted fragment");
    }

    pub async fn shutdown(mut self) {
        for id in self.node_ids() {
            self.stop(id).await;
        }
    }
}

/// Writes `data` through a writer in `chunk`-byte pieces; the stripes to commit.
pub async fn write_object(
    plane: &DataPlane,
    params: CodecParams,
    data: &[u8],
    chunk: usize,
) -> Result<Vec<meta_raft::state_machine::StripeRecord>, super::DataError> {
    let mut w = plane.writer(params);
    for piece in data.chunks(chunk.max(1)) {
        if let Err(e) = w.write(bytes::Bytes::copy_from_slice(piece)).await {
            w.abort().await;
            return Err(e);
        }
    }
    assert_eq!(w.bytes_written(), data.len() as u64);
    w.finish().await
}

/// Reads `range` of `body` to the end of the stream.
pub async fn read_all(
    plane: &DataPlane,
    body: &meta_raft::state_machine::ObjectBody,
    range: std::ops::Range<u64>,
) -> Result<Vec<u8>, super::DataError> {
    use futures::StreamExt;
    let mut s = plane.read(body, range);
    let mut out = Vec::new();
    while let Some(piece) = s.next().await {
        out.extend_from_slice(&piece?);
    }
    Ok(out)
}

pub fn striped(
    params: CodecParams,
    stripes: Vec<meta_raft::state_machine::StripeRecord>,
) -> meta_raft::state_machine::ObjectBody {
    meta_raft::state_machine::ObjectBody::Stripes {
        codec: params,
        stripes,
    }
}
