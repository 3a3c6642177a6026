//! CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload,
//! ListParts, ListMultipartUploads. Parts are erasure coded like objects; Complete
//! commits a manifest of the parts (one Raft command) with ETag md5-of-md5s "-N".

use meta_raft::client::MetaClientError;
use meta_raft::state_machine::{
    AbortMultipartUpload, CompleteMultipartUpload, CompletedPart as MetaCompletedPart,
    CreateMultipartUpload, ListUploadsParams, RecordPart, MAX_PART_NUMBER, MIN_PART_NUMBER,
};
use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

use crate::checksum::Declared;
use crate::error::{self, s3};
use crate::gateway::{
    bucket_of, ctx, etag, object_meta, timestamp, visible_version_id, write_preconditions, Gateway,
};
use crate::ops_bucket::owner;

/// Part numbers are 1..=10000 (InvalidArgument otherwise).
pub(crate) fn check_part_number(n: i32) -> S3Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| (MIN_PART_NUMBER..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            s3(
                S3ErrorCode::InvalidArgument,
                format!("Part number must be an integer between 1 and 10000, inclusive (got {n})"),
            )
        })
}

impl Gateway {
    pub(crate) async fn op_create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let i = req.input;
        let meta = object_meta(
            i.content_type,
            i.cache_control,
            i.content_disposition,
            i.content_encoding,
            i.content_language,
            i.expires,
            i.metadata,
        )?;
        let checksum_algorithm = match &i.checksum_algorithm {
            Some(a) => {
                let lower = a.as_str().to_ascii_lowercase();
                if !crate::checksum::ALGORITHMS.contains(&lower.as_str()) {
                    return Err(s3(
                        S3ErrorCode::InvalidRequest,
                        format!("unsupported checksum algorithm {:?}", a.as_str()),
                    ));
                }
                Some(lower)
            }
            None => None,
        };
        let upload_id = self.new_id();
        self.meta
            .create_multipart_upload(&CreateMultipartUpload {
                bucket: bucket.name.clone(),
                key: i.key.clone(),
                upload_id: upload_id.clone(),
                initiated_ms: self.now_ms(),
                owner: c.user,
                meta,
                codec: self.codec,
                checksum_algorithm,
            })
            .await
            .map_err(error::meta)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(bucket.name),
            key: Some(i.key),
            upload_id: Some(upload_id),
            checksum_algorithm: i.checksum_algorithm,
            ..Default::default()
        }))
    }

    pub(crate) async fn op_upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let declared = Declared::from_headers(&req.headers)?;
        let i = req.input;
        let part_number = check_part_number(i.part_number)?;
        // NoSuchUpload before a byte of the body is stored.
        let upload = self
            .meta
            .get_upload(&bucket.name, &i.key, &i.upload_id)
            .await
            .map_err(error::meta)?;
        let stored = self
            .store_body(
                i.body,
                &declared,
                req.trailing_headers.as_ref(),
                false,
                upload.codec,
            )
            .await?;
        let cmd = RecordPart {
            bucket: bucket.name.clone(),
            key: i.key,
            upload_id: i.upload_id,
            part_number,
            size: stored.digest.size,
            etag: stored.digest.etag(),
            checksums: stored.digest.checksums.clone(),
            stripes: stored.body.stripes().into_iter().cloned().collect(),
            created_ms: self.now_ms(),
        };
        if let Err(e) = self.meta.record_part(&cmd).await {
            if matches!(e, MetaClientError::Rejected(_)) {
                self.discard(&stored.body).await;
            }
            return Err(error::meta(e));
        }
        let sums = &stored.digest.checksums;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(etag(&cmd.etag)),
            checksum_crc32: sums.get("crc32").cloned(),
            checksum_crc32c: sums.get("crc32c").cloned(),
            checksum_crc64nvme: sums.get("crc64nvme").cloned(),
            checksum_sha1: sums.get("sha1").cloned(),
            checksum_sha256: sums.get("sha256").cloned(),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let i = req.input;
        let listed = i.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
        if listed.is_empty() {
            return Err(s3(
                S3ErrorCode::MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema: no parts",
            ));
        }
        let mut parts = Vec::with_capacity(listed.len());
        for p in listed {
            let n = p
                .part_number
                .ok_or_else(|| s3(S3ErrorCode::MalformedXML, "every Part needs a PartNumber"))?;
            let e = p
                .e_tag
                .ok_or_else(|| s3(S3ErrorCode::MalformedXML, "every Part needs an ETag"))?;
            parts.push(MetaCompletedPart {
                part_number: check_part_number(n)?,
                etag: e.value().trim_matches('"').to_owned(),
            });
        }
        let preconditions = write_preconditions(i.if_match.as_ref(), i.if_none_match.as_ref())?;
        // Never use the keep-alive body (`future`): it needs tokio's timer, which madsim
        // does not serve.
        let committed = self
            .meta
            .complete_multipart_upload(&CompleteMultipartUpload {
                bucket: bucket.name.clone(),
                key: i.key.clone(),
                upload_id: i.upload_id,
                parts,
                min_part_size: self.cfg.min_part_bytes,
                version_id: self.version_id_for(&bucket),
                created_ms: self.now_ms(),
                checksums: Default::default(),
                preconditions,
            })
            .await
            .map_err(error::meta)?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(bucket.name.clone()),
            key: Some(i.key.clone()),
            location: Some(format!("/{}/{}", bucket.name, i.key)),
            e_tag: Some(etag(&committed.etag)),
            version_id: visible_version_id(&bucket, &committed.version_id),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let i = req.input;
        self.meta
            .abort_multipart_upload(&AbortMultipartUpload {
                bucket: bucket.name,
                key: i.key,
                upload_id: i.upload_id,
            })
            .await
            .map_err(error::meta)?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    pub(crate) async fn op_list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let i = req.input;
        let marker = u32::try_from(i.part_number_marker.unwrap_or(0)).map_err(|_| {
            s3(
                S3ErrorCode::InvalidArgument,
                "part-number-marker must be non-negative",
            )
        })?;
        let max = match i.max_parts {
            None => 1000,
            Some(n) if n < 0 => {
                return Err(s3(
                    S3ErrorCode::InvalidArgument,
                    "max-parts must be non-negative",
                ))
            }
            Some(n) => u32::try_from(n).unwrap_or(1000).min(1000),
        };
        let page = self
            .meta
            .list_parts(&bucket.name, &i.key, &i.upload_id, marker, max)
            .await
            .map_err(error::meta)?;
        let parts = page
            .parts
            .into_iter()
            .map(|p| Part {
                part_number: i32::try_from(p.part_number).ok(),
                size: i64::try_from(p.size).ok(),
                e_tag: Some(etag(&p.etag)),
                last_modified: Some(timestamp(p.created_ms)),
                checksum_crc32: p.checksums.get("crc32").cloned(),
                checksum_crc32c: p.checksums.get("crc32c").cloned(),
                checksum_crc64nvme: p.checksums.get("crc64nvme").cloned(),
                checksum_sha1: p.checksums.get("sha1").cloned(),
                checksum_sha256: p.checksums.get("sha256").cloned(),
                ..Default::default()
            })
            .collect();
        let up = page.upload;
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(bucket.name),
            key: Some(i.key),
            upload_id: Some(i.upload_id),
            part_number_marker: i.part_number_marker,
            max_parts: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(page.is_truncated),
            next_part_number_marker: page
                .next_part_number_marker
                .and_then(|n| i32::try_from(n).ok()),
            parts: Some(parts),
            owner: Some(owner(&up.owner)),
            initiator: Some(Initiator {
                display_name: Some(up.owner.clone()),
                id: Some(up.owner),
            }),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let i = req.input;
        let max = match i.max_uploads {
            None => 1000,
            Some(n) if n < 0 => {
                return Err(s3(
                    S3ErrorCode::InvalidArgument,
                    "max-uploads must be non-negative",
                ))
            }
            Some(n) => u32::try_from(n).unwrap_or(1000).min(1000),
        };
        let params = ListUploadsParams {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone().filter(|d| !d.is_empty()),
            key_marker: i.key_marker.clone().filter(|s| !s.is_empty()),
            upload_id_marker: i.upload_id_marker.clone().filter(|s| !s.is_empty()),
            max_uploads: max,
            end_before: None,
        };
        let page = self
            .meta
            .list_multipart_uploads(&bucket.name, &params)
            .await
            .map_err(error::meta)?;
        let uploads = page
            .uploads
            .into_iter()
            .map(|u| MultipartUpload {
                key: Some(u.key),
                upload_id: Some(u.upload_id),
                initiated: Some(timestamp(u.initiated_ms)),
                owner: Some(owner(&u.owner)),
                initiator: Some(Initiator {
                    display_name: Some(u.owner.clone()),
                    id: Some(u.owner),
                }),
                storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(bucket.name),
            prefix: i.prefix,
            delimiter: params.delimiter,
            key_marker: i.key_marker,
            upload_id_marker: i.upload_id_marker,
            max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(page.is_truncated),
            next_key_marker: page.next_key_marker,
            next_upload_id_marker: page.next_upload_id_marker,
            uploads: Some(uploads),
            common_prefixes: Some(
                page.common_prefixes
                    .into_iter()
                    .map(|p| CommonPrefix { prefix: Some(p) })
                    .collect(),
            ),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }
}
