//! The on-disk fragment format (specified byte by byte in docs/fragment-format.md).
//!
//! ```text
//! offset  size  field
//! 0       8     magic "SHLFRAG\0"
//! 8       2     format version (u16 LE) = 2 (1 is still read)
//! 10      1     codec id
//! 11      1     k
//! 12      1     m
//! 13      1     fragment index (0..k+m)
//! 14      2     reserved, zero
//! 16      16    stripe id (u128 LE)
//! 32      8     payload length in bytes (u64 LE)
//! 40      4     block size in bytes (u32 LE)
//! 44      4     CRC32C of the whole payload (u32 LE)
//! 48      12    reserved, zero
//! 60      4     CRC32C of bytes 0..60 (u32 LE)
//! 64      ...   blocks: payload[i*bs .. min((i+1)*bs, len)] then its CRC32C (u32 LE)
//! ```
//!
//! Version 2 seeds each block's CRC32C with the block's identity (stripe id, fragment
//! index, block number; [`FragmentHeader::block_crc`]), so a block read from the wrong
//! place — another fragment's file, another block of this one (a misdirected read or
//! write) — fails its checksum instead of passing as valid data. Version 1 blocks carry
//! the plain CRC32C of their payload.
//!
//! The header is written last, after every block, and the file is renamed into place
//! only after it is synced: a file under its final name is always complete.

use common::ids::{FragmentId, StripeId};

pub const MAGIC: [u8; 8] = *b"SHLFRAG\0";
pub const FORMAT_VERSION: u16 = 2;
/// The oldest format version this code still reads.
pub const OLDEST_READABLE_VERSION: u16 = 1;
pub const HEADER_BYTES: u64 = 64;
pub const BLOCK_BYTES: u32 = 64 * 1024;
pub const CRC_BYTES: u64 = 4;

const _: () = assert!(BLOCK_BYTES.is_power_of_two());
const _: () = assert!(HEADER_BYTES == 64);

/// Everything the header says about a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentHeader {
    /// Format version of the file (new files: [`FORMAT_VERSION`]).
    pub version: u16,
    pub id: FragmentId,
    pub codec: u8,
    pub k: u8,
    pub m: u8,
    pub length: u64,
    pub block_bytes: u32,
    pub crc32c: u32,
}

/// Why a header could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("bad magic")]
    BadMagic,
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u16),
    #[error("header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { stored: u32, computed: u32 },
    #[error("invalid header field: {0}")]
    Invalid(&'static str),
}

