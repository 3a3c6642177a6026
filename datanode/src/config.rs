//! `shale datanode --config FILE.toml`. Every error names the offending field.
//!
//! ```toml
//! node_id = 1
//! rack = "rack-a"
//! listen = "127.0.0.1:7101"
//! # Optional: register with the metadata plane and heartbeat to it (multi-process
//! # clusters; without it the node must be registered by other means).
//! # cluster_id = "prod-1"
//! # meta = ["127.0.0.1:7201", "127.0.0.1:7202", "127.0.0.1:7203"]
//!
//! [[disks]]
//! id = 0
//! path = "/var/lib/shale/d0"
//! capacity_bytes = 107374182400
//! # max_fragment_bytes = 268435456   # optional
//! ```

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskConfig {
    pub id: u32,
    pub path: PathBuf,
    pub capacity_bytes: u64,
    #[serde(default)]
    pub max_fragment_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatanodeConfig {
    pub node_id: u64,
    pub rack: String,
    pub listen: String,
    pub disks: Vec<DiskConfig>,
    /// The cluster this node registers with (required with `meta`).
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// Meta node addresses to register and heartbeat with.
    #[serde(default)]
    pub meta: Vec<String>,
}

pub use common::config::ConfigError;

impl DatanodeConfig {
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let (text, origin) = common::config::read_file(path)?;
        Self::parse(&text, &origin)
    }

    /// Parses and validates. `origin` names the file in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg: DatanodeConfig = common::config::parse_toml(text, origin)?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |field: String, message: String| ConfigError::invalid(origin, field, message);
        if self.rack.trim().is_empty() {
            return Err(invalid("rack".into(), "must not be empty".into()));
        }
        self.listen_addr().map_err(|e| {
            invalid(
                "listen".into(),
                format!("{:?} is not ip:port ({e})", self.listen),
            )
        })?;
        if !self.meta.is_empty()
            && self
                .cluster_id
                .as_deref()
                .is_none_or(|c| c.trim().is_empty())
        {
            return Err(invalid(
                "cluster_id".into(),
                "required when `meta` is set".into(),
            ));
        }
        for (i, a) in self.meta.iter().enumerate() {
            a.parse::<SocketAddr>().map_err(|e| {
                invalid(format!("meta[{i}]"), format!("{a:?} is not ip:port ({e})"))
            })?;
        }
        if self.disks.is_empty() {
            return Err(invalid(
                "disks".into(),
                "at least one [[disks]] entry is required".into(),
            ));
        }
        let mut ids = BTreeSet::new();
        let mut paths = BTreeSet::new();
        for (i, d) in self.disks.iter().enumerate() {
            if !ids.insert(d.id) {
                return Err(invalid(
                    format!("disks[{i}].id"),
                    format!("duplicate disk id {}", d.id),
                ));
            }
            if d.path.as_os_str().is_empty() {
                return Err(invalid(
                    format!("disks[{i}].path"),
                    "must not be empty".into(),
                ));
            }
            if !paths.insert(d.path.clone()) {
                return Err(invalid(
                    format!("disks[{i}].path"),
                    format!("{} is used by another disk", d.path.display()),
                ));
            }
            if d.capacity_bytes == 0 {
                return Err(invalid(
                    format!("disks[{i}].capacity_bytes"),
                    "must be positive".into(),
                ));
            }
            if d.max_fragment_bytes == Some(0) {
                return Err(invalid(
                    format!("disks[{i}].max_fragment_bytes"),
                    "must be positive".into(),
                ));
            }
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
node_id = 1
rack = "r1"
listen = "127.0.0.1:7101"
[[disks]]
id = 0
path = "/tmp/d0"
capacity_bytes = 1000
"#;

    fn err(text: &str) -> String {
        DatanodeConfig::parse(text, "dn.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn good_config_parses() {
        let c = DatanodeConfig::parse(GOOD, "dn.toml").unwrap();
        assert_eq!(c.node_id, 1);
        assert_eq!(c.disks[0].capacity_bytes, 1000);
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err(&GOOD.replace("rack = \"r1\"\n", "")).contains("rack"));
        assert!(err(&GOOD.replace("127.0.0.1:7101", "nowhere")).contains("field `listen`"));
        assert!(
            err(&GOOD.replace("capacity_bytes = 1000", "capacity_bytes = 0"))
                .contains("field `disks[0].capacity_bytes`")
        );
        assert!(
            err(&GOOD.replace("capacity_bytes = 1000", "capacity_bytes = \"big\""))
                .contains("capacity_bytes")
        );
        assert!(err(&format!("{GOOD}\nbogus = 1")).contains("bogus"));
        let dup = format!("{GOOD}[[disks]]\nid = 0\npath = \"/tmp/d1\"\ncapacity_bytes = 5\n");
        assert!(err(&dup).contains("field `disks[1].id`"));
    }
}
