//! `ShaleInstant`: the runtime's monotonic instant (virtual time under madsim).

use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::time::Duration;

/// Wraps `tokio::time::Instant` (madsim's instant in simulation).
#[derive(Clone, Copy, Debug, Eq, PartialEq, Ord, PartialOrd)]
pub struct ShaleInstant(pub(crate) tokio::time::Instant);

impl Add<Duration> for ShaleInstant {
    type Output = Self;
    fn add(self, rhs: Duration) -> Self {
        Self(self.0 + rhs)
    }
}

impl AddAssign<Duration> for ShaleInstant {
    fn add_assign(&mut self, rhs: Duration) {
        self.0 += rhs;
    }
}

impl Sub<Duration> for ShaleInstant {
    type Output = Self;
    fn sub(self, rhs: Duration) -> Self {
        Self(self.0 - rhs)
    }
}

impl Sub<Self> for ShaleInstant {
    type Output = Duration;
    fn sub(self, rhs: Self) -> Duration {
        self.0.saturating_duration_since(rhs.0)
    }
}

impl SubAssign<Duration> for ShaleInstant {
    fn sub_assign(&mut self, rhs: Duration) {
        self.0 -= rhs;
    }
}

impl openraft::rt::Instant for ShaleInstant {
    fn now() -> Self {
        Self(common::env::monotonic_now())
    }
}
