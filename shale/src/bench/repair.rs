//! `shale bench-repair`: the measuring steps of `scripts/bench-repair.sh` (which starts
//! the multi-process cluster, loads it and restarts processes between runs).
//!
//! - `victim`: the Up data node holding the most fragments (`NODE FRAGMENTS BYTES`).
//! - `repair --victim N --pid P --budget B`: kill -9 `P` (the victim's process), then
//!   poll the cluster map and every object group's stripe index until the victim is
//!   Dead and every stripe is back at `k + m` healthy fragments off it (the repair
//!   loop's own classification, `maintain::repair_plan`), then check every fragment is
//!   present on its data node. Prints one JSON object: time to Down, to Dead, to full
//!   redundancy, bytes rebuilt, rebuilt MiB/s, and the budget accounting: a rebuild
//!   reserves the `k` fragments it reads plus the ones it writes from its meta node's
//!   `repair_bytes_per_sec` bucket, so the achieved budget rate is those bytes per
//!   second per leading meta node.
//! - `scrub --since-ms T`: wait until every Up data node finished a scrub pass that
//!   started at or after `T` (Unix ms), then print each node's pass (bytes, duration,
//!   rate, configured budget) and the aggregate as JSON.
//!
//! Wall time is measured on the `common::env` clock of the tool's own process.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{bail, Context};
use common::cluster::{ClusterMap, NodeState};
use common::env::{Env, Instant};
use common::ids::{FragmentId, GroupId, NodeId};
use maintain::repair_plan::{assess, classify_fragment, fragment_bytes, mark_misplaced, Verdict};
use meta_raft::client::MetaClient;
use meta_raft::state_machine::StripeEntry;
use proto::datanode::datanode_service_client::DatanodeServiceClient;
use proto::datanode::{HealthRequest, StatFragmentRequest};

#[derive(clap::Args, Debug)]
pub struct BenchRepairArgs {
    /// Meta node addresses (comma-separated host:port).
    #[arg(long, env = "SHALE_META", value_delimiter = ',')]
    pub meta: Vec<String>,
    #[arg(long, env = "SHALE_CLUSTER_ID", default_value = "shale-local")]
    pub cluster_id: String,
    #[command(subcommand)]
    pub step: Step,
}

#[derive(clap::Subcommand, Debug)]
pub enum Step {
    /// Print the Up data node holding the most fragments: `NODE FRAGMENTS BYTES`.
    Victim,
    /// Succeed when at least this many data nodes are registered and Up.
    Up {
        #[arg(long)]
        at_least: usize,
    },
    /// kill -9 the victim's process, measure detection and repair (one JSON line).
    Repair {
        /// The data node that dies.
        #[arg(long)]
        victim: u64,
        /// Its process id (killed with SIGKILL by this tool, when the clock starts).
        #[arg(long)]
        pid: u32,
        /// The configured `repair_bytes_per_sec` of every meta node (for the ratio).
        #[arg(long)]
        budget: u64,
        /// Give up after this long.
        #[arg(long, default_value_t = 1800)]
        timeout_secs: u64,
        /// Poll interval.
        #[arg(long, default_value_t = 250)]
        poll_ms: u64,
    },
    /// Wait for a scrub pass started at or after `--since-ms` on every Up data node.
    Scrub {
        /// Unix ms; passes that started earlier are ignored.
        #[arg(long)]
        since_ms: u64,
        #[arg(long, default_value_t = 900)]
        timeout_secs: u64,
    },
}

