//! The state machine's redb tables (all `&[u8] -> &[u8]`, values postcard-encoded) and
//! the record access shared by commands and queries.
//!
//! | table | key | value |
//! |---|---|---|
//! | `sm_buckets` | bucket name | [`BucketRecord`] |
//! | `sm_live` | object key | [`ObjectEntry`] of the current version, only when it is not a delete marker |
//! | `sm_versions` | object key ‖ BE(u64::MAX − seq) | [`VersionRecord`] (newest first per object) |
//! | `sm_version_ids` | object key ‖ version id | seq (postcard u64) |
//! | `sm_uploads` | object key ‖ terminated(upload id) | [`MultipartUpload`] |
//! | `sm_upload_ids` | upload id | the upload's `sm_uploads` key |
//! | `sm_parts` | terminated(upload id) ‖ BE(part number) | [`PartRecord`] |
//! | `sm_stripes` | stripe id (16 bytes, [`StripeId::to_bytes`]) | [`StripeOwner`] |
//! | `sm_gc` | BE(log index) ‖ BE(ordinal) | [`GcEntry`] |
//! | `sm_gc_by_stripe` | stripe id (16 bytes) ‖ the entry's `sm_gc` key | the entry's fragments (`Vec<GcFragment>`) |
//! | `sm_collected` | stripe id (16 bytes) ‖ the entry's `sm_gc` key | fragments the GC deleted (`Vec<GcFragment>`): tombstones, so a delayed duplicate cannot reference them again |
//! | `sm_collected_by_time` | BE(acknowledged at, unix ms) ‖ the `sm_collected` key | empty (pruning order) |
//! | `sm_completed` | upload id | [`CompletedUpload`] (a completed multipart upload) |
//! | `sm_completed_by_version` | the version's `sm_versions` key | upload id (postcard string) |
//!
//! Object keys and the other encodings are described in [`super::keys`].
//!
//! [`BucketRecord`]: super::bucket::BucketRecord
//! [`ObjectEntry`]: super::object_entry::ObjectEntry
//! [`MultipartUpload`]: super::multipart::MultipartUpload
//! [`PartRecord`]: super::multipart::PartRecord
//! [`StripeOwner`]: super::stripe_owner::StripeOwner
//! [`GcEntry`]: super::gc::GcEntry
//! [`CompletedUpload`]: super::completed_upload::CompletedUpload
//! [`StripeId::to_bytes`]: common::ids::StripeId::to_bytes

use std::ops::Bound;

use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ApplyError;
use super::keys;
use super::version::VersionRecord;

/// Every table holds byte keys and byte values.
pub type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// A table open in a read transaction.
pub type ReadTable = ReadOnlyTable<&'static [u8], &'static [u8]>;

/// One `(key, value)` row, copied out of the table.
pub type Row = (Vec<u8>, Vec<u8>);

macro_rules! table {
    ($def:ident, $name:ident, $s:literal) => {
        pub const $name: &str = $s;
        pub const $def: Def = TableDefinition::new($name);
    };
}

table!(BUCKETS, BUCKETS_NAME, "sm_buckets");
table!(LIVE, LIVE_NAME, "sm_live");
table!(VERSIONS, VERSIONS_NAME, "sm_versions");
table!(VERSION_IDS, VERSION_IDS_NAME, "sm_version_ids");
table!(UPLOADS, UPLOADS_NAME, "sm_uploads");
table!(UPLOAD_IDS, UPLOAD_IDS_NAME, "sm_upload_ids");
table!(PARTS, PARTS_NAME, "sm_parts");
table!(STRIPES, STRIPES_NAME, "sm_stripes");
table!(GC, GC_NAME, "sm_gc");
table!(GC_BY_STRIPE, GC_BY_STRIPE_NAME, "sm_gc_by_stripe");
table!(COLLECTED, COLLECTED_NAME, "sm_collected");
table!(
    COLLECTED_BY_TIME,
    COLLECTED_BY_TIME_NAME,
    "sm_collected_by_time"
);
table!(COMPLETED, COMPLETED_NAME, "sm_completed");
table!(
    COMPLETED_BY_VERSION,
    COMPLETED_BY_VERSION_NAME,
    "sm_completed_by_version"
);

