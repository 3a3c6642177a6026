//! S3 versioning semantics: unversioned overwrite, enabled history, delete markers,
//! delete by version id, suspended null-version replacement; bucket lifecycle.

use common::ids::StripeId;

use super::test_support::*;
use super::*;

fn committed_id(r: Response) -> String {
    match r {
        Response::Committed { version_id, .. } => version_id,
        other => panic!("not committed: {other:?}"),
    }
}

fn ids(h: &Harness, key: &str) -> Vec<(String, bool, bool)> {
    h.versions_of("bk", key)
        .into_iter()
        .map(|v| (v.version_id, v.is_delete_marker, v.is_latest))
        .collect()
}

fn s(v: &str) -> String {
    v.to_owned()
}

#[test]
fn unversioned_overwrite_replaces_the_null_version_and_queues_old_stripes() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Unversioned);
    let r = h.apply(&Command::PutObject(put("bk", "k", "x1", striped(10, 2))));
    assert_eq!(committed_id(r), "null");
    assert!(h.gc().is_empty());
    let r = h.apply(&Command::PutObject(put("bk", "k", "x2", striped(20, 1))));
    assert_eq!(committed_id(r), "null");
    assert_eq!(h.gc_stripes(), vec![StripeId(10), StripeId(11)]);
    let CurrentVersion::Object(v) = h.head("bk", "k") else {
        panic!("no current version");
    };
    assert_eq!(
        (v.version_id.as_str(), v.etag.as_str()),
        ("null", "etag-x2")
    );
    assert_eq!(v.body, striped(20, 1));
    assert_eq!(ids(&h, "k"), vec![(s("null"), false, true)]);
    // Each queued entry lists every fragment of its stripe with its location.
    let entry = &h.gc()[0];
    let frags: Vec<_> = entry
        .fragments
        .iter()
        .map(|f| (f.index, f.location))
        .collect();
    assert_eq!(
        frags,
        (0..3).map(|i| (i, location(10, i))).collect::<Vec<_>>()
    );
}

#[test]
fn unversioned_delete_removes_the_object_and_queues_its_stripes() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Unversioned);
    h.apply(&Command::PutObject(put("bk", "k", "x", striped(1, 1))));
    let r = h.apply(&Command::DeleteObject(delete("bk", "k", None, "m")));
    assert_eq!(
        r,
        Response::Deleted {
            version_id: None,
            delete_marker: false
        }
    );
    assert_eq!(h.head("bk", "k"), CurrentVersion::Absent);
    assert_eq!(h.gc_stripes(), vec![StripeId(1)]);
    assert!(h.list_all("bk").is_empty());
    // Deleting what does not exist succeeds (S3 answers 204) and changes nothing.
    let before = h.dump();
    let r = h.apply(&Command::DeleteObject(delete("bk", "k", None, "m")));
    assert_eq!(
        r,
        Response::Deleted {
            version_id: None,
            delete_marker: false
        }
    );
    assert_eq!(before, h.dump());
}

#[test]
fn enabled_keeps_versions_newest_first_and_delete_adds_a_marker() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Enabled);
    assert_eq!(
        committed_id(h.apply(&Command::PutObject(put("bk", "k", "v1", striped(1, 1))))),
        "v1"
    );
    assert_eq!(
        committed_id(h.apply(&Command::PutObject(put("bk", "k", "v2", striped(2, 1))))),
        "v2"
    );
    assert!(h.gc().is_empty(), "enabled buckets keep old versions");
    assert_eq!(
        ids(&h, "k"),
        vec![(s("v2"), false, true), (s("v1"), false, false)]
    );

    let r = h.apply(&Command::DeleteObject(delete("bk", "k", None, "m1")));
    assert_eq!(
        r,
        Response::Deleted {
            version_id: Some(s("m1")),
            delete_marker: true
        }
    );
    let CurrentVersion::DeleteMarker(m) = h.head("bk", "k") else {
        panic!("the current version should be a marker");
    };
    assert_eq!(m.version_id, "m1");
    assert!(
        h.list_all("bk").is_empty(),
        "a key whose current version is a marker is not listed"
    );
    assert_eq!(
        ids(&h, "k"),
        vec![
            (s("m1"), true, true),
            (s("v2"), false, false),
            (s("v1"), false, false)
        ]
    );
    // Old versions stay readable by id.
    let v1 = get_version(&h.read(), "bk", "k", "v1").unwrap().unwrap();
    assert_eq!(v1.body, striped(1, 1));

    // Removing the marker by id brings v2 back.
    let r = h.apply(&Command::DeleteObject(delete("bk", "k", Some("m1"), "_")));
    assert_eq!(
        r,
        Response::Deleted {
            version_id: Some(s("m1")),
            delete_marker: true
        }
    );
    assert_eq!(h.list_all("bk"), vec![s("k")]);
    let CurrentVersion::Object(v) = h.head("bk", "k") else {
        panic!()
    };
    assert_eq!(v.version_id, "v2");

    // Deleting the current version by id makes the previous one current.
    let r = h.apply(&Command::DeleteObject(delete("bk", "k", Some("v2"), "_")));
    assert_eq!(
        r,
        Response::Deleted {
            version_id: Some(s("v2")),
            delete_marker: false
        }
    );
    assert_eq!(h.gc_stripes(), vec![StripeId(2)]);
    let CurrentVersion::Object(v) = h.head("bk", "k") else {
        panic!()
    };
    assert_eq!(v.version_id, "v1");

    // A missing version is NoSuchVersion and changes nothing.
    let r = h.apply(&Command::DeleteObject(delete("bk", "k", Some("v2"), "_")));
    assert_eq!(r, Response::Rejected(Reason::NoSuchVersion));
}

