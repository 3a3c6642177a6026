//! Annual durability of one `k+m` stripe: the probability that `m+1` of its fragments
//! are down at the same moment within a year, from the disks' annual failure rate (AFR),
//! the repair time and, optionally, correlated rack losses. Pure arithmetic; `shale
//! durability` prints it.
//!
//! # Models
//!
//! Both models make the assumptions of Backblaze's published durability calculation
//! (blog post "Backblaze Durability Calculates at 99.999999999%", 2018; the code and
//! notebook in github.com/Backblaze/erasure-coding-durability): fragments fail
//! independently as Poisson processes with rate λ = AFR per year (a *rate*: 2 % AFR is
//! 0.02 expected failures per fragment-year), a failed fragment is rebuilt after the
//! repair time `R`, and the stripe is lost when more than `m` of its `n = k+m` fragments
//! are down at once.
//!
//! - [`Model::BackblazePeriods`] is Backblaze's calculation: the year is cut into
//!   `P = floor(365 d / R)` periods; in one period a fragment fails with probability
//!   `p = 1 - exp(-λ/P)` (Poisson, as in their notebook; their script uses `λ/P`, which
//!   differs in the fourth digit); the period loses data when at least `m+1` of the `n`
//!   fragments fail in it, `q = Σ_{i>m} C(n,i) p^i (1-p)^(n-i)`; and the year survives
//!   when every period does: `annual = 1 - (1-q)^P`. For 4+2 at 10 % AFR and 1-day
//!   replacement this gives `q = 4.109e-10` and `annual = 1.500e-7` (6.8 nines), the
//!   numbers of the worked example in their README.
//!
//! - [`Model::Markov`] (the default of `shale durability`) is the continuous-time
//!   version: every component (a fragment's disk; a rack, below) alternates between up
//!   (mean `1/λ`) and down (the repair time), independently, so in steady state it is
//!   down with probability `u = λR / (1 + λR)` and the joint distribution is the product
//!   of the components' (whatever the repair-time distribution). Data is lost when the
//!   number of lost fragments crosses from `m` to `m+1`; the rate of those crossings is
//!   the loss rate `Φ` (per year; for rare losses it is `1/MTTDL` of the Markov chain
//!   with one repair per failed fragment). Then `annual = 1 - exp(-Φ · 1 y)` and the loss
//!   in one repair period is `1 - exp(-Φ R)`. Without racks
//!
//!   ```text
//!   Φ = n λ (1-u) · C(n-1, m) u^m (1-u)^(n-1-m)  ≈  (m+1) · C(n, m+1) · λ^(m+1) R^m
//!   ```
//!
//!   (a fragment fails while exactly `m` of the others are down), divided by the
//!   steady-state probability that at most `m` are down (the rate given the data is
//!   still intact: 1 to many digits when losses are rare, and it keeps the estimate sane
//!   when they are not). The periods model gives `≈ C(n, m+1) λ^(m+1) R^m`: it only
//!   counts the `m+1` failures that fall in the same fixed period and misses those that
//!   straddle a period boundary, so it is optimistic by a factor `m+1` (0.7 nines for
//!   8+4). For 8+4 at 2 % AFR the Markov model gives 17.6 / 15.1 / 13.2 nines with
//!   6 h / 24 h / 72 h repair (the periods model: 18.3 / 15.8 / 13.9).
//!
//! # Rack losses
//!
//! With [`RackFailures`], the `n` fragments sit `N` to a rack (`ceil(n/N)` racks, the
//! last one holding the remainder), and each rack is an additional component: it fails
//! at rate `ρ` (the rack AFR), taking all its fragments at once, and is back after the
//! rack repair time `R_r` (by default the disk repair time). A fragment is lost while
//! its disk or its rack is down. With `u_d = λR/(1+λR)` and `u_r = ρR_r/(1+ρR_r)`, and
//! for a rack `j` holding `s_j` fragments,
//!
//! - `D_j ~ Bin(s_j, u_d)`: its fragments whose disks are down;
//! - `X_j`: its lost fragments: `s_j` with probability `u_r`, else `D_j`;
//! - `L_{-j} = Σ_{i≠j} X_i`: the lost fragments in the other racks (a convolution);
//!
//! the crossing rate sums, over racks, the disk failures and the rack failures that take
//! the stripe from `≤ m` to `> m` lost fragments:
//!
//! ```text
//! Φ = Σ_j [ s_j λ (1-u_d)(1-u_r) · P(L_{-j} + Bin(s_j - 1, u_d) = m)
//!         + ρ (1-u_r) · Σ_{x + y ≤ m < s_j + y} P(D_j = x) P(L_{-j} = y) ]
//! ```
//!
//! To first order each set `S` of components whose joint failure loses data contributes
//! `Π_{c∈S} λ_c · Σ_{c∈S} Π_{c'≠c} R_{c'}`. For 8+4 with `N = 2` (6 racks) the leading
//! sets are two racks and one disk of another rack, `120 ρ²λ (2 R_r R + R_r²)`, and three
//! racks, `60 ρ³ R_r²`. At 2 % disk AFR and 1 %/yr rack loss that is 8.2 nines with 24 h
//! repair for both, 7.3 with 72 h for both, and 7.5 nines with 56 h for both or with 24 h
//! disk repair and 72 h rack repair (a rack's worth of fragments takes longer to
//! rebuild); against 15.1 nines (24 h) without rack losses and 14.3 with one fragment per
//! rack. In the periods model a rack fails in a period with probability
//! `1 - exp(-ρ/P)` and the lost-fragment count per period is the same convolution.
//!
//! # Numerics
//!
//! Probabilities like `1e-22` are ordinary `f64`s, but `1 - q` and `1 - (1-q)^P` are not:
//! everything is computed as natural logarithms of sums of positive terms (log-sum-exp;
//! never `1 - P(≤ m)`), binomial coefficients as sums of logarithms, `1 - exp(-x)` as
//! `-expm1(-x)` and `(1-q)^P` as `exp(P ln_1p(-q))`, so nothing underflows and nothing
//! cancels even for 255-fragment stripes. Nines are `-log10(annual loss)`.

