//! The metadata service over three replicas (each a `MetaGroupHost` on its own
//! `SimDisk`, serving the Raft transport and `MetaService` on one loopback address),
//! driven by a raw gRPC client: leader hints, wrong groups, wrong clusters, typed
//! rejections and malformed messages. `TestCluster` is shared with `client_test.rs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::codec::{CodecId, CodecParams};
use common::env::{Disk, SimDisk, SimDiskFaults};
use common::ids::GroupId;
use openraft::rt::WatchReceiver;
use proto::meta as pb;
use proto::meta::meta_service_client::MetaServiceClient;
use proto::meta::meta_service_server::MetaServiceServer;
use proto::meta::MetaErrorCode;
use proto::raft::raft_service_server::RaftServiceServer;
use tonic::transport::Channel;

use crate::network::{RaftGrpc, RAFT_MESSAGE_BYTES_MAX};
use crate::service::{MetaGrpc, CLUSTER_ID_KEY, META_MESSAGE_BYTES_MAX, ROOT_GROUP};
use crate::state_machine::{keys, Command, GroupMap, GroupRange, Response, RootCommand};
use crate::types::MetaGroupHost;

pub(crate) const CLUSTER: &str = "meta-test";

/// The erasure code of test stripes: 2+1.
pub(crate) const CODEC: CodecParams = CodecParams {
    codec: CodecId::ReedSolomonSimd,
    k: 2,
    m: 1,
};

pub(crate) struct Replica {
    pub host: Arc<MetaGroupHost>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: common::env::JoinHandle<()>,
}

impl Replica {
    async fn stop(mut self) {
        self.host.shutdown().await;
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = self.server.await;
    }
}

/// Three meta replicas hosting the root group and the object groups of `map`.
pub(crate) struct TestCluster {
    pub replicas: BTreeMap<u64, Replica>,
    pub addrs: BTreeMap<u64, SocketAddr>,
    pub map: GroupMap,
}

fn free_addr() -> SocketAddr {
    common::env::free_loopback_addr().expect("free loopback address")
}

