//! `SimCluster`: a whole Shale cluster as madsim nodes — meta nodes, data nodes in
//! racks, gateways serving S3 over simulated TCP, client nodes — and the fault levers a
//! scenario pulls: power loss and restart of a node or a rack (disks drop unsynced
//! writes), network clogs of a node, a link or a partition (madsim's `NetSim`), and
//! per-node clock skew (through `common::env::Clock`).
//!
//! Faults nest: every lever counts, so two overlapping faults on one node (a crash and
//! a rack loss) restore it only when both have ended.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::cluster::{check_placement, Placement};
use common::cluster::{DiskInfo, DiskState, NodeInfo, NodeState};
use common::env::planted::Bug;
use common::env::{Disk, Env, SimDisk, SimDiskFaults};
use common::ids::{DiskId, FragmentId, GroupId, NodeId, RackId};
use gateway::client::S3Client;
use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle};
use meta_raft::client::MetaClient;
use meta_raft::config::MaintainConfig;
use meta_raft::state_machine::AccessKey;
use meta_raft::state_machine::ListVersionsParams;
use meta_raft::state_machine::ObjectBody;
use meta_raft::state_machine::Versioning;

use crate::checker::fragments::StripeHealth;
use crate::checker::replicas::ReplicaState;
use crate::datanode_node::SimDatanode;
use crate::gateway_node::SimGateway;
use crate::history::Fnv;
use crate::meta_node::{maintain_config, meta_config_with, SimMetaNode};
use crate::planted::{FsyncLies, MisdirectedDeletes, MisdirectedReads, Planted};
use crate::scenario::{ClusterShape, NodeRef};

pub const ACCESS_KEY: &str = "SIMACCESSKEY00000001";
pub const SECRET_KEY: &str = "simsecret000000000000000000000000000001";
pub const BUCKET: &str = "sim";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("simulated ip")
}

pub struct SimCluster {
    pub shape: ClusterShape,
    pub metas: Vec<SimMetaNode>,
    pub datanodes: Vec<SimDatanode>,
    pub gateways: Vec<SimGateway>,
    /// Nodes the workload's clients run on (never faulted).
    pub clients: Vec<NodeHandle>,
    /// A node for operator calls (registration, keys).
    pub admin: NodeHandle,
    /// The planted bug's switch (false: disks honest), on during the safety phase.
    pub lying: Arc<AtomicBool>,
    env: Env,
    /// Each data node's healthy disk profile (restored when a disk fault ends).
    base_faults: SimDiskFaults,
    /// Each meta node's healthy disk profile.
    meta_base_faults: SimDiskFaults,
    /// Meta nodes whose disk is bad now (restarted when it is healthy again).
    meta_disk_bad: BTreeSet<usize>,
    down: BTreeMap<NodeRef, u32>,
    clogged: BTreeMap<NodeRef, u32>,
    links: BTreeMap<(NodeRef, NodeRef), u32>,
    paused: BTreeMap<NodeRef, u32>,
    /// The rack of each data node (index as in `datanodes`).
    rack_of: Vec<usize>,
    /// Data nodes replaced for good (`replace_datanode`): never restarted.
    retired: BTreeSet<usize>,
    /// Meta nodes replaced for good (`replace_meta`): out of every group, never restarted.
    retired_metas: BTreeSet<usize>,
    /// The meta nodes' maintenance settings (for replacements).
    maintain: MaintainConfig,
    /// The meta nodes' addresses.
    seeds: Vec<String>,
}

impl SimCluster {
    /// Creates every node (they start serving at once). Call `bootstrap` next.
    pub fn start(env: &Env, shape: &ClusterShape, planted: Option<Planted>) -> Self {
        Self::start_with(env, shape, planted, maintain_config())
    }

