//! Multipart uploads: ETag md5-of-md5s "-N", part order, sizes, unknown parts, unlisted
//! parts and aborts to GC, part replacement, listings of uploads and parts.

use std::collections::BTreeMap;

use common::ids::StripeId;

use super::test_support::*;
use super::*;

/// md5("a") and md5("b").
const MD5_A: &str = "0cc175b9c0f1b6a831c399e269772661";
const MD5_B: &str = "92eb5ffee6ae2fec3ad71c777531578f";
/// hex(md5(md5("a") || md5("b"))), computed independently (Python hashlib).
const MD5_OF_AB: &str = "96e024ba2074fe77e8e965ba43a704be";

pub fn create(bucket: &str, key: &str, upload_id: &str) -> CreateMultipartUpload {
    CreateMultipartUpload {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        upload_id: upload_id.to_owned(),
        initiated_ms: 100,
        owner: "alice".to_owned(),
        meta: ObjectMeta {
            content_type: Some("text/plain".to_owned()),
            ..Default::default()
        },
        codec: CODEC,
        checksum_algorithm: None,
    }
}

/// Part `n` of `size` bytes in one stripe `stripe_id`, ETag `{stripe_id:032x}`.
pub fn part(
    bucket: &str,
    key: &str,
    upload: &str,
    n: u32,
    size: u64,
    stripe_id: u128,
) -> RecordPart {
    RecordPart {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        upload_id: upload.to_owned(),
        part_number: n,
        size,
        etag: format!("{stripe_id:032x}"),
        checksums: BTreeMap::new(),
        stripes: vec![stripe(stripe_id, size)],
        created_ms: 200,
    }
}

pub fn complete(
    upload: &str,
    parts: &[(u32, String)],
    min_part_size: u64,
) -> CompleteMultipartUpload {
    CompleteMultipartUpload {
        bucket: "bk".to_owned(),
        key: "k".to_owned(),
        upload_id: upload.to_owned(),
        parts: parts
            .iter()
            .map(|(n, etag)| CompletedPart {
                part_number: *n,
                etag: etag.clone(),
            })
            .collect(),
        min_part_size,
        version_id: "mv".to_owned(),
        created_ms: 300,
        checksums: BTreeMap::new(),
        preconditions: Vec::new(),
    }
}

fn etag(id: u128) -> String {
    format!("{id:032x}")
}

fn setup(versioning: Versioning) -> Harness {
    let mut h = Harness::new();
    h.create_bucket("bk", versioning);
    assert_eq!(
        h.apply(&Command::CreateMultipartUpload(create("bk", "k", "u1"))),
        Response::UploadCreated
    );
    h
}

#[test]
fn the_etag_is_the_md5_of_the_part_md5s_with_the_part_count() {
    assert_eq!(
        multipart_etag([MD5_A, MD5_B]).as_deref(),
        Some(&*format!("{MD5_OF_AB}-2"))
    );
    assert_eq!(multipart_etag(["not hex"]), None);

    let mut h = setup(Versioning::Unversioned);
    let mut p1 = part("bk", "k", "u1", 1, 100, 1);
    p1.etag = MD5_A.to_owned();
    let mut p2 = part("bk", "k", "u1", 2, 7, 2);
    p2.etag = MD5_B.to_uppercase(); // stored lowercase
    assert_eq!(h.apply(&Command::RecordPart(p1)), Response::PartRecorded);
    assert_eq!(h.apply(&Command::RecordPart(p2)), Response::PartRecorded);
    // The client's list may quote the ETags.
    let parts = [(1, format!("\"{MD5_A}\"")), (2, MD5_B.to_owned())];
    let r = h.apply(&Command::CompleteMultipartUpload(complete(
        "u1", &parts, 100,
    )));
    assert_eq!(
        r,
        Response::Committed {
            version_id: "null".to_owned(),
            seq: 5,
            etag: format!("{MD5_OF_AB}-2"),
            size: 107
        }
    );
    let CurrentVersion::Object(v) = h.head("bk", "k") else {
        panic!("no object")
    };
    assert_eq!(v.owner, "alice");
    assert_eq!(v.meta.content_type.as_deref(), Some("text/plain"));
    let ObjectBody::Multipart { codec, parts } = &v.body else {
        panic!("{:?}", v.body)
    };
    assert_eq!(*codec, CODEC);
    let manifest: Vec<_> = parts
        .iter()
        .map(|p| (p.part_number, p.size, p.etag.as_str(), p.stripes[0].id))
        .collect();
    assert_eq!(
        manifest,
        [(1, 100, MD5_A, StripeId(1)), (2, 7, MD5_B, StripeId(2))]
    );
    // The upload is gone; the stripes now belong to the version.
    assert_eq!(get_upload(&h.read(), "u1").unwrap(), None);
    assert!(matches!(
        stripe_owner(&h.read(), StripeId(2)).unwrap(),
        Some(StripeOwner::Version { .. })
    ));
    assert!(h.gc().is_empty());
}

