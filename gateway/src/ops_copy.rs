//! CopyObject and UploadPartCopy: the source is read through the data path and written
//! as new stripes (stripes are never shared between versions, so GC of one can never
//! delete bytes another still references).

use meta_raft::client::MetaClientError;
use meta_raft::state_machine::{
    BucketRecord, ObjectMeta, PutObject, Reason, RecordPart, VersionRecord,
};
use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

use crate::auth::RequestCtx;
use crate::checksum::Declared;
use crate::error::{self, s3};
use crate::gateway::{
    bucket_of, check_read_conditions, ctx, etag, object_meta, timestamp, visible_version_id,
    write_preconditions, Gateway,
};

/// The copy-source conditions of a request.
pub(crate) struct SourceConditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_unmodified_since: Option<&'a Timestamp>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
}

/// `bytes=first-last` of `x-amz-copy-source-range` (both ends required, inclusive).
pub(crate) fn parse_copy_range(s: &str, size: u64) -> S3Result<std::ops::Range<u64>> {
    let bad = || {
        s3(
            S3ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
    };
    let (a, b) = s
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(bad)?;
    let first: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    if first > last {
        return Err(bad());
    }
    if last >= size {
        return Err(s3(
            S3ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        ));
    }
    Ok(first..last + 1)
}

impl Gateway {
    /// The source version of a copy, after checking the caller owns its bucket and the
    /// copy-source conditions (any failure is 412 PreconditionFailed).
    async fn copy_source(
        &self,
        c: &RequestCtx,
        src: &CopySource,
        cond: SourceConditions<'_>,
    ) -> S3Result<(BucketRecord, VersionRecord)> {
        let CopySource::Bucket {
            bucket,
            key,
            version_id,
        } = src
        else {
            return Err(s3(
                S3ErrorCode::NotImplemented,
                "access-point copy sources are not supported",
            ));
        };
        let src_bucket = match self.meta.get_bucket(bucket).await {
            Ok(b) => b,
            Err(MetaClientError::Rejected(Reason::NoSuchBucket)) => {
                return Err(s3(
                    S3ErrorCode::NoSuchBucket,
                    "The specified source bucket does not exist",
                ))
            }
            Err(e) => return Err(error::meta(e)),
        };
        if src_bucket.owner != c.user {
            return Err(s3(
                S3ErrorCode::AccessDenied,
                "Access Denied to the copy source",
            ));
        }
        let v = self
            .find_version(&src_bucket.name, key, version_id.as_deref())
            .await
            .map_err(|e| {
                // S3 answers a copy source naming a delete marker's version id with 400
                // InvalidRequest, not the 405 a GET of it gets.
                if *e.code() == S3ErrorCode::MethodNotAllowed {
                    s3(
                        S3ErrorCode::InvalidRequest,
                        "The source of a copy request may not specifically refer to a delete marker by version id.",
                    )
                } else {
                    e
                }
            })?;
        check_read_conditions(
            &v,
            cond.if_match,
            cond.if_unmodified_since,
            cond.if_none_match,
            cond.if_modified_since,
            S3ErrorCode::PreconditionFailed,
        )?;
        Ok((src_bucket, v))
    }

    pub(crate) async fn op_copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let i = req.input;
        let (src_bucket, src) = self
            .copy_source(
                &c,
                &i.copy_source,
                SourceConditions {
                    if_match: i.copy_source_if_match.as_ref(),
                    if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
                    if_none_match: i.copy_source_if_none_match.as_ref(),
                    if_modified_since: i.copy_source_if_modified_since.as_ref(),
                },
            )
            .await?;
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str().eq_ignore_ascii_case(MetadataDirective::REPLACE));
        let meta: ObjectMeta = if replace {
            object_meta(
                i.content_type,
                i.cache_control,
                i.content_disposition,
                i.content_encoding,
                i.content_language,
                i.expires,
                i.metadata,
            )?
        } else {
            src.meta.clone()
        };
        if !replace
            && src_bucket.name == bucket.name
            && src.key == i.key
            && bucket.versioning == meta_raft::state_machine::Versioning::Unversioned
        {
            return Err(s3(
                S3ErrorCode::InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
            ));
        }
        let preconditions = write_preconditions(i.if_match.as_ref(), i.if_none_match.as_ref())?;
        let algorithms: Vec<&'static str> = crate::checksum::ALGORITHMS
            .into_iter()
            .filter(|a| src.checksums.contains_key(*a))
            .collect();
        let declared = Declared {
            compute: algorithms,
            ..Declared::default()
        };
        let body = self.read_body(&src.body, 0..src.size);
        let stored = self
            .store_body(Some(body), &declared, None, true, self.codec)
            .await?;
        if stored.digest.size != src.size {
            self.discard(&stored.body).await;
            return Err(s3(
                S3ErrorCode::InternalError,
                "copy source changed size while reading",
            ));
        }
        // A copy of a single-part object keeps its ETag (the MD5 of the same bytes); a
        // copy of a multipart object becomes a single-part object with the MD5 ETag.
        let cmd = PutObject {
            bucket: bucket.name.clone(),
            key: i.key,
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
            Ok(x) => x,
            Err(e) => {
                if matches!(e, MetaClientError::Rejected(_)) {
                    self.discard(&cmd.body).await;
                }
                return Err(error::meta(e));
            }
        };
        let sums = &stored.digest.checksums;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&committed.etag)),
                last_modified: Some(timestamp(cmd.created_ms)),
                checksum_crc32: sums.get("crc32").cloned(),
                checksum_crc32c: sums.get("crc32c").cloned(),
                checksum_crc64nvme: sums.get("crc64nvme").cloned(),
                checksum_sha1: sums.get("sha1").cloned(),
                checksum_sha256: sums.get("sha256").cloned(),
                ..Default::default()
            }),
            copy_source_version_id: visible_version_id(&src_bucket, &src.version_id),
            version_id: visible_version_id(&bucket, &committed.version_id),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let i = req.input;
        let part_number = crate::ops_multipart::check_part_number(i.part_number)?;
        let upload = self
            .meta
            .get_upload(&bucket.name, &i.key, &i.upload_id)
            .await
            .map_err(error::meta)?;
        let (src_bucket, src) = self
            .copy_source(
                &c,
                &i.copy_source,
                SourceConditions {
                    if_match: i.copy_source_if_match.as_ref(),
                    if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
                    if_none_match: i.copy_source_if_none_match.as_ref(),
                    if_modified_since: i.copy_source_if_modified_since.as_ref(),
                },
            )
            .await?;
        let range = match &i.copy_source_range {
            Some(r) => parse_copy_range(r, src.size)?,
            None => 0..src.size,
        };
        if range.end - range.start > self.cfg.max_object_bytes {
            return Err(s3(
                S3ErrorCode::EntityTooLarge,
                "the copied range is too large for one part",
            ));
        }
        let body = self.read_body(&src.body, range.clone());
        let stored = self
            .store_body(Some(body), &Declared::default(), None, false, upload.codec)
            .await?;
        let stripes = stored.body.stripes().into_iter().cloned().collect();
        let cmd = RecordPart {
            bucket: bucket.name.clone(),
            key: i.key,
            upload_id: i.upload_id,
            part_number,
            size: stored.digest.size,
            etag: stored.digest.etag(),
            checksums: stored.digest.checksums.clone(),
            stripes,
            created_ms: self.now_ms(),
        };
        if let Err(e) = self.meta.record_part(&cmd).await {
            if matches!(e, MetaClientError::Rejected(_)) {
                self.discard(&stored.body).await;
            }
            return Err(error::meta(e));
        }
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(etag(&cmd.etag)),
                last_modified: Some(timestamp(cmd.created_ms)),
                ..Default::default()
            }),
            copy_source_version_id: visible_version_id(&src_bucket, &src.version_id),
            ..Default::default()
        }))
    }
}

#[cfg(test)]
#[path = "ops_copy_test.rs"]
mod ops_copy_test;
