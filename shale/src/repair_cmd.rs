//! `shale admin repair status`: the cluster's repair backlog, as the repair loops see
//! it. Walks every object group's stripes (`ListStripes`), asks the data nodes for their
//! scrub findings (`ListDamaged`) and classifies every fragment with the repair loop's
//! own rules (`maintain::repair_plan`): stripes at full redundancy, stripes needing a
//! rebuild by healthy fragments, waiting for Down nodes, unrecoverable, bytes to rebuild.
//! With `--sample-secs N` it walks twice, `N` seconds apart, and reports the measured
//! repair rate and an ETA.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use clap::Args;
use common::cluster::ClusterMap;
use common::env::Env;
use common::ids::FragmentId;
use maintain::repair_damaged::list_damaged;
use maintain::repair_plan::{assess, classify_fragment, fragment_bytes, mark_misplaced, Verdict};
use meta_raft::client::MetaClient;

#[derive(Args, Debug)]
pub struct RepairStatusArgs {
    /// Walk again after this many seconds and report the repair rate and an ETA
    /// (0: one walk, no rate).
    #[arg(long, default_value_t = 0)]
    pub sample_secs: u64,
}

/// One walk's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    pub stripes: u64,
    pub full: u64,
    /// Stripes needing a rebuild, by healthy fragments.
    pub by_healthy: BTreeMap<usize, u64>,
    pub waiting: u64,
    pub unreadable: u64,
    pub unrecoverable: u64,
    /// Fragment bytes to rebuild.
    pub bytes: u64,
    /// Damaged fragments the data nodes list.
    pub damaged: u64,
    /// What the repair loops themselves report (`MaintainStatus` of the object groups'
    /// leaders); `None` when no leader runs them.
    pub loops: Option<LoopTotals>,
}

/// The repair loops' own counters, summed over the distinct meta nodes leading object
/// groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoopTotals {
    pub nodes: u64,
    /// Stripes whose rebuild the rack rule blocks (their last walks).
    pub blocked: u64,
    /// Rebuilt bytes per second now (sum of the loops' current or last pass).
    pub rate_bytes_per_sec: u64,
    /// Configured budgets, summed.
    pub budget_bytes_per_sec: u64,
    pub repaired_bytes: u64,
    pub repaired_fragments: u64,
    pub missing_found: u64,
    pub failures: u64,
}

impl Backlog {
    pub fn needing_repair(&self) -> u64 {
        self.by_healthy.values().sum()
    }
}

pub async fn run(env: &Env, client: &MetaClient, args: RepairStatusArgs) -> anyhow::Result<String> {
    let first = walk(client).await?;
    if args.sample_secs == 0 {
        return Ok(report(&first, None));
    }
    let every = Duration::from_secs(args.sample_secs);
    env.clock().sleep(every).await;
    let second = walk(client).await?;
    let rate = first.bytes.saturating_sub(second.bytes) as f64 / every.as_secs_f64();
    Ok(report(&second, Some(rate)))
}

async fn walk(client: &MetaClient) -> anyhow::Result<Backlog> {
    let mut map = ClusterMap::new();
    for r in client.nodes().await? {
        map.insert_node(r.info);
    }
    let (damaged, _) = list_damaged(&map, Duration::from_secs(5), 16).await;
    let mut b = Backlog {
        damaged: damaged.len() as u64,
        ..Backlog::default()
    };
    for group in client.object_groups().await? {
        let mut after = None;
        loop {
            let page = client.list_stripes(group, after, 1000).await?;
            after = page.stripes.last().map(|s| s.id);
            for s in &page.stripes {
                b.stripes += 1;
                let mut health: Vec<_> = (0u8..)
                    .zip(&s.placement)
                    .map(|(index, loc)| {
                        let id = FragmentId {
                            stripe: s.id,
                            index,
                        };
                        classify_fragment(&map, *loc, damaged.contains(&(*loc, id)))
                    })
                    .collect();
                mark_misplaced(&map, s.codec, &s.placement, &mut health);
                match assess(s.codec.data_fragments(), &health) {
                    Verdict::Healthy => b.full += 1,
                    Verdict::Wait { .. } => b.waiting += 1,
                    Verdict::Unreadable { .. } => b.unreadable += 1,
                    Verdict::Unrecoverable { .. } => b.unrecoverable += 1,
                    Verdict::Repair { healthy, rebuild } => {
                        *b.by_healthy.entry(healthy).or_default() += 1;
                        b.bytes += fragment_bytes(s.codec, s.data_len) * rebuild.len() as u64;
                    }
                }
            }
            if !page.is_truncated || after.is_none() {
                break;
            }
        }
    }
    // A leaderless group reports nothing now; the backlog above stands on its own.
    let reports = client.maintain_reports().await?;
    if !reports.is_empty() {
        let mut t = LoopTotals::default();
        for r in reports.values().filter(|r| r.settings.repair) {
            t.nodes += 1;
            t.blocked += r.repair.blocked_by_placement;
            t.rate_bytes_per_sec += r.repair.rate_bytes_per_sec;
            t.budget_bytes_per_sec += r.settings.repair_bytes_per_sec;
            t.repaired_bytes += r.repair.repaired_bytes;
            t.repaired_fragments += r.repair.repaired_fragments;
            t.missing_found += r.repair.missing_found;
            t.failures += r.repair.failures;
        }
        b.loops = Some(t);
    }
    Ok(b)
}

