//! `Inventory`: which fragments the data nodes hold, listed with `ListFragments` (paged)
//! disk by disk. Two loops use it:
//! - the orphan sweep (`orphans.rs`): fragments held but referenced by no metadata;
//! - repair (`repair.rs`): fragments a committed placement names but the named disk does
//!   not hold (confirmed with `StatFragment` before anything is rebuilt: the inventory
//!   may predate the commit).
//!
//! Only disks whose listing finished are recorded: a disk that did not answer is
//! *unknown*, never "empty" ([`Inventory::holds`] answers `None` for it).

use std::collections::{BTreeMap, BTreeSet};

use common::cluster::{ClusterMap, DiskState, FragmentLocation, NodeState};
use common::ids::{FragmentId, StripeId};
use futures::StreamExt;

use crate::datanodes::{DataNodes, FragmentCallError};

/// Fragments per `ListFragments` page.
const PAGE: u32 = 1000;

/// The fragments of every disk listed completely.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    disks: BTreeMap<FragmentLocation, BTreeSet<FragmentId>>,
    /// Disks whose listing failed (not in `disks`).
    pub failed: usize,
}

impl Inventory {
    /// Records that `loc` was listed completely and holds `ids`.
    pub fn insert(&mut self, loc: FragmentLocation, ids: impl IntoIterator<Item = FragmentId>) {
        self.disks.entry(loc).or_default().extend(ids);
    }

    /// Whether disk `loc` holds `id`; `None` when the disk was not listed.
    pub fn holds(&self, loc: FragmentLocation, id: FragmentId) -> Option<bool> {
        self.disks.get(&loc).map(|s| s.contains(&id))
    }

    /// Whether `loc` was listed and does not hold `id`: a suspect for repair (to be
    /// confirmed by a stat, the listing may predate the fragment's write).
    pub fn missing(&self, loc: FragmentLocation, id: FragmentId) -> bool {
        self.holds(loc, id) == Some(false)
    }

    /// Disks listed completely.
    pub fn disks(&self) -> usize {
        self.disks.len()
    }

    /// Every listed fragment with its location, in (location, id) order.
    pub fn fragments(&self) -> impl Iterator<Item = (FragmentLocation, FragmentId)> + '_ {
        self.disks
            .iter()
            .flat_map(|(loc, ids)| ids.iter().map(move |id| (*loc, *id)))
    }

    /// The distinct stripes of the listed fragments.
    pub fn stripes(&self) -> BTreeSet<StripeId> {
        self.fragments().map(|(_, id)| id.stripe).collect()
    }

    /// Fragments listed.
    pub fn len(&self) -> usize {
        self.disks.values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.disks.values().all(BTreeSet::is_empty)
    }
}

/// Lists every disk (not failed) of every node of `map` in one of `states`, at most
/// `concurrency` disks at once. A disk whose listing fails is counted in
/// [`Inventory::failed`] and left unknown.
pub async fn take(
    nodes: &DataNodes,
    map: &ClusterMap,
    states: &[NodeState],
    concurrency: usize,
) -> Inventory {
    let disks: Vec<(FragmentLocation, String)> = map
        .nodes
        .values()
        .filter(|n| states.contains(&n.state))
        .flat_map(|n| {
            n.disks
                .iter()
                .filter(|d| d.state != DiskState::Failed)
                .map(|d| {
                    (
                        FragmentLocation {
                            node: n.id,
                            disk: d.id,
                        },
                        n.addr.clone(),
                    )
                })
        })
        .collect();
    let lists = disks.into_iter().map(|(loc, addr)| async move {
        let r = list_disk(nodes, loc, &addr).await;
        (loc, r)
    });
    let mut results: Vec<_> = futures::stream::iter(lists)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.sort_by_key(|(loc, _)| *loc);
    let mut inv = Inventory::default();
    for (loc, r) in results {
        match r {
            Ok(ids) => inv.insert(loc, ids),
            Err(e) => {
                inv.failed += 1;
                tracing::debug!(%loc, error = %e, "inventory: listing a disk failed");
            }
        }
    }
    inv
}

/// Every fragment on disk `loc` (page by page).
async fn list_disk(
    nodes: &DataNodes,
    loc: FragmentLocation,
    addr: &str,
) -> Result<Vec<FragmentId>, FragmentCallError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let (ids, truncated) = nodes.list(loc.node, addr, loc.disk, after, PAGE).await?;
        after = ids.last().copied();
        out.extend(ids);
        if !truncated || after.is_none() {
            return Ok(out);
        }
    }
}
