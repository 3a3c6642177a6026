//! The `Disk` conformance suite: the same checks run against `RealDisk` (a temporary
//! directory) and `SimDisk` with no faults, so the simulated disk behaves like the real
//! one wherever the real one is deterministic. The `sim_*` tests then check the fault
//! model of `SimDisk` itself.

use std::io::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::*;

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("shale-disk-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn for_each_disk(check: impl Fn(&dyn Disk)) {
    let tmp = TempDir::new();
    let real = RealDisk::open(&tmp.0).unwrap();
    check(&real);
    let sim = SimDisk::new(1, SimDiskFaults::default());
    check(sim.as_ref());
}

fn read_all(f: &dyn DiskFile) -> Vec<u8> {
    let len = f.len().unwrap() as usize;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, 0).unwrap();
    buf
}

#[test]
fn conformance_write_read_len_set_len() {
    for_each_disk(|d| {
        d.create_dir_all("a/b").unwrap();
        let f = d.open("a/b/f", OpenMode::CreateNew).unwrap();
        assert!(f.is_empty().unwrap());
        f.write_at(b"hello", 0).unwrap();
        f.write_at(b"world", 10).unwrap();
        assert_eq!(f.len().unwrap(), 15);
        assert_eq!(read_all(f.as_ref()), b"hello\0\0\0\0\0world");
        f.set_len(3).unwrap();
        assert_eq!(read_all(f.as_ref()), b"hel");
        f.sync().unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(f.read_at(&mut buf, 1).unwrap(), 2);
        assert_eq!(&buf[..2], b"el");
        assert_eq!(f.read_at(&mut buf, 100).unwrap(), 0);
        let err = f.read_exact_at(&mut buf, 0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        let again = d.open("a/b/f", OpenMode::Read).unwrap();
        assert_eq!(read_all(again.as_ref()), b"hel");
    });
}

#[test]
fn conformance_open_modes() {
    for_each_disk(|d| {
        assert_eq!(
            d.open("missing", OpenMode::Read).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            d.open("nodir/x", OpenMode::CreateNew).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        let f = d.open("x", OpenMode::CreateOrOpen).unwrap();
        f.write_at(b"1", 0).unwrap();
        assert_eq!(
            d.open("x", OpenMode::CreateNew).unwrap_err().kind(),
            ErrorKind::AlreadyExists
        );
        let g = d.open("x", OpenMode::CreateOrOpen).unwrap();
        assert_eq!(read_all(g.as_ref()), b"1", "CreateOrOpen must not truncate");
        let ro = d.open("x", OpenMode::Read).unwrap();
        assert!(
            ro.write_at(b"2", 0).is_err(),
            "read-only handle must not write"
        );
        assert!(d.exists("x").unwrap());
        assert!(!d.exists("y").unwrap());
    });
}

#[test]
fn conformance_rename_remove_list() {
    for_each_disk(|d| {
        d.create_dir_all("dir/sub").unwrap();
        for name in ["dir/c", "dir/a", "dir/b"] {
            let f = d.open(name, OpenMode::CreateNew).unwrap();
            f.write_at(name.as_bytes(), 0).unwrap();
        }
        let names: Vec<(String, bool)> = d
            .list_dir("dir")
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.is_dir))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a".to_string(), false),
                ("b".to_string(), false),
                ("c".to_string(), false),
                ("sub".to_string(), true)
            ]
        );
        d.rename("dir/a", "dir/b").unwrap();
        let b = d.open("dir/b", OpenMode::Read).unwrap();
        assert_eq!(read_all(b.as_ref()), b"dir/a");
        assert!(!d.exists("dir/a").unwrap());
        d.remove_file("dir/c").unwrap();
        assert_eq!(
            d.remove_file("dir/c").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        d.sync_dir("dir").unwrap();
        d.sync_dir("").unwrap();
        let root: Vec<String> = d
            .list_dir("")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(root, vec!["dir".to_string()]);
    });
}

#[test]
fn conformance_rejects_bad_paths() {
    for_each_disk(|d| {
        for bad in ["", "/abs", "a/../b", "a//b", "./a", "a/"] {
            let err = d.open(bad, OpenMode::CreateOrOpen).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "path {bad:?}");
        }
    });
}

fn sim() -> Arc<SimDisk> {
    SimDisk::new(7, SimDiskFaults::default())
}

