//! `FragmentStore`: the fragments of one disk. Synchronous (it sits on the synchronous
//! `Disk` seam); the async `Datanode` runs it through `Env::spawn_blocking`.
//!
//! Layout on the disk:
//! - `frags/<xx>/<stripe>.<index>`: complete fragments (`xx` = first two hex digits of
//!   the stripe id, to keep directories small);
//! - `tmp/<stripe>.<index>`: fragments being written; removed on open;
//! - `corrupt/<name>`: files found untrustworthy on open or damaged by the scrubber,
//!   kept for inspection, never served.
//!
//! Damage findings: a fragment found corrupt (quarantined to `corrupt/`, dropped from the
//! index, so reads answer not-found and a rebuilt copy can be put under the same id) or
//! unreadable (an I/O error; left in place and re-checked by the next scrub pass) is
//! kept in a findings list until the fragment is put again (repaired in place), deleted
//! (garbage collection after repair moved it), or — for an unreadable one — verifies
//! clean. Quarantined files rebuild their findings when the store opens.
//!
//! Write protocol (crash safe): blocks are written to `tmp/` as bytes arrive, then the
//! header, then the file is synced, renamed into `frags/`, and the directory synced;
//! only then is the write acknowledged. So a file under its final name is complete, and
//! an unacknowledged write either finished whole or is absent after a crash.
//!
//! Architecture invariant: bytes whose checksum fails are never returned.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use common::env::{parent_dir, Disk, DiskFile, OpenMode};
use common::ids::{FragmentId, StripeId};

use crate::error::StoreError;
use crate::format::{
    file_len, FragmentHeader, BLOCK_BYTES, CRC_BYTES, FORMAT_VERSION, HEADER_BYTES,
};

const FRAGS_DIR: &str = "frags";
const TMP_DIR: &str = "tmp";
const CORRUPT_DIR: &str = "corrupt";

/// Limits of one store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Bytes this store may fill (fragment files including headers and checksums).
    pub capacity_bytes: u64,
    /// Largest fragment payload accepted.
    pub max_fragment_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            capacity_bytes: 1 << 40,
            max_fragment_bytes: 256 << 20,
        }
    }
}

/// What a writer declares before sending bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PutRequest {
    pub id: FragmentId,
    pub codec: u8,
    pub k: u8,
    pub m: u8,
    pub length: u64,
    pub crc32c: u32,
}

/// Result of `begin_put`.
#[derive(Debug)]
pub enum PutStart {
    /// The same fragment (same length and checksum) is already stored: a retry.
    AlreadyStored(FragmentHeader),
    Writer(FragmentWriter),
}

#[derive(Debug, Default)]
struct State {
    index: BTreeMap<FragmentId, FragmentHeader>,
    /// Fragments being written, with the bytes reserved for them.
    in_flight: BTreeMap<FragmentId, u64>,
    /// Bytes of complete fragments plus reservations of in-flight ones.
    used_bytes: u64,
    /// Fragment files that could not be read when the store opened (I/O errors): left in
    /// place, not served (a read answers not-found, so the gateway decodes from parity
    /// and repair rebuilds them), tried again at the next open.
    unreadable: Vec<String>,
    /// Damaged fragments (see the module docs), by id.
    findings: BTreeMap<FragmentId, Finding>,
}

/// A damaged fragment of this store, for repair to find.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What failed (a checksum, the header, the length, an I/O error).
    pub what: String,
    /// When it was found (Unix ms on the node's clock); 0 when the store found it at
    /// open (quarantined earlier, or unreadable at open).
    pub at_ms: u64,
    /// The file was moved to `corrupt/` and dropped from the index (else it was left in
    /// place because the failure may be transient: an I/O error).
    pub quarantined: bool,
}

#[derive(Debug)]
pub struct FragmentStore {
    disk: Arc<dyn Disk>,
    config: StoreConfig,
    state: Mutex<State>,
}

fn file_name(id: FragmentId) -> String {
    format!("{}.{}", id.stripe, id.index)
}

fn parse_file_name(name: &str) -> Option<FragmentId> {
    let (stripe, index) = name.split_once('.')?;
    Some(FragmentId {
        stripe: StripeId::from_hex(stripe)?,
        index: index.parse().ok()?,
    })
}

