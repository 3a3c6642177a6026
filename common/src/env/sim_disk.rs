//! `SimDisk`: an in-memory `Disk` for simulation and durability tests. It outlives the
//! node that uses it (the harness holds it across a simulated restart) and injects the
//! faults a real disk has. madsim does not simulate disks (its sync is a no-op and it has
//! no power loss), so this file is the whole disk fault model.
//!
//! # Fault model
//! Every random draw comes from the seed given to `SimDisk::new`, so a run replays.
//!
//! - **Crash / power loss** (`crash`): the namespace reverts to its last durable state
//!   (names created, renamed or removed since the parent's last `sync_dir` are undone).
//!   Each file reverts to its contents at its last `sync`, then each write issued since
//!   then is independently kept whole (`crash_keep_prob`), torn — only a 512-byte-sector
//!   aligned prefix lands (`crash_tear_prob`) — or lost (the rest). Writes may therefore
//!   land out of order. File handles opened before the crash fail afterwards.
//! - **Power cut at a chosen point** (`power_cut_after(n)`): the n-th mutating operation
//!   from now and everything after it fails with an I/O error until `crash()` is called;
//!   this lets a test stop a writer in the middle of its protocol.
//! - **Latent errors**: a read fails with EIO with `read_error_prob`; a write or
//!   `set_len` fails with EIO, writing nothing, with `write_error_prob`; `sync` and
//!   `sync_dir` fail with EIO, making nothing durable, with `sync_error_prob`.
//! - **Bit rot**: with `bit_rot_prob` per read, one bit inside the range being read
//!   flips persistently (in the live and the durable image) before the read. `corrupt`
//!   flips chosen bits on demand.
//! - **Full disk**: when the bytes held by live files would exceed `capacity_bytes`, a
//!   write or `set_len` fails with `ErrorKind::StorageFull` and changes nothing.
//! - **Latency**: `service_time` draws uniformly from `latency_min..=latency_max` per
//!   operation; async callers sleep it in virtual time.
//!
//! Simplification: directories are durable as soon as they are created.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::disk::{parent_dir, validate_path, DirEntry, Disk, DiskFile, DiskOp, OpenMode};
use super::rng::Rng;

const SECTOR_BYTES: usize = 512;

/// Fault probabilities and limits. `Default` is a perfect disk.
#[derive(Clone, Debug, PartialEq)]
pub struct SimDiskFaults {
    pub read_error_prob: f64,
    pub write_error_prob: f64,
    pub sync_error_prob: f64,
    pub bit_rot_prob: f64,
    pub crash_keep_prob: f64,
    pub crash_tear_prob: f64,
    pub capacity_bytes: Option<u64>,
    pub latency_min: Duration,
    pub latency_max: Duration,
}

impl Default for SimDiskFaults {
    fn default() -> Self {
        Self {
            read_error_prob: 0.0,
            write_error_prob: 0.0,
            sync_error_prob: 0.0,
            bit_rot_prob: 0.0,
            crash_keep_prob: 0.5,
            crash_tear_prob: 0.25,
            capacity_bytes: None,
            latency_min: Duration::ZERO,
            latency_max: Duration::ZERO,
        }
    }
}

impl SimDiskFaults {
    /// A fault profile drawn from the seed (TigerBeetle VOPR style): each fault is off on
    /// most disks and, where on, its probability is itself drawn, so a run of many seeds
    /// covers quiet disks, flaky disks and bad ones. Capacity stays unlimited (ENOSPC is
    /// a targeted scenario, not background noise).
    pub fn random(rng: &mut Rng) -> Self {
        let mut maybe = |on: f64, max: f64| {
            if rng.chance(on) {
                rng.unit_f64() * max
            } else {
                0.0
            }
        };
        let read_error_prob = maybe(0.3, 0.02);
        let write_error_prob = maybe(0.3, 0.02);
        let sync_error_prob = maybe(0.2, 0.01);
        let bit_rot_prob = maybe(0.2, 0.005);
        let crash_keep_prob = rng.unit_f64();
        let crash_tear_prob = (1.0 - crash_keep_prob) * rng.unit_f64();
        let slow = rng.chance(0.3);
        let latency_min = Duration::from_micros(if slow {
            rng.range_inclusive(100, 2_000)
        } else {
            0
        });
        let latency_max = latency_min
            + Duration::from_micros(if slow {
                rng.range_inclusive(0, 20_000)
            } else {
                0
            });
        Self {
            read_error_prob,
            write_error_prob,
            sync_error_prob,
            bit_rot_prob,
            crash_keep_prob,
            crash_tear_prob,
            capacity_bytes: None,
            latency_min,
            latency_max,
        }
    }
}

