//! Multipart uploads through aws-sdk-s3: create, parts, list_parts,
//! list_multipart_uploads, complete (ETag = md5 of the part md5s + "-N"), GET by
//! partNumber, the completion errors, abort, upload_part_copy with a range.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;

use crate::s3::{assert_bytes, assert_s3_error, client, data, get, new_bucket, put, show};

const MIB: usize = 1024 * 1024;

fn md5_raw(b: &[u8]) -> Vec<u8> {
    use md5::Digest;
    md5::Md5::digest(b).to_vec()
}

/// The ETag S3 gives a multipart object: md5 of the concatenated part md5s, "-N".
fn multipart_etag(parts: &[&[u8]]) -> String {
    let cat: Vec<u8> = parts.iter().flat_map(|p| md5_raw(p)).collect();
    format!("\"{}-{}\"", hex::encode(md5_raw(&cat)), parts.len())
}

async fn create(s3: &Client, b: &str, k: &str) -> String {
    s3.create_multipart_upload()
        .bucket(b)
        .key(k)
        .content_type("application/x-parts")
        .metadata("kind", "multipart")
        .send()
        .await
        .unwrap_or_else(|e| panic!("create upload: {}", show(&e)))
        .upload_id()
        .expect("upload id")
        .to_string()
}

async fn upload(s3: &Client, b: &str, k: &str, id: &str, n: i32, body: &[u8]) -> String {
    s3.upload_part()
        .bucket(b)
        .key(k)
        .upload_id(id)
        .part_number(n)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload part {n}: {}", show(&e)))
        .e_tag()
        .expect("part ETag")
        .to_string()
}

fn completed(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(*e).build())
                .collect(),
        ))
        .build()
}

#[tokio::test]
async fn multipart_upload_list_complete_and_read_by_part() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "mpu").await;
    let p1 = data(5 * MIB, 1);
    let p2 = data(5 * MIB, 2);
    let p3 = data(1, 3);
    let id = create(&s3, &b, "big").await;
    // Parts uploaded out of order; part 2 uploaded twice (the last upload wins).
    let e3 = upload(&s3, &b, "big", &id, 3, &p3).await;
    let _stale = upload(&s3, &b, "big", &id, 2, &data(5 * MIB, 77)).await;
    let e2 = upload(&s3, &b, "big", &id, 2, &p2).await;
    let e1 = upload(&s3, &b, "big", &id, 1, &p1).await;
    assert_eq!(e1, crate::s3::etag_of(&p1), "part ETag is the part's md5");

    let parts = s3
        .list_parts()
        .bucket(&b)
        .key("big")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let listed: Vec<(i32, &str, i64)> = parts
        .parts()
        .iter()
        .map(|p| {
            (
                p.part_number().unwrap(),
                p.e_tag().unwrap(),
                p.size().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (1, e1.as_str(), 5 * MIB as i64),
            (2, e2.as_str(), 5 * MIB as i64),
            (3, e3.as_str(), 1)
        ],
        "list_parts"
    );
    // Paged list_parts.
    let page = s3
        .list_parts()
        .bucket(&b)
        .key("big")
        .upload_id(&id)
        .max_parts(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.parts().len(), 2);
    assert_eq!(page.is_truncated(), Some(true));
    let next = page
        .next_part_number_marker()
        .expect("next part marker")
        .to_string();
    let page = s3
        .list_parts()
        .bucket(&b)
        .key("big")
        .upload_id(&id)
        .part_number_marker(next)
        .send()
        .await
        .unwrap();
    let nums: Vec<i32> = page
        .parts()
        .iter()
        .filter_map(|p| p.part_number())
        .collect();
    assert_eq!(nums, [3]);

    let uploads = s3.list_multipart_uploads().bucket(&b).send().await.unwrap();
    let ups: Vec<(&str, &str)> = uploads
        .uploads()
        .iter()
        .map(|u| (u.key().unwrap(), u.upload_id().unwrap()))
        .collect();
    assert_eq!(ups, [("big", id.as_str())], "list_multipart_uploads");

    // Not visible before completion.
    assert_s3_error(
        s3.get_object().bucket(&b).key("big").send().await,
        404,
        "NoSuchKey",
        "object before completion",
    );

    let done = s3
        .complete_multipart_upload()
        .bucket(&b)
        .key("big")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1), (2, &e2), (3, &e3)]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete: {}", show(&e)));
    let etag = done.e_tag().expect("complete ETag").to_string();
    assert!(etag.ends_with("-3\""), "multipart ETag {etag}");
    assert_eq!(etag, multipart_etag(&[&p1, &p2, &p3]), "md5 of md5s");

    let whole: Vec<u8> = [p1.as_slice(), &p2, &p3].concat();
    let out = s3.get_object().bucket(&b).key("big").send().await.unwrap();
    assert_eq!(out.e_tag(), Some(etag.as_str()));
    assert_eq!(out.content_type(), Some("application/x-parts"));
    assert_eq!(
        out.metadata()
            .and_then(|m| m.get("kind"))
            .map(String::as_str),
        Some("multipart")
    );
    assert_eq!(out.content_length(), Some(whole.len() as i64));
    assert_bytes(
        &out.body.collect().await.unwrap().into_bytes(),
        &whole,
        "GET",
    );

    // A range across the part 1/2 boundary.
    let from = 5 * MIB - 100;
    let out = s3
        .get_object()
        .bucket(&b)
        .key("big")
        .range(format!("bytes={from}-{}", from + 199))
        .send()
        .await
        .unwrap();
    assert_bytes(
        &out.body.collect().await.unwrap().into_bytes(),
        &whole[from..from + 200],
        "range across parts",
    );

    // partNumber reads one part, with the parts count.
    for (n, want) in [(1, &p1), (2, &p2), (3, &p3)] {
        let out = s3
            .get_object()
            .bucket(&b)
            .key("big")
            .part_number(n)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET partNumber={n}: {}", show(&e)));
        assert_eq!(out.parts_count(), Some(3), "x-amz-mp-parts-count");
        assert_eq!(
            out.content_length(),
            Some(want.len() as i64),
            "part {n} length"
        );
        assert_bytes(
            &out.body.collect().await.unwrap().into_bytes(),
            want,
            &format!("part {n}"),
        );
    }
    let head = s3
        .head_object()
        .bucket(&b)
        .key("big")
        .part_number(3)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(1));
    assert_s3_error(
        s3.get_object()
            .bucket(&b)
            .key("big")
            .part_number(4)
            .send()
            .await,
        416,
        "InvalidPartNumber",
        "partNumber past the last part",
    );

    // The upload is gone after completion.
    let uploads = s3.list_multipart_uploads().bucket(&b).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "{uploads:?}");
    assert_s3_error(
        s3.list_parts()
            .bucket(&b)
            .key("big")
            .upload_id(&id)
            .send()
            .await,
        404,
        "NoSuchUpload",
        "list_parts after completion",
    );
}

