//! `shale admin`: operator commands against the metadata plane, through the production
//! `MetaClient`.
//!
//! - `status`: the data nodes of the cluster map (rack, address, state, disks, last
//!   heartbeat) and every Raft group (key range, leader, voters, learners, term and the
//!   log / commit / apply / snapshot indexes as the leader reports them).
//! - `key create [--id ID --secret S] [--name USER]`, `key list`, `key delete ID`: S3
//!   access keys. `create` generates the id and secret (from `common::env` randomness)
//!   unless given, and prints `access_key_id = …` and `secret_access_key = …` lines.
//! - `node set-state --node N --state up|down|draining|dead --reason TEXT`: a data
//!   node's state as the operator decides it (the failure detector only ever changes
//!   Up → Down, Down → Up and Down → Dead by itself). `node remove --node N`: takes a
//!   Draining or Dead node out of the cluster map once no stripe or queued deletion
//!   names it.
//! - `disk fail --node N --disk D --reason TEXT`, `disk restore --node N --disk D`: mark
//!   a disk failed (no new fragments; heartbeats do not undo it) or healthy again.
//! - `meta add-voter --node N --addr A [--group G]`, `meta remove-voter --node N
//!   [--group G]`: membership of one group, or of every group (the root group and all
//!   object groups) without `--group`. The new node must already run `shale meta` with
//!   `join = true`.
//!
//! `--meta` (comma-separated meta node addresses) and `--cluster-id` default to the
//! `SHALE_META` and `SHALE_CLUSTER_ID` environment variables.

use std::fmt::Write as _;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use common::cluster::{DiskState, NodeState};
use common::env::{Clock, Env};
use common::ids::{DiskId, GroupId, NodeId};
use meta_raft::client::MetaClient;
use meta_raft::group_status::GroupStatus;
use meta_raft::state_machine::{AccessKey, GroupRange, NodeRecord};

/// Environment variable holding the meta node addresses (comma-separated).
pub const META_ENV: &str = "SHALE_META";
/// Environment variable holding the cluster id.
pub const CLUSTER_ID_ENV: &str = "SHALE_CLUSTER_ID";

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Meta node addresses, comma-separated (host:port,…). Default: $SHALE_META.
    #[arg(long, value_delimiter = ',')]
    pub meta: Vec<String>,
    /// The cluster's id. Default: $SHALE_CLUSTER_ID.
    #[arg(long)]
    pub cluster_id: Option<String>,
    #[command(subcommand)]
    pub cmd: AdminCommand,
}

/// Flags of `shale admin status`: the failure rates the durability estimate assumes
/// (everything else it measures).
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Failures per year of a disk or data node: "2%" or "0.02".
    #[arg(long, default_value = "2%", value_parser = parse_rate_arg)]
    pub afr: f64,
    /// Losses per year of a whole rack (power, switch): "1%" or "0.01".
    #[arg(long, default_value = "1%", value_parser = parse_rate_arg)]
    pub rack_afr: f64,
}

