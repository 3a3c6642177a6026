//! GET pipeline against real data nodes: any range equals the slice (proptest), reads
//! survive m stopped nodes and on-disk corruption by decoding, fail with m+1 down, hedge
//! around a node that never answers; inline and multipart bodies; bad ranges.

use std::time::Duration;

use common::ids::FragmentId;
use meta_raft::state_machine::{ObjectBody, PartManifestEntry};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::test_cluster::*;
use super::{DataConfig, DataError};

#[test]
fn any_range_read_equals_the_slice() {
    let rt = rt();
    let cluster = rt.block_on(TestCluster::start(3, 2));
    let stripe = 1000;
    let plane = cluster.plane(DataConfig {
        stripe_data_bytes: stripe,
        ..DataConfig::default()
    });
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        0usize..4500,
        any::<u64>(),
        prop_oneof![Just((2u8, 1u8)), Just((4u8, 2u8))],
        prop::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
            4,
        ),
    );
    runner
        .run(&strategy, |(size, seed, (k, m), ranges)| {
            let data = bytes_of(size, seed);
            let p = params(k, m);
            rt.block_on(async {
                let stripes = write_object(&plane, p, &data, 333).await.expect("put");
                let body = striped(p, stripes);
                let got = read_all(&plane, &body, 0..size as u64).await.expect("get");
                prop_assert!(got == data, "whole object differs");
                for (a, b) in &ranges {
                    let (a, b) = (a.index(size + 1), b.index(size + 1));
                    let (a, b) = (a.min(b), a.max(b));
                    let got = read_all(&plane, &body, a as u64..b as u64)
                        .await
                        .expect("range get");
                    prop_assert!(got == data[a..b], "range {}..{} differs", a, b);
                }
                plane.delete_stripes(body_stripes(&body)).await;
                Ok(())
            })
        })
        .expect("ranges equal slices");
    assert_eq!(plane.stats().degraded_reads, 0);
    rt.block_on(cluster.shutdown());
}

fn body_stripes(body: &ObjectBody) -> &[meta_raft::state_machine::StripeRecord] {
    match body {
        ObjectBody::Stripes { stripes, .. } => stripes,
        _ => &[],
    }
}

const S: usize = 64 << 10;

fn cfg() -> DataConfig {
    DataConfig {
        stripe_data_bytes: S,
        ..DataConfig::default()
    }
}

#[test]
fn reads_survive_m_stopped_data_nodes() {
    rt().block_on(async {
        let mut cluster = TestCluster::start(4, 3).await;
        let plane = cluster.plane(cfg());
        let p = params(8, 4);
        let data = bytes_of(4 * S + 999, 21);
        let stripes = write_object(&plane, p, &data, 40_000).await.expect("put");
        // Stop the nodes holding data fragments 0..4 of the first stripe.
        let victims: Vec<_> = stripes[0].placement[..4].iter().map(|l| l.node).collect();
        for v in &victims {
            cluster.stop(*v).await;
        }
        let body = striped(p, stripes);
        let got = read_all(&plane, &body, 0..data.len() as u64)
            .await
            .expect("get");
        assert!(got == data);
        let got = read_all(&plane, &body, 100..(S as u64 + 5))
            .await
            .expect("range");
        assert!(got == data[100..S + 5]);
        let stats = plane.stats();
        assert!(stats.degraded_reads >= 1, "{stats:?}");
        cluster.shutdown().await;
    });
}

#[test]
fn reads_fail_with_m_plus_1_nodes_down() {
    rt().block_on(async {
        let mut cluster = TestCluster::start(4, 3).await;
        let plane = cluster.plane(cfg());
        let p = params(8, 4);
        let data = bytes_of(S, 22);
        let stripes = write_object(&plane, p, &data, S).await.expect("put");
        let victims: Vec<_> = stripes[0].placement[3..8].iter().map(|l| l.node).collect();
        for v in &victims {
            cluster.stop(*v).await;
        }
        let err = read_all(&plane, &striped(p, stripes), 0..data.len() as u64)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                DataError::NotEnoughReadable {
                    readable: 7,
                    needed: 8,
                    ..
                }
            ),
            "{err}"
        );
        cluster.shutdown().await;
    });
}

