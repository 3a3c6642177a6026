//! Byte encodings of the state machine's table keys.
//!
//! # The object key order
//! An object is named by `(bucket, key)`; its *object key* is
//!
//! ```text
//! bucket bytes || 0x00 || escape(key bytes) || 0x00 0x00
//! escape: every 0x00 byte becomes 0x00 0xFF; every other byte is copied
//! ```
//!
//! Properties (tested in `keys_test.rs`):
//! - **Order-preserving:** object keys compare exactly like `(bucket, key)` compared
//!   bytewise (Rust's `str` order), so a table keyed by them is in S3 listing order.
//! - **Contiguous buckets:** a bucket name never contains 0x00 (checked at CreateBucket),
//!   so every object of bucket `b` lies in `[b || 0x00, b || 0x01)` ([`bucket_range`]).
//! - **Prefix-free:** no object key is a proper prefix of another (inside an escaped key
//!   a 0x00 is always followed by 0xFF, and the terminator is 0x00 0x00). So a suffix can
//!   be appended (a version's sequence number, an upload id) and all rows of one object
//!   stay contiguous and ordered by that suffix.
//! - **Prefixes are ranges:** the keys of bucket `b` that start with `p` are exactly the
//!   object keys in `[key_prefix(b, p), prefix_successor(key_prefix(b, p)))`.
//!
//! This order also defines the ranges that object groups own: a group owns a contiguous
//! range of object keys.
//!
//! Integers inside keys are big-endian only where the key order must follow the number
//! (versions newest first, GC entries oldest first, parts by number).

use std::cmp::Ordering;

use common::ids::StripeId;

use super::gc::GcId;

/// Separates the bucket name from the escaped key.
const BUCKET_SEP: u8 = 0x00;
/// Follows an escaped 0x00 byte inside an escaped string.
const ESCAPED_NUL: u8 = 0xFF;
/// Ends an escaped string (`0x00 0x00`).
const TERMINATOR: [u8; 2] = [0x00, 0x00];

/// Appends `escape(bytes)` (0x00 → 0x00 0xFF).
fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(ESCAPED_NUL);
        }
    }
}

/// `escape(bytes) || 0x00 0x00`: an order-preserving, prefix-free encoding of a string.
pub fn terminated(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    escape_into(&mut out, bytes);
    out.extend_from_slice(&TERMINATOR);
    out
}

/// `bucket || 0x00 || escape(prefix)`: every object key of `bucket` whose key starts with
/// `prefix` starts with these bytes (and no other object key does).
pub fn key_prefix(bucket: &str, prefix: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(bucket.len() + prefix.len() + 3);
    out.extend_from_slice(bucket.as_bytes());
    out.push(BUCKET_SEP);
    escape_into(&mut out, prefix.as_bytes());
    out
}

/// The object key of `(bucket, key)` (see the module docs).
pub fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut out = key_prefix(bucket, key);
    out.extend_from_slice(&TERMINATOR);
    out
}

/// The smallest byte string that sorts after `object_key(bucket, key)` and after every
/// row key that extends it (its versions, its uploads): "resume after this key".
pub fn after_object(bucket: &str, key: &str) -> Vec<u8> {
    let mut out = object_key(bucket, key);
    // The terminator's last byte 0x00 becomes 0x01: every longer key of this object has
    // the full terminator as a prefix, and every greater key differs earlier.
    if let Some(last) = out.last_mut() {
        *last = 0x01;
    }
    out
}

/// `[start, end)` of all rows of `bucket` in any table keyed by object keys.
pub fn bucket_range(bucket: &str) -> (Vec<u8>, Vec<u8>) {
    let start = key_prefix(bucket, "");
    let mut end = bucket.as_bytes().to_vec();
    end.push(BUCKET_SEP + 1);
    (start, end)
}

