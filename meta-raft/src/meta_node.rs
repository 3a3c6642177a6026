//! `MetaNode`: one meta process. It hosts the root group (0) and the object groups
//! (1..=n) on its disk, bootstraps them from the config on first start, writes the
//! initial group map into the root group once, and serves the Raft transport.
//!
//! A data directory remembers the cluster it belongs to (`CLUSTER_ID` file): starting it
//! with another cluster's config is refused with an error naming both ids.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::env::{Clock, Disk, OpenMode};
use common::ids::GroupId;
use openraft::error::{ClientWriteError, RaftError};

use crate::config::MetaConfig;
use crate::group_host::GroupHostError;
use crate::maintain_report::MaintainReportSlot;
use crate::state_machine::{Command, GroupMap, Response, RootCommand};
use crate::types::{MetaGroupHost, MetaRaft};

pub const ROOT_GROUP: GroupId = GroupId(0);
const CLUSTER_ID_FILE: &str = "CLUSTER_ID";

#[derive(Debug, thiserror::Error)]
pub enum MetaNodeError {
    #[error("data directory belongs to cluster {found:?}, but the config says cluster_id = {configured:?}")]
    WrongCluster { found: String, configured: String },
    #[error("reading or writing {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Group(#[from] GroupHostError),
}

pub struct MetaNode {
    host: Arc<MetaGroupHost>,
    config: MetaConfig,
    /// This node's clock: the times the meta service stamps into commands (`SetNodeState`,
    /// `SetDiskState`, `GcAck`) are its wall time, so a skew set on it (simulation, tests)
    /// reaches them.
    clock: Clock,
    /// Where the process's maintenance loops publish their report (`MaintainStatus`).
    maintain_report: MaintainReportSlot,
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> MetaNodeError {
    move |source| MetaNodeError::Io { what, source }
}

/// Checks (or, on first start, records) which cluster this data directory belongs to.
pub fn check_cluster_id(disk: &Arc<dyn Disk>, cluster_id: &str) -> Result<(), MetaNodeError> {
    if disk.exists(CLUSTER_ID_FILE).map_err(io("CLUSTER_ID"))? {
        let f = disk
            .open(CLUSTER_ID_FILE, OpenMode::Read)
            .map_err(io("CLUSTER_ID"))?;
        let len = f.len().map_err(io("CLUSTER_ID"))?;
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0).min(4096)];
        f.read_exact_at(&mut buf, 0).map_err(io("CLUSTER_ID"))?;
        let found = String::from_utf8_lossy(&buf).trim().to_string();
        if found != cluster_id {
            return Err(MetaNodeError::WrongCluster {
                found,
                configured: cluster_id.to_string(),
            });
        }
        return Ok(());
    }
    // Written to a temporary name, synced, renamed, and the directory synced: the id is
    // either absent or whole after a crash.
    let tmp = "CLUSTER_ID.tmp";
    let f = disk
        .open(tmp, OpenMode::CreateOrOpen)
        .map_err(io("CLUSTER_ID"))?;
    f.set_len(0).map_err(io("CLUSTER_ID"))?;
    f.write_at(cluster_id.as_bytes(), 0)
        .map_err(io("CLUSTER_ID"))?;
    f.sync().map_err(io("CLUSTER_ID"))?;
    disk.rename(tmp, CLUSTER_ID_FILE)
        .map_err(io("CLUSTER_ID"))?;
    disk.sync_dir("").map_err(io("CLUSTER_ID"))?;
    Ok(())
}

