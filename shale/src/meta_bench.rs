//! `shale bench-meta`: metadata-plane throughput through the client path the gateway
//! uses (`MetaClient` → `MetaService` gRPC → the owning group's leader), against any
//! running meta cluster (e.g. three `shale meta` processes: `scripts/bench-meta.sh`).
//!
//! Commits are PutObject of a 100-byte inline object (one Raft command each); barrier
//! reads are HEADs (ReadIndex on the leader, then a point read). Work is spread over one
//! bucket per object group (bucket names chosen so each lands in a different group's
//! range), so `--groups 4` measures four groups' leaders in parallel.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use common::env::Env;
use meta_raft::client::{MetaClient, MetaClientError};
use meta_raft::state_machine::{
    ListObjectsParams, ObjectBody, ObjectMeta, PutObject, Reason, Versioning,
};

#[derive(clap::Args, Debug, Clone)]
pub struct MetaBenchArgs {
    /// Meta node addresses (comma-separated host:port).
    #[arg(long, env = "SHALE_META", value_delimiter = ',')]
    pub meta: Vec<String>,
    #[arg(long, env = "SHALE_CLUSTER_ID", default_value = "shale-local")]
    pub cluster_id: String,
    /// Concurrency levels to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub concurrency: Vec<usize>,
    /// Commits per concurrency level (split evenly over the tasks).
    #[arg(long, default_value_t = 2000)]
    pub commits: usize,
    /// Barrier reads per concurrency level.
    #[arg(long, default_value_t = 8000)]
    pub reads: usize,
    /// Spread the work over this many buckets, one per object group.
    #[arg(long, default_value_t = 1)]
    pub groups: usize,
    /// Also time a listing of this many keys in pages of 1,000 (0: skip).
    #[arg(long, default_value_t = 10_000)]
    pub list_keys: usize,
}

/// Bucket names in different quarters of the bootstrap split (`GroupMap::bootstrap`
/// splits on the first byte of the bucket name over `-.0-9a-z`).
const BUCKETS: [&str; 4] = [
    "0-bench-meta",
    "8-bench-meta",
    "i-bench-meta",
    "r-bench-meta",
];

fn put(bucket: &str, key: String) -> PutObject {
    PutObject {
        bucket: bucket.into(),
        key,
        version_id: "null".into(),
        created_ms: 1,
        owner: "bench".into(),
        size: 100,
        etag: "0123456789abcdef0123456789abcdef".into(),
        checksums: BTreeMap::new(),
        meta: ObjectMeta::default(),
        body: ObjectBody::Inline(vec![7u8; 100]),
        preconditions: vec![],
    }
}

async fn timed<F, Fut>(env: &Env, tasks: usize, f: F) -> anyhow::Result<Duration>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let start = env.clock().now();
    let handles: Vec<_> = (0..tasks).map(|t| env.spawn("bench-meta", f(t))).collect();
    for h in handles {
        h.await.context("bench task")??;
    }
    Ok(env.clock().now().saturating_duration_since(start))
}

pub async fn run(args: MetaBenchArgs) -> anyhow::Result<()> {
    if args.meta.is_empty() {
        bail!("--meta: give the meta nodes' addresses (or SHALE_META)");
    }
    if !(1..=BUCKETS.len()).contains(&args.groups) {
        bail!("--groups must be 1..={}", BUCKETS.len());
    }
    let env = Env::from_entropy();
    let client = Arc::new(
        MetaClient::connect(args.meta.clone(), args.cluster_id.clone())
            .await
            .context("connecting to the meta cluster")?,
    );
    let buckets: Vec<&'static str> = BUCKETS[..args.groups].to_vec();
    for b in &buckets {
        match client
            .create_bucket(b, "bench", 1, Versioning::Unversioned)
            .await
        {
            Ok(()) | Err(MetaClientError::Rejected(Reason::BucketAlreadyOwnedByYou)) => {}
            Err(e) => return Err(e).with_context(|| format!("creating bucket {b}")),
        }
    }
    let run_id = env.random_u64() % 1_000_000;
    println!("| groups | concurrency | commits/s | barrier reads/s |");
    println!("|---:|---:|---:|---:|");
    for &c in &args.concurrency {
        let c = c.max(1);
        let per = (args.commits / c).max(1);
        let took = timed(&env, c, |t| {
            let (client, bucket) = (Arc::clone(&client), buckets[t % buckets.len()]);
            async move {
                for i in 0..per {
                    client
                        .put_object(&put(bucket, format!("r{run_id}/c{c}/{t:03}/{i:06}")))
                        .await
                        .context("commit")?;
                }
                Ok(())
            }
        })
        .await?;
        let commits_s = (per * c) as f64 / took.as_secs_f64().max(1e-9);
        let per_r = (args.reads / c).max(1);
        let took = timed(&env, c, |t| {
            let (client, bucket) = (Arc::clone(&client), buckets[t % buckets.len()]);
            let key = format!("r{run_id}/c{c}/{:03}/000000", t % per.max(1).min(c));
            async move {
                for _ in 0..per_r {
                    client.head_object(bucket, &key).await.context("read")?;
                }
                Ok(())
            }
        })
        .await?;
        let reads_s = (per_r * c) as f64 / took.as_secs_f64().max(1e-9);
        println!("| {} | {c} | {commits_s:.0} | {reads_s:.0} |", args.groups);
    }
    if args.list_keys > 0 {
        let bucket = buckets[0];
        let prefix = format!("l{run_id}/");
        let per = args.list_keys.div_ceil(64);
        timed(&env, 64, |t| {
            let (client, prefix) = (Arc::clone(&client), prefix.clone());
            async move {
                for i in 0..per {
                    let n = t * per + i;
                    if n < args.list_keys {
                        client
                            .put_object(&put(bucket, format!("{prefix}{n:08}")))
                            .await
                            .context("fill")?;
                    }
                }
                Ok(())
            }
        })
        .await?;
        let start = env.clock().now();
        let mut listed = 0usize;
        let mut after: Option<String> = None;
        loop {
            let page = client
                .list_objects(
                    bucket,
                    &ListObjectsParams {
                        prefix: prefix.clone(),
                        delimiter: None,
                        start_after: after.clone(),
                        max_keys: 1000,
                        end_before: None,
                    },
                )
                .await
                .context("list")?;
            listed += page.entries.len();
            if !page.is_truncated {
                break;
            }
            after = page.next.clone();
        }
        println!();
        println!(
            "list: {listed} keys in pages of 1000 through MetaClient: {:.1} ms",
            env.clock()
                .now()
                .saturating_duration_since(start)
                .as_secs_f64()
                * 1e3
        );
    }
    Ok(())
}
