//! openraft's storage conformance `Suite` against `RedbLogStore` + `RedbStateMachine`,
//! with a small key-value `GroupLogic` as the test state machine.

use std::io;
use std::sync::Arc;

use openraft::testing::log::{StoreBuilder, Suite};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, StorageError};
use redb::{TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::log_store::{io_err, RedbLogStore};
use crate::runtime::ShaleRuntime;
use crate::sm_store::{GroupLogic, RedbStateMachine};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Set {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous(pub Option<String>);

impl std::fmt::Display for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "set {}={}", self.key, self.value)
    }
}

impl std::fmt::Display for Previous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

openraft::declare_raft_types!(
    pub TestConfig:
        D = Set,
        R = Previous,
        AsyncRuntime = ShaleRuntime,
);

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

pub struct KvLogic;

impl GroupLogic<TestConfig> for KvLogic {
    fn apply(
        txn: &WriteTransaction,
        entry: &<TestConfig as openraft::RaftTypeConfig>::Entry,
    ) -> io::Result<Previous> {
        let EntryPayload::Normal(set) = &entry.payload else {
            return Ok(Previous::default());
        };
        let mut t = txn.open_table(KV).map_err(|e| io_err("open kv", e))?;
        let old = t
            .insert(set.key.as_bytes(), set.value.as_bytes())
            .map_err(|e| io_err("insert", e))?
            .map(|v| String::from_utf8_lossy(v.value()).into_owned());
        Ok(Previous(old))
    }
}

type Log = RedbLogStore<TestConfig>;
type Sm = RedbStateMachine<TestConfig, KvLogic>;

pub(crate) fn memory_db() -> Arc<redb::Database> {
    Arc::new(
        redb::Builder::new()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("in-memory redb"),
    )
}

struct MemoryBuilder;

impl StoreBuilder<TestConfig, Log, Sm> for MemoryBuilder {
    async fn build(&self) -> Result<((), Log, Sm), StorageError<TestConfig>> {
        let err = |e| StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Read, e);
        let log = Log::new(memory_db()).map_err(err)?;
        let sm = Sm::new(memory_db()).map_err(err)?;
        Ok(((), log, sm))
    }
}

/// Each build gets fresh databases through the `Disk` seam (the adapter production uses).
struct DiskBuilder {
    disk: Arc<dyn common::env::Disk>,
    next: std::sync::atomic::AtomicU64,
}

impl DiskBuilder {
    fn db(&self, what: &str) -> io::Result<Arc<redb::Database>> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::redb_disk::open_database(&self.disk, &format!("suite/{n}/{what}.redb"))
            .map(Arc::new)
            .map_err(|e| io::Error::other(e.to_string()))
    }
}

impl StoreBuilder<TestConfig, Log, Sm> for DiskBuilder {
    async fn build(&self) -> Result<((), Log, Sm), StorageError<TestConfig>> {
        let err = |e| StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Read, e);
        let log = Log::new(self.db("log").map_err(err)?).map_err(err)?;
        let sm = Sm::new(self.db("sm").map_err(err)?).map_err(err)?;
        Ok(((), log, sm))
    }
}

#[test]
fn openraft_storage_suite_on_sim_disk() {
    let disk: Arc<dyn common::env::Disk> =
        common::env::SimDisk::new(3, common::env::SimDiskFaults::default());
    let builder = DiskBuilder {
        disk,
        next: 0.into(),
    };
    let rt = common::env::BlockingRuntime::new(2).unwrap();
    rt.block_on(Suite::test_all(builder))
        .expect("openraft storage suite on SimDisk");
}

#[test]
fn openraft_storage_suite_on_real_disk() {
    let dir = std::env::temp_dir().join(format!("shale-suite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let disk: Arc<dyn common::env::Disk> = Arc::new(common::env::RealDisk::open(&dir).unwrap());
    let builder = DiskBuilder {
        disk,
        next: 0.into(),
    };
    let rt = common::env::BlockingRuntime::new(2).unwrap();
    let res = rt.block_on(Suite::test_all(builder));
    let _ = std::fs::remove_dir_all(&dir);
    res.expect("openraft storage suite on the real disk");
}

#[test]
fn openraft_storage_suite_on_redb_in_memory() {
    let rt = common::env::BlockingRuntime::new(2).unwrap();
    rt.block_on(Suite::test_all(MemoryBuilder))
        .expect("openraft storage suite");
}
