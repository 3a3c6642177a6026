//! Shale's S3 gateway: the S3 HTTP API (s3s over hyper), SigV4, and the PUT/GET data
//! pipelines (`data`). Stateless: everything durable lives in the metadata plane and on
//! data nodes.
//!
//! - `server`: HTTP front end (hyper `serve_connection`, connection cap and idle
//!   timeout; `activity_io` counts bytes moved), s3s service assembly; `range_route`
//!   ignores an invalid Range header, as S3 does.
//! - `tls`: optional HTTPS (rustls, ring provider) from the config's PEM files.
//! - `connect`: reaching the metadata plane at start-up (retried while it is not up).
//! - `auth`: access keys, clock-skew and bucket-ownership checks.
//! - `gateway` + `ops_*`: the S3 semantics of each operation; `s3_impl` wires them into
//!   s3s's `S3` trait.
//! - `checksum`: MD5 / CRC / SHA digests verified before commit.
//! - `error`: every failure as the S3 error a client expects.
//! - `client`: a small SigV4 client (simulation, `shale bench`).
//! - `data`: stripes, erasure coding, placement and fragment I/O.

mod activity_io;
pub mod auth;
pub mod checksum;
pub mod client;
pub mod config;
pub mod connect;
pub mod data;
pub mod error;
pub mod gateway;
mod ops_bucket;
mod ops_copy;
mod ops_list;
mod ops_multipart;
mod ops_object;
mod range_route;
mod s3_impl;
pub mod server;
pub mod tls;

pub use config::GatewayConfig;
pub use gateway::Gateway;
