//! `DataStats`: counters of the data path, for operators and tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the data path's counters since the `DataPlane` was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataStats {
    /// Stripes a PUT wrote and returned (fully or under-replicated).
    pub stripes_written: u64,
    /// Fragment writes acknowledged (after fsync) by data nodes.
    pub fragments_written: u64,
    /// Fragment writes that failed or timed out.
    pub fragment_write_failures: u64,
    /// Fragments re-placed onto another node after a failed write.
    pub fragments_replaced: u64,
    /// Stripes accepted with fewer than `k+m` durable fragments (at least `k+1`); their
    /// missing fragments await repair.
    pub stripes_under_replicated: u64,
    /// Fragments missing from those stripes.
    pub fragments_missing: u64,
    /// Stripe reads served (healthy or degraded).
    pub stripes_read: u64,
    /// Stripe reads served by decoding from other fragments.
    pub degraded_reads: u64,
    /// Degraded reads started because a data fragment was slower than `hedge_after`.
    pub hedged_reads: u64,
    /// Fragment reads that failed (missing, corrupt, unreachable, wrong length).
    pub fragment_read_failures: u64,
    /// Fragments deleted by `delete_stripes` and aborts (that existed).
    pub fragments_deleted: u64,
    /// The most stripes one writer held encoded in memory at once (high-water mark over
    /// all writers): never above `max_stripes_in_flight`.
    pub writer_stripes_high_water: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub stripes_written: AtomicU64,
    pub fragments_written: AtomicU64,
    pub fragment_write_failures: AtomicU64,
    pub fragments_replaced: AtomicU64,
    pub stripes_under_replicated: AtomicU64,
    pub fragments_missing: AtomicU64,
    pub stripes_read: AtomicU64,
    pub degraded_reads: AtomicU64,
    pub hedged_reads: AtomicU64,
    pub fragment_read_failures: AtomicU64,
    pub fragments_deleted: AtomicU64,
    pub writer_stripes_high_water: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> DataStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DataStats {
            stripes_written: g(&self.stripes_written),
            fragments_written: g(&self.fragments_written),
            fragment_write_failures: g(&self.fragment_write_failures),
            fragments_replaced: g(&self.fragments_replaced),
            stripes_under_replicated: g(&self.stripes_under_replicated),
            fragments_missing: g(&self.fragments_missing),
            stripes_read: g(&self.stripes_read),
            degraded_reads: g(&self.degraded_reads),
            hedged_reads: g(&self.hedged_reads),
            fragment_read_failures: g(&self.fragment_read_failures),
            fragments_deleted: g(&self.fragments_deleted),
            writer_stripes_high_water: g(&self.writer_stripes_high_water),
        }
    }
}
