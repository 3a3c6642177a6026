//! The data-node inventory against real processes (multi-process deployment: 3 meta, 16
//! data nodes in 4 racks, 1 gateway):
//! - the orphan sweep (crate `maintain`, `orphans.rs`): fragments written straight to
//!   data nodes for stripes no PUT ever committed disappear after a short grace, while
//!   every committed object (and the parts of an open multipart upload) keeps all `k+m`
//!   fragments and reads back byte-exact;
//! - repair of fragments missing on Up nodes (`repair.rs` with `repair_inventory_secs`):
//!   a committed fragment's file deleted from a live data node's disk is noticed in the
//!   node's inventory and rebuilt elsewhere by the rack rule.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use common::cluster::{check_placement, FragmentLocation, NodeState, Placement};
use common::ids::{FragmentId, NodeId, StripeId};
use meta_raft::client::MetaClient;
use meta_raft::state_machine::StripeEntry;
use proto::datanode as pb;
use proto::datanode::datanode_service_client::DatanodeServiceClient;
use proto::datanode::ErrorCode;
use tests::cluster::MultiCluster;
use tests::poll_until;

use crate::repair::{all_stripes, cluster_map};
use crate::s3::{data, get, new_bucket, put};

async fn client(addr: &str) -> Option<DatanodeServiceClient<tonic::transport::Channel>> {
    DatanodeServiceClient::connect(format!("http://{addr}"))
        .await
        .ok()
}

/// Writes fragment `id` (a payload of `len` bytes) to disk 0 of the node at `addr`.
async fn put_fragment(addr: &str, id: FragmentId, len: usize) {
    use pb::put_fragment_request::Part;
    let body = data(len, u64::from(id.index) + 7);
    let header = pb::PutFragmentHeader {
        id: Some(id.into()),
        disk: 0,
        codec: u32::from(common::codec::CodecId::ReedSolomonSimd.as_u8()),
        k: 8,
        m: 4,
        length: body.len() as u64,
        crc32c: crc32c::crc32c(&body),
    };
    let msgs = vec![
        pb::PutFragmentRequest {
            part: Some(Part::Header(header)),
        },
        pb::PutFragmentRequest {
            part: Some(Part::Data(Bytes::from(body))),
        },
    ];
    let mut c = client(addr).await.expect("connecting to a data node");
    c.put_fragment(futures::stream::iter(msgs))
        .await
        .unwrap_or_else(|e| panic!("putting orphan fragment {id:?}: {e}"));
}

/// Whether fragment `id` is on disk 0 of the node at `addr`; `None` if it cannot say.
async fn present(addr: &str, id: FragmentId, verify: bool) -> Option<bool> {
    let mut c = client(addr).await?;
    match c
        .stat_fragment(pb::StatFragmentRequest {
            id: Some(id.into()),
            disk: 0,
            verify,
        })
        .await
    {
        Ok(_) => Some(true),
        Err(s) if proto::error_code(&s) == ErrorCode::NotFound => Some(false),
        Err(_) => None,
    }
}

