//! The scrubber: a flipped bit or a truncated file on a real disk, a rotten block or an
//! unreadable file on `SimDisk`, is found — exactly those fragments — quarantined (or,
//! for I/O errors, kept in place and cleared once it reads clean), listed until repaired
//! in place or deleted, and rebuilt from `corrupt/` after a restart; healthy fragments
//! are never reported; the byte budget holds on the env clock; `ListDamaged` and
//! `Health` report it over gRPC.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::env::{Disk, Env, RealDisk, Rng, SimDisk, SimDiskFaults};
use common::ids::{DiskId, FragmentId, NodeId, RackId, StripeId};
use proto::datanode as pb;
use proto::datanode::datanode_service_client::DatanodeServiceClient;

use crate::format::BLOCK_BYTES;
use crate::node::Datanode;
use crate::scrub::{scrub_pass, ScrubConfig, TokenBucket};
use crate::store::{PutRequest, PutStart, StoreConfig};
use crate::StoreError;

const DISK: DiskId = DiskId(0);

fn rt() -> common::env::BlockingRuntime {
    common::env::BlockingRuntime::new(2).expect("runtime")
}

fn id(n: u8) -> FragmentId {
    FragmentId {
        stripe: StripeId(0x5c00_0000_0000_0000_0000_0000_0000_0000 + u128::from(n)),
        index: n % 4,
    }
}

fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Rng::new(seed).fill_bytes(&mut v);
    v
}

async fn put(node: &Datanode, fid: FragmentId, data: &[u8]) {
    let req = PutRequest {
        id: fid,
        codec: common::codec::CodecId::ReedSolomonSimd.as_u8(),
        k: 2,
        m: 2,
        length: data.len() as u64,
        crc32c: crc32c::crc32c(data),
    };
    let PutStart::Writer(w) = node.begin_put(DISK, req).await.expect("begin") else {
        panic!("{fid} already stored");
    };
    let (w, r) = node
        .write(DISK, w, bytes::Bytes::copy_from_slice(data))
        .await;
    r.expect("write");
    node.finish(DISK, w).await.expect("finish");
}

fn open(disk: Arc<dyn Disk>) -> Datanode {
    Datanode::open(
        Env::seeded(3),
        NodeId(1),
        RackId("r".into()),
        vec![(DISK, disk, StoreConfig::default())],
    )
    .expect("open")
}

/// A pass with a budget that never waits.
async fn pass(node: &Datanode) -> crate::scrub::PassReport {
    let mut bucket = TokenBucket::for_budget(u64::MAX / 8, node.env().clock().now());
    scrub_pass(node, &mut bucket).await
}