/// The smallest byte string greater than every string that starts with `bytes`, or
/// `None` when there is none (`bytes` is empty or all 0xFF).
pub fn prefix_successor(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = bytes.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

/// Decodes the key (the part after the bucket) of a row key that starts with an object
/// key of `bucket`; returns the key and the length of the object key within `row_key`.
/// `None` if `row_key` is not of that shape (a corrupt row).
pub fn decode_object_key(row_key: &[u8], bucket: &str) -> Option<(String, usize)> {
    let b = bucket.as_bytes();
    if row_key.len() < b.len() + 1 || &row_key[..b.len()] != b || row_key[b.len()] != BUCKET_SEP {
        return None;
    }
    let mut key = Vec::new();
    let mut i = b.len() + 1;
    while i < row_key.len() {
        let byte = row_key[i];
        if byte != 0 {
            key.push(byte);
            i += 1;
            continue;
        }
        match row_key.get(i + 1) {
            Some(&ESCAPED_NUL) => {
                key.push(0);
                i += 2;
            }
            Some(0) => return String::from_utf8(key).ok().map(|k| (k, i + 2)),
            _ => return None,
        }
    }
    None
}

/// Sequence numbers as a descending key suffix: `u64::MAX - seq`, big-endian.
#[allow(clippy::big_endian_bytes)] // The key order must follow the number (newest first).
fn descending(seq: u64) -> [u8; 8] {
    (u64::MAX - seq).to_be_bytes()
}

/// Row key of one version: `object_key || BE(u64::MAX - seq)`, so versions of one object
/// are contiguous and newest first.
pub fn version_key(object_key: &[u8], seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(object_key.len() + 8);
    out.extend_from_slice(object_key);
    out.extend_from_slice(&descending(seq));
    out
}

/// The sequence number stored in a version row key whose object key is `ok_len` bytes.
#[allow(clippy::big_endian_bytes)] // Inverse of `descending`.
pub fn version_seq(row_key: &[u8], ok_len: usize) -> Option<u64> {
    let suffix: [u8; 8] = row_key.get(ok_len..)?.try_into().ok()?;
    Some(u64::MAX - u64::from_be_bytes(suffix))
}

/// Row key of the version-id index: `object_key || version_id bytes` (the object key is
/// prefix-free, so the pair is unambiguous).
pub fn version_id_key(object_key: &[u8], version_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(object_key.len() + version_id.len());
    out.extend_from_slice(object_key);
    out.extend_from_slice(version_id.as_bytes());
    out
}

/// Row key of one multipart upload: `object_key || terminated(upload_id)`, so the uploads
/// of one object are contiguous and ordered by upload id (the order the S3
/// `upload-id-marker` assumes).
pub fn upload_key(object_key: &[u8], upload_id: &str) -> Vec<u8> {
    let mut out = object_key.to_vec();
    out.extend_from_slice(&terminated(upload_id.as_bytes()));
    out
}

/// Row key of one part: `terminated(upload_id) || BE(part_number)`, so the parts of an
/// upload are contiguous and in part-number order.
#[allow(clippy::big_endian_bytes)] // The key order must follow the part number.
pub fn part_key(upload_id: &str, part_number: u32) -> Vec<u8> {
    let mut out = terminated(upload_id.as_bytes());
    out.extend_from_slice(&part_number.to_be_bytes());
    out
}

/// `[start, end)` of the parts of one upload.
pub fn parts_range(upload_id: &str) -> (Vec<u8>, Vec<u8>) {
    let start = terminated(upload_id.as_bytes());
    // The terminator's last byte is 0x00, so the successor always exists.
    let end = prefix_successor(&start).unwrap_or_default();
    (start, end)
}

/// The part number of a part row key of `upload_id`.
#[allow(clippy::big_endian_bytes)] // Inverse of `part_key`.
pub fn part_number_of(row_key: &[u8], upload_id: &str) -> Option<u32> {
    let start = terminated(upload_id.as_bytes()).len();
    let suffix: [u8; 4] = row_key.get(start..)?.try_into().ok()?;
    Some(u32::from_be_bytes(suffix))
}

/// Row key of a GC entry: `BE(log_index) || BE(ordinal)`, oldest first.
#[allow(clippy::big_endian_bytes)] // The key order must follow (log index, ordinal).
pub fn gc_key(id: GcId) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&id.log_index.to_be_bytes());
    out[8..].copy_from_slice(&id.ordinal.to_be_bytes());
    out
}

/// Row key of a GC entry in the per-stripe index (`sm_gc_by_stripe`): the stripe id's
/// 16 bytes, then [`gc_key`]. Every entry of one stripe shares the 16-byte prefix.
pub fn gc_stripe_key(stripe: StripeId, id: GcId) -> [u8; 28] {
    let mut out = [0u8; 28];
    out[..16].copy_from_slice(&stripe.to_bytes());
    out[16..].copy_from_slice(&gc_key(id));
    out
}

/// Inverse of [`gc_key`].
#[allow(clippy::big_endian_bytes)] // Inverse of `gc_key`.
pub fn gc_id_of(row_key: &[u8]) -> Option<GcId> {
    let index: [u8; 8] = row_key.get(..8)?.try_into().ok()?;
    let ordinal: [u8; 4] = row_key.get(8..12)?.try_into().ok()?;
    (row_key.len() == 12).then_some(GcId {
        log_index: u64::from_be_bytes(index),
        ordinal: u32::from_be_bytes(ordinal),
    })
}

/// The larger of two inclusive lower bounds.
pub fn max_lower(a: Vec<u8>, b: Vec<u8>) -> Vec<u8> {
    match a.cmp(&b) {
        Ordering::Less => b,
        _ => a,
    }
}

/// The smaller of two exclusive upper bounds.
pub fn min_upper(a: Vec<u8>, b: Vec<u8>) -> Vec<u8> {
    match a.cmp(&b) {
        Ordering::Greater => b,
        _ => a,
    }
}

/// The smallest byte string greater than `bytes` (an exclusive bound made inclusive).
pub fn just_after(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.extend_from_slice(bytes);
    out.push(0);
    out
}

/// `sm_collected_by_time` key: BE(acknowledged at, ms) ‖ the `sm_collected` key.
#[allow(clippy::big_endian_bytes)] // The key order must follow the time.
pub fn collected_time_key(at_ms: u64, collected: &[u8]) -> Vec<u8> {
    let mut out = at_ms.to_be_bytes().to_vec();
    out.extend_from_slice(collected);
    out
}

/// The first `sm_collected_by_time` key at or after `at_ms`.
#[allow(clippy::big_endian_bytes)] // See `collected_time_key`.
pub fn collected_time_bound(at_ms: u64) -> [u8; 8] {
    at_ms.to_be_bytes()
}