use std::fmt;

/// Fragments of a stripe at most (`k+m`, as the erasure codes allow).
pub const MAX_FRAGMENTS: u32 = 255;

const HOURS_PER_YEAR: f64 = 365.0 * 24.0;

/// Which calculation (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Continuous time: loss rate = rate of crossing from `m` to `m+1` fragments down.
    Markov,
    /// Backblaze's discrete calculation: `m+1` failures inside one repair period.
    BackblazePeriods,
}

impl Model {
    /// Short name, as `shale durability --model` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Model::Markov => "markov",
            Model::BackblazePeriods => "backblaze-periods",
        }
    }

    /// One line saying what the model computes.
    pub fn description(self) -> &'static str {
        match self {
            Model::Markov => {
                "continuous-time Markov chain: independent Poisson failures, each failed \
                 fragment (or rack) rebuilt after the repair time; loss rate = rate at which \
                 m+1 fragments become down at once"
            }
            Model::BackblazePeriods => {
                "Backblaze's published calculation: the year cut into repair periods, loss \
                 when m+1 fragments fail within one period (Poisson per fragment, binomial \
                 over fragments)"
            }
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Correlated rack losses: the stripe's fragments sit `fragments_per_rack` to a rack.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RackFailures {
    /// Fragments of the stripe in each rack (`N`); the last rack holds the remainder.
    pub fragments_per_rack: u32,
    /// Rack losses per rack-year (a rate in (0, 1)).
    pub afr: f64,
    /// Hours until a lost rack's fragments are back; `None`: the disk repair time.
    pub repair_hours: Option<f64>,
}

