//! Liveness: after every fault healed and the cluster had `recovery_secs` to converge,
//! every request gets a definite answer (2xx, 404, or 412 for a conditional PUT) within
//! the liveness bound (`liveness_timeout_secs`, enforced by the client).

use std::fmt;

use crate::history::{History, Phase, Response};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    pub op: String,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "after healing, no answer: {}", self.op)
    }
}

pub fn check(h: &History) -> Vec<Unavailable> {
    h.ops
        .iter()
        .filter(|o| o.phase == Phase::Liveness)
        .filter(|o| matches!(o.resp, Response::Failed(_) | Response::Unknown(_)))
        .map(|o| Unavailable { op: o.to_string() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_support::*;

    #[test]
    fn failures_after_healing_are_reported_and_during_faults_are_not() {
        let mut late = op(0, (100, 110), get("k"), unknown());
        late.phase = Phase::Liveness;
        let mut ok = op(0, (120, 130), get("k"), Response::NotFound);
        ok.phase = Phase::Liveness;
        let h = history(vec![op(0, (0, 10), put("k", 1), unknown()), late, ok]);
        assert_eq!(check(&h).len(), 1);
    }
}
