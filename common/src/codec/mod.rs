//! The erasure codec: `k` data fragments + `m` parity fragments per stripe, any `k` of
//! the `k + m` rebuild the stripe.
//!
//! Two implementations sit behind [`ErasureCodec`]:
//! - [`CodecId::ReedSolomonSimd`] (`reed-solomon-simd`): the default, chosen by the
//!   benchmark in `common/benches/codec.rs` (numbers in `BENCHMARKS.md`).
//! - [`CodecId::ReedSolomonNovelpoly`] (`reed-solomon-novelpoly`): same FFT family, much
//!   slower, and only usable with `k` a power of two.
//!
//! # Fragment layout (identical for every codec)
//! The stripe's data is zero-padded to `k * L` bytes, `L = fragment_len(data_len)`, and
//! data fragment `i` (`i < k`) holds bytes `i*L .. (i+1)*L` of it: the code is
//! systematic and contiguous. So a GET with all `k` data fragments present just
//! concatenates them (no decode), and a range read only needs the data fragments that
//! cover the range. Fragments `k .. k+m` are parity.
//!
//! Every fragment records which codec wrote it ([`CodecId::as_u8`]) together with `k` and
//! `m`; the stripe's `data_len` is recorded alongside, since `reconstruct` needs it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod novelpoly;
mod simd;

#[cfg(test)]
mod codec_test;

use novelpoly::NovelpolyCodec;
use simd::SimdCodec;

/// Which erasure-coding implementation wrote a fragment.
///
/// The numbers are an on-disk format (every fragment header records one): never renumber
/// or reuse a value; add new codecs with new numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum CodecId {
    /// `reed-solomon-simd` 3.x (Leopard-style FFT over GF(2^16), SIMD accelerated).
    ReedSolomonSimd = 1,
    /// `reed-solomon-novelpoly` 2.x (novel polynomial basis FFT over GF(2^16)).
    ReedSolomonNovelpoly = 2,
}

impl CodecId {
    /// All known codecs, in id order.
    pub const ALL: [CodecId; 2] = [CodecId::ReedSolomonSimd, CodecId::ReedSolomonNovelpoly];

    /// The on-disk number of this codec.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The codec with on-disk number `v`, if it is a known one.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(CodecId::ReedSolomonSimd),
            2 => Some(CodecId::ReedSolomonNovelpoly),
            _ => None,
        }
    }

    /// The short name used in config, logs and [`fmt::Display`].
    pub fn name(self) -> &'static str {
        match self {
            CodecId::ReedSolomonSimd => "rs-simd",
            CodecId::ReedSolomonNovelpoly => "rs-novelpoly",
        }
    }
}

impl fmt::Display for CodecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CodecId {
    type Err = CodecError;

    /// Parses the [`CodecId::name`] form ("rs-simd", "rs-novelpoly").
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CodecId::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| CodecError::UnknownCodec { name: s.to_owned() })
    }
}

/// The most fragments a stripe may have: a fragment's index is stored as a `u8`.
pub const MAX_FRAGMENTS: usize = 255;

/// Erasure-coding parameters of a stripe: which codec, `k` data and `m` parity fragments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodecParams {
    pub codec: CodecId,
    /// Data fragments (any `k` fragments rebuild the stripe).
    pub k: u8,
    /// Parity fragments (the stripe survives the loss of any `m` fragments).
    pub m: u8,
}

/// The cluster default: 8+4 (12 fragments, any 8 rebuild, 1.5x overhead) with the codec
/// that encodes fastest in `cargo bench -p common --bench codec` (see `BENCHMARKS.md`).
pub const DEFAULT_PARAMS: CodecParams = CodecParams {
    codec: CodecId::ReedSolomonSimd,
    k: 8,
    m: 4,
};

impl Default for CodecParams {
    fn default() -> Self {
        DEFAULT_PARAMS
    }
}

impl CodecParams {
    /// Validated parameters.
    pub fn new(codec: CodecId, k: u8, m: u8) -> Result<Self, CodecError> {
        let p = CodecParams { codec, k, m };
        p.validate()?;
        Ok(p)
    }

    /// Data fragments, as a count.
    pub fn data_fragments(&self) -> usize {
        usize::from(self.k)
    }

    /// Parity fragments, as a count.
    pub fn parity_fragments(&self) -> usize {
        usize::from(self.m)
    }

    /// `k + m`: the number of fragments of a stripe.
    pub fn total_fragments(&self) -> usize {
        usize::from(self.k) + usize::from(self.m)
    }

