//! Numbered wire errors: a failed call carries `datanode::ErrorCode` in the
//! `shale-error-code` metadata entry next to the gRPC status, so clients act on a
//! number, not on message text.

use crate::datanode::ErrorCode;

pub const ERROR_CODE_KEY: &str = "shale-error-code";

/// A status with a gRPC code derived from `code` and the numbered code attached.
pub fn status_with_code(code: ErrorCode, message: impl Into<String>) -> tonic::Status {
    let grpc = match code {
        ErrorCode::NotFound => tonic::Code::NotFound,
        ErrorCode::Corrupt => tonic::Code::DataLoss,
        ErrorCode::NoSpace => tonic::Code::ResourceExhausted,
        ErrorCode::InvalidArgument | ErrorCode::ChecksumMismatch => tonic::Code::InvalidArgument,
        ErrorCode::AlreadyExists => tonic::Code::AlreadyExists,
        ErrorCode::TooLarge => tonic::Code::OutOfRange,
        ErrorCode::UnknownDisk => tonic::Code::NotFound,
        ErrorCode::Unavailable => tonic::Code::Unavailable,
        ErrorCode::Io | ErrorCode::Unspecified => tonic::Code::Internal,
    };
    let mut status = tonic::Status::new(grpc, message);
    if let Ok(v) = (code as i32).to_string().parse() {
        status.metadata_mut().insert(ERROR_CODE_KEY, v);
    }
    status
}

/// The numbered code a status carries (`Unspecified` if none, e.g. a transport error).
pub fn error_code(status: &tonic::Status) -> ErrorCode {
    status
        .metadata()
        .get(ERROR_CODE_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<i32>().ok())
        .and_then(|n| ErrorCode::try_from(n).ok())
        .unwrap_or(ErrorCode::Unspecified)
}
