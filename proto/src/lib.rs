//! Shale's wire boundary: generated protobuf/tonic code plus validating conversions to
//! the domain types in `common`. Nothing else in the workspace defines wire formats.
//!
//! Architecture invariant: every message that crosses the network is validated here
//! (`convert/`) before it becomes a domain value; a malformed message is an error,
//! never a panic.

pub mod convert;
mod wire_error;

pub use convert::meta_error::{
    meta_error, meta_error_of, meta_status, META_ERROR_CODE_KEY, META_ERROR_KEY,
};
pub use wire_error::{error_code, status_with_code, ERROR_CODE_KEY};

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod datanode {
    tonic::include_proto!("shale.datanode.v1");
}

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod raft {
    tonic::include_proto!("shale.raft.v1");
}

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod meta {
    tonic::include_proto!("shale.meta.v1");
}
