//! [`apply`]: one command against the state machine's tables, inside the caller's write
//! transaction. Pure: the result depends only on the stored state, the log index and the
//! command.
//!
//! Every handler first checks everything that can reject the command, then writes. A
//! rejected command therefore leaves no trace; `apply` asserts that (a write followed by
//! a rejection is a bug that would fork replicas' understanding of "rejected").

use std::collections::BTreeSet;

use common::cluster::FragmentLocation;
use common::codec::CodecParams;
use common::ids::StripeId;
use redb::{Table, WriteTransaction};

use super::body::{ObjectBody, StripeRecord};
use super::bucket::{BucketRecord, Versioning};
use super::command::{Command, DeleteObject, Precondition, PutObject, ReplacePlacement};
use super::error::ApplyError;
use super::gc::{GcEntry, GcFragment, GcId};
use super::keys;
use super::object_entry::ObjectEntry;
use super::response::{Reason, Response};
use super::stripe_owner::StripeOwner;
use super::tables::{self, WriteTables};
use super::version::{VersionRecord, NULL_VERSION_ID};

/// The longest key S3 accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// How long a GC tombstone (`sm_collected`) is kept after the acknowledgement: 1 day.
pub const COLLECTED_RETENTION_MS: u64 = 24 * 3600 * 1000;
/// Most tombstones one `GcAck` prunes (bounds the apply work; the rest go later).
pub const COLLECTED_PRUNE_MAX: usize = 1024;

/// Applies `cmd`, the Raft log entry at `log_index`, inside `txn`.
///
/// `Ok(Response::Rejected(_))` is a business outcome and leaves the tables untouched;
/// `Err` means the storage failed (do not commit `txn`). The same tables, index and
/// command always give the same response and the same table contents.
pub fn apply(
    txn: &WriteTransaction,
    log_index: u64,
    cmd: &Command,
) -> Result<Response, ApplyError> {
    if let Command::Root(c) = cmd {
        return super::root::apply_root(txn, c);
    }
    let mut a = Applier::open(txn, log_index)?;
    let result = match cmd {
        Command::CreateBucket {
            name,
            owner,
            created_ms,
            versioning,
        } => a.create_bucket(name, owner, *created_ms, *versioning),
        Command::DeleteBucket { name } => a.delete_bucket(name),
        Command::SetBucketVersioning { name, versioning } => a.set_versioning(name, *versioning),
        Command::PutObject(c) => a.put_object(c),
        Command::DeleteObject(c) => a.delete_object(c),
        Command::ReplacePlacement(c) => a.replace_placement(c),
        Command::CreateMultipartUpload(c) => a.create_upload(c),
        Command::RecordPart(c) => a.record_part(c),
        Command::CompleteMultipartUpload(c) => a.complete_upload(c),
        Command::AbortMultipartUpload(c) => a.abort_upload(c),
        Command::GcAck { ids, at_ms } => a.gc_ack(ids, *at_ms),
        Command::Root(_) => unreachable!("handled above"),
    };
    match result {
        Ok(response) => Ok(response),
        Err(Fail::Reject(reason)) => {
            assert!(
                !a.mutated,
                "state machine bug: command {cmd} was rejected ({reason}) after writing"
            );
            Ok(Response::Rejected(reason))
        }
        Err(Fail::Storage(e)) => Err(e),
    }
}

/// Why a handler stopped: a business rejection or a storage failure.
pub(crate) enum Fail {
    Reject(Reason),
    Storage(ApplyError),
}

impl From<Reason> for Fail {
    fn from(r: Reason) -> Self {
        Fail::Reject(r)
    }
}

impl From<ApplyError> for Fail {
    fn from(e: ApplyError) -> Self {
        Fail::Storage(e)
    }
}

impl From<redb::StorageError> for Fail {
    fn from(e: redb::StorageError) -> Self {
        Fail::Storage(e.into())
    }
}

pub(crate) type Handled = Result<Response, Fail>;

type RawTable<'t> = Table<'t, &'static [u8], &'static [u8]>;

/// Which table a write goes to.
#[derive(Clone, Copy)]
pub(crate) enum Tbl {
    Buckets,
    Live,
    Versions,
    VersionIds,
    Uploads,
    UploadIds,
    Parts,
    Stripes,
    Gc,
    GcByStripe,
    Collected,
    CollectedByTime,
    Completed,
    CompletedByVersion,
}

