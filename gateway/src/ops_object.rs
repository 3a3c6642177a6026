//! PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects.

use futures::StreamExt;
use meta_raft::client::MetaClientError;
use meta_raft::state_machine::{
    CurrentVersion, DeleteObject, PutObject, Reason, VersionRecord, Versioning,
};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::checksum::Declared;
use crate::error::{self, s3};
use crate::gateway::{
    bucket_of, check_read_conditions, check_version_id, ctx, etag, http_date, not_modified_headers,
    object_meta, part_range, timestamp, user_metadata, visible_version_id, write_preconditions,
    Gateway,
};

/// Concurrent deletes of one DeleteObjects request.
const DELETE_OBJECTS_PARALLEL: usize = 16;

fn no_such_key() -> S3Error {
    s3(S3ErrorCode::NoSuchKey, "The specified key does not exist.")
}

/// `x-amz-delete-marker: true` and the marker's `x-amz-version-id` (a marker exists only
/// in a bucket that has had versioning on, so its id is always shown).
fn marker_headers(marker: &VersionRecord) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        "x-amz-delete-marker",
        http::HeaderValue::from_static("true"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&marker.version_id) {
        h.insert("x-amz-version-id", v);
    }
    h
}

/// What GET and HEAD found.
pub(crate) struct Found {
    pub version: VersionRecord,
    /// The byte range served and `Content-Range` (for Range and partNumber requests).
    pub range: std::ops::Range<u64>,
    pub content_range: Option<String>,
    pub parts_count: Option<i32>,
}

