//! `shale gateway --config FILE.toml`. Every error names the offending field.
//!
//! ```toml
//! cluster_id = "prod-eu-1"                       # must match the meta nodes'
//! listen = "127.0.0.1:9000"                      # S3 HTTP endpoint
//! meta = ["127.0.0.1:7201", "127.0.0.1:7202"]    # seed meta nodes
//! # region = "us-east-1"                         # SigV4 region
//! # virtual_host_domains = ["s3.example.com"]    # enables bucket.s3.example.com
//! # codec = "rs-simd"  k = 8  m = 4              # erasure code of new objects
//! # inline_max_bytes = 4096                      # smaller objects live in metadata
//! # max_object_bytes = 5368709120                # single PUT / part limit (5 GiB)
//! # min_part_bytes = 5242880                     # every multipart part but the last is at
//! #                                              # least this (EntityTooSmall); 5 MiB as S3
//! # stripe_data_bytes = 4194304                  # object bytes per stripe
//! # max_clock_skew_secs = 900                    # RequestTimeTooSkewed beyond this
//! # max_upload_secs = 3600                       # a slower PUT / part is refused
//! #                                              # (RequestTimeout); keep it well under
//! #                                              # the meta nodes' orphan_grace_secs
//! # tls_cert = "/etc/shale/gateway.crt"          # HTTPS: PEM certificate chain (leaf first)
//! # tls_key = "/etc/shale/gateway.key"           # HTTPS: PEM private key (both or neither)
//! ```
//!
//! Relative `tls_cert` / `tls_key` paths are relative to the working directory. The PEM
//! files are read at start-up by [`crate::tls::Tls::from_config`].

use std::net::SocketAddr;
use std::path::Path;

use common::codec::{CodecId, CodecParams};
use serde::Deserialize;

pub use common::config::ConfigError as GatewayConfigError;

/// Largest object stored inline in its version record (Raft-replicated, no stripes).
pub const INLINE_MAX_BYTES_LIMIT: u64 = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    pub cluster_id: String,
    pub listen: String,
    pub meta: Vec<String>,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default)]
    pub virtual_host_domains: Vec<String>,
    #[serde(default = "default_codec")]
    pub codec: String,
    #[serde(default = "default_k")]
    pub k: u8,
    #[serde(default = "default_m")]
    pub m: u8,
    #[serde(default = "default_inline")]
    pub inline_max_bytes: u64,
    #[serde(default = "default_max_object")]
    pub max_object_bytes: u64,
    /// Smallest size of every part but the last of a multipart upload (S3: 5 MiB); a
    /// Complete naming a smaller one fails with EntityTooSmall.
    #[serde(default = "default_min_part")]
    pub min_part_bytes: u64,
    #[serde(default = "default_stripe")]
    pub stripe_data_bytes: usize,
    #[serde(default = "default_skew")]
    pub max_clock_skew_secs: u64,
    /// Longest a body (PUT, part, copy) may take to write; see `DataConfig::max_upload`.
    #[serde(default = "default_max_upload")]
    pub max_upload_secs: u64,
    /// PEM certificate chain (leaf first): with `tls_key`, the endpoint speaks HTTPS only.
    #[serde(default)]
    pub tls_cert: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<String>,
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_codec() -> String {
    "rs-simd".into()
}
fn default_k() -> u8 {
    8
}
fn default_m() -> u8 {
    4
}
fn default_inline() -> u64 {
    4096
}
fn default_max_object() -> u64 {
    5 << 30
}
fn default_min_part() -> u64 {
    crate::gateway::MIN_PART_BYTES
}
fn default_stripe() -> usize {
    4 << 20
}
fn default_skew() -> u64 {
    900
}
fn default_max_upload() -> u64 {
    3600
}

