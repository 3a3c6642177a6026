//! Object sizes for `shale bench`: fixed (`1MiB`), uniform over a range (`4KiB..1MiB`)
//! or a weighted list (`4KiB:90,1MiB:10`).

use anyhow::{bail, Context};

/// How object sizes are drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeDist {
    Fixed(usize),
    /// Uniform over `[lo, hi]`.
    Uniform(usize, usize),
    /// `(size, weight)` pairs; weights are positive.
    Weighted(Vec<(usize, u32)>),
}

impl SizeDist {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let s = s.trim();
        if let Some((lo, hi)) = s.split_once("..") {
            let (lo, hi) = (parse_size(lo)?, parse_size(hi)?);
            if lo > hi {
                bail!("size range {s:?}: the low end is above the high end");
            }
            return Ok(SizeDist::Uniform(lo, hi));
        }
        if s.contains(':') {
            let mut pairs = Vec::new();
            for part in s.split(',') {
                let (size, weight) = part
                    .split_once(':')
                    .with_context(|| format!("size list {s:?}: {part:?} is not SIZE:WEIGHT"))?;
                let weight: u32 = weight
                    .trim()
                    .parse()
                    .with_context(|| format!("size list {s:?}: bad weight {weight:?}"))?;
                if weight == 0 {
                    bail!("size list {s:?}: weights must be positive");
                }
                pairs.push((parse_size(size)?, weight));
            }
            return Ok(SizeDist::Weighted(pairs));
        }
        Ok(SizeDist::Fixed(parse_size(s)?))
    }

    /// The largest size this distribution can draw.
    pub fn max(&self) -> usize {
        match self {
            SizeDist::Fixed(n) => *n,
            SizeDist::Uniform(_, hi) => *hi,
            SizeDist::Weighted(p) => p.iter().map(|(s, _)| *s).max().unwrap_or(0),
        }
    }

    /// Draws a size from a uniform random `r`.
    pub fn sample(&self, r: u64) -> usize {
        match self {
            SizeDist::Fixed(n) => *n,
            SizeDist::Uniform(lo, hi) => {
                let span = (*hi - *lo) as u64 + 1;
                *lo + (r % span) as usize
            }
            SizeDist::Weighted(p) => {
                let total: u64 = p.iter().map(|(_, w)| u64::from(*w)).sum();
                let mut x = r % total.max(1);
                for (size, w) in p {
                    if x < u64::from(*w) {
                        return *size;
                    }
                    x -= u64::from(*w);
                }
                p.last().map_or(0, |(s, _)| *s)
            }
        }
    }
}

/// Parses `4KiB`, `1MiB`, `64MiB`, `1GiB` or plain bytes.
pub fn parse_size(s: &str) -> anyhow::Result<usize> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("GiB") {
        (n, 1usize << 30)
    } else if let Some(n) = s.strip_suffix("MiB") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("KiB") {
        (n, 1 << 10)
    } else {
        (s, 1)
    };
    let n: usize = num
        .trim()
        .parse()
        .with_context(|| format!("bad size {s:?} (bytes, or a KiB / MiB / GiB suffix)"))?;
    n.checked_mul(mult).context("size overflows")
}

/// Parses `500ms`, `30s`, `2m` or plain seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<std::time::Duration> {
    let s = s.trim();
    let bad = || format!("bad duration {s:?} (e.g. 500ms, 30s, 2m)");
    let (num, unit_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1u64)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else {
        (s, 1000)
    };
    let n: u64 = num.trim().parse().with_context(bad)?;
    Ok(std::time::Duration::from_millis(
        n.checked_mul(unit_ms).with_context(bad)?,
    ))
}