#[test]
fn completion_checks_order_parts_and_sizes_and_rejections_change_nothing() {
    let mut h = setup(Versioning::Enabled);
    for (n, size, id) in [(1, 100, 1), (2, 10, 2), (3, 100, 3)] {
        h.apply(&Command::RecordPart(part("bk", "k", "u1", n, size, id)));
    }
    let cases: Vec<(Vec<(u32, String)>, Reason)> = vec![
        (vec![], Reason::NoParts),
        (vec![(2, etag(2)), (1, etag(1))], Reason::InvalidPartOrder),
        (vec![(1, etag(1)), (1, etag(1))], Reason::InvalidPartOrder),
        (
            vec![(1, etag(1)), (4, etag(4))],
            Reason::InvalidPart { part_number: 4 },
        ),
        (
            vec![(1, etag(2)), (3, etag(3))],
            Reason::InvalidPart { part_number: 1 },
        ),
        (
            vec![(1, etag(1)), (2, etag(2)), (3, etag(3))],
            Reason::EntityTooSmall { part_number: 2 },
        ),
        (
            (1..=10_001).map(|n| (n, etag(1))).collect(),
            Reason::TooManyParts,
        ),
    ];
    for (parts, reason) in cases {
        let r = h.apply(&Command::CompleteMultipartUpload(complete(
            "u1", &parts, 50,
        )));
        assert_eq!(
            r,
            Response::Rejected(reason),
            "parts {:?}",
            parts.iter().take(3).collect::<Vec<_>>()
        );
    }
    let mut wrong = complete("u1", &[(1, etag(1))], 50);
    wrong.key = "other".to_owned();
    assert_eq!(
        h.apply(&Command::CompleteMultipartUpload(wrong)),
        Response::Rejected(Reason::NoSuchUpload)
    );

    // The last part may be small; part 2 is not listed and goes to GC.
    let r = h.apply(&Command::CompleteMultipartUpload(complete(
        "u1",
        &[(1, etag(1)), (3, etag(3))],
        50,
    )));
    assert!(
        matches!(r, Response::Committed { ref version_id, size: 200, .. } if version_id == "mv"),
        "{r:?}"
    );
    assert_eq!(h.gc_stripes(), vec![StripeId(2)]);
    // Completing again: the upload is gone.
    let r = h.apply(&Command::CompleteMultipartUpload(complete(
        "u1",
        &[(1, etag(1))],
        50,
    )));
    assert_eq!(r, Response::Rejected(Reason::NoSuchUpload));
}

#[test]
fn replacing_a_part_queues_the_old_stripes_and_abort_queues_all() {
    let mut h = setup(Versioning::Unversioned);
    h.apply(&Command::RecordPart(part("bk", "k", "u1", 1, 100, 1)));
    h.apply(&Command::RecordPart(part("bk", "k", "u1", 2, 100, 2)));
    h.apply(&Command::RecordPart(part("bk", "k", "u1", 1, 100, 3)));
    assert_eq!(h.gc_stripes(), vec![StripeId(1)]);
    // A retried part changes nothing and queues nothing.
    let retry = Command::RecordPart(part("bk", "k", "u1", 1, 100, 3));
    assert_eq!(h.apply(&retry), Response::PartRecorded);
    assert_eq!(h.gc_stripes(), vec![StripeId(1)]);

    let invalid = [
        (part("bk", "k", "u1", 0, 100, 9), Reason::InvalidPartNumber),
        (
            part("bk", "k", "u1", 10_001, 100, 9),
            Reason::InvalidPartNumber,
        ),
        (part("bk", "k", "nope", 1, 100, 9), Reason::NoSuchUpload),
        (
            part("bk", "k", "u1", 3, 100, 2),
            Reason::StripeInUse(StripeId(2)),
        ),
    ];
    for (p, reason) in invalid {
        assert_eq!(h.apply(&Command::RecordPart(p)), Response::Rejected(reason));
    }
    let mut bad_etag = part("bk", "k", "u1", 3, 100, 9);
    bad_etag.etag = "xyz".to_owned();
    assert!(matches!(
        h.apply(&Command::RecordPart(bad_etag)),
        Response::Rejected(Reason::InvalidArgument(_))
    ));

    let page = list_parts(&h.read(), "bk", "k", "u1", 0, 1).unwrap();
    assert_eq!(
        page.parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        [1]
    );
    assert!(page.is_truncated);
    assert_eq!(page.next_part_number_marker, Some(1));
    let page = list_parts(&h.read(), "bk", "k", "u1", 1, 10).unwrap();
    assert_eq!(
        page.parts
            .iter()
            .map(|p| (p.part_number, p.stripes[0].id))
            .collect::<Vec<_>>(),
        [(2, StripeId(2))]
    );
    assert!(!page.is_truncated);
    assert!(matches!(
        list_parts(&h.read(), "bk", "other", "u1", 0, 10),
        Err(QueryError::Rejected(Reason::NoSuchUpload))
    ));

    let abort = AbortMultipartUpload {
        bucket: "bk".to_owned(),
        key: "k".to_owned(),
        upload_id: "u1".to_owned(),
    };
    assert_eq!(
        h.apply(&Command::AbortMultipartUpload(abort.clone())),
        Response::UploadAborted { parts: 2 }
    );
    assert_eq!(h.gc_stripes(), vec![StripeId(1), StripeId(3), StripeId(2)]);
    assert_eq!(
        h.apply(&Command::AbortMultipartUpload(abort)),
        Response::Rejected(Reason::NoSuchUpload)
    );
}

