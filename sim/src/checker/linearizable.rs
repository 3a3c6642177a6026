//! Per-key linearizability of PUT / GET / HEAD / DELETE / conditional PUT, against a
//! register whose value is "absent" or a write id.
//!
//! A Wing–Gong style search (with Lowe's memoisation of (linearized set, value)) looks
//! for an order of the key's ops that respects real time (an op that completed before
//! another began comes first) and the register's semantics. A write whose outcome is
//! unknown never completes: it may be placed anywhere after its invocation, or left out.
//! Reads that failed tell nothing and are dropped, as are writes that definitely failed.
//! Bodies that do not parse and ETags that name no write are the corruption checker's
//! business and are dropped here. The final reads are part of the history like any
//! other read.
//!
//! Key spaces are small and histories short, so the search is cheap; a budget bounds
//! it, and exhausting the budget is reported (as `Inconclusive`) rather than passed.

use std::collections::HashSet;
use std::fmt;

use crate::history::{parse_body, History, Op, Request, Response, WriteId};

/// States the search may visit per key before giving up.
pub const SEARCH_BUDGET: usize = 500_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotLinearizable {
    /// No linearization exists. `placed` of `required` definite ops could be ordered at
    /// best; `stuck` are the ops none of which could come next from there.
    Violation {
        key: String,
        required: usize,
        placed: usize,
        value: String,
        stuck: Vec<String>,
    },
    /// The search ran out of budget.
    Inconclusive { key: String, ops: usize },
}

impl fmt::Display for NotLinearizable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotLinearizable::Violation {
                key,
                required,
                placed,
                value,
                stuck,
            } => write!(
                f,
                "{key}: not linearizable; at best {placed} of {required} ops ordered, then with the value {value} none of these fits: {}",
                stuck.join("; ")
            ),
            NotLinearizable::Inconclusive { key, ops } => {
                write!(f, "{key}: search budget exhausted over {ops} ops")
            }
        }
    }
}

type Value = Option<WriteId>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// PUT (acknowledged or maybe) or DELETE: sets the value.
    Set(Value),
    /// Conditional PUT that was acknowledged: the key was absent.
    CreateOk(WriteId),
    /// Conditional PUT of unknown outcome: creates if absent, else nothing.
    CreateMaybe(WriteId),
    /// Conditional PUT refused with 412: the key existed.
    CreateRefused,
    /// GET / HEAD observed this value.
    Read(Value),
}

#[derive(Clone, Debug)]
struct MOp {
    invoke: u64,
    /// `u64::MAX`: never completes (unknown outcome, optional).
    complete: u64,
    kind: Kind,
    label: String,
}

impl MOp {
    fn required(&self) -> bool {
        self.complete != u64::MAX
    }
}

fn step(v: Value, k: Kind) -> Option<Value> {
    match k {
        Kind::Set(n) => Some(n),
        Kind::CreateOk(w) => v.is_none().then_some(Some(w)),
        Kind::CreateMaybe(w) => Some(if v.is_none() { Some(w) } else { v }),
        Kind::CreateRefused => v.is_some().then_some(v),
        Kind::Read(r) => (r == v).then_some(v),
    }
}

/// The model op for `op`, or `None` if it says nothing about the register.
fn model(
    op: &Op,
    key: &str,
    etags: Option<&std::collections::BTreeMap<String, WriteId>>,
) -> Option<MOp> {
    let unknown = matches!(op.resp, Response::Unknown(_));
    let kind = match (&op.req, &op.resp) {
        (Request::Put { wid, .. } | Request::Multipart { wid, .. }, Response::Written { .. }) => {
            Kind::Set(Some(*wid))
        }
        (Request::Put { wid, .. } | Request::Multipart { wid, .. }, _) if unknown => {
            Kind::Set(Some(*wid))
        }
        (Request::PutIfAbsent { wid, .. }, Response::Written { .. }) => Kind::CreateOk(*wid),
        (Request::PutIfAbsent { wid, .. }, _) if unknown => Kind::CreateMaybe(*wid),
        (Request::PutIfAbsent { .. }, Response::PreconditionFailed) => Kind::CreateRefused,
        (Request::Delete { .. }, Response::Deleted) => Kind::Set(None),
        (Request::Delete { .. }, _) if unknown => Kind::Set(None),
        (Request::Get { .. } | Request::Head { .. }, Response::NotFound) => Kind::Read(None),
        (Request::Get { .. }, Response::Body(b)) => match parse_body(b) {
            Ok(h) if h.key == key => Kind::Read(Some(h.wid)),
            _ => return None,
        },
        (Request::Head { .. }, Response::Etag(e)) => Kind::Read(Some(*etags?.get(e)?)),
        _ => return None,
    };
    Some(MOp {
        invoke: op.invoke_ns,
        complete: if unknown { u64::MAX } else { op.complete_ns },
        kind,
        label: op.to_string(),
    })
}

