//! `MaintainReport`: what the maintenance loops of one meta process (crate `maintain`:
//! failure detector, GC, repair, orphan sweep) have done and how they are configured,
//! served by the `MaintainStatus` rpc and read by `shale admin status` (the live
//! durability estimate needs the detection delay and the repair rate) and
//! `shale admin repair status`.
//!
//! meta-raft cannot depend on `maintain` (it depends on meta-raft), so the process that
//! runs both registers a reporter closure in the node's [`MaintainReportSlot`]; a node
//! without one (maintenance switched off, or a test host) answers that it has none.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use proto::meta as pb;

use crate::maintain_config::MaintainConfig;

/// The loops' counters and settings on one meta node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MaintainReport {
    /// The meta node that reported.
    pub node_id: u64,
    /// The node's `[maintain]` settings that readers of the report need.
    pub settings: MaintainSettings,
    /// Node state changes the failure detector committed since the process started.
    pub node_transitions: u64,
    pub repair: RepairReport,
    pub gc: GcReport,
    pub orphans: OrphanReport,
}

/// The `[maintain]` settings a report carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaintainSettings {
    pub detector: bool,
    pub down_after_secs: u64,
    pub dead_after_secs: u64,
    pub gc: bool,
    pub gc_delay_secs: u64,
    pub repair: bool,
    pub repair_bytes_per_sec: u64,
    pub repair_concurrency: u32,
}

impl From<&MaintainConfig> for MaintainSettings {
    fn from(c: &MaintainConfig) -> Self {
        MaintainSettings {
            detector: c.detector,
            down_after_secs: c.down_after_secs,
            dead_after_secs: c.dead_after_secs,
            gc: c.gc,
            gc_delay_secs: c.gc_delay_secs,
            repair: c.repair,
            repair_bytes_per_sec: c.repair_bytes_per_sec,
            repair_concurrency: c.repair_concurrency,
        }
    }
}

/// Repair loop counters (totals since start; "last" = the last walks of its groups).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    pub passes: u64,
    pub stripes_scanned: u64,
    /// Stripes needing a rebuild, by healthy fragments (last walks).
    pub backlog: BTreeMap<u64, u64>,
    pub waiting: u64,
    pub unreadable: u64,
    pub unrecoverable: u64,
    pub blocked_by_placement: u64,
    pub repaired_stripes: u64,
    pub repaired_fragments: u64,
    pub repaired_bytes: u64,
    pub failures: u64,
    pub cas_lost: u64,
    pub damaged_reported: u64,
    /// Rebuilt bytes per second over the current or last pass (0: none measured).
    pub rate_bytes_per_sec: u64,
    /// Data node inventories taken, and fragments they showed missing on Up nodes.
    pub inventories: u64,
    pub missing_found: u64,
}

/// GC worker counters (totals since start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub passes: u64,
    pub entries_acked: u64,
    pub fragments_deleted: u64,
    pub fragments_absent: u64,
    pub fragments_abandoned: u64,
    pub bytes_deleted: u64,
    pub failures: u64,
}

/// Orphan sweep counters (`maintain::orphans::OrphanStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrphanReport {
    /// Sweeps that finished, and sweeps abandoned (a group could not be read).
    pub sweeps: u64,
    pub aborted: u64,
    /// Fragments listed, and disks that could not be listed, by the last sweep.
    pub fragments_listed: u64,
    pub disks_unlisted: u64,
    /// Unreferenced fragments the last sweep saw (within their grace or due).
    pub unreferenced: u64,
    /// Orphan fragments deleted, and deletes that failed (totals).
    pub deleted: u64,
    pub delete_failures: u64,
}

type Reporter = Arc<dyn Fn() -> MaintainReport + Send + Sync>;

/// Where the maintenance loops of a process publish their report (cheap to clone; all
/// clones share the reporter).
#[derive(Clone, Default)]
pub struct MaintainReportSlot {
    reporter: Arc<Mutex<Option<Reporter>>>,
}

impl std::fmt::Debug for MaintainReportSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaintainReportSlot")
            .field("registered", &self.lock().is_some())
            .finish()
    }
}

impl MaintainReportSlot {
    /// Registers (or replaces) the reporter.
    pub fn set(&self, reporter: impl Fn() -> MaintainReport + Send + Sync + 'static) {
        *self.lock() = Some(Arc::new(reporter));
    }

    /// Removes the reporter (the loops stopped).
    pub fn clear(&self) {
        *self.lock() = None;
    }