/// Every table of the state machine, in name order.
pub const ALL: [Def; 14] = [
    BUCKETS,
    COLLECTED,
    COLLECTED_BY_TIME,
    COMPLETED,
    COMPLETED_BY_VERSION,
    GC,
    GC_BY_STRIPE,
    LIVE,
    PARTS,
    STRIPES,
    UPLOAD_IDS,
    UPLOADS,
    VERSION_IDS,
    VERSIONS,
];

/// A table that can be read (open in a read or a write transaction).
pub trait Readable: ReadableTable<&'static [u8], &'static [u8]> {}
impl<T: ReadableTable<&'static [u8], &'static [u8]>> Readable for T {}

/// Encodes a record (postcard).
pub fn encode<T: Serialize>(table: &'static str, value: &T) -> Result<Vec<u8>, ApplyError> {
    postcard::to_allocvec(value).map_err(|e| ApplyError::Corrupt {
        table,
        detail: format!("cannot encode record: {e}"),
    })
}

/// Decodes a record (postcard); a failure means the stored bytes are corrupt.
pub fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, ApplyError> {
    postcard::from_bytes(bytes).map_err(|e| ApplyError::Corrupt {
        table,
        detail: format!("cannot decode record: {e}"),
    })
}

/// The record under `key`, decoded.
pub fn get<T: DeserializeOwned>(
    table: &impl Readable,
    name: &'static str,
    key: &[u8],
) -> Result<Option<T>, ApplyError> {
    match table.get(key)? {
        Some(v) => decode(name, v.value()).map(Some),
        None => Ok(None),
    }
}

/// Every `(key, value)` row in `[start, end)`, in key order (`end` `None` = unbounded).
pub fn rows_in(
    table: &impl Readable,
    start: &[u8],
    end: Option<&[u8]>,
) -> Result<Vec<Row>, ApplyError> {
    rows_up_to(table, start, end, usize::MAX)
}

