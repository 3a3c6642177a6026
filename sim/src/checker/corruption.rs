//! No corrupt or phantom bytes: every GET body is, byte for byte, the body of a PUT of
//! that key that had been invoked by the time the GET completed; every ETag a PUT,
//! HEAD or LIST returns is the MD5 of such a body; a LIST names only keys that were
//! written.

use std::collections::BTreeMap;
use std::fmt;

use crate::history::{make_body, parse_body, History, Op, Request, Response, WriteId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// A GET body without a valid header or whose payload fails its CRC.
    Unparseable {
        op: usize,
        key: String,
        error: String,
    },
    /// A GET of `key` returned a body written for `body_key`.
    WrongKey {
        op: usize,
        key: String,
        body_key: String,
    },
    /// A GET returned a body whose write id no PUT of the key had (yet) used.
    PhantomWrite {
        op: usize,
        key: String,
        wid: WriteId,
    },
    /// Header and CRC check out but the bytes differ from what the write sent.
    WrongBytes {
        op: usize,
        key: String,
        wid: WriteId,
    },
    /// An acknowledged PUT answered an ETag that is not the MD5 of its body.
    WrongPutEtag {
        op: usize,
        key: String,
        expected: String,
        got: String,
    },
    /// A HEAD or LIST answered an ETag that no PUT of the key produces.
    PhantomEtag {
        op: usize,
        key: String,
        etag: String,
    },
    /// A LIST named a key nobody wrote.
    PhantomKey { op: usize, key: String },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::Unparseable { op, key, error } => {
                write!(f, "#{op} GET {key}: body is not any write's ({error})")
            }
            Corruption::WrongKey { op, key, body_key } => {
                write!(f, "#{op} GET {key}: returned the body of {body_key}")
            }
            Corruption::PhantomWrite { op, key, wid } => {
                write!(
                    f,
                    "#{op} GET {key}: returned wid {wid}, never written to {key}"
                )
            }
            Corruption::WrongBytes { op, key, wid } => {
                write!(f, "#{op} GET {key}: bytes differ from wid {wid}'s body")
            }
            Corruption::WrongPutEtag {
                op,
                key,
                expected,
                got,
            } => write!(f, "#{op} PUT {key}: ETag {got}, body MD5 is {expected}"),
            Corruption::PhantomEtag { op, key, etag } => {
                write!(
                    f,
                    "#{op}: {key} has ETag {etag}, which no write of {key} produces"
                )
            }
            Corruption::PhantomKey { op, key } => {
                write!(f, "#{op} LIST: key {key} was never written")
            }
        }
    }
}

pub fn check(h: &History) -> Vec<Corruption> {
    let etags = h.etags();
    // key -> wid -> (invoked at, body length)
    let mut writes: BTreeMap<&str, BTreeMap<WriteId, (u64, usize)>> = BTreeMap::new();
    for op in &h.ops {
        if let (Some(key), Some((wid, len))) = (op.req.key(), op.req.write()) {
            writes
                .entry(key)
                .or_default()
                .insert(wid, (op.invoke_ns, len));
        }
    }
    let mut out = Vec::new();
    let known_etag = |key: &str, e: &str| etags.get(key).is_some_and(|m| m.contains_key(e));
    for op in &h.ops {
        check_op(op, &writes, &known_etag, &mut out);
    }
    out
}