    /// The current report, if loops are registered.
    pub fn report(&self) -> Option<MaintainReport> {
        // Clone the reporter out so it runs without the lock held.
        let reporter = self.lock().clone();
        reporter.map(|r| r())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Reporter>> {
        self.reporter.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// ---- wire form ----

impl From<&MaintainReport> for pb::MaintainReport {
    fn from(r: &MaintainReport) -> Self {
        let s = &r.settings;
        let p = &r.repair;
        let g = &r.gc;
        let o = &r.orphans;
        pb::MaintainReport {
            node_id: r.node_id,
            settings: Some(pb::MaintainSettings {
                detector: s.detector,
                down_after_secs: s.down_after_secs,
                dead_after_secs: s.dead_after_secs,
                gc: s.gc,
                gc_delay_secs: s.gc_delay_secs,
                repair: s.repair,
                repair_bytes_per_sec: s.repair_bytes_per_sec,
                repair_concurrency: s.repair_concurrency,
            }),
            node_transitions: r.node_transitions,
            repair: Some(pb::RepairReport {
                passes: p.passes,
                stripes_scanned: p.stripes_scanned,
                backlog: p.backlog.iter().map(|(k, v)| (*k, *v)).collect(),
                waiting: p.waiting,
                unreadable: p.unreadable,
                unrecoverable: p.unrecoverable,
                blocked_by_placement: p.blocked_by_placement,
                repaired_stripes: p.repaired_stripes,
                repaired_fragments: p.repaired_fragments,
                repaired_bytes: p.repaired_bytes,
                failures: p.failures,
                cas_lost: p.cas_lost,
                damaged_reported: p.damaged_reported,
                rate_bytes_per_sec: p.rate_bytes_per_sec,
                inventories: p.inventories,
                missing_found: p.missing_found,
            }),
            gc: Some(pb::GcReport {
                passes: g.passes,
                entries_acked: g.entries_acked,
                fragments_deleted: g.fragments_deleted,
                fragments_absent: g.fragments_absent,
                fragments_abandoned: g.fragments_abandoned,
                bytes_deleted: g.bytes_deleted,
                failures: g.failures,
            }),
            orphans: Some(pb::OrphanReport {
                sweeps: o.sweeps,
                aborted: o.aborted,
                fragments_listed: o.fragments_listed,
                disks_unlisted: o.disks_unlisted,
                unreferenced: o.unreferenced,
                deleted: o.deleted,
                delete_failures: o.delete_failures,
            }),
        }
    }
}

/// The wire form back. Absent sub-messages read as zeros (an older node that does not
/// fill them in reports nothing for them).
impl From<&pb::MaintainReport> for MaintainReport {
    fn from(r: &pb::MaintainReport) -> Self {
        let s = r.settings.unwrap_or_default();
        let p = r.repair.clone().unwrap_or_default();
        let g = r.gc.unwrap_or_default();
        let o = r.orphans.unwrap_or_default();
        MaintainReport {
            node_id: r.node_id,
            settings: MaintainSettings {
                detector: s.detector,
                down_after_secs: s.down_after_secs,
                dead_after_secs: s.dead_after_secs,
                gc: s.gc,
                gc_delay_secs: s.gc_delay_secs,
                repair: s.repair,
                repair_bytes_per_sec: s.repair_bytes_per_sec,
                repair_concurrency: s.repair_concurrency,
            },
            node_transitions: r.node_transitions,
            repair: RepairReport {
                passes: p.passes,
                stripes_scanned: p.stripes_scanned,
                backlog: p.backlog.into_iter().collect(),
                waiting: p.waiting,
                unreadable: p.unreadable,
                unrecoverable: p.unrecoverable,
                blocked_by_placement: p.blocked_by_placement,
                repaired_stripes: p.repaired_stripes,
                repaired_fragments: p.repaired_fragments,
                repaired_bytes: p.repaired_bytes,
                failures: p.failures,
                cas_lost: p.cas_lost,
                damaged_reported: p.damaged_reported,
                rate_bytes_per_sec: p.rate_bytes_per_sec,
                inventories: p.inventories,
                missing_found: p.missing_found,
            },
            gc: GcReport {
                passes: g.passes,
                entries_acked: g.entries_acked,
                fragments_deleted: g.fragments_deleted,
                fragments_absent: g.fragments_absent,
                fragments_abandoned: g.fragments_abandoned,
                bytes_deleted: g.bytes_deleted,
                failures: g.failures,
            },
            orphans: OrphanReport {
                sweeps: o.sweeps,
                aborted: o.aborted,
                fragments_listed: o.fragments_listed,
                disks_unlisted: o.disks_unlisted,
                unreferenced: o.unreferenced,
                deleted: o.deleted,
                delete_failures: o.delete_failures,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_slot_reports_nothing_until_set_and_after_clear() {
        let slot = MaintainReportSlot::default();
        assert_eq!(slot.report(), None);
        let shared = slot.clone();
        shared.set(|| MaintainReport {
            node_id: 7,
            ..MaintainReport::default()
        });
        assert_eq!(slot.report().map(|r| r.node_id), Some(7));
        slot.clear();
        assert_eq!(shared.report(), None);
    }

    #[test]
    fn report_survives_the_wire() {
        let r = MaintainReport {
            node_id: 3,
            settings: MaintainSettings::from(&MaintainConfig::default()),
            node_transitions: 2,
            repair: RepairReport {
                passes: 4,
                backlog: [(9, 2), (11, 5)].into_iter().collect(),
                repaired_bytes: 1 << 30,
                rate_bytes_per_sec: 50 << 20,
                missing_found: 3,
                ..RepairReport::default()
            },
            gc: GcReport {
                fragments_deleted: 12,
                ..GcReport::default()
            },
            orphans: OrphanReport {
                unreferenced: 1,
                deleted: 2,
                ..OrphanReport::default()
            },
        };
        let wire = pb::MaintainReport::from(&r);
        assert_eq!(MaintainReport::from(&wire), r);
        assert_eq!(
            MaintainReport::from(&pb::MaintainReport::default()),
            MaintainReport::default()
        );
    }
}
