//! The live cluster's durability estimate, printed by `shale admin status`: the model of
//! `shale durability` (`placement::durability`, markov) fed with what the cluster
//! actually has instead of flags:
//!
//! - **k, m and fragments per rack** from the committed stripes' placements (walked
//!   with `ListStripes`, up to a sample bound): one estimate per (k, m, most fragments
//!   of one stripe in one rack) class.
//! - **Repair time** = detection + rebuild. Detection is the failure detector's
//!   `dead_after_secs` (the longest any leader uses). Rebuild is the bytes on the fullest
//!   data node (a rack: the fullest rack) divided by the cluster's repair rate: the sum,
//!   over the distinct meta nodes leading object groups, of each one's measured repair
//!   rate, or its `repair_bytes_per_sec` budget when it has not repaired anything yet.
//!   Conservative: every fragment of the failed node is taken to wait for the whole
//!   rebuild.
//! - **Failure rates** are not measurable from one small cluster's history; they are the
//!   operator's assumption (`--afr`, `--rack-afr`), printed with the result.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use placement::durability::{estimate, Model, Params, RackFailures};

/// A class of stripes with the same code and worst rack concentration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StripeClass {
    pub k: u32,
    pub m: u32,
    /// Most fragments of one stripe in one rack.
    pub per_rack: u32,
}

/// What the cluster has, as gathered by `shale admin status`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveInputs {
    /// Stripes by class.
    pub classes: BTreeMap<StripeClass, u64>,
    /// Stripes looked at, and whether that was all of them.
    pub sampled: u64,
    pub sampled_all: bool,
    /// Racks holding data nodes.
    pub racks: u32,
    /// Bytes on the fullest data node and on the fullest rack.
    pub fullest_node_bytes: u64,
    pub fullest_rack_bytes: u64,
    /// Detection delay: the longest `dead_after_secs` of the reporting leaders.
    pub detect_secs: u64,
    /// The cluster's repair rate, bytes per second, and how it was found.
    pub repair_rate: f64,
    pub rate_source: RateSource,
}

/// Where the repair rate came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RateSource {
    /// Every leader's rate was measured by its repair loop.
    Measured,
    /// Some or all leaders had not repaired anything: their budgets stand in.
    #[default]
    Budget,
}

/// The operator's failure-rate assumptions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Assumptions {
    /// Failures per year of a fragment's disk or node.
    pub afr: f64,
    /// Losses per year of a whole rack.
    pub rack_afr: f64,
}

/// One class's result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassEstimate {
    pub class: StripeClass,
    pub stripes: u64,
    /// Nines with independent failures only, and with rack losses too (`None`: one
    /// rack, so a rack loss is every node at once and the model does not apply).
    pub nines_independent: f64,
    pub nines_with_racks: Option<f64>,
    /// Annual loss probability of one stripe (with racks when modelled).
    pub annual_loss: f64,
}

/// Hours from a failure until the lost fragments are back: detection + `bytes` rebuilt at
/// `rate`. At least one second (the model needs a positive time).
pub fn repair_hours(detect_secs: u64, bytes: u64, rate: f64) -> f64 {
    let rebuild = if rate > 0.0 {
        bytes as f64 / rate
    } else {
        f64::INFINITY
    };
    (detect_secs as f64 + rebuild).max(1.0) / 3600.0
}

