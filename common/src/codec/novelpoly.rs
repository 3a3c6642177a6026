//! [`ErasureCodec`] over `reed-solomon-novelpoly` 2.x: Reed-Solomon over GF(2^16) in the
//! novel polynomial basis (Lin, Han, Chung), plain Rust, no SIMD.
//!
//! Library rules and how they map to our layout:
//! - It works with `k` and `n` powers of two: `CodeParams::derive_parameters(n, k)` rounds
//!   `k` *down* and `n` up. We reject a `k` that is not a power of two (rounding down
//!   would change overhead and durability behind the operator's back) and let `n` round
//!   up: the library then produces only the first `wanted_n = k + m` shards, and treats
//!   the others as erased when decoding. It needs `n <= 2^16` (our cap is 255).
//! - `ReedSolomon::encode` takes the whole payload and cuts it into runs of `2k` bytes
//!   (`k` two-byte symbols); run `c` gives symbol `c` of every shard. So its shard `i`
//!   holds the payload's 2-byte symbols `i, i + k, i + 2k, ...` (interleaved), and
//!   `reconstruct` returns the payload in that same interleaved order. Our layout wants
//!   data fragment `i` to be a contiguous slice of the stripe, so we transpose the
//!   (zero-padded) stripe before encoding and after decoding. The code is systematic:
//!   shard `i < k` of a run is the run's symbol `i` unchanged.
//! - Shards are even and non-zero in length, and an empty payload is an error; we always
//!   encode `k * fragment_len` bytes with `fragment_len >= 2` and even.

use reed_solomon_novelpoly::{CodeParams, WrappedShard};

use super::{
    even_fragment_len, padded_len, plan_reconstruct, CodecError, CodecId, CodecParams,
    ErasureCodec, Plan,
};

/// Library-specific checks (the generic ones are in [`CodecParams::validate`]).
pub(super) fn validate(params: &CodecParams) -> Result<(), CodecError> {
    let (k, m) = (params.data_fragments(), params.parity_fragments());
    if !k.is_power_of_two() {
        return Err(CodecError::KNotPowerOfTwo {
            params: *params,
            rounded_down: k.checked_ilog2().map_or(0, |l| 1 << l),
        });
    }
    // What the library will actually use; it must be exactly our k, and (k a power of two,
    // m >= 1) its `n` is a power of two >= 2k, as its encoder asserts.
    match CodeParams::derive_parameters(k + m, k) {
        Ok(p) if p.k() == k && p.n() >= 2 * k && p.n() >= k + m => Ok(()),
        _ => Err(CodecError::Unsupported { params: *params }),
    }
}

fn backend(e: reed_solomon_novelpoly::Error) -> CodecError {
    CodecError::Backend {
        codec: CodecId::ReedSolomonNovelpoly,
        message: e.to_string(),
    }
}

/// `reed-solomon-novelpoly` behind [`ErasureCodec`]. Build it with [`super::new_codec`].
#[derive(Debug)]
pub(super) struct NovelpolyCodec {
    params: CodecParams,
    /// The library's code for `n = k + m`, `k` (validated: exactly our `k`).
    code: reed_solomon_novelpoly::ReedSolomon,
}

impl NovelpolyCodec {
    pub(super) fn new(params: CodecParams) -> Result<Self, CodecError> {
        params.validate()?;
        assert_eq!(params.codec, CodecId::ReedSolomonNovelpoly);
        let lib = CodeParams::derive_parameters(params.total_fragments(), params.data_fragments())
            .map_err(backend)?;
        assert_eq!(lib.k(), params.data_fragments());
        Ok(NovelpolyCodec {
            params,
            code: lib.make_encoder(),
        })
    }
}

/// Symbol size of GF(2^16), in bytes.
const SYM: usize = 2;

impl ErasureCodec for NovelpolyCodec {
    fn params(&self) -> CodecParams {
        self.params
    }

    /// Shards hold whole 2-byte symbols and are non-empty:
    /// `max(2, round_up_to_even(ceil(data_len / k)))`. (The library's own
    /// `shard_len(payload)` is `2 * ceil(payload / 2k)`, the same number for
    /// `data_len >= 1`; unlike it, ours is also defined for an empty stripe.)
    fn fragment_len(&self, data_len: usize) -> usize {
        even_fragment_len(self.params.data_fragments(), data_len)
    }

    fn encode(&self, data: &[u8]) -> Result<Vec<Vec<u8>>, CodecError> {
        let (k, m) = (self.params.data_fragments(), self.params.parity_fragments());
        let frag_len = self.fragment_len(data.len());
        let payload_len = padded_len(k, frag_len, data.len())?;

        // payload[c*2k + 2i ..][..2] = stripe[i*L + 2c ..][..2]: the library's shard i
        // then is stripe[i*L .. (i+1)*L], i.e. our data fragment i.
        let mut payload = vec![0u8; payload_len];
        for (i, frag) in data.chunks(frag_len).enumerate() {
            for (c, sym) in frag.chunks(SYM).enumerate() {
                let at = c * SYM * k + i * SYM;
                payload[at..at + sym.len()].copy_from_slice(sym);
            }
        }

        let shards: Vec<WrappedShard> = self.code.encode(&payload).map_err(backend)?;
        let fragments: Vec<Vec<u8>> = shards.into_iter().map(WrappedShard::into_inner).collect();

        assert_eq!(fragments.len(), k + m);
        assert!(fragments.iter().all(|f| f.len() == frag_len));
        debug_assert!(fragments[..k]
            .iter()
            .zip(data.chunks(frag_len))
            .all(|(f, d)| f.starts_with(d)));
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
        let k = self.params.data_fragments();

        // The library copies what it gets; give it exactly k fragments (data first).
        let mut given = 0;
        let received: Vec<Option<WrappedShard>> = fragments
            .iter()
            .map(|f| match f {
                Some(f) if given < k => {
                    given += 1;
                    Some(WrappedShard::new(f.to_vec()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(given, k);

        let interleaved = self.code.reconstruct(received).map_err(backend)?;
        let payload_len = k * frag_len;
        if interleaved.len() < payload_len {
            return Err(CodecError::Backend {
                codec: CodecId::ReedSolomonNovelpoly,
                message: format!(
                    "reconstruct returned {} bytes, expected {payload_len}",
                    interleaved.len()
                ),
            });
        }

        // Undo the transposition of `encode`, up to data_len.
        let mut out = vec![0u8; data_len];
        for (i, frag) in out.chunks_mut(frag_len).enumerate() {
            for (c, sym) in frag.chunks_mut(SYM).enumerate() {
                let at = c * SYM * k + i * SYM;
                sym.copy_from_slice(&interleaved[at..at + sym.len()]);
            }
        }
        Ok(out)
    }
}
