//! Why a stripe could not be placed, in terms an operator can act on.

use std::fmt;

use common::ids::RackId;

/// The placement rule cannot be met for this stripe in this cluster. The planner never
/// weakens the rule to get around it; each message says what is missing.
///
/// "Usable" racks/nodes: Up nodes with at least one healthy disk (free space not
/// considered); this is what decides whether one fragment per rack is required.
/// "Eligible" nodes: Up nodes with a healthy disk that has room for the fragment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("invalid erasure code {k}+{m}: k and m must each be at least 1 and k+m at most 255")]
    InvalidCode { k: u8, m: u8 },

    /// Fewer usable racks than `ceil((k+m)/m)`: even with `m` fragments in every rack
    /// the stripe does not fit, whatever the nodes.
    #[error(
        "{k}+{m} needs at least {} to survive a rack loss (at most {m} of its {} fragments \
         per rack); the cluster has {} with usable nodes",
        racks(*needed),
        usize::from(*k) + usize::from(*m),
        racks(*usable_racks)
    )]
    TooFewRacks {
        k: u8,
        m: u8,
        needed: usize,
        usable_racks: usize,
    },

    /// Fewer eligible nodes than `k+m`.
    #[error(
        "{k}+{m} needs {needed} nodes with a healthy disk that has {} free; the cluster has \
         {census}",
        Bytes(*fragment_bytes)
    )]
    TooFewNodes {
        k: u8,
        m: u8,
        needed: usize,
        fragment_bytes: u64,
        census: NodeCensus,
    },

    /// There are at least `k+m` usable racks, so every fragment must go to a different
    /// rack, but fewer than `k+m` of those racks have an eligible node.
    #[error(
        "{k}+{m} must put each of its {} fragments in a different rack because the cluster \
         has {} with usable nodes, but only {} a node with a healthy disk that has {} free \
         (no room in {})",
        usize::from(*k) + usize::from(*m),
        racks(*usable_racks),
        racks_have(*racks_with_room),
        Bytes(*fragment_bytes),
        List(full_racks)
    )]
    NotEnoughRacksWithRoom {
        k: u8,
        m: u8,
        usable_racks: usize,
        racks_with_room: usize,
        fragment_bytes: u64,
        /// Usable racks without an eligible node, in order.
        full_racks: Vec<RackId>,
    },

    /// Fewer than `k+m` usable racks, enough eligible nodes in total, but too many of
    /// them in too few racks: at most `m` per rack can hold only `placeable` fragments.
    #[error(
        "{k}+{m} allows at most {m} fragments per rack, and the nodes with a healthy disk \
         that has {} free are spread over the usable racks as {}, which can hold only \
         {placeable} of the {} fragments",
        Bytes(*fragment_bytes),
        RackCounts(eligible_nodes_per_rack),
        usize::from(*k) + usize::from(*m)
    )]
    RacksTooUneven {
        k: u8,
        m: u8,
        fragment_bytes: u64,
        placeable: usize,
        /// Eligible nodes in every usable rack, in rack order.
        eligible_nodes_per_rack: Vec<(RackId, usize)>,
    },

    /// [`crate::plan_replacements`] was given a number of slots other than `k+m`.
    #[error("a stripe coded {k}+{m} has {} fragment slots, but {actual} were given",
        usize::from(*k) + usize::from(*m))]
    WrongSlotCount { k: u8, m: u8, actual: usize },

    /// [`crate::plan_replacements`]: the fragments that stay where they are already break
    /// the placement rule in the map as it is now (e.g. more racks became usable since
    /// they were placed), so no choice for the others can make the stripe valid.
    #[error(
        "cannot re-place fragments of a {k}+{m} stripe: the fragments it keeps already \
         break the placement rule in the current cluster map: {reason}"
    )]
    KeptBreaksRule { k: u8, m: u8, reason: String },

    /// [`crate::plan_replacements`]: not enough eligible nodes (outside the excluded ones
    /// and the nodes already holding a fragment of the stripe) in racks below their limit.
    #[error(
        "cannot re-place {missing} of the {} fragments of a {k}+{m} stripe: only {placeable} \
         other nodes with a healthy disk that has {} free fit the rack rule (at most \
         {per_rack} fragments per rack) next to the fragments it keeps",
        usize::from(*k) + usize::from(*m),
        Bytes(*fragment_bytes)
    )]
    NoReplacement {
        k: u8,
        m: u8,
        missing: usize,
        placeable: usize,
        per_rack: usize,
        fragment_bytes: u64,
    },
}

/// Where the cluster's nodes stand, for [`PlanError::TooFewNodes`]. Every node of the
/// map is counted in exactly one field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeCensus {
    /// Up, with a healthy disk that has room for the fragment.
    pub eligible: usize,
    pub down: usize,
    pub draining: usize,
    pub dead: usize,
    /// Up, but every disk failed (or none).
    pub no_healthy_disk: usize,
    /// Up with a healthy disk, but no healthy disk has room for the fragment.
    pub no_room: usize,
}

impl NodeCensus {
    pub fn total(&self) -> usize {
        self.eligible + self.down + self.draining + self.dead + self.no_healthy_disk + self.no_room
    }
}

impl fmt::Display for NodeCensus {
    /// "9 (of 15 nodes: 3 down, 1 draining, 2 with no room)" or, when no node is
    /// excluded, "9 nodes".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reasons: Vec<String> = [
            (self.down, "down"),
            (self.draining, "draining"),
            (self.dead, "dead"),
            (self.no_healthy_disk, "with no healthy disk"),
            (self.no_room, "with no room left on a healthy disk"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, why)| format!("{n} {why}"))
        .collect();
        if reasons.is_empty() {
            write!(f, "{}", plural(self.eligible, "node", "nodes"))
        } else {
            write!(
                f,
                "{} (of {}: {})",
                self.eligible,
                nodes(self.total()),
                reasons.join(", ")
            )
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn racks(n: usize) -> String {
    plural(n, "rack", "racks")
}

fn racks_have(n: usize) -> String {
    plural(n, "rack has", "racks have")
}

fn nodes(n: usize) -> String {
    plural(n, "node", "nodes")
}

/// A byte count for humans: "512 B", "1.0 MiB", "3.5 TiB".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.1} {}", UNITS[unit])
    }
}

/// "r1, r2, r3".
struct List<'a>(&'a [RackId]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rack) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{rack}")?;
        }
        Ok(())
    }
}

/// "r1: 10, r2: 1, r3: 0".
struct RackCounts<'a>(&'a [(RackId, usize)]);

impl fmt::Display for RackCounts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (rack, n)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{rack}: {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_shown_in_binary_units() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (1 << 20, "1.0 MiB"),
            (5 << 40, "5.0 TiB"),
            (u64::MAX, "16.0 EiB"),
        ];
        for (n, want) in cases {
            assert_eq!(Bytes(n).to_string(), want);
        }
    }

    #[test]
    fn census_lists_only_nonzero_reasons() {
        let c = NodeCensus {
            eligible: 9,
            down: 3,
            draining: 1,
            ..Default::default()
        };
        assert_eq!(c.to_string(), "9 (of 13 nodes: 3 down, 1 draining)");
        let c = NodeCensus {
            eligible: 1,
            ..Default::default()
        };
        assert_eq!(c.to_string(), "1 node");
    }
}