fn damaged_ids(node: &Datanode) -> BTreeSet<FragmentId> {
    node.damaged().iter().map(|d| d.id).collect()
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let n = Env::from_entropy().random_u64();
        let p =
            std::env::temp_dir().join(format!("shale-scrub-{tag}-{}-{n:x}", std::process::id()));
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn file_of(root: &std::path::Path, dir: &str, fid: FragmentId) -> PathBuf {
    let hex = fid.stripe.to_string();
    let sub = if dir == "frags" {
        root.join("frags").join(&hex[..2])
    } else {
        root.join(dir)
    };
    sub.join(format!("{}.{}", fid.stripe, fid.index))
}

#[test]
fn a_flipped_bit_and_a_truncated_file_on_a_real_disk_are_found_exactly() {
    rt().block_on(async {
        let dir = TempDir::new("real");
        let disk: Arc<dyn Disk> = Arc::new(RealDisk::open(&dir.0).expect("disk"));
        let node = open(Arc::clone(&disk));
        let sizes = [
            0usize,
            10,
            5000,
            BLOCK_BYTES as usize + 7,
            3 * BLOCK_BYTES as usize,
        ];
        for (n, len) in (0u8..).zip(sizes) {
            put(&node, id(n), &payload(len, u64::from(n))).await;
        }
        // Nothing damaged yet: a pass verifies everything and reports nothing.
        let clean = pass(&node).await;
        assert!(clean.damaged.is_empty(), "{:?}", clean.damaged);
        assert_eq!(clean.fragments_verified, 5);
        assert!(node.damaged().is_empty());

        // Flip a bit in the last block of fragment 4; truncate fragment 3.
        let f4 = file_of(&dir.0, "frags", id(4));
        let mut bytes = std::fs::read(&f4).expect("read");
        let at = bytes.len() - 10;
        bytes[at] ^= 0x10;
        std::fs::write(&f4, bytes).expect("write");
        let f3 = file_of(&dir.0, "frags", id(3));
        let len = std::fs::metadata(&f3).expect("stat").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&f3)
            .and_then(|f| f.set_len(len - 100))
            .expect("truncate");

        let report = pass(&node).await;
        let found: BTreeSet<FragmentId> = report.damaged.iter().map(|d| d.1).collect();
        assert_eq!(found, [id(3), id(4)].into());
        assert_eq!(report.fragments_verified, 3);
        assert_eq!(damaged_ids(&node), [id(3), id(4)].into());
        for d in node.damaged() {
            assert_eq!(d.disk, DISK);
            assert!(d.finding.quarantined, "{d:?}");
            assert!(d.finding.what.contains("corrupt"), "{d:?}");
        }
        assert!(node
            .damaged()
            .iter()
            .any(|d| d.id == id(4) && d.finding.what.contains("checksum")));
        assert!(node
            .damaged()
            .iter()
            .any(|d| d.id == id(3) && d.finding.what.contains("truncated")));
        // Quarantined: never served again, moved to corrupt/; the others still read.
        for n in [3, 4] {
            assert!(matches!(
                node.read(DISK, id(n), 0, 1).await,
                Err(StoreError::NotFound(_))
            ));
            assert!(file_of(&dir.0, "corrupt", id(n)).exists());
            assert!(!file_of(&dir.0, "frags", id(n)).exists());
        }
        assert_eq!(
            node.read(DISK, id(2), 0, 5000).await.expect("read"),
            payload(5000, 2)
        );
        let p = node.scrub_progress();
        assert_eq!((p.pass, p.running, p.damaged_found), (2, false, 2));
        assert_eq!(p.fragments_verified, 8);

        // The findings survive a restart (rebuilt from corrupt/).
        drop(node);
        let node = open(Arc::clone(&disk));
        assert_eq!(damaged_ids(&node), [id(3), id(4)].into());
        // Repair: fragment 4 is put again in place, fragment 3 is deleted (moved away).
        put(&node, id(4), &payload(3 * BLOCK_BYTES as usize, 4)).await;
        assert!(node.delete(DISK, id(3)).await.expect("delete"));
        assert!(node.damaged().is_empty());
        assert!(!file_of(&dir.0, "corrupt", id(3)).exists());
        drop(node);
        let node = open(disk);
        assert!(node.damaged().is_empty(), "{:?}", node.damaged());
        assert!(pass(&node).await.damaged.is_empty());
    });
}

#[test]
fn rot_and_io_errors_on_a_sim_disk_are_found_and_io_errors_clear_once_readable() {
    rt().block_on(async {
        let sim = SimDisk::new(9, SimDiskFaults::default());
        let node = open(sim.clone());
        for n in 0..6u8 {
            put(
                &node,
                id(n),
                &payload(2 * BLOCK_BYTES as usize + 3, u64::from(n)),
            )
            .await;
        }
        let name = |fid: FragmentId| {
            let hex = fid.stripe.to_string();
            format!("frags/{}/{}.{}", &hex[..2], fid.stripe, fid.index)
        };
        // A rotten bit in the second block of fragment 1.
        sim.corrupt(&name(id(1)), 64 + u64::from(BLOCK_BYTES) + 4 + 100, 0x04)
            .expect("corrupt");
        let report = pass(&node).await;
        assert_eq!(report.damaged.len(), 1, "{:?}", report.damaged);
        assert_eq!(report.damaged[0].1, id(1));
        assert_eq!(damaged_ids(&node), [id(1)].into());

        // Every read fails for a while: every remaining fragment is reported unreadable,
        // left in place (not quarantined).
        sim.set_faults(SimDiskFaults {
            read_error_prob: 1.0,
            ..SimDiskFaults::default()
        });
        let report = pass(&node).await;
        assert_eq!(report.damaged.len(), 5);
        assert_eq!(node.damaged().len(), 6);
        assert!(node
            .damaged()
            .iter()
            .all(|d| d.finding.quarantined == (d.id == id(1))));
        // The disk recovers: the next pass clears the I/O findings, not the rot.
        sim.set_faults(SimDiskFaults::default());
        let report = pass(&node).await;
        assert!(report.damaged.is_empty());
        assert_eq!(report.fragments_verified, 5);
        assert_eq!(damaged_ids(&node), [id(1)].into());
    });
}