async fn start_replica(
    id: u64,
    addr: SocketAddr,
    members: &BTreeMap<u64, String>,
    groups: &[GroupId],
) -> Replica {
    let disk: Arc<dyn Disk> = SimDisk::new(id, SimDiskFaults::default());
    let host = Arc::new(MetaGroupHost::new(id, CLUSTER, disk).expect("host"));
    let raft = RaftServiceServer::new(RaftGrpc::new(Arc::clone(host.registry()), CLUSTER.into()))
        .max_decoding_message_size(RAFT_MESSAGE_BYTES_MAX);
    let meta = MetaServiceServer::new(MetaGrpc::new(Arc::clone(&host)))
        .max_decoding_message_size(META_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(META_MESSAGE_BYTES_MAX);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = common::env::spawn("test-meta-server", async move {
        tonic::transport::Server::builder()
            .add_service(raft)
            .add_service(meta)
            .serve_with_shutdown(addr, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
    });
    for g in groups {
        if members.is_empty() {
            // A joining node: its groups wait for the leaders to add it.
            host.open_group(*g).await.expect("open group");
        } else {
            host.bootstrap(*g, members).await.expect("bootstrap");
        }
    }
    Replica {
        host,
        stop: Some(tx),
        server,
    }
}

/// A map splitting the key space into object groups at `splits` (encoded object keys).
pub(crate) fn map_with_splits(splits: &[Vec<u8>], members: &BTreeMap<u64, String>) -> GroupMap {
    let mut bounds: Vec<Vec<u8>> = vec![Vec::new()];
    bounds.extend(splits.iter().cloned());
    let groups = (0..bounds.len())
        .map(|i| GroupRange {
            group: GroupId(i as u64 + 1),
            start: bounds[i].clone(),
            end: bounds.get(i + 1).cloned(),
            members: members.clone(),
        })
        .collect();
    let map = GroupMap { version: 1, groups };
    assert!(map.is_valid());
    map
}

/// Four object groups; bucket `photos` spans groups 1–3 (split inside the key `b/…`, so
/// the common prefix `b/` straddles groups 1 and 2, and at `d`), `pics` is in group 3,
/// `zeta` in group 4, `alpha` in group 1.
pub(crate) fn photos_map(members: &BTreeMap<u64, String>) -> GroupMap {
    map_with_splits(
        &[
            keys::key_prefix("photos", "b/m"),
            keys::key_prefix("photos", "d"),
            b"q".to_vec(),
        ],
        members,
    )
}

impl TestCluster {
    pub async fn start(make_map: impl Fn(&BTreeMap<u64, String>) -> GroupMap) -> Self {
        let addrs: BTreeMap<u64, SocketAddr> = (1..=3).map(|id| (id, free_addr())).collect();
        let members: BTreeMap<u64, String> =
            addrs.iter().map(|(id, a)| (*id, a.to_string())).collect();
        let map = make_map(&members);
        let mut groups = vec![ROOT_GROUP];
        groups.extend(map.groups.iter().map(|g| g.group));
        let mut replicas = BTreeMap::new();
        for (id, addr) in &addrs {
            replicas.insert(*id, start_replica(*id, *addr, &members, &groups).await);
        }
        let cluster = TestCluster {
            replicas,
            addrs,
            map,
        };
        for g in &groups {
            cluster.stable_leader(*g).await;
        }
        cluster.set_group_map().await;
        cluster
    }

    /// Writes the group map into the root group (a fresh leader may refuse for a moment).
    async fn set_group_map(&self) {
        let cmd = Command::Root(RootCommand::SetGroupMap(self.map.clone()));
        for _ in 0..100 {
            let leader = self.leader(ROOT_GROUP).await;
            let raft = self.replicas[&leader]
                .host
                .registry()
                .get(ROOT_GROUP)
                .expect("root group");
            if let Ok(r) = raft.client_write(cmd.clone()).await {
                assert_eq!(r.data, Response::Empty, "group map accepted");
                return;
            }
            common::env::Clock::new()
                .sleep(Duration::from_millis(50))
                .await;
        }
        panic!("could not set the group map");
    }

    /// The live leader of `group` (waits up to 20 s for one).
    pub async fn leader(&self, group: GroupId) -> u64 {
        let any = self.replicas.values().next().expect("a replica");
        let raft = any.host.registry().get(group).expect("group hosted");
        let m = raft
            .wait(Some(Duration::from_secs(20)))
            .metrics(
                |m| {
                    m.current_leader
                        .is_some_and(|l| self.replicas.contains_key(&l))
                },
                "a live leader",
            )
            .await
            .expect("a leader is elected within 20 s");
        m.current_leader.expect("leader")
    }

    /// Waits until the leader of `group` also knows it leads (not a stale view).
    pub async fn stable_leader(&self, group: GroupId) -> u64 {
        for _ in 0..400 {
            let leader = self.leader(group).await;
            if self.leads(leader, group) {
                return leader;
            }
            common::env::Clock::new()
                .sleep(Duration::from_millis(50))
                .await;
        }
        panic!("group {group} has no stable leader");
    }

    /// A replica that does not lead `group` right now.
    pub async fn follower(&self, group: GroupId) -> u64 {
        let leader = self.leader(group).await;
        *self
            .replicas
            .keys()
            .find(|id| **id != leader)
            .expect("a follower")
    }

    pub fn addr(&self, id: u64) -> String {
        self.addrs[&id].to_string()
    }

    pub fn seeds(&self) -> Vec<String> {
        self.replicas.keys().map(|id| self.addr(*id)).collect()
    }

    /// Starts replica `id` empty, hosting every group without initialising it (it joins
    /// when the leaders add it); returns its address.
    pub async fn start_joiner(&mut self, id: u64) -> String {
        let addr = free_addr();
        let mut groups = vec![ROOT_GROUP];
        groups.extend(self.map.groups.iter().map(|g| g.group));
        let replica = start_replica(id, addr, &BTreeMap::new(), &groups).await;
        self.replicas.insert(id, replica);
        self.addrs.insert(id, addr);
        addr.to_string()
    }

    /// Stops one replica (its Raft groups and its server).
    pub async fn stop_replica(&mut self, id: u64) {
        if let Some(r) = self.replicas.remove(&id) {
            r.stop().await;
        }
    }

    /// Whether `id` currently believes it leads `group`.
    pub fn leads(&self, id: u64, group: GroupId) -> bool {
        self.replicas[&id]
            .host
            .registry()
            .get(group)
            .is_some_and(|r| r.metrics().borrow_watched().current_leader == Some(id))
    }

    pub async fn shutdown(self) {
        for (_, r) in self.replicas {
            r.stop().await;
        }
    }
}

pub(crate) async fn raw(addr: &str) -> MetaServiceClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_lazy();
    MetaServiceClient::new(channel)
}

pub(crate) fn req<T>(m: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(m);
    r.metadata_mut()
        .insert(CLUSTER_ID_KEY, CLUSTER.parse().expect("ascii"));
    r
}

pub(crate) fn code_of(status: &tonic::Status) -> MetaErrorCode {
    let e = proto::meta_error_of(status).unwrap_or_else(|| panic!("no meta error in {status:?}"));
    MetaErrorCode::try_from(e.code).expect("known code")
}

/// Calls `f` at the leader of `group`, again while the answer is NOT_LEADER, NO_QUORUM or
/// UNAVAILABLE (elections, a fresh leader), for at most ~10 s.
pub(crate) async fn at_leader<T, F, Fut>(
    cluster: &TestCluster,
    group: GroupId,
    mut f: F,
) -> Result<T, tonic::Status>
where
    F: FnMut(MetaServiceClient<Channel>) -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut last = None;
    for _ in 0..200 {
        let leader = cluster.leader(group).await;
        match f(raw(&cluster.addr(leader)).await).await {
            Err(s)
                if proto::meta_error_of(&s).is_some_and(|e| {
                    e.code == MetaErrorCode::NoQuorum as i32
                        || e.code == MetaErrorCode::Unavailable as i32
                        || e.code == MetaErrorCode::NotLeader as i32
                }) =>
            {
                last = Some(s);
                common::env::Clock::new()
                    .sleep(Duration::from_millis(50))
                    .await;
            }
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| tonic::Status::unknown("no attempt")))
}

