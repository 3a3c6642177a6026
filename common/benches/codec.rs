//! Erasure codec throughput: `cargo bench -p common --bench codec`.
//!
//! For each codec, 8+4 at stripe sizes 1 MiB and 4 MiB: encode, reconstruct with 4 data
//! fragments lost (worst case, decode needed) and reconstruct with all data fragments
//! present (fast path, no decode), in MiB/s of stripe data bytes, next to a memcpy of
//! the same bytes. Each figure is the best of 3 runs of ~0.5 s each. Prints a markdown
//! table (pasted into BENCHMARKS.md) and the codec that encodes 8+4 1 MiB fastest.

// A benchmark measures wall time: it is allowed the raw clock (library code is not).
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::codec::{new_codec, CodecId, CodecParams, ErasureCodec};

const MIB: usize = 1 << 20;
const RUN: Duration = Duration::from_millis(500);
const RUNS: usize = 3;

/// Best throughput (MiB/s of `bytes` per call) over `RUNS` runs of ~`RUN` each.
fn measure(bytes: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm up (page faults, lazy tables)
    let mut best = 0.0f64;
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut iters = 0u64;
        while start.elapsed() < RUN {
            f();
            iters += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        best = best.max(iters as f64 * bytes as f64 / MIB as f64 / secs);
    }
    best
}

fn data(len: usize) -> Vec<u8> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

struct Row {
    codec: CodecId,
    size: usize,
    encode: f64,
    degraded: f64,
    fast: f64,
    memcpy: f64,
    one_call: f64,
}

fn bench(codec: &dyn ErasureCodec, size: usize) -> Row {
    let p = codec.params();
    let input = data(size);
    let fragments = match codec.encode(&input) {
        Ok(f) => f,
        Err(e) => panic!("{p}: encode failed: {e}"),
    };
    let all: Vec<Option<&[u8]>> = fragments.iter().map(|f| Some(f.as_slice())).collect();
    let mut degraded = all.clone();
    for slot in degraded.iter_mut().take(usize::from(p.m)) {
        *slot = None; // lose data fragments 0..m: the decoder must rebuild m of them
    }
    let check = |slots: &[Option<&[u8]>]| match codec.reconstruct(slots, size) {
        Ok(d) => assert!(d == input, "{p}: reconstruct returned wrong bytes"),
        Err(e) => panic!("{p}: reconstruct failed: {e}"),
    };
    check(&all);
    check(&degraded);

    let encode = measure(size, || {
        black_box(codec.encode(black_box(&input)).map(|f| f.len()).ok());
    });
    let degraded_rate = measure(size, || {
        black_box(
            codec
                .reconstruct(black_box(&degraded), size)
                .map(|d| d.len())
                .ok(),
        );
    });
    let fast = measure(size, || {
        black_box(
            codec
                .reconstruct(black_box(&all), size)
                .map(|d| d.len())
                .ok(),
        );
    });
    // memcpy into a fresh buffer, like reconstruct's output.
    let memcpy = measure(size, || {
        black_box(black_box(input.as_slice()).to_vec());
    });
    // The same stripe encoded by one library call over whole fragments (what the simd
    // codec did before it encoded in column blocks), including the copies `encode` makes.
    let one_call = if p.codec == CodecId::ReedSolomonSimd {
        let (k, m) = (usize::from(p.k), usize::from(p.m));
        measure(size, || {
            let frag = fragments[0].len();
            let data: Vec<Vec<u8>> = (0..k)
                .map(|i| {
                    let mut f = input[(i * frag).min(size)..((i + 1) * frag).min(size)].to_vec();
                    f.resize(frag, 0);
                    f
                })
                .collect();
            black_box(
                reed_solomon_simd::encode(k, m, black_box(&data))
                    .map(|p| p.len())
                    .ok(),
            );
        })
    } else {
        f64::NAN
    };
    Row {
        codec: p.codec,
        size,
        encode,
        degraded: degraded_rate,
        fast,
        memcpy,
        one_call,
    }
}

/// memcpy bandwidth out of cache: 64 MiB copied between two buffers allocated once.
/// A PUT's bytes arrive from the network, not from a warm cache; this is the streaming
/// baseline next to the cache-resident one.
fn memcpy_streaming() -> f64 {
    let size = 64 * MIB;
    let src = data(size);
    let mut dst = vec![0u8; size];
    measure(size, || {
        dst.copy_from_slice(black_box(&src));
        black_box(&dst);
    })
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let mut rows = Vec::new();
    for codec in CodecId::ALL {
        let params = CodecParams { codec, k: 8, m: 4 };
        let c = match new_codec(params) {
            Ok(c) => c,
            Err(e) => panic!("{params}: {e}"),
        };
        for size in [MIB, 4 * MIB] {
            eprintln!("measuring {params} at {} MiB ...", size / MIB);
            rows.push(bench(c.as_ref(), size));
        }
    }

    eprintln!("measuring memcpy of 64 MiB ...");
    let streaming = memcpy_streaming();

    println!(
        "| codec | k+m | stripe | encode MiB/s | encode, one library call MiB/s \
         | reconstruct, 4 data lost MiB/s | reconstruct, all data present MiB/s \
         | memcpy (cached) MiB/s | memcpy 64 MiB MiB/s | encode / memcpy (cached) \
         | encode / memcpy 64 MiB |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | 8+4 | {} MiB | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.3} | {:.3} |",
            r.codec,
            r.size / MIB,
            r.encode,
            r.one_call,
            r.degraded,
            r.fast,
            r.memcpy,
            streaming,
            r.encode / r.memcpy,
            r.encode / streaming
        );
    }

    let encode_1mib = |codec| {
        rows.iter()
            .find(|r| r.codec == codec && r.size == MIB)
            .map_or(0.0, |r| r.encode)
    };
    let best = CodecId::ALL
        .into_iter()
        .max_by(|a, b| encode_1mib(*a).total_cmp(&encode_1mib(*b)));
    if let Some(best) = best {
        let others: Vec<String> = CodecId::ALL
            .into_iter()
            .filter(|c| *c != best)
            .map(|c| format!("{:.1}x faster than {c}", encode_1mib(best) / encode_1mib(c)))
            .collect();
        println!();
        println!(
            "default: {best} (fastest encode at 8+4, 1 MiB stripes: {:.0} MiB/s, {})",
            encode_1mib(best),
            others.join(", ")
        );
    }
}
