//! `Datanode`: one node's disks, each with its `FragmentStore`, behind an async API.
//! Disk work runs through `Env::spawn_blocking`; a simulated disk's service time is
//! slept on the env clock so slow disks are slow in virtual time too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::env::{Disk, DiskOp, Env, RealDisk};
use common::ids::{DiskId, FragmentId, NodeId, RackId};

use crate::config::DatanodeConfig;
use crate::error::StoreError;
use crate::format::FragmentHeader;
use crate::scrub::{ScrubConfig, ScrubProgress};
use crate::store::{Finding, FragmentStore, FragmentWriter, PutRequest, PutStart, StoreConfig};

#[derive(Debug)]
struct DiskSlot {
    disk: Arc<dyn Disk>,
    store: Arc<FragmentStore>,
}

/// Capacity and usage of one disk, for health reports and placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskUsage {
    pub disk: DiskId,
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub fragments: u64,
}

/// A damaged fragment of this node (a store [`Finding`] with its disk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub disk: DiskId,
    pub id: FragmentId,
    pub finding: Finding,
}

#[derive(Debug)]
pub struct Datanode {
    env: Env,
    node_id: NodeId,
    rack: RackId,
    disks: BTreeMap<DiskId, DiskSlot>,
    scrub: ScrubConfig,
    scrub_progress: Mutex<ScrubProgress>,
}

impl Datanode {
    /// Opens every disk's store (running crash recovery on each).
    pub fn open(
        env: Env,
        node_id: NodeId,
        rack: RackId,
        disks: Vec<(DiskId, Arc<dyn Disk>, StoreConfig)>,
    ) -> Result<Self, StoreError> {
        let mut map = BTreeMap::new();
        for (id, disk, cfg) in disks {
            let store = Arc::new(FragmentStore::open(Arc::clone(&disk), cfg)?);
            let previous = map.insert(id, DiskSlot { disk, store });
            assert!(previous.is_none(), "disk {id} configured twice");
        }
        Ok(Self {
            env,
            node_id,
            rack,
            disks: map,
            scrub: ScrubConfig::default(),
            scrub_progress: Mutex::new(ScrubProgress::default()),
        })
    }

    /// Sets the scrubber's schedule and budget (before the node is served).
    pub fn with_scrub(mut self, scrub: ScrubConfig) -> Self {
        self.scrub = scrub;
        self
    }

    pub fn scrub_config(&self) -> &ScrubConfig {
        &self.scrub
    }

    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The scrubber's counters.
    pub fn scrub_progress(&self) -> ScrubProgress {
        self.scrub_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn update_scrub_progress(&self, f: impl FnOnce(&mut ScrubProgress)) {
        f(&mut self
            .scrub_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner()));
    }

    /// The disks of this node, in id order.
    pub fn disk_ids(&self) -> Vec<DiskId> {
        self.disks.keys().copied().collect()
    }

    /// Every damaged fragment of every disk (disk, then fragment id order).
    pub fn damaged(&self) -> Vec<Damage> {
        self.disks
            .iter()
            .flat_map(|(disk, s)| {
                s.store.findings().into_iter().map(|(id, finding)| Damage {
                    disk: *disk,
                    id,
                    finding,
                })
            })
            .collect()
    }

    /// Scrub of one fragment: re-reads and verifies it (sleeping a simulated disk's
    /// service time for the bytes read).
    pub(crate) async fn scrub_verify(
        &self,
        disk: DiskId,
        id: FragmentId,
        bytes: u64,
    ) -> Result<FragmentHeader, StoreError> {
        let slot = self.slot(disk)?;
        self.service_time(&slot.disk, DiskOp::Read, bytes as usize)
            .await;
        let store = Arc::clone(&slot.store);
        self.blocking(move || store.verify(id)).await
    }

    /// Records damage found by the scrubber or a read (see
    /// [`FragmentStore::record_damage`]).
    pub(crate) async fn record_damage(
        &self,
        disk: DiskId,
        id: FragmentId,
        what: String,
        quarantine: bool,
    ) -> Result<(), StoreError> {
        let store = Arc::clone(&self.slot(disk)?.store);
        let at_ms = self.env.clock().unix_ms();
        self.blocking(move || store.record_damage(id, &what, at_ms, quarantine))
            .await
    }

    pub(crate) fn clear_finding(&self, disk: DiskId, id: FragmentId) {
        if let Ok(slot) = self.slot(disk) {
            slot.store.clear_finding(id);
        }
    }

