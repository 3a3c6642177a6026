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
