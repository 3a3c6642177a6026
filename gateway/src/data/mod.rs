//! The data path: object bytes ⇄ erasure-coded fragments on data nodes.
//!
//! - [`DataPlane`] (`plane.rs`): shared state and entry points — [`DataPlane::writer`]
//!   (PUT), [`DataPlane::read`] (GET), [`DataPlane::delete_stripes`] (aborted PUTs).
//! - [`StripeWriter`] (`writer.rs`): the streaming PUT pipeline. Bytes are cut into
//!   stripes of `stripe_data_bytes`; each stripe is encoded (`common::codec`, on the
//!   blocking pool when large), placed (`placement::plan_stripe`, away from suspect
//!   nodes) and its `k+m` fragments are streamed to their data nodes in parallel, each
//!   acknowledged after fsync. A failed or timed-out fragment write marks its node
//!   suspect and is re-placed (`placement::plan_replacements`, rack rule kept) and
//!   retried; a stripe is accepted with all `k+m` fragments durable or, failing that,
//!   at least `k+1` (the rest keep their planned location, are counted in
//!   [`DataStats`] and await repair); fewer is [`DataError::NotEnoughDurable`].
//! - `reader.rs`: the streaming GET pipeline. Healthy stripes read only the byte ranges
//!   of the data fragments that cover the request, in parallel, and never decode; a
//!   missing, corrupt, unreachable or slow (`hedge_after`) data fragment makes the
//!   stripe read whole fragments from other indexes and decode. The next stripe is
//!   prefetched while the current one streams.
//! - [`Topology`]: where the cluster map comes from ([`MetaTopology`]: the metadata
//!   plane, cached; [`StaticTopology`]: fixed, for tests).
//! - [`DataPlane::rebuild_stripe`] (`rebuild.rs`): repair's primitive — read `k` healthy
//!   fragments of a stripe, rebuild the lost ones, write them to new locations, return the
//!   new placement.
//! - `node_pool.rs`: one lazily connected channel per data node and the fragment calls;
//!   `suspects.rs`: the gateway-local memory of nodes that just failed.
//!
//! # Memory bounds
//! With `S = stripe_data_bytes`, `F = max_stripes_in_flight`, `R =
//! read_stripes_in_flight` and a `k+m` code:
//! - a PUT holds at most the stripe being filled (`S`) plus `F` stripes in flight, each
//!   its data while encoding and then its `k+m` fragments (`S·(k+m)/k`): about
//!   `(F+1) · S · (k+m)/k` plus the caller's current chunk — 18 MiB at the defaults
//!   (4 MiB, 2, 8+4). The count of stripes in flight is measured
//!   ([`DataStats::writer_stripes_high_water`]).
//! - a GET holds at most `R` stripes' worth of fragment bytes (`R · S`; a degraded stripe
//!   `S·(k+1)/k` while decoding plus the decoded stripe): about 8–17 MiB at the defaults.
//!
//! # Determinism
//! Stripe ids come from the plane's `Env` random stream, time from its clock, tasks
//! from `Env::spawn`; nothing here reads OS time or randomness.

mod config;
mod error;
mod meta_topology;
mod node_pool;
mod plane;
mod reader;
mod rebuild;
mod stats;
mod suspects;
mod topology;
mod writer;

#[cfg(test)]
mod reader_test;
#[cfg(test)]
mod rebuild_test;
#[cfg(test)]
mod test_cluster;
#[cfg(test)]
mod writer_test;

pub use config::DataConfig;
pub use error::DataError;
pub use meta_topology::{MetaTopology, DEFAULT_REFRESH_EVERY};
pub use plane::DataPlane;
pub use rebuild::{RebuildError, Rebuilt};
pub use stats::DataStats;
pub use topology::{StaticTopology, Topology};
pub use writer::StripeWriter;