/// Every stripe when each has `k+m` fragments on Up nodes by the rack rule, every one
/// present and verified; else `None`.
async fn all_verified(meta: &MetaClient) -> Option<Vec<StripeEntry>> {
    let map = cluster_map(meta).await.ok()?;
    let stripes = all_stripes(meta).await.ok()?;
    for s in &stripes {
        assert_eq!(
            s.placement.len(),
            usize::from(s.codec.k) + usize::from(s.codec.m)
        );
        check_placement(
            &map,
            &Placement {
                locations: s.placement.clone(),
            },
            s.codec.k,
            s.codec.m,
        )
        .unwrap_or_else(|v| panic!("stripe {} breaks the rack rule: {v}", s.id));
        for (index, loc) in (0u8..).zip(&s.placement) {
            let node = map.node(loc.node)?;
            if node.state != NodeState::Up || loc.disk.0 != 0 {
                return None;
            }
            let id = FragmentId {
                stripe: s.id,
                index,
            };
            if present(&node.addr, id, true).await != Some(true) {
                return None;
            }
        }
    }
    Some(stripes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_of_uncommitted_puts_are_swept_and_committed_fragments_kept() {
    let c = MultiCluster::start_with(
        1,
        "[maintain]\norphan_sweep_interval_secs = 1\norphan_grace_secs = 3\n\
         gc_delay_secs = 1\ngc_tick_ms = 300\nrepair_tick_ms = 1000\n",
    )
    .await
    .expect("starting the cluster");
    let meta = c.meta().await.expect("meta client");
    let s3 = c.s3(0);
    let bucket = new_bucket(&s3, "orphans").await;
    let mut objects = BTreeMap::new();
    for (i, len) in [2usize << 20, 100 << 10, 5 << 20].into_iter().enumerate() {
        let key = format!("obj-{i}");
        let body = data(len, 300 + i as u64);
        put(&s3, &bucket, &key, &body).await;
        objects.insert(key, body);
    }
    // An overwrite (old stripes to the GC queue) and an open multipart upload (its
    // part's stripes are referenced by the part, not by a version).
    let body = data(700 << 10, 399);
    put(&s3, &bucket, "obj-0", &body).await;
    objects.insert("obj-0".into(), body);
    let upload = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key("mp")
        .send()
        .await
        .expect("create upload")
        .upload_id()
        .expect("upload id")
        .to_owned();
    let part = data(1 << 20, 398);
    let etag = s3
        .upload_part()
        .bucket(&bucket)
        .key("mp")
        .upload_id(&upload)
        .part_number(1)
        .body(ByteStream::from(part.clone()))
        .send()
        .await
        .expect("upload part")
        .e_tag()
        .expect("part etag")
        .to_owned();

    // Fragments of two stripes no PUT ever committed, written straight to data nodes.
    let map = cluster_map(&meta).await.expect("map");
    let addrs: Vec<(NodeId, String)> = map.nodes.values().map(|n| (n.id, n.addr.clone())).collect();
    let mut orphans: Vec<(String, FragmentId)> = Vec::new();
    for (s, stripe) in [
        StripeId(0x0dd0_0000_0000_0000_0000_0000_0000_0001),
        StripeId(0x0dd0_0000_0000_0000_0000_0000_0000_0002),
    ]
    .into_iter()
    .enumerate()
    {
        for index in 0u8..6 {
            let (_, addr) = &addrs[(s * 6 + usize::from(index)) % addrs.len()];
            let id = FragmentId { stripe, index };
            put_fragment(addr, id, 64 << 10).await;
            orphans.push((addr.clone(), id));
        }
    }
    let committed_before = all_verified(&meta).await.expect("all committed fragments");

    poll_until(
        Duration::from_secs(90),
        "every orphan fragment swept",
        || {
            let orphans = orphans.clone();
            async move {
                for (addr, id) in &orphans {
                    if present(addr, *id, false).await != Some(false) {
                        return None;
                    }
                }
                Some(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.log_tails(30)));

    // Every committed fragment (versions and the open upload's part) is still there.
    let committed_after = poll_until(
        Duration::from_secs(30),
        "every committed fragment present and verified",
        || all_verified(&meta),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.log_tails(30)));
    let ids = |v: &[StripeEntry]| v.iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(&committed_after),
        ids(&committed_before),
        "stripes vanished"
    );
    for (key, body) in &objects {
        assert!(get(&s3, &bucket, key).await == *body, "{key}");
    }
    let done = CompletedMultipartUpload::builder()
        .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
        .build();
    s3.complete_multipart_upload()
        .bucket(&bucket)
        .key("mp")
        .upload_id(&upload)
        .multipart_upload(done)
        .send()
        .await
        .expect("complete the upload");
    assert!(get(&s3, &bucket, "mp").await == part, "multipart object");
}

/// Where data node `node`'s disk 0 keeps fragment `id` (`datanode/src/store.rs`).
fn fragment_file(c: &MultiCluster, node: NodeId, id: FragmentId) -> PathBuf {
    let hex = id.stripe.to_string();
    c.dir
        .join("data")
        .join(format!("datanode-{}", node.0))
        .join("disk-0")
        .join("frags")
        .join(&hex[..2])
        .join(format!("{hex}.{}", id.index))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragment_missing_on_an_up_node_is_rebuilt_by_the_rack_rule() {
    let c = MultiCluster::start_with(
        1,
        "[maintain]\nrepair_tick_ms = 300\nrepair_inventory_secs = 1\n\
         gc_delay_secs = 1\ngc_tick_ms = 300\n",
    )
    .await
    .expect("starting the cluster");
    let meta = c.meta().await.expect("meta client");
    let s3 = c.s3(0);
    let bucket = new_bucket(&s3, "missing").await;
    let mut objects = BTreeMap::new();
    for (i, len) in [3usize << 20, 150 << 10].into_iter().enumerate() {
        let key = format!("obj-{i}");
        let body = data(len, 500 + i as u64);
        put(&s3, &bucket, &key, &body).await;
        objects.insert(key, body);
    }
    let before = poll_until(Duration::from_secs(30), "a healthy start", || {
        all_verified(&meta)
    })
    .await
    .expect("healthy");
    // Fragment 2 of the first stripe vanishes from its (live, Up) node's disk.
    let victim = &before[0];
    let index = 2u8;
    let old: FragmentLocation = victim.placement[usize::from(index)];
    let id = FragmentId {
        stripe: victim.id,
        index,
    };
    let file = fragment_file(&c, old.node, id);
    std::fs::remove_file(&file).unwrap_or_else(|e| panic!("removing {}: {e}", file.display()));

    let after = poll_until(
        Duration::from_secs(120),
        "the missing fragment rebuilt elsewhere",
        || async {
            let all = all_verified(&meta).await?;
            let s = all.iter().find(|s| s.id == victim.id)?;
            (s.placement[usize::from(index)] != old).then_some(all)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.log_tails(30)));
    assert_eq!(after.len(), before.len(), "no stripe appeared or vanished");
    let s = after.iter().find(|s| s.id == victim.id).expect("victim");
    for (i, (a, b)) in s.placement.iter().zip(&victim.placement).enumerate() {
        if i != usize::from(index) {
            assert_eq!(a, b, "only the missing fragment moved");
        }
    }
    assert_ne!(s.placement[usize::from(index)].node, old.node);
    for (key, body) in &objects {
        assert!(get(&s3, &bucket, key).await == *body, "{key}");
    }
}
