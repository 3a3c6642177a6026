//! `DataError`: every way the data path can fail, as the S3 layer sees it. All of them
//! mean "the cluster cannot serve this right now" (503 with Retry-After) except
//! [`DataError::InvalidRange`] and [`DataError::BadRecord`], which are bugs of the caller
//! or of the stored record.

use common::ids::StripeId;
use placement::PlanError;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// The cluster map could not be fetched (metadata plane unreachable, no cached map).
    #[error("cluster map unavailable: {0}")]
    Topology(String),

    /// The erasure-coding parameters are not usable.
    #[error("erasure coding: {0}")]
    Codec(String),

    /// The planner could not place a stripe (the message says what the cluster lacks).
    #[error("cannot place stripe {stripe}: {error}")]
    Placement { stripe: StripeId, error: PlanError },

    /// Fewer fragments of a stripe became durable than a PUT may accept (`k+1`), even
    /// after re-placing the failed ones.
    #[error(
        "stripe {stripe}: only {durable} of {total} fragments could be written durably, at \
         least {needed} are required (last failure: {last_failure})"
    )]
    NotEnoughDurable {
        stripe: StripeId,
        durable: usize,
        total: usize,
        needed: usize,
        last_failure: String,
    },

    /// Fewer than `k` fragments of a stripe could be read.
    #[error(
        "stripe {stripe}: only {readable} fragments could be read, {needed} are needed \
         (last failure: {last_failure})"
    )]
    NotEnoughReadable {
        stripe: StripeId,
        readable: usize,
        needed: usize,
        last_failure: String,
    },

    /// A read asked for bytes outside the body.
    #[error("range {start}..{end} is outside a body of {len} bytes")]
    InvalidRange { start: u64, end: u64, len: u64 },

    /// A stripe record does not describe a readable stripe (wrong number of locations,
    /// impossible length).
    #[error("stripe record {stripe} is malformed: {reason}")]
    BadRecord { stripe: StripeId, reason: String },

    /// The writer already failed; the caller should `abort` it.
    #[error("the stripe writer failed earlier: {0}")]
    WriterFailed(String),

    /// The body took longer than `max_upload` from its writer's start to its end: its
    /// fragments were deleted and it is not committed, because the orphan sweep may
    /// collect fragments that stay unreferenced longer than its grace period.
    #[error(
        "the upload took {elapsed_secs} s, longer than the {max_secs} s a body may take          (fragments older than that may be collected as orphans)"
    )]
    UploadTooLong { elapsed_secs: u64, max_secs: u64 },

    /// A task of the data path died (panic or runtime shutdown).
    #[error("data path task failed: {0}")]
    Task(String),
}
