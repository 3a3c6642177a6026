//! Whole Shale clusters on 127.0.0.1 for the S3 tests, and real S3 clients for them.
//!
//! - [`DevCluster`]: one `shale dev` process (3 meta replicas, 16 data nodes in 4 racks,
//!   the S3 gateway) on its own data folder; kill -9 and restart on the same folder;
//!   [`DevCluster::start_tls`] serves S3 over HTTPS.
//! - [`MultiCluster`]: the multi-process deployment — 3 `shale meta`, 16 `shale datanode`
//!   (self-registering, 4 racks) and one or more `shale gateway` processes, each from a
//!   generated TOML config, plus an access key; kill -9 a data node or a group's leader.
//! - [`s3_client`]: `aws-sdk-s3` over plain HTTP, path-style, us-east-1, static keys.
//!
//! Every process runs under a small `sh` watchdog that holds a pipe from the test
//! process: when the handle is dropped, *or the test binary dies in any way*, the pipe
//! closes and the watchdog kill -9s the process (and, for a cluster shared by several
//! tests through a `static`, removes its data folder). Output of every process goes to
//! `<dir>/logs/<name>.log`; a failed start prints the tail of the logs.
#![cfg(not(madsim))]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};
use common::ids::GroupId;
use meta_raft::client::MetaClient;
use meta_raft::state_machine::keys::object_key;
use meta_raft::state_machine::AccessKey;

use crate::{poll_until, shale_bin, TempDir};

/// The region every test client signs for.
pub const REGION: &str = "us-east-1";
/// Cluster id of `shale dev` clusters (shale/src/dev.rs `DEV_CLUSTER_ID`).
pub const DEV_CLUSTER_ID: &str = "shale-dev";
/// Cluster id of [`MultiCluster`]s.
pub const MULTI_CLUSTER_ID: &str = "it-s3";
/// Data nodes and racks of every test cluster.
pub const NODES: u16 = 16;
pub const RACKS: u16 = 4;
/// Start-up bound: a loaded 2-core machine elects 5 Raft groups × 3 replicas slowly.
const START_BUDGET: Duration = Duration::from_secs(90);

/// `aws-sdk-s3` client for `endpoint` (`http://127.0.0.1:PORT`): path-style addressing,
/// region us-east-1, static credentials, the smithy hyper client without TLS, standard
/// retries (3 attempts) and a 120 s bound on every operation so a hung gateway fails the
/// test instead of hanging it.
pub fn s3_client(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{
        retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, Credentials, Region,
        StalledStreamProtectionConfig,
    };
    let creds = Credentials::new(access_key, secret_key, None, None, "shale-tests");
    let http = aws_smithy_http_client::Builder::new().build_http();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .http_client(http)
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(120))
                .build(),
        )
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

// ---------------------------------------------------------------------------------------
// Processes.

/// A `shale` process under an `sh` watchdog (see the module doc). Dropping it kill -9s
/// the process and waits for it.
pub struct ClusterProc {
    pub name: String,
    /// The `shale` process's pid (not the watchdog's).
    pub pid: u32,
    pub log: PathBuf,
    watchdog: Option<Child>,
    lifeline: Option<ChildStdin>,
}

const WATCHDOG: &str = r#"
exec 3<&0
"$@" <&- 3<&- >>"$SHALE_IT_LOG" 2>&1 &
p=$!
echo "$p"
read _ <&3
kill -9 "$p" 2>/dev/null
wait "$p" 2>/dev/null
if [ -n "$SHALE_IT_RM" ]; then rm -rf "$SHALE_IT_RM"; fi
"#;

