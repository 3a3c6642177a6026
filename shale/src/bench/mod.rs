//! `shale bench`: a load generator for any S3 endpoint (SigV4, path-style, plain HTTP).
//!
//! Workloads: `put`, `get`, `both` (put then get), `mixed` (a ratio of GET / PUT /
//! DELETE / LIST over a key space), `list` (whole listings of N keys), `delete` and
//! `multipart`. Object sizes are fixed or drawn from a distribution; keys are spread over
//! prefixes; a run is bounded by a count or a duration. Every worker owns its keys (key
//! `i` belongs to worker `i % concurrency`), so it knows exactly what each must hold:
//! every GET's bytes are compared with what was written (streaming, without buffering
//! the object), a GET of a deleted key must answer NoSuchKey, a whole listing must find
//! every key, and a multipart upload's ETag must be the MD5 of its parts' MD5s. The
//! report gives ops/s, MiB/s, latency p50 / p90 / p99 / max, errors by S3 code and the
//! client's own CPU per operation; `--json` prints one object per line for scripts. The
//! run fails (exit status 1) if any GET returned wrong bytes.

mod content;
pub mod repair;
mod report;
mod size_dist;
mod worker;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use common::env::Env;
use gateway::client::S3Client;

pub use report::Report;
pub use size_dist::{parse_duration, parse_size, SizeDist};
use worker::{code_of, Op, Progress, Shared, Worker};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// PUT objects (new keys until the key space is used, then overwrites).
    Put,
    /// Write the key space, then GET it.
    Get,
    /// A PUT phase then a GET phase, both measured.
    Both,
    /// Write the key space, then GET / PUT / DELETE / LIST at the `--mix` ratio.
    Mixed,
    /// Write the key space, then list all of it (every page) again and again.
    List,
    /// Write the key space, then DELETE every key.
    Delete,
    /// Multipart uploads of `--size` objects in `--part-size` parts.
    Multipart,
}

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// S3 endpoint (http://host:port).
    #[arg(long, env = "SHALE_ENDPOINT", default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY")]
    pub secret_key: String,
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Bucket (created if missing).
    #[arg(long, env = "SHALE_BENCH_BUCKET", default_value = "shale-bench")]
    pub bucket: String,
    #[arg(long, value_enum, default_value = "both")]
    pub workload: Workload,
    /// Object size: `1MiB`; uniform over a range `4KiB..1MiB`; or weighted
    /// `4KiB:90,1MiB:10`. Suffixes KiB, MiB, GiB; plain numbers are bytes.
    #[arg(long, default_value = "1MiB")]
    pub size: String,
    /// Concurrent workers (one kept-alive connection each).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Operations in the measured phase (default 256; 4 for list and multipart).
    #[arg(long)]
    pub count: Option<u64>,
    /// Run the measured phase for this long instead (`30s`, `2m`, `500ms`).
    #[arg(long)]
    pub duration: Option<String>,
    /// Number of distinct keys (default: the count, 1024 with --duration, 10000 for list).
    #[arg(long)]
    pub keys: Option<u64>,
    /// Keys are spread over this many prefixes (`bench/p000/`, `bench/p001/`, ...).
    #[arg(long, default_value_t = 16)]
    pub prefixes: usize,
    /// Key prefix of everything the run writes.
    #[arg(long, default_value = "bench/")]
    pub prefix: String,
    /// Operation ratio of the mixed workload.
    #[arg(long, default_value = "get=60,put=30,delete=5,list=5")]
    pub mix: String,
    /// Part size of multipart uploads.
    #[arg(long, default_value = "16MiB")]
    pub part_size: String,
    /// Parts of one multipart upload in flight at once.
    #[arg(long, default_value_t = 4)]
    pub part_concurrency: usize,
    /// Seed of the run's randomness (sizes, keys, mix; object bytes).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print one JSON object per operation kind and phase instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No live progress line (it is shown only when stderr is a terminal anyway).
    #[arg(long)]
    pub quiet: bool,
}

