//! The multipart commands of [`super::apply`]: create, record part, complete, abort.
//! A completed upload is remembered (see [`super::completed_upload`]) so that a retried
//! Complete answers like the first one.

use std::collections::{BTreeMap, BTreeSet};

use md5::{Digest, Md5};

use super::apply::{bare_etag, check_key, Applier, CommitPlan, Fail, Handled, Tbl};
use super::body::{ObjectBody, PartManifestEntry};
use super::command::{
    AbortMultipartUpload, CompleteMultipartUpload, CompletedPart, CreateMultipartUpload, RecordPart,
};
use super::completed_upload::CompletedUpload;
use super::error::ApplyError;
use super::keys;
use super::multipart::{MultipartUpload, PartRecord, MAX_PART_NUMBER, MIN_PART_NUMBER};
use super::response::{Reason, Response};
use super::stripe_owner::StripeOwner;
use super::tables;
use super::version::VersionRecord;

/// The most parts one upload can complete with.
pub const MAX_PARTS: usize = 10_000;

/// The S3 multipart ETag: `hex(md5(md5(part 1) || … || md5(part N))) + "-N"`, from the
/// parts' hex MD5s. `None` if an ETag is not 32 hex digits.
pub fn multipart_etag<'a>(part_etags: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut hasher = Md5::new();
    let mut n = 0usize;
    for etag in part_etags {
        let digest = hex::decode(bare_etag(etag)).ok()?;
        if digest.len() != 16 {
            return None;
        }
        hasher.update(&digest);
        n += 1;
    }
    Some(format!("{}-{n}", hex::encode(hasher.finalize())))
}

/// A part ETag as stored: 32 lowercase hex digits, or `None` if it is not an MD5.
fn normalized_md5(etag: &str) -> Option<String> {
    let e = bare_etag(etag);
    (e.len() == 32 && e.bytes().all(|b| b.is_ascii_hexdigit())).then(|| e.to_ascii_lowercase())
}

/// A client's part list as stored in a [`CompletedUpload`] (ETags normalised; an ETag
/// that is not an MD5 is kept as given, so it never matches a stored list).
fn part_list(parts: &[CompletedPart]) -> Vec<(u32, String)> {
    parts
        .iter()
        .map(|p| {
            let etag = normalized_md5(&p.etag).unwrap_or_else(|| p.etag.clone());
            (p.part_number, etag)
        })
        .collect()
}

