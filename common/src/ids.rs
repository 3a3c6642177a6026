//! Newtype ids. No bare integer crosses an API when it names a node, rack, disk,
//! group, stripe or version.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

int_id!(
    /// A data node or meta node, unique in the cluster.
    NodeId(u64)
);
int_id!(
    /// One disk of a data node (index within that node).
    DiskId(u32)
);
int_id!(
    /// One Raft group. Group 0 is the root group.
    GroupId(u64)
);

/// A failure domain (rack, host, zone: whatever the operator declares), by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RackId(pub String);

impl fmt::Display for RackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// One stripe: a unit of erasure coding (k data + m parity fragments). 128 random bits
/// drawn from `env::Rng`, shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StripeId(pub u128);

impl StripeId {
    pub const LEN_BYTES: usize = 16;

    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(u128::from_le_bytes(bytes))
    }

    /// Parses from a slice; `None` unless it is exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 16] = bytes.try_into().ok()?;
        Some(Self::from_bytes(arr))
    }

    /// Parses the 32-hex-digit form produced by `Display`.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 32 {
            return None;
        }
        u128::from_str_radix(s, 16).ok().map(Self)
    }
}

impl fmt::Display for StripeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for StripeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StripeId({self})")
    }
}

/// One fragment: a stripe and the fragment's index within it (0..k are data,
/// k..k+m parity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FragmentId {
    pub stripe: StripeId,
    pub index: u8,
}

impl fmt::Display for FragmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.stripe, self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_id_round_trips_through_hex_and_bytes() {
        let id = StripeId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(StripeId::from_hex(&id.to_string()), Some(id));
        assert_eq!(StripeId::from_bytes(id.to_bytes()), id);
        assert_eq!(StripeId::from_slice(&id.to_bytes()[..15]), None);
        assert_eq!(StripeId::from_hex("xyz"), None);
    }
}
