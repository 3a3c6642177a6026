//! ListMultipartUploads and ListParts.

use redb::ReadTransaction;

use super::error::QueryError;
use super::keys;
use super::list_objects::MAX_LIST_KEYS;
use super::multipart::{MultipartUpload, PartRecord, MAX_PART_NUMBER};
use super::query::{get_upload, require_bucket};
use super::response::Reason;
use super::scan::{ScanItem, Scanner};
use super::tables::{self, open_read};

/// What to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListUploadsParams {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Without `upload_id_marker`: keys strictly after this one. With it: uploads of this
    /// key whose upload id is greater, then later keys.
    pub key_marker: Option<String>,
    /// Ignored without `key_marker` (as in S3).
    pub upload_id_marker: Option<String>,
    /// Capped at 1000; uploads and common prefixes count once each.
    pub max_uploads: u32,
    /// The exclusive end of this group's key range within the bucket, if any.
    pub end_before: Option<String>,
}

/// One page of uploads in progress: key order, then upload id order within a key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListUploadsPage {
    pub uploads: Vec<MultipartUpload>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

/// Lists the multipart uploads in progress in `bucket`.
pub fn list_multipart_uploads(
    txn: &ReadTransaction,
    bucket: &str,
    params: &ListUploadsParams,
) -> Result<ListUploadsPage, QueryError> {
    require_bucket(txn, bucket)?;
    let mut page = ListUploadsPage::default();
    let max = params.max_uploads.min(MAX_LIST_KEYS) as usize;
    let Some(uploads) = open_read(txn, tables::UPLOADS)? else {
        return Ok(page);
    };
    if max == 0 {
        return Ok(page);
    }
    let upload_marker = params.upload_id_marker.as_deref().filter(|u| !u.is_empty());
    let lower = match (&params.key_marker, upload_marker) {
        (None, _) => Vec::new(),
        (Some(key), None) => keys::after_object(bucket, key),
        (Some(key), Some(uid)) => {
            keys::just_after(&keys::upload_key(&keys::object_key(bucket, key), uid))
        }
    };
    let upper = params
        .end_before
        .as_ref()
        .map(|e| keys::object_key(bucket, e));
    let mut scan = Scanner::new(
        &uploads,
        tables::UPLOADS_NAME,
        bucket,
        &params.prefix,
        params.delimiter.as_deref(),
        lower,
        upper,
    )?;
    let mut next = (None, None);
    let mut count = 0usize;
    while count < max {
        match scan.next_item()? {
            None => break,
            Some(ScanItem::Row { key, value, .. }) => {
                let u: MultipartUpload = tables::decode(tables::UPLOADS_NAME, &value)?;
                next = (Some(key), Some(u.upload_id.clone()));
                page.uploads.push(u);
            }
            Some(ScanItem::Prefix { prefix, last_key }) => {
                page.common_prefixes.push(prefix);
                next = (Some(last_key), None);
            }
        }
        count += 1;
    }
    if count == max && scan.has_more()? {
        page.is_truncated = true;
        (page.next_key_marker, page.next_upload_id_marker) = next;
    }
    Ok(page)
}

/// One page of an upload's parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPartsPage {
    pub upload: MultipartUpload,
    /// Part number order.
    pub parts: Vec<PartRecord>,
    pub is_truncated: bool,
    /// When truncated: resume with `part_number_marker = next_part_number_marker`.
    pub next_part_number_marker: Option<u32>,
}

/// Lists the parts of upload `upload_id` of `(bucket, key)` with numbers above
/// `part_number_marker`, at most `max_parts` (capped at 1000). `NoSuchUpload` if the upload
/// is not in progress for that object.
pub fn list_parts(
    txn: &ReadTransaction,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number_marker: u32,
    max_parts: u32,
) -> Result<ListPartsPage, QueryError> {
    require_bucket(txn, bucket)?;
    let upload = get_upload(txn, upload_id)?
        .filter(|u| u.bucket == bucket && u.key == key)
        .ok_or(QueryError::Rejected(Reason::NoSuchUpload))?;
    let mut page = ListPartsPage {
        upload,
        parts: Vec::new(),
        is_truncated: false,
        next_part_number_marker: None,
    };
    let max = max_parts.min(MAX_LIST_KEYS) as usize;
    let Some(parts) = open_read(txn, tables::PARTS)? else {
        return Ok(page);
    };
    if max == 0 || part_number_marker >= MAX_PART_NUMBER {
        return Ok(page);
    }
    let start = keys::part_key(upload_id, part_number_marker + 1);
    let (_, end) = keys::parts_range(upload_id);
    for (_, value) in tables::rows_up_to(&parts, &start, Some(&end), max + 1)? {
        if page.parts.len() == max {
            page.is_truncated = true;
            page.next_part_number_marker = page.parts.last().map(|p| p.part_number);
            break;
        }
        page.parts.push(tables::decode(tables::PARTS_NAME, &value)?);
    }
    Ok(page)
}