    /// `start`, with the meta nodes' maintenance loops configured by `maintain`.
    pub fn start_with(
        env: &Env,
        shape: &ClusterShape,
        planted: Option<Planted>,
        maintain: MaintainConfig,
    ) -> Self {
        let lying = Arc::new(AtomicBool::new(false));
        // A lying disk's crash reverts cleanly to its last real sync (no torn writes), so
        // the planted bug loses acknowledged state without corrupting what remains.
        let lying_faults = SimDiskFaults {
            crash_keep_prob: 0.0,
            crash_tear_prob: 0.0,
            ..SimDiskFaults::default()
        };
        let meta_ips: Vec<IpAddr> = (1..=shape.meta_nodes)
            .map(|i| ip(&format!("10.0.2.{i}")))
            .collect();
        let metas = (1..=shape.meta_nodes as u64)
            .map(|id| {
                let config = meta_config_with(id, &meta_ips, shape.object_groups, maintain.clone());
                if planted == Some(Planted::MetaFsyncLies) {
                    let disk = SimDisk::new(env.random_u64(), lying_faults.clone());
                    let served: Arc<dyn Disk> = FsyncLies::new(disk.clone(), lying.clone());
                    SimMetaNode::start_on(config, disk, served)
                } else {
                    SimMetaNode::start(config, env.random_u64())
                }
            })
            .collect::<Vec<_>>();
        let seeds: Vec<String> = metas.iter().map(|m| m.addr.to_string()).collect();
        let datanodes = (0..shape.data_nodes)
            .map(|i| {
                let id = NodeId(i as u64 + 1);
                let rack = rack_name(i % shape.racks);
                let addr = ip(&format!("10.0.3.{}", i + 1));
                // A data node that never syncs loses what it wrote at every power loss.
                let faults = if planted == Some(Planted::Product(Bug::AckBeforeSync)) {
                    lying_faults.clone()
                } else {
                    SimDiskFaults::default()
                };
                let disk = SimDisk::new(env.random_u64(), faults);
                let served: Arc<dyn Disk> = match planted {
                    Some(Planted::MisdirectedReads) => {
                        MisdirectedReads::new(disk.clone(), lying.clone())
                    }
                    Some(Planted::MisdirectedDeletes) => {
                        MisdirectedDeletes::new(disk.clone(), lying.clone())
                    }
                    _ => disk.clone(),
                };
                SimDatanode::start_on(
                    env,
                    id,
                    &rack,
                    addr,
                    vec![disk],
                    vec![served],
                    seeds.clone(),
                )
            })
            .collect::<Vec<_>>();
        let gateways = (0..shape.gateways)
            .map(|i| SimGateway::start(env, ip(&format!("10.0.4.{}", i + 1)), "sim", seeds.clone()))
            .collect::<Vec<_>>();
        let rt = Handle::current();
        let clients = (0..shape.clients)
            .map(|i| {
                rt.create_node()
                    .name(format!("client-{}", i + 1))
                    .ip(ip(&format!("10.0.5.{}", i + 1)))
                    .build()
            })
            .collect();
        let admin = rt.create_node().name("admin").ip(ip("10.0.1.1")).build();
        SimCluster {
            shape: shape.clone(),
            metas,
            datanodes,
            gateways,
            clients,
            admin,
            lying,
            env: env.fork(),
            base_faults: if planted == Some(Planted::Product(Bug::AckBeforeSync)) {
                lying_faults
            } else {
                SimDiskFaults::default()
            },
            meta_base_faults: if planted == Some(Planted::MetaFsyncLies) {
                SimDiskFaults {
                    crash_keep_prob: 0.0,
                    crash_tear_prob: 0.0,
                    ..SimDiskFaults::default()
                }
            } else {
                SimDiskFaults::default()
            },
            meta_disk_bad: BTreeSet::new(),
            down: BTreeMap::new(),
            clogged: BTreeMap::new(),
            links: BTreeMap::new(),
            paused: BTreeMap::new(),
            rack_of: (0..shape.data_nodes).map(|i| i % shape.racks).collect(),
            retired: BTreeSet::new(),
            retired_metas: BTreeSet::new(),
            maintain,
            seeds,
        }
    }

    /// What an operator does once: registers the data nodes in the cluster map,
    /// creates the access key and the bucket. Bounded waits; an error names the step.
    pub async fn bootstrap(&self) -> Result<(), String> {
        self.bootstrap_with(false).await
    }

    /// `bootstrap`; with `versioned`, versioning is then enabled on the bucket.
    pub async fn bootstrap_with(&self, versioned: bool) -> Result<(), String> {
        let seeds: Vec<String> = self.metas.iter().map(|m| m.addr.to_string()).collect();
        let infos: Vec<NodeInfo> = self
            .datanodes
            .iter()
            .enumerate()
            .map(|(i, d)| NodeInfo {
                id: NodeId(i as u64 + 1),
                rack: RackId(rack_name(i % self.shape.racks)),
                addr: d.addr.to_string(),
                state: NodeState::Up,
                disks: vec![DiskInfo {
                    id: DiskId(0),
                    state: DiskState::Healthy,
                    capacity_bytes: 1 << 30,
                    used_bytes: 0,
                }],
            })
            .collect();
        let s3 = self.s3_client(0, &self.env);
        self.admin
            .spawn(async move {
                let meta = MetaClient::connect(seeds, "sim")
                    .await
                    .map_err(|e| format!("meta client: {e}"))?;
                for info in &infos {
                    retry(100, || meta.register_node(info, 0))
                        .await
                        .map_err(|e| format!("registering {}: {e}", info.id))?;
                }
                let key = AccessKey {
                    id: ACCESS_KEY.into(),
                    secret: SECRET_KEY.into(),
                    user: "sim".into(),
                    created_ms: 0,
                };
                retry(50, || meta.create_access_key(&key))
                    .await
                    .map_err(|e| format!("access key: {e}"))?;
                // The gateway may still be starting.
                for _ in 0..100 {
                    if let Ok(r) = s3
                        .send("PUT", &format!("/{BUCKET}"), Bytes::new(), &[])
                        .await
                    {
                        if r.status.as_u16() == 200 {
                            if versioned {
                                retry(50, || {
                                    meta.set_bucket_versioning(BUCKET, Versioning::Enabled)
                                })
                                .await
                                .map_err(|e| format!("enabling versioning: {e}"))?;
                            }
                            return Ok(());
                        }
                    }
                    madsim::time::sleep(Duration::from_millis(200)).await;
                }
                Err("creating the bucket: no answer".to_owned())
            })
            .await
            .map_err(|e| format!("bootstrap task: {e}"))?
    }

