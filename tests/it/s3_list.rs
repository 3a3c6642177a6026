//! Listings (v2 and v1: prefix, delimiter, common prefixes, pagination, start-after,
//! marker, URL encoding) and versioning through aws-sdk-s3.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, EncodingType, VersioningConfiguration};

use crate::s3::{assert_bytes, assert_s3_error, client, data, get, new_bucket, put, show};

const MIB: usize = 1024 * 1024;

/// S3's `encoding-type=url` form: percent-escapes, `+` for a space.
fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(h, 16).expect("hex escape"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn list_v2_prefix_delimiter_pagination_start_after_encoding() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "lv2").await;
    let keys = ["a/1", "a/2", "a/sub/3", "b/1", "c", "d/e/f", "z"];
    for k in keys {
        put(&s3, &b, k, k.as_bytes()).await;
    }

    // Everything, in key order, with sizes and ETags.
    let all = s3.list_objects_v2().bucket(&b).send().await.unwrap();
    let got: Vec<&str> = all.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, keys, "full listing");
    assert_eq!(all.key_count(), Some(7));
    assert_eq!(all.is_truncated(), Some(false));
    let c = all
        .contents()
        .iter()
        .find(|o| o.key() == Some("a/sub/3"))
        .unwrap();
    assert_eq!(c.size(), Some(7));
    assert_eq!(c.e_tag(), Some(crate::s3::etag_of(b"a/sub/3").as_str()));
    assert!(c.last_modified().is_some());

    // Delimiter: top level.
    let top = s3
        .list_objects_v2()
        .bucket(&b)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let files: Vec<&str> = top.contents().iter().filter_map(|o| o.key()).collect();
    let dirs: Vec<&str> = top
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(files, ["c", "z"], "top-level keys");
    assert_eq!(dirs, ["a/", "b/", "d/"], "common prefixes");
    assert_eq!(
        top.key_count(),
        Some(5),
        "KeyCount counts keys and prefixes"
    );

    // Prefix + delimiter.
    let a = s3
        .list_objects_v2()
        .bucket(&b)
        .prefix("a/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let files: Vec<&str> = a.contents().iter().filter_map(|o| o.key()).collect();
    let dirs: Vec<&str> = a
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(files, ["a/1", "a/2"]);
    assert_eq!(dirs, ["a/sub/"]);
    assert_eq!(a.prefix(), Some("a/"));

    // Prefix only.
    let d = s3
        .list_objects_v2()
        .bucket(&b)
        .prefix("d/")
        .send()
        .await
        .unwrap();
    let files: Vec<&str> = d.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(files, ["d/e/f"]);

    // Pagination: max-keys 2 over 7 keys, continuation tokens.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(&b)
            .max_keys(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.contents().len() <= 2, "page of at most 2: {page:?}");
        assert_eq!(page.max_keys(), Some(2));
        seen.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        if page.is_truncated() == Some(true) {
            let next = page
                .next_continuation_token()
                .expect("token when truncated");
            assert_eq!(page.continuation_token(), token.as_deref());
            token = Some(next.to_string());
        } else {
            assert!(page.next_continuation_token().is_none());
            break;
        }
        assert!(pages < 20, "pagination does not end");
    }
    assert_eq!(seen, keys, "paginated listing");
    assert_eq!(pages, 4, "7 keys in pages of 2");

    // Pagination with a delimiter counts common prefixes against max-keys.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let page = s3
            .list_objects_v2()
            .bucket(&b)
            .delimiter("/")
            .max_keys(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        seen.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        seen.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_string)),
        );
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, ["a/", "b/", "c", "d/", "z"], "delimited pagination");

    // start-after.
    let after = s3
        .list_objects_v2()
        .bucket(&b)
        .start_after("b/1")
        .send()
        .await
        .unwrap();
    let got: Vec<&str> = after.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, ["c", "d/e/f", "z"], "start-after b/1");
    assert_eq!(after.start_after(), Some("b/1"));

    // encoding-type=url with a key holding a space and other escapes.
    let odd = "dir/with space+plus&amp.txt";
    put(&s3, &b, odd, b"odd").await;
    let enc = s3
        .list_objects_v2()
        .bucket(&b)
        .prefix("dir/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(enc.encoding_type(), Some(&EncodingType::Url));
    let raw = enc.contents()[0].key().unwrap();
    assert!(!raw.contains(' '), "the space is encoded: {raw:?}");
    assert_eq!(url_decode(raw), odd, "decoded key (raw {raw:?})");
    // Without encoding the key comes back as is (XML-escaped on the wire).
    let plain = s3
        .list_objects_v2()
        .bucket(&b)
        .prefix("dir/")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.contents()[0].key(), Some(odd));
    assert_eq!(get(&s3, &b, odd).await, b"odd");

    // Empty and missing prefixes.
    let none = s3
        .list_objects_v2()
        .bucket(&b)
        .prefix("nothing/")
        .send()
        .await
        .unwrap();
    assert!(none.contents().is_empty());
    assert_eq!(none.key_count(), Some(0));
}

