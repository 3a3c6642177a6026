//! Tests of the erasure codec: properties over both codecs (random stripe sizes, k, m and
//! surviving subsets) and deterministic tests of the 8+4 default and the on-disk numbers.

use proptest::prelude::*;
use proptest::sample::{subsequence, Index};

use super::*;

// ---------------------------------------------------------------- helpers

/// Deterministic pseudo-random bytes (xorshift64*), so large stripes are cheap to draw.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out.extend_from_slice(&s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn build(params: CodecParams) -> Arc<dyn ErasureCodec> {
    match new_codec(params) {
        Ok(c) => c,
        Err(e) => panic!("{params}: {e}"),
    }
}

/// Slots with only the fragments whose index is in `keep`.
fn slots<'a>(fragments: &'a [Vec<u8>], keep: &[usize]) -> Vec<Option<&'a [u8]>> {
    (0..fragments.len())
        .map(|i| keep.contains(&i).then(|| fragments[i].as_slice()))
        .collect()
}

fn all_slots(fragments: &[Vec<u8>]) -> Vec<Option<&[u8]>> {
    fragments.iter().map(|f| Some(f.as_slice())).collect()
}

/// Encodes and checks the shape every codec promises: k+m fragments of fragment_len
/// bytes, data fragment i = bytes i*L..(i+1)*L of the zero-padded stripe.
fn encode_checked(c: &dyn ErasureCodec, data: &[u8]) -> Vec<Vec<u8>> {
    let p = c.params();
    let fragments = c
        .encode(data)
        .unwrap_or_else(|e| panic!("{p}: encode: {e}"));
    let frag_len = c.fragment_len(data.len());
    assert_eq!(fragments.len(), p.total_fragments(), "{p}: fragment count");
    assert!(frag_len >= 1 && frag_len * p.data_fragments() >= data.len());
    let mut padded = data.to_vec();
    padded.resize(frag_len * p.data_fragments(), 0);
    for (i, f) in fragments.iter().enumerate() {
        assert_eq!(f.len(), frag_len, "{p}: fragment {i} length");
        if i < p.data_fragments() {
            assert_eq!(
                f.as_slice(),
                &padded[i * frag_len..(i + 1) * frag_len],
                "{p}: data fragment {i} is not the contiguous slice of the stripe"
            );
        }
    }
    fragments
}

// ------------------------------------------------------------- strategies

/// simd: k in 1..=10; novelpoly: k a power of two up to 8; m in 1..=4 for both.
fn params_strategy() -> impl Strategy<Value = CodecParams> {
    prop_oneof![
        (1u8..=10, 1u8..=4).prop_map(|(k, m)| CodecParams {
            codec: CodecId::ReedSolomonSimd,
            k,
            m
        }),
        (prop::sample::select(vec![1u8, 2, 4, 8]), 1u8..=4).prop_map(|(k, m)| CodecParams {
            codec: CodecId::ReedSolomonNovelpoly,
            k,
            m
        }),
    ]
}

/// Stripe sizes: empty, one byte, small odd/even, medium, and a few up to 1 MiB.
fn len_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => Just(0usize),
        1 => Just(1usize),
        4 => 2usize..64,
        4 => 64usize..20_000,
        1 => (256usize << 10)..=(1usize << 20),
    ]
}

/// Params, stripe length, data seed, and a surviving subset of `k ..= k+m` fragments.
fn survivors_case() -> impl Strategy<Value = (CodecParams, usize, u64, Vec<usize>)> {
    (params_strategy(), len_strategy(), any::<u64>()).prop_flat_map(|(p, len, seed)| {
        let n = p.total_fragments();
        let k = p.data_fragments();
        (
            Just(p),
            Just(len),
            Just(seed),
            subsequence((0..n).collect::<Vec<_>>(), k..=n),
        )
    })
}

