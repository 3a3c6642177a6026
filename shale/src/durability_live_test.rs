use super::*;

const GIB: u64 = 1 << 30;

fn inputs(class: StripeClass, racks: u32, detect_secs: u64, node: u64, rack: u64) -> LiveInputs {
    LiveInputs {
        classes: [(class, 1000)].into_iter().collect(),
        sampled: 1000,
        sampled_all: true,
        racks,
        fullest_node_bytes: node,
        fullest_rack_bytes: rack,
        detect_secs,
        repair_rate: (100u64 << 20) as f64,
        rate_source: RateSource::Budget,
    }
}

const TWO_PCT: Assumptions = Assumptions {
    afr: 0.02,
    rack_afr: 0.01,
};

#[test]
fn repair_time_is_detection_plus_rebuild_at_the_rate() {
    // 600 s to declare the node dead, 3600 MiB at 1 MiB/s: 4200 s.
    let h = repair_hours(600, 3600 << 20, (1u64 << 20) as f64);
    assert!((h - 4200.0 / 3600.0).abs() < 1e-9, "{h}");
    assert!(repair_hours(0, 0, 1.0) > 0.0, "never zero");
    assert!(repair_hours(10, 1, 0.0).is_infinite(), "no rate: no repair");
}

#[test]
fn same_numbers_as_shale_durability_for_the_same_repair_time() {
    // 24 h of detection and nothing to rebuild: the 8+4 / 2% / 24 h case of issue 6
    // (15.1 nines), and with two fragments per rack and 1% rack losses, 8.2 nines.
    let class = StripeClass {
        k: 8,
        m: 4,
        per_rack: 2,
    };
    let rows = estimate_live(&inputs(class, 6, 24 * 3600, 0, 0), TWO_PCT).unwrap();
    assert_eq!(rows.len(), 1);
    assert!((rows[0].nines_independent - 15.1).abs() < 0.05, "{rows:?}");
    let racks = rows[0].nines_with_racks.unwrap();
    assert!((racks - 8.2).abs() < 0.05, "{rows:?}");
    assert_eq!(rows[0].stripes, 1000);
}

#[test]
fn more_data_to_rebuild_means_fewer_nines() {
    let class = StripeClass {
        k: 8,
        m: 4,
        per_rack: 2,
    };
    let small = estimate_live(&inputs(class, 6, 600, GIB, 4 * GIB), TWO_PCT).unwrap();
    let big = estimate_live(&inputs(class, 6, 600, 1000 * GIB, 4000 * GIB), TWO_PCT).unwrap();
    assert!(small[0].nines_independent > big[0].nines_independent + 1.0);
    assert!(small[0].nines_with_racks.unwrap() > big[0].nines_with_racks.unwrap());
}

#[test]
fn a_rack_holding_more_than_m_fragments_is_flagged_and_dominates() {
    let spread = StripeClass {
        k: 8,
        m: 4,
        per_rack: 3,
    };
    let piled = StripeClass {
        k: 8,
        m: 4,
        per_rack: 5,
    };
    let mut i = inputs(spread, 4, 600, GIB, 4 * GIB);
    i.classes.insert(piled, 10);
    let rows = estimate_live(&i, TWO_PCT).unwrap();
    let (a, b) = (rows[0], rows[1]);
    assert_eq!(a.class, spread);
    assert_eq!(b.class, piled);
    // One rack loss alone loses the piled stripes: about the rack AFR itself.
    assert!(b.nines_with_racks.unwrap() < 2.5, "{b:?}");
    assert!(a.nines_with_racks.unwrap() > b.nines_with_racks.unwrap() + 3.0);
    let text = report(&i, TWO_PCT);
    assert!(
        text.contains("WARNING: more than m = 4 fragments share a rack"),
        "{text}"
    );
    assert!(
        text.contains("8+4 with at most 5 fragments per rack: 10 stripes"),
        "{text}"
    );
}

#[test]
fn one_rack_has_no_rack_model_and_no_stripes_no_estimate() {
    let class = StripeClass {
        k: 4,
        m: 2,
        per_rack: 6,
    };
    let rows = estimate_live(&inputs(class, 1, 600, GIB, GIB), TWO_PCT).unwrap();
    assert_eq!(rows[0].nines_with_racks, None);
    assert!(report(&inputs(class, 1, 600, GIB, GIB), TWO_PCT).contains("n/a (one rack)"));

    let empty = LiveInputs::default();
    assert!(report(&empty, TWO_PCT).contains("no erasure-coded stripes yet"));
}

#[test]
fn repair_switched_off_everywhere_gives_no_estimate() {
    let class = StripeClass {
        k: 8,
        m: 4,
        per_rack: 2,
    };
    let mut i = inputs(class, 6, 600, GIB, GIB);
    i.repair_rate = 0.0;
    assert!(estimate_live(&i, TWO_PCT).is_err());
    assert!(report(&i, TWO_PCT).contains("no estimate: repair is switched off"));
}
