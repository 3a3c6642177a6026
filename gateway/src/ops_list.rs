//! ListObjectsV2, ListObjects (V1), ListObjectVersions.

use base64::Engine as _;
use meta_raft::state_machine::{ListObjectsParams, ListVersionsParams, MAX_LIST_KEYS};
use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

use crate::error::{self, s3};
use crate::gateway::{bucket_of, ctx, etag, timestamp, Gateway};
use crate::ops_bucket::owner;

/// `max-keys`: default and cap 1000; negative is InvalidArgument.
fn max_keys(v: Option<i32>) -> S3Result<u32> {
    match v {
        None => Ok(MAX_LIST_KEYS),
        Some(n) if n < 0 => Err(s3(
            S3ErrorCode::InvalidArgument,
            "max-keys must be a non-negative integer",
        )),
        Some(n) => Ok(u32::try_from(n).unwrap_or(MAX_LIST_KEYS).min(MAX_LIST_KEYS)),
    }
}

/// `encoding-type`: only `url` exists.
fn url_encoding(v: Option<&EncodingType>) -> S3Result<bool> {
    match v.map(|e| e.as_str()) {
        None => Ok(false),
        Some(e) if e.eq_ignore_ascii_case(EncodingType::URL) => Ok(true),
        Some(e) => Err(s3(
            S3ErrorCode::InvalidArgument,
            format!("Invalid Encoding Method specified in Request: {e:?}"),
        )),
    }
}

/// S3's URL encoding of keys in listings: every byte but unreserved characters and `/`.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_token(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn decode_token(t: &str) -> S3Result<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            s3(
                S3ErrorCode::InvalidArgument,
                "The continuation token provided is incorrect",
            )
        })
}

