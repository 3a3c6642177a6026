//! The production data node inside madsim: a client node streams fragments to a
//! simulated data node over simulated gRPC; the node loses power (its `SimDisk`s drop
//! unsynced writes) and restarts; every acknowledged fragment reads back identical.
//! Runs twice with the same seed to check the run is deterministic.
#![cfg(madsim)]

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use common::env::Env;
use common::ids::{FragmentId, NodeId, StripeId};
use proto::datanode as pb;
use proto::datanode::datanode_service_client::DatanodeServiceClient;
use sim::datanode_node::SimDatanode;

fn header(id: FragmentId, data: &[u8]) -> pb::PutFragmentRequest {
    pb::PutFragmentRequest {
        part: Some(pb::put_fragment_request::Part::Header(
            pb::PutFragmentHeader {
                id: Some(id.into()),
                disk: u32::from(id.index % 2),
                codec: u32::from(common::codec::CodecId::ReedSolomonSimd.as_u8()),
                k: 8,
                m: 4,
                length: data.len() as u64,
                crc32c: crc32c::crc32c(data),
            },
        )),
    }
}

/// Writes fragments, crashes the node mid-stream of writes, checks survivors. Returns a
/// digest of everything observed, to compare runs.
async fn scenario(seed: u64) -> Vec<(u32, u32)> {
    let env = Env::seeded(seed);
    let ip: IpAddr = "10.0.1.1".parse().unwrap();
    let dn = SimDatanode::start(&env, NodeId(1), "rack-a", ip, 2);
    let client_node = madsim::runtime::Handle::current()
        .create_node()
        .name("client")
        .ip("10.0.9.1".parse().unwrap())
        .build();
    let addr = dn.addr;
    let disks = dn.disks.clone();
    let crash = std::sync::Arc::new(dn);
    let crash2 = crash.clone();
    client_node
        .spawn(async move {
            madsim::time::sleep(Duration::from_millis(100)).await;
            let url = format!("http://{addr}");
            let mut c = DatanodeServiceClient::connect(url.clone())
                .await
                .expect("connect");
            let mut acked = Vec::new();
            for i in 0..12u32 {
                let id = FragmentId {
                    stripe: StripeId(u128::from(i) + 1),
                    index: (i % 12) as u8,
                };
                let mut data = vec![0u8; 50_000 + i as usize * 7_000];
                env.with_rng(|r| r.fill_bytes(&mut data));
                let mut msgs = vec![header(id, &data)];
                for chunk in data.chunks(30_000) {
                    msgs.push(pb::PutFragmentRequest {
                        part: Some(pb::put_fragment_request::Part::Data(
                            Bytes::copy_from_slice(chunk),
                        )),
                    });
                }
                c.put_fragment(futures::stream::iter(msgs))
                    .await
                    .expect("put");
                acked.push((id, data));
            }
            // Power loss and restart; the acked fragments must all survive.
            crash2.crash_restart();
            madsim::time::sleep(Duration::from_millis(200)).await;
            let mut c = DatanodeServiceClient::connect(url)
                .await
                .expect("reconnect");
            let mut digest = Vec::new();
            for (id, data) in &acked {
                let req = pb::GetFragmentRequest {
                    id: Some((*id).into()),
                    disk: u32::from(id.index % 2),
                    offset: 0,
                    length: 0,
                };
                let mut s = c.get_fragment(req).await.expect("get").into_inner();
                let mut got = Vec::new();
                while let Some(chunk) = s.message().await.expect("chunk") {
                    got.extend_from_slice(&chunk.data);
                }
                assert_eq!(
                    got.len(),
                    data.len(),
                    "acknowledged fragment {id} lost or truncated"
                );
                assert!(got == *data, "acknowledged fragment {id} changed");
                digest.push((got.len() as u32, crc32c::crc32c(&got)));
            }
            digest
        })
        .await
        .expect("client task")
        .into_iter()
        .chain(
            disks
                .iter()
                .map(|d| (d.stats().crashes as u32, d.used_bytes() as u32)),
        )
        .collect()
}

#[test]
fn acknowledged_fragments_survive_power_loss_and_runs_replay() {
    let seed = std::env::var("MADSIM_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let run = |seed| {
        madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default())
            .block_on(scenario(seed))
    };
    let a = run(seed);
    let b = run(seed);
    assert_eq!(a.len(), 14);
    assert_eq!(a, b, "same seed must give the same run (seed {seed})");
}
