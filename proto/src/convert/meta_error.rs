//! Numbered metadata-service errors on the wire: a failed call is a `tonic::Status` whose
//! metadata carries the numbered `meta::MetaErrorCode` (decimal, [`META_ERROR_CODE_KEY`],
//! like the data node's `shale-error-code`) and the whole `meta::MetaError`
//! (protobuf, [`META_ERROR_KEY`]) with the leader hint and the rejection's details.
//! Clients act on the code, never on message text.

use prost::Message;

use crate::meta::{MetaError, MetaErrorCode};

pub const META_ERROR_CODE_KEY: &str = "shale-meta-error-code";
/// Binary metadata (the `-bin` suffix makes gRPC carry it base64-encoded).
pub const META_ERROR_KEY: &str = "shale-meta-error-bin";

/// The gRPC status code that goes with a metadata error code (for generic gRPC tools;
/// Shale clients read the numbered code).
pub fn grpc_code(code: MetaErrorCode) -> tonic::Code {
    use MetaErrorCode as C;
    match code {
        C::NotLeader | C::NoQuorum | C::Unavailable => tonic::Code::Unavailable,
        C::WrongGroup | C::WrongCluster => tonic::Code::FailedPrecondition,
        C::Internal | C::Unspecified => tonic::Code::Internal,
        C::Malformed
        | C::InvalidBucketName
        | C::KeyTooLong
        | C::InvalidPart
        | C::InvalidPartOrder
        | C::EntityTooSmall
        | C::InvalidPartNumber
        | C::TooManyParts
        | C::NoParts
        | C::InvalidArgument => tonic::Code::InvalidArgument,
        C::NoSuchBucket | C::NoSuchKey | C::NoSuchVersion | C::NoSuchUpload | C::NoSuchStripe => {
            tonic::Code::NotFound
        }
        C::BucketAlreadyExists | C::BucketAlreadyOwnedByYou => tonic::Code::AlreadyExists,
        C::BucketNotEmpty | C::PreconditionFailed | C::PlacementMismatch => {
            tonic::Code::FailedPrecondition
        }
        C::VersionIdConflict | C::UploadIdConflict | C::StripeInUse => tonic::Code::Aborted,
    }
}

/// A failed call carrying `err`.
pub fn meta_status(err: &MetaError) -> tonic::Status {
    let code = MetaErrorCode::try_from(err.code).unwrap_or(MetaErrorCode::Unspecified);
    let mut status = tonic::Status::new(grpc_code(code), err.message.clone());
    if let Ok(v) = err.code.to_string().parse() {
        status.metadata_mut().insert(META_ERROR_CODE_KEY, v);
    }
    status.metadata_mut().insert_bin(
        META_ERROR_KEY,
        tonic::metadata::MetadataValue::from_bytes(&err.encode_to_vec()),
    );
    status
}

/// A `MetaError` with just a code and a message.
pub fn meta_error(code: MetaErrorCode, message: impl Into<String>) -> MetaError {
    MetaError {
        code: code as i32,
        message: message.into(),
        ..MetaError::default()
    }
}

/// The `MetaError` a failed call carries, if any (`None` for transport failures and
/// statuses from something that is not a meta node). A detail entry that does not decode
/// falls back to the numbered code alone.
pub fn meta_error_of(status: &tonic::Status) -> Option<MetaError> {
    let code: Option<i32> = status
        .metadata()
        .get(META_ERROR_CODE_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok());
    let details = status
        .metadata()
        .get_bin(META_ERROR_KEY)
        .and_then(|v| v.to_bytes().ok())
        .and_then(|b| MetaError::decode(b.as_ref()).ok());
    match (details, code) {
        (Some(d), _) => Some(d),
        (None, Some(code)) => Some(MetaError {
            code,
            message: status.message().to_owned(),
            ..MetaError::default()
        }),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_through_a_status() {
        let err = MetaError {
            code: MetaErrorCode::NotLeader as i32,
            message: "not the leader".into(),
            leader_id: Some(3),
            leader_addr: "127.0.0.1:7003".into(),
            group_id: 2,
            ..MetaError::default()
        };
        let status = meta_status(&err);
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(meta_error_of(&status), Some(err));
        assert_eq!(
            meta_error_of(&tonic::Status::unavailable("conn refused")),
            None
        );
        let rejected = meta_status(&meta_error(MetaErrorCode::NoSuchKey, "no such key"));
        assert_eq!(rejected.code(), tonic::Code::NotFound);
        assert_eq!(
            meta_error_of(&rejected).map(|e| e.code),
            Some(MetaErrorCode::NoSuchKey as i32)
        );
    }
}