/// The text report; `rate` in bytes per second when measured.
pub fn report(b: &Backlog, rate: Option<f64>) -> String {
    let mut out = String::new();
    let frac = if b.stripes == 0 {
        1.0
    } else {
        b.full as f64 / b.stripes as f64
    };
    const WIDTH: usize = 30;
    let filled = ((frac * WIDTH as f64).floor() as usize).min(WIDTH);
    let _ = writeln!(
        out,
        "REDUNDANCY  [{}{}] {:.1}% of {} stripes at k+m",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        frac * 100.0,
        b.stripes
    );
    let _ = writeln!(
        out,
        "BACKLOG     {} stripes need repair, {} to rebuild",
        b.needing_repair(),
        crate::admin::bytes(b.bytes)
    );
    for (healthy, n) in &b.by_healthy {
        let _ = writeln!(out, "  {healthy:>3} healthy fragments: {n} stripes");
    }
    let _ = writeln!(
        out,
        "WAITING     {} stripes (fragments on Down nodes)",
        b.waiting
    );
    if b.unreadable > 0 {
        let _ = writeln!(
            out,
            "UNREADABLE  {} stripes (fewer than k readable until Down nodes return)",
            b.unreadable
        );
    }
    let _ = writeln!(out, "DAMAGED     {} fragments listed by scrub", b.damaged);
    match &b.loops {
        None => {
            let _ = writeln!(
                out,
                "LOOPS       no meta node reports a repair loop (maintain.repair = false?)"
            );
        }
        Some(t) => {
            if t.blocked > 0 {
                let _ = writeln!(
                    out,
                    "BLOCKED     {} stripes cannot be repaired: the rack rule (at most m fragments \
                     per rack, one per node) cannot be met with the nodes and racks left. Add \
                     nodes or racks; repair never weakens the rule.",
                    t.blocked
                );
            }
            let _ = writeln!(
                out,
                "LOOPS       repair on {} meta nodes: {} rebuilt ({} fragments) since start, \
                 {} missing fragments found, {} failures; budget {}/s",
                t.nodes,
                crate::admin::bytes(t.repaired_bytes),
                t.repaired_fragments,
                t.missing_found,
                t.failures,
                crate::admin::bytes(t.budget_bytes_per_sec)
            );
        }
    }
    let _ = writeln!(
        out,
        "UNRECOVERABLE {} stripes{}",
        b.unrecoverable,
        if b.unrecoverable > 0 {
            " — fewer than k fragments survive: DATA LOST"
        } else {
            ""
        }
    );
    let reported = b.loops.as_ref().map_or(0, |t| t.rate_bytes_per_sec);
    match rate {
        None if reported > 0 && b.bytes > 0 => {
            let eta = b.bytes.div_ceil(reported);
            let _ = writeln!(
                out,
                "RATE        {}/s as the repair loops report it, ETA {} (measure the backlog \
                 itself with --sample-secs N)",
                crate::admin::bytes(reported),
                human_secs(eta)
            );
        }
        None => {
            let _ = writeln!(out, "RATE        (measure with --sample-secs N)");
        }
        Some(r) if r > 0.0 => {
            let eta = (b.bytes as f64 / r).ceil() as u64;
            let _ = writeln!(
                out,
                "RATE        {}/s, ETA {}",
                crate::admin::bytes(r as u64),
                human_secs(eta)
            );
        }
        Some(_) => {
            let _ = writeln!(
                out,
                "RATE        0 B/s{}",
                if b.bytes > 0 {
                    " (no progress during the sample)"
                } else {
                    ""
                }
            );
        }
    }
    out
}

fn human_secs(s: u64) -> String {
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
#[path = "repair_cmd_test.rs"]
mod repair_cmd_test;
