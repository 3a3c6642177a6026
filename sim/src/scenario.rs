//! Scenarios as files (`sim/scenarios/NAME.toml`): the cluster's shape, a workload over
//! a small key space (so writes collide) and a fault schedule. A seed turns a scenario
//! into one concrete run: which fault kinds are on, when each fault starts, what it hits
//! and for how long are all drawn from it (TigerBeetle VOPR style) and printed.
//!
//! A run has two phases: *safety* (faults on; only safety is checked) and *liveness*
//! (every fault healed, then, after `recovery_secs`, every request must succeed within
//! `liveness_timeout_secs`). Final reads after quiescence close the run.
//!
//! ```toml
//! name = "crash-restart"
//! [cluster]
//! meta_nodes = 3          # 3 or 5
//! data_nodes = 16         # >= 12
//! racks = 4               # >= 4
//! gateways = 2            # 1 or 2
//! clients = 4
//! [workload]
//! keys = 5
//! safety_secs = 20.0
//! mix = { put = 30, put_if_absent = 10, get = 30, head = 10, delete = 10, list = 10 }
//! [[faults]]
//! kind = "datanode-crash"
//! probability = 0.9       # chance the kind is on for a seed
//! every_secs = [1.0, 4.0] # gap before the next fault of this kind
//! duration_secs = [0.5, 3.0]
//! [maintain]              # optional: MaintainConfig fields over the sim's values
//! dead_after_secs = 8
//! [checks]                # optional checkers
//! full_redundancy = true  # k+m fragments per stripe after the repair wait
//! gc_safety = false       # every listed version whole (fault-free GC scenarios)
//! repair_wait_secs = 60.0
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::env::{Rng, SimDiskFaults};
use meta_raft::config::MaintainConfig;
use serde::Deserialize;

use crate::planted::Planted;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub cluster: ClusterShape,
    pub workload: Workload,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// A planted bug (tests of the checkers only).
    #[serde(default)]
    pub planted: Option<Planted>,
    /// The meta nodes' maintenance loops, over the simulation's defaults
    /// (`meta_node::maintain_config`).
    #[serde(default)]
    pub maintain: MaintainOverrides,
    /// Optional checkers and how long the harness waits for them.
    #[serde(default)]
    pub checks: Checks,
}

/// `[maintain]`: fields of `MaintainConfig` to change for this scenario (the rest keep
/// the simulation's values: Down after 3 s, Dead after 60 s, GC delay 5 s, ...).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintainOverrides {
    pub down_after_secs: Option<u64>,
    pub dead_after_secs: Option<u64>,
    pub detector_tick_ms: Option<u64>,
    pub gc: Option<bool>,
    pub gc_tick_ms: Option<u64>,
    pub gc_delay_secs: Option<u64>,
    pub repair: Option<bool>,
    pub repair_tick_ms: Option<u64>,
    pub repair_concurrency: Option<u32>,
}

impl MaintainOverrides {
    /// `base` with every field this table sets replaced.
    pub fn apply(&self, base: MaintainConfig) -> MaintainConfig {
        let mut c = base;
        let set = |slot: &mut u64, v: Option<u64>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut c.down_after_secs, self.down_after_secs);
        set(&mut c.dead_after_secs, self.dead_after_secs);
        set(&mut c.detector_tick_ms, self.detector_tick_ms);
        set(&mut c.gc_tick_ms, self.gc_tick_ms);
        set(&mut c.gc_delay_secs, self.gc_delay_secs);
        set(&mut c.repair_tick_ms, self.repair_tick_ms);
        if let Some(v) = self.gc {
            c.gc = v;
        }
        if let Some(v) = self.repair {
            c.repair = v;
        }
        if let Some(v) = self.repair_concurrency {
            c.repair_concurrency = v;
        }
        c
    }

    /// The simulation's maintenance config with this table applied.
    pub fn config(&self) -> MaintainConfig {
        self.apply(crate::meta_node::maintain_config())
    }
}

/// `[checks]`: checkers a scenario turns on.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    /// `fragments`: every stripe of every current version must have all `k+m`
    /// fragments healthy after quiescence (repair must have restored what faults
    /// destroyed), not only `k`.
    #[serde(default)]
    pub full_redundancy: bool,
    /// `gc_safety`: every stripe of every version still listed has all `k+m`
    /// fragments present and verified (for scenarios without faults: a missing
    /// fragment was freed by GC while still referenced).
    #[serde(default)]
    pub gc_safety: bool,
    /// With either check on: after the final reads, the fragments are inspected every
    /// second until every stripe is whole or this much simulated time passed (repair
    /// and scrub get this long to finish).
    #[serde(default = "default_repair_wait")]
    pub repair_wait_secs: f64,
}