#[tokio::test]
async fn list_v1_marker_and_truncation() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "lv1").await;
    let keys = ["k1", "k2", "k3", "k4", "k5", "p/x", "p/y"];
    for k in keys {
        put(&s3, &b, k, b"v").await;
    }
    let all = s3.list_objects().bucket(&b).send().await.unwrap();
    let got: Vec<&str> = all.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, keys);
    assert_eq!(all.is_truncated(), Some(false));

    let page = s3
        .list_objects()
        .bucket(&b)
        .marker("k2")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    let got: Vec<&str> = page.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, ["k3", "k4"], "after marker k2, 2 keys");
    assert_eq!(page.is_truncated(), Some(true));
    assert_eq!(page.marker(), Some("k2"));

    // Walk with markers (the last key is the next marker without a delimiter).
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..10 {
        let p = s3
            .list_objects()
            .bucket(&b)
            .max_keys(3)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        seen.extend(
            p.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        if p.is_truncated() != Some(true) {
            break;
        }
        marker = p
            .next_marker()
            .map(str::to_string)
            .or_else(|| seen.last().cloned());
    }
    assert_eq!(seen, keys, "v1 walk");

    // With a delimiter, NextMarker is set when truncated.
    let p = s3
        .list_objects()
        .bucket(&b)
        .delimiter("/")
        .max_keys(5)
        .send()
        .await
        .unwrap();
    let got: Vec<&str> = p.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, ["k1", "k2", "k3", "k4", "k5"]);
    assert_eq!(p.is_truncated(), Some(true));
    assert_eq!(p.next_marker(), Some("k5"));
    let p = s3
        .list_objects()
        .bucket(&b)
        .delimiter("/")
        .marker("k5")
        .send()
        .await
        .unwrap();
    let dirs: Vec<&str> = p
        .common_prefixes()
        .iter()
        .filter_map(|x| x.prefix())
        .collect();
    assert_eq!(dirs, ["p/"]);
    assert!(p.contents().is_empty());
}

