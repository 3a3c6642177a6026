//! The durability model against published and hand-derived numbers.

use super::*;

fn params(k: u32, m: u32, afr: f64, repair_hours: f64) -> Params {
    Params {
        k,
        m,
        afr,
        repair_hours,
        racks: None,
    }
}

fn racks(per_rack: u32, afr: f64, repair_hours: Option<f64>) -> Option<RackFailures> {
    Some(RackFailures {
        fragments_per_rack: per_rack,
        afr,
        repair_hours,
    })
}

/// `x` within `rel` relative error of `want`.
fn close(x: f64, want: f64, rel: f64) -> bool {
    ((x - want) / want).abs() <= rel
}

/// The worked example in github.com/Backblaze/erasure-coding-durability (README):
/// `durability.py 4 2 0.10 1` prints, for 3 failures, cumulative 4.109e-10 per period
/// and an annual loss rate of 1.500e-07 (6 nines).
#[test]
fn backblaze_worked_example_4_plus_2() {
    let e = estimate(&params(4, 2, 0.10, 24.0), Model::BackblazePeriods).unwrap();
    assert_eq!(e.periods_per_year, 365.0);
    assert_eq!(e.period_hours, 24.0);
    assert_eq!(format!("{:.3e}", e.period_loss()), "4.109e-10");
    assert_eq!(format!("{:.3e}", e.annual_loss()), "1.500e-7");
    assert!(close(e.period_loss(), 4.1087e-10, 1e-4), "{e:?}");
    assert!(close(e.annual_loss(), 1.49968e-7, 1e-4), "{e:?}");
    assert_eq!(format!("{:.1}", e.nines()), "6.8");
}

/// The other rows of the same table (6 drives, loss at 2 and at 4 failures): 5+1 and 3+3.
#[test]
fn backblaze_table_other_thresholds() {
    let e = estimate(&params(5, 1, 0.10, 24.0), Model::BackblazePeriods).unwrap();
    assert_eq!(format!("{:.3e}", e.period_loss()), "1.125e-6");
    assert_eq!(format!("{:.3e}", e.annual_loss()), "4.105e-4");
    let e = estimate(&params(3, 3, 0.10, 24.0), Model::BackblazePeriods).unwrap();
    assert_eq!(format!("{:.3e}", e.period_loss()), "8.443e-14");
    assert_eq!(format!("{:.3e}", e.annual_loss()), "3.082e-11");
}

/// DESIGN.md: 8+4 at 2 % AFR is ≈17.6 / 15.1 / 13.2 nines with 6 h / 24 h / 72 h repair.
#[test]
fn eight_plus_four_nines_by_repair_time() {
    for (hours, want) in [(6.0, "17.6"), (24.0, "15.1"), (72.0, "13.2")] {
        let e = estimate(&params(8, 4, 0.02, hours), Model::Markov).unwrap();
        assert_eq!(format!("{:.1}", e.nines()), want, "{hours} h: {e:?}");
    }
}

/// The same under Backblaze's periods model (module docs): 0.7 nines more.
#[test]
fn eight_plus_four_periods_model() {
    for (hours, want) in [(6.0, "18.3"), (24.0, "15.8"), (72.0, "13.9")] {
        let e = estimate(&params(8, 4, 0.02, hours), Model::BackblazePeriods).unwrap();
        assert_eq!(format!("{:.1}", e.nines()), want, "{hours} h: {e:?}");
    }
}

/// The closed form of the module docs, without racks.
#[test]
fn markov_matches_closed_form() {
    let (n, m, lambda, hours) = (12.0, 4, 0.02, 24.0);
    let u: f64 = lambda * hours / 8760.0 / (1.0 + lambda * hours / 8760.0);
    // n λ (1-u) C(11, 4) u^4 (1-u)^7, C(11, 4) = 330.
    let flux = n * lambda * (1.0 - u) * 330.0 * u.powi(m) * (1.0 - u).powi(7);
    let e = estimate(&params(8, 4, lambda, hours), Model::Markov).unwrap();
    assert!(close(e.annual_loss(), flux, 1e-9), "{e:?} vs {flux:e}");
    assert!(close(e.period_loss(), flux * hours / 8760.0, 1e-9));
    // ≈ (m+1) C(n, m+1) λ^(m+1) R^m: 5 · 792 · 0.02^5 · (1/365)^4.
    let approx = 5.0 * 792.0 * 0.02f64.powi(5) * (1.0f64 / 365.0).powi(4);
    assert!(close(flux, approx, 1e-3));
}

/// Markov is pessimistic against the periods model by about m+1.
#[test]
fn markov_versus_periods_factor_m_plus_one() {
    for (k, m) in [(4, 2), (8, 4), (17, 3)] {
        let p = params(k, m, 0.02, 24.0);
        let mk = estimate(&p, Model::Markov).unwrap().annual_loss();
        let bb = estimate(&p, Model::BackblazePeriods).unwrap().annual_loss();
        assert!(
            close(mk / bb, f64::from(m + 1), 0.01),
            "{k}+{m}: {mk:e} / {bb:e}"
        );
    }
}