/// Everything a run measured.
#[derive(Debug, Default)]
pub struct BenchResult {
    pub reports: Vec<Report>,
    /// Descriptions of the first wrong answers (bytes, phantom or lost objects).
    pub corruption: Vec<String>,
}

impl BenchResult {
    pub fn corrupt(&self) -> u64 {
        self.reports.iter().map(|r| r.corrupt).sum()
    }

    pub fn errors(&self) -> u64 {
        self.reports.iter().map(Report::error_count).sum()
    }
}

/// What the workers of one phase do.
#[derive(Clone, Debug)]
enum Plan {
    /// Every worker PUTs each of its keys once.
    Fill,
    /// Every worker DELETEs each of its keys once.
    Drain,
    /// One operation kind over the worker's keys in order, while the limit lasts.
    Each(Op),
    /// Random keys, operations drawn at the given weights, while the limit lasts.
    Mix(Vec<(Op, u32)>),
}

/// Parses `get=60,put=30,delete=5,list=5`.
pub fn parse_mix(s: &str) -> anyhow::Result<Vec<(Op, u32)>> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .with_context(|| format!("--mix {s:?}: {part:?} is not OP=WEIGHT"))?;
        let op = match name.trim() {
            "get" => Op::Get,
            "put" => Op::Put,
            "delete" => Op::Delete,
            "list" => Op::ListPage,
            other => bail!("--mix {s:?}: unknown operation {other:?} (get, put, delete, list)"),
        };
        let weight: u32 = weight
            .trim()
            .parse()
            .with_context(|| format!("--mix {s:?}: bad weight {weight:?}"))?;
        if weight > 0 {
            out.push((op, weight));
        }
    }
    if out.is_empty() {
        bail!("--mix {s:?}: no operation has a positive weight");
    }
    Ok(out)
}

fn draw(mix: &[(Op, u32)], r: u64) -> Op {
    let total: u64 = mix.iter().map(|(_, w)| u64::from(*w)).sum();
    let mut x = r % total.max(1);
    for (op, w) in mix {
        if x < u64::from(*w) {
            return *op;
        }
        x -= u64::from(*w);
    }
    mix.last().map_or(Op::Get, |(op, _)| *op)
}

fn endpoint(s: &str) -> anyhow::Result<SocketAddr> {
    let rest = s
        .strip_prefix("http://")
        .with_context(|| format!("endpoint {s:?} must start with http://"))?;
    let host = rest.trim_end_matches('/');
    use std::net::ToSocketAddrs;
    host.to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("no address for {host}"))
}

/// How long the measured phase runs.
struct Limit {
    count: Option<u64>,
    deadline: Option<common::env::Instant>,
    taken: AtomicU64,
}

impl Limit {
    fn take(&self, env: &Env) -> bool {
        if self.deadline.is_some_and(|d| env.clock().now() >= d) {
            return false;
        }
        let t = self.taken.fetch_add(1, Ordering::Relaxed);
        self.count.is_none_or(|c| t < c)
    }
}