fn create_bucket(group: GroupId, name: &str) -> pb::CreateBucketRequest {
    pb::CreateBucketRequest {
        group_id: group.0,
        name: name.into(),
        owner: "alice".into(),
        created_ms: 1,
        versioning: pb::Versioning::Unversioned as i32,
    }
}

fn stripe(id: u8) -> pb::Stripe {
    pb::Stripe {
        id: bytes::Bytes::from(vec![id; 16]),
        data_len: 4,
        placement: (1..=3)
            .map(|n| pb::FragmentLocation {
                node_id: n,
                disk_id: 0,
            })
            .collect(),
    }
}

fn put_request(
    group: GroupId,
    bucket: &str,
    key: &str,
    stripes: Vec<pb::Stripe>,
) -> pb::PutObjectRequest {
    let size = stripes.iter().map(|s| s.data_len).sum();
    pb::PutObjectRequest {
        group_id: group.0,
        bucket: bucket.into(),
        key: key.into(),
        version_id: "v1".into(),
        created_ms: 2,
        owner: "alice".into(),
        size,
        etag: "etag".into(),
        checksums: Default::default(),
        meta: None,
        body: Some(pb::ObjectBody {
            body: Some(pb::object_body::Body::Stripes(pb::StripesBody {
                codec: Some(CODEC.into()),
                stripes,
            })),
        }),
        preconditions: Vec::new(),
    }
}