impl ClusterProc {
    /// Starts `shale ARGS`, output appended to `log`. `remove_on_exit`: a folder the
    /// watchdog deletes after the process is dead (for clusters kept in a `static`).
    pub fn spawn(
        name: &str,
        args: &[String],
        log: &Path,
        remove_on_exit: Option<&Path>,
    ) -> anyhow::Result<Self> {
        if let Some(d) = log.parent() {
            std::fs::create_dir_all(d)?;
        }
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(shale_bin())
            .args(args)
            .env("SHALE_IT_LOG", log)
            .env(
                "SHALE_IT_RM",
                remove_on_exit
                    .map(|p| p.as_os_str().to_owned())
                    .unwrap_or_default(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if std::env::var_os("RUST_LOG").is_none() {
            // Peers killed on purpose make openraft warn on every heartbeat.
            cmd.env("RUST_LOG", "info,openraft=error");
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        let lifeline = child.stdin.take();
        let stdout = child.stdout.take().context("watchdog stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the pid from the watchdog")?;
        let pid: u32 = line
            .trim()
            .parse()
            .with_context(|| format!("watchdog printed {line:?} instead of a pid"))?;
        Ok(Self {
            name: name.to_string(),
            pid,
            log: log.to_path_buf(),
            watchdog: Some(child),
            lifeline,
        })
    }

    /// Whether the `shale` process still runs (a zombie awaiting the watchdog counts as
    /// dead).
    pub fn is_running(&self) -> bool {
        if self.watchdog.is_none() {
            return false;
        }
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            // "pid (comm) S ...": the state follows the last ')'.
            Ok(stat) => stat
                .rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
                .unwrap_or(false),
            Err(_) => false,
        }
    }

    /// kill -9 the process (as a crash would) and wait until it is gone.
    pub fn kill9(&mut self) {
        self.lifeline.take();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.wait();
        }
    }

    /// SIGTERM (a clean stop: Ctrl-C), then wait up to `limit`, then kill -9.
    pub fn terminate(&mut self, limit: Duration) {
        if self.watchdog.is_some() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            let polls = limit.as_millis() / 20;
            for _ in 0..polls {
                if !self.is_running() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill9();
    }

    /// The last `lines` lines of the process's output.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ClusterProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---------------------------------------------------------------------------------------
// Ports.

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

fn port_free(p: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
}

/// `n` consecutive free ports on 127.0.0.1, below the kernel's ephemeral range
/// (32768+), so outgoing connections cannot take them between this check and the bind.
pub fn free_port_block(n: u16) -> u16 {
    const LOW: u16 = 10_000;
    const HIGH: u16 = 32_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    if NEXT.load(Ordering::Relaxed) == 0 {
        let start = LOW + (random_u64() % u64::from(HIGH - LOW)) as u16;
        let _ = NEXT.compare_exchange(0, start, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..1000 {
        let mut start = NEXT.fetch_add(n + 1, Ordering::Relaxed);
        if start < LOW || start > HIGH - n - 1 {
            NEXT.store(LOW + n + 1, Ordering::Relaxed);
            start = LOW;
        }
        if (start..start + n).all(port_free) {
            return start;
        }
    }
    panic!("no block of {n} free ports on 127.0.0.1");
}

async fn wait_listening(
    addr: &str,
    what: &str,
    procs: &mut [&mut ClusterProc],
) -> anyhow::Result<()> {
    let addr = addr.to_string();
    let mut dead = None;
    let r = poll_until(START_BUDGET, what, || {
        let addr = addr.clone();
        for p in procs.iter() {
            if !p.is_running() {
                dead = Some(format!("{} exited early:\n{}", p.name, p.log_tail(40)));
            }
        }
        let stop = dead.is_some();
        async move {
            if stop {
                return Some(false);
            }
            tokio::net::TcpStream::connect(&addr)
                .await
                .ok()
                .map(|_| true)
        }
    })
    .await;
    if let Some(d) = dead {
        bail!("{what}: {d}");
    }
    r.map(|_| ())
}

fn sargs(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

async fn meta_client(seeds: Vec<String>, cluster: &str) -> anyhow::Result<MetaClient> {
    poll_until(
        START_BUDGET,
        "the metadata plane to serve its group map",
        || {
            let seeds = seeds.clone();
            async move {
                let c = MetaClient::connect(seeds, cluster).await.ok()?;
                c.group_map().await.ok()?;
                Some(c)
            }
        },
    )
    .await
}

async fn create_key(meta: &MetaClient, id: &str, secret: &str, user: &str) -> anyhow::Result<()> {
    let key = AccessKey {
        id: id.into(),
        secret: secret.into(),
        user: user.into(),
        created_ms: 1,
    };
    poll_until(
        Duration::from_secs(60),
        "creating an access key",
        || async {
            match meta.get_access_key(id).await {
                Ok(Some(_)) => Some(()),
                _ => meta.create_access_key(&key).await.ok(),
            }
        },
    )
    .await
}

/// The node id of the current leader of `group`, per the group's own status.
async fn group_leader(meta: &MetaClient, group: GroupId) -> anyhow::Result<u64> {
    poll_until(Duration::from_secs(60), "a group leader", || async {
        meta.group_status(group).await.ok()?.leader
    })
    .await
}

/// The object group holding `bucket`'s keys (its first key).
async fn bucket_group(meta: &MetaClient, bucket: &str) -> anyhow::Result<GroupId> {
    let map = meta.group_map().await.context("group map")?;
    Ok(map.group_for(&object_key(bucket, "")).group)
}

// ---------------------------------------------------------------------------------------
// `shale dev`.

/// One `shale dev` process.
pub struct DevCluster {
    /// The data folder (kept across [`Self::restart`]).
    pub data_dir: PathBuf,
    pub endpoint: String,
    pub listen_port: u16,
    pub base_port: u16,
    pub meta_port: u16,
    pub access_key: String,
    pub secret_key: String,
    /// `--tls-cert` / `--tls-key` PEM files: the endpoint is `https://` then.
    pub tls: Option<(PathBuf, PathBuf)>,
    proc: Option<ClusterProc>,
    remove_on_exit: bool,
    /// More `shale dev` arguments (e.g. `--gc-delay-secs 0`).
    extra_args: Vec<String>,
    _dir: Option<TempDir>,
}

impl DevCluster {
    /// Starts `shale dev` on a fresh temporary folder (removed on drop) and waits for the
    /// S3 endpoint.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = TempDir::new("s3-dev");
        let mut c = Self::new_in(dir.path().to_path_buf(), false);
        c._dir = Some(dir);
        c.launch().await?;
        Ok(c)
    }

    /// Like [`Self::start`], with more `shale dev` arguments.
    pub async fn start_with(args: &[&str]) -> anyhow::Result<Self> {
        let dir = TempDir::new("s3-dev");
        let mut c = Self::new_in(dir.path().to_path_buf(), false);
        c._dir = Some(dir);
        c.extra_args = args.iter().map(|a| a.to_string()).collect();
        c.launch().await?;
        Ok(c)
    }

    /// Like [`Self::start`], serving S3 over HTTPS with the PEM certificate chain `cert`
    /// and its key `key` (`shale dev --tls-cert --tls-key`); `endpoint` is `https://`.
    pub async fn start_tls(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let dir = TempDir::new("s3-dev-tls");
        let mut c = Self::new_in(dir.path().to_path_buf(), false);
        c._dir = Some(dir);
        c.tls = Some((cert.to_path_buf(), key.to_path_buf()));
        c.endpoint = format!("https://127.0.0.1:{}", c.listen_port);
        c.launch().await?;
        Ok(c)
    }

    /// Like [`Self::start`], for a cluster kept in a `static` and shared by several tests:
    /// no `Drop` runs, so the watchdog removes the folder when the test binary exits.
    pub async fn start_shared() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "shale-it-s3-shared-{}-{}",
            std::process::id(),
            random_u64() % 1_000_000
        ));
        std::fs::create_dir_all(&dir)?;
        let mut c = Self::new_in(dir, true);
        c.launch().await?;
        Ok(c)
    }

    fn new_in(data_dir: PathBuf, remove_on_exit: bool) -> Self {
        let block = free_port_block(NODES + 5);
        let base_port = block;
        let meta_port = block + NODES; // meta nodes on meta_port+1..=+3
        let listen_port = block + NODES + 4;
        let n = random_u64();
        DevCluster {
            data_dir,
            endpoint: format!("http://127.0.0.1:{listen_port}"),
            listen_port,
            base_port,
            meta_port,
            access_key: format!("SHALEIT{:013}", n % 10_000_000_000_000),
            secret_key: format!("secret-{n:016x}-{:016x}", n.rotate_left(17)),
            tls: None,
            proc: None,
            remove_on_exit,
            extra_args: Vec::new(),
            _dir: None,
        }
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let mut args = vec![
            "dev".to_string(),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{}", self.listen_port),
            "--base-port".into(),
            self.base_port.to_string(),
            "--meta-port".into(),
            self.meta_port.to_string(),
            "--nodes".into(),
            NODES.to_string(),
            "--racks".into(),
            RACKS.to_string(),
            "--disk-gib".into(),
            "4".into(),
            "--access-key".into(),
            self.access_key.clone(),
            "--secret-key".into(),
            self.secret_key.clone(),
        ];
        args.extend(self.extra_args.iter().cloned());
        if let Some((cert, key)) = &self.tls {
            args.extend([
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                key.display().to_string(),
            ]);
        }
        let log = self.data_dir.join("logs").join("dev.log");
        let rm = self.remove_on_exit.then_some(self.data_dir.as_path());
        let mut p = ClusterProc::spawn("shale dev", &args, &log, rm)?;
        wait_listening(
            &format!("127.0.0.1:{}", self.listen_port),
            "the shale dev S3 endpoint",
            &mut [&mut p],
        )
        .await?;
        // The endpoint is bound right before "Ready." is printed.
        poll_until(Duration::from_secs(30), "\"Ready.\" from shale dev", || {
            let ready = std::fs::read_to_string(&log)
                .map(|t| t.contains("Ready."))
                .unwrap_or(false);
            async move { ready.then_some(()) }
        })
        .await
        .with_context(|| p.log_tail(40))?;
        self.proc = Some(p);
        Ok(())
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint, &self.access_key, &self.secret_key)
    }

    /// A client with other credentials on this cluster.
    pub fn s3_as(&self, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint, access_key, secret_key)
    }