#[test]
fn completing_over_an_unversioned_object_queues_the_replaced_stripes() {
    let mut h = setup(Versioning::Unversioned);
    h.apply(&Command::PutObject(put("bk", "k", "x", striped(50, 2))));
    h.apply(&Command::RecordPart(part("bk", "k", "u1", 1, 10, 1)));
    let r = h.apply(&Command::CompleteMultipartUpload(complete(
        "u1",
        &[(1, etag(1))],
        50,
    )));
    assert!(matches!(r, Response::Committed { .. }));
    assert_eq!(h.gc_stripes(), vec![StripeId(50), StripeId(51)]);
}

#[test]
fn create_upload_retry_and_conflict_and_upload_listing() {
    let mut h = setup(Versioning::Unversioned);
    assert_eq!(
        h.apply(&Command::CreateMultipartUpload(create("bk", "k", "u1"))),
        Response::UploadCreated
    );
    assert_eq!(
        h.apply(&Command::CreateMultipartUpload(create("bk", "other", "u1"))),
        Response::Rejected(Reason::UploadIdConflict)
    );
    for (key, id) in [("k", "u0"), ("a/x", "u7"), ("a/y", "u8"), ("z", "u9")] {
        h.apply(&Command::CreateMultipartUpload(create("bk", key, id)));
    }
    let list = |params: ListUploadsParams| {
        let page = list_multipart_uploads(&h.read(), "bk", &params).unwrap();
        let ups: Vec<(String, String)> = page
            .uploads
            .iter()
            .map(|u| (u.key.clone(), u.upload_id.clone()))
            .collect();
        (
            ups,
            page.common_prefixes,
            page.is_truncated,
            page.next_key_marker,
            page.next_upload_id_marker,
        )
    };
    let all = list(ListUploadsParams {
        max_uploads: 100,
        ..Default::default()
    });
    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        all.0,
        pairs(&[
            ("a/x", "u7"),
            ("a/y", "u8"),
            ("k", "u0"),
            ("k", "u1"),
            ("z", "u9")
        ])
    );
    // Resume inside key "k" after upload u0.
    let page = list(ListUploadsParams {
        key_marker: Some("k".to_owned()),
        upload_id_marker: Some("u0".to_owned()),
        max_uploads: 1,
        ..Default::default()
    });
    assert_eq!(page.0, pairs(&[("k", "u1")]));
    assert!(page.2);
    assert_eq!(
        (page.3.as_deref(), page.4.as_deref()),
        (Some("k"), Some("u1"))
    );
    // Delimiter rolls a/ up.
    let page = list(ListUploadsParams {
        delimiter: Some("/".to_owned()),
        max_uploads: 2,
        ..Default::default()
    });
    assert_eq!(page.0, pairs(&[("k", "u0")]));
    assert_eq!(page.1, vec!["a/".to_owned()]);
    assert!(page.2);
}

