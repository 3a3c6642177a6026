//! Repair (crate `maintain`, `repair.rs`) against real processes: on the multi-process
//! deployment (3 meta, 16 data nodes in 4 racks, 1 gateway) with short detector
//! timeouts, objects are written with aws-sdk-s3, the data node holding the most
//! fragments is killed with -9; once the detector marks it Dead the object groups'
//! leaders rebuild its fragments elsewhere. The test waits (bounded polling) until every
//! stripe again has `k+m` fragments off the dead node, placed by the rack rule, each
//! present and verified on its data node, then reads every object back byte-exact;
//! `shale admin repair status` then shows no backlog. A node set Draining is emptied the
//! same way (its old copies collected by the GC) while it keeps serving reads.

use std::collections::BTreeMap;
use std::time::Duration;

use common::cluster::{check_placement, ClusterMap, NodeState, Placement};
use common::ids::{FragmentId, NodeId};
use meta_raft::client::MetaClient;
use meta_raft::state_machine::StripeEntry;
use proto::datanode::datanode_service_client::DatanodeServiceClient;
use proto::datanode::{ListFragmentsRequest, StatFragmentRequest};
use tests::cluster::MultiCluster;
use tests::poll_until;

use crate::s3::{data, get, new_bucket, put};

/// Every stripe of every object group.
pub(crate) async fn all_stripes(meta: &MetaClient) -> anyhow::Result<Vec<StripeEntry>> {
    let mut out = Vec::new();
    for group in meta.object_groups().await? {
        let mut after = None;
        loop {
            let page = meta.list_stripes(group, after, 1000).await?;
            after = page.stripes.last().map(|s| s.id);
            out.extend(page.stripes);
            if !page.is_truncated || after.is_none() {
                break;
            }
        }
    }
    Ok(out)
}

pub(crate) async fn cluster_map(meta: &MetaClient) -> anyhow::Result<ClusterMap> {
    let mut map = ClusterMap::new();
    for r in meta.nodes().await? {
        map.insert_node(r.info);
    }
    Ok(map)
}

