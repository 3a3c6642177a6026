//! `shale durability`: annual loss probability and nines of a `k+m` stripe from disk AFR,
//! repair time and, optionally, correlated rack losses. The arithmetic (and the
//! derivation) is `placement::durability`; this file parses flags and prints.

use anyhow::bail;
use placement::durability::{
    estimate, parse_duration_hours, parse_rate, Estimate, Model, Params, RackFailures,
};

const MODELS_HELP: &str = "\
Models (both after Backblaze's published durability calculation, \
github.com/Backblaze/erasure-coding-durability; details in placement/src/durability.rs):

  markov (default)   Continuous-time Markov chain. Each fragment's disk fails as a Poisson
                     process at the AFR (a rate per year) and is rebuilt after --repair;
                     with --fragments-per-rack N, each rack is another such component that
                     fails at --rack-afr and takes its N fragments at once (back after
                     --rack-repair, default --repair). Loss rate = steady-state rate at
                     which m+1 fragments become down at once (about 1/MTTDL);
                     annual loss = 1 - exp(-rate x 1 year).

  backblaze-periods  Backblaze's calculation as published: the year is cut into
                     floor(365 d / repair) periods, a fragment fails in a period with
                     probability 1 - exp(-AFR/periods), a period loses data when m+1 of
                     the k+m fragments fail in it (binomial), annual = 1 - (1-q)^periods.
                     Reproduces their 4+2 example (10% AFR, 1 day: 4.109e-10 per period,
                     1.500e-7 a year). Ignores failures that straddle two periods, so it
                     is optimistic by about m+1 against markov.

Nines = -log10(annual loss). Examples:
  shale durability --k 8 --m 4 --afr 2% --repair 24h                 # 15.1 nines
  shale durability --k 8 --m 4 --afr 2% --repair 24h \\
      --fragments-per-rack 2 --rack-afr 1%                           # 8.2 nines
  shale durability --k 4 --m 2 --afr 0.10 --repair 1d --model backblaze-periods";

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelArg {
    /// Continuous-time Markov chain (the default).
    Markov,
    /// Backblaze's fixed repair periods.
    BackblazePeriods,
}

impl From<ModelArg> for Model {
    fn from(m: ModelArg) -> Model {
        match m {
            ModelArg::Markov => Model::Markov,
            ModelArg::BackblazePeriods => Model::BackblazePeriods,
        }
    }
}

