//! `DataPlane::rebuild_stripe` against real data nodes: m lost fragments (a stopped node,
//! a deleted file, a corrupt file, a padding fragment) rebuilt onto new nodes read back
//! identical and verify healthy; fewer than k healthy is a typed error that writes
//! nothing; a failed target write removes the targets written; malformed requests.

use std::collections::{BTreeMap, BTreeSet};

use common::cluster::{ClusterMap, FragmentLocation};
use common::codec::CodecParams;
use common::ids::{FragmentId, NodeId};
use meta_raft::state_machine::StripeRecord;
use proto::datanode as pb;
use proto::datanode::datanode_service_client::DatanodeServiceClient;

use super::test_cluster::*;
use super::{DataConfig, RebuildError, Rebuilt};

const S: usize = 64 << 10;

fn cfg() -> DataConfig {
    DataConfig {
        stripe_data_bytes: S,
        ..DataConfig::default()
    }
}

fn fid(s: &StripeRecord, index: usize) -> FragmentId {
    FragmentId {
        stripe: s.id,
        index: u8::try_from(index).expect("small index"),
    }
}

async fn client(
    map: &ClusterMap,
    node: NodeId,
) -> DatanodeServiceClient<tonic::transport::Channel> {
    let addr = &map.node(node).expect("node in map").addr;
    DatanodeServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

/// Re-reads and verifies every block of a stored fragment (StatFragment with verify).
async fn verify(map: &ClusterMap, id: FragmentId, loc: FragmentLocation) -> Result<u64, String> {
    let mut c = client(map, loc.node).await;
    c.stat_fragment(pb::StatFragmentRequest {
        id: Some(id.into()),
        disk: loc.disk.0,
        verify: true,
    })
    .await
    .map(|r| r.into_inner().info.expect("info").length)
    .map_err(|s| s.message().to_owned())
}

async fn delete(map: &ClusterMap, id: FragmentId, loc: FragmentLocation) {
    let mut c = client(map, loc.node).await;
    let r = c
        .delete_fragment(pb::DeleteFragmentRequest {
            id: Some(id.into()),
            disk: loc.disk.0,
        })
        .await
        .expect("delete");
    assert!(r.into_inner().existed);
}

/// New locations for `lost` indexes of `s` (rack rule kept), away from `avoid`.
fn targets(
    map: &ClusterMap,
    p: CodecParams,
    s: &StripeRecord,
    lost: &BTreeSet<usize>,
    avoid: &BTreeSet<NodeId>,
) -> BTreeMap<usize, FragmentLocation> {
    let current: Vec<Option<FragmentLocation>> = s
        .placement
        .iter()
        .enumerate()
        .map(|(i, l)| (!lost.contains(&i)).then_some(*l))
        .collect();
    let frag_bytes = 1 << 20;
    let placed = placement::plan_replacements(map, p.k, p.m, s.id, frag_bytes, &current, avoid)
        .expect("replacements");
    lost.iter().map(|&i| (i, placed.locations[i])).collect()
}

#[test]
fn m_lost_fragments_are_rebuilt_onto_new_nodes_and_read_back_identical() {
    rt().block_on(async {
        let mut cluster = TestCluster::start(4, 3).await;
        let plane = cluster.plane(cfg());
        let p = params(4, 2);
        // Two full stripes and a 3-byte one (2-byte fragments: data fragments 2 and 3
        // are all padding).
        let data = bytes_of(2 * S + 3, 31);
        let stripes = write_object(&plane, p, &data, 40_000).await.expect("put");
        assert_eq!(stripes.len(), 3);
        let map = cluster.topology.get();

        // Stripe 0 loses fragment 1 (its node stops) and fragment 4 (file deleted): m.
        // Stripe 2 loses fragment 0 (corrupt on disk) and fragment 3 (padding, deleted).
        // Every stripe also loses whatever else it had on the stopped node.
        let stopped = stripes[0].placement[1].node;
        let s0 = &stripes[0];
        delete(&map, fid(s0, 4), s0.placement[4]).await;
        let s2 = &stripes[2];
        cluster.corrupt(s2.placement[0].node, fid(s2, 0));
        delete(&map, fid(s2, 3), s2.placement[3]).await;
        cluster.stop(stopped).await;
        let mut lost: Vec<BTreeSet<usize>> = stripes
            .iter()
            .map(|s| (0..6).filter(|&i| s.placement[i].node == stopped).collect())
            .collect();
        lost[0].extend([1, 4]);
        lost[2].extend([0, 3]);
        assert_eq!(lost[0].len(), 2);

        let mut rebuilt_stripes = Vec::new();
        for (s, lost) in stripes.iter().zip(&lost) {
            if lost.is_empty() {
                rebuilt_stripes.push(s.clone());
                continue;
            }
            let mut avoid: BTreeSet<NodeId> = lost.iter().map(|&i| s.placement[i].node).collect();
            avoid.insert(stopped);
            let t = targets(&map, p, s, lost, &avoid);
            let before: BTreeMap<NodeId, usize> = {
                let mut m = BTreeMap::new();
                for loc in t.values() {
                    m.insert(loc.node, cluster.fragments(loc.node).await.len());
                }
                m
            };
            let Rebuilt {
                placement,
                rebuilt,
                sources,
                skipped,
            } = plane.rebuild_stripe(p, s, &t).await.expect("rebuild");
            assert_eq!(rebuilt, lost.iter().copied().collect::<Vec<_>>());
            assert!(sources.iter().all(|i| !lost.contains(i)), "{sources:?}");
            if s.data_len == 3 {
                // Padding fragments are zeros, never read.
                assert!(
                    !sources.contains(&2) && !sources.contains(&3),
                    "{sources:?}"
                );
            }
            assert!(
                skipped.is_empty(),
                "no source read should fail: {skipped:?}"
            );
            for (i, (new, old)) in placement.iter().zip(&s.placement).enumerate() {
                assert_eq!(*new, t.get(&i).copied().unwrap_or(*old), "index {i}");
            }
            for (node, n) in before {
                assert_eq!(cluster.fragments(node).await.len(), n + 1);
            }
            rebuilt_stripes.push(StripeRecord {
                placement,
                ..s.clone()
            });
        }
        assert_ne!(rebuilt_stripes[2].placement, stripes[2].placement);

        // Every fragment of every stripe verifies at its new location, none on the
        // stopped node.
        for s in &rebuilt_stripes {
            for (i, loc) in s.placement.iter().enumerate() {
                assert_ne!(loc.node, stopped);
                let len = verify(&map, fid(s, i), *loc).await;
                assert!(len.is_ok(), "stripe {} fragment {i}: {len:?}", s.id);
            }
        }
        // A fresh plane reads the object back identical, without decoding.
        let reader = cluster.plane(cfg());
        let got = read_all(&reader, &striped(p, rebuilt_stripes), 0..data.len() as u64)
            .await
            .expect("get");
        assert!(got == data, "rebuilt object differs");
        let stats = reader.stats();
        assert_eq!(stats.degraded_reads, 0, "{stats:?}");
        assert_eq!(stats.fragment_read_failures, 0, "{stats:?}");
        cluster.shutdown().await;
    });
}

#[test]
fn unreadable_sources_are_skipped_and_a_moved_fragment_is_read_where_it_was() {
    rt().block_on(async {
        let cluster = TestCluster::start(4, 3).await;
        let plane = cluster.plane(cfg());
        let p = params(4, 2);
        let data = bytes_of(S, 32);
        let stripes = write_object(&plane, p, &data, S).await.expect("put");
        let s = &stripes[0];
        let map = cluster.topology.get();
        // Move fragment 0 (still healthy where it is, e.g. on a draining node) while
        // fragment 1 is corrupt and fragment 5 deleted: only 3 of the other fragments are
        // healthy, so fragment 0's old copy must be read too.
        cluster.corrupt(s.placement[1].node, fid(s, 1));
        delete(&map, fid(s, 5), s.placement[5]).await;
        let lost: BTreeSet<usize> = [0].into();
        let avoid: BTreeSet<NodeId> = s.placement.iter().map(|l| l.node).collect();
        let t = targets(&map, p, s, &lost, &avoid);
        let r = plane.rebuild_stripe(p, s, &t).await.expect("rebuild");
        assert_eq!(r.sources, [0, 2, 3, 4]);
        assert_eq!(r.skipped.len(), 2, "{:?}", r.skipped);
        assert!(r
            .skipped
            .iter()
            .any(|f| f.starts_with("fragment 1 ") && f.contains("corrupt")));
        assert!(r
            .skipped
            .iter()
            .any(|f| f.starts_with("fragment 5 ") && f.contains("not found")));
        assert!(verify(&map, fid(s, 0), t[&0]).await.is_ok());
        let body = striped(
            p,
            vec![StripeRecord {
                placement: r.placement,
                ..s.clone()
            }],
        );
        assert!(
            read_all(&plane, &body, 0..data.len() as u64)
                .await
                .expect("get")
                == data
        );
        cluster.shutdown().await;
    });
}

#[test]
fn fewer_than_k_healthy_is_a_typed_error_and_writes_nothing() {
    rt().block_on(async {
        let mut cluster = TestCluster::start(4, 3).await;
        let plane = cluster.plane(cfg());
        let p = params(4, 2);
        let data = bytes_of(S, 33);
        let stripes = write_object(&plane, p, &data, S).await.expect("put");
        let s = &stripes[0];
        let map = cluster.topology.get();
        // m + 1 = 3 fragments gone: two nodes stopped, one file corrupt.
        let lost: BTreeSet<usize> = [0, 3, 5].into();
        let avoid: BTreeSet<NodeId> = s.placement.iter().map(|l| l.node).collect();
        let t = targets(&map, p, s, &lost, &avoid);
        cluster.corrupt(s.placement[5].node, fid(s, 5));
        cluster.stop(s.placement[0].node).await;
        cluster.stop(s.placement[3].node).await;
        let before = cluster.fragment_count().await;
        let err = plane.rebuild_stripe(p, s, &t).await.unwrap_err();
        match &err {
            RebuildError::NotEnoughHealthy {
                stripe,
                healthy,
                needed,
                failures,
            } => {
                assert_eq!((*stripe, *healthy, *needed), (s.id, 3, 4));
                assert_eq!(failures.len(), 3, "{failures:?}");
            }
            other => panic!("expected NotEnoughHealthy, got {other}"),
        }
        assert!(err
            .to_string()
            .contains("only 3 healthy fragments, 4 are needed"));
        assert_eq!(cluster.fragment_count().await, before, "nothing written");
        cluster.shutdown().await;
    });
}

#[test]
fn a_failed_target_write_removes_the_targets_written() {
    rt().block_on(async {
        let mut cluster = TestCluster::start(4, 3).await;
        let plane = cluster.plane(cfg());
        let p = params(4, 2);
        let data = bytes_of(S, 34);
        let stripes = write_object(&plane, p, &data, S).await.expect("put");
        let s = &stripes[0];
        let map = cluster.topology.get();
        let lost: BTreeSet<usize> = [1, 2].into();
        let avoid: BTreeSet<NodeId> = s.placement.iter().map(|l| l.node).collect();
        let t = targets(&map, p, s, &lost, &avoid);
        // The target of fragment 2 is down (still Up in the map).
        cluster.stop(t[&2].node).await;
        let before = cluster.fragments(t[&1].node).await.len();
        let err = plane.rebuild_stripe(p, s, &t).await.unwrap_err();
        assert!(
            matches!(err, RebuildError::WriteFailed { index: 2, location, .. } if location == t[&2]),
            "{err}"
        );
        assert_eq!(cluster.fragments(t[&1].node).await.len(), before, "target 1 removed");
        cluster.shutdown().await;
    });
}

#[test]
fn malformed_requests_are_refused_before_any_io() {
    rt().block_on(async {
        let cluster = TestCluster::start(4, 3).await;
        let plane = cluster.plane(cfg());
        let p = params(4, 2);
        let stripes = write_object(&plane, p, &bytes_of(S, 35), S)
            .await
            .expect("put");
        let s = &stripes[0];
        let before = cluster.fragment_count().await;
        let spare = cluster
            .node_ids()
            .into_iter()
            .find(|n| s.placement.iter().all(|l| l.node != *n))
            .expect("a node without fragments of the stripe");
        let at = |node: NodeId| FragmentLocation {
            node,
            disk: s.placement[0].disk,
        };
        let cases: Vec<(StripeRecord, BTreeMap<usize, FragmentLocation>, &str)> = vec![
            (s.clone(), BTreeMap::new(), "no fragment to rebuild"),
            (s.clone(), [(6, at(spare))].into(), "index 6 out of range"),
            (
                s.clone(),
                [(0, at(s.placement[1].node))].into(),
                "would both be on node",
            ),
            (
                StripeRecord {
                    placement: s.placement[..5].to_vec(),
                    ..s.clone()
                },
                [(0, at(spare))].into(),
                "5 fragment locations for a 4+2 stripe",
            ),
        ];
        for (record, t, why) in cases {
            let err = plane.rebuild_stripe(p, &record, &t).await.unwrap_err();
            assert!(
                matches!(&err, RebuildError::InvalidRequest { reason, .. } if reason.contains(why)),
                "{err} should say {why:?}"
            );
        }
        assert_eq!(cluster.fragment_count().await, before);
        cluster.shutdown().await;
    });
}