impl Gateway {
    pub(crate) async fn op_list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let i = req.input;
        let max = max_keys(i.max_keys)?;
        let enc = url_encoding(i.encoding_type.as_ref())?;
        let after = match &i.continuation_token {
            Some(t) => Some(decode_token(t)?),
            None => i.start_after.clone().filter(|s| !s.is_empty()),
        };
        let params = ListObjectsParams {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone().filter(|d| !d.is_empty()),
            start_after: after,
            max_keys: max,
            end_before: None,
        };
        let page = if max == 0 {
            Default::default()
        } else {
            self.meta
                .list_objects(&bucket.name, &params)
                .await
                .map_err(error::meta)?
        };
        let e = |s: String| if enc { url_encode(&s) } else { s };
        let fetch_owner = i.fetch_owner.unwrap_or(false);
        let key_count = page.entries.len() + page.common_prefixes.len();
        let contents: Vec<Object> = page
            .entries
            .into_iter()
            .map(|o| Object {
                key: Some(e(o.key)),
                size: Some(i64::try_from(o.size).unwrap_or(i64::MAX)),
                e_tag: Some(etag(&o.etag)),
                last_modified: Some(timestamp(o.created_ms)),
                owner: fetch_owner.then(|| owner(&o.owner)),
                storage_class: Some(ObjectStorageClass::from_static(
                    ObjectStorageClass::STANDARD,
                )),
                ..Default::default()
            })
            .collect();
        let prefixes: Vec<CommonPrefix> = page
            .common_prefixes
            .into_iter()
            .map(|p| CommonPrefix { prefix: Some(e(p)) })
            .collect();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(bucket.name),
            prefix: Some(e(params.prefix)),
            delimiter: params.delimiter.map(e),
            max_keys: Some(i32::try_from(max).unwrap_or(1000)),
            key_count: Some(i32::try_from(key_count).unwrap_or(i32::MAX)),
            continuation_token: i.continuation_token,
            start_after: i.start_after.map(e),
            is_truncated: Some(page.is_truncated),
            next_continuation_token: page
                .is_truncated
                .then(|| page.next.as_deref().map(encode_token))
                .flatten(),
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }

    pub(crate) async fn op_list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let i = req.input;
        let max = max_keys(i.max_keys)?;
        let enc = url_encoding(i.encoding_type.as_ref())?;
        let params = ListObjectsParams {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone().filter(|d| !d.is_empty()),
            start_after: i.marker.clone().filter(|s| !s.is_empty()),
            max_keys: max,
            end_before: None,
        };
        let page = if max == 0 {
            Default::default()
        } else {
            self.meta
                .list_objects(&bucket.name, &params)
                .await
                .map_err(error::meta)?
        };
        let e = |s: String| if enc { url_encode(&s) } else { s };
        let contents: Vec<Object> = page
            .entries
            .into_iter()
            .map(|o| Object {
                key: Some(e(o.key)),
                size: Some(i64::try_from(o.size).unwrap_or(i64::MAX)),
                e_tag: Some(etag(&o.etag)),
                last_modified: Some(timestamp(o.created_ms)),
                owner: Some(owner(&o.owner)),
                storage_class: Some(ObjectStorageClass::from_static(
                    ObjectStorageClass::STANDARD,
                )),
                ..Default::default()
            })
            .collect();
        let prefixes: Vec<CommonPrefix> = page
            .common_prefixes
            .into_iter()
            .map(|p| CommonPrefix { prefix: Some(e(p)) })
            .collect();
        // NextMarker is returned only with a delimiter (without one, the client uses the
        // last key), as S3 does.
        let next_marker = (page.is_truncated && params.delimiter.is_some())
            .then(|| page.next.clone().map(e))
            .flatten();
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(bucket.name),
            prefix: Some(e(params.prefix)),
            marker: Some(i.marker.map(e).unwrap_or_default()),
            delimiter: params.delimiter.map(e),
            max_keys: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(page.is_truncated),
            next_marker,
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }

    pub(crate) async fn op_list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let i = req.input;
        let max = max_keys(i.max_keys)?;
        let enc = url_encoding(i.encoding_type.as_ref())?;
        if i.version_id_marker
            .as_deref()
            .is_some_and(|v| !v.is_empty())
            && i.key_marker.as_deref().is_none_or(str::is_empty)
        {
            return Err(s3(
                S3ErrorCode::InvalidArgument,
                "A version-id marker cannot be specified without a key marker.",
            ));
        }
        let params = ListVersionsParams {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone().filter(|d| !d.is_empty()),
            key_marker: i.key_marker.clone().filter(|s| !s.is_empty()),
            version_id_marker: i.version_id_marker.clone().filter(|s| !s.is_empty()),
            max_keys: max,
            end_before: None,
        };
        let page = if max == 0 {
            Default::default()
        } else {
            self.meta
                .list_object_versions(&bucket.name, &params)
                .await
                .map_err(error::meta)?
        };
        let e = |s: String| if enc { url_encode(&s) } else { s };
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        for v in page.versions {
            if v.is_delete_marker {
                markers.push(DeleteMarkerEntry {
                    key: Some(e(v.key)),
                    version_id: Some(v.version_id),
                    is_latest: Some(v.is_latest),
                    last_modified: Some(timestamp(v.created_ms)),
                    owner: Some(owner(&v.owner)),
                });
            } else {
                versions.push(ObjectVersion {
                    key: Some(e(v.key)),
                    version_id: Some(v.version_id),
                    is_latest: Some(v.is_latest),
                    last_modified: Some(timestamp(v.created_ms)),
                    owner: Some(owner(&v.owner)),
                    e_tag: Some(etag(&v.etag)),
                    size: Some(i64::try_from(v.size).unwrap_or(i64::MAX)),
                    storage_class: Some(ObjectVersionStorageClass::from_static(
                        ObjectVersionStorageClass::STANDARD,
                    )),
                    ..Default::default()
                });
            }
        }
        let prefixes: Vec<CommonPrefix> = page
            .common_prefixes
            .into_iter()
            .map(|p| CommonPrefix { prefix: Some(e(p)) })
            .collect();
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(bucket.name),
            prefix: Some(e(params.prefix)),
            delimiter: params.delimiter.map(e),
            key_marker: Some(i.key_marker.map(e).unwrap_or_default()),
            version_id_marker: Some(i.version_id_marker.unwrap_or_default()),
            max_keys: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(page.is_truncated),
            next_key_marker: page
                .is_truncated
                .then(|| page.next_key_marker.map(e))
                .flatten(),
            next_version_id_marker: page
                .is_truncated
                .then_some(page.next_version_id_marker)
                .flatten(),
            versions: Some(versions),
            delete_markers: Some(markers),
            common_prefixes: Some(prefixes),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }
}

#[cfg(test)]
#[path = "ops_list_test.rs"]
mod ops_list_test;
