//! Test helpers: an in-memory database, command builders, a table dump and a checker of
//! the state machine's invariants.

use std::collections::{BTreeMap, BTreeSet};

use common::cluster::FragmentLocation;
use common::codec::{CodecId, CodecParams};
use common::ids::{DiskId, NodeId, StripeId};
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTableMetadata};

use super::*;

/// The erasure code of test stripes: 2+1.
pub const CODEC: CodecParams = CodecParams {
    codec: CodecId::ReedSolomonSimd,
    k: 2,
    m: 1,
};

pub type Dump = Vec<(String, Vec<(Vec<u8>, Vec<u8>)>)>;

/// A fresh state machine on an in-memory redb, applying commands at log index 1, 2, …
pub struct Harness {
    pub db: Database,
    pub index: u64,
    /// Re-check every invariant after each command (slower).
    pub check: bool,
}

impl Harness {
    pub fn new() -> Self {
        let db = redb::Builder::new()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("in-memory database");
        Harness {
            db,
            index: 0,
            check: true,
        }
    }

    /// Applies `cmd` at the next log index and commits. A rejected command must leave
    /// every table byte-identical.
    pub fn apply(&mut self, cmd: &Command) -> Response {
        self.index += 1;
        let before = self.check.then(|| self.dump());
        let txn = self.db.begin_write().expect("begin");
        let response = apply(&txn, self.index, cmd).expect("apply");
        txn.commit().expect("commit");
        if let Some(before) = before {
            if matches!(response, Response::Rejected(_)) {
                assert_eq!(before, self.dump(), "rejected {cmd} changed the tables");
            }
            check_invariants(&self.read());
        }
        response
    }

    pub fn read(&self) -> ReadTransaction {
        self.db.begin_read().expect("begin read")
    }

    /// Every row of every table, in table and key order.
    pub fn dump(&self) -> Dump {
        let txn = self.read();
        let mut out = Vec::new();
        for def in tables::ALL {
            let Some(t) = tables::open_read(&txn, def).expect("open") else {
                continue;
            };
            let rows = tables::rows_in(&t, &[], None).expect("rows");
            out.push((def.to_string(), rows));
        }
        out
    }

    pub fn create_bucket(&mut self, name: &str, versioning: Versioning) {
        let r = self.apply(&Command::CreateBucket {
            name: name.to_owned(),
            owner: "alice".to_owned(),
            created_ms: 1,
            versioning,
        });
        assert_eq!(r, Response::BucketCreated);
    }

    pub fn set_versioning(&mut self, name: &str, versioning: Versioning) {
        let r = self.apply(&Command::SetBucketVersioning {
            name: name.to_owned(),
            versioning,
        });
        assert_eq!(r, Response::VersioningSet);
    }

    pub fn gc(&self) -> Vec<GcEntry> {
        gc_take(&self.read(), None, usize::MAX).expect("gc_take")
    }

    /// Every stripe id in the GC queue, in queue order.
    pub fn gc_stripes(&self) -> Vec<StripeId> {
        self.gc().into_iter().map(|e| e.stripe).collect()
    }

    pub fn head(&self, bucket: &str, key: &str) -> CurrentVersion {
        head_object(&self.read(), bucket, key).expect("head")
    }

    pub fn list_all(&self, bucket: &str) -> Vec<String> {
        let params = ListObjectsParams {
            max_keys: 1000,
            ..Default::default()
        };
        let page = list_objects(&self.read(), bucket, &params).expect("list");
        page.entries.into_iter().map(|e| e.key).collect()
    }

    pub fn versions_of(&self, bucket: &str, key: &str) -> Vec<VersionEntry> {
        let params = ListVersionsParams {
            prefix: key.to_owned(),
            max_keys: 1000,
            ..Default::default()
        };
        match list_object_versions(&self.read(), bucket, &params) {
            Ok(page) => page.versions.into_iter().filter(|v| v.key == key).collect(),
            Err(QueryError::Rejected(Reason::NoSuchBucket)) => Vec::new(),
            Err(e) => panic!("list versions: {e}"),
        }
    }
}

/// A location for fragment `i` of stripe `id` (distinct per stripe and fragment).
pub fn location(id: u128, i: u8) -> FragmentLocation {
    FragmentLocation {
        node: NodeId(id as u64 * 10 + u64::from(i)),
        disk: DiskId(u32::from(i)),
    }
}

/// A stripe of `data_len` bytes with a 2+1 placement.
pub fn stripe(id: u128, data_len: u64) -> StripeRecord {
    StripeRecord {
        id: StripeId(id),
        data_len,
        placement: (0..3).map(|i| location(id, i)).collect(),
    }
}

