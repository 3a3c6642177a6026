//! `MetaClient` against three in-process meta replicas (see `service_test::TestCluster`)
//! with four object groups; bucket `photos` spans groups 1–3 with a split inside the
//! common prefix `b/`. Buckets across groups, objects and versioning, listings checked
//! against a simple model, multipart, root records and the GC queue, leader hints, and
//! fail-over after the leader's replica stops.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::cluster::{DiskInfo, DiskState, FragmentLocation, NodeInfo, NodeState};
use common::env::Clock;
use common::ids::{DiskId, GroupId, NodeId, RackId, StripeId};
use proto::meta as pb;

use crate::client::{MetaClient, MetaClientError};
use crate::service::ROOT_GROUP;
use crate::service_test::{at_leader, code_of, photos_map, req, TestCluster, CLUSTER, CODEC};
use crate::state_machine::{
    AbortMultipartUpload, AccessKey, BucketRecord, CompleteMultipartUpload, CompletedPart,
    CreateMultipartUpload, CurrentVersion, DeleteObject, ListObjectsParams, ListUploadsParams,
    ListVersionsParams, ObjectBody, ObjectMeta, Precondition, PutObject, Reason, RecordPart,
    StripeRecord, Versioning,
};
use crate::state_machine::{ReplacePlacement, StripeOwner};

fn rt() -> common::env::BlockingRuntime {
    common::env::BlockingRuntime::new(2).expect("runtime")
}

async fn client(cluster: &TestCluster) -> MetaClient {
    MetaClient::connect(cluster.seeds(), CLUSTER)
        .await
        .expect("connect")
}

fn stripe(id: u128, data_len: u64) -> StripeRecord {
    StripeRecord {
        id: StripeId(id),
        data_len,
        placement: (1..=3)
            .map(|n| FragmentLocation {
                node: NodeId(n),
                disk: DiskId(0),
            })
            .collect(),
    }
}

fn put(bucket: &str, key: &str, version_id: &str, data: &[u8]) -> PutObject {
    PutObject {
        bucket: bucket.into(),
        key: key.into(),
        version_id: version_id.into(),
        created_ms: 10,
        owner: "alice".into(),
        size: data.len() as u64,
        etag: format!("etag-{}", String::from_utf8_lossy(data)),
        checksums: BTreeMap::new(),
        meta: ObjectMeta::default(),
        body: ObjectBody::Inline(data.to_vec()),
        preconditions: Vec::new(),
    }
}

fn delete(bucket: &str, key: &str, version_id: Option<&str>, marker: &str) -> DeleteObject {
    DeleteObject {
        bucket: bucket.into(),
        key: key.into(),
        version_id: version_id.map(str::to_owned),
        created_ms: 20,
        owner: "alice".into(),
        marker_version_id: marker.into(),
        preconditions: Vec::new(),
    }
}

