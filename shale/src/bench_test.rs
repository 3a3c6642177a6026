use super::*;

#[test]
fn sizes_parse() {
    assert_eq!(parse_size("4KiB").expect("kib"), 4096);
    assert_eq!(parse_size("1MiB").expect("mib"), 1 << 20);
    assert_eq!(parse_size("123").expect("bytes"), 123);
    assert!(parse_size("1TB").is_err());
}

#[test]
fn percentiles() {
    let r = Report {
        latencies_us: (1..=100).collect(),
        ..Report::default()
    };
    assert_eq!(r.pct(0.5), 51);
    assert_eq!(r.pct(0.99), 99);
    assert_eq!(r.pct(1.0), 100);
}

#[test]
fn endpoints() {
    assert_eq!(
        endpoint("http://127.0.0.1:9000/").expect("ok"),
        "127.0.0.1:9000".parse().expect("addr")
    );
    assert!(endpoint("https://x:1").is_err());
}
