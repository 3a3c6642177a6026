//! `meta::FragmentLocation` ⇄ `common::cluster::FragmentLocation`, and stripe ids as the
//! metadata messages carry them (16 bytes, `StripeId::to_bytes`).

use bytes::Bytes;
use common::cluster::FragmentLocation;
use common::ids::{DiskId, NodeId, StripeId};

use super::ConvertError;
use crate::meta as pb;

impl From<&pb::FragmentLocation> for FragmentLocation {
    fn from(m: &pb::FragmentLocation) -> Self {
        FragmentLocation {
            node: NodeId(m.node_id),
            disk: DiskId(m.disk_id),
        }
    }
}

impl From<FragmentLocation> for pb::FragmentLocation {
    fn from(l: FragmentLocation) -> Self {
        pb::FragmentLocation {
            node_id: l.node.0,
            disk_id: l.disk.0,
        }
    }
}

/// A stripe id from its 16 wire bytes; `field` names the message field in the error.
pub fn stripe_id_from_wire(field: &'static str, bytes: &[u8]) -> Result<StripeId, ConvertError> {
    StripeId::from_slice(bytes)
        .ok_or_else(|| ConvertError::new(field, format!("must be 16 bytes, got {}", bytes.len())))
}

/// The 16 wire bytes of a stripe id.
pub fn stripe_id_to_wire(id: StripeId) -> Bytes {
    Bytes::copy_from_slice(&id.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_and_stripe_ids_round_trip_and_short_ids_are_rejected() {
        let loc = FragmentLocation {
            node: NodeId(7),
            disk: DiskId(3),
        };
        let wire: pb::FragmentLocation = loc.into();
        assert_eq!(FragmentLocation::from(&wire), loc);
        let id = StripeId(0xdead_beef);
        assert_eq!(stripe_id_from_wire("s", &stripe_id_to_wire(id)), Ok(id));
        let err = stripe_id_from_wire("stripe.id", &[1, 2, 3]).unwrap_err();
        assert_eq!(err.field, "stripe.id");
        assert!(stripe_id_from_wire("s", &[0; 17]).is_err());
    }
}