impl GatewayConfig {
    /// A config with every default, for `shale dev` and tests.
    pub fn new(cluster_id: &str, listen: &str, meta: Vec<String>) -> Self {
        GatewayConfig {
            cluster_id: cluster_id.into(),
            listen: listen.into(),
            meta,
            region: default_region(),
            virtual_host_domains: Vec::new(),
            codec: default_codec(),
            k: default_k(),
            m: default_m(),
            inline_max_bytes: default_inline(),
            max_object_bytes: default_max_object(),
            min_part_bytes: default_min_part(),
            stripe_data_bytes: default_stripe(),
            max_clock_skew_secs: default_skew(),
            max_upload_secs: default_max_upload(),
            tls_cert: None,
            tls_key: None,
        }
    }

    /// The data path's settings this config decides (the rest are defaults).
    pub fn data_config(&self) -> crate::data::DataConfig {
        crate::data::DataConfig {
            stripe_data_bytes: self.stripe_data_bytes,
            max_upload: std::time::Duration::from_secs(self.max_upload_secs),
            ..crate::data::DataConfig::default()
        }
    }

    pub fn load(path: &Path) -> Result<Self, GatewayConfigError> {
        let (text, origin) = common::config::read_file(path)?;
        Self::parse(&text, &origin)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, GatewayConfigError> {
        let cfg: GatewayConfig = common::config::parse_toml(text, origin)?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        self.listen.parse()
    }

    /// The erasure code of new objects.
    pub fn codec_params(&self) -> Result<CodecParams, String> {
        let id: CodecId = self
            .codec
            .parse()
            .map_err(|e| format!("unknown codec {:?}: {e}", self.codec))?;
        CodecParams::new(id, self.k, self.m).map_err(|e| e.to_string())
    }

    pub fn validate(&self, origin: &str) -> Result<(), GatewayConfigError> {
        let invalid =
            |field: &str, message: String| GatewayConfigError::invalid(origin, field, message);
        if self.cluster_id.trim().is_empty() {
            return Err(invalid("cluster_id", "must not be empty".into()));
        }
        self.listen_addr()
            .map_err(|e| invalid("listen", format!("{:?} is not ip:port ({e})", self.listen)))?;
        if self.meta.is_empty() {
            return Err(invalid("meta", "at least one meta node address".into()));
        }
        for (i, a) in self.meta.iter().enumerate() {
            a.parse::<SocketAddr>().map_err(|e| {
                invalid(&format!("meta[{i}]"), format!("{a:?} is not ip:port ({e})"))
            })?;
        }
        if self.region.trim().is_empty() {
            return Err(invalid("region", "must not be empty".into()));
        }
        self.codec_params().map_err(|e| invalid("codec", e))?;
        if self.inline_max_bytes > INLINE_MAX_BYTES_LIMIT {
            return Err(invalid(
                "inline_max_bytes",
                format!("at most {INLINE_MAX_BYTES_LIMIT}"),
            ));
        }
        if self.max_object_bytes == 0 || self.max_object_bytes > 5 << 40 {
            return Err(invalid("max_object_bytes", "must be 1..=5 TiB".into()));
        }
        if !(1..=5 << 30).contains(&self.min_part_bytes) {
            return Err(invalid("min_part_bytes", "must be 1..=5 GiB".into()));
        }
        if !(64 * 1024..=64 << 20).contains(&self.stripe_data_bytes) {
            return Err(invalid(
                "stripe_data_bytes",
                "must be between 64 KiB and 64 MiB".into(),
            ));
        }
        if self.max_clock_skew_secs == 0 || self.max_clock_skew_secs > 7 * 24 * 3600 {
            return Err(invalid("max_clock_skew_secs", "must be 1..=604800".into()));
        }
        if !(60..=7 * 24 * 3600).contains(&self.max_upload_secs) {
            return Err(invalid("max_upload_secs", "must be 60..=604800".into()));
        }
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(invalid(
                    "tls_key",
                    "tls_cert is set: HTTPS needs tls_key too (or neither)".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "tls_cert",
                    "tls_key is set: HTTPS needs tls_cert too (or neither)".into(),
                ));
            }
            (Some(cert), Some(key)) => {
                for (field, path) in [("tls_cert", cert), ("tls_key", key)] {
                    if path.trim().is_empty() {
                        return Err(invalid(field, "must be a PEM file path".into()));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "config_test.rs"]
mod config_test;