fn fanout_dir(id: FragmentId) -> String {
    let hex = id.stripe.to_string();
    format!("{FRAGS_DIR}/{}", &hex[..2])
}

fn final_path(id: FragmentId) -> String {
    format!("{}/{}", fanout_dir(id), file_name(id))
}

fn tmp_path(id: FragmentId) -> String {
    format!("{TMP_DIR}/{}", file_name(id))
}

fn corrupt_path(id: FragmentId) -> String {
    format!("{CORRUPT_DIR}/{}", file_name(id))
}

impl FragmentStore {
    /// Opens the store, recovering from a crash: removes unfinished writes, indexes
    /// complete fragments, and quarantines files whose header cannot be trusted.
    pub fn open(disk: Arc<dyn Disk>, config: StoreConfig) -> Result<Self, StoreError> {
        for d in [TMP_DIR, FRAGS_DIR, CORRUPT_DIR] {
            disk.create_dir_all(d)
                .map_err(|e| StoreError::io("creating", d, e))?;
        }
        for i in 0..=255u8 {
            let d = format!("{FRAGS_DIR}/{i:02x}");
            disk.create_dir_all(&d)
                .map_err(|e| StoreError::io("creating", d.clone(), e))?;
        }
        let store = Self {
            disk,
            config,
            state: Mutex::new(State::default()),
        };
        store.remove_unfinished()?;
        store.load_index()?;
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remove_unfinished(&self) -> Result<(), StoreError> {
        let entries = self
            .disk
            .list_dir(TMP_DIR)
            .map_err(|e| StoreError::io("listing", TMP_DIR, e))?;
        for e in &entries {
            let p = format!("{TMP_DIR}/{}", e.name);
            tracing::info!(path = %p, "removing unfinished fragment write");
            self.disk
                .remove_file(&p)
                .map_err(|err| StoreError::io("removing", p.clone(), err))?;
        }
        if !entries.is_empty() {
            self.disk
                .sync_dir(TMP_DIR)
                .map_err(|e| StoreError::io("syncing", TMP_DIR, e))?;
        }
        Ok(())
    }

    fn load_index(&self) -> Result<(), StoreError> {
        let mut index = BTreeMap::new();
        let mut used = 0u64;
        let mut unreadable = Vec::new();
        let mut findings = BTreeMap::new();
        for i in 0..=255u8 {
            let dir = format!("{FRAGS_DIR}/{i:02x}");
            let entries = self
                .disk
                .list_dir(&dir)
                .map_err(|e| StoreError::io("listing", dir.clone(), e))?;
            for e in entries {
                let path = format!("{dir}/{}", e.name);
                match self.check_file(&e.name, &path) {
                    Ok(Ok(h)) => {
                        used += h.file_len();
                        index.insert(h.id, h);
                    }
                    Ok(Err(why)) => {
                        self.quarantine(&path, &e.name, &why)?;
                        if let Some(id) = parse_file_name(&e.name) {
                            findings
                                .insert(id, at_open(format!("quarantined at open: {why}"), true));
                        }
                    }
                    // One unreadable file (a bad sector, a transient EIO) must not keep
                    // the whole disk's fragments offline: skip it, say so, go on. A
                    // disk that cannot even be listed still fails the open (above).
                    Err(err) => {
                        tracing::warn!(path, error = %err, "fragment file unreadable at open; not served");
                        if let Some(id) = parse_file_name(&e.name) {
                            findings
                                .insert(id, at_open(format!("unreadable at open: {err}"), false));
                        }
                        unreadable.push(path);
                    }
                }
            }
        }
        // Files quarantined before this start are still damage to report, unless the
        // fragment was put again since (repaired in place).
        let quarantined = self
            .disk
            .list_dir(CORRUPT_DIR)
            .map_err(|e| StoreError::io("listing", CORRUPT_DIR, e))?;
        for e in quarantined {
            if let Some(id) = parse_file_name(&e.name) {
                if !index.contains_key(&id) {
                    findings
                        .entry(id)
                        .or_insert_with(|| at_open("quarantined before this start".into(), true));
                }
            }
        }
        let mut st = self.lock();
        st.index = index;
        st.used_bytes = used;
        st.unreadable = unreadable;
        st.findings = findings;
        Ok(())
    }

    /// The damaged fragments of this store, in id order.
    pub fn findings(&self) -> Vec<(FragmentId, Finding)> {
        self.lock()
            .findings
            .iter()
            .map(|(id, f)| (*id, f.clone()))
            .collect()
    }

    /// Records that fragment `id` is damaged (`what` failed, found at `at_ms`). With
    /// `quarantine` the file is moved to `corrupt/` and dropped from the index, so it is
    /// never served again and a rebuilt copy can be put under the same id; otherwise it
    /// stays in place (a possibly transient I/O error) and the finding is cleared by a
    /// later clean verify ([`Self::clear_finding`]). A fragment no longer indexed
    /// (deleted since) is ignored.
    pub fn record_damage(
        &self,
        id: FragmentId,
        what: &str,
        at_ms: u64,
        quarantine: bool,
    ) -> Result<(), StoreError> {
        {
            let mut st = self.lock();
            let Some(h) = st.index.get(&id).copied() else {
                // Deleted since it was found: nothing to report.
                return Ok(());
            };
            if quarantine {
                st.index.remove(&id);
                st.used_bytes -= h.file_len();
                // Held "in flight" (nothing reserved) while the file moves, so a put of
                // the same id waits (Busy) instead of racing the rename.
                st.in_flight.insert(id, 0);
            }
            st.findings.insert(
                id,
                Finding {
                    what: what.to_string(),
                    at_ms,
                    quarantined: quarantine,
                },
            );
        }
        if quarantine {
            let moved = self.move_to_corrupt(id, what);
            self.release(id);
            moved?;
        }
        Ok(())
    }

    fn move_to_corrupt(&self, id: FragmentId, what: &str) -> Result<(), StoreError> {
        let from = final_path(id);
        tracing::warn!(fragment = %id, what, "quarantining a damaged fragment");
        match self.disk.rename(&from, &corrupt_path(id)) {
            Ok(()) => {}
            // Gone from disk already: nothing to move.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("quarantining", from, e)),
        }
        for d in [fanout_dir(id), CORRUPT_DIR.to_string()] {
            self.disk
                .sync_dir(&d)
                .map_err(|e| StoreError::io("syncing", d.clone(), e))?;
        }
        Ok(())
    }

    /// Forgets a finding that was not quarantined (the fragment verified clean since).
    pub fn clear_finding(&self, id: FragmentId) {
        let mut st = self.lock();
        if st.findings.get(&id).is_some_and(|f| !f.quarantined) {
            st.findings.remove(&id);
        }
    }

    /// Outer error: the disk failed. Inner error: this file cannot be trusted.
    fn check_file(
        &self,
        name: &str,
        path: &str,
    ) -> Result<Result<FragmentHeader, String>, StoreError> {
        let Some(id) = parse_file_name(name) else {
            return Ok(Err("unrecognised file name".into()));
        };
        let f = self
            .disk
            .open(path, OpenMode::Read)
            .map_err(|e| StoreError::io("opening", path, e))?;
        let mut hb = [0u8; HEADER_BYTES as usize];
        match f.read_exact_at(&mut hb, 0) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(Err("shorter than a header".into()))
            }
            Err(e) => return Err(StoreError::io("reading header of", path, e)),
        }
        let h = match FragmentHeader::decode(&hb) {
            Ok(h) => h,
            Err(e) => return Ok(Err(format!("bad header: {e}"))),
        };
        if h.id != id {
            return Ok(Err(format!("header names {} but file is {id}", h.id)));
        }
        let len = f.len().map_err(|e| StoreError::io("sizing", path, e))?;
        if len != h.file_len() {
            return Ok(Err(format!(
                "file is {len} bytes, header implies {}",
                h.file_len()
            )));
        }
        Ok(Ok(h))
    }

    fn quarantine(&self, path: &str, name: &str, why: &str) -> Result<(), StoreError> {
        tracing::warn!(path, why, "quarantining untrustworthy fragment file");
        let to = format!("{CORRUPT_DIR}/{name}");
        self.disk
            .rename(path, &to)
            .map_err(|e| StoreError::io("quarantining", path, e))?;
        for d in [parent_dir(path), CORRUPT_DIR] {
            self.disk
                .sync_dir(d)
                .map_err(|e| StoreError::io("syncing", d, e))?;
        }
        Ok(())
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes
    }

    /// Fragment files skipped at open because reading them failed (see `State`).
    pub fn unreadable_at_open(&self) -> Vec<String> {
        self.lock().unreadable.clone()
    }

    pub fn fragment_count(&self) -> u64 {
        self.lock().index.len() as u64
    }

    /// The header of a stored fragment, from the in-memory index.
    pub fn stat(&self, id: FragmentId) -> Option<FragmentHeader> {
        self.lock().index.get(&id).copied()
    }

    /// Up to `limit` fragments after `after` (exclusive), in id order, and whether more
    /// follow.
    pub fn list(&self, after: Option<FragmentId>, limit: usize) -> (Vec<FragmentHeader>, bool) {
        let st = self.lock();
        let mut it: Box<dyn Iterator<Item = &FragmentHeader>> = match after {
            Some(a) => Box::new(
                st.index
                    .range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                    .map(|(_, h)| h),
            ),
            None => Box::new(st.index.values()),
        };
        let page: Vec<FragmentHeader> = it.by_ref().take(limit).copied().collect();
        let truncated = it.next().is_some();
        (page, truncated)
    }

    /// Like [`Self::list`], but every listed fragment's file is checked on the disk first:
    /// an indexed fragment whose file vanished (deleted by hand, a disk swapped under a
    /// running node) is dropped from the index (and its bytes from the usage), logged,
    /// and not listed — so the inventory repair and the orphan sweep read is the disk's,
    /// and a later stat answers not-found. A page may hold fewer than `limit` fragments
    /// while more follow.
    pub fn list_present(
        &self,
        after: Option<FragmentId>,
        limit: usize,
    ) -> Result<(Vec<FragmentHeader>, bool), StoreError> {
        let (page, truncated) = self.list(after, limit);
        let mut out = Vec::with_capacity(page.len());
        for h in page {
            let id = h.id;
            let path = final_path(id);
            let exists = self
                .disk
                .exists(&path)
                .map_err(|e| StoreError::io("checking", path.clone(), e))?;
            if exists {
                out.push(h);
                continue;
            }
            let mut st = self.lock();
            if st.in_flight.contains_key(&id) {
                continue;
            }
            if let Some(gone) = st.index.remove(&id) {
                st.used_bytes -= gone.file_len();
                tracing::warn!(fragment = %path, "fragment file vanished from the disk; forgotten");
            }
        }
        Ok((out, truncated))
    }

    fn validate(&self, req: &PutRequest) -> Result<(), StoreError> {
        if req.k == 0 || req.m == 0 {
            return Err(StoreError::InvalidArgument(format!(
                "k and m must be at least 1 (got {}+{})",
                req.k, req.m
            )));
        }
        let n = u16::from(req.k) + u16::from(req.m);
        if n > 255 {
            return Err(StoreError::InvalidArgument(format!(
                "k+m must be at most 255 (got {n})"
            )));
        }
        if u16::from(req.id.index) >= n {
            return Err(StoreError::InvalidArgument(format!(
                "fragment index {} out of range for {}+{}",
                req.id.index, req.k, req.m
            )));
        }
        if common::codec::CodecId::from_u8(req.codec).is_none() {
            return Err(StoreError::InvalidArgument(format!(
                "unknown codec id {}",
                req.codec
            )));
        }
        if req.length > self.config.max_fragment_bytes {
            return Err(StoreError::TooLarge {
                length: req.length,
                max: self.config.max_fragment_bytes,
            });
        }
        Ok(())
    }

    /// Starts writing a fragment. Reserves its space; the returned writer must be
    /// `finish`ed, and dropping it unfinished removes the partial file.
    pub fn begin_put(self: &Arc<Self>, req: PutRequest) -> Result<PutStart, StoreError> {
        self.validate(&req)?;
        let reserve = file_len(req.length, BLOCK_BYTES);
        {
            let mut st = self.lock();
            if let Some(h) = st.index.get(&req.id) {
                if h.length == req.length && h.crc32c == req.crc32c && h.codec == req.codec {
                    return Ok(PutStart::AlreadyStored(*h));
                }
                return Err(StoreError::AlreadyExists(req.id));
            }
            if st.in_flight.contains_key(&req.id) {
                return Err(StoreError::Busy(req.id));
            }
            if st.used_bytes + reserve > self.config.capacity_bytes {
                return Err(StoreError::NoSpace(format!(
                    "{} bytes needed, {} of {} used",
                    reserve, st.used_bytes, self.config.capacity_bytes
                )));
            }
            st.in_flight.insert(req.id, reserve);
            st.used_bytes += reserve;
        }
        let mut writer = FragmentWriter {
            store: Arc::clone(self),
            req,
            file: None,
            written: 0,
            crc: 0,
            block: Vec::new(),
            next_block: 0,
            done: false,
        };
        let path = tmp_path(req.id);
        let file = self
            .disk
            .open(&path, OpenMode::CreateOrOpen)
            .map_err(|e| StoreError::io("creating", path.clone(), e))?;
        file.set_len(0)
            .map_err(|e| StoreError::io("truncating", path, e))?;
        writer.file = Some(file);
        Ok(PutStart::Writer(writer))
    }

    /// Reads `length` payload bytes at `offset`, verifying every block it touches.
    pub fn read(&self, id: FragmentId, offset: u64, length: u64) -> Result<Vec<u8>, StoreError> {
        let h = self.stat(id).ok_or(StoreError::NotFound(id))?;
        let end = offset
            .checked_add(length)
            .filter(|&e| e <= h.length)
            .ok_or_else(|| {
                StoreError::InvalidArgument(format!(
                    "range {offset}+{length} outside fragment {id} of {} bytes",
                    h.length
                ))
            })?;
        let path = final_path(id);
        let file = self.open_existing(id, &path)?;
        let bs = u64::from(h.block_bytes);
        let mut out = Vec::with_capacity(length as usize);
        let mut pos = offset;
        while pos < end {
            let b = pos / bs;
            let block = read_block(file.as_ref(), &h, b, &path)?;
            let from = (pos - b * bs) as usize;
            let to = ((end - b * bs).min(block.len() as u64)) as usize;
            out.extend_from_slice(&block[from..to]);
            pos = b * bs + to as u64;
        }
        assert_eq!(out.len() as u64, length, "read assembled the wrong length");
        Ok(out)
    }

    /// Re-reads the whole fragment and checks every block, the payload checksum and the
    /// on-disk header against the index (scrub).
    pub fn verify(&self, id: FragmentId) -> Result<FragmentHeader, StoreError> {
        let h = self.stat(id).ok_or(StoreError::NotFound(id))?;
        let path = final_path(id);
        let file = self.open_existing(id, &path)?;
        let mut hb = [0u8; HEADER_BYTES as usize];
        file.read_exact_at(&mut hb, 0)
            .map_err(|e| corrupt_or_io(id, &path, e))?;
        match FragmentHeader::decode(&hb) {
            Ok(disk_h) if disk_h == h => {}
            Ok(_) => return Err(corrupt(id, "header changed on disk")),
            Err(e) => return Err(corrupt(id, &format!("header: {e}"))),
        }
        let mut crc = 0u32;
        for b in 0..h.block_count() {
            let block = read_block(file.as_ref(), &h, b, &path)?;
            crc = crc32c::crc32c_append(crc, &block);
        }
        if crc != h.crc32c {
            return Err(corrupt(id, "payload checksum mismatch"));
        }
        Ok(h)
    }

    fn open_existing(&self, id: FragmentId, path: &str) -> Result<Arc<dyn DiskFile>, StoreError> {
        self.disk.open(path, OpenMode::Read).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                // Indexed but gone from disk: treat as lost, not as "never existed".
                corrupt(id, "file missing from disk")
            } else {
                StoreError::io("opening", path, e)
            }
        })
    }

    /// Deletes a fragment durably. Returns whether it existed. Deleting a damaged
    /// fragment (garbage collection after repair moved it) also removes its quarantined
    /// copy and its finding.
    pub fn delete(&self, id: FragmentId) -> Result<bool, StoreError> {
        let finding = {
            let st = self.lock();
            if st.in_flight.contains_key(&id) {
                return Err(StoreError::Busy(id));
            }
            let finding = st.findings.get(&id).cloned();
            if !st.index.contains_key(&id) {
                drop(st);
                return match finding {
                    Some(f) => {
                        if f.quarantined {
                            self.remove_quarantined(id)?;
                        } else {
                            // Unreadable at open: still under its name, not indexed.
                            self.remove_unindexed(id)?;
                        }
                        self.lock().findings.remove(&id);
                        Ok(true)
                    }
                    None => Ok(false),
                };
            }
            finding
        };
        if finding.as_ref().is_some_and(|f| f.quarantined) {
            self.remove_quarantined(id)?;
        }
        let path = final_path(id);
        match self.disk.remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("deleting", path, e)),
        }
        let dir = fanout_dir(id);
        self.disk
            .sync_dir(&dir)
            .map_err(|e| StoreError::io("syncing", dir, e))?;
        let mut st = self.lock();
        if let Some(h) = st.index.remove(&id) {
            st.used_bytes -= h.file_len();
        }
        st.findings.remove(&id);
        Ok(true)
    }

    fn remove_unindexed(&self, id: FragmentId) -> Result<(), StoreError> {
        let path = final_path(id);
        match self.disk.remove_file(&path) {
            Ok(()) => {
                let dir = fanout_dir(id);
                self.disk
                    .sync_dir(&dir)
                    .map_err(|e| StoreError::io("syncing", dir, e))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("removing", path, e)),
        }
    }

    fn remove_quarantined(&self, id: FragmentId) -> Result<(), StoreError> {
        let path = corrupt_path(id);
        match self.disk.remove_file(&path) {
            Ok(()) => self
                .disk
                .sync_dir(CORRUPT_DIR)
                .map_err(|e| StoreError::io("syncing", CORRUPT_DIR, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("removing", path, e)),
        }
    }

    fn release(&self, id: FragmentId) {
        let mut st = self.lock();
        if let Some(r) = st.in_flight.remove(&id) {
            st.used_bytes -= r;
        }
    }
}