#[test]
fn a_corrupt_fragment_on_disk_is_decoded_around() {
    rt().block_on(async {
        let cluster = TestCluster::start(4, 3).await;
        let plane = cluster.plane(cfg());
        let p = params(8, 4);
        let data = bytes_of(2 * S, 23);
        let stripes = write_object(&plane, p, &data, S).await.expect("put");
        let s = &stripes[1];
        cluster.corrupt(
            s.placement[2].node,
            FragmentId {
                stripe: s.id,
                index: 2,
            },
        );
        let got = read_all(&plane, &striped(p, stripes), 0..data.len() as u64)
            .await
            .expect("get");
        assert!(got == data);
        let stats = plane.stats();
        assert_eq!(stats.degraded_reads, 1, "{stats:?}");
        assert_eq!(stats.fragment_read_failures, 1);
        cluster.shutdown().await;
    });
}

#[test]
fn a_node_that_never_answers_is_hedged_around() {
    rt().block_on(async {
        let cluster = TestCluster::start(4, 3).await;
        let plane = cluster.plane(DataConfig {
            hedge_after: Duration::from_millis(200),
            ..cfg()
        });
        let p = params(8, 4);
        let data = bytes_of(S, 24);
        let stripes = write_object(&plane, p, &data, S).await.expect("put");
        // Point data fragment 0's node at a socket that accepts but never speaks. A
        // listener of the runtime in use (tokio's, or madsim's in the simulated build,
        // where an OS socket is unknown to the simulated network and a connection to it
        // is refused at once instead of hanging).
        let black_hole = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mut map = (*cluster.topology.get()).clone();
        let slow = stripes[0].placement[0].node;
        map.node_mut(slow).expect("node").addr = black_hole.local_addr().expect("addr").to_string();
        cluster.topology.set(map);
        let got = read_all(&plane, &striped(p, stripes), 0..data.len() as u64)
            .await
            .expect("get");
        assert!(got == data);
        let stats = plane.stats();
        assert_eq!(stats.hedged_reads, 1, "{stats:?}");
        assert_eq!(stats.degraded_reads, 1);
        drop(black_hole);
        cluster.shutdown().await;
    });
}

#[test]
fn inline_and_multipart_bodies_and_bad_ranges() {
    rt().block_on(async {
        let cluster = TestCluster::start(3, 1).await;
        let plane = cluster.plane(DataConfig {
            stripe_data_bytes: 100,
            ..DataConfig::default()
        });
        let inline = ObjectBody::Inline(b"hello world".to_vec());
        assert_eq!(read_all(&plane, &inline, 6..11).await.unwrap(), b"world");
        assert!(read_all(&plane, &inline, 3..3).await.unwrap().is_empty());
        let err = read_all(&plane, &inline, 5..12).await.unwrap_err();
        assert_eq!(
            err,
            DataError::InvalidRange {
                start: 5,
                end: 12,
                len: 11
            }
        );

        let p = params(2, 1);
        let a = bytes_of(250, 1);
        let b = bytes_of(130, 2);
        let part = |n: u32, data: &[u8], stripes| PartManifestEntry {
            part_number: n,
            size: data.len() as u64,
            etag: String::new(),
            stripes,
        };
        let sa = write_object(&plane, p, &a, 64).await.unwrap();
        let sb = write_object(&plane, p, &b, 64).await.unwrap();
        let body = ObjectBody::Multipart {
            codec: p,
            parts: vec![part(1, &a, sa), part(2, &b, sb)],
        };
        let all: Vec<u8> = a.iter().chain(&b).copied().collect();
        assert_eq!(read_all(&plane, &body, 0..380).await.unwrap(), all);
        assert_eq!(
            read_all(&plane, &body, 240..260).await.unwrap(),
            all[240..260]
        );
        assert!(read_all(&plane, &body, 0..381).await.is_err());
        cluster.shutdown().await;
    });
}
