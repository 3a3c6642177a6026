//! The maintenance loops of the meta nodes (crate `maintain`) against real processes:
//! - GC: on `shale dev` (GC delay 0), objects are overwritten, deleted and a multipart
//!   upload aborted; the data nodes' fragment inventories (`ListFragments`) converge to
//!   exactly the fragments of the live versions, and every GC queue empties.
//! - Failure detection: on the multi-process deployment with short timeouts, a data node
//!   killed with -9 shows as down with a reason in `shale admin status` (and the cluster
//!   map), and as up again after a restart; a disk marked failed stays failed across
//!   heartbeats until restored.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use common::cluster::{DiskState, NodeState};
use common::ids::{DiskId, FragmentId, NodeId};
use meta_raft::client::MetaClient;
use meta_raft::state_machine::CurrentVersion;
use proto::datanode::datanode_service_client::DatanodeServiceClient;
use proto::datanode::ListFragmentsRequest;
use tests::cluster::{DevCluster, MultiCluster};
use tests::poll_until;

use crate::s3::{data, new_bucket, put};

/// Every fragment on every data node's disk 0, as (node, fragment).
async fn inventory(meta: &MetaClient) -> anyhow::Result<BTreeSet<(NodeId, FragmentId)>> {
    let mut out = BTreeSet::new();
    for n in meta.nodes().await? {
        let mut c = DatanodeServiceClient::connect(format!("http://{}", n.info.addr)).await?;
        let mut after = None;
        loop {
            let r = c
                .list_fragments(ListFragmentsRequest {
                    disk: 0,
                    after: after.clone(),
                    limit: 1000,
                })
                .await?
                .into_inner();
            for f in &r.fragments {
                let id = f.id.as_ref().ok_or_else(|| anyhow::anyhow!("no id"))?;
                out.insert((n.info.id, FragmentId::try_from(id)?));
                after = Some(id.clone());
            }
            if !r.truncated {
                break;
            }
        }
    }
    Ok(out)
}

/// The fragments the current versions of `keys` in `bucket` reference.
async fn live_fragments(
    meta: &MetaClient,
    bucket: &str,
    keys: &[&str],
) -> anyhow::Result<BTreeSet<(NodeId, FragmentId)>> {
    let mut out = BTreeSet::new();
    for key in keys {
        if let CurrentVersion::Object(v) = meta.head_object(bucket, key).await? {
            for s in v.body.stripes() {
                for (i, loc) in s.placement.iter().enumerate() {
                    let index = u8::try_from(i)?;
                    out.insert((
                        loc.node,
                        FragmentId {
                            stripe: s.id,
                            index,
                        },
                    ));
                }
            }
        }
    }
    Ok(out)
}