/// The inputs of a durability estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Data fragments.
    pub k: u32,
    /// Parity fragments: the stripe survives any `m` lost.
    pub m: u32,
    /// Disk (fragment) failures per year, a rate in (0, 1).
    pub afr: f64,
    /// Hours from a fragment's loss until it is rebuilt.
    pub repair_hours: f64,
    /// Correlated rack losses, if modelled.
    pub racks: Option<RackFailures>,
}

/// Why parameters are rejected. [`DurabilityError::param`] names the parameter.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DurabilityError {
    #[error("must be at least 1")]
    ZeroFragments { param: &'static str },
    #[error("k+m = {total} exceeds {MAX_FRAGMENTS} fragments")]
    TooManyFragments { total: u64 },
    #[error("{value} is not a rate in (0, 1) per year")]
    RateOutOfRange { param: &'static str, value: f64 },
    #[error("{hours} h is not a repair time in (0, 365 days]")]
    RepairOutOfRange { param: &'static str, hours: f64 },
    #[error("{n} fragments per rack is not in 1..={total} (the stripe's k+m fragments)")]
    FragmentsPerRack { n: u32, total: u32 },
    #[error(
        "the backblaze-periods model has one period length; a rack repair time different \
         from the repair time needs the markov model"
    )]
    RackRepairInPeriods,
}

impl DurabilityError {
    /// The parameter at fault, as the `shale durability` flag spells it.
    pub fn param(&self) -> &'static str {
        match self {
            DurabilityError::ZeroFragments { param }
            | DurabilityError::RateOutOfRange { param, .. }
            | DurabilityError::RepairOutOfRange { param, .. } => param,
            DurabilityError::TooManyFragments { .. } => "m",
            DurabilityError::FragmentsPerRack { .. } => "fragments-per-rack",
            DurabilityError::RackRepairInPeriods => "rack-repair",
        }
    }
}

impl Params {
    /// Checks ranges: `k, m ≥ 1`, `k+m ≤ 255`, rates in (0, 1), repair times in
    /// (0, 365 days], `1 ≤ fragments_per_rack ≤ k+m`.
    pub fn validate(&self) -> Result<(), DurabilityError> {
        if self.k == 0 {
            return Err(DurabilityError::ZeroFragments { param: "k" });
        }
        if self.m == 0 {
            return Err(DurabilityError::ZeroFragments { param: "m" });
        }
        let total = u64::from(self.k) + u64::from(self.m);
        if total > u64::from(MAX_FRAGMENTS) {
            return Err(DurabilityError::TooManyFragments { total });
        }
        check_rate("afr", self.afr)?;
        check_repair("repair", self.repair_hours)?;
        if let Some(r) = self.racks {
            let total = self.k + self.m;
            if r.fragments_per_rack == 0 || r.fragments_per_rack > total {
                return Err(DurabilityError::FragmentsPerRack {
                    n: r.fragments_per_rack,
                    total,
                });
            }
            check_rate("rack-afr", r.afr)?;
            if let Some(h) = r.repair_hours {
                check_repair("rack-repair", h)?;
            }
        }
        Ok(())
    }

    fn n(&self) -> u32 {
        self.k + self.m
    }

    /// Rack sizes as (fragments in the rack, number of such racks).
    fn rack_groups(&self, per_rack: u32) -> Vec<(u32, u32)> {
        let n = self.n();
        let mut groups = vec![(per_rack, n / per_rack)];
        if !n.is_multiple_of(per_rack) {
            groups.push((n % per_rack, 1));
        }
        groups.retain(|&(_, count)| count > 0);
        groups
    }
}

fn check_rate(param: &'static str, value: f64) -> Result<(), DurabilityError> {
    if value.is_finite() && value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(DurabilityError::RateOutOfRange { param, value })
    }
}

fn check_repair(param: &'static str, hours: f64) -> Result<(), DurabilityError> {
    if hours.is_finite() && hours > 0.0 && hours <= HOURS_PER_YEAR {
        Ok(())
    } else {
        Err(DurabilityError::RepairOutOfRange { param, hours })
    }
}

