//! `shale meta --config FILE.toml`. Every error names the offending field.
//!
//! ```toml
//! cluster_id = "prod-eu-1"        # nodes of another cluster are refused
//! node_id = 1
//! listen = "127.0.0.1:7201"       # Raft + metadata gRPC
//! data_dir = "/var/lib/shale/meta-1"
//! object_groups = 4               # set at bootstrap; recorded in the root group
//! # join = true                   # a node added to a running cluster: never bootstraps
//!
//! [[members]]                     # the initial voters of every group (3 or 5)
//! node_id = 1
//! addr = "127.0.0.1:7201"
//! [[members]]
//! node_id = 2
//! addr = "127.0.0.1:7202"
//! [[members]]
//! node_id = 3
//! addr = "127.0.0.1:7203"
//!
//! [maintain]                      # optional: failure detector and GC (maintain_config)
//! down_after_secs = 30
//! ```

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

pub use crate::maintain_config::MaintainConfig;

/// Upper bound on object groups set at bootstrap (groups split later, issue 3 follow-up).
pub const OBJECT_GROUPS_MAX: u32 = crate::state_machine::root::BOOTSTRAP_GROUPS_MAX;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    pub node_id: u64,
    pub addr: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaConfig {
    pub cluster_id: String,
    pub node_id: u64,
    pub listen: String,
    pub data_dir: PathBuf,
    #[serde(default = "default_object_groups")]
    pub object_groups: u32,
    /// This node joins a running cluster (added by `add_voter` on each group's leader):
    /// it opens its groups but never initialises them.
    #[serde(default)]
    pub join: bool,
    pub members: Vec<MemberConfig>,
    /// Background maintenance (failure detector, GC); see `maintain_config`.
    #[serde(default)]
    pub maintain: MaintainConfig,
}

fn default_object_groups() -> u32 {
    4
}

pub use common::config::ConfigError as MetaConfigError;

impl MetaConfig {
    pub fn load(path: &std::path::Path) -> Result<Self, MetaConfigError> {
        let (text, origin) = common::config::read_file(path)?;
        Self::parse(&text, &origin)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, MetaConfigError> {
        let cfg: MetaConfig = common::config::parse_toml(text, origin)?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    fn validate(&self, origin: &str) -> Result<(), MetaConfigError> {
        let invalid =
            |field: &str, message: String| MetaConfigError::invalid(origin, field, message);
        if self.cluster_id.trim().is_empty() {
            return Err(invalid("cluster_id", "must not be empty".into()));
        }
        if self.node_id == 0 {
            return Err(invalid("node_id", "must be positive".into()));
        }
        self.listen_addr()
            .map_err(|e| invalid("listen", format!("{:?} is not ip:port ({e})", self.listen)))?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty".into()));
        }
        if self.object_groups == 0 || self.object_groups > OBJECT_GROUPS_MAX {
            return Err(invalid(
                "object_groups",
                format!(
                    "must be 1..={OBJECT_GROUPS_MAX}, got {}",
                    self.object_groups
                ),
            ));
        }
        if self.members.is_empty() {
            return Err(invalid(
                "members",
                "at least one [[members]] entry is required".into(),
            ));
        }
        let mut ids = BTreeSet::new();
        for (i, m) in self.members.iter().enumerate() {
            if !ids.insert(m.node_id) {
                return Err(invalid(
                    &format!("members[{i}].node_id"),
                    format!("duplicate node id {}", m.node_id),
                ));
            }
            m.addr.parse::<SocketAddr>().map_err(|e| {
                invalid(
                    &format!("members[{i}].addr"),
                    format!("{:?} is not ip:port ({e})", m.addr),
                )
            })?;
        }
        self.maintain.validate(origin)?;
        if !self.join && !ids.contains(&self.node_id) {
            return Err(invalid(
                "members",
                format!(
                    "must include this node ({}) among the initial members",
                    self.node_id
                ),
            ));
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        self.listen.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
cluster_id = "c1"
node_id = 1
listen = "127.0.0.1:7201"
data_dir = "/tmp/meta-1"
[[members]]
node_id = 1
addr = "127.0.0.1:7201"
[[members]]
node_id = 2
addr = "127.0.0.1:7202"
"#;

    fn err(text: &str) -> String {
        MetaConfig::parse(text, "meta.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let c = MetaConfig::parse(GOOD, "meta.toml").unwrap();
        assert_eq!((c.node_id, c.object_groups, c.members.len()), (1, 4, 2));
        assert_eq!(c.maintain, MaintainConfig::default());
        let c = MetaConfig::parse(
            &format!("{GOOD}[maintain]\ndown_after_secs = 5\ndead_after_secs = 50\ngc = false\n"),
            "meta.toml",
        )
        .unwrap();
        assert_eq!(c.maintain.down_after_secs, 5);
        assert!(!c.maintain.gc && c.maintain.detector);
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err(&GOOD.replace("cluster_id = \"c1\"\n", "")).contains("cluster_id"));
        assert!(
            err(&GOOD.replace("listen = \"127.0.0.1:7201\"", "listen = \"x\""))
                .contains("field `listen`")
        );
        assert!(
            err(&GOOD.replace("addr = \"127.0.0.1:7202\"", "addr = \"nowhere\""))
                .contains("field `members[1].addr`")
        );
        assert!(
            err(&GOOD.replace("node_id = 1\nlisten", "node_id = 9\nlisten"))
                .contains("field `members`")
        );
        assert!(err(&format!("{GOOD}object_groups = 0\n")).contains("field `object_groups`"));
        assert!(err(&format!("{GOOD}[maintain]\ndown_after_secs = 0\n"))
            .contains("field `maintain.down_after_secs`"));
        assert!(err(&format!(
            "{GOOD}[maintain]\ndown_after_secs = 60\ndead_after_secs = 60\n"
        ))
        .contains("field `maintain.dead_after_secs`"));
        assert!(err(&format!("{GOOD}[maintain]\ngc_batch = 5000\n"))
            .contains("field `maintain.gc_batch`"));
        assert!(err(&format!("{GOOD}[maintain]\nnope = 1\n")).contains("nope"));
        assert!(
            err(&GOOD.replace("node_id = 2", "node_id = 1")).contains("field `members[1].node_id`")
        );
    }
}