fn at_open(what: String, quarantined: bool) -> Finding {
    Finding {
        what,
        at_ms: 0,
        quarantined,
    }
}

fn corrupt(id: FragmentId, detail: &str) -> StoreError {
    StoreError::Corrupt {
        id,
        detail: detail.to_string(),
    }
}

fn corrupt_or_io(id: FragmentId, path: &str, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        corrupt(id, "file truncated")
    } else {
        StoreError::io("reading", path, e)
    }
}

/// Reads block `b` and returns its payload after checking its CRC32C.
fn read_block(
    file: &dyn DiskFile,
    h: &FragmentHeader,
    b: u64,
    path: &str,
) -> Result<Vec<u8>, StoreError> {
    let len = h.block_len(b) as usize;
    let mut buf = vec![0u8; len + CRC_BYTES as usize];
    file.read_exact_at(&mut buf, h.block_offset(b))
        .map_err(|e| corrupt_or_io(h.id, path, e))?;
    let stored = u32::from_le_bytes([buf[len], buf[len + 1], buf[len + 2], buf[len + 3]]);
    buf.truncate(len);
    // (The planted SkipBlockVerify bug, simulation only, skips the check.)
    if h.block_crc(b, &buf) != stored
        && !common::env::planted::active(common::env::planted::Bug::SkipBlockVerify)
    {
        return Err(corrupt(h.id, &format!("block {b} checksum mismatch")));
    }
    Ok(buf)
}