#[tokio::test]
async fn versioning_versions_delete_markers_and_listing() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "ver").await;
    // A new bucket has no versioning status.
    let v = s3.get_bucket_versioning().bucket(&b).send().await.unwrap();
    assert_eq!(v.status(), None, "fresh bucket versioning");

    // Before versioning: one "null" version.
    put(&s3, &b, "pre", b"before").await;
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
    let v = s3.get_bucket_versioning().bucket(&b).send().await.unwrap();
    assert_eq!(v.status(), Some(&BucketVersioningStatus::Enabled));

    let one = data(3000, 1);
    let two = data(MIB + 5, 2);
    let put1 = s3
        .put_object()
        .bucket(&b)
        .key("k")
        .body(ByteStream::from(one.clone()))
        .send()
        .await
        .unwrap();
    let put2 = s3
        .put_object()
        .bucket(&b)
        .key("k")
        .body(ByteStream::from(two.clone()))
        .send()
        .await
        .unwrap();
    let v1 = put1.version_id().expect("version id of put 1").to_string();
    let v2 = put2.version_id().expect("version id of put 2").to_string();
    assert_ne!(v1, v2);
    assert_ne!(v1, "null");
    assert_bytes(&get(&s3, &b, "k").await, &two, "latest");
    for (vid, want) in [(&v1, &one), (&v2, &two)] {
        let out = s3
            .get_object()
            .bucket(&b)
            .key("k")
            .version_id(vid)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get version {vid}: {}", show(&e)));
        assert_eq!(out.version_id(), Some(vid.as_str()));
        let got = out.body.collect().await.unwrap().into_bytes();
        assert_bytes(&got, want, &format!("version {vid}"));
    }
    let head = s3
        .head_object()
        .bucket(&b)
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(3000));

    // Delete without a version id → a delete marker.
    let del = s3.delete_object().bucket(&b).key("k").send().await.unwrap();
    assert_eq!(del.delete_marker(), Some(true), "delete marker: {del:?}");
    let marker_id = del
        .version_id()
        .expect("delete marker version id")
        .to_string();
    assert_s3_error(
        s3.get_object().bucket(&b).key("k").send().await,
        404,
        "NoSuchKey",
        "get behind a delete marker",
    );
    // Old versions stay readable.
    let out = s3
        .get_object()
        .bucket(&b)
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_bytes(
        &out.body.collect().await.unwrap().into_bytes(),
        &one,
        "v1 after marker",
    );
    // The current listing hides the key.
    let l = s3.list_objects_v2().bucket(&b).send().await.unwrap();
    let keys: Vec<&str> = l.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["pre"], "listing hides deleted k");

    let lv = s3
        .list_object_versions()
        .bucket(&b)
        .prefix("k")
        .send()
        .await
        .unwrap();
    let versions: Vec<(&str, bool)> = lv
        .versions()
        .iter()
        .map(|v| (v.version_id().unwrap(), v.is_latest().unwrap_or(false)))
        .collect();
    assert_eq!(
        versions,
        [(v2.as_str(), false), (v1.as_str(), false)],
        "versions newest first: {lv:?}"
    );
    let markers: Vec<(&str, bool)> = lv
        .delete_markers()
        .iter()
        .map(|m| (m.version_id().unwrap(), m.is_latest().unwrap_or(false)))
        .collect();
    assert_eq!(
        markers,
        [(marker_id.as_str(), true)],
        "delete markers: {lv:?}"
    );
    assert_eq!(lv.versions()[1].size(), Some(3000));

    // The pre-versioning object is version "null".
    let lv = s3
        .list_object_versions()
        .bucket(&b)
        .prefix("pre")
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = lv
        .versions()
        .iter()
        .filter_map(|v| v.version_id())
        .collect();
    assert_eq!(ids, ["null"]);

    // Deleting the marker (by version id) brings v2 back; deleting v2 leaves v1.
    let d = s3
        .delete_object()
        .bucket(&b)
        .key("k")
        .version_id(&marker_id)
        .send()
        .await
        .unwrap();
    assert_eq!(d.version_id(), Some(marker_id.as_str()));
    assert_bytes(&get(&s3, &b, "k").await, &two, "after removing the marker");
    s3.delete_object()
        .bucket(&b)
        .key("k")
        .version_id(&v2)
        .send()
        .await
        .unwrap();
    assert_bytes(&get(&s3, &b, "k").await, &one, "after removing v2");
    assert_s3_error(
        s3.get_object()
            .bucket(&b)
            .key("k")
            .version_id(&v2)
            .send()
            .await,
        404,
        "NoSuchVersion",
        "get a deleted version",
    );
    // A non-empty versioned bucket cannot be deleted.
    assert_s3_error(
        s3.delete_bucket().bucket(&b).send().await,
        409,
        "BucketNotEmpty",
        "delete a bucket holding versions",
    );
}

#[tokio::test]
async fn unversioned_bucket_lists_null_versions() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "unver").await;
    put(&s3, &b, "x", b"1").await;
    let out = s3
        .put_object()
        .bucket(&b)
        .key("x")
        .body(ByteStream::from_static(b"2"))
        .send()
        .await;
    let out = out.unwrap();
    assert!(
        matches!(out.version_id(), None | Some("null")),
        "unversioned PUT version id {:?}",
        out.version_id()
    );
    let lv = s3.list_object_versions().bucket(&b).send().await.unwrap();
    let v: Vec<(&str, &str, bool)> = lv
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap(),
                v.version_id().unwrap(),
                v.is_latest().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(v, [("x", "null", true)], "one null version: {lv:?}");
    assert!(lv.delete_markers().is_empty());
    assert_eq!(get(&s3, &b, "x").await, b"2");
    // Delete in an unversioned bucket removes the object (no marker).
    let d = s3.delete_object().bucket(&b).key("x").send().await.unwrap();
    assert_ne!(d.delete_marker(), Some(true));
    let lv = s3.list_object_versions().bucket(&b).send().await.unwrap();
    assert!(
        lv.versions().is_empty() && lv.delete_markers().is_empty(),
        "{lv:?}"
    );
}
