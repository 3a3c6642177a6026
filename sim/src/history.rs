//! The history of a run: every S3 request a simulated client made, when it was invoked
//! and when it completed (simulated time), and what came back. The checkers read only
//! this.
//!
//! Object bodies are self-describing (`make_body`): a header line naming the key, the
//! write id and the payload's length and CRC32C, then a payload derived from the write
//! id. Any byte returned by a GET can therefore be traced to the PUT that wrote it, or
//! shown to be corrupt or phantom.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use md5::{Digest, Md5};

/// A write's id: unique across a run (client in the high bits, counter in the low).
pub type WriteId = u64;

/// The client id of the final reads after quiescence.
pub const FINAL_CLIENT: u32 = u32::MAX;

/// When an operation was invoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Faults on: only safety is checked.
    Safety,
    /// Faults healed and the cluster recovered: every request must also succeed.
    Liveness,
    /// Final reads after every client stopped.
    Final,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Put {
        key: String,
        wid: WriteId,
        len: usize,
    },
    /// `PUT` with `If-None-Match: *`.
    PutIfAbsent {
        key: String,
        wid: WriteId,
        len: usize,
    },
    /// A multipart upload (create, upload the parts — `multipart_part_lens`, one of them
    /// twice, wrong bytes first — complete): one logical write, invoked at the create and
    /// completed by the complete's answer.
    Multipart {
        key: String,
        wid: WriteId,
        len: usize,
    },
    /// A multipart upload that uploads its part and aborts: never takes effect (its
    /// body, with its own write id, must never be read back).
    MultipartAbort {
        key: String,
        wid: WriteId,
        len: usize,
    },
    Get {
        key: String,
    },
    Head {
        key: String,
    },
    Delete {
        key: String,
    },
    /// ListObjectsV2 of the whole bucket.
    List,
}

impl Request {
    pub fn key(&self) -> Option<&str> {
        match self {
            Request::Put { key, .. }
            | Request::PutIfAbsent { key, .. }
            | Request::Multipart { key, .. }
            | Request::MultipartAbort { key, .. }
            | Request::Get { key }
            | Request::Head { key }
            | Request::Delete { key } => Some(key),
            Request::List => None,
        }
    }

    /// The write id and body length of a PUT.
    pub fn write(&self) -> Option<(WriteId, usize)> {
        match self {
            Request::Put { wid, len, .. }
            | Request::PutIfAbsent { wid, len, .. }
            | Request::Multipart { wid, len, .. } => Some((*wid, *len)),
            _ => None,
        }
    }

    /// The ETag a write's object gets: the body's MD5, or for a multipart upload the MD5
    /// of its parts' MD5s with `-N` (`multipart_etag_of`).
    pub fn etag(&self) -> Option<String> {
        match self {
            Request::Put { key, wid, len } | Request::PutIfAbsent { key, wid, len } => {
                Some(etag_of(key, *wid, *len))
            }
            Request::Multipart { key, wid, len } => Some(multipart_etag_of(key, *wid, *len)),
            _ => None,
        }
    }

    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Put { .. }
                | Request::PutIfAbsent { .. }
                | Request::Multipart { .. }
                | Request::Delete { .. }
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            Request::Put { .. } => "PUT",
            Request::PutIfAbsent { .. } => "PUT-if-absent",
            Request::Multipart { .. } => "MULTIPART",
            Request::MultipartAbort { .. } => "MULTIPART-abort",
            Request::Get { .. } => "GET",
            Request::Head { .. } => "HEAD",
            Request::Delete { .. } => "DELETE",
            Request::List => "LIST",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub enum Response {
    /// A PUT was acknowledged with this ETag (unquoted).
    Written { etag: String },
    /// A DELETE was acknowledged.
    Deleted,
    /// GET 200.
    Body(Bytes),
    /// HEAD 200: the ETag (unquoted).
    Etag(String),
    /// GET / HEAD 404.
    NotFound,
    /// 412 to a conditional PUT: the key existed.
    PreconditionFailed,
    /// LIST 200: (key, unquoted ETag) in the order listed.
    Listing(Vec<(String, String)>),
    /// A definite failure: the request had no effect (a 4xx, or it was never sent).
    Failed(String),
    /// Timed out, 5xx or connection lost: a write may or may not have taken effect.
    Unknown(String),
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Response::Written { etag } => write!(f, "Written({etag})"),
            Response::Deleted => write!(f, "Deleted"),
            Response::Body(b) => match parse_body(b) {
                Ok(h) => write!(f, "Body(wid {} {} bytes)", h.wid, b.len()),
                Err(e) => write!(f, "Body(unparseable, {} bytes: {e})", b.len()),
            },
            Response::Etag(e) => write!(f, "Etag({e})"),
            Response::NotFound => write!(f, "NotFound"),
            Response::PreconditionFailed => write!(f, "PreconditionFailed"),
            Response::Listing(l) => write!(f, "Listing({l:?})"),
            Response::Failed(s) => write!(f, "Failed({s})"),
            Response::Unknown(s) => write!(f, "Unknown({s})"),
        }
    }
}