impl Default for Checks {
    fn default() -> Self {
        Self {
            full_redundancy: false,
            gc_safety: false,
            repair_wait_secs: default_repair_wait(),
        }
    }
}

fn default_repair_wait() -> f64 {
    60.0
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterShape {
    pub meta_nodes: usize,
    pub data_nodes: usize,
    pub racks: usize,
    pub gateways: usize,
    pub clients: usize,
    #[serde(default = "default_object_groups")]
    pub object_groups: u32,
}

fn default_object_groups() -> u32 {
    2
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Keys `k0..k{keys-1}` in one bucket.
    pub keys: usize,
    /// Cold keys `k{keys}..`: each written once when the run starts, then only read
    /// by the final reads (data that sits through the faults: what repair must save).
    #[serde(default)]
    pub cold_keys: usize,
    /// Versioning enabled on the bucket: overwrites and deletes keep the old versions
    /// (every one of them must stay whole).
    #[serde(default)]
    pub versioned: bool,
    pub safety_secs: f64,
    #[serde(default = "default_recovery")]
    pub recovery_secs: f64,
    #[serde(default = "default_liveness")]
    pub liveness_secs: f64,
    /// Bound on one request in the safety phase; past it the request is "unknown".
    #[serde(default = "default_op_timeout")]
    pub op_timeout_secs: f64,
    /// Bound on one request in the liveness phase and the final reads.
    #[serde(default = "default_liveness_timeout")]
    pub liveness_timeout_secs: f64,
    /// Pause between a client's requests, drawn per request (milliseconds).
    #[serde(default = "default_think")]
    pub think_ms: [u64; 2],
    /// How long to wait for metadata replicas to converge after the final reads.
    #[serde(default = "default_replica_wait")]
    pub replica_wait_secs: f64,
    /// Body sizes, drawn per PUT; above 4 KiB a body is erasure coded, below it is
    /// stored inline in the metadata.
    #[serde(default = "default_body")]
    pub body_bytes: [usize; 2],
    pub mix: Mix,
}

fn default_recovery() -> f64 {
    10.0
}
fn default_liveness() -> f64 {
    5.0
}
fn default_op_timeout() -> f64 {
    8.0
}
fn default_liveness_timeout() -> f64 {
    10.0
}
fn default_replica_wait() -> f64 {
    30.0
}
fn default_think() -> [u64; 2] {
    [0, 200]
}
fn default_body() -> [usize; 2] {
    [100, 6000]
}

/// Relative weights of the request kinds.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(default)]
    pub put: u32,
    #[serde(default)]
    pub put_if_absent: u32,
    #[serde(default)]
    pub get: u32,
    #[serde(default)]
    pub head: u32,
    #[serde(default)]
    pub delete: u32,
    #[serde(default)]
    pub list: u32,
    /// Multipart uploads: 2 or 3 parts when the body is long enough, one part number
    /// uploaded twice (`workload::multipart`).
    #[serde(default)]
    pub multipart: u32,
    /// Multipart uploads that upload their parts and then abort (never visible).
    #[serde(default)]
    pub multipart_abort: u32,
}

