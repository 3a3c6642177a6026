//! Metadata start-up cost: how long opening one metadata database takes with redb's
//! integrity check on open (what `redb_disk::open_database` does since issue 5's
//! `meta-rot` work: every page of the committed trees is read and its checksum verified)
//! against a plain open of the same file, for databases of 10k, 100k and 1M rows.
//!
//! Rows are 24-byte keys and 400-byte values in one table (about the size of an object's
//! metadata row); the check's cost depends on the pages it reads, not on what they hold.
//! Both opens go through `DiskBackend` over `RealDisk`, as the product does. Opens
//! alternate (plain, checked, plain, ...) with the file in the OS page cache; when
//! `/proc/sys/vm/drop_caches` is writable (root) each open is also measured cold.
//!
//! Run: `cargo bench -p meta-raft --bench meta_open`.
//! Benches may read the raw clock (the determinism rule is for library code).
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::env::{Disk, OpenMode, RealDisk};
use meta_raft::redb_disk::{begin_write, open_database, DiskBackend, CACHE_BYTES};
use redb::{Builder, TableDefinition};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");
const VALUE_BYTES: usize = 400;
const ROWS_PER_TXN: u64 = 50_000;
const ROUNDS: usize = 3;

fn populate(disk: &Arc<dyn Disk>, path: &str, rows: u64) {
    let db = open_database(disk, path).expect("create database");
    let mut value = vec![0u8; VALUE_BYTES];
    let mut done = 0;
    while done < rows {
        let txn = begin_write(&db).expect("begin write");
        {
            let mut t = txn.open_table(TABLE).expect("open table");
            let end = (done + ROWS_PER_TXN).min(rows);
            for i in done..end {
                let key = format!("bucket/key-{i:012}");
                value[..8].copy_from_slice(&i.to_le_bytes());
                t.insert(key.as_bytes(), value.as_slice()).expect("insert");
            }
            done = end;
        }
        txn.commit().expect("commit");
    }
}

fn open_timed(disk: &Arc<dyn Disk>, path: &str, check: bool) -> Duration {
    let t = Instant::now();
    if check {
        // The product's open (integrity check on).
        drop(open_database(disk, path).expect("checked open"));
    } else {
        let file = disk.open(path, OpenMode::ReadWrite).expect("open file");
        drop(
            Builder::new()
                .set_cache_size(CACHE_BYTES)
                .create_with_backend(DiskBackend::new(file, path))
                .expect("plain open"),
        );
    }
    t.elapsed()
}

fn drop_caches() -> bool {
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mean(v: &[Duration]) -> Duration {
    v.iter().sum::<Duration>() / v.len().max(1) as u32
}

fn main() {
    let root = std::env::temp_dir().join(format!("shale-meta-open-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench dir");
    let disk: Arc<dyn Disk> = Arc::new(RealDisk::open(&root).expect("real disk"));
    let cold = drop_caches();
    println!("rows,file_mib,plain_warm_ms,checked_warm_ms,ratio_warm,plain_cold_ms,checked_cold_ms,ratio_cold");
    for rows in [10_000u64, 100_000, 1_000_000] {
        let path = format!("db-{rows}.redb");
        populate(&disk, &path, rows);
        let mib = std::fs::metadata(root.join(&path))
            .map(|m| m.len() as f64 / (1 << 20) as f64)
            .unwrap_or(0.0);
        // One open of each to settle the file (redb may write on first open).
        open_timed(&disk, &path, false);
        open_timed(&disk, &path, true);
        let (mut plain, mut checked) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            plain.push(open_timed(&disk, &path, false));
            checked.push(open_timed(&disk, &path, true));
        }
        let (pw, cw) = (mean(&plain), mean(&checked));
        let mut line = format!(
            "{rows},{mib:.1},{:.2},{:.2},{:.1}",
            ms(pw),
            ms(cw),
            ms(cw) / ms(pw).max(1e-9)
        );
        if cold {
            let (mut plain, mut checked) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                drop_caches();
                plain.push(open_timed(&disk, &path, false));
                drop_caches();
                checked.push(open_timed(&disk, &path, true));
            }
            let (pc, cc) = (mean(&plain), mean(&checked));
            line.push_str(&format!(
                ",{:.2},{:.2},{:.1}",
                ms(pc),
                ms(cc),
                ms(cc) / ms(pc).max(1e-9)
            ));
        } else {
            line.push_str(",,,");
        }
        println!("{line}");
        let _ = disk.remove_file(&path);
    }
    let _ = std::fs::remove_dir_all(&root);
}
