//! Time. Monotonic time, sleeps and timeouts come from the runtime (tokio in production,
//! madsim's virtual clock in simulation, through the `tokio` rename). Wall-clock time
//! carries a per-node offset so the simulator can skew one node's clock (SigV4
//! clock-skew checks, leases) while madsim itself has a single global clock.

use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use tokio::time::Instant;

/// A timeout elapsed before the future completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("timed out after {0:?}")]
pub struct Elapsed(pub Duration);

#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Added to the wall clock, in milliseconds (may be negative). Zero in production.
    wall_offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Monotonic now.
    #[allow(clippy::disallowed_methods)] // the one place that reads the runtime clock
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// Wall-clock now, including this node's offset.
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    pub fn wall(&self) -> SystemTime {
        let base = SystemTime::now();
        let offset = self.wall_offset_ms.load(Ordering::Relaxed);
        if offset >= 0 {
            base + Duration::from_millis(offset.unsigned_abs())
        } else {
            base.checked_sub(Duration::from_millis(offset.unsigned_abs()))
                .unwrap_or(UNIX_EPOCH)
        }
    }

    /// Wall-clock now as milliseconds since the Unix epoch.
    pub fn unix_ms(&self) -> u64 {
        self.wall()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    /// Skews this node's wall clock (simulation and tests).
    pub fn set_wall_offset(&self, offset: Duration, ahead: bool) {
        let ms = i64::try_from(offset.as_millis()).unwrap_or(i64::MAX);
        let signed = if ahead { ms } else { -ms };
        self.wall_offset_ms.store(signed, Ordering::Relaxed);
    }

    pub fn wall_offset_ms(&self) -> i64 {
        self.wall_offset_ms.load(Ordering::Relaxed)
    }

    pub async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    pub async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(deadline).await;
    }

    pub async fn timeout<F: Future>(
        &self,
        duration: Duration,
        fut: F,
    ) -> Result<F::Output, Elapsed> {
        tokio::time::timeout(duration, fut)
            .await
            .map_err(|_| Elapsed(duration))
    }
}
