use super::*;

#[test]
fn reasons_map_to_s3_codes() {
    let cases = [
        (Reason::NoSuchBucket, S3ErrorCode::NoSuchBucket),
        (Reason::KeyTooLong, S3ErrorCode::KeyTooLongError),
        (Reason::NoSuchUpload, S3ErrorCode::NoSuchUpload),
        (
            Reason::InvalidPart { part_number: 2 },
            S3ErrorCode::InvalidPart,
        ),
        (
            Reason::EntityTooSmall { part_number: 1 },
            S3ErrorCode::EntityTooSmall,
        ),
        (Reason::PreconditionFailed, S3ErrorCode::PreconditionFailed),
        (Reason::NoParts, S3ErrorCode::MalformedXML),
    ];
    for (r, code) in cases {
        assert_eq!(reason_code(&r), code, "{r:?}");
    }
}

#[test]
fn unavailable_carries_retry_after() {
    let e = meta(MetaClientError::Unavailable {
        retry_after: Duration::from_millis(1500),
        detail: "no quorum".into(),
    });
    assert_eq!(e.code(), &S3ErrorCode::ServiceUnavailable);
    assert!(e.message().unwrap_or_default().contains("no quorum"));
}