/// Like [`survivors_case`] with exactly `k` survivors.
fn exactly_k_case() -> impl Strategy<Value = (CodecParams, usize, u64, Vec<usize>)> {
    (params_strategy(), len_strategy(), any::<u64>()).prop_flat_map(|(p, len, seed)| {
        let n = p.total_fragments();
        let k = p.data_fragments();
        (
            Just(p),
            Just(len),
            Just(seed),
            subsequence((0..n).collect::<Vec<_>>(), k),
        )
    })
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(40)
}

// ------------------------------------------------------------- properties

proptest! {
    #![proptest_config(config())]

    /// Any k of the k+m fragments rebuild the exact bytes.
    #[test]
    fn any_k_fragments_rebuild_the_stripe(
        (p, len, seed, keep) in exactly_k_case()
    ) {
        let c = build(p);
        let data = bytes(len, seed);
        let fragments = encode_checked(c.as_ref(), &data);
        let got = c.reconstruct(&slots(&fragments, &keep), len);
        prop_assert!(got.is_ok(), "{p} len {len} keep {keep:?}: {got:?}");
        prop_assert!(got.ok() == Some(data), "{p} len {len} keep {keep:?}: wrong bytes");
    }

    /// Any k..=k+m fragments rebuild the exact bytes (fast path when data is complete).
    #[test]
    fn more_than_k_fragments_rebuild_the_stripe(
        (p, len, seed, keep) in survivors_case()
    ) {
        let c = build(p);
        let data = bytes(len, seed);
        let fragments = encode_checked(c.as_ref(), &data);
        let got = c.reconstruct(&slots(&fragments, &keep), len);
        prop_assert!(got.is_ok(), "{p} len {len} keep {keep:?}: {got:?}");
        prop_assert!(got.ok() == Some(data), "{p} len {len} keep {keep:?}: wrong bytes");
    }

    /// Losing m+1 fragments gives TooFewFragments, never bytes.
    #[test]
    fn losing_m_plus_one_fragments_is_an_error(
        (p, len, seed, keep) in exactly_k_case(),
        drop in any::<Index>(),
    ) {
        let c = build(p);
        let data = bytes(len, seed);
        let fragments = encode_checked(c.as_ref(), &data);
        let mut keep = keep;
        keep.remove(drop.index(keep.len()));
        let k = p.data_fragments();
        match c.reconstruct(&slots(&fragments, &keep), len) {
            Err(CodecError::TooFewFragments { present, needed }) => {
                prop_assert_eq!(present, k - 1);
                prop_assert_eq!(needed, k);
            }
            other => prop_assert!(false, "{} keep {:?}: {:?}", p, keep, other.map(|v| v.len())),
        }
        let r = c.reconstruct_fragments(&slots(&fragments, &keep), len, &[0]);
        let is_too_few = matches!(r, Err(CodecError::TooFewFragments { .. }));
        prop_assert!(is_too_few);
    }

    /// A fragment of the wrong length, a wrong slot count, or a data_len that does not
    /// match the fragments give typed errors.
    #[test]
    fn corrupted_lengths_are_typed_errors(
        (p, len, seed, keep) in survivors_case(),
        which in any::<Index>(),
        delta in prop_oneof![Just(-1isize), Just(1isize), -64isize..64],
        extra_slot in any::<bool>(),
    ) {
        let c = build(p);
        let data = bytes(len, seed);
        let fragments = encode_checked(c.as_ref(), &data);
        let frag_len = c.fragment_len(len);

        // One present fragment with a different length.
        let bad = keep[which.index(keep.len())];
        let new_len = (frag_len as isize + delta).max(0) as usize;
        if new_len != frag_len {
            let mut corrupted = fragments.clone();
            corrupted[bad].resize(new_len, 0xAB);
            let got = c.reconstruct(&slots(&corrupted, &keep), len);
            let is_wrong_len = matches!(
                got,
                Err(CodecError::WrongFragmentLength { index, got, expected })
                    if index == bad && got == new_len && expected == frag_len
            );
            prop_assert!(is_wrong_len, "{p}: {got:?}");
            let got = c.reconstruct_fragments(&slots(&corrupted, &keep), len, &[0]);
            let is_wrong_len = matches!(got, Err(CodecError::WrongFragmentLength { .. }));
            prop_assert!(is_wrong_len);
        }

        // Wrong number of slots.
        let mut s = slots(&fragments, &keep);
        if extra_slot { s.push(None) } else { s.pop(); }
        let got = c.reconstruct(&s, len);
        let is_wrong_count = matches!(
            got,
            Err(CodecError::WrongFragmentCount { got, expected })
                if got == s.len() && expected == p.total_fragments()
        );
        prop_assert!(is_wrong_count);

        // A data_len whose fragment length differs from the fragments'.
        let other_len = len + p.data_fragments() * 2 + 1;
        prop_assert_ne!(c.fragment_len(other_len), frag_len);
        let got = c.reconstruct(&slots(&fragments, &keep), other_len);
        let is_wrong_len = matches!(got, Err(CodecError::WrongFragmentLength { .. }));
        prop_assert!(is_wrong_len);
    }

    /// reconstruct_fragments rebuilds exactly the bytes encode produced for the lost
    /// fragments (data and parity), in the order asked.
    #[test]
    fn reconstruct_fragments_rebuilds_lost_fragments(
        (p, len, seed, keep) in exactly_k_case(),
        order in any::<u64>(),
    ) {
        let c = build(p);
        let data = bytes(len, seed);
        let fragments = encode_checked(c.as_ref(), &data);
        let mut wanted: Vec<usize> =
            (0..p.total_fragments()).filter(|i| !keep.contains(i)).collect();
        let shift = (order as usize) % wanted.len().max(1);
        wanted.rotate_left(shift);
        if order & 1 == 1 {
            wanted.reverse();
        }
        let got = c.reconstruct_fragments(&slots(&fragments, &keep), len, &wanted);
        prop_assert!(got.is_ok(), "{p} keep {keep:?}: {got:?}");
        let got = got.unwrap_or_default();
        prop_assert_eq!(got.len(), wanted.len());
        for (f, &i) in got.iter().zip(&wanted) {
            prop_assert!(f == &fragments[i], "{} len {} fragment {} differs", p, len, i);
        }
    }
}