/// The result of [`estimate`]; probabilities are kept as natural logarithms (they can be
/// far below `f64`'s range for wide stripes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub model: Model,
    /// Length of one period in hours: the repair time (markov) or `365 d / P` (periods).
    pub period_hours: f64,
    /// Periods per year (`P`; `8760 h / R` for markov).
    pub periods_per_year: f64,
    /// `ln` of the probability of losing the stripe within one period.
    pub ln_period_loss: f64,
    /// `ln` of the probability of losing the stripe within a year.
    pub ln_annual_loss: f64,
}

impl Estimate {
    /// `log10` of the per-period loss probability.
    pub fn log10_period_loss(&self) -> f64 {
        self.ln_period_loss / std::f64::consts::LN_10
    }

    /// `log10` of the annual loss probability.
    pub fn log10_annual_loss(&self) -> f64 {
        self.ln_annual_loss / std::f64::consts::LN_10
    }

    /// Annual loss probability (0 when it is below `f64`'s range).
    pub fn annual_loss(&self) -> f64 {
        self.ln_annual_loss.exp()
    }

    /// Per-period loss probability (0 when it is below `f64`'s range).
    pub fn period_loss(&self) -> f64 {
        self.ln_period_loss.exp()
    }

    /// Durability in nines: `-log10(annual loss)`.
    pub fn nines(&self) -> f64 {
        -self.log10_annual_loss()
    }
}

/// Computes the loss probabilities of `params` under `model` (module docs).
pub fn estimate(params: &Params, model: Model) -> Result<Estimate, DurabilityError> {
    params.validate()?;
    match model {
        Model::Markov => Ok(markov(params)),
        Model::BackblazePeriods => periods(params),
    }
}

/// ln(0).
const LN_ZERO: f64 = f64::NEG_INFINITY;

/// `ln(e^a + e^b)` without overflow or underflow.
fn ln_add(a: f64, b: f64) -> f64 {
    if a == LN_ZERO {
        return b;
    }
    if b == LN_ZERO {
        return a;
    }
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

fn ln_sum(terms: impl IntoIterator<Item = f64>) -> f64 {
    terms.into_iter().fold(LN_ZERO, ln_add)
}

/// `ln C(n, k)`.
fn ln_choose(n: u32, k: u32) -> f64 {
    debug_assert!(k <= n);
    let k = k.min(n - k);
    (0..k)
        .map(|i| f64::from(n - i).ln() - f64::from(i + 1).ln())
        .sum()
}

/// `ln(1 - e^{-x})` given `ln x` (the probability of at least one event of a Poisson
/// process with mean `x`).
fn ln_one_minus_exp_neg(ln_x: f64) -> f64 {
    let x = ln_x.exp();
    if ln_x < -20.0 {
        // 1 - e^{-x} = x (1 - x/2 + ...), x < 2e-9.
        ln_x + (-x / 2.0).ln_1p()
    } else {
        (-(-x).exp_m1()).ln()
    }
}

/// A component that is down with probability `u`: `(ln u, ln(1-u))`.
#[derive(Clone, Copy)]
struct Down {
    ln_p: f64,
    ln_q: f64,
}

impl Down {
    /// Steady state of an up/down component: failures at `rate` per year, back after
    /// `hours`: `u = λR / (1 + λR)`.
    fn steady(rate: f64, hours: f64) -> Down {
        let x = rate * hours / HOURS_PER_YEAR;
        let ln_1px = x.ln_1p();
        Down {
            ln_p: x.ln() - ln_1px,
            ln_q: -ln_1px,
        }
    }

    /// At least one Poisson failure at `rate` per year within `1/periods` of a year.
    fn poisson(rate: f64, periods: f64) -> Down {
        let x = rate / periods;
        Down {
            ln_p: ln_one_minus_exp_neg(x.ln()),
            ln_q: -x,
        }
    }
}

/// `ln P(i of s down)` for `i in 0..=s`, each down independently.
fn binomial(s: u32, d: Down) -> Vec<f64> {
    (0..=s)
        .map(|i| {
            let mut t = ln_choose(s, i);
            if i > 0 {
                t += f64::from(i) * d.ln_p;
            }
            if i < s {
                t += f64::from(s - i) * d.ln_q;
            }
            t
        })
        .collect()
}

/// Distribution (as ln-probabilities) of the sum of two independent counts.
fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![LN_ZERO; a.len() + b.len() - 1];
    for (i, &x) in a.iter().enumerate() {
        if x == LN_ZERO {
            continue;
        }
        for (j, &y) in b.iter().enumerate() {
            out[i + j] = ln_add(out[i + j], x + y);
        }
    }
    out
}