/// DESIGN.md: 2 fragments per rack with 1 %/yr rack loss drops 8+4 to ≈7.5 nines. In this
/// model that needs 56 h repair (or 24 h disk + 72 h rack repair); 24 h for both gives 8.2.
#[test]
fn eight_plus_four_two_per_rack() {
    let at = |hours: f64, rack_hours: Option<f64>| {
        let p = Params {
            racks: racks(2, 0.01, rack_hours),
            ..params(8, 4, 0.02, hours)
        };
        format!("{:.1}", estimate(&p, Model::Markov).unwrap().nines())
    };
    assert_eq!(at(24.0, None), "8.2");
    assert_eq!(at(56.0, None), "7.5");
    assert_eq!(at(24.0, Some(72.0)), "7.5");
    assert_eq!(at(72.0, None), "7.3");
    // Rack losses cost little when each rack holds one fragment.
    let one_per_rack = Params {
        racks: racks(1, 0.01, None),
        ..params(8, 4, 0.02, 24.0)
    };
    let e = estimate(&one_per_rack, Model::Markov).unwrap();
    assert_eq!(format!("{:.1}", e.nines()), "14.3");
}

/// The leading terms of the rack formula (module docs) for 8+4, N = 2.
#[test]
fn two_per_rack_matches_leading_terms() {
    let (lambda, rho) = (0.02, 0.01);
    let (r, rr) = (24.0 / 8760.0, 72.0 / 8760.0);
    let two_racks_one_disk = 120.0 * rho * rho * lambda * (2.0 * rr * r + rr * rr);
    let three_racks = 60.0 * rho * rho * rho * rr * rr;
    let approx = two_racks_one_disk + three_racks;
    let p = Params {
        racks: racks(2, rho, Some(72.0)),
        ..params(8, 4, lambda, 24.0)
    };
    let e = estimate(&p, Model::Markov).unwrap();
    assert!(close(e.annual_loss(), approx, 0.01), "{e:?} vs {approx:e}");
}

/// A rack holding more than m fragments makes one rack loss fatal.
#[test]
fn rack_limits() {
    let base = estimate(&params(8, 4, 0.02, 24.0), Model::Markov).unwrap();
    // N = 5 > m: rate of losing one of 3 racks (5, 5, 2 fragments; the last is harmless
    // alone) ≈ 2 ρ.
    let p = Params {
        racks: racks(5, 0.01, None),
        ..params(8, 4, 0.02, 24.0)
    };
    let e = estimate(&p, Model::Markov).unwrap();
    assert!(
        close(e.annual_loss(), 1.0 - (-0.02f64).exp(), 0.01),
        "{e:?}"
    );
    assert!(e.nines() < base.nines());
}

/// With a negligible rack AFR the rack model is the plain one.
#[test]
fn negligible_racks_reduce_to_independent() {
    for model in [Model::Markov, Model::BackblazePeriods] {
        let plain = estimate(&params(8, 4, 0.02, 24.0), model).unwrap();
        let p = Params {
            racks: racks(3, 1e-15, None),
            ..params(8, 4, 0.02, 24.0)
        };
        let e = estimate(&p, model).unwrap();
        assert!(
            close(e.annual_loss(), plain.annual_loss(), 1e-5),
            "{model}: {e:?} vs {plain:?}"
        );
    }
}

/// Wide stripes and tiny rates stay finite in log space (f64 would underflow to 0).
#[test]
fn tiny_probabilities_do_not_underflow() {
    let e = estimate(&params(127, 128, 0.001, 1.0), Model::Markov).unwrap();
    assert!(e.ln_annual_loss.is_finite() && e.nines() > 500.0, "{e:?}");
    assert_eq!(e.annual_loss(), 0.0);
    let e = estimate(&params(127, 128, 0.001, 1.0), Model::BackblazePeriods).unwrap();
    assert!(e.ln_annual_loss.is_finite() && e.nines() > 500.0, "{e:?}");
    let p = Params {
        racks: racks(1, 0.001, None),
        ..params(127, 128, 0.001, 1.0)
    };
    let e = estimate(&p, Model::Markov).unwrap();
    assert!(e.ln_annual_loss.is_finite() && e.nines() > 500.0, "{e:?}");
}

/// More repair time, more AFR or less parity never improves durability.
#[test]
fn monotone_in_every_input() {
    for model in [Model::Markov, Model::BackblazePeriods] {
        let n = |p: Params| estimate(&p, model).unwrap().nines();
        let base = params(8, 4, 0.02, 24.0);
        assert!(n(base) > n(Params { afr: 0.04, ..base }));
        assert!(
            n(base)
                > n(Params {
                    repair_hours: 48.0,
                    ..base
                })
        );
        assert!(n(base) > n(Params { m: 3, k: 9, ..base }));
        assert!(n(base) < n(Params { m: 5, k: 7, ..base }));
        let with_racks = Params {
            racks: racks(2, 0.01, None),
            ..base
        };
        assert!(n(base) > n(with_racks));
    }
}