/// A striped body of `stripes` stripes of 10 bytes each, ids from `first_id`.
pub fn striped(first_id: u128, stripes: u128) -> ObjectBody {
    ObjectBody::Stripes {
        codec: CODEC,
        stripes: (first_id..first_id + stripes)
            .map(|id| stripe(id, 10))
            .collect(),
    }
}

/// A PutObject with the given body.
pub fn put(bucket: &str, key: &str, version_id: &str, body: ObjectBody) -> PutObject {
    let size = body.data_len();
    PutObject {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: version_id.to_owned(),
        created_ms: 1000,
        owner: "alice".to_owned(),
        size,
        etag: format!("etag-{version_id}"),
        checksums: BTreeMap::new(),
        meta: ObjectMeta::default(),
        body,
        preconditions: Vec::new(),
    }
}

/// A DeleteObject (a new marker gets `marker` as id in an enabled bucket).
pub fn delete(bucket: &str, key: &str, version_id: Option<&str>, marker: &str) -> DeleteObject {
    DeleteObject {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: version_id.map(str::to_owned),
        created_ms: 2000,
        owner: "alice".to_owned(),
        marker_version_id: marker.to_owned(),
        preconditions: Vec::new(),
    }
}

/// Every fragment `(stripe, index, location)` referenced by a version or a part.
pub fn referenced_fragments(txn: &ReadTransaction) -> BTreeSet<(StripeId, u8, FragmentLocation)> {
    let mut out = BTreeSet::new();
    let mut add = |s: &StripeRecord| {
        for (i, loc) in (0u8..).zip(&s.placement) {
            out.insert((s.id, i, *loc));
        }
    };
    if let Some(t) = tables::open_read(txn, tables::VERSIONS).unwrap() {
        for (_, v) in tables::rows_in(&t, &[], None).unwrap() {
            let rec: VersionRecord = tables::decode("v", &v).unwrap();
            rec.body.stripes().into_iter().for_each(&mut add);
        }
    }
    if let Some(t) = tables::open_read(txn, tables::PARTS).unwrap() {
        for (_, v) in tables::rows_in(&t, &[], None).unwrap() {
            let rec: PartRecord = tables::decode("p", &v).unwrap();
            rec.stripes.iter().for_each(&mut add);
        }
    }
    out
}

/// Every fragment in the GC queue (with repeats).
pub fn queued_fragments(entries: &[GcEntry]) -> Vec<(StripeId, u8, FragmentLocation)> {
    entries
        .iter()
        .flat_map(|e| {
            e.fragments
                .iter()
                .map(move |f| (e.stripe, f.index, f.location))
        })
        .collect()
}

fn rows(txn: &ReadTransaction, def: tables::Def) -> Vec<(Vec<u8>, Vec<u8>)> {
    match tables::open_read(txn, def).unwrap() {
        Some(t) => {
            assert_eq!(
                t.len().unwrap() as usize,
                tables::rows_in(&t, &[], None).unwrap().len()
            );
            tables::rows_in(&t, &[], None).unwrap()
        }
        None => Vec::new(),
    }
}