pub async fn run(args: BenchRepairArgs) -> anyhow::Result<()> {
    let env = Env::from_entropy();
    let meta = MetaClient::connect(args.meta.clone(), args.cluster_id.clone())
        .await
        .context("connecting to the metadata plane")?;
    match args.step {
        Step::Victim => {
            let stripes = all_stripes(&meta).await?;
            let map = cluster_map(&meta).await?;
            let mut held: BTreeMap<NodeId, (u64, u64)> = BTreeMap::new();
            for (_, s) in &stripes {
                let frag = fragment_bytes(s.codec, s.data_len);
                for l in &s.placement {
                    let e = held.entry(l.node).or_default();
                    e.0 += 1;
                    e.1 += frag;
                }
            }
            let (node, (n, bytes)) = held
                .iter()
                .filter(|(n, _)| map.node(**n).is_some_and(|i| i.state == NodeState::Up))
                .max_by_key(|(n, (c, _))| (*c, std::cmp::Reverse(**n)))
                .context("no Up data node holds a fragment")?;
            println!("{} {n} {bytes}", node.0);
            Ok(())
        }
        Step::Up { at_least } => {
            let map = cluster_map(&meta).await?;
            let up = map
                .nodes
                .values()
                .filter(|n| n.state == NodeState::Up)
                .count();
            if up < at_least {
                bail!("{up} data nodes Up, waiting for {at_least}");
            }
            Ok(())
        }
        Step::Repair {
            victim,
            pid,
            budget,
            timeout_secs,
            poll_ms,
        } => {
            let line = measure_repair(
                &env,
                &meta,
                NodeId(victim),
                pid,
                budget,
                Duration::from_secs(timeout_secs),
                Duration::from_millis(poll_ms),
            )
            .await?;
            println!("{line}");
            Ok(())
        }
        Step::Scrub {
            since_ms,
            timeout_secs,
        } => {
            let line =
                measure_scrub(&env, &meta, since_ms, Duration::from_secs(timeout_secs)).await?;
            println!("{line}");
            Ok(())
        }
    }
}

/// Every stripe of every object group, with its group.
async fn all_stripes(meta: &MetaClient) -> anyhow::Result<Vec<(GroupId, StripeEntry)>> {
    let mut out = Vec::new();
    for group in meta.object_groups().await? {
        let mut after = None;
        loop {
            let page = meta.list_stripes(group, after, 1000).await?;
            after = page.stripes.last().map(|s| s.id);
            out.extend(page.stripes.into_iter().map(|s| (group, s)));
            if !page.is_truncated || after.is_none() {
                break;
            }
        }
    }
    Ok(out)
}

async fn cluster_map(meta: &MetaClient) -> anyhow::Result<ClusterMap> {
    let mut map = ClusterMap::new();
    for r in meta.nodes().await? {
        map.insert_node(r.info);
    }
    Ok(map)
}

/// Per group: fragments (and their bytes) still on the victim; whether every stripe is
/// healthy by the repair loop's rules.
struct Snapshot {
    on_victim: BTreeMap<GroupId, (u64, u64)>,
    all_healthy: bool,
    stripes: usize,
}

fn snapshot(map: &ClusterMap, stripes: &[(GroupId, StripeEntry)], victim: NodeId) -> Snapshot {
    let mut on_victim: BTreeMap<GroupId, (u64, u64)> = BTreeMap::new();
    let mut all_healthy = true;
    for (group, s) in stripes {
        let frag = fragment_bytes(s.codec, s.data_len);
        let e = on_victim.entry(*group).or_default();
        let lost = s.placement.iter().filter(|l| l.node == victim).count() as u64;
        e.0 += lost;
        e.1 += frag * lost;
        let mut health: Vec<_> = s
            .placement
            .iter()
            .map(|l| classify_fragment(map, *l, false))
            .collect();
        mark_misplaced(map, s.codec, &s.placement, &mut health);
        if !matches!(assess(s.codec.data_fragments(), &health), Verdict::Healthy) {
            all_healthy = false;
        }
    }
    Snapshot {
        on_victim,
        all_healthy,
        stripes: stripes.len(),
    }
}