/// Lost fragments of a rack of `s`: all of them when the rack is down, else its down
/// disks.
fn rack_lost(s: u32, disk: Down, rack: Down) -> Vec<f64> {
    let mut dist: Vec<f64> = binomial(s, disk)
        .into_iter()
        .map(|t| t + rack.ln_q)
        .collect();
    let last = dist.len() - 1;
    dist[last] = ln_add(dist[last], rack.ln_p);
    dist
}

/// Lost fragments of all racks in `groups` (size, count), one rack of size `minus`
/// left out (if any).
fn lost_in_racks(groups: &[(u32, u32)], minus: Option<u32>, disk: Down, rack: Down) -> Vec<f64> {
    let mut total = vec![0.0];
    for &(size, count) in groups {
        let count = if minus == Some(size) {
            count - 1
        } else {
            count
        };
        let one = rack_lost(size, disk, rack);
        for _ in 0..count {
            total = convolve(&total, &one);
        }
    }
    total
}

fn at(dist: &[f64], i: u32) -> f64 {
    dist.get(i as usize).copied().unwrap_or(LN_ZERO)
}

fn markov(p: &Params) -> Estimate {
    let n = p.n();
    let m = p.m;
    let ln_lambda = p.afr.ln();
    let disk = Down::steady(p.afr, p.repair_hours);
    let ln_flux = match p.racks {
        None => {
            // n λ (1-u) · C(n-1, m) u^m (1-u)^(n-1-m)
            f64::from(n).ln() + ln_lambda + disk.ln_q + binomial(n - 1, disk)[m as usize]
        }
        Some(r) => {
            let rack_hours = r.repair_hours.unwrap_or(p.repair_hours);
            let rack = Down::steady(r.afr, rack_hours);
            let groups = p.rack_groups(r.fragments_per_rack);
            let mut terms = Vec::new();
            for &(s, count) in &groups {
                let others = lost_in_racks(&groups, Some(s), disk, rack);
                let ln_count = f64::from(count).ln();
                // A disk of this rack fails (rack up, disk up) while exactly m others
                // are lost.
                let with_rest = convolve(&others, &binomial(s - 1, disk));
                terms.push(
                    ln_count
                        + f64::from(s).ln()
                        + ln_lambda
                        + disk.ln_q
                        + rack.ln_q
                        + at(&with_rest, m),
                );
                // The rack fails (rack up, x of its disks down) and that crosses m.
                let own = binomial(s, disk);
                let mut crossing = LN_ZERO;
                for (x, &px) in own.iter().enumerate() {
                    for (y, &py) in others.iter().enumerate() {
                        let (x, y) = (x as u32, y as u32);
                        if x + y <= m && s + y > m {
                            crossing = ln_add(crossing, px + py);
                        }
                    }
                }
                terms.push(ln_count + r.afr.ln() + rack.ln_q + crossing);
            }
            ln_sum(terms)
        }
    };
    // Given the data is intact: P(at most m lost) in the steady state.
    let all = match p.racks {
        None => binomial(n, disk),
        Some(r) => {
            let rack = Down::steady(r.afr, r.repair_hours.unwrap_or(p.repair_hours));
            lost_in_racks(&p.rack_groups(r.fragments_per_rack), None, disk, rack)
        }
    };
    let ln_intact = ln_sum(all.iter().take(m as usize + 1).copied());
    let ln_flux = ln_flux - ln_intact;
    let periods = HOURS_PER_YEAR / p.repair_hours;
    Estimate {
        model: Model::Markov,
        period_hours: p.repair_hours,
        periods_per_year: periods,
        ln_period_loss: ln_one_minus_exp_neg(ln_flux - periods.ln()),
        ln_annual_loss: ln_one_minus_exp_neg(ln_flux),
    }
}

