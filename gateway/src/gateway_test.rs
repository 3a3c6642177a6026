use super::*;

fn version(etag: &str, created_ms: u64) -> VersionRecord {
    VersionRecord {
        bucket: "b".into(),
        key: "k".into(),
        version_id: "null".into(),
        seq: 1,
        created_ms,
        owner: "u".into(),
        size: 3,
        etag: etag.into(),
        checksums: BTreeMap::new(),
        meta: ObjectMeta::default(),
        body: ObjectBody::Inline(b"abc".to_vec()),
        is_delete_marker: false,
    }
}

fn cond(etag: &str) -> ETagCondition {
    ETagCondition::ETag(ETag::Strong(etag.into()))
}

#[test]
fn read_conditions_follow_rfc_order() {
    let v = version("abc", 10_000_000);
    let nm = S3ErrorCode::NotModified;
    let code = |r: S3Result<()>| r.err().map(|e| e.code().clone());
    assert_eq!(
        code(check_read_conditions(
            &v,
            Some(&cond("abc")),
            None,
            None,
            None,
            nm.clone()
        )),
        None
    );
    assert_eq!(
        code(check_read_conditions(
            &v,
            Some(&cond("zzz")),
            None,
            None,
            None,
            nm.clone()
        )),
        Some(S3ErrorCode::PreconditionFailed)
    );
    assert_eq!(
        code(check_read_conditions(
            &v,
            None,
            None,
            Some(&cond("abc")),
            None,
            nm.clone()
        )),
        Some(S3ErrorCode::NotModified)
    );
    assert_eq!(
        code(check_read_conditions(
            &v,
            None,
            None,
            Some(&ETagCondition::Any),
            None,
            nm.clone()
        )),
        Some(S3ErrorCode::NotModified)
    );
    let before = timestamp(5_000_000);
    let after = timestamp(20_000_000);
    assert_eq!(
        code(check_read_conditions(
            &v,
            None,
            Some(&before),
            None,
            None,
            nm.clone()
        )),
        Some(S3ErrorCode::PreconditionFailed)
    );
    assert_eq!(
        code(check_read_conditions(
            &v,
            None,
            Some(&after),
            None,
            None,
            nm.clone()
        )),
        None
    );
    assert_eq!(
        code(check_read_conditions(
            &v,
            None,
            None,
            None,
            Some(&after),
            nm.clone()
        )),
        Some(S3ErrorCode::NotModified)
    );
    assert_eq!(
        code(check_read_conditions(
            &v,
            None,
            None,
            None,
            Some(&before),
            nm.clone()
        )),
        None
    );
    // If-Match wins over If-Unmodified-Since; If-None-Match over If-Modified-Since.
    assert_eq!(
        code(check_read_conditions(
            &v,
            Some(&cond("abc")),
            Some(&before),
            None,
            None,
            nm.clone()
        )),
        None
    );
    assert_eq!(
        code(check_read_conditions(
            &v,
            None,
            None,
            Some(&cond("zzz")),
            Some(&after),
            nm
        )),
        None
    );
}

#[test]
fn user_metadata_is_limited() {
    let mut m = s3s::dto::Metadata::new();
    m.insert("Big".into(), "x".repeat(2000));
    let ok = object_meta(None, None, None, None, None, None, Some(m.clone())).expect("fits");
    assert_eq!(ok.user_metadata["big"].len(), 2000);
    m.insert("more".into(), "y".repeat(100));
    let e = object_meta(None, None, None, None, None, None, Some(m)).expect_err("too large");
    assert_eq!(e.code(), &S3ErrorCode::MetadataTooLarge);
}

#[test]
fn part_ranges() {
    let body = ObjectBody::Inline(b"abc".to_vec());
    assert_eq!(part_range(&body, 3, 1).expect("part 1").0, 0..3);
    assert!(part_range(&body, 3, 2).is_err());
    assert!(part_range(&body, 3, 0).is_err());
}

#[test]
fn write_preconditions_map() {
    let p = write_preconditions(Some(&cond("\"e1\"")), Some(&ETagCondition::Any)).expect("ok");
    assert_eq!(
        p,
        vec![
            Precondition::KeyAbsent,
            Precondition::CurrentEtagEquals("e1".into())
        ]
    );
    assert!(write_preconditions(None, Some(&cond("e"))).is_err());
}