impl Mix {
    pub fn total(&self) -> u32 {
        self.put
            + self.put_if_absent
            + self.get
            + self.head
            + self.delete
            + self.list
            + self.multipart
            + self.multipart_abort
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Power loss of one data node (unsynced writes lost or torn), restarted later.
    DatanodeCrash,
    /// Power loss of one meta node, restarted later.
    MetaCrash,
    /// A gateway process killed, restarted later.
    GatewayCrash,
    /// Every data node of one rack loses power, returns later.
    RackLoss,
    /// Every node of one rack cut off the network (clogged), returns later.
    RackCutoff,
    /// The leader of a random group (root or object) cut off the network.
    LeaderIsolation,
    /// A symmetric partition: a minority of meta nodes (and some data nodes and
    /// gateways) cannot talk to the rest.
    Partition,
    /// An asymmetric partition: sides drawn like `partition`, but only the traffic from
    /// one side to the other is dropped (A hears B, B never hears A) — the case where a
    /// leader keeps sending heartbeats it never gets answers to, or gets votes it cannot
    /// answer.
    AsymmetricPartition,
    /// One random server node cut off the network.
    NodeClog,
    /// One node's wall clock skewed by up to `max_skew_secs` either way: a gateway's
    /// (`target` absent or "gateway": SigV4 window, object times), a meta node's
    /// ("meta": times its maintenance loops stamp into commands), a data node's
    /// ("data": heartbeat and damage times; the failure detector must not care), or any
    /// server's ("server").
    ClockSkew,
    /// Every node of `target` ("meta" or "data") loses power at once.
    MassCrash,
    /// One data node's disk turns bad: EIO on reads / writes / syncs, bit rot (caught by
    /// checksums), slowness, maybe full (ENOSPC), each drawn from the seed.
    DiskFaults,
    /// One random server node's process paused (no progress, connections stay open).
    Pause,
    /// Swizzle-clog: a random set of server nodes clogged one by one, then unclogged in
    /// a random order.
    SwizzleClog,
    /// Packet loss (`loss_rate`; madsim's TCP retransmits, so it shows as delay) and
    /// latency up to `latency_ms`, on every link.
    LossyNetwork,
    /// Bit rot at rest: one bit of a random fragment file on a random running data node
    /// flips in place (live and durable image), with no read involved. Only scrub or a
    /// reader's checksum finds it. Instant (`duration_secs` only spaces the events).
    DiskRot,
    /// A running data node dies for good (its disk is gone) and a new, empty data node
    /// with a new id and address joins the same rack. The old one is never restarted:
    /// the failure detector marks it Dead and repair rebuilds its fragments elsewhere.
    /// Instant; `every_secs` must leave repair time between two replacements.
    ReplaceDatanode,
    /// One meta node's disk (its Raft logs and redb state machines) turns bad for a
    /// while, drawn like `disk-faults` from the kinds `disk_kinds` allows. When the fault
    /// ends the disk is healthy again and the node's process restarts (a supervisor
    /// restarting what the bad disk may have stopped).
    MetaDiskFaults,
    /// Bit rot at rest on a meta node: the node loses power, a damaged extent of one of
    /// its redb files (a Raft log or state machine: one bit in each of 1..=64 sectors,
    /// from a non-zero byte) rots, and the node powers back on when the fault ends. It must refuse the
    /// rotten file (and stay down: a replica to replace) or, if the flip hit free space,
    /// come back whole; never serve rotten state. Plan at most `meta_nodes / 2` events.
    MetaRot,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::DatanodeCrash => "datanode-crash",
            FaultKind::MetaCrash => "meta-crash",
            FaultKind::GatewayCrash => "gateway-crash",
            FaultKind::RackLoss => "rack-loss",
            FaultKind::RackCutoff => "rack-cutoff",
            FaultKind::LeaderIsolation => "leader-isolation",
            FaultKind::Partition => "partition",
            FaultKind::AsymmetricPartition => "asymmetric-partition",
            FaultKind::NodeClog => "node-clog",
            FaultKind::ClockSkew => "clock-skew",
            FaultKind::MassCrash => "mass-crash",
            FaultKind::DiskFaults => "disk-faults",
            FaultKind::Pause => "pause",
            FaultKind::SwizzleClog => "swizzle-clog",
            FaultKind::LossyNetwork => "lossy-network",
            FaultKind::DiskRot => "disk-rot",
            FaultKind::ReplaceDatanode => "replace-datanode",
            FaultKind::MetaDiskFaults => "meta-disk-faults",
            FaultKind::MetaRot => "meta-rot",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub kind: FaultKind,
    /// Chance that this kind is on for a given seed.
    #[serde(default = "one")]
    pub probability: f64,
    /// Gap before each fault of this kind, drawn uniformly (seconds).
    pub every_secs: [f64; 2],
    /// How long each fault lasts, drawn uniformly (seconds).
    pub duration_secs: [f64; 2],
    /// `clock-skew`: the largest offset.
    #[serde(default)]
    pub max_skew_secs: Option<f64>,
    /// `mass-crash`: "meta" or "data"; `clock-skew`: "gateway" (default), "meta",
    /// "data" or "server".
    #[serde(default)]
    pub target: Option<String>,
    /// `disk-faults` / `meta-disk-faults`: the fault kinds a bad disk may show, among
    /// "eio" (read / write / sync errors), "rot" (bit rot on reads), "slow" and "full"
    /// (ENOSPC); default all.
    #[serde(default)]
    pub disk_kinds: Option<Vec<String>>,
    /// `lossy-network`: the largest packet loss rate drawn (default 0.2).
    #[serde(default)]
    pub loss_rate: Option<f64>,
    /// `lossy-network`: the largest one-way latency drawn, in ms (default 50).
    #[serde(default)]
    pub latency_ms: Option<u64>,
}

fn one() -> f64 {
    1.0
}

/// Which server node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeRef {
    Meta(usize),
    Data(usize),
    Gateway(usize),
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeRef::Meta(i) => write!(f, "meta-{}", i + 1),
            NodeRef::Data(i) => write!(f, "data-{}", i + 1),
            NodeRef::Gateway(i) => write!(f, "gateway-{}", i + 1),
        }
    }
}