fn periods(p: &Params) -> Result<Estimate, DurabilityError> {
    let n = p.n();
    let periods = (HOURS_PER_YEAR / p.repair_hours).floor().max(1.0);
    let disk = Down::poisson(p.afr, periods);
    let lost = match p.racks {
        None => binomial(n, disk),
        Some(r) => {
            if r.repair_hours.is_some_and(|h| h != p.repair_hours) {
                return Err(DurabilityError::RackRepairInPeriods);
            }
            let rack = Down::poisson(r.afr, periods);
            lost_in_racks(&p.rack_groups(r.fragments_per_rack), None, disk, rack)
        }
    };
    let ln_q = ln_sum(lost.iter().skip(p.m as usize + 1).copied());
    // annual = 1 - (1-q)^P = 1 - exp(-x), x = -P ln(1-q).
    let q = ln_q.exp();
    let ln_minus_ln_1mq = if ln_q < -20.0 {
        ln_q + (q / 2.0).ln_1p()
    } else {
        (-(-q).ln_1p()).ln()
    };
    Ok(Estimate {
        model: Model::BackblazePeriods,
        period_hours: HOURS_PER_YEAR / periods,
        periods_per_year: periods,
        ln_period_loss: ln_q,
        ln_annual_loss: ln_one_minus_exp_neg(periods.ln() + ln_minus_ln_1mq),
    })
}

/// Why a command-line rate or duration does not parse.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("{0:?} is not a rate: write 2% or 0.02")]
    NotARate(String),
    #[error("{input} is not a rate in (0, 1) per year{hint}")]
    RateOutOfRange { input: String, hint: String },
    #[error("{0:?} is not a duration: write e.g. 90m, 24h or 3d")]
    NotADuration(String),
    #[error("{0} is not a repair time in (0, 365d]")]
    DurationOutOfRange(String),
}

/// Parses a rate per year: `"2%"` or `"0.02"`, in (0, 1).
pub fn parse_rate(s: &str) -> Result<f64, ParseError> {
    let t = s.trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(pct) => (pct.trim(), 100.0),
        None => (t, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| ParseError::NotARate(s.to_string()))?;
    let v = v / scale;
    if !(v.is_finite() && v > 0.0 && v < 1.0) {
        let hint = if scale == 1.0 && (1.0..100.0).contains(&v) {
            format!(" (for {num} percent write {num}%)")
        } else {
            String::new()
        };
        return Err(ParseError::RateOutOfRange {
            input: s.to_string(),
            hint,
        });
    }
    Ok(v)
}

/// Parses a repair time in hours: `"90m"`, `"24h"`, `"3d"` (decimals allowed), in
/// (0, 365 days].
pub fn parse_duration_hours(s: &str) -> Result<f64, ParseError> {
    let t = s.trim();
    let bad = || ParseError::NotADuration(s.to_string());
    let unit = t.chars().last().ok_or_else(bad)?;
    let per_unit = match unit {
        'm' => 1.0 / 60.0,
        'h' => 1.0,
        'd' => 24.0,
        _ => return Err(bad()),
    };
    let v: f64 = t[..t.len() - 1].trim().parse().map_err(|_| bad())?;
    let hours = v * per_unit;
    if !(hours.is_finite() && hours > 0.0 && hours <= HOURS_PER_YEAR) {
        return Err(ParseError::DurationOutOfRange(s.to_string()));
    }
    Ok(hours)
}

#[cfg(test)]
#[path = "durability_test.rs"]
mod tests;