    /// A SigV4 client of gateway `i`.
    pub fn s3_client(&self, gateway: usize, env: &Env) -> S3Client {
        S3Client::new(
            env.fork(),
            self.gateways[gateway].addr,
            ACCESS_KEY,
            SECRET_KEY,
        )
    }

    /// The data nodes of a rack (not the retired ones).
    pub fn rack(&self, rack: usize) -> Vec<NodeRef> {
        (0..self.datanodes.len())
            .filter(|&i| self.rack_of[i] == rack && !self.retired.contains(&i))
            .map(NodeRef::Data)
            .collect()
    }

    /// Data nodes that are neither retired nor powered off.
    fn running_datanodes(&self) -> Vec<usize> {
        (0..self.datanodes.len())
            .filter(|&i| !self.retired.contains(&i) && !self.down.contains_key(&NodeRef::Data(i)))
            .collect()
    }

    /// Replaces a running data node (`pick` modulo their count) for good: it loses
    /// power and its disk, never to return; a new data node with the next id and
    /// address joins its rack, empty, and is registered in the cluster map. Returns a
    /// note for the fault log.
    pub async fn replace_datanode(&mut self, pick: u64) -> String {
        let running = self.running_datanodes();
        if running.is_empty() {
            return " (no running data node)".into();
        }
        let old = running[(pick % running.len() as u64) as usize];
        self.power_loss(NodeRef::Data(old));
        self.down.remove(&NodeRef::Data(old));
        self.retired.insert(old);
        let rack = self.rack_of[old];
        let new = self.datanodes.len();
        let id = NodeId(new as u64 + 1);
        let addr = ip(&format!("10.0.3.{}", new + 1));
        let disk = SimDisk::new(self.env.random_u64(), self.base_faults.clone());
        let served: Arc<dyn Disk> = disk.clone();
        let node = SimDatanode::start_on(
            &self.env,
            id,
            &rack_name(rack),
            addr,
            vec![disk],
            vec![served],
            self.seeds.clone(),
        );
        let info = NodeInfo {
            id,
            rack: RackId(rack_name(rack)),
            addr: node.addr.to_string(),
            state: NodeState::Up,
            disks: vec![DiskInfo {
                id: DiskId(0),
                state: DiskState::Healthy,
                capacity_bytes: 1 << 30,
                used_bytes: 0,
            }],
        };
        self.datanodes.push(node);
        self.rack_of.push(rack);
        let seeds = self.seeds.clone();
        let now_ms = self.env.clock().unix_ms();
        let registered = self
            .admin
            .spawn(async move {
                let meta = MetaClient::connect(seeds, "sim")
                    .await
                    .map_err(|e| format!("meta client: {e}"))?;
                retry(50, || meta.register_node(&info, now_ms))
                    .await
                    .map_err(|e| format!("registering {}: {e}", info.id))
            })
            .await
            .map_err(|e| format!("task: {e}"))
            .and_then(|r| r);
        let outcome = match registered {
            Ok(()) => String::new(),
            Err(e) => format!(", NOT registered: {e}"),
        };
        format!(
            " (data-{} gone for good; data-{} joins rack-{rack}{outcome})",
            old + 1,
            new + 1
        )
    }

    /// Bit rot at rest: flips `bit` of one byte of one fragment file of a running data
    /// node, each chosen by its selector modulo the candidates. Returns a note for the
    /// fault log.
    pub fn rot(&self, node: u64, file: u64, offset: u64, bit: u8) -> String {
        let running = self.running_datanodes();
        if running.is_empty() {
            return " (no running data node)".into();
        }
        let i = running[(node % running.len() as u64) as usize];
        let disk = &self.datanodes[i].disks[0];
        let Some(path) = pick_file(disk, |p| p.starts_with("frags/"), file) else {
            return format!(" (data-{} holds no fragment)", i + 1);
        };
        let path = &path;
        let len = disk
            .open(path, common::env::OpenMode::Read)
            .and_then(|f| f.len())
            .unwrap_or(0);
        if len == 0 {
            return format!(" (data-{} {path} is empty)", i + 1);
        }
        let at = offset % len;
        match disk.corrupt(path, at, 1 << (bit % 8)) {
            Ok(()) => format!(" (data-{} {path} byte {at} of {len})", i + 1),
            Err(e) => format!(" (data-{} {path}: {e})", i + 1),
        }
    }

