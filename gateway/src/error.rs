//! Mapping every failure to the S3 error a client expects (code, status, XML body).
//!
//! Business outcomes of the metadata plane (`Reason`) map one to one onto S3 codes; an
//! unreachable quorum or too few data nodes is `503 ServiceUnavailable` with
//! `Retry-After`; anything else is `500 InternalError` (logged, never a panic).

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use meta_raft::client::MetaClientError;
use meta_raft::state_machine::Reason;
use s3s::{S3Error, S3ErrorCode};

use crate::data::DataError;

/// An S3 error with a message.
pub fn s3(code: S3ErrorCode, message: impl Into<String>) -> S3Error {
    S3Error::with_message(code, message.into())
}

/// `503 ServiceUnavailable` with `Retry-After` (whole seconds, at least 1).
pub fn unavailable(message: impl Into<String>, retry_after: Duration) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::ServiceUnavailable, message.into());
    let mut headers = HeaderMap::new();
    let secs = retry_after.as_secs().max(1);
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        headers.insert(http::header::RETRY_AFTER, v);
    }
    // `set_headers` replaces the response headers: keep the XML content type.
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    e.set_headers(headers);
    e
}

/// `e` answered with extra response headers (`x-amz-delete-marker`, validators). s3s
/// replaces the response headers with the error's: the XML content type is added (s3s
/// drops it again for bodyless statuses such as 304).
pub fn with_headers(mut e: S3Error, mut headers: HeaderMap) -> S3Error {
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    e.set_headers(headers);
    e
}

/// The S3 code for a rejected metadata command or query.
pub fn reason_code(reason: &Reason) -> S3ErrorCode {
    match reason {
        Reason::NoSuchBucket => S3ErrorCode::NoSuchBucket,
        Reason::BucketAlreadyExists => S3ErrorCode::BucketAlreadyExists,
        Reason::BucketAlreadyOwnedByYou => S3ErrorCode::BucketAlreadyOwnedByYou,
        Reason::BucketNotEmpty => S3ErrorCode::BucketNotEmpty,
        Reason::InvalidBucketName => S3ErrorCode::InvalidBucketName,
        Reason::KeyTooLong => S3ErrorCode::KeyTooLongError,
        Reason::NoSuchKey => S3ErrorCode::NoSuchKey,
        Reason::NoSuchVersion => S3ErrorCode::NoSuchVersion,
        Reason::PreconditionFailed => S3ErrorCode::PreconditionFailed,
        Reason::NoSuchUpload => S3ErrorCode::NoSuchUpload,
        Reason::InvalidPart { .. } => S3ErrorCode::InvalidPart,
        Reason::InvalidPartOrder => S3ErrorCode::InvalidPartOrder,
        Reason::EntityTooSmall { .. } => S3ErrorCode::EntityTooSmall,
        Reason::InvalidPartNumber | Reason::TooManyParts | Reason::InvalidArgument(_) => {
            S3ErrorCode::InvalidArgument
        }
        Reason::NoParts => S3ErrorCode::MalformedXML,
        Reason::VersionIdConflict
        | Reason::UploadIdConflict
        | Reason::StripeInUse(_)
        | Reason::NoSuchStripe(_)
        | Reason::PlacementMismatch => S3ErrorCode::InternalError,
    }
}

/// A metadata-plane failure as an S3 error.
pub fn meta(e: MetaClientError) -> S3Error {
    match e {
        MetaClientError::Rejected(reason) => {
            let code = reason_code(&reason);
            if code == S3ErrorCode::InternalError {
                tracing::error!(%reason, "metadata rejected a command the gateway built");
            }
            s3(code, reason.to_string())
        }
        MetaClientError::Unavailable {
            retry_after,
            detail,
        } => unavailable(
            format!("metadata service unavailable: {detail}"),
            retry_after,
        ),
        MetaClientError::StaleGroupMap(d) => unavailable(
            format!("metadata group map changing: {d}"),
            Duration::from_secs(1),
        ),
        other => {
            tracing::error!(error = %other, "metadata call failed");
            s3(S3ErrorCode::InternalError, other.to_string())
        }
    }
}

/// A data-path failure as an S3 error.
pub fn data(e: DataError) -> S3Error {
    tracing::warn!(error = %e, "data path failed");
    if let DataError::UploadTooLong { .. } = e {
        return s3(S3ErrorCode::RequestTimeout, e.to_string());
    }
    unavailable(format!("data path: {e}"), Duration::from_secs(1))
}

/// A request body that failed while being read: aws-chunked signature mismatch, payload
/// hash mismatch, size limit, or a client that went away.
pub fn body(e: s3s::StdError) -> S3Error {
    if let Some(x) = e.downcast_ref::<s3s::stream::aws_chunked_stream::AwsChunkedStreamError>() {
        return s3(x.to_s3_error_code(), x.to_string());
    }
    if let Some(x) = e.downcast_ref::<s3s::stream::upload_stream::UploadStreamError>() {
        return s3(x.to_s3_error_code(), x.to_string());
    }
    if e.is::<s3s::BodySizeLimitExceeded>() {
        return s3(
            S3ErrorCode::EntityTooLarge,
            "the body exceeds the size limit",
        );
    }
    s3(
        S3ErrorCode::IncompleteBody,
        format!("reading the request body failed: {e}"),
    )
}

#[cfg(test)]
#[path = "error_test.rs"]
mod error_test;
