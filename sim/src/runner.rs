//! Runs one scenario for one seed inside a fresh madsim runtime: builds the cluster,
//! starts the clients, plays the fault schedule during the safety phase, heals
//! everything, lets the cluster recover, runs the liveness phase, makes the final reads
//! and hands the history to the checkers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::env::Env;

use crate::checker::fragments::StripeHealth;
use crate::checker::replicas::ReplicaState;
use crate::checker::Violations;
use crate::cluster::SimCluster;
use crate::history::Phase;
use crate::history::{Fnv, History};
use crate::planted::Planted;
use crate::scenario::{FaultAction, NodeRef, Plan, Scenario};
use crate::workload::{final_reads, perform, Client, Recorder, Timeline};

/// Everything a run produced.
#[derive(Debug)]
pub struct RunReport {
    pub scenario: String,
    pub seed: u64,
    pub plan: Plan,
    pub history: History,
    /// What the fault driver did, with simulated times.
    pub fault_log: Vec<String>,
    pub violations: Violations,
    /// FNV-1a of the history and the fault log: equal for two runs of one seed.
    pub trace_hash: u64,
    /// Simulated seconds from the first request to the last final read.
    pub sim_secs: f64,
}

impl RunReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// One line: the run's outcome.
    pub fn summary(&self) -> String {
        let c = self.history.counts();
        format!(
            "{} scenario={} seed={} ops={} ok={} failed={} unknown={} faults={} sim={:.1}s trace={:016x} {}",
            if self.passed() { "PASS" } else { "FAIL" },
            self.scenario,
            self.seed,
            c.total,
            c.ok,
            c.failed,
            c.unknown,
            self.plan.schedule.len(),
            self.sim_secs,
            self.trace_hash,
            self.violations.summary()
        )
    }

    /// Drawn parameters, fault log, violations (with the ops they name), summary.
    pub fn details(&self) -> String {
        let mut s = String::new();
        for l in self.plan.lines() {
            let _ = writeln!(s, "{l}");
        }
        for l in &self.fault_log {
            let _ = writeln!(s, "{l}");
        }
        for l in self.violations.lines() {
            let _ = writeln!(s, "VIOLATION {l}");
        }
        let _ = writeln!(s, "{}", self.summary());
        s
    }
}

/// Runs `scenario` with `seed` in a new simulated world.
pub fn run(scenario: &Scenario, seed: u64) -> RunReport {
    let plan = scenario.plan(seed);
    let w = &scenario.workload;
    // Product bugs are planted per thread; a run starts with none (and ends with none).
    common::env::planted::clear();
    let mut rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    // A hung run fails instead of spinning forever.
    let limit = w.safety_secs + w.recovery_secs + w.liveness_secs + 600.0;
    rt.set_time_limit(Duration::from_secs_f64(limit));
    let sc = scenario.clone();
    let p = plan.clone();
    let (history, fault_log, replicas, stripes, sim_secs) =
        rt.block_on(async move { drive(&sc, &p).await });
    common::env::planted::clear();
    let mut violations = Violations::check(&history);
    violations.replicas = crate::checker::replicas::check(&replicas);
    violations.fragments =
        crate::checker::fragments::check(&stripes, scenario.checks.full_redundancy);
    if scenario.checks.gc_safety {
        violations.gc_safety = crate::checker::gc_safety::check(&stripes);
    }
    let mut h = Fnv::new();
    h.write(&history.trace_hash().to_le_bytes());
    for l in &fault_log {
        h.write(l.as_bytes());
    }
    RunReport {
        scenario: scenario.name.clone(),
        seed,
        plan,
        history,
        fault_log,
        violations,
        trace_hash: h.finish(),
        sim_secs,
    }
}

/// Nodes a fault took down or cut off, to undo at its end.
enum Undo {
    Restore(Vec<NodeRef>),
    Unclog(Vec<NodeRef>),
    Heal(Vec<NodeRef>, Vec<NodeRef>),
    HealOneWay(Vec<NodeRef>, Vec<NodeRef>),
    Unskew(NodeRef),
    DiskHealthy(usize),
    MetaDiskHealthy(usize),
    Resume(NodeRef),
    Network,
    Nothing,
}