/// Annual durability (loss probability and nines) of a k+m erasure-coded stripe.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = MODELS_HELP)]
pub struct DurabilityArgs {
    /// Data fragments per stripe.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=254))]
    pub k: u32,
    /// Parity fragments per stripe: any m may be lost (k+m at most 255).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=254))]
    pub m: u32,
    /// Disk annual failure rate, in (0, 1): "2%" or "0.02".
    #[arg(long, value_parser = parse_rate)]
    pub afr: f64,
    /// Time to rebuild a lost fragment: "90m", "6h", "24h", "3d".
    #[arg(long, value_parser = parse_duration_hours)]
    pub repair: f64,
    /// Fragments of a stripe in one rack (1..=k+m); a rack loss takes them all at once.
    /// Needs --rack-afr.
    #[arg(long, requires = "rack_afr", value_parser = clap::value_parser!(u32).range(1..=255))]
    pub fragments_per_rack: Option<u32>,
    /// Rack losses per rack-year, in (0, 1): "1%" or "0.01". Needs --fragments-per-rack.
    #[arg(long, requires = "fragments_per_rack", value_parser = parse_rate)]
    pub rack_afr: Option<f64>,
    /// Time until a lost rack's fragments are rebuilt (default: --repair). Needs
    /// --rack-afr.
    #[arg(long, requires = "rack_afr", value_parser = parse_duration_hours)]
    pub rack_repair: Option<f64>,
    /// Which calculation (see below).
    #[arg(long, value_enum, default_value_t = ModelArg::Markov)]
    pub model: ModelArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

impl DurabilityArgs {
    fn params(&self) -> Params {
        Params {
            k: self.k,
            m: self.m,
            afr: self.afr,
            repair_hours: self.repair,
            racks: self.fragments_per_rack.map(|n| RackFailures {
                fragments_per_rack: n,
                afr: self.rack_afr.unwrap_or_default(),
                repair_hours: self.rack_repair,
            }),
        }
    }
}

pub fn run(args: DurabilityArgs) -> anyhow::Result<()> {
    let params = args.params();
    let e = match estimate(&params, args.model.into()) {
        Ok(e) => e,
        Err(err) => bail!("--{}: {err}", err.param()),
    };
    if args.json {
        println!("{}", json(&params, &e));
    } else {
        print!("{}", text(&params, &e));
    }
    Ok(())
}

/// `x` (given as log10) in scientific notation with 4 significant digits, e.g.
/// `1.500e-7`; works far below `f64`'s range.
pub fn sci(log10: f64) -> String {
    if log10 == f64::NEG_INFINITY {
        return "0".into();
    }
    let mut exp = log10.floor();
    let mut mant = 10f64.powf(log10 - exp);
    if format!("{mant:.3}") == "10.000" {
        exp += 1.0;
        mant /= 10.0;
    }
    format!("{mant:.3}e{exp}")
}

/// Hours as the shortest of `90m`, `24h`, `3d`, `36h`.
pub fn duration(hours: f64) -> String {
    if hours >= 48.0 && (hours / 24.0).fract() == 0.0 {
        format!("{}d", hours / 24.0)
    } else if hours.fract() == 0.0 {
        format!("{hours}h")
    } else if (hours * 60.0).fract() == 0.0 {
        format!("{}m", hours * 60.0)
    } else {
        format!("{hours:.3}h")
    }
}

fn percent(rate: f64) -> String {
    let p = format!("{:.4}", rate * 100.0);
    let p = p.trim_end_matches('0').trim_end_matches('.');
    format!("{p}%")
}

fn racks_of(n: u32, per_rack: u32) -> u32 {
    n.div_ceil(per_rack)
}

fn text(p: &Params, e: &Estimate) -> String {
    let n = p.k + p.m;
    let mut out = String::new();
    out += &format!("model:       {} ({})\n", e.model, e.model.description());
    out += &format!(
        "code:        {}+{} ({n} fragments; data lost when {} are down at once)\n",
        p.k,
        p.m,
        p.m + 1
    );
    out += &format!(
        "disks:       AFR {} per year, repair {}\n",
        percent(p.afr),
        duration(p.repair_hours)
    );
    match p.racks {
        None => out += "racks:       not modelled (independent failures only)\n",
        Some(r) => {
            out += &format!(
                "racks:       {} fragments per rack ({} racks), rack loss {} per year, repair {}\n",
                r.fragments_per_rack,
                racks_of(n, r.fragments_per_rack),
                percent(r.afr),
                duration(r.repair_hours.unwrap_or(p.repair_hours))
            );
            if r.fragments_per_rack > p.m {
                out += &format!(
                    "             (more than m = {} per rack: one rack loss loses data)\n",
                    p.m
                );
            }
        }
    }
    out += &format!(
        "period:      {} ({} per year)\n",
        duration(e.period_hours),
        e.periods_per_year.round()
    );
    out += &format!("loss/period: {}\n", sci(e.log10_period_loss()));
    out += &format!("loss/year:   {}\n", sci(e.log10_annual_loss()));
    out += &format!("durability:  {:.1} nines\n", e.nines());
    out
}

/// A JSON number, or `null` if not finite.
fn json_f64(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

/// A probability as a JSON number in exponent form (`7.1e-16`).
fn json_prob(x: f64) -> String {
    if x.is_finite() {
        format!("{x:e}")
    } else {
        "null".into()
    }
}

fn json_opt(x: Option<String>) -> String {
    x.unwrap_or_else(|| "null".into())
}

fn json(p: &Params, e: &Estimate) -> String {
    let r = p.racks;
    format!(
        "{{\"model\":\"{}\",\"k\":{},\"m\":{},\"afr\":{},\"repair_hours\":{},\
         \"fragments_per_rack\":{},\"rack_afr\":{},\"rack_repair_hours\":{},\
         \"period_hours\":{},\"periods_per_year\":{},\"period_loss\":{},\"annual_loss\":{},\
         \"log10_period_loss\":{},\"log10_annual_loss\":{},\"nines\":{}}}",
        e.model,
        p.k,
        p.m,
        json_f64(p.afr),
        json_f64(p.repair_hours),
        json_opt(r.map(|r| r.fragments_per_rack.to_string())),
        json_opt(r.map(|r| json_f64(r.afr))),
        json_opt(r.map(|r| json_f64(r.repair_hours.unwrap_or(p.repair_hours)))),
        json_f64(e.period_hours),
        json_f64(e.periods_per_year),
        json_prob(e.period_loss()),
        json_prob(e.annual_loss()),
        json_f64(e.log10_period_loss()),
        json_f64(e.log10_annual_loss()),
        json_f64(e.nines()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sci_formats_from_log10() {
        assert_eq!(sci(1.5e-7f64.log10()), "1.500e-7");
        assert_eq!(sci(4.1087e-10f64.log10()), "4.109e-10");
        assert_eq!(sci(-1000.5), "3.162e-1001");
        assert_eq!(sci(0.0), "1.000e0");
        assert_eq!(sci(9.99999e-5f64.log10()), "1.000e-4");
        assert_eq!(sci(f64::NEG_INFINITY), "0");
    }

    #[test]
    fn durations_and_percents() {
        assert_eq!(duration(24.0), "24h");
        assert_eq!(duration(48.0), "2d");
        assert_eq!(duration(72.0), "3d");
        assert_eq!(duration(6.0), "6h");
        assert_eq!(duration(36.0), "36h");
        assert_eq!(duration(1.5), "90m");
        assert_eq!(percent(0.02), "2%");
        assert_eq!(percent(0.005), "0.5%");
        assert_eq!(percent(0.1), "10%");
    }

    #[test]
    fn text_and_json_report() {
        let p = Params {
            k: 8,
            m: 4,
            afr: 0.02,
            repair_hours: 24.0,
            racks: None,
        };
        let e = estimate(&p, Model::Markov).unwrap();
        let t = text(&p, &e);
        assert!(t.contains("model:       markov"), "{t}");
        assert!(t.contains("loss/year:   7.135e-16"), "{t}");
        assert!(t.contains("durability:  15.1 nines"), "{t}");
        let j = json(&p, &e);
        assert!(
            j.starts_with("{\"model\":\"markov\",\"k\":8,\"m\":4,"),
            "{j}"
        );
        assert!(j.contains("\"fragments_per_rack\":null"), "{j}");
        assert!(j.contains("\"annual_loss\":7.13"), "{j}");
    }
}
