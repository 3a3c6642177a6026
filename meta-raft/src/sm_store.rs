//! `RedbStateMachine`: a group's state machine in its own redb database. What a command
//! *does* is supplied by a `GroupLogic` (pure: state + entry → new state + response);
//! this file handles what openraft needs around it — applied index, membership,
//! snapshots — and makes each apply batch one durable transaction (one fsync).
//!
//! Architecture invariant: apply is deterministic. The applied log id and membership are
//! written in the same transaction as the effects of the entries, so a crash can never
//! separate "applied" from "what was applied".
//!
//! Snapshots serialise every table of the database (all are `&[u8] -> &[u8]`). The image
//! travels to followers in chunks (`snapshot_transfer.rs`), but it is built and installed
//! in memory, which bounds a group's state machine to what one process can hold
//! (`SNAPSHOT_BYTES_MAX`); writing it to a file would lift that.

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::{Stream, TryStreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{OptionalSend, RaftTypeConfig, StoredMembership};
use redb::{
    Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle, WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::log_store::{blocking, decode, encode, io_err};

/// The state machine's own bookkeeping table (part of every snapshot).
const SM_META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sm_meta");
const KEY_APPLIED: &[u8] = b"applied";
const KEY_MEMBERSHIP: &[u8] = b"membership";

/// What a group's commands do. Implementations must be deterministic: the same state
/// and entry always give the same effects and response.
pub trait GroupLogic<C: RaftTypeConfig>: Send + Sync + 'static {
    /// Applies one entry inside `txn`. Blank and membership entries get a default
    /// response; only normal entries carry commands.
    fn apply(txn: &WriteTransaction, entry: &C::Entry) -> io::Result<C::R>;
}

/// One table's rows, in key order.
type TableRows = Vec<(Vec<u8>, Vec<u8>)>;

/// A serialised state machine: every table's rows, in table-name and key order.
#[derive(Serialize, Deserialize)]
struct SnapshotImage {
    tables: Vec<(String, TableRows)>,
}

pub struct RedbStateMachine<C: RaftTypeConfig, L> {
    db: Arc<Database>,
    _l: PhantomData<fn() -> (C, L)>,
}

impl<C: RaftTypeConfig, L> Clone for RedbStateMachine<C, L> {
    fn clone(&self) -> Self {
        Self {
            db: Arc::clone(&self.db),
            _l: PhantomData,
        }
    }
}

impl<C: RaftTypeConfig, L> Debug for RedbStateMachine<C, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStateMachine").finish_non_exhaustive()
    }
}