impl Tbl {
    fn name(self) -> &'static str {
        match self {
            Tbl::Buckets => tables::BUCKETS_NAME,
            Tbl::Live => tables::LIVE_NAME,
            Tbl::Versions => tables::VERSIONS_NAME,
            Tbl::VersionIds => tables::VERSION_IDS_NAME,
            Tbl::Uploads => tables::UPLOADS_NAME,
            Tbl::UploadIds => tables::UPLOAD_IDS_NAME,
            Tbl::Parts => tables::PARTS_NAME,
            Tbl::Stripes => tables::STRIPES_NAME,
            Tbl::Gc => tables::GC_NAME,
            Tbl::GcByStripe => tables::GC_BY_STRIPE_NAME,
            Tbl::Collected => tables::COLLECTED_NAME,
            Tbl::CollectedByTime => tables::COLLECTED_BY_TIME_NAME,
            Tbl::Completed => tables::COMPLETED_NAME,
            Tbl::CompletedByVersion => tables::COMPLETED_BY_VERSION_NAME,
        }
    }
}

/// What committing a version will do (decided before any write).
pub(crate) enum CommitPlan {
    /// A retried command whose version already exists unchanged.
    AlreadyCommitted(Response),
    /// Insert `record`; remove `replaced` (the null version it supersedes) first.
    Commit {
        record: Box<VersionRecord>,
        replaced: Option<Box<VersionRecord>>,
    },
}

/// One command's view of the tables.
pub(crate) struct Applier<'t> {
    pub(crate) t: WriteTables<'t>,
    pub(crate) log_index: u64,
    gc_ordinal: u32,
    mutated: bool,
}

impl<'t> Applier<'t> {
    fn open(txn: &'t WriteTransaction, log_index: u64) -> Result<Self, ApplyError> {
        Ok(Applier {
            t: WriteTables::open(txn)?,
            log_index,
            gc_ordinal: 0,
            mutated: false,
        })
    }