/// Streams one fragment's bytes to disk. See the write protocol in the module docs.
#[derive(Debug)]
pub struct FragmentWriter {
    store: Arc<FragmentStore>,
    req: PutRequest,
    file: Option<Arc<dyn DiskFile>>,
    written: u64,
    crc: u32,
    /// Payload of the block being filled (at most one block is buffered).
    block: Vec<u8>,
    next_block: u64,
    done: bool,
}

impl FragmentWriter {
    pub fn id(&self) -> FragmentId {
        self.req.id
    }

    fn header(&self) -> FragmentHeader {
        FragmentHeader {
            version: FORMAT_VERSION,
            id: self.req.id,
            codec: self.req.codec,
            k: self.req.k,
            m: self.req.m,
            length: self.req.length,
            block_bytes: BLOCK_BYTES,
            crc32c: self.req.crc32c,
        }
    }

    fn file(&self) -> &Arc<dyn DiskFile> {
        self.file
            .as_ref()
            .expect("writer always has a file once returned")
    }

    /// Appends payload bytes. More bytes than declared is an error.
    pub fn write(&mut self, mut data: &[u8]) -> Result<(), StoreError> {
        let total = self.written + data.len() as u64;
        if total > self.req.length {
            return Err(StoreError::InvalidArgument(format!(
                "received more than the declared {} bytes for {}",
                self.req.length, self.req.id
            )));
        }
        self.crc = crc32c::crc32c_append(self.crc, data);
        self.written = total;
        let bs = BLOCK_BYTES as usize;
        while !data.is_empty() {
            let take = (bs - self.block.len()).min(data.len());
            self.block.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.block.len() == bs {
                self.flush_block()?;
            }
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), StoreError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let h = self.header();
        let crc = h.block_crc(self.next_block, &self.block);
        self.block.extend_from_slice(&crc.to_le_bytes());
        let off = h.block_offset(self.next_block);
        let res = self.file().write_at(&self.block, off);
        self.block.clear();
        res.map_err(|e| StoreError::io("writing", tmp_path(self.req.id), e))?;
        self.next_block += 1;
        Ok(())
    }

