//! Three real `shale meta` processes on loopback, driven by the production `MetaClient`:
//! kill -9 the leader of the bucket's group during a stream of commits → a new leader
//! serves within a bound, every acknowledged commit is readable; the killed node restarts
//! from its redb files and, once another node is killed, carries the quorum itself.
//! Also: a data dir of another cluster is refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use meta_raft::client::MetaClient;
use meta_raft::state_machine::keys::object_key;
use meta_raft::state_machine::{CurrentVersion, ObjectBody, ObjectMeta, PutObject, Versioning};
use tests::{free_port, poll_until, shale_bin, Proc, TempDir};

const CLUSTER: &str = "it-meta";

fn write_configs(dir: &Path, ports: &[u16]) -> Vec<std::path::PathBuf> {
    let members: String = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "[[members]]\nnode_id = {}\naddr = \"127.0.0.1:{p}\"\n",
                i + 1
            )
        })
        .collect();
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let id = i + 1;
            let cfg = format!(
                "cluster_id = \"{CLUSTER}\"\nnode_id = {id}\nlisten = \"127.0.0.1:{p}\"\ndata_dir = \"{}\"\nobject_groups = 2\n{members}",
                dir.join(format!("meta-{id}")).display()
            );
            let path = dir.join(format!("meta-{id}.toml"));
            std::fs::write(&path, cfg).unwrap();
            path
        })
        .collect()
}

fn spawn(cfg: &Path) -> Proc {
    Proc::spawn("meta", &["meta", "--config", cfg.to_str().unwrap()]).unwrap()
}

fn put(key: &str) -> PutObject {
    PutObject {
        bucket: "b".into(),
        key: key.into(),
        version_id: "null".into(),
        created_ms: 1,
        owner: "alice".into(),
        size: 3,
        etag: "acbd18db4cc2f85cedef654fccc4a4d8".into(),
        checksums: BTreeMap::new(),
        meta: ObjectMeta::default(),
        body: ObjectBody::Inline(b"foo".to_vec()),
        preconditions: vec![],
    }
}

async fn client(seeds: &[String]) -> MetaClient {
    poll_until(
        Duration::from_secs(60),
        "meta cluster to serve its group map",
        || {
            let seeds = seeds.to_vec();
            async move {
                let c = MetaClient::connect(seeds, CLUSTER).await.ok()?;
                c.group_map().await.ok()?;
                Some(c)
            }
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn kill9_the_leader_during_commits_loses_nothing_and_restart_catches_up() {
    let dir = TempDir::new("meta-kill");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let cfgs = write_configs(dir.path(), &ports);
    let mut procs: Vec<Option<Proc>> = cfgs.iter().map(|c| Some(spawn(c))).collect();
    let seeds: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let c = client(&seeds).await;
    poll_until(Duration::from_secs(30), "bucket created", || async {
        c.create_bucket("b", "alice", 1, Versioning::Unversioned)
            .await
            .ok()
    })
    .await
    .unwrap();

    let group = c
        .group_map()
        .await
        .unwrap()
        .group_for(&object_key("b", ""))
        .group;
    let mut acked = Vec::new();
    let mut killed = None;
    let mut failover = None;
    let mut killed_at = None;
    for i in 0..120u32 {
        if i == 40 {
            let leader = c
                .cached_leader(group)
                .expect("leader known after 40 commits");
            let idx = seeds
                .iter()
                .position(|s| *s == leader)
                .expect("leader is a member");
            procs[idx].as_mut().unwrap().kill9();
            killed = Some(idx);
            killed_at = Some(common::env::monotonic_now());
        }
        let key = format!("k{i:04}");
        match c.put_object(&put(&key)).await {
            Ok(_) => {
                if failover.is_none() {
                    if let Some(t) = killed_at {
                        failover = Some(t.elapsed());
                    }
                }
                acked.push(key);
            }
            Err(e) => eprintln!("put {key}: {e} (not acknowledged)"),
        }
    }
    let failover = failover.expect("writes resumed after the kill");
    eprintln!("fail-over: first acknowledged commit {failover:?} after kill -9 of the leader");
    assert!(
        failover < Duration::from_secs(15),
        "fail-over took {failover:?}"
    );
    assert!(
        acked.len() >= 100,
        "only {} of 120 commits acknowledged",
        acked.len()
    );
    for key in &acked {
        let v = c.head_object("b", key).await.unwrap();
        assert!(
            matches!(v, CurrentVersion::Object(_)),
            "acknowledged {key} lost: {v:?}"
        );
    }

    // Restart the killed node from its files, then kill another one: the restarted node
    // is now needed for every quorum, so serving proves it caught up.
    let k = killed.unwrap();
    procs[k] = Some(spawn(&cfgs[k]));
    let other = (k + 1) % 3;
    // Give it a bounded chance to rejoin before it must carry the quorum.
    poll_until(
        Duration::from_secs(30),
        "restarted node to take a write",
        || async { c.put_object(&put("after-restart")).await.ok() },
    )
    .await
    .unwrap();
    procs[other].as_mut().unwrap().kill9();
    poll_until(
        Duration::from_secs(30),
        "quorum with the restarted node",
        || async { c.put_object(&put("after-second-kill")).await.ok() },
    )
    .await
    .unwrap();
    for key in acked.iter().chain([&"after-restart".to_string()]) {
        let v = c.head_object("b", key).await.unwrap();
        assert!(
            matches!(v, CurrentVersion::Object(_)),
            "{key} lost after restart"
        );
    }
}

#[tokio::test]
async fn a_data_dir_of_another_cluster_is_refused() {
    let dir = TempDir::new("meta-cluster");
    let ports = [free_port()];
    let cfgs = write_configs(dir.path(), &ports);
    // First start records the cluster id; stop it once it is serving.
    let mut p = spawn(&cfgs[0]);
    client(&[format!("127.0.0.1:{}", ports[0])]).await;
    p.kill9();
    let text = std::fs::read_to_string(&cfgs[0]).unwrap().replace(
        &format!("cluster_id = \"{CLUSTER}\""),
        "cluster_id = \"someone-else\"",
    );
    std::fs::write(&cfgs[0], text).unwrap();
    // Bounded: a node that wrongly starts is killed after 20 s and the test fails.
    let mut child = std::process::Command::new(shale_bin())
        .args(["meta", "--config", cfgs[0].to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = poll_until(Duration::from_secs(20), "the refused node to exit", || {
        let s = child.try_wait().ok().flatten();
        async move { s }
    })
    .await;
    if status.is_err() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("belongs to cluster") && stderr.contains("someone-else"),
        "{stderr}"
    );
}
