use super::*;

const GOOD: &str = r#"
cluster_id = "c1"
listen = "127.0.0.1:9000"
meta = ["127.0.0.1:7201"]
"#;

#[test]
fn defaults_apply() {
    let c = GatewayConfig::parse(GOOD, "gw.toml").expect("valid");
    assert_eq!(c.k, 8);
    assert_eq!(c.m, 4);
    assert_eq!(c.region, "us-east-1");
    assert_eq!(c.inline_max_bytes, 4096);
    assert_eq!(c.codec_params().expect("codec").total_fragments(), 12);
    assert_eq!(c.max_upload_secs, 3600);
    assert_eq!(c.min_part_bytes, crate::gateway::MIN_PART_BYTES);
    assert_eq!(c.min_part_bytes, 5 << 20);
    let d = c.data_config();
    assert_eq!(d.max_upload, std::time::Duration::from_secs(3600));
    assert_eq!(d.stripe_data_bytes, c.stripe_data_bytes);
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            "listen = \"127.0.0.1:9000\"\nmeta = [\"127.0.0.1:1\"]\n",
            "cluster_id",
        ),
        (
            "cluster_id = \"c\"\nlisten = \"nope\"\nmeta = [\"127.0.0.1:1\"]\n",
            "listen",
        ),
        (
            "cluster_id = \"c\"\nlisten = \"127.0.0.1:9\"\nmeta = []\n",
            "meta",
        ),
        (
            "cluster_id = \"c\"\nlisten = \"127.0.0.1:9\"\nmeta = [\"x\"]\n",
            "meta[0]",
        ),
        (&format!("{GOOD}k = 0\n"), "codec"),
        (&format!("{GOOD}codec = \"zip\"\n"), "codec"),
        (
            &format!("{GOOD}inline_max_bytes = 1000000\n"),
            "inline_max_bytes",
        ),
        (
            &format!("{GOOD}stripe_data_bytes = 1\n"),
            "stripe_data_bytes",
        ),
        (&format!("{GOOD}max_upload_secs = 5\n"), "max_upload_secs"),
        (&format!("{GOOD}min_part_bytes = 0\n"), "min_part_bytes"),
        (
            &format!("{GOOD}min_part_bytes = 5368709121\n"),
            "min_part_bytes",
        ),
        (&format!("{GOOD}bogus = 1\n"), "bogus"),
    ];
    for (text, field) in cases {
        let err = GatewayConfig::parse(text, "gw.toml")
            .expect_err(text)
            .to_string();
        assert!(err.contains(field), "{err:?} should name {field}");
        assert!(err.contains("gw.toml"), "{err:?} should name the file");
    }
}

#[test]
fn min_part_bytes_is_configurable() {
    let c =
        GatewayConfig::parse(&format!("{GOOD}min_part_bytes = 1024\n"), "gw.toml").expect("valid");
    assert_eq!(c.min_part_bytes, 1024);
    let c = GatewayConfig::parse(&format!("{GOOD}min_part_bytes = 5368709120\n"), "gw.toml")
        .expect("5 GiB is the largest");
    assert_eq!(c.min_part_bytes, 5 << 30);
    let c = GatewayConfig::new("c", "127.0.0.1:9000", vec!["127.0.0.1:1".into()]);
    assert_eq!(c.min_part_bytes, crate::gateway::MIN_PART_BYTES);
}

#[test]
fn tls_needs_both_cert_and_key() {
    let c = GatewayConfig::parse(GOOD, "gw.toml").expect("valid");
    assert_eq!((c.tls_cert, c.tls_key), (None, None));
    let both = format!("{GOOD}tls_cert = \"/etc/c.pem\"\ntls_key = \"/etc/k.pem\"\n");
    let c = GatewayConfig::parse(&both, "gw.toml").expect("both set");
    assert_eq!(c.tls_cert.as_deref(), Some("/etc/c.pem"));
    assert_eq!(c.tls_key.as_deref(), Some("/etc/k.pem"));
    let cases = [
        (format!("{GOOD}tls_cert = \"/etc/c.pem\"\n"), "tls_key"),
        (format!("{GOOD}tls_key = \"/etc/k.pem\"\n"), "tls_cert"),
        (
            format!("{GOOD}tls_cert = \" \"\ntls_key = \"/etc/k.pem\"\n"),
            "tls_cert",
        ),
        (
            format!("{GOOD}tls_cert = \"/etc/c.pem\"\ntls_key = \"\"\n"),
            "tls_key",
        ),
    ];
    for (text, field) in cases {
        let err = GatewayConfig::parse(&text, "gw.toml")
            .expect_err(&text)
            .to_string();
        assert!(
            err.contains(&format!("`{field}`")),
            "{err:?} should name {field}"
        );
        assert!(err.contains("gw.toml"), "{err:?} should name the file");
    }
    // A type error shows the offending line.
    let err = GatewayConfig::parse(
        &format!("{GOOD}tls_cert = 1\ntls_key = \"/k\"\n"),
        "gw.toml",
    )
    .expect_err("integer path")
    .to_string();
    assert!(err.contains("tls_cert"), "{err:?}");
}