impl MetaNode {
    /// Opens every group this node hosts (bootstrapping them on first start) and starts a
    /// background task that writes the initial group map once a root leader exists.
    /// `clock` is the node's clock (`Env::clock` of the process), which the meta service
    /// reads its wall time from.
    pub async fn start(
        config: MetaConfig,
        disk: Arc<dyn Disk>,
        clock: Clock,
    ) -> Result<Self, MetaNodeError> {
        check_cluster_id(&disk, &config.cluster_id)?;
        let host = Arc::new(MetaGroupHost::new(
            config.node_id,
            &config.cluster_id,
            disk,
        )?);
        let members: BTreeMap<u64, String> = config
            .members
            .iter()
            .map(|m| (m.node_id, m.addr.clone()))
            .collect();
        let mut groups = vec![ROOT_GROUP];
        groups.extend((1..=u64::from(config.object_groups)).map(GroupId));
        for g in host.groups_on_disk() {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        for g in &groups {
            if config.join {
                host.open_group(*g).await?;
            } else {
                host.bootstrap(*g, &members).await?;
            }
        }
        let node = Self {
            host,
            config,
            clock,
            maintain_report: MaintainReportSlot::default(),
        };
        node.spawn_group_map_writer(members);
        Ok(node)
    }

    /// The slot the maintenance loops of this process publish their report in
    /// (`maintain::Maintainer::publish_to`); the `MaintainStatus` rpc answers from it.
    pub fn maintain_report(&self) -> &MaintainReportSlot {
        &self.maintain_report
    }

    pub fn host(&self) -> &Arc<MetaGroupHost> {
        &self.host
    }

    pub fn config(&self) -> &MetaConfig {
        &self.config
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn root(&self) -> Option<MetaRaft> {
        self.host.registry().get(ROOT_GROUP)
    }

    /// Until the root group holds a group map, the root leader proposes the bootstrap
    /// split. Every node runs this; only the leader's proposal commits, and a second
    /// proposal is rejected by the version check, so the map is written exactly once.
    fn spawn_group_map_writer(&self, members: BTreeMap<u64, String>) {
        let host = Arc::clone(&self.host);
        let n = self.config.object_groups;
        let clock = self.clock.clone();
        common::env::spawn("group-map-bootstrap", async move {
            loop {
                let Some(root) = host.registry().get(ROOT_GROUP) else {
                    return; // shutting down
                };
                if Self::has_group_map(&host) {
                    return;
                }
                let is_leader = root.current_leader().await == Some(host.node_id());
                if is_leader {
                    let cmd =
                        Command::Root(RootCommand::SetGroupMap(GroupMap::bootstrap(n, &members)));
                    match root.client_write(cmd).await {
                        Ok(r) if r.data == Response::Empty => {
                            tracing::info!(groups = n, "bootstrap group map written");
                            return;
                        }
                        Ok(r) => tracing::debug!(response = %r.data, "group map not written"),
                        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {}
                        Err(e) => tracing::debug!(error = %e, "group map write failed; retrying"),
                    }
                }
                clock.sleep(Duration::from_millis(200)).await;
            }
        });
    }

    fn has_group_map(host: &MetaGroupHost) -> bool {
        let Some(sm) = host.state_machine(ROOT_GROUP) else {
            return false;
        };
        use redb::ReadableDatabase;
        let Ok(txn) = sm.database().begin_read() else {
            return false;
        };
        matches!(crate::state_machine::group_map(&txn), Ok(Some(_)))
    }

    /// Serves the Raft transport and the metadata API until `shutdown` resolves, then
    /// stops every group.
    pub async fn serve(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        use proto::raft::raft_service_server::RaftServiceServer;
        let addr = self
            .config
            .listen_addr()
            .expect("listen address validated by MetaConfig");
        let raft_svc = RaftServiceServer::new(crate::network::RaftGrpc::new(
            Arc::clone(self.host.registry()),
            self.config.cluster_id.clone(),
        ))
        .max_decoding_message_size(crate::network::RAFT_MESSAGE_BYTES_MAX);
        let meta_svc = proto::meta::meta_service_server::MetaServiceServer::new(
            crate::service::MetaGrpc::new(Arc::clone(&self.host))
                .with_clock(self.clock.clone())
                .with_maintain_report(self.maintain_report.clone()),
        )
        .max_decoding_message_size(crate::service::META_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(crate::service::META_MESSAGE_BYTES_MAX);
        let res = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(raft_svc)
            .add_service(meta_svc)
            .serve_with_shutdown(addr, shutdown)
            .await;
        self.host.shutdown().await;
        res
    }
}

#[cfg(test)]
#[path = "meta_node_test.rs"]
mod meta_node_test;
