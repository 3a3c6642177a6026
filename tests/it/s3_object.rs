//! Objects through aws-sdk-s3: byte-exact round trips from empty to multi-stripe, headers
//! and user metadata, Content-MD5 and SDK checksums, ranges (invalid ones ignored),
//! conditional requests (304 validators, ETag lists), delete / delete_objects, delete
//! marker answers, malformed version ids, copy, conditional PUT.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::{ByteStream, DateTime, DateTimeFormat};
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, ChecksumMode, Delete, MetadataDirective,
    ObjectIdentifier, VersioningConfiguration,
};

use crate::s3::{
    assert_bytes, assert_s3_error, client, data, etag_of, failure, get, md5_b64, new_bucket, put,
    show, status_of,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn put_get_round_trip_every_size_class() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "sizes").await;
    // Empty, tiny, inline limit, just past it, one partial stripe, several stripes (4 MiB
    // of object bytes per stripe).
    for (i, size) in [0, 1, 4 * KIB, 4 * KIB + 1, MIB, 9 * MIB]
        .into_iter()
        .enumerate()
    {
        let body = data(size, i as u64 + 1);
        let key = format!("obj-{size}");
        let etag = put(&s3, &b, &key, &body).await;
        assert_eq!(etag, etag_of(&body), "ETag of the {size}-byte PUT");
        let out = s3.get_object().bucket(&b).key(&key).send().await.unwrap();
        assert_eq!(
            out.content_length(),
            Some(size as i64),
            "Content-Length {size}"
        );
        assert_eq!(out.e_tag(), Some(etag.as_str()), "GET ETag {size}");
        let got = out.body.collect().await.unwrap().into_bytes();
        assert_bytes(&got, &body, &format!("GET of {size} bytes"));
        let head = s3.head_object().bucket(&b).key(&key).send().await.unwrap();
        assert_eq!(
            head.content_length(),
            Some(size as i64),
            "HEAD length {size}"
        );
        assert_eq!(head.e_tag(), Some(etag.as_str()), "HEAD ETag {size}");
        assert!(head.last_modified().is_some(), "HEAD Last-Modified {size}");
    }
    // Overwrite: the new bytes win.
    let v2 = data(5000, 99);
    put(&s3, &b, "obj-1", &v2).await;
    assert_bytes(&get(&s3, &b, "obj-1").await, &v2, "overwritten object");
}

#[tokio::test]
async fn metadata_and_standard_headers_round_trip() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "meta").await;
    let expires = DateTime::from_secs(2_000_000_000);
    s3.put_object()
        .bucket(&b)
        .key("doc")
        .body(ByteStream::from_static(b"<html></html>"))
        .content_type("text/html; charset=utf-8")
        .cache_control("max-age=60")
        .content_disposition("attachment; filename=\"doc.html\"")
        .content_encoding("identity")
        .content_language("de-CH")
        .expires(expires)
        .metadata("color", "blue")
        .metadata("owner-team", "storage")
        .send()
        .await
        .unwrap();
    let head = s3.head_object().bucket(&b).key("doc").send().await.unwrap();
    let get = s3.get_object().bucket(&b).key("doc").send().await.unwrap();
    for (what, ct, cc, cd, ce, cl, md) in [
        (
            "HEAD",
            head.content_type(),
            head.cache_control(),
            head.content_disposition(),
            head.content_encoding(),
            head.content_language(),
            head.metadata(),
        ),
        (
            "GET",
            get.content_type(),
            get.cache_control(),
            get.content_disposition(),
            get.content_encoding(),
            get.content_language(),
            get.metadata(),
        ),
    ] {
        assert_eq!(ct, Some("text/html; charset=utf-8"), "{what} Content-Type");
        assert_eq!(cc, Some("max-age=60"), "{what} Cache-Control");
        assert_eq!(
            cd,
            Some("attachment; filename=\"doc.html\""),
            "{what} Content-Disposition"
        );
        assert_eq!(ce, Some("identity"), "{what} Content-Encoding");
        assert_eq!(cl, Some("de-CH"), "{what} Content-Language");
        let md = md.unwrap_or_else(|| panic!("{what}: no user metadata"));
        assert_eq!(md.get("color").map(String::as_str), Some("blue"), "{what}");
        assert_eq!(
            md.get("owner-team").map(String::as_str),
            Some("storage"),
            "{what}"
        );
        assert_eq!(md.len(), 2, "{what} metadata: {md:?}");
    }
    #[allow(deprecated)]
    let exp = head.expires();
    assert_eq!(exp, Some(&expires), "HEAD Expires");

    // Default Content-Type when none is given.
    put(&s3, &b, "plain", b"x").await;
    let head = s3
        .head_object()
        .bucket(&b)
        .key("plain")
        .send()
        .await
        .unwrap();
    assert!(
        matches!(
            head.content_type(),
            Some("binary/octet-stream" | "application/octet-stream")
        ),
        "default type {:?}",
        head.content_type()
    );

    // response-content-type and friends override on GET.
    let out = s3
        .get_object()
        .bucket(&b)
        .key("doc")
        .response_content_type("application/x-override")
        .response_content_disposition("inline")
        .response_cache_control("no-cache")
        .send()
        .await
        .unwrap();
    assert_eq!(out.content_type(), Some("application/x-override"));
    assert_eq!(out.content_disposition(), Some("inline"));
    assert_eq!(out.cache_control(), Some("no-cache"));
}