/// Checks the invariants listed in the module docs against the stored tables.
pub fn check_invariants(txn: &ReadTransaction) {
    // Versions: decodable, keyed by their own (bucket, key, seq), indexed by version id.
    let mut by_object: BTreeMap<Vec<u8>, Vec<VersionRecord>> = BTreeMap::new();
    let version_rows = rows(txn, tables::VERSIONS);
    let mut expected_ids = BTreeMap::new();
    let mut expected_owners: BTreeMap<Vec<u8>, StripeOwner> = BTreeMap::new();
    for (k, v) in &version_rows {
        let rec: VersionRecord = tables::decode("versions", v).unwrap();
        let ok = keys::object_key(&rec.bucket, &rec.key);
        assert_eq!(k, &keys::version_key(&ok, rec.seq), "version row key");
        assert!(
            get_bucket(txn, &rec.bucket).unwrap().is_some(),
            "version of a missing bucket"
        );
        let prev = expected_ids.insert(keys::version_id_key(&ok, &rec.version_id), rec.seq);
        assert!(
            prev.is_none(),
            "two versions of {:?} share id {}",
            rec.key,
            rec.version_id
        );
        for s in rec.body.stripes() {
            let owner = StripeOwner::Version {
                bucket: rec.bucket.clone(),
                key: rec.key.clone(),
                version_id: rec.version_id.clone(),
                seq: rec.seq,
            };
            assert!(
                expected_owners
                    .insert(s.id.to_bytes().to_vec(), owner)
                    .is_none(),
                "stripe {} referenced twice",
                s.id
            );
        }
        by_object.entry(ok).or_default().push(rec);
    }
    let ids: BTreeMap<Vec<u8>, u64> = rows(txn, tables::VERSION_IDS)
        .into_iter()
        .map(|(k, v)| (k, tables::decode("ids", &v).unwrap()))
        .collect();
    assert_eq!(ids, expected_ids, "version id index");

    // Live: exactly the objects whose newest version is not a delete marker.
    let mut expected_live = BTreeMap::new();
    for (ok, versions) in &by_object {
        let newest = versions.iter().max_by_key(|v| v.seq).unwrap();
        assert_eq!(newest.seq, versions[0].seq, "newest version first");
        if !newest.is_delete_marker {
            expected_live.insert(ok.clone(), ObjectEntry::of(newest));
        }
    }
    let live: BTreeMap<Vec<u8>, ObjectEntry> = rows(txn, tables::LIVE)
        .into_iter()
        .map(|(k, v)| (k, tables::decode("live", &v).unwrap()))
        .collect();
    assert_eq!(live, expected_live, "live table");

    // Uploads, their id index and parts.
    let uploads: BTreeMap<Vec<u8>, MultipartUpload> = rows(txn, tables::UPLOADS)
        .into_iter()
        .map(|(k, v)| (k, tables::decode("uploads", &v).unwrap()))
        .collect();
    let mut expected_upload_ids = BTreeMap::new();
    for (uk, u) in &uploads {
        assert_eq!(
            uk,
            &keys::upload_key(&keys::object_key(&u.bucket, &u.key), &u.upload_id)
        );
        assert!(
            get_bucket(txn, &u.bucket).unwrap().is_some(),
            "upload of a missing bucket"
        );
        expected_upload_ids.insert(u.upload_id.as_bytes().to_vec(), uk.clone());
    }
    let upload_ids: BTreeMap<Vec<u8>, Vec<u8>> = rows(txn, tables::UPLOAD_IDS)
        .into_iter()
        .map(|(k, v)| (k, tables::decode("upload ids", &v).unwrap()))
        .collect();
    assert_eq!(upload_ids, expected_upload_ids, "upload id index");
    for (k, v) in rows(txn, tables::PARTS) {
        let part: PartRecord = tables::decode("parts", &v).unwrap();
        assert_eq!(k, keys::part_key(&part.upload_id, part.part_number));
        assert!(
            upload_ids.contains_key(part.upload_id.as_bytes()),
            "part of a missing upload"
        );
        for s in &part.stripes {
            let owner = StripeOwner::Part {
                upload_id: part.upload_id.clone(),
                part_number: part.part_number,
            };
            assert!(
                expected_owners
                    .insert(s.id.to_bytes().to_vec(), owner)
                    .is_none(),
                "stripe {} referenced twice",
                s.id
            );
        }
    }

    // Completed uploads: each points at an existing version of its object, indexed by that
    // version's row key; no id is both completed and in progress.
    let versions: BTreeMap<Vec<u8>, VersionRecord> = version_rows
        .iter()
        .map(|(k, v)| (k.clone(), tables::decode("versions", v).unwrap()))
        .collect();
    let mut expected_by_version = BTreeMap::new();
    for (k, v) in rows(txn, tables::COMPLETED) {
        let done: CompletedUpload = tables::decode("completed", &v).unwrap();
        assert_eq!(k, done.upload_id.as_bytes(), "completed upload row key");
        assert!(
            !upload_ids.contains_key(&k),
            "upload {} is both completed and in progress",
            done.upload_id
        );
        let vk = keys::version_key(&keys::object_key(&done.bucket, &done.key), done.seq);
        assert!(
            versions
                .get(&vk)
                .is_some_and(|rec| rec.version_id == done.version_id),
            "completed upload {} outlived its version",
            done.upload_id
        );
        expected_by_version.insert(vk, done.upload_id);
    }
    let by_version: BTreeMap<Vec<u8>, String> = rows(txn, tables::COMPLETED_BY_VERSION)
        .into_iter()
        .map(|(k, v)| (k, tables::decode("completed by version", &v).unwrap()))
        .collect();
    assert_eq!(by_version, expected_by_version, "completed-upload index");

    // Stripe index: exactly the referenced stripes, each with its one owner.
    let owners: BTreeMap<Vec<u8>, StripeOwner> = rows(txn, tables::STRIPES)
        .into_iter()
        .map(|(k, v)| (k, tables::decode("stripes", &v).unwrap()))
        .collect();
    assert_eq!(owners, expected_owners, "stripe index");

    // GC: no referenced fragment is queued; no fragment is queued twice.
    let referenced = referenced_fragments(txn);
    let queued = queued_fragments(&gc_take(txn, None, usize::MAX).unwrap());
    let mut seen = BTreeSet::new();
    for f in queued {
        assert!(
            !referenced.contains(&f),
            "referenced fragment {f:?} is queued for GC"
        );
        assert!(seen.insert(f), "fragment {f:?} queued twice");
    }
}
