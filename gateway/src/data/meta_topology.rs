//! `MetaTopology`: the cluster map from the metadata plane (`MetaClient::cluster_map`),
//! cached and refreshed at most every `refresh_every` of env-clock time. One refresh at a
//! time; while the metadata plane is unreachable the last map keeps serving (a stale map
//! only costs failed writes, which re-place, and reads of moved fragments, which decode).

use std::sync::Arc;
use std::time::Duration;

use common::cluster::ClusterMap;
use common::env::{Env, Instant};
use futures::future::BoxFuture;
use meta_raft::client::MetaClient;
use tokio::sync::Mutex;

use super::{DataError, Topology};

/// How often the map is refreshed by default.
pub const DEFAULT_REFRESH_EVERY: Duration = Duration::from_secs(5);

pub struct MetaTopology {
    meta: MetaClient,
    env: Env,
    refresh_every: Duration,
    cache: Mutex<Option<(Instant, Arc<ClusterMap>)>>,
}

impl std::fmt::Debug for MetaTopology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaTopology")
            .field("refresh_every", &self.refresh_every)
            .finish_non_exhaustive()
    }
}

impl MetaTopology {
    pub fn new(meta: MetaClient, env: Env) -> Self {
        Self {
            meta,
            env,
            refresh_every: DEFAULT_REFRESH_EVERY,
            cache: Mutex::new(None),
        }
    }

    /// Refresh the cached map at most this often.
    pub fn with_refresh_every(mut self, refresh_every: Duration) -> Self {
        self.refresh_every = refresh_every;
        self
    }

    async fn get(&self) -> Result<Arc<ClusterMap>, DataError> {
        let mut cache = self.cache.lock().await;
        let now = self.env.clock().now();
        if let Some((at, map)) = cache.as_ref() {
            if now.saturating_duration_since(*at) < self.refresh_every {
                return Ok(Arc::clone(map));
            }
        }
        match self.meta.cluster_map().await {
            Ok(map) => {
                let map = Arc::new(map);
                *cache = Some((now, Arc::clone(&map)));
                Ok(map)
            }
            Err(e) => match cache.take() {
                Some((_, map)) => {
                    // Keep serving the last map; try again after another `refresh_every`
                    // rather than making every request wait for an unreachable plane.
                    tracing::warn!(error = %e, "cluster map refresh failed; using the cached map");
                    *cache = Some((now, Arc::clone(&map)));
                    Ok(map)
                }
                None => Err(DataError::Topology(e.to_string())),
            },
        }
    }
}

impl Topology for MetaTopology {
    fn cluster_map(&self) -> BoxFuture<'_, Result<Arc<ClusterMap>, DataError>> {
        Box::pin(self.get())
    }
}