fn parse_rate_arg(s: &str) -> Result<f64, String> {
    placement::durability::parse_rate(s).map_err(|e| e.to_string())
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Data nodes and metadata groups of the cluster, and its durability estimate.
    Status(StatusArgs),
    /// S3 access keys.
    Key {
        #[command(subcommand)]
        cmd: KeyCommand,
    },
    /// Membership of the metadata plane's Raft groups.
    Meta {
        #[command(subcommand)]
        cmd: MetaCommand,
    },
    /// Data node states.
    Node {
        #[command(subcommand)]
        cmd: NodeCommand,
    },
    /// Disks of data nodes.
    Disk {
        #[command(subcommand)]
        cmd: DiskCommand,
    },
    /// Repair of lost, moving and damaged fragments.
    Repair {
        #[command(subcommand)]
        cmd: RepairCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum RepairCommand {
    /// Backlog (stripes needing repair by healthy fragments), progress, rate and ETA.
    Status(crate::repair_cmd::RepairStatusArgs),
}

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Set a data node's state (up, down, draining, dead), with a reason.
    SetState {
        #[arg(long)]
        node: u64,
        /// up, down, draining or dead.
        #[arg(long, value_parser = parse_node_state)]
        state: NodeState,
        #[arg(long)]
        reason: String,
    },
    /// Remove a Draining or Dead data node from the cluster map, once no stripe and no
    /// queued deletion names it (drain it first and let repair and GC finish; stop its
    /// process first, or it registers itself again).
    Remove {
        #[arg(long)]
        node: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum DiskCommand {
    /// Mark a disk failed: it receives no new fragments, its fragments count as lost.
    Fail {
        #[arg(long)]
        node: u64,
        #[arg(long)]
        disk: u32,
        #[arg(long)]
        reason: String,
    },
    /// Mark a failed disk healthy again.
    Restore {
        #[arg(long)]
        node: u64,
        #[arg(long)]
        disk: u32,
    },
}

fn parse_node_state(s: &str) -> Result<NodeState, String> {
    match s {
        "up" => Ok(NodeState::Up),
        "down" => Ok(NodeState::Down),
        "draining" => Ok(NodeState::Draining),
        "dead" => Ok(NodeState::Dead),
        other => Err(format!(
            "unknown state {other:?}: one of up, down, draining, dead"
        )),
    }
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create an access key (id and secret generated unless given).
    Create {
        /// Access key id (default: generated).
        #[arg(long, requires = "secret")]
        id: Option<String>,
        /// Secret access key (default: generated).
        #[arg(long, requires = "id")]
        secret: Option<String>,
        /// The user the key belongs to (owns the buckets it creates). Default: the key id.
        #[arg(long)]
        name: Option<String>,
    },
    /// List access keys (ids and users; never secrets).
    List,
    /// Delete an access key.
    Delete {
        /// The access key id.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum MetaCommand {
    /// Add a meta node as a voter (learner first, promoted once caught up).
    AddVoter {
        /// The node's id.
        #[arg(long)]
        node: u64,
        /// The node's address (host:port of its `shale meta` listener).
        #[arg(long)]
        addr: String,
        /// Only this group (default: every group).
        #[arg(long)]
        group: Option<u64>,
    },
    /// Remove a meta node from the voters.
    RemoveVoter {
        /// The node's id.
        #[arg(long)]
        node: u64,
        /// Only this group (default: every group).
        #[arg(long)]
        group: Option<u64>,
    },
}

/// Runs one admin command.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let seeds = seeds(&args.meta, std::env::var(META_ENV).ok())?;
    let cluster_id = match args.cluster_id {
        Some(c) => c,
        None => std::env::var(CLUSTER_ID_ENV)
            .with_context(|| format!("no --cluster-id given and ${CLUSTER_ID_ENV} is not set"))?,
    };
    let client = MetaClient::connect(seeds.clone(), cluster_id.clone())
        .await
        .with_context(|| format!("connecting to the metadata plane at {}", seeds.join(",")))?;
    let out = match args.cmd {
        AdminCommand::Status(a) => status(&client, &cluster_id, &a).await?,
        AdminCommand::Key { cmd } => key(&client, cmd).await?,
        AdminCommand::Meta { cmd } => meta(&client, cmd).await?,
        AdminCommand::Node { cmd } => node_cmd(&client, cmd).await?,
        AdminCommand::Disk { cmd } => disk_cmd(&client, cmd).await?,
        AdminCommand::Repair {
            cmd: RepairCommand::Status(a),
        } => crate::repair_cmd::run(&Env::from_entropy(), &client, a).await?,
    };
    print!("{out}");
    Ok(())
}

/// The meta addresses from `--meta`, else from `$SHALE_META`.
fn seeds(flag: &[String], env: Option<String>) -> anyhow::Result<Vec<String>> {
    let from_env: Vec<String>;
    let raw: &[String] = if flag.is_empty() {
        from_env = env
            .unwrap_or_default()
            .split(',')
            .map(str::to_owned)
            .collect();
        &from_env
    } else {
        flag
    };
    let seeds: Vec<String> = raw
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if seeds.is_empty() {
        bail!("no meta node addresses: pass --meta host:port,… or set ${META_ENV}");
    }
    Ok(seeds)
}

// ---- status ----

async fn status(
    client: &MetaClient,
    cluster_id: &str,
    args: &StatusArgs,
) -> anyhow::Result<String> {
    let now_ms = Clock::new().unix_ms();
    let nodes = client.nodes().await.context("reading the cluster map")?;
    let map = client
        .refresh_group_map()
        .await
        .context("reading the group map")?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cluster {cluster_id} (group map version {})",
        map.version
    );
    let _ = writeln!(out, "\nDATA NODES");
    if nodes.is_empty() {
        let _ = writeln!(out, "  (none registered)");
    } else {
        let rows: Vec<Vec<String>> = nodes.iter().map(|n| node_row(n, now_ms)).collect();
        out.push_str(&table(
            &[
                "NODE",
                "RACK",
                "ADDR",
                "STATE",
                "DISKS",
                "USED",
                "LAST HEARTBEAT",
                "STATE CHANGED",
                "FAILED DISKS",
            ],
            &rows,
        ));
    }
    let _ = writeln!(out, "\nMETA GROUPS");
    let mut rows = Vec::new();
    for g in client.all_groups().await.context("listing groups")? {
        let range = map.group(g).map_or_else(|| "root".to_owned(), range_text);
        rows.push(match client.group_status(g).await {
            Ok(s) => group_row(&s, range),
            Err(e) => {
                let mut row = vec![g.to_string(), range, format!("unavailable: {e}")];
                row.resize(10, String::new());
                row
            }
        });
    }
    out.push_str(&table(
        &[
            "GROUP",
            "RANGE",
            "LEADER",
            "VOTERS",
            "LEARNERS",
            "TERM",
            "LAST LOG",
            "COMMITTED",
            "APPLIED",
            "SNAPSHOT",
        ],
        &rows,
    ));
    let inputs = live_inputs(client, &nodes).await?;
    out.push_str(&crate::durability_live::report(
        &inputs,
        crate::durability_live::Assumptions {
            afr: args.afr,
            rack_afr: args.rack_afr,
        },
    ));
    Ok(out)
}

/// Most stripes of one group the durability estimate looks at.
const STRIPE_SAMPLE_PER_GROUP: u64 = 10_000;

/// What the live durability estimate needs: stripe classes from the placements, the
/// fullest node and rack, and the repair loops' settings and rates (one report per
/// distinct meta node leading an object group).
async fn live_inputs(
    client: &MetaClient,
    nodes: &[NodeRecord],
) -> anyhow::Result<crate::durability_live::LiveInputs> {
    use crate::durability_live::{LiveInputs, RateSource, StripeClass};
    use std::collections::BTreeMap;

    let rack_of: BTreeMap<NodeId, _> = nodes.iter().map(|n| (n.info.id, &n.info.rack)).collect();
    let mut rack_bytes: BTreeMap<_, u64> = BTreeMap::new();
    let mut fullest_node_bytes = 0u64;
    for n in nodes {
        let used: u64 = n.info.disks.iter().map(|d| d.used_bytes).sum();
        fullest_node_bytes = fullest_node_bytes.max(used);
        *rack_bytes.entry(&n.info.rack).or_default() += used;
    }
    let mut inputs = LiveInputs {
        racks: rack_bytes.len() as u32,
        fullest_node_bytes,
        fullest_rack_bytes: rack_bytes.values().copied().max().unwrap_or(0),
        sampled_all: true,
        ..LiveInputs::default()
    };
    // A leaderless group reports nothing now; the others still give an estimate.
    let reports = client
        .maintain_reports()
        .await
        .context("reading the maintenance reports")?;
    for group in client.object_groups().await.context("listing groups")? {
        let mut after = None;
        let mut seen = 0u64;
        loop {
            let page = client
                .list_stripes(group, after, 1000)
                .await
                .with_context(|| format!("listing the stripes of group {group}"))?;
            after = page.stripes.last().map(|s| s.id);
            for s in &page.stripes {
                let mut per_rack: BTreeMap<_, u32> = BTreeMap::new();
                for loc in &s.placement {
                    *per_rack.entry(rack_of.get(&loc.node)).or_default() += 1;
                }
                let class = StripeClass {
                    k: s.codec.data_fragments() as u32,
                    m: s.codec.parity_fragments() as u32,
                    per_rack: per_rack.values().copied().max().unwrap_or(0),
                };
                *inputs.classes.entry(class).or_default() += 1;
            }
            seen += page.stripes.len() as u64;
            if !page.is_truncated || after.is_none() {
                break;
            }
            if seen >= STRIPE_SAMPLE_PER_GROUP {
                inputs.sampled_all = false;
                break;
            }
        }
        inputs.sampled += seen;
    }
    let mut measured_all = !reports.is_empty();
    for r in reports.values() {
        inputs.detect_secs = inputs.detect_secs.max(r.settings.dead_after_secs);
        if !r.settings.repair {
            continue;
        }
        if r.repair.repaired_bytes > 0 && r.repair.rate_bytes_per_sec > 0 {
            inputs.repair_rate += r.repair.rate_bytes_per_sec as f64;
        } else {
            measured_all = false;
            inputs.repair_rate += r.settings.repair_bytes_per_sec as f64;
        }
    }
    inputs.rate_source = if measured_all {
        RateSource::Measured
    } else {
        RateSource::Budget
    };
    Ok(inputs)
}

fn node_row(n: &NodeRecord, now_ms: u64) -> Vec<String> {
    let healthy = n
        .info
        .disks
        .iter()
        .filter(|d| d.state == DiskState::Healthy)
        .count();
    let used: u64 = n.info.disks.iter().map(|d| d.used_bytes).sum();
    let capacity: u64 = n.info.disks.iter().map(|d| d.capacity_bytes).sum();
    let mut state = n.info.state.to_string();
    if !n.state_reason.is_empty() {
        let _ = write!(state, " ({})", n.state_reason);
    }
    vec![
        n.info.id.to_string(),
        n.info.rack.to_string(),
        n.info.addr.clone(),
        state,
        format!("{}/{} healthy", healthy, n.info.disks.len()),
        format!("{} / {}", bytes(used), bytes(capacity)),
        ago(now_ms, n.last_heartbeat_ms),
        ago(now_ms, n.state_changed_ms),
        failed_disks(n, now_ms),
    ]
}

/// "disk 1 (smart errors, 3m ago); …", or "-".
fn failed_disks(n: &NodeRecord, now_ms: u64) -> String {
    if n.failed_disks.is_empty() {
        return "-".to_owned();
    }
    n.failed_disks
        .iter()
        .map(|(d, f)| format!("disk {d} ({}, {})", f.reason, ago(now_ms, f.at_ms)))
        .collect::<Vec<_>>()
        .join("; ")
}

// ---- node and disk states ----

async fn node_cmd(client: &MetaClient, cmd: NodeCommand) -> anyhow::Result<String> {
    match cmd {
        NodeCommand::SetState {
            node,
            state,
            reason,
        } => {
            client
                .set_node_state(NodeId(node), state, &reason)
                .await
                .with_context(|| format!("setting node {node} {state}"))?;
            Ok(format!("node {node} is {state} ({reason})\n"))
        }
        NodeCommand::Remove { node } => {
            let id = NodeId(node);
            let (fragments, queued) = references_to(client, id).await?;
            if fragments > 0 || queued > 0 {
                bail!(
                    "node {node} is still referenced: {fragments} fragments of committed \
                     stripes and {queued} queued deletions name it. Drain it (`shale admin \
                     node set-state --node {node} --state draining --reason ...`) and wait \
                     until repair has moved every fragment and the GC has deleted the old \
                     copies (`shale admin repair status`), then remove it"
                );
            }
            client
                .remove_node(id)
                .await
                .with_context(|| format!("removing node {node}"))?;
            Ok(format!("node {node} removed from the cluster map\n"))
        }
    }
}

/// Fragments of committed stripes (every object group's stripe index) and fragments
/// queued for deletion (every GC queue) on `node`.
async fn references_to(client: &MetaClient, node: NodeId) -> anyhow::Result<(u64, u64)> {
    let (mut fragments, mut queued) = (0u64, 0u64);
    for group in client.object_groups().await.context("listing groups")? {
        let mut after = None;
        loop {
            let page = client
                .list_stripes(group, after, 1000)
                .await
                .with_context(|| format!("listing the stripes of group {group}"))?;
            after = page.stripes.last().map(|s| s.id);
            for s in &page.stripes {
                fragments += s.placement.iter().filter(|l| l.node == node).count() as u64;
            }
            if !page.is_truncated || after.is_none() {
                break;
            }
        }
        let mut after = None;
        loop {
            let page = client
                .gc_take(group, after, 1000)
                .await
                .with_context(|| format!("reading the GC queue of group {group}"))?;
            after = page.last().map(|e| e.id);
            for e in &page {
                queued += e
                    .fragments
                    .iter()
                    .filter(|f| f.location.node == node)
                    .count() as u64;
            }
            if page.len() < 1000 {
                break;
            }
        }
    }
    Ok((fragments, queued))
}

async fn disk_cmd(client: &MetaClient, cmd: DiskCommand) -> anyhow::Result<String> {
    let (node, disk, state, reason) = match cmd {
        DiskCommand::Fail { node, disk, reason } => (node, disk, DiskState::Failed, reason),
        DiskCommand::Restore { node, disk } => {
            (node, disk, DiskState::Healthy, "restored".to_owned())
        }
    };
    client
        .set_disk_state(NodeId(node), DiskId(disk), state, &reason)
        .await
        .with_context(|| format!("marking disk {disk} of node {node} {state}"))?;
    Ok(format!("disk {disk} of node {node} is {state}\n"))
}

fn group_row(s: &GroupStatus, range: String) -> Vec<String> {
    let ids = |m: &std::collections::BTreeMap<u64, String>| {
        if m.is_empty() {
            "-".to_owned()
        } else {
            m.keys().map(u64::to_string).collect::<Vec<_>>().join(",")
        }
    };
    let leader = match s.leader {
        Some(l) => match s.voters.get(&l) {
            Some(addr) => format!("{l} ({addr})"),
            None => l.to_string(),
        },
        None => "none".to_owned(),
    };
    let idx = |i: Option<u64>| i.map_or_else(|| "-".to_owned(), |i| i.to_string());
    vec![
        s.group.to_string(),
        range,
        leader,
        ids(&s.voters),
        ids(&s.learners),
        s.term.to_string(),
        idx(s.last_log_index),
        idx(s.committed_index),
        idx(s.applied_index),
        idx(s.snapshot_index),
    ]
}

/// `[start, end)` of an object group's encoded key range, printable bytes as they are.
fn range_text(g: &GroupRange) -> String {
    let show = |b: &[u8]| {
        let mut s = String::new();
        for &c in b {
            if c.is_ascii_graphic() && c != b'\\' {
                s.push(char::from(c));
            } else {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
        s
    };
    let start = if g.start.is_empty() {
        "(start)".to_owned()
    } else {
        show(&g.start)
    };
    let end = g.end.as_deref().map_or_else(|| "(end)".to_owned(), show);
    format!("[{start}, {end})")
}

pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn ago(now_ms: u64, then_ms: u64) -> String {
    if then_ms == 0 {
        return "never".to_owned();
    }
    let secs = now_ms.saturating_sub(then_ms) / 1000;
    match secs {
        0..=119 => format!("{secs}s ago"),
        120..=7199 => format!("{}m ago", secs / 60),
        _ => format!("{}h ago", secs / 3600),
    }
}

/// A table with a header, columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::from(" ");
        for (cell, w) in cells.zip(&widths) {
            let _ = write!(l, " {cell:<w$}");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

// ---- access keys ----

/// Access key ids: 20 characters from this alphabet (like AWS's), starting "SK".
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_string(env: &Env, prefix: &str, alphabet: &[u8], len: usize) -> String {
    env.with_rng(|rng| {
        let mut s = String::from(prefix);
        while s.len() < len {
            let i = rng.below(alphabet.len() as u64) as usize;
            s.push(char::from(alphabet[i]));
        }
        s
    })
}

async fn key(client: &MetaClient, cmd: KeyCommand) -> anyhow::Result<String> {
    let mut out = String::new();
    match cmd {
        KeyCommand::Create { id, secret, name } => {
            let env = Env::from_entropy();
            let id = id.unwrap_or_else(|| random_string(&env, "SK", ID_ALPHABET, 20));
            let secret = secret.unwrap_or_else(|| random_string(&env, "", SECRET_ALPHABET, 40));
            let user = name.unwrap_or_else(|| id.clone());
            let key = AccessKey {
                id: id.clone(),
                secret: secret.clone(),
                user: user.clone(),
                created_ms: env.clock().unix_ms(),
            };
            client
                .create_access_key(&key)
                .await
                .with_context(|| format!("creating access key {id}"))?;
            let _ = writeln!(out, "access_key_id = {id}");
            let _ = writeln!(out, "secret_access_key = {secret}");
            let _ = writeln!(out, "user = {user}");
        }
        KeyCommand::List => {
            let now_ms = Clock::new().unix_ms();
            let keys = client
                .list_access_keys()
                .await
                .context("listing access keys")?;
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| vec![k.id.clone(), k.user.clone(), ago(now_ms, k.created_ms)])
                .collect();
            out.push_str(&table(&["ACCESS KEY ID", "USER", "CREATED"], &rows));
        }
        KeyCommand::Delete { id } => {
            client
                .delete_access_key(&id)
                .await
                .with_context(|| format!("deleting access key {id}"))?;
            let _ = writeln!(out, "deleted access key {id}");
        }
    }
    Ok(out)
}

// ---- meta membership ----

async fn meta(client: &MetaClient, cmd: MetaCommand) -> anyhow::Result<String> {
    let statuses = match cmd {
        MetaCommand::AddVoter { node, addr, group } => match group {
            Some(g) => vec![client
                .add_voter(GroupId(g), node, &addr)
                .await
                .with_context(|| format!("adding node {node} to group {g}"))?],
            None => client
                .add_voter_all(node, &addr)
                .await
                .with_context(|| format!("adding node {node} to every group"))?,
        },
        MetaCommand::RemoveVoter { node, group } => match group {
            Some(g) => vec![client
                .remove_voter(GroupId(g), node)
                .await
                .with_context(|| format!("removing node {node} from group {g}"))?],
            None => client
                .remove_voter_all(node)
                .await
                .with_context(|| format!("removing node {node} from every group"))?,
        },
    };
    let mut out = String::new();
    for s in statuses {
        let voters: Vec<String> = s.voters.keys().map(u64::to_string).collect();
        let _ = writeln!(out, "group {}: voters {}", s.group, voters.join(","));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "admin_test.rs"]
mod admin_test;
