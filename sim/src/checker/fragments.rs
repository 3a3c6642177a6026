//! Durability of what is committed: after quiescence, every stripe of every committed
//! version has at least `k` healthy fragments (stat with every block checksum
//! verified), and its placement obeys the rack rule (`common::cluster::check_placement`:
//! no shared disk or node, at most `m` per rack). With `full_redundancy` (a scenario's
//! `[checks]`) every stripe must have all `k+m`: repair has had time to rebuild what the
//! faults destroyed (dead nodes, rotten fragments). Without it, stripes below `k+m` are
//! only counted as degraded.
//!
//! The harness collects one `StripeHealth` per stripe (`SimCluster::stripe_health`);
//! this file only judges.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StripeHealth {
    pub key: String,
    /// The version id (`null` in an unversioned bucket).
    pub version: String,
    /// The stripe id, as printed.
    pub stripe: String,
    pub k: u8,
    pub m: u8,
    /// Fragments that exist and verify.
    pub healthy: usize,
    /// One line per fragment that does not: index, node, the node's answer.
    pub problems: Vec<String>,
    /// Why the placement breaks the rack rule, if it does.
    pub placement_error: Option<String>,
}

impl StripeHealth {
    pub fn whole(&self) -> bool {
        self.healthy >= usize::from(self.k) + usize::from(self.m)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FragmentViolation {
    /// Fewer than `k` healthy fragments: the stripe cannot be read.
    TooFew {
        key: String,
        stripe: String,
        healthy: usize,
        k: u8,
        problems: Vec<String>,
    },
    /// Full redundancy required, and fewer than `k+m` healthy fragments.
    NotWhole {
        key: String,
        stripe: String,
        healthy: usize,
        k: u8,
        m: u8,
        problems: Vec<String>,
    },
    /// The committed placement breaks the rack rule.
    Placement {
        key: String,
        stripe: String,
        error: String,
    },
}

impl fmt::Display for FragmentViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FragmentViolation::TooFew {
                key,
                stripe,
                healthy,
                k,
                problems,
            } => write!(
                f,
                "{key} stripe {stripe}: {healthy} healthy fragments, fewer than k = {k} [{}]",
                problems.join("; ")
            ),
            FragmentViolation::NotWhole {
                key,
                stripe,
                healthy,
                k,
                m,
                problems,
            } => write!(
                f,
                "{key} stripe {stripe}: {healthy} healthy fragments after the repair wait, \
                 not k+m = {} [{}]",
                usize::from(*k) + usize::from(*m),
                problems.join("; ")
            ),
            FragmentViolation::Placement { key, stripe, error } => {
                write!(
                    f,
                    "{key} stripe {stripe}: placement breaks the rule: {error}"
                )
            }
        }
    }
}

/// Every violation; `full_redundancy`: fewer than `k+m` healthy fragments is one.
pub fn check(stripes: &[StripeHealth], full_redundancy: bool) -> Vec<FragmentViolation> {
    let mut out = Vec::new();
    for s in stripes {
        if s.healthy < usize::from(s.k) {
            out.push(FragmentViolation::TooFew {
                key: s.key.clone(),
                stripe: s.stripe.clone(),
                healthy: s.healthy,
                k: s.k,
                problems: s.problems.clone(),
            });
        } else if full_redundancy && !s.whole() {
            out.push(FragmentViolation::NotWhole {
                key: s.key.clone(),
                stripe: s.stripe.clone(),
                healthy: s.healthy,
                k: s.k,
                m: s.m,
                problems: s.problems.clone(),
            });
        }
        if let Some(e) = &s.placement_error {
            out.push(FragmentViolation::Placement {
                key: s.key.clone(),
                stripe: s.stripe.clone(),
                error: e.clone(),
            });
        }
    }
    out
}

/// Stripes with fewer than `k+m` healthy fragments.
pub fn degraded(stripes: &[StripeHealth]) -> usize {
    stripes.iter().filter(|s| !s.whole()).count()
}

/// Stripes repair still has work on: below `k+m`, or placed against the rack rule (repair
/// moves the surplus of an overloaded rack).
pub fn unsettled(stripes: &[StripeHealth]) -> usize {
    stripes
        .iter()
        .filter(|s| !s.whole() || s.placement_error.is_some())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(healthy: usize, placement_error: Option<&str>) -> StripeHealth {
        StripeHealth {
            key: "k0".into(),
            version: "null".into(),
            stripe: "s1".into(),
            k: 8,
            m: 4,
            healthy,
            problems: Vec::new(),
            placement_error: placement_error.map(str::to_owned),
        }
    }

    #[test]
    fn k_healthy_fragments_under_the_rule_pass_and_count_as_degraded() {
        let stripes = [s(12, None), s(8, None)];
        assert_eq!(check(&stripes, false), vec![]);
        assert_eq!(degraded(&stripes), 1);
    }

    #[test]
    fn full_redundancy_requires_k_plus_m() {
        let v = check(&[s(12, None), s(11, None)], true);
        assert!(matches!(
            &v[..],
            [FragmentViolation::NotWhole { healthy: 11, .. }]
        ));
    }

    #[test]
    fn too_few_fragments_or_a_broken_placement_are_reported() {
        let v = check(&[s(7, None), s(12, Some("rack-0 holds 5 fragments"))], true);
        assert!(matches!(
            &v[..],
            [
                FragmentViolation::TooFew { healthy: 7, .. },
                FragmentViolation::Placement { .. }
            ]
        ));
    }
}