    fn table(&mut self, which: Tbl) -> &mut RawTable<'t> {
        match which {
            Tbl::Buckets => &mut self.t.buckets,
            Tbl::Live => &mut self.t.live,
            Tbl::Versions => &mut self.t.versions,
            Tbl::VersionIds => &mut self.t.version_ids,
            Tbl::Uploads => &mut self.t.uploads,
            Tbl::UploadIds => &mut self.t.upload_ids,
            Tbl::Parts => &mut self.t.parts,
            Tbl::Stripes => &mut self.t.stripes,
            Tbl::Gc => &mut self.t.gc,
            Tbl::GcByStripe => &mut self.t.gc_by_stripe,
            Tbl::Collected => &mut self.t.collected,
            Tbl::CollectedByTime => &mut self.t.collected_by_time,
            Tbl::Completed => &mut self.t.completed,
            Tbl::CompletedByVersion => &mut self.t.completed_by_version,
        }
    }

    // ---- writes (the only functions that modify tables) ----

    pub(crate) fn put<T: serde::Serialize>(
        &mut self,
        which: Tbl,
        key: &[u8],
        value: &T,
    ) -> Result<(), ApplyError> {
        let bytes = tables::encode(which.name(), value)?;
        self.mutated = true;
        self.table(which).insert(key, bytes.as_slice())?;
        Ok(())
    }

    /// Removes `key`; whether it was there.
    pub(crate) fn del(&mut self, which: Tbl, key: &[u8]) -> Result<bool, ApplyError> {
        self.mutated = true;
        Ok(self.table(which).remove(key)?.is_some())
    }

    /// Queues fragments of `stripe` for deletion (nothing if `fragments` is empty).
    pub(crate) fn queue_gc(
        &mut self,
        stripe: StripeId,
        fragments: Vec<GcFragment>,
    ) -> Result<(), ApplyError> {
        if fragments.is_empty() {
            return Ok(());
        }
        let id = GcId {
            log_index: self.log_index,
            ordinal: self.gc_ordinal,
        };
        self.gc_ordinal += 1;
        self.put(
            Tbl::GcByStripe,
            &keys::gc_stripe_key(stripe, id),
            &fragments,
        )?;
        let entry = GcEntry {
            id,
            stripe,
            fragments,
        };
        self.put(Tbl::Gc, &keys::gc_key(id), &entry)
    }

    /// `stripe` is no longer referenced: drop it from the stripe index and queue every
    /// fragment for deletion.
    pub(crate) fn release_stripe(&mut self, stripe: &StripeRecord) -> Result<(), ApplyError> {
        self.del(Tbl::Stripes, &stripe.id.to_bytes())?;
        let fragments = (0u8..)
            .zip(&stripe.placement)
            .map(|(index, location)| GcFragment {
                index,
                location: *location,
            })
            .collect();
        self.queue_gc(stripe.id, fragments)
    }

    /// Stores a new version. It is the object's newest (its seq is this log index, above
    /// every stored seq), so it becomes current: listed if an object, unlisted if a
    /// delete marker.
    pub(crate) fn insert_version(&mut self, rec: &VersionRecord) -> Result<(), ApplyError> {
        let ok = keys::object_key(&rec.bucket, &rec.key);
        debug_assert!(
            tables::newest_version(&self.t.versions, &ok)?.is_none_or(|n| n.seq < rec.seq),
            "a new version must be the newest"
        );
        self.put(Tbl::Versions, &keys::version_key(&ok, rec.seq), rec)?;
        self.put(
            Tbl::VersionIds,
            &keys::version_id_key(&ok, &rec.version_id),
            &rec.seq,
        )?;
        for s in rec.body.stripes() {
            let owner = StripeOwner::Version {
                bucket: rec.bucket.clone(),
                key: rec.key.clone(),
                version_id: rec.version_id.clone(),
                seq: rec.seq,
            };
            self.put(Tbl::Stripes, &s.id.to_bytes(), &owner)?;
        }
        if rec.is_delete_marker {
            self.del(Tbl::Live, &ok)?;
        } else {
            self.put(Tbl::Live, &ok, &ObjectEntry::of(rec))?;
        }
        Ok(())
    }

    /// Removes a version; its stripes not in `keep` go to the GC queue, and the record of
    /// the multipart upload that produced it (if any) is dropped. The next newest version
    /// (if any) becomes current.
    pub(crate) fn remove_version(
        &mut self,
        rec: &VersionRecord,
        keep: &BTreeSet<StripeId>,
    ) -> Result<(), ApplyError> {
        let ok = keys::object_key(&rec.bucket, &rec.key);
        let vk = keys::version_key(&ok, rec.seq);
        self.del(Tbl::Versions, &vk)?;
        self.del(Tbl::VersionIds, &keys::version_id_key(&ok, &rec.version_id))?;
        self.forget_completed_upload(&vk)?;
        for s in rec.body.stripes() {
            if !keep.contains(&s.id) {
                self.release_stripe(s)?;
            }
        }
        match tables::newest_version(&self.t.versions, &ok)? {
            Some(n) if !n.is_delete_marker => self.put(Tbl::Live, &ok, &ObjectEntry::of(&n)),
            _ => self.del(Tbl::Live, &ok).map(drop),
        }
    }

    /// Carries out a [`CommitPlan::Commit`].
    pub(crate) fn execute_commit(
        &mut self,
        record: Box<VersionRecord>,
        replaced: Option<Box<VersionRecord>>,
    ) -> Handled {
        if let Some(old) = replaced {
            let keep: BTreeSet<StripeId> = record.body.stripes().iter().map(|s| s.id).collect();
            self.remove_version(&old, &keep)?;
        }
        // Planted bug (simulation only): every fifth log index acknowledges the version
        // without storing it (deterministic, so every replica drops the same ones).
        let dropped = common::env::planted::active(common::env::planted::Bug::DropVersionOnApply)
            && record.seq.is_multiple_of(5);
        if !dropped {
            self.insert_version(&record)?;
        }
        let record = *record;
        Ok(Response::Committed {
            version_id: record.version_id,
            seq: record.seq,
            etag: record.etag,
            size: record.size,
        })
    }

    // ---- reads and checks ----

    pub(crate) fn bucket(&self, name: &str) -> Result<Option<BucketRecord>, ApplyError> {
        tables::get(&self.t.buckets, tables::BUCKETS_NAME, name.as_bytes())
    }

    pub(crate) fn require_bucket(&self, name: &str) -> Result<BucketRecord, Fail> {
        self.bucket(name)?.ok_or(Fail::Reject(Reason::NoSuchBucket))
    }

    pub(crate) fn version(
        &self,
        ok: &[u8],
        version_id: &str,
    ) -> Result<Option<VersionRecord>, ApplyError> {
        tables::version_by_id(&self.t.version_ids, &self.t.versions, ok, version_id)
    }

    /// Decides what committing `draft` (a version of `ok` in `bucket`, `seq` = this log
    /// index, `version_id` as proposed) does, checking versioning rules and
    /// preconditions.
    pub(crate) fn plan_commit(
        &self,
        bucket: &BucketRecord,
        ok: &[u8],
        mut draft: VersionRecord,
        preconditions: &[Precondition],
    ) -> Result<CommitPlan, Fail> {
        let current = tables::newest_version(&self.t.versions, ok)?;
        match bucket.versioning {
            Versioning::Enabled => {
                check_version_id(&draft.version_id)?;
                if let Some(existing) = self.version(ok, &draft.version_id)? {
                    let same = !existing.is_delete_marker
                        && existing.body.same_data(&draft.body)
                        && existing.etag == draft.etag;
                    if !same {
                        return Err(Reason::VersionIdConflict.into());
                    }
                    return Ok(CommitPlan::AlreadyCommitted(Response::Committed {
                        version_id: existing.version_id,
                        seq: existing.seq,
                        etag: existing.etag,
                        size: existing.size,
                    }));
                }
                check_preconditions(current.as_ref(), preconditions)?;
                Ok(CommitPlan::Commit {
                    record: Box::new(draft),
                    replaced: None,
                })
            }
            Versioning::Unversioned | Versioning::Suspended => {
                draft.version_id = NULL_VERSION_ID.to_owned();
                // A retried command (the client timed out, its first attempt committed
                // after all) finds its own version current: it answers what the first
                // attempt did, instead of failing its own precondition (a conditional
                // create would see the key present and answer 412). Found by the
                // simulation's linearizability checker.
                if let Some(cur) = current.as_ref().filter(|c| same_write(c, &draft)) {
                    return Ok(CommitPlan::AlreadyCommitted(Response::Committed {
                        version_id: cur.version_id.clone(),
                        seq: cur.seq,
                        etag: cur.etag.clone(),
                        size: cur.size,
                    }));
                }
                check_preconditions(current.as_ref(), preconditions)?;
                let replaced = self.version(ok, NULL_VERSION_ID)?.map(Box::new);
                Ok(CommitPlan::Commit {
                    record: Box::new(draft),
                    replaced,
                })
            }
        }
    }

    /// Checks stripes a command brings: valid code, `k + m` locations each, no stripe
    /// twice, and none referenced by a record other than one `allowed` (the record the
    /// command replaces, for a retried command).
    pub(crate) fn check_new_stripes(
        &self,
        codec: CodecParams,
        stripes: &[StripeRecord],
        allowed: impl Fn(&StripeOwner) -> bool,
    ) -> Result<(), Fail> {
        codec
            .validate()
            .map_err(|e| Reason::InvalidArgument(format!("erasure code: {e}")))?;
        let mut seen = BTreeSet::new();
        for s in stripes {
            if s.placement.len() != codec.total_fragments() {
                return Err(Reason::InvalidArgument(format!(
                    "stripe {} has {} locations, {codec} needs {}",
                    s.id,
                    s.placement.len(),
                    codec.total_fragments()
                ))
                .into());
            }
            if !seen.insert(s.id) {
                return Err(
                    Reason::InvalidArgument(format!("stripe {} listed twice", s.id)).into(),
                );
            }
            let owner: Option<StripeOwner> =
                tables::get(&self.t.stripes, tables::STRIPES_NAME, &s.id.to_bytes())?;
            if owner.is_some_and(|o| !allowed(&o)) {
                return Err(Reason::StripeInUse(s.id).into());
            }
            if self.queued_for_gc(s)? {
                return Err(Reason::StripeInUse(s.id).into());
            }
        }
        Ok(())
    }

    /// Whether a fragment of `s` at its location in `s.placement` waits in the GC queue
    /// or was deleted by the GC (a tombstone in `sm_collected`): a stripe released by an
    /// overwrite, delete or abort, or a fragment repair moved away. A command bringing it — a delayed duplicate of the write that first
    /// stored it — must not reference it again: the GC worker would delete it.
    fn queued_for_gc(&self, s: &StripeRecord) -> Result<bool, ApplyError> {
        let prefix = s.id.to_bytes();
        let end = keys::prefix_successor(&prefix);
        let queued = tables::rows_in(&self.t.gc_by_stripe, &prefix, end.as_deref())?;
        let collected = tables::rows_in(&self.t.collected, &prefix, end.as_deref())?;
        for (_, value) in queued.into_iter().chain(collected) {
            let queued: Vec<GcFragment> = tables::decode(tables::GC_BY_STRIPE_NAME, &value)?;
            if queued.iter().any(|q| {
                s.placement
                    .get(usize::from(q.index))
                    .is_some_and(|loc| *loc == q.location)
            }) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    // ---- buckets ----

    fn create_bucket(
        &mut self,
        name: &str,
        owner: &str,
        created_ms: u64,
        versioning: Versioning,
    ) -> Handled {
        if name.is_empty() || name.contains('\0') {
            return Err(Reason::InvalidBucketName.into());
        }
        if let Some(existing) = self.bucket(name)? {
            return Err(if existing.owner == owner {
                Reason::BucketAlreadyOwnedByYou
            } else {
                Reason::BucketAlreadyExists
            }
            .into());
        }
        let rec = BucketRecord {
            name: name.to_owned(),
            owner: owner.to_owned(),
            created_ms,
            versioning,
        };
        self.put(Tbl::Buckets, name.as_bytes(), &rec)?;
        Ok(Response::BucketCreated)
    }

    fn delete_bucket(&mut self, name: &str) -> Handled {
        self.require_bucket(name)?;
        let (start, end) = keys::bucket_range(name);
        if tables::first_in(&self.t.versions, &start, &end)?.is_some() {
            return Err(Reason::BucketNotEmpty.into());
        }
        let uploads = tables::rows_in(&self.t.uploads, &start, Some(&end))?;
        let mut aborted = 0u32;
        for (uk, value) in uploads {
            let upload = tables::decode(tables::UPLOADS_NAME, &value)?;
            self.drop_upload(&uk, &upload)?;
            aborted += 1;
        }
        self.del(Tbl::Buckets, name.as_bytes())?;
        Ok(Response::BucketDeleted {
            aborted_uploads: aborted,
        })
    }

    fn set_versioning(&mut self, name: &str, versioning: Versioning) -> Handled {
        let mut rec = self.require_bucket(name)?;
        if versioning == Versioning::Unversioned {
            return Err(Reason::InvalidArgument(
                "versioning can only be set to Enabled or Suspended".to_owned(),
            )
            .into());
        }
        rec.versioning = versioning;
        self.put(Tbl::Buckets, name.as_bytes(), &rec)?;
        Ok(Response::VersioningSet)
    }

    // ---- objects ----

    fn put_object(&mut self, c: &PutObject) -> Handled {
        /// `created_ms`, or with the planted `ApplyReadsClock` bug (simulation only)
        /// this replica's clock at apply: replicas then store different records.
        fn planted_apply_time(created_ms: u64) -> u64 {
            if common::env::planted::active(common::env::planted::Bug::ApplyReadsClock) {
                return common::env::Clock::new().unix_ms();
            }
            created_ms
        }
        let bucket = self.require_bucket(&c.bucket)?;
        check_key(&c.key)?;
        if matches!(c.body, ObjectBody::Multipart { .. }) {
            return Err(Reason::InvalidArgument(
                "a multipart body comes only from completing an upload".to_owned(),
            )
            .into());
        }
        if c.body.data_len() != c.size {
            return Err(Reason::InvalidArgument(format!(
                "size {} differs from the body's {} bytes",
                c.size,
                c.body.data_len()
            ))
            .into());
        }
        let ok = keys::object_key(&c.bucket, &c.key);
        let draft = VersionRecord {
            bucket: c.bucket.clone(),
            key: c.key.clone(),
            version_id: c.version_id.clone(),
            seq: self.log_index,
            created_ms: planted_apply_time(c.created_ms),
            owner: c.owner.clone(),
            size: c.size,
            etag: c.etag.clone(),
            checksums: c.checksums.clone(),
            meta: c.meta.clone(),
            body: c.body.clone(),
            is_delete_marker: false,
        };
        let (record, replaced) = match self.plan_commit(&bucket, &ok, draft, &c.preconditions)? {
            CommitPlan::AlreadyCommitted(response) => return Ok(response),
            CommitPlan::Commit { record, replaced } => (record, replaced),
        };
        if let ObjectBody::Stripes { codec, stripes } = &record.body {
            let replaced_seq = replaced.as_ref().map(|r| r.seq);
            self.check_new_stripes(*codec, stripes, |owner| {
                matches!(owner, StripeOwner::Version { bucket, key, seq, .. }
                    if *bucket == c.bucket && *key == c.key && Some(*seq) == replaced_seq)
            })?;
        }
        self.execute_commit(record, replaced)
    }

    fn delete_object(&mut self, c: &DeleteObject) -> Handled {
        let bucket = self.require_bucket(&c.bucket)?;
        check_key(&c.key)?;
        let ok = keys::object_key(&c.bucket, &c.key);
        let current = tables::newest_version(&self.t.versions, &ok)?;
        if let Some(version_id) = &c.version_id {
            let Some(rec) = self.version(&ok, version_id)? else {
                return Err(Reason::NoSuchVersion.into());
            };
            check_preconditions(current.as_ref(), &c.preconditions)?;
            self.remove_version(&rec, &BTreeSet::new())?;
            return Ok(Response::Deleted {
                version_id: Some(rec.version_id),
                delete_marker: rec.is_delete_marker,
            });
        }
        let marker = |version_id: &str| VersionRecord {
            bucket: c.bucket.clone(),
            key: c.key.clone(),
            version_id: version_id.to_owned(),
            seq: self.log_index,
            created_ms: c.created_ms,
            owner: c.owner.clone(),
            size: 0,
            etag: String::new(),
            checksums: Default::default(),
            meta: Default::default(),
            body: ObjectBody::Inline(Vec::new()),
            is_delete_marker: true,
        };
        match bucket.versioning {
            Versioning::Unversioned => {
                check_preconditions(current.as_ref(), &c.preconditions)?;
                if let Some(rec) = self.version(&ok, NULL_VERSION_ID)? {
                    self.remove_version(&rec, &BTreeSet::new())?;
                }
                Ok(Response::Deleted {
                    version_id: None,
                    delete_marker: false,
                })
            }
            Versioning::Enabled => {
                check_version_id(&c.marker_version_id)?;
                if let Some(existing) = self.version(&ok, &c.marker_version_id)? {
                    // A retried command finds its marker; anything else is a clash.
                    if !existing.is_delete_marker {
                        return Err(Reason::VersionIdConflict.into());
                    }
                } else {
                    check_preconditions(current.as_ref(), &c.preconditions)?;
                    self.insert_version(&marker(&c.marker_version_id))?;
                }
                Ok(Response::Deleted {
                    version_id: Some(c.marker_version_id.clone()),
                    delete_marker: true,
                })
            }
            Versioning::Suspended => {
                check_preconditions(current.as_ref(), &c.preconditions)?;
                let record = marker(NULL_VERSION_ID);
                if let Some(old) = self.version(&ok, NULL_VERSION_ID)? {
                    self.remove_version(&old, &BTreeSet::new())?;
                }
                self.insert_version(&record)?;
                Ok(Response::Deleted {
                    version_id: Some(NULL_VERSION_ID.to_owned()),
                    delete_marker: true,
                })
            }
        }
    }

    fn replace_placement(&mut self, c: &ReplacePlacement) -> Handled {
        let stripe_key = c.stripe.to_bytes();
        let owner: StripeOwner = tables::get(&self.t.stripes, tables::STRIPES_NAME, &stripe_key)?
            .ok_or(Reason::NoSuchStripe(c.stripe))?;
        if c.new.len() != c.expected.len() {
            return Err(Reason::InvalidArgument(format!(
                "the new placement has {} locations, the stripe has {}",
                c.new.len(),
                c.expected.len()
            ))
            .into());
        }
        self.check_not_queued_for_gc(c)?;
        let corrupt = |table: &'static str| ApplyError::Corrupt {
            table,
            detail: format!(
                "stripe {} is indexed but not in its owner {owner:?}",
                c.stripe
            ),
        };
        let moved: Vec<GcFragment> = match &owner {
            StripeOwner::Version {
                bucket, key, seq, ..
            } => {
                let vk = keys::version_key(&keys::object_key(bucket, key), *seq);
                let mut rec: VersionRecord =
                    tables::get(&self.t.versions, tables::VERSIONS_NAME, &vk)?
                        .ok_or_else(|| corrupt(tables::VERSIONS_NAME))?;
                let stripe = rec
                    .body
                    .stripe_mut(c.stripe)
                    .ok_or_else(|| corrupt(tables::VERSIONS_NAME))?;
                let moved = moved_fragments(&stripe.placement, c)?;
                stripe.placement = c.new.clone();
                if !moved.is_empty() {
                    self.put(Tbl::Versions, &vk, &rec)?;
                }
                moved
            }
            StripeOwner::Part {
                upload_id,
                part_number,
            } => {
                let pk = keys::part_key(upload_id, *part_number);
                let mut rec: super::multipart::PartRecord =
                    tables::get(&self.t.parts, tables::PARTS_NAME, &pk)?
                        .ok_or_else(|| corrupt(tables::PARTS_NAME))?;
                let stripe = rec
                    .stripes
                    .iter_mut()
                    .find(|s| s.id == c.stripe)
                    .ok_or_else(|| corrupt(tables::PARTS_NAME))?;
                let moved = moved_fragments(&stripe.placement, c)?;
                stripe.placement = c.new.clone();
                if !moved.is_empty() {
                    self.put(Tbl::Parts, &pk, &rec)?;
                }
                moved
            }
        };
        let count = moved.len() as u32;
        self.queue_gc(c.stripe, moved)?;
        Ok(Response::PlacementReplaced { moved: count })
    }

    /// Refuses a `new` placement that puts fragment `i` back on a location whose old copy
    /// of the same stripe and index still waits in the GC queue: the GC worker would
    /// delete the new copy (it names fragments by stripe, index and location).
    fn check_not_queued_for_gc(&self, c: &ReplacePlacement) -> Result<(), Fail> {
        let changed: Vec<(u8, FragmentLocation)> = (0u8..)
            .zip(c.expected.iter().zip(&c.new))
            .filter(|(_, (old, new))| old != new)
            .map(|(i, (_, new))| (i, *new))
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let prefix = c.stripe.to_bytes();
        let end = keys::prefix_successor(&prefix);
        for (_, value) in tables::rows_in(&self.t.gc_by_stripe, &prefix, end.as_deref())? {
            let queued: Vec<GcFragment> = tables::decode(tables::GC_BY_STRIPE_NAME, &value)?;
            if let Some((i, loc)) = changed
                .iter()
                .find(|(i, loc)| queued.iter().any(|q| q.index == *i && q.location == *loc))
            {
                return Err(Reason::InvalidArgument(format!(
                    "fragment {i} of stripe {} cannot go to {loc}: its old copy there is still \
                     queued for deletion",
                    c.stripe
                ))
                .into());
            }
        }
        Ok(())
    }

    fn gc_ack(&mut self, ids: &[GcId], at_ms: u64) -> Handled {
        let mut removed = 0u32;
        for id in ids {
            let entry: Option<GcEntry> =
                tables::get(&self.t.gc, tables::GC_NAME, &keys::gc_key(*id))?;
            if let Some(entry) = entry {
                let key = keys::gc_stripe_key(entry.stripe, *id);
                self.del(Tbl::Gc, &keys::gc_key(*id))?;
                self.del(Tbl::GcByStripe, &key)?;
                // The tombstone: a delayed duplicate of the write that stored these
                // fragments must find them gone (`queued_for_gc`), not re-reference them.
                self.put(Tbl::Collected, &key, &entry.fragments)?;
                self.put(
                    Tbl::CollectedByTime,
                    &keys::collected_time_key(at_ms, &key),
                    &(),
                )?;
                removed += 1;
            }
        }
        self.prune_collected(at_ms)?;
        Ok(Response::GcAcked { removed })
    }

    /// Drops tombstones acknowledged more than [`COLLECTED_RETENTION_MS`] before `at_ms`
    /// (at most [`COLLECTED_PRUNE_MAX`] per command, oldest first). A duplicate cannot
    /// arrive that late: proposals are retried for seconds, and a request delayed in the
    /// network that long has been given up by every transport.
    fn prune_collected(&mut self, at_ms: u64) -> Result<(), ApplyError> {
        let Some(before) = at_ms.checked_sub(COLLECTED_RETENTION_MS) else {
            return Ok(());
        };
        let end = keys::collected_time_bound(before);
        let rows = tables::rows_up_to(
            &self.t.collected_by_time,
            &[],
            Some(&end),
            COLLECTED_PRUNE_MAX,
        )?;
        for (k, _) in rows {
            self.del(Tbl::CollectedByTime, &k)?;
            self.del(Tbl::Collected, &k[8..])?;
        }
        Ok(())
    }
}