    /// Opens the real disks a config names, with the config's scrub schedule.
    pub fn from_config(env: Env, cfg: &DatanodeConfig) -> Result<Self, StoreError> {
        let mut disks = Vec::new();
        for d in &cfg.disks {
            let disk = RealDisk::open(&d.path)
                .map_err(|e| StoreError::io("opening", d.path.display().to_string(), e))?;
            let mut store_cfg = StoreConfig {
                capacity_bytes: d.capacity_bytes,
                ..StoreConfig::default()
            };
            if let Some(max) = d.max_fragment_bytes {
                store_cfg.max_fragment_bytes = max;
            }
            let disk: Arc<dyn Disk> = Arc::new(disk);
            disks.push((DiskId(d.id), disk, store_cfg));
        }
        Ok(
            Self::open(env, NodeId(cfg.node_id), RackId(cfg.rack.clone()), disks)?
                .with_scrub(cfg.scrub_config()),
        )
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn rack(&self) -> &RackId {
        &self.rack
    }

    fn slot(&self, disk: DiskId) -> Result<&DiskSlot, StoreError> {
        self.disks.get(&disk).ok_or(StoreError::UnknownDisk(disk.0))
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        match self.env.spawn_blocking(f).await {
            Ok(v) => v,
            // A panic in the store is a failed durability assertion: propagate it.
            Err(e) => panic!("disk task failed: {e}"),
        }
    }

    async fn service_time(&self, disk: &Arc<dyn Disk>, op: DiskOp, bytes: usize) {
        let t = disk.service_time(op, bytes);
        if !t.is_zero() {
            self.env.clock().sleep(t).await;
        }
    }

    pub async fn begin_put(&self, disk: DiskId, req: PutRequest) -> Result<PutStart, StoreError> {
        let slot = self.slot(disk)?;
        let store = Arc::clone(&slot.store);
        self.blocking(move || store.begin_put(req)).await
    }

    /// Appends bytes to a writer; gives the writer back for the next chunk.
    pub async fn write(
        &self,
        disk: DiskId,
        mut writer: FragmentWriter,
        data: bytes::Bytes,
    ) -> (FragmentWriter, Result<(), StoreError>) {
        if let Ok(slot) = self.slot(disk) {
            self.service_time(&slot.disk, DiskOp::Write, data.len())
                .await;
        }
        self.blocking(move || {
            let r = writer.write(&data);
            (writer, r)
        })
        .await
    }

    pub async fn finish(
        &self,
        disk: DiskId,
        writer: FragmentWriter,
    ) -> Result<FragmentHeader, StoreError> {
        let slot = self.slot(disk)?;
        self.service_time(&slot.disk, DiskOp::Sync, 0).await;
        self.blocking(move || writer.finish()).await
    }

    pub fn stat(&self, disk: DiskId, id: FragmentId) -> Result<FragmentHeader, StoreError> {
        self.slot(disk)?
            .store
            .stat(id)
            .ok_or(StoreError::NotFound(id))
    }

    pub async fn read(
        &self,
        disk: DiskId,
        id: FragmentId,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let slot = self.slot(disk)?;
        self.service_time(&slot.disk, DiskOp::Read, length as usize)
            .await;
        let store = Arc::clone(&slot.store);
        let result = self.blocking(move || store.read(id, offset, length)).await;
        if matches!(result, Err(StoreError::Corrupt { .. })) {
            self.damaged_on_read(disk, id).await;
        }
        result
    }

    /// A read found a block whose checksum fails. Verify the whole fragment once more (a
    /// flaky read path is not rot, the scrubber's rule); if it is corrupt, record the
    /// finding now, so `ListDamaged` hands it to repair at once instead of at the next
    /// scrub pass (a degraded GET is how the damage was found). The file is *not*
    /// quarantined: a disk that misreads for a while would otherwise make every node
    /// destroy good copies at once. It stays in place (its bad blocks still fail every
    /// read) until repair has moved the stripe and the GC deletes it, or the scrubber
    /// verifies it clean and clears the finding, or finds it corrupt and quarantines it.
    async fn damaged_on_read(&self, disk: DiskId, id: FragmentId) {
        let Ok(slot) = self.slot(disk) else { return };
        let store = Arc::clone(&slot.store);
        // Anything but rot (verifies now, gone, the disk errs): the scrubber decides later.
        if let Err(e @ StoreError::Corrupt { .. }) = self.blocking(move || store.verify(id)).await {
            let what = format!("read: {e}");
            tracing::warn!(fragment = %id, %disk, error = %what, "a read found a corrupt fragment; reporting it for repair");
            if let Err(err) = self.record_damage(disk, id, what, false).await {
                tracing::warn!(fragment = %id, %disk, error = %err, "cannot record read damage");
            }
        }
    }

    pub async fn verify(&self, disk: DiskId, id: FragmentId) -> Result<FragmentHeader, StoreError> {
        let slot = self.slot(disk)?;
        let store = Arc::clone(&slot.store);
        self.blocking(move || store.verify(id)).await
    }

    pub async fn delete(&self, disk: DiskId, id: FragmentId) -> Result<bool, StoreError> {
        let slot = self.slot(disk)?;
        self.service_time(&slot.disk, DiskOp::Sync, 0).await;
        let store = Arc::clone(&slot.store);
        self.blocking(move || store.delete(id)).await
    }

    pub fn list(
        &self,
        disk: DiskId,
        after: Option<FragmentId>,
        limit: usize,
    ) -> Result<(Vec<FragmentHeader>, bool), StoreError> {
        Ok(self.slot(disk)?.store.list(after, limit))
    }

    /// [`FragmentStore::list_present`] off the async executor.
    pub async fn list_present(
        &self,
        disk: DiskId,
        after: Option<FragmentId>,
        limit: usize,
    ) -> Result<(Vec<FragmentHeader>, bool), StoreError> {
        let store = Arc::clone(&self.slot(disk)?.store);
        self.blocking(move || store.list_present(after, limit))
            .await
    }

    pub fn usage(&self) -> Vec<DiskUsage> {
        self.disks
            .iter()
            .map(|(id, s)| DiskUsage {
                disk: *id,
                capacity_bytes: s.store.config().capacity_bytes,
                used_bytes: s.store.used_bytes(),
                fragments: s.store.fragment_count(),
            })
            .collect()
    }
}