async fn drive(
    sc: &Scenario,
    plan: &Plan,
) -> (
    History,
    Vec<String>,
    Vec<ReplicaState>,
    Vec<StripeHealth>,
    f64,
) {
    let env = Env::seeded(plan.seed);
    let w = &sc.workload;
    let mut cluster = SimCluster::start_with(&env, &sc.cluster, sc.planted, sc.maintain.config());
    if let Err(e) = cluster.bootstrap_with(w.versioned).await {
        panic!(
            "scenario {} seed {}: bootstrap failed: {e}",
            sc.name, plan.seed
        );
    }
    if let Some(p) = sc.planted {
        cluster.set_lying(true);
        p.set_product_bug(true);
    }
    let clock = env.clock().clone();
    let origin = clock.now();
    let safety_end = origin + Duration::from_secs_f64(w.safety_secs);
    let liveness_start = safety_end + Duration::from_secs_f64(w.recovery_secs);
    let timeline = Timeline {
        origin,
        safety_end,
        liveness_start,
        liveness_end: liveness_start + Duration::from_secs_f64(w.liveness_secs),
    };
    let recorder: Recorder = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..sc.cluster.clients)
        .map(|i| {
            let cenv = env.fork();
            let client = Client {
                id: i as u32,
                s3: (0..sc.cluster.gateways)
                    .map(|g| cluster.s3_client(g, &cenv))
                    .collect(),
                env: cenv,
                workload: w.clone(),
                timeline,
                recorder: Arc::clone(&recorder),
                corrupt_gets: sc.planted == Some(Planted::CorruptResponses),
            };
            cluster.clients[i].spawn(client.run())
        })
        .collect();

    // Cold keys, written once as the run starts (by one more client).
    let preload = (w.cold_keys > 0).then(|| {
        let penv = env.fork();
        let s3 = cluster.s3_client(0, &penv);
        let rec = Arc::clone(&recorder);
        let (keys, cold, body) = (w.keys, w.cold_keys, w.body_bytes);
        let id = sc.cluster.clients as u32;
        let timeout = Duration::from_secs_f64(w.op_timeout_secs);
        cluster.clients[0].spawn(async move {
            for i in keys..keys + cold {
                let len = penv.with_rng(|r| r.range_inclusive(body[0] as u64, body[1] as u64));
                let req = crate::history::Request::Put {
                    key: crate::workload::key_name(i),
                    wid: (u64::from(id) + 1) << 32 | (i - keys + 1) as u64,
                    len: len as usize,
                };
                perform(&s3, id, &timeline, &rec, req, Phase::Safety, timeout).await;
            }
        })
    });

    // The fault schedule: (time, is_end, event index), starts before ends at one instant.
    let mut actions: Vec<(u64, bool, usize)> = Vec::new();
    for (i, e) in plan.schedule.iter().enumerate() {
        actions.push((e.at_ms, false, i));
        actions.push((e.at_ms + e.dur_ms, true, i));
    }
    actions.sort();
    let mut undo: BTreeMap<usize, Undo> = BTreeMap::new();
    let mut log = Vec::new();
    for (t, is_end, i) in actions {
        clock.sleep_until(origin + Duration::from_millis(t)).await;
        let e = &plan.schedule[i];
        let stamp = format!("{:.3}s", t as f64 / 1000.0);
        if is_end {
            match undo.remove(&i).unwrap_or(Undo::Nothing) {
                Undo::Restore(ns) => ns.into_iter().for_each(|n| cluster.power_restore(n)),
                Undo::Unclog(ns) => ns.into_iter().for_each(|n| cluster.unclog(n)),
                Undo::Heal(a, b) => cluster.heal_partition(&a, &b),
                Undo::HealOneWay(a, b) => cluster.heal_one_way(&a, &b),
                Undo::Unskew(n) => cluster.skew(n, 0),
                Undo::DiskHealthy(d) => cluster.disk_healthy(d),
                Undo::MetaDiskHealthy(m) => cluster.meta_disk_healthy(m),
                Undo::Resume(n) => cluster.resume(n),
                Undo::Network => cluster.set_network(None),
                Undo::Nothing => {}
            }
            log.push(format!("t={stamp} end: {}", e.action));
            continue;
        }
        let (u, note) = start_fault(&mut cluster, &e.action).await;
        undo.insert(i, u);
        log.push(format!("t={stamp} start: {}{note}", e.action));
    }
    clock.sleep_until(safety_end).await;
    cluster.heal_all();
    cluster.set_lying(false);
    if let Some(p) = sc.planted {
        p.set_product_bug(false);
    }
    // The operator replaces every meta node that refuses its (rotten) disk.
    for i in 0..cluster.metas.len() {
        if cluster.metas[i].node().is_none() && cluster.metas[i].refuses_its_disk() {
            let note = cluster.replace_meta(i).await;
            log.push(format!(
                "t={:.3}s {note}",
                clock.now().duration_since(origin).as_secs_f64()
            ));
        }
    }
    log.push(format!("t={:.3}s healed", w.safety_secs));
    if sc.planted == Some(Planted::UnhealedMajority) {
        for i in 0..=cluster.metas.len() / 2 {
            cluster.power_loss(NodeRef::Meta(i));
            log.push(format!(
                "t={:.3}s planted: meta-{} stays dead",
                w.safety_secs,
                i + 1
            ));
        }
    }
    for c in clients.into_iter().chain(preload) {
        let _ = c.await;
    }
    let fenv = env.fork();
    let s3: Vec<_> = (0..sc.cluster.gateways)
        .map(|g| cluster.s3_client(g, &fenv))
        .collect();
    let keys = w.keys + w.cold_keys;
    let bound = Duration::from_secs_f64(w.liveness_timeout_secs);
    let rec = Arc::clone(&recorder);
    let _ = cluster.clients[0]
        .spawn(async move { final_reads(&s3, keys, &timeline, &rec, bound).await })
        .await;
    let sim_secs = clock.now().duration_since(origin).as_secs_f64();
    // Every committed stripe: >= k healthy fragments, placed by the rack rule; with
    // full redundancy or GC safety checked, k+m after at most `repair_wait_secs`.
    let (inspected, note) = if sc.checks.full_redundancy || sc.checks.gc_safety {
        cluster
            .stripe_health_settled(Duration::from_secs_f64(sc.checks.repair_wait_secs))
            .await
    } else {
        (cluster.stripe_health().await, String::new())
    };
    let stripes = match inspected {
        Ok(s) => s,
        Err(e) => {
            log.push(format!("fragments: could not inspect: {e}"));
            Vec::new()
        }
    };
    log.push(format!(
        "fragments: {} stripes, {} below k+m{}",
        stripes.len(),
        crate::checker::fragments::degraded(&stripes),
        if note.is_empty() {
            note
        } else {
            format!(" ({note})")
        }
    ));
    log.push(maintain_summary(&cluster));
    if sc.planted == Some(Planted::DivergentReplica) {
        diverge(&cluster);
        log.push("planted: meta-2's root group replica got a private row".into());
    }
    // Metadata replicas, once they stop moving (bounded).
    let replicas = cluster
        .replica_states(Duration::from_secs_f64(w.replica_wait_secs))
        .await;
    let mut applied: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for r in &replicas {
        applied
            .entry(r.group)
            .or_default()
            .push(r.applied.map_or_else(|| "-".to_owned(), |a| a.to_string()));
    }
    log.push(format!(
        "replicas applied: {}",
        applied
            .iter()
            .map(|(g, a)| format!("group {g} [{}]", a.join(" ")))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for (i, d) in cluster.datanodes.iter().enumerate() {
        for e in d
            .start_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            log.push(format!("data-{} failed to start: {e}", i + 1));
        }
    }
    for (i, m) in cluster.metas.iter().enumerate() {
        let st = m.disk.stats();
        if st.injected_read_errors
            + st.injected_write_errors
            + st.injected_sync_errors
            + st.bits_rotted
            > 0
        {
            log.push(format!(
                "meta-{} disk: {} read, {} write, {} sync errors injected, {} bits rotted",
                i + 1,
                st.injected_read_errors,
                st.injected_write_errors,
                st.injected_sync_errors,
                st.bits_rotted
            ));
        }
        // A node that refuses its disk retries every second: one line per distinct error.
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for e in m
            .start_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            *seen.entry(e.clone()).or_default() += 1;
        }
        for (e, n) in seen {
            let times = if n > 1 {
                format!(" ({n} times)")
            } else {
                String::new()
            };
            log.push(format!("meta-{} failed to start{times}: {e}", i + 1));
        }
    }
    for (i, g) in cluster.gateways.iter().enumerate() {
        for e in g
            .start_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            log.push(format!("gateway-{} failed to start: {e}", i + 1));
        }
    }
    let ops = std::mem::take(&mut *recorder.lock().unwrap_or_else(|e| e.into_inner()));
    (History::from_ops(ops), log, replicas, stripes, sim_secs)
}