impl Applier<'_> {
    /// The completed upload `upload_id`, if it is remembered.
    fn completed_upload(&self, upload_id: &str) -> Result<Option<CompletedUpload>, ApplyError> {
        tables::get(
            &self.t.completed,
            tables::COMPLETED_NAME,
            upload_id.as_bytes(),
        )
    }

    /// Drops the completed-upload record of the version stored under `version_key`, if
    /// an upload produced it (called whenever a version is removed).
    pub(crate) fn forget_completed_upload(&mut self, version_key: &[u8]) -> Result<(), ApplyError> {
        let upload_id: Option<String> = tables::get(
            &self.t.completed_by_version,
            tables::COMPLETED_BY_VERSION_NAME,
            version_key,
        )?;
        if let Some(upload_id) = upload_id {
            self.del(Tbl::CompletedByVersion, version_key)?;
            self.del(Tbl::Completed, upload_id.as_bytes())?;
        }
        Ok(())
    }

    /// A Complete for an upload that is not in progress: if it completed with exactly
    /// this part list and its version still exists, the original answer; otherwise
    /// `NoSuchUpload`. Writes nothing.
    fn complete_retry(&self, c: &CompleteMultipartUpload) -> Handled {
        let Some(done) = self.completed_upload(&c.upload_id)? else {
            return Err(Reason::NoSuchUpload.into());
        };
        if done.bucket != c.bucket || done.key != c.key || done.parts != part_list(&c.parts) {
            return Err(Reason::NoSuchUpload.into());
        }
        let vk = keys::version_key(&keys::object_key(&done.bucket, &done.key), done.seq);
        let version = tables::get::<VersionRecord>(&self.t.versions, tables::VERSIONS_NAME, &vk)?
            .filter(|v| v.version_id == done.version_id)
            .ok_or_else(|| ApplyError::Corrupt {
                table: tables::COMPLETED_NAME,
                detail: format!(
                    "completed upload {:?} points at missing version {}",
                    done.upload_id, done.seq
                ),
            })?;
        Ok(Response::Committed {
            version_id: version.version_id,
            seq: version.seq,
            etag: version.etag,
            size: version.size,
        })
    }

    /// The upload `upload_id` of `(bucket, key)` and its `sm_uploads` key; `NoSuchUpload`
    /// if it does not exist or belongs to another object.
    fn find_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(Vec<u8>, MultipartUpload), Fail> {
        let uk: Option<Vec<u8>> = tables::get(
            &self.t.upload_ids,
            tables::UPLOAD_IDS_NAME,
            upload_id.as_bytes(),
        )?;
        let Some(uk) = uk else {
            return Err(Reason::NoSuchUpload.into());
        };
        let upload: MultipartUpload = tables::get(&self.t.uploads, tables::UPLOADS_NAME, &uk)?
            .ok_or_else(|| ApplyError::Corrupt {
                table: tables::UPLOAD_IDS_NAME,
                detail: format!("upload id {upload_id:?} points at a missing upload"),
            })?;
        if upload.bucket != bucket || upload.key != key {
            return Err(Reason::NoSuchUpload.into());
        }
        Ok((uk, upload))
    }

    /// Every part of `upload_id`, by part number.
    fn parts_of(&self, upload_id: &str) -> Result<BTreeMap<u32, PartRecord>, Fail> {
        let (start, end) = keys::parts_range(upload_id);
        let mut out = BTreeMap::new();
        for (_, value) in tables::rows_in(&self.t.parts, &start, Some(&end))? {
            let part: PartRecord = tables::decode(tables::PARTS_NAME, &value)?;
            out.insert(part.part_number, part);
        }
        Ok(out)
    }

    /// Removes an upload and all its parts; their stripes go to the GC queue. Returns the
    /// number of parts.
    pub(crate) fn drop_upload(&mut self, uk: &[u8], upload: &MultipartUpload) -> Result<u32, Fail> {
        let parts = self.parts_of(&upload.upload_id)?;
        for part in parts.values() {
            self.del(
                Tbl::Parts,
                &keys::part_key(&upload.upload_id, part.part_number),
            )?;
            for s in &part.stripes {
                self.release_stripe(s)?;
            }
        }
        self.del(Tbl::Uploads, uk)?;
        self.del(Tbl::UploadIds, upload.upload_id.as_bytes())?;
        Ok(parts.len() as u32)
    }

    pub(crate) fn create_upload(&mut self, c: &CreateMultipartUpload) -> Handled {
        self.require_bucket(&c.bucket)?;
        check_key(&c.key)?;
        if c.upload_id.is_empty() {
            return Err(Reason::InvalidArgument("the upload id is empty".to_owned()).into());
        }
        c.codec
            .validate()
            .map_err(|e| Reason::InvalidArgument(format!("erasure code: {e}")))?;
        let existing: Option<Vec<u8>> = tables::get(
            &self.t.upload_ids,
            tables::UPLOAD_IDS_NAME,
            c.upload_id.as_bytes(),
        )?;
        if existing.is_some() {
            // A retried command finds its upload; any other use of the id is a clash.
            return match self.find_upload(&c.bucket, &c.key, &c.upload_id) {
                Ok(_) => Ok(Response::UploadCreated),
                Err(Fail::Reject(Reason::NoSuchUpload)) => Err(Reason::UploadIdConflict.into()),
                Err(e) => Err(e),
            };
        }
        if let Some(done) = self.completed_upload(&c.upload_id)? {
            // A retried create applied after its upload completed: it was created. Never
            // reopen a completed id (a retried Complete must keep finding its record).
            return if done.bucket == c.bucket && done.key == c.key {
                Ok(Response::UploadCreated)
            } else {
                Err(Reason::UploadIdConflict.into())
            };
        }
        let uk = keys::upload_key(&keys::object_key(&c.bucket, &c.key), &c.upload_id);
        let upload = MultipartUpload {
            bucket: c.bucket.clone(),
            key: c.key.clone(),
            upload_id: c.upload_id.clone(),
            seq: self.log_index,
            initiated_ms: c.initiated_ms,
            owner: c.owner.clone(),
            meta: c.meta.clone(),
            codec: c.codec,
            checksum_algorithm: c.checksum_algorithm.clone(),
        };
        self.put(Tbl::Uploads, &uk, &upload)?;
        self.put(Tbl::UploadIds, c.upload_id.as_bytes(), &uk)?;
        Ok(Response::UploadCreated)
    }

    pub(crate) fn record_part(&mut self, c: &RecordPart) -> Handled {
        let (_, upload) = self.find_upload(&c.bucket, &c.key, &c.upload_id)?;
        if !(MIN_PART_NUMBER..=MAX_PART_NUMBER).contains(&c.part_number) {
            return Err(Reason::InvalidPartNumber.into());
        }
        let Some(etag) = normalized_md5(&c.etag) else {
            return Err(Reason::InvalidArgument(format!(
                "part etag {:?} is not an MD5 in hex",
                c.etag
            ))
            .into());
        };
        let data_len: u64 = c.stripes.iter().map(|s| s.data_len).sum();
        if data_len != c.size {
            return Err(Reason::InvalidArgument(format!(
                "part size {} differs from its stripes' {data_len} bytes",
                c.size
            ))
            .into());
        }
        let pk = keys::part_key(&c.upload_id, c.part_number);
        let old: Option<PartRecord> = tables::get(&self.t.parts, tables::PARTS_NAME, &pk)?;
        // A retry of the command that recorded this part (same stripes; repair may have
        // moved fragments since): nothing changes. Writing its placement again would
        // point at old copies the GC queue holds and drop the repaired ones.
        if old.as_ref().is_some_and(|o| {
            o.etag == etag
                && o.size == c.size
                && o.stripes.len() == c.stripes.len()
                && o.stripes
                    .iter()
                    .zip(&c.stripes)
                    .all(|(a, b)| a.id == b.id && a.data_len == b.data_len)
        }) {
            return Ok(Response::PartRecorded);
        }
        self.check_new_stripes(upload.codec, &c.stripes, |owner| {
            matches!(owner, StripeOwner::Part { upload_id, part_number }
                if *upload_id == c.upload_id && *part_number == c.part_number)
        })?;
        let new_ids: BTreeSet<_> = c.stripes.iter().map(|s| s.id).collect();
        if let Some(old) = old {
            for s in &old.stripes {
                if !new_ids.contains(&s.id) {
                    self.release_stripe(s)?;
                }
            }
        }
        let part = PartRecord {
            upload_id: c.upload_id.clone(),
            part_number: c.part_number,
            size: c.size,
            etag,
            checksums: c.checksums.clone(),
            stripes: c.stripes.clone(),
            created_ms: c.created_ms,
            seq: self.log_index,
        };
        self.put(Tbl::Parts, &pk, &part)?;
        let owner = StripeOwner::Part {
            upload_id: c.upload_id.clone(),
            part_number: c.part_number,
        };
        for s in &c.stripes {
            self.put(Tbl::Stripes, &s.id.to_bytes(), &owner)?;
        }
        Ok(Response::PartRecorded)
    }

    pub(crate) fn complete_upload(&mut self, c: &CompleteMultipartUpload) -> Handled {
        let (uk, upload) = match self.find_upload(&c.bucket, &c.key, &c.upload_id) {
            Ok(found) => found,
            Err(Fail::Reject(Reason::NoSuchUpload)) => return self.complete_retry(c),
            Err(e) => return Err(e),
        };
        let bucket = self.require_bucket(&c.bucket)?;
        if c.parts.is_empty() {
            return Err(Reason::NoParts.into());
        }
        if c.parts.len() > MAX_PARTS {
            return Err(Reason::TooManyParts.into());
        }
        if c.parts
            .windows(2)
            .any(|w| w[0].part_number >= w[1].part_number)
        {
            return Err(Reason::InvalidPartOrder.into());
        }
        let uploaded = self.parts_of(&c.upload_id)?;
        let mut listed = Vec::with_capacity(c.parts.len());
        for want in &c.parts {
            match uploaded.get(&want.part_number) {
                Some(part) if normalized_md5(&want.etag).as_deref() == Some(&part.etag) => {
                    listed.push(part)
                }
                _ => {
                    return Err(Reason::InvalidPart {
                        part_number: want.part_number,
                    }
                    .into())
                }
            }
        }
        if let Some((_, init)) = listed.split_last() {
            if let Some(small) = init.iter().find(|p| p.size < c.min_part_size) {
                return Err(Reason::EntityTooSmall {
                    part_number: small.part_number,
                }
                .into());
            }
        }
        let etag = multipart_etag(listed.iter().map(|p| p.etag.as_str())).ok_or_else(|| {
            ApplyError::Corrupt {
                table: tables::PARTS_NAME,
                detail: format!("upload {:?} has a part etag that is not hex", c.upload_id),
            }
        })?;
        let manifest: Vec<PartManifestEntry> = listed
            .iter()
            .map(|p| PartManifestEntry {
                part_number: p.part_number,
                size: p.size,
                etag: p.etag.clone(),
                stripes: p.stripes.clone(),
            })
            .collect();
        let draft = VersionRecord {
            bucket: c.bucket.clone(),
            key: c.key.clone(),
            version_id: c.version_id.clone(),
            seq: self.log_index,
            created_ms: c.created_ms,
            owner: upload.owner.clone(),
            size: listed.iter().map(|p| p.size).sum(),
            etag,
            checksums: c.checksums.clone(),
            meta: upload.meta.clone(),
            body: ObjectBody::Multipart {
                codec: upload.codec,
                parts: manifest,
            },
            is_delete_marker: false,
        };
        let ok = keys::object_key(&c.bucket, &c.key);
        let (record, replaced) = match self.plan_commit(&bucket, &ok, draft, &c.preconditions)? {
            // The parts' stripes are indexed to the parts, so no stored version can list
            // them: an existing version with this id is a different one.
            CommitPlan::AlreadyCommitted(_) => return Err(Reason::VersionIdConflict.into()),
            CommitPlan::Commit { record, replaced } => (record, replaced),
        };
        let listed_numbers: BTreeSet<u32> = c.parts.iter().map(|p| p.part_number).collect();
        for part in uploaded.values() {
            self.del(Tbl::Parts, &keys::part_key(&c.upload_id, part.part_number))?;
            if !listed_numbers.contains(&part.part_number) {
                for s in &part.stripes {
                    self.release_stripe(s)?;
                }
            }
            // Listed parts' stripes are re-indexed to the version by `insert_version`.
        }
        self.del(Tbl::Uploads, &uk)?;
        self.del(Tbl::UploadIds, c.upload_id.as_bytes())?;
        let done = CompletedUpload {
            bucket: c.bucket.clone(),
            key: c.key.clone(),
            upload_id: c.upload_id.clone(),
            version_id: record.version_id.clone(),
            seq: record.seq,
            parts: part_list(&c.parts),
        };
        let response = self.execute_commit(record, replaced)?;
        let vk = keys::version_key(&ok, done.seq);
        self.put(Tbl::CompletedByVersion, &vk, &done.upload_id)?;
        self.put(Tbl::Completed, done.upload_id.as_bytes(), &done)?;
        Ok(response)
    }

    pub(crate) fn abort_upload(&mut self, c: &AbortMultipartUpload) -> Handled {
        let (uk, upload) = self.find_upload(&c.bucket, &c.key, &c.upload_id)?;
        let parts = self.drop_upload(&uk, &upload)?;
        Ok(Response::UploadAborted { parts })
    }
}