fn secs(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

#[derive(Default)]
struct GroupProgress {
    leader: Option<u64>,
    /// Fragments / bytes on the victim when it died.
    fragments: u64,
    bytes: u64,
    /// Bytes the rebuilds reserve from the leader's budget: `k + 1` fragments per
    /// rebuilt fragment (one lost fragment per stripe).
    budget_bytes: u64,
    first_progress: Option<Instant>,
    done: Option<Instant>,
}

async fn measure_repair(
    env: &Env,
    meta: &MetaClient,
    victim: NodeId,
    pid: u32,
    budget: u64,
    timeout: Duration,
    poll: Duration,
) -> anyhow::Result<String> {
    let clock = env.clock();
    let stripes = all_stripes(meta).await?;
    let map = cluster_map(meta).await?;
    match map.node(victim) {
        Some(n) if n.state == NodeState::Up => {}
        other => bail!("node {} is not Up: {:?}", victim.0, other.map(|n| n.state)),
    }
    let mut groups: BTreeMap<GroupId, GroupProgress> = BTreeMap::new();
    for (group, s) in &stripes {
        let g = groups.entry(*group).or_default();
        let frag = fragment_bytes(s.codec, s.data_len);
        let lost = s.placement.iter().filter(|l| l.node == victim).count() as u64;
        g.fragments += lost;
        g.bytes += frag * lost;
        if lost > 0 {
            g.budget_bytes += frag * (u64::from(s.codec.k) + lost);
        }
    }
    for (group, g) in groups.iter_mut() {
        g.leader = meta.group_status(*group).await.ok().and_then(|s| s.leader);
    }
    let total_fragments: u64 = groups.values().map(|g| g.fragments).sum();
    let total_bytes: u64 = groups.values().map(|g| g.bytes).sum();
    if total_fragments == 0 {
        bail!("node {} holds no fragment", victim.0);
    }

    // The clock starts with the kill.
    let t0 = clock.now();
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -9 {pid} failed");
    }
    let deadline = t0 + timeout;
    let mut t_down = None;
    let mut t_dead = None;
    let t_full;
    let mut polls = 0u64;
    loop {
        if clock.now() > deadline {
            bail!(
                "no full redundancy within {}s (down {:?}, dead {:?})",
                timeout.as_secs(),
                t_down.map(|t| secs(t0, t)),
                t_dead.map(|t| secs(t0, t))
            );
        }
        clock.sleep(poll).await;
        polls += 1;
        let (Ok(map), Ok(stripes)) = (cluster_map(meta).await, all_stripes(meta).await) else {
            continue;
        };
        let now = clock.now();
        let state = map.node(victim).map(|n| n.state);
        if t_down.is_none() && matches!(state, Some(NodeState::Down | NodeState::Dead)) {
            t_down = Some(now);
        }
        if t_dead.is_none() && state == Some(NodeState::Dead) {
            t_dead = Some(now);
        }
        let snap = snapshot(&map, &stripes, victim);
        for (group, g) in groups.iter_mut() {
            let (left, _) = snap.on_victim.get(group).copied().unwrap_or_default();
            if g.first_progress.is_none() && left < g.fragments {
                g.first_progress = Some(now);
            }
            if g.done.is_none() && left == 0 {
                g.done = Some(now);
            }
        }
        let left: u64 = snap.on_victim.values().map(|(n, _)| n).sum();
        if t_dead.is_some() && left == 0 && snap.all_healthy {
            if snap.stripes != stripes.len() {
                bail!("stripes changed during the run");
            }
            t_full = now;
            break;
        }
    }
    let t_dead = t_dead.context("dead time")?;
    // The groups' leaders at the end (a leader change shows in the report).
    let mut leaders_end = BTreeMap::new();
    for group in groups.keys() {
        leaders_end.insert(
            *group,
            meta.group_status(*group).await.ok().and_then(|s| s.leader),
        );
    }

    // Every fragment present on its (Up) data node.
    let map = cluster_map(meta).await?;
    let stripes = all_stripes(meta).await?;
    let mut missing = 0u64;
    let mut clients: BTreeMap<NodeId, DatanodeServiceClient<tonic::transport::Channel>> =
        BTreeMap::new();
    for (_, s) in &stripes {
        for (index, loc) in (0u8..).zip(&s.placement) {
            let node = map
                .node(loc.node)
                .context("placement names an unknown node")?;
            let c = match clients.entry(loc.node) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(
                    DatanodeServiceClient::connect(format!("http://{}", node.addr))
                        .await
                        .with_context(|| format!("connecting to data node {}", loc.node.0))?,
                ),
            };
            let id = FragmentId {
                stripe: s.id,
                index,
            };
            let r = c
                .stat_fragment(StatFragmentRequest {
                    id: Some(id.into()),
                    disk: loc.disk.0,
                    verify: false,
                })
                .await;
            if r.is_err() {
                missing += 1;
            }
        }
    }
    if missing > 0 {
        bail!("{missing} fragments of the placements are missing on their data nodes");
    }

    // Per leading meta node: its groups' budget bytes over [dead, its last group done].
    let mut per_leader: BTreeMap<u64, (u64, u64, Instant)> = BTreeMap::new();
    for g in groups.values() {
        let Some(leader) = g.leader else { continue };
        let e = per_leader.entry(leader).or_insert((0, 0, t_dead));
        e.0 += g.bytes;
        e.1 += g.budget_bytes;
        if let Some(done) = g.done {
            e.2 = e.2.max(done);
        }
    }
    let repair_secs = secs(t_dead, t_full).max(0.001);
    let first = groups
        .values()
        .filter_map(|g| g.first_progress)
        .min()
        .unwrap_or(t_dead);
    let active_secs = secs(first, t_full).max(0.001);
    let mut leaders_json = String::new();
    let mut max_ratio: f64 = 0.0;
    let mut max_bucket_ratio: f64 = 0.0;
    for (leader, (bytes, budget_bytes, done)) in &per_leader {
        let s = secs(t_dead, *done).max(0.001);
        let rate = *budget_bytes as f64 / s;
        let ratio = rate / budget as f64;
        // The bucket starts with one second of budget: at most budget × (s + 1) bytes.
        let bucket_ratio = *budget_bytes as f64 / (budget as f64 * (s + 1.0));
        max_ratio = max_ratio.max(ratio);
        max_bucket_ratio = max_bucket_ratio.max(bucket_ratio);
        let _ = write!(
            leaders_json,
            "{}{{\"meta\":{leader},\"rebuilt_mib\":{:.1},\"budget_mib\":{:.1},\"secs\":{s:.1},\"rebuilt_mib_s\":{:.2},\"budget_mib_s\":{:.2},\"ratio\":{ratio:.3},\"bucket_ratio\":{bucket_ratio:.3}}}",
            if leaders_json.is_empty() { "" } else { "," },
            mib(*bytes),
            mib(*budget_bytes),
            mib(*bytes) / s,
            mib(*budget_bytes) / s,
        );
    }
    let leaders_changed = groups
        .iter()
        .any(|(group, g)| leaders_end.get(group).copied().flatten() != g.leader);
    let budget_bytes: u64 = groups.values().map(|g| g.budget_bytes).sum();
    Ok(format!(
        "{{\"victim\":{},\"stripes\":{},\"fragments\":{total_fragments},\"rebuilt_mib\":{:.1},\
         \"down_s\":{:.1},\"dead_s\":{:.1},\"full_s\":{:.1},\"repair_s\":{repair_secs:.1},\
         \"active_s\":{active_secs:.1},\"rebuilt_mib_s\":{:.2},\"rebuilt_mib_s_active\":{:.2},\
         \"budget_mib_s\":{:.2},\"budget_read_write_mib\":{:.1},\"leaders\":{},\
         \"leaders_changed\":{leaders_changed},\"max_leader_ratio\":{max_ratio:.3},\
         \"max_leader_bucket_ratio\":{max_bucket_ratio:.3},\
         \"per_leader\":[{leaders_json}],\"polls\":{polls}}}",
        victim.0,
        stripes.len(),
        mib(total_bytes),
        t_down.map_or(-1.0, |t| secs(t0, t)),
        secs(t0, t_dead),
        secs(t0, t_full),
        mib(total_bytes) / repair_secs,
        mib(total_bytes) / active_secs,
        mib(budget),
        mib(budget_bytes),
        per_leader.len(),
    ))
}