/// The fragments `c` moves away from `current` (their old locations), after checking
/// `current` is what `c` expects.
fn moved_fragments(
    current: &[common::cluster::FragmentLocation],
    c: &ReplacePlacement,
) -> Result<Vec<GcFragment>, Fail> {
    if current != c.expected.as_slice() {
        return Err(Reason::PlacementMismatch.into());
    }
    Ok((0u8..)
        .zip(current.iter().zip(&c.new))
        .filter(|(_, (old, new))| old != new)
        .map(|(index, (old, _))| GcFragment {
            index,
            location: *old,
        })
        .collect())
}

/// Keys are 1..=1024 bytes.
pub(crate) fn check_key(key: &str) -> Result<(), Reason> {
    if key.is_empty() {
        return Err(Reason::InvalidArgument("the key is empty".to_owned()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Reason::KeyTooLong);
    }
    Ok(())
}

/// A proposed version id for a versioning-enabled bucket: not empty, not `"null"`.
fn check_version_id(version_id: &str) -> Result<(), Reason> {
    if version_id.is_empty() || version_id == NULL_VERSION_ID {
        return Err(Reason::InvalidArgument(format!(
            "invalid proposed version id {version_id:?}"
        )));
    }
    Ok(())
}

/// An ETag as a client may send it: without surrounding quotes.
pub(crate) fn bare_etag(etag: &str) -> &str {
    etag.trim_matches('"')
}

/// Whether `existing` is the version `draft` would create: the same write applied
/// before (a retry). Stripe bodies are unique per write (fresh stripe ids; repair may
/// have moved fragments since, so placements are not compared); an inline
/// body also matches on creation time, owner, metadata and checksums, so only a
/// byte-identical write by the same user in the same millisecond — which leaves the same
/// object — could be taken for a retry.
fn same_write(existing: &VersionRecord, draft: &VersionRecord) -> bool {
    !existing.is_delete_marker
        && existing.version_id == draft.version_id
        && existing.body.same_data(&draft.body)
        && existing.etag == draft.etag
        && existing.size == draft.size
        && existing.created_ms == draft.created_ms
        && existing.owner == draft.owner
        && existing.meta == draft.meta
        && existing.checksums == draft.checksums
}

/// Checks preconditions against the object's current (newest) version.
pub(crate) fn check_preconditions(
    current: Option<&VersionRecord>,
    preconditions: &[Precondition],
) -> Result<(), Reason> {
    let object = current.filter(|c| !c.is_delete_marker);
    for p in preconditions {
        match p {
            Precondition::KeyAbsent => {
                if object.is_some() {
                    return Err(Reason::PreconditionFailed);
                }
            }
            Precondition::CurrentEtagEquals(etag) => {
                let Some(obj) = object else {
                    return Err(Reason::NoSuchKey);
                };
                let want = bare_etag(etag);
                if want != "*" && want != obj.etag {
                    return Err(Reason::PreconditionFailed);
                }
            }
            Precondition::CurrentVersionEquals(v) => {
                if current.map(|c| c.version_id.as_str()) != Some(v.as_str()) {
                    return Err(Reason::PreconditionFailed);
                }
            }
        }
    }
    Ok(())
}
