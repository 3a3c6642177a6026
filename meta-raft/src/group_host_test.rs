//! Three replicas of one group, each a `GroupHost` on its own `SimDisk`, talking real
//! gRPC on loopback: election, replicated writes, the read barrier (leader passes,
//! follower is told where the leader is), leader crash with its disk losing unsynced
//! writes, fail-over, and the crashed replica catching up after restart; membership
//! change; a replica that fell behind the others' purged logs catching up by installing
//! a snapshot, in one chunk and in many (tiny chunk size), then leading the group.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::env::{Disk, SimDisk, SimDiskFaults};
use common::ids::GroupId;
use openraft::error::{LinearizableReadError, RaftError};
use openraft::raft::ReadPolicy;
use openraft::rt::WatchReceiver;
use proto::raft::raft_service_server::RaftServiceServer;
use redb::{ReadableDatabase, TableDefinition};

use crate::group_host::{raft_config, GroupHost};
use crate::network::{RaftGrpc, RAFT_MESSAGE_BYTES_MAX};
use crate::snapshot_receiver::{SnapshotReceiveStats, SnapshotReceiver};
use crate::store_test::{KvLogic, Set, TestConfig};

const GROUP: GroupId = GroupId(1);
const CLUSTER: &str = "test-cluster";
const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

type Host = GroupHost<TestConfig, KvLogic>;

struct Replica {
    host: Arc<Host>,
    disk: Arc<SimDisk>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: common::env::JoinHandle<()>,
    snapshots: Arc<Mutex<SnapshotReceiver<TestConfig>>>,
}

fn free_addr() -> SocketAddr {
    common::env::free_loopback_addr().expect("free loopback address")
}

async fn start(
    id: u64,
    addr: SocketAddr,
    disk: Arc<SimDisk>,
    members: &BTreeMap<u64, String>,
) -> Replica {
    start_with(id, addr, disk, Some(members)).await
}

/// `members: None` = a joining node: it opens the group but does not initialise it.
async fn start_with(
    id: u64,
    addr: SocketAddr,
    disk: Arc<SimDisk>,
    members: Option<&BTreeMap<u64, String>>,
) -> Replica {
    start_chunked(id, addr, disk, members, None).await
}

/// `chunk_bytes`: the snapshot chunk size this replica sends with (default otherwise).
async fn start_chunked(
    id: u64,
    addr: SocketAddr,
    disk: Arc<SimDisk>,
    members: Option<&BTreeMap<u64, String>>,
    chunk_bytes: Option<u64>,
) -> Replica {
    let d: Arc<dyn Disk> = disk.clone();
    let host = match chunk_bytes {
        None => Host::new(id, CLUSTER, d).unwrap(),
        Some(n) => {
            let mut config = (*raft_config(CLUSTER).unwrap()).clone();
            config.snapshot_max_chunk_size = n;
            Host::with_raft_config(id, CLUSTER, d, Arc::new(config)).unwrap()
        }
    };
    let host = Arc::new(host);
    let grpc = RaftGrpc::new(Arc::clone(host.registry()), CLUSTER.into());
    let snapshots = grpc.snapshot_receiver();
    let svc = RaftServiceServer::new(grpc).max_decoding_message_size(RAFT_MESSAGE_BYTES_MAX);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = common::env::spawn("test-raft-server", async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_shutdown(addr, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    match members {
        Some(m) => {
            host.bootstrap(GROUP, m).await.unwrap();
        }
        None => {
            host.open_group(GROUP).await.unwrap();
        }
    }
    Replica {
        host,
        disk,
        stop: Some(tx),
        server,
        snapshots,
    }
}

impl Replica {
    async fn stop(mut self) -> Arc<SimDisk> {
        self.host.shutdown().await;
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = self.server.await;
        self.disk
    }

    fn snapshot_stats(&self) -> SnapshotReceiveStats {
        self.snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stats()
    }

    fn kv(&self) -> BTreeMap<String, String> {
        let sm = self.host.state_machine(GROUP).unwrap();
        let txn = sm.database().begin_read().unwrap();
        let Ok(t) = txn.open_table(KV) else {
            return BTreeMap::new();
        };
        use redb::ReadableTable;
        t.iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (
                    String::from_utf8(k.value().to_vec()).unwrap(),
                    String::from_utf8(v.value().to_vec()).unwrap(),
                )
            })
            .collect()
    }
}

