//! [`Scanner`]: walks the rows of one bucket in a table keyed by object keys (optionally
//! followed by a suffix), in key order, rolling keys up into S3 common prefixes.
//!
//! When a key contains the delimiter after the prefix, the scanner yields the common
//! prefix once and then *seeks* past every key that starts with it (a new range starting
//! at the prefix's successor): a common prefix over a million keys costs two B-tree
//! descents, not a million rows.

use std::ops::Bound;

use redb::Range;

use super::error::ApplyError;
use super::keys;
use super::tables::{self, Readable};

/// One step of a scan.
pub enum ScanItem {
    /// A row whose key is not rolled up.
    Row { key: String, value: Vec<u8> },
    /// A common prefix, and the greatest key under it in the scanned range (resuming
    /// "after" that key skips the whole prefix).
    Prefix { prefix: String, last_key: String },
}

/// A forward scan over `[lower, upper)` of one bucket's rows.
pub struct Scanner<'a, T: Readable> {
    table: &'a T,
    table_name: &'static str,
    bucket: &'a str,
    prefix: &'a str,
    delimiter: Option<&'a str>,
    upper: Vec<u8>,
    range: Option<Range<'a, &'static [u8], &'static [u8]>>,
    /// Rows read from the table so far (for tests of the seek).
    pub rows_read: u64,
}

impl<'a, T: Readable> Scanner<'a, T> {
    /// A scan of the rows of `bucket` whose keys start with `prefix`, from `lower`
    /// (inclusive) to `upper` (exclusive; also capped at the end of the prefix). An empty
    /// delimiter means none.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        table: &'a T,
        table_name: &'static str,
        bucket: &'a str,
        prefix: &'a str,
        delimiter: Option<&'a str>,
        lower: Vec<u8>,
        upper: Option<Vec<u8>>,
    ) -> Result<Self, ApplyError> {
        let start = keys::key_prefix(bucket, prefix);
        // `start` ends with the bucket separator 0x00 or an escaped byte, so it has a
        // successor.
        let prefix_end = keys::prefix_successor(&start).unwrap_or_default();
        let upper = match upper {
            Some(u) => keys::min_upper(u, prefix_end),
            None => prefix_end,
        };
        let lower = keys::max_lower(lower, start);
        let mut scanner = Scanner {
            table,
            table_name,
            bucket,
            prefix,
            delimiter: delimiter.filter(|d| !d.is_empty()),
            upper,
            range: None,
            rows_read: 0,
        };
        scanner.seek(lower)?;
        Ok(scanner)
    }

    fn seek(&mut self, lower: Vec<u8>) -> Result<(), ApplyError> {
        self.range = if lower < self.upper {
            Some(self.table.range::<&[u8]>((
                Bound::Included(lower.as_slice()),
                Bound::Excluded(self.upper.as_slice()),
            ))?)
        } else {
            None
        };
        Ok(())
    }

    fn corrupt(&self, row_key: &[u8]) -> ApplyError {
        ApplyError::Corrupt {
            table: self.table_name,
            detail: format!(
                "row key {} is not a key of bucket {:?}",
                hex::encode(row_key),
                self.bucket
            ),
        }
    }

    /// The next row or common prefix, if any.
    pub fn next_item(&mut self) -> Result<Option<ScanItem>, ApplyError> {
        let Some(range) = self.range.as_mut() else {
            return Ok(None);
        };
        let Some(row) = range.next() else {
            self.range = None;
            return Ok(None);
        };
        let (k, v) = row?;
        let row_key = k.value().to_vec();
        let value = v.value().to_vec();
        drop((k, v));
        self.rows_read += 1;
        let Some((key, _)) = keys::decode_object_key(&row_key, self.bucket) else {
            return Err(self.corrupt(&row_key));
        };
        let Some(delimiter) = self.delimiter else {
            return Ok(Some(ScanItem::Row { key, value }));
        };
        let rest = key.get(self.prefix.len()..).unwrap_or_default();
        let Some(pos) = rest.find(delimiter) else {
            return Ok(Some(ScanItem::Row { key, value }));
        };
        let prefix = key[..self.prefix.len() + pos + delimiter.len()].to_owned();
        let start = keys::key_prefix(self.bucket, &prefix);
        let end = keys::min_upper(
            keys::prefix_successor(&start).unwrap_or_default(),
            self.upper.clone(),
        );
        // The greatest row under the prefix (within the scan's range) names the resume key.
        let last_row = tables::last_in(self.table, &start, &end)?
            .map(|(k, _)| k)
            .unwrap_or(row_key);
        self.rows_read += 1;
        let Some((last_key, _)) = keys::decode_object_key(&last_row, self.bucket) else {
            return Err(self.corrupt(&last_row));
        };
        self.seek(end)?;
        Ok(Some(ScanItem::Prefix { prefix, last_key }))
    }

    /// Whether any row is left (consumes the scan).
    pub fn has_more(&mut self) -> Result<bool, ApplyError> {
        Ok(self.next_item()?.is_some())
    }
}