/// What one fault does, fully drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultAction {
    Crash(NodeRef),
    Kill(NodeRef),
    RackLoss(usize),
    RackCutoff(usize),
    /// The leader of this group at the time the fault starts.
    IsolateLeader(u64),
    /// Links between the two sides clogged both ways.
    Partition(Vec<NodeRef>, Vec<NodeRef>),
    /// Links from the first side to the second clogged (that direction only).
    OneWay(Vec<NodeRef>, Vec<NodeRef>),
    Clog(NodeRef),
    /// A node's wall clock moved by this many milliseconds.
    Skew(NodeRef, i64),
    MassCrashMeta,
    MassCrashData,
    /// A data node's disk fault profile; `enospc`: capacity set just above its use.
    DiskFaults(usize, SimDiskFaults, bool),
    /// The same for a meta node's disk.
    MetaDiskFaults(usize, SimDiskFaults, bool),
    Pause(NodeRef),
    /// Loss rate and latency range (ms).
    LossyNetwork(f64, u64, u64),
    /// Bit rot at rest, drawn as selectors resolved when the fault starts (which files
    /// exist depends on the run): the data node among the running ones, the fragment
    /// file among its files, the byte offset, the bit.
    Rot {
        node: u64,
        file: u64,
        offset: u64,
        bit: u8,
    },
    /// Replace a running data node (selector among them, resolved when the fault
    /// starts) by a new empty one in its rack.
    Replace(u64),
    /// Bit rot at rest on meta node `node` (powered off meanwhile): selectors for the
    /// redb file and the non-zero byte, and the bit.
    MetaRot {
        node: usize,
        file: u64,
        offset: u64,
        bit: u8,
    },
}

impl fmt::Display for FaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultAction::Crash(n) => write!(f, "power loss of {n}"),
            FaultAction::Kill(n) => write!(f, "kill {n}"),
            FaultAction::RackLoss(r) => write!(f, "power loss of rack-{r}"),
            FaultAction::RackCutoff(r) => write!(f, "rack-{r} cut off"),
            FaultAction::IsolateLeader(g) => write!(f, "isolate the leader of group {g}"),
            FaultAction::Partition(a, b) => {
                let names = |v: &[NodeRef]| {
                    v.iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                write!(f, "partition {{{}}} | {{{}}}", names(a), names(b))
            }
            FaultAction::OneWay(a, b) => {
                let names = |v: &[NodeRef]| {
                    v.iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                write!(
                    f,
                    "one-way partition {{{}}} -/-> {{{}}}",
                    names(a),
                    names(b)
                )
            }
            FaultAction::Clog(n) => write!(f, "clog {n}"),
            FaultAction::Skew(n, ms) => write!(f, "skew {n} by {ms} ms"),
            FaultAction::MassCrashMeta => write!(f, "power loss of every meta node"),
            FaultAction::MassCrashData => write!(f, "power loss of every data node"),
            FaultAction::DiskFaults(i, d, enospc) => {
                write!(f, "bad disk on data-{}: {}", i + 1, DiskProfile(d, *enospc))
            }
            FaultAction::MetaDiskFaults(i, d, enospc) => {
                write!(f, "bad disk on meta-{}: {}", i + 1, DiskProfile(d, *enospc))
            }
            FaultAction::Pause(n) => write!(f, "pause {n}"),
            FaultAction::LossyNetwork(loss, lo, hi) => {
                write!(f, "network: loss {loss:.3}, latency {lo}..{hi} ms")
            }
            FaultAction::Rot {
                node,
                file,
                offset,
                bit,
            } => write!(
                f,
                "bit rot at rest: node #{node}, file #{file}, byte #{offset}, bit {bit}"
            ),
            FaultAction::Replace(n) => write!(f, "replace data node #{n} by a new one"),
            FaultAction::MetaRot {
                node,
                file,
                offset,
                bit,
            } => write!(
                f,
                "power loss of meta-{} with bit rot at rest: file #{file}, byte #{offset}, bit {bit}",
                node + 1
            ),
        }
    }
}