// ------------------------------------------------------- deterministic tests

#[test]
fn codec_ids_are_stable_on_disk_numbers() {
    assert_eq!(CodecId::ReedSolomonSimd.as_u8(), 1);
    assert_eq!(CodecId::ReedSolomonNovelpoly.as_u8(), 2);
    for c in CodecId::ALL {
        assert_eq!(CodecId::from_u8(c.as_u8()), Some(c));
        assert_eq!(c.to_string().parse::<CodecId>().ok(), Some(c));
    }
    assert_eq!(CodecId::from_u8(0), None);
    assert_eq!(CodecId::from_u8(3), None);
    assert_eq!(CodecId::from_u8(255), None);
    assert_eq!(CodecId::ReedSolomonSimd.to_string(), "rs-simd");
    assert_eq!(CodecId::ReedSolomonNovelpoly.to_string(), "rs-novelpoly");
    assert!(matches!(
        "rs-fast".parse::<CodecId>(),
        Err(CodecError::UnknownCodec { .. })
    ));
}

#[test]
fn default_is_simd_8_plus_4() {
    assert_eq!(
        DEFAULT_PARAMS,
        CodecParams {
            codec: CodecId::ReedSolomonSimd,
            k: 8,
            m: 4
        }
    );
    assert_eq!(CodecParams::default(), DEFAULT_PARAMS);
    assert!(DEFAULT_PARAMS.validate().is_ok());
    assert_eq!(DEFAULT_PARAMS.total_fragments(), 12);
    assert_eq!(DEFAULT_PARAMS.to_string(), "rs-simd 8+4");
}