/// Runs the benchmark and returns its reports (printing only the progress line).
pub async fn bench(env: &Env, args: &BenchArgs) -> anyhow::Result<BenchResult> {
    let sizes = SizeDist::parse(&args.size)?;
    let part_size = parse_size(&args.part_size)?;
    if part_size == 0 {
        bail!("--part-size must be positive");
    }
    let duration = args.duration.as_deref().map(parse_duration).transpose()?;
    let mix = parse_mix(&args.mix)?;
    let concurrency = args.concurrency.max(1);
    let count = match (args.count, duration, args.workload) {
        (Some(c), _, _) => Some(c),
        (None, Some(_), _) => None,
        (None, None, Workload::List | Workload::Multipart) => Some(4),
        (None, None, _) => Some(256),
    };
    let key_space = match (args.keys, args.workload) {
        (Some(k), _) => k,
        (None, Workload::List) => 10_000,
        (None, _) => count.unwrap_or(1024),
    };
    if key_space == 0 {
        bail!("--keys must be positive");
    }
    let addr = endpoint(&args.endpoint)?;
    let mut client = S3Client::new(env.fork(), addr, &args.access_key, &args.secret_key);
    client.region = args.region.clone();
    let r = client
        .send("PUT", &format!("/{}", args.bucket), Bytes::new(), &[])
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.endpoint))?;
    if !r.status.is_success() && r.error_code().as_deref() != Some("BucketAlreadyOwnedByYou") {
        bail!("creating bucket {}: {}", args.bucket, code_of(&r));
    }
    let window = match args.workload {
        Workload::Multipart => part_size.min(sizes.max()),
        _ => sizes.max(),
    };
    let shared = Arc::new(Shared {
        client,
        content: content::Content::new(env, window),
        bucket: args.bucket.clone(),
        prefix: args.prefix.clone(),
        prefixes: args.prefixes.max(1),
        sizes,
        part_size,
        part_concurrency: args.part_concurrency.max(1),
        workers: concurrency,
        key_space,
        progress: Progress::default(),
    });
    let mut workers: Vec<Worker> = (0..concurrency)
        .map(|id| Worker::new(id, env.fork(), Arc::clone(&shared)))
        .collect();
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let limit = || Limit {
        count,
        deadline: duration.map(|d| env.clock().now() + d),
        taken: AtomicU64::new(0),
    };
    let mut result = BenchResult::default();
    let mut phases: Vec<(&str, Plan, bool)> = Vec::new();
    match args.workload {
        Workload::Put => phases.push(("put", Plan::Each(Op::Put), true)),
        Workload::Both => {
            phases.push(("put", Plan::Each(Op::Put), true));
            phases.push(("get", Plan::Each(Op::Get), true));
        }
        Workload::Get => {
            phases.push(("fill", Plan::Fill, false));
            phases.push(("get", Plan::Each(Op::Get), true));
        }
        Workload::Mixed => {
            phases.push(("fill", Plan::Fill, false));
            phases.push(("mixed", Plan::Mix(mix), true));
        }
        Workload::List => {
            phases.push(("fill", Plan::Fill, false));
            phases.push(("list", Plan::Each(Op::ListAll), true));
        }
        Workload::Delete => {
            phases.push(("fill", Plan::Fill, false));
            phases.push(("delete", Plan::Drain, true));
        }
        Workload::Multipart => phases.push(("multipart", Plan::Each(Op::Multipart), true)),
    }
    for (name, plan, limited) in phases {
        let lim = Arc::new(if limited {
            limit()
        } else {
            Limit {
                count: None,
                deadline: None,
                taken: AtomicU64::new(0),
            }
        });
        let (back, reports) = phase(env, workers, name, plan, lim, progress).await?;
        workers = back;
        result.reports.extend(reports);
    }
    for w in &mut workers {
        result.corruption.append(&mut w.corruption);
    }
    Ok(result)
}