fn write_file(d: &SimDisk, path: &str, data: &[u8], sync: bool, sync_dir: bool) {
    let f = d.open(path, OpenMode::CreateNew).unwrap();
    f.write_at(data, 0).unwrap();
    if sync {
        f.sync().unwrap();
    }
    if sync_dir {
        d.sync_dir(parent_dir(path)).unwrap();
    }
}

fn contents(d: &SimDisk, path: &str) -> Option<Vec<u8>> {
    let f = d.open(path, OpenMode::Read).ok()?;
    Some(read_all(f.as_ref()))
}

#[test]
fn sim_crash_keeps_synced_files_and_drops_unsynced_names() {
    let d = sim();
    write_file(&d, "durable", b"abc", true, true);
    write_file(&d, "no-dir-sync", b"abc", true, false);
    write_file(&d, "nothing", b"abc", false, false);
    d.crash();
    assert_eq!(contents(&d, "durable").as_deref(), Some(&b"abc"[..]));
    assert_eq!(contents(&d, "no-dir-sync"), None);
    assert_eq!(contents(&d, "nothing"), None);
    assert_eq!(d.stats().crashes, 1);
}

#[test]
fn sim_crash_undoes_unsynced_rename_and_remove() {
    let d = sim();
    write_file(&d, "a", b"A", true, true);
    write_file(&d, "b", b"B", true, true);
    d.rename("a", "c").unwrap();
    d.remove_file("b").unwrap();
    d.crash();
    assert_eq!(contents(&d, "a").as_deref(), Some(&b"A"[..]));
    assert_eq!(contents(&d, "b").as_deref(), Some(&b"B"[..]));
    assert_eq!(contents(&d, "c"), None);
    d.rename("a", "c").unwrap();
    d.remove_file("b").unwrap();
    d.sync_dir("").unwrap();
    d.crash();
    assert_eq!(contents(&d, "a"), None);
    assert_eq!(contents(&d, "b"), None);
    assert_eq!(contents(&d, "c").as_deref(), Some(&b"A"[..]));
}

#[test]
fn sim_crash_loses_or_tears_unsynced_writes() {
    let all_lost = SimDiskFaults {
        crash_keep_prob: 0.0,
        crash_tear_prob: 0.0,
        ..SimDiskFaults::default()
    };
    let d = SimDisk::new(3, all_lost);
    write_file(&d, "f", &[1u8; 2048], true, true);
    let f = d.open("f", OpenMode::ReadWrite).unwrap();
    f.write_at(&[2u8; 2048], 0).unwrap();
    d.crash();
    assert_eq!(contents(&d, "f").unwrap(), vec![1u8; 2048]);
    assert!(
        f.len().is_err(),
        "a handle from before the crash must be stale"
    );

    let all_torn = SimDiskFaults {
        crash_keep_prob: 0.0,
        crash_tear_prob: 1.0,
        ..SimDiskFaults::default()
    };
    let mut saw_partial = false;
    for seed in 0..20 {
        let d = SimDisk::new(seed, all_torn.clone());
        write_file(&d, "f", &[1u8; 4096], true, true);
        let f = d.open("f", OpenMode::ReadWrite).unwrap();
        f.write_at(&[2u8; 4096], 0).unwrap();
        d.crash();
        let got = contents(&d, "f").unwrap();
        let twos = got.iter().take_while(|&&b| b == 2).count();
        assert_eq!(twos % 512, 0, "a tear lands whole sectors only");
        assert!(
            got[twos..].iter().all(|&b| b == 1),
            "the rest is the old image"
        );
        saw_partial |= twos > 0 && twos < 4096;
    }
    assert!(
        saw_partial,
        "20 seeds of all-torn writes never tore mid-write"
    );
}

#[test]
fn sim_power_cut_fails_everything_until_crash() {
    let d = sim();
    write_file(&d, "f", b"old", true, true);
    d.power_cut_after(1);
    let f = d.open("f", OpenMode::ReadWrite).unwrap();
    f.write_at(b"new", 0).unwrap(); // mutation 0: allowed
    assert!(f.sync().is_err(), "mutation 1 hits the power cut");
    assert!(d.is_powered_off());
    assert!(d.open("f", OpenMode::Read).is_err());
    d.crash();
    let got = contents(&d, "f").unwrap();
    assert!(got == b"old" || got == b"new", "got {got:?}");
}

