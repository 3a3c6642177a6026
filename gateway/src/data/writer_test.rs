//! PUT pipeline against real data nodes: round trips at stripe boundaries, placements obey
//! the rack rule, failed nodes are re-placed (16 nodes) or tolerated down to k+1 (12
//! nodes), backpressure bounds the stripes in flight, abort deletes everything.

use common::cluster::{check_placement, Placement};
use common::codec::{CodecId, CodecParams};

use super::test_cluster::*;
use super::{DataConfig, DataError};

const S: usize = 256 << 10;

fn cfg() -> DataConfig {
    DataConfig {
        stripe_data_bytes: S,
        ..DataConfig::default()
    }
}

async fn round_trips(cluster: &TestCluster) {
    let plane = cluster.plane(cfg());
    let p = params(8, 4);
    let map = cluster.topology.get();
    for (n, size) in [1, S - 1, S, S + 1, 3 * S + 7].into_iter().enumerate() {
        let data = bytes_of(size, n as u64);
        // Odd chunk sizes: stripes are cut across chunk boundaries.
        let stripes = write_object(&plane, p, &data, 100_003).await.expect("put");
        assert_eq!(stripes.len(), size.div_ceil(S), "size {size}");
        let total: u64 = stripes.iter().map(|s| s.data_len).sum();
        assert_eq!(total, size as u64);
        for s in &stripes {
            let placement = Placement {
                locations: s.placement.clone(),
            };
            assert_eq!(check_placement(&map, &placement, 8, 4), Ok(()));
        }
        let body = striped(p, stripes);
        let got = read_all(&plane, &body, 0..size as u64).await.expect("get");
        assert!(got == data, "size {size}: bytes differ");
    }
    let stats = plane.stats();
    assert_eq!(stats.degraded_reads, 0);
    assert_eq!(stats.fragment_write_failures, 0);
    assert_eq!(stats.stripes_under_replicated, 0);
}

#[test]
fn round_trip_sizes_around_stripe_boundaries_on_12_nodes_in_4_racks() {
    rt().block_on(async {
        let cluster = TestCluster::start(4, 3).await;
        round_trips(&cluster).await;
        cluster.shutdown().await;
    });
}

#[test]
fn round_trip_on_16_nodes_in_4_racks() {
    rt().block_on(async {
        let cluster = TestCluster::start(4, 4).await;
        round_trips(&cluster).await;
        cluster.shutdown().await;
    });
}

#[test]
fn empty_body_has_no_stripes_and_bad_codec_is_an_error() {
    rt().block_on(async {
        let cluster = TestCluster::start(3, 1).await;
        let plane = cluster.plane(cfg());
        let p = params(2, 1);
        let stripes = write_object(&plane, p, &[], 10).await.expect("put");
        assert!(stripes.is_empty());
        let got = read_all(&plane, &striped(p, stripes), 0..0)
            .await
            .expect("get");
        assert!(got.is_empty());

        let bad = CodecParams {
            codec: CodecId::ReedSolomonSimd,
            k: 0,
            m: 1,
        };
        let mut w = plane.writer(bad);
        let err = w.write(bytes::Bytes::from_static(b"x")).await.unwrap_err();
        assert!(matches!(err, DataError::Codec(_)), "{err}");
        w.abort().await;
        cluster.shutdown().await;
    });
}

#[test]
fn a_stopped_node_is_replaced_on_16_nodes_and_every_stripe_has_k_plus_m() {
    rt().block_on(async {
        let mut cluster = TestCluster::start(4, 4).await;
        let stopped = cluster.node_ids()[5];
        cluster.stop(stopped).await;
        let plane = cluster.plane(cfg());
        let p = params(8, 4);
        let data = bytes_of(8 * S + 3, 11);
        let stripes = write_object(&plane, p, &data, S).await.expect("put");
        let map = cluster.topology.get();
        for s in &stripes {
            assert!(!s.placement.iter().any(|l| l.node == stopped));
            let placement = Placement {
                locations: s.placement.clone(),
            };
            assert_eq!(check_placement(&map, &placement, 8, 4), Ok(()));
        }
        let stats = plane.stats();
        assert!(stats.fragment_write_failures >= 1, "{stats:?}");
        assert_eq!(stats.fragments_replaced, stats.fragment_write_failures);
        assert_eq!(stats.stripes_under_replicated, 0);
        assert_eq!(stats.fragments_written, 12 * stripes.len() as u64);
        // All 12 fragments of every stripe are stored.
        assert_eq!(cluster.fragment_count().await, 12 * stripes.len());
        let got = read_all(&plane, &striped(p, stripes), 0..data.len() as u64)
            .await
            .expect("get");
        assert!(got == data);
        assert_eq!(plane.stats().degraded_reads, 0);
        cluster.shutdown().await;
    });
}

