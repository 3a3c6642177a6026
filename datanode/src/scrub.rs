//! The scrubber: re-reads and verifies every fragment of every disk of the node on a
//! schedule, within a bandwidth budget, and reports what it finds damaged.
//!
//! # Schedule and budget
//! The first pass starts [`first_pass_delay`] after the node starts (so a restarted node
//! serves and recovers first); a pass starts at most once per
//! [`ScrubConfig::interval`] (the next one right away when a pass took longer). A pass
//! walks the disks in id order and each disk's fragments in id order (the store's paged
//! inventory), verifying one fragment at a time. Bytes read are paced by a
//! [`TokenBucket`] of [`ScrubConfig::bytes_per_sec`] on the node's `common::env` clock
//! (virtual time in simulation), with a burst of a quarter second: over any span the
//! scrubber reads at most `burst + rate × span` bytes.
//!
//! # Verification
//! `FragmentStore::verify`: the header re-read and compared with the index, every
//! block's checksum, the whole payload's CRC32C, and the file's presence. A fragment that
//! fails is verified once more (a flaky read path is not rot), then:
//! - **corrupt** (a checksum, the header, a truncated or missing file): quarantined —
//!   moved to `corrupt/`, dropped from the index — so it is never served as healthy
//!   again (reads answer not-found, the gateway decodes from parity, and a rebuilt copy
//!   can be put under the same id), and kept as a finding;
//! - **unreadable** (an I/O error, possibly transient): left in place and kept as a
//!   finding until a later pass verifies it clean.
//!
//! Findings (stripe, index, disk, what failed, when) are listed by the `ListDamaged`
//! RPC until repair replaces the fragment: a put of the same id (in place) or a delete
//! (garbage collection of the old location after `ReplacePlacement` moved it) clears
//! them. Quarantined files rebuild their findings when the store opens.
//!
//! Counters ([`ScrubProgress`]): passes, the current pass's start and the last pass's
//! end, bytes and fragments verified, damage found; in `Health` and `ListDamaged`.

use std::sync::Arc;
use std::time::Duration;

use common::env::{Clock, Instant};
use common::ids::{DiskId, FragmentId};

use crate::error::StoreError;
use crate::node::Datanode;

/// Fragments listed per inventory page during a pass.
const PAGE: usize = 256;

/// The first pass never starts later than this after the node starts.
pub const FIRST_PASS_DELAY_MAX: Duration = Duration::from_secs(60);

/// The scrubber's schedule and budget (`scrub_interval_secs`, `scrub_bytes_per_sec` in
/// the data node's config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrubConfig {
    /// A full pass starts at most this often. Default 7 days.
    pub interval: Duration,
    /// Bytes per second the scrubber may read (whole node). Default 16 MiB/s.
    pub bytes_per_sec: u64,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(7 * 24 * 3600),
            bytes_per_sec: 16 << 20,
        }
    }
}

/// When the first pass starts after the node starts: `min(interval, 60 s)`.
pub fn first_pass_delay(cfg: &ScrubConfig) -> Duration {
    cfg.interval.min(FIRST_PASS_DELAY_MAX)
}

/// The scrubber's counters since the node started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrubProgress {
    /// Passes started (the current or last pass's number; 0 before the first).
    pub pass: u64,
    /// A pass is running.
    pub running: bool,
    /// Start of the current (or last) pass, Unix ms.
    pub pass_started_ms: u64,
    /// End of the last finished pass, Unix ms (0: none finished yet).
    pub pass_finished_ms: u64,
    /// Fragment file bytes verified, in total and in the current (or last) pass.
    pub bytes_verified: u64,
    pub pass_bytes_verified: u64,
    /// Fragments verified, in total and in the current (or last) pass.
    pub fragments_verified: u64,
    pub pass_fragments_verified: u64,
    /// Fragments found damaged (each detection counts, also a repeated one).
    pub damaged_found: u64,
}

/// A token bucket over a caller-given clock: `take` says how long to wait before
/// using the bytes, so that bytes used by time `t` never exceed
/// `burst + rate × (t − start)`. A take larger than the burst goes into debt and waits
/// it off (a fragment is never split).
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    available: f64,
    last: Instant,
}

impl TokenBucket {
    /// `bytes_per_sec` must be positive (the config validation guarantees it).
    pub fn new(bytes_per_sec: u64, burst: u64, now: Instant) -> Self {
        assert!(bytes_per_sec > 0, "a token bucket needs a positive rate");
        Self {
            rate: bytes_per_sec as f64,
            burst: burst as f64,
            available: burst as f64,
            last: now,
        }
    }