#[tokio::test]
async fn multipart_completion_errors_and_abort() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "mpuerr").await;
    let small = data(1000, 4);
    let full = data(5 * MIB, 5);

    // A part other than the last below 5 MiB → EntityTooSmall.
    let id = create(&s3, &b, "small").await;
    let e1 = upload(&s3, &b, "small", &id, 1, &small).await;
    let e2 = upload(&s3, &b, "small", &id, 2, &full).await;
    assert_s3_error(
        s3.complete_multipart_upload()
            .bucket(&b)
            .key("small")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &e1), (2, &e2)]))
            .send()
            .await,
        400,
        "EntityTooSmall",
        "complete with a small first part",
    );
    // Wrong part ETag → InvalidPart; unknown part number → InvalidPart.
    assert_s3_error(
        s3.complete_multipart_upload()
            .bucket(&b)
            .key("small")
            .upload_id(&id)
            .multipart_upload(completed(&[(2, "\"0123456789abcdef0123456789abcdef\"")]))
            .send()
            .await,
        400,
        "InvalidPart",
        "complete with a wrong part ETag",
    );
    assert_s3_error(
        s3.complete_multipart_upload()
            .bucket(&b)
            .key("small")
            .upload_id(&id)
            .multipart_upload(completed(&[(2, &e2), (9, &e2)]))
            .send()
            .await,
        400,
        "InvalidPart",
        "complete with a part never uploaded",
    );
    // Out of order → InvalidPartOrder.
    assert_s3_error(
        s3.complete_multipart_upload()
            .bucket(&b)
            .key("small")
            .upload_id(&id)
            .multipart_upload(completed(&[(2, &e2), (1, &e1)]))
            .send()
            .await,
        400,
        "InvalidPartOrder",
        "complete with parts out of order",
    );
    // The failed completions left the upload usable: a single small last part is fine.
    let done = s3
        .complete_multipart_upload()
        .bucket(&b)
        .key("small")
        .upload_id(&id)
        .multipart_upload(completed(&[(2, &e2)]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete after errors: {}", show(&e)));
    assert_eq!(done.e_tag(), Some(multipart_etag(&[&full]).as_str()));
    assert_bytes(&get(&s3, &b, "small").await, &full, "one-part upload");

    // Abort → NoSuchUpload afterwards.
    let id = create(&s3, &b, "aborted").await;
    upload(&s3, &b, "aborted", &id, 1, &small).await;
    s3.abort_multipart_upload()
        .bucket(&b)
        .key("aborted")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_s3_error(
        s3.list_parts()
            .bucket(&b)
            .key("aborted")
            .upload_id(&id)
            .send()
            .await,
        404,
        "NoSuchUpload",
        "list_parts after abort",
    );
    assert_s3_error(
        s3.upload_part()
            .bucket(&b)
            .key("aborted")
            .upload_id(&id)
            .part_number(2)
            .body(ByteStream::from_static(b"late"))
            .send()
            .await,
        404,
        "NoSuchUpload",
        "upload_part after abort",
    );
    assert_s3_error(
        s3.complete_multipart_upload()
            .bucket(&b)
            .key("aborted")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, "\"x\"")]))
            .send()
            .await,
        404,
        "NoSuchUpload",
        "complete after abort",
    );
    assert_s3_error(
        s3.abort_multipart_upload()
            .bucket(&b)
            .key("aborted")
            .upload_id("no-such-upload-id")
            .send()
            .await,
        404,
        "NoSuchUpload",
        "abort of an unknown upload",
    );
    assert_s3_error(
        s3.get_object().bucket(&b).key("aborted").send().await,
        404,
        "NoSuchKey",
        "aborted upload created no object",
    );
    // Invalid part numbers.
    let id = create(&s3, &b, "pn").await;
    for n in [0, 10001] {
        let (st, code) = crate::s3::failure(
            s3.upload_part()
                .bucket(&b)
                .key("pn")
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        );
        assert_eq!(st, 400, "part number {n}: {code}");
        assert!(
            code == "InvalidArgument" || code == "InvalidPartNumber",
            "part number {n}: {code}"
        );
    }
}

