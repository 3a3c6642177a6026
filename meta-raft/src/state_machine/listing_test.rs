//! Listings against a reference model (plain BTreeMaps) over random operation sequences
//! with a tiny key alphabet, so prefixes and delimiters collide. Paginating with any
//! `max_keys` must give exactly the one-big-page result, which must equal the model's.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::list_objects::list_objects_counted;
use super::test_support::*;
use super::*;

const BUCKET: &str = "bk";

#[derive(Clone, Debug)]
enum Op {
    Put(String),
    Delete(String),
    /// Delete the `n`-th (mod count) version of a key, newest first.
    DeleteVersion(String, usize),
    SetVersioning(bool),
}

fn key() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "/", "é", "\0"]), 1..5)
        .prop_map(|parts| parts.concat())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => key().prop_map(Op::Put),
        2 => key().prop_map(Op::Delete),
        2 => (key(), 0usize..4).prop_map(|(k, n)| Op::DeleteVersion(k, n)),
        1 => any::<bool>().prop_map(Op::SetVersioning),
    ]
}

#[derive(Clone, Debug)]
struct Query {
    prefix: String,
    delimiter: Option<String>,
    start_after: Option<String>,
    end_before: Option<String>,
    max_keys: u32,
}

fn query() -> impl Strategy<Value = Query> {
    (
        prop::sample::select(vec!["", "a", "a/", "b/", "é", "\0", "ab"]),
        prop::option::of(prop::sample::select(vec!["/", "b", "a/", "é", "\0"])),
        prop::option::of(key()),
        prop::option::of(key()),
        1u32..6,
    )
        .prop_map(|(p, d, s, e, m)| Query {
            prefix: p.to_owned(),
            delimiter: d.map(str::to_owned),
            start_after: s,
            end_before: e,
            max_keys: m,
        })
}

/// The model: key → versions newest first as (version id, is delete marker).
#[derive(Default)]
struct Model {
    versioning: Option<Versioning>,
    objects: BTreeMap<String, Vec<(String, bool)>>,
}

impl Model {
    fn versioning(&self) -> Versioning {
        self.versioning.unwrap_or(Versioning::Unversioned)
    }

    fn push(&mut self, key: &str, id: &str, marker: bool) {
        let versions = self.objects.entry(key.to_owned()).or_default();
        if id == NULL_VERSION_ID {
            versions.retain(|(v, _)| v != NULL_VERSION_ID);
        }
        versions.insert(0, (id.to_owned(), marker));
    }

    fn remove(&mut self, key: &str, id: &str) {
        if let Some(versions) = self.objects.get_mut(key) {
            versions.retain(|(v, _)| v != id);
            if versions.is_empty() {
                self.objects.remove(key);
            }
        }
    }
}

/// One listing item: an entry (key) or a common prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Key(String),
    Prefix(String),
}

/// The model's listing of `keys` (sorted, already filtered to visible ones).
fn model_items<'a>(keys: impl Iterator<Item = &'a String>, q: &Query) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    for k in keys {
        if !k.starts_with(&q.prefix)
            || q.start_after.as_ref().is_some_and(|s| k <= s)
            || q.end_before.as_ref().is_some_and(|e| k >= e)
        {
            continue;
        }
        let rest = &k[q.prefix.len()..];
        let item = match q
            .delimiter
            .as_deref()
            .and_then(|d| rest.find(d).map(|p| (p, d)))
        {
            Some((p, d)) => Item::Prefix(k[..q.prefix.len() + p + d.len()].to_owned()),
            None => Item::Key(k.clone()),
        };
        if out.last() != Some(&item) {
            out.push(item);
        }
    }
    out
}