    /// The bucket of a scrub budget: a burst of a quarter second's bytes.
    pub fn for_budget(bytes_per_sec: u64, now: Instant) -> Self {
        Self::new(bytes_per_sec, (bytes_per_sec / 4).max(1), now)
    }

    /// Takes `bytes`; returns how long to wait before using them.
    pub fn take(&mut self, bytes: u64, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.available = (self.available + elapsed * self.rate).min(self.burst);
        self.available -= bytes as f64;
        if self.available >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.available / self.rate)
        }
    }
}

/// What one pass found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub fragments_verified: u64,
    pub bytes_verified: u64,
    /// Damaged fragments found in this pass: disk, fragment, what failed.
    pub damaged: Vec<(DiskId, FragmentId, String)>,
}

/// Runs the scrubber forever (the data node's `serve` spawns it and aborts it when
/// serving stops).
pub async fn run(node: Arc<Datanode>) {
    let clock = node.env().clock().clone();
    let cfg = node.scrub_config().clone();
    clock.sleep(first_pass_delay(&cfg)).await;
    let mut bucket = TokenBucket::for_budget(cfg.bytes_per_sec, clock.now());
    loop {
        let started = clock.now();
        let report = scrub_pass(&node, &mut bucket).await;
        tracing::info!(
            node = %node.node_id(),
            fragments = report.fragments_verified,
            bytes = report.bytes_verified,
            damaged = report.damaged.len(),
            "scrub pass finished"
        );
        clock.sleep_until(started + cfg.interval).await;
    }
}

/// One full pass over every disk, paced by `bucket`.
pub async fn scrub_pass(node: &Datanode, bucket: &mut TokenBucket) -> PassReport {
    let clock: Clock = node.env().clock().clone();
    node.update_scrub_progress(|p| {
        p.pass += 1;
        p.running = true;
        p.pass_started_ms = clock.unix_ms();
        p.pass_bytes_verified = 0;
        p.pass_fragments_verified = 0;
    });
    let mut report = PassReport::default();
    for disk in node.disk_ids() {
        let mut after = None;
        // A disk the node does not know ends its walk (it cannot happen: ids come from
        // the node).
        while let Ok((page, more)) = node.list(disk, after, PAGE) {
            for h in &page {
                let bytes = h.file_len();
                let wait = bucket.take(bytes, clock.now());
                if !wait.is_zero() {
                    clock.sleep(wait).await;
                }
                scrub_one(node, disk, h.id, bytes, &mut report).await;
            }
            if !more {
                break;
            }
            after = page.last().map(|h| h.id);
        }
    }
    node.update_scrub_progress(|p| {
        p.running = false;
        p.pass_finished_ms = clock.unix_ms();
    });
    report
}

async fn scrub_one(
    node: &Datanode,
    disk: DiskId,
    id: FragmentId,
    bytes: u64,
    report: &mut PassReport,
) {
    let mut result = node.scrub_verify(disk, id, bytes).await;
    if matches!(result, Err(ref e) if is_damage(e)) {
        // Once more: a flaky read path is not rot.
        result = node.scrub_verify(disk, id, bytes).await;
    }
    match result {
        Ok(_) => {
            node.clear_finding(disk, id);
            report.fragments_verified += 1;
            report.bytes_verified += bytes;
            node.update_scrub_progress(|p| {
                p.fragments_verified += 1;
                p.pass_fragments_verified += 1;
                p.bytes_verified += bytes;
                p.pass_bytes_verified += bytes;
            });
        }
        Err(e) if is_damage(&e) => {
            let quarantine = matches!(e, StoreError::Corrupt { .. });
            let what = e.to_string();
            tracing::warn!(fragment = %id, %disk, error = %what, quarantine, "scrub found a damaged fragment");
            if let Err(err) = node.record_damage(disk, id, what.clone(), quarantine).await {
                tracing::warn!(fragment = %id, %disk, error = %err, "cannot record scrub damage");
            }
            report.damaged.push((disk, id, what));
            node.update_scrub_progress(|p| p.damaged_found += 1);
        }
        // Deleted (or being replaced) while the pass ran: nothing to verify.
        Err(_) => {}
    }
}

/// Whether a verify failure means the fragment is damaged (rather than gone or busy).
fn is_damage(e: &StoreError) -> bool {
    matches!(e, StoreError::Corrupt { .. } | StoreError::Io { .. })
}
