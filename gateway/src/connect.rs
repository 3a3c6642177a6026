//! Reaching the metadata plane at start-up. A gateway may start before the meta nodes,
//! or during an election (no root leader yet): `MetaClient::connect` then fails with
//! `Unavailable`, and a gateway that gave up would need a supervisor to restart it.
//! [`connect_meta`] retries instead, with capped exponential backoff (each failure
//! logged with `tracing::warn`), until it connects; only a permanent error — another
//! cluster's meta nodes, a bad configuration, a protocol mismatch — ends it.

use std::future::Future;
use std::time::Duration;

use common::env::Env;
use meta_raft::client::{MetaClient, MetaClientError};

/// Pauses between connection attempts: `initial`, doubling up to `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The pause after `pause`.
    pub fn next(&self, pause: Duration) -> Duration {
        pause.saturating_mul(2).min(self.max)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(5),
        }
    }
}

/// Whether a failure to connect may heal by itself (no leader, nodes not up yet, a
/// node failing, the map moving) rather than needing an operator (wrong cluster id,
/// invalid configuration, incompatible versions).
pub fn is_transient(e: &MetaClientError) -> bool {
    match e {
        MetaClientError::Unavailable { .. }
        | MetaClientError::StaleGroupMap(_)
        | MetaClientError::Internal(_) => true,
        MetaClientError::Rejected(_)
        | MetaClientError::Protocol(_)
        | MetaClientError::WrongCluster(_)
        | MetaClientError::Config(_) => false,
    }
}

/// A metadata client for `seeds`, retried until the metadata plane answers (see the
/// module doc). Errors only with a permanent failure.
pub async fn connect_meta(
    env: &Env,
    seeds: Vec<String>,
    cluster_id: String,
    backoff: Backoff,
) -> Result<MetaClient, MetaClientError> {
    retry_connect(env, backoff, || {
        MetaClient::connect(seeds.clone(), cluster_id.clone())
    })
    .await
}

/// Calls `connect` until it succeeds or fails permanently, pausing on `env`'s clock
/// between attempts.
pub async fn retry_connect<T, F, Fut>(
    env: &Env,
    backoff: Backoff,
    mut connect: F,
) -> Result<T, MetaClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, MetaClientError>>,
{
    let mut pause = backoff.initial;
    let mut attempt: u64 = 1;
    loop {
        match connect().await {
            Ok(v) => {
                if attempt > 1 {
                    tracing::info!(attempt, "connected to the metadata plane");
                }
                return Ok(v);
            }
            Err(e) if is_transient(&e) => {
                tracing::warn!(
                    attempt,
                    error = %e,
                    retry_in = ?pause,
                    "metadata plane not reachable yet; retrying"
                );
                env.clock().sleep(pause).await;
                pause = backoff.next(pause);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
#[path = "connect_test.rs"]
mod connect_test;
