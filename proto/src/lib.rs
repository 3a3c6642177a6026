//! Shale's wire boundary: generated protobuf/tonic code plus validating conversions to
//! the domain types in `common`. Nothing else in the workspace defines wire formats.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod datanode {
    tonic::include_proto!("shale.datanode.v1");
}
