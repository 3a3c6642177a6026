//! `shale meta --metrics-listen ADDR`: a Prometheus endpoint (`GET /metrics`, text
//! exposition format 0.0.4) with the meta node's maintenance counters (failure detector,
//! repair, GC, orphan sweep: the node's [`MaintainReport`]) and, for every Raft group it
//! hosts, its role, term and log indexes as this node sees them.
//!
//! Counters are totals since the process started (Prometheus `counter`); backlog figures
//! and rates are `gauge`s. A node that leads no object group still exports its counters
//! (they stay at what it did while it led one).

use std::fmt::Write as _;
use std::net::SocketAddr;

use anyhow::Context;
use meta_raft::group_status::GroupStatus;
use meta_raft::maintain_report::MaintainReport;

/// The exposition text for one scrape.
pub fn render(node_id: u64, report: Option<&MaintainReport>, groups: &[GroupStatus]) -> String {
    let mut out = String::new();
    let node = format!("node=\"{node_id}\"");
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    };
    let one = |v: u64| vec![(node.clone(), v)];
    metric(
        "shale_maintain_loops_running",
        "gauge",
        "1 when this process runs the maintenance loops (detector, GC, repair, orphan sweep).",
        &one(u64::from(report.is_some())),
    );
    if let Some(r) = report {
        let p = &r.repair;
        let c = "counter";
        let g = "gauge";
        metric(
            "shale_detector_transitions_total",
            c,
            "Data node state changes the failure detector committed.",
            &one(r.node_transitions),
        );
        metric(
            "shale_repair_passes_total",
            c,
            "Repair walks finished.",
            &one(p.passes),
        );
        metric(
            "shale_repair_stripes_scanned",
            g,
            "Stripes seen by the last repair walks.",
            &one(p.stripes_scanned),
        );
        let backlog: Vec<(String, u64)> = p
            .backlog
            .iter()
            .map(|(healthy, n)| (format!("{node},healthy=\"{healthy}\""), *n))
            .collect();
        metric(
            "shale_repair_backlog_stripes",
            g,
            "Stripes needing a rebuild, by healthy fragments (last walks).",
            &backlog,
        );
        metric(
            "shale_repair_waiting_stripes",
            g,
            "Stripes waiting for Down nodes to return or be declared dead.",
            &one(p.waiting),
        );
        metric(
            "shale_repair_unreadable_stripes",
            g,
            "Stripes with fewer than k readable fragments that may come back.",
            &one(p.unreadable),
        );
        metric(
            "shale_repair_unrecoverable_stripes",
            g,
            "Stripes with fewer than k surviving fragments: data loss.",
            &one(p.unrecoverable),
        );
        metric(
            "shale_repair_blocked_stripes",
            g,
            "Stripes whose rebuild the rack rule blocks (not enough racks or space).",
            &one(p.blocked_by_placement),
        );
        metric(
            "shale_repair_stripes_total",
            c,
            "Stripes rebuilt.",
            &one(p.repaired_stripes),
        );
        metric(
            "shale_repair_fragments_total",
            c,
            "Fragments rebuilt.",
            &one(p.repaired_fragments),
        );
        metric(
            "shale_repair_bytes_total",
            c,
            "Bytes of rebuilt fragments written.",
            &one(p.repaired_bytes),
        );
        metric(
            "shale_repair_failures_total",
            c,
            "Rebuilds or commits that failed (retried later).",
            &one(p.failures),
        );
        metric(
            "shale_repair_cas_lost_total",
            c,
            "Placement commits that lost their compare-and-set to a concurrent change.",
            &one(p.cas_lost),
        );
        metric(
            "shale_repair_rate_bytes_per_second",
            g,
            "Rebuilt bytes per second over the current or last pass.",
            &one(p.rate_bytes_per_sec),
        );
        metric(
            "shale_repair_budget_bytes_per_second",
            g,
            "Configured repair budget (maintain.repair_bytes_per_sec).",
            &one(r.settings.repair_bytes_per_sec),
        );
        metric(
            "shale_repair_inventories_total",
            c,
            "Data node inventories taken to find fragments missing on Up nodes.",
            &one(p.inventories),
        );
        metric(
            "shale_repair_missing_found_total",
            c,
            "Fragments found missing on Up nodes (confirmed by a stat).",
            &one(p.missing_found),
        );
        metric(
            "shale_scrub_damaged_reported",
            g,
            "Damaged fragments the scrubbers reported (last walk).",
            &one(p.damaged_reported),
        );
        let gc = &r.gc;
        metric(
            "shale_gc_passes_total",
            c,
            "GC passes that found entries.",
            &one(gc.passes),
        );
        metric(
            "shale_gc_entries_acked_total",
            c,
            "GC queue entries completed.",
            &one(gc.entries_acked),
        );
        metric(
            "shale_gc_fragments_deleted_total",
            c,
            "Fragments the GC deleted.",
            &one(gc.fragments_deleted),
        );
        metric(
            "shale_gc_fragments_absent_total",
            c,
            "GC deletes that found the fragment already gone.",
            &one(gc.fragments_absent),
        );
        metric(
            "shale_gc_fragments_abandoned_total",
            c,
            "GC entries on dead nodes or failed disks, counted done without a delete.",
            &one(gc.fragments_abandoned),
        );
        metric(
            "shale_gc_bytes_deleted_total",
            c,
            "Bytes the GC deleted.",
            &one(gc.bytes_deleted),
        );
        metric(
            "shale_gc_failures_total",
            c,
            "Failed GC data node calls (the entry stays queued).",
            &one(gc.failures),
        );
        let o = &r.orphans;
        metric(
            "shale_orphan_sweeps_total",
            c,
            "Orphan sweeps finished.",
            &one(o.sweeps),
        );
        metric(
            "shale_orphan_sweeps_aborted_total",
            c,
            "Orphan sweeps abandoned because a group could not be read.",
            &one(o.aborted),
        );
        metric(
            "shale_orphan_fragments_listed",
            g,
            "Fragments the last sweep listed on the data nodes.",
            &one(o.fragments_listed),
        );
        metric(
            "shale_orphan_disks_unlisted",
            g,
            "Disks the last sweep could not list.",
            &one(o.disks_unlisted),
        );
        metric(
            "shale_orphan_unreferenced_fragments",
            g,
            "Unreferenced fragments the last sweep saw (inside their grace period or due).",
            &one(o.unreferenced),
        );
        metric(
            "shale_orphan_fragments_deleted_total",
            c,
            "Orphan fragments deleted.",
            &one(o.deleted),
        );
        metric(
            "shale_orphan_delete_failures_total",
            c,
            "Orphan deletes that failed (retried on a later sweep).",
            &one(o.delete_failures),
        );
    }
    let per_group = |f: &dyn Fn(&GroupStatus) -> Option<u64>| -> Vec<(String, u64)> {
        groups
            .iter()
            .filter_map(|s| f(s).map(|v| (format!("{node},group=\"{}\"", s.group.0), v)))
            .collect()
    };
    metric(
        "shale_raft_leader",
        "gauge",
        "1 when this node leads the group.",
        &per_group(&|s| Some(u64::from(s.is_leader()))),
    );
    metric(
        "shale_raft_term",
        "gauge",
        "The group's current term on this node.",
        &per_group(&|s| Some(s.term)),
    );
    metric(
        "shale_raft_last_log_index",
        "gauge",
        "Last log index on this node.",
        &per_group(&|s| s.last_log_index),
    );
    metric(
        "shale_raft_applied_index",
        "gauge",
        "Last log index applied to this node's state machine.",
        &per_group(&|s| s.applied_index),
    );
    metric(
        "shale_raft_snapshot_index",
        "gauge",
        "Log index of this node's last snapshot.",
        &per_group(&|s| s.snapshot_index),
    );
    out
}