/// Counters, for tests and for the simulator's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimDiskStats {
    pub crashes: u64,
    pub injected_read_errors: u64,
    pub injected_write_errors: u64,
    pub injected_sync_errors: u64,
    pub bits_rotted: u64,
    pub writes_lost_in_crash: u64,
    pub writes_torn_in_crash: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    File(u64),
    Dir,
}

#[derive(Debug)]
enum Pending {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct FileData {
    live: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

#[derive(Debug)]
struct State {
    rng: Rng,
    faults: SimDiskFaults,
    files: BTreeMap<u64, FileData>,
    names: BTreeMap<String, Entry>,
    durable_names: BTreeMap<String, Entry>,
    next_inode: u64,
    generation: u64,
    power_cut_in: Option<u64>,
    powered_off: bool,
    stats: SimDiskStats,
}

#[derive(Debug)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("simulated I/O error: {what}"))
}

fn not_found(path: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no such file: {path}"))
}

impl State {
    fn check_power(&self) -> io::Result<()> {
        if self.powered_off {
            return Err(io::Error::other("simulated power loss: disk is off"));
        }
        Ok(())
    }

    /// Draws a fault with the probability `pick` selects from the fault config.
    fn roll(&mut self, pick: impl Fn(&SimDiskFaults) -> f64) -> bool {
        let p = pick(&self.faults);
        self.rng.chance(p)
    }

    /// Called before every mutating operation: counts down an armed power cut.
    fn mutate(&mut self) -> io::Result<()> {
        self.check_power()?;
        if let Some(n) = self.power_cut_in.as_mut() {
            if *n == 0 {
                self.powered_off = true;
                self.power_cut_in = None;
                return Err(io::Error::other("simulated power loss"));
            }
            *n -= 1;
        }
        Ok(())
    }

    /// Bytes held by files that have a live name.
    fn live_bytes(&self) -> u64 {
        self.names
            .values()
            .filter_map(|e| match e {
                Entry::File(ino) => self.files.get(ino),
                Entry::Dir => None,
            })
            .map(|f| f.live.len() as u64)
            .sum()
    }

    /// Drops file data that neither the live nor the durable namespace names. (Handles to
    /// unlinked files then fail; Shale never writes through an unlinked name.)
    fn gc_inodes(&mut self) {
        let keep: std::collections::BTreeSet<u64> = self
            .names
            .values()
            .chain(self.durable_names.values())
            .filter_map(|e| match e {
                Entry::File(ino) => Some(*ino),
                Entry::Dir => None,
            })
            .collect();
        self.files.retain(|ino, _| keep.contains(ino));
    }

