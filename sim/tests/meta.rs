//! The metadata plane inside madsim: three production meta nodes on `SimDisk`s.
//!
//! - A leader isolated by a partition cannot pass the read barrier (its reads would be
//!   stale), while the majority elects a new leader whose barrier passes and whose writes
//!   commit; after healing, every replica converges.
//! - Nodes lose power again and again (their disks drop unsynced writes); no acknowledged
//!   write is ever lost.
//! - A replica that was down while the others snapshotted and purged their logs catches
//!   up through a snapshot sent in many small chunks (chunked transfer over madsim's
//!   network), then holds exactly the leader's state.
//! - The same seed gives the same trace.
#![cfg(madsim)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::env::{Disk, SimDisk, SimDiskFaults};
use meta_raft::group_host::raft_config;
use meta_raft::meta_node::ROOT_GROUP;
use meta_raft::network::{RaftGrpc, RAFT_MESSAGE_BYTES_MAX};
use meta_raft::snapshot_receiver::{SnapshotReceiveStats, SnapshotReceiver};
use meta_raft::state_machine::{access_keys, AccessKey, Command, Response, RootCommand};
use meta_raft::types::{GroupConfig, MetaGroupHost, MetaRaft};
use openraft::raft::ReadPolicy;
use openraft::rt::WatchReceiver;
use proto::raft::raft_service_server::RaftServiceServer;
use redb::ReadableDatabase;
use sim::meta_node::{meta_config, SimMetaNode};

fn ips() -> Vec<IpAddr> {
    (1..=3)
        .map(|i| format!("10.0.2.{i}").parse().unwrap())
        .collect()
}

fn cluster(seed: u64) -> Vec<SimMetaNode> {
    let ips = ips();
    (1..=3u64)
        .map(|id| SimMetaNode::start(meta_config(id, &ips, 2), seed ^ id))
        .collect()
}

fn root(n: &SimMetaNode) -> Option<MetaRaft> {
    n.node()?.root()
}