/// The maintenance loops' counters, summed over the meta nodes (each node's latest
/// incarnation): what the detector, GC and repair did.
fn maintain_summary(cluster: &SimCluster) -> String {
    let mut transitions = 0;
    let (mut deleted, mut acked, mut abandoned) = (0, 0, 0);
    let (mut stripes, mut fragments, mut damaged, mut unrecoverable, mut blocked) = (0, 0, 0, 0, 0);
    for m in &cluster.metas {
        let Some(s) = m.maintain_stats() else {
            continue;
        };
        transitions += s.node_transitions;
        deleted += s.gc.fragments_deleted;
        acked += s.gc.entries_acked;
        abandoned += s.gc.fragments_abandoned;
        stripes += s.repair.repaired_stripes;
        fragments += s.repair.repaired_fragments;
        damaged += s.repair.damaged_reported;
        unrecoverable += s.repair.unrecoverable;
        blocked += s.repair.blocked_by_placement;
    }
    format!(
        "maintain: {transitions} node transitions; gc {acked} entries, {deleted} fragments deleted, \
         {abandoned} abandoned; repair {stripes} stripes ({fragments} fragments) rebuilt, \
         {damaged} damaged reported, {unrecoverable} unrecoverable, {blocked} blocked by placement"
    )
}

/// The planted divergence: a row written straight into one replica's state machine.
fn diverge(cluster: &SimCluster) {
    use redb::TableDefinition;
    let node = cluster.metas[1].node().expect("meta-2 runs");
    let sm = node
        .host()
        .state_machine(meta_raft::meta_node::ROOT_GROUP)
        .expect("root group");
    let txn = sm.database().begin_write().expect("write txn");
    {
        let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sim_planted");
        let mut t = txn.open_table(def).expect("table");
        t.insert(b"k".as_slice(), b"v".as_slice()).expect("insert");
    }
    txn.commit().expect("commit");
}

