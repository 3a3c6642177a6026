//! The repair status report: progress bar, backlog by healthy fragments, rate and ETA.

use std::collections::BTreeMap;

use super::{report, Backlog};

#[test]
fn the_report_shows_progress_backlog_rate_and_eta() {
    let b = Backlog {
        stripes: 200,
        full: 150,
        by_healthy: BTreeMap::from([(10, 40), (11, 10)]),
        waiting: 0,
        unreadable: 0,
        unrecoverable: 0,
        bytes: 100 << 20,
        damaged: 2,
        loops: None,
    };
    let r = report(&b, Some(f64::from(1u32 << 20)));
    assert!(r.contains("75.0% of 200 stripes at k+m"), "{r}");
    assert!(r.contains("[######################--------]"), "{r}");
    assert!(
        r.contains("50 stripes need repair, 100.0 MiB to rebuild"),
        "{r}"
    );
    assert!(r.contains(" 10 healthy fragments: 40 stripes"), "{r}");
    assert!(r.contains("RATE        1.0 MiB/s, ETA 100s"), "{r}");
    assert!(r.contains("UNRECOVERABLE 0 stripes\n"), "{r}");
    let lost = Backlog {
        unrecoverable: 3,
        ..Backlog::default()
    };
    let r = report(&lost, None);
    assert!(r.contains("100.0% of 0 stripes"), "{r}");
    assert!(r.contains("DATA LOST"), "{r}");
    assert!(r.contains("--sample-secs"), "{r}");
}

#[test]
fn the_report_names_blocked_stripes_and_the_loops_own_rate() {
    let b = Backlog {
        stripes: 10,
        full: 6,
        by_healthy: BTreeMap::from([(11, 4)]),
        bytes: 8 << 20,
        loops: Some(super::LoopTotals {
            nodes: 3,
            blocked: 4,
            rate_bytes_per_sec: 2 << 20,
            budget_bytes_per_sec: 300 << 20,
            repaired_bytes: 5 << 30,
            repaired_fragments: 900,
            missing_found: 1,
            failures: 0,
        }),
        ..Backlog::default()
    };
    let r = report(&b, None);
    assert!(
        r.contains("BLOCKED     4 stripes cannot be repaired"),
        "{r}"
    );
    assert!(r.contains("Add nodes or racks"), "{r}");
    assert!(
        r.contains("repair on 3 meta nodes: 5.0 GiB rebuilt (900 fragments)"),
        "{r}"
    );
    assert!(r.contains("budget 300.0 MiB/s"), "{r}");
    assert!(
        r.contains("RATE        2.0 MiB/s as the repair loops report it, ETA 4s"),
        "{r}"
    );
    // No loops at all: said so, and no BLOCKED line.
    let none = report(&Backlog::default(), None);
    assert!(
        none.contains("no meta node reports a repair loop"),
        "{none}"
    );
    assert!(!none.contains("BLOCKED"), "{none}");
}