/// High loss probabilities saturate at 1 (0 nines) rather than going past it.
#[test]
fn certain_loss_is_zero_nines() {
    let e = estimate(&params(20, 1, 0.9, 365.0 * 24.0), Model::BackblazePeriods).unwrap();
    assert!(e.annual_loss() > 0.9 && e.annual_loss() <= 1.0, "{e:?}");
    assert!(e.nines() >= 0.0 && e.nines() < 0.1);
    let e = estimate(&params(20, 1, 0.9, 365.0 * 24.0), Model::Markov).unwrap();
    assert!(e.annual_loss() > 0.9 && e.annual_loss() <= 1.0, "{e:?}");
    assert!(e.nines() >= 0.0 && e.nines() < 0.1);
}

#[test]
fn invalid_params_name_the_parameter() {
    let ok = params(8, 4, 0.02, 24.0);
    let err = |p: Params| estimate(&p, Model::Markov).unwrap_err();
    assert_eq!(err(Params { k: 0, ..ok }).param(), "k");
    assert_eq!(err(Params { m: 0, ..ok }).param(), "m");
    let e = err(Params {
        k: 200,
        m: 56,
        ..ok
    });
    assert_eq!(e, DurabilityError::TooManyFragments { total: 256 });
    assert_eq!(e.to_string(), "k+m = 256 exceeds 255 fragments");
    assert!(estimate(
        &Params {
            k: 200,
            m: 55,
            ..ok
        },
        Model::Markov
    )
    .is_ok());
    for afr in [0.0, 1.0, -0.1, f64::NAN, f64::INFINITY] {
        assert_eq!(err(Params { afr, ..ok }).param(), "afr");
    }
    for repair_hours in [0.0, -1.0, 8761.0, f64::NAN] {
        assert_eq!(err(Params { repair_hours, ..ok }).param(), "repair");
    }
    for n in [0, 13] {
        let e = err(Params {
            racks: racks(n, 0.01, None),
            ..ok
        });
        assert_eq!(e.param(), "fragments-per-rack", "{e}");
    }
    let e = err(Params {
        racks: racks(2, 1.5, None),
        ..ok
    });
    assert_eq!(e.param(), "rack-afr");
    let e = err(Params {
        racks: racks(2, 0.01, Some(0.0)),
        ..ok
    });
    assert_eq!(e.param(), "rack-repair");
    let p = Params {
        racks: racks(2, 0.01, Some(72.0)),
        ..ok
    };
    let e = estimate(&p, Model::BackblazePeriods).unwrap_err();
    assert_eq!(e, DurabilityError::RackRepairInPeriods);
    // The same rack repair time as the disk's is fine for the periods model.
    let p = Params {
        racks: racks(2, 0.01, Some(24.0)),
        ..ok
    };
    assert!(estimate(&p, Model::BackblazePeriods).is_ok());
}

#[test]
fn parse_rates() {
    assert_eq!(parse_rate("2%"), Ok(0.02));
    assert_eq!(parse_rate("0.02"), Ok(0.02));
    assert_eq!(parse_rate(" 10 % "), Ok(0.1));
    assert_eq!(parse_rate("0.5%"), Ok(0.005));
    let e = parse_rate("2").unwrap_err();
    assert_eq!(
        e.to_string(),
        "2 is not a rate in (0, 1) per year (for 2 percent write 2%)"
    );
    for bad in ["0", "1", "100%", "0%", "-1%", "nan", "inf", "150%"] {
        assert!(
            matches!(parse_rate(bad), Err(ParseError::RateOutOfRange { .. })),
            "{bad}"
        );
    }
    for bad in ["", "%", "two", "2%%", "0.02/yr"] {
        assert_eq!(
            parse_rate(bad),
            Err(ParseError::NotARate(bad.into())),
            "{bad}"
        );
    }
}

#[test]
fn parse_durations() {
    assert_eq!(parse_duration_hours("6h"), Ok(6.0));
    assert_eq!(parse_duration_hours("24h"), Ok(24.0));
    assert_eq!(parse_duration_hours("3d"), Ok(72.0));
    assert_eq!(parse_duration_hours("90m"), Ok(1.5));
    assert_eq!(parse_duration_hours("1.5d"), Ok(36.0));
    assert_eq!(parse_duration_hours("365d"), Ok(8760.0));
    for bad in ["", "24", "h", "3w", "24 hours", "1e400h", "d3"] {
        assert!(
            matches!(
                parse_duration_hours(bad),
                Err(ParseError::NotADuration(_) | ParseError::DurationOutOfRange(_))
            ),
            "{bad}"
        );
    }
    for bad in ["0h", "-1h", "366d", "nanh"] {
        assert_eq!(
            parse_duration_hours(bad),
            Err(ParseError::DurationOutOfRange(bad.into())),
            "{bad}"
        );
    }
    assert_eq!(
        parse_duration_hours("24").unwrap_err().to_string(),
        "\"24\" is not a duration: write e.g. 90m, 24h or 3d"
    );
}