#[tokio::test]
async fn upload_part_copy_with_a_range() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "mpucopy").await;
    let src = data(7 * MIB, 6);
    put(&s3, &b, "src", &src).await;
    let tail = data(123, 7);

    let id = create(&s3, &b, "dst").await;
    // Part 1: the source's bytes [1 MiB, 6 MiB); part 2: uploaded.
    let first = MIB;
    let last = 6 * MIB - 1;
    let c = s3
        .upload_part_copy()
        .bucket(&b)
        .key("dst")
        .upload_id(&id)
        .part_number(1)
        .copy_source(format!("{b}/src"))
        .copy_source_range(format!("bytes={first}-{last}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload_part_copy: {}", show(&e)));
    let e1 = c
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .expect("CopyPartResult ETag")
        .to_string();
    assert_eq!(
        e1,
        crate::s3::etag_of(&src[first..=last]),
        "copied part ETag"
    );
    let e2 = upload(&s3, &b, "dst", &id, 2, &tail).await;
    s3.complete_multipart_upload()
        .bucket(&b)
        .key("dst")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1), (2, &e2)]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete: {}", show(&e)));
    let want: Vec<u8> = [&src[first..=last], tail.as_slice()].concat();
    assert_bytes(&get(&s3, &b, "dst").await, &want, "part copy + part");

    // A range past the source's end is refused.
    let id = create(&s3, &b, "bad").await;
    let (st, code) = crate::s3::failure(
        s3.upload_part_copy()
            .bucket(&b)
            .key("bad")
            .upload_id(&id)
            .part_number(1)
            .copy_source(format!("{b}/src"))
            .copy_source_range(format!("bytes=0-{}", 8 * MIB))
            .send()
            .await,
    );
    assert!(
        matches!(
            (st, code.as_str()),
            (416 | 400, "InvalidRange") | (400, "InvalidArgument")
        ),
        "copy range past the end: {st} {code}"
    );
}