async fn start_fault(cluster: &mut SimCluster, action: &FaultAction) -> (Undo, String) {
    match action {
        FaultAction::Crash(n) | FaultAction::Kill(n) => {
            cluster.power_loss(*n);
            (Undo::Restore(vec![*n]), String::new())
        }
        FaultAction::RackLoss(r) => {
            cluster.kill_rack(*r);
            (Undo::Restore(cluster.rack(*r)), String::new())
        }
        FaultAction::RackCutoff(r) => {
            let nodes = cluster.rack(*r);
            for n in &nodes {
                cluster.clog(*n);
            }
            (Undo::Unclog(nodes), String::new())
        }
        FaultAction::IsolateLeader(g) => match cluster.meta_leader(*g).await {
            Some(i) => {
                cluster.clog(NodeRef::Meta(i));
                (
                    Undo::Unclog(vec![NodeRef::Meta(i)]),
                    format!(" (meta-{})", i + 1),
                )
            }
            None => (Undo::Nothing, " (no leader)".into()),
        },
        FaultAction::Partition(a, b) => {
            cluster.partition(a, b);
            (Undo::Heal(a.clone(), b.clone()), String::new())
        }
        FaultAction::OneWay(a, b) => {
            cluster.one_way(a, b);
            (Undo::HealOneWay(a.clone(), b.clone()), String::new())
        }
        FaultAction::Clog(n) => {
            cluster.clog(*n);
            (Undo::Unclog(vec![*n]), String::new())
        }
        FaultAction::Skew(n, ms) => {
            cluster.skew(*n, *ms);
            (Undo::Unskew(*n), String::new())
        }
        FaultAction::MassCrashMeta => {
            let ns: Vec<NodeRef> = (0..cluster.metas.len()).map(NodeRef::Meta).collect();
            ns.iter().for_each(|n| cluster.power_loss(*n));
            (Undo::Restore(ns), String::new())
        }
        FaultAction::DiskFaults(i, faults, enospc) => {
            cluster.disk_faults(*i, faults, *enospc);
            (Undo::DiskHealthy(*i), String::new())
        }
        FaultAction::MetaDiskFaults(i, faults, enospc) => {
            cluster.meta_disk_faults(*i, faults, *enospc);
            (Undo::MetaDiskHealthy(*i), String::new())
        }
        FaultAction::Pause(n) => {
            cluster.pause(*n);
            (Undo::Resume(*n), String::new())
        }
        FaultAction::LossyNetwork(loss, lo, hi) => {
            cluster.set_network(Some((
                *loss,
                Duration::from_millis(*lo),
                Duration::from_millis(*hi),
            )));
            (Undo::Network, String::new())
        }
        FaultAction::Rot {
            node,
            file,
            offset,
            bit,
        } => (Undo::Nothing, cluster.rot(*node, *file, *offset, *bit)),
        FaultAction::Replace(pick) => (Undo::Nothing, cluster.replace_datanode(*pick).await),
        FaultAction::MetaRot {
            node,
            file,
            offset,
            bit,
        } => {
            let n = NodeRef::Meta(*node);
            cluster.power_loss(n);
            let note = cluster.meta_rot(*node, *file, *offset, *bit);
            (Undo::Restore(vec![n]), note)
        }
        FaultAction::MassCrashData => {
            let ns: Vec<NodeRef> = (0..cluster.datanodes.len()).map(NodeRef::Data).collect();
            ns.iter().for_each(|n| cluster.power_loss(*n));
            (Undo::Restore(ns), String::new())
        }
    }
}

/// Loads a scenario by name, or from `sim/scenarios/planted/NAME.toml`.
pub fn load(name: &str) -> Result<Scenario, crate::scenario::ScenarioError> {
    let planted = crate::scenario::scenario_dir()
        .join("planted")
        .join(format!("{name}.toml"));
    if planted.exists() {
        Scenario::load_path(&planted)
    } else {
        Scenario::load(name)
    }
}
