//! `RedbLogStore`: a Raft group's log, vote and commit index in redb (on the `Disk` seam
//! through `redb_disk`, so simulated crashes lose unsynced log writes as power loss
//! would).
//!
//! Every `append` is one redb write transaction committed with `Durability::Immediate`
//! before the flush callback fires: openraft batches the entries it hands us, so one
//! fsync covers the whole batch (group commit). The store is generic over the group's
//! type config so openraft's storage `Suite` can run against it with a test config.
//!
//! Transactions never span an `await`: each runs to completion inside one
//! `spawn_blocking` closure, so under madsim's single thread no two writers ever wait on
//! each other.

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::alias::{LogIdOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, RaftTypeConfig};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_PURGED: &str = "last_purged";

pub(crate) fn io_err(verb: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("raft log store: {verb}: {e}"))
}

pub(crate) fn encode<T: Serialize>(v: &T) -> io::Result<Vec<u8>> {
    postcard::to_allocvec(v).map_err(|e| io_err("encoding", e))
}

pub(crate) fn decode<T: DeserializeOwned>(b: &[u8]) -> io::Result<T> {
    postcard::from_bytes(b).map_err(|e| io_err("decoding", e))
}

/// Runs a blocking redb closure off the executor and flattens the join error.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    match common::env::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(io_err("storage task", e)),
    }
}

pub struct RedbLogStore<C> {
    db: Arc<Database>,
    _c: PhantomData<fn() -> C>,
}

impl<C> Clone for RedbLogStore<C> {
    fn clone(&self) -> Self {
        Self {
            db: Arc::clone(&self.db),
            _c: PhantomData,
        }
    }
}

impl<C> Debug for RedbLogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbLogStore").finish_non_exhaustive()
    }
}

impl<C> RedbLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    VoteOf<C>: Serialize + DeserializeOwned,
    LogIdOf<C>: Serialize + DeserializeOwned,
{
    /// Wraps an open database, creating the tables if they are missing.
    pub fn new(db: Arc<Database>) -> io::Result<Self> {
        let txn = crate::redb_disk::begin_write(&db).map_err(|e| io_err("begin", e))?;
        txn.open_table(LOG).map_err(|e| io_err("open log", e))?;
        txn.open_table(META).map_err(|e| io_err("open meta", e))?;
        txn.commit().map_err(|e| io_err("commit", e))?;
        Ok(Self {
            db,
            _c: PhantomData,
        })
    }

    fn read_meta<T: DeserializeOwned>(db: &Database, key: &str) -> io::Result<Option<T>> {
        let txn = db.begin_read().map_err(|e| io_err("begin read", e))?;
        let table = txn.open_table(META).map_err(|e| io_err("open meta", e))?;
        match table.get(key).map_err(|e| io_err("read meta", e))? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    fn write_meta<T: Serialize>(db: &Database, key: &str, value: &T) -> io::Result<()> {
        let bytes = encode(value)?;
        let txn = crate::redb_disk::begin_write(db).map_err(|e| io_err("begin", e))?;
        {
            let mut table = txn.open_table(META).map_err(|e| io_err("open meta", e))?;
            table
                .insert(key, bytes.as_slice())
                .map_err(|e| io_err("write meta", e))?;
        }
        txn.commit().map_err(|e| io_err("commit meta", e))
    }

    fn entries(db: &Database, start: Bound<u64>, end: Bound<u64>) -> io::Result<Vec<C::Entry>> {
        let txn = db.begin_read().map_err(|e| io_err("begin read", e))?;
        let table = txn.open_table(LOG).map_err(|e| io_err("open log", e))?;
        let mut out = Vec::new();
        for item in table
            .range::<u64>((start, end))
            .map_err(|e| io_err("range", e))?
        {
            let (k, v) = item.map_err(|e| io_err("iterate", e))?;
            let entry: C::Entry = decode(v.value())?;
            assert_eq!(
                entry.index(),
                k.value(),
                "log entry stored under the wrong index"
            );
            out.push(entry);
        }
        Ok(out)
    }
}

fn owned_bounds<RB: RangeBounds<u64>>(range: &RB) -> (Bound<u64>, Bound<u64>) {
    (range.start_bound().cloned(), range.end_bound().cloned())
}

impl<C> RaftLogReader<C> for RedbLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    VoteOf<C>: Serialize + DeserializeOwned,
    LogIdOf<C>: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, io::Error> {
        let (start, end) = owned_bounds(&range);
        let db = Arc::clone(&self.db);
        blocking(move || Self::entries(&db, start, end)).await
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        let db = Arc::clone(&self.db);
        blocking(move || Self::read_meta(&db, KEY_VOTE)).await
    }
}