#[test]
fn invalid_params_are_rejected_with_typed_errors() {
    use CodecId::*;
    let p = |codec, k, m| CodecParams { codec, k, m };
    for codec in CodecId::ALL {
        assert!(matches!(
            p(codec, 0, 4).validate(),
            Err(CodecError::NoDataFragments { .. })
        ));
        assert!(matches!(
            p(codec, 8, 0).validate(),
            Err(CodecError::NoParityFragments { .. })
        ));
        assert!(matches!(
            p(codec, 128, 128).validate(),
            Err(CodecError::TooManyFragments { max: 255, .. })
        ));
        assert!(new_codec(p(codec, 0, 1)).is_err());
    }
    assert!(p(ReedSolomonSimd, 200, 55).validate().is_ok());
    assert!(p(ReedSolomonSimd, 1, 1).validate().is_ok());
    assert!(p(ReedSolomonSimd, 10, 4).validate().is_ok());
    assert!(p(ReedSolomonNovelpoly, 128, 127).validate().is_ok());
    assert!(p(ReedSolomonNovelpoly, 1, 1).validate().is_ok());
    for k in [3u8, 5, 6, 7, 10, 12, 100] {
        let err = p(ReedSolomonNovelpoly, k, 4).validate();
        let rounded = 1usize << k.ilog2();
        assert!(
            matches!(err, Err(CodecError::KNotPowerOfTwo { rounded_down, .. }) if rounded_down == rounded),
            "k={k}: {err:?}"
        );
        let msg = err.map(|_| String::new()).unwrap_or_else(|e| e.to_string());
        assert!(msg.contains("power of two"), "{msg}");
        assert!(new_codec(p(ReedSolomonNovelpoly, k, 4)).is_err());
    }
}

#[test]
fn fragment_len_rules() {
    for codec in CodecId::ALL {
        let c = build(CodecParams { codec, k: 8, m: 4 });
        assert_eq!(c.fragment_len(0), 2);
        assert_eq!(c.fragment_len(1), 2);
        assert_eq!(c.fragment_len(16), 2);
        assert_eq!(c.fragment_len(17), 4);
        assert_eq!(c.fragment_len(24), 4);
        assert_eq!(c.fragment_len(25), 4);
        assert_eq!(c.fragment_len(33), 6);
        assert_eq!(c.fragment_len(1 << 20), 128 << 10);
        assert_eq!(c.fragment_len((1 << 20) + 1), (128 << 10) + 2);
        // Never panics, even at the extreme.
        let _ = c.fragment_len(usize::MAX);
    }
    let c = build(CodecParams {
        codec: CodecId::ReedSolomonSimd,
        k: 3,
        m: 2,
    });
    assert_eq!(c.fragment_len(7), 4); // ceil(7/3) = 3, rounded up to even
    assert_eq!(c.fragment_len(12), 4);
    assert_eq!(c.fragment_len(13), 6);
}