#[test]
fn a_retried_complete_answers_the_same_while_its_version_exists() {
    let mut h = setup(Versioning::Enabled);
    h.apply(&Command::RecordPart(part("bk", "k", "u1", 1, 100, 1)));
    h.apply(&Command::RecordPart(part("bk", "k", "u1", 2, 10, 2)));
    let parts = [(1, etag(1)), (2, etag(2))];
    let first = h.apply(&Command::CompleteMultipartUpload(complete(
        "u1", &parts, 50,
    )));
    assert!(matches!(first, Response::Committed { .. }), "{first:?}");

    // The same list (quoted, upper case: the same ETags) answers the same, writing nothing.
    let before = h.dump();
    let quoted = [(1, format!("\"{}\"", etag(1).to_uppercase())), (2, etag(2))];
    let mut retry = complete("u1", &quoted, 50);
    retry.created_ms = 999;
    assert_eq!(h.apply(&Command::CompleteMultipartUpload(retry)), first);
    assert_eq!(h.dump(), before, "a retried complete writes nothing");

    // Another part list, or another object: S3's NoSuchUpload.
    for other in [
        complete("u1", &[(1, etag(1))], 50),
        complete("u1", &[(1, etag(1)), (2, etag(1))], 50),
        complete("u1", &[(1, etag(1)), (2, etag(2)), (3, etag(3))], 50),
        CompleteMultipartUpload {
            key: "other".to_owned(),
            ..complete("u1", &parts, 50)
        },
    ] {
        assert_eq!(
            h.apply(&Command::CompleteMultipartUpload(other)),
            Response::Rejected(Reason::NoSuchUpload)
        );
    }
    // A retried create applied late does not reopen the id; another object cannot take it.
    assert_eq!(
        h.apply(&Command::CreateMultipartUpload(create("bk", "k", "u1"))),
        Response::UploadCreated
    );
    assert_eq!(get_upload(&h.read(), "u1").unwrap(), None);
    assert_eq!(
        h.apply(&Command::CreateMultipartUpload(create("bk", "x", "u1"))),
        Response::Rejected(Reason::UploadIdConflict)
    );
    assert_eq!(h.dump(), before);

    // A newer version on top does not remove this one: still the same answer.
    h.apply(&Command::PutObject(put("bk", "k", "v2", striped(50, 1))));
    assert_eq!(
        h.apply(&Command::CompleteMultipartUpload(complete(
            "u1", &parts, 50
        ))),
        first
    );
    // Deleting the version forgets the upload (the record's growth is bounded by the
    // versions): a retry is NoSuchUpload again.
    h.apply(&Command::DeleteObject(delete("bk", "k", Some("mv"), "")));
    assert_eq!(
        h.apply(&Command::CompleteMultipartUpload(complete(
            "u1", &parts, 50
        ))),
        Response::Rejected(Reason::NoSuchUpload)
    );
    let txn = h.read();
    for def in [tables::COMPLETED, tables::COMPLETED_BY_VERSION] {
        let t = tables::open_read(&txn, def).unwrap().unwrap();
        assert!(tables::rows_in(&t, &[], None).unwrap().is_empty(), "{def}");
    }
}

#[test]
fn overwriting_an_unversioned_multipart_object_forgets_its_upload() {
    let mut h = setup(Versioning::Unversioned);
    h.apply(&Command::RecordPart(part("bk", "k", "u1", 1, 10, 1)));
    let parts = [(1, etag(1))];
    let first = h.apply(&Command::CompleteMultipartUpload(complete(
        "u1", &parts, 50,
    )));
    assert!(
        matches!(first, Response::Committed { ref version_id, .. } if version_id == "null"),
        "{first:?}"
    );
    assert_eq!(
        h.apply(&Command::CompleteMultipartUpload(complete(
            "u1", &parts, 50
        ))),
        first
    );
    // A second upload completes over the null version: the first is forgotten, the
    // second remembered.
    h.apply(&Command::CreateMultipartUpload(create("bk", "k", "u2")));
    h.apply(&Command::RecordPart(part("bk", "k", "u2", 1, 10, 2)));
    let second = h.apply(&Command::CompleteMultipartUpload(complete(
        "u2",
        &[(1, etag(2))],
        50,
    )));
    assert_eq!(
        h.apply(&Command::CompleteMultipartUpload(complete(
            "u1", &parts, 50
        ))),
        Response::Rejected(Reason::NoSuchUpload)
    );
    assert_eq!(
        h.apply(&Command::CompleteMultipartUpload(complete(
            "u2",
            &[(1, etag(2))],
            50
        ))),
        second
    );
    // A plain PUT over it, or a delete, forgets the second too.
    h.apply(&Command::PutObject(put("bk", "k", "x", striped(60, 1))));
    assert_eq!(
        h.apply(&Command::CompleteMultipartUpload(complete(
            "u2",
            &[(1, etag(2))],
            50
        ))),
        Response::Rejected(Reason::NoSuchUpload)
    );
}
