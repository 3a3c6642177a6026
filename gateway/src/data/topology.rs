//! `Topology`: where the data path gets the cluster map from, and `StaticTopology`, a
//! fixed (or test-controlled) map.

use std::sync::{Arc, RwLock};

use common::cluster::ClusterMap;
use futures::future::BoxFuture;

use super::DataError;

/// The source of the cluster map (node addresses, racks, states, disks) used to place
/// new stripes and to find the nodes of stored ones.
pub trait Topology: Send + Sync + 'static {
    fn cluster_map(&self) -> BoxFuture<'_, Result<Arc<ClusterMap>, DataError>>;
}

/// A map given by the caller; `set` replaces it (tests move or stop nodes with it).
#[derive(Debug)]
pub struct StaticTopology(RwLock<Arc<ClusterMap>>);

impl StaticTopology {
    pub fn new(map: ClusterMap) -> Self {
        Self(RwLock::new(Arc::new(map)))
    }

    pub fn set(&self, map: ClusterMap) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
    }

    pub fn get(&self) -> Arc<ClusterMap> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Topology for StaticTopology {
    fn cluster_map(&self) -> BoxFuture<'_, Result<Arc<ClusterMap>, DataError>> {
        let map = self.get();
        Box::pin(async move { Ok(map) })
    }
}