impl Response {
    /// The request definitely took effect (writes) or answered (reads).
    pub fn is_definite(&self) -> bool {
        !matches!(self, Response::Failed(_) | Response::Unknown(_))
    }
}

/// One request and its answer. Times are nanoseconds of simulated time since the run
/// started; `complete_ns` is when the answer (or the timeout) arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub id: usize,
    pub client: u32,
    pub phase: Phase,
    pub invoke_ns: u64,
    pub complete_ns: u64,
    pub req: Request,
    pub resp: Response,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let client = if self.client == FINAL_CLIENT {
            "final".to_owned()
        } else {
            format!("c{}", self.client)
        };
        write!(
            f,
            "#{} {client} [{:.3}s..{:.3}s] {} {} -> {:?}",
            self.id,
            self.invoke_ns as f64 / 1e9,
            self.complete_ns as f64 / 1e9,
            self.req.name(),
            match &self.req {
                Request::Put { key, wid, len }
                | Request::PutIfAbsent { key, wid, len }
                | Request::Multipart { key, wid, len } => format!(
                    "{key} wid {wid} ({len} B, ETag {})",
                    self.req.etag().unwrap_or_default()
                ),
                Request::MultipartAbort { key, wid, len } => {
                    format!("{key} wid {wid} ({len} B)")
                }
                Request::List => String::new(),
                r => r.key().unwrap_or_default().to_owned(),
            },
            self.resp
        )
    }
}

/// A run's history, ops in invocation order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub ops: Vec<Op>,
}

impl History {
    /// Sorts by (invoke, client, complete) and numbers the ops.
    pub fn from_ops(mut ops: Vec<Op>) -> Self {
        ops.sort_by(|a, b| {
            (a.invoke_ns, a.client, a.complete_ns).cmp(&(b.invoke_ns, b.client, b.complete_ns))
        });
        for (i, op) in ops.iter_mut().enumerate() {
            op.id = i;
        }
        History { ops }
    }

    /// Every key the history mentions, in order.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .ops
            .iter()
            .filter_map(|o| o.req.key().map(str::to_owned))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// The ops on `key` (not LIST).
    pub fn ops_on<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Op> + 'a {
        self.ops.iter().filter(move |o| o.req.key() == Some(key))
    }

    /// For each key, the ETag of every write to it → (write id, body length).
    pub fn etags(&self) -> BTreeMap<String, BTreeMap<String, WriteId>> {
        let mut out: BTreeMap<String, BTreeMap<String, WriteId>> = BTreeMap::new();
        for op in &self.ops {
            if let (Some(key), Some((wid, _)), Some(etag)) =
                (op.req.key(), op.req.write(), op.req.etag())
            {
                out.entry(key.to_owned()).or_default().insert(etag, wid);
            }
        }
        out
    }

    /// A digest of the whole history (FNV-1a 64 over a canonical rendering): equal
    /// digests for two runs of one seed show the run is deterministic.
    pub fn trace_hash(&self) -> u64 {
        let mut h = Fnv::new();
        for op in &self.ops {
            h.write(format!("{op}").as_bytes());
            if let Response::Body(b) = &op.resp {
                h.write(&crc32c::crc32c(b).to_le_bytes());
            }
            h.write(b"\n");
        }
        h.finish()
    }

    pub fn counts(&self) -> OpCounts {
        let mut c = OpCounts::default();
        for op in &self.ops {
            c.total += 1;
            match op.resp {
                Response::Unknown(_) => c.unknown += 1,
                Response::Failed(_) => c.failed += 1,
                _ => c.ok += 1,
            }
        }
        c
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    pub total: usize,
    pub ok: usize,
    pub failed: usize,
    pub unknown: usize,
}