impl FragmentHeader {
    pub fn encode(&self) -> [u8; HEADER_BYTES as usize] {
        let mut b = [0u8; HEADER_BYTES as usize];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b[10] = self.codec;
        b[11] = self.k;
        b[12] = self.m;
        b[13] = self.id.index;
        b[16..32].copy_from_slice(&self.id.stripe.to_bytes());
        b[32..40].copy_from_slice(&self.length.to_le_bytes());
        b[40..44].copy_from_slice(&self.block_bytes.to_le_bytes());
        b[44..48].copy_from_slice(&self.crc32c.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; HEADER_BYTES as usize]) -> Result<Self, HeaderError> {
        if b[0..8] != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let stored = u32::from_le_bytes([b[60], b[61], b[62], b[63]]);
        let computed = crc32c::crc32c(&b[0..60]);
        if stored != computed {
            return Err(HeaderError::Checksum { stored, computed });
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let mut stripe = [0u8; 16];
        stripe.copy_from_slice(&b[16..32]);
        let mut len = [0u8; 8];
        len.copy_from_slice(&b[32..40]);
        let h = Self {
            version,
            id: FragmentId {
                stripe: StripeId::from_bytes(stripe),
                index: b[13],
            },
            codec: b[10],
            k: b[11],
            m: b[12],
            length: u64::from_le_bytes(len),
            block_bytes: u32::from_le_bytes([b[40], b[41], b[42], b[43]]),
            crc32c: u32::from_le_bytes([b[44], b[45], b[46], b[47]]),
        };
        if h.block_bytes == 0 || !h.block_bytes.is_power_of_two() {
            return Err(HeaderError::Invalid("block size"));
        }
        if h.k == 0 || h.m == 0 || u16::from(h.id.index) >= u16::from(h.k) + u16::from(h.m) {
            return Err(HeaderError::Invalid("k, m or index"));
        }
        Ok(h)
    }

    pub fn block_count(&self) -> u64 {
        self.length.div_ceil(u64::from(self.block_bytes))
    }

    /// File offset of block `i`'s payload.
    pub fn block_offset(&self, i: u64) -> u64 {
        HEADER_BYTES + i * (u64::from(self.block_bytes) + CRC_BYTES)
    }

    /// The CRC32C stored after block `i` with this payload. Version 2: seeded with the
    /// block's identity (stripe id, fragment index, block number), so the same bytes at
    /// another place do not verify; version 1: the plain CRC32C of the payload.
    pub fn block_crc(&self, i: u64, payload: &[u8]) -> u32 {
        if self.version < 2 {
            return crc32c::crc32c(payload);
        }
        let mut identity = [0u8; 25];
        identity[..16].copy_from_slice(&self.id.stripe.to_bytes());
        identity[16] = self.id.index;
        identity[17..].copy_from_slice(&i.to_le_bytes());
        crc32c::crc32c_append(crc32c::crc32c(&identity), payload)
    }

    /// Payload bytes in block `i`.
    pub fn block_len(&self, i: u64) -> u64 {
        let bs = u64::from(self.block_bytes);
        (self.length - i * bs).min(bs)
    }

    /// Total file size.
    pub fn file_len(&self) -> u64 {
        file_len(self.length, self.block_bytes)
    }
}

/// File size of a fragment with `length` payload bytes.
pub fn file_len(length: u64, block_bytes: u32) -> u64 {
    let blocks = length.div_ceil(u64::from(block_bytes));
    HEADER_BYTES + length + blocks * CRC_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FragmentHeader {
        FragmentHeader {
            version: FORMAT_VERSION,
            id: FragmentId {
                stripe: StripeId(0xdead_beef),
                index: 11,
            },
            codec: 1,
            k: 8,
            m: 4,
            length: 200_000,
            block_bytes: BLOCK_BYTES,
            crc32c: 0x1234_5678,
        }
    }

    #[test]
    fn header_round_trips() {
        let h = sample();
        assert_eq!(FragmentHeader::decode(&h.encode()), Ok(h));
        assert_eq!(h.block_count(), 4);
        assert_eq!(h.block_len(3), 200_000 - 3 * 65_536);
        assert_eq!(h.file_len(), 64 + 200_000 + 16);
    }

    #[test]
    fn every_single_bit_flip_in_the_header_is_detected() {
        let bytes = sample().encode();
        for i in 0..bytes.len() * 8 {
            let mut b = bytes;
            b[i / 8] ^= 1 << (i % 8);
            assert!(
                FragmentHeader::decode(&b).is_err(),
                "bit {i} flip undetected"
            );
        }
    }

    #[test]
    fn out_of_range_index_is_rejected() {
        let mut h = sample();
        h.id.index = 12;
        assert_eq!(
            FragmentHeader::decode(&h.encode()),
            Err(HeaderError::Invalid("k, m or index"))
        );
    }

    #[test]
    fn version_1_headers_still_decode() {
        let h = FragmentHeader {
            version: 1,
            ..sample()
        };
        assert_eq!(FragmentHeader::decode(&h.encode()), Ok(h));
        let future = FragmentHeader {
            version: FORMAT_VERSION + 1,
            ..sample()
        };
        assert_eq!(
            FragmentHeader::decode(&future.encode()),
            Err(HeaderError::UnsupportedVersion(FORMAT_VERSION + 1))
        );
    }

    #[test]
    fn block_checksums_bind_the_bytes_to_their_place() {
        let h = sample();
        let payload = [7u8; 100];
        let here = h.block_crc(2, &payload);
        assert_ne!(
            here,
            h.block_crc(3, &payload),
            "another block of the fragment"
        );
        let mut other_index = h;
        other_index.id.index = 10;
        assert_ne!(
            here,
            other_index.block_crc(2, &payload),
            "another fragment index"
        );
        let mut other_stripe = h;
        other_stripe.id.stripe = StripeId(0xdead_bef0);
        assert_ne!(here, other_stripe.block_crc(2, &payload), "another stripe");
        assert_ne!(here, crc32c::crc32c(&payload), "not the plain CRC");
        let v1 = FragmentHeader { version: 1, ..h };
        assert_eq!(v1.block_crc(2, &payload), crc32c::crc32c(&payload));
    }
}