/// Waits (bounded) until `r`'s state machine holds exactly `expected`, then asserts it.
/// A replica's applied-index metric can lag its state machine's commit, so catching up
/// "to the leader's metric" is not enough to compare contents at once.
async fn assert_kv_settles(r: &Replica, expected: &BTreeMap<String, String>, what: &str) {
    let clock = common::env::Clock::new();
    let deadline = clock.now() + Duration::from_secs(20);
    while r.kv() != *expected && clock.now() < deadline {
        clock.sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(r.kv(), *expected, "{what}");
}

async fn leader_of(replicas: &BTreeMap<u64, Replica>) -> u64 {
    let any = replicas.values().next().unwrap();
    let raft = any.host.registry().get(GROUP).unwrap();
    let m = raft
        .wait(Some(Duration::from_secs(20)))
        .metrics(
            |m| m.current_leader.is_some_and(|l| replicas.contains_key(&l)),
            "a live leader",
        )
        .await
        .expect("a leader is elected within 20 s");
    m.current_leader.unwrap()
}

async fn write(replicas: &BTreeMap<u64, Replica>, key: &str, value: &str) {
    // A fresh leader rejects writes until a quorum acknowledged it: retry, with a bound.
    for _ in 0..50 {
        let leader = leader_of(replicas).await;
        let raft = replicas[&leader].host.registry().get(GROUP).unwrap();
        let set = Set {
            key: key.into(),
            value: value.into(),
        };
        if raft.client_write(set).await.is_ok() {
            return;
        }
        common::env::Clock::new()
            .sleep(Duration::from_millis(50))
            .await;
    }
    panic!("write {key} never succeeded");
}

#[test]
fn three_replicas_elect_replicate_fail_over_and_catch_up() {
    let rt = common::env::BlockingRuntime::new(2).unwrap();
    rt.block_on(async {
        let addrs: BTreeMap<u64, SocketAddr> = (1..=3).map(|id| (id, free_addr())).collect();
        let members: BTreeMap<u64, String> =
            addrs.iter().map(|(id, a)| (*id, a.to_string())).collect();
        let mut replicas = BTreeMap::new();
        for (id, addr) in &addrs {
            let disk = SimDisk::new(*id, SimDiskFaults::default());
            replicas.insert(*id, start(*id, *addr, disk, &members).await);
        }
        for i in 0..20 {
            write(&replicas, &format!("k{i:02}"), &format!("v{i}")).await;
        }

        // The read barrier: the leader passes it, a follower is told who leads.
        let leader = leader_of(&replicas).await;
        let leader_raft = replicas[&leader].host.registry().get(GROUP).unwrap();
        leader_raft
            .ensure_linearizable(ReadPolicy::ReadIndex)
            .await
            .expect("leader barrier");
        let follower = *replicas.keys().find(|id| **id != leader).unwrap();
        let follower_raft = replicas[&follower].host.registry().get(GROUP).unwrap();
        match follower_raft
            .ensure_linearizable(ReadPolicy::ReadIndex)
            .await
        {
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
                assert_eq!(f.leader_id, Some(leader), "the hint names the leader");
            }
            other => panic!("a follower must not pass the barrier: {other:?}"),
        }

        // Crash the leader: its disk loses whatever was not synced.
        let crashed = replicas.remove(&leader).unwrap();
        let disk = crashed.stop().await;
        disk.crash();
        for i in 20..30 {
            write(&replicas, &format!("k{i:02}"), &format!("v{i}")).await;
        }
        let new_leader = leader_of(&replicas).await;
        assert_ne!(new_leader, leader);

        // Restart it from its (crashed) disk: it catches up from the others.
        replicas.insert(leader, start(leader, addrs[&leader], disk, &members).await);
        let target = replicas[&new_leader]
            .host
            .registry()
            .get(GROUP)
            .unwrap()
            .metrics()
            .borrow_watched()
            .last_applied;
        let restarted = replicas[&leader].host.registry().get(GROUP).unwrap();
        restarted
            .wait(Some(Duration::from_secs(20)))
            .applied_index_at_least(target.map(|l| l.index), "restarted replica catches up")
            .await
            .expect("catch up within 20 s");

        let expected: BTreeMap<String, String> = (0..30)
            .map(|i| (format!("k{i:02}"), format!("v{i}")))
            .collect();
        for (id, r) in &replicas {
            assert_kv_settles(r, &expected, &format!("replica {id} state")).await;
        }
        for (_, r) in replicas {
            r.stop().await;
        }
    });
}