#[test]
fn a_stopped_node_on_12_nodes_leaves_k_plus_m_minus_1_durable() {
    rt().block_on(async {
        let mut cluster = TestCluster::start(4, 3).await;
        let stopped = cluster.node_ids()[0];
        cluster.stop(stopped).await;
        let plane = cluster.plane(cfg());
        let p = params(8, 4);
        let data = bytes_of(3 * S, 12);
        let stripes = write_object(&plane, p, &data, 65_536).await.expect("put");
        assert_eq!(stripes.len(), 3);
        let stats = plane.stats();
        assert_eq!(stats.stripes_under_replicated, 3, "{stats:?}");
        assert_eq!(stats.fragments_missing, 3);
        assert_eq!(stats.fragments_written, 11 * 3);
        // The missing fragment keeps its planned location, on the stopped node.
        for s in &stripes {
            assert_eq!(s.placement.len(), 12);
            assert!(s.placement.iter().any(|l| l.node == stopped));
        }
        assert_eq!(cluster.fragment_count().await, 11 * 3);
        let got = read_all(&plane, &striped(p, stripes), 0..data.len() as u64)
            .await
            .expect("get");
        assert!(got == data);
        cluster.shutdown().await;
    });
}

#[test]
fn fewer_than_k_plus_1_durable_fails_and_cleans_up() {
    rt().block_on(async {
        // 2+1 on 3 nodes with two stopped: 1 durable < k+1 = 3.
        let mut cluster = TestCluster::start(3, 1).await;
        let ids = cluster.node_ids();
        cluster.stop(ids[0]).await;
        cluster.stop(ids[1]).await;
        let plane = cluster.plane(cfg());
        let err = write_object(&plane, params(2, 1), &bytes_of(1000, 1), 1000)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                DataError::NotEnoughDurable {
                    durable: 1,
                    needed: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(cluster.fragments(ids[2]).await.len(), 0);
        cluster.shutdown().await;
    });
}

#[test]
fn backpressure_bounds_the_stripes_in_flight() {
    rt().block_on(async {
        let cluster = TestCluster::start(3, 2).await;
        let stripe = 32 << 10;
        let plane = cluster.plane(DataConfig {
            stripe_data_bytes: stripe,
            max_stripes_in_flight: 2,
            ..DataConfig::default()
        });
        let p = params(4, 2);
        let data = bytes_of(20 * stripe, 3);
        let mut w = plane.writer(p);
        // One write of many stripes: the writer must still hold at most 2 at a time.
        w.write(bytes::Bytes::from(data.clone()))
            .await
            .expect("write");
        let high = w.stripes_in_flight_high_water();
        let stripes = w.finish().await.expect("finish");
        assert_eq!(stripes.len(), 20);
        assert!((1..=2).contains(&high), "high water {high}");
        assert!(plane.stats().writer_stripes_high_water <= 2);
        let got = read_all(&plane, &striped(p, stripes), 0..data.len() as u64)
            .await
            .expect("get");
        assert!(got == data);

        let plane1 = cluster.plane(DataConfig {
            stripe_data_bytes: stripe,
            max_stripes_in_flight: 1,
            ..DataConfig::default()
        });
        let mut w = plane1.writer(p);
        for piece in data.chunks(5000) {
            w.write(bytes::Bytes::copy_from_slice(piece))
                .await
                .expect("write");
        }
        assert_eq!(w.stripes_in_flight_high_water(), 1);
        w.finish().await.expect("finish");
        cluster.shutdown().await;
    });
}

#[test]
fn abort_deletes_every_fragment_written() {
    rt().block_on(async {
        let cluster = TestCluster::start(4, 3).await;
        let plane = cluster.plane(cfg());
        let p = params(8, 4);
        let mut w = plane.writer(p);
        w.write(bytes::Bytes::from(bytes_of(3 * S + 10, 4)))
            .await
            .expect("write");
        // Three full stripes dispatched (one or more may still be in flight).
        w.abort().await;
        assert_eq!(cluster.fragment_count().await, 0);
        assert_eq!(plane.stats().fragments_deleted, 36);

        // delete_stripes of committed-then-discarded stripes counts what it removed.
        let stripes = write_object(&plane, p, &bytes_of(S + 1, 5), S)
            .await
            .expect("put");
        assert_eq!(cluster.fragment_count().await, 24);
        assert_eq!(plane.delete_stripes(&stripes).await, 24);
        assert_eq!(plane.delete_stripes(&stripes).await, 0);
        assert_eq!(cluster.fragment_count().await, 0);
        cluster.shutdown().await;
    });
}

/// A body that took longer than `max_upload` is refused and its fragments deleted: the
/// orphan sweep may already have counted them unreferenced for its grace period, so
/// committing them could name fragments the sweep is about to delete.
#[test]
fn an_upload_older_than_max_upload_is_refused_and_cleaned_up() {
    rt().block_on(async {
        let cluster = TestCluster::start(4, 3).await;
        let p = params(8, 4);
        // Any time at all is too long.
        let slow = cluster.plane(DataConfig {
            max_upload: std::time::Duration::ZERO,
            ..cfg()
        });
        let err = write_object(&slow, p, &bytes_of(2 * S + 3, 6), S)
            .await
            .expect_err("too old to commit");
        assert!(
            matches!(err, DataError::UploadTooLong { max_secs: 0, .. }),
            "{err}"
        );
        assert_eq!(cluster.fragment_count().await, 0);
        // The default (1 h) accepts the same body.
        let plane = cluster.plane(cfg());
        let stripes = write_object(&plane, p, &bytes_of(2 * S + 3, 6), S)
            .await
            .expect("put");
        assert_eq!(stripes.len(), 3);
        cluster.shutdown().await;
    });
}