#[test]
fn suspended_replaces_the_null_version_and_keeps_others() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Unversioned);
    h.apply(&Command::PutObject(put("bk", "k", "a", striped(1, 1)))); // null
    h.set_versioning("bk", Versioning::Enabled);
    h.apply(&Command::PutObject(put("bk", "k", "v1", striped(2, 1))));
    h.set_versioning("bk", Versioning::Suspended);
    assert_eq!(
        ids(&h, "k"),
        vec![(s("v1"), false, true), (s("null"), false, false)]
    );

    // A suspended put replaces the old null version (which was not current) and is newest.
    let r = h.apply(&Command::PutObject(put(
        "bk",
        "k",
        "ignored",
        striped(3, 1),
    )));
    assert_eq!(committed_id(r), "null");
    assert_eq!(h.gc_stripes(), vec![StripeId(1)]);
    assert_eq!(
        ids(&h, "k"),
        vec![(s("null"), false, true), (s("v1"), false, false)]
    );

    // A suspended delete puts a null delete marker in place of the null version.
    let r = h.apply(&Command::DeleteObject(delete("bk", "k", None, "ignored")));
    assert_eq!(
        r,
        Response::Deleted {
            version_id: Some(s("null")),
            delete_marker: true
        }
    );
    assert_eq!(h.gc_stripes(), vec![StripeId(1), StripeId(3)]);
    assert_eq!(
        ids(&h, "k"),
        vec![(s("null"), true, true), (s("v1"), false, false)]
    );
    assert!(matches!(h.head("bk", "k"), CurrentVersion::DeleteMarker(_)));

    // Re-enabled: new versions stack on top; the null marker stays.
    h.set_versioning("bk", Versioning::Enabled);
    h.apply(&Command::PutObject(put("bk", "k", "v2", striped(4, 1))));
    assert_eq!(
        ids(&h, "k"),
        vec![
            (s("v2"), false, true),
            (s("null"), true, false),
            (s("v1"), false, false)
        ]
    );
}

#[test]
fn unversioned_buckets_list_versions_as_null() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Unversioned);
    for key in ["b", "a"] {
        h.apply(&Command::PutObject(put(
            "bk",
            key,
            "x",
            ObjectBody::Inline(vec![7]),
        )));
    }
    let page = list_object_versions(
        &h.read(),
        "bk",
        &ListVersionsParams {
            max_keys: 10,
            ..Default::default()
        },
    )
    .unwrap();
    let got: Vec<_> = page
        .versions
        .iter()
        .map(|v| (v.key.as_str(), v.version_id.as_str()))
        .collect();
    assert_eq!(got, [("a", "null"), ("b", "null")]);
}

#[test]
fn retried_enabled_put_is_idempotent_and_a_clashing_id_is_rejected() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Enabled);
    let cmd = Command::PutObject(put("bk", "k", "v1", striped(1, 1)));
    let first = h.apply(&cmd);
    let before = h.dump();
    assert_eq!(h.apply(&cmd), first, "a retry answers like the original");
    assert_eq!(before, h.dump(), "a retry changes nothing");
    let clash = h.apply(&Command::PutObject(put("bk", "k", "v1", striped(2, 1))));
    assert_eq!(clash, Response::Rejected(Reason::VersionIdConflict));
    // Stripes another version owns cannot be committed again.
    let reuse = h.apply(&Command::PutObject(put("bk", "other", "v9", striped(1, 1))));
    assert_eq!(reuse, Response::Rejected(Reason::StripeInUse(StripeId(1))));
}