#[tokio::test]
async fn content_md5_good_bad_and_malformed() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "md5").await;
    let body = data(70_000, 3);
    let out = s3
        .put_object()
        .bucket(&b)
        .key("good")
        .body(ByteStream::from(body.clone()))
        .content_md5(md5_b64(&body))
        .send()
        .await
        .unwrap_or_else(|e| panic!("good Content-MD5: {}", show(&e)));
    assert_eq!(out.e_tag(), Some(etag_of(&body).as_str()));
    assert_s3_error(
        s3.put_object()
            .bucket(&b)
            .key("bad")
            .body(ByteStream::from(body.clone()))
            .content_md5(md5_b64(b"something else"))
            .send()
            .await,
        400,
        "BadDigest",
        "Content-MD5 of other bytes",
    );
    assert_s3_error(
        s3.put_object()
            .bucket(&b)
            .key("malformed")
            .body(ByteStream::from(body.clone()))
            .content_md5("not base64 md5!")
            .send()
            .await,
        400,
        "InvalidDigest",
        "malformed Content-MD5",
    );
    // Inline-sized too, and nothing was stored by the refused PUTs.
    assert_s3_error(
        s3.put_object()
            .bucket(&b)
            .key("bad")
            .body(ByteStream::from_static(b"tiny"))
            .content_md5(md5_b64(b"tinY"))
            .send()
            .await,
        400,
        "BadDigest",
        "Content-MD5 of other bytes (inline size)",
    );
    for k in ["bad", "malformed"] {
        assert_s3_error(
            s3.head_object().bucket(&b).key(k).send().await,
            404,
            "NotFound",
            "refused PUT stored nothing",
        );
    }
}

