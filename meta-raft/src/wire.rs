//! Validating conversions between the metadata service's wire messages (`proto::meta`)
//! and the state machine's types. They live here rather than in `proto/src/convert/`
//! because the record types belong to this crate, which sits above `proto`; the
//! conversions of the `common` types they contain (codec, locations, stripe ids, nodes)
//! are in `proto::convert`.
//!
//! Inbound (`TryFrom<&pb::…>`): a malformed message — a stripe id that is not 16 bytes,
//! a fragment index above 255, an unknown codec, an unspecified enum, a missing required
//! sub-message, an invalid group map — is a [`ConvertError`] naming the field, never a
//! panic. What the wire cannot get wrong but S3 forbids (a key over 1024 bytes, a code
//! the codec does not support, a wrong number of locations) is left to the state
//! machine, which rejects it with a [`crate::state_machine::Reason`].
//!
//! Outbound (`From<&domain>`): infallible.

use std::collections::{BTreeMap, HashMap};

use common::cluster::{DiskInfo, FragmentLocation, NodeInfo};
use common::codec::CodecParams;
use common::ids::{DiskId, GroupId};
use proto::convert::{required, stripe_id_from_wire, stripe_id_to_wire, ConvertError};
use proto::meta as pb;

use crate::group_status::GroupStatus;
use crate::state_machine::{
    AbortMultipartUpload, AccessKey, BucketRecord, CompleteMultipartUpload, CompletedPart,
    CreateMultipartUpload, DeleteObject, GcEntry, GcFragment, GcId, GroupMap, GroupRange,
    MultipartUpload, NodeRecord, ObjectBody, ObjectEntry, ObjectMeta, PartManifestEntry,
    PartRecord, Precondition, PutObject, Reason, RecordPart, ReplacePlacement, StripeRecord,
    VersionEntry, VersionRecord, Versioning,
};
use crate::state_machine::{StripeEntry, StripeOwner};

