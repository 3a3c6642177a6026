//! The `shale` binary: thin wiring from command-line arguments and config files to the
//! library crates. Subcommands arrive with their issues: `dev` (data plane only so far)
//! and `datanode` now; `meta`, `gateway`, `admin`, `durability` and `bench` later.

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
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
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
        }
    })
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