/// Bytes used by time `t` never exceed `burst + rate × (t − start)`.
#[test]
fn the_token_bucket_never_exceeds_burst_plus_rate() {
    let start = common::env::monotonic_now();
    let (rate, burst) = (1000u64, 250u64);
    let mut bucket = TokenBucket::new(rate, burst, start);
    let mut rng = Rng::new(5);
    let mut now = start;
    let mut used = 0u64;
    for _ in 0..500 {
        now += Duration::from_millis(rng.below(300));
        let bytes = rng.below(2000);
        let wait = bucket.take(bytes, now);
        now += wait;
        used += bytes;
        let allowed = burst as f64 + rate as f64 * (now - start).as_secs_f64();
        assert!(
            used as f64 <= allowed + 1.0,
            "{used} bytes by {:?}",
            now - start
        );
    }
    // And it does not throttle below the rate: a steady stream at the rate never waits
    // longer than one take's worth.
    let mut bucket = TokenBucket::new(rate, burst, start);
    let w = bucket.take(burst, start);
    assert_eq!(w, Duration::ZERO);
    let w = bucket.take(500, start);
    assert_eq!(w, Duration::from_millis(500));
}

#[test]
fn a_pass_respects_the_byte_budget_on_the_env_clock() {
    rt().block_on(async {
        let sim = SimDisk::new(11, SimDiskFaults::default());
        let node = open(sim);
        for n in 0..5u8 {
            put(
                &node,
                id(n),
                &payload(BLOCK_BYTES as usize / 2, u64::from(n)),
            )
            .await;
        }
        let rate = 256u64 << 10;
        let clock = node.env().clock().clone();
        let start = clock.now();
        let mut bucket = TokenBucket::for_budget(rate, start);
        let report = scrub_pass(&node, &mut bucket).await;
        let elapsed = clock.now() - start;
        assert_eq!(report.fragments_verified, 5);
        let bytes = report.bytes_verified;
        assert_eq!(node.scrub_progress().bytes_verified, bytes);
        // At most burst (a quarter second) + rate × elapsed bytes were read.
        let allowed = (rate / 4) as f64 + rate as f64 * elapsed.as_secs_f64();
        assert!(
            bytes as f64 <= allowed,
            "{bytes} bytes in {elapsed:?} at {rate} B/s"
        );
        // And the pacing is not wildly slower than the budget.
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    });
}