/// 8+4 default: every way to lose up to 4 fragments of a 1 MiB + 3 bytes stripe is
/// checked for a few patterns; all C(12,4) patterns on a small stripe.
#[test]
fn default_8_plus_4_survives_any_four_losses() {
    let c = build(DEFAULT_PARAMS);
    let small = bytes(1001, 7);
    let fragments = encode_checked(c.as_ref(), &small);
    let mut patterns = 0;
    for a in 0..12 {
        for b in a + 1..12 {
            for x in b + 1..12 {
                for y in x + 1..12 {
                    let keep: Vec<usize> = (0..12).filter(|i| ![a, b, x, y].contains(i)).collect();
                    let got = c.reconstruct(&slots(&fragments, &keep), small.len());
                    assert_eq!(
                        got.ok().as_deref(),
                        Some(small.as_slice()),
                        "lost {a} {b} {x} {y}"
                    );
                    let rebuilt = c
                        .reconstruct_fragments(
                            &slots(&fragments, &keep),
                            small.len(),
                            &[a, b, x, y],
                        )
                        .unwrap_or_else(|e| panic!("lost {a} {b} {x} {y}: {e}"));
                    assert_eq!(
                        rebuilt,
                        vec![
                            fragments[a].clone(),
                            fragments[b].clone(),
                            fragments[x].clone(),
                            fragments[y].clone()
                        ]
                    );
                    patterns += 1;
                }
            }
        }
    }
    assert_eq!(patterns, 495);

    let big = bytes((1 << 20) + 3, 8);
    let fragments = encode_checked(c.as_ref(), &big);
    for lost in [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9, 10, 11],
        [0, 3, 8, 11],
        [7, 1, 10, 5],
    ] {
        let keep: Vec<usize> = (0..12).filter(|i| !lost.contains(i)).collect();
        let got = c.reconstruct(&slots(&fragments, &keep), big.len());
        assert!(got.ok() == Some(big.clone()), "lost {lost:?}");
    }
    let keep: Vec<usize> = (0..12).skip(5).collect();
    assert!(matches!(
        c.reconstruct(&slots(&fragments, &keep), big.len()),
        Err(CodecError::TooFewFragments {
            present: 7,
            needed: 8
        })
    ));
}

/// With all data fragments present, reconstruct concatenates them: parity is not read,
/// so even garbage parity does not matter.
#[test]
fn all_data_present_takes_the_fast_path() {
    for codec in CodecId::ALL {
        let c = build(CodecParams { codec, k: 8, m: 4 });
        let data = bytes(100_003, 9);
        let mut fragments = encode_checked(c.as_ref(), &data);
        for f in &mut fragments[8..] {
            f.fill(0x5A);
        }
        let got = c.reconstruct(&all_slots(&fragments), data.len());
        assert!(got.ok() == Some(data.clone()), "{codec}");
        // And the decode path really uses parity: with garbage parity it must differ.
        let mut s = all_slots(&fragments);
        s[0] = None;
        let got = c.reconstruct(&s, data.len());
        assert!(
            got.is_ok_and(|d| d != data),
            "{codec}: decode ignored parity"
        );
    }
}

/// Both codecs lay out data fragments the same way (only parity differs).
#[test]
fn codecs_share_the_data_layout() {
    let data = bytes(77_777, 10);
    let a = encode_checked(build(DEFAULT_PARAMS).as_ref(), &data);
    let b = encode_checked(
        build(CodecParams {
            codec: CodecId::ReedSolomonNovelpoly,
            k: 8,
            m: 4,
        })
        .as_ref(),
        &data,
    );
    assert_eq!(a[..8], b[..8]);
    assert_ne!(a[8..], b[8..]);
}

/// Parity bytes are part of the on-disk format: a library upgrade that changes them
/// would make old stripes undecodable. Golden CRC32C of the parity of a fixed stripe.
#[test]
fn parity_bytes_are_stable() {
    let data = bytes(4099, 11);
    for (params, expected) in [
        (DEFAULT_PARAMS, GOLDEN_SIMD),
        (
            CodecParams {
                codec: CodecId::ReedSolomonNovelpoly,
                k: 8,
                m: 4,
            },
            GOLDEN_NOVELPOLY,
        ),
    ] {
        let fragments = encode_checked(build(params).as_ref(), &data);
        let crcs: Vec<u32> = fragments[8..].iter().map(|f| crc32c::crc32c(f)).collect();
        assert_eq!(crcs, expected, "{params}: parity changed");
    }
}

/// Recorded with reed-solomon-simd 3.1.0 (the same on every SIMD engine: the engines
/// compute the same field arithmetic) and reed-solomon-novelpoly 2.0.0.
const GOLDEN_SIMD: [u32; 4] = [1739279318, 3172727986, 1046490367, 3328511478];
const GOLDEN_NOVELPOLY: [u32; 4] = [938379030, 2667094859, 2267713630, 3431730264];

