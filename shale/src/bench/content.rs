//! What `shale bench` writes: every object is a window into one random pool, chosen by
//! (key, generation, part), so writing costs a slice and verifying a GET costs a memcmp
//! while the bytes still differ between keys and between overwrites of one key.

use bytes::Bytes;
use common::env::Env;

/// Window offsets are drawn below this; the pool is this much longer than the largest
/// window.
const SLACK: usize = 4096;

/// What one key holds now, as far as its (only) writer knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub generation: u64,
    pub size: usize,
    /// Part size for multipart objects; `None` for single PUTs.
    pub part: Option<usize>,
}

pub struct Content {
    pool: Bytes,
}

impl Content {
    /// A pool for windows of up to `max_window` bytes.
    pub fn new(env: &Env, max_window: usize) -> Self {
        let len = max_window + SLACK;
        let mut pool = Vec::with_capacity(len + 8);
        while pool.len() < len {
            pool.extend_from_slice(&env.random_u64().to_le_bytes());
        }
        pool.truncate(len);
        Content {
            pool: Bytes::from(pool),
        }
    }

    fn offset(key: u64, generation: u64, part: u64) -> usize {
        let mut x = key
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(generation.wrapping_mul(0xBF58_476D_1CE4_E5B9))
            .wrapping_add(part.wrapping_mul(0x94D0_49BB_1331_11EB));
        x ^= x >> 31;
        (x % SLACK as u64) as usize
    }

    /// The body of a single PUT, or of part `part` (0-based) of a multipart object.
    pub fn window(&self, key: u64, generation: u64, part: u64, len: usize) -> Bytes {
        let off = Self::offset(key, generation, part);
        self.pool.slice(off..off + len)
    }

    /// The bytes of `shape` at `[pos, pos + n)` for the largest `n <= max` that stays
    /// inside one part.
    pub fn expected(&self, key: u64, shape: &Shape, pos: usize, max: usize) -> &[u8] {
        let (part, in_part, part_len) = match shape.part {
            None => (0, pos, shape.size),
            Some(p) => {
                let part = pos / p;
                let start = part * p;
                (part as u64, pos - start, p.min(shape.size - start))
            }
        };
        let off = Self::offset(key, shape.generation, part);
        let n = max.min(part_len - in_part);
        &self.pool[off + in_part..off + in_part + n]
    }
}

/// The object key of index `i`: spread over `prefixes` prefixes so listings and the
/// key-range partitioning see several of them.
pub fn key_name(prefix: &str, prefixes: usize, i: u64) -> String {
    let p = i % prefixes.max(1) as u64;
    format!("{prefix}p{p:03}/{i:08}")
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The text between the first `<tag>` and `</tag>` in `xml`.
pub fn xml_value<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}
