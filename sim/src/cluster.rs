//! `SimCluster`: a whole Shale cluster as madsim nodes — meta nodes, data nodes in
//! racks, gateways serving S3 over simulated TCP, client nodes — and the fault levers a
//! scenario pulls: power loss and restart of a node or a rack (disks drop unsynced
//! writes), network clogs of a node, a link or a partition (madsim's `NetSim`), and
//! per-gateway clock skew (through `common::env::Clock`).
//!
//! Faults nest: every lever counts, so two overlapping faults on one node (a crash and
//! a rack loss) restore it only when both have ended.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::cluster::{check_placement, Placement};
use common::cluster::{DiskInfo, DiskState, NodeInfo, NodeState};
use common::env::{Disk, Env, SimDisk, SimDiskFaults};
use common::ids::{DiskId, FragmentId, GroupId, NodeId, RackId};
use gateway::client::S3Client;
use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle};
use meta_raft::client::MetaClient;
use meta_raft::state_machine::AccessKey;
use meta_raft::state_machine::CurrentVersion;
use meta_raft::state_machine::ObjectBody;

use crate::checker::fragments::StripeHealth;
use crate::checker::replicas::ReplicaState;
use crate::datanode_node::SimDatanode;
use crate::gateway_node::SimGateway;
use crate::history::Fnv;
use crate::meta_node::{meta_config, SimMetaNode};
use crate::planted::{FsyncLies, MisdirectedReads, Planted};
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
    down: BTreeMap<NodeRef, u32>,
    clogged: BTreeMap<NodeRef, u32>,
    links: BTreeMap<(NodeRef, NodeRef), u32>,
    paused: BTreeMap<NodeRef, u32>,
}

impl SimCluster {
    /// Creates every node (they start serving at once). Call `bootstrap` next.
    pub fn start(env: &Env, shape: &ClusterShape, planted: Option<Planted>) -> Self {
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
                let config = meta_config(id, &meta_ips, shape.object_groups);
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
                let faults = if planted == Some(Planted::DatanodeFsyncLies) {
                    lying_faults.clone()
                } else {
                    SimDiskFaults::default()
                };
                let disk = SimDisk::new(env.random_u64(), faults);
                let served: Arc<dyn Disk> = match planted {
                    Some(Planted::DatanodeFsyncLies) => FsyncLies::new(disk.clone(), lying.clone()),
                    Some(Planted::MisdirectedReads) => {
                        MisdirectedReads::new(disk.clone(), lying.clone())
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
            base_faults: if planted == Some(Planted::DatanodeFsyncLies) {
                lying_faults
            } else {
                SimDiskFaults::default()
            },
            down: BTreeMap::new(),
            clogged: BTreeMap::new(),
            links: BTreeMap::new(),
            paused: BTreeMap::new(),
        }
    }

    /// What an operator does once: registers the data nodes in the cluster map,
    /// creates the access key and the bucket. Bounded waits; an error names the step.
    pub async fn bootstrap(&self) -> Result<(), String> {
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

    /// The data nodes of a rack.
    pub fn rack(&self, rack: usize) -> Vec<NodeRef> {
        (0..self.shape.data_nodes)
            .filter(|i| i % self.shape.racks == rack)
            .map(NodeRef::Data)
            .collect()
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

    pub fn power_restore(&mut self, n: NodeRef) {
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
        for i in 0..self.gateways.len() {
            self.skew_gateway(i, 0);
        }
        for i in 0..self.datanodes.len() {
            self.disk_healthy(i);
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

    /// The health of every stripe of the current version of keys `k0..k{keys-1}`: its
    /// fragments stat'ed with every block verified, its placement checked against the
    /// rack rule. From the admin node; `Err` if the metadata could not be read.
    pub async fn stripe_health(&self, keys: usize) -> Result<Vec<StripeHealth>, String> {
        let seeds: Vec<String> = self.metas.iter().map(|m| m.addr.to_string()).collect();
        self.admin
            .spawn(async move {
                let meta = MetaClient::connect(seeds, "sim")
                    .await
                    .map_err(|e| format!("meta client: {e}"))?;
                let map = meta
                    .cluster_map()
                    .await
                    .map_err(|e| format!("cluster map: {e}"))?;
                let mut out = Vec::new();
                for i in 0..keys {
                    let key = crate::workload::key_name(i);
                    let current = meta
                        .head_object(BUCKET, &key)
                        .await
                        .map_err(|e| format!("head {key}: {e}"))?;
                    let CurrentVersion::Object(v) = current else {
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
                        for (i, loc) in stripe.placement.iter().enumerate() {
                            let Some(node) = map.node(loc.node) else {
                                continue;
                            };
                            let id = FragmentId {
                                stripe: stripe.id,
                                index: u8::try_from(i).unwrap_or(u8::MAX),
                            };
                            if fragment_ok(&node.addr, id, loc.disk.0).await {
                                healthy += 1;
                            }
                        }
                        out.push(StripeHealth {
                            key: key.clone(),
                            stripe: format!("{}", stripe.id),
                            k: codec.k,
                            m: codec.m,
                            healthy,
                            placement_error,
                        });
                    }
                }
                Ok(out)
            })
            .await
            .map_err(|e| format!("inspection task: {e}"))?
    }

    /// Turns the planted bug on or off.
    pub fn set_lying(&self, on: bool) {
        self.lying.store(on, Ordering::Relaxed);
    }
}

/// Whether data node `addr` holds fragment `id` on `disk` and every block verifies.
async fn fragment_ok(addr: &str, id: FragmentId, disk: u32) -> bool {
    use proto::datanode::datanode_service_client::DatanodeServiceClient;
    let Ok(mut c) = DatanodeServiceClient::connect(format!("http://{addr}")).await else {
        return false;
    };
    let req = proto::datanode::StatFragmentRequest {
        id: Some(id.into()),
        disk,
        verify: true,
    };
    matches!(
        madsim::time::timeout(Duration::from_secs(5), c.stat_fragment(req)).await,
        Ok(Ok(_))
    )
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