fn rejected(r: Result<impl std::fmt::Debug, MetaClientError>) -> Reason {
    match r {
        Err(MetaClientError::Rejected(reason)) => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn buckets_span_groups_and_are_created_and_deleted_consistently() {
    rt().block_on(async {
        let cluster = TestCluster::start(photos_map).await;
        let c = client(&cluster).await;
        for b in ["photos", "zeta", "alpha"] {
            c.create_bucket(b, "alice", 1, Versioning::Unversioned)
                .await
                .expect("create");
        }
        assert_eq!(
            rejected(
                c.create_bucket("photos", "alice", 2, Versioning::Unversioned)
                    .await
            ),
            Reason::BucketAlreadyOwnedByYou
        );
        assert_eq!(
            rejected(
                c.create_bucket("photos", "bob", 2, Versioning::Unversioned)
                    .await
            ),
            Reason::BucketAlreadyExists
        );
        assert_eq!(
            rejected(c.create_bucket("", "bob", 2, Versioning::Unversioned).await),
            Reason::InvalidBucketName
        );
        let b = c.get_bucket("photos").await.expect("head");
        assert_eq!((b.owner.as_str(), b.created_ms), ("alice", 1));
        let names = |v: Vec<BucketRecord>| v.into_iter().map(|b| b.name).collect::<Vec<_>>();
        assert_eq!(
            names(c.list_buckets(Some("alice")).await.expect("list")),
            ["alpha", "photos", "zeta"]
        );
        assert!(c.list_buckets(Some("bob")).await.expect("list").is_empty());

        // Every group of `photos` has the bucket: keys in groups 1, 2 and 3.
        for key in ["a", "c", "e"] {
            c.put_object(&put("photos", key, "v", b"x"))
                .await
                .expect("put");
        }
        assert_eq!(
            rejected(c.delete_bucket("photos").await),
            Reason::BucketNotEmpty
        );
        // Refused without side effects: every part of the bucket still takes writes.
        for key in ["a2", "c2", "e2"] {
            c.put_object(&put("photos", key, "v", b"y"))
                .await
                .expect("put");
        }
        // The delete step itself rolls back: group 1 is deleted (empty after removing
        // its keys), group 2 refuses (not empty), and group 1 gets the bucket back.
        for key in ["a", "a2"] {
            c.delete_object(&delete("photos", key, None, "m"))
                .await
                .expect("delete");
        }
        let record = c.get_bucket("photos").await.expect("head");
        assert_eq!(
            rejected(
                c.delete_in_groups("photos", &[GroupId(1), GroupId(2), GroupId(3)], &record)
                    .await
            ),
            Reason::BucketNotEmpty
        );
        c.put_object(&put("photos", "a3", "v", b"z"))
            .await
            .expect("group 1 has the bucket again");

        // Emptied, the bucket goes away everywhere, and the name is free again.
        for key in ["a3", "c", "c2", "e", "e2"] {
            c.delete_object(&delete("photos", key, None, "m"))
                .await
                .expect("delete");
        }
        c.delete_bucket("photos")
            .await
            .expect("delete empty bucket");
        assert_eq!(rejected(c.get_bucket("photos").await), Reason::NoSuchBucket);
        assert_eq!(
            rejected(c.delete_bucket("photos").await),
            Reason::NoSuchBucket
        );
        for key in ["a", "c", "e"] {
            assert_eq!(
                rejected(c.put_object(&put("photos", key, "v", b"x")).await),
                Reason::NoSuchBucket,
                "{key}"
            );
        }
        c.create_bucket("photos", "bob", 3, Versioning::Unversioned)
            .await
            .expect("another owner takes the free name");
        assert_eq!(c.get_bucket("photos").await.expect("head").owner, "bob");

        // A create that died after the root group: the owner's retry completes it.
        at_leader(&cluster, ROOT_GROUP, |mut m| async move {
            m.create_bucket(req(pb::CreateBucketRequest {
                group_id: 0,
                name: "pics".into(),
                owner: "alice".into(),
                created_ms: 4,
                versioning: pb::Versioning::Unversioned as i32,
            }))
            .await
        })
        .await
        .expect("root-only create");
        assert_eq!(
            rejected(c.put_object(&put("pics", "k", "v", b"x")).await),
            Reason::NoSuchBucket,
            "group 3 does not have it yet"
        );
        assert_eq!(
            rejected(
                c.create_bucket("pics", "alice", 5, Versioning::Unversioned)
                    .await
            ),
            Reason::BucketAlreadyOwnedByYou
        );
        c.put_object(&put("pics", "k", "v", b"x"))
            .await
            .expect("the retried create repaired group 3");
        cluster.shutdown().await;
    });
}

#[test]
fn objects_versioning_multipart_root_records_and_gc() {
    rt().block_on(async {
        let cluster = TestCluster::start(photos_map).await;
        let c = client(&cluster).await;
        for b in ["alpha", "zeta", "photos"] {
            c.create_bucket(b, "alice", 1, Versioning::Unversioned)
                .await
                .expect("create");
        }
        // Boxed steps keep each poll frame small (debug builds under madsim run the
        // whole test on one thread stack).
        Box::pin(objects_in_buckets_of_different_groups(&c)).await;
        Box::pin(versioning_across_groups(&c)).await;
        Box::pin(multipart(&c)).await;
        Box::pin(root_records(&c)).await;
        cluster.shutdown().await;
    });
}

/// Objects in buckets of groups 1 and 4: put, head, get, conditional writes, delete, GC.
async fn objects_in_buckets_of_different_groups(c: &MetaClient) {
    // Objects in buckets of different groups (1 and 4).
    let mut striped = put("zeta", "y", "v", b"");
    striped.size = 8;
    striped.etag = "s1".into();
    striped.body = ObjectBody::Stripes {
        codec: CODEC,
        stripes: vec![stripe(1, 4), stripe(2, 4)],
    };
    striped.meta.content_type = Some("image/png".into());
    let put_x = c
        .put_object(&put("alpha", "x", "v", b"hello"))
        .await
        .expect("put");
    assert_eq!(put_x.version_id, "null");
    let put_y = c.put_object(&striped).await.expect("put");
    match c.head_object("alpha", "x").await.expect("head") {
        CurrentVersion::Object(v) => {
            assert_eq!(v.body, ObjectBody::Inline(b"hello".to_vec()));
            assert_eq!(v.seq, put_x.seq);
        }
        other => panic!("{other:?}"),
    }
    match c.head_object("zeta", "y").await.expect("head") {
        CurrentVersion::Object(v) => {
            assert_eq!(v.body, striped.body);
            assert_eq!(v.meta.content_type.as_deref(), Some("image/png"));
            assert_eq!((v.seq, v.size), (put_y.seq, 8));
        }
        other => panic!("{other:?}"),
    }
    assert!(c
        .get_version("zeta", "y", "null")
        .await
        .expect("get")
        .is_some());
    assert_eq!(c.get_version("zeta", "y", "nope").await.expect("get"), None);
    assert_eq!(
        c.head_object("zeta", "absent").await.expect("head"),
        CurrentVersion::Absent
    );
    assert_eq!(
        rejected(c.head_object("nobucket", "k").await),
        Reason::NoSuchBucket
    );
    // Conditional writes.
    let mut cond = put("alpha", "x", "v", b"again");
    cond.preconditions = vec![Precondition::KeyAbsent];
    assert_eq!(
        rejected(c.put_object(&cond).await),
        Reason::PreconditionFailed
    );
    cond.preconditions = vec![Precondition::CurrentEtagEquals("wrong".into())];
    assert_eq!(
        rejected(c.put_object(&cond).await),
        Reason::PreconditionFailed
    );
    cond.preconditions = vec![Precondition::CurrentEtagEquals("\"etag-hello\"".into())];
    c.put_object(&cond).await.expect("matching etag");
    // Unversioned delete removes the object; old stripes of an overwrite go to GC.
    c.delete_object(&delete("alpha", "x", None, "m"))
        .await
        .expect("delete");
    assert_eq!(
        c.head_object("alpha", "x").await.expect("head"),
        CurrentVersion::Absent
    );
    let mut overwrite = striped.clone();
    overwrite.body = ObjectBody::Stripes {
        codec: CODEC,
        stripes: vec![stripe(3, 8)],
    };
    c.put_object(&overwrite).await.expect("overwrite");
    let gc = c.gc_take(GroupId(4), None, 100).await.expect("gc take");
    let queued: BTreeSet<StripeId> = gc.iter().map(|e| e.stripe).collect();
    assert_eq!(queued, [StripeId(1), StripeId(2)].into());
    assert!(gc.iter().all(|e| e.fragments.len() == 3));
    let ids: Vec<_> = gc.iter().map(|e| e.id).collect();
    assert_eq!(c.gc_ack(GroupId(4), &ids).await.expect("ack"), 2);
    assert!(c
        .gc_take(GroupId(4), None, 100)
        .await
        .expect("gc take")
        .is_empty());
}

/// Versioning on `photos` (groups 1–3): versions, delete markers, suspension.
async fn versioning_across_groups(c: &MetaClient) {
    // Versioning on a bucket spanning groups 1–3.
    c.set_bucket_versioning("photos", Versioning::Enabled)
        .await
        .expect("enable");
    assert_eq!(
        c.get_bucket("photos").await.expect("head").versioning,
        Versioning::Enabled
    );
    for key in ["a", "c", "e"] {
        // One key in each group: every group applies the new state.
        let v1 = c
            .put_object(&put("photos", key, "v1", b"1"))
            .await
            .expect("put");
        let v2 = c
            .put_object(&put("photos", key, "v2", b"2"))
            .await
            .expect("put");
        assert_eq!(
            (v1.version_id.as_str(), v2.version_id.as_str()),
            ("v1", "v2")
        );
        let d = c
            .delete_object(&delete("photos", key, None, "dm"))
            .await
            .expect("delete marker");
        assert_eq!(
            (d.version_id.as_deref(), d.delete_marker),
            (Some("dm"), true)
        );
        match c.head_object("photos", key).await.expect("head") {
            CurrentVersion::DeleteMarker(m) => assert_eq!(m.version_id, "dm"),
            other => panic!("{key}: {other:?}"),
        }
        let old = c.get_version("photos", key, "v1").await.expect("get");
        assert_eq!(old.map(|v| v.body), Some(ObjectBody::Inline(b"1".to_vec())));
        c.delete_object(&delete("photos", key, Some("dm"), ""))
            .await
            .expect("remove the marker");
        match c.head_object("photos", key).await.expect("head") {
            CurrentVersion::Object(v) => assert_eq!(v.version_id, "v2"),
            other => panic!("{key}: {other:?}"),
        }
        assert_eq!(
            rejected(
                c.delete_object(&delete("photos", key, Some("v9"), ""))
                    .await
            ),
            Reason::NoSuchVersion
        );
    }
    c.set_bucket_versioning("photos", Versioning::Suspended)
        .await
        .expect("suspend");
    let s = c
        .put_object(&put("photos", "e", "v3", b"3"))
        .await
        .expect("put");
    assert_eq!(s.version_id, "null");
    assert_eq!(
        rejected(
            c.set_bucket_versioning("photos", Versioning::Unversioned)
                .await
        ),
        Reason::InvalidArgument("versioning can only be set to Enabled or Suspended".to_owned())
    );
}

/// Multipart in group 4: happy path, then the errors.
async fn multipart(c: &MetaClient) {
    // Multipart: happy path in group 4, then the errors.
    let create = |upload_id: &str| CreateMultipartUpload {
        bucket: "zeta".into(),
        key: "big".into(),
        upload_id: upload_id.into(),
        initiated_ms: 30,
        owner: "alice".into(),
        meta: ObjectMeta::default(),
        codec: CODEC,
        checksum_algorithm: None,
    };
    let part = |upload_id: &str, n: u32, stripe_id: u128, size: u64| RecordPart {
        bucket: "zeta".into(),
        key: "big".into(),
        upload_id: upload_id.into(),
        part_number: n,
        size,
        etag: format!("{:032x}", n),
        checksums: BTreeMap::new(),
        stripes: vec![stripe(stripe_id, size)],
        created_ms: 31,
    };
    let complete = |upload_id: &str, parts: &[(u32, String)]| CompleteMultipartUpload {
        bucket: "zeta".into(),
        key: "big".into(),
        upload_id: upload_id.into(),
        parts: parts
            .iter()
            .map(|(n, e)| CompletedPart {
                part_number: *n,
                etag: e.clone(),
            })
            .collect(),
        min_part_size: 10,
        version_id: "mv".into(),
        created_ms: 32,
        checksums: BTreeMap::new(),
        preconditions: Vec::new(),
    };
    c.create_multipart_upload(&create("up1"))
        .await
        .expect("create upload");
    assert_eq!(
        c.get_upload("zeta", "big", "up1").await.expect("get").codec,
        CODEC
    );
    c.record_part(&part("up1", 1, 11, 10))
        .await
        .expect("part 1");
    c.record_part(&part("up1", 2, 12, 3)).await.expect("part 2");
    c.record_part(&part("up1", 3, 13, 3)).await.expect("part 3");
    let listed = c
        .list_parts("zeta", "big", "up1", 0, 2)
        .await
        .expect("list parts");
    assert_eq!(
        listed
            .parts
            .iter()
            .map(|p| p.part_number)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        (listed.is_truncated, listed.next_part_number_marker),
        (true, Some(2))
    );
    let e = |n: u32| format!("{n:032x}");
    assert_eq!(
        rejected(
            c.complete_multipart_upload(&complete("up1", &[(2, e(2)), (1, e(1))]))
                .await
        ),
        Reason::InvalidPartOrder
    );
    assert_eq!(
        rejected(
            c.complete_multipart_upload(&complete("up1", &[(1, e(1)), (2, e(9))]))
                .await
        ),
        Reason::InvalidPart { part_number: 2 }
    );
    assert_eq!(
        rejected(
            c.complete_multipart_upload(&complete("up1", &[(2, e(2)), (3, e(3))]))
                .await
        ),
        Reason::EntityTooSmall { part_number: 2 }
    );
    assert_eq!(
        rejected(
            c.complete_multipart_upload(&complete("nope", &[(1, e(1))]))
                .await
        ),
        Reason::NoSuchUpload
    );
    assert_eq!(
        rejected(c.record_part(&part("up1", 0, 14, 3)).await),
        Reason::InvalidPartNumber
    );
    let done = c
        .complete_multipart_upload(&complete("up1", &[(1, e(1)), (2, e(2))]))
        .await
        .expect("complete");
    assert!(done.etag.ends_with("-2"), "{}", done.etag);
    assert_eq!(done.size, 13);
    // A retried Complete (its answer lost) gets the same answer; another list does not.
    assert_eq!(
        c.complete_multipart_upload(&complete("up1", &[(1, e(1)), (2, e(2))]))
            .await
            .expect("retried complete"),
        done
    );
    assert_eq!(
        rejected(
            c.complete_multipart_upload(&complete("up1", &[(1, e(1)), (3, e(3))]))
                .await
        ),
        Reason::NoSuchUpload
    );
    match c.head_object("zeta", "big").await.expect("head") {
        CurrentVersion::Object(v) => {
            assert!(matches!(&v.body, ObjectBody::Multipart { parts, .. } if parts.len() == 2));
            assert_eq!(v.etag, done.etag);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rejected(c.get_upload("zeta", "big", "up1").await),
        Reason::NoSuchUpload
    );
    c.create_multipart_upload(&create("up2"))
        .await
        .expect("create upload");
    c.record_part(&part("up2", 1, 21, 10)).await.expect("part");
    assert_eq!(
        c.abort_multipart_upload(&AbortMultipartUpload {
            bucket: "zeta".into(),
            key: "big".into(),
            upload_id: "up2".into(),
        })
        .await
        .expect("abort"),
        1
    );
    assert_eq!(
        rejected(c.list_parts("zeta", "big", "up2", 0, 10).await),
        Reason::NoSuchUpload
    );
}

/// Root-group records: nodes, cluster map, access keys, the group map.
async fn root_records(c: &MetaClient) {
    // Root records: nodes, cluster map, access keys.
    let node = NodeInfo {
        id: NodeId(7),
        rack: RackId("r1".into()),
        addr: "127.0.0.1:9".into(),
        state: NodeState::Up,
        disks: vec![DiskInfo {
            id: DiskId(0),
            state: DiskState::Healthy,
            capacity_bytes: 100,
            used_bytes: 1,
        }],
    };
    c.register_node(&node, 100).await.expect("register");
    let mut disks = node.disks.clone();
    disks[0].used_bytes = 50;
    c.heartbeat(NodeId(7), 200, &disks)
        .await
        .expect("heartbeat");
    c.set_node_state(NodeId(7), NodeState::Draining, "maintenance")
        .await
        .expect("state");
    let nodes = c.nodes().await.expect("nodes");
    assert_eq!(nodes.len(), 1);
    assert_eq!(
        (nodes[0].last_heartbeat_ms, nodes[0].state_reason.as_str()),
        (200, "maintenance")
    );
    let map = c.cluster_map().await.expect("cluster map");
    assert_eq!(map.nodes[&NodeId(7)].state, NodeState::Draining);
    assert_eq!(map.nodes[&NodeId(7)].disks[0].used_bytes, 50);
    assert!(matches!(
        rejected(c.heartbeat(NodeId(8), 1, &[]).await),
        Reason::InvalidArgument(_)
    ));
    let key = AccessKey {
        id: "AKID".into(),
        secret: "s3cr3t".into(),
        user: "alice".into(),
        created_ms: 5,
    };
    c.create_access_key(&key).await.expect("create key");
    assert_eq!(
        c.get_access_key("AKID").await.expect("get"),
        Some(key.clone())
    );
    assert_eq!(c.get_access_key("nope").await.expect("get"), None);
    assert_eq!(c.list_access_keys().await.expect("list"), vec![key]);
    c.delete_access_key("AKID").await.expect("delete key");
    assert!(c.list_access_keys().await.expect("list").is_empty());
    assert_eq!(
        c.object_groups().await.expect("groups"),
        [GroupId(1), GroupId(2), GroupId(3), GroupId(4)]
    );
}

// ---- listings against a model ----

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    /// A key (objects), or `key@version` / `key#upload`.
    Row(String, String),
    Prefix(String),
}

impl Item {
    fn sort_key(&self) -> &str {
        match self {
            Item::Row(k, _) | Item::Prefix(k) => k,
        }
    }
}

/// S3 roll-up of `rows` (already in listing order) under `prefix` and `delimiter`.
fn model(rows: &[(String, String)], prefix: &str, delimiter: Option<&str>) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    for (k, v) in rows {
        let Some(rest) = k.strip_prefix(prefix) else {
            continue;
        };
        if let Some(d) = delimiter {
            if let Some(pos) = rest.find(d) {
                let p = format!("{prefix}{}", &rest[..pos + d.len()]);
                if out.last() != Some(&Item::Prefix(p.clone())) {
                    out.push(Item::Prefix(p));
                }
                continue;
            }
        }
        out.push(Item::Row(k.clone(), v.clone()));
    }
    out
}

/// One page's entries and prefixes in listing order (stable on equal keys, so the
/// versions of one key keep their order).
fn ordered(rows: Vec<Item>, prefixes: Vec<String>) -> Vec<Item> {
    let mut all = rows;
    all.extend(prefixes.into_iter().map(Item::Prefix));
    all.sort_by(|a, b| a.sort_key().cmp(b.sort_key()));
    all
}

/// Checks a sequence of pages: full when truncated, and together equal to `expected`.
fn check_pages(pages: &[(Vec<Item>, bool)], max: usize, expected: &[Item], what: &str) {
    let all: Vec<Item> = pages.iter().flat_map(|(i, _)| i.clone()).collect();
    assert_eq!(all, expected, "{what}");
    for (i, (items, truncated)) in pages.iter().enumerate() {
        let last = i + 1 == pages.len();
        assert_eq!(*truncated, !last, "{what}: page {i} truncated flag");
        if *truncated {
            assert_eq!(items.len(), max, "{what}: page {i} is full");
        } else {
            assert!(items.len() <= max, "{what}: page {i}");
        }
    }
}

async fn list_all_objects(
    c: &MetaClient,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    max: u32,
    start_after: Option<&str>,
) -> Vec<(Vec<Item>, bool)> {
    let mut pages = Vec::new();
    let mut cursor = start_after.map(str::to_owned);
    loop {
        let page = c
            .list_objects(
                bucket,
                &ListObjectsParams {
                    prefix: prefix.into(),
                    delimiter: delimiter.map(str::to_owned),
                    start_after: cursor.clone(),
                    max_keys: max,
                    end_before: None,
                },
            )
            .await
            .expect("list");
        let rows = page
            .entries
            .iter()
            .map(|e| Item::Row(e.key.clone(), String::new()))
            .collect();
        pages.push((ordered(rows, page.common_prefixes), page.is_truncated));
        if !page.is_truncated {
            assert_eq!(page.next, None);
            return pages;
        }
        cursor = Some(page.next.expect("a truncated page has a resume key"));
        assert!(pages.len() < 100, "listing does not terminate");
    }
}

async fn list_all_versions(
    c: &MetaClient,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    max: u32,
) -> Vec<(Vec<Item>, bool)> {
    let mut pages = Vec::new();
    let (mut key_marker, mut version_id_marker) = (None, None);
    loop {
        let page = c
            .list_object_versions(
                bucket,
                &ListVersionsParams {
                    prefix: prefix.into(),
                    delimiter: delimiter.map(str::to_owned),
                    key_marker: key_marker.clone(),
                    version_id_marker: version_id_marker.clone(),
                    max_keys: max,
                    end_before: None,
                },
            )
            .await
            .expect("list versions");
        let rows = page
            .versions
            .iter()
            .map(|v| {
                let latest = if v.is_latest { "*" } else { "" };
                Item::Row(v.key.clone(), format!("{}{latest}", v.version_id))
            })
            .collect();
        pages.push((ordered(rows, page.common_prefixes), page.is_truncated));
        if !page.is_truncated {
            return pages;
        }
        key_marker = page.next_key_marker;
        version_id_marker = page.next_version_id_marker;
        assert!(key_marker.is_some(), "a truncated page has a key marker");
        assert!(pages.len() < 100, "listing does not terminate");
    }
}

async fn list_all_uploads(
    c: &MetaClient,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    max: u32,
) -> Vec<(Vec<Item>, bool)> {
    let mut pages = Vec::new();
    let (mut key_marker, mut upload_id_marker) = (None, None);
    loop {
        let page = c
            .list_multipart_uploads(
                bucket,
                &ListUploadsParams {
                    prefix: prefix.into(),
                    delimiter: delimiter.map(str::to_owned),
                    key_marker: key_marker.clone(),
                    upload_id_marker: upload_id_marker.clone(),
                    max_uploads: max,
                    end_before: None,
                },
            )
            .await
            .expect("list uploads");
        let rows = page
            .uploads
            .iter()
            .map(|u| Item::Row(u.key.clone(), u.upload_id.clone()))
            .collect();
        pages.push((ordered(rows, page.common_prefixes), page.is_truncated));
        if !page.is_truncated {
            return pages;
        }
        key_marker = page.next_key_marker;
        upload_id_marker = page.next_upload_id_marker;
        assert!(key_marker.is_some(), "a truncated page has a key marker");
        assert!(pages.len() < 100, "listing does not terminate");
    }
}

#[test]
fn listings_across_groups_match_a_model() {
    rt().block_on(async {
        let cluster = TestCluster::start(photos_map).await;
        let c = client(&cluster).await;
        for b in ["photos", "zeta"] {
            c.create_bucket(b, "alice", 1, Versioning::Unversioned)
                .await
                .expect("create");
        }
        // Group 1 holds keys below "b/m", group 2 up to "d", group 3 the rest: the common
        // prefix "b/" straddles groups 1 and 2.
        let keys = [
            "a/1", "a/2", "a1", "b/a", "b/k", "b/m", "b/n", "b/z", "bb", "c", "c/x/1", "c/x/2",
            "c/y", "d", "d/1", "d/2/x", "e", "zz",
        ];
        for k in keys {
            c.put_object(&put("photos", k, "v", k.as_bytes()))
                .await
                .expect("put");
        }
        let rows: Vec<(String, String)> = keys
            .iter()
            .map(|k| ((*k).to_owned(), String::new()))
            .collect();
        let listings: [(&str, Option<&str>); 6] = [
            ("", None),
            ("", Some("/")),
            ("b/", Some("/")),
            ("c/", Some("/")),
            ("d", Some("/")),
            ("zz", None),
        ];
        for (prefix, delimiter) in listings {
            let expected = model(&rows, prefix, delimiter);
            for max in [1, 2, 3, 4, 5, 7, 1000] {
                let pages = list_all_objects(&c, "photos", prefix, delimiter, max, None).await;
                check_pages(
                    &pages,
                    max as usize,
                    &expected,
                    &format!("objects prefix {prefix:?} delimiter {delimiter:?} max {max}"),
                );
            }
        }
        // Resuming from arbitrary keys, including one inside the straddling prefix.
        for start in ["a", "b/", "b/k", "b/m", "bz", "c/x/1", "d/2/x", "zz", "zzz"] {
            let after: Vec<(String, String)> = rows
                .iter()
                .filter(|(k, _)| k.as_str() > start)
                .cloned()
                .collect();
            for max in [2, 1000] {
                let pages = list_all_objects(&c, "photos", "", Some("/"), max, Some(start)).await;
                check_pages(
                    &pages,
                    max as usize,
                    &model(&after, "", Some("/")),
                    &format!("objects after {start:?} max {max}"),
                );
            }
        }
        // Edge cases: an empty bucket, max_keys 0, a missing bucket.
        let empty = list_all_objects(&c, "zeta", "", None, 10, None).await;
        check_pages(&empty, 10, &[], "empty bucket");
        let zero = list_all_objects(&c, "photos", "", None, 0, None).await;
        check_pages(&zero, 0, &[], "max_keys 0");
        let missing = c
            .list_objects(
                "nobucket",
                &ListObjectsParams {
                    max_keys: 10,
                    ..ListObjectsParams::default()
                },
            )
            .await;
        assert_eq!(rejected(missing), Reason::NoSuchBucket);

        // Versions: enable versioning, add versions and a delete marker across groups.
        c.set_bucket_versioning("photos", Versioning::Enabled)
            .await
            .expect("enable");
        let mut history: BTreeMap<String, Vec<String>> = keys
            .iter()
            .map(|k| ((*k).to_owned(), vec!["null".to_owned()]))
            .collect();
        for (k, v) in [
            ("b/k", "v2"),
            ("b/k", "v3"),
            ("b/n", "v2"),
            ("c", "v2"),
            ("zz", "v2"),
        ] {
            c.put_object(&put("photos", k, v, v.as_bytes()))
                .await
                .expect("put version");
            history.get_mut(k).expect("key").push(v.to_owned());
        }
        c.delete_object(&delete("photos", "a1", None, "dm1"))
            .await
            .expect("marker");
        history.get_mut("a1").expect("key").push("dm1".to_owned());
        let version_rows: Vec<(String, String)> = history
            .iter()
            .flat_map(|(k, vs)| {
                vs.iter().rev().enumerate().map(move |(i, v)| {
                    let latest = if i == 0 { "*" } else { "" };
                    (k.clone(), format!("{v}{latest}"))
                })
            })
            .collect();
        for (prefix, delimiter) in [("", None), ("", Some("/")), ("b/", None)] {
            let expected = model(&version_rows, prefix, delimiter);
            for max in [1, 2, 3, 5, 1000] {
                let pages = list_all_versions(&c, "photos", prefix, delimiter, max).await;
                check_pages(
                    &pages,
                    max as usize,
                    &expected,
                    &format!("versions prefix {prefix:?} delimiter {delimiter:?} max {max}"),
                );
            }
        }
        // A deleted key is not listed as an object, but its versions are.
        let objects = list_all_objects(&c, "photos", "a", None, 1000, None).await;
        assert!(!objects[0]
            .0
            .contains(&Item::Row("a1".into(), String::new())));

        // Multipart uploads in progress across groups.
        let uploads = [
            ("a/u", "u3"),
            ("b/k", "u1"),
            ("b/k", "u2"),
            ("b/x", "u4"),
            ("c/z", "u5"),
            ("e", "u6"),
        ];
        for (k, u) in uploads {
            c.create_multipart_upload(&CreateMultipartUpload {
                bucket: "photos".into(),
                key: k.into(),
                upload_id: u.into(),
                initiated_ms: 1,
                owner: "alice".into(),
                meta: ObjectMeta::default(),
                codec: CODEC,
                checksum_algorithm: None,
            })
            .await
            .expect("create upload");
        }
        let upload_rows: Vec<(String, String)> = uploads
            .iter()
            .map(|(k, u)| ((*k).to_owned(), (*u).to_owned()))
            .collect();
        for (prefix, delimiter) in [("", None), ("", Some("/")), ("b/", None)] {
            let expected = model(&upload_rows, prefix, delimiter);
            for max in [1, 2, 3, 1000] {
                let pages = list_all_uploads(&c, "photos", prefix, delimiter, max).await;
                check_pages(
                    &pages,
                    max as usize,
                    &expected,
                    &format!("uploads prefix {prefix:?} delimiter {delimiter:?} max {max}"),
                );
            }
        }
        cluster.shutdown().await;
    });
}

#[test]
fn client_follows_hints_goes_one_hop_and_survives_the_leaders_shutdown() {
    rt().block_on(async {
        let mut cluster = TestCluster::start(photos_map).await;
        let root_leader = cluster.stable_leader(ROOT_GROUP).await;
        let follower = cluster.follower(ROOT_GROUP).await;

        // Seeded with a follower only: the first call is redirected to the leader.
        let c = MetaClient::connect(vec![cluster.addr(follower)], CLUSTER)
            .await
            .expect("connect through a follower");
        assert!(c.stats().not_leader >= 1, "{:?}", c.stats());
        assert_eq!(c.cached_leader(ROOT_GROUP), Some(cluster.addr(root_leader)));
        c.create_bucket("zeta", "alice", 1, Versioning::Unversioned)
            .await
            .expect("create");
        c.put_object(&put("zeta", "k0", "v", b"0"))
            .await
            .expect("put");

        // Warm: every call is one RPC, straight to the leader.
        let before = c.stats();
        for i in 1..=5 {
            c.put_object(&put("zeta", &format!("k{i}"), "v", b"x"))
                .await
                .expect("put");
            c.head_object("zeta", &format!("k{i}")).await.expect("head");
        }
        let after = c.stats();
        assert_eq!(after.rpcs - before.rpcs, 10, "{before:?} -> {after:?}");
        assert_eq!(after.not_leader, before.not_leader);

        // Stop the replica leading zeta's group (4); calls succeed again after the
        // election, within a bounded time, and every acknowledged write is there.
        let victim = cluster.stable_leader(GroupId(4)).await;
        cluster.stop_replica(victim).await;
        let clock = Clock::new();
        let started = clock.now();
        let mut unavailable = 0;
        loop {
            match c.put_object(&put("zeta", "after", "v", b"a")).await {
                Ok(_) => break,
                Err(MetaClientError::Unavailable { .. }) => unavailable += 1,
                Err(e) => panic!("unexpected error during fail-over: {e}"),
            }
            assert!(
                clock.now().duration_since(started) < Duration::from_secs(20),
                "no fail-over within 20 s ({unavailable} unavailable answers)"
            );
        }
        for i in 0..=5 {
            assert!(
                matches!(
                    c.head_object("zeta", &format!("k{i}")).await,
                    Ok(CurrentVersion::Object(_))
                ),
                "k{i} survived"
            );
        }
        assert_ne!(
            c.cached_leader(GroupId(4)),
            Some(cluster.addr(victim)),
            "the client moved to the new leader"
        );
        // The root group works too (it may have lost its leader as well).
        assert_eq!(c.get_bucket("zeta").await.expect("head").owner, "alice");
        cluster.shutdown().await;
    });
}

/// A voter is added to and removed from every group over the MetaService RPCs (3 → 4 →
/// 3 replicas, removing the root group's leader), the group map follows, the new member
/// has every entry, and the cluster serves through the change.
#[test]
fn voters_are_added_and_removed_over_rpc_three_to_four_to_three() {
    rt().block_on(async {
        let mut cluster = TestCluster::start(photos_map).await;
        let c = client(&cluster).await;
        c.create_bucket("zeta", "alice", 1, Versioning::Unversioned)
            .await
            .expect("create");
        for i in 0..5 {
            c.put_object(&put("zeta", &format!("k{i}"), "v", b"x"))
                .await
                .expect("put");
        }
        let ids = |m: &BTreeMap<u64, String>| m.keys().copied().collect::<Vec<_>>();
        let statuses = c.group_statuses().await.expect("status");
        assert_eq!(
            statuses.iter().map(|s| s.group.0).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        for s in &statuses {
            assert!(s.is_leader(), "{s:?}");
            assert_eq!(s.leader, Some(s.node_id));
            assert_eq!(ids(&s.voters), [1, 2, 3]);
            assert!(s.learners.is_empty());
            assert!(s.applied_index.is_some(), "{s:?}");
            assert!(s.last_log_index >= s.applied_index, "{s:?}");
            for v in s.voters.keys().filter(|v| **v != s.node_id) {
                assert!(s.replication.contains_key(v), "{s:?}");
            }
        }

        // 3 → 4: node 4 starts empty and joins every group.
        let addr4 = cluster.start_joiner(4).await;
        let added = c.add_voter_all(4, &addr4).await.expect("add voter 4");
        assert_eq!(added.len(), 5);
        for s in &added {
            assert_eq!(ids(&s.voters), [1, 2, 3, 4], "{s:?}");
            assert_eq!(s.voters[&4], addr4);
            assert!(s.learners.is_empty(), "{s:?}");
        }
        // Idempotent: adding it again changes nothing.
        let again = c.add_voter(GroupId(2), 4, &addr4).await.expect("re-add");
        assert_eq!(ids(&again.voters), [1, 2, 3, 4]);
        let map = c.refresh_group_map().await.expect("map");
        for g in &map.groups {
            assert_eq!(ids(&g.members), [1, 2, 3, 4], "group {}", g.group);
        }
        c.put_object(&put("zeta", "k5", "v", b"y"))
            .await
            .expect("put after the join");
        // Node 4 has every group's entries (up to its leader's applied index).
        for s in c.group_statuses().await.expect("status") {
            let raft = cluster.replicas[&4]
                .host
                .registry()
                .get(s.group)
                .expect("group on 4");
            raft.wait(Some(Duration::from_secs(20)))
                .applied_index_at_least(s.applied_index, "node 4 caught up")
                .await
                .expect("node 4 catches up");
        }

        // 4 → 3: remove the root group's leader from every group, then stop it.
        let gone = cluster.stable_leader(ROOT_GROUP).await;
        let removed = c.remove_voter_all(gone).await.expect("remove voter");
        for s in &removed {
            assert!(!s.voters.contains_key(&gone), "{s:?}");
            assert_eq!(s.voters.len(), 3, "{s:?}");
        }
        cluster.stop_replica(gone).await;
        let map = c.refresh_group_map().await.expect("map");
        for g in &map.groups {
            assert!(!g.members.contains_key(&gone), "group {}", g.group);
        }
        // The cluster serves: writes and reads in the object groups and the root group,
        // also from a client seeded with the survivors only.
        c.put_object(&put("zeta", "k6", "v", b"z"))
            .await
            .expect("put after the removal");
        let fresh = client(&cluster).await;
        for i in 0..=6 {
            assert!(
                matches!(
                    fresh.head_object("zeta", &format!("k{i}")).await,
                    Ok(CurrentVersion::Object(_))
                ),
                "k{i}"
            );
        }
        assert_eq!(fresh.get_bucket("zeta").await.expect("head").owner, "alice");
        for s in fresh.group_statuses().await.expect("status") {
            assert!(!s.voters.contains_key(&gone), "{s:?}");
            assert!(s.leader.is_some_and(|l| l != gone), "{s:?}");
        }
        // Leaving a group without voters is refused.
        let root = fresh.group_status(ROOT_GROUP).await.expect("status");
        let mut last = Err(MetaClientError::Internal("none".into()));
        for v in root.voters.keys() {
            last = fresh.remove_voter(GroupId(1), *v).await;
        }
        assert!(
            matches!(
                last,
                Err(MetaClientError::Rejected(Reason::InvalidArgument(_)))
            ),
            "{last:?}"
        );
        cluster.shutdown().await;
    });
}

/// Gateways run client calls on spawned tasks: the futures must be `Send` (checked at
/// compile time; never called).
#[allow(dead_code)]
fn client_futures_are_send(c: &MetaClient, p: &PutObject, l: &ListObjectsParams) {
    fn send<T: Send>(_: T) {}
    send(c.put_object(p));
    send(c.head_object("b", "k"));
    send(c.list_objects("b", l));
    send(c.list_object_versions("b", &ListVersionsParams::default()));
    send(c.list_multipart_uploads("b", &ListUploadsParams::default()));
    send(c.create_bucket("b", "o", 1, Versioning::Enabled));
    send(c.delete_bucket("b"));
    send(c.set_bucket_versioning("b", Versioning::Enabled));
    send(c.gc_take(GroupId(1), None, 1));
    send(c.list_stripes(GroupId(1), None, 1));
}

/// ListStripes: repair's walk over a group's stripes (versions and parts), paged, with
/// the placement ReplacePlacement compares against; routed to one group, linearizable.
#[test]
fn list_stripes_walks_a_group_and_feeds_replace_placement() {
    rt().block_on(async {
        let cluster = TestCluster::start(photos_map).await;
        let c = client(&cluster).await;
        c.create_bucket("zeta", "alice", 1, Versioning::Unversioned)
            .await
            .expect("create");
        let mut striped = put("zeta", "y", "v", b"");
        striped.size = 8;
        striped.body = ObjectBody::Stripes {
            codec: CODEC,
            stripes: vec![stripe(1, 4), stripe(2, 4)],
        };
        let committed = c.put_object(&striped).await.expect("put");
        c.create_multipart_upload(&CreateMultipartUpload {
            bucket: "zeta".into(),
            key: "big".into(),
            upload_id: "u1".into(),
            initiated_ms: 30,
            owner: "alice".into(),
            meta: ObjectMeta::default(),
            codec: CODEC,
            checksum_algorithm: None,
        })
        .await
        .expect("create upload");
        c.record_part(&RecordPart {
            bucket: "zeta".into(),
            key: "big".into(),
            upload_id: "u1".into(),
            part_number: 2,
            size: 3,
            etag: format!("{:032x}", 2),
            checksums: BTreeMap::new(),
            stripes: vec![stripe(3, 3)],
            created_ms: 31,
        })
        .await
        .expect("record part");

        // Pages of one, resumed after the last id, list every stripe once.
        let mut walked = Vec::new();
        let mut after = None;
        loop {
            let page = c
                .list_stripes(GroupId(4), after, 1)
                .await
                .expect("list stripes");
            assert!(page.stripes.len() <= 1);
            walked.extend(page.stripes.iter().cloned());
            if !page.is_truncated {
                break;
            }
            after = page.stripes.last().map(|s| s.id);
        }
        let all = c
            .list_stripes(GroupId(4), None, 1000)
            .await
            .expect("list stripes");
        assert!(!all.is_truncated);
        assert_eq!(walked, all.stripes);
        let ids: BTreeSet<StripeId> = all.stripes.iter().map(|s| s.id).collect();
        assert_eq!(ids, [StripeId(1), StripeId(2), StripeId(3)].into());
        for s in &all.stripes {
            assert_eq!(s.codec, CODEC);
            assert_eq!(s.placement, stripe(0, 0).placement);
            match s.id {
                StripeId(3) => {
                    assert_eq!(
                        s.owner,
                        StripeOwner::Part {
                            upload_id: "u1".into(),
                            part_number: 2
                        }
                    );
                    assert_eq!(s.data_len, 3);
                }
                _ => {
                    assert_eq!(
                        s.owner,
                        StripeOwner::Version {
                            bucket: "zeta".into(),
                            key: "y".into(),
                            version_id: "null".into(),
                            seq: committed.seq,
                        }
                    );
                    assert_eq!(s.data_len, 4);
                }
            }
        }
        // Other groups hold none of these stripes.
        let other = c.list_stripes(GroupId(1), None, 10).await.expect("list");
        assert!(other.stripes.is_empty() && !other.is_truncated);

        // The listed placement is what the compare-and-set expects; a part's stripe is
        // replaced through its group.
        let part_stripe = all.stripes.iter().find(|s| s.id == StripeId(3)).unwrap();
        let mut new = part_stripe.placement.clone();
        new[2] = FragmentLocation {
            node: NodeId(9),
            disk: DiskId(1),
        };
        let cas = ReplacePlacement {
            stripe: StripeId(3),
            expected: part_stripe.placement.clone(),
            new: new.clone(),
        };
        assert_eq!(
            c.replace_placement_in_group(GroupId(4), &cas)
                .await
                .expect("replace"),
            1
        );
        assert_eq!(
            rejected(c.replace_placement_in_group(GroupId(4), &cas).await),
            Reason::PlacementMismatch
        );
        let after_cas = c.list_stripes(GroupId(4), None, 10).await.expect("list");
        let moved = after_cas.stripes.iter().find(|s| s.id == StripeId(3));
        assert_eq!(moved.map(|s| s.placement.clone()), Some(new));

        // The root group is not an object group; a malformed cursor names its field.
        let wrong = at_leader(&cluster, GroupId(4), |mut c| async move {
            c.list_stripes(req(pb::ListStripesRequest {
                group_id: 0,
                after: Default::default(),
                limit: 10,
            }))
            .await
        })
        .await
        .expect_err("group 0 has no stripes");
        assert_eq!(code_of(&wrong), pb::MetaErrorCode::WrongGroup);
        let bad = at_leader(&cluster, GroupId(4), |mut c| async move {
            c.list_stripes(req(pb::ListStripesRequest {
                group_id: 4,
                after: bytes::Bytes::from_static(&[1, 2, 3]),
                limit: 10,
            }))
            .await
        })
        .await
        .expect_err("malformed cursor");
        assert_eq!(code_of(&bad), pb::MetaErrorCode::Malformed);
        assert!(bad.message().contains("list_stripes.after"));
        cluster.shutdown().await;
    });
}
