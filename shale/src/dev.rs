//! `shale dev`: a whole local cluster in one process on a local data folder.
//!
//! Today (issue 2) that is the data plane: `nodes` data nodes spread over `racks` racks,
//! each with its own folder under `--data-dir`, serving gRPC on consecutive loopback
//! ports. The metadata plane and the S3 gateway join it in later issues. Restarting keeps
//! all data; Ctrl-C stops cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{ensure, Context};
use common::env::{Disk, Env, RealDisk};
use common::ids::{DiskId, NodeId, RackId};
use datanode::{Datanode, StoreConfig};

#[derive(clap::Args, Debug)]
pub struct DevArgs {
    /// Folder holding every node's data (created if missing).
    #[arg(long, default_value = "./shale-data")]
    pub data_dir: PathBuf,
    /// Number of data nodes.
    #[arg(long, default_value_t = 12)]
    pub nodes: u32,
    /// Number of racks the nodes are spread over (round robin).
    #[arg(long, default_value_t = 4)]
    pub racks: u32,
    /// First data node port on 127.0.0.1; node i listens on base_port + i.
    #[arg(long, default_value_t = 7100)]
    pub base_port: u16,
    /// Capacity of each node's disk, in GiB.
    #[arg(long, default_value_t = 16)]
    pub disk_gib: u64,
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    ensure!(args.nodes >= 1, "--nodes must be at least 1");
    ensure!(
        args.racks >= 1 && args.racks <= args.nodes,
        "--racks must be 1..=--nodes"
    );
    let env = Env::from_entropy();
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut servers = Vec::new();
    println!(
        "Shale dev cluster (data plane) in {}",
        args.data_dir.display()
    );
    for i in 0..args.nodes {
        let id = NodeId(u64::from(i) + 1);
        let rack = RackId(format!("rack-{}", i % args.racks));
        let dir = args
            .data_dir
            .join(format!("datanode-{}", id.0))
            .join("disk-0");
        let disk = RealDisk::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
        let disk: Arc<dyn Disk> = Arc::new(disk);
        let cfg = StoreConfig {
            capacity_bytes: args.disk_gib << 30,
            ..StoreConfig::default()
        };
        let node = Datanode::open(env.fork(), id, rack.clone(), vec![(DiskId(0), disk, cfg)])
            .with_context(|| format!("opening data node {id}"))?;
        let port = args
            .base_port
            .checked_add(u16::try_from(i)?)
            .context("--base-port + --nodes exceeds 65535")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        println!(
            "  datanode {id:>2}  {rack:<8} grpc://{addr}  {} fragments",
            node.usage()[0].fragments
        );
        let mut stop = stop_tx.subscribe();
        let node = Arc::new(node);
        servers.push(env.spawn("dev-datanode", async move {
            datanode::service::serve(node, addr, async move {
                let _ = stop.recv().await;
            })
            .await
            .with_context(|| format!("data node on {addr}"))
        }));
    }
    println!("Ready. The S3 gateway and metadata plane are not built yet (issues 3 and 4).");
    println!("Press Ctrl-C to stop.");
    common::env::shutdown_signal().await;
    println!("Stopping...");
    let _ = stop_tx.send(());
    for s in servers {
        s.await.context("data node task")??;
    }
    println!("Stopped cleanly.");
    Ok(())
}
