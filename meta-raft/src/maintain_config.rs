//! `[maintain]` in the meta config: the background maintenance loops every meta node
//! runs for the groups it leads (crate `maintain`): the failure detector and the orphan
//! sweep (root group), the fragment garbage collector and repair (object groups). Every
//! field has a default, so the
//! section may be left out. Errors name the field (`maintain.down_after_secs`).
//!
//! ```toml
//! [maintain]
//! detector = true            # mark silent data nodes down / dead (root leader)
//! down_after_secs = 30       # no heartbeat seen for this long: Down
//! dead_after_secs = 600      # ... for this long: Dead (fragments rebuilt elsewhere)
//! detector_tick_ms = 1000
//! gc = true                  # delete fragments nothing references (object leaders)
//! gc_tick_ms = 2000          # pause between GC passes when the queue is empty
//! gc_delay_secs = 60         # an entry waits this long in the queue before its delete
//!                            # (GETs that read the old version just before an overwrite
//!                            # finish first)
//! gc_batch = 256             # GC entries taken per pass (1..=1000)
//! gc_concurrency = 16        # fragment deletes in flight
//! gc_retry_max_secs = 60     # longest backoff before retrying an unreachable node
//! fragment_timeout_ms = 5000 # one data node call
//! repair = true              # rebuild lost / moving / damaged fragments (object leaders)
//! repair_tick_ms = 10000     # pause between repair passes when nothing needed repair
//! repair_bytes_per_sec = 104857600 # fragment bytes rebuilt per second, per meta node
//! repair_concurrency = 4     # stripes rebuilt at once, per meta node
//! repair_queue = 1024        # most stripes one pass collects (fewest healthy first)
//! repair_inventory_secs = 3600 # list every Up data node's fragments this often and
//!                            # rebuild committed fragments absent there (confirmed by a
//!                            # stat); 0 = never
//! orphan_sweep = true        # delete fragments no metadata references (root leader)
//! orphan_sweep_interval_secs = 3600 # pause between sweeps
//! orphan_grace_secs = 21600  # a fragment must be seen unreferenced in two sweeps this far
//!                            # apart before it is deleted: must be far longer than the
//!                            # longest PUT or part upload (write to commit)
//! orphan_concurrency = 4     # inventory listings and orphan deletes in flight
//! ```

use std::time::Duration;

use serde::Deserialize;

use common::config::ConfigError;

/// Most GC entries one take may ask for (the service's `GC_TAKE_MAX`).
pub const GC_BATCH_MAX: u32 = 1000;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintainConfig {
    pub detector: bool,
    pub down_after_secs: u64,
    pub dead_after_secs: u64,
    pub detector_tick_ms: u64,
    pub gc: bool,
    pub gc_tick_ms: u64,
    pub gc_delay_secs: u64,
    pub gc_batch: u32,
    pub gc_concurrency: u32,
    pub gc_retry_max_secs: u64,
    pub fragment_timeout_ms: u64,
    pub repair: bool,
    pub repair_tick_ms: u64,
    pub repair_bytes_per_sec: u64,
    pub repair_concurrency: u32,
    pub repair_queue: u32,
    pub repair_inventory_secs: u64,
    pub orphan_sweep: bool,
    pub orphan_sweep_interval_secs: u64,
    pub orphan_grace_secs: u64,
    pub orphan_concurrency: u32,
}

impl Default for MaintainConfig {
    fn default() -> Self {
        Self {
            detector: true,
            down_after_secs: 30,
            dead_after_secs: 600,
            detector_tick_ms: 1000,
            gc: true,
            gc_tick_ms: 2000,
            gc_delay_secs: 60,
            gc_batch: 256,
            gc_concurrency: 16,
            gc_retry_max_secs: 60,
            fragment_timeout_ms: 5000,
            repair: true,
            repair_tick_ms: 10_000,
            repair_bytes_per_sec: 100 << 20,
            repair_concurrency: 4,
            repair_queue: 1024,
            repair_inventory_secs: 3600,
            orphan_sweep: true,
            orphan_sweep_interval_secs: 3600,
            orphan_grace_secs: 6 * 3600,
            orphan_concurrency: 4,
        }
    }
}

impl MaintainConfig {
    pub fn down_after(&self) -> Duration {
        Duration::from_secs(self.down_after_secs)
    }

    pub fn dead_after(&self) -> Duration {
        Duration::from_secs(self.dead_after_secs)
    }

    pub fn detector_tick(&self) -> Duration {
        Duration::from_millis(self.detector_tick_ms)
    }

    pub fn gc_tick(&self) -> Duration {
        Duration::from_millis(self.gc_tick_ms)
    }