/// A bad disk's profile, as the fault log prints it.
struct DiskProfile<'a>(&'a SimDiskFaults, bool);

impl fmt::Display for DiskProfile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "EIO read {:.4} write {:.4} sync {:.4}, bit rot {:.4}, latency {:?}..{:?}{}",
            d.read_error_prob,
            d.write_error_prob,
            d.sync_error_prob,
            d.bit_rot_prob,
            d.latency_min,
            d.latency_max,
            if self.1 { ", full" } else { "" }
        )
    }
}

/// One scheduled fault: starts at `at_ms`, healed at `at_ms + dur_ms` (simulated time
/// since the safety phase began).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultEvent {
    pub at_ms: u64,
    pub dur_ms: u64,
    pub kind: FaultKind,
    pub action: FaultAction,
}

/// A scenario made concrete by a seed.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    /// Every parameter drawn, as `name=value`, in drawing order.
    pub params: Vec<(String, String)>,
    pub schedule: Vec<FaultEvent>,
}

impl Plan {
    /// Human-readable lines: every drawn parameter, then the fault schedule.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("param {k}={v}"))
            .collect();
        for e in &self.schedule {
            out.push(format!(
                "fault at {:.3}s for {:.3}s: {} ({})",
                e.at_ms as f64 / 1000.0,
                e.dur_ms as f64 / 1000.0,
                e.action,
                e.kind.name()
            ));
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("parsing {0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("{0}: {1}")]
    Invalid(String, String),
}

/// The folder holding the scenario files.
pub fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

impl Scenario {
    /// Loads `sim/scenarios/NAME.toml`.
    pub fn load(name: &str) -> Result<Self, ScenarioError> {
        Self::load_path(&scenario_dir().join(format!("{name}.toml")))
    }

    pub fn load_path(path: &Path) -> Result<Self, ScenarioError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ScenarioError::Read(path.into(), e))?;
        let s: Scenario =
            toml::from_str(&text).map_err(|e| ScenarioError::Parse(path.into(), e))?;
        s.validate()?;
        Ok(s)
    }

