//! Scrub findings for repair: every Up or Draining data node lists the fragments its
//! scrubber found damaged (`ListDamaged`); repair rebuilds those elsewhere. A node that
//! does not answer contributes nothing this pass (its fragments stay as they are).

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::{ClusterMap, FragmentLocation, NodeState};
use common::env::Clock;
use common::ids::{DiskId, FragmentId, NodeId};
use futures::StreamExt;
use proto::datanode as pb;
use proto::datanode::datanode_service_client::DatanodeServiceClient;
use tonic::transport::Endpoint;

/// One damaged fragment: where, and which.
pub type Damaged = (FragmentLocation, FragmentId);

/// The damaged fragments of every Up or Draining node of `map` (at most `concurrency`
/// nodes asked at once, each bounded by `timeout`), and how many nodes did not answer.
pub async fn list_damaged(
    map: &ClusterMap,
    timeout: Duration,
    concurrency: usize,
) -> (BTreeSet<Damaged>, usize) {
    let clock = Clock::new();
    let targets: Vec<(NodeId, String)> = map
        .nodes
        .values()
        .filter(|n| matches!(n.state, NodeState::Up | NodeState::Draining))
        .map(|n| (n.id, n.addr.clone()))
        .collect();
    let asks = targets
        .into_iter()
        .map(|(id, addr)| ask(clock.clone(), id, addr, timeout));
    let answers: Vec<_> = futures::stream::iter(asks)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut out = BTreeSet::new();
    let mut failed = 0;
    for a in answers {
        let Some((node, r)) = a else {
            failed += 1;
            continue;
        };
        for d in r.damaged {
            let Some(id) = d.id.as_ref().and_then(|i| FragmentId::try_from(i).ok()) else {
                continue;
            };
            out.insert((
                FragmentLocation {
                    node,
                    disk: DiskId(d.disk),
                },
                id,
            ));
        }
    }
    (out, failed)
}

/// One node's damaged list; `None` if it did not answer in time.
async fn ask(
    clock: Clock,
    id: NodeId,
    addr: String,
    timeout: Duration,
) -> Option<(NodeId, pb::ListDamagedResponse)> {
    let call = async {
        let ch = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(timeout)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        DatanodeServiceClient::new(ch)
            .list_damaged(pb::ListDamagedRequest {})
            .await
            .map_err(|e| e.to_string())
    };
    match clock.timeout(timeout, call).await {
        Ok(Ok(r)) => Some((id, r.into_inner())),
        Ok(Err(e)) => {
            tracing::debug!(node = %id, error = %e, "list damaged failed");
            None
        }
        Err(_) => None,
    }
}
