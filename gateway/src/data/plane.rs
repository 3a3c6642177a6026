//! `DataPlane`: the shared state of the data path (config, cluster map source, channel
//! pool, suspect nodes, counters) and its entry points: `writer` (PUT), `read` (GET) and
//! `delete_stripes` (aborted PUTs).

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use common::cluster::FragmentLocation;
use common::codec::CodecParams;
use common::env::Env;
use common::ids::FragmentId;
use futures::stream::{BoxStream, StreamExt};
use meta_raft::state_machine::{ObjectBody, StripeRecord};

use super::node_pool::NodePool;
use super::stats::{bump, Counters};
use super::suspects::Suspects;
use super::{reader, DataConfig, DataStats, StripeWriter, Topology};

/// The data path of one gateway. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct DataPlane {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub env: Env,
    pub cfg: DataConfig,
    pub topology: Arc<dyn Topology>,
    pub pool: NodePool,
    pub suspects: Suspects,
    pub counters: Counters,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

impl DataPlane {
    pub fn new(env: Env, cfg: DataConfig, topology: Arc<dyn Topology>) -> Self {
        let clock = env.clock().clone();
        Self {
            inner: Arc::new(Inner {
                pool: NodePool::new(clock.clone(), cfg.connect_timeout),
                suspects: Suspects::new(clock, cfg.suspect_for),
                env,
                cfg,
                topology,
                counters: Counters::default(),
            }),
        }
    }

    pub fn config(&self) -> &DataConfig {
        &self.inner.cfg
    }

    /// The counters since this plane was created.
    pub fn stats(&self) -> DataStats {
        self.inner.counters.snapshot()
    }

    /// A writer for one object (or part) body coded with `codec`. Invalid parameters
    /// surface as an error from the first `write` / `finish`.
    pub fn writer(&self, codec: CodecParams) -> StripeWriter {
        StripeWriter::new(self.clone(), codec)
    }

    /// Streams bytes `[range.start, range.end)` (object offsets) of `body`: inline bytes
    /// are sliced, striped and multipart bodies read their stripes in order. Errors are
    /// stream items (the stream ends after one).
    pub fn read(
        &self,
        body: &ObjectBody,
        range: Range<u64>,
    ) -> BoxStream<'static, Result<Bytes, super::DataError>> {
        reader::read(self.clone(), body, range)
    }

    /// Best-effort deletion of every fragment of `stripes` (aborted PUTs; garbage
    /// collection later). Never fails loudly: failures are logged. Returns how many
    /// fragments existed and were deleted.
    pub async fn delete_stripes(&self, stripes: &[StripeRecord]) -> usize {
        let jobs: Vec<_> = stripes
            .iter()
            .flat_map(|s| {
                s.placement.iter().enumerate().map(move |(i, loc)| {
                    (
                        FragmentId {
                            stripe: s.id,
                            index: u8::try_from(i).unwrap_or(u8::MAX),
                        },
                        *loc,
                    )
                })
            })
            .collect();
        self.delete_fragments(jobs).await
    }

    /// Deletes fragments (best effort, bounded concurrency); returns how many existed.
    pub(crate) async fn delete_fragments(
        &self,
        jobs: Vec<(FragmentId, FragmentLocation)>,
    ) -> usize {
        if jobs.is_empty() {
            return 0;
        }
        let inner = &self.inner;
        let map = match inner.topology.cluster_map().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, fragments = jobs.len(), "cannot delete fragments");
                return 0;
            }
        };
        let map = &map;
        let deleted = futures::stream::iter(jobs)
            .map(|(id, loc)| async move {
                let Some(node) = map.node(loc.node) else {
                    tracing::warn!(fragment = %id, node = %loc.node, "delete: node not in the map");
                    return false;
                };
                match inner
                    .pool
                    .delete(node, loc.disk, id, inner.cfg.fragment_write_timeout)
                    .await
                {
                    Ok(existed) => existed,
                    Err(e) => {
                        tracing::warn!(fragment = %id, %loc, error = %e, "fragment delete failed");
                        false
                    }
                }
            })
            .buffer_unordered(inner.cfg.delete_concurrency.max(1))
            .filter(|existed| futures::future::ready(*existed))
            .count()
            .await;
        bump(&inner.counters.fragments_deleted, deleted as u64);
        deleted
    }
}