    /// Checks length and checksum, makes the fragment durable, and indexes it.
    pub fn finish(mut self) -> Result<FragmentHeader, StoreError> {
        let id = self.req.id;
        if self.written != self.req.length {
            return Err(StoreError::InvalidArgument(format!(
                "received {} bytes for {id}, header declared {}",
                self.written, self.req.length
            )));
        }
        if self.crc != self.req.crc32c {
            return Err(StoreError::ChecksumMismatch {
                id,
                declared: self.req.crc32c,
                actual: self.crc,
            });
        }
        self.flush_block()?;
        let h = self.header();
        assert_eq!(self.next_block, h.block_count(), "every block written once");
        let tmp = tmp_path(id);
        let file = Arc::clone(self.file());
        file.write_at(&h.encode(), 0)
            .map_err(|e| StoreError::io("writing header of", tmp.clone(), e))?;
        // Planted bug (simulation only): acknowledge the fragment without any fsync.
        let ack_before_sync =
            common::env::planted::active(common::env::planted::Bug::AckBeforeSync);
        if !ack_before_sync {
            file.sync()
                .map_err(|e| StoreError::io("syncing", tmp.clone(), e))?;
        }
        let disk = &self.store.disk;
        let dest = final_path(id);
        disk.rename(&tmp, &dest)
            .map_err(|e| StoreError::io("renaming", tmp.clone(), e))?;
        let dir = fanout_dir(id);
        let synced = if ack_before_sync {
            Ok(())
        } else {
            disk.sync_dir(&dir)
        };
        if let Err(e) = synced {
            // The rename may or may not survive a crash; undo it so the index and the
            // disk agree, and report the failure.
            let _ = disk.rename(&dest, &tmp);
            return Err(StoreError::io("syncing", dir, e));
        }
        self.done = true;
        let mut st = self.store.lock();
        let reserved = st.in_flight.remove(&id).unwrap_or(0);
        assert_eq!(
            reserved,
            h.file_len(),
            "reservation matches the file written"
        );
        let previous = st.index.insert(id, h);
        assert!(previous.is_none(), "fragment {id} indexed twice");
        // A damaged fragment put again (repaired in place) is healthy now.
        st.findings.remove(&id);
        Ok(h)
    }
}

impl Drop for FragmentWriter {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.file.is_some() {
            // Best effort: if this fails (power loss), recovery removes it on open.
            let _ = self.store.disk.remove_file(&tmp_path(self.req.id));
        }
        self.store.release(self.req.id);
    }
}