async fn phase(
    env: &Env,
    workers: Vec<Worker>,
    name: &'static str,
    plan: Plan,
    limit: Arc<Limit>,
    progress: bool,
) -> anyhow::Result<(Vec<Worker>, Vec<Report>)> {
    let shared = workers
        .first()
        .map(|w| Arc::clone(w.shared()))
        .context("no workers")?;
    for c in [
        &shared.progress.ops,
        &shared.progress.bytes,
        &shared.progress.errors,
        &shared.progress.corrupt,
    ] {
        c.store(0, Ordering::Relaxed);
    }
    let cpu0 = report::process_cpu();
    let start = env.clock().now();
    let done = Arc::new(AtomicBool::new(false));
    let ticker = progress.then(|| {
        let (env2, shared, done) = (env.fork(), Arc::clone(&shared), Arc::clone(&done));
        env.spawn("bench-progress", async move {
            while !done.load(Ordering::Relaxed) {
                env2.clock().sleep(Duration::from_millis(500)).await;
                let secs = env2
                    .clock()
                    .now()
                    .saturating_duration_since(start)
                    .as_secs_f64()
                    .max(1e-9);
                let p = &shared.progress;
                let ops = p.ops.load(Ordering::Relaxed);
                let mib = p.bytes.load(Ordering::Relaxed) as f64 / f64::from(1u32 << 20);
                eprint!(
                    "\r{name:<8} {secs:>6.1} s  ops {ops:>8}  {:>9.1} op/s  {:>8.2} MiB/s  errors {}  corrupt {}   ",
                    ops as f64 / secs,
                    mib / secs,
                    p.errors.load(Ordering::Relaxed),
                    p.corrupt.load(Ordering::Relaxed),
                );
            }
        })
    });
    let mut tasks = Vec::new();
    for mut w in workers {
        let (plan, limit, wenv) = (plan.clone(), Arc::clone(&limit), env.fork());
        tasks.push(env.spawn("bench-worker", async move {
            w.reset_cursor();
            match plan {
                Plan::Fill | Plan::Drain => {
                    let op = if matches!(plan, Plan::Fill) {
                        Op::Put
                    } else {
                        Op::Delete
                    };
                    for _ in 0..w.owned() {
                        if let Some(k) = w.next_key() {
                            w.run(name, op, k).await;
                        }
                    }
                }
                // A count without a duration is split evenly by key ownership, so a
                // PUT phase over a key space of `count` keys writes every key once
                // (work stealing would let fast workers overwrite while slow ones leave
                // keys unwritten).
                Plan::Each(op) if limit.deadline.is_none() && limit.count.is_some() => {
                    let count = limit.count.unwrap_or(0);
                    let workers = w.shared().workers as u64;
                    let id = w.id as u64;
                    let quota = count / workers + u64::from(id < count % workers);
                    for _ in 0..quota {
                        let Some(k) = w.next_key() else { break };
                        w.run(name, op, k).await;
                    }
                }
                Plan::Each(op) => {
                    while limit.take(&wenv) {
                        let Some(k) = w.next_key() else { break };
                        w.run(name, op, k).await;
                    }
                }
                Plan::Mix(mix) => {
                    while limit.take(&wenv) {
                        let op = draw(&mix, w.random());
                        let Some(k) = w.random_key() else { break };
                        w.run(name, op, k).await;
                    }
                }
            }
            w
        }));
    }
    let mut back = Vec::new();
    let mut merged: BTreeMap<Op, Report> = BTreeMap::new();
    for t in tasks {
        let mut w = t.await.context("bench worker")?;
        for (op, r) in w.take_reports() {
            match merged.get_mut(&op) {
                Some(m) => m.merge(r),
                None => {
                    merged.insert(op, r);
                }
            }
        }
        back.push(w);
    }
    back.sort_by_key(|w| w.id);
    done.store(true, Ordering::Relaxed);
    if let Some(t) = ticker {
        t.abort();
        eprintln!();
    }
    let elapsed = env.clock().now().saturating_duration_since(start);
    let cpu = match (cpu0, report::process_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let reports = merged
        .into_values()
        .map(|mut r| {
            r.finish(elapsed, cpu);
            r
        })
        .collect();
    Ok((back, reports))
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let env = match args.seed {
        Some(s) => Env::seeded(s),
        None => Env::from_entropy(),
    };
    let result = bench(&env, &args).await?;
    let concurrency = args.concurrency.max(1);
    let mut phase_ops: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &result.reports {
        *phase_ops.entry(r.phase.as_str()).or_default() += r.ops + r.error_count();
    }
    for r in &result.reports {
        let ops = phase_ops.get(r.phase.as_str()).copied().unwrap_or(r.ops);
        if args.json {
            println!("{}", r.json(concurrency, ops));
        } else {
            println!("{}", r.line(concurrency, ops));
        }
    }
    if result.errors() > 0 {
        eprintln!(
            "{} operations failed (by code in the report)",
            result.errors()
        );
    }
    if result.corrupt() > 0 {
        for c in &result.corruption {
            eprintln!("wrong answer: {c}");
        }
        bail!(
            "{} answers differed from what was written",
            result.corrupt()
        );
    }
    Ok(())
}

#[cfg(test)]
#[path = "bench_test.rs"]
mod bench_test;