#[tokio::test]
async fn sdk_checksums_are_accepted_stored_and_returned() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "cksum").await;
    for (i, algo) in [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32C,
        ChecksumAlgorithm::Sha256,
    ]
    .into_iter()
    .enumerate()
    {
        for size in [100, 2 * MIB + 7] {
            let body = data(size, 40 + i as u64);
            let key = format!("{}-{size}", algo.as_str());
            let put = s3
                .put_object()
                .bucket(&b)
                .key(&key)
                .body(ByteStream::from(body.clone()))
                .checksum_algorithm(algo.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("PUT with {algo:?}: {}", show(&e)));
            let sent = match algo {
                ChecksumAlgorithm::Crc32 => put.checksum_crc32(),
                ChecksumAlgorithm::Crc32C => put.checksum_crc32_c(),
                _ => put.checksum_sha256(),
            }
            .unwrap_or_else(|| panic!("PUT {algo:?}: checksum not echoed: {put:?}"))
            .to_string();
            // x-amz-checksum-crc32c is the big-endian CRC, base64.
            #[allow(clippy::big_endian_bytes)]
            if algo == ChecksumAlgorithm::Crc32C {
                use base64::Engine;
                let want = base64::engine::general_purpose::STANDARD
                    .encode(crc32c::crc32c(&body).to_be_bytes());
                assert_eq!(sent, want, "CRC32C value");
            }
            // With checksum mode the SDK validates the body against the returned value.
            let out = s3
                .get_object()
                .bucket(&b)
                .key(&key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            let got = match algo {
                ChecksumAlgorithm::Crc32 => out.checksum_crc32(),
                ChecksumAlgorithm::Crc32C => out.checksum_crc32_c(),
                _ => out.checksum_sha256(),
            }
            .map(str::to_string);
            assert_eq!(got.as_deref(), Some(sent.as_str()), "GET {algo:?} checksum");
            let bytes = out.body.collect().await.unwrap().into_bytes();
            assert_bytes(&bytes, &body, &format!("GET {key}"));
            let head = s3
                .head_object()
                .bucket(&b)
                .key(&key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            let got = match algo {
                ChecksumAlgorithm::Crc32 => head.checksum_crc32(),
                ChecksumAlgorithm::Crc32C => head.checksum_crc32_c(),
                _ => head.checksum_sha256(),
            };
            assert_eq!(got, Some(sent.as_str()), "HEAD {algo:?} checksum");
        }
    }
    // A wrong checksum value is refused.
    let (st, code) = failure(
        s3.put_object()
            .bucket(&b)
            .key("wrong")
            .body(ByteStream::from_static(b"hello"))
            .checksum_crc32_c("AAAAAA==")
            .send()
            .await,
    );
    assert_eq!(
        (st, code.as_str()),
        (400, "BadDigest"),
        "wrong x-amz-checksum-crc32c"
    );
}

#[tokio::test]
async fn ranges_first_middle_suffix_open_across_stripes_and_unsatisfiable() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "range").await;
    let big = data(9 * MIB, 11);
    let small = data(3000, 12);
    put(&s3, &b, "big", &big).await;
    put(&s3, &b, "small", &small).await;
    let stripe = 4 * MIB;
    for (key, body) in [("big", &big), ("small", &small)] {
        let n = body.len();
        let cases: Vec<(String, usize, usize)> = vec![
            ("bytes=0-9".into(), 0, 9),
            ("bytes=100-199".into(), 100, 199),
            ("bytes=-10".into(), n - 10, n - 1),
            (format!("bytes={}-", n - 1000), n - 1000, n - 1),
            (format!("bytes=5-{}", n + 100), 5, n - 1), // end clamped
            ("bytes=0-0".into(), 0, 0),
        ];
        let mut cases = cases;
        if n > stripe {
            // Across the first stripe boundary, and the whole second stripe.
            cases.push((
                format!("bytes={}-{}", stripe - 10, stripe + 10),
                stripe - 10,
                stripe + 10,
            ));
            cases.push((
                format!("bytes={}-{}", stripe, 2 * stripe - 1),
                stripe,
                2 * stripe - 1,
            ));
        }
        for (range, first, last) in cases {
            let out = s3
                .get_object()
                .bucket(&b)
                .key(key)
                .range(&range)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{key} {range}: {}", show(&e)));
            assert_eq!(
                out.content_range(),
                Some(format!("bytes {first}-{last}/{n}").as_str()),
                "{key} {range}: Content-Range"
            );
            assert_eq!(
                out.content_length(),
                Some((last - first + 1) as i64),
                "{key} {range}: Content-Length"
            );
            let got = out.body.collect().await.unwrap().into_bytes();
            assert_bytes(&got, &body[first..=last], &format!("{key} {range}"));
        }
        assert_s3_error(
            s3.get_object()
                .bucket(&b)
                .key(key)
                .range(format!("bytes={n}-"))
                .send()
                .await,
            416,
            "InvalidRange",
            "range starting at the object size",
        );
    }
    // An empty object has no satisfiable range.
    put(&s3, &b, "empty", b"").await;
    assert_s3_error(
        s3.get_object()
            .bucket(&b)
            .key("empty")
            .range("bytes=0-0")
            .send()
            .await,
        416,
        "InvalidRange",
        "range of an empty object",
    );
}

