//! `RepairBudget`: repair's byte-rate limit (`repair_bytes_per_sec`), a token bucket on
//! the env clock. A rebuild reserves its bytes (fragments read plus fragments written)
//! before it starts and waits as long as the reservation put the bucket in debt; the
//! bucket holds at most one second of budget, so an idle repair loop does not bank a
//! burst. Pure arithmetic on instants: the caller sleeps.

use std::time::Duration;

use common::env::Instant;

#[derive(Clone, Debug)]
pub struct RepairBudget {
    bytes_per_sec: u64,
    /// Bytes available (negative: debt that waiting pays off).
    tokens: i128,
    last: Option<Instant>,
}

impl RepairBudget {
    /// A full bucket (one second of budget) at the first reservation.
    pub fn new(bytes_per_sec: u64) -> Self {
        Self {
            bytes_per_sec: bytes_per_sec.max(1),
            tokens: i128::from(bytes_per_sec),
            last: None,
        }
    }

    /// Reserves `bytes` at `now`; returns how long the caller waits before using them.
    pub fn reserve(&mut self, now: Instant, bytes: u64) -> Duration {
        let rate = i128::from(self.bytes_per_sec);
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_nanos();
            let refill = i128::try_from(elapsed)
                .unwrap_or(i128::MAX / 2)
                .saturating_mul(rate)
                / 1_000_000_000;
            self.tokens = self.tokens.saturating_add(refill).min(rate);
        }
        self.last = Some(now);
        self.tokens -= i128::from(bytes);
        if self.tokens >= 0 {
            return Duration::ZERO;
        }
        let nanos = (-self.tokens).saturating_mul(1_000_000_000) / rate;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}