fn run_ops(h: &mut Harness, model: &mut Model, ops: &[Op]) {
    h.create_bucket(BUCKET, Versioning::Unversioned);
    for (n, op) in ops.iter().enumerate() {
        let id = format!("v{n}");
        match op {
            Op::Put(key) => {
                let body = ObjectBody::Inline(key.as_bytes().to_vec());
                let r = h.apply(&Command::PutObject(put(BUCKET, key, &id, body)));
                let Response::Committed { version_id, .. } = r else {
                    panic!("put {key:?}: {r:?}");
                };
                model.push(key, &version_id, false);
            }
            Op::Delete(key) => {
                let r = h.apply(&Command::DeleteObject(delete(BUCKET, key, None, &id)));
                match model.versioning() {
                    Versioning::Unversioned => {
                        assert_eq!(
                            r,
                            Response::Deleted {
                                version_id: None,
                                delete_marker: false
                            }
                        );
                        model.remove(key, NULL_VERSION_ID);
                    }
                    Versioning::Enabled => {
                        assert_eq!(
                            r,
                            Response::Deleted {
                                version_id: Some(id.clone()),
                                delete_marker: true
                            }
                        );
                        model.push(key, &id, true);
                    }
                    Versioning::Suspended => {
                        let null = Some(NULL_VERSION_ID.to_owned());
                        assert_eq!(
                            r,
                            Response::Deleted {
                                version_id: null,
                                delete_marker: true
                            }
                        );
                        model.push(key, NULL_VERSION_ID, true);
                    }
                }
            }
            Op::DeleteVersion(key, pick) => {
                let versions = model.objects.get(key).cloned().unwrap_or_default();
                let target = versions.get(pick % versions.len().max(1)).cloned();
                let vid = target.as_ref().map_or("missing", |(v, _)| v.as_str());
                let r = h.apply(&Command::DeleteObject(delete(BUCKET, key, Some(vid), &id)));
                match target {
                    Some((v, marker)) => {
                        assert_eq!(
                            r,
                            Response::Deleted {
                                version_id: Some(v.clone()),
                                delete_marker: marker
                            }
                        );
                        model.remove(key, &v);
                    }
                    None => assert_eq!(r, Response::Rejected(Reason::NoSuchVersion)),
                }
            }
            Op::SetVersioning(enabled) => {
                let v = if *enabled {
                    Versioning::Enabled
                } else {
                    Versioning::Suspended
                };
                h.set_versioning(BUCKET, v);
                model.versioning = Some(v);
            }
        }
    }
}

/// Lists with `q`, following `next` until the end; returns the items and checks page
/// sizes.
fn paginate(h: &Harness, q: &Query, max_keys: u32) -> Vec<Item> {
    let mut out = Vec::new();
    let mut start_after = q.start_after.clone();
    for _ in 0..1000 {
        let params = ListObjectsParams {
            prefix: q.prefix.clone(),
            delimiter: q.delimiter.clone(),
            start_after: start_after.clone(),
            max_keys,
            end_before: q.end_before.clone(),
        };
        let page = list_objects(&h.read(), BUCKET, &params).unwrap();
        let n = page.entries.len() + page.common_prefixes.len();
        assert!(n <= max_keys as usize);
        let mut items: Vec<Item> = page
            .entries
            .iter()
            .map(|e| Item::Key(e.key.clone()))
            .collect();
        items.extend(page.common_prefixes.iter().cloned().map(Item::Prefix));
        items.sort_by(|a, b| item_key(a).cmp(item_key(b)));
        out.extend(items);
        if !page.is_truncated {
            assert_eq!(page.next, None);
            return out;
        }
        assert_eq!(n, max_keys as usize, "a truncated page is full");
        start_after = Some(page.next.expect("a truncated page says where to resume"));
    }
    panic!("pagination does not end");
}

fn item_key(i: &Item) -> &str {
    match i {
        Item::Key(k) | Item::Prefix(k) => k,
    }
}

/// Version listing items: (key, version id, is marker, is latest) or a prefix.
fn model_version_items(model: &Model, q: &Query) -> Vec<(String, String, bool, bool)> {
    let keys: Vec<String> = model.objects.keys().cloned().collect();
    let mut out = Vec::new();
    for item in model_items(keys.iter(), q) {
        match item {
            Item::Key(k) => {
                for (i, (v, marker)) in model.objects[&k].iter().enumerate() {
                    out.push((k.clone(), v.clone(), *marker, i == 0));
                }
            }
            Item::Prefix(p) => out.push((p, String::new(), false, false)),
        }
    }
    out
}