#[tokio::test]
async fn conditional_get_and_head() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "cond").await;
    let body = data(20_000, 5);
    let etag = put(&s3, &b, "k", &body).await;
    let head = s3.head_object().bucket(&b).key("k").send().await.unwrap();
    let lm = *head.last_modified().unwrap();
    let hour_before = DateTime::from_secs(lm.secs() - 3600);
    let wrong = "\"00000000000000000000000000000000\"";

    // If-Match.
    let out = s3
        .get_object()
        .bucket(&b)
        .key("k")
        .if_match(&etag)
        .send()
        .await
        .unwrap();
    assert_bytes(
        &out.body.collect().await.unwrap().into_bytes(),
        &body,
        "If-Match hit",
    );
    assert_s3_error(
        s3.get_object()
            .bucket(&b)
            .key("k")
            .if_match(wrong)
            .send()
            .await,
        412,
        "PreconditionFailed",
        "If-Match miss",
    );
    // If-None-Match.
    let (st, _) = failure(
        s3.get_object()
            .bucket(&b)
            .key("k")
            .if_none_match(&etag)
            .send()
            .await,
    );
    assert_eq!(st, 304, "If-None-Match hit → 304");
    s3.get_object()
        .bucket(&b)
        .key("k")
        .if_none_match(wrong)
        .send()
        .await
        .unwrap();
    // If-Modified-Since: the Last-Modified itself → 304; an hour before → 200.
    let (st, _) = failure(
        s3.get_object()
            .bucket(&b)
            .key("k")
            .if_modified_since(lm)
            .send()
            .await,
    );
    assert_eq!(st, 304, "If-Modified-Since = Last-Modified");
    s3.get_object()
        .bucket(&b)
        .key("k")
        .if_modified_since(hour_before)
        .send()
        .await
        .unwrap();
    // If-Unmodified-Since: an hour before → 412; Last-Modified → 200.
    assert_s3_error(
        s3.get_object()
            .bucket(&b)
            .key("k")
            .if_unmodified_since(hour_before)
            .send()
            .await,
        412,
        "PreconditionFailed",
        "If-Unmodified-Since before the write",
    );
    s3.get_object()
        .bucket(&b)
        .key("k")
        .if_unmodified_since(lm)
        .send()
        .await
        .unwrap();
    // If-Match wins over If-Unmodified-Since (RFC 7232 §6).
    s3.get_object()
        .bucket(&b)
        .key("k")
        .if_match(&etag)
        .if_unmodified_since(hour_before)
        .send()
        .await
        .unwrap();
    // HEAD answers the same conditions (bodies-less statuses).
    let (st, _) = failure(
        s3.head_object()
            .bucket(&b)
            .key("k")
            .if_match(wrong)
            .send()
            .await,
    );
    assert_eq!(st, 412, "HEAD If-Match miss");
    let (st, _) = failure(
        s3.head_object()
            .bucket(&b)
            .key("k")
            .if_none_match(&etag)
            .send()
            .await,
    );
    assert_eq!(st, 304, "HEAD If-None-Match hit");
}

#[tokio::test]
async fn conditional_put_if_none_match_star() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "cput").await;
    s3.put_object()
        .bucket(&b)
        .key("once")
        .body(ByteStream::from_static(b"first"))
        .if_none_match("*")
        .send()
        .await
        .unwrap_or_else(|e| panic!("first conditional PUT: {}", show(&e)));
    assert_s3_error(
        s3.put_object()
            .bucket(&b)
            .key("once")
            .body(ByteStream::from_static(b"second"))
            .if_none_match("*")
            .send()
            .await,
        412,
        "PreconditionFailed",
        "second If-None-Match: * PUT",
    );
    assert_eq!(get(&s3, &b, "once").await, b"first");
    // Large (striped) bodies too.
    let big = data(MIB + 3, 8);
    s3.put_object()
        .bucket(&b)
        .key("big-once")
        .body(ByteStream::from(big.clone()))
        .if_none_match("*")
        .send()
        .await
        .unwrap();
    assert_s3_error(
        s3.put_object()
            .bucket(&b)
            .key("big-once")
            .body(ByteStream::from(data(MIB, 9)))
            .if_none_match("*")
            .send()
            .await,
        412,
        "PreconditionFailed",
        "second If-None-Match: * PUT (striped)",
    );
    assert_bytes(
        &get(&s3, &b, "big-once").await,
        &big,
        "first striped body kept",
    );
}

#[tokio::test]
async fn delete_and_delete_objects() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "del").await;
    put(&s3, &b, "a", b"1").await;
    put(&s3, &b, "b", &data(MIB, 1)).await;
    put(&s3, &b, "c", b"3").await;
    put(&s3, &b, "d", b"4").await;

    s3.delete_object().bucket(&b).key("a").send().await.unwrap();
    assert_s3_error(
        s3.get_object().bucket(&b).key("a").send().await,
        404,
        "NoSuchKey",
        "get after delete",
    );
    // Deleting a missing key succeeds (204).
    s3.delete_object().bucket(&b).key("a").send().await.unwrap();
    s3.delete_object()
        .bucket(&b)
        .key("never-was")
        .send()
        .await
        .unwrap();

    let ids = |keys: &[&str]| -> Delete {
        Delete::builder()
            .set_objects(Some(
                keys.iter()
                    .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
                    .collect(),
            ))
            .build()
            .unwrap()
    };
    let out = s3
        .delete_objects()
        .bucket(&b)
        .delete(ids(&["b", "c", "missing"]))
        .send()
        .await
        .unwrap();
    let mut deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    assert_eq!(deleted, ["b", "c", "missing"], "deleted: {out:?}");
    assert!(out.errors().is_empty(), "errors: {:?}", out.errors());
    for k in ["b", "c"] {
        assert_s3_error(
            s3.get_object().bucket(&b).key(k).send().await,
            404,
            "NoSuchKey",
            "get after delete_objects",
        );
    }
    // Quiet mode reports nothing on success.
    let mut quiet = ids(&["d", "also-missing"]);
    quiet.quiet = Some(true);
    let out = s3
        .delete_objects()
        .bucket(&b)
        .delete(quiet)
        .send()
        .await
        .unwrap();
    assert!(out.deleted().is_empty(), "quiet mode: {out:?}");
    assert!(out.errors().is_empty(), "quiet mode errors: {out:?}");
    let list = s3.list_objects_v2().bucket(&b).send().await.unwrap();
    assert_eq!(list.key_count(), Some(0), "bucket empty: {list:?}");
    s3.delete_bucket().bucket(&b).send().await.unwrap();
}