/// FNV-1a, 64 bit: a stable hash (std's hashers may change between releases).
pub struct Fnv(u64);

impl Fnv {
    pub fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv {
    fn default() -> Self {
        Self::new()
    }
}

const BODY_MAGIC: &str = "shale-sim";

/// What a body's header line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyHeader {
    pub key: String,
    pub wid: WriteId,
    pub payload_len: usize,
    pub crc: u32,
}

/// The body write `wid` puts under `key`: `len` bytes in total (at least the header).
pub fn make_body(key: &str, wid: WriteId, len: usize) -> Bytes {
    // Fixed-width fields: the header's length depends only on the key.
    let header_len = header(key, wid, 0, 0).len();
    let payload = payload_bytes(wid, len.saturating_sub(header_len));
    let mut out = header(key, wid, payload.len(), crc32c::crc32c(&payload)).into_bytes();
    out.extend_from_slice(&payload);
    out.into()
}

fn header(key: &str, wid: WriteId, payload_len: usize, crc: u32) -> String {
    format!("{BODY_MAGIC} key={key} wid={wid:020} len={payload_len:010} crc={crc:08x}\n")
}

fn payload_bytes(wid: WriteId, len: usize) -> Vec<u8> {
    let mut state = wid ^ 0x5eed_5eed_5eed_5eed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&common::env::splitmix64(&mut state).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Parses and verifies a body: the header line, the payload length and CRC.
pub fn parse_body(body: &[u8]) -> Result<BodyHeader, String> {
    let nl = body
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("no header line")?;
    let line = std::str::from_utf8(&body[..nl]).map_err(|_| "header is not UTF-8")?;
    let mut parts = line.split(' ');
    if parts.next() != Some(BODY_MAGIC) {
        return Err("no magic".into());
    }
    let mut field = |name: &str| -> Result<String, String> {
        let p = parts.next().ok_or(format!("no {name}"))?;
        p.strip_prefix(name)
            .and_then(|p| p.strip_prefix('='))
            .map(str::to_owned)
            .ok_or(format!("bad {name}"))
    };
    let key = field("key")?;
    let wid = field("wid")?.parse().map_err(|_| "bad wid")?;
    let payload_len: usize = field("len")?.parse().map_err(|_| "bad len")?;
    let crc = u32::from_str_radix(&field("crc")?, 16).map_err(|_| "bad crc")?;
    let payload = &body[nl + 1..];
    if payload.len() != payload_len {
        return Err(format!(
            "payload is {} bytes, header says {payload_len}",
            payload.len()
        ));
    }
    if crc32c::crc32c(payload) != crc {
        return Err("payload CRC mismatch".into());
    }
    Ok(BodyHeader {
        key,
        wid,
        payload_len,
        crc,
    })
}

/// The S3 ETag of a single-part PUT of `make_body(key, wid, len)`: hex MD5.
pub fn etag_of(key: &str, wid: WriteId, len: usize) -> String {
    hex(&Md5::digest(make_body(key, wid, len)))
}

/// The simulated gateways' `min_part_bytes`: every part but the last of a multipart
/// upload has at least this many bytes, so KiB-sized bodies can have several parts.
pub const SIM_MIN_PART_BYTES: usize = 1024;

/// The part lengths of the multipart upload of a `body_len`-byte body (`make_body`)
/// with write id `wid`: 2 or 3 parts when the body is long enough for every part but
/// the last to have `SIM_MIN_PART_BYTES` (and the last at least one byte), else one.
/// A function of `(wid, body_len)` only, so the checkers can recompute the ETag.
pub fn multipart_part_lens(wid: WriteId, body_len: usize) -> Vec<usize> {
    let min = SIM_MIN_PART_BYTES;
    let mut state = wid ^ (body_len as u64).rotate_left(32) ^ 0x9a77_9a77_9a77_9a77;
    let mut draw = |n: usize| (common::env::splitmix64(&mut state) % n as u64) as usize;
    let fits = if body_len == 0 {
        1
    } else {
        (body_len - 1) / min + 1
    };
    let parts = match fits.min(3) {
        0 | 1 => 1,
        most => 2 + draw(most - 1),
    };
    let mut lens = Vec::with_capacity(parts);
    let mut left = body_len;
    for i in 0..parts - 1 {
        // Leave the minimum for each later non-last part and a byte for the last.
        let max = left - (parts - 2 - i) * min - 1;
        let len = min + draw(max - min + 1);
        lens.push(len);
        left -= len;
    }
    lens.push(left);
    lens
}

/// The ETag of the multipart upload of `make_body(key, wid, len)` cut as
/// `multipart_part_lens` says: the MD5 of the parts' MD5s, then `-` and the part count.
pub fn multipart_etag_of(key: &str, wid: WriteId, len: usize) -> String {
    let body = make_body(key, wid, len);
    let lens = multipart_part_lens(wid, body.len());
    let mut md5s = Vec::with_capacity(16 * lens.len());
    let mut at = 0;
    for l in &lens {
        md5s.extend_from_slice(&Md5::digest(&body[at..at + l]));
        at += l;
    }
    format!("{}-{}", hex(&Md5::digest(&md5s)), lens.len())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_self_describing_and_exact_length() {
        for len in [0usize, 10, 63, 64, 65, 100, 4096, 4097, 9000] {
            let b = make_body("k1", 42, len);
            let h = parse_body(&b).unwrap();
            assert_eq!(h.key, "k1");
            assert_eq!(h.wid, 42);
            if len >= 80 {
                assert_eq!(b.len(), len);
            }
        }
        let mut bad = make_body("k1", 42, 500).to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(parse_body(&bad).is_err());
    }

    #[test]
    fn multipart_parts_cover_the_body_and_respect_the_minimum() {
        let min = SIM_MIN_PART_BYTES;
        let mut counts = [0usize; 4];
        for wid in 0..200u64 {
            for len in [
                0usize,
                1,
                100,
                min,
                min + 1,
                2 * min,
                2 * min + 1,
                5000,
                12000,
            ] {
                let lens = multipart_part_lens(wid, len);
                assert_eq!(lens, multipart_part_lens(wid, len), "deterministic");
                assert_eq!(lens.iter().sum::<usize>(), len);
                assert!((1..=3).contains(&lens.len()), "{lens:?}");
                let (last, init) = lens.split_last().unwrap();
                assert!(init.iter().all(|l| *l >= min), "{lens:?}");
                if lens.len() > 1 {
                    assert!(*last >= 1);
                }
                match len {
                    l if l <= min => assert_eq!(lens.len(), 1),
                    l if l <= 2 * min => assert_eq!(lens.len(), 2),
                    _ => assert!(lens.len() >= 2),
                }
                counts[lens.len()] += 1;
            }
        }
        assert!(counts[3] > 0 && counts[2] > 0);
        let etag = multipart_etag_of("k", 7, 5000);
        assert!(etag.ends_with("-2") || etag.ends_with("-3"), "{etag}");
        assert!(multipart_etag_of("k", 7, 200).ends_with("-1"));
    }
}
