use super::*;

#[test]
fn copy_ranges() {
    assert_eq!(parse_copy_range("bytes=0-9", 100).expect("ok"), 0..10);
    assert_eq!(parse_copy_range("bytes=99-99", 100).expect("ok"), 99..100);
    for bad in ["0-9", "bytes=5-1", "bytes=-5", "bytes=a-b", "bytes=3-"] {
        assert_eq!(
            parse_copy_range(bad, 100).expect_err(bad).code(),
            &S3ErrorCode::InvalidArgument,
            "{bad}"
        );
    }
    assert_eq!(
        parse_copy_range("bytes=0-100", 100)
            .expect_err("past end")
            .code(),
        &S3ErrorCode::InvalidRange
    );
}