    pub fn gc_delay(&self) -> Duration {
        Duration::from_secs(self.gc_delay_secs)
    }

    pub fn gc_retry_max(&self) -> Duration {
        Duration::from_secs(self.gc_retry_max_secs)
    }

    pub fn fragment_timeout(&self) -> Duration {
        Duration::from_millis(self.fragment_timeout_ms)
    }

    pub fn repair_tick(&self) -> Duration {
        Duration::from_millis(self.repair_tick_ms)
    }

    /// How often repair lists the data nodes' inventories; `None` = never.
    pub fn repair_inventory(&self) -> Option<Duration> {
        (self.repair_inventory_secs > 0).then(|| Duration::from_secs(self.repair_inventory_secs))
    }

    pub fn orphan_sweep_interval(&self) -> Duration {
        Duration::from_secs(self.orphan_sweep_interval_secs)
    }

    pub fn orphan_grace(&self) -> Duration {
        Duration::from_secs(self.orphan_grace_secs)
    }

    /// Checks every field; errors name it as `maintain.FIELD`.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| {
            ConfigError::invalid(origin, format!("maintain.{field}"), message)
        };
        if self.down_after_secs == 0 {
            return Err(invalid("down_after_secs", "must be positive".into()));
        }
        if self.dead_after_secs <= self.down_after_secs {
            return Err(invalid(
                "dead_after_secs",
                format!(
                    "must be greater than down_after_secs ({}), got {}",
                    self.down_after_secs, self.dead_after_secs
                ),
            ));
        }
        for (field, v) in [
            ("detector_tick_ms", self.detector_tick_ms),
            ("gc_tick_ms", self.gc_tick_ms),
            ("fragment_timeout_ms", self.fragment_timeout_ms),
            ("repair_tick_ms", self.repair_tick_ms),
        ] {
            if !(10..=3_600_000).contains(&v) {
                return Err(invalid(field, format!("must be 10..=3600000, got {v}")));
            }
        }
        if self.detector_tick_ms >= self.down_after_secs.saturating_mul(1000) {
            return Err(invalid(
                "detector_tick_ms",
                format!(
                    "must be shorter than down_after_secs ({} s), got {} ms",
                    self.down_after_secs, self.detector_tick_ms
                ),
            ));
        }
        if !(1..=GC_BATCH_MAX).contains(&self.gc_batch) {
            return Err(invalid(
                "gc_batch",
                format!("must be 1..={GC_BATCH_MAX}, got {}", self.gc_batch),
            ));
        }
        if !(1..=256).contains(&self.gc_concurrency) {
            return Err(invalid(
                "gc_concurrency",
                format!("must be 1..=256, got {}", self.gc_concurrency),
            ));
        }
        if self.gc_retry_max_secs == 0 {
            return Err(invalid("gc_retry_max_secs", "must be positive".into()));
        }
        if self.repair_bytes_per_sec < 1 << 20 {
            return Err(invalid(
                "repair_bytes_per_sec",
                format!(
                    "must be at least 1048576 (1 MiB/s), got {}",
                    self.repair_bytes_per_sec
                ),
            ));
        }
        if !(1..=256).contains(&self.repair_concurrency) {
            return Err(invalid(
                "repair_concurrency",
                format!("must be 1..=256, got {}", self.repair_concurrency),
            ));
        }
        if !(1..=100_000).contains(&self.repair_queue) {
            return Err(invalid(
                "repair_queue",
                format!("must be 1..=100000, got {}", self.repair_queue),
            ));
        }
        if self.repair_inventory_secs > 7 * 86_400 {
            return Err(invalid(
                "repair_inventory_secs",
                format!(
                    "must be 0 (off) or at most 604800 (a week), got {}",
                    self.repair_inventory_secs
                ),
            ));
        }
        if !(1..=7 * 86_400).contains(&self.orphan_sweep_interval_secs) {
            return Err(invalid(
                "orphan_sweep_interval_secs",
                format!(
                    "must be 1..=604800, got {}",
                    self.orphan_sweep_interval_secs
                ),
            ));
        }
        if self.orphan_grace_secs == 0 || self.orphan_grace_secs > 30 * 86_400 {
            return Err(invalid(
                "orphan_grace_secs",
                format!(
                    "must be 1..=2592000 (and far longer than the longest upload), got {}",
                    self.orphan_grace_secs
                ),
            ));
        }
        if !(1..=256).contains(&self.orphan_concurrency) {
            return Err(invalid(
                "orphan_concurrency",
                format!("must be 1..=256, got {}", self.orphan_concurrency),
            ));
        }
        Ok(())
    }
}
