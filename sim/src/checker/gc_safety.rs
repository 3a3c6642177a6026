//! GC safety: after quiescence, every stripe of every version still listed (each key's
//! current version; every version in a versioned bucket) has all `k+m` fragments
//! present and verified. Meant for scenarios without faults (`gc-race`: overwrites,
//! deletes and aborted uploads racing a short `gc_delay`), where nothing but the
//! garbage collector removes fragments: a missing fragment of a live version was freed
//! while still referenced. Repair is off there, so it cannot hide such a loss.
//!
//! The harness collects one `StripeHealth` per stripe (`SimCluster::stripe_health`);
//! this file only judges.

use std::fmt;

use crate::checker::fragments::StripeHealth;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreedLive {
    pub key: String,
    pub version: String,
    pub stripe: String,
    pub healthy: usize,
    pub want: usize,
    /// One line per missing or failing fragment (index, node, the node's answer).
    pub problems: Vec<String>,
}

impl fmt::Display for FreedLive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} version {} stripe {}: {} of {} fragments present, yet the version is \
             still listed [{}]",
            self.key,
            self.version,
            self.stripe,
            self.healthy,
            self.want,
            self.problems.join("; ")
        )
    }
}

pub fn check(stripes: &[StripeHealth]) -> Vec<FreedLive> {
    stripes
        .iter()
        .filter(|s| !s.whole())
        .map(|s| FreedLive {
            key: s.key.clone(),
            version: s.version.clone(),
            stripe: s.stripe.clone(),
            healthy: s.healthy,
            want: usize::from(s.k) + usize::from(s.m),
            problems: s.problems.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(healthy: usize) -> StripeHealth {
        StripeHealth {
            key: "k0".into(),
            version: "null".into(),
            stripe: "s1".into(),
            k: 8,
            m: 4,
            healthy,
            problems: vec!["#3 on node-2 (Up): fragment not found".into()],
            placement_error: None,
        }
    }

    #[test]
    fn one_missing_fragment_of_a_listed_version_is_a_violation() {
        assert_eq!(check(&[s(12)]), vec![]);
        let v = check(&[s(12), s(11)]);
        assert_eq!(v.len(), 1);
        assert!(v[0].to_string().contains("11 of 12"), "{}", v[0]);
    }
}
