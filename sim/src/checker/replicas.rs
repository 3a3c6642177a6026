//! Metadata replicas converge: after quiescence, every replica of every Raft group has
//! applied the same log prefix and holds identical state (every redb table of its state
//! machine, byte for byte, summarised as a digest).
//!
//! The harness collects one `ReplicaState` per (group, meta node) once the replicas
//! stop moving (`runner::replica_states`); this file only compares.

use std::collections::BTreeMap;
use std::fmt;

/// One replica's state machine, summarised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaState {
    pub group: u64,
    /// 1-based meta node id.
    pub node: u64,
    /// Last applied log index (`None`: nothing applied, or the replica could not be read).
    pub applied: Option<u64>,
    /// FNV-1a over every table's name, keys and values; `None` if unreadable.
    pub digest: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diverged {
    pub group: u64,
    /// (node, applied index, digest) of every replica.
    pub replicas: Vec<(u64, Option<u64>, Option<u64>)>,
}

impl fmt::Display for Diverged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .replicas
            .iter()
            .map(|(n, a, d)| {
                let a = a.map_or("-".to_owned(), |a| a.to_string());
                let d = d.map_or("unreadable".to_owned(), |d| format!("{d:016x}"));
                format!("meta-{n} applied {a} digest {d}")
            })
            .collect();
        write!(
            f,
            "group {}: replicas differ after quiescence: {}",
            self.group,
            parts.join(", ")
        )
    }
}

pub fn check(states: &[ReplicaState]) -> Vec<Diverged> {
    let mut by_group: BTreeMap<u64, Vec<&ReplicaState>> = BTreeMap::new();
    for s in states {
        by_group.entry(s.group).or_default().push(s);
    }
    by_group
        .into_iter()
        .filter(|(_, rs)| {
            rs.iter().any(|r| r.digest.is_none())
                || rs
                    .windows(2)
                    .any(|w| (w[0].applied, w[0].digest) != (w[1].applied, w[1].digest))
        })
        .map(|(group, rs)| Diverged {
            group,
            replicas: rs.iter().map(|r| (r.node, r.applied, r.digest)).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(group: u64, node: u64, applied: u64, digest: u64) -> ReplicaState {
        ReplicaState {
            group,
            node,
            applied: Some(applied),
            digest: Some(digest),
        }
    }

    #[test]
    fn identical_replicas_pass() {
        let s = [r(0, 1, 9, 7), r(0, 2, 9, 7), r(0, 3, 9, 7), r(1, 1, 4, 2)];
        assert_eq!(check(&s), vec![]);
    }

    #[test]
    fn a_different_digest_or_index_or_an_unreadable_replica_is_reported() {
        let s = [r(0, 1, 9, 7), r(0, 2, 9, 8), r(0, 3, 9, 7)];
        assert_eq!(check(&s).len(), 1);
        let s = [r(1, 1, 9, 7), r(1, 2, 8, 7)];
        assert_eq!(check(&s)[0].group, 1);
        let mut gone = r(2, 3, 9, 7);
        gone.digest = None;
        assert_eq!(check(&[r(2, 1, 9, 7), gone]).len(), 1);
    }
}