#[test]
fn retried_unversioned_put_does_not_queue_its_own_stripes() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Unversioned);
    let cmd = Command::PutObject(put("bk", "k", "x", striped(1, 2)));
    let first = h.apply(&cmd);
    let before = h.dump();
    assert_eq!(h.apply(&cmd), first, "a retry answers like the original");
    assert_eq!(before, h.dump(), "a retry changes nothing");
    assert!(h.gc().is_empty(), "nothing of the retried write is garbage");
    assert_eq!(
        stripe_owner(&h.read(), StripeId(1))
            .unwrap()
            .map(|o| matches!(o, StripeOwner::Version { seq: 2, .. })),
        Some(true)
    );
}

#[test]
fn bucket_lifecycle_and_rejections() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Unversioned);
    let again = |owner: &str| Command::CreateBucket {
        name: s("bk"),
        owner: owner.to_owned(),
        created_ms: 5,
        versioning: Versioning::Unversioned,
    };
    assert_eq!(
        h.apply(&again("alice")),
        Response::Rejected(Reason::BucketAlreadyOwnedByYou)
    );
    assert_eq!(
        h.apply(&again("bob")),
        Response::Rejected(Reason::BucketAlreadyExists)
    );
    let bad = Command::CreateBucket {
        name: s("a\0b"),
        owner: s("alice"),
        created_ms: 5,
        versioning: Versioning::Unversioned,
    };
    assert_eq!(h.apply(&bad), Response::Rejected(Reason::InvalidBucketName));
    let r = h.apply(&Command::PutObject(put(
        "nope",
        "k",
        "x",
        ObjectBody::Inline(vec![]),
    )));
    assert_eq!(r, Response::Rejected(Reason::NoSuchBucket));
    let long = "k".repeat(MAX_KEY_LEN + 1);
    let r = h.apply(&Command::PutObject(put(
        "bk",
        &long,
        "x",
        ObjectBody::Inline(vec![]),
    )));
    assert_eq!(r, Response::Rejected(Reason::KeyTooLong));
    let ok = "k".repeat(MAX_KEY_LEN);
    let r = h.apply(&Command::PutObject(put(
        "bk",
        &ok,
        "x",
        ObjectBody::Inline(vec![]),
    )));
    assert!(matches!(r, Response::Committed { .. }));
    let back = Command::SetBucketVersioning {
        name: s("bk"),
        versioning: Versioning::Unversioned,
    };
    assert!(matches!(
        h.apply(&back),
        Response::Rejected(Reason::InvalidArgument(_))
    ));

    // Not empty while a version exists; a delete marker counts too.
    let del_bucket = Command::DeleteBucket { name: s("bk") };
    assert_eq!(
        h.apply(&del_bucket),
        Response::Rejected(Reason::BucketNotEmpty)
    );
    h.set_versioning("bk", Versioning::Enabled);
    h.apply(&Command::DeleteObject(delete("bk", &ok, Some("null"), "_")));
    h.apply(&Command::DeleteObject(delete("bk", "k", None, "m1")));
    assert_eq!(
        h.apply(&del_bucket),
        Response::Rejected(Reason::BucketNotEmpty)
    );
    h.apply(&Command::DeleteObject(delete("bk", "k", Some("m1"), "_")));

    // Uploads in progress are aborted with the bucket (their parts → GC).
    h.apply(&Command::CreateMultipartUpload(
        super::multipart_test::create("bk", "k", "u1"),
    ));
    h.apply(&Command::RecordPart(super::multipart_test::part(
        "bk", "k", "u1", 1, 50, 100,
    )));
    assert_eq!(
        h.apply(&del_bucket),
        Response::BucketDeleted { aborted_uploads: 1 }
    );
    assert_eq!(h.gc_stripes(), vec![StripeId(100)]);
    assert_eq!(get_bucket(&h.read(), "bk").unwrap(), None);
    assert!(list_buckets(&h.read(), None).unwrap().is_empty());
    assert_eq!(
        h.apply(&del_bucket),
        Response::Rejected(Reason::NoSuchBucket)
    );
}

#[test]
fn list_buckets_filters_by_owner_in_name_order() {
    let mut h = Harness::new();
    for (name, owner) in [("c", "alice"), ("a", "bob"), ("b", "alice")] {
        h.apply(&Command::CreateBucket {
            name: s(name),
            owner: s(owner),
            created_ms: 1,
            versioning: Versioning::Unversioned,
        });
    }
    let names = |owner| -> Vec<String> {
        list_buckets(&h.read(), owner)
            .unwrap()
            .into_iter()
            .map(|b| b.name)
            .collect()
    };
    assert_eq!(names(None), ["a", "b", "c"]);
    assert_eq!(names(Some("alice")), ["b", "c"]);
}
