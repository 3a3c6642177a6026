//! Point queries over a read transaction: buckets, current and specific versions,
//! uploads, the stripe index and the GC queue. Listings are in `list_*.rs`.
//!
//! Queries read exactly what the transaction sees; linearizability (the leader read
//! barrier before opening the transaction) is the caller's job.

use redb::ReadTransaction;

use common::ids::StripeId;

use super::bucket::BucketRecord;
use super::error::QueryError;
use super::gc::{GcEntry, GcFragment, GcId};
use super::keys;
use super::multipart::MultipartUpload;
use super::response::Reason;
use super::stripe_owner::StripeOwner;
use super::tables::{self, open_read};
use super::version::VersionRecord;

/// What a GET or HEAD without a version id finds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CurrentVersion {
    /// The current version is an object.
    Object(VersionRecord),
    /// The current version is a delete marker: "no such key", answered with
    /// `x-amz-delete-marker: true` and the marker's version id.
    DeleteMarker(VersionRecord),
    /// The key has no version at all.
    Absent,
}

/// The bucket `name`, if it exists.
pub fn get_bucket(txn: &ReadTransaction, name: &str) -> Result<Option<BucketRecord>, QueryError> {
    let Some(t) = open_read(txn, tables::BUCKETS)? else {
        return Ok(None);
    };
    Ok(tables::get(&t, tables::BUCKETS_NAME, name.as_bytes())?)
}

/// The bucket `name`, or `NoSuchBucket`.
pub(crate) fn require_bucket(
    txn: &ReadTransaction,
    name: &str,
) -> Result<BucketRecord, QueryError> {
    get_bucket(txn, name)?.ok_or(QueryError::Rejected(Reason::NoSuchBucket))
}

/// Every bucket (of `owner`, if given), in name order.
pub fn list_buckets(
    txn: &ReadTransaction,
    owner: Option<&str>,
) -> Result<Vec<BucketRecord>, QueryError> {
    let Some(t) = open_read(txn, tables::BUCKETS)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (_, value) in tables::rows_in(&t, &[], None)? {
        let rec: BucketRecord = tables::decode(tables::BUCKETS_NAME, &value)?;
        if owner.is_none_or(|o| o == rec.owner) {
            out.push(rec);
        }
    }
    Ok(out)
}

/// The current version of `(bucket, key)` (GET/HEAD without a version id).
pub fn head_object(
    txn: &ReadTransaction,
    bucket: &str,
    key: &str,
) -> Result<CurrentVersion, QueryError> {
    require_bucket(txn, bucket)?;
    let Some(versions) = open_read(txn, tables::VERSIONS)? else {
        return Ok(CurrentVersion::Absent);
    };
    let ok = keys::object_key(bucket, key);
    Ok(match tables::newest_version(&versions, &ok)? {
        Some(v) if v.is_delete_marker => CurrentVersion::DeleteMarker(v),
        Some(v) => CurrentVersion::Object(v),
        None => CurrentVersion::Absent,
    })
}

/// Version `version_id` of `(bucket, key)` (which may be a delete marker), or `None`.
pub fn get_version(
    txn: &ReadTransaction,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> Result<Option<VersionRecord>, QueryError> {
    require_bucket(txn, bucket)?;
    let (Some(ids), Some(versions)) = (
        open_read(txn, tables::VERSION_IDS)?,
        open_read(txn, tables::VERSIONS)?,
    ) else {
        return Ok(None);
    };
    let ok = keys::object_key(bucket, key);
    Ok(tables::version_by_id(&ids, &versions, &ok, version_id)?)
}

/// The multipart upload `upload_id`, if it is in progress.
pub fn get_upload(
    txn: &ReadTransaction,
    upload_id: &str,
) -> Result<Option<MultipartUpload>, QueryError> {
    let (Some(ids), Some(uploads)) = (
        open_read(txn, tables::UPLOAD_IDS)?,
        open_read(txn, tables::UPLOADS)?,
    ) else {
        return Ok(None);
    };
    let uk: Option<Vec<u8>> = tables::get(&ids, tables::UPLOAD_IDS_NAME, upload_id.as_bytes())?;
    match uk {
        Some(uk) => Ok(tables::get(&uploads, tables::UPLOADS_NAME, &uk)?),
        None => Ok(None),
    }
}

/// The record that references `stripe` (for repair), if any.
pub fn stripe_owner(
    txn: &ReadTransaction,
    stripe: StripeId,
) -> Result<Option<StripeOwner>, QueryError> {
    let Some(t) = open_read(txn, tables::STRIPES)? else {
        return Ok(None);
    };
    Ok(tables::get(&t, tables::STRIPES_NAME, &stripe.to_bytes())?)
}

/// The fragments of `stripe` waiting in the GC queue (old copies a placement change
/// moved away, or every fragment of a released stripe), oldest entry first. Repair
/// keeps rebuilt fragments off these locations.
pub fn gc_pending_of(
    txn: &ReadTransaction,
    stripe: StripeId,
) -> Result<Vec<GcFragment>, QueryError> {
    let Some(t) = open_read(txn, tables::GC_BY_STRIPE)? else {
        return Ok(Vec::new());
    };
    let prefix = stripe.to_bytes();
    let end = keys::prefix_successor(&prefix);
    let mut out = Vec::new();
    for (_, value) in tables::rows_in(&t, &prefix, end.as_deref())? {
        let fragments: Vec<GcFragment> = tables::decode(tables::GC_BY_STRIPE_NAME, &value)?;
        out.extend(fragments);
    }
    Ok(out)
}

/// Up to `limit` GC entries, oldest first, after `after` (exclusive) if given.
pub fn gc_take(
    txn: &ReadTransaction,
    after: Option<GcId>,
    limit: usize,
) -> Result<Vec<GcEntry>, QueryError> {
    let Some(t) = open_read(txn, tables::GC)? else {
        return Ok(Vec::new());
    };
    let start = after
        .map(|id| keys::just_after(&keys::gc_key(id)))
        .unwrap_or_default();
    let mut out = Vec::new();
    for (_, value) in tables::rows_up_to(&t, &start, None, limit)? {
        out.push(tables::decode(tables::GC_NAME, &value)?);
    }
    Ok(out)
}
