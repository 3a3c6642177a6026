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
//! # Optional: the scrubber (re-reads and verifies every fragment): a full pass at most
//! # every `scrub_interval_secs` (60 ..= 31536000, default 604800 = 7 days), reading at
//! # most `scrub_bytes_per_sec` (at least 65536, default 16 MiB/s) for the whole node.
//! # scrub_interval_secs = 604800
//! # scrub_bytes_per_sec = 16777216
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
    /// A full scrub pass starts at most this often (seconds).
    #[serde(default = "default_scrub_interval_secs")]
    pub scrub_interval_secs: u64,
    /// Bytes per second the scrubber may read (whole node).
    #[serde(default = "default_scrub_bytes_per_sec")]
    pub scrub_bytes_per_sec: u64,
}

/// Bounds of the scrub settings.
pub const SCRUB_INTERVAL_SECS_MIN: u64 = 60;
pub const SCRUB_INTERVAL_SECS_MAX: u64 = 365 * 24 * 3600;
pub const SCRUB_BYTES_PER_SEC_MIN: u64 = 64 << 10;

fn default_scrub_interval_secs() -> u64 {
    crate::scrub::ScrubConfig::default().interval.as_secs()
}

fn default_scrub_bytes_per_sec() -> u64 {
    crate::scrub::ScrubConfig::default().bytes_per_sec
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
        if !(SCRUB_INTERVAL_SECS_MIN..=SCRUB_INTERVAL_SECS_MAX).contains(&self.scrub_interval_secs)
        {
            return Err(invalid(
                "scrub_interval_secs".into(),
                format!(
                    "must be {SCRUB_INTERVAL_SECS_MIN}..={SCRUB_INTERVAL_SECS_MAX}, got {}",
                    self.scrub_interval_secs
                ),
            ));
        }
        if self.scrub_bytes_per_sec < SCRUB_BYTES_PER_SEC_MIN {
            return Err(invalid(
                "scrub_bytes_per_sec".into(),
                format!(
                    "must be at least {SCRUB_BYTES_PER_SEC_MIN}, got {}",
                    self.scrub_bytes_per_sec
                ),
            ));
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

    /// The scrubber's schedule and budget.
    pub fn scrub_config(&self) -> crate::scrub::ScrubConfig {
        crate::scrub::ScrubConfig {
            interval: std::time::Duration::from_secs(self.scrub_interval_secs),
            bytes_per_sec: self.scrub_bytes_per_sec,
        }
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

    #[test]
    fn scrub_settings_default_parse_and_are_validated() {
        let c = DatanodeConfig::parse(GOOD, "dn.toml").unwrap();
        assert_eq!(c.scrub_config(), crate::scrub::ScrubConfig::default());
        let with = |extra: &str| GOOD.replace("[[disks]]", &format!("{extra}\n[[disks]]"));
        let c = DatanodeConfig::parse(
            &with("scrub_interval_secs = 3600\nscrub_bytes_per_sec = 1048576"),
            "dn.toml",
        )
        .unwrap();
        assert_eq!(c.scrub_config().interval.as_secs(), 3600);
        assert_eq!(c.scrub_config().bytes_per_sec, 1 << 20);
        assert!(err(&with("scrub_interval_secs = 5")).contains("field `scrub_interval_secs`"));
        assert!(
            err(&with("scrub_interval_secs = 40000000")).contains("field `scrub_interval_secs`")
        );
        assert!(err(&with("scrub_bytes_per_sec = 0")).contains("field `scrub_bytes_per_sec`"));
        assert!(err(&with("scrub_bytes_per_sec = \"fast\"")).contains("scrub_bytes_per_sec"));
    }
}