#[tokio::test]
async fn copy_object_directives_cross_bucket_and_conditions() {
    let (_, s3) = client().await;
    let src = new_bucket(&s3, "csrc").await;
    let dst = new_bucket(&s3, "cdst").await;
    for (key, size) in [("small", 100), ("large", 5 * MIB + 11)] {
        let body = data(size, size as u64);
        let etag = s3
            .put_object()
            .bucket(&src)
            .key(key)
            .body(ByteStream::from(body.clone()))
            .content_type("text/plain")
            .metadata("origin", "source")
            .send()
            .await
            .unwrap()
            .e_tag()
            .unwrap()
            .to_string();

        // COPY (default): metadata and type kept; same bucket.
        let out = s3
            .copy_object()
            .bucket(&src)
            .key(format!("{key}-copy"))
            .copy_source(format!("{src}/{key}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("copy {key}: {}", show(&e)));
        let res = out.copy_object_result().expect("CopyObjectResult");
        assert_eq!(res.e_tag(), Some(etag.as_str()), "copy keeps the ETag");
        let head = s3
            .head_object()
            .bucket(&src)
            .key(format!("{key}-copy"))
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some("text/plain"));
        assert_eq!(
            head.metadata()
                .and_then(|m| m.get("origin"))
                .map(String::as_str),
            Some("source")
        );
        assert_bytes(
            &get(&s3, &src, &format!("{key}-copy")).await,
            &body,
            "COPY body",
        );

        // REPLACE, cross-bucket: new metadata and type.
        s3.copy_object()
            .bucket(&dst)
            .key(format!("{key}-replaced"))
            .copy_source(format!("{src}/{key}"))
            .metadata_directive(MetadataDirective::Replace)
            .content_type("application/json")
            .metadata("origin", "replaced")
            .send()
            .await
            .unwrap_or_else(|e| panic!("copy REPLACE {key}: {}", show(&e)));
        let head = s3
            .head_object()
            .bucket(&dst)
            .key(format!("{key}-replaced"))
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some("application/json"));
        let md = head.metadata().cloned().unwrap_or_default();
        assert_eq!(md.get("origin").map(String::as_str), Some("replaced"));
        assert_eq!(md.len(), 1, "REPLACE drops the old metadata: {md:?}");
        assert_bytes(
            &get(&s3, &dst, &format!("{key}-replaced")).await,
            &body,
            "REPLACE body",
        );

        // x-amz-copy-source-if-match: hit copies, miss → 412.
        s3.copy_object()
            .bucket(&dst)
            .key(format!("{key}-if"))
            .copy_source(format!("{src}/{key}"))
            .copy_source_if_match(&etag)
            .send()
            .await
            .unwrap();
        assert_s3_error(
            s3.copy_object()
                .bucket(&dst)
                .key(format!("{key}-if-miss"))
                .copy_source(format!("{src}/{key}"))
                .copy_source_if_match("\"0123456789abcdef0123456789abcdef\"")
                .send()
                .await,
            412,
            "PreconditionFailed",
            "copy-source-if-match miss",
        );
        assert_s3_error(
            s3.copy_object()
                .bucket(&dst)
                .key(format!("{key}-if-none"))
                .copy_source(format!("{src}/{key}"))
                .copy_source_if_none_match(&etag)
                .send()
                .await,
            412,
            "PreconditionFailed",
            "copy-source-if-none-match hit",
        );
    }
    // Copying onto itself without REPLACE is refused; a missing source is NoSuchKey.
    assert_s3_error(
        s3.copy_object()
            .bucket(&src)
            .key("small")
            .copy_source(format!("{src}/small"))
            .send()
            .await,
        400,
        "InvalidRequest",
        "copy onto itself without changes",
    );
    assert_s3_error(
        s3.copy_object()
            .bucket(&dst)
            .key("x")
            .copy_source(format!("{src}/no-such-key"))
            .send()
            .await,
        404,
        "NoSuchKey",
        "copy of a missing source",
    );
    // A key with characters that need encoding in x-amz-copy-source.
    put(&s3, &src, "dir/a key+plus.txt", b"odd").await;
    s3.copy_object()
        .bucket(&dst)
        .key("odd")
        .copy_source(format!("{src}/dir/a%20key%2Bplus.txt"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("copy of an encoded source key: {}", show(&e)));
    assert_eq!(get(&s3, &dst, "odd").await, b"odd");
}

/// A PUT whose client goes away mid-body stores nothing: the previous object stays
/// intact, a new key never appears.
#[tokio::test]
async fn aborted_put_leaves_no_trace() {
    use std::io::Write;
    use std::time::Duration;

    use aws_sdk_s3::presigning::PresigningConfig;

    let (_, s3) = client().await;
    let b = new_bucket(&s3, "abort").await;
    let old = data(MIB, 1);
    put(&s3, &b, "existing", &old).await;
    let total = 6 * MIB;
    let body = data(total, 2);
    for key in ["existing", "fresh"] {
        let req = s3
            .put_object()
            .bucket(&b)
            .key(key)
            .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
            .await
            .unwrap();
        let url = req.uri().to_string();
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut sock = std::net::TcpStream::connect(host).unwrap();
        write!(
            sock,
            "PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {total}\r\n\r\n"
        )
        .unwrap();
        // Half the body (more than one stripe), then the connection closes.
        sock.write_all(&body[..total / 2 + 123]).unwrap();
        sock.shutdown(std::net::Shutdown::Both).unwrap();
        drop(sock);
    }
    // Another full round trip, then the state is checked.
    put(&s3, &b, "after", b"x").await;
    assert_bytes(
        &get(&s3, &b, "existing").await,
        &old,
        "object kept after an aborted PUT",
    );
    assert_s3_error(
        s3.get_object().bucket(&b).key("fresh").send().await,
        404,
        "NoSuchKey",
        "aborted PUT of a new key",
    );
    let list = s3.list_objects_v2().bucket(&b).send().await.unwrap();
    let keys: Vec<&str> = list.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["after", "existing"]);
}

