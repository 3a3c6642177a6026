//! The `shale` binary: thin wiring from command-line arguments and config files to the
//! library crates: `dev` (a whole cluster in one process), `meta`, `datanode`, `gateway`,
//! `admin`, `bench`, `bench-meta` and `durability`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use common::env::Env;
use datanode::{Datanode, DatanodeConfig};

mod admin;
mod bench;
mod dev;
mod durability_cmd;
mod durability_live;
mod meta_bench;
mod metrics;
mod register;
mod repair_cmd;

#[derive(Parser, Debug)]
#[command(
    name = "shale",
    version,
    about = "Shale: an S3-compatible, erasure-coded object store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a whole local cluster in one process on a local data folder.
    Dev(dev::DevArgs),
    /// Operator commands: status, access keys, meta membership.
    Admin(admin::AdminArgs),
    /// Load generator for any S3 endpoint: PUT/GET at a size and concurrency, verified.
    Bench(bench::BenchArgs),
    /// Annual durability (loss probability, nines) of a k+m stripe: a Markov model.
    Durability(durability_cmd::DurabilityArgs),
    /// Metadata-plane throughput (commits/s, barrier reads/s, listing) against running
    /// meta nodes, through the gateway's client path.
    BenchMeta(meta_bench::MetaBenchArgs),
    /// Measuring steps of scripts/bench-repair.sh: victim choice, repair after kill -9,
    /// scrub rate.
    BenchRepair(bench::repair::BenchRepairArgs),
    /// Run one meta node (Raft groups of the metadata plane) from a TOML config.
    Meta {
        /// Path to the meta node's TOML config (see meta-raft/src/config.rs).
        #[arg(long)]
        config: PathBuf,
        /// Serve Prometheus metrics on this address (GET /metrics), e.g. 127.0.0.1:9464.
        #[arg(long)]
        metrics_listen: Option<String>,
    },
    /// Run one S3 gateway (stateless; talks to meta and data nodes) from a TOML config.
    Gateway {
        /// Path to the gateway's TOML config (see gateway/src/config.rs).
        #[arg(long)]
        config: PathBuf,
    },
    /// Run one data node (fragment store + gRPC service) from a TOML config.
    Datanode {
        /// Path to the data node's TOML config (see datanode/src/config.rs).
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `dev`, `admin` and `bench` talk to a person: only problems are logged (the whole
    // cluster shares one terminal, and peers starting up are expected to be unreachable
    // for a moment). Servers log at info. RUST_LOG overrides both.
    let default_filter = match cli.command {
        Command::Dev(_)
        | Command::Admin(_)
        | Command::Bench(_)
        | Command::BenchMeta(_)
        | Command::BenchRepair(_) => "error",
        _ => "info,openraft=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async move {
        match cli.command {
            Command::Dev(args) => dev::run(args).await,
            Command::Admin(args) => admin::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Durability(args) => durability_cmd::run(args),
            Command::BenchMeta(args) => meta_bench::run(args).await,
            Command::BenchRepair(args) => bench::repair::run(args).await,
            Command::Datanode { config } => run_datanode(config).await,
            Command::Meta {
                config,
                metrics_listen,
            } => run_meta(config, metrics_listen).await,
            Command::Gateway { config } => run_gateway(config).await,
        }
    })
}

async fn run_meta(path: PathBuf, metrics_listen: Option<String>) -> anyhow::Result<()> {
    let cfg = meta_raft::config::MetaConfig::load(&path)?;
    let disk = common::env::RealDisk::open(&cfg.data_dir)
        .with_context(|| format!("opening data_dir {}", cfg.data_dir.display()))?;
    let disk: Arc<dyn common::env::Disk> = Arc::new(disk);
    let env = Env::from_entropy();
    let node = meta_raft::meta_node::MetaNode::start(cfg.clone(), disk, env.clock().clone())
        .await
        .context("starting the meta node")?;
    // Failure detector and GC for the groups this node leads (stopped when dropped).
    let mut maintainer =
        maintain::Maintainer::start(&env, Arc::clone(node.host()), cfg.maintain.clone());
    maintainer.publish_to(node.maintain_report());
    if let Some(addr) = metrics_listen {
        let slot = node.maintain_report().clone();
        let host = Arc::clone(node.host());
        let id = cfg.node_id;
        let bound = metrics::serve(&addr, move || {
            let groups = meta_raft::group_status::GroupStatus::local_all(&host);
            metrics::render(id, slot.report().as_ref(), &groups)
        })
        .await?;
        println!("shale meta {id}: metrics on http://{bound}/metrics");
    }
    tracing::info!(node = cfg.node_id, cluster = %cfg.cluster_id, addr = %cfg.listen, groups = cfg.object_groups + 1, "meta node serving");
    println!("shale meta {} listening on {}", cfg.node_id, cfg.listen);
    node.serve(common::env::shutdown_signal())
        .await
        .with_context(|| format!("serving gRPC on {}", cfg.listen))?;
    tracing::info!("meta node stopped");
    Ok(())
}