impl<C, L> RedbStateMachine<C, L>
where
    C: RaftTypeConfig,
    C::R: Default,
    LogIdOf<C>: Serialize + DeserializeOwned,
    StoredMembershipOf<C>: Serialize + DeserializeOwned,
    L: GroupLogic<C>,
{
    pub fn new(db: Arc<Database>) -> io::Result<Self> {
        let txn = crate::redb_disk::begin_write(&db).map_err(|e| io_err("begin", e))?;
        txn.open_table(SM_META)
            .map_err(|e| io_err("open sm meta", e))?;
        txn.commit().map_err(|e| io_err("commit", e))?;
        Ok(Self {
            db,
            _l: PhantomData,
        })
    }

    /// The database, for queries (read transactions only).
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    fn applied(db: &Database) -> io::Result<(Option<LogIdOf<C>>, StoredMembershipOf<C>)> {
        let txn = db.begin_read().map_err(|e| io_err("begin read", e))?;
        Self::applied_in(&txn)
    }

    fn applied_in(
        txn: &redb::ReadTransaction,
    ) -> io::Result<(Option<LogIdOf<C>>, StoredMembershipOf<C>)> {
        let meta = txn
            .open_table(SM_META)
            .map_err(|e| io_err("open sm meta", e))?;
        let applied = match meta.get(KEY_APPLIED).map_err(|e| io_err("read", e))? {
            Some(v) => decode(v.value())?,
            None => None,
        };
        let membership = match meta.get(KEY_MEMBERSHIP).map_err(|e| io_err("read", e))? {
            Some(v) => decode(v.value())?,
            None => StoredMembership::default(),
        };
        Ok((applied, membership))
    }

    /// A snapshot of the state machine as it is now: applied log id, membership and
    /// every table, all from one read transaction. Snapshots are not kept in memory
    /// between uses (an image is as large as the group's metadata, and every replica of
    /// every group would hold one): `get_current_snapshot` builds a fresh one from redb,
    /// which is durable and already holds everything up to the applied log id.
    fn snapshot_now(db: &Database) -> io::Result<SnapshotOf<C, Vec<u8>>> {
        let txn = db.begin_read().map_err(|e| io_err("begin read", e))?;
        let (applied, membership) = Self::applied_in(&txn)?;
        let image = Self::image_in(&txn)?;
        Ok(SnapshotOf::<C, Vec<u8>> {
            meta: SnapshotMetaOf::<C> {
                last_log_id: applied,
                last_membership: membership,
            },
            snapshot: image,
        })
    }

    fn image_in(txn: &redb::ReadTransaction) -> io::Result<Vec<u8>> {
        let mut names: Vec<String> = txn
            .list_tables()
            .map_err(|e| io_err("list tables", e))?
            .map(|h| h.name().to_string())
            .collect();
        names.sort();
        let mut tables = Vec::with_capacity(names.len());
        for name in names {
            let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(&name);
            let table = txn.open_table(def).map_err(|e| io_err("open table", e))?;
            let mut rows = Vec::new();
            for item in table.iter().map_err(|e| io_err("iterate", e))? {
                let (k, v) = item.map_err(|e| io_err("iterate", e))?;
                rows.push((k.value().to_vec(), v.value().to_vec()));
            }
            tables.push((name, rows));
        }
        encode(&SnapshotImage { tables })
    }

    fn install(db: &Database, image: &[u8]) -> io::Result<()> {
        let image: SnapshotImage = decode(image)?;
        let txn = crate::redb_disk::begin_write(db).map_err(|e| io_err("begin", e))?;
        let existing: Vec<String> = txn
            .list_tables()
            .map_err(|e| io_err("list tables", e))?
            .map(|h| h.name().to_string())
            .collect();
        for name in existing {
            let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(&name);
            txn.delete_table(def)
                .map_err(|e| io_err("delete table", e))?;
        }
        for (name, rows) in &image.tables {
            let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(name);
            let mut table = txn.open_table(def).map_err(|e| io_err("open table", e))?;
            for (k, v) in rows {
                table
                    .insert(k.as_slice(), v.as_slice())
                    .map_err(|e| io_err("insert", e))?;
            }
        }
        txn.open_table(SM_META)
            .map_err(|e| io_err("open sm meta", e))?;
        txn.commit().map_err(|e| io_err("commit install", e))
    }
}

impl<C, L> RaftSnapshotBuilder<C> for RedbStateMachine<C, L>
where
    C: RaftTypeConfig,
    C::R: Default,
    LogIdOf<C>: Serialize + DeserializeOwned,
    StoredMembershipOf<C>: Serialize + DeserializeOwned,
    L: GroupLogic<C>,
{
    type SnapshotData = Vec<u8>;

    /// Building a snapshot only records how far the durable state machine reaches (its
    /// applied log id and membership, read in one transaction: openraft builds
    /// concurrently with apply), so openraft may purge the log up to there. The image is
    /// not materialised here — openraft uses only the meta of a built snapshot — but by
    /// `get_current_snapshot`, when a lagging follower needs it. Log compaction therefore
    /// costs O(1) memory instead of a copy of the group's whole metadata every few
    /// thousand commands.
    async fn build_snapshot(&mut self) -> Result<SnapshotOf<C, Vec<u8>>, io::Error> {
        let db = Arc::clone(&self.db);
        blocking(move || {
            let txn = db.begin_read().map_err(|e| io_err("begin read", e))?;
            let (applied, membership) = Self::applied_in(&txn)?;
            Ok(SnapshotOf::<C, Vec<u8>> {
                meta: SnapshotMetaOf::<C> {
                    last_log_id: applied,
                    last_membership: membership,
                },
                snapshot: Vec::new(),
            })
        })
        .await
    }
}

