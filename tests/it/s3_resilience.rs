//! Crashes under real S3 clients. The multi-process deployment (3 `shale meta`, 16
//! `shale datanode` in 4 racks, 2 `shale gateway`): kill -9 a data node → old objects read
//! back exactly (degraded reads) and new PUTs succeed; kill -9 the meta leader of the
//! bucket's object group → requests resume after the election. `shale dev`: kill -9 and
//! restart on the same folder → every object is still there. A gateway started while no
//! meta node is up waits for the metadata plane and then serves.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use tests::cluster::{ClusterProc, DevCluster, MultiCluster};

use crate::s3::{assert_bytes, data, get, put, show};

const MIB: usize = 1024 * 1024;

/// Retries `put` until it succeeds, for at most `limit` (an election is in progress).
async fn put_until_ok(s3: &Client, b: &str, k: &str, body: &[u8], limit: Duration) -> Duration {
    let start = common::env::monotonic_now();
    loop {
        match s3
            .put_object()
            .bucket(b)
            .key(k)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
        {
            Ok(_) => return start.elapsed(),
            Err(e) if start.elapsed() < limit => {
                eprintln!("put {k} after the kill: {}", show(&e));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("put {k} still failing after {limit:?}: {}", show(&e)),
        }
    }
}

async fn get_until_ok(s3: &Client, b: &str, k: &str, limit: Duration) -> Vec<u8> {
    let start = common::env::monotonic_now();
    loop {
        match s3.get_object().bucket(b).key(k).send().await {
            Ok(out) => match out.body.collect().await {
                Ok(b) => return b.into_bytes().to_vec(),
                Err(e) if start.elapsed() < limit => eprintln!("get {k} body: {e}"),
                Err(e) => panic!("get {k} body: {e}"),
            },
            Err(e) if start.elapsed() < limit => eprintln!("get {k}: {}", show(&e)),
            Err(e) => panic!("get {k} still failing after {limit:?}: {}", show(&e)),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn multi_process_cluster_survives_datanode_and_meta_leader_kill9() {
    let mut c = MultiCluster::start(2).await.expect("starting the cluster");
    let gw0 = c.s3(0);
    let gw1 = c.s3(1);
    let b = "resilience";
    gw0.create_bucket()
        .bucket(b)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket: {}\n{}", show(&e), c.log_tails(20)));
    let objects: Vec<(String, Vec<u8>)> = [100, 4096, MIB, 9 * MIB]
        .iter()
        .enumerate()
        .map(|(i, size)| (format!("obj-{size}"), data(*size, 100 + i as u64)))
        .collect();
    for (k, body) in &objects {
        put(&gw0, b, k, body).await;
    }
    // Either gateway serves every object.
    for (k, body) in &objects {
        assert_bytes(&get(&gw1, b, k).await, body, &format!("{k} via gateway 2"));
    }

    // kill -9 one data node: reads rebuild the lost fragments, writes place around it.
    c.kill9_datanode(0);
    for (k, body) in &objects {
        assert_bytes(
            &get(&gw0, b, k).await,
            body,
            &format!("{k} with node 1 dead"),
        );
        assert_bytes(
            &get(&gw1, b, k).await,
            body,
            &format!("{k} with node 1 dead (gw 2)"),
        );
    }
    let fresh = data(MIB, 7);
    let took = put_until_ok(&gw0, b, "after-node-kill", &fresh, Duration::from_secs(60)).await;
    eprintln!("first 1 MiB PUT after killing a data node succeeded after {took:?}");
    assert_bytes(
        &get(&gw1, b, "after-node-kill").await,
        &fresh,
        "PUT after node kill",
    );

    // kill -9 the meta leader of the bucket's object group: requests resume after the
    // election (a bounded retry loop, as a client would).
    let killed = c.kill9_bucket_group_leader(b).await.unwrap();
    eprintln!("killed meta node {}", killed + 1);
    let body = data(MIB + 17, 8);
    let took = put_until_ok(&gw0, b, "after-leader-kill", &body, Duration::from_secs(60)).await;
    eprintln!("first PUT after killing the group leader succeeded after {took:?}");
    assert!(took < Duration::from_secs(60));
    let got = get_until_ok(&gw1, b, "after-leader-kill", Duration::from_secs(60)).await;
    assert_bytes(&got, &body, "PUT after leader kill");
    for (k, want) in &objects {
        let got = get_until_ok(&gw1, b, k, Duration::from_secs(60)).await;
        assert_bytes(&got, want, &format!("{k} after the leader kill"));
    }
    // Listing and a small (inline, Raft-only) write work too.
    put(&gw1, b, "small-after", b"tiny").await;
    let list = gw0.list_objects_v2().bucket(b).send().await.unwrap();
    assert_eq!(list.key_count(), Some(7), "{list:?}");

    // Three more data nodes die: 4 (= m) down, one per rack. Every stripe has lost at
    // most 4 of its 12 fragments: reads decode from parity; writes still place 12
    // fragments on the 12 live nodes (or accept k+1 durable ones).
    for i in 1..4 {
        c.kill9_datanode(i);
    }
    let all: Vec<&str> = objects
        .iter()
        .map(|(k, _)| k.as_str())
        .chain(["after-node-kill", "after-leader-kill"])
        .collect();
    let wants: Vec<&[u8]> = objects
        .iter()
        .map(|(_, v)| v.as_slice())
        .chain([fresh.as_slice(), body.as_slice()])
        .collect();
    for (k, want) in all.iter().zip(&wants) {
        let got = get_until_ok(&gw1, b, k, Duration::from_secs(60)).await;
        assert_bytes(&got, want, &format!("{k} with 4 data nodes dead"));
    }
    let four_down = data(3 * MIB, 10);
    put_until_ok(&gw0, b, "four-down", &four_down, Duration::from_secs(60)).await;
    assert_bytes(
        &get(&gw1, b, "four-down").await,
        &four_down,
        "PUT with 4 down",
    );

    // The killed meta node restarts and catches up; the data nodes come back.
    c.restart_meta(killed).unwrap();
    for i in 0..4 {
        c.restart_datanode(i).unwrap();
    }
    let more = data(2 * MIB, 9);
    put_until_ok(&gw1, b, "after-restarts", &more, Duration::from_secs(60)).await;
    assert_bytes(
        &get(&gw0, b, "after-restarts").await,
        &more,
        "after restarts",
    );

    // Past the code's tolerance (6 of 16 nodes dead, some stripes lose more than 4
    // fragments): a GET returns the exact bytes or fails — never other bytes.
    for i in 4..10 {
        c.kill9_datanode(i);
    }
    for (k, want) in all.iter().zip(&wants) {
        match gw0.get_object().bucket(b).key(*k).send().await {
            Ok(out) => match out.body.collect().await {
                Ok(got) => assert_bytes(&got.into_bytes(), want, &format!("{k}, 6 down")),
                Err(e) => eprintln!("{k} with 6 nodes down: body failed ({e}), as it may"),
            },
            Err(e) => {
                let st = crate::s3::status_of(&e);
                eprintln!("{k} with 6 nodes down: {}", show(&e));
                assert!(
                    st.is_none_or(|s| s >= 500),
                    "{k}: a lost stripe is a server error, got {st:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn dev_cluster_restart_keeps_objects() {
    let mut c = DevCluster::start().await.expect("starting shale dev");
    let s3 = c.s3();
    let b = "restart";
    s3.create_bucket().bucket(b).send().await.unwrap();
    let objects: Vec<(String, Vec<u8>)> = [0, 10, 4096, 4097, 3 * MIB]
        .iter()
        .enumerate()
        .map(|(i, size)| (format!("obj-{size}"), data(*size, 200 + i as u64)))
        .collect();
    for (k, body) in &objects {
        put(&s3, b, k, body).await;
    }
    c.restart()
        .await
        .unwrap_or_else(|e| panic!("restart: {e:#}"));
    assert!(c.is_running());
    let s3 = c.s3();
    let list = s3
        .list_buckets()
        .send()
        .await
        .unwrap_or_else(|e| panic!("list_buckets after restart: {}", show(&e)));
    assert!(list.buckets().iter().any(|x| x.name() == Some(b)));
    for (k, body) in &objects {
        let got = get_until_ok(&s3, b, k, Duration::from_secs(60)).await;
        assert_bytes(&got, body, &format!("{k} after restart"));
    }
    let l = s3.list_objects_v2().bucket(b).send().await.unwrap();
    assert_eq!(l.key_count(), Some(objects.len() as i32));
    // And the restarted cluster takes writes.
    put(&s3, b, "after", &data(MIB, 1)).await;
}

/// `shale gateway` (and `shale datanode`) started while the metadata plane is down (no
/// meta node, so no root leader) keeps retrying — it neither exits nor needs a supervisor — and serves once
/// the meta nodes are back and have elected their leaders.
#[tokio::test]
async fn gateway_started_before_the_metadata_plane_serves_once_it_is_up() {
    let mut c = MultiCluster::start(1).await.expect("starting the cluster");
    let b = "late-meta";
    let body = data(10_000, 31);
    c.s3(0).create_bucket().bucket(b).send().await.unwrap();
    put(&c.s3(0), b, "k", &body).await;

    for m in &mut c.metas {
        m.kill9();
    }
    c.gateways[0].kill9();
    // A data node restarted while no meta node runs waits for them too.
    c.kill9_datanode(0);
    c.restart_datanode(0).expect("restarting data node 1");
    let cfg = c.dir.join("config").join("gateway-1.toml");
    let log = c.dir.join("logs").join("gateway-1-late.log");
    c.gateways[0] = ClusterProc::spawn(
        "gateway-1 (late)",
        &[
            "gateway".into(),
            "--config".into(),
            cfg.display().to_string(),
        ],
        &log,
        None,
    )
    .expect("starting the gateway");
    // It fails to connect, says so, and retries (twice seen), still running.
    let retries = |g: &ClusterProc| {
        g.log_tail(10_000)
            .matches("metadata plane not reachable yet; retrying")
            .count()
    };
    tests::poll_until(Duration::from_secs(60), "two retry warnings", || async {
        (retries(&c.gateways[0]) >= 2 || !c.gateways[0].is_running()).then_some(())
    })
    .await
    .expect("the gateway logging its retries");
    assert!(
        c.gateways[0].is_running(),
        "the gateway exited while the metadata plane was down:\n{}",
        c.gateways[0].log_tail(30)
    );
    assert!(retries(&c.gateways[0]) >= 2);
    tests::poll_until(
        Duration::from_secs(60),
        "a data node retry warning",
        || async { (retries(&c.datanodes[0]) >= 1 || !c.datanodes[0].is_running()).then_some(()) },
    )
    .await
    .expect("the data node logging its retries");
    assert!(
        c.datanodes[0].is_running(),
        "the data node exited while the metadata plane was down:\n{}",
        c.datanodes[0].log_tail(30)
    );

    for i in 0..3 {
        c.restart_meta(i).expect("restarting a meta node");
    }
    let got = get_until_ok(&c.s3(0), b, "k", Duration::from_secs(120)).await;
    assert_bytes(&got, &body, "read through the late gateway");
    // The cluster with the late data node takes new writes.
    let body2 = data(200_000, 32);
    put(&c.s3(0), b, "k2", &body2).await;
    let got = get_until_ok(&c.s3(0), b, "k2", Duration::from_secs(60)).await;
    assert_bytes(&got, &body2, "written after the late start");
    assert!(
        c.datanodes[0].is_running(),
        "{}",
        c.datanodes[0].log_tail(30)
    );
    assert!(
        c.gateways[0]
            .log_tail(10_000)
            .contains("S3 gateway serving"),
        "{}",
        c.gateways[0].log_tail(30)
    );
}
