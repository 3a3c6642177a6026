//! Invariant checkers over a run's `History`, one file each. Each returns a typed list
//! of violations; an empty list means the invariant held.
//!
//! - `lost_writes`: after quiescence, each key's final value is one the history allows
//!   (no acknowledged write lost).
//! - `linearizable`: each key's PUT / GET / HEAD / DELETE / conditional-PUT history is
//!   linearizable; a request that timed out or failed with a 5xx "may have happened".
//! - `corruption`: every byte a GET returned is exactly what some PUT of that key wrote
//!   (no corrupt or phantom bytes); HEAD, PUT and LIST ETags name real writes.
//! - `list_after_write`: a LIST sees every PUT acknowledged before it began and none of
//!   the keys whose DELETE was acknowledged before it began (unless a racing write
//!   explains it).
//! - `liveness`: once faults are healed and the cluster had time to recover, every
//!   request succeeds within the bound.
//! - `fragments`: after quiescence, every stripe of every committed version has at least
//!   `k` healthy fragments (all `k+m` with the scenario's `full_redundancy`, after a
//!   bounded wait for repair), placed by the rack rule (collected from the cluster).
//! - `gc_safety` (scenarios with `gc_safety`): after quiescence, every stripe of every
//!   listed version has all `k+m` fragments present and verified: GC freed nothing live.
//! - `replicas`: after quiescence, every replica of every metadata group holds the same
//!   state (collected from the cluster, not the history).
//!
//! Time: an op's interval is [invoke, complete]; a write whose outcome is unknown has
//! no completion (it may take effect at any point after its invocation, or never).

pub mod corruption;
pub mod fragments;
pub mod gc_safety;
pub mod linearizable;
pub mod list_after_write;
pub mod liveness;
pub mod lost_writes;
pub mod replicas;

use crate::history::{History, Op, Response};

/// Every violation of a run, by checker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Violations {
    pub lost_writes: Vec<lost_writes::LostWrite>,
    pub linearizability: Vec<linearizable::NotLinearizable>,
    pub corruption: Vec<corruption::Corruption>,
    pub list_after_write: Vec<list_after_write::ListViolation>,
    pub liveness: Vec<liveness::Unavailable>,
    /// Filled by the runner from the cluster's state (`Violations::check` leaves it empty).
    pub fragments: Vec<fragments::FragmentViolation>,
    /// Filled by the runner from the cluster's state, if the scenario asks for it.
    pub gc_safety: Vec<gc_safety::FreedLive>,
    /// Filled by the runner from the cluster's state (`Violations::check` leaves it empty).
    pub replicas: Vec<replicas::Diverged>,
}

impl Violations {
    /// Runs every checker.
    pub fn check(h: &History) -> Self {
        Violations {
            lost_writes: lost_writes::check(h),
            linearizability: linearizable::check(h),
            corruption: corruption::check(h),
            list_after_write: list_after_write::check(h),
            liveness: liveness::check(h),
            fragments: Vec::new(),
            gc_safety: Vec::new(),
            replicas: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    pub fn count(&self) -> usize {
        self.lost_writes.len()
            + self.linearizability.len()
            + self.corruption.len()
            + self.list_after_write.len()
            + self.liveness.len()
            + self.fragments.len()
            + self.gc_safety.len()
            + self.replicas.len()
    }

    /// Counts per checker, e.g. `lost-writes=0 linearizability=1 ...`.
    pub fn summary(&self) -> String {
        format!(
            "lost-writes={} linearizability={} corruption={} list-after-write={} liveness={} fragments={} gc-safety={} replicas={}",
            self.lost_writes.len(),
            self.linearizability.len(),
            self.corruption.len(),
            self.list_after_write.len(),
            self.liveness.len(),
            self.fragments.len(),
            self.gc_safety.len(),
            self.replicas.len()
        )
    }

    /// One line per violation, prefixed by its checker.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(self.lost_writes.iter().map(|v| format!("lost-writes: {v}")));
        out.extend(
            self.linearizability
                .iter()
                .map(|v| format!("linearizability: {v}")),
        );
        out.extend(self.corruption.iter().map(|v| format!("corruption: {v}")));
        out.extend(
            self.list_after_write
                .iter()
                .map(|v| format!("list-after-write: {v}")),
        );
        out.extend(self.liveness.iter().map(|v| format!("liveness: {v}")));
        out.extend(self.fragments.iter().map(|v| format!("fragments: {v}")));
        out.extend(self.gc_safety.iter().map(|v| format!("gc-safety: {v}")));
        out.extend(self.replicas.iter().map(|v| format!("replicas: {v}")));
        out
    }
}

/// When an op's effect can no longer be pending: its completion, or never (`u64::MAX`)
/// for a write whose outcome is unknown.
pub(crate) fn effective_complete(op: &Op) -> u64 {
    match op.resp {
        Response::Unknown(_) => u64::MAX,
        _ => op.complete_ns,
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Hand-built histories for the checkers' tests.
    use crate::history::{etag_of, make_body, History, Op, Phase, Request, Response};

    pub const LEN: usize = 200;

    pub fn op(client: u32, at: (u64, u64), req: Request, resp: Response) -> Op {
        Op {
            id: 0,
            client,
            phase: Phase::Safety,
            invoke_ns: at.0 * 1_000_000,
            complete_ns: at.1 * 1_000_000,
            req,
            resp,
        }
    }
    pub fn put(key: &str, wid: u64) -> Request {
        Request::Put {
            key: key.into(),
            wid,
            len: LEN,
        }
    }
    pub fn put_if_absent(key: &str, wid: u64) -> Request {
        Request::PutIfAbsent {
            key: key.into(),
            wid,
            len: LEN,
        }
    }
    pub fn get(key: &str) -> Request {
        Request::Get { key: key.into() }
    }
    pub fn head(key: &str) -> Request {
        Request::Head { key: key.into() }
    }
    pub fn delete(key: &str) -> Request {
        Request::Delete { key: key.into() }
    }
    pub fn written(key: &str, wid: u64) -> Response {
        Response::Written {
            etag: etag_of(key, wid, LEN),
        }
    }
    pub fn body(key: &str, wid: u64) -> Response {
        Response::Body(make_body(key, wid, LEN))
    }
    pub fn etag(key: &str, wid: u64) -> Response {
        Response::Etag(etag_of(key, wid, LEN))
    }
    pub fn unknown() -> Response {
        Response::Unknown("timed out".into())
    }
    pub fn listing(entries: &[(&str, u64)]) -> Response {
        Response::Listing(
            entries
                .iter()
                .map(|(k, w)| (k.to_string(), etag_of(k, *w, LEN)))
                .collect(),
        )
    }
    pub fn final_op(mut o: Op) -> Op {
        o.phase = Phase::Final;
        o.client = crate::history::FINAL_CLIENT;
        o
    }
    pub fn history(ops: Vec<Op>) -> History {
        History::from_ops(ops)
    }
}
