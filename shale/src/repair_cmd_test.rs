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