#[test]
fn sim_full_disk_is_storage_full_and_changes_nothing() {
    let d = SimDisk::new(
        1,
        SimDiskFaults {
            capacity_bytes: Some(100),
            ..SimDiskFaults::default()
        },
    );
    write_file(&d, "a", &[0u8; 80], true, true);
    let f = d.open("b", OpenMode::CreateNew).unwrap();
    let err = f.write_at(&[0u8; 30], 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageFull);
    assert_eq!(f.len().unwrap(), 0);
    f.write_at(&[0u8; 20], 0).unwrap();
    d.remove_file("a").unwrap();
    assert_eq!(d.used_bytes(), 20);
}

#[test]
fn sim_bit_rot_and_eio_are_injected_and_persistent() {
    let d = sim();
    write_file(&d, "f", &[0u8; 64], true, true);
    d.set_faults(SimDiskFaults {
        bit_rot_prob: 1.0,
        ..SimDiskFaults::default()
    });
    let f = d.open("f", OpenMode::Read).unwrap();
    let mut buf = [0u8; 64];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(buf.iter().map(|b| b.count_ones()).sum::<u32>(), 1);
    d.set_faults(SimDiskFaults::default());
    let mut again = [0u8; 64];
    f.read_exact_at(&mut again, 0).unwrap();
    assert_eq!(buf, again, "rot is persistent");
    d.crash();
    assert_eq!(
        contents(&d, "f").unwrap(),
        again.to_vec(),
        "rot survives a crash"
    );

    d.set_faults(SimDiskFaults {
        read_error_prob: 1.0,
        write_error_prob: 1.0,
        sync_error_prob: 1.0,
        ..SimDiskFaults::default()
    });
    let f = d.open("f", OpenMode::ReadWrite).unwrap();
    assert!(f.read_at(&mut buf, 0).is_err());
    assert!(f.write_at(b"x", 0).is_err());
    assert!(f.sync().is_err());
    let s = d.stats();
    assert_eq!(
        (
            s.injected_read_errors,
            s.injected_write_errors,
            s.injected_sync_errors
        ),
        (1, 1, 1)
    );
}

#[test]
fn sim_corrupt_flips_requested_bits() {
    let d = sim();
    write_file(&d, "f", &[0u8; 8], true, true);
    d.corrupt("f", 3, 0x80).unwrap();
    assert_eq!(contents(&d, "f").unwrap()[3], 0x80);
    assert!(d.corrupt("f", 8, 1).is_err());
    assert!(d.corrupt("g", 0, 1).is_err());
}

#[test]
fn sim_same_seed_same_crash_outcome() {
    let run = |seed| {
        let d = SimDisk::new(seed, SimDiskFaults::default());
        write_file(&d, "f", &[0u8; 8192], true, true);
        let f = d.open("f", OpenMode::ReadWrite).unwrap();
        for i in 0..16u8 {
            f.write_at(&[i + 1; 512], u64::from(i) * 512).unwrap();
        }
        d.crash();
        contents(&d, "f").unwrap()
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12), "different seeds should usually differ");
}

#[test]
fn sim_latency_is_drawn_within_bounds() {
    let d = SimDisk::new(
        5,
        SimDiskFaults {
            latency_min: std::time::Duration::from_micros(100),
            latency_max: std::time::Duration::from_micros(900),
            ..SimDiskFaults::default()
        },
    );
    for _ in 0..100 {
        let t = d.service_time(DiskOp::Write, 4096);
        assert!(t >= std::time::Duration::from_micros(100));
        assert!(t <= std::time::Duration::from_micros(900));
    }
}

#[test]
fn sim_random_faults_are_seeded_and_valid() {
    let draw = |seed| SimDiskFaults::random(&mut Rng::new(seed));
    assert_eq!(draw(9), draw(9), "same seed, same profile");
    let profiles: Vec<SimDiskFaults> = (0..200).map(draw).collect();
    for f in &profiles {
        for p in [
            f.read_error_prob,
            f.write_error_prob,
            f.sync_error_prob,
            f.bit_rot_prob,
        ] {
            assert!((0.0..=1.0).contains(&p));
        }
        assert!(f.crash_keep_prob + f.crash_tear_prob <= 1.0);
        assert!(f.latency_min <= f.latency_max);
    }
    assert!(
        profiles.iter().any(|f| f.read_error_prob == 0.0),
        "some disks are quiet"
    );
    assert!(
        profiles.iter().any(|f| f.read_error_prob > 0.0),
        "some disks are flaky"
    );
    assert!(profiles
        .iter()
        .any(|f| f.latency_max > std::time::Duration::ZERO));
}