impl<C> RaftLogStorage<C> for RedbLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    VoteOf<C>: Serialize + DeserializeOwned,
    LogIdOf<C>: Serialize + DeserializeOwned,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let db = Arc::clone(&self.db);
        blocking(move || {
            let purged: Option<LogIdOf<C>> = Self::read_meta(&db, KEY_PURGED)?;
            let txn = db.begin_read().map_err(|e| io_err("begin read", e))?;
            let table = txn.open_table(LOG).map_err(|e| io_err("open log", e))?;
            let last = match table.last().map_err(|e| io_err("last", e))? {
                Some((_, v)) => Some(decode::<C::Entry>(v.value())?.log_id()),
                None => purged.clone(),
            };
            Ok(LogState {
                last_purged_log_id: purged,
                last_log_id: last,
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        let db = Arc::clone(&self.db);
        let vote = vote.clone();
        blocking(move || Self::write_meta(&db, KEY_VOTE, &vote)).await
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let db = Arc::clone(&self.db);
        blocking(move || Self::write_meta(&db, KEY_COMMITTED, &committed)).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        let db = Arc::clone(&self.db);
        blocking(move || Ok(Self::read_meta::<Option<LogIdOf<C>>>(&db, KEY_COMMITTED)?.flatten()))
            .await
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        for e in entries {
            encoded.push((e.index(), encode(&e)?));
        }
        let db = Arc::clone(&self.db);
        let res = blocking(move || {
            let txn = crate::redb_disk::begin_write(&db).map_err(|e| io_err("begin", e))?;
            {
                let mut table = txn.open_table(LOG).map_err(|e| io_err("open log", e))?;
                let mut previous: Option<u64> = None;
                for (index, bytes) in &encoded {
                    if let Some(p) = previous {
                        assert_eq!(*index, p + 1, "appended entries must be consecutive");
                    }
                    previous = Some(*index);
                    table
                        .insert(*index, bytes.as_slice())
                        .map_err(|e| io_err("append", e))?;
                }
            }
            // One durable commit (one fsync) for the whole batch.
            txn.commit().map_err(|e| io_err("commit append", e))
        })
        .await;
        match res {
            Ok(()) => {
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |l| l.index() + 1);
        let db = Arc::clone(&self.db);
        blocking(move || {
            let txn = crate::redb_disk::begin_write(&db).map_err(|e| io_err("begin", e))?;
            {
                let mut table = txn.open_table(LOG).map_err(|e| io_err("open log", e))?;
                table
                    .retain_in::<u64, _>(from.., |_, _| false)
                    .map_err(|e| io_err("truncate", e))?;
            }
            txn.commit().map_err(|e| io_err("commit truncate", e))
        })
        .await
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        let db = Arc::clone(&self.db);
        blocking(move || {
            let previous: Option<LogIdOf<C>> = Self::read_meta(&db, KEY_PURGED)?;
            assert!(
                previous.as_ref() <= Some(&log_id),
                "purge must not move backwards"
            );
            let upto = log_id.index();
            let bytes = encode(&log_id)?;
            let txn = crate::redb_disk::begin_write(&db).map_err(|e| io_err("begin", e))?;
            {
                let mut meta = txn.open_table(META).map_err(|e| io_err("open meta", e))?;
                meta.insert(KEY_PURGED, bytes.as_slice())
                    .map_err(|e| io_err("write purged", e))?;
                let mut table = txn.open_table(LOG).map_err(|e| io_err("open log", e))?;
                table
                    .retain_in::<u64, _>(..=upto, |_, _| false)
                    .map_err(|e| io_err("purge", e))?;
            }
            txn.commit().map_err(|e| io_err("commit purge", e))
        })
        .await
    }
}
