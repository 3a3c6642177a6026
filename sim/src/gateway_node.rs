//! A simulated S3 gateway: a madsim node running the production `Gateway` (s3s over
//! hyper `serve_connection` on madsim's TCP), talking to simulated meta and data nodes.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::env::Env;
use gateway::data::{DataConfig, DataPlane, MetaTopology};
use gateway::GatewayConfig;
use meta_raft::client::MetaClient;

pub const GATEWAY_PORT: u16 = 9000;

pub struct SimGateway {
    pub handle: madsim::runtime::NodeHandle,
    pub addr: SocketAddr,
    /// The node's environment; its clock is the one the gateway dates requests
    /// against, so `skew` moves it.
    pub env: Env,
    /// Why process starts failed (the metadata plane unreachable at start). A failed
    /// start is retried a second later, as a supervisor would.
    pub start_errors: Arc<Mutex<Vec<String>>>,
}

impl SimGateway {
    /// Starts a gateway at `ip` for the cluster whose meta nodes are `meta`. It serves
    /// again after every restart (it is stateless).
    pub fn start(env: &Env, ip: IpAddr, cluster_id: &str, meta: Vec<String>) -> Self {
        let addr = SocketAddr::new(ip, GATEWAY_PORT);
        let node_env = env.fork();
        let gw_env = node_env.clone();
        let cluster_id = cluster_id.to_owned();
        let start_errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let errors = Arc::clone(&start_errors);
        let handle = madsim::runtime::Handle::current()
            .create_node()
            .name(format!("gateway-{ip}"))
            .ip(ip)
            .init(move || {
                let env = node_env.clone();
                let mut cfg = GatewayConfig::new(&cluster_id, &addr.to_string(), meta.clone());
                // KiB-sized bodies, several parts each (`history::multipart_part_lens`).
                cfg.min_part_bytes = crate::history::SIM_MIN_PART_BYTES as u64;
                let errors = Arc::clone(&errors);
                async move {
                    let client = loop {
                        match MetaClient::connect(cfg.meta.clone(), cfg.cluster_id.clone()).await {
                            Ok(c) => break c,
                            Err(e) => {
                                errors
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(e.to_string());
                                env.clock().sleep(Duration::from_secs(1)).await;
                            }
                        }
                    };
                    let topology = Arc::new(MetaTopology::new(client.clone(), env.fork()));
                    let data_cfg = DataConfig {
                        stripe_data_bytes: cfg.stripe_data_bytes,
                        ..DataConfig::default()
                    };
                    let data = DataPlane::new(env.fork(), data_cfg, topology);
                    // A clone, not a fork: the gateway shares this node's clock (skew).
                    let gw = gateway::Gateway::new(env.clone(), client, data, cfg)
                        .expect("gateway config");
                    let service = gateway::server::build_service(gw).expect("service");
                    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
                    gateway::server::serve(env, listener, service, std::future::pending())
                        .await
                        .expect("serve");
                }
            })
            .build();
        Self {
            handle,
            addr,
            env: gw_env,
            start_errors,
        }
    }

    /// Sets this gateway's wall-clock offset (positive: ahead), in milliseconds.
    pub fn skew(&self, offset_ms: i64) {
        self.env.clock().set_wall_offset(
            std::time::Duration::from_millis(offset_ms.unsigned_abs()),
            offset_ms >= 0,
        );
    }

    pub fn kill(&self) {
        madsim::runtime::Handle::current().kill(self.handle.id());
    }

    pub fn restart(&self) {
        madsim::runtime::Handle::current().restart(self.handle.id());
    }
}