    /// What an operator does with meta node `old` whose disk is gone (or refused): starts
    /// a new, empty meta node (next id and address, `join = true`), adds it as a voter of
    /// every group (it catches up by log or snapshot) and removes `old` from every group.
    /// `old` is never restarted. Returns a note for the fault log.
    pub async fn replace_meta(&mut self, old: usize) -> String {
        let old_id = self.metas[old].id;
        self.power_loss(NodeRef::Meta(old));
        self.down.remove(&NodeRef::Meta(old));
        self.retired_metas.insert(old);
        let new_id = self.metas.len() as u64 + 1;
        let ips: Vec<IpAddr> = (1..=new_id).map(|i| ip(&format!("10.0.2.{i}"))).collect();
        let mut config = meta_config_with(
            new_id,
            &ips,
            self.shape.object_groups,
            self.maintain.clone(),
        );
        config.join = true;
        let node = SimMetaNode::start(config, self.env.random_u64());
        let addr = node.addr.to_string();
        self.metas.push(node);
        let live: Vec<String> = self
            .metas
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.retired_metas.contains(i))
            .map(|(_, m)| m.addr.to_string())
            .collect();
        self.seeds = live.clone();
        let changed = self
            .admin
            .spawn(async move {
                let meta = MetaClient::connect(live, "sim")
                    .await
                    .map_err(|e| format!("meta client: {e}"))?;
                retry(100, || meta.add_voter_all(new_id, &addr))
                    .await
                    .map_err(|e| format!("adding meta-{new_id}: {e}"))?;
                retry(100, || meta.remove_voter_all(old_id))
                    .await
                    .map_err(|e| format!("removing meta-{old_id}: {e}"))
            })
            .await
            .map_err(|e| format!("task: {e}"))
            .and_then(|r| r);
        match changed {
            Ok(groups) => format!(
                "meta-{old_id} replaced by meta-{new_id} in {} groups",
                groups.len()
            ),
            Err(e) => format!("meta-{old_id} NOT replaced by meta-{new_id}: {e}"),
        }
    }

    /// Bit rot at rest on meta node `i` (powered off by the caller): one bit flips in
    /// each sector of a damaged extent of one of its redb files, from a non-zero byte
    /// (selectors resolved against the files and bytes present). Returns a note for the
    /// fault log.
    pub fn meta_rot(&self, i: usize, file: u64, offset: u64, bit: u8) -> String {
        let disk = &self.metas[i].disk;
        let Some(path) = pick_file(disk, |p| p.ends_with(".redb"), file) else {
            return format!(" (meta-{} holds no redb file)", i + 1);
        };
        let path = &path;
        let bytes = disk
            .open(path, common::env::OpenMode::Read)
            .and_then(|f| {
                let mut b = vec![0u8; f.len()? as usize];
                f.read_exact_at(&mut b, 0)?;
                Ok(b)
            })
            .unwrap_or_default();
        let nonzero: Vec<usize> = (0..bytes.len()).filter(|&j| bytes[j] != 0).collect();
        if nonzero.is_empty() {
            return format!(" (meta-{} {path} holds only zeros)", i + 1);
        }
        // A damaged extent: one bit in each of 1..=64 consecutive 512-byte sectors,
        // starting at a non-zero byte (most of a redb file is stale copy-on-write pages,
        // which a single flip usually hits harmlessly).
        let at = nonzero[(offset % nonzero.len() as u64) as usize] as u64;
        let sectors = 1 + (offset >> 40) % 64;
        let mut flipped = 0;
        for s in 0..sectors {
            let o = at + s * 512;
            if o >= bytes.len() as u64 {
                break;
            }
            if let Err(e) = disk.corrupt(path, o, 1 << (bit % 8)) {
                return format!(" (meta-{} {path}: {e})", i + 1);
            }
            flipped += 1;
        }
        format!(
            " (meta-{} {path}: {flipped} sectors from byte {at} of {})",
            i + 1,
            bytes.len()
        )
    }

    /// Every server node (meta, data, gateway).
    pub fn servers(&self) -> Vec<NodeRef> {
        (0..self.shape.meta_nodes)
            .map(NodeRef::Meta)
            .chain((0..self.shape.data_nodes).map(NodeRef::Data))
            .chain((0..self.shape.gateways).map(NodeRef::Gateway))
            .collect()
    }

    fn madsim_id(&self, n: NodeRef) -> madsim::task::NodeId {
        match n {
            NodeRef::Meta(i) => self.metas[i].handle.id(),
            NodeRef::Data(i) => self.datanodes[i].handle.id(),
            NodeRef::Gateway(i) => self.gateways[i].handle.id(),
        }
    }

    /// Power loss of `n` (a gateway simply dies: it has no disk). Nested: the node
    /// comes back when every `power_loss` has its `power_restore`.
    pub fn power_loss(&mut self, n: NodeRef) {
        if self.is_retired(n) {
            return;
        }
        let c = self.down.entry(n).or_insert(0);
        *c += 1;
        if *c == 1 {
            match n {
                NodeRef::Meta(i) => self.metas[i].kill(),
                NodeRef::Data(i) => self.datanodes[i].kill(),
                NodeRef::Gateway(i) => self.gateways[i].kill(),
            }
        }
    }

    /// Whether `n` was replaced for good (never powered on again).
    fn is_retired(&self, n: NodeRef) -> bool {
        match n {
            NodeRef::Data(i) => self.retired.contains(&i),
            NodeRef::Meta(i) => self.retired_metas.contains(&i),
            NodeRef::Gateway(_) => false,
        }
    }

    pub fn power_restore(&mut self, n: NodeRef) {
        if self.is_retired(n) {
            return;
        }
        let Some(c) = self.down.get_mut(&n) else {
            return;
        };
        *c -= 1;
        if *c == 0 {
            self.down.remove(&n);
            match n {
                NodeRef::Meta(i) => self.metas[i].restart(),
                NodeRef::Data(i) => self.datanodes[i].restart(),
                NodeRef::Gateway(i) => self.gateways[i].restart(),
            }
        }
    }

    /// Kill-and-restart at once (a power cycle).
    pub fn crash_restart(&mut self, n: NodeRef) {
        self.power_loss(n);
        self.power_restore(n);
    }

    pub fn kill_rack(&mut self, rack: usize) {
        for n in self.rack(rack) {
            self.power_loss(n);
        }
    }

    pub fn restore_rack(&mut self, rack: usize) {
        for n in self.rack(rack) {
            self.power_restore(n);
        }
    }

    /// Cuts `n` off the network (both directions). Nested like `power_loss`.
    pub fn clog(&mut self, n: NodeRef) {
        let c = self.clogged.entry(n).or_insert(0);
        *c += 1;
        if *c == 1 {
            NetSim::current().clog_node(self.madsim_id(n));
        }
    }

    pub fn unclog(&mut self, n: NodeRef) {
        let Some(c) = self.clogged.get_mut(&n) else {
            return;
        };
        *c -= 1;
        if *c == 0 {
            self.clogged.remove(&n);
            NetSim::current().unclog_node(self.madsim_id(n));
        }
    }

    /// Clogs the link from `a` to `b` (one direction). Nested.
    pub fn clog_link(&mut self, a: NodeRef, b: NodeRef) {
        let c = self.links.entry((a, b)).or_insert(0);
        *c += 1;
        if *c == 1 {
            NetSim::current().clog_link(self.madsim_id(a), self.madsim_id(b));
        }
    }

    pub fn unclog_link(&mut self, a: NodeRef, b: NodeRef) {
        let Some(c) = self.links.get_mut(&(a, b)) else {
            return;
        };
        *c -= 1;
        if *c == 0 {
            self.links.remove(&(a, b));
            NetSim::current().unclog_link(self.madsim_id(a), self.madsim_id(b));
        }
    }

    /// A symmetric partition: no traffic between `a` and `b`.
    pub fn partition(&mut self, a: &[NodeRef], b: &[NodeRef]) {
        for &x in a {
            for &y in b {
                self.clog_link(x, y);
                self.clog_link(y, x);
            }
        }
    }

    pub fn heal_partition(&mut self, a: &[NodeRef], b: &[NodeRef]) {
        for &x in a {
            for &y in b {
                self.unclog_link(x, y);
                self.unclog_link(y, x);
            }
        }
    }

    /// An asymmetric partition: nothing from `a` reaches `b`; `b` still reaches `a`.
    pub fn one_way(&mut self, a: &[NodeRef], b: &[NodeRef]) {
        for &x in a {
            for &y in b {
                self.clog_link(x, y);
            }
        }
    }

    pub fn heal_one_way(&mut self, a: &[NodeRef], b: &[NodeRef]) {
        for &x in a {
            for &y in b {
                self.unclog_link(x, y);
            }
        }
    }

    /// Gives data node `i`'s disk a fault profile; `enospc` also caps its capacity just
    /// above what it holds now.
    pub fn disk_faults(&self, i: usize, faults: &SimDiskFaults, enospc: bool) {
        for d in &self.datanodes[i].disks {
            let mut f = SimDiskFaults {
                crash_keep_prob: self.base_faults.crash_keep_prob,
                crash_tear_prob: self.base_faults.crash_tear_prob,
                ..faults.clone()
            };
            if enospc {
                f.capacity_bytes = Some(d.used_bytes() + (64 << 10));
            }
            d.set_faults(f);
        }
    }

    /// Data node `i`'s disks healthy again.
    pub fn disk_healthy(&self, i: usize) {
        for d in &self.datanodes[i].disks {
            d.set_faults(self.base_faults.clone());
        }
    }

    /// Gives meta node `i`'s disk a fault profile (`enospc`: capacity just above its
    /// use).
    pub fn meta_disk_faults(&mut self, i: usize, faults: &SimDiskFaults, enospc: bool) {
        let d = &self.metas[i].disk;
        let mut f = SimDiskFaults {
            crash_keep_prob: self.meta_base_faults.crash_keep_prob,
            crash_tear_prob: self.meta_base_faults.crash_tear_prob,
            ..faults.clone()
        };
        if enospc {
            f.capacity_bytes = Some(d.used_bytes() + (64 << 10));
        }
        d.set_faults(f);
        self.meta_disk_bad.insert(i);
    }

    /// Meta node `i`'s disk healthy again, and its process restarted (no power loss)
    /// unless it is down: a supervisor restarting what the bad disk may have stopped (a
    /// Raft group whose storage failed stops for good).
    pub fn meta_disk_healthy(&mut self, i: usize) {
        self.metas[i].disk.set_faults(self.meta_base_faults.clone());
        if self.meta_disk_bad.remove(&i) && !self.down.contains_key(&NodeRef::Meta(i)) {
            self.metas[i].process_restart();
        }
    }

    /// Pauses `n`'s process (nested).
    pub fn pause(&mut self, n: NodeRef) {
        let c = self.paused.entry(n).or_insert(0);
        *c += 1;
        if *c == 1 {
            Handle::current().pause(self.madsim_id(n));
        }
    }

    pub fn resume(&mut self, n: NodeRef) {
        let Some(c) = self.paused.get_mut(&n) else {
            return;
        };
        *c -= 1;
        if *c == 0 {
            self.paused.remove(&n);
            Handle::current().resume(self.madsim_id(n));
        }
    }

    /// Packet loss and latency on every link (`None`: madsim's defaults).
    pub fn set_network(&self, lossy: Option<(f64, Duration, Duration)>) {
        NetSim::current().update_config(|c| match lossy {
            Some((loss, lo, hi)) => {
                c.packet_loss_rate = loss;
                c.send_latency = lo..hi;
            }
            None => *c = madsim::net::Config::default(),
        });
    }

    /// Skews gateway `i`'s wall clock (0 restores it).
    pub fn skew_gateway(&self, i: usize, offset_ms: i64) {
        self.gateways[i].skew(offset_ms);
    }

    /// Skews `n`'s wall clock (0 restores it): a gateway's dates SigV4 checks and the
    /// times it stamps into objects; a meta node's, what its maintenance loops stamp
    /// (node state changes, GC acks); a data node's, its heartbeats and damage reports.
    pub fn skew(&self, n: NodeRef, offset_ms: i64) {
        match n {
            NodeRef::Meta(i) => self.metas[i].skew(offset_ms),
            NodeRef::Data(i) => self.datanodes[i].skew(offset_ms),
            NodeRef::Gateway(i) => self.gateways[i].skew(offset_ms),
        }
    }

    /// The running meta node that leads `group` (the one claiming leadership with the
    /// highest term when a deposed leader has not noticed yet).
    pub async fn meta_leader(&self, group: u64) -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        for (i, m) in self.metas.iter().enumerate() {
            if self.down.contains_key(&NodeRef::Meta(i)) {
                continue;
            }
            let Some(node) = m.node() else { continue };
            let Some(raft) = node.host().registry().get(GroupId(group)) else {
                continue;
            };
            if raft.current_leader().await == Some(m.id) {
                let term =
                    openraft::rt::WatchReceiver::borrow_watched(&raft.metrics()).current_term;
                if best.is_none_or(|(t, _)| term > t) {
                    best = Some((term, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    /// Ends every fault: nodes restarted, the network whole, clocks true.
    pub fn heal_all(&mut self) {
        for (n, _) in std::mem::take(&mut self.down) {
            match n {
                NodeRef::Meta(i) => self.metas[i].restart(),
                NodeRef::Data(i) => self.datanodes[i].restart(),
                NodeRef::Gateway(i) => self.gateways[i].restart(),
            }
        }
        let net = NetSim::current();
        for (n, _) in std::mem::take(&mut self.clogged) {
            net.unclog_node(self.madsim_id(n));
        }
        for ((a, b), _) in std::mem::take(&mut self.links) {
            net.unclog_link(self.madsim_id(a), self.madsim_id(b));
        }
        for (n, _) in std::mem::take(&mut self.paused) {
            Handle::current().resume(self.madsim_id(n));
        }
        for n in self.servers() {
            self.skew(n, 0);
        }
        for i in 0..self.datanodes.len() {
            self.disk_healthy(i);
        }
        for i in 0..self.metas.len() {
            self.meta_disk_healthy(i);
        }
        self.set_network(None);
    }

    /// Every replica of every metadata group, summarised (`checker::replicas`), polled
    /// until the replicas of each group agree or `wait` passes.
    pub async fn replica_states(&self, wait: Duration) -> Vec<ReplicaState> {
        let clock = self.env.clock().clone();
        let deadline = clock.now() + wait;
        loop {
            let states = self.replica_states_now();
            if crate::checker::replicas::check(&states).is_empty() || clock.now() >= deadline {
                return states;
            }
            clock.sleep(Duration::from_millis(200)).await;
        }
    }

    fn replica_states_now(&self) -> Vec<ReplicaState> {
        let mut out = Vec::new();
        for g in 0..=u64::from(self.shape.object_groups) {
            for (i, m) in self.metas.iter().enumerate() {
                // A replaced meta node, or a replica that refused its rotten disk (to be
                // replaced), is out of its groups: it has no state to compare.
                if self.retired_metas.contains(&i) {
                    continue;
                }
                if m.node().is_none()
                    && !self.down.contains_key(&NodeRef::Meta(i))
                    && m.refuses_its_disk()
                {
                    continue;
                }
                let running = if self.down.contains_key(&NodeRef::Meta(i)) {
                    None
                } else {
                    m.node()
                };
                let (applied, digest) = match running {
                    None => (None, None),
                    Some(node) => {
                        let applied = node.host().registry().get(GroupId(g)).and_then(|r| {
                            openraft::rt::WatchReceiver::borrow_watched(&r.metrics())
                                .last_applied
                                .map(|l| l.index)
                        });
                        let digest = node
                            .host()
                            .state_machine(GroupId(g))
                            .and_then(|sm| digest_database(sm.database()).ok());
                        (applied, digest)
                    }
                };
                out.push(ReplicaState {
                    group: g,
                    node: m.id,
                    applied,
                    digest,
                });
            }
        }
        out
    }

    /// The health of every stripe of every version of the bucket (in an unversioned
    /// bucket: each key's current version): its fragments stat'ed with every block
    /// verified, its placement checked against the rack rule. From the admin node;
    /// `Err` if the metadata could not be read.
    pub async fn stripe_health(&self) -> Result<Vec<StripeHealth>, String> {
        let seeds = self.seeds.clone();
        self.admin
            .spawn(async move {
                let meta = MetaClient::connect(seeds, "sim")
                    .await
                    .map_err(|e| format!("meta client: {e}"))?;
                let map = meta
                    .cluster_map()
                    .await
                    .map_err(|e| format!("cluster map: {e}"))?;
                let mut versions = Vec::new();
                let mut params = ListVersionsParams {
                    max_keys: 1000,
                    ..ListVersionsParams::default()
                };
                loop {
                    let page = meta
                        .list_object_versions(BUCKET, &params)
                        .await
                        .map_err(|e| format!("list versions: {e}"))?;
                    versions.extend(
                        page.versions
                            .into_iter()
                            .filter(|v| !v.is_delete_marker)
                            .map(|v| (v.key, v.version_id)),
                    );
                    if !page.is_truncated {
                        break;
                    }
                    params.key_marker = page.next_key_marker;
                    params.version_id_marker = page.next_version_id_marker;
                }
                let mut out = Vec::new();
                let mut clients = DatanodeClients::new();
                for (key, version_id) in versions {
                    // Gone since the listing (nothing writes now, but be exact).
                    let Some(v) = meta
                        .get_version(BUCKET, &key, &version_id)
                        .await
                        .map_err(|e| format!("get {key} version {version_id}: {e}"))?
                    else {
                        continue;
                    };
                    let codec = match &v.body {
                        ObjectBody::Inline(_) => continue,
                        ObjectBody::Stripes { codec, .. } | ObjectBody::Multipart { codec, .. } => {
                            *codec
                        }
                    };
                    for stripe in v.body.stripes() {
                        let placement = Placement {
                            locations: stripe.placement.clone(),
                        };
                        let placement_error = check_placement(&map, &placement, codec.k, codec.m)
                            .err()
                            .map(|e| e.to_string());
                        let mut healthy = 0;
                        let mut problems = Vec::new();
                        // The fragments of a stripe are on distinct nodes: stat them at
                        // once (results in index order).
                        let mut stats = Vec::new();
                        for (i, loc) in stripe.placement.iter().enumerate() {
                            let index = u8::try_from(i).unwrap_or(u8::MAX);
                            let Some(node) = map.node(loc.node) else {
                                problems.push(format!("#{i} on {}: not in the map", loc.node));
                                continue;
                            };
                            let id = FragmentId {
                                stripe: stripe.id,
                                index,
                            };
                            let client = datanode_client(&mut clients, &node.addr).await;
                            let what = format!("#{i} on {} ({:?})", loc.node, node.state);
                            let disk = loc.disk.0;
                            stats.push(
                                async move { (what, fragment_status(client, id, disk).await) },
                            );
                        }
                        for (what, r) in futures::future::join_all(stats).await {
                            match r {
                                Ok(()) => healthy += 1,
                                Err(why) => problems.push(format!("{what}: {why}")),
                            }
                        }
                        out.push(StripeHealth {
                            key: key.clone(),
                            version: v.version_id.clone(),
                            stripe: format!("{}", stripe.id),
                            k: codec.k,
                            m: codec.m,
                            healthy,
                            problems,
                            placement_error,
                        });
                    }
                }
                Ok(out)
            })
            .await
            .map_err(|e| format!("inspection task: {e}"))?
    }

    /// `stripe_health`, repeated every second until every stripe has all `k+m`
    /// fragments placed by the rack rule, or `wait` passes (repair and scrub get that long
    /// to finish). The inspection from the last round, and a note for the log (rounds,
    /// time, stripes below `k+m` or misplaced in each round).
    pub async fn stripe_health_settled(
        &self,
        wait: Duration,
    ) -> (Result<Vec<StripeHealth>, String>, String) {
        let clock = self.env.clock().clone();
        let started = clock.now();
        let mut degraded = Vec::new();
        loop {
            let r = self.stripe_health().await;
            let below = r
                .as_ref()
                .map_or(usize::MAX, |s| crate::checker::fragments::unsettled(s));
            degraded.push(if below == usize::MAX {
                "?".to_owned()
            } else {
                below.to_string()
            });
            let waited = clock.now().duration_since(started);
            if below == 0 || waited >= wait {
                let note = format!(
                    "{} inspections in {:.1}s, below k+m or misplaced: {}",
                    degraded.len(),
                    waited.as_secs_f64(),
                    degraded.join(" ")
                );
                return (r, note);
            }
            clock.sleep(Duration::from_secs(1)).await;
        }
    }

    /// Turns the planted bug on or off.
    pub fn set_lying(&self, on: bool) {
        self.lying.store(on, Ordering::Relaxed);
    }
}

type DatanodeClient =
    proto::datanode::datanode_service_client::DatanodeServiceClient<tonic::transport::Channel>;

/// Connections to the data nodes for one inspection, one per address (or why it could
/// not be opened).
type DatanodeClients = BTreeMap<String, Result<DatanodeClient, String>>;

/// The connection to `addr`, opened on first use.
async fn datanode_client(
    clients: &mut DatanodeClients,
    addr: &str,
) -> Result<DatanodeClient, String> {
    if let Some(c) = clients.get(addr) {
        return c.clone();
    }
    let connect = DatanodeClient::connect(format!("http://{addr}"));
    let c = match madsim::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("unreachable: {e}")),
        Err(_) => Err("unreachable: connect timed out".into()),
    };
    clients.insert(addr.to_owned(), c.clone());
    c
}

/// Whether the data node behind `client` holds fragment `id` on `disk` with every block
/// verified; else why not (the node's answer).
async fn fragment_status(
    client: Result<DatanodeClient, String>,
    id: FragmentId,
    disk: u32,
) -> Result<(), String> {
    let mut c = client?;
    let req = proto::datanode::StatFragmentRequest {
        id: Some(id.into()),
        disk,
        verify: true,
    };
    match madsim::time::timeout(Duration::from_secs(5), c.stat_fragment(req)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) => Err(status.message().to_owned()),
        Err(_) => Err("stat timed out".into()),
    }
}

/// FNV-1a over every table of a state machine database: names, keys and values, in
/// order, each length-prefixed.
fn digest_database(db: &redb::Database) -> Result<u64, redb::Error> {
    use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
    let txn = db.begin_read()?;
    let mut names: Vec<String> = txn.list_tables()?.map(|h| h.name().to_owned()).collect();
    names.sort();
    let mut h = Fnv::new();
    let mut put = |bytes: &[u8]| {
        h.write(&(bytes.len() as u64).to_le_bytes());
        h.write(bytes);
    };
    for name in names {
        put(name.as_bytes());
        let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(&name);
        let table = txn.open_table(def)?;
        for item in table.iter()? {
            let (k, v) = item?;
            put(k.value());
            put(v.value());
        }
    }
    Ok(h.finish())
}

pub fn rack_name(rack: usize) -> String {
    format!("rack-{rack}")
}

/// Retries `f` up to `attempts` times, 200 ms apart; the last error if all fail.
async fn retry<T, E, F, Fut>(attempts: u32, f: F) -> Result<T, E>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut last = None;
    for _ in 0..attempts {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
        madsim::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last.expect("at least one attempt"))
}

/// One of the files on `disk` that `keep` accepts, chosen by `selector` modulo their
/// number (the fault plan's selectors resolve against the files present).
fn pick_file(disk: &SimDisk, keep: impl Fn(&str) -> bool, selector: u64) -> Option<String> {
    let files: Vec<String> = disk.file_paths().into_iter().filter(|p| keep(p)).collect();
    if files.is_empty() {
        return None;
    }
    let n = files.len() as u64;
    files.into_iter().nth((selector % n) as usize)
}