async fn run_gateway(path: PathBuf) -> anyhow::Result<()> {
    let cfg = gateway::GatewayConfig::load(&path)?;
    let addr = cfg.listen_addr().context("listen")?;
    // Read the certificate and key before anything else, so a bad file fails at once.
    let tls = gateway::tls::Tls::from_config(&cfg)
        .with_context(|| format!("config file {}: TLS", path.display()))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let env = Env::from_entropy();
    // Retried (capped backoff, each failure logged) while no root leader answers: the
    // meta nodes may start after the gateway or be electing. Only a permanent error
    // (another cluster, bad config) ends the gateway here.
    let meta = gateway::connect::connect_meta(
        &env,
        cfg.meta.clone(),
        cfg.cluster_id.clone(),
        gateway::connect::Backoff::default(),
    )
    .await
    .context("connecting to the metadata plane")?;
    let data_cfg = cfg.data_config();
    let topology = Arc::new(gateway::data::MetaTopology::new(meta.clone(), env.fork()));
    let data = gateway::data::DataPlane::new(env.fork(), data_cfg, topology);
    let gw = gateway::Gateway::new(env.fork(), meta, data, cfg)
        .map_err(|e| anyhow::anyhow!("gateway config: {e}"))?;
    let service = gateway::server::build_service(gw).map_err(|e| anyhow::anyhow!(e))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, scheme, "S3 gateway serving");
    println!("shale gateway listening on {scheme}://{addr}");
    gateway::server::serve_with(
        env,
        listener,
        service,
        common::env::shutdown_signal(),
        gateway::server::ServeLimits::default(),
        tls,
    )
    .await
    .with_context(|| format!("serving S3 on {addr}"))?;
    tracing::info!("gateway stopped");
    Ok(())
}

async fn run_datanode(path: PathBuf) -> anyhow::Result<()> {
    let cfg = DatanodeConfig::load(&path)?;
    let addr = cfg.listen_addr()?;
    let env = Env::from_entropy();
    let node = Datanode::from_config(env.fork(), &cfg).context("opening the data node's disks")?;
    let node = Arc::new(node);
    let _heartbeat = if cfg.meta.is_empty() {
        None
    } else {
        let cluster = cfg.cluster_id.clone().unwrap_or_default();
        // Retried like the gateway's (capped backoff, each failure logged): the meta
        // nodes may start after the data node or be electing; only a permanent error
        // (another cluster, bad config) ends the data node here.
        let meta = gateway::connect::connect_meta(
            &env,
            cfg.meta.clone(),
            cluster,
            gateway::connect::Backoff::default(),
        )
        .await
        .context("connecting to the metadata plane")?;
        Some(env.spawn(
            "datanode-heartbeat",
            register::register_and_heartbeat(
                env.fork(),
                meta,
                Arc::clone(&node),
                cfg.node_id,
                cfg.rack.clone(),
                addr.to_string(),
            ),
        ))
    };
    tracing::info!(node = cfg.node_id, rack = %cfg.rack, %addr, disks = cfg.disks.len(), "data node serving");
    // Print a machine-readable readiness line for scripts and tests.
    println!("shale datanode {} listening on {addr}", cfg.node_id);
    datanode::service::serve(node, addr, common::env::shutdown_signal())
        .await
        .with_context(|| format!("serving gRPC on {addr}"))?;
    tracing::info!("data node stopped");
    Ok(())
}
