//! ListObjects (V1 and V2) over one group's part of a bucket.

use redb::ReadTransaction;

use super::error::QueryError;
use super::keys;
use super::object_entry::ObjectEntry;
use super::query::require_bucket;
use super::scan::{ScanItem, Scanner};
use super::tables::{self, open_read};

/// The most keys one listing page returns (S3's limit).
pub const MAX_LIST_KEYS: u32 = 1000;

/// What to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListObjectsParams {
    pub prefix: String,
    /// Roll keys up into common prefixes at the first occurrence of this string after the
    /// prefix (`None` or empty: no roll-up).
    pub delimiter: Option<String>,
    /// List keys strictly after this one (S3 `start-after`, `marker`, or the decoded
    /// continuation token, i.e. a previous page's `next`).
    pub start_after: Option<String>,
    /// At most this many entries plus common prefixes (each prefix counts once); capped at
    /// [`MAX_LIST_KEYS`]. 0 returns an empty, untruncated page.
    pub max_keys: u32,
    /// The exclusive end of this group's key range within the bucket, if it ends inside
    /// the bucket.
    pub end_before: Option<String>,
}

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListObjectsPage {
    /// Current versions that are objects (delete markers are never listed), key order.
    pub entries: Vec<ObjectEntry>,
    /// Common prefixes, in order, each once per page.
    pub common_prefixes: Vec<String>,
    /// More entries or prefixes follow in this group's range.
    pub is_truncated: bool,
    /// When truncated: resume with `start_after = next`. It is the last key returned, or
    /// for a trailing common prefix the greatest key under it, so the next page never
    /// repeats that prefix.
    pub next: Option<String>,
}

/// Lists the current objects of `bucket` (`NoSuchBucket` if it does not exist).
///
/// A listing that spans groups asks each group in key order, passing the previous page's
/// `next` (or the user's marker) as `start_after`; a common prefix that straddles a group
/// boundary is reported by both groups and must be merged by the caller.
pub fn list_objects(
    txn: &ReadTransaction,
    bucket: &str,
    params: &ListObjectsParams,
) -> Result<ListObjectsPage, QueryError> {
    list_objects_counted(txn, bucket, params).map(|(page, _)| page)
}

/// [`list_objects`], also returning how many table rows it read.
pub(crate) fn list_objects_counted(
    txn: &ReadTransaction,
    bucket: &str,
    params: &ListObjectsParams,
) -> Result<(ListObjectsPage, u64), QueryError> {
    require_bucket(txn, bucket)?;
    let mut page = ListObjectsPage::default();
    let max = params.max_keys.min(MAX_LIST_KEYS) as usize;
    let Some(live) = open_read(txn, tables::LIVE)? else {
        return Ok((page, 0));
    };
    if max == 0 {
        return Ok((page, 0));
    }
    let lower = match &params.start_after {
        Some(after) => keys::after_object(bucket, after),
        None => Vec::new(),
    };
    let upper = params
        .end_before
        .as_ref()
        .map(|e| keys::object_key(bucket, e));
    let mut scan = Scanner::new(
        &live,
        tables::LIVE_NAME,
        bucket,
        &params.prefix,
        params.delimiter.as_deref(),
        lower,
        upper,
    )?;
    let mut last = None;
    let mut count = 0usize;
    while count < max {
        match scan.next_item()? {
            None => break,
            Some(ScanItem::Row { key, value, .. }) => {
                let entry: ObjectEntry = tables::decode(tables::LIVE_NAME, &value)?;
                page.entries.push(entry);
                last = Some(key);
            }
            Some(ScanItem::Prefix { prefix, last_key }) => {
                page.common_prefixes.push(prefix);
                last = Some(last_key);
            }
        }
        count += 1;
    }
    if count == max && scan.has_more()? {
        page.is_truncated = true;
        page.next = last;
    }
    Ok((page, scan.rows_read))
}
