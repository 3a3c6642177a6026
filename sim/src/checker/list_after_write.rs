//! LIST read-after-write: a LIST that began after a PUT of a key was acknowledged shows
//! the key, and one that began after a DELETE was acknowledged does not — unless a
//! write of the key that could have taken effect in between explains it (a DELETE or
//! PUT, acknowledged or of unknown outcome, that did not end before the first write
//! began and did not begin after the LIST ended).

use std::fmt;

use super::effective_complete;
use crate::history::{History, Op, Request, Response};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListViolation {
    /// `put` was acknowledged before `list` began, nothing could have deleted the key,
    /// yet the listing misses it.
    MissingAfterPut {
        list: usize,
        key: String,
        put: usize,
    },
    /// `delete` was acknowledged before `list` began, nothing could have written the
    /// key again, yet the listing shows it.
    PresentAfterDelete {
        list: usize,
        key: String,
        delete: usize,
    },
}

impl fmt::Display for ListViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListViolation::MissingAfterPut { list, key, put } => write!(
                f,
                "LIST #{list} misses {key}, whose PUT #{put} was acknowledged before it began"
            ),
            ListViolation::PresentAfterDelete { list, key, delete } => write!(
                f,
                "LIST #{list} shows {key}, whose DELETE #{delete} was acknowledged before it began"
            ),
        }
    }
}

fn is_put(o: &Op) -> bool {
    matches!(
        o.req,
        Request::Put { .. } | Request::PutIfAbsent { .. } | Request::Multipart { .. }
    ) && matches!(o.resp, Response::Written { .. } | Response::Unknown(_))
}

fn is_delete(o: &Op) -> bool {
    matches!(o.req, Request::Delete { .. })
        && matches!(o.resp, Response::Deleted | Response::Unknown(_))
}

pub fn check(h: &History) -> Vec<ListViolation> {
    let mut out = Vec::new();
    let keys = h.keys();
    for list in &h.ops {
        let Response::Listing(entries) = &list.resp else {
            continue;
        };
        for key in &keys {
            let present = entries.iter().any(|(k, _)| k == key);
            // Could `other` have taken effect after `first` and before `list` read?
            let between = |first: &Op, other: &Op| {
                other.invoke_ns <= list.complete_ns && effective_complete(other) > first.invoke_ns
            };
            let ops: Vec<&Op> = h.ops_on(key).collect();
            if !present {
                let put = ops.iter().find(|p| {
                    is_put(p)
                        && p.resp.is_definite()
                        && p.complete_ns < list.invoke_ns
                        && !ops.iter().any(|d| is_delete(d) && between(p, d))
                });
                if let Some(p) = put {
                    out.push(ListViolation::MissingAfterPut {
                        list: list.id,
                        key: key.clone(),
                        put: p.id,
                    });
                }
            } else {
                let del = ops.iter().find(|d| {
                    is_delete(d)
                        && d.resp.is_definite()
                        && d.complete_ns < list.invoke_ns
                        && !ops.iter().any(|p| is_put(p) && between(d, p))
                });
                if let Some(d) = del {
                    out.push(ListViolation::PresentAfterDelete {
                        list: list.id,
                        key: key.clone(),
                        delete: d.id,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_support::*;
    use crate::history::Request;

    #[test]
    fn listing_after_put_and_delete_passes() {
        let h = history(vec![
            op(0, (0, 10), put("a", 1), written("a", 1)),
            op(0, (0, 10), put("b", 2), written("b", 2)),
            op(0, (11, 20), Request::List, listing(&[("a", 1), ("b", 2)])),
            op(0, (21, 30), delete("a"), Response::Deleted),
            op(0, (31, 40), Request::List, listing(&[("b", 2)])),
        ]);
        assert_eq!(check(&h), vec![]);
    }

    #[test]
    fn a_missing_acknowledged_put_is_caught() {
        let h = history(vec![
            op(0, (0, 10), put("a", 1), written("a", 1)),
            op(1, (11, 20), Request::List, listing(&[])),
        ]);
        assert!(matches!(
            &check(&h)[..],
            [ListViolation::MissingAfterPut { key, .. }] if key == "a"
        ));
    }

    #[test]
    fn a_deleted_key_still_listed_is_caught() {
        let h = history(vec![
            op(0, (0, 10), put("a", 1), written("a", 1)),
            op(0, (11, 20), delete("a"), Response::Deleted),
            op(1, (21, 30), Request::List, listing(&[("a", 1)])),
        ]);
        assert!(matches!(
            &check(&h)[..],
            [ListViolation::PresentAfterDelete { .. }]
        ));
    }

    #[test]
    fn racing_or_unknown_writes_excuse_the_listing() {
        let h = history(vec![
            op(0, (0, 10), put("a", 1), written("a", 1)),
            op(2, (5, 8), delete("a"), unknown()),
            op(1, (21, 30), Request::List, listing(&[])),
            op(0, (40, 50), delete("a"), Response::Deleted),
            op(2, (45, 70), put("a", 3), written("a", 3)),
            op(1, (60, 65), Request::List, listing(&[("a", 3)])),
        ]);
        assert_eq!(check(&h), vec![]);
    }
}