#[test]
fn a_node_joins_as_voter_and_another_leaves() {
    let rt = common::env::BlockingRuntime::new(2).unwrap();
    rt.block_on(async {
        let addrs: BTreeMap<u64, SocketAddr> = (1..=4).map(|id| (id, free_addr())).collect();
        let members: BTreeMap<u64, String> = addrs
            .iter()
            .filter(|(id, _)| **id <= 3)
            .map(|(id, a)| (*id, a.to_string()))
            .collect();
        let mut replicas = BTreeMap::new();
        for id in 1..=3u64 {
            let disk = SimDisk::new(id, SimDiskFaults::default());
            replicas.insert(id, start(id, addrs[&id], disk, &members).await);
        }
        for i in 0..10 {
            write(&replicas, &format!("a{i}"), "x").await;
        }
        // Node 4 starts empty (joining) and is added by the leader.
        let joiner = start_with(
            4,
            addrs[&4],
            SimDisk::new(4, SimDiskFaults::default()),
            None,
        )
        .await;
        replicas.insert(4, joiner);
        let leader = leader_of(&replicas).await;
        replicas[&leader]
            .host
            .add_voter(GROUP, 4, &addrs[&4].to_string())
            .await
            .expect("add voter 4");
        // Remove a node that is not the leader.
        let gone = *replicas
            .keys()
            .find(|id| **id != leader && **id != 4)
            .unwrap();
        replicas[&leader]
            .host
            .remove_voter(GROUP, gone)
            .await
            .expect("remove voter");
        let removed = replicas.remove(&gone).unwrap();
        removed.stop().await;
        for i in 10..20 {
            write(&replicas, &format!("a{i}"), "y").await;
        }
        let raft = replicas[&leader].host.registry().get(GROUP).unwrap();
        let voters: Vec<u64> = {
            let m = raft.metrics();
            let v = m
                .borrow_watched()
                .membership_config
                .membership()
                .voter_ids()
                .collect();
            v
        };
        let mut expected: Vec<u64> = replicas.keys().copied().collect();
        expected.sort_unstable();
        assert_eq!(voters, expected, "voters after the change");
        // Every write was acknowledged, so the joiner must come to hold all 20 (poll with a
        // bound: a replica's applied-index metric can lag its state machine, so waiting on
        // the furthest replica's metric raced with the last write).
        let clock = common::env::Clock::new();
        let deadline = clock.now() + Duration::from_secs(20);
        while replicas[&4].kv().len() < 20 && clock.now() < deadline {
            clock.sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(replicas[&4].kv().len(), 20, "the joiner has every write");
        for (_, r) in replicas {
            r.stop().await;
        }
    });
}

/// A replica stopped while the others commit, snapshot and purge their logs past its
/// last entry can only catch up by installing a snapshot over the gRPC transport (sent
/// in chunks of `chunk_bytes`); after its restart it does, its state machine equals the
/// leader's, and it then leads the group with that state. Returns its receiver's counters.
async fn lagging_replica_catches_up_by_snapshot(chunk_bytes: Option<u64>) -> SnapshotReceiveStats {
    let addrs: BTreeMap<u64, SocketAddr> = (1..=3).map(|id| (id, free_addr())).collect();
    let members: BTreeMap<u64, String> = addrs.iter().map(|(id, a)| (*id, a.to_string())).collect();
    let mut replicas = BTreeMap::new();
    for (id, addr) in &addrs {
        let disk = SimDisk::new(*id, SimDiskFaults::default());
        replicas.insert(
            *id,
            start_chunked(*id, *addr, disk, Some(&members), chunk_bytes).await,
        );
    }
    for i in 0..10 {
        write(&replicas, &format!("k{i:02}"), "old").await;
    }

    // Stop a follower; the others move on without it.
    let leader = leader_of(&replicas).await;
    let lagging = *replicas.keys().find(|id| **id != leader).unwrap();
    let stopped_at = replicas[&lagging]
        .host
        .registry()
        .get(GROUP)
        .unwrap()
        .metrics()
        .borrow_watched()
        .last_log_index
        .unwrap();
    let disk = replicas.remove(&lagging).unwrap().stop().await;
    for i in 5..40 {
        write(&replicas, &format!("k{i:02}"), &format!("new{i}")).await;
    }

    // Every remaining replica snapshots and purges its log past the stopped one's.
    for (id, r) in &replicas {
        let raft = r.host.registry().get(GROUP).unwrap();
        let applied = raft
            .metrics()
            .borrow_watched()
            .last_applied
            .map(|l| l.index)
            .unwrap();
        assert!(applied > stopped_at + 10, "replica {id} moved on");
        raft.trigger().snapshot().await.unwrap();
        raft.wait(Some(Duration::from_secs(20)))
            .metrics(
                |m| m.snapshot.as_ref().is_some_and(|s| s.index >= applied),
                "snapshot built",
            )
            .await
            .expect("snapshot within 20 s");
        raft.trigger().purge_log(applied).await.unwrap();
        raft.wait(Some(Duration::from_secs(20)))
            .metrics(
                |m| m.purged.as_ref().is_some_and(|p| p.index > stopped_at),
                "log purged past the stopped replica",
            )
            .await
            .expect("purge within 20 s");
    }

    // Restart it: the leader no longer has the entries it misses, only the snapshot.
    replicas.insert(
        lagging,
        start_chunked(lagging, addrs[&lagging], disk, Some(&members), chunk_bytes).await,
    );
    let leader = leader_of(&replicas).await;
    let leader_raft = replicas[&leader].host.registry().get(GROUP).unwrap();
    let target = leader_raft.metrics().borrow_watched().last_applied;
    let restarted = replicas[&lagging].host.registry().get(GROUP).unwrap();
    let m = restarted
        .wait(Some(Duration::from_secs(30)))
        .applied_index_at_least(target.map(|l| l.index), "lagging replica catches up")
        .await
        .expect("catch up within 30 s");
    assert!(
        m.snapshot.as_ref().is_some_and(|s| s.index > stopped_at),
        "caught up by installing a snapshot: {:?}",
        m.snapshot
    );
    assert!(
        m.purged.as_ref().is_some_and(|p| p.index > stopped_at),
        "its own log was replaced by the snapshot: {:?}",
        m.purged
    );
    let expected: BTreeMap<String, String> = (0..40)
        .map(|i| {
            let v = if i < 5 {
                "old".into()
            } else {
                format!("new{i}")
            };
            (format!("k{i:02}"), v)
        })
        .collect();
    assert_kv_settles(&replicas[&leader], &expected, "leader state").await;
    assert_kv_settles(
        &replicas[&lagging],
        &expected,
        "the restarted replica's state machine equals the leader's",
    )
    .await;
    // It keeps up with new writes through the ordinary log afterwards.
    write(&replicas, "after", "x").await;
    // The write is in the log of whichever replica led it (metrics of the applied index
    // may trail the answer): wait for the furthest log.
    let target = replicas
        .values()
        .filter_map(|r| r.host.registry().get(GROUP))
        .filter_map(|r| r.metrics().borrow_watched().last_log_index)
        .max();
    restarted
        .wait(Some(Duration::from_secs(20)))
        .applied_index_at_least(target, "keeps up")
        .await
        .expect("keeps up");
    assert_eq!(
        replicas[&lagging].kv().get("after").map(String::as_str),
        Some("x")
    );

    // It serves the same state as leader: hand it the leadership, pass the read barrier
    // there, and write through it.
    // (Leadership may have moved since; ask whoever leads now, with a bound.)
    for attempt in 0.. {
        let current = leader_of(&replicas).await;
        if current == lagging {
            break;
        }
        // Our transport has no TransferLeader rpc: the leader steps aside and an
        // election follows, which either follower may win; try again until the
        // caught-up one does (each round is a coin flip at worst).
        assert!(
            attempt < 40,
            "leadership never moved to the caught-up replica"
        );
        let raft = replicas[&current].host.registry().get(GROUP).unwrap();
        raft.trigger().transfer_leader(lagging).await.unwrap();
        let _ = restarted
            .wait(Some(Duration::from_secs(5)))
            .metrics(
                |m| m.current_leader == Some(lagging),
                "the caught-up replica leads",
            )
            .await;
    }
    restarted
        .ensure_linearizable(ReadPolicy::ReadIndex)
        .await
        .expect("the caught-up replica passes the read barrier as leader");
    let mut expected = expected;
    expected.insert("after".into(), "x".into());
    assert_eq!(
        replicas[&lagging].kv(),
        expected,
        "it serves the same state"
    );
    write(&replicas, "led", "y").await;
    expected.insert("led".into(), "y".into());
    for (id, r) in &replicas {
        assert_kv_settles(
            r,
            &expected,
            &format!("replica {id} after the new leader's write"),
        )
        .await;
    }

    let stats = replicas[&lagging].snapshot_stats();
    for (_, r) in replicas {
        r.stop().await;
    }
    stats
}

#[test]
fn a_lagging_replica_catches_up_by_installing_a_snapshot() {
    let rt = common::env::BlockingRuntime::new(2).unwrap();
    let stats = rt.block_on(lagging_replica_catches_up_by_snapshot(None));
    assert!(stats.snapshots_completed >= 1, "{stats:?}");
    assert_eq!(
        stats.chunks_accepted, stats.snapshots_completed,
        "a small snapshot is one chunk by default: {stats:?}"
    );
}

/// The same with 16-byte chunks: the snapshot (about half a KiB) arrives in dozens of
/// chunks.
#[test]
fn a_snapshot_sent_in_many_tiny_chunks_catches_a_replica_up() {
    let rt = common::env::BlockingRuntime::new(2).unwrap();
    let stats = rt.block_on(lagging_replica_catches_up_by_snapshot(Some(16)));
    assert!(stats.snapshots_completed >= 1, "{stats:?}");
    assert!(
        stats.chunks_accepted >= 10 * stats.snapshots_completed,
        "many chunks per snapshot: {stats:?}"
    );
    assert_eq!(stats.chunks_refused, 0, "{stats:?}");
}
