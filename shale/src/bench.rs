//! `shale bench`: a load generator for any S3 endpoint (SigV4, path-style, plain HTTP).
//! PUT then GET a key space at a fixed object size and concurrency over kept-alive
//! connections; every GET's bytes are compared with what was written; the report gives
//! ops/s, MiB/s, latency percentiles and errors by S3 code (`--json` for scripts).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use common::env::Env;
use gateway::client::S3Client;

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
    #[arg(long, default_value = "shale-bench")]
    pub bucket: String,
    /// put, get (puts the key space first), or both (put phase, then get phase).
    #[arg(long, default_value = "both")]
    pub workload: String,
    /// Object size: bytes, or with a KiB / MiB / GiB suffix.
    #[arg(long, default_value = "1MiB")]
    pub size: String,
    /// Concurrent requests (one kept-alive connection each).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Requests per phase.
    #[arg(long, default_value_t = 256)]
    pub count: usize,
    /// Key prefix.
    #[arg(long, default_value = "bench/")]
    pub prefix: String,
    /// Print one JSON object per phase instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Parses `4KiB`, `1MiB`, `64MiB`, `1GiB` or plain bytes.
pub fn parse_size(s: &str) -> anyhow::Result<usize> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("GiB") {
        (n, 1usize << 30)
    } else if let Some(n) = s.strip_suffix("MiB") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("KiB") {
        (n, 1 << 10)
    } else {
        (s, 1)
    };
    let n: usize = num
        .trim()
        .parse()
        .with_context(|| format!("bad size {s:?}"))?;
    n.checked_mul(mult).context("size overflows")
}

/// One phase's results.
#[derive(Debug, Default)]
pub struct Report {
    pub phase: String,
    pub ops: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub latencies_us: Vec<u64>,
    pub errors: BTreeMap<String, u64>,
    pub corrupt: u64,
}

impl Report {
    fn pct(&self, p: f64) -> u64 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i.min(self.latencies_us.len() - 1)]
    }

    pub fn print(&self, json: bool, size: usize, concurrency: usize) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let ops_s = self.ops as f64 / secs;
        let mib_s = self.bytes as f64 / secs / f64::from(1u32 << 20);
        if json {
            let errors: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            println!(
                "{{\"phase\":\"{}\",\"size\":{size},\"concurrency\":{concurrency},\"ops\":{},\"seconds\":{secs:.3},\"ops_per_s\":{ops_s:.1},\"mib_per_s\":{mib_s:.1},\"p50_ms\":{:.2},\"p90_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2},\"corrupt\":{},\"errors\":{{{}}}}}",
                self.phase,
                self.ops,
                self.pct(0.5) as f64 / 1000.0,
                self.pct(0.9) as f64 / 1000.0,
                self.pct(0.99) as f64 / 1000.0,
                self.pct(1.0) as f64 / 1000.0,
                self.corrupt,
                errors.join(",")
            );
        } else {
            println!(
                "{:<4} size {size:>10} B  c={concurrency:<3} ops {:>6}  {ops_s:>9.1} op/s  {mib_s:>8.1} MiB/s  p50 {:>8.2} ms  p90 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  corrupt {}  errors {:?}",
                self.phase,
                self.ops,
                self.pct(0.5) as f64 / 1000.0,
                self.pct(0.9) as f64 / 1000.0,
                self.pct(0.99) as f64 / 1000.0,
                self.pct(1.0) as f64 / 1000.0,
                self.corrupt,
                self.errors
            );
        }
    }
}

/// The bytes of object `i`: a window into one random pool, so writing and verifying
/// costs a slice and a memcmp, not a generator per byte.
struct Objects {
    pool: Bytes,
    size: usize,
}

impl Objects {
    fn new(env: &Env, size: usize) -> Self {
        let mut pool = Vec::with_capacity(size + 4096);
        while pool.len() < size + 4096 {
            pool.extend_from_slice(&env.random_u64().to_le_bytes());
        }
        Objects {
            pool: Bytes::from(pool),
            size,
        }
    }

