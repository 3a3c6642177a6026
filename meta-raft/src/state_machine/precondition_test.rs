//! Conditional writes: If-None-Match `*` (KeyAbsent), If-Match (ETag), current version;
//! two conflicting KeyAbsent puts: exactly one wins.

use super::test_support::*;
use super::*;

fn conditional(key: &str, id: &str, pre: Vec<Precondition>) -> Command {
    let mut p = put("bk", key, id, ObjectBody::Inline(id.as_bytes().to_vec()));
    p.preconditions = pre;
    Command::PutObject(p)
}

#[test]
fn two_conflicting_key_absent_puts_exactly_one_wins() {
    for versioning in [Versioning::Unversioned, Versioning::Enabled] {
        let mut h = Harness::new();
        h.create_bucket("bk", versioning);
        // Two gateways race; Raft orders them; the second sees the first.
        let a = conditional("k", "va", vec![Precondition::KeyAbsent]);
        let b = conditional("k", "vb", vec![Precondition::KeyAbsent]);
        let ra = h.apply(&a);
        let rb = h.apply(&b);
        assert!(matches!(ra, Response::Committed { .. }), "{ra:?}");
        assert_eq!(rb, Response::Rejected(Reason::PreconditionFailed));
        let CurrentVersion::Object(v) = h.head("bk", "k") else {
            panic!()
        };
        assert_eq!(v.body, ObjectBody::Inline(b"va".to_vec()));
        assert_eq!(h.versions_of("bk", "k").len(), 1);
    }
}

#[test]
fn key_absent_holds_when_the_current_version_is_a_delete_marker() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Enabled);
    h.apply(&conditional("k", "v1", vec![]));
    h.apply(&Command::DeleteObject(delete("bk", "k", None, "m")));
    let r = h.apply(&conditional("k", "v2", vec![Precondition::KeyAbsent]));
    assert!(matches!(r, Response::Committed { .. }), "{r:?}");
}

#[test]
fn if_match_compares_the_current_etag() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Unversioned);
    let etag_eq = |e: &str| vec![Precondition::CurrentEtagEquals(e.to_owned())];
    // No object: NoSuchKey (as S3 answers a conditional PUT on a missing key).
    assert_eq!(
        h.apply(&conditional("k", "v1", etag_eq("etag-v0"))),
        Response::Rejected(Reason::NoSuchKey)
    );
    h.apply(&conditional("k", "v1", vec![]));
    assert_eq!(
        h.apply(&conditional("k", "v2", etag_eq("etag-v0"))),
        Response::Rejected(Reason::PreconditionFailed)
    );
    // Quotes are ignored; a match commits.
    let r = h.apply(&conditional("k", "v2", etag_eq("\"etag-v1\"")));
    assert!(
        matches!(r, Response::Committed { ref etag, .. } if etag == "etag-v2"),
        "{r:?}"
    );
    assert!(matches!(
        h.apply(&conditional("k", "v3", etag_eq("*"))),
        Response::Committed { .. }
    ));
    assert_eq!(
        h.apply(&conditional("k", "v4", vec![Precondition::KeyAbsent])),
        Response::Rejected(Reason::PreconditionFailed)
    );
}

#[test]
fn current_version_equals_is_a_compare_and_set_on_the_pointer() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Enabled);
    h.apply(&conditional("k", "v1", vec![]));
    let cas = |expected: &str, id: &str| {
        conditional(
            "k",
            id,
            vec![Precondition::CurrentVersionEquals(expected.to_owned())],
        )
    };
    assert!(matches!(
        h.apply(&cas("v1", "v2")),
        Response::Committed { .. }
    ));
    // A second writer that read v1 loses.
    assert_eq!(
        h.apply(&cas("v1", "v3")),
        Response::Rejected(Reason::PreconditionFailed)
    );
    // Conditions also guard deletes.
    let mut d = delete("bk", "k", None, "m");
    d.preconditions = vec![Precondition::CurrentVersionEquals("v1".to_owned())];
    assert_eq!(
        h.apply(&Command::DeleteObject(d.clone())),
        Response::Rejected(Reason::PreconditionFailed)
    );
    d.preconditions = vec![Precondition::CurrentVersionEquals("v2".to_owned())];
    assert!(matches!(
        h.apply(&Command::DeleteObject(d)),
        Response::Deleted {
            delete_marker: true,
            ..
        }
    ));
    let ids: Vec<String> = h
        .versions_of("bk", "k")
        .into_iter()
        .map(|v| v.version_id)
        .collect();
    assert_eq!(ids, ["m", "v2", "v1"]);
}

#[test]
fn a_retried_conditional_create_answers_what_its_first_attempt_did() {
    for versioning in [Versioning::Unversioned, Versioning::Suspended] {
        let mut h = Harness::new();
        h.create_bucket("bk", versioning);
        let a = conditional("k", "va", vec![Precondition::KeyAbsent]);
        let first = h.apply(&a);
        let Response::Committed { seq, .. } = first.clone() else {
            panic!("{first:?}")
        };
        // The same command again (a client retry after a timeout): same answer, no
        // new version.
        assert_eq!(h.apply(&a), first, "{versioning:?}");
        assert_eq!(h.versions_of("bk", "k").len(), 1);
        let CurrentVersion::Object(v) = h.head("bk", "k") else {
            panic!()
        };
        assert_eq!(v.seq, seq);
        // Another write with the same bytes but another time still fails its
        // precondition: only the identical command is a retry.
        let Command::PutObject(mut b) = a.clone() else {
            unreachable!()
        };
        b.created_ms += 1;
        assert_eq!(
            h.apply(&Command::PutObject(b)),
            Response::Rejected(Reason::PreconditionFailed)
        );
        // After another version replaced it, the old command is no longer current:
        // its retry fails the precondition (it cannot be told apart from a new write).
        h.apply(&conditional("k", "vb", vec![]));
        assert_eq!(h.apply(&a), Response::Rejected(Reason::PreconditionFailed));
    }
}