async fn measure_scrub(
    env: &Env,
    meta: &MetaClient,
    since_ms: u64,
    timeout: Duration,
) -> anyhow::Result<String> {
    let clock = env.clock();
    let deadline = clock.now() + timeout;
    let map = cluster_map(meta).await?;
    let nodes: Vec<(NodeId, String)> = map
        .nodes
        .values()
        .filter(|n| n.state == NodeState::Up)
        .map(|n| (n.id, n.addr.clone()))
        .collect();
    if nodes.is_empty() {
        bail!("no Up data node");
    }
    // node → (bytes, started_ms, finished_ms, budget)
    let mut done: BTreeMap<NodeId, (u64, u64, u64, u64)> = BTreeMap::new();
    let mut waiting: BTreeSet<NodeId> = nodes.iter().map(|(n, _)| *n).collect();
    while !waiting.is_empty() {
        if clock.now() > deadline {
            bail!(
                "no finished scrub pass after {since_ms} on nodes {:?} within {}s",
                waiting.iter().map(|n| n.0).collect::<Vec<_>>(),
                timeout.as_secs()
            );
        }
        for (id, addr) in &nodes {
            if !waiting.contains(id) {
                continue;
            }
            let Ok(mut c) = DatanodeServiceClient::connect(format!("http://{addr}")).await else {
                continue;
            };
            let Ok(h) = c.health(HealthRequest {}).await else {
                continue;
            };
            let Some(s) = h.into_inner().scrub else {
                continue;
            };
            if !s.running
                && s.pass_started_ms >= since_ms
                && s.pass_finished_ms >= s.pass_started_ms
            {
                done.insert(
                    *id,
                    (
                        s.pass_bytes_verified,
                        s.pass_started_ms,
                        s.pass_finished_ms,
                        s.bytes_per_sec,
                    ),
                );
                waiting.remove(id);
            }
        }
        if !waiting.is_empty() {
            clock.sleep(Duration::from_secs(1)).await;
        }
    }
    let mut per_node = String::new();
    let mut ratios = Vec::new();
    let mut bucket_ratios = Vec::new();
    let mut total = 0u64;
    let mut budget_sum = 0u64;
    let (mut first, mut last) = (u64::MAX, 0u64);
    for (id, (bytes, start, end, budget)) in &done {
        let s = (end.saturating_sub(*start) as f64 / 1000.0).max(0.001);
        let rate = *bytes as f64 / s;
        let ratio = rate / *budget as f64;
        // The scrubber's bucket starts with a quarter second of budget.
        let bucket_ratio = *bytes as f64 / (*budget as f64 * (s + 0.25));
        ratios.push(ratio);
        bucket_ratios.push(bucket_ratio);
        total += bytes;
        budget_sum += budget;
        first = first.min(*start);
        last = last.max(*end);
        let _ = write!(
            per_node,
            "{}{{\"node\":{},\"mib\":{:.1},\"secs\":{s:.2},\"mib_s\":{:.2},\"ratio\":{ratio:.3},\"bucket_ratio\":{bucket_ratio:.3}}}",
            if per_node.is_empty() { "" } else { "," },
            id.0,
            mib(*bytes),
            mib(*bytes) / s,
        );
    }
    ratios.sort_by(f64::total_cmp);
    bucket_ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let bucket_median = bucket_ratios[bucket_ratios.len() / 2];
    let span = (last.saturating_sub(first) as f64 / 1000.0).max(0.001);
    let budget = done.values().map(|d| d.3).max().unwrap_or(0);
    Ok(format!(
        "{{\"nodes\":{},\"budget_mib_s\":{:.2},\"total_mib\":{:.1},\"span_s\":{span:.1},\
         \"aggregate_mib_s\":{:.2},\"aggregate_ratio\":{:.3},\"node_ratio_min\":{:.3},\
         \"node_ratio_median\":{median:.3},\"node_ratio_max\":{:.3},\
         \"node_bucket_ratio_min\":{:.3},\"node_bucket_ratio_median\":{bucket_median:.3},\
         \"node_bucket_ratio_max\":{:.3},\"per_node\":[{per_node}]}}",
        done.len(),
        mib(budget),
        mib(total),
        mib(total) / span,
        total as f64 / span / budget_sum as f64,
        ratios[0],
        ratios[ratios.len() - 1],
        bucket_ratios[0],
        bucket_ratios[bucket_ratios.len() - 1],
    ))
}