/// Parallel PUTs of distinct keys and racing overwrites of one key: every object reads
/// back exactly; the raced key holds exactly one of the bodies.
#[tokio::test]
async fn concurrent_puts_and_overwrites() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "conc").await;
    let bodies: Vec<Vec<u8>> = (0..6)
        .map(|i| data(2 * MIB + 1000 * i, 50 + i as u64))
        .collect();
    let puts = bodies.iter().enumerate().map(|(i, body)| {
        let s3 = s3.clone();
        let b = b.clone();
        async move {
            put(&s3, &b, &format!("k{i}"), body).await;
            put(&s3, &b, "raced", body).await;
        }
    });
    futures::future::join_all(puts).await;
    let gets = bodies.iter().enumerate().map(|(i, body)| {
        let s3 = s3.clone();
        let b = b.clone();
        async move {
            assert_bytes(
                &get(&s3, &b, &format!("k{i}")).await,
                body,
                &format!("k{i}"),
            );
        }
    });
    futures::future::join_all(gets).await;
    let raced = get(&s3, &b, "raced").await;
    assert!(
        bodies.contains(&raced),
        "the raced key holds one of the bodies ({} bytes)",
        raced.len()
    );
    let head = s3
        .head_object()
        .bucket(&b)
        .key("raced")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.e_tag(),
        Some(etag_of(&raced).as_str()),
        "ETag matches the body"
    );
}

/// A response header of a failed request.
fn header<E>(e: &aws_sdk_s3::error::SdkError<E>, name: &str) -> Option<String> {
    e.raw_response()
        .and_then(|r| r.headers().get(name))
        .map(str::to_string)
}