    pub fn meta_seeds(&self) -> Vec<String> {
        (1..=3)
            .map(|i| format!("127.0.0.1:{}", self.meta_port + i))
            .collect()
    }

    pub async fn meta(&self) -> anyhow::Result<MetaClient> {
        meta_client(self.meta_seeds(), DEV_CLUSTER_ID).await
    }

    /// Creates the access key `id`/`secret` of `user` (another user than the dev key's
    /// "dev").
    pub async fn create_access_key(
        &self,
        id: &str,
        secret: &str,
        user: &str,
    ) -> anyhow::Result<()> {
        create_key(&self.meta().await?, id, secret, user).await
    }

    pub fn is_running(&self) -> bool {
        self.proc.as_ref().is_some_and(|p| p.is_running())
    }

    /// kill -9 the whole dev process.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    /// kill -9, then start again on the same folder and ports.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        self.launch().await
    }

    pub fn log_tail(&self, lines: usize) -> String {
        self.proc
            .as_ref()
            .map(|p| p.log_tail(lines))
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------
// The multi-process deployment.

/// 3 `shale meta` + 16 `shale datanode` (4 racks) + N `shale gateway` processes.
pub struct MultiCluster {
    pub dir: PathBuf,
    pub access_key: String,
    pub secret_key: String,
    /// `host:port` of every meta node, index i = node id i+1.
    pub meta_addrs: Vec<String>,
    /// `host:port` of every meta node's Prometheus endpoint (`--metrics-listen`).
    pub metrics_addrs: Vec<String>,
    pub metas: Vec<ClusterProc>,
    pub datanodes: Vec<ClusterProc>,
    pub gateways: Vec<ClusterProc>,
    meta_cfgs: Vec<PathBuf>,
    datanode_cfgs: Vec<PathBuf>,
    gateway_cfgs: Vec<PathBuf>,
    gateway_ports: Vec<u16>,
    _tmp: TempDir,
}

impl MultiCluster {
    /// Starts the cluster with `gateways` gateways and waits until the metadata plane
    /// serves, every data node is registered and every gateway listens.
    pub async fn start(gateways: usize) -> anyhow::Result<Self> {
        Self::start_with(gateways, "").await
    }

    /// Like [`Self::start`], with `meta_extra` appended to every meta node's config
    /// (e.g. a `[maintain]` section).
    pub async fn start_with(gateways: usize, meta_extra: &str) -> anyhow::Result<Self> {
        let tmp = TempDir::new("s3-multi");
        let dir = tmp.path().to_path_buf();
        let block = free_port_block(NODES + 6 + gateways as u16);
        let meta_addrs: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", block + i)).collect();
        let metrics_addrs: Vec<String> = (0..3)
            .map(|i| format!("127.0.0.1:{}", block + 3 + NODES + gateways as u16 + i))
            .collect();
        let dn_ports: Vec<u16> = (0..NODES).map(|i| block + 3 + i).collect();
        let gateway_ports: Vec<u16> = (0..gateways as u16)
            .map(|i| block + 3 + NODES + i)
            .collect();
        let meta_list = format!(
            "[{}]",
            meta_addrs
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let cfg_dir = dir.join("config");
        std::fs::create_dir_all(&cfg_dir)?;
        let write = |name: &str, text: String| -> anyhow::Result<PathBuf> {
            let p = cfg_dir.join(name);
            std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
            Ok(p)
        };
        let members: String = meta_addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("[[members]]\nnode_id = {}\naddr = \"{a}\"\n", i + 1))
            .collect();
        let mut meta_cfgs = Vec::new();
        for (i, a) in meta_addrs.iter().enumerate() {
            meta_cfgs.push(write(
                &format!("meta-{}.toml", i + 1),
                format!(
                    "cluster_id = \"{MULTI_CLUSTER_ID}\"\nnode_id = {}\nlisten = \"{a}\"\n\
                     data_dir = \"{}\"\nobject_groups = 4\n\n{members}\n{meta_extra}\n",
                    i + 1,
                    dir.join("data").join(format!("meta-{}", i + 1)).display()
                ),
            )?);
        }
        let mut datanode_cfgs = Vec::new();
        for (i, port) in dn_ports.iter().enumerate() {
            let id = i + 1;
            datanode_cfgs.push(write(
                &format!("datanode-{id}.toml"),
                format!(
                    "node_id = {id}\nrack = \"rack-{}\"\nlisten = \"127.0.0.1:{port}\"\n\
                     cluster_id = \"{MULTI_CLUSTER_ID}\"\nmeta = {meta_list}\n\n\
                     [[disks]]\nid = 0\npath = \"{}\"\ncapacity_bytes = {}\n",
                    i % usize::from(RACKS),
                    dir.join("data")
                        .join(format!("datanode-{id}"))
                        .join("disk-0")
                        .display(),
                    4u64 << 30
                ),
            )?);
        }
        let mut gateway_cfgs = Vec::new();
        for (i, port) in gateway_ports.iter().enumerate() {
            gateway_cfgs.push(write(
                &format!("gateway-{}.toml", i + 1),
                format!(
                    "cluster_id = \"{MULTI_CLUSTER_ID}\"\nlisten = \"127.0.0.1:{port}\"\n\
                     meta = {meta_list}\n"
                ),
            )?);
        }
        let n = random_u64();
        let mut c = MultiCluster {
            dir: dir.clone(),
            access_key: format!("SHALEMC{:013}", n % 10_000_000_000_000),
            secret_key: format!("secret-{n:016x}"),
            meta_addrs,
            metrics_addrs,
            metas: Vec::new(),
            datanodes: Vec::new(),
            gateways: Vec::new(),
            meta_cfgs,
            datanode_cfgs,
            gateway_cfgs,
            gateway_ports,
            _tmp: tmp,
        };
        for i in 0..3 {
            let p = c.spawn_meta(i)?;
            c.metas.push(p);
        }
        // Data nodes and gateways fetch the group map when they start (and exit if they
        // cannot): start them once the metadata plane serves.
        let meta = meta_client(c.meta_addrs.clone(), MULTI_CLUSTER_ID)
            .await
            .with_context(|| c.log_tails(20))?;
        for i in 0..usize::from(NODES) {
            let p = c.spawn_datanode(i)?;
            c.datanodes.push(p);
        }
        poll_until(START_BUDGET, "16 data nodes registered", || async {
            let nodes = meta.nodes().await.ok()?;
            (nodes.len() >= usize::from(NODES)).then_some(())
        })
        .await
        .with_context(|| c.log_tails(20))?;
        create_key(&meta, &c.access_key, &c.secret_key, "multi").await?;
        for i in 0..gateways {
            let p = c.spawn_gateway(i)?;
            c.gateways.push(p);
        }
        for i in 0..gateways {
            let addr = format!("127.0.0.1:{}", c.gateway_ports[i]);
            let mut g = c.gateways.remove(i);
            let r = wait_listening(&addr, "a gateway to listen", &mut [&mut g]).await;
            c.gateways.insert(i, g);
            r?;
        }
        Ok(c)
    }

    fn spawn_cfg(&self, kind: &str, i: usize, cfg: &Path) -> anyhow::Result<ClusterProc> {
        self.spawn_cfg_args(kind, i, cfg, &[])
    }

    fn spawn_cfg_args(
        &self,
        kind: &str,
        i: usize,
        cfg: &Path,
        extra: &[&str],
    ) -> anyhow::Result<ClusterProc> {
        let name = format!("{kind}-{}", i + 1);
        let cfg = cfg.display().to_string();
        let mut args = vec![kind, "--config", &cfg];
        args.extend_from_slice(extra);
        ClusterProc::spawn(
            &name,
            &sargs(&args),
            &self.dir.join("logs").join(format!("{name}.log")),
            None,
        )
    }

    fn spawn_meta(&self, i: usize) -> anyhow::Result<ClusterProc> {
        let metrics = self.metrics_addrs[i].clone();
        self.spawn_cfg_args(
            "meta",
            i,
            &self.meta_cfgs[i],
            &["--metrics-listen", &metrics],
        )
    }

    fn spawn_datanode(&self, i: usize) -> anyhow::Result<ClusterProc> {
        self.spawn_cfg("datanode", i, &self.datanode_cfgs[i])
    }

    fn spawn_gateway(&self, i: usize) -> anyhow::Result<ClusterProc> {
        self.spawn_cfg("gateway", i, &self.gateway_cfgs[i])
    }

    pub fn endpoint(&self, gateway: usize) -> String {
        format!("http://127.0.0.1:{}", self.gateway_ports[gateway])
    }

    pub fn s3(&self, gateway: usize) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint(gateway), &self.access_key, &self.secret_key)
    }

    pub async fn meta(&self) -> anyhow::Result<MetaClient> {
        meta_client(self.meta_addrs.clone(), MULTI_CLUSTER_ID).await
    }

    pub async fn create_access_key(
        &self,
        id: &str,
        secret: &str,
        user: &str,
    ) -> anyhow::Result<()> {
        create_key(&self.meta().await?, id, secret, user).await
    }

    /// kill -9 data node `i` (0-based; node id i+1).
    /// Runs `shale admin <args>` against this cluster.
    fn admin_output(&self, args: &[&str]) -> std::process::Output {
        Command::new(shale_bin())
            .arg("admin")
            .args([
                "--meta",
                &self.meta_addrs.join(","),
                "--cluster-id",
                MULTI_CLUSTER_ID,
            ])
            .args(args)
            .env("RUST_LOG", "error")
            .output()
            .expect("running shale admin")
    }

    /// `shale admin <args>` that must fail: its stderr (panics if it succeeds).
    pub fn admin_err(&self, args: &[&str]) -> String {
        let out = self.admin_output(args);
        assert!(
            !out.status.success(),
            "shale admin {args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `shale admin <args>` against this cluster: stdout, or panics with stderr.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = self.admin_output(args);
        assert!(
            out.status.success(),
            "shale admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn kill9_datanode(&mut self, i: usize) {
        self.datanodes[i].kill9();
    }

    pub fn restart_datanode(&mut self, i: usize) -> anyhow::Result<()> {
        self.datanodes[i].kill9();
        self.datanodes[i] = self.spawn_datanode(i)?;
        Ok(())
    }

    /// kill -9 the meta node leading `bucket`'s object group; returns its index
    /// (0-based; node id index+1).
    pub async fn kill9_bucket_group_leader(&mut self, bucket: &str) -> anyhow::Result<usize> {
        let meta = self.meta().await?;
        let group = bucket_group(&meta, bucket).await?;
        let leader = group_leader(&meta, group).await?;
        let i = usize::try_from(leader - 1)?;
        self.metas[i].kill9();
        Ok(i)
    }

    /// kill -9 the meta node leading the root group; returns its index.
    pub async fn kill9_root_leader(&mut self) -> anyhow::Result<usize> {
        let meta = self.meta().await?;
        let leader = group_leader(&meta, GroupId(0)).await?;
        let i = usize::try_from(leader - 1)?;
        self.metas[i].kill9();
        Ok(i)
    }

    pub fn restart_meta(&mut self, i: usize) -> anyhow::Result<()> {
        self.metas[i].kill9();
        self.metas[i] = self.spawn_meta(i)?;
        Ok(())
    }

    /// The last lines of every process's log.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for p in self
            .metas
            .iter()
            .chain(&self.datanodes)
            .chain(&self.gateways)
        {
            out.push_str(&format!("--- {} ---\n{}\n", p.name, p.log_tail(lines)));
        }
        out
    }
}