    fn get(&self, i: usize) -> Bytes {
        let off = (i * 7919) % 4096;
        self.pool.slice(off..off + self.size)
    }
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

async fn phase(
    env: &Env,
    client: &S3Client,
    args: &BenchArgs,
    objects: Arc<Objects>,
    put: bool,
) -> anyhow::Result<Report> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = env.clock().now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let client = client.clone();
        let next = Arc::clone(&next);
        let objects = Arc::clone(&objects);
        let count = args.count;
        let bucket = args.bucket.clone();
        let prefix = args.prefix.clone();
        let wenv = env.fork();
        workers.push(env.spawn("bench-worker", async move {
            let mut r = Report::default();
            let mut conn = None;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let path = format!("/{bucket}/{prefix}{i:08}");
                if conn.is_none() {
                    conn = client.connect().await.ok();
                }
                let Some(c) = conn.as_mut() else {
                    *r.errors.entry("connect".into()).or_default() += 1;
                    continue;
                };
                let t0 = wenv.clock().now();
                let res = if put {
                    c.send("PUT", &path, objects.get(i), &[]).await
                } else {
                    c.send("GET", &path, Bytes::new(), &[]).await
                };
                let us = wenv.clock().now().saturating_duration_since(t0).as_micros();
                match res {
                    Ok(reply) if reply.status.is_success() => {
                        r.ops += 1;
                        r.bytes += objects.size as u64;
                        r.latencies_us.push(u64::try_from(us).unwrap_or(u64::MAX));
                        if !put && reply.body != objects.get(i) {
                            r.corrupt += 1;
                        }
                    }
                    Ok(reply) => {
                        let code = reply
                            .error_code()
                            .unwrap_or_else(|| reply.status.as_str().to_owned());
                        *r.errors.entry(code).or_default() += 1;
                    }
                    Err(e) => {
                        conn = None;
                        *r.errors.entry(format!("transport: {e}")).or_default() += 1;
                    }
                }
            }
            r
        }));
    }
    let mut total = Report {
        phase: if put { "PUT" } else { "GET" }.into(),
        ..Report::default()
    };
    for w in workers {
        let r = w.await.context("bench worker")?;
        total.ops += r.ops;
        total.bytes += r.bytes;
        total.corrupt += r.corrupt;
        total.latencies_us.extend(r.latencies_us);
        for (k, v) in r.errors {
            *total.errors.entry(k).or_default() += v;
        }
    }
    total.elapsed = env.clock().now().saturating_duration_since(start);
    total.latencies_us.sort_unstable();
    Ok(total)
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let env = Env::from_entropy();
    let size = parse_size(&args.size)?;
    let addr = endpoint(&args.endpoint)?;
    let mut client = S3Client::new(env.fork(), addr, &args.access_key, &args.secret_key);
    client.region = args.region.clone();
    let r = client
        .send("PUT", &format!("/{}", args.bucket), Bytes::new(), &[])
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.endpoint))?;
    if !r.status.is_success() && r.error_code().as_deref() != Some("BucketAlreadyOwnedByYou") {
        bail!(
            "creating bucket {}: {} {:?}",
            args.bucket,
            r.status,
            r.error_code()
        );
    }
    let objects = Arc::new(Objects::new(&env, size));
    let mut reports = Vec::new();
    match args.workload.as_str() {
        "put" => reports.push(phase(&env, &client, &args, objects, true).await?),
        "get" | "both" => {
            let p = phase(&env, &client, &args, Arc::clone(&objects), true).await?;
            if args.workload == "both" {
                reports.push(p);
            }
            reports.push(phase(&env, &client, &args, objects, false).await?);
        }
        other => bail!("--workload must be put, get or both, got {other:?}"),
    }
    let mut failed = false;
    for r in &reports {
        r.print(args.json, size, args.concurrency);
        failed |= r.corrupt > 0;
    }
    if failed {
        bail!("GET returned bytes that differ from what was written");
    }
    Ok(())
}

#[cfg(test)]
#[path = "bench_test.rs"]
mod bench_test;