    /// Checks that the codec supports these parameters exactly (never silently adjusted).
    pub fn validate(&self) -> Result<(), CodecError> {
        let (k, m) = (usize::from(self.k), usize::from(self.m));
        if k == 0 {
            return Err(CodecError::NoDataFragments { params: *self });
        }
        if m == 0 {
            return Err(CodecError::NoParityFragments { params: *self });
        }
        if k + m > MAX_FRAGMENTS {
            return Err(CodecError::TooManyFragments {
                params: *self,
                max: MAX_FRAGMENTS,
            });
        }
        match self.codec {
            CodecId::ReedSolomonSimd => simd::validate(self),
            CodecId::ReedSolomonNovelpoly => novelpoly::validate(self),
        }
    }
}

impl fmt::Display for CodecParams {
    /// E.g. `rs-simd 8+4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}+{}", self.codec, self.k, self.m)
    }
}

/// Errors of the erasure codec. None of them is a panic: any input gives one of these.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("unknown erasure codec {name:?} (known: rs-simd, rs-novelpoly)")]
    UnknownCodec { name: String },

    #[error("invalid erasure coding {params}: k (data fragments) must be at least 1")]
    NoDataFragments { params: CodecParams },

    #[error("invalid erasure coding {params}: m (parity fragments) must be at least 1")]
    NoParityFragments { params: CodecParams },

    #[error(
        "invalid erasure coding {params}: k+m must be at most {max} fragments per stripe \
         (a fragment's index is stored in one byte)"
    )]
    TooManyFragments { params: CodecParams, max: usize },

    #[error(
        "invalid erasure coding {params}: rs-novelpoly needs k to be a power of two \
         (1, 2, 4, 8, 16, ...); it would silently round k={k} down to {rounded_down}, \
         changing the overhead and durability. Use another k or the rs-simd codec",
        k = params.k
    )]
    KNotPowerOfTwo {
        params: CodecParams,
        rounded_down: usize,
    },

    #[error("invalid erasure coding {params}: not supported by the codec library")]
    Unsupported { params: CodecParams },

    #[error("expected {expected} fragment slots (k+m), got {got}")]
    WrongFragmentCount { got: usize, expected: usize },

    #[error("fragment {index} has {got} bytes, expected {expected} for this stripe length")]
    WrongFragmentLength {
        index: usize,
        got: usize,
        expected: usize,
    },

    #[error("fragment index {index} out of range: the stripe has {count} fragments")]
    FragmentIndexOutOfRange { index: usize, count: usize },

    #[error("too few fragments to rebuild the stripe: {present} present, {needed} needed")]
    TooFewFragments { present: usize, needed: usize },

    #[error("stripe data length {data_len} is too large")]
    DataTooLarge { data_len: usize },

    #[error("{codec} codec library failed: {message}")]
    Backend { codec: CodecId, message: String },
}

/// An erasure codec for one set of [`CodecParams`].
///
/// Fragments `0..k` are data (contiguous slices of the zero-padded stripe, see the module
/// docs), `k..k+m` parity. All fragments of a stripe are `fragment_len(data_len)` bytes.
pub trait ErasureCodec: Send + Sync + fmt::Debug {
    fn params(&self) -> CodecParams;

    /// Length of every fragment of a stripe holding `data_len` bytes: the smallest length
    /// the codec accepts that is `>= ceil(data_len / k)` (at least the codec's minimum,
    /// also for `data_len == 0`).
    fn fragment_len(&self, data_len: usize) -> usize;

    /// Encodes one stripe: returns exactly `k + m` fragments of
    /// `fragment_len(data.len())` bytes each, data fragments first.
    fn encode(&self, data: &[u8]) -> Result<Vec<Vec<u8>>, CodecError>;

    /// Rebuilds the stripe's `data_len` bytes from `k + m` slots (`Some` = a fragment
    /// that is present and verified, `None` = lost). Needs any `k` present fragments.
    ///
    /// When all `k` data fragments are present this does not decode: it concatenates them
    /// and truncates (the GET fast path); parity fragments are then not even read.
    fn reconstruct(
        &self,
        fragments: &[Option<&[u8]>],
        data_len: usize,
    ) -> Result<Vec<u8>, CodecError>;