fn to_btree(m: &HashMap<String, String>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn to_hash(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn try_all<'a, W: 'a, D>(
    items: impl IntoIterator<Item = &'a W>,
    f: impl Fn(&'a W) -> Result<D, ConvertError>,
) -> Result<Vec<D>, ConvertError> {
    items.into_iter().map(f).collect()
}

// ---- versioning ----

pub fn versioning_from_wire(field: &'static str, v: i32) -> Result<Versioning, ConvertError> {
    match pb::Versioning::try_from(v) {
        Ok(pb::Versioning::Unversioned) => Ok(Versioning::Unversioned),
        Ok(pb::Versioning::Enabled) => Ok(Versioning::Enabled),
        Ok(pb::Versioning::Suspended) => Ok(Versioning::Suspended),
        Ok(pb::Versioning::Unspecified) | Err(_) => Err(ConvertError::new(
            field,
            format!("invalid versioning state {v}"),
        )),
    }
}

pub fn versioning_to_wire(v: Versioning) -> i32 {
    let wire = match v {
        Versioning::Unversioned => pb::Versioning::Unversioned,
        Versioning::Enabled => pb::Versioning::Enabled,
        Versioning::Suspended => pb::Versioning::Suspended,
    };
    wire as i32
}

// ---- buckets ----

impl TryFrom<&pb::Bucket> for BucketRecord {
    type Error = ConvertError;

    fn try_from(m: &pb::Bucket) -> Result<Self, ConvertError> {
        Ok(BucketRecord {
            name: m.name.clone(),
            owner: m.owner.clone(),
            created_ms: m.created_ms,
            versioning: versioning_from_wire("bucket.versioning", m.versioning)?,
        })
    }
}

impl From<&BucketRecord> for pb::Bucket {
    fn from(b: &BucketRecord) -> Self {
        pb::Bucket {
            name: b.name.clone(),
            owner: b.owner.clone(),
            created_ms: b.created_ms,
            versioning: versioning_to_wire(b.versioning),
        }
    }
}

// ---- object metadata and bodies ----

impl From<&pb::ObjectMeta> for ObjectMeta {
    fn from(m: &pb::ObjectMeta) -> Self {
        ObjectMeta {
            content_type: m.content_type.clone(),
            cache_control: m.cache_control.clone(),
            content_disposition: m.content_disposition.clone(),
            content_encoding: m.content_encoding.clone(),
            content_language: m.content_language.clone(),
            expires: m.expires.clone(),
            user_metadata: to_btree(&m.user_metadata),
        }
    }
}

impl From<&ObjectMeta> for pb::ObjectMeta {
    fn from(m: &ObjectMeta) -> Self {
        pb::ObjectMeta {
            content_type: m.content_type.clone(),
            cache_control: m.cache_control.clone(),
            content_disposition: m.content_disposition.clone(),
            content_encoding: m.content_encoding.clone(),
            content_language: m.content_language.clone(),
            expires: m.expires.clone(),
            user_metadata: to_hash(&m.user_metadata),
        }
    }
}

/// An absent `ObjectMeta` message means no headers.
fn meta_or_default(m: Option<&pb::ObjectMeta>) -> ObjectMeta {
    m.map(ObjectMeta::from).unwrap_or_default()
}

fn codec(m: Option<&pb::CodecParams>, field: &'static str) -> Result<CodecParams, ConvertError> {
    CodecParams::try_from(required(m, field)?)
}

fn locations(ls: &[pb::FragmentLocation]) -> Vec<FragmentLocation> {
    ls.iter().map(FragmentLocation::from).collect()
}

fn locations_to_wire(ls: &[FragmentLocation]) -> Vec<pb::FragmentLocation> {
    ls.iter().copied().map(pb::FragmentLocation::from).collect()
}

impl TryFrom<&pb::Stripe> for StripeRecord {
    type Error = ConvertError;

    fn try_from(m: &pb::Stripe) -> Result<Self, ConvertError> {
        Ok(StripeRecord {
            id: stripe_id_from_wire("stripe.id", &m.id)?,
            data_len: m.data_len,
            placement: locations(&m.placement),
        })
    }
}

impl From<&StripeRecord> for pb::Stripe {
    fn from(s: &StripeRecord) -> Self {
        pb::Stripe {
            id: stripe_id_to_wire(s.id),
            data_len: s.data_len,
            placement: locations_to_wire(&s.placement),
        }
    }
}

fn stripes(ss: &[pb::Stripe]) -> Result<Vec<StripeRecord>, ConvertError> {
    try_all(ss, StripeRecord::try_from)
}

fn stripes_to_wire(ss: &[StripeRecord]) -> Vec<pb::Stripe> {
    ss.iter().map(pb::Stripe::from).collect()
}

impl TryFrom<&pb::PartManifestEntry> for PartManifestEntry {
    type Error = ConvertError;

    fn try_from(m: &pb::PartManifestEntry) -> Result<Self, ConvertError> {
        Ok(PartManifestEntry {
            part_number: m.part_number,
            size: m.size,
            etag: m.etag.clone(),
            stripes: stripes(&m.stripes)?,
        })
    }
}

impl TryFrom<&pb::ObjectBody> for ObjectBody {
    type Error = ConvertError;

    fn try_from(m: &pb::ObjectBody) -> Result<Self, ConvertError> {
        use pb::object_body::Body;
        match required(m.body.as_ref(), "object_body.body")? {
            Body::Inline(bytes) => Ok(ObjectBody::Inline(bytes.to_vec())),
            Body::Stripes(s) => Ok(ObjectBody::Stripes {
                codec: codec(s.codec.as_ref(), "object_body.stripes.codec")?,
                stripes: stripes(&s.stripes)?,
            }),
            Body::Multipart(mp) => Ok(ObjectBody::Multipart {
                codec: codec(mp.codec.as_ref(), "object_body.multipart.codec")?,
                parts: try_all(&mp.parts, PartManifestEntry::try_from)?,
            }),
        }
    }
}

impl From<&ObjectBody> for pb::ObjectBody {
    fn from(b: &ObjectBody) -> Self {
        use pb::object_body::Body;
        let body = match b {
            ObjectBody::Inline(bytes) => Body::Inline(bytes::Bytes::copy_from_slice(bytes)),
            ObjectBody::Stripes { codec, stripes } => Body::Stripes(pb::StripesBody {
                codec: Some((*codec).into()),
                stripes: stripes_to_wire(stripes),
            }),
            ObjectBody::Multipart { codec, parts } => Body::Multipart(pb::MultipartBody {
                codec: Some((*codec).into()),
                parts: parts
                    .iter()
                    .map(|p| pb::PartManifestEntry {
                        part_number: p.part_number,
                        size: p.size,
                        etag: p.etag.clone(),
                        stripes: stripes_to_wire(&p.stripes),
                    })
                    .collect(),
            }),
        };
        pb::ObjectBody { body: Some(body) }
    }
}

impl TryFrom<&pb::Precondition> for Precondition {
    type Error = ConvertError;

    fn try_from(m: &pb::Precondition) -> Result<Self, ConvertError> {
        use pb::precondition::Condition;
        Ok(
            match required(m.condition.as_ref(), "precondition.condition")? {
                Condition::KeyAbsent(_) => Precondition::KeyAbsent,
                Condition::CurrentEtagEquals(e) => Precondition::CurrentEtagEquals(e.clone()),
                Condition::CurrentVersionEquals(v) => Precondition::CurrentVersionEquals(v.clone()),
            },
        )
    }
}

impl From<&Precondition> for pb::Precondition {
    fn from(p: &Precondition) -> Self {
        use pb::precondition::Condition;
        let condition = match p {
            Precondition::KeyAbsent => Condition::KeyAbsent(pb::KeyAbsent {}),
            Precondition::CurrentEtagEquals(e) => Condition::CurrentEtagEquals(e.clone()),
            Precondition::CurrentVersionEquals(v) => Condition::CurrentVersionEquals(v.clone()),
        };
        pb::Precondition {
            condition: Some(condition),
        }
    }
}

fn preconditions(ps: &[pb::Precondition]) -> Result<Vec<Precondition>, ConvertError> {
    try_all(ps, Precondition::try_from)
}

fn preconditions_to_wire(ps: &[Precondition]) -> Vec<pb::Precondition> {
    ps.iter().map(pb::Precondition::from).collect()
}

// ---- versions and listing entries ----

impl TryFrom<&pb::Version> for VersionRecord {
    type Error = ConvertError;

    fn try_from(m: &pb::Version) -> Result<Self, ConvertError> {
        Ok(VersionRecord {
            bucket: m.bucket.clone(),
            key: m.key.clone(),
            version_id: m.version_id.clone(),
            seq: m.seq,
            created_ms: m.created_ms,
            owner: m.owner.clone(),
            size: m.size,
            etag: m.etag.clone(),
            checksums: to_btree(&m.checksums),
            meta: meta_or_default(m.meta.as_ref()),
            body: ObjectBody::try_from(required(m.body.as_ref(), "version.body")?)?,
            is_delete_marker: m.is_delete_marker,
        })
    }
}

impl From<&VersionRecord> for pb::Version {
    fn from(v: &VersionRecord) -> Self {
        pb::Version {
            bucket: v.bucket.clone(),
            key: v.key.clone(),
            version_id: v.version_id.clone(),
            seq: v.seq,
            created_ms: v.created_ms,
            owner: v.owner.clone(),
            size: v.size,
            etag: v.etag.clone(),
            checksums: to_hash(&v.checksums),
            meta: Some((&v.meta).into()),
            body: Some((&v.body).into()),
            is_delete_marker: v.is_delete_marker,
        }
    }
}

impl From<&pb::ObjectEntry> for ObjectEntry {
    fn from(m: &pb::ObjectEntry) -> Self {
        ObjectEntry {
            key: m.key.clone(),
            version_id: m.version_id.clone(),
            seq: m.seq,
            created_ms: m.created_ms,
            size: m.size,
            etag: m.etag.clone(),
            owner: m.owner.clone(),
            checksum_algorithms: m.checksum_algorithms.clone(),
        }
    }
}

impl From<&ObjectEntry> for pb::ObjectEntry {
    fn from(e: &ObjectEntry) -> Self {
        pb::ObjectEntry {
            key: e.key.clone(),
            version_id: e.version_id.clone(),
            seq: e.seq,
            created_ms: e.created_ms,
            size: e.size,
            etag: e.etag.clone(),
            owner: e.owner.clone(),
            checksum_algorithms: e.checksum_algorithms.clone(),
        }
    }
}

impl From<&pb::VersionEntry> for VersionEntry {
    fn from(m: &pb::VersionEntry) -> Self {
        VersionEntry {
            key: m.key.clone(),
            version_id: m.version_id.clone(),
            seq: m.seq,
            created_ms: m.created_ms,
            size: m.size,
            etag: m.etag.clone(),
            owner: m.owner.clone(),
            is_delete_marker: m.is_delete_marker,
            is_latest: m.is_latest,
            checksum_algorithms: m.checksum_algorithms.clone(),
        }
    }
}

impl From<&VersionEntry> for pb::VersionEntry {
    fn from(e: &VersionEntry) -> Self {
        pb::VersionEntry {
            key: e.key.clone(),
            version_id: e.version_id.clone(),
            seq: e.seq,
            created_ms: e.created_ms,
            size: e.size,
            etag: e.etag.clone(),
            owner: e.owner.clone(),
            is_delete_marker: e.is_delete_marker,
            is_latest: e.is_latest,
            checksum_algorithms: e.checksum_algorithms.clone(),
        }
    }
}

// ---- multipart ----

impl TryFrom<&pb::MultipartUpload> for MultipartUpload {
    type Error = ConvertError;

    fn try_from(m: &pb::MultipartUpload) -> Result<Self, ConvertError> {
        Ok(MultipartUpload {
            bucket: m.bucket.clone(),
            key: m.key.clone(),
            upload_id: m.upload_id.clone(),
            seq: m.seq,
            initiated_ms: m.initiated_ms,
            owner: m.owner.clone(),
            meta: meta_or_default(m.meta.as_ref()),
            codec: codec(m.codec.as_ref(), "multipart_upload.codec")?,
            checksum_algorithm: m.checksum_algorithm.clone(),
        })
    }
}

impl From<&MultipartUpload> for pb::MultipartUpload {
    fn from(u: &MultipartUpload) -> Self {
        pb::MultipartUpload {
            bucket: u.bucket.clone(),
            key: u.key.clone(),
            upload_id: u.upload_id.clone(),
            seq: u.seq,
            initiated_ms: u.initiated_ms,
            owner: u.owner.clone(),
            meta: Some((&u.meta).into()),
            codec: Some(u.codec.into()),
            checksum_algorithm: u.checksum_algorithm.clone(),
        }
    }
}

impl TryFrom<&pb::Part> for PartRecord {
    type Error = ConvertError;

    fn try_from(m: &pb::Part) -> Result<Self, ConvertError> {
        Ok(PartRecord {
            upload_id: m.upload_id.clone(),
            part_number: m.part_number,
            size: m.size,
            etag: m.etag.clone(),
            checksums: to_btree(&m.checksums),
            stripes: stripes(&m.stripes)?,
            created_ms: m.created_ms,
            seq: m.seq,
        })
    }
}

impl From<&PartRecord> for pb::Part {
    fn from(p: &PartRecord) -> Self {
        pb::Part {
            upload_id: p.upload_id.clone(),
            part_number: p.part_number,
            size: p.size,
            etag: p.etag.clone(),
            checksums: to_hash(&p.checksums),
            stripes: stripes_to_wire(&p.stripes),
            created_ms: p.created_ms,
            seq: p.seq,
        }
    }
}

// ---- GC queue ----

impl From<&pb::GcId> for GcId {
    fn from(m: &pb::GcId) -> Self {
        GcId {
            log_index: m.log_index,
            ordinal: m.ordinal,
        }
    }
}

impl From<GcId> for pb::GcId {
    fn from(id: GcId) -> Self {
        pb::GcId {
            log_index: id.log_index,
            ordinal: id.ordinal,
        }
    }
}

impl TryFrom<&pb::GcEntry> for GcEntry {
    type Error = ConvertError;

    fn try_from(m: &pb::GcEntry) -> Result<Self, ConvertError> {
        let fragments = try_all(&m.fragments, |f| {
            Ok(GcFragment {
                index: u8::try_from(f.index).map_err(|_| {
                    ConvertError::new("gc_fragment.index", format!("{} exceeds 255", f.index))
                })?,
                location: FragmentLocation::from(required(
                    f.location.as_ref(),
                    "gc_fragment.location",
                )?),
            })
        })?;
        Ok(GcEntry {
            id: GcId::from(required(m.id.as_ref(), "gc_entry.id")?),
            stripe: stripe_id_from_wire("gc_entry.stripe_id", &m.stripe_id)?,
            fragments,
        })
    }
}

impl From<&GcEntry> for pb::GcEntry {
    fn from(e: &GcEntry) -> Self {
        pb::GcEntry {
            id: Some(e.id.into()),
            stripe_id: stripe_id_to_wire(e.stripe),
            fragments: e
                .fragments
                .iter()
                .map(|f| pb::GcFragment {
                    index: u32::from(f.index),
                    location: Some(f.location.into()),
                })
                .collect(),
        }
    }
}

// ---- stripe listing (repair) ----

impl TryFrom<&pb::StripeOwner> for StripeOwner {
    type Error = ConvertError;

    fn try_from(m: &pb::StripeOwner) -> Result<Self, ConvertError> {
        use pb::stripe_owner::Owner;
        Ok(match required(m.owner.as_ref(), "stripe_owner.owner")? {
            Owner::Version(v) => StripeOwner::Version {
                bucket: v.bucket.clone(),
                key: v.key.clone(),
                version_id: v.version_id.clone(),
                seq: v.seq,
            },
            Owner::Part(p) => StripeOwner::Part {
                upload_id: p.upload_id.clone(),
                part_number: p.part_number,
            },
        })
    }
}

impl From<&StripeOwner> for pb::StripeOwner {
    fn from(o: &StripeOwner) -> Self {
        use pb::stripe_owner::Owner;
        let owner = match o {
            StripeOwner::Version {
                bucket,
                key,
                version_id,
                seq,
            } => Owner::Version(pb::StripeVersionOwner {
                bucket: bucket.clone(),
                key: key.clone(),
                version_id: version_id.clone(),
                seq: *seq,
            }),
            StripeOwner::Part {
                upload_id,
                part_number,
            } => Owner::Part(pb::StripePartOwner {
                upload_id: upload_id.clone(),
                part_number: *part_number,
            }),
        };
        pb::StripeOwner { owner: Some(owner) }
    }
}

impl TryFrom<&pb::StripeEntry> for StripeEntry {
    type Error = ConvertError;

    fn try_from(m: &pb::StripeEntry) -> Result<Self, ConvertError> {
        Ok(StripeEntry {
            id: stripe_id_from_wire("stripe_entry.stripe_id", &m.stripe_id)?,
            owner: StripeOwner::try_from(required(m.owner.as_ref(), "stripe_entry.owner")?)?,
            codec: codec(m.codec.as_ref(), "stripe_entry.codec")?,
            data_len: m.data_len,
            placement: locations(&m.placement),
        })
    }
}

impl From<&StripeEntry> for pb::StripeEntry {
    fn from(s: &StripeEntry) -> Self {
        pb::StripeEntry {
            stripe_id: stripe_id_to_wire(s.id),
            owner: Some(pb::StripeOwner::from(&s.owner)),
            codec: Some(s.codec.into()),
            data_len: s.data_len,
            placement: locations_to_wire(&s.placement),
        }
    }
}

// ---- root group records ----

impl TryFrom<&pb::NodeRecord> for NodeRecord {
    type Error = ConvertError;

    fn try_from(m: &pb::NodeRecord) -> Result<Self, ConvertError> {
        Ok(NodeRecord {
            info: NodeInfo::try_from(required(m.info.as_ref(), "node_record.info")?)?,
            last_heartbeat_ms: m.last_heartbeat_ms,
            state_reason: m.state_reason.clone(),
            state_changed_ms: m.state_changed_ms,
            heartbeats: m.heartbeats,
            failed_disks: m
                .failed_disks
                .iter()
                .map(|f| {
                    (
                        DiskId(f.disk_id),
                        crate::state_machine::DiskFailure {
                            reason: f.reason.clone(),
                            at_ms: f.at_ms,
                        },
                    )
                })
                .collect(),
        })
    }
}

impl From<&NodeRecord> for pb::NodeRecord {
    fn from(r: &NodeRecord) -> Self {
        pb::NodeRecord {
            info: Some((&r.info).into()),
            last_heartbeat_ms: r.last_heartbeat_ms,
            state_reason: r.state_reason.clone(),
            state_changed_ms: r.state_changed_ms,
            heartbeats: r.heartbeats,
            failed_disks: r
                .failed_disks
                .iter()
                .map(|(d, f)| pb::DiskFailure {
                    disk_id: d.0,
                    reason: f.reason.clone(),
                    at_ms: f.at_ms,
                })
                .collect(),
        }
    }
}

impl From<&pb::AccessKey> for AccessKey {
    fn from(m: &pb::AccessKey) -> Self {
        AccessKey {
            id: m.id.clone(),
            secret: m.secret.clone(),
            user: m.user.clone(),
            created_ms: m.created_ms,
        }
    }
}

impl From<&AccessKey> for pb::AccessKey {
    fn from(k: &AccessKey) -> Self {
        pb::AccessKey {
            id: k.id.clone(),
            secret: k.secret.clone(),
            user: k.user.clone(),
            created_ms: k.created_ms,
        }
    }
}

/// Also checks the map is sorted, contiguous and covers the key space (routing with an
/// invalid map would have no answer for some keys).
impl TryFrom<&pb::GroupMap> for GroupMap {
    type Error = ConvertError;

    fn try_from(m: &pb::GroupMap) -> Result<Self, ConvertError> {
        let map = GroupMap {
            version: m.version,
            groups: m
                .groups
                .iter()
                .map(|g| GroupRange {
                    group: GroupId(g.group_id),
                    start: g.start.to_vec(),
                    end: g.end.as_ref().map(|e| e.to_vec()),
                    members: g.members.iter().map(|(k, v)| (*k, v.clone())).collect(),
                })
                .collect(),
        };
        if !map.is_valid() {
            return Err(ConvertError::new(
                "group_map.groups",
                "ranges must be sorted, contiguous and cover the key space",
            ));
        }
        Ok(map)
    }
}

impl From<&GroupMap> for pb::GroupMap {
    fn from(m: &GroupMap) -> Self {
        pb::GroupMap {
            version: m.version,
            groups: m
                .groups
                .iter()
                .map(|g| pb::GroupRange {
                    group_id: g.group.0,
                    start: bytes::Bytes::copy_from_slice(&g.start),
                    end: g.end.as_deref().map(bytes::Bytes::copy_from_slice),
                    members: g.members.iter().map(|(k, v)| (*k, v.clone())).collect(),
                })
                .collect(),
        }
    }
}

impl From<&GroupStatus> for pb::GroupStatus {
    fn from(s: &GroupStatus) -> Self {
        pb::GroupStatus {
            group_id: s.group.0,
            node_id: s.node_id,
            state: s.state.clone(),
            leader_id: s.leader,
            term: s.term,
            voters: s.voters.iter().map(|(k, v)| (*k, v.clone())).collect(),
            learners: s.learners.iter().map(|(k, v)| (*k, v.clone())).collect(),
            last_log_index: s.last_log_index,
            committed_index: s.committed_index,
            applied_index: s.applied_index,
            snapshot_index: s.snapshot_index,
            purged_index: s.purged_index,
            replication: s
                .replication
                .iter()
                .map(|(id, matched)| pb::ReplicaProgress {
                    node_id: *id,
                    matched_index: *matched,
                })
                .collect(),
        }
    }
}

impl From<&pb::GroupStatus> for GroupStatus {
    fn from(s: &pb::GroupStatus) -> Self {
        GroupStatus {
            group: GroupId(s.group_id),
            node_id: s.node_id,
            state: s.state.clone(),
            leader: s.leader_id,
            term: s.term,
            voters: s.voters.iter().map(|(k, v)| (*k, v.clone())).collect(),
            learners: s.learners.iter().map(|(k, v)| (*k, v.clone())).collect(),
            last_log_index: s.last_log_index,
            committed_index: s.committed_index,
            applied_index: s.applied_index,
            snapshot_index: s.snapshot_index,
            purged_index: s.purged_index,
            replication: s
                .replication
                .iter()
                .map(|p| (p.node_id, p.matched_index))
                .collect(),
        }
    }
}

pub fn disks(ds: &[pb::DiskInfo]) -> Result<Vec<DiskInfo>, ConvertError> {
    try_all(ds, DiskInfo::try_from)
}

// ---- business rejections ----

/// The numbered code of a rejection.
pub fn reason_code(r: &Reason) -> pb::MetaErrorCode {
    use pb::MetaErrorCode as C;
    match r {
        Reason::NoSuchBucket => C::NoSuchBucket,
        Reason::BucketAlreadyExists => C::BucketAlreadyExists,
        Reason::BucketAlreadyOwnedByYou => C::BucketAlreadyOwnedByYou,
        Reason::BucketNotEmpty => C::BucketNotEmpty,
        Reason::InvalidBucketName => C::InvalidBucketName,
        Reason::KeyTooLong => C::KeyTooLong,
        Reason::NoSuchKey => C::NoSuchKey,
        Reason::NoSuchVersion => C::NoSuchVersion,
        Reason::PreconditionFailed => C::PreconditionFailed,
        Reason::NoSuchUpload => C::NoSuchUpload,
        Reason::InvalidPart { .. } => C::InvalidPart,
        Reason::InvalidPartOrder => C::InvalidPartOrder,
        Reason::EntityTooSmall { .. } => C::EntityTooSmall,
        Reason::InvalidPartNumber => C::InvalidPartNumber,
        Reason::TooManyParts => C::TooManyParts,
        Reason::NoParts => C::NoParts,
        Reason::VersionIdConflict => C::VersionIdConflict,
        Reason::UploadIdConflict => C::UploadIdConflict,
        Reason::StripeInUse(_) => C::StripeInUse,
        Reason::NoSuchStripe(_) => C::NoSuchStripe,
        Reason::PlacementMismatch => C::PlacementMismatch,
        Reason::InvalidArgument(_) => C::InvalidArgument,
    }
}

/// The wire error of a rejection by group `group`, with the rejection's details.
pub fn reason_error(group: GroupId, r: &Reason) -> pb::MetaError {
    let mut e = pb::MetaError {
        code: reason_code(r) as i32,
        message: r.to_string(),
        group_id: group.0,
        ..pb::MetaError::default()
    };
    match r {
        Reason::InvalidPart { part_number } | Reason::EntityTooSmall { part_number } => {
            e.part_number = *part_number;
        }
        Reason::StripeInUse(id) | Reason::NoSuchStripe(id) => e.stripe_id = stripe_id_to_wire(*id),
        Reason::InvalidArgument(msg) => e.message = msg.clone(),
        _ => {}
    }
    e
}

/// The rejection a wire error describes; `Ok(None)` if its code is not a business
/// rejection (routing, availability, internal errors).
pub fn reason_from_error(e: &pb::MetaError) -> Result<Option<Reason>, ConvertError> {
    use pb::MetaErrorCode as C;
    let Ok(code) = C::try_from(e.code) else {
        return Ok(None);
    };
    Ok(Some(match code {
        C::NoSuchBucket => Reason::NoSuchBucket,
        C::BucketAlreadyExists => Reason::BucketAlreadyExists,
        C::BucketAlreadyOwnedByYou => Reason::BucketAlreadyOwnedByYou,
        C::BucketNotEmpty => Reason::BucketNotEmpty,
        C::InvalidBucketName => Reason::InvalidBucketName,
        C::KeyTooLong => Reason::KeyTooLong,
        C::NoSuchKey => Reason::NoSuchKey,
        C::NoSuchVersion => Reason::NoSuchVersion,
        C::PreconditionFailed => Reason::PreconditionFailed,
        C::NoSuchUpload => Reason::NoSuchUpload,
        C::InvalidPart => Reason::InvalidPart {
            part_number: e.part_number,
        },
        C::InvalidPartOrder => Reason::InvalidPartOrder,
        C::EntityTooSmall => Reason::EntityTooSmall {
            part_number: e.part_number,
        },
        C::InvalidPartNumber => Reason::InvalidPartNumber,
        C::TooManyParts => Reason::TooManyParts,
        C::NoParts => Reason::NoParts,
        C::VersionIdConflict => Reason::VersionIdConflict,
        C::UploadIdConflict => Reason::UploadIdConflict,
        C::StripeInUse => {
            Reason::StripeInUse(stripe_id_from_wire("meta_error.stripe_id", &e.stripe_id)?)
        }
        C::NoSuchStripe => {
            Reason::NoSuchStripe(stripe_id_from_wire("meta_error.stripe_id", &e.stripe_id)?)
        }
        C::PlacementMismatch => Reason::PlacementMismatch,
        C::InvalidArgument => Reason::InvalidArgument(e.message.clone()),
        C::Unspecified
        | C::NotLeader
        | C::WrongGroup
        | C::NoQuorum
        | C::Unavailable
        | C::Internal
        | C::Malformed
        | C::WrongCluster => return Ok(None),
    }))
}

// ---- commands from requests (service side) and back (client side) ----

impl TryFrom<&pb::PutObjectRequest> for PutObject {
    type Error = ConvertError;

    fn try_from(m: &pb::PutObjectRequest) -> Result<Self, ConvertError> {
        Ok(PutObject {
            bucket: m.bucket.clone(),
            key: m.key.clone(),
            version_id: m.version_id.clone(),
            created_ms: m.created_ms,
            owner: m.owner.clone(),
            size: m.size,
            etag: m.etag.clone(),
            checksums: to_btree(&m.checksums),
            meta: meta_or_default(m.meta.as_ref()),
            body: ObjectBody::try_from(required(m.body.as_ref(), "put_object.body")?)?,
            preconditions: preconditions(&m.preconditions)?,
        })
    }
}

pub fn put_object_request(group: GroupId, c: &PutObject) -> pb::PutObjectRequest {
    pb::PutObjectRequest {
        group_id: group.0,
        bucket: c.bucket.clone(),
        key: c.key.clone(),
        version_id: c.version_id.clone(),
        created_ms: c.created_ms,
        owner: c.owner.clone(),
        size: c.size,
        etag: c.etag.clone(),
        checksums: to_hash(&c.checksums),
        meta: Some((&c.meta).into()),
        body: Some((&c.body).into()),
        preconditions: preconditions_to_wire(&c.preconditions),
    }
}

impl TryFrom<&pb::DeleteObjectRequest> for DeleteObject {
    type Error = ConvertError;

    fn try_from(m: &pb::DeleteObjectRequest) -> Result<Self, ConvertError> {
        Ok(DeleteObject {
            bucket: m.bucket.clone(),
            key: m.key.clone(),
            version_id: m.version_id.clone(),
            created_ms: m.created_ms,
            owner: m.owner.clone(),
            marker_version_id: m.marker_version_id.clone(),
            preconditions: preconditions(&m.preconditions)?,
        })
    }
}

pub fn delete_object_request(group: GroupId, c: &DeleteObject) -> pb::DeleteObjectRequest {
    pb::DeleteObjectRequest {
        group_id: group.0,
        bucket: c.bucket.clone(),
        key: c.key.clone(),
        version_id: c.version_id.clone(),
        created_ms: c.created_ms,
        owner: c.owner.clone(),
        marker_version_id: c.marker_version_id.clone(),
        preconditions: preconditions_to_wire(&c.preconditions),
    }
}

impl TryFrom<&pb::ReplacePlacementRequest> for ReplacePlacement {
    type Error = ConvertError;

    fn try_from(m: &pb::ReplacePlacementRequest) -> Result<Self, ConvertError> {
        Ok(ReplacePlacement {
            stripe: stripe_id_from_wire("replace_placement.stripe_id", &m.stripe_id)?,
            expected: locations(&m.expected),
            new: locations(&m.new),
        })
    }
}

pub fn replace_placement_request(
    group: GroupId,
    c: &ReplacePlacement,
) -> pb::ReplacePlacementRequest {
    pb::ReplacePlacementRequest {
        group_id: group.0,
        stripe_id: stripe_id_to_wire(c.stripe),
        expected: locations_to_wire(&c.expected),
        new: locations_to_wire(&c.new),
    }
}

impl TryFrom<&pb::CreateMultipartUploadRequest> for CreateMultipartUpload {
    type Error = ConvertError;

    fn try_from(m: &pb::CreateMultipartUploadRequest) -> Result<Self, ConvertError> {
        Ok(CreateMultipartUpload {
            bucket: m.bucket.clone(),
            key: m.key.clone(),
            upload_id: m.upload_id.clone(),
            initiated_ms: m.initiated_ms,
            owner: m.owner.clone(),
            meta: meta_or_default(m.meta.as_ref()),
            codec: codec(m.codec.as_ref(), "create_multipart_upload.codec")?,
            checksum_algorithm: m.checksum_algorithm.clone(),
        })
    }
}

pub fn create_upload_request(
    group: GroupId,
    c: &CreateMultipartUpload,
) -> pb::CreateMultipartUploadRequest {
    pb::CreateMultipartUploadRequest {
        group_id: group.0,
        bucket: c.bucket.clone(),
        key: c.key.clone(),
        upload_id: c.upload_id.clone(),
        initiated_ms: c.initiated_ms,
        owner: c.owner.clone(),
        meta: Some((&c.meta).into()),
        codec: Some(c.codec.into()),
        checksum_algorithm: c.checksum_algorithm.clone(),
    }
}

impl TryFrom<&pb::RecordPartRequest> for RecordPart {
    type Error = ConvertError;

    fn try_from(m: &pb::RecordPartRequest) -> Result<Self, ConvertError> {
        Ok(RecordPart {
            bucket: m.bucket.clone(),
            key: m.key.clone(),
            upload_id: m.upload_id.clone(),
            part_number: m.part_number,
            size: m.size,
            etag: m.etag.clone(),
            checksums: to_btree(&m.checksums),
            stripes: stripes(&m.stripes)?,
            created_ms: m.created_ms,
        })
    }
}

pub fn record_part_request(group: GroupId, c: &RecordPart) -> pb::RecordPartRequest {
    pb::RecordPartRequest {
        group_id: group.0,
        bucket: c.bucket.clone(),
        key: c.key.clone(),
        upload_id: c.upload_id.clone(),
        part_number: c.part_number,
        size: c.size,
        etag: c.etag.clone(),
        checksums: to_hash(&c.checksums),
        stripes: stripes_to_wire(&c.stripes),
        created_ms: c.created_ms,
    }
}

impl TryFrom<&pb::CompleteMultipartUploadRequest> for CompleteMultipartUpload {
    type Error = ConvertError;

    fn try_from(m: &pb::CompleteMultipartUploadRequest) -> Result<Self, ConvertError> {
        Ok(CompleteMultipartUpload {
            bucket: m.bucket.clone(),
            key: m.key.clone(),
            upload_id: m.upload_id.clone(),
            parts: m
                .parts
                .iter()
                .map(|p| CompletedPart {
                    part_number: p.part_number,
                    etag: p.etag.clone(),
                })
                .collect(),
            min_part_size: m.min_part_size,
            version_id: m.version_id.clone(),
            created_ms: m.created_ms,
            checksums: to_btree(&m.checksums),
            preconditions: preconditions(&m.preconditions)?,
        })
    }
}

pub fn complete_upload_request(
    group: GroupId,
    c: &CompleteMultipartUpload,
) -> pb::CompleteMultipartUploadRequest {
    pb::CompleteMultipartUploadRequest {
        group_id: group.0,
        bucket: c.bucket.clone(),
        key: c.key.clone(),
        upload_id: c.upload_id.clone(),
        parts: c
            .parts
            .iter()
            .map(|p| pb::CompletedPart {
                part_number: p.part_number,
                etag: p.etag.clone(),
            })
            .collect(),
        min_part_size: c.min_part_size,
        version_id: c.version_id.clone(),
        created_ms: c.created_ms,
        checksums: to_hash(&c.checksums),
        preconditions: preconditions_to_wire(&c.preconditions),
    }
}

impl From<&pb::AbortMultipartUploadRequest> for AbortMultipartUpload {
    fn from(m: &pb::AbortMultipartUploadRequest) -> Self {
        AbortMultipartUpload {
            bucket: m.bucket.clone(),
            key: m.key.clone(),
            upload_id: m.upload_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use common::cluster::FragmentLocation;
    use common::codec::DEFAULT_PARAMS;
    use common::ids::{DiskId, NodeId, StripeId};

    use super::*;

    fn stripe(id: u128) -> StripeRecord {
        StripeRecord {
            id: StripeId(id),
            data_len: 10,
            placement: (0..12)
                .map(|i| FragmentLocation {
                    node: NodeId(i),
                    disk: DiskId(0),
                })
                .collect(),
        }
    }

    fn put() -> PutObject {
        PutObject {
            bucket: "b".into(),
            key: "k".into(),
            version_id: "v1".into(),
            created_ms: 5,
            owner: "alice".into(),
            size: 20,
            etag: "e".into(),
            checksums: [("crc32c".to_owned(), "AAAA".to_owned())].into(),
            meta: ObjectMeta {
                content_type: Some("text/plain".into()),
                user_metadata: [("a".to_owned(), "b".to_owned())].into(),
                ..ObjectMeta::default()
            },
            body: ObjectBody::Stripes {
                codec: DEFAULT_PARAMS,
                stripes: vec![stripe(1), stripe(2)],
            },
            preconditions: vec![
                Precondition::KeyAbsent,
                Precondition::CurrentEtagEquals("x".into()),
                Precondition::CurrentVersionEquals("v0".into()),
            ],
        }
    }

    #[test]
    fn put_object_round_trips() {
        let c = put();
        let wire = put_object_request(GroupId(3), &c);
        assert_eq!(wire.group_id, 3);
        assert_eq!(PutObject::try_from(&wire), Ok(c));
    }

    #[test]
    fn malformed_put_requests_name_the_field() {
        let good = put_object_request(GroupId(1), &put());
        let mut bad = good.clone();
        if let Some(pb::object_body::Body::Stripes(s)) =
            bad.body.as_mut().and_then(|b| b.body.as_mut())
        {
            s.stripes[1].id = bytes::Bytes::from_static(&[1, 2, 3]);
        }
        assert_eq!(PutObject::try_from(&bad).unwrap_err().field, "stripe.id");
        let mut bad = good.clone();
        bad.body = None;
        assert_eq!(
            PutObject::try_from(&bad).unwrap_err().field,
            "put_object.body"
        );
        let mut bad = good.clone();
        bad.body = Some(pb::ObjectBody { body: None });
        assert_eq!(
            PutObject::try_from(&bad).unwrap_err().field,
            "object_body.body"
        );
        let mut bad = good.clone();
        if let Some(pb::object_body::Body::Stripes(s)) =
            bad.body.as_mut().and_then(|b| b.body.as_mut())
        {
            s.codec = Some(pb::CodecParams {
                codec: 42,
                k: 8,
                m: 4,
            });
        }
        assert_eq!(PutObject::try_from(&bad).unwrap_err().field, "codec.codec");
        let mut bad = good;
        bad.preconditions.push(pb::Precondition { condition: None });
        assert_eq!(
            PutObject::try_from(&bad).unwrap_err().field,
            "precondition.condition"
        );
    }

    #[test]
    fn every_reason_round_trips_through_its_wire_error() {
        let reasons = [
            Reason::NoSuchBucket,
            Reason::BucketAlreadyExists,
            Reason::BucketAlreadyOwnedByYou,
            Reason::BucketNotEmpty,
            Reason::InvalidBucketName,
            Reason::KeyTooLong,
            Reason::NoSuchKey,
            Reason::NoSuchVersion,
            Reason::PreconditionFailed,
            Reason::NoSuchUpload,
            Reason::InvalidPart { part_number: 7 },
            Reason::InvalidPartOrder,
            Reason::EntityTooSmall { part_number: 3 },
            Reason::InvalidPartNumber,
            Reason::TooManyParts,
            Reason::NoParts,
            Reason::VersionIdConflict,
            Reason::UploadIdConflict,
            Reason::StripeInUse(StripeId(5)),
            Reason::NoSuchStripe(StripeId(6)),
            Reason::PlacementMismatch,
            Reason::InvalidArgument("bad thing".into()),
        ];
        for r in reasons {
            let e = reason_error(GroupId(2), &r);
            assert_eq!(reason_from_error(&e), Ok(Some(r)));
        }
        let routing = proto::meta_error(pb::MetaErrorCode::NotLeader, "x");
        assert_eq!(reason_from_error(&routing), Ok(None));
    }

    #[test]
    fn gc_entries_round_trip_and_reject_big_indexes() {
        let e = GcEntry {
            id: GcId {
                log_index: 9,
                ordinal: 1,
            },
            stripe: StripeId(77),
            fragments: vec![GcFragment {
                index: 255,
                location: FragmentLocation {
                    node: NodeId(1),
                    disk: DiskId(2),
                },
            }],
        };
        let wire = pb::GcEntry::from(&e);
        assert_eq!(GcEntry::try_from(&wire), Ok(e));
        let mut bad = wire;
        bad.fragments[0].index = 256;
        assert_eq!(
            GcEntry::try_from(&bad).unwrap_err().field,
            "gc_fragment.index"
        );
    }

    #[test]
    fn stripe_entries_round_trip_and_need_owner_and_codec() {
        for owner in [
            StripeOwner::Version {
                bucket: "b".into(),
                key: "k".into(),
                version_id: "v".into(),
                seq: 7,
            },
            StripeOwner::Part {
                upload_id: "u".into(),
                part_number: 3,
            },
        ] {
            let s = stripe(5);
            let e = StripeEntry {
                id: s.id,
                owner,
                codec: DEFAULT_PARAMS,
                data_len: 10,
                placement: s.placement,
            };
            let wire = pb::StripeEntry::from(&e);
            assert_eq!(StripeEntry::try_from(&wire), Ok(e));
        }
        let good = pb::StripeEntry::from(&StripeEntry {
            id: StripeId(1),
            owner: StripeOwner::Part {
                upload_id: "u".into(),
                part_number: 1,
            },
            codec: DEFAULT_PARAMS,
            data_len: 1,
            placement: Vec::new(),
        });
        let field = |m: pb::StripeEntry| StripeEntry::try_from(&m).unwrap_err().field;
        let mut m = good.clone();
        m.owner = Some(pb::StripeOwner { owner: None });
        assert_eq!(field(m), "stripe_owner.owner");
        let mut m = good.clone();
        m.codec = None;
        assert_eq!(field(m), "stripe_entry.codec");
        let mut m = good;
        m.stripe_id = vec![1, 2, 3].into();
        assert_eq!(field(m), "stripe_entry.stripe_id");
    }

    #[test]
    fn versions_and_maps_round_trip_and_invalid_maps_are_rejected() {
        let v = VersionRecord {
            bucket: "b".into(),
            key: "k".into(),
            version_id: "null".into(),
            seq: 4,
            created_ms: 1,
            owner: "o".into(),
            size: 3,
            etag: "e".into(),
            checksums: BTreeMap::new(),
            meta: ObjectMeta::default(),
            body: ObjectBody::Inline(vec![1, 2, 3]),
            is_delete_marker: false,
        };
        assert_eq!(VersionRecord::try_from(&pb::Version::from(&v)), Ok(v));
        let members: BTreeMap<u64, String> = [(1, "a:1".to_owned())].into();
        let map = GroupMap::bootstrap(3, &members);
        let wire = pb::GroupMap::from(&map);
        assert_eq!(GroupMap::try_from(&wire), Ok(map));
        let mut bad = wire;
        bad.groups.remove(1);
        assert_eq!(
            GroupMap::try_from(&bad).unwrap_err().field,
            "group_map.groups"
        );
        assert_eq!(
            versioning_from_wire("v", 0).unwrap_err().field,
            "v",
            "unspecified versioning is malformed"
        );
    }
}
