//! Validating conversions between wire messages and domain types, one file per message.
//!
//! The metadata records that live in `meta-raft` (versions, buckets, uploads, …) are
//! converted there (`meta_raft::wire`), on top of the conversions of the `common` types
//! here: `proto` sits below `meta-raft` in the dependency order.

mod codec_params;
mod fragment_id;
mod fragment_location;
pub mod meta_error;
mod node_info;

pub use fragment_location::{stripe_id_from_wire, stripe_id_to_wire};
pub use node_info::{
    disk_state_from_wire, disk_state_to_wire, node_state_from_wire, node_state_to_wire,
};

/// A wire message that does not make a valid domain value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ConvertError {
    pub field: &'static str,
    pub reason: String,
}

impl ConvertError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Unwraps a required sub-message.
pub fn required<T>(v: Option<T>, field: &'static str) -> Result<T, ConvertError> {
    v.ok_or_else(|| ConvertError::new(field, "missing"))
}