    /// Every scenario file's name, sorted.
    pub fn names() -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(scenario_dir())
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()
                            .and_then(|n| n.strip_suffix(".toml"))
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: &str| Err(ScenarioError::Invalid(self.name.clone(), m.to_owned()));
        let c = &self.cluster;
        if c.meta_nodes != 3 && c.meta_nodes != 5 {
            return bad("cluster.meta_nodes must be 3 or 5");
        }
        if c.data_nodes < 12 {
            return bad("cluster.data_nodes must be at least 12 (8+4)");
        }
        if c.racks < 4 || c.racks > c.data_nodes {
            return bad("cluster.racks must be at least 4 and at most data_nodes");
        }
        if c.gateways == 0 || c.gateways > 2 {
            return bad("cluster.gateways must be 1 or 2");
        }
        if c.clients == 0 {
            return bad("cluster.clients must be at least 1");
        }
        let w = &self.workload;
        if w.keys == 0 {
            return bad("workload.keys must be at least 1");
        }
        let m = &w.mix;
        if m.total() == 0 {
            return bad("workload.mix is all zero");
        }
        if w.think_ms[0] > w.think_ms[1] || w.body_bytes[0] > w.body_bytes[1] {
            return bad("workload ranges must be [low, high]");
        }
        for f in &self.faults {
            if f.every_secs[0] > f.every_secs[1]
                || f.duration_secs[0] > f.duration_secs[1]
                || f.every_secs[0] <= 0.0
            {
                return bad("faults: every_secs / duration_secs must be [low, high], low > 0");
            }
            if f.kind == FaultKind::MassCrash
                && !matches!(f.target.as_deref(), Some("meta") | Some("data"))
            {
                return bad("faults: mass-crash needs target = \"meta\" or \"data\"");
            }
            if f.kind == FaultKind::ClockSkew
                && !matches!(
                    f.target.as_deref(),
                    None | Some("gateway") | Some("meta") | Some("data") | Some("server")
                )
            {
                return bad("faults: clock-skew target must be gateway, meta, data or server");
            }
            if let Some(kinds) = &f.disk_kinds {
                if kinds
                    .iter()
                    .any(|k| !matches!(k.as_str(), "eio" | "rot" | "slow" | "full"))
                {
                    return bad("faults: disk_kinds are among eio, rot, slow, full");
                }
            }
            // Each meta-rot may leave a meta node down for good: a majority must remain.
            if f.kind == FaultKind::MetaRot {
                let (mut t, mut events) = (f.every_secs[0], 0usize);
                while t < w.safety_secs {
                    events += 1;
                    t += f.every_secs[0] + f.duration_secs[0];
                }
                if events > c.meta_nodes / 2 {
                    return bad("faults: meta-rot could hit more than a minority of the meta nodes (raise every_secs)");
                }
            }
            // Data node addresses are 10.0.3.1..=10.0.3.250, one per node ever started.
            if f.kind == FaultKind::ReplaceDatanode
                && c.data_nodes as f64 + w.safety_secs / f.every_secs[0] > 250.0
            {
                return bad("faults: replace-datanode would start more than 250 data nodes");
            }
        }
        if let Err(e) = self.maintain.config().validate("scenario") {
            return bad(&e.to_string());
        }
        if self.checks.repair_wait_secs < 0.0 {
            return bad("checks.repair_wait_secs must not be negative");
        }
        Ok(())
    }

    /// Draws every parameter of a run from `seed`.
    pub fn plan(&self, seed: u64) -> Plan {
        let mut rng = Rng::new(seed ^ 0x7363_656e_6172_696f);
        let mut params: Vec<(String, String)> = Vec::new();
        let c = &self.cluster;
        let w = &self.workload;
        params.push(("scenario".into(), self.name.clone()));
        params.push(("seed".into(), seed.to_string()));
        params.push((
            "cluster".into(),
            format!(
                "{} meta, {} data in {} racks, {} gateways, {} clients, {} object groups",
                c.meta_nodes, c.data_nodes, c.racks, c.gateways, c.clients, c.object_groups
            ),
        ));
        params.push((
            "workload".into(),
            format!(
                "{} keys (+{} cold){}, safety {}s, recovery {}s, liveness {}s, op timeout {}s/{}s, body {:?} B, think {:?} ms",
                w.keys,
                w.cold_keys,
                if w.versioned { ", versioned" } else { "" },
                w.safety_secs,
                w.recovery_secs,
                w.liveness_secs,
                w.op_timeout_secs,
                w.liveness_timeout_secs,
                w.body_bytes,
                w.think_ms
            ),
        ));
        if let Some(p) = self.planted {
            params.push(("planted".into(), p.name().into()));
        }
        let mc = self.maintain.config();
        params.push((
            "maintain".into(),
            format!(
                "down {}s, dead {}s, gc {} delay {}s, repair {} tick {}ms",
                mc.down_after_secs,
                mc.dead_after_secs,
                mc.gc,
                mc.gc_delay_secs,
                mc.repair,
                mc.repair_tick_ms
            ),
        ));
        let ch = &self.checks;
        if ch.full_redundancy || ch.gc_safety {
            params.push((
                "checks".into(),
                format!(
                    "full redundancy {}, gc safety {}, repair wait {}s",
                    ch.full_redundancy, ch.gc_safety, ch.repair_wait_secs
                ),
            ));
        }
        let safety_ms = (w.safety_secs * 1000.0) as u64;
        let mut schedule = Vec::new();
        for (i, f) in self.faults.iter().enumerate() {
            let on = rng.chance(f.probability);
            params.push((format!("fault[{i}].{}", f.kind.name()), on.to_string()));
            if !on {
                continue;
            }
            let mut t = draw_ms(&mut rng, f.every_secs);
            while t < safety_ms {
                let dur = draw_ms(&mut rng, f.duration_secs).min(safety_ms - t);
                if f.kind == FaultKind::SwizzleClog {
                    schedule.extend(self.swizzle(t, dur, &mut rng));
                } else {
                    let action = self.draw_action(f, &mut rng);
                    schedule.push(FaultEvent {
                        at_ms: t,
                        dur_ms: dur,
                        kind: f.kind,
                        action,
                    });
                }
                t += dur + draw_ms(&mut rng, f.every_secs);
            }
        }
        schedule.sort_by_key(|a| (a.at_ms, a.kind));
        Plan {
            seed,
            params,
            schedule,
        }
    }

    /// Swizzle-clog over [t, t + dur]: clog a random set of server nodes one by one in
    /// the first half, unclog them in a (different) random order in the second half.
    fn swizzle(&self, t: u64, dur: u64, rng: &mut Rng) -> Vec<FaultEvent> {
        let mut nodes = self.servers();
        let count = 1 + rng.below(nodes.len().min(6) as u64) as usize;
        let mut picked = Vec::new();
        for _ in 0..count {
            let i = rng.below(nodes.len() as u64) as usize;
            picked.push(nodes.remove(i));
        }
        let mut order: Vec<usize> = (0..count).collect();
        for i in (1..count).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        let half = dur / 2;
        let step = half / count as u64;
        let mut unclog_at = vec![0u64; count];
        for (rank, &i) in order.iter().enumerate() {
            unclog_at[i] = t + half + rank as u64 * step;
        }
        picked
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                let at = t + i as u64 * step;
                FaultEvent {
                    at_ms: at,
                    dur_ms: unclog_at[i].max(at + 1) - at,
                    kind: FaultKind::SwizzleClog,
                    action: FaultAction::Clog(n),
                }
            })
            .collect()
    }

    fn servers(&self) -> Vec<NodeRef> {
        let c = &self.cluster;
        (0..c.meta_nodes)
            .map(NodeRef::Meta)
            .chain((0..c.data_nodes).map(NodeRef::Data))
            .chain((0..c.gateways).map(NodeRef::Gateway))
            .collect()
    }

    /// Two sides for a partition: a minority of meta nodes on side B, with some data
    /// nodes and maybe a gateway; clients reach every side.
    fn draw_sides(&self, rng: &mut Rng) -> (Vec<NodeRef>, Vec<NodeRef>) {
        let c = &self.cluster;
        let pick = |rng: &mut Rng, n: usize| rng.below(n as u64) as usize;
        let minority = 1 + pick(rng, (c.meta_nodes - 1) / 2);
        let mut metas: Vec<usize> = (0..c.meta_nodes).collect();
        let mut b = Vec::new();
        for _ in 0..minority {
            let i = pick(rng, metas.len());
            b.push(NodeRef::Meta(metas.remove(i)));
        }
        let mut a: Vec<NodeRef> = metas.into_iter().map(NodeRef::Meta).collect();
        for d in 0..c.data_nodes {
            if rng.chance(0.25) {
                b.push(NodeRef::Data(d));
            } else {
                a.push(NodeRef::Data(d));
            }
        }
        for g in 0..c.gateways {
            if c.gateways > 1 && rng.chance(0.5) {
                b.push(NodeRef::Gateway(g));
            } else {
                a.push(NodeRef::Gateway(g));
            }
        }
        a.sort();
        b.sort();
        (a, b)
    }

    fn draw_action(&self, f: &FaultSpec, rng: &mut Rng) -> FaultAction {
        let c = &self.cluster;
        let pick = |rng: &mut Rng, n: usize| rng.below(n as u64) as usize;
        match f.kind {
            FaultKind::DatanodeCrash => FaultAction::Crash(NodeRef::Data(pick(rng, c.data_nodes))),
            FaultKind::MetaCrash => FaultAction::Crash(NodeRef::Meta(pick(rng, c.meta_nodes))),
            FaultKind::GatewayCrash => FaultAction::Kill(NodeRef::Gateway(pick(rng, c.gateways))),
            FaultKind::RackLoss => FaultAction::RackLoss(pick(rng, c.racks)),
            FaultKind::RackCutoff => FaultAction::RackCutoff(pick(rng, c.racks)),
            FaultKind::LeaderIsolation => {
                FaultAction::IsolateLeader(rng.below(u64::from(c.object_groups) + 1))
            }
            FaultKind::Partition => {
                let (a, b) = self.draw_sides(rng);
                FaultAction::Partition(a, b)
            }
            FaultKind::AsymmetricPartition => {
                // Which way the traffic stops is drawn too: from the majority side to
                // the minority, or back.
                let (a, b) = self.draw_sides(rng);
                if rng.chance(0.5) {
                    FaultAction::OneWay(a, b)
                } else {
                    FaultAction::OneWay(b, a)
                }
            }
            // (A swizzle is expanded into clogs by `swizzle`.)
            FaultKind::NodeClog | FaultKind::SwizzleClog => {
                let servers = self.servers();
                FaultAction::Clog(servers[pick(rng, servers.len())])
            }
            FaultKind::Pause => {
                let servers = self.servers();
                FaultAction::Pause(servers[pick(rng, servers.len())])
            }
            FaultKind::DiskFaults => {
                let (faults, enospc) = draw_disk(f, rng);
                FaultAction::DiskFaults(pick(rng, c.data_nodes), faults, enospc)
            }
            FaultKind::MetaDiskFaults => {
                let (faults, enospc) = draw_disk(f, rng);
                FaultAction::MetaDiskFaults(pick(rng, c.meta_nodes), faults, enospc)
            }
            FaultKind::LossyNetwork => {
                let max_loss = f.loss_rate.unwrap_or(0.2);
                let loss = rng.unit_f64() * max_loss;
                let hi = rng.range_inclusive(10, f.latency_ms.unwrap_or(50).max(10));
                FaultAction::LossyNetwork(loss, 1, hi)
            }
            FaultKind::ClockSkew => {
                let max_ms = (f.max_skew_secs.unwrap_or(300.0) * 1000.0) as u64;
                let off = rng.range_inclusive(0, 2 * max_ms) as i64 - max_ms as i64;
                let node = match f.target.as_deref() {
                    Some("meta") => NodeRef::Meta(pick(rng, c.meta_nodes)),
                    Some("data") => NodeRef::Data(pick(rng, c.data_nodes)),
                    Some("server") => {
                        let servers = self.servers();
                        servers[pick(rng, servers.len())]
                    }
                    _ => NodeRef::Gateway(pick(rng, c.gateways)),
                };
                FaultAction::Skew(node, off)
            }
            FaultKind::MassCrash => match f.target.as_deref() {
                Some("meta") => FaultAction::MassCrashMeta,
                _ => FaultAction::MassCrashData,
            },
            FaultKind::DiskRot => FaultAction::Rot {
                node: rng.next_u64(),
                file: rng.next_u64(),
                offset: rng.next_u64(),
                bit: rng.below(8) as u8,
            },
            FaultKind::ReplaceDatanode => FaultAction::Replace(rng.next_u64()),
            FaultKind::MetaRot => FaultAction::MetaRot {
                node: pick(rng, c.meta_nodes),
                file: rng.next_u64(),
                offset: rng.next_u64(),
                bit: rng.below(8) as u8,
            },
        }
    }
}