#[test]
fn list_damaged_and_health_report_findings_and_progress_over_grpc() {
    rt().block_on(async {
        let sim = SimDisk::new(13, SimDiskFaults::default());
        let node = open(sim.clone()).with_scrub(ScrubConfig {
            interval: Duration::from_secs(3600),
            bytes_per_sec: 1 << 20,
        });
        for n in 0..3u8 {
            put(&node, id(n), &payload(1000, u64::from(n))).await;
        }
        let hex = id(2).stripe.to_string();
        sim.corrupt(
            &format!("frags/{}/{}.{}", &hex[..2], id(2).stripe, id(2).index),
            64 + 5,
            0x80,
        )
        .expect("corrupt");
        pass(&node).await;
        let node = Arc::new(node);
        let addr = common::env::free_loopback_addr().expect("free port");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = common::env::spawn(
            "test-datanode",
            crate::service::serve(Arc::clone(&node), addr, async {
                let _ = rx.await;
            }),
        );
        let mut client = None;
        for _ in 0..500 {
            if let Ok(c) = DatanodeServiceClient::connect(format!("http://{addr}")).await {
                client = Some(c);
                break;
            }
            node.env().clock().sleep(Duration::from_millis(10)).await;
        }
        let mut c = client.expect("the data node serves");
        let listed = c
            .list_damaged(pb::ListDamagedRequest {})
            .await
            .expect("list damaged")
            .into_inner();
        assert_eq!(listed.damaged.len(), 1);
        let d = &listed.damaged[0];
        assert_eq!(
            FragmentId::try_from(d.id.as_ref().expect("id")).expect("id"),
            id(2)
        );
        assert_eq!(d.disk, 0);
        assert!(
            d.quarantined && d.what.contains("checksum") && d.found_ms > 0,
            "{d:?}"
        );
        let scrub = listed.scrub.expect("scrub status");
        assert_eq!((scrub.pass, scrub.damaged_found), (1, 1));
        assert_eq!(scrub.fragments_verified, 2);
        assert_eq!((scrub.interval_secs, scrub.bytes_per_sec), (3600, 1 << 20));
        let health = c
            .health(pb::HealthRequest {})
            .await
            .expect("health")
            .into_inner();
        assert_eq!(health.disks[0].damaged, 1);
        assert_eq!(health.disks[0].fragments, 2);
        assert_eq!(health.scrub.expect("scrub").pass, 1);
        let _ = tx.send(());
        server.await.expect("server task").expect("served");
    });
}

/// A GET that meets a rotten block does not wait for the next scrub pass: the fragment
/// is verified once more and listed for repair at once, but left in place (a disk that
/// misreads must not make nodes destroy good copies); the scrubber then quarantines it.
/// A read that meets a transient I/O error records nothing (the scrubber decides later).
#[test]
fn a_read_that_meets_rot_reports_the_fragment_at_once() {
    rt().block_on(async {
        let sim = SimDisk::new(11, SimDiskFaults::default());
        let node = open(sim.clone());
        let data = payload(2 * BLOCK_BYTES as usize + 3, 5);
        put(&node, id(1), &data).await;
        put(&node, id(2), &data).await;
        let name = |fid: FragmentId| {
            let hex = fid.stripe.to_string();
            format!("frags/{}/{}.{}", &hex[..2], fid.stripe, fid.index)
        };
        sim.corrupt(&name(id(1)), 64 + u64::from(BLOCK_BYTES) + 4 + 7, 0x10)
            .expect("corrupt");
        // The first block still reads: nothing found yet.
        let first = node.read(DISK, id(1), 0, 16).await.expect("clean block");
        assert_eq!(first, data[..16]);
        assert!(damaged_ids(&node).is_empty());
        // The rotten block: an error, and the fragment is listed for repair at once.
        let err = node
            .read(DISK, id(1), u64::from(BLOCK_BYTES), 16)
            .await
            .expect_err("rot must not be served");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert_eq!(damaged_ids(&node), [id(1)].into());
        let d = &node.damaged()[0];
        assert!(!d.finding.quarantined, "{d:?}");
        assert!(d.finding.what.starts_with("read: "), "{d:?}");
        // Still in place: the clean block reads, the rotten one keeps failing.
        assert_eq!(
            node.read(DISK, id(1), 0, 16).await.expect("clean"),
            data[..16]
        );
        assert!(node
            .read(DISK, id(1), u64::from(BLOCK_BYTES), 16)
            .await
            .is_err());
        // The scrubber confirms the rot and quarantines it.
        let report = pass(&node).await;
        assert_eq!(report.damaged.len(), 1, "{:?}", report.damaged);
        assert!(node.damaged()[0].finding.quarantined);
        assert!(matches!(
            node.read(DISK, id(1), 0, 16).await,
            Err(StoreError::NotFound(_))
        ));

        // Reads fail with I/O errors for a while: nothing is recorded for fragment 2.
        sim.set_faults(SimDiskFaults {
            read_error_prob: 1.0,
            ..SimDiskFaults::default()
        });
        assert!(node.read(DISK, id(2), 0, 16).await.is_err());
        sim.set_faults(SimDiskFaults::default());
        assert_eq!(damaged_ids(&node), [id(1)].into());
        assert_eq!(
            node.read(DISK, id(2), 0, 16).await.expect("clean"),
            data[..16]
        );
    });
}