/// The first `limit` rows in `[start, end)`, in key order (`end` `None` = unbounded).
pub fn rows_up_to(
    table: &impl Readable,
    start: &[u8],
    end: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<Row>, ApplyError> {
    let mut out = Vec::new();
    if limit == 0 || end.is_some_and(|e| start >= e) {
        return Ok(out);
    }
    let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
    for row in table.range::<&[u8]>((Bound::Included(start), upper))? {
        let (k, v) = row?;
        out.push((k.value().to_vec(), v.value().to_vec()));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// The first row in `[start, end)`, if any.
pub fn first_in(
    table: &impl Readable,
    start: &[u8],
    end: &[u8],
) -> Result<Option<Row>, ApplyError> {
    if start >= end {
        return Ok(None);
    }
    let mut range = table.range::<&[u8]>((Bound::Included(start), Bound::Excluded(end)))?;
    match range.next() {
        Some(row) => {
            let (k, v) = row?;
            Ok(Some((k.value().to_vec(), v.value().to_vec())))
        }
        None => Ok(None),
    }
}

/// The last row in `[start, end)`, if any.
pub fn last_in(table: &impl Readable, start: &[u8], end: &[u8]) -> Result<Option<Row>, ApplyError> {
    if start >= end {
        return Ok(None);
    }
    let mut range = table.range::<&[u8]>((Bound::Included(start), Bound::Excluded(end)))?;
    match range.next_back() {
        Some(row) => {
            let (k, v) = row?;
            Ok(Some((k.value().to_vec(), v.value().to_vec())))
        }
        None => Ok(None),
    }
}

/// The newest version (object or delete marker) of the object with object key `ok`.
pub fn newest_version(
    versions: &impl Readable,
    ok: &[u8],
) -> Result<Option<VersionRecord>, ApplyError> {
    // Version rows of `ok` are `ok || 8 bytes`; `ok` is prefix-free, so they are exactly
    // the rows that start with `ok`.
    let end = keys::prefix_successor(ok).unwrap_or_default();
    match first_in(versions, ok, &end)? {
        Some((_, v)) => decode(VERSIONS_NAME, &v).map(Some),
        None => Ok(None),
    }
}

/// The version of `ok` with id `version_id`.
pub fn version_by_id(
    version_ids: &impl Readable,
    versions: &impl Readable,
    ok: &[u8],
    version_id: &str,
) -> Result<Option<VersionRecord>, ApplyError> {
    let Some(seq) = get::<u64>(
        version_ids,
        VERSION_IDS_NAME,
        &keys::version_id_key(ok, version_id),
    )?
    else {
        return Ok(None);
    };
    match get::<VersionRecord>(versions, VERSIONS_NAME, &keys::version_key(ok, seq))? {
        Some(v) => Ok(Some(v)),
        None => Err(ApplyError::Corrupt {
            table: VERSION_IDS_NAME,
            detail: format!("version id {version_id:?} points at missing version {seq}"),
        }),
    }
}

/// All tables, open for writing in one transaction.
pub struct WriteTables<'t> {
    pub buckets: Table<'t, &'static [u8], &'static [u8]>,
    pub live: Table<'t, &'static [u8], &'static [u8]>,
    pub versions: Table<'t, &'static [u8], &'static [u8]>,
    pub version_ids: Table<'t, &'static [u8], &'static [u8]>,
    pub uploads: Table<'t, &'static [u8], &'static [u8]>,
    pub upload_ids: Table<'t, &'static [u8], &'static [u8]>,
    pub parts: Table<'t, &'static [u8], &'static [u8]>,
    pub stripes: Table<'t, &'static [u8], &'static [u8]>,
    pub gc: Table<'t, &'static [u8], &'static [u8]>,
    pub gc_by_stripe: Table<'t, &'static [u8], &'static [u8]>,
    pub collected: Table<'t, &'static [u8], &'static [u8]>,
    pub collected_by_time: Table<'t, &'static [u8], &'static [u8]>,
    pub completed: Table<'t, &'static [u8], &'static [u8]>,
    pub completed_by_version: Table<'t, &'static [u8], &'static [u8]>,
}

impl<'t> WriteTables<'t> {
    /// Opens (creating if needed) every table.
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, ApplyError> {
        Ok(WriteTables {
            buckets: txn.open_table(BUCKETS)?,
            live: txn.open_table(LIVE)?,
            versions: txn.open_table(VERSIONS)?,
            version_ids: txn.open_table(VERSION_IDS)?,
            uploads: txn.open_table(UPLOADS)?,
            upload_ids: txn.open_table(UPLOAD_IDS)?,
            parts: txn.open_table(PARTS)?,
            stripes: txn.open_table(STRIPES)?,
            gc: txn.open_table(GC)?,
            gc_by_stripe: txn.open_table(GC_BY_STRIPE)?,
            collected: txn.open_table(COLLECTED)?,
            collected_by_time: txn.open_table(COLLECTED_BY_TIME)?,
            completed: txn.open_table(COMPLETED)?,
            completed_by_version: txn.open_table(COMPLETED_BY_VERSION)?,
        })
    }
}

/// Opens a table for reading; `None` if no command has created it yet (read as empty).
pub fn open_read(txn: &ReadTransaction, def: Def) -> Result<Option<ReadTable>, ApplyError> {
    match txn.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Creates every table (idempotent), so queries on a fresh group see empty tables.
pub fn create_all(txn: &WriteTransaction) -> Result<(), ApplyError> {
    WriteTables::open(txn).map(drop)
}