fn check_op(
    op: &Op,
    writes: &BTreeMap<&str, BTreeMap<WriteId, (u64, usize)>>,
    known_etag: &dyn Fn(&str, &str) -> bool,
    out: &mut Vec<Corruption>,
) {
    match (&op.req, &op.resp) {
        (Request::Get { key }, Response::Body(b)) => {
            let key = key.clone();
            let h = match parse_body(b) {
                Ok(h) => h,
                Err(error) => {
                    out.push(Corruption::Unparseable {
                        op: op.id,
                        key,
                        error,
                    });
                    return;
                }
            };
            if h.key != key {
                out.push(Corruption::WrongKey {
                    op: op.id,
                    key,
                    body_key: h.key,
                });
                return;
            }
            let Some(&(invoked, len)) = writes.get(key.as_str()).and_then(|m| m.get(&h.wid)) else {
                out.push(Corruption::PhantomWrite {
                    op: op.id,
                    key,
                    wid: h.wid,
                });
                return;
            };
            if invoked > op.complete_ns {
                out.push(Corruption::PhantomWrite {
                    op: op.id,
                    key,
                    wid: h.wid,
                });
            } else if *b != make_body(&key, h.wid, len) {
                out.push(Corruption::WrongBytes {
                    op: op.id,
                    key,
                    wid: h.wid,
                });
            }
        }
        (
            Request::Put { key, .. }
            | Request::PutIfAbsent { key, .. }
            | Request::Multipart { key, .. },
            Response::Written { etag },
        ) => {
            let expected = op.req.etag().unwrap_or_default();
            if *etag != expected {
                out.push(Corruption::WrongPutEtag {
                    op: op.id,
                    key: key.clone(),
                    expected,
                    got: etag.clone(),
                });
            }
        }
        (Request::Head { key }, Response::Etag(e)) if !known_etag(key, e) => {
            out.push(Corruption::PhantomEtag {
                op: op.id,
                key: key.clone(),
                etag: e.clone(),
            });
        }
        (Request::List, Response::Listing(entries)) => {
            for (key, e) in entries {
                if !writes.contains_key(key.as_str()) {
                    out.push(Corruption::PhantomKey {
                        op: op.id,
                        key: key.clone(),
                    });
                } else if !known_etag(key, e) {
                    out.push(Corruption::PhantomEtag {
                        op: op.id,
                        key: key.clone(),
                        etag: e.clone(),
                    });
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_support::*;

    #[test]
    fn exact_bodies_and_etags_pass() {
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            op(0, (11, 20), get("k"), body("k", 1)),
            op(0, (21, 30), head("k"), etag("k", 1)),
            op(
                0,
                (31, 40),
                crate::history::Request::List,
                listing(&[("k", 1)]),
            ),
        ]);
        assert_eq!(check(&h), vec![]);
    }

    #[test]
    fn multipart_etags_are_checked_as_multipart() {
        let req = crate::history::Request::Multipart {
            key: "k".into(),
            wid: 7,
            len: LEN,
        };
        let good = crate::history::multipart_etag_of("k", 7, LEN);
        assert!(good.ends_with("-1"));
        let h = history(vec![
            op(
                0,
                (0, 10),
                req.clone(),
                Response::Written { etag: good.clone() },
            ),
            op(0, (11, 20), head("k"), Response::Etag(good)),
            op(0, (21, 30), get("k"), body("k", 7)),
        ]);
        assert_eq!(check(&h), vec![]);
        // The single-part ETag of the same body is not the multipart object's.
        let h = history(vec![op(0, (0, 10), req, written("k", 7))]);
        assert!(matches!(&check(&h)[..], [Corruption::WrongPutEtag { .. }]));
    }

    #[test]
    fn a_flipped_byte_is_caught() {
        let mut b = crate::history::make_body("k", 1, LEN).to_vec();
        b[LEN - 1] ^= 0x40;
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            op(0, (11, 20), get("k"), Response::Body(b.into())),
        ]);
        assert!(matches!(&check(&h)[..], [Corruption::Unparseable { .. }]));
    }

    #[test]
    fn another_keys_body_is_caught() {
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            op(0, (0, 10), put("j", 2), written("j", 2)),
            op(0, (11, 20), get("k"), body("j", 2)),
        ]);
        assert!(matches!(&check(&h)[..], [Corruption::WrongKey { .. }]));
    }

    #[test]
    fn a_body_nobody_wrote_is_a_phantom() {
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            op(0, (11, 20), get("k"), body("k", 9)),
            // A write invoked only after the read completed cannot explain it either.
            op(1, (21, 30), get("k"), body("k", 3)),
            op(0, (40, 50), put("k", 3), written("k", 3)),
        ]);
        let v = check(&h);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v
            .iter()
            .all(|c| matches!(c, Corruption::PhantomWrite { .. })));
    }

    #[test]
    fn a_body_of_the_wrong_length_is_caught() {
        let long = crate::history::make_body("k", 1, LEN + 50);
        let h = history(vec![
            op(0, (0, 10), put("k", 1), written("k", 1)),
            op(0, (11, 20), get("k"), Response::Body(long)),
        ]);
        assert!(matches!(&check(&h)[..], [Corruption::WrongBytes { .. }]));
    }

    #[test]
    fn wrong_etags_are_caught() {
        let h = history(vec![
            op(
                0,
                (0, 10),
                put("k", 1),
                Response::Written {
                    etag: "0".repeat(32),
                },
            ),
            op(0, (11, 20), head("k"), Response::Etag("f".repeat(32))),
            op(
                0,
                (21, 30),
                crate::history::Request::List,
                listing(&[("zz", 1)]),
            ),
        ]);
        let v = check(&h);
        assert!(
            matches!(
                &v[..],
                [
                    Corruption::WrongPutEtag { .. },
                    Corruption::PhantomEtag { .. },
                    Corruption::PhantomKey { .. }
                ]
            ),
            "{v:?}"
        );
    }
}