#[test]
fn hostile_inputs_are_errors_not_panics() {
    for codec in CodecId::ALL {
        let c = build(CodecParams { codec, k: 4, m: 2 });
        let f = [0u8; 2];
        // Empty slot list, too many slots.
        assert!(matches!(
            c.reconstruct(&[], 0),
            Err(CodecError::WrongFragmentCount {
                got: 0,
                expected: 6
            })
        ));
        assert!(c.reconstruct(&[Some(&f[..]); 7], 0).is_err());
        // Empty fragments.
        let empty: Vec<Option<&[u8]>> = vec![Some(&[]); 6];
        assert!(matches!(
            c.reconstruct(&empty, 0),
            Err(CodecError::WrongFragmentLength { .. })
        ));
        // No fragments at all.
        assert!(matches!(
            c.reconstruct(&[None; 6], 0),
            Err(CodecError::TooFewFragments {
                present: 0,
                needed: 4
            })
        ));
        // Absurd data lengths.
        for len in [usize::MAX, usize::MAX / 2, usize::MAX / 4 + 1] {
            assert!(c.reconstruct(&[Some(&f[..]); 6], len).is_err());
            assert!(c.reconstruct(&[None; 6], len).is_err());
            assert!(c
                .reconstruct_fragments(&[Some(&f[..]); 6], len, &[5])
                .is_err());
        }
        // Wanted index out of range; nothing wanted.
        let fragments = encode_checked(c.as_ref(), b"hello");
        let s = all_slots(&fragments);
        assert!(matches!(
            c.reconstruct_fragments(&s, 5, &[6]),
            Err(CodecError::FragmentIndexOutOfRange { index: 6, count: 6 })
        ));
        assert!(c
            .reconstruct_fragments(&s, 5, &[])
            .is_ok_and(|v| v.is_empty()));
        // Present fragments are recomputed too, and repeats are allowed.
        let got = c.reconstruct_fragments(&s, 5, &[5, 0, 5]);
        assert!(got.is_ok_and(|v| v
            == vec![
                fragments[5].clone(),
                fragments[0].clone(),
                fragments[5].clone()
            ]));
        // Empty and 1-byte stripes round-trip.
        for data in [&b""[..], &b"x"[..]] {
            let fragments = encode_checked(c.as_ref(), data);
            let mut s = all_slots(&fragments);
            s[1] = None;
            s[2] = None;
            assert_eq!(c.reconstruct(&s, data.len()).ok().as_deref(), Some(data));
        }
    }
}

/// The simd codec encodes in column blocks (`simd::ENCODE_BLOCK` bytes per fragment per
/// library call); the parity must equal one library call over the whole fragments, at
/// lengths below, at and across block boundaries and with partial 64-byte tail chunks.
#[test]
fn simd_blocked_encode_equals_one_shot() {
    let c = build(DEFAULT_PARAMS);
    let k = usize::from(DEFAULT_PARAMS.k);
    let m = usize::from(DEFAULT_PARAMS.m);
    for (i, len) in [
        1,
        130,
        8 * 64,
        8 * 16 * 1024,
        8 * 16 * 1024 + 2,
        8 * 16 * 1024 * 3 - 100,
        1 << 20,
        (1 << 20) + 8 * 62,
        4 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        let data = bytes(len, 100 + i as u64);
        let fragments = encode_checked(c.as_ref(), &data);
        let one_shot = reed_solomon_simd::encode(k, m, &fragments[..k])
            .unwrap_or_else(|e| panic!("len {len}: one-shot encode: {e}"));
        assert_eq!(one_shot.len(), m);
        for (j, p) in one_shot.iter().enumerate() {
            assert!(
                *p == fragments[k + j],
                "len {len}: parity fragment {j} differs from the one-shot encode"
            );
        }
    }
}
