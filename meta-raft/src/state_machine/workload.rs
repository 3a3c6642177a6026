//! A random workload over every command (puts, retries, deletes, versioning changes,
//! multipart, placement changes, GC acks, bucket deletion), for the GC and determinism
//! properties. Each step is an [`OpSpec`]; the [`Driver`] turns it into a concrete
//! command using the current state (so most commands are meaningful), applies it, and
//! tracks every fragment introduced and every GC entry acknowledged.

use std::collections::{BTreeMap, BTreeSet};

use common::cluster::FragmentLocation;
use common::ids::{DiskId, NodeId, StripeId};
use proptest::prelude::*;

use super::test_support::*;
use super::*;

const BUCKET: &str = "bk";
const KEYS: [&str; 4] = ["a", "a/b", "b", "a/c"];

#[derive(Clone, Debug)]
pub enum OpSpec {
    /// 0 stripes = inline body; `pre` picks a precondition.
    Put {
        key: usize,
        stripes: u8,
        pre: u8,
    },
    /// Apply the previous command again (a client or proposer retry).
    Retry,
    Delete {
        key: usize,
    },
    DeleteVersion {
        key: usize,
        pick: usize,
    },
    SetVersioning(bool),
    CreateUpload {
        key: usize,
    },
    RecordPart {
        upload: usize,
        part: u32,
        stripes: u8,
        small: bool,
    },
    Complete {
        upload: usize,
        mask: u8,
    },
    Abort {
        upload: usize,
    },
    /// Move fragment `frag` of the `pick`-th referenced stripe; `stale` sends a wrong
    /// expected placement.
    Replace {
        pick: usize,
        frag: u8,
        stale: bool,
    },
    GcAck {
        n: usize,
    },
    DeleteBucket,
    CreateBucket,
}

pub fn op_spec() -> impl Strategy<Value = OpSpec> {
    let key = 0..KEYS.len();
    prop_oneof![
        6 => (key.clone(), 0u8..3, 0u8..6).prop_map(|(key, stripes, pre)| OpSpec::Put { key, stripes, pre }),
        1 => Just(OpSpec::Retry),
        2 => key.clone().prop_map(|key| OpSpec::Delete { key }),
        2 => (key.clone(), 0usize..4).prop_map(|(key, pick)| OpSpec::DeleteVersion { key, pick }),
        1 => any::<bool>().prop_map(OpSpec::SetVersioning),
        2 => key.clone().prop_map(|key| OpSpec::CreateUpload { key }),
        4 => (0usize..3, 1u32..5, 0u8..3, any::<bool>())
            .prop_map(|(upload, part, stripes, small)| OpSpec::RecordPart { upload, part, stripes, small }),
        2 => (0usize..3, any::<u8>()).prop_map(|(upload, mask)| OpSpec::Complete { upload, mask }),
        1 => (0usize..3).prop_map(|upload| OpSpec::Abort { upload }),
        2 => (0usize..8, 0u8..3, prop::bool::weighted(0.2))
            .prop_map(|(pick, frag, stale)| OpSpec::Replace { pick, frag, stale }),
        2 => (0usize..4).prop_map(|n| OpSpec::GcAck { n }),
        1 => Just(OpSpec::DeleteBucket),
        1 => Just(OpSpec::CreateBucket),
    ]
}

pub struct Driver {
    pub h: Harness,
    next_id: u128,
    next_node: u64,
    /// Every command applied, with its response.
    pub log: Vec<(Command, Response)>,
    /// Every fragment an accepted command brought in.
    pub introduced: BTreeSet<(StripeId, u8, FragmentLocation)>,
    /// Every fragment of an acknowledged GC entry (with repeats).
    pub collected: Vec<(StripeId, u8, FragmentLocation)>,
}

impl Driver {
    pub fn new() -> Self {
        let mut h = Harness::new();
        h.create_bucket(BUCKET, Versioning::Unversioned);
        Driver {
            h,
            next_id: 1,
            next_node: 1_000_000,
            log: Vec::new(),
            introduced: BTreeSet::new(),
            collected: Vec::new(),
        }
    }

    fn fresh(&mut self) -> u128 {
        self.next_id += 1;
        self.next_id
    }

    fn stripes(&mut self, n: u8, data_len: u64) -> Vec<StripeRecord> {
        (0..n).map(|_| stripe(self.fresh(), data_len)).collect()
    }

