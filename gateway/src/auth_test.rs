use super::*;

#[test]
fn amz_dates_parse() {
    assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
    assert_eq!(parse_amz_date("20000301T000000Z"), Some(951_868_800));
    assert_eq!(parse_amz_date("20261122T073819Z"), Some(1_795_333_099));
    for bad in [
        "",
        "2026-11-22T07:38:19Z",
        "20261322T073819Z",
        "20261122T253819Z",
        "2026112xT073819Z",
        "20261122T073819",
        "+0261122T073819Z",
    ] {
        assert_eq!(parse_amz_date(bad), None, "{bad}");
    }
}

#[test]
fn amz_dates_round_trip() {
    for secs in [0, 951_868_800, 1_795_333_099, 4_102_444_799, 1_709_164_800] {
        let s = format_amz_date(secs);
        assert_eq!(parse_amz_date(&s), Some(secs), "{s}");
    }
    assert_eq!(format_amz_date(1_795_333_099), "20261122T073819Z");
}
