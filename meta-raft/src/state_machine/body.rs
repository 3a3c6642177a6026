//! Where a version's bytes are: inline in the record, or in erasure-coded stripes.

use common::cluster::FragmentLocation;
use common::codec::CodecParams;
use common::ids::StripeId;
use serde::{Deserialize, Serialize};

/// One stripe of an object: its id, how many bytes of the object it holds and where its
/// fragments are (`placement[i]` holds fragment `i`; `k + m` entries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeRecord {
    pub id: StripeId,
    /// Object bytes in this stripe (before padding and coding).
    pub data_len: u64,
    pub placement: Vec<FragmentLocation>,
}

/// One part of a completed multipart object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartManifestEntry {
    pub part_number: u32,
    pub size: u64,
    /// The part's MD5 as lowercase hex (no quotes).
    pub etag: String,
    pub stripes: Vec<StripeRecord>,
}

/// The bytes of a version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectBody {
    /// Small objects: the bytes themselves, replicated by Raft.
    Inline(Vec<u8>),
    /// The object's bytes, in order, in erasure-coded stripes.
    Stripes {
        codec: CodecParams,
        stripes: Vec<StripeRecord>,
    },
    /// A completed multipart upload: the listed parts in order, each with its stripes.
    Multipart {
        codec: CodecParams,
        parts: Vec<PartManifestEntry>,
    },
}

impl ObjectBody {
    /// Every stripe of the body, in object order.
    pub fn stripes(&self) -> Vec<&StripeRecord> {
        match self {
            ObjectBody::Inline(_) => Vec::new(),
            ObjectBody::Stripes { stripes, .. } => stripes.iter().collect(),
            ObjectBody::Multipart { parts, .. } => {
                parts.iter().flat_map(|p| p.stripes.iter()).collect()
            }
        }
    }

    /// The stripe with id `id`, mutably.
    pub fn stripe_mut(&mut self, id: StripeId) -> Option<&mut StripeRecord> {
        match self {
            ObjectBody::Inline(_) => None,
            ObjectBody::Stripes { stripes, .. } => stripes.iter_mut().find(|s| s.id == id),
            ObjectBody::Multipart { parts, .. } => parts
                .iter_mut()
                .flat_map(|p| p.stripes.iter_mut())
                .find(|s| s.id == id),
        }
    }

    /// Whether `other` holds the same data as `self`: equal but for where the stripes'
    /// fragments are (repair may have moved them since). Stripe ids are unique per
    /// write, so a command bringing a body with the same stripes is a retry of the write
    /// that stored this one.
    pub fn same_data(&self, other: &ObjectBody) -> bool {
        fn same(a: &[StripeRecord], b: &[StripeRecord]) -> bool {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| x.id == y.id && x.data_len == y.data_len)
        }
        match (self, other) {
            (ObjectBody::Inline(a), ObjectBody::Inline(b)) => a == b,
            (
                ObjectBody::Stripes {
                    codec: ca,
                    stripes: a,
                },
                ObjectBody::Stripes {
                    codec: cb,
                    stripes: b,
                },
            ) => ca == cb && same(a, b),
            (
                ObjectBody::Multipart {
                    codec: ca,
                    parts: a,
                },
                ObjectBody::Multipart {
                    codec: cb,
                    parts: b,
                },
            ) => {
                ca == cb
                    && a.len() == b.len()
                    && a.iter().zip(b).all(|(x, y)| {
                        x.part_number == y.part_number
                            && x.size == y.size
                            && x.etag == y.etag
                            && same(&x.stripes, &y.stripes)
                    })
            }
            _ => false,
        }
    }

    /// The erasure code of the stripes (`None` for inline bytes).
    pub fn codec(&self) -> Option<CodecParams> {
        match self {
            ObjectBody::Inline(_) => None,
            ObjectBody::Stripes { codec, .. } | ObjectBody::Multipart { codec, .. } => Some(*codec),
        }
    }

    /// Bytes the body holds (inline length, or the sum of the stripes' `data_len`).
    pub fn data_len(&self) -> u64 {
        match self {
            ObjectBody::Inline(bytes) => bytes.len() as u64,
            _ => self.stripes().iter().map(|s| s.data_len).sum(),
        }
    }
}
