//! Loading the certificate and key: every failure names the config field and the file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

/// A self-signed certificate for 127.0.0.1 and localhost: (cert PEM, key PEM).
pub(crate) fn self_signed() -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("rcgen");
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

/// A temporary folder removed on drop.
pub(crate) struct Dir(PathBuf);

impl Dir {
    pub(crate) fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "shale-gateway-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        Dir(p)
    }

    pub(crate) fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[track_caller]
fn expect_err(cert: &Path, key: &Path, field: &str, file: &Path, what: &str) {
    let err = Tls::load(cert, key).expect_err(what);
    assert_eq!(err.field, field, "{err}");
    let text = err.to_string();
    assert!(text.contains(field), "{text:?} should name {field}");
    assert!(
        text.contains(&file.display().to_string()),
        "{text:?} should name {}",
        file.display()
    );
    assert!(text.contains(what), "{text:?} should say {what:?}");
}

#[test]
fn a_self_signed_pair_loads_with_alpn_http11() {
    let d = Dir::new();
    let (cert, key) = self_signed();
    let tls = Tls::load(&d.file("c.pem", &cert), &d.file("k.pem", &key)).expect("loads");
    assert_eq!(tls.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    // A chain file with the key in the same file as the certificate also works.
    let both = d.file("both.pem", &format!("{cert}{key}"));
    Tls::load(&both, &both).expect("cert and key in one file");
}

#[test]
fn from_config_is_none_without_tls_fields() {
    let cfg = GatewayConfig::new("c", "127.0.0.1:9000", vec!["127.0.0.1:1".into()]);
    assert!(Tls::from_config(&cfg).expect("no tls").is_none());
    let mut cfg = cfg;
    cfg.tls_cert = Some("/nonexistent/shale-cert.pem".into());
    cfg.tls_key = Some("/nonexistent/shale-key.pem".into());
    let err = Tls::from_config(&cfg).expect_err("missing files");
    assert!(
        err.to_string().contains("/nonexistent/shale-cert.pem"),
        "{err}"
    );
}

#[test]
fn unreadable_files_name_field_and_file() {
    let d = Dir::new();
    let (cert, key) = self_signed();
    let cert = d.file("c.pem", &cert);
    let key = d.file("k.pem", &key);
    let missing = d.0.join("missing.pem");
    expect_err(&missing, &key, "tls_cert", &missing, "cannot read");
    expect_err(&cert, &missing, "tls_key", &missing, "cannot read");
}

#[test]
fn files_without_the_expected_pem_block_are_refused() {
    let d = Dir::new();
    let (cert, key) = self_signed();
    let cert = d.file("c.pem", &cert);
    let key = d.file("k.pem", &key);
    let empty = d.file("empty.pem", "");
    let text = d.file("text.pem", "not a pem file\n");
    // The key file given as the certificate and the other way round.
    expect_err(&key, &key, "tls_cert", &key, "no certificate found");
    expect_err(&cert, &cert, "tls_key", &cert, "no private key found");
    expect_err(&empty, &key, "tls_cert", &empty, "no certificate found");
    expect_err(&cert, &text, "tls_key", &text, "no private key found");
}

#[test]
fn corrupt_pem_is_refused() {
    let d = Dir::new();
    let (cert, key) = self_signed();
    let key = d.file("k.pem", &key);
    let unterminated = d.file("unterminated.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
    expect_err(
        &unterminated,
        &key,
        "tls_cert",
        &unterminated,
        "invalid PEM",
    );
    let bad_base64 = d.file(
        "b64.pem",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    expect_err(&bad_base64, &key, "tls_cert", &bad_base64, "invalid PEM");
    // Valid PEM whose DER is not a certificate.
    let not_der = d.file(
        "notder.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    expect_err(&not_der, &key, "tls_cert", &not_der, "unusable certificate");
    let bad_key = d.file(
        "badkey.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let cert = d.file("c.pem", &cert);
    expect_err(&cert, &bad_key, "tls_key", &bad_key, "unusable private key");
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let d = Dir::new();
    let (cert, _) = self_signed();
    let (_, other_key) = self_signed();
    let cert = d.file("c.pem", &cert);
    let key = d.file("k.pem", &other_key);
    expect_err(
        &cert,
        &key,
        "tls_key",
        &key,
        "does not match the certificate",
    );
}
