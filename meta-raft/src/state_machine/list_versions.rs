//! ListObjectVersions over one group's part of a bucket.

use redb::ReadTransaction;

use super::error::QueryError;
use super::keys;
use super::list_objects::MAX_LIST_KEYS;
use super::query::require_bucket;
use super::response::Reason;
use super::scan::{ScanItem, Scanner};
use super::tables::{self, open_read};
use super::version::VersionRecord;

/// What to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListVersionsParams {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Without `version_id_marker`: start with keys strictly after this one. With it:
    /// start with the versions of this key older than that version.
    pub key_marker: Option<String>,
    /// Requires `key_marker`; must name an existing version of it (`InvalidArgument`
    /// otherwise).
    pub version_id_marker: Option<String>,
    /// Versions, delete markers and common prefixes each count once; capped at 1000.
    pub max_keys: u32,
    /// The exclusive end of this group's key range within the bucket, if any.
    pub end_before: Option<String>,
}

/// One version or delete marker as ListObjectVersions returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionEntry {
    pub key: String,
    pub version_id: String,
    pub seq: u64,
    pub created_ms: u64,
    pub size: u64,
    pub etag: String,
    pub owner: String,
    pub is_delete_marker: bool,
    /// The newest version of its key.
    pub is_latest: bool,
    pub checksum_algorithms: Vec<String>,
}

/// One page of a version listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListVersionsPage {
    /// Key order; newest first within a key.
    pub versions: Vec<VersionEntry>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// When truncated: the markers to resume with. A trailing common prefix gives the
    /// greatest key under it and no version id marker.
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
}

/// Lists every version and delete marker of `bucket` (`NoSuchBucket` if it does not
/// exist).
pub fn list_object_versions(
    txn: &ReadTransaction,
    bucket: &str,
    params: &ListVersionsParams,
) -> Result<ListVersionsPage, QueryError> {
    require_bucket(txn, bucket)?;
    let mut page = ListVersionsPage::default();
    let version_marker = params
        .version_id_marker
        .as_deref()
        .filter(|v| !v.is_empty());
    if version_marker.is_some() && params.key_marker.is_none() {
        return Err(
            Reason::InvalidArgument("a version-id-marker needs a key-marker".to_owned()).into(),
        );
    }
    let max = params.max_keys.min(MAX_LIST_KEYS) as usize;
    let (Some(versions), Some(ids)) = (
        open_read(txn, tables::VERSIONS)?,
        open_read(txn, tables::VERSION_IDS)?,
    ) else {
        return Ok(page);
    };
    // The key whose newest version precedes the scan (its first row is not the latest).
    let mut prev_key: Option<String> = None;
    let lower = match (&params.key_marker, version_marker) {
        (None, _) => Vec::new(),
        (Some(key), None) => keys::after_object(bucket, key),
        (Some(key), Some(vid)) => {
            let ok = keys::object_key(bucket, key);
            let seq: Option<u64> = tables::get(
                &ids,
                tables::VERSION_IDS_NAME,
                &keys::version_id_key(&ok, vid),
            )?;
            let Some(seq) = seq else {
                return Err(Reason::InvalidArgument(format!(
                    "version-id-marker {vid:?} is not a version of {key:?}"
                ))
                .into());
            };
            prev_key = Some(key.clone());
            keys::just_after(&keys::version_key(&ok, seq))
        }
    };
    if max == 0 {
        return Ok(page);
    }
    let upper = params
        .end_before
        .as_ref()
        .map(|e| keys::object_key(bucket, e));
    let mut scan = Scanner::new(
        &versions,
        tables::VERSIONS_NAME,
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
                let v: VersionRecord = tables::decode(tables::VERSIONS_NAME, &value)?;
                let is_latest = prev_key.as_deref() != Some(key.as_str());
                next = (Some(key.clone()), Some(v.version_id.clone()));
                prev_key = Some(key.clone());
                page.versions.push(VersionEntry {
                    key,
                    version_id: v.version_id,
                    seq: v.seq,
                    created_ms: v.created_ms,
                    size: v.size,
                    etag: v.etag,
                    owner: v.owner,
                    is_delete_marker: v.is_delete_marker,
                    is_latest,
                    checksum_algorithms: v.checksums.into_keys().collect(),
                });
            }
            Some(ScanItem::Prefix { prefix, last_key }) => {
                page.common_prefixes.push(prefix);
                next = (Some(last_key.clone()), None);
                prev_key = Some(last_key);
            }
        }
        count += 1;
    }
    if count == max && scan.has_more()? {
        page.is_truncated = true;
        (page.next_key_marker, page.next_version_id_marker) = next;
    }
    Ok(page)
}