#[test]
fn aws_chunked_is_not_a_stored_content_encoding() {
    let enc = |v: &str| stored_content_encoding(v.to_owned());
    assert_eq!(enc("aws-chunked"), None);
    assert_eq!(enc("AWS-Chunked"), None);
    assert_eq!(enc("aws-chunked,gzip"), Some("gzip".to_owned()));
    assert_eq!(enc("gzip, aws-chunked"), Some("gzip".to_owned()));
    assert_eq!(enc("aws-chunked, gzip, br"), Some("gzip,br".to_owned()));
    assert_eq!(enc("gzip"), Some("gzip".to_owned()));
    assert_eq!(enc("identity"), Some("identity".to_owned()));
    let m = object_meta(
        None,
        None,
        None,
        Some("aws-chunked".into()),
        None,
        None,
        None,
    );
    assert_eq!(m.expect("valid").content_encoding, None);
}

#[test]
fn body_read_failures_are_the_clients_errors() {
    use s3s::stream::aws_chunked_stream::AwsChunkedStreamError as Chunked;
    use s3s::stream::upload_stream::UploadStreamError as Signed;
    let gone = || -> s3s::StdError { Box::new(std::io::Error::other("connection closed")) };
    let code = |e: s3s::StdError| body_error(e).code().clone();
    // The client went away mid-body: 400 IncompleteBody, not 500 InternalError.
    assert_eq!(
        code(Box::new(Chunked::Underlying(gone()))),
        S3ErrorCode::IncompleteBody
    );
    assert_eq!(
        code(Box::new(Signed::Underlying(gone()))),
        S3ErrorCode::IncompleteBody
    );
    assert_eq!(code(gone()), S3ErrorCode::IncompleteBody);
    // The decoders' own verdicts are kept.
    assert_eq!(
        code(Box::new(Chunked::SignatureMismatch)),
        S3ErrorCode::SignatureDoesNotMatch
    );
    assert_eq!(
        code(Box::new(Signed::Sha256Mismatch)),
        S3ErrorCode::BadDigest
    );
    assert_eq!(
        code(Box::new(Chunked::Incomplete)),
        S3ErrorCode::IncompleteBody
    );
}

#[test]
fn etag_lists_hold_several_tags() {
    assert_eq!(etag_list(r#""a""#), ["a"]);
    assert_eq!(etag_list(r#""a", W/"b",c"#), ["a", "b", "c"]);
    assert_eq!(etag_list(r#" "x,y" , "z" "#), ["x,y", "z"]);
    assert_eq!(etag_list(""), Vec::<String>::new());
    // s3s reads a list as one strong ETag whose value holds the inner quotes.
    let list = cond(r#"0000", "abc"#);
    assert_eq!(condition_etags(&list).expect("tags"), ["0000", "abc"]);
    assert_eq!(condition_etags(&ETagCondition::Any), None);
    let v = version("abc", 10_000_000);
    let nm = S3ErrorCode::NotModified;
    let code = |r: S3Result<()>| r.err().map(|e| e.code().clone());
    assert_eq!(
        code(check_read_conditions(
            &v,
            None,
            None,
            Some(&list),
            None,
            nm.clone()
        )),
        Some(S3ErrorCode::NotModified),
        "If-None-Match list holding the ETag"
    );
    assert_eq!(
        code(check_read_conditions(&v, Some(&list), None, None, None, nm)),
        None,
        "If-Match list holding the ETag"
    );
}

#[test]
fn version_ids_we_could_not_have_issued_are_invalid() {
    for ok in ["null", "0123456789abcdef0123456789abcdef"] {
        assert!(check_version_id(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "not a version id",
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef",
        "Null",
    ] {
        let e = check_version_id(bad).expect_err(bad);
        assert_eq!(e.code(), &S3ErrorCode::InvalidArgument, "{bad}");
    }
}

#[test]
fn not_modified_carries_the_validators() {
    let mut v = version("abc", 1_700_000_000_000);
    v.meta.cache_control = Some("max-age=60".into());
    let h = not_modified_headers(&v, Some("null"));
    assert_eq!(h.get("etag").map(|x| x.as_bytes()), Some(&b"\"abc\""[..]));
    assert_eq!(
        h.get("last-modified").map(|x| x.as_bytes()),
        Some(&b"Tue, 14 Nov 2023 22:13:20 GMT"[..])
    );
    assert_eq!(
        h.get("cache-control").map(|x| x.as_bytes()),
        Some(&b"max-age=60"[..])
    );
    assert_eq!(
        h.get("x-amz-version-id").map(|x| x.as_bytes()),
        Some(&b"null"[..])
    );
    assert!(h.get("expires").is_none());
}