impl Gateway {
    /// The version a GET/HEAD addresses: current, or `version_id` (`InvalidArgument` if
    /// we could not have issued it). A current delete marker is 404 NoSuchKey with
    /// `x-amz-delete-marker: true` and the marker's `x-amz-version-id`; addressing a delete
    /// marker by id is 405 MethodNotAllowed with `x-amz-delete-marker: true`,
    /// `Last-Modified`, `x-amz-version-id` and `Allow: DELETE` — what S3 answers.
    pub(crate) async fn find_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<VersionRecord> {
        match version_id {
            Some(v) => {
                check_version_id(v)?;
                let found = self
                    .meta
                    .get_version(bucket, key, v)
                    .await
                    .map_err(error::meta)?;
                match found {
                    Some(r) if r.is_delete_marker => {
                        let mut h = marker_headers(&r);
                        if let Some(x) = http_date(r.created_ms) {
                            h.insert(http::header::LAST_MODIFIED, x);
                        }
                        h.insert(
                            http::header::ALLOW,
                            http::HeaderValue::from_static("DELETE"),
                        );
                        Err(error::with_headers(
                            s3(
                                S3ErrorCode::MethodNotAllowed,
                                "The specified method is not allowed against this resource.",
                            ),
                            h,
                        ))
                    }
                    Some(r) => Ok(r),
                    None => Err(s3(
                        S3ErrorCode::NoSuchVersion,
                        "The specified version does not exist.",
                    )),
                }
            }
            None => match self
                .meta
                .head_object(bucket, key)
                .await
                .map_err(error::meta)?
            {
                CurrentVersion::Object(r) => Ok(r),
                CurrentVersion::DeleteMarker(r) => {
                    Err(error::with_headers(no_such_key(), marker_headers(&r)))
                }
                CurrentVersion::Absent => Err(no_such_key()),
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn locate(
        &self,
        bucket_record: &meta_raft::state_machine::BucketRecord,
        key: &str,
        version_id: Option<&str>,
        range: Option<&Range>,
        part_number: Option<i32>,
        if_match: Option<&IfMatch>,
        if_unmodified_since: Option<&IfUnmodifiedSince>,
        if_none_match: Option<&IfNoneMatch>,
        if_modified_since: Option<&IfModifiedSince>,
    ) -> S3Result<Found> {
        let version = self
            .find_version(&bucket_record.name, key, version_id)
            .await?;
        if let Err(e) = check_read_conditions(
            &version,
            if_match,
            if_unmodified_since,
            if_none_match,
            if_modified_since,
            S3ErrorCode::NotModified,
        ) {
            if *e.code() != S3ErrorCode::NotModified {
                return Err(e);
            }
            let shown = visible_version_id(bucket_record, &version.version_id);
            let h = not_modified_headers(&version, shown.as_deref());
            return Err(error::with_headers(e, h));
        }
        let size = version.size;
        if range.is_some() && part_number.is_some() {
            return Err(s3(
                S3ErrorCode::InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter",
            ));
        }
        let (range, content_range, parts_count) = if let Some(n) = part_number {
            let (r, count) = part_range(&version.body, size, n)?;
            let cr = (!r.is_empty()).then(|| format!("bytes {}-{}/{size}", r.start, r.end - 1));
            (r, cr, Some(i32::try_from(count).unwrap_or(i32::MAX)))
        } else if let Some(r) = range {
            let r = r.check(size).map_err(|_| {
                s3(
                    S3ErrorCode::InvalidRange,
                    "The requested range is not satisfiable",
                )
            })?;
            let cr = format!("bytes {}-{}/{size}", r.start, r.end.saturating_sub(1));
            (r, Some(cr), None)
        } else {
            (0..size, None, None)
        };
        Ok(Found {
            version,
            range,
            content_range,
            parts_count,
        })
    }

    pub(crate) async fn op_put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let declared = Declared::from_headers(&req.headers)?;
        let input = req.input;
        let meta = object_meta(
            input.content_type,
            input.cache_control,
            input.content_disposition,
            input.content_encoding,
            input.content_language,
            input.expires,
            input.metadata,
        )?;
        let preconditions =
            write_preconditions(input.if_match.as_ref(), input.if_none_match.as_ref())?;
        let stored = self
            .store_body(
                input.body,
                &declared,
                req.trailing_headers.as_ref(),
                true,
                self.codec,
            )
            .await?;
        let cmd = PutObject {
            bucket: bucket.name.clone(),
            key: input.key,
            version_id: self.version_id_for(&bucket),
            created_ms: self.now_ms(),
            owner: c.user,
            size: stored.digest.size,
            etag: stored.digest.etag(),
            checksums: stored.digest.checksums.clone(),
            meta,
            body: stored.body,
            preconditions,
        };
        let committed = match self.meta.put_object(&cmd).await {
            Ok(c) => c,
            Err(e) => {
                // A rejected command had no effect: its fragments are garbage now. After
                // an unavailable/unknown outcome the commit may have happened: keep them
                // (orphans are collected by the inventory scan).
                if matches!(e, MetaClientError::Rejected(_)) {
                    self.discard(&cmd.body).await;
                }
                return Err(error::meta(e));
            }
        };
        let sums = &stored.digest.checksums;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&committed.etag)),
            version_id: visible_version_id(&bucket, &committed.version_id),
            checksum_crc32: sums.get("crc32").cloned(),
            checksum_crc32c: sums.get("crc32c").cloned(),
            checksum_crc64nvme: sums.get("crc64nvme").cloned(),
            checksum_sha1: sums.get("sha1").cloned(),
            checksum_sha256: sums.get("sha256").cloned(),
            size: Some(i64::try_from(committed.size).unwrap_or(i64::MAX)),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let i = req.input;
        let found = self
            .locate(
                &bucket,
                &i.key,
                i.version_id.as_deref(),
                i.range.as_ref(),
                i.part_number,
                i.if_match.as_ref(),
                i.if_unmodified_since.as_ref(),
                i.if_none_match.as_ref(),
                i.if_modified_since.as_ref(),
            )
            .await?;
        let v = &found.version;
        let whole = found.content_range.is_none();
        let with_sums = whole
            && i.checksum_mode
                .as_ref()
                .is_some_and(|m| m.as_str().eq_ignore_ascii_case("ENABLED"));
        let sum = |name: &str| with_sums.then(|| v.checksums.get(name).cloned()).flatten();
        let len = found.range.end - found.range.start;
        let body = self.read_body(&v.body, found.range.clone());
        Ok(S3Response::new(GetObjectOutput {
            body: Some(body),
            accept_ranges: Some("bytes".into()),
            content_length: Some(i64::try_from(len).unwrap_or(i64::MAX)),
            content_range: found.content_range.clone(),
            e_tag: Some(etag(&v.etag)),
            last_modified: Some(timestamp(v.created_ms)),
            version_id: visible_version_id(&bucket, &v.version_id),
            parts_count: found.parts_count,
            metadata: user_metadata(&v.meta),
            content_type: i
                .response_content_type
                .or_else(|| v.meta.content_type.clone())
                .or_else(|| Some("binary/octet-stream".into())),
            cache_control: i
                .response_cache_control
                .or_else(|| v.meta.cache_control.clone()),
            content_disposition: i
                .response_content_disposition
                .or_else(|| v.meta.content_disposition.clone()),
            content_encoding: i
                .response_content_encoding
                .or_else(|| v.meta.content_encoding.clone()),
            content_language: i
                .response_content_language
                .or_else(|| v.meta.content_language.clone()),
            expires: match i.response_expires {
                Some(t) => {
                    let mut buf = Vec::new();
                    t.format(TimestampFormat::HttpDate, &mut buf)
                        .ok()
                        .and_then(|()| String::from_utf8(buf).ok())
                }
                None => v.meta.expires.clone(),
            },
            checksum_crc32: sum("crc32"),
            checksum_crc32c: sum("crc32c"),
            checksum_crc64nvme: sum("crc64nvme"),
            checksum_sha1: sum("sha1"),
            checksum_sha256: sum("sha256"),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let i = req.input;
        let found = self
            .locate(
                &bucket,
                &i.key,
                i.version_id.as_deref(),
                i.range.as_ref(),
                i.part_number,
                i.if_match.as_ref(),
                i.if_unmodified_since.as_ref(),
                i.if_none_match.as_ref(),
                i.if_modified_since.as_ref(),
            )
            .await?;
        let v = &found.version;
        let with_sums = found.content_range.is_none()
            && i.checksum_mode
                .as_ref()
                .is_some_and(|m| m.as_str().eq_ignore_ascii_case("ENABLED"));
        let sum = |name: &str| with_sums.then(|| v.checksums.get(name).cloned()).flatten();
        let len = found.range.end - found.range.start;
        Ok(S3Response::new(HeadObjectOutput {
            accept_ranges: Some("bytes".into()),
            content_length: Some(i64::try_from(len).unwrap_or(i64::MAX)),
            content_range: found.content_range.clone(),
            e_tag: Some(etag(&v.etag)),
            last_modified: Some(timestamp(v.created_ms)),
            version_id: visible_version_id(&bucket, &v.version_id),
            parts_count: found.parts_count,
            metadata: user_metadata(&v.meta),
            content_type: v
                .meta
                .content_type
                .clone()
                .or_else(|| Some("binary/octet-stream".into())),
            cache_control: v.meta.cache_control.clone(),
            content_disposition: v.meta.content_disposition.clone(),
            content_encoding: v.meta.content_encoding.clone(),
            content_language: v.meta.content_language.clone(),
            expires: v.meta.expires.clone(),
            checksum_crc32: sum("crc32"),
            checksum_crc32c: sum("crc32c"),
            checksum_crc64nvme: sum("crc64nvme"),
            checksum_sha1: sum("sha1"),
            checksum_sha256: sum("sha256"),
            ..Default::default()
        }))
    }

    /// One delete (DeleteObject and each entry of DeleteObjects).
    async fn delete_one(
        &self,
        bucket: &meta_raft::state_machine::BucketRecord,
        user: &str,
        key: String,
        version_id: Option<String>,
        if_match: Option<&IfMatch>,
    ) -> S3Result<DeletedObject> {
        if let Some(v) = &version_id {
            check_version_id(v)?;
        }
        let preconditions = write_preconditions(if_match, None)?;
        let cmd = DeleteObject {
            bucket: bucket.name.clone(),
            key: key.clone(),
            version_id: version_id.clone(),
            created_ms: self.now_ms(),
            owner: user.to_owned(),
            marker_version_id: match bucket.versioning {
                Versioning::Enabled => self.new_id(),
                _ => meta_raft::state_machine::NULL_VERSION_ID.to_owned(),
            },
            preconditions,
        };
        match self.meta.delete_object(&cmd).await {
            Ok(d) => Ok(DeletedObject {
                key: Some(key),
                version_id: d.version_id.clone().filter(|_| version_id.is_some()),
                delete_marker: d.delete_marker.then_some(true),
                delete_marker_version_id: d
                    .delete_marker
                    .then(|| d.version_id.clone())
                    .flatten()
                    .filter(|_| bucket.versioning != Versioning::Unversioned),
            }),
            // Deleting a version that does not exist succeeds in S3 (204).
            Err(MetaClientError::Rejected(Reason::NoSuchVersion)) => Ok(DeletedObject {
                key: Some(key),
                version_id,
                ..Default::default()
            }),
            Err(e) => Err(error::meta(e)),
        }
    }

    pub(crate) async fn op_delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let i = req.input;
        let d = self
            .delete_one(&bucket, &c.user, i.key, i.version_id, i.if_match.as_ref())
            .await?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: d.delete_marker,
            version_id: d.delete_marker_version_id.or(d.version_id),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let delete = req.input.delete;
        if delete.objects.len() > 1000 {
            return Err(s3(
                S3ErrorCode::MalformedXML,
                "DeleteObjects accepts at most 1000 keys",
            ));
        }
        let quiet = delete.quiet.unwrap_or(false);
        let results: Vec<(ObjectIdentifier, S3Result<DeletedObject>)> =
            futures::stream::iter(delete.objects.into_iter().map(|o| {
                let bucket = &bucket;
                let user = c.user.as_str();
                async move {
                    let r = self
                        .delete_one(bucket, user, o.key.clone(), o.version_id.clone(), None)
                        .await;
                    (o, r)
                }
            }))
            .buffered(DELETE_OBJECTS_PARALLEL)
            .collect()
            .await;
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for (o, r) in results {
            match r {
                Ok(d) => {
                    if !quiet {
                        deleted.push(d);
                    }
                }
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_owned()),
                    key: Some(o.key),
                    message: e.message().map(str::to_owned),
                    version_id: o.version_id,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }
}
