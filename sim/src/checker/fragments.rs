//! Durability of what is committed: after quiescence, every stripe of every current
//! version has at least `k` healthy fragments (stat with every block checksum
//! verified), and its placement obeys the rack rule (`common::cluster::check_placement`:
//! no shared disk or node, at most `m` per rack). Full `k+m` redundancy is not required
//! until repair exists (issue 6); stripes below it are counted as degraded.
//!
//! The harness collects one `StripeHealth` per stripe (`SimCluster::stripe_health`);
//! this file only judges.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StripeHealth {
    pub key: String,
    /// The stripe id, as printed.
    pub stripe: String,
    pub k: u8,
    pub m: u8,
    /// Fragments that exist and verify.
    pub healthy: usize,
    /// Why the placement breaks the rack rule, if it does.
    pub placement_error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FragmentViolation {
    /// Fewer than `k` healthy fragments: the stripe cannot be read.
    TooFew {
        key: String,
        stripe: String,
        healthy: usize,
        k: u8,
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
            } => write!(
                f,
                "{key} stripe {stripe}: {healthy} healthy fragments, fewer than k = {k}"
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

pub fn check(stripes: &[StripeHealth]) -> Vec<FragmentViolation> {
    let mut out = Vec::new();
    for s in stripes {
        if s.healthy < usize::from(s.k) {
            out.push(FragmentViolation::TooFew {
                key: s.key.clone(),
                stripe: s.stripe.clone(),
                healthy: s.healthy,
                k: s.k,
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

/// Stripes with fewer than `k+m` healthy fragments (allowed until repair exists).
pub fn degraded(stripes: &[StripeHealth]) -> usize {
    stripes
        .iter()
        .filter(|s| s.healthy < usize::from(s.k) + usize::from(s.m))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(healthy: usize, placement_error: Option<&str>) -> StripeHealth {
        StripeHealth {
            key: "k0".into(),
            stripe: "s1".into(),
            k: 8,
            m: 4,
            healthy,
            placement_error: placement_error.map(str::to_owned),
        }
    }

    #[test]
    fn k_healthy_fragments_under_the_rule_pass_and_count_as_degraded() {
        let stripes = [s(12, None), s(8, None)];
        assert_eq!(check(&stripes), vec![]);
        assert_eq!(degraded(&stripes), 1);
    }

    #[test]
    fn too_few_fragments_or_a_broken_placement_are_reported() {
        let v = check(&[s(7, None), s(12, Some("rack-0 holds 5 fragments"))]);
        assert!(matches!(
            &v[..],
            [
                FragmentViolation::TooFew { healthy: 7, .. },
                FragmentViolation::Placement { .. }
            ]
        ));
    }
}