/// `None` unless `off` is in state `state` and every stripe is fully repaired: no
/// fragment on `off`, the rack rule holds, and every fragment stats (every block
/// verified) on an Up data node.
async fn fully_repaired(meta: &MetaClient, off: NodeId, state: NodeState) -> Option<usize> {
    let map = cluster_map(meta).await.ok()?;
    if map.node(off)?.state != state {
        return None;
    }
    let stripes = all_stripes(meta).await.ok()?;
    for s in &stripes {
        if s.placement.iter().any(|l| l.node == off) {
            return None;
        }
        let placement = Placement {
            locations: s.placement.clone(),
        };
        check_placement(&map, &placement, s.codec.k, s.codec.m)
            .unwrap_or_else(|v| panic!("stripe {} breaks the rack rule: {v}", s.id));
    }
    for s in &stripes {
        for (index, loc) in (0u8..).zip(&s.placement) {
            let node = map.node(loc.node)?;
            if node.state != NodeState::Up {
                return None;
            }
            let mut c = DatanodeServiceClient::connect(format!("http://{}", node.addr))
                .await
                .ok()?;
            let id = FragmentId {
                stripe: s.id,
                index,
            };
            c.stat_fragment(StatFragmentRequest {
                id: Some(id.into()),
                disk: loc.disk.0,
                verify: true,
            })
            .await
            .ok()?;
        }
    }
    Some(stripes.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_datanodes_fragments_are_rebuilt_by_the_rack_rule() {
    // Data nodes heartbeat every 5 s: 12 s of silence is Down, 20 s is Dead.
    let mut c = MultiCluster::start_with(
        1,
        "[maintain]\ndown_after_secs = 12\ndead_after_secs = 20\ndetector_tick_ms = 200\n\
         repair_tick_ms = 300\ngc_delay_secs = 1\ngc_tick_ms = 300\n",
    )
    .await
    .expect("starting the cluster");
    let meta = c.meta().await.expect("meta client");
    let s3 = c.s3(0);
    let bucket = new_bucket(&s3, "repair").await;
    let mut objects = BTreeMap::new();
    for (i, len) in [1usize << 20, 300 << 10, 9 << 20, 4 << 20, 70 << 10, 2 << 20]
        .into_iter()
        .enumerate()
    {
        let key = format!("obj-{i}");
        let body = data(len, 100 + i as u64);
        put(&s3, &bucket, &key, &body).await;
        objects.insert(key, body);
    }
    let stripes = all_stripes(&meta).await.expect("stripes");
    assert!(!stripes.is_empty());
    // The node holding the most fragments dies.
    let mut per_node: BTreeMap<NodeId, usize> = BTreeMap::new();
    for s in &stripes {
        for l in &s.placement {
            *per_node.entry(l.node).or_default() += 1;
        }
    }
    let (&victim, &held) = per_node
        .iter()
        .max_by_key(|(n, c)| (**c, std::cmp::Reverse(**n)))
        .expect("a node holds fragments");
    assert!(held > 0);
    c.kill9_datanode(usize::try_from(victim.0).expect("id") - 1);

    let repaired = poll_until(
        Duration::from_secs(180),
        "every stripe repaired off the dead node",
        || fully_repaired(&meta, victim, NodeState::Dead),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.log_tails(30)));
    assert_eq!(repaired, stripes.len(), "no stripe appeared or vanished");

    for (key, body) in &objects {
        let got = get(&s3, &bucket, key).await;
        assert!(
            got == *body,
            "{key}: {} bytes back, {} written",
            got.len(),
            body.len()
        );
    }

    // The operator's view agrees: nothing left to repair.
    let status = c.admin(&["repair", "status"]);
    assert!(
        status.contains(&format!("100.0% of {repaired} stripes at k+m")),
        "{status}"
    );
    assert!(
        status.contains("BACKLOG     0 stripes need repair"),
        "{status}"
    );
    assert!(status.contains("UNRECOVERABLE 0 stripes"), "{status}");

    // The leaders' own reports (`MaintainStatus`): the settings they run with, and
    // between them at least every fragment the dead node held rebuilt.
    let mut reports = BTreeMap::new();
    for g in meta.object_groups().await.expect("groups") {
        let r = meta
            .maintain_status(g)
            .await
            .expect("maintain status")
            .expect("the leader runs the maintenance loops");
        assert_eq!(r.settings.dead_after_secs, 20, "{r:?}");
        reports.insert(r.node_id, r);
    }
    let rebuilt: u64 = reports.values().map(|r| r.repair.repaired_fragments).sum();
    assert!(
        rebuilt >= held as u64,
        "{rebuilt} fragments rebuilt, {held} lost"
    );

    // The same counters on every meta node's Prometheus endpoint.
    let mut scraped = 0u64;
    for addr in &c.metrics_addrs {
        let text = scrape(addr).await;
        assert!(
            text.contains("shale_maintain_loops_running{node="),
            "{text}"
        );
        scraped += metric_sum(&text, "shale_repair_fragments_total");
    }
    assert!(scraped >= rebuilt, "{scraped} scraped, {rebuilt} reported");

    // `shale admin status` estimates durability from the placements (8+4 across 4
    // racks) and a repair time of the 20 s detection plus the rebuild.
    let status = c.admin(&["status"]);
    assert!(status.contains("\nDURABILITY (markov model"), "{status}");
    assert!(
        status.contains("repair: detection 20 s + rebuild"),
        "{status}"
    );
    assert!(
        status.contains(&format!("stripes: {repaired} (all)")),
        "{status}"
    );
    assert!(
        status.contains("8+4 with at most ") && status.contains(" nines (independent failures)"),
        "{status}"
    );
    assert!(!status.contains("WARNING"), "{status}");
}

/// `GET /metrics` from a meta node's Prometheus endpoint (the body).
async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: shale\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("response");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

/// The sum of every sample of `name` in an exposition text.
fn metric_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_datanode_is_emptied_while_it_serves_reads() {
    let mut c = MultiCluster::start_with(
        1,
        "[maintain]\nrepair_tick_ms = 300\ngc_delay_secs = 1\ngc_tick_ms = 300\n",
    )
    .await
    .expect("starting the cluster");
    let meta = c.meta().await.expect("meta client");
    let s3 = c.s3(0);
    let bucket = new_bucket(&s3, "drain").await;
    let mut objects = BTreeMap::new();
    for (i, len) in [5usize << 20, 200 << 10, 1 << 20].into_iter().enumerate() {
        let key = format!("obj-{i}");
        let body = data(len, 200 + i as u64);
        put(&s3, &bucket, &key, &body).await;
        objects.insert(key, body);
    }
    let stripes = all_stripes(&meta).await.expect("stripes");
    let mut per_node: BTreeMap<NodeId, usize> = BTreeMap::new();
    for s in &stripes {
        for l in &s.placement {
            *per_node.entry(l.node).or_default() += 1;
        }
    }
    let (&drained, _) = per_node
        .iter()
        .max_by_key(|(n, c)| (**c, std::cmp::Reverse(**n)))
        .expect("a node holds fragments");
    // Still holding fragments: removal is refused, with what to do.
    let refused = c.admin_err(&["node", "remove", "--node", &drained.0.to_string()]);
    assert!(
        refused.contains("is still referenced") && refused.contains("Drain it"),
        "{refused}"
    );
    c.admin(&[
        "node",
        "set-state",
        "--node",
        &drained.0.to_string(),
        "--state",
        "draining",
        "--reason",
        "decommission",
    ]);
    let moved = poll_until(
        Duration::from_secs(120),
        "every fragment moved off the draining node",
        || fully_repaired(&meta, drained, NodeState::Draining),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.log_tails(30)));
    assert_eq!(moved, stripes.len());
    // The old copies went to the GC queue: the drained node ends up empty.
    let addr = cluster_map(&meta)
        .await
        .expect("map")
        .node(drained)
        .expect("drained node")
        .addr
        .clone();
    poll_until(
        Duration::from_secs(60),
        "the drained node's old copies collected",
        || {
            let addr = addr.clone();
            async move {
                let mut c = DatanodeServiceClient::connect(format!("http://{addr}"))
                    .await
                    .ok()?;
                let r = c
                    .list_fragments(ListFragmentsRequest {
                        disk: 0,
                        after: None,
                        limit: 10,
                    })
                    .await
                    .ok()?
                    .into_inner();
                r.fragments.is_empty().then_some(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.log_tails(30)));
    for (key, body) in &objects {
        assert!(get(&s3, &bucket, key).await == *body, "{key}");
    }
    // Emptied: once the GC queues no longer name it either, the node is stopped and
    // removed from the cluster map; everything still reads.
    let id = drained.0.to_string();
    poll_until(
        Duration::from_secs(60),
        "the GC queues to drain",
        || async { gc_free_of(&meta, drained).await.then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.log_tails(30)));
    c.kill9_datanode(usize::try_from(drained.0).expect("id") - 1);
    let out = c.admin(&["node", "remove", "--node", &id]);
    assert!(out.contains(&format!("node {id} removed")), "{out}");
    assert!(cluster_map(&meta)
        .await
        .expect("map")
        .node(drained)
        .is_none());
    for (key, body) in &objects {
        assert!(get(&s3, &bucket, key).await == *body, "{key}");
    }
}

/// Whether no GC queue entry names `node`.
async fn gc_free_of(meta: &MetaClient, node: NodeId) -> bool {
    let Ok(groups) = meta.object_groups().await else {
        return false;
    };
    for g in groups {
        let Ok(entries) = meta.gc_take(g, None, 1000).await else {
            return false;
        };
        if entries
            .iter()
            .any(|e| e.fragments.iter().any(|f| f.location.node == node))
        {
            return false;
        }
    }
    true
}

/// A whole rack and one more node declared Dead leave 11 Up nodes: a stripe that had
/// fragments on both needs 4 new places among 3 free nodes. Repair never weakens the
/// rule: those stripes are counted as blocked by placement, the objects stay readable
/// (8 healthy fragments), and `shale admin repair status` tells the operator why and
/// what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rack_rule_that_cannot_be_met_is_reported_never_weakened() {
    let c = MultiCluster::start_with(1, "[maintain]\nrepair_tick_ms = 300\n")
        .await
        .expect("starting the cluster");
    let meta = c.meta().await.expect("meta client");
    let s3 = c.s3(0);
    let bucket = new_bucket(&s3, "blocked").await;
    let mut objects = BTreeMap::new();
    for (i, len) in [1usize << 20, 600 << 10, 2 << 20].into_iter().enumerate() {
        let key = format!("obj-{i}");
        let body = data(len, 300 + i as u64);
        put(&s3, &bucket, &key, &body).await;
        objects.insert(key, body);
    }
    let map = cluster_map(&meta).await.expect("map");
    let stripes = all_stripes(&meta).await.expect("stripes");
    // The rack of node 1, and the node outside it holding the most fragments.
    let rack = map.rack_of(NodeId(1)).expect("node 1").clone();
    let mut dead: Vec<NodeId> = map
        .nodes
        .values()
        .filter(|n| n.rack == rack)
        .map(|n| n.id)
        .collect();
    let mut per_node: BTreeMap<NodeId, usize> = BTreeMap::new();
    for s in &stripes {
        for l in &s.placement {
            if map.rack_of(l.node) != Some(&rack) {
                *per_node.entry(l.node).or_default() += 1;
            }
        }
    }
    let (&extra, _) = per_node
        .iter()
        .max_by_key(|(n, c)| (**c, std::cmp::Reverse(**n)))
        .expect("a node outside the rack holds fragments");
    dead.push(extra);
    for n in &dead {
        c.admin(&[
            "node",
            "set-state",
            "--node",
            &n.0.to_string(),
            "--state",
            "dead",
            "--reason",
            "rack lost",
        ]);
    }
    let status = poll_until(
        Duration::from_secs(90),
        "repair status to report blocked stripes",
        || async {
            let s = c.admin(&["repair", "status"]);
            s.contains("BLOCKED ").then_some(s)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", c.log_tails(30)));
    assert!(status.contains("Add nodes or racks"), "{status}");
    assert!(status.contains("UNRECOVERABLE 0 stripes"), "{status}");
    // The leaders' reports agree, and no committed placement breaks the rule.
    let mut blocked = 0;
    for g in meta.object_groups().await.expect("groups") {
        if let Some(r) = meta.maintain_status(g).await.expect("maintain status") {
            blocked += r.repair.blocked_by_placement;
        }
    }
    assert!(blocked > 0, "{status}");
    for s in all_stripes(&meta).await.expect("stripes") {
        let mut per_rack: BTreeMap<_, u8> = BTreeMap::new();
        for l in &s.placement {
            *per_rack.entry(map.rack_of(l.node).cloned()).or_default() += 1;
        }
        assert!(
            per_rack.values().all(|&n| n <= s.codec.m),
            "stripe {} has more than m fragments in a rack: {per_rack:?}",
            s.id
        );
        let nodes: std::collections::BTreeSet<_> = s.placement.iter().map(|l| l.node).collect();
        assert_eq!(nodes.len(), s.placement.len(), "two fragments on one node");
    }
    for (key, body) in &objects {
        assert!(get(&s3, &bucket, key).await == *body, "{key} differs");
    }
}