fn paginate_versions(h: &Harness, q: &Query, max_keys: u32) -> Vec<(String, String, bool, bool)> {
    let mut out = Vec::new();
    let (mut key_marker, mut version_marker) = (q.start_after.clone(), None);
    for _ in 0..1000 {
        let params = ListVersionsParams {
            prefix: q.prefix.clone(),
            delimiter: q.delimiter.clone(),
            key_marker: key_marker.clone(),
            version_id_marker: version_marker.clone(),
            max_keys,
            end_before: q.end_before.clone(),
        };
        let page = list_object_versions(&h.read(), BUCKET, &params).unwrap();
        let n = page.versions.len() + page.common_prefixes.len();
        assert!(n <= max_keys as usize);
        let mut items: Vec<(String, String, bool, bool)> = page
            .versions
            .iter()
            .map(|v| {
                (
                    v.key.clone(),
                    v.version_id.clone(),
                    v.is_delete_marker,
                    v.is_latest,
                )
            })
            .collect();
        items.extend(
            page.common_prefixes
                .iter()
                .map(|p| (p.clone(), String::new(), false, false)),
        );
        // Stable sort by key keeps the newest-first order within a key.
        items.sort_by(|a, b| a.0.cmp(&b.0));
        out.extend(items);
        if !page.is_truncated {
            return out;
        }
        assert_eq!(n, max_keys as usize);
        key_marker = page.next_key_marker;
        version_marker = page.next_version_id_marker;
    }
    panic!("pagination does not end");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn listings_match_the_model(
        ops in prop::collection::vec(op(), 1..40),
        queries in prop::collection::vec(query(), 1..8),
    ) {
        let mut h = Harness::new();
        let mut model = Model::default();
        run_ops(&mut h, &mut model, &ops);

        // HEAD of every key the model knows.
        for (key, versions) in &model.objects {
            let (vid, marker) = &versions[0];
            match h.head(BUCKET, key) {
                CurrentVersion::Object(v) => prop_assert!(!marker && &v.version_id == vid),
                CurrentVersion::DeleteMarker(v) => prop_assert!(*marker && &v.version_id == vid),
                CurrentVersion::Absent => prop_assert!(false, "{key:?} is absent"),
            }
        }

        let live: Vec<String> = model
            .objects
            .iter()
            .filter(|(_, v)| !v[0].1)
            .map(|(k, _)| k.clone())
            .collect();
        for q in &queries {
            let expected = model_items(live.iter(), q);
            prop_assert_eq!(&paginate(&h, q, 1000), &expected, "one page, {:?}", q);
            prop_assert_eq!(&paginate(&h, q, q.max_keys), &expected, "paged, {:?}", q);

            let expected_versions = model_version_items(&model, q);
            prop_assert_eq!(&paginate_versions(&h, q, 1000), &expected_versions, "versions, {:?}", q);
            prop_assert_eq!(&paginate_versions(&h, q, q.max_keys), &expected_versions, "versions paged, {:?}", q);
        }
    }
}

#[test]
fn a_common_prefix_is_skipped_by_seeking_not_by_reading_every_key() {
    let mut h = Harness::new();
    h.check = false;
    h.create_bucket(BUCKET, Versioning::Unversioned);
    for i in 0..300 {
        let key = format!("dir/{i:04}");
        h.apply(&Command::PutObject(put(
            BUCKET,
            &key,
            "v",
            ObjectBody::Inline(vec![1]),
        )));
    }
    for key in ["a", "z"] {
        h.apply(&Command::PutObject(put(
            BUCKET,
            key,
            "v",
            ObjectBody::Inline(vec![1]),
        )));
    }
    let params = ListObjectsParams {
        delimiter: Some("/".to_owned()),
        max_keys: 1000,
        ..Default::default()
    };
    let (page, rows_read) = list_objects_counted(&h.read(), BUCKET, &params).unwrap();
    assert_eq!(page.common_prefixes, vec!["dir/".to_owned()]);
    let keys: Vec<&str> = page.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["a", "z"]);
    assert!(!page.is_truncated);
    assert!(rows_read <= 5, "read {rows_read} rows for 3 items");

    // Truncated right after the prefix: resume after its greatest key.
    let params = ListObjectsParams {
        max_keys: 2,
        ..params
    };
    let page = list_objects(&h.read(), BUCKET, &params).unwrap();
    assert_eq!(page.common_prefixes, vec!["dir/".to_owned()]);
    assert!(page.is_truncated);
    assert_eq!(page.next.as_deref(), Some("dir/0299"));
}

#[test]
fn listing_a_missing_bucket_is_no_such_bucket() {
    let h = Harness::new();
    let err = list_objects(&h.read(), "nope", &ListObjectsParams::default()).unwrap_err();
    assert!(
        matches!(err, QueryError::Rejected(Reason::NoSuchBucket)),
        "{err:?}"
    );
}

#[test]
fn max_keys_zero_is_an_empty_untruncated_page_and_large_values_are_capped() {
    let mut h = Harness::new();
    h.check = false;
    h.create_bucket(BUCKET, Versioning::Unversioned);
    for i in 0..1005 {
        h.apply(&Command::PutObject(put(
            BUCKET,
            &format!("{i:05}"),
            "v",
            ObjectBody::Inline(vec![]),
        )));
    }
    let zero = ListObjectsParams {
        max_keys: 0,
        ..Default::default()
    };
    assert_eq!(
        list_objects(&h.read(), BUCKET, &zero).unwrap(),
        ListObjectsPage::default()
    );
    let big = ListObjectsParams {
        max_keys: 5000,
        ..Default::default()
    };
    let page = list_objects(&h.read(), BUCKET, &big).unwrap();
    assert_eq!(page.entries.len(), 1000);
    assert!(page.is_truncated);
    assert_eq!(page.next.as_deref(), Some("00999"));
}
