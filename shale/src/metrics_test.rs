use super::*;

use common::ids::GroupId;
use meta_raft::maintain_report::{MaintainReport, RepairReport};
#[cfg(not(madsim))]
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn group(id: u64, leader: bool) -> GroupStatus {
    GroupStatus {
        group: GroupId(id),
        node_id: 2,
        state: if leader { "LEADER" } else { "FOLLOWER" }.to_owned(),
        leader: Some(if leader { 2 } else { 1 }),
        term: 5,
        voters: Default::default(),
        learners: Default::default(),
        last_log_index: Some(40 + id),
        committed_index: Some(40),
        applied_index: Some(39),
        snapshot_index: None,
        purged_index: None,
        replication: Default::default(),
    }
}

fn report() -> MaintainReport {
    MaintainReport {
        node_id: 2,
        node_transitions: 3,
        repair: RepairReport {
            backlog: [(9, 4), (11, 7)].into_iter().collect(),
            repaired_bytes: 123_456,
            ..RepairReport::default()
        },
        ..MaintainReport::default()
    }
}

/// Every line is a comment or `name{labels} value` with an integer value, and every
/// sampled metric was declared with HELP and TYPE first.
fn assert_well_formed(text: &str) {
    let mut declared = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            declared.insert(parts.next().unwrap().to_owned());
            assert!(matches!(parts.next(), Some("counter" | "gauge")), "{line}");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (name, rest) = line.split_once('{').unwrap_or_else(|| panic!("{line}"));
        assert!(declared.contains(name), "{name} sampled before its TYPE");
        let (labels, value) = rest.split_once("} ").unwrap_or_else(|| panic!("{line}"));
        assert!(labels.starts_with("node=\""), "{line}");
        value.parse::<u64>().unwrap_or_else(|_| panic!("{line}"));
    }
}

#[test]
fn render_exports_the_maintenance_counters_and_raft_progress() {
    let text = render(2, Some(&report()), &[group(0, false), group(1, true)]);
    assert_well_formed(&text);
    for want in [
        "shale_maintain_loops_running{node=\"2\"} 1",
        "shale_detector_transitions_total{node=\"2\"} 3",
        "shale_repair_bytes_total{node=\"2\"} 123456",
        "shale_repair_backlog_stripes{node=\"2\",healthy=\"9\"} 4",
        "shale_repair_backlog_stripes{node=\"2\",healthy=\"11\"} 7",
        "shale_gc_fragments_deleted_total{node=\"2\"} 0",
        "shale_orphan_unreferenced_fragments{node=\"2\"} 0",
        "shale_raft_leader{node=\"2\",group=\"0\"} 0",
        "shale_raft_leader{node=\"2\",group=\"1\"} 1",
        "shale_raft_last_log_index{node=\"2\",group=\"1\"} 41",
        "shale_raft_applied_index{node=\"2\",group=\"0\"} 39",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // No snapshot yet: no sample rather than a made-up 0.
    assert!(!text.contains("shale_raft_snapshot_index{"), "{text}");
}

#[test]
fn render_without_loops_says_so_and_still_has_raft_progress() {
    let text = render(7, None, &[group(3, true)]);
    assert_well_formed(&text);
    assert!(text.contains("shale_maintain_loops_running{node=\"7\"} 0"));
    assert!(!text.contains("shale_repair_"), "{text}");
    assert!(text.contains("shale_raft_term{node=\"7\",group=\"3\"} 5"));
}

// The endpoint serves real processes (`shale meta`); madsim's simulated sockets do not
// deliver the end of stream a `Connection: close` scrape waits for, so these two run in
// the normal build only (tests/it/repair.rs scrapes real meta processes too).
#[cfg(not(madsim))]
async fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[cfg(not(madsim))]
#[tokio::test]
async fn serve_answers_scrapes_on_metrics_and_404_elsewhere() {
    let addr = serve("127.0.0.1:0", || render(1, None, &[])).await.unwrap();
    let ok = get(addr, "/metrics").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("text/plain; version=0.0.4"), "{ok}");
    assert!(
        ok.contains("shale_maintain_loops_running{node=\"1\"} 0"),
        "{ok}"
    );
    let missing = get(addr, "/").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}

#[tokio::test]
async fn serve_rejects_a_bad_address_naming_the_flag() {
    let err = serve("not-an-addr", String::new).await.unwrap_err();
    assert!(format!("{err:#}").contains("--metrics-listen"), "{err:#}");
}