async fn gc_queues_empty(meta: &MetaClient) -> anyhow::Result<bool> {
    for g in meta.object_groups().await? {
        if !meta.gc_take(g, None, 1).await?.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_leaves_only_the_fragments_of_live_versions() {
    let c = DevCluster::start_with(&["--gc-delay-secs", "0"])
        .await
        .expect("starting shale dev");
    let s3 = c.s3();
    let meta = c.meta().await.expect("meta client");
    let b = new_bucket(&s3, "gc").await;
    // Bodies above the inline limit (4 KiB): erasure-coded, one or two stripes.
    let keys = ["a", "b", "c", "d"];
    for (i, k) in keys.iter().enumerate() {
        put(&s3, &b, k, &data(100_000 + i * 1000, i as u64)).await;
    }
    // Overwrite a and b (a twice, the second time with a two-stripe body), delete c.
    put(&s3, &b, "a", &data(50_000, 10)).await;
    put(&s3, &b, "a", &data(5_000_000, 11)).await;
    put(&s3, &b, "b", &data(20_000, 12)).await;
    s3.delete_object().bucket(&b).key("c").send().await.unwrap();
    // A multipart upload with one part, aborted.
    let up = s3
        .create_multipart_upload()
        .bucket(&b)
        .key("mp")
        .send()
        .await
        .unwrap();
    let upload_id = up.upload_id().unwrap().to_string();
    s3.upload_part()
        .bucket(&b)
        .key("mp")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from(data(300_000, 13)))
        .send()
        .await
        .unwrap();
    s3.abort_multipart_upload()
        .bucket(&b)
        .key("mp")
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();

    let live = live_fragments(&meta, &b, &keys).await.unwrap();
    assert!(!live.is_empty());
    let last = std::sync::Mutex::new(String::new());
    poll_until(
        Duration::from_secs(90),
        "fragments of live versions only, and empty GC queues",
        || {
            let (meta, live, last) = (&meta, &live, &last);
            async move {
                let inv = match inventory(meta).await {
                    Ok(inv) => inv,
                    Err(e) => {
                        *last.lock().unwrap() = format!("inventory: {e}");
                        return None;
                    }
                };
                let extra = inv.difference(live).count();
                let missing = live.difference(&inv).count();
                let empty = gc_queues_empty(meta).await.unwrap_or(false);
                *last.lock().unwrap() = format!(
                    "{} fragments, {extra} not live, {missing} live ones missing, gc queues empty: {empty}",
                    inv.len()
                );
                (extra == 0 && missing == 0 && empty).then_some(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {}\n{}", last.lock().unwrap(), c.log_tail(30)));
    // The live objects still read back whole.
    assert_eq!(crate::s3::get(&s3, &b, "a").await, data(5_000_000, 11));
    assert_eq!(crate::s3::get(&s3, &b, "d").await, data(103_000, 3));
}

/// The `shale admin status` row of data node `id`.
fn status_row(status: &str, id: u64) -> Option<String> {
    let id = id.to_string();
    status
        .lines()
        .skip_while(|l| !l.starts_with("DATA NODES"))
        .take_while(|l| !l.starts_with("META GROUPS"))
        .find(|l| l.split_whitespace().next() == Some(id.as_str()))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_datanode_is_marked_down_with_a_reason_and_up_after_restart() {
    // Data nodes heartbeat every 5 s: 12 s of silence is down.
    let mut c = MultiCluster::start_with(
        0,
        "[maintain]\ndown_after_secs = 12\ndead_after_secs = 3600\ndetector_tick_ms = 200\n",
    )
    .await
    .expect("starting the cluster");
    let meta = c.meta().await.expect("meta client");
    let node = NodeId(3);
    c.kill9_datanode(2);
    let record = poll_until(Duration::from_secs(90), "node 3 down", || {
        let meta = &meta;
        async move {
            let nodes = meta.nodes().await.ok()?;
            nodes
                .into_iter()
                .find(|n| n.info.id == node && n.info.state == NodeState::Down)
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.log_tails(20)));
    assert!(
        record.state_reason.starts_with("no heartbeat for "),
        "{record:?}"
    );
    assert!(record.state_changed_ms > 0);
    let status = c.admin(&["status"]);
    let row = status_row(&status, 3).unwrap_or_else(|| panic!("no row for node 3:\n{status}"));
    assert!(row.contains("down (no heartbeat for "), "{row}");
    assert!(status.contains("STATE CHANGED"), "{status}");

    c.restart_datanode(2).expect("restarting data node 3");
    poll_until(Duration::from_secs(90), "node 3 up again", || {
        let meta = &meta;
        async move {
            let nodes = meta.nodes().await.ok()?;
            nodes
                .into_iter()
                .find(|n| n.info.id == node && n.info.state == NodeState::Up)
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.log_tails(20)));
    let row = status_row(&c.admin(&["status"]), 3).unwrap();
    assert!(row.contains("up (heartbeating again)"), "{row}");

    // A disk marked failed stays failed across heartbeats, until restored.
    c.admin(&[
        "disk",
        "fail",
        "--node",
        "4",
        "--disk",
        "0",
        "--reason",
        "smart errors",
    ]);
    let before = heartbeats_of(&meta, NodeId(4)).await;
    let rec = poll_until(Duration::from_secs(60), "a heartbeat of node 4", || {
        let meta = &meta;
        async move {
            let nodes = meta.nodes().await.ok()?;
            nodes
                .into_iter()
                .find(|n| n.info.id == NodeId(4) && n.heartbeats > before)
        }
    })
    .await
    .unwrap();
    assert_eq!(rec.info.disk(DiskId(0)).unwrap().state, DiskState::Failed);
    assert_eq!(rec.failed_disks[&DiskId(0)].reason, "smart errors");
    let row = status_row(&c.admin(&["status"]), 4).unwrap();
    assert!(row.contains("disk 0 (smart errors"), "{row}");
    c.admin(&["disk", "restore", "--node", "4", "--disk", "0"]);
    let rec = heartbeats_record(&meta, NodeId(4)).await;
    assert_eq!(rec.info.disk(DiskId(0)).unwrap().state, DiskState::Healthy);
    assert!(rec.failed_disks.is_empty());
}

async fn heartbeats_record(
    meta: &MetaClient,
    node: NodeId,
) -> meta_raft::state_machine::NodeRecord {
    meta.nodes()
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.info.id == node)
        .unwrap()
}

async fn heartbeats_of(meta: &MetaClient, node: NodeId) -> u64 {
    heartbeats_record(meta, node).await.heartbeats
}
