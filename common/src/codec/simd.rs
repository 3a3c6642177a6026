//! [`ErasureCodec`] over `reed-solomon-simd` 3.x: Reed-Solomon over GF(2^16) with the
//! Leopard-style FFT (O(n log n)), SIMD accelerated (AVX2 / SSSE3 / Neon, chosen at run
//! time). Systematic: the data fragments are the original shards unchanged.
//!
//! Library rules: `original_count` / `recovery_count` must satisfy
//! `ReedSolomonEncoder::supports` (up to 65535 shards in total, which our cap of 255 is
//! well inside), and every shard must have the same non-zero, even number of bytes.

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use super::{
    concat_truncated, even_fragment_len, padded_len, plan_reconstruct, CodecError, CodecId,
    CodecParams, ErasureCodec, Plan,
};

/// Library-specific checks (the generic ones are in [`CodecParams::validate`]).
pub(super) fn validate(params: &CodecParams) -> Result<(), CodecError> {
    let (k, m) = (params.data_fragments(), params.parity_fragments());
    if ReedSolomonEncoder::supports(k, m) && ReedSolomonDecoder::supports(k, m) {
        Ok(())
    } else {
        Err(CodecError::Unsupported { params: *params })
    }
}

fn backend(e: reed_solomon_simd::Error) -> CodecError {
    CodecError::Backend {
        codec: CodecId::ReedSolomonSimd,
        message: e.to_string(),
    }
}

/// Bytes of each fragment handed to the encoder per call. The library works on 64-byte
/// chunks and every chunk position independently (the FFT runs across fragments, never
/// along one), so encoding a stripe block by block gives exactly the parity of one call
/// over the whole fragments (`simd_blocked_encode_equals_one_shot` checks this); blocks
/// keep the work space cache-resident. A multiple of 64, so only the last block can end
/// in the library's partial tail chunk, just as the one-shot call does.
const ENCODE_BLOCK: usize = 16 * 1024;
const _: () = assert!(ENCODE_BLOCK.is_multiple_of(64));

/// `reed-solomon-simd` behind [`ErasureCodec`]. Build it with [`super::new_codec`].
///
/// A fresh encoder/decoder (with its work space: ~`8 * fragment_len` bytes for an 8+4
/// encoder, `16 * fragment_len` for a decoder) is made per stripe. Keeping a pool of
/// them and `reset`ting was measured and made no difference beyond noise.
#[derive(Debug)]
pub(super) struct SimdCodec {
    params: CodecParams,
}

impl SimdCodec {
    pub(super) fn new(params: CodecParams) -> Result<Self, CodecError> {
        params.validate()?;
        assert_eq!(params.codec, CodecId::ReedSolomonSimd);
        Ok(SimdCodec { params })
    }
}

impl ErasureCodec for SimdCodec {
    fn params(&self) -> CodecParams {
        self.params
    }

    /// Shards must be even and non-zero: `max(2, round_up_to_even(ceil(data_len / k)))`.
    fn fragment_len(&self, data_len: usize) -> usize {
        even_fragment_len(self.params.data_fragments(), data_len)
    }

    fn encode(&self, data: &[u8]) -> Result<Vec<Vec<u8>>, CodecError> {
        let (k, m) = (self.params.data_fragments(), self.params.parity_fragments());
        let frag_len = self.fragment_len(data.len());
        padded_len(k, frag_len, data.len())?;

        let mut fragments: Vec<Vec<u8>> = Vec::with_capacity(k + m);
        for i in 0..k {
            let start = (i * frag_len).min(data.len());
            let end = (start + frag_len).min(data.len());
            let mut f = Vec::with_capacity(frag_len);
            f.extend_from_slice(&data[start..end]);
            f.resize(frag_len, 0);
            fragments.push(f);
        }

        // Encoded in column blocks of ENCODE_BLOCK bytes per fragment, so the encoder's
        // work space (~8 blocks for 8+4) stays in cache; see ENCODE_BLOCK.
        let mut parity = vec![vec![0u8; frag_len]; m];
        let mut encoder: Option<ReedSolomonEncoder> = None;
        let mut off = 0;
        while off < frag_len {
            let len = ENCODE_BLOCK.min(frag_len - off);
            let enc = match encoder.as_mut() {
                Some(enc) => {
                    enc.reset(k, m, len).map_err(backend)?;
                    enc
                }
                None => encoder.insert(ReedSolomonEncoder::new(k, m, len).map_err(backend)?),
            };
            for f in &fragments {
                enc.add_original_shard(&f[off..off + len])
                    .map_err(backend)?;
            }
            let result = enc.encode().map_err(backend)?;
            for (p, r) in parity.iter_mut().zip(result.recovery_iter()) {
                p[off..off + len].copy_from_slice(r);
            }
            off += len;
        }
        fragments.extend(parity);

        assert_eq!(fragments.len(), k + m);
        assert!(fragments.iter().all(|f| f.len() == frag_len));
        Ok(fragments)
    }

    fn reconstruct(
        &self,
        fragments: &[Option<&[u8]>],
        data_len: usize,
    ) -> Result<Vec<u8>, CodecError> {
        let frag_len = self.fragment_len(data_len);
        let frag_len = match plan_reconstruct(&self.params, frag_len, fragments, data_len)? {
            Plan::Done(data) => return Ok(data),
            Plan::Decode { frag_len } => frag_len,
        };
        let (k, m) = (self.params.data_fragments(), self.params.parity_fragments());
        let (data, parity) = fragments.split_at(k);

        let mut decoder = ReedSolomonDecoder::new(k, m, frag_len).map_err(backend)?;
        let mut missing = 0;
        for (i, f) in data.iter().enumerate() {
            match f {
                Some(f) => decoder.add_original_shard(i, f).map_err(backend)?,
                None => missing += 1,
            }
        }
        // Exactly as many parity fragments as data fragments are missing: more would only
        // be copied into the decoder's work space for nothing.
        for (j, f) in parity
            .iter()
            .enumerate()
            .filter_map(|(j, f)| f.map(|f| (j, f)))
            .take(missing)
        {
            decoder.add_recovery_shard(j, f).map_err(backend)?;
        }
        let result = decoder.decode().map_err(backend)?;

        let mut rebuilt = Vec::with_capacity(k);
        for (i, f) in data.iter().enumerate() {
            let f = match f {
                Some(f) => *f,
                None => result
                    .restored_original(i)
                    .ok_or_else(|| CodecError::Backend {
                        codec: CodecId::ReedSolomonSimd,
                        message: format!("decoder did not restore data fragment {i}"),
                    })?,
            };
            if f.len() != frag_len {
                return Err(CodecError::Backend {
                    codec: CodecId::ReedSolomonSimd,
                    message: format!("decoder restored {} bytes, expected {frag_len}", f.len()),
                });
            }
            rebuilt.push(f);
        }
        Ok(concat_truncated(rebuilt, data_len))
    }
}