pub fn check(h: &History) -> Vec<NotLinearizable> {
    let etags = h.etags();
    let mut out = Vec::new();
    for key in h.keys() {
        let ops: Vec<MOp> = h
            .ops_on(&key)
            .filter_map(|o| model(o, &key, etags.get(&key)))
            .collect();
        if let Some(v) = check_key(&key, ops) {
            out.push(v);
        }
    }
    out
}

/// Drops optional writes nothing could depend on: a maybe-write whose value no read
/// observed, when no refused conditional PUT needs *some* value to be present.
fn prune(ops: Vec<MOp>) -> Vec<MOp> {
    let observed: HashSet<WriteId> = ops
        .iter()
        .filter_map(|o| match o.kind {
            Kind::Read(Some(w)) => Some(w),
            _ => None,
        })
        .collect();
    let refusals = ops.iter().any(|o| o.kind == Kind::CreateRefused);
    ops.into_iter()
        .filter(|o| {
            o.required()
                || refusals
                || match o.kind {
                    Kind::Set(Some(w)) | Kind::CreateMaybe(w) => observed.contains(&w),
                    _ => true,
                }
        })
        .collect()
}

fn check_key(key: &str, ops: Vec<MOp>) -> Option<NotLinearizable> {
    let mut ops = prune(ops);
    ops.sort_by_key(|o| o.invoke);
    let n = ops.len();
    let required = ops.iter().filter(|o| o.required()).count();
    let words = n.div_ceil(64).max(1);
    let mut visited: HashSet<(Vec<u64>, Value)> = HashSet::new();
    // (linearized set, value, required ops placed)
    let mut stack: Vec<(Vec<u64>, Value, usize)> = vec![(vec![0; words], None, 0)];
    let mut best: (usize, Vec<u64>, Value) = (0, vec![0; words], None);
    let is_done = |set: &[u64], i: usize| set[i / 64] & (1 << (i % 64)) != 0;
    let mut explored = 0usize;
    while let Some((set, value, placed)) = stack.pop() {
        if placed == required {
            return None;
        }
        explored += 1;
        if explored > SEARCH_BUDGET {
            return Some(NotLinearizable::Inconclusive {
                key: key.to_owned(),
                ops: n,
            });
        }
        if placed > best.0 {
            best = (placed, set.clone(), value);
        }
        let min_complete = (0..n)
            .filter(|&i| !is_done(&set, i))
            .map(|i| ops[i].complete)
            .min()
            .unwrap_or(u64::MAX);
        // Candidates in reverse so the earliest is explored first.
        let mut next = Vec::new();
        for i in 0..n {
            if ops[i].invoke > min_complete {
                break;
            }
            if is_done(&set, i) {
                continue;
            }
            if let Some(v) = step(value, ops[i].kind) {
                let mut s = set.clone();
                s[i / 64] |= 1 << (i % 64);
                if visited.insert((s.clone(), v)) {
                    next.push((s, v, placed + usize::from(ops[i].required())));
                }
            }
        }
        stack.extend(next.into_iter().rev());
    }
    let (placed, set, value) = best;
    let min_complete = (0..n)
        .filter(|&i| !is_done(&set, i))
        .map(|i| ops[i].complete)
        .min()
        .unwrap_or(u64::MAX);
    let stuck = (0..n)
        .filter(|&i| !is_done(&set, i) && ops[i].invoke <= min_complete && ops[i].required())
        .take(6)
        .map(|i| ops[i].label.clone())
        .collect();
    Some(NotLinearizable::Violation {
        key: key.to_owned(),
        required,
        placed,
        value: match value {
            Some(w) => format!("wid {w}"),
            None => "absent".into(),
        },
        stuck,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_support::*;
    use crate::history::Response;

    #[test]
    fn sequential_history_passes() {
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            op(0, (11, 20), get("k"), body("k", 1)),
            op(1, (21, 30), delete("k"), Response::Deleted),
            op(1, (31, 40), head("k"), Response::NotFound),
            op(0, (41, 50), put_if_absent("k", 2), written("k", 2)),
            op(
                1,
                (51, 60),
                put_if_absent("k", 3),
                Response::PreconditionFailed,
            ),
            op(0, (61, 70), head("k"), etag("k", 2)),
        ]);
        assert_eq!(check(&h), vec![]);
    }

    #[test]
    fn stale_read_after_acknowledged_overwrite_fails() {
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            op(0, (11, 20), put("k", 2), written("k", 2)),
            op(1, (30, 40), get("k"), body("k", 1)),
        ]);
        let v = check(&h);
        assert!(
            matches!(&v[..], [NotLinearizable::Violation { key, placed: 2, .. }] if key == "k"),
            "{v:?}"
        );
    }

    #[test]
    fn concurrent_reads_may_see_either_value() {
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            op(1, (15, 50), put("k", 2), written("k", 2)),
            op(2, (20, 30), get("k"), body("k", 2)),
            op(3, (40, 45), get("k"), body("k", 2)),
        ]);
        assert_eq!(check(&h), vec![]);
        // But once a read saw the new value, a later read may not see the old one.
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            op(1, (15, 50), put("k", 2), written("k", 2)),
            op(2, (20, 30), get("k"), body("k", 2)),
            op(3, (31, 45), get("k"), body("k", 1)),
        ]);
        assert_eq!(check(&h).len(), 1);
    }

    #[test]
    fn unknown_writes_may_take_effect_late_or_never() {
        // Timed out at 10, visible at 100: fine.
        let h = history(vec![
            op(0, (0, 10), put("k", 1), unknown()),
            op(1, (50, 60), get("k"), Response::NotFound),
            op(1, (100, 110), get("k"), body("k", 1)),
        ]);
        assert_eq!(check(&h), vec![]);
        // Never visible: fine too.
        let h = history(vec![
            op(0, (0, 10), put("k", 1), unknown()),
            op(1, (100, 110), get("k"), Response::NotFound),
        ]);
        assert_eq!(check(&h), vec![]);
        // But not before it was invoked.
        let h = history(vec![
            op(1, (0, 5), get("k"), body("k", 1)),
            op(0, (10, 20), put("k", 1), unknown()),
        ]);
        assert_eq!(check(&h).len(), 1);
    }

    #[test]
    fn two_acknowledged_conditional_creates_fail() {
        let h = history(vec![
            op(0, (0, 10), put_if_absent("k", 1), written("k", 1)),
            op(1, (5, 15), put_if_absent("k", 2), written("k", 2)),
        ]);
        assert_eq!(check(&h).len(), 1);
    }

    #[test]
    fn refused_conditional_create_on_an_absent_key_fails() {
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            op(0, (20, 30), delete("k"), Response::Deleted),
            op(
                1,
                (40, 50),
                put_if_absent("k", 2),
                Response::PreconditionFailed,
            ),
        ]);
        assert_eq!(check(&h).len(), 1);
    }

    #[test]
    fn a_read_of_a_deleted_key_after_the_delete_fails() {
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            op(0, (20, 30), delete("k"), Response::Deleted),
            op(1, (40, 50), head("k"), etag("k", 1)),
        ]);
        assert_eq!(check(&h).len(), 1);
    }
}