/// S3: a GET/HEAD whose current version is a delete marker answers 404 NoSuchKey with
/// `x-amz-delete-marker: true` and the marker's `x-amz-version-id`; a GET/HEAD of the
/// marker's version id answers 405 MethodNotAllowed with `x-amz-delete-marker: true` and
/// the marker's Last-Modified.
#[tokio::test]
async fn delete_marker_responses_carry_the_marker_headers() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "marker").await;
    s3.put_bucket_versioning()
        .bucket(&b)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    put(&s3, &b, "k", b"v").await;
    let d = s3.delete_object().bucket(&b).key("k").send().await.unwrap();
    let marker = d.version_id().unwrap().to_string();

    let e = s3
        .get_object()
        .bucket(&b)
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), Some(404), "GET: {}", show(&e));
    assert_eq!(e.code(), Some("NoSuchKey"));
    assert_eq!(
        header(&e, "x-amz-delete-marker").as_deref(),
        Some("true"),
        "GET"
    );
    assert_eq!(header(&e, "x-amz-version-id"), Some(marker.clone()), "GET");
    let e = s3
        .head_object()
        .bucket(&b)
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), Some(404));
    assert_eq!(
        header(&e, "x-amz-delete-marker").as_deref(),
        Some("true"),
        "HEAD"
    );
    assert_eq!(header(&e, "x-amz-version-id"), Some(marker.clone()), "HEAD");

    let e = s3
        .get_object()
        .bucket(&b)
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), Some(405), "{}", show(&e));
    assert_eq!(e.code(), Some("MethodNotAllowed"));
    assert_eq!(
        header(&e, "x-amz-delete-marker").as_deref(),
        Some("true"),
        "GET of the marker's version"
    );
    assert!(
        header(&e, "last-modified").is_some(),
        "Last-Modified on 405"
    );
    let e = s3
        .head_object()
        .bucket(&b)
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), Some(405));
    assert_eq!(
        header(&e, "x-amz-delete-marker").as_deref(),
        Some("true"),
        "HEAD of the marker's version"
    );
    assert!(
        header(&e, "last-modified").is_some(),
        "Last-Modified on 405"
    );

    // CopyObject: a source naming the marker's version id is 400 InvalidRequest; a
    // source whose current version is a marker is 404 NoSuchKey.
    let e = s3
        .copy_object()
        .bucket(&b)
        .key("copy")
        .copy_source(format!("{b}/k?versionId={marker}"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), Some(400), "{}", show(&e));
    assert_eq!(e.code(), Some("InvalidRequest"));
    let e = s3
        .copy_object()
        .bucket(&b)
        .key("copy")
        .copy_source(format!("{b}/k"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), Some(404), "{}", show(&e));
    assert_eq!(e.code(), Some("NoSuchKey"));
}

/// RFC 7232 §4.1: a 304 carries the ETag (and S3 sends Last-Modified too), on GET and
/// HEAD, for If-None-Match and If-Modified-Since; a 412 stays PreconditionFailed.
#[tokio::test]
async fn not_modified_carries_etag_and_last_modified() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "nm304").await;
    let etag = put(&s3, &b, "k", b"hello").await;
    let head = s3.head_object().bucket(&b).key("k").send().await.unwrap();
    let lm = *head.last_modified().unwrap();
    let check = |e: &aws_sdk_s3::error::SdkError<_>, what: &str| {
        assert_eq!(status_of(e), Some(304), "{what}");
        assert_eq!(header(e, "etag"), Some(etag.clone()), "ETag on 304: {what}");
        let got = header(e, "last-modified").unwrap_or_else(|| panic!("no Last-Modified: {what}"));
        let got = DateTime::from_str(&got, DateTimeFormat::HttpDate)
            .unwrap_or_else(|x| panic!("{what}: Last-Modified {got:?}: {x}"));
        assert_eq!(got.secs(), lm.secs(), "Last-Modified on 304: {what}");
    };
    let e = s3
        .get_object()
        .bucket(&b)
        .key("k")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    check(&e, "GET If-None-Match");
    let e = s3
        .get_object()
        .bucket(&b)
        .key("k")
        .if_modified_since(lm)
        .send()
        .await
        .unwrap_err();
    check(&e, "GET If-Modified-Since");
    let e = s3
        .head_object()
        .bucket(&b)
        .key("k")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), Some(304));
    assert_eq!(header(&e, "etag"), Some(etag.clone()), "ETag on HEAD 304");
    assert!(
        header(&e, "last-modified").is_some(),
        "Last-Modified on HEAD 304"
    );

    let wrong = "\"00000000000000000000000000000000\"";
    assert_s3_error(
        s3.get_object()
            .bucket(&b)
            .key("k")
            .if_match(wrong)
            .send()
            .await,
        412,
        "PreconditionFailed",
        "If-Match miss",
    );
    let e = s3
        .head_object()
        .bucket(&b)
        .key("k")
        .if_match(wrong)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), Some(412), "HEAD If-Match miss");
}

