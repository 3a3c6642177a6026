use base64::Engine as _;
use http::HeaderValue;

use super::*;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn digest(algs: &[&'static str], data: &[u8]) -> Digest {
    let mut d = BodyDigest::new(algs);
    for chunk in data.chunks(7) {
        d.update(chunk);
    }
    d.finish()
}

#[test]
fn md5_and_crc32_of_known_input() {
    let d = digest(&["crc32", "crc32c"], b"hello world");
    assert_eq!(d.etag(), "5eb63bbbe01eeed093cb22bb8f5acdc3");
    assert_eq!(d.size, 11);
    // crc32("hello world") = 0x0d4a1185
    assert_eq!(d.checksums["crc32"], b64(&[0x0d, 0x4a, 0x11, 0x85]));
    // crc32c("hello world") = 0xc99465aa
    assert_eq!(d.checksums["crc32c"], b64(&[0xc9, 0x94, 0x65, 0xaa]));
}

#[test]
fn content_md5_is_checked() {
    let data = b"some bytes";
    let good = digest(&[], data);
    let mut h = HeaderMap::new();
    h.insert(
        "content-md5",
        HeaderValue::from_str(&b64(&good.md5)).expect("hv"),
    );
    let d = Declared::from_headers(&h).expect("declared");
    verify(&d, None, &good).expect("matches");
    let other = digest(&[], b"other bytes");
    let e = verify(&d, None, &other).expect_err("mismatch");
    assert_eq!(e.code(), &S3ErrorCode::BadDigest);
}

#[test]
fn malformed_content_md5_is_invalid_digest() {
    for bad in ["not base64!", "AAAA", ""] {
        let mut h = HeaderMap::new();
        h.insert("content-md5", HeaderValue::from_str(bad).expect("hv"));
        let e = Declared::from_headers(&h).expect_err(bad);
        assert_eq!(e.code(), &S3ErrorCode::InvalidDigest, "{bad:?}");
    }
}

#[test]
fn header_and_trailer_checksums_are_checked() {
    let data = b"payload";
    let good = digest(&["sha256"], data);
    let mut h = HeaderMap::new();
    h.insert(
        "x-amz-trailer",
        HeaderValue::from_static("x-amz-checksum-sha256"),
    );
    let d = Declared::from_headers(&h).expect("declared");
    assert_eq!(d.compute, vec!["sha256"]);
    let mut t = HeaderMap::new();
    t.insert(
        "x-amz-checksum-sha256",
        HeaderValue::from_str(&good.checksums["sha256"]).expect("hv"),
    );
    verify(&d, Some(&t), &good).expect("trailer matches");
    t.insert("x-amz-checksum-sha256", HeaderValue::from_static("AAAA"));
    let e = verify(&d, Some(&t), &good).expect_err("trailer mismatch");
    assert_eq!(e.code(), &S3ErrorCode::BadDigest);

    let mut h = HeaderMap::new();
    h.insert("x-amz-checksum-crc32", HeaderValue::from_static("AAAAAA=="));
    let d = Declared::from_headers(&h).expect("declared");
    let e = verify(&d, None, &digest(&d.compute, data)).expect_err("header mismatch");
    assert_eq!(e.code(), &S3ErrorCode::BadDigest);
}

#[test]
fn unsupported_algorithm_is_rejected() {
    let mut h = HeaderMap::new();
    h.insert(
        "x-amz-sdk-checksum-algorithm",
        HeaderValue::from_static("MD4"),
    );
    assert!(Declared::from_headers(&h).is_err());
}

#[test]
fn announced_trailers_must_arrive_and_only_they() {
    let mut h = HeaderMap::new();
    h.insert(
        "x-amz-trailer",
        HeaderValue::from_static("x-amz-checksum-crc32c"),
    );
    let d = Declared::from_headers(&h).expect("declared");
    assert_eq!(d.trailer, vec!["crc32c"]);
    let malformed = |r: Result<(), S3Error>| {
        let e = r.expect_err("malformed trailer");
        assert_eq!(e.code().as_str(), "MalformedTrailerError");
        assert_eq!(e.status_code(), Some(http::StatusCode::BAD_REQUEST));
    };
    // Announced, missing (no trailers at all, or another one).
    malformed(check_trailer(&d, None));
    let mut other = HeaderMap::new();
    other.insert("x-amz-checksum-crc32", HeaderValue::from_static("AAAAAA=="));
    malformed(check_trailer(&d, Some(&other)));
    // Announced and present.
    let mut t = HeaderMap::new();
    t.insert(
        "x-amz-checksum-crc32c",
        HeaderValue::from_static("AAAAAA=="),
    );
    check_trailer(&d, Some(&t)).expect("announced trailer arrived");
    // Nothing announced: no checksum trailer may arrive.
    let none = Declared::default();
    check_trailer(&none, None).expect("no trailer");
    malformed(check_trailer(&none, Some(&t)));
}