    fn check_space(&self, old_len: u64, new_len: u64, path_hint: &str) -> io::Result<()> {
        if let Some(cap) = self.faults.capacity_bytes {
            if new_len > old_len && self.live_bytes() + (new_len - old_len) > cap {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!("simulated disk full ({cap} bytes) writing {path_hint}"),
                ));
            }
        }
        Ok(())
    }

    fn parent_is_dir(&self, path: &str) -> bool {
        let parent = parent_dir(path);
        parent.is_empty() || self.names.get(parent) == Some(&Entry::Dir)
    }

    fn crash(&mut self) {
        self.names = self.durable_names.clone();
        let referenced: Vec<u64> = self
            .names
            .values()
            .filter_map(|e| match e {
                Entry::File(ino) => Some(*ino),
                Entry::Dir => None,
            })
            .collect();
        let mut files = BTreeMap::new();
        for ino in referenced {
            let Some(mut f) = self.files.remove(&ino) else {
                continue;
            };
            let mut image = std::mem::take(&mut f.durable);
            for op in std::mem::take(&mut f.pending) {
                let draw = self.rng.unit_f64();
                let keep = self.faults.crash_keep_prob;
                let tear = self.faults.crash_tear_prob;
                match op {
                    Pending::Write { offset, bytes } => {
                        let landed = if draw < keep {
                            bytes.len()
                        } else if draw < keep + tear {
                            self.stats.writes_torn_in_crash += 1;
                            let sectors = bytes.len() / SECTOR_BYTES;
                            let n = self.rng.below(sectors as u64 + 1) as usize;
                            (n * SECTOR_BYTES).min(bytes.len())
                        } else {
                            self.stats.writes_lost_in_crash += 1;
                            0
                        };
                        if landed > 0 {
                            apply_write(&mut image, offset, &bytes[..landed]);
                        }
                    }
                    Pending::SetLen(len) => {
                        if draw < keep + tear {
                            image.resize(len as usize, 0);
                        } else {
                            self.stats.writes_lost_in_crash += 1;
                        }
                    }
                }
            }
            files.insert(
                ino,
                FileData {
                    live: image.clone(),
                    durable: image,
                    pending: Vec::new(),
                },
            );
        }
        self.files = files;
        self.generation += 1;
        self.powered_off = false;
        self.power_cut_in = None;
        self.stats.crashes += 1;
    }
}

fn apply_write(image: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let start = offset as usize;
    let end = start + bytes.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[start..end].copy_from_slice(bytes);
}