/// RFC 7233 §2.1/§3.1: a syntactically invalid byte range (last < first, an unknown unit,
/// garbage, several ranges) makes the server ignore the Range header: 200 with the whole
/// object, as S3 does. A valid range past the end stays 416.
#[tokio::test]
async fn invalid_range_headers_are_ignored() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "badrange").await;
    put(&s3, &b, "k", b"hello").await;
    for range in [
        "bytes=3-1",
        "bits=1-2",
        "bytes=abc",
        "bytes=0-1,3-4",
        "bytes=-",
    ] {
        let out = s3
            .get_object()
            .bucket(&b)
            .key("k")
            .range(range)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{range}: {}", show(&e)));
        assert_eq!(out.content_range(), None, "{range}");
        assert_eq!(out.content_length(), Some(5), "{range}");
        let body = out.body.collect().await.unwrap().into_bytes();
        assert_eq!(&body[..], b"hello", "{range}");
        let head = s3
            .head_object()
            .bucket(&b)
            .key("k")
            .range(range)
            .send()
            .await
            .unwrap_or_else(|e| panic!("HEAD {range}: {}", show(&e)));
        assert_eq!(head.content_length(), Some(5), "HEAD {range}");
        assert_eq!(head.content_range(), None, "HEAD {range}");
    }
    // Still authenticated: a client with a wrong secret is refused.
    let (c, _) = client().await;
    let bad = c.s3_as(&c.access_key, "not-the-secret");
    let e = bad
        .get_object()
        .bucket(&b)
        .key("k")
        .range("bytes=3-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), Some(403), "{}", show(&e));
    for range in ["bytes=5-", "bytes=5-9"] {
        assert_s3_error(
            s3.get_object()
                .bucket(&b)
                .key("k")
                .range(range)
                .send()
                .await,
            416,
            "InvalidRange",
            range,
        );
    }
    let out = s3
        .get_object()
        .bucket(&b)
        .key("k")
        .range("bytes=1-2")
        .send()
        .await
        .unwrap();
    assert_eq!(out.content_range(), Some("bytes 1-2/5"));
}

/// S3 answers a malformed version id with 400 InvalidArgument ("Invalid version id
/// specified"), not 404 NoSuchVersion — on GET, HEAD and DELETE.
#[tokio::test]
async fn malformed_version_id_is_invalid_argument() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "badver").await;
    put(&s3, &b, "k", b"v").await;
    assert_s3_error(
        s3.get_object()
            .bucket(&b)
            .key("k")
            .version_id("not a version id")
            .send()
            .await,
        400,
        "InvalidArgument",
        "GET with a malformed version id",
    );
    let e = s3
        .head_object()
        .bucket(&b)
        .key("k")
        .version_id("not a version id")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), Some(400), "HEAD");
    assert_s3_error(
        s3.delete_object()
            .bucket(&b)
            .key("k")
            .version_id("not a version id")
            .send()
            .await,
        400,
        "InvalidArgument",
        "DELETE with a malformed version id",
    );
    // A well-formed id that names nothing is still NoSuchVersion.
    assert_s3_error(
        s3.get_object()
            .bucket(&b)
            .key("k")
            .version_id("0123456789abcdef0123456789abcdef")
            .send()
            .await,
        404,
        "NoSuchVersion",
        "GET of an unknown version",
    );
    assert_eq!(get(&s3, &b, "k").await, b"v");
}

/// RFC 7232 §3.1/§3.2: If-Match and If-None-Match hold lists of entity tags; any match
/// counts.
#[tokio::test]
async fn if_match_and_if_none_match_with_a_list_of_etags() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "etaglist").await;
    let etag = put(&s3, &b, "k", b"hello").await;
    let e = s3
        .get_object()
        .bucket(&b)
        .key("k")
        .if_none_match(format!("\"0000\", {etag}"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_of(&e),
        Some(304),
        "If-None-Match list holding the ETag"
    );
    s3.get_object()
        .bucket(&b)
        .key("k")
        .if_none_match("\"0000\", \"1111\"")
        .send()
        .await
        .unwrap();
    s3.get_object()
        .bucket(&b)
        .key("k")
        .if_match(format!("\"0000\", {etag}"))
        .send()
        .await
        .unwrap();
    assert_s3_error(
        s3.get_object()
            .bucket(&b)
            .key("k")
            .if_match("\"0000\", \"1111\"")
            .send()
            .await,
        412,
        "PreconditionFailed",
        "If-Match list without the ETag",
    );
}