#[test]
fn service_answers_hints_wrong_groups_rejections_and_malformed_messages() {
    let rt = common::env::BlockingRuntime::new(2).expect("runtime");
    rt.block_on(async {
        let cluster = TestCluster::start(photos_map).await;

        // A follower of the root group answers NOT_LEADER naming the leader, for reads
        // and for writes.
        let leader = cluster.stable_leader(ROOT_GROUP).await;
        let follower = cluster.follower(ROOT_GROUP).await;
        let mut at_follower = raw(&cluster.addr(follower)).await;
        let read = at_follower
            .get_bucket(req(pb::GetBucketRequest {
                group_id: 0,
                name: "zeta".into(),
            }))
            .await
            .expect_err("a follower does not serve reads");
        let e = proto::meta_error_of(&read).expect("typed error");
        assert_eq!(e.code, MetaErrorCode::NotLeader as i32);
        assert_eq!(e.leader_id, Some(leader));
        assert_eq!(e.leader_addr, cluster.addr(leader));
        let write = at_follower
            .create_bucket(req(create_bucket(ROOT_GROUP, "zeta")))
            .await
            .expect_err("a follower does not take writes");
        assert_eq!(code_of(&write), MetaErrorCode::NotLeader);
        assert_eq!(
            proto::meta_error_of(&write).and_then(|e| e.leader_id),
            Some(leader)
        );

        // At the leader: the bucket in the root group and in its object group (4).
        at_leader(&cluster, ROOT_GROUP, |mut c| async move {
            c.create_bucket(req(create_bucket(ROOT_GROUP, "zeta")))
                .await
        })
        .await
        .expect("create in root");
        let dup = at_leader(&cluster, ROOT_GROUP, |mut c| async move {
            c.create_bucket(req(create_bucket(ROOT_GROUP, "zeta")))
                .await
        })
        .await
        .expect_err("duplicate");
        assert_eq!(code_of(&dup), MetaErrorCode::BucketAlreadyOwnedByYou);
        at_leader(&cluster, GroupId(4), |mut c| async move {
            c.create_bucket(req(create_bucket(GroupId(4), "zeta")))
                .await
        })
        .await
        .expect("create in group 4");

        // WRONG_GROUP: the bucket, key or listing is not in the named group.
        let wrong = at_leader(&cluster, GroupId(1), |mut c| async move {
            c.create_bucket(req(create_bucket(GroupId(1), "zeta")))
                .await
        })
        .await
        .expect_err("zeta is not in group 1");
        assert_eq!(code_of(&wrong), MetaErrorCode::WrongGroup);
        let wrong = at_leader(&cluster, GroupId(1), |mut c| async move {
            c.put_object(req(put_request(GroupId(1), "zeta", "k", vec![stripe(1)])))
                .await
        })
        .await
        .expect_err("zeta/k is not in group 1");
        assert_eq!(code_of(&wrong), MetaErrorCode::WrongGroup);
        let wrong = at_leader(&cluster, GroupId(1), |mut c| async move {
            c.list_objects(req(pb::ListObjectsRequest {
                group_id: 1,
                bucket: "zeta".into(),
                max_keys: 10,
                ..Default::default()
            }))
            .await
        })
        .await
        .expect_err("zeta is not listed by group 1");
        assert_eq!(code_of(&wrong), MetaErrorCode::WrongGroup);
        for group in [0, 99] {
            let wrong = at_leader(&cluster, GroupId(4), |mut c| async move {
                c.get_object(req(pb::GetObjectRequest {
                    group_id: group,
                    bucket: "zeta".into(),
                    key: "k".into(),
                    version_id: None,
                }))
                .await
            })
            .await
            .expect_err("not an object group");
            assert_eq!(code_of(&wrong), MetaErrorCode::WrongGroup, "group {group}");
        }

        // Typed business rejections.
        let missing = at_leader(&cluster, GroupId(4), |mut c| async move {
            c.get_object(req(pb::GetObjectRequest {
                group_id: 4,
                bucket: "zoo".into(),
                key: "k".into(),
                version_id: None,
            }))
            .await
        })
        .await
        .expect_err("no such bucket");
        assert_eq!(code_of(&missing), MetaErrorCode::NoSuchBucket);
        let long = at_leader(&cluster, GroupId(4), |mut c| async move {
            c.put_object(req(put_request(
                GroupId(4),
                "zeta",
                &"k".repeat(1025),
                vec![stripe(1)],
            )))
            .await
        })
        .await
        .expect_err("key too long");
        assert_eq!(code_of(&long), MetaErrorCode::KeyTooLong);

        // Malformed messages are INVALID_ARGUMENT naming the field, and nothing breaks.
        let mut short_id = put_request(GroupId(4), "zeta", "k", vec![stripe(1)]);
        if let Some(pb::object_body::Body::Stripes(s)) =
            short_id.body.as_mut().and_then(|b| b.body.as_mut())
        {
            s.stripes[0].id = bytes::Bytes::from_static(&[1, 2, 3]);
        }
        let mut no_body = put_request(GroupId(4), "zeta", "k", vec![stripe(1)]);
        no_body.body = None;
        let mut bad_codec = put_request(GroupId(4), "zeta", "k", vec![stripe(1)]);
        if let Some(pb::object_body::Body::Stripes(s)) =
            bad_codec.body.as_mut().and_then(|b| b.body.as_mut())
        {
            s.codec = Some(pb::CodecParams {
                codec: 77,
                k: 2,
                m: 1,
            });
        }
        for (bad, field) in [
            (short_id, "stripe.id"),
            (no_body, "put_object.body"),
            (bad_codec, "codec.codec"),
        ] {
            // Any node refuses a malformed message before routing it.
            let mut c = raw(&cluster.addr(follower)).await;
            let s = c.put_object(req(bad)).await.expect_err("malformed");
            assert_eq!(s.code(), tonic::Code::InvalidArgument);
            assert_eq!(code_of(&s), MetaErrorCode::Malformed);
            assert!(s.message().contains(field), "{} names {field}", s.message());
        }
        let bad_versioning = at_follower
            .create_bucket(req(pb::CreateBucketRequest {
                versioning: 0,
                ..create_bucket(ROOT_GROUP, "other")
            }))
            .await
            .expect_err("unspecified versioning");
        assert_eq!(code_of(&bad_versioning), MetaErrorCode::Malformed);
        let bad_node = at_follower
            .register_node(req(pb::RegisterNodeRequest {
                info: None,
                at_ms: 1,
            }))
            .await
            .expect_err("missing node info");
        assert_eq!(code_of(&bad_node), MetaErrorCode::Malformed);
        let gc = at_leader(&cluster, GroupId(4), |mut c| async move {
            c.gc_ack(req(pb::GcAckRequest {
                group_id: 4,
                ids: vec![pb::GcId {
                    log_index: u64::MAX,
                    ordinal: u32::MAX,
                }],
            }))
            .await
        })
        .await
        .expect("unknown gc ids are ignored");
        assert_eq!(gc.into_inner().removed, 0);

        // A caller from another cluster (or without an id) is refused.
        let mut foreign = tonic::Request::new(pb::GetGroupMapRequest {});
        foreign
            .metadata_mut()
            .insert(CLUSTER_ID_KEY, "other-cluster".parse().expect("ascii"));
        let s = at_follower
            .get_group_map(foreign)
            .await
            .expect_err("foreign");
        assert_eq!(code_of(&s), MetaErrorCode::WrongCluster);
        let s = at_follower
            .get_group_map(tonic::Request::new(pb::GetGroupMapRequest {}))
            .await
            .expect_err("anonymous");
        assert_eq!(code_of(&s), MetaErrorCode::WrongCluster);

        // The service still works: a valid put commits and reads back through the barrier.
        let committed = at_leader(&cluster, GroupId(4), |mut c| async move {
            c.put_object(req(put_request(
                GroupId(4),
                "zeta",
                "k",
                vec![stripe(1), stripe(2)],
            )))
            .await
        })
        .await
        .expect("valid put")
        .into_inner();
        assert_eq!(committed.size, 8);
        let got = at_leader(&cluster, GroupId(4), |mut c| async move {
            c.get_object(req(pb::GetObjectRequest {
                group_id: 4,
                bucket: "zeta".into(),
                key: "k".into(),
                version_id: None,
            }))
            .await
        })
        .await
        .expect("get")
        .into_inner()
        .version
        .expect("a version");
        assert_eq!(got.seq, committed.seq);
        let map = at_leader(&cluster, ROOT_GROUP, |mut c| async move {
            c.get_group_map(req(pb::GetGroupMapRequest {})).await
        })
        .await
        .expect("map")
        .into_inner()
        .map
        .expect("a map");
        assert_eq!(GroupMap::try_from(&map).as_ref(), Ok(&cluster.map));

        cluster.shutdown().await;
    });
}