impl SimDisk {
    pub fn new(seed: u64, faults: SimDiskFaults) -> Arc<Self> {
        Arc::new(Self {
            state: Arc::new(Mutex::new(State {
                rng: Rng::new(seed),
                faults,
                files: BTreeMap::new(),
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                next_inode: 1,
                generation: 0,
                power_cut_in: None,
                powered_off: false,
                stats: SimDiskStats::default(),
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a test already panicked; keep going so it reports.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Simulates power loss and restart: see the fault model at the top of this file.
    pub fn crash(&self) {
        self.lock().crash();
    }

    /// The `n`-th mutating operation from now (0 = the next one) and every operation
    /// after it fail until `crash()`.
    pub fn power_cut_after(&self, n: u64) {
        self.lock().power_cut_in = Some(n);
    }

    pub fn is_powered_off(&self) -> bool {
        self.lock().powered_off
    }

    pub fn set_faults(&self, faults: SimDiskFaults) {
        self.lock().faults = faults;
    }

    pub fn faults(&self) -> SimDiskFaults {
        self.lock().faults.clone()
    }

    pub fn stats(&self) -> SimDiskStats {
        self.lock().stats
    }

    /// Bytes held by live files.
    pub fn used_bytes(&self) -> u64 {
        self.lock().live_bytes()
    }

    /// XORs `mask` into the byte at `offset` of `path`, in the live and the durable image
    /// (persistent corruption, as bit rot would be).
    pub fn corrupt(&self, path: &str, offset: u64, mask: u8) -> io::Result<()> {
        let mut st = self.lock();
        let Some(Entry::File(ino)) = st.names.get(path).copied() else {
            return Err(not_found(path));
        };
        let f = st.files.get_mut(&ino).ok_or_else(|| not_found(path))?;
        let i = offset as usize;
        if i >= f.live.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("offset {offset} past end of {path}"),
            ));
        }
        f.live[i] ^= mask;
        if i < f.durable.len() {
            f.durable[i] ^= mask;
        }
        Ok(())
    }

    /// All live file paths, sorted.
    pub fn file_paths(&self) -> Vec<String> {
        self.lock()
            .names
            .iter()
            .filter(|(_, e)| matches!(e, Entry::File(_)))
            .map(|(p, _)| p.clone())
            .collect()
    }
}

impl Disk for SimDisk {
    fn open(&self, path: &str, mode: OpenMode) -> io::Result<Arc<dyn DiskFile>> {
        validate_path(path)?;
        let mut st = self.lock();
        st.check_power()?;
        let existing = st.names.get(path).copied();
        let ino = match (existing, mode) {
            (Some(Entry::Dir), _) => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    format!("{path} is a directory"),
                ))
            }
            (Some(Entry::File(_)), OpenMode::CreateNew) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{path} already exists"),
                ))
            }
            (Some(Entry::File(ino)), _) => ino,
            (None, OpenMode::Read | OpenMode::ReadWrite) => return Err(not_found(path)),
            (None, OpenMode::CreateNew | OpenMode::CreateOrOpen) => {
                if !st.parent_is_dir(path) {
                    return Err(not_found(parent_dir(path)));
                }
                st.mutate()?;
                let ino = st.next_inode;
                st.next_inode += 1;
                st.files.insert(ino, FileData::default());
                st.names.insert(path.to_string(), Entry::File(ino));
                ino
            }
        };
        Ok(Arc::new(SimFile {
            state: Arc::clone(&self.state),
            ino,
            generation: st.generation,
            writable: mode != OpenMode::Read,
            path: path.to_string(),
        }))
    }

    fn remove_file(&self, path: &str) -> io::Result<()> {
        validate_path(path)?;
        let mut st = self.lock();
        match st.names.get(path) {
            Some(Entry::File(_)) => {}
            Some(Entry::Dir) => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    format!("{path} is a directory"),
                ))
            }
            None => return Err(not_found(path)),
        }
        st.mutate()?;
        st.names.remove(path);
        st.gc_inodes();
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        validate_path(from)?;
        validate_path(to)?;
        let mut st = self.lock();
        let Some(Entry::File(ino)) = st.names.get(from).copied() else {
            return Err(not_found(from));
        };
        if st.names.get(to) == Some(&Entry::Dir) {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{to} is a directory"),
            ));
        }
        if !st.parent_is_dir(to) {
            return Err(not_found(parent_dir(to)));
        }
        st.mutate()?;
        st.names.remove(from);
        st.names.insert(to.to_string(), Entry::File(ino));
        st.gc_inodes();
        Ok(())
    }

    fn create_dir_all(&self, path: &str) -> io::Result<()> {
        if path.is_empty() {
            return Ok(());
        }
        validate_path(path)?;
        let mut st = self.lock();
        st.check_power()?;
        let mut prefix = String::new();
        for comp in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(comp);
            match st.names.get(&prefix) {
                Some(Entry::Dir) => {}
                Some(Entry::File(_)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{prefix} is a file"),
                    ))
                }
                None => {
                    st.names.insert(prefix.clone(), Entry::Dir);
                    st.durable_names.insert(prefix.clone(), Entry::Dir);
                }
            }
        }
        Ok(())
    }

    fn list_dir(&self, path: &str) -> io::Result<Vec<DirEntry>> {
        if !path.is_empty() {
            validate_path(path)?;
        }
        let st = self.lock();
        st.check_power()?;
        if !path.is_empty() && st.names.get(path) != Some(&Entry::Dir) {
            return Err(not_found(path));
        }
        let mut out: Vec<DirEntry> = st
            .names
            .iter()
            .filter(|(p, _)| parent_dir(p) == path && p.as_str() != path)
            .map(|(p, e)| DirEntry {
                name: p.rsplit('/').next().unwrap_or(p).to_string(),
                is_dir: *e == Entry::Dir,
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn sync_dir(&self, path: &str) -> io::Result<()> {
        let mut st = self.lock();
        st.mutate()?;
        if st.roll(|f| f.sync_error_prob) {
            st.stats.injected_sync_errors += 1;
            return Err(eio("sync_dir"));
        }
        let keys: Vec<String> = st
            .names
            .keys()
            .chain(st.durable_names.keys())
            .filter(|p| parent_dir(p) == path && p.as_str() != path)
            .cloned()
            .collect();
        for k in keys {
            match st.names.get(&k).copied() {
                Some(e) => {
                    st.durable_names.insert(k, e);
                }
                None => {
                    st.durable_names.remove(&k);
                }
            }
        }
        st.gc_inodes();
        Ok(())
    }

    fn exists(&self, path: &str) -> io::Result<bool> {
        if path.is_empty() {
            return Ok(true);
        }
        validate_path(path)?;
        let st = self.lock();
        st.check_power()?;
        Ok(st.names.contains_key(path))
    }

    fn service_time(&self, _op: DiskOp, _bytes: usize) -> Duration {
        let mut st = self.lock();
        let (lo, hi) = (st.faults.latency_min, st.faults.latency_max);
        if hi <= lo {
            return lo;
        }
        let span = u64::try_from((hi - lo).as_micros()).unwrap_or(u64::MAX);
        lo + Duration::from_micros(st.rng.range_inclusive(0, span))
    }
}

#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<State>>,
    ino: u64,
    generation: u64,
    writable: bool,
    path: String,
}

impl SimFile {
    fn lock(&self) -> io::Result<MutexGuard<'_, State>> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.generation != self.generation {
            return Err(io::Error::other(format!(
                "stale handle for {}: the disk crashed since it was opened",
                self.path
            )));
        }
        st.check_power()?;
        Ok(st)
    }

    fn check_writable(&self) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} opened read-only", self.path),
            ));
        }
        Ok(())
    }
}

