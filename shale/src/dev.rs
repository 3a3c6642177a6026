//! `shale dev`: a whole local cluster in one process on a local data folder — 3 meta
//! replicas (Raft groups over redb), `--nodes` data nodes spread over `--racks` racks,
//! and an S3 gateway on `--listen` (127.0.0.1:9000). Every node has its own folder under
//! `--data-dir`; restarting keeps all data and the same access key; Ctrl-C stops cleanly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use common::cluster::{DiskInfo, DiskState, NodeInfo, NodeState};
use common::env::{Disk, Env, RealDisk};
use common::ids::{DiskId, NodeId, RackId};
use datanode::{Datanode, StoreConfig};
use gateway::data::{DataPlane, MetaTopology};
use gateway::GatewayConfig;
use meta_raft::client::MetaClient;
use meta_raft::config::{MaintainConfig, MemberConfig, MetaConfig};
use meta_raft::meta_node::MetaNode;
use meta_raft::state_machine::AccessKey;
use serde::{Deserialize, Serialize};

/// The cluster id of every `shale dev` cluster.
pub const DEV_CLUSTER_ID: &str = "shale-dev";
/// Meta replicas of the dev cluster.
const META_NODES: u64 = 3;

#[derive(clap::Args, Debug)]
pub struct DevArgs {
    /// Folder holding every node's data (created if missing).
    #[arg(long, default_value = "./shale-data")]
    pub data_dir: PathBuf,
    /// S3 endpoint address.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Number of data nodes (at least k+m = 12 for the default 8+4 code).
    #[arg(long, default_value_t = 16)]
    pub nodes: u32,
    /// Number of racks the data nodes are spread over (round robin).
    #[arg(long, default_value_t = 4)]
    pub racks: u32,
    /// First data node port on 127.0.0.1; node i listens on base_port + i.
    #[arg(long, default_value_t = 7100)]
    pub base_port: u16,
    /// First meta node port on 127.0.0.1; meta node i (1..=3) listens on meta_port + i.
    #[arg(long, default_value_t = 7200)]
    pub meta_port: u16,
    /// Capacity of each data node's disk, in GiB.
    #[arg(long, default_value_t = 16)]
    pub disk_gib: u64,
    /// Seconds an unreferenced fragment waits in the GC queue before it is deleted
    /// (reads of a version that was just overwritten finish first).
    #[arg(long, default_value_t = 60)]
    pub gc_delay_secs: u64,
    /// Object groups (metadata shards) created at first start.
    #[arg(long, default_value_t = 4)]
    pub object_groups: u32,
    /// Access key id to create (default: generated once and kept in the data folder).
    #[arg(long, requires = "secret_key")]
    pub access_key: Option<String>,
    /// Secret of `--access-key`.
    #[arg(long, requires = "access_key")]
    pub secret_key: Option<String>,
    /// Serve S3 over HTTPS with this PEM certificate chain (needs `--tls-key`).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct Credentials {
    access_key_id: String,
    secret_access_key: String,
}

const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_string(env: &Env, alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| {
            let i = usize::try_from(env.random_u64() % alphabet.len() as u64).unwrap_or(0);
            char::from(alphabet[i])
        })
        .collect()
}

/// The dev cluster's credentials: from the flags, else from `credentials.toml` in the
/// data folder, else generated and saved there.
fn credentials(env: &Env, args: &DevArgs) -> anyhow::Result<Credentials> {
    if let (Some(id), Some(secret)) = (&args.access_key, &args.secret_key) {
        return Ok(Credentials {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
        });
    }
    let path = args.data_dir.join("credentials.toml");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return toml::from_str(&text).with_context(|| format!("parsing {}", path.display()));
    }
    let c = Credentials {
        access_key_id: format!("SHALE{}", random_string(env, KEY_ALPHABET, 15)),
        secret_access_key: random_string(env, SECRET_ALPHABET, 40),
    };
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, toml::to_string(&c)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(c)
}

fn open_disk(dir: &Path) -> anyhow::Result<Arc<dyn Disk>> {
    let disk = RealDisk::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    Ok(Arc::new(disk))
}