/// Serves `GET /metrics` on `addr` until the process ends, answering each scrape with
/// `scrape()`. Binds before returning, so a bad address fails at start-up.
pub async fn serve<F>(addr: &str, scrape: F) -> anyhow::Result<SocketAddr>
where
    F: Fn() -> String + Send + Sync + 'static,
{
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use std::sync::Arc;

    let sock: SocketAddr = addr
        .parse()
        .with_context(|| format!("--metrics-listen: {addr:?} is not an address (host:port)"))?;
    let listener = tokio::net::TcpListener::bind(sock)
        .await
        .with_context(|| format!("--metrics-listen: binding {sock}"))?;
    let bound = listener.local_addr()?;
    let scrape = Arc::new(scrape);
    common::env::spawn("metrics-accept", async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let scrape = Arc::clone(&scrape);
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let scrape = Arc::clone(&scrape);
                async move {
                    let resp =
                        if req.method() == hyper::Method::GET && req.uri().path() == "/metrics" {
                            hyper::Response::builder()
                                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                                .body(Full::new(bytes::Bytes::from(scrape())))
                        } else {
                            hyper::Response::builder().status(404).body(Full::new(
                                bytes::Bytes::from_static(b"not found; try /metrics\n"),
                            ))
                        };
                    resp
                }
            });
            common::env::spawn("metrics-conn", async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
#[path = "metrics_test.rs"]
mod tests;