impl DiskFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut st = self.lock()?;
        if st.roll(|f| f.read_error_prob) {
            st.stats.injected_read_errors += 1;
            return Err(eio("read"));
        }
        let rot = st.roll(|f| f.bit_rot_prob);
        let len = st.files.get(&self.ino).map_or(0, |f| f.live.len());
        let start = (offset as usize).min(len);
        let end = (start + buf.len()).min(len);
        if rot && end > start {
            let at = start + st.rng.below((end - start) as u64) as usize;
            let bit = 1u8 << st.rng.below(8);
            st.stats.bits_rotted += 1;
            let f = st
                .files
                .get_mut(&self.ino)
                .ok_or_else(|| not_found(&self.path))?;
            f.live[at] ^= bit;
            if at < f.durable.len() {
                f.durable[at] ^= bit;
            }
        }
        let f = st
            .files
            .get(&self.ino)
            .ok_or_else(|| not_found(&self.path))?;
        buf[..end - start].copy_from_slice(&f.live[start..end]);
        Ok(end - start)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check_writable()?;
        let mut st = self.lock()?;
        st.mutate()?;
        if st.roll(|f| f.write_error_prob) {
            st.stats.injected_write_errors += 1;
            return Err(eio("write"));
        }
        let old_len = st.files.get(&self.ino).map_or(0, |f| f.live.len() as u64);
        let new_len = old_len.max(offset + buf.len() as u64);
        st.check_space(old_len, new_len, &self.path)?;
        let f = st
            .files
            .get_mut(&self.ino)
            .ok_or_else(|| not_found(&self.path))?;
        apply_write(&mut f.live, offset, buf);
        f.pending.push(Pending::Write {
            offset,
            bytes: buf.to_vec(),
        });
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut st = self.lock()?;
        st.mutate()?;
        if st.roll(|f| f.sync_error_prob) {
            st.stats.injected_sync_errors += 1;
            return Err(eio("sync"));
        }
        let f = st
            .files
            .get_mut(&self.ino)
            .ok_or_else(|| not_found(&self.path))?;
        f.durable = f.live.clone();
        f.pending.clear();
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let st = self.lock()?;
        Ok(st.files.get(&self.ino).map_or(0, |f| f.live.len() as u64))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_writable()?;
        let mut st = self.lock()?;
        st.mutate()?;
        if st.roll(|f| f.write_error_prob) {
            st.stats.injected_write_errors += 1;
            return Err(eio("set_len"));
        }
        let old_len = st.files.get(&self.ino).map_or(0, |f| f.live.len() as u64);
        st.check_space(old_len, len, &self.path)?;
        let f = st
            .files
            .get_mut(&self.ino)
            .ok_or_else(|| not_found(&self.path))?;
        f.live.resize(len as usize, 0);
        f.pending.push(Pending::SetLen(len));
        Ok(())
    }
}