/// A bad disk's profile: each kind the spec allows is on with some chance and, where
/// on, its rate is drawn too. (Every draw happens whatever is allowed, so the kinds
/// allowed do not shift the rest of the plan.)
fn draw_disk(f: &FaultSpec, rng: &mut Rng) -> (SimDiskFaults, bool) {
    let allowed = |k: &str| {
        f.disk_kinds
            .as_ref()
            .is_none_or(|v| v.iter().any(|x| x == k))
    };
    let (eio, rot, slow_ok, full) = (
        allowed("eio"),
        allowed("rot"),
        allowed("slow"),
        allowed("full"),
    );
    let mut maybe = |on: f64, max: f64, ok: bool| {
        let v = if rng.chance(on) {
            rng.unit_f64() * max
        } else {
            0.0
        };
        if ok {
            v
        } else {
            0.0
        }
    };
    let read_error_prob = maybe(0.6, 0.05, eio);
    let write_error_prob = maybe(0.6, 0.05, eio);
    let sync_error_prob = maybe(0.4, 0.02, eio);
    let bit_rot_prob = maybe(0.4, 0.01, rot);
    let slow = rng.chance(0.4);
    let (lo, extra) = if slow {
        let lo = rng.range_inclusive(500, 5_000);
        (lo, rng.range_inclusive(0, 50_000))
    } else {
        (0, 0)
    };
    let (lo, extra) = if slow_ok { (lo, extra) } else { (0, 0) };
    let latency_min = Duration::from_micros(lo);
    let latency_max = latency_min + Duration::from_micros(extra);
    let enospc = rng.chance(0.2) && full;
    (
        SimDiskFaults {
            read_error_prob,
            write_error_prob,
            sync_error_prob,
            bit_rot_prob,
            latency_min,
            latency_max,
            ..SimDiskFaults::default()
        },
        enospc,
    )
}

fn draw_ms(rng: &mut Rng, range: [f64; 2]) -> u64 {
    let lo = (range[0] * 1000.0) as u64;
    let hi = (range[1] * 1000.0) as u64;
    rng.range_inclusive(lo, hi.max(lo))
}
