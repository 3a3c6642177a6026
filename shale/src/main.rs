//! The `shale` binary: thin wiring from command-line arguments and config files to the
//! library crates. Subcommands arrive with their issues: `dev` (data plane only so far)
//! `datanode` and `meta` now; `gateway`, `admin`, `durability` and `bench` later.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use common::env::Env;
use datanode::{Datanode, DatanodeConfig};

mod dev;

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
    /// Run one meta node (Raft groups of the metadata plane) from a TOML config.
    Meta {
        /// Path to the meta node's TOML config (see meta-raft/src/config.rs).
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async move {
        match cli.command {
            Command::Dev(args) => dev::run(args).await,
            Command::Datanode { config } => run_datanode(config).await,
            Command::Meta { config } => run_meta(config).await,
        }
    })
}

async fn run_meta(path: PathBuf) -> anyhow::Result<()> {
    let cfg = meta_raft::config::MetaConfig::load(&path)?;
    let disk = common::env::RealDisk::open(&cfg.data_dir)
        .with_context(|| format!("opening data_dir {}", cfg.data_dir.display()))?;
    let disk: Arc<dyn common::env::Disk> = Arc::new(disk);
    let node = meta_raft::meta_node::MetaNode::start(cfg.clone(), disk)
        .await
        .context("starting the meta node")?;
    tracing::info!(node = cfg.node_id, cluster = %cfg.cluster_id, addr = %cfg.listen, groups = cfg.object_groups + 1, "meta node serving");
    println!("shale meta {} listening on {}", cfg.node_id, cfg.listen);
    node.serve(common::env::shutdown_signal())
        .await
        .with_context(|| format!("serving gRPC on {}", cfg.listen))?;
    tracing::info!("meta node stopped");
    Ok(())
}

async fn run_datanode(path: PathBuf) -> anyhow::Result<()> {
    let cfg = DatanodeConfig::load(&path)?;
    let addr = cfg.listen_addr()?;
    let env = Env::from_entropy();
    let node = Datanode::from_config(env, &cfg).context("opening the data node's disks")?;
    let node = Arc::new(node);
    tracing::info!(node = cfg.node_id, rack = %cfg.rack, %addr, disks = cfg.disks.len(), "data node serving");
    // Print a machine-readable readiness line for scripts and tests.
    println!("shale datanode {} listening on {addr}", cfg.node_id);
    datanode::service::serve(node, addr, common::env::shutdown_signal())
        .await
        .with_context(|| format!("serving gRPC on {addr}"))?;
    tracing::info!("data node stopped");
    Ok(())
}