/// The estimate of every class, or why none can be made.
pub fn estimate_live(inputs: &LiveInputs, a: Assumptions) -> Result<Vec<ClassEstimate>, String> {
    let disk_hours = repair_hours(
        inputs.detect_secs,
        inputs.fullest_node_bytes,
        inputs.repair_rate,
    );
    let rack_hours = repair_hours(
        inputs.detect_secs,
        inputs.fullest_rack_bytes,
        inputs.repair_rate,
    );
    if !disk_hours.is_finite() {
        return Err("repair is switched off on every leader (no repair rate)".to_owned());
    }
    // The model bounds repair times to a year; a slower repair is no repair.
    let cap = |h: f64| h.min(365.0 * 24.0);
    let mut out = Vec::new();
    for (&class, &stripes) in &inputs.classes {
        let base = Params {
            k: class.k,
            m: class.m,
            afr: a.afr,
            repair_hours: cap(disk_hours),
            racks: None,
        };
        let independent =
            estimate(&base, Model::Markov).map_err(|e| format!("{}: {e}", e.param()))?;
        let with_racks = if inputs.racks > 1 {
            let p = Params {
                racks: Some(RackFailures {
                    fragments_per_rack: class.per_rack.clamp(1, class.k + class.m),
                    afr: a.rack_afr,
                    repair_hours: Some(cap(rack_hours)),
                }),
                ..base
            };
            Some(estimate(&p, Model::Markov).map_err(|e| format!("{}: {e}", e.param()))?)
        } else {
            None
        };
        out.push(ClassEstimate {
            class,
            stripes,
            nines_independent: independent.nines(),
            nines_with_racks: with_racks.map(|e| e.nines()),
            annual_loss: with_racks.unwrap_or(independent).annual_loss(),
        });
    }
    Ok(out)
}

/// The `DURABILITY` section of `shale admin status`.
pub fn report(inputs: &LiveInputs, a: Assumptions) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nDURABILITY (markov model as in `shale durability`; assumed AFR {}/yr per disk or node, rack losses {}/yr)",
        pct(a.afr),
        pct(a.rack_afr)
    );
    if inputs.classes.is_empty() {
        let _ = writeln!(out, "  no erasure-coded stripes yet");
        return out;
    }
    let rate = if inputs.repair_rate > 0.0 {
        format!(
            "{}/s ({})",
            crate::admin::bytes(inputs.repair_rate as u64),
            match inputs.rate_source {
                RateSource::Measured => "measured",
                RateSource::Budget => "budget",
            }
        )
    } else {
        "none (repair off)".to_owned()
    };
    let _ = writeln!(
        out,
        "  repair: detection {} s + rebuild of the fullest node ({}) at {rate} = {:.2} h; of the fullest rack ({}) = {:.2} h",
        inputs.detect_secs,
        crate::admin::bytes(inputs.fullest_node_bytes),
        repair_hours(inputs.detect_secs, inputs.fullest_node_bytes, inputs.repair_rate),
        crate::admin::bytes(inputs.fullest_rack_bytes),
        repair_hours(inputs.detect_secs, inputs.fullest_rack_bytes, inputs.repair_rate),
    );
    let _ = writeln!(
        out,
        "  stripes: {} {}",
        inputs.sampled,
        if inputs.sampled_all {
            "(all)"
        } else {
            "(a sample: the first of each group)"
        }
    );
    match estimate_live(inputs, a) {
        Err(e) => {
            let _ = writeln!(out, "  no estimate: {e}");
        }
        Ok(rows) => {
            let mut expected_losses = 0.0;
            for r in &rows {
                expected_losses += r.annual_loss * r.stripes as f64;
                let racks = r
                    .nines_with_racks
                    .map_or_else(|| "n/a (one rack)".to_owned(), |n| format!("{n:.1}"));
                let _ = writeln!(
                    out,
                    "  {}+{} with at most {} fragments per rack: {} stripes, {:.1} nines (independent failures), {racks} nines (with rack losses)",
                    r.class.k, r.class.m, r.class.per_rack, r.stripes, r.nines_independent
                );
                if r.class.per_rack > r.class.m {
                    let _ = writeln!(
                        out,
                        "    WARNING: more than m = {} fragments share a rack: losing that rack loses these stripes",
                        r.class.m
                    );
                }
            }
            let _ = writeln!(
                out,
                "  expected stripes lost per year (sampled stripes x annual loss): {expected_losses:.2e}"
            );
        }
    }
    out
}

fn pct(rate: f64) -> String {
    let p = rate * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p}%")
    }
}

#[cfg(test)]
#[path = "durability_live_test.rs"]
mod tests;
