//! The loops' counters as a `meta_raft::maintain_report::MaintainReport`: what the
//! `MaintainStatus` rpc, `shale admin status` (live durability estimate) and the
//! Prometheus endpoint read. [`crate::Maintainer::publish_to`] registers it in the meta
//! node's report slot.

use meta_raft::maintain_report::{
    GcReport, MaintainReport, MaintainSettings, OrphanReport, RepairReport,
};

use crate::host::MaintainStats;

/// `stats` of meta node `node_id` running with `settings`, as a report.
pub fn report(node_id: u64, settings: MaintainSettings, stats: &MaintainStats) -> MaintainReport {
    let r = &stats.repair;
    let g = &stats.gc;
    let o = &stats.orphans;
    MaintainReport {
        node_id,
        settings,
        node_transitions: stats.node_transitions,
        repair: RepairReport {
            passes: r.passes,
            stripes_scanned: r.stripes_scanned,
            backlog: r.backlog.iter().map(|(h, n)| (*h as u64, *n)).collect(),
            waiting: r.waiting,
            unreadable: r.unreadable,
            unrecoverable: r.unrecoverable,
            blocked_by_placement: r.blocked_by_placement,
            repaired_stripes: r.repaired_stripes,
            repaired_fragments: r.repaired_fragments,
            repaired_bytes: r.repaired_bytes,
            failures: r.failures,
            cas_lost: r.cas_lost,
            damaged_reported: r.damaged_reported,
            rate_bytes_per_sec: r.rate_bytes_per_sec,
            inventories: r.inventories,
            missing_found: r.missing_found,
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
