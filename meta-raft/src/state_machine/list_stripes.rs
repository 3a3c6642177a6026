//! ListStripes: every stripe a group references, with what repair needs to check and
//! rebuild it — its owner (version or part), erasure code, data length and placement
//! (exactly the `Vec<FragmentLocation>` a [`super::ReplacePlacement`] compares against).
//!
//! Order: the stripe index (`sm_stripes`) key order, i.e. the order of
//! [`StripeId::to_bytes`] (little-endian bytes, so *not* numeric order). A page resumes
//! strictly after the last stripe id of the previous page; the order is stable, so a walk
//! page by page sees every stripe that exists for the whole walk exactly once (stripes
//! added or dropped during the walk may or may not be seen).

use std::collections::{BTreeMap, BTreeSet};

use common::cluster::FragmentLocation;
use common::codec::CodecParams;
use common::ids::StripeId;
use redb::ReadTransaction;

use super::body::StripeRecord;
use super::error::{ApplyError, QueryError};
use super::keys;
use super::multipart::{MultipartUpload, PartRecord};
use super::stripe_owner::StripeOwner;
use super::tables::{self, open_read};
use super::version::VersionRecord;

/// The most stripes one page returns.
pub const MAX_LIST_STRIPES: u32 = 1000;

/// One stripe as repair sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StripeEntry {
    pub id: StripeId,
    /// The version or part that references the stripe.
    pub owner: StripeOwner,
    /// The erasure code of the stripe (from the version's body, or the part's upload).
    pub codec: CodecParams,
    /// Object bytes in the stripe (before padding and coding).
    pub data_len: u64,
    /// `placement[i]` holds fragment `i` (`k + m` entries).
    pub placement: Vec<FragmentLocation>,
}

/// One page of [`list_stripes`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListStripesPage {
    pub stripes: Vec<StripeEntry>,
    /// More stripes follow: resume with `after` = the last id of this page.
    pub is_truncated: bool,
}

/// Up to `limit` (capped at [`MAX_LIST_STRIPES`]) stripes after `after` (exclusive), in
/// index order (see the module docs). `limit` 0 returns an empty, untruncated page.
pub fn list_stripes(
    txn: &ReadTransaction,
    after: Option<StripeId>,
    limit: u32,
) -> Result<ListStripesPage, QueryError> {
    let limit = limit.min(MAX_LIST_STRIPES) as usize;
    let Some(index) = open_read(txn, tables::STRIPES)? else {
        return Ok(ListStripesPage::default());
    };
    if limit == 0 {
        return Ok(ListStripesPage::default());
    }
    let start = after
        .map(|id| keys::just_after(&id.to_bytes()))
        .unwrap_or_default();
    // One row more than asked tells whether the page is truncated.
    let mut rows = tables::rows_up_to(&index, &start, None, limit + 1)?;
    let is_truncated = rows.len() > limit;
    rows.truncate(limit);
    let mut page = Vec::with_capacity(rows.len());
    let mut wanted: BTreeMap<StripeOwner, BTreeSet<StripeId>> = BTreeMap::new();
    for (key, value) in rows {
        let id = StripeId::from_slice(&key).ok_or_else(|| ApplyError::Corrupt {
            table: tables::STRIPES_NAME,
            detail: format!("stripe index key of {} bytes", key.len()),
        })?;
        let owner: StripeOwner = tables::decode(tables::STRIPES_NAME, &value)?;
        wanted.entry(owner.clone()).or_default().insert(id);
        page.push((id, owner));
    }
    // Each owner record is read once and dropped before the next (an object's stripes
    // are scattered over the index, and one record may list thousands of stripes).
    let owners = Owners::open(txn)?;
    let mut found: BTreeMap<StripeId, (CodecParams, StripeRecord)> = BTreeMap::new();
    for (owner, ids) in &wanted {
        let (codec, stripes) = owners.stripes_of(owner)?;
        for s in stripes {
            if ids.contains(&s.id) {
                found.insert(s.id, (codec, s));
            }
        }
    }
    let mut stripes = Vec::with_capacity(page.len());
    for (id, owner) in page {
        let (codec, stripe) = found.remove(&id).ok_or_else(|| ApplyError::Corrupt {
            table: tables::STRIPES_NAME,
            detail: format!("stripe {id} is indexed but not in its owner {owner:?}"),
        })?;
        stripes.push(StripeEntry {
            id,
            owner,
            codec,
            data_len: stripe.data_len,
            placement: stripe.placement,
        });
    }
    Ok(ListStripesPage {
        stripes,
        is_truncated,
    })
}

/// The tables that hold stripe owners.
struct Owners {
    versions: Option<tables::ReadTable>,
    parts: Option<tables::ReadTable>,
    upload_ids: Option<tables::ReadTable>,
    uploads: Option<tables::ReadTable>,
}

impl Owners {
    fn open(txn: &ReadTransaction) -> Result<Self, QueryError> {
        Ok(Owners {
            versions: open_read(txn, tables::VERSIONS)?,
            parts: open_read(txn, tables::PARTS)?,
            upload_ids: open_read(txn, tables::UPLOAD_IDS)?,
            uploads: open_read(txn, tables::UPLOADS)?,
        })
    }

    /// The erasure code and every stripe of `owner`.
    fn stripes_of(
        &self,
        owner: &StripeOwner,
    ) -> Result<(CodecParams, Vec<StripeRecord>), QueryError> {
        let dangling = |table: &'static str| ApplyError::Corrupt {
            table,
            detail: format!("the stripe index names {owner:?}, which does not exist"),
        };
        match owner {
            StripeOwner::Version {
                bucket, key, seq, ..
            } => {
                let vk = keys::version_key(&keys::object_key(bucket, key), *seq);
                let rec: Option<VersionRecord> = match &self.versions {
                    Some(t) => tables::get(t, tables::VERSIONS_NAME, &vk)?,
                    None => None,
                };
                let rec = rec.ok_or_else(|| dangling(tables::VERSIONS_NAME))?;
                let codec = rec
                    .body
                    .codec()
                    .ok_or_else(|| dangling(tables::VERSIONS_NAME))?;
                let stripes = rec.body.stripes().into_iter().cloned().collect();
                Ok((codec, stripes))
            }
            StripeOwner::Part {
                upload_id,
                part_number,
            } => {
                let pk = keys::part_key(upload_id, *part_number);
                let part: Option<PartRecord> = match &self.parts {
                    Some(t) => tables::get(t, tables::PARTS_NAME, &pk)?,
                    None => None,
                };
                let part = part.ok_or_else(|| dangling(tables::PARTS_NAME))?;
                let codec = self
                    .upload(upload_id)?
                    .ok_or_else(|| dangling(tables::UPLOADS_NAME))?
                    .codec;
                Ok((codec, part.stripes))
            }
        }
    }

    fn upload(&self, upload_id: &str) -> Result<Option<MultipartUpload>, QueryError> {
        let (Some(ids), Some(uploads)) = (&self.upload_ids, &self.uploads) else {
            return Ok(None);
        };
        let uk: Option<Vec<u8>> = tables::get(ids, tables::UPLOAD_IDS_NAME, upload_id.as_bytes())?;
        match uk {
            Some(uk) => Ok(tables::get(uploads, tables::UPLOADS_NAME, &uk)?),
            None => Ok(None),
        }
    }
}
