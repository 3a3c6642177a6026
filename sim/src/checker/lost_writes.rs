//! No acknowledged write is lost: after every client stopped and the cluster healed,
//! the final read of each key returns a value some write could have left there.
//!
//! A write (PUT, conditional PUT, DELETE; acknowledged or of unknown outcome) can be the
//! last one unless an acknowledged write began after it ended. The key's initial
//! absence is allowed only if no write was acknowledged at all. The final value must be
//! one of the remaining candidates, and the final read must answer at all.

use std::fmt;

use super::effective_complete;
use crate::history::{parse_body, History, Op, Phase, Request, Response, WriteId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LostWrite {
    /// The final read returned `observed`; only `allowed` could be there.
    WrongFinalValue {
        key: String,
        observed: String,
        allowed: Vec<String>,
        final_op: usize,
    },
    /// No final read of `key` got an answer (the data may be gone).
    Unreadable { key: String, last: String },
}

impl fmt::Display for LostWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostWrite::WrongFinalValue {
                key,
                observed,
                allowed,
                final_op,
            } => write!(
                f,
                "{key}: final read #{final_op} saw {observed}, allowed only {}",
                allowed.join(" | ")
            ),
            LostWrite::Unreadable { key, last } => {
                write!(f, "{key}: final reads never answered (last: {last})")
            }
        }
    }
}

fn describe(v: Option<WriteId>) -> String {
    match v {
        Some(w) => format!("wid {w}"),
        None => "absent".into(),
    }
}

/// The value a write leaves, if it may have taken effect.
fn write_value(op: &Op) -> Option<Option<WriteId>> {
    let maybe = matches!(op.resp, Response::Unknown(_));
    match (&op.req, &op.resp) {
        (Request::Delete { .. }, Response::Deleted) => Some(None),
        (Request::Delete { .. }, _) if maybe => Some(None),
        (r, Response::Written { .. }) => r.write().map(|(wid, _)| Some(wid)),
        (r, _) if maybe => r.write().map(|(wid, _)| Some(wid)),
        _ => None,
    }
}

pub fn check(h: &History) -> Vec<LostWrite> {
    let mut out = Vec::new();
    for key in h.keys() {
        let writes: Vec<(&Op, Option<WriteId>)> = h
            .ops_on(&key)
            .filter(|o| o.phase != Phase::Final)
            .filter_map(|o| write_value(o).map(|v| (o, v)))
            .collect();
        let acked: Vec<&Op> = writes
            .iter()
            .filter(|(o, _)| o.resp.is_definite())
            .map(|(o, _)| *o)
            .collect();
        let mut allowed: Vec<Option<WriteId>> = writes
            .iter()
            .filter(|(w, _)| {
                let end = effective_complete(w);
                !acked.iter().any(|a| end < a.invoke_ns)
            })
            .map(|(_, v)| *v)
            .collect();
        if acked.is_empty() {
            allowed.push(None);
        }
        allowed.sort();
        allowed.dedup();
        let finals: Vec<&Op> = h.ops_on(&key).filter(|o| o.phase == Phase::Final).collect();
        let Some(last) = finals.iter().rev().find(|o| o.resp.is_definite()) else {
            if let Some(last) = finals.last() {
                out.push(LostWrite::Unreadable {
                    key: key.clone(),
                    last: format!("{:?}", last.resp),
                });
            }
            continue;
        };
        let observed = match &last.resp {
            Response::NotFound => None,
            Response::Body(b) => match parse_body(b) {
                Ok(hd) => Some(hd.wid),
                Err(_) => continue, // reported by the corruption checker
            },
            _ => continue,
        };
        if !allowed.contains(&observed) {
            out.push(LostWrite::WrongFinalValue {
                key: key.clone(),
                observed: describe(observed),
                allowed: allowed.iter().map(|v| describe(*v)).collect(),
                final_op: last.id,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_support::*;
    use crate::history::Response;

    #[test]
    fn final_value_from_the_last_acknowledged_write_passes() {
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            op(1, (20, 30), put("k", 2), written("k", 2)),
            final_op(op(0, (100, 101), get("k"), body("k", 2))),
        ]);
        assert!(check(&h).is_empty());
    }

    #[test]
    fn an_overwritten_value_coming_back_is_a_lost_write() {
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            op(1, (20, 30), put("k", 2), written("k", 2)),
            final_op(op(0, (100, 101), get("k"), body("k", 1))),
        ]);
        let v = check(&h);
        assert!(
            matches!(&v[..], [LostWrite::WrongFinalValue { key, observed, .. }] if key == "k" && observed == "wid 1"),
            "{v:?}"
        );
    }

    #[test]
    fn an_acknowledged_put_vanishing_is_a_lost_write() {
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            final_op(op(0, (100, 101), get("k"), Response::NotFound)),
        ]);
        assert_eq!(check(&h).len(), 1);
    }

    #[test]
    fn concurrent_and_unknown_writes_are_all_allowed() {
        let h = history(vec![
            op(0, (0, 50), put("k", 1), written("k", 1)),
            op(1, (10, 60), put("k", 2), written("k", 2)),
            op(2, (70, 80), delete("k"), unknown()),
            final_op(op(0, (100, 101), get("k"), body("k", 1))),
        ]);
        assert!(check(&h).is_empty());
        let h2 = history(vec![
            op(0, (0, 50), put("k", 1), written("k", 1)),
            op(2, (70, 80), delete("k"), unknown()),
            final_op(op(0, (100, 101), get("k"), Response::NotFound)),
        ]);
        assert!(check(&h2).is_empty());
    }

    #[test]
    fn a_key_that_never_reads_back_is_reported() {
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            final_op(op(0, (100, 110), get("k"), Response::Unknown("503".into()))),
        ]);
        assert!(matches!(&check(&h)[..], [LostWrite::Unreadable { .. }]));
    }
}