/// A running node that leads the root group and that the other running replicas agree
/// on (bounded wait). `exclude` skips an isolated node that may still think it leads.
async fn leader(nodes: &[SimMetaNode], exclude: Option<u64>) -> u64 {
    for _ in 0..200 {
        let mut views = Vec::new();
        for n in nodes.iter().filter(|n| Some(n.id) != exclude) {
            if let Some(r) = root(n) {
                views.push((n.id, r.current_leader().await));
            }
        }
        let claimed = views
            .iter()
            .find(|(id, l)| *l == Some(*id))
            .map(|(id, _)| *id);
        if let Some(l) = claimed {
            if views.iter().all(|(_, v)| v.is_none() || *v == Some(l)) {
                return l;
            }
        }
        madsim::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no agreed root leader within 20 s");
}

fn key(i: u32) -> AccessKey {
    AccessKey {
        id: format!("AK{i:04}"),
        secret: format!("secret-{i}"),
        user: "u".into(),
        created_ms: u64::from(i),
    }
}

/// One write through the current leader, from inside its node. `true` = acknowledged.
async fn write_once(nodes: &[SimMetaNode], exclude: Option<u64>, i: u32) -> bool {
    let l = leader(nodes, exclude).await;
    let n = &nodes[l as usize - 1];
    let Some(raft) = root(n) else { return false };
    let cmd = Command::Root(RootCommand::CreateAccessKey(key(i)));
    n.spawn(async move {
        matches!(
            madsim::time::timeout(Duration::from_secs(5), raft.client_write(cmd)).await,
            Ok(Ok(r)) if r.data == Response::Empty
        )
    })
    .await
    .unwrap_or(false)
}

/// A write that must succeed: retried (bounded) while a fresh leader cannot commit yet.
async fn write(nodes: &[SimMetaNode], exclude: Option<u64>, i: u32) -> bool {
    for _ in 0..10 {
        if write_once(nodes, exclude, i).await {
            return true;
        }
        madsim::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Reads every access key through the leader's barrier, retrying (bounded) while
/// leadership moves.
async fn read_all(nodes: &[SimMetaNode]) -> Vec<String> {
    for _ in 0..20 {
        let l = leader(nodes, None).await;
        let n = &nodes[l as usize - 1];
        let Some(node) = n.node() else { continue };
        let res = n
            .spawn(async move {
                let raft = node.root().ok_or("no root group")?;
                raft.ensure_linearizable(ReadPolicy::ReadIndex)
                    .await
                    .map_err(|_| "barrier refused")?;
                let sm = node
                    .host()
                    .state_machine(ROOT_GROUP)
                    .ok_or("no state machine")?;
                let txn = sm.database().begin_read().map_err(|_| "read txn")?;
                let keys = access_keys(&txn).map_err(|_| "query")?;
                Ok::<Vec<String>, &'static str>(keys.into_iter().map(|k| k.id).collect())
            })
            .await;
        match res {
            Ok(Ok(ids)) => return ids,
            other => eprintln!("read via leader {l} failed: {other:?}"),
        }
        madsim::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no linearizable read succeeded in 20 attempts");
}

async fn partition_scenario(seed: u64) -> Vec<String> {
    let nodes = cluster(seed);
    let mut trace = Vec::new();
    for i in 0..5 {
        assert!(
            write(&nodes, None, i).await,
            "write {i} before the partition"
        );
    }
    let old = leader(&nodes, None).await;
    trace.push(format!("leader {old}"));
    let net = madsim::net::NetSim::current();
    net.clog_node(nodes[old as usize - 1].handle.id());

    // The isolated leader must not pass the barrier.
    let isolated = &nodes[old as usize - 1];
    let raft = root(isolated).unwrap();
    let barrier = isolated
        .spawn(async move {
            madsim::time::timeout(
                Duration::from_secs(5),
                raft.ensure_linearizable(ReadPolicy::ReadIndex),
            )
            .await
        })
        .await
        .unwrap();
    assert!(
        !matches!(barrier, Ok(Ok(_))),
        "an isolated leader passed the read barrier"
    );
    trace.push("isolated barrier refused".into());

    // The majority moves on.
    let new = leader(&nodes, Some(old)).await;
    assert_ne!(new, old);
    trace.push(format!("new leader {new}"));
    for i in 5..10 {
        assert!(
            write(&nodes, Some(old), i).await,
            "write {i} on the majority side"
        );
    }
    net.unclog_node(nodes[old as usize - 1].handle.id());
    let ids = read_all(&nodes).await;
    assert_eq!(ids, (0..10).map(|i| key(i).id).collect::<Vec<_>>());

    // Replicas converge: each one's applied state has all ten keys.
    for n in &nodes {
        let node = n.node().unwrap();
        let raft = node.root().unwrap();
        let target = root(&nodes[new as usize - 1]).unwrap().metrics();
        let want = {
            use openraft::rt::WatchReceiver;
            target.borrow_watched().last_applied.map(|l| l.index)
        };
        raft.wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(want, "converge")
            .await
            .unwrap();
        let sm = node.host().state_machine(ROOT_GROUP).unwrap();
        let txn = sm.database().begin_read().unwrap();
        assert_eq!(
            access_keys(&txn).unwrap().len(),
            10,
            "replica {} converged",
            n.id
        );
    }
    trace
}

async fn crash_scenario(seed: u64) -> Vec<String> {
    let nodes = std::sync::Arc::new(cluster(seed));
    let mut acked = Vec::new();
    let mut trace = Vec::new();
    let mut i = 0u32;
    for round in 0..8u64 {
        // Writes in flight while a node loses power at a seed-drawn moment.
        let mut inflight = Vec::new();
        for _ in 0..6 {
            let nodes = std::sync::Arc::clone(&nodes);
            let n = i;
            inflight.push((
                n,
                madsim::task::spawn(async move { write_once(&nodes, None, n).await }),
            ));
            i += 1;
        }
        madsim::time::sleep(Duration::from_millis(madsim::rand::random::<u64>() % 40)).await;
        let victim = if round % 2 == 0 {
            leader(&nodes, None).await
        } else {
            madsim::rand::random::<u64>() % 3 + 1
        };
        nodes[victim as usize - 1].crash_restart();
        let mut ok = 0;
        for (n, h) in inflight {
            if h.await.unwrap_or(false) {
                acked.push(key(n).id);
                ok += 1;
            }
        }
        trace.push(format!("round {round}: crash {victim}, {ok}/6 acked"));
    }
    let all = read_all(&nodes).await;
    for id in &acked {
        assert!(
            all.contains(id),
            "acknowledged write {id} lost (seed {seed})"
        );
    }
    trace.push(format!(
        "acked {} of {i}, stored {}",
        acked.len(),
        all.len()
    ));
    eprintln!("seed {seed}: {trace:?}");
    trace
}

fn seed() -> u64 {
    std::env::var("MADSIM_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
}

fn run<F: std::future::Future<Output = Vec<String>>>(
    seed: u64,
    f: impl Fn(u64) -> F,
) -> Vec<String> {
    madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default())
        .block_on(f(seed))
}

/// One replica of the root group for the snapshot scenario: a `MetaGroupHost` with a
/// 64-byte snapshot chunk size, serving only the Raft transport, on a disk that outlives
/// restarts. The slots hold what the current incarnation runs.
struct ChunkedReplica {
    id: u64,
    handle: madsim::runtime::NodeHandle,
    disk: Arc<SimDisk>,
    host: Arc<Mutex<Option<Arc<MetaGroupHost>>>>,
    snapshots: ReceiverSlot,
}

const SNAPSHOT_CHUNK: u64 = 64;

/// The snapshot receiver of a replica's current incarnation.
type ReceiverSlot = Arc<Mutex<Option<Arc<Mutex<SnapshotReceiver<GroupConfig>>>>>>;

impl ChunkedReplica {
    fn start(id: u64, members: &BTreeMap<u64, String>, seed: u64) -> Self {
        let addr: SocketAddr = members[&id].parse().unwrap();
        let disk = SimDisk::new(seed ^ id, SimDiskFaults::default());
        let host: Arc<Mutex<Option<Arc<MetaGroupHost>>>> = Arc::default();
        let snapshots: ReceiverSlot = Arc::default();
        let (host_slot, snap_slot, served) = (host.clone(), snapshots.clone(), disk.clone());
        let members = members.clone();
        let handle = madsim::runtime::Handle::current()
            .create_node()
            .name(format!("chunked-{id}"))
            .ip(addr.ip())
            .init(move || {
                let (host_slot, snap_slot, members) =
                    (host_slot.clone(), snap_slot.clone(), members.clone());
                let disk: Arc<dyn Disk> = served.clone();
                async move {
                    let mut config = (*raft_config("sim").unwrap()).clone();
                    config.snapshot_max_chunk_size = SNAPSHOT_CHUNK;
                    let host = Arc::new(
                        MetaGroupHost::with_raft_config(id, "sim", disk, Arc::new(config)).unwrap(),
                    );
                    let grpc = RaftGrpc::new(Arc::clone(host.registry()), "sim".into());
                    *snap_slot.lock().unwrap() = Some(grpc.snapshot_receiver());
                    host.bootstrap(ROOT_GROUP, &members).await.unwrap();
                    *host_slot.lock().unwrap() = Some(Arc::clone(&host));
                    tonic::transport::Server::builder()
                        .add_service(
                            RaftServiceServer::new(grpc)
                                .max_decoding_message_size(RAFT_MESSAGE_BYTES_MAX),
                        )
                        .serve(addr)
                        .await
                        .unwrap();
                }
            })
            .build();
        Self {
            id,
            handle,
            disk,
            host,
            snapshots,
        }
    }

    fn host(&self) -> Option<Arc<MetaGroupHost>> {
        self.host.lock().unwrap().clone()
    }

    fn raft(&self) -> Option<MetaRaft> {
        self.host()?.registry().get(ROOT_GROUP)
    }

    fn snapshot_stats(&self) -> SnapshotReceiveStats {
        let r = self.snapshots.lock().unwrap().clone().unwrap();
        let stats = r.lock().unwrap().stats();
        stats
    }

    fn kill(&self) {
        *self.host.lock().unwrap() = None;
        madsim::runtime::Handle::current().kill(self.handle.id());
        self.disk.crash();
    }

    fn restart(&self) {
        madsim::runtime::Handle::current().restart(self.handle.id());
    }

    fn keys(&self) -> Vec<String> {
        let sm = self.host().unwrap().state_machine(ROOT_GROUP).unwrap();
        let txn = sm.database().begin_read().unwrap();
        access_keys(&txn)
            .unwrap()
            .into_iter()
            .map(|k| k.id)
            .collect()
    }

    /// Waits (bounded) until this replica runs and its root group is usable.
    async fn raft_when_up(&self) -> MetaRaft {
        for _ in 0..200 {
            if let Some(r) = self.raft() {
                return r;
            }
            madsim::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("replica {} did not come up within 10 s", self.id);
    }
}

/// The replica every running one agrees leads (bounded wait).
async fn chunked_leader(nodes: &[&ChunkedReplica]) -> u64 {
    for _ in 0..200 {
        let mut views = Vec::new();
        for n in nodes {
            if let Some(r) = n.raft() {
                views.push((n.id, r.current_leader().await));
            }
        }
        if let Some((l, _)) = views.iter().find(|(id, l)| *l == Some(*id)) {
            if views.iter().all(|(_, v)| *v == Some(*l)) {
                return *l;
            }
        }
        madsim::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no agreed leader within 20 s");
}

/// Writes access key `i` through the leader (bounded retries).
async fn chunked_write(nodes: &[&ChunkedReplica], i: u32) {
    for _ in 0..20 {
        let l = chunked_leader(nodes).await;
        let n = nodes.iter().find(|n| n.id == l).unwrap();
        let raft = n.raft().unwrap();
        let cmd = Command::Root(RootCommand::CreateAccessKey(key(i)));
        let handle = madsim::runtime::Handle::current();
        let ok = handle
            .get_node(n.handle.id())
            .unwrap()
            .spawn(async move {
                matches!(
                    madsim::time::timeout(Duration::from_secs(5), raft.client_write(cmd)).await,
                    Ok(Ok(r)) if r.data == Response::Empty
                )
            })
            .await
            .unwrap_or(false);
        if ok {
            return;
        }
        madsim::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("write {i} never succeeded");
}

async fn chunked_snapshot_scenario(seed: u64) -> Vec<String> {
    let members: BTreeMap<u64, String> = (1..=3u64)
        .map(|id| (id, format!("10.0.3.{id}:7300")))
        .collect();
    let replicas: Vec<ChunkedReplica> = (1..=3)
        .map(|id| ChunkedReplica::start(id, &members, seed))
        .collect();
    for r in &replicas {
        r.raft_when_up().await;
    }
    let all: Vec<&ChunkedReplica> = replicas.iter().collect();
    let mut trace = Vec::new();
    for i in 0..10 {
        chunked_write(&all, i).await;
    }
    let leader = chunked_leader(&all).await;
    let lagging = replicas.iter().find(|r| r.id != leader).unwrap();
    let stopped_at = {
        let m = lagging.raft().unwrap().metrics();
        let i = m.borrow_watched().last_log_index.unwrap();
        i
    };
    trace.push(format!(
        "leader {leader}, replica {} stops at {stopped_at}",
        lagging.id
    ));
    lagging.kill();
    let others: Vec<&ChunkedReplica> = replicas.iter().filter(|r| r.id != lagging.id).collect();
    for i in 10..60 {
        chunked_write(&others, i).await;
    }
    // The others snapshot and purge their logs past the stopped replica's last entry.
    for r in &others {
        let raft = r.raft().unwrap();
        let applied = raft.metrics().borrow_watched().last_applied.unwrap().index;
        raft.trigger().snapshot().await.unwrap();
        raft.wait(Some(Duration::from_secs(20)))
            .metrics(
                |m| m.snapshot.as_ref().is_some_and(|s| s.index >= applied),
                "snapshot built",
            )
            .await
            .unwrap();
        raft.trigger().purge_log(applied).await.unwrap();
        raft.wait(Some(Duration::from_secs(20)))
            .metrics(
                |m| m.purged.as_ref().is_some_and(|p| p.index > stopped_at),
                "purged past the stopped replica",
            )
            .await
            .unwrap();
    }
    lagging.restart();
    let restarted = lagging.raft_when_up().await;
    let leader = chunked_leader(&all).await;
    let target = replicas[leader as usize - 1]
        .raft()
        .unwrap()
        .metrics()
        .borrow_watched()
        .last_applied
        .map(|l| l.index);
    let m = restarted
        .wait(Some(Duration::from_secs(30)))
        .applied_index_at_least(target, "caught up")
        .await
        .expect("the restarted replica catches up within 30 s");
    assert!(
        m.snapshot.as_ref().is_some_and(|s| s.index > stopped_at),
        "caught up through a snapshot: {:?}",
        m.snapshot
    );
    let stats = lagging.snapshot_stats();
    assert!(stats.snapshots_completed >= 1, "{stats:?}");
    assert!(
        stats.chunks_accepted >= 20 * stats.snapshots_completed,
        "the snapshot came in many chunks: {stats:?}"
    );
    let want: Vec<String> = (0..60).map(|i| key(i).id).collect();
    for r in &replicas {
        for _ in 0..100 {
            if r.keys() == want {
                break;
            }
            madsim::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(r.keys(), want, "replica {} holds every key", r.id);
    }
    trace.push(format!(
        "leader {leader}; snapshot {:?}; {} chunks, {} snapshots, {} refused",
        m.snapshot.map(|s| s.index),
        stats.chunks_accepted,
        stats.snapshots_completed,
        stats.chunks_refused
    ));
    eprintln!("seed {seed}: {trace:?}");
    trace
}

#[test]
fn a_lagging_replica_catches_up_through_a_chunked_snapshot_replay_is_exact() {
    let s = seed();
    let a = run(s, chunked_snapshot_scenario);
    let b = run(s, chunked_snapshot_scenario);
    assert_eq!(a, b, "same seed, same trace (seed {s})");
}

#[test]
fn isolated_leader_cannot_read_majority_moves_on_replay_is_exact() {
    let s = seed();
    let a = run(s, partition_scenario);
    let b = run(s, partition_scenario);
    assert_eq!(a, b, "same seed, same trace (seed {s})");
}

#[test]
fn power_loss_never_loses_an_acknowledged_commit() {
    let s = seed();
    let a = run(s, crash_scenario);
    let b = run(s, crash_scenario);
    assert_eq!(a, b, "same seed, same trace (seed {s})");
}
