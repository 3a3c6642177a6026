//! Metadata-plane throughput: three replicas in one process on loopback gRPC, each on its
//! own real disk folder (fsync on), the production state machine.
//!
//! Measures PutObject commits/s and barrier reads/s (ReadIndex + point read) for one
//! group and for four groups, at concurrency 1 and 64, and the time to list 10,000 keys
//! in pages of 1,000. Run: `cargo bench -p meta-raft --bench meta_commit`.
//! Benches may read the raw clock (the determinism rule is for library code).
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::env::{Disk, RealDisk};
use common::ids::GroupId;
use meta_raft::network::{RaftGrpc, RAFT_MESSAGE_BYTES_MAX};
use meta_raft::state_machine::{
    get_bucket, head_object, list_objects, Command, ListObjectsParams, ObjectBody, ObjectMeta,
    PutObject, Response, Versioning,
};
use meta_raft::types::{MetaGroupHost, MetaRaft};
use openraft::raft::ReadPolicy;
use proto::raft::raft_service_server::RaftServiceServer;
use redb::ReadableDatabase;

const CLUSTER: &str = "bench";

struct Cluster {
    hosts: BTreeMap<u64, Arc<MetaGroupHost>>,
    _dirs: Vec<std::path::PathBuf>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for d in &self._dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

async fn cluster(groups: u64) -> Cluster {
    let addrs: BTreeMap<u64, SocketAddr> = (1..=3)
        .map(|id| {
            (
                id,
                common::env::free_loopback_addr().expect("free loopback address"),
            )
        })
        .collect();
    let members: BTreeMap<u64, String> = addrs.iter().map(|(i, a)| (*i, a.to_string())).collect();
    let mut hosts = BTreeMap::new();
    let mut dirs = Vec::new();
    for (id, addr) in &addrs {
        let dir = std::env::temp_dir().join(format!(
            "shale-bench-meta-{}-{id}-{groups}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let disk: Arc<dyn Disk> = Arc::new(RealDisk::open(&dir).unwrap());
        dirs.push(dir);
        let host = Arc::new(MetaGroupHost::new(*id, CLUSTER, disk).unwrap());
        let svc =
            RaftServiceServer::new(RaftGrpc::new(Arc::clone(host.registry()), CLUSTER.into()))
                .max_decoding_message_size(RAFT_MESSAGE_BYTES_MAX);
        let addr = *addr;
        common::env::spawn("bench-raft-server", async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve(addr)
                .await;
        });
        for g in 1..=groups {
            host.bootstrap(GroupId(g), &members).await.unwrap();
        }
        hosts.insert(*id, host);
    }
    Cluster { hosts, _dirs: dirs }
}

async fn leader(c: &Cluster, g: GroupId) -> (Arc<MetaGroupHost>, MetaRaft) {
    let any = c.hosts.values().next().unwrap().registry().get(g).unwrap();
    let m = any
        .wait(Some(Duration::from_secs(30)))
        .metrics(|m| m.current_leader.is_some(), "leader")
        .await
        .unwrap();
    let host = Arc::clone(&c.hosts[&m.current_leader.unwrap()]);
    let raft = host.registry().get(g).unwrap();
    (host, raft)
}

async fn commit(raft: &MetaRaft, cmd: Command) {
    for _ in 0..100 {
        if let Ok(r) = raft.client_write(cmd.clone()).await {
            assert!(!matches!(r.data, Response::Rejected(_)), "{}", r.data);
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("commit never succeeded");
}

fn put(key: String) -> Command {
    Command::PutObject(PutObject {
        bucket: "bench".into(),
        key,
        version_id: "null".into(),
        created_ms: 1,
        owner: "bench".into(),
        size: 100,
        etag: "0123456789abcdef0123456789abcdef".into(),
        checksums: BTreeMap::new(),
        meta: ObjectMeta::default(),
        body: ObjectBody::Inline(vec![7u8; 100]),
        preconditions: vec![],
    })
}

async fn setup(c: &Cluster, groups: u64) -> Vec<(Arc<MetaGroupHost>, MetaRaft)> {
    let mut leaders = Vec::new();
    for g in 1..=groups {
        let (h, r) = leader(c, GroupId(g)).await;
        commit(
            &r,
            Command::CreateBucket {
                name: "bench".into(),
                owner: "bench".into(),
                created_ms: 1,
                versioning: Versioning::Unversioned,
            },
        )
        .await;
        leaders.push((h, r));
    }
    leaders
}

/// `total` commits spread over `concurrency` tasks and the groups' leaders.
async fn commits(
    leaders: &[(Arc<MetaGroupHost>, MetaRaft)],
    concurrency: usize,
    total: usize,
    tag: &str,
) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let raft = leaders[t % leaders.len()].1.clone();
        let n = total / concurrency;
        let tag = tag.to_string();
        tasks.push(common::env::spawn("bench-writer", async move {
            for i in 0..n {
                commit(&raft, put(format!("{tag}/{t:03}/{i:06}"))).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

async fn reads(
    leaders: &[(Arc<MetaGroupHost>, MetaRaft)],
    concurrency: usize,
    total: usize,
    g0: u64,
) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let (host, raft) = leaders[t % leaders.len()].clone();
        let group = GroupId(g0 + (t % leaders.len()) as u64);
        let n = total / concurrency;
        tasks.push(common::env::spawn("bench-reader", async move {
            for _ in 0..n {
                raft.ensure_linearizable(ReadPolicy::ReadIndex)
                    .await
                    .unwrap();
                let sm = host.state_machine(group).unwrap();
                let txn = sm.database().begin_read().unwrap();
                assert!(get_bucket(&txn, "bench").unwrap().is_some());
                let _ = head_object(&txn, "bench", "c1/000/000000").unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("| groups | concurrency | commits/s | barrier reads/s |");
        println!("|---:|---:|---:|---:|");
        for groups in [1u64, 4] {
            let c = cluster(groups).await;
            let leaders = setup(&c, groups).await;
            let c1 = commits(&leaders, 1, 300, "c1").await;
            let r1 = reads(&leaders, 1, 2000, 1).await;
            let c64 = commits(&leaders, 64, 6400, "c64").await;
            let r64 = reads(&leaders, 64, 12800, 1).await;
            println!("| {groups} | 1 | {c1:.0} | {r1:.0} |");
            println!("| {groups} | 64 | {c64:.0} | {r64:.0} |");
            if groups == 1 {
                // 10,000 keys in pages of 1,000, each page behind a barrier.
                // 300 + 6,400 so far; 3,300 more makes 10,000.
                let _ = commits(&leaders, 50, 3300, "fill").await;
                let (host, raft) = leaders[0].clone();
                let start = Instant::now();
                let mut listed = 0usize;
                let mut after: Option<String> = None;
                loop {
                    raft.ensure_linearizable(ReadPolicy::ReadIndex)
                        .await
                        .unwrap();
                    let sm = host.state_machine(GroupId(1)).unwrap();
                    let txn = sm.database().begin_read().unwrap();
                    let page = list_objects(
                        &txn,
                        "bench",
                        &ListObjectsParams {
                            prefix: String::new(),
                            delimiter: None,
                            start_after: after.clone(),
                            max_keys: 1000,
                            end_before: None,
                        },
                    )
                    .unwrap();
                    listed += page.entries.len();
                    if !page.is_truncated {
                        break;
                    }
                    after = page.next.clone();
                }
                println!();
                println!(
                    "list: {listed} keys in pages of 1000: {:.1} ms",
                    start.elapsed().as_secs_f64() * 1e3
                );
                println!();
            }
            for h in c.hosts.values() {
                h.shutdown().await;
            }
        }
    });
}