impl<C, L> RaftStateMachine<C> for RedbStateMachine<C, L>
where
    C: RaftTypeConfig,
    C::R: Default,
    LogIdOf<C>: Serialize + DeserializeOwned,
    StoredMembershipOf<C>: Serialize + DeserializeOwned,
    L: GroupLogic<C>,
{
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<C>>, StoredMembershipOf<C>), io::Error> {
        let db = Arc::clone(&self.db);
        blocking(move || Self::applied(&db)).await
    }

    async fn apply<Strm>(&mut self, entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<C>, io::Error>> + Unpin + OptionalSend,
    {
        let batch: Vec<EntryResponder<C>> = entries.try_collect().await?;
        if batch.is_empty() {
            return Ok(());
        }
        let db = Arc::clone(&self.db);
        let (entries, responders): (Vec<C::Entry>, Vec<_>) = batch.into_iter().unzip();
        let responses = blocking(move || {
            let (mut applied, mut membership) = Self::applied(&db)?;
            let txn = crate::redb_disk::begin_write(&db).map_err(|e| io_err("begin", e))?;
            let mut responses = Vec::with_capacity(entries.len());
            for entry in &entries {
                let log_id = entry.log_id();
                assert!(
                    applied.as_ref() < Some(&log_id),
                    "applying log id {log_id} at or below the applied one"
                );
                if let Some(m) = entry.get_membership() {
                    membership = StoredMembership::new(Some(log_id.clone()), m);
                }
                responses.push(L::apply(&txn, entry)?);
                applied = Some(log_id);
            }
            {
                let mut meta = txn
                    .open_table(SM_META)
                    .map_err(|e| io_err("open sm meta", e))?;
                meta.insert(KEY_APPLIED, encode(&applied)?.as_slice())
                    .map_err(|e| io_err("write applied", e))?;
                meta.insert(KEY_MEMBERSHIP, encode(&membership)?.as_slice())
                    .map_err(|e| io_err("write membership", e))?;
            }
            txn.commit().map_err(|e| io_err("commit apply", e))?;
            Ok(responses)
        })
        .await?;
        for (responder, response) in responders.into_iter().zip(responses) {
            if let Some(r) = responder {
                r.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<C>,
        snapshot: Vec<u8>,
    ) -> Result<(), io::Error> {
        let db = Arc::clone(&self.db);
        let image = snapshot;
        let applied = meta.last_log_id.clone();
        let membership = meta.last_membership.clone();
        blocking(move || {
            Self::install(&db, &image)?;
            let txn = crate::redb_disk::begin_write(&db).map_err(|e| io_err("begin", e))?;
            {
                let mut t = txn
                    .open_table(SM_META)
                    .map_err(|e| io_err("open sm meta", e))?;
                t.insert(KEY_APPLIED, encode(&applied)?.as_slice())
                    .map_err(|e| io_err("write applied", e))?;
                t.insert(KEY_MEMBERSHIP, encode(&membership)?.as_slice())
                    .map_err(|e| io_err("write membership", e))?;
            }
            txn.commit().map_err(|e| io_err("commit", e))
        })
        .await?;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<C, Vec<u8>>>, io::Error> {
        let db = Arc::clone(&self.db);
        let snap = blocking(move || Self::snapshot_now(&db)).await?;
        Ok(snap.meta.last_log_id.is_some().then_some(snap))
    }
}