    /// Rebuilds the fragments with indices `wanted` (data or parity, in that order;
    /// present ones are recomputed too), byte-identical to what [`ErasureCodec::encode`]
    /// produced for them. Used by repair.
    ///
    /// Cost: this rebuilds the whole stripe (a decode unless all data fragments are
    /// present) and, if any parity fragment is wanted, re-encodes all of it: about the cost
    /// of one `reconstruct` plus one `encode` of the stripe, whatever the number of
    /// wanted fragments.
    fn reconstruct_fragments(
        &self,
        fragments: &[Option<&[u8]>],
        data_len: usize,
        wanted: &[usize],
    ) -> Result<Vec<Vec<u8>>, CodecError> {
        let params = self.params();
        let (k, total) = (params.data_fragments(), params.total_fragments());
        check_slots(&params, self.fragment_len(data_len), fragments)?;
        if let Some(&index) = wanted.iter().find(|&&i| i >= total) {
            return Err(CodecError::FragmentIndexOutOfRange {
                index,
                count: total,
            });
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let frag_len = self.fragment_len(data_len);
        // The zero-padded stripe: `k * frag_len` bytes have the same fragment length.
        let padded_len = padded_len(k, frag_len, data_len)?;
        let padded = self.reconstruct(fragments, padded_len)?;
        assert_eq!(padded.len(), padded_len);
        if wanted.iter().all(|&i| i < k) {
            return Ok(wanted
                .iter()
                .map(|&i| padded[i * frag_len..(i + 1) * frag_len].to_vec())
                .collect());
        }
        let all = self.encode(&padded)?;
        assert_eq!(all.len(), total);
        Ok(wanted.iter().map(|&i| all[i].clone()).collect())
    }
}

/// Builds the codec for `params` (validated first).
pub fn new_codec(params: CodecParams) -> Result<Arc<dyn ErasureCodec>, CodecError> {
    params.validate()?;
    Ok(match params.codec {
        CodecId::ReedSolomonSimd => Arc::new(SimdCodec::new(params)?),
        CodecId::ReedSolomonNovelpoly => Arc::new(NovelpolyCodec::new(params)?),
    })
}

/// The length every fragment has for `data_len` bytes over `k` data fragments, when the
/// codec needs fragment lengths to be even and non-zero (both codecs here work on 2-byte
/// GF(2^16) symbols): `max(2, round_up_to_even(ceil(data_len / k)))`.
fn even_fragment_len(k: usize, data_len: usize) -> usize {
    let per = data_len.div_ceil(k.max(1));
    per.saturating_add(per & 1).max(2)
}

/// `k * frag_len`, checked, and at least `data_len`.
fn padded_len(k: usize, frag_len: usize, data_len: usize) -> Result<usize, CodecError> {
    match k.checked_mul(frag_len) {
        Some(p) if p >= data_len => Ok(p),
        _ => Err(CodecError::DataTooLarge { data_len }),
    }
}

/// Checks slot count and fragment lengths; returns the number of present fragments.
fn check_slots(
    params: &CodecParams,
    frag_len: usize,
    fragments: &[Option<&[u8]>],
) -> Result<usize, CodecError> {
    let expected = params.total_fragments();
    if fragments.len() != expected {
        return Err(CodecError::WrongFragmentCount {
            got: fragments.len(),
            expected,
        });
    }
    let mut present = 0;
    for (index, f) in fragments.iter().enumerate() {
        if let Some(f) = f {
            if f.len() != frag_len {
                return Err(CodecError::WrongFragmentLength {
                    index,
                    got: f.len(),
                    expected: frag_len,
                });
            }
            present += 1;
        }
    }
    Ok(present)
}

/// What `reconstruct` has to do after its inputs are checked.
enum Plan {
    /// All data fragments are present: the result, already concatenated and truncated.
    Done(Vec<u8>),
    /// Some data fragments are lost (at least `k` fragments are present): decode needed.
    /// All fragments have `frag_len` bytes, and `k * frag_len >= data_len`.
    Decode { frag_len: usize },
}

/// The codec-independent part of `reconstruct`: validates the slots, and takes the fast
/// path (concatenate + truncate, no decode) when all data fragments are present.
fn plan_reconstruct(
    params: &CodecParams,
    frag_len: usize,
    fragments: &[Option<&[u8]>],
    data_len: usize,
) -> Result<Plan, CodecError> {
    let k = params.data_fragments();
    let present = check_slots(params, frag_len, fragments)?;
    padded_len(k, frag_len, data_len)?;
    if present < k {
        return Err(CodecError::TooFewFragments { present, needed: k });
    }
    let data = &fragments[..k];
    if data.iter().all(Option::is_some) {
        return Ok(Plan::Done(concat_truncated(
            data.iter().flatten().copied(),
            data_len,
        )));
    }
    Ok(Plan::Decode { frag_len })
}

/// Concatenates data fragments (in index order) and truncates to `data_len`. The caller
/// guarantees they hold at least `data_len` bytes together.
fn concat_truncated<'x>(data: impl IntoIterator<Item = &'x [u8]>, data_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data_len);
    for f in data {
        let take = (data_len - out.len()).min(f.len());
        out.extend_from_slice(&f[..take]);
        if out.len() == data_len {
            break;
        }
    }
    assert_eq!(
        out.len(),
        data_len,
        "data fragments shorter than the stripe"
    );
    out
}
