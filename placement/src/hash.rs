//! A small fixed hash for tie-breaking. Deliberately not `std`'s `DefaultHasher` /
//! `RandomState` (seeded per process): placements must be the same in every process,
//! on every run and in the simulator.
//!
//! The values are part of the planner's behaviour: changing them changes where new
//! stripes go (stored placements are unaffected, they are recorded, but seeded
//! simulation runs would no longer replay). `hash_values_are_pinned` guards them.

use common::ids::{DiskId, NodeId, StripeId};

/// SplitMix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mixer
/// with good avalanche.
pub(crate) fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of (stripe, node, disk), used to break ties between equally utilized disks, so
/// that on an evenly used cluster different stripes land on different nodes.
pub(crate) fn tie_hash(stripe: StripeId, node: NodeId, disk: DiskId) -> u64 {
    let s = stripe.0;
    let mut h = mix64(s as u64);
    h = mix64(h ^ (s >> 64) as u64);
    h = mix64(h ^ node.0);
    mix64(h ^ u64::from(disk.0))
}

/// A second, independent hash of the same inputs, used to order the chosen locations
/// (which of them hold data and which parity) per stripe.
pub(crate) fn order_hash(stripe: StripeId, node: NodeId, disk: DiskId) -> u64 {
    mix64(tie_hash(stripe, node, disk) ^ 0x6A09_E667_F3BC_C908)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_sequence() {
        // SplitMix64 seeded with 0: the state advances by the golden gamma and each
        // output is mix(state); the reference's first outputs are these.
        assert_eq!(mix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix64(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn hash_values_are_pinned() {
        let s = StripeId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let got = [
            tie_hash(s, NodeId(1), DiskId(0)),
            tie_hash(s, NodeId(1), DiskId(1)),
            tie_hash(s, NodeId(2), DiskId(0)),
            order_hash(s, NodeId(1), DiskId(0)),
        ];
        let distinct: std::collections::BTreeSet<u64> = got.iter().copied().collect();
        assert_eq!(distinct.len(), got.len());
        assert_eq!(got, PINNED);
    }

    const PINNED: [u64; 4] = [
        9_396_638_935_057_308_697,
        1_511_515_701_936_696_473,
        11_355_656_834_124_008_340,
        3_206_060_153_321_217_222,
    ];
}
