//! `datanode::FragmentId` ⇄ `common::ids::FragmentId`.

use common::ids::{FragmentId, StripeId};

use super::ConvertError;
use crate::datanode as pb;

impl TryFrom<&pb::FragmentId> for FragmentId {
    type Error = ConvertError;

    fn try_from(m: &pb::FragmentId) -> Result<Self, ConvertError> {
        let stripe = StripeId::from_slice(&m.stripe_id).ok_or_else(|| {
            ConvertError::new(
                "fragment_id.stripe_id",
                format!("must be 16 bytes, got {}", m.stripe_id.len()),
            )
        })?;
        let index = u8::try_from(m.index).map_err(|_| {
            ConvertError::new("fragment_id.index", format!("{} exceeds 255", m.index))
        })?;
        Ok(FragmentId { stripe, index })
    }
}

impl From<FragmentId> for pb::FragmentId {
    fn from(id: FragmentId) -> Self {
        pb::FragmentId {
            stripe_id: bytes::Bytes::copy_from_slice(&id.stripe.to_bytes()),
            index: u32::from(id.index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_malformed_ids() {
        let id = FragmentId {
            stripe: StripeId(42),
            index: 7,
        };
        let wire: pb::FragmentId = id.into();
        assert_eq!(FragmentId::try_from(&wire), Ok(id));
        let short = pb::FragmentId {
            stripe_id: bytes::Bytes::from_static(&[1, 2, 3]),
            index: 0,
        };
        assert_eq!(
            FragmentId::try_from(&short).unwrap_err().field,
            "fragment_id.stripe_id"
        );
        let big = pb::FragmentId {
            stripe_id: wire.stripe_id.clone(),
            index: 256,
        };
        assert_eq!(
            FragmentId::try_from(&big).unwrap_err().field,
            "fragment_id.index"
        );
    }
}