/// Retries `f` until it succeeds or `budget` passes (the metadata plane elects leaders
/// at start-up).
async fn retry<T, F, Fut>(env: &Env, what: &str, budget: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, meta_raft::client::MetaClientError>>,
{
    let start = env.clock().now();
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if env.clock().now().saturating_duration_since(start) < budget => {
                tracing::debug!(error = %e, "{what}: retrying");
                env.clock().sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(anyhow::anyhow!("{what}: {e}")),
        }
    }
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    ensure!(args.nodes >= 1, "--nodes must be at least 1");
    ensure!(
        args.racks >= 1 && args.racks <= args.nodes,
        "--racks must be 1..=--nodes"
    );
    // The certificate and key are read first, so a bad file fails before anything starts.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(gateway::tls::Tls::load(cert, key).context("--tls-cert / --tls-key")?)
        }
        _ => None,
    };
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let env = Env::from_entropy();
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    println!("Shale dev cluster in {}", args.data_dir.display());

    // Metadata plane: 3 replicas of every group.
    let members: Vec<MemberConfig> = (1..=META_NODES)
        .map(|i| MemberConfig {
            node_id: i,
            addr: format!("127.0.0.1:{}", u64::from(args.meta_port) + i),
        })
        .collect();
    let mut metas = Vec::new();
    let mut maintainers = Vec::new();
    for m in &members {
        let cfg = MetaConfig {
            cluster_id: DEV_CLUSTER_ID.into(),
            node_id: m.node_id,
            listen: m.addr.clone(),
            data_dir: args.data_dir.join(format!("meta-{}", m.node_id)),
            object_groups: args.object_groups,
            join: false,
            members: members.clone(),
            maintain: MaintainConfig {
                gc_delay_secs: args.gc_delay_secs,
                ..MaintainConfig::default()
            },
        };
        let disk = open_disk(&cfg.data_dir)?;
        let maintain = cfg.maintain.clone();
        let node = MetaNode::start(cfg, disk, env.clock().clone())
            .await
            .with_context(|| format!("starting meta node {}", m.node_id))?;
        // Failure detector and GC, acting where this node leads (stopped when dropped).
        let mut maintainer = maintain::Maintainer::start(&env, Arc::clone(node.host()), maintain);
        maintainer.publish_to(node.maintain_report());
        maintainers.push(maintainer);
        println!("  meta     {}  grpc://{}", m.node_id, m.addr);
        let mut stop = stop_tx.subscribe();
        metas.push(env.spawn("dev-meta", async move {
            node.serve(async move {
                let _ = stop.recv().await;
            })
            .await
            .context("meta node")
        }));
    }

    // Data plane.
    let mut servers = Vec::new();
    let mut infos = Vec::new();
    let mut datanodes = Vec::new();
    for i in 0..args.nodes {
        let id = NodeId(u64::from(i) + 1);
        let rack = RackId(format!("rack-{}", i % args.racks));
        let dir = args
            .data_dir
            .join(format!("datanode-{}", id.0))
            .join("disk-0");
        let capacity = args.disk_gib << 30;
        let cfg = StoreConfig {
            capacity_bytes: capacity,
            ..StoreConfig::default()
        };
        let node = Datanode::open(
            env.fork(),
            id,
            rack.clone(),
            vec![(DiskId(0), open_disk(&dir)?, cfg)],
        )
        .with_context(|| format!("opening data node {id}"))?;
        let port = args
            .base_port
            .checked_add(u16::try_from(i)?)
            .context("--base-port + --nodes exceeds 65535")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let usage = node.usage();
        infos.push(NodeInfo {
            id,
            rack: rack.clone(),
            addr: addr.to_string(),
            state: NodeState::Up,
            disks: vec![DiskInfo {
                id: DiskId(0),
                state: DiskState::Healthy,
                capacity_bytes: capacity,
                used_bytes: usage.first().map_or(0, |u| u.used_bytes),
            }],
        });
        let mut stop = stop_tx.subscribe();
        let node = Arc::new(node);
        datanodes.push((id, Arc::clone(&node)));
        servers.push(env.spawn("dev-datanode", async move {
            datanode::service::serve(node, addr, async move {
                let _ = stop.recv().await;
            })
            .await
            .with_context(|| format!("data node on {addr}"))
        }));
    }
    println!(
        "  {} data nodes in {} racks  grpc://127.0.0.1:{}-{}",
        args.nodes,
        args.racks,
        args.base_port,
        u32::from(args.base_port) + args.nodes - 1
    );

    // Register the data nodes and the access key in the root group.
    let seeds: Vec<String> = members.iter().map(|m| m.addr.clone()).collect();
    let meta = MetaClient::connect(seeds.clone(), DEV_CLUSTER_ID)
        .await
        .context("connecting to the metadata plane")?;
    let budget = Duration::from_secs(60);
    for info in &infos {
        retry(&env, "registering a data node", budget, || {
            meta.register_node(info, env.clock().unix_ms())
        })
        .await?;
    }
    // Each data node heartbeats, as a separate `shale datanode` would.
    let heartbeats: Vec<_> = datanodes
        .into_iter()
        .map(|(id, node)| {
            env.spawn(
                "dev-heartbeat",
                crate::register::heartbeat_forever(env.fork(), meta.clone(), node, id.0),
            )
        })
        .collect();
    let creds = credentials(&env, &args)?;
    let existing = retry(&env, "reading the access key", budget, || {
        meta.get_access_key(&creds.access_key_id)
    })
    .await?;
    match existing {
        Some(k) if k.secret == creds.secret_access_key => {}
        Some(_) => anyhow::bail!(
            "access key {} exists with another secret in {}",
            creds.access_key_id,
            args.data_dir.display()
        ),
        None => {
            let key = AccessKey {
                id: creds.access_key_id.clone(),
                secret: creds.secret_access_key.clone(),
                user: "dev".into(),
                created_ms: env.clock().unix_ms(),
            };
            retry(&env, "creating the access key", budget, || {
                meta.create_access_key(&key)
            })
            .await?;
        }
    }

    // The S3 gateway.
    let mut gw_cfg = GatewayConfig::new(DEV_CLUSTER_ID, &args.listen.to_string(), seeds);
    gw_cfg.tls_cert = args.tls_cert.as_ref().map(|p| p.display().to_string());
    gw_cfg.tls_key = args.tls_key.as_ref().map(|p| p.display().to_string());
    let data_cfg = gw_cfg.data_config();
    let topology = Arc::new(MetaTopology::new(meta.clone(), env.fork()));
    let data = DataPlane::new(env.fork(), data_cfg, topology);
    let gw = gateway::Gateway::new(env.fork(), meta.clone(), data, gw_cfg)
        .map_err(|e| anyhow::anyhow!("gateway config: {e}"))?;
    let service = gateway::server::build_service(gw).map_err(|e| anyhow::anyhow!(e))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the S3 endpoint {}", args.listen))?;
    let mut stop = stop_tx.subscribe();
    let gw_task = env.spawn("dev-gateway", {
        let env = env.fork();
        async move {
            gateway::server::serve_with(
                env,
                listener,
                service,
                async move {
                    let _ = stop.recv().await;
                },
                gateway::server::ServeLimits::default(),
                tls,
            )
            .await
            .context("S3 gateway")
        }
    });

    let scheme = if args.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let endpoint = format!("{scheme}://{}", args.listen);
    println!("  gateway  {endpoint}");
    println!();
    println!("Ready. S3 endpoint: {endpoint}   region: us-east-1");
    println!("  access key id:     {}", creds.access_key_id);
    println!("  secret access key: {}", creds.secret_access_key);
    println!();
    println!("Try it with the aws CLI:");
    println!(
        "  export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_DEFAULT_REGION=us-east-1",
        creds.access_key_id, creds.secret_access_key
    );
    // A self-signed certificate is its own CA: the client must be told to trust it.
    let aws = match &args.tls_cert {
        Some(cert) => format!(
            "aws --endpoint-url {endpoint} --ca-bundle {}",
            std::path::absolute(cert)
                .unwrap_or_else(|_| cert.clone())
                .display()
        ),
        None => format!("aws --endpoint-url {endpoint}"),
    };
    println!("  {aws} s3 mb s3://demo");
    println!("  {aws} s3 cp README.md s3://demo/");
    println!("  {aws} s3 ls s3://demo/");
    println!();
    println!("Press Ctrl-C to stop.");
    common::env::shutdown_signal().await;
    println!("Stopping...");
    for h in &heartbeats {
        h.abort();
    }
    drop(maintainers);
    let _ = stop_tx.send(());
    gw_task.await.context("gateway task")??;
    for s in servers {
        s.await.context("data node task")??;
    }
    for m in metas {
        m.await.context("meta node task")??;
    }
    println!("Stopped cleanly.");
    Ok(())
}
