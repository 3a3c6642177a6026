//! The metadata plane inside madsim: three production meta nodes on `SimDisk`s.
//!
//! - A leader isolated by a partition cannot pass the read barrier (its reads would be
//!   stale), while the majority elects a new leader whose barrier passes and whose writes
//!   commit; after healing, every replica converges.
//! - Nodes lose power again and again (their disks drop unsynced writes); no acknowledged
//!   write is ever lost.
//! - The same seed gives the same trace.
#![cfg(madsim)]

use std::net::IpAddr;
use std::time::Duration;

use meta_raft::meta_node::ROOT_GROUP;
use meta_raft::state_machine::{access_keys, AccessKey, Command, Response, RootCommand};
use meta_raft::types::MetaRaft;
use openraft::raft::ReadPolicy;
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