    fn uploads(&self) -> Vec<MultipartUpload> {
        let params = ListUploadsParams {
            max_uploads: 1000,
            ..Default::default()
        };
        match list_multipart_uploads(&self.h.read(), BUCKET, &params) {
            Ok(page) => page.uploads,
            Err(_) => Vec::new(),
        }
    }

    fn apply(&mut self, cmd: Command) -> Response {
        let r = self.h.apply(&cmd);
        let accepted = !matches!(r, Response::Rejected(_));
        if accepted {
            let mut add = |s: &StripeRecord| {
                for (i, loc) in (0u8..).zip(&s.placement) {
                    self.introduced.insert((s.id, i, *loc));
                }
            };
            match &cmd {
                Command::PutObject(p) => p.body.stripes().into_iter().for_each(&mut add),
                Command::RecordPart(p) => p.stripes.iter().for_each(&mut add),
                Command::ReplacePlacement(c) => {
                    for (i, loc) in (0u8..).zip(&c.new) {
                        self.introduced.insert((c.stripe, i, *loc));
                    }
                }
                _ => {}
            }
        }
        self.log.push((cmd, r.clone()));
        r
    }

    pub fn step(&mut self, op: &OpSpec) {
        let n = self.log.len();
        match op {
            OpSpec::Put { key, stripes, pre } => {
                let key = KEYS[*key];
                let body = if *stripes == 0 {
                    ObjectBody::Inline(vec![n as u8])
                } else {
                    ObjectBody::Stripes {
                        codec: CODEC,
                        stripes: self.stripes(*stripes, 10),
                    }
                };
                let mut p = put(BUCKET, key, &format!("v{n}"), body);
                let current = head_object(&self.h.read(), BUCKET, key).ok();
                let current = match current {
                    Some(CurrentVersion::Object(v)) | Some(CurrentVersion::DeleteMarker(v)) => {
                        Some(v)
                    }
                    _ => None,
                };
                p.preconditions = match (pre, current) {
                    (1, _) => vec![Precondition::KeyAbsent],
                    (2, Some(c)) => vec![Precondition::CurrentEtagEquals(c.etag)],
                    (3, Some(c)) => vec![Precondition::CurrentVersionEquals(c.version_id)],
                    (4, _) => vec![Precondition::CurrentVersionEquals("stale".to_owned())],
                    _ => Vec::new(),
                };
                self.apply(Command::PutObject(p));
            }
            OpSpec::Retry => {
                if let Some((cmd, _)) = self.log.last().cloned() {
                    self.apply(cmd);
                }
            }
            OpSpec::Delete { key } => {
                self.apply(Command::DeleteObject(delete(
                    BUCKET,
                    KEYS[*key],
                    None,
                    &format!("m{n}"),
                )));
            }
            OpSpec::DeleteVersion { key, pick } => {
                let versions = self.h.versions_of(BUCKET, KEYS[*key]);
                let vid = versions
                    .get(pick % versions.len().max(1))
                    .map_or("missing".to_owned(), |v| v.version_id.clone());
                self.apply(Command::DeleteObject(delete(
                    BUCKET,
                    KEYS[*key],
                    Some(&vid),
                    "_",
                )));
            }
            OpSpec::SetVersioning(enabled) => {
                let versioning = if *enabled {
                    Versioning::Enabled
                } else {
                    Versioning::Suspended
                };
                self.apply(Command::SetBucketVersioning {
                    name: BUCKET.to_owned(),
                    versioning,
                });
            }
            OpSpec::CreateUpload { key } => {
                let c = super::multipart_test::create(BUCKET, KEYS[*key], &format!("u{n}"));
                self.apply(Command::CreateMultipartUpload(c));
            }
            OpSpec::RecordPart {
                upload,
                part,
                stripes,
                small,
            } => {
                let uploads = self.uploads();
                let Some(u) = uploads.get(upload % uploads.len().max(1)) else {
                    return;
                };
                let data_len = if *small { 5 } else { 60 };
                let stripes = self.stripes(*stripes, data_len);
                let size = stripes.iter().map(|s| s.data_len).sum();
                let etag = format!("{:032x}", self.fresh());
                let c = RecordPart {
                    bucket: u.bucket.clone(),
                    key: u.key.clone(),
                    upload_id: u.upload_id.clone(),
                    part_number: *part,
                    size,
                    etag,
                    checksums: BTreeMap::new(),
                    stripes,
                    created_ms: 7,
                };
                self.apply(Command::RecordPart(c));
            }
            OpSpec::Complete { upload, mask } => {
                let uploads = self.uploads();
                let Some(u) = uploads.get(upload % uploads.len().max(1)) else {
                    return;
                };
                let parts = list_parts(&self.h.read(), BUCKET, &u.key, &u.upload_id, 0, 1000)
                    .map(|p| p.parts)
                    .unwrap_or_default();
                let listed: Vec<CompletedPart> = parts
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << (i % 8)) != 0)
                    .map(|(_, p)| CompletedPart {
                        part_number: p.part_number,
                        etag: p.etag.clone(),
                    })
                    .collect();
                let c = CompleteMultipartUpload {
                    bucket: u.bucket.clone(),
                    key: u.key.clone(),
                    upload_id: u.upload_id.clone(),
                    parts: listed,
                    min_part_size: 50,
                    version_id: format!("c{n}"),
                    created_ms: 9,
                    checksums: BTreeMap::new(),
                    preconditions: Vec::new(),
                };
                self.apply(Command::CompleteMultipartUpload(c));
            }
            OpSpec::Abort { upload } => {
                let uploads = self.uploads();
                let Some(u) = uploads.get(upload % uploads.len().max(1)) else {
                    return;
                };
                let c = AbortMultipartUpload {
                    bucket: u.bucket.clone(),
                    key: u.key.clone(),
                    upload_id: u.upload_id.clone(),
                };
                self.apply(Command::AbortMultipartUpload(c));
            }
            OpSpec::Replace { pick, frag, stale } => {
                let referenced = referenced_fragments(&self.h.read());
                let stripes: BTreeMap<StripeId, Vec<FragmentLocation>> =
                    referenced
                        .iter()
                        .fold(BTreeMap::new(), |mut m, (s, _, loc)| {
                            m.entry(*s).or_insert_with(Vec::new).push(*loc);
                            m
                        });
                let Some((&stripe, _)) = stripes.iter().nth(pick % stripes.len().max(1)) else {
                    return;
                };
                // The placement in fragment order, from the record itself.
                let expected = placement_of(&self.h, stripe);
                let mut new = expected.clone();
                self.next_node += 1;
                let slot = usize::from(*frag) % new.len();
                new[slot] = FragmentLocation {
                    node: NodeId(self.next_node),
                    disk: DiskId(0),
                };
                let mut expected = expected;
                if *stale {
                    expected.swap(0, 1);
                }
                self.apply(Command::ReplacePlacement(ReplacePlacement {
                    stripe,
                    expected,
                    new,
                }));
            }
            OpSpec::GcAck { n } => {
                let entries = gc_take(&self.h.read(), None, *n).unwrap();
                let ids: Vec<GcId> = entries.iter().map(|e| e.id).collect();
                let r = self.apply(Command::GcAck { ids, at_ms: 0 });
                assert_eq!(
                    r,
                    Response::GcAcked {
                        removed: entries.len() as u32
                    }
                );
                self.collected.extend(queued_fragments(&entries));
            }
            OpSpec::DeleteBucket => {
                self.apply(Command::DeleteBucket {
                    name: BUCKET.to_owned(),
                });
            }
            OpSpec::CreateBucket => {
                self.apply(Command::CreateBucket {
                    name: BUCKET.to_owned(),
                    owner: "alice".to_owned(),
                    created_ms: n as u64,
                    versioning: Versioning::Unversioned,
                });
            }
        }
    }
}

/// The stored placement of `stripe` (from its version or part).
pub fn placement_of(h: &Harness, stripe: StripeId) -> Vec<FragmentLocation> {
    let txn = h.read();
    match stripe_owner(&txn, stripe).unwrap().expect("indexed") {
        StripeOwner::Version {
            bucket,
            key,
            version_id,
            ..
        } => {
            let v = get_version(&txn, &bucket, &key, &version_id)
                .unwrap()
                .unwrap();
            v.body
                .stripes()
                .into_iter()
                .find(|s| s.id == stripe)
                .unwrap()
                .placement
                .clone()
        }
        StripeOwner::Part {
            upload_id,
            part_number,
        } => {
            let u = get_upload(&txn, &upload_id).unwrap().unwrap();
            let parts =
                list_parts(&txn, &u.bucket, &u.key, &upload_id, part_number - 1, 1).unwrap();
            parts.parts[0]
                .stripes
                .iter()
                .find(|s| s.id == stripe)
                .unwrap()
                .placement
                .clone()
        }
    }
}
